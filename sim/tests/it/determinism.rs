//! The determinism contract: the same scenario and seed replay byte for byte; different
//! seeds give different runs.

use shipsim::many::sweep;
use shipsim::many::sweep::{Progress, SweepOptions};
use shipsim::output::summary;
use shipsim::run_seed;
use shipsim::scenario::Scenario;
use shipsim_system::bugs::BugSet;

fn corpus() -> Vec<Scenario> {
    let dir = crate::support::scenarios_dir();
    shipsim::cli::load_scenarios(&[dir]).expect("the corpus is valid")
}

#[test]
fn same_seed_replays_identically_and_seeds_differ() {
    // Proves, for every scenario of the corpus, that running a seed twice in one process
    // gives the same trace (hash and every event), and that two seeds give different traces.
    for scenario in corpus() {
        let first = run_seed(&shipsim::reference::target(), &scenario, 7, &BugSet::none());
        let again = run_seed(&shipsim::reference::target(), &scenario, 7, &BugSet::none());
        assert_eq!(
            first.trace.first_divergence(&again.trace),
            None,
            "{}: seed 7 did not replay",
            scenario.name
        );
        assert_eq!(first.trace.hash(), again.trace.hash());
        assert_eq!(first.history, again.history);
        let other = run_seed(&shipsim::reference::target(), &scenario, 8, &BugSet::none());
        assert_ne!(
            first.trace.hash(),
            other.trace.hash(),
            "{}: seeds 7 and 8 ran alike",
            scenario.name
        );
    }
}

#[test]
fn report_is_identical_across_runs_and_job_counts() {
    // Proves the whole report (minus its wall-clock block) is the same for two sweeps of
    // the same seeds, one with one worker and one with two: parallelism changes nothing.
    let scenarios = corpus();
    let options = |jobs| SweepOptions {
        target: shipsim::reference::target(),
        replay: shipsim::many::sweep::Replay::Cli,
        seeds: Some(shipsim::SeedRange::new(1, 4).unwrap()),
        jobs,
        shard: None,
        bugs: BugSet::none(),
        check_determinism: false,
        progress: Progress::Quiet,
    };
    let scratch = crate::support::scratch();
    let out = scratch.path().join("determinism");
    let build = |jobs| {
        let opts = options(jobs);
        let outcome = sweep::sweep(&scenarios, &opts);
        let triaged = shipsim::many::triage::triage(&outcome, &opts, false, |_, _| {});
        let (mut report, repros) = summary::build(&outcome, &triaged, &opts, "1..4", &out, 0.0);
        report.run.wall = Default::default();
        report.run.jobs = 0;
        (shipsim_reports::json::render(&report).unwrap(), repros)
    };
    let (one, repros_one) = build(1);
    let (two, repros_two) = build(2);
    assert_eq!(one, two, "reports differ between --jobs 1 and --jobs 2");
    assert_eq!(repros_one, repros_two);
}

#[test]
fn check_determinism_flags_nothing_on_a_deterministic_run() {
    // Proves --check-determinism runs each seed twice and finds the hashes equal (the
    // mismatch path is shown by the trace unit tests, which build diverging traces).
    let scenario = &corpus()[0];
    let options = SweepOptions {
        target: shipsim::reference::target(),
        replay: shipsim::many::sweep::Replay::Cli,
        seeds: Some(shipsim::SeedRange::new(1, 3).unwrap()),
        jobs: 1,
        shard: None,
        bugs: BugSet::none(),
        check_determinism: true,
        progress: Progress::Quiet,
    };
    for seed in 1..3 {
        let outcome = shipsim::many::sweep::run_one(scenario, seed, &options);
        assert_eq!(outcome.nondeterminism, None);
    }
}
