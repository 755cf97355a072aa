//! Target descriptions (`shipsim live --api FILE`) express real APIs: the reference system,
//! driven in the simulation through `examples/reference/target.toml` instead of its Rust
//! adapter, holds over the corpus, and planted bugs are caught through it by the oracles
//! that catch them through the adapter.

use shipsim::Target;
use shipsim::described::{DescribedApi, Description};
use shipsim::many::shrink::Goal;
use shipsim::oracle::OracleKind;
use shipsim::scenario::Scenario;
use shipsim_system::bugs::{Bug, BugSet};

fn described_reference() -> Target {
    let path = crate::support::repo().join("examples/reference/target.toml");
    let description = Description::load(&path).expect("the reference description is valid");
    shipsim::reference::target().api(DescribedApi::new(description))
}

fn scenario(target: &Target, name: &str) -> Scenario {
    let path = crate::support::scenarios_dir().join(format!("{name}.toml"));
    Scenario::load_for(&path, &target.topology().unwrap()).unwrap()
}

#[test]
fn the_reference_through_its_description_holds_over_the_corpus() {
    // Proves the description format expresses a real API faithfully: the reference service,
    // driven through its description file (routes, key placement, body templates, response
    // pointers, idempotency conventions) rather than `ReferenceApi`, passes every oracle of
    // scenarios with lost responses, retry storms, carrier trouble, duplicates, crashes and
    // refusals, for several seeds.
    let target = described_reference();
    for name in [
        "walking_skeleton",
        "lost_responses",
        "retry_storm",
        "carrier_trouble",
        "duplicate_delivery",
        "service_crashes",
        "refused_requests",
    ] {
        let scenario = scenario(&target, name);
        for seed in 1..=3 {
            let run = shipsim::run_seed(&target, &scenario, seed, &BugSet::none());
            assert!(
                run.violations.is_empty() && run.stuck.is_none(),
                "{name} seed {seed}: {:#?} {:?}",
                run.violations,
                run.stuck
            );
            let ok = run
                .history
                .operations()
                .iter()
                .filter(|op| matches!(op.outcome, shipsim::run::history::OpOutcome::Ok { .. }))
                .count();
            assert!(ok > 0, "{name} seed {seed}: no operation succeeded");
        }
    }
}

#[test]
fn planted_bugs_are_caught_through_the_description() {
    // Proves the oracles judge a described target as sharply as one with a Rust adapter:
    // a service that calls its carrier without a key buys two labels (exactly_once), and one
    // that does not scope keys per merchant hands one merchant's shipment to another
    // (stable_replays), both caught within ten seeds of the corpus.
    let target = described_reference();
    let scenarios: Vec<Scenario> = ["carrier_trouble", "lost_responses", "walking_skeleton"]
        .into_iter()
        .map(|name| scenario(&target, name))
        .collect();
    let refs: Vec<&Scenario> = scenarios.iter().collect();
    for (bug, oracle) in [
        (Bug::CarrierWithoutKey, OracleKind::ExactlyOnce),
        (Bug::KeysNotScopedPerCaller, OracleKind::StableReplays),
    ] {
        let detection = shipsim::many::hunt::detect(&target, bug, &refs, 10)
            .unwrap_or_else(|| panic!("{} escaped", bug.name()));
        assert_eq!(detection.caught_by, Goal::Oracle(oracle), "{}", bug.name());
    }
}
