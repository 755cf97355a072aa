//! Comparing with a baseline: what fails the CI gate and what is only a note.

use shipsim_reports::compare::{CompareOptions, Regression, compare, render};

use crate::fixture;

const OPTIONS: CompareOptions = CompareOptions {
    threshold_percent: 10.0,
    delta_ms_min: 1,
};

#[test]
fn a_report_equal_to_its_baseline_passes() {
    // Proves comparing a report with itself finds nothing, even though it has violations
    // (known failures recorded in the baseline are not new).
    let report = fixture::report();
    let comparison = compare(&report, &report, &OPTIONS);
    assert!(!comparison.regressed(), "{comparison:?}");
    assert!(comparison.notes.is_empty());
    assert!(
        render(&comparison, "base.json", "new.json", &OPTIONS)
            .ends_with("no regression against the baseline\n")
    );
}

#[test]
fn more_violations_than_the_baseline_fail_the_gate() {
    // Proves a scenario whose oracle finds more violations than the baseline's is a
    // regression that names the oracle, both counts and an example with its replay command.
    let base = fixture::report();
    let mut new = base.clone();
    new.scenarios[0] = fixture::scenario("walking <skeleton>", &[1, 2, 3, 4], &[4]);
    let comparison = compare(&base, &new, &OPTIONS);
    assert_eq!(comparison.regressions.len(), 1);
    let Regression::NewViolations {
        scenario,
        oracle,
        base: before,
        new: after,
        example,
    } = &comparison.regressions[0]
    else {
        panic!("{comparison:?}");
    };
    assert_eq!(
        (scenario.as_str(), oracle.as_str(), *before, *after),
        ("walking <skeleton>", "exactly_once", 0, 1)
    );
    assert!(
        example
            .as_ref()
            .unwrap()
            .contains("shipsim replay out/repro/walking <skeleton>-seed4.toml")
    );
}

#[test]
fn latency_growth_past_the_threshold_fails_and_below_it_passes() {
    // Proves p99 growth over the threshold is a regression, the same growth under a higher
    // threshold is not, a growth smaller than the ms floor never is, and a large
    // improvement is a note suggesting a new baseline.
    let base = fixture::report();
    let endpoint = "POST /v1/orders";
    let p99 = base.scenarios[0].latency_ms[endpoint].p99;
    let mut new = base.clone();
    new.scenarios[0].latency_ms.get_mut(endpoint).unwrap().p99 = p99 * 5 / 4;
    let comparison = compare(&base, &new, &OPTIONS);
    assert_eq!(
        comparison.regressions,
        vec![Regression::Latency {
            scenario: "walking <skeleton>".into(),
            endpoint: endpoint.into(),
            metric: "p99",
            base_ms: p99,
            new_ms: p99 * 5 / 4,
        }]
    );
    let lenient = CompareOptions {
        threshold_percent: 30.0,
        delta_ms_min: 1,
    };
    assert!(!compare(&base, &new, &lenient).regressed());
    let floor = CompareOptions {
        threshold_percent: 10.0,
        delta_ms_min: p99,
    };
    assert!(!compare(&base, &new, &floor).regressed());

    let mut faster = base.clone();
    faster.scenarios[0]
        .latency_ms
        .get_mut(endpoint)
        .unwrap()
        .p95 = 1;
    let comparison = compare(&base, &faster, &OPTIONS);
    assert!(!comparison.regressed());
    assert!(
        comparison.notes[0].contains("consider refreshing the baseline"),
        "{:?}",
        comparison.notes
    );
}

#[test]
fn a_bug_no_longer_detected_fails_and_scenario_changes_are_notes() {
    // Proves losing a planted bug's detection fails the gate, while scenarios present on
    // one side only and different seed sets are reported as notes.
    let base = fixture::report();
    let mut new = base.clone();
    new.bugs[0].seeds_to_detect = None;
    new.scenarios.remove(0);
    new.run.seeds = "1..9".into();
    let comparison = compare(&base, &new, &OPTIONS);
    assert_eq!(
        comparison.regressions,
        vec![Regression::BugMissed {
            bug: "carrier_without_key".into(),
            scenario: "lost & \"found\"".into(),
            base_seeds: 2
        }]
    );
    let notes = comparison.notes.join("\n");
    assert!(notes.contains("seed sets differ"), "{notes}");
    assert!(
        notes.contains("walking <skeleton>: in the baseline but not in the new report"),
        "{notes}"
    );
}
