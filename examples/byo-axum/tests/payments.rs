//! The payments service under shipsim: the correct service holds every oracle on its own
//! scenarios and shipsim's built-in corpus over 200 seeds; it is deterministic; and each of
//! its planted mistakes is caught within 100 seeds, shrunk to a repro file that replays.
//!
//! A failure prints the oracle, the seed, the evidence and a replay command:
//! `SHIPSIM_REPLAY=<repro file> cargo test --test payments <test> -- --exact`.

mod support;

use std::path::{Path, PathBuf};

use byo_axum::Mistake;

/// Seeds the correct service must pass.
const SEEDS: std::ops::Range<u64> = 0..200;
/// Seeds within which each mistake must be caught.
const SEEDS_MISTAKE: std::ops::Range<u64> = 0..100;

/// Where a test's report goes (each test its own: they run in parallel).
fn out_dir(test: &str) -> PathBuf {
    Path::new("target/shipsim").join(test)
}

#[test]
fn payments_are_exactly_once() {
    // Proves the correct service: every oracle holds on every seed of this crate's
    // scenarios (tests/chaos) and of shipsim's built-in corpus.
    support::target("payments", None)
        .scenarios("tests/chaos")
        .builtin_scenarios()
        .seeds(SEEDS)
        .out_dir(out_dir("payments"))
        .run()
        .assert_ok();
}

#[test]
fn the_service_is_deterministic() {
    // Proves the service reads no wall clock and no unseeded randomness in the simulation:
    // every seed of every scenario, run twice, gives the same trace.
    support::target("payments-determinism", None)
        .scenarios("tests/chaos")
        .builtin_scenarios()
        .seeds(0..10)
        .check_determinism()
        .no_shrink()
        .out_dir(out_dir("determinism"))
        .run()
        .assert_ok();
}

#[test]
fn a_service_with_unseeded_ids_is_not_deterministic() {
    // Proves the determinism check bites on this service: the same service drawing its ids
    // from the OS's randomness instead of shipsim's seed fails it.
    let outcome = support::target_with_os_ids("payments-os-ids")
        .scenarios("tests/chaos/double_submits.toml")
        .seeds(0..2)
        .check_determinism()
        .no_shrink()
        .out_dir(out_dir("os-ids"))
        .run();
    assert!(!outcome.passed(), "{}", outcome.summary());
    assert!(
        outcome.summary().contains("determinism"),
        "{}",
        outcome.summary()
    );
}

#[test]
fn check_then_insert_is_caught() {
    // Two requests with one key, delivered at once, both find the key free.
    caught(Mistake::CheckThenInsert, "double_submits", "exactly_once");
}

#[test]
fn record_after_charge_is_caught() {
    // A crash between the charge and the insert: the retry charges again for a new payment.
    caught(Mistake::RecordAfterCharge, "crashes", "exactly_once");
}

#[test]
fn bank_without_key_is_caught() {
    // The bank client retries a lost answer without a key: the bank charges twice.
    caught(Mistake::BankWithoutKey, "bank_trouble", "exactly_once");
}

#[test]
fn async_commit_is_caught() {
    // A crash loses completions that were acknowledged but not yet durable.
    caught(Mistake::AsyncCommit, "crashes", "acknowledged_writes");
}

#[test]
fn global_keys_are_caught() {
    // Two merchants using the same key name collide: one gets the other's answer or a 422.
    caught(Mistake::GlobalKeys, "double_submits", "stable_replays");
}

#[test]
fn stuck_lock_is_caught() {
    // A payment claimed by a crashed process answers 409 for ever: it never resolves.
    caught(Mistake::StuckLock, "crashes", "ambiguity_resolved");
}

/// Runs `scenario` over [`SEEDS_MISTAKE`] with the service making `mistake`, and checks
/// that `oracle` caught it, that the first failure was shrunk to a repro file the outcome
/// names, and that replaying that file fails the same way with the same trace hash.
fn caught(mistake: Mistake, scenario: &str, oracle: &str) {
    let name = format!("payments-{mistake}");
    let dir = out_dir(mistake.name());
    // Run by the replay command a failure prints, `run` replays that one file (which lives
    // in this directory): keep it.
    let replaying = std::env::var_os(shipsim::REPLAY_ENV).is_some();
    if !replaying {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let outcome = support::target(&name, Some(mistake))
        .scenarios(format!("tests/chaos/{scenario}.toml"))
        .seeds(SEEDS_MISTAKE)
        .out_dir(if replaying {
            dir.join("replay")
        } else {
            dir.clone()
        })
        .run();
    let summary = outcome.summary();
    assert!(
        outcome.problem().is_none(),
        "{:?}\n{summary}",
        outcome.problem()
    );
    assert!(!outcome.passed(), "{mistake} went unnoticed:\n{summary}");
    if replaying {
        // The file still fails, with the trace hash it recorded (else `problem` says so).
        eprintln!("{summary}");
        return;
    }
    let report = outcome.report().expect("the run started");
    let run = &report.scenarios[0];
    let failing: Vec<u64> = run
        .seeds
        .iter()
        .filter(|s| !s.passed)
        .map(|s| s.seed)
        .collect();
    let oracles: Vec<&str> = run
        .oracles
        .iter()
        .filter(|o| o.violations > 0)
        .map(|o| o.name.as_str())
        .collect();
    assert!(
        oracles.contains(&oracle),
        "{mistake}: {oracle} did not fire:\n{summary}"
    );

    let shrunk = run.shrunk.as_ref().expect("the first failure was shrunk");
    let relative = shrunk.violation.repro.as_deref().expect("a repro file");
    let file_name = Path::new(relative).file_name().unwrap().to_string_lossy();
    assert!(file_name.ends_with("-min.toml"), "{relative}");
    assert!(
        summary.contains(&*file_name),
        "the outcome names {file_name}:\n{summary}"
    );
    let repro = dir.join(relative);
    let text = std::fs::read_to_string(&repro).expect("the repro file was written");

    let replayed = support::target(&name, Some(mistake))
        .out_dir(dir.join("replay"))
        .replay(&repro);
    assert!(replayed.problem().is_none(), "{:?}", replayed.problem());
    assert!(
        !replayed.passed(),
        "the repro still fails:\n{}",
        replayed.summary()
    );
    let again = &replayed.report().expect("the replay ran").scenarios[0];
    assert!(
        again
            .oracles
            .iter()
            .any(|o| o.name == shrunk.caught_by && o.violations > 0),
        "the replay fails {} again:\n{}",
        shrunk.caught_by,
        replayed.summary()
    );
    let hash = &again.seeds[0].trace_hash;
    assert!(
        text.contains(&format!("trace_hash = \"{hash}\"")),
        "replayed trace {hash}, file:\n{text}"
    );
    eprintln!(
        "{mistake}: caught first at seed {} ({} of {} seeds failed) by {}; shrunk ({}) from {} to {} operations and {} to {} faults in {} runs; {}",
        failing[0],
        failing.len(),
        run.seeds_run,
        oracles.join(", "),
        shrunk.caught_by,
        shrunk.operations_before,
        shrunk.operations_after,
        shrunk.faults_before,
        shrunk.faults_after,
        shrunk.shrink_runs,
        repro.display()
    );
}
