//! The public `Target` API end to end: the reference system through `Target::run` on the
//! built-in corpus, a failing target's outcome (violation, shrunk repro, replay command),
//! replaying that repro, and the errors a user gets for a bad target or scenario.

use shipsim::reference;

use crate::support::scratch;

#[test]
fn the_reference_system_passes_the_builtin_corpus() {
    // Proves the built-in, target-neutral corpus parses for a real target (its
    // `downstreams` selector names the carrier and the receiver) and that the reference
    // system, run through the same public API a user's service is, holds every oracle.
    let scratch = scratch();
    let outcome = reference::target()
        .builtin_scenarios()
        .seeds(1..4)
        .jobs(2)
        .out_dir(scratch.path().join("builtin"))
        .run();
    outcome.assert_ok();
    let report = outcome.report().expect("the run started");
    assert_eq!(
        report.scenarios.len(),
        shipsim::corpus::FILES.len(),
        "every built-in scenario ran"
    );
    assert_eq!(
        report.totals.seeds_run,
        3 * shipsim::corpus::FILES.len() as u64
    );
    assert!(report.totals.operations > 0);
}

#[test]
fn a_failure_names_its_oracle_seed_repro_and_replay_command_and_replays() {
    // Proves the user's loop: a target with a planted bug fails `run` with the oracle, the
    // seed, a shrunk repro file written under the report directory and a replay command
    // naming SHIPSIM_REPLAY; replaying that file reproduces the violation with the same
    // trace hash, through the same test entry point.
    let scratch = scratch();
    let dir = scratch.path().join("failing");
    let outcome = reference::target()
        .builtin_scenarios()
        .planted_bugs([shipsim_system::bugs::Bug::CarrierWithoutKey])
        .seeds(1..3)
        .out_dir(&dir)
        .run();
    assert!(!outcome.passed());
    let panic = std::panic::catch_unwind(|| outcome.assert_ok()).unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("[exactly_once]"), "{message}");
    assert!(message.contains("SHIPSIM_REPLAY="), "{message}");
    let repro = std::fs::read_dir(dir.join("repro"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-min.toml"))
        .expect("a shrunk repro file");
    let replayed = reference::target()
        .planted_bugs([shipsim_system::bugs::Bug::CarrierWithoutKey])
        .out_dir(scratch.path().join("replayed"))
        .replay(&repro);
    assert!(replayed.problem().is_none(), "{:?}", replayed.problem());
    assert!(!replayed.passed(), "the repro still fails");
    let report = replayed.report().unwrap();
    assert!(
        report.scenarios[0]
            .oracles
            .iter()
            .any(|o| o.name == "exactly_once" && o.violations > 0),
        "{}",
        replayed.summary()
    );
}

#[test]
fn bad_targets_and_scenarios_are_errors_with_locations() {
    // Proves a target without scenarios, a target without an API adapter, and a scenario
    // naming an operation or host the target does not have are clear errors (a problem,
    // never a panic), the last with file, line and column.
    let none = reference::target().run();
    assert!(none.problem().unwrap().contains("has no scenarios"));

    let no_api = shipsim::Target::new("bare", |_boot| axum::Router::new())
        .builtin_scenarios()
        .run();
    assert!(
        no_api.problem().unwrap().contains("no API adapter"),
        "{:?}",
        no_api.problem()
    );

    let typo = reference::target()
        .scenario_toml("typo", "[workload]\nmix = { create_oder = 1 }\n")
        .run();
    let problem = typo.problem().unwrap();
    assert!(problem.contains("typo.toml:2:"), "{problem}");
    assert!(
        problem.contains("did you mean `create_order`?"),
        "{problem}"
    );

    let host = reference::target()
        .scenario_toml(
            "host",
            "[[fault]]\nkind = \"http_error\"\ntarget = \"bank\"\nprobability = 0.1\n",
        )
        .run();
    let problem = host.problem().unwrap();
    assert!(problem.contains("unknown host `bank`"), "{problem}");
    assert!(problem.contains("`carrier`"), "{problem}");

    let seeds = reference::target().builtin_scenarios().seeds(5..5).run();
    assert!(
        seeds.problem().unwrap().contains("empty"),
        "{:?}",
        seeds.problem()
    );
}
