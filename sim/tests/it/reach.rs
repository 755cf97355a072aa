//! Reachability (`reach = [...]`): the dangerous moments a sweep must reach. A required
//! moment no seed reached fails the scenario like a fault that never fired, in a run and in
//! a merge of its shards; every report counts every moment.

use shipsim::many::sweep::{self, Progress, Shard, SweepOptions};
use shipsim::output::summary;
use shipsim::scenario::Scenario;
use shipsim_reports::judge::REACHABILITY;
use shipsim_reports::model::Report;
use shipsim_system::bugs::BugSet;

fn options(shard: Option<Shard>) -> SweepOptions {
    SweepOptions {
        target: shipsim::reference::target(),
        replay: shipsim::many::sweep::Replay::Cli,
        seeds: Some(shipsim::SeedRange::new(1, 4).unwrap()),
        jobs: 1,
        shard,
        bugs: BugSet::none(),
        check_determinism: false,
        progress: Progress::Quiet,
    }
}

/// Lost responses and a double submit, requiring `reach`.
fn requiring(reach: &str) -> Scenario {
    let text = format!(
        r#"
reach = [{reach}]
[workload]
operations = 12
double_submit = 0.3
[[fault]]
kind = "drop_response"
target = "service"
probability = 0.3
"#
    );
    Scenario::parse("reach.toml", "reach", &text).expect("valid")
}

fn report_of(scenario: &Scenario, shard: Option<Shard>) -> Report {
    let options = options(shard);
    let outcome = sweep::sweep(std::slice::from_ref(scenario), &options);
    let triaged = shipsim::many::triage::triage(&outcome, &options, false, |_, _| {});
    summary::build(
        &outcome,
        &triaged,
        &options,
        "1..4",
        std::path::Path::new("/tmp"),
        0.0,
    )
    .0
}

#[test]
fn reached_required_moments_pass_and_show_in_the_report() {
    // Proves a scenario whose required moments its seeds reach passes, and that its report
    // counts them (with the seeds that reached them) and marks them required.
    let report = report_of(
        &requiring(r#""response_lost_after_commit", "same_key_concurrently""#),
        None,
    );
    let scenario = &report.scenarios[0];
    assert!(scenario.passed, "{:?}", scenario.violations);
    for name in ["response_lost_after_commit", "same_key_concurrently"] {
        let moment = scenario
            .moments
            .iter()
            .find(|m| m.name == name)
            .expect("every moment is in the report");
        assert!(
            moment.required && moment.reached > 0 && moment.seeds_reached > 0,
            "{moment:?}"
        );
    }
    assert_eq!(
        scenario.moments.len(),
        shipsim::reach::Moment::ALL.len(),
        "every moment of the catalogue is counted"
    );
    assert!(report.totals.moments["response_lost_after_commit"] > 0);
}

#[test]
fn an_unreachable_required_moment_fails_the_scenario() {
    // Proves that requiring a moment the scenario cannot reach (a forged webhook, in a
    // scenario without webhooks) fails it with a `reachability` violation naming the
    // moment, while every seed passed its oracles; and that shards leave the judgement to
    // the merge, which makes it again.
    let scenario = requiring(r#""response_lost_after_commit", "forged_event""#);
    let report = report_of(&scenario, None);
    let judged = &report.scenarios[0];
    assert!(!judged.passed);
    assert_eq!(judged.seeds_failed, 0, "every seed held its oracles");
    let violations: Vec<_> = judged
        .violations
        .iter()
        .filter(|v| v.oracle == REACHABILITY)
        .collect();
    assert_eq!(violations.len(), 1, "{:?}", judged.violations);
    assert!(violations[0].message.contains("`forged_event`"));
    assert_eq!(report.totals.scenarios_failed, 1);

    let shards: Vec<(String, Report)> = (1..=2)
        .map(|index| {
            let shard = Shard { index, count: 2 };
            let part = report_of(&scenario, Some(shard));
            assert!(
                part.scenarios[0]
                    .violations
                    .iter()
                    .all(|v| v.oracle != REACHABILITY),
                "a shard does not judge reachability"
            );
            (format!("shard {index}"), part)
        })
        .collect();
    let merged = shipsim_reports::merge::merge(&shards).expect("shards merge");
    let merged = &merged.scenarios[0];
    assert!(!merged.passed);
    assert_eq!(
        merged
            .violations
            .iter()
            .filter(|v| v.oracle == REACHABILITY)
            .count(),
        1
    );
}

#[test]
fn reach_names_are_checked_where_they_are_written() {
    // Proves an unknown moment is a located error with a suggestion, and a repeated one is
    // refused.
    let error = Scenario::parse("r.toml", "r", "reach = [\"retry_while_inflight\"]\n")
        .expect_err("unknown moment");
    let text = error.to_string();
    assert!(text.contains("r.toml:1:"), "{text}");
    assert!(
        text.contains("did you mean `retry_while_in_flight`"),
        "{text}"
    );
    let error = Scenario::parse(
        "r.toml",
        "r",
        "reach = [\"forged_event\", \"forged_event\"]\n",
    )
    .expect_err("listed twice");
    assert!(error.to_string().contains("listed twice"));
}
