//! The shipment-tracking receiver under shipsim as its webhook sender: the correct
//! receiver holds every verdict over 200 seeds of duplicates, reordering, forged, stale and
//! tampered deliveries, bursts and down windows; each planted mistake is caught within 100
//! seeds, shrunk to a repro file that replays.
//!
//! A failure prints the verdict, the seed, the evidence and a replay command:
//! `SHIPSIM_REPLAY=<repro file> cargo test --test receiver <test> -- --exact`.

mod support;

use std::path::{Path, PathBuf};

use byo_receiver::Mistake;
use shipsim::Verdict;

/// Seeds the correct receiver must pass.
const SEEDS: std::ops::Range<u64> = 0..200;
/// Seeds within which each mistake must be caught.
const SEEDS_MISTAKE: std::ops::Range<u64> = 0..100;

/// Where a test's report goes (each test its own: they run in parallel).
fn out_dir(test: &str) -> PathBuf {
    Path::new("target/shipsim").join(test)
}

#[test]
fn the_receiver_applies_each_event_once() {
    // Proves the correct receiver: every verdict holds on every seed, and the report
    // carries the receiver's latency under bursts.
    let outcome = support::receiver("tracking", None)
        .seeds(SEEDS)
        .out_dir(out_dir("tracking"))
        .run();
    outcome.assert_ok();
    assert_eq!(outcome.seeds_run, 200);
    let burst = outcome.latency_ms_burst.expect("some seed drew a burst");
    assert!(burst["count"] > 0, "{burst:?}");
}

/// Runs the receiver with `mistake`, asserts `verdict` catches it with a shrunk repro, and
/// that the repro replays (same trace, same verdict broken).
fn caught(test: &str, mistake: Mistake, verdict: Verdict) {
    let outcome = support::receiver(test, Some(mistake))
        .seeds(SEEDS_MISTAKE)
        .out_dir(out_dir(test))
        .run();
    assert!(outcome.problem.is_none(), "{:?}", outcome.problem);
    let failure = outcome.failure(verdict).unwrap_or_else(|| {
        panic!(
            "{mistake:?} was not caught by {}: {outcome:?}",
            verdict.name()
        )
    });
    let repro = failure
        .repro
        .clone()
        .expect("the first failure is shrunk to a repro");
    let replay = support::receiver(test, Some(mistake)).replay(&repro);
    assert!(replay.problem.is_none(), "{:?}", replay.problem);
    assert!(
        replay.failure(verdict).is_some(),
        "{} did not reproduce {}: {replay:?}",
        repro.display(),
        verdict.name()
    );
}

#[test]
fn dedupe_after_the_effect_is_caught() {
    // Proves effect_once bites: two copies racing each other both pass the "processed?"
    // check before either marks the event, and the event is recorded twice.
    caught(
        "dedupe-after-effect",
        Mistake::DedupeAfterEffect,
        Verdict::EffectOnce,
    );
}

#[test]
fn a_signature_checked_after_acting_is_caught() {
    // Proves forged_refused bites: the forged event is applied before the 401.
    caught(
        "signature-after-acting",
        Mistake::SignatureAfterActing,
        Verdict::ForgedRefused,
    );
}

#[test]
fn a_tampered_body_is_caught_when_the_signature_comes_last() {
    // Proves tampered_refused bites on the same mistake: a genuine signature over another
    // body is applied before the 401.
    caught(
        "tampered-after-acting",
        Mistake::SignatureAfterActing,
        Verdict::TamperedRefused,
    );
}

#[test]
fn a_missing_timestamp_tolerance_is_caught() {
    // Proves stale_refused bites: a correctly signed delivery an hour old is accepted.
    caught(
        "no-timestamp-tolerance",
        Mistake::NoTimestampTolerance,
        Verdict::StaleRefused,
    );
}

#[test]
fn last_write_wins_is_caught() {
    // Proves no_regression bites: an event held back arrives after a newer one and moves
    // the shipment backwards.
    caught(
        "last-write-wins",
        Mistake::LastWriteWins,
        Verdict::NoRegression,
    );
}
