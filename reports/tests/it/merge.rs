//! Merging shard reports: exact histograms and counts, seeds and violations in seed order,
//! scenario-wide judgements made again, and refusal of anything that is not one sweep.

use shipsim_reports::histogram::{HistogramKind, decode, encode};
use shipsim_reports::judge;
use shipsim_reports::merge::{MergeError, merge};
use shipsim_reports::model::Report;

use crate::fixture::{self, ENDPOINTS};

/// The fixture's run split into shards by seed: shard `i` of `n` holds seeds `s` with
/// `s % n == i - 1`; histograms and counts are those of its own seeds.
fn shard(index: u64, count: u64) -> Report {
    let mut report = fixture::report();
    let seeds: Vec<u64> = (1..=4).filter(|s| s % count == index - 1).collect();
    report.scenarios = vec![
        fixture::scenario("walking <skeleton>", &seeds, &[]),
        fixture::scenario(
            "lost & \"found\"",
            &seeds,
            &[2, 3]
                .into_iter()
                .filter(|s| seeds.contains(s))
                .collect::<Vec<_>>(),
        ),
    ];
    report.totals = shipsim_reports::model::Totals::of(&report.scenarios);
    report.run.shard = Some(format!("{index}/{count}"));
    // The planted-bug table comes from a hunt, not from a sweep's seeds: one shard has it.
    if index != 1 {
        report.bugs.clear();
    }
    report
}

fn inputs(count: u64) -> Vec<(String, Report)> {
    (1..=count)
        .map(|i| (format!("shard{i}/summary.json"), shard(i, count)))
        .collect()
}

#[test]
fn merged_shards_equal_the_whole_run() {
    // Proves merging 3 shards gives the whole run's report: every histogram byte-equal,
    // every summary, count, seed, fault and oracle equal, violations in seed order; only
    // the wall clock and shard label differ.
    let whole = fixture::report();
    let mut merged = merge(&inputs(3)).unwrap();
    for scenario in &whole.scenarios {
        let other = merged
            .scenarios
            .iter()
            .find(|s| s.name == scenario.name)
            .unwrap();
        for endpoint in ENDPOINTS {
            for kind in HistogramKind::ALL {
                let key = kind.key(endpoint);
                assert_eq!(
                    decode(&other.histograms[&key]).unwrap(),
                    decode(&scenario.histograms[&key]).unwrap(),
                    "{key}"
                );
            }
        }
    }
    merged.run.wall = whole.run.wall.clone();
    merged.run.seeds = whole.run.seeds.clone();
    assert_eq!(merged, whole);
}

#[test]
fn merged_histogram_encoding_is_canonical() {
    // Proves re-encoding a merged histogram gives the same text as encoding the whole
    // run's, so merged summary.json files diff cleanly against unsharded ones.
    let merged = merge(&inputs(2)).unwrap();
    let whole = fixture::report();
    let key = HistogramKind::E2e.key(ENDPOINTS[0]);
    let reencoded = encode(&decode(&whole.scenarios[0].histograms[&key]).unwrap()).unwrap();
    assert_eq!(merged.scenarios[0].histograms[&key], reencoded);
}

#[test]
fn fault_coverage_is_judged_on_the_merged_counts() {
    // Proves a fault that fired in no shard is reported once by the merge, and that a
    // shard's own coverage complaint about a fault that fired elsewhere is dropped.
    let mut parts = inputs(2);
    for (_, report) in &mut parts {
        for scenario in &mut report.scenarios {
            scenario.faults[1].fired = 0;
            scenario.faults[1].seeds_fired = 0;
        }
    }
    // Shard 1 also wrongly complains that fault 0 never fired.
    let stale = judge::fault_never_fired("x", &parts[0].1.scenarios[0].faults[0], 2, 2);
    parts[0].1.scenarios[0].violations.push(stale);
    let merged = merge(&parts).unwrap();
    let coverage: Vec<_> = merged.scenarios[0]
        .violations
        .iter()
        .filter(|v| v.oracle == judge::FAULT_COVERAGE)
        .collect();
    assert_eq!(coverage.len(), 1);
    assert!(
        coverage[0]
            .message
            .starts_with("fault #1 (line 36) never fired in 4 seed(s)")
    );
    assert!(!merged.scenarios[0].passed);
    assert_eq!(merged.totals.scenarios_failed, 2);
}

#[test]
fn merge_refuses_what_is_not_one_sweep() {
    // Proves each way of mixing reports is refused with a reason naming the files: a
    // missing shard, a shard twice, other planted bugs, overlapping seeds, a different
    // scenario definition.
    let parts = inputs(3);
    let error = merge(&parts[..2]).unwrap_err();
    assert_eq!(
        error,
        MergeError::MissingShards {
            missing: "3".into(),
            count: 3
        }
    );

    let twice = vec![parts[0].clone(), parts[0].clone(), parts[1].clone()];
    assert!(matches!(
        merge(&twice),
        Err(MergeError::DuplicateShard { .. })
    ));

    let mut bugs = parts.clone();
    bugs[1].1.run.bugs.clear();
    let message = merge(&bugs).unwrap_err().to_string();
    assert!(
        message.contains("shard2/summary.json ran planted bugs []"),
        "{message}"
    );

    let mut overlap = inputs(1);
    overlap.push(("again.json".into(), fixture::report()));
    overlap[0].1.run.shard = None;
    let message = merge(&overlap).unwrap_err().to_string();
    assert!(
        message.contains("seed 1 is in both shard1/summary.json and again.json"),
        "{message}"
    );

    let mut other = parts.clone();
    other[2].1.scenarios[0].faults.pop();
    assert!(matches!(
        merge(&other),
        Err(MergeError::ScenarioDiffers { .. })
    ));

    let mut mixed = parts;
    mixed[1].1.run.shard = None;
    assert!(matches!(
        merge(&mixed),
        Err(MergeError::ShardsDiffer { .. })
    ));
}
