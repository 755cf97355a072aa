//! Every planted bug bites: the corpus catches each one within a few seeds, with the oracle
//! its documentation names, and a caught case shrinks to a smaller one that replays exactly.

use shipsim::many::hunt::{self, huntable};
use shipsim::many::shrink::Goal;
use shipsim::oracle::OracleKind;
use shipsim::scenario::Scenario;
use shipsim_system::bugs::{Bug, BugSet};

/// Seeds a bug may take to be caught in this test; the hunt measures far fewer (see README).
const SEEDS_MAX: u64 = 10;

fn corpus() -> Vec<Scenario> {
    let dir = crate::support::scenarios_dir();
    shipsim::cli::load_scenarios(&[dir]).expect("the corpus is valid")
}

/// The oracles each bug's documentation says catch it.
fn expected(bug: Bug) -> &'static [OracleKind] {
    use OracleKind::*;
    match bug {
        Bug::CheckThenInsertRace
        | Bug::KeyStoredAfterCarrier
        | Bug::IdempotencyInMemory
        | Bug::CarrierWithoutKey
        | Bug::ClientNewKeyPerAttempt => &[ExactlyOnce],
        Bug::ResponseBeforeCommit => &[AcknowledgedWrites, AmbiguityResolved],
        Bug::KeysNotScopedPerCaller | Bug::FingerprintIgnoresBody => &[StableReplays],
        Bug::LockSurvivesCrash => &[AmbiguityResolved],
        Bug::LazyDurability => &[AcknowledgedWrites],
        Bug::ClientIgnoresRetryAfter
        | Bug::ClientRetries4xx
        | Bug::ClientRetryStorm
        | Bug::ClientRetriesBypassLimiter
        | Bug::ClientIgnoresAdvertisedBudget => &[ClientDiscipline],
        Bug::RotationDropsOldKeyEarly | Bug::WebhookSignsWithNewSecretOnly => {
            &[CredentialsHonoured]
        }
        Bug::WebhookDedupeAfterEffect
        | Bug::ReceiverSkipsDedupe
        | Bug::ReceiverDedupeAfterEffect
        | Bug::ReceiverSkipsSignature
        | Bug::FeedCursorSkipsBoundary
        | Bug::ReceiverDedupesFeedApart => &[WebhookOnce],
        _ => &[],
    }
}

#[test]
fn every_planted_bug_is_caught_by_the_corpus() {
    // Proves each bug of the catalogue is caught within SEEDS_MAX seeds, by the oracle its
    // documentation names.
    let corpus = corpus();
    let scenarios = huntable(&corpus);
    assert!(
        Bug::ALL.len() >= 10,
        "the catalogue must hold at least ten bugs"
    );
    for bug in Bug::ALL {
        let detection = hunt::detect(&shipsim::reference::target(), *bug, &scenarios, SEEDS_MAX)
            .unwrap_or_else(|| panic!("planted bug {bug} escaped {SEEDS_MAX} seeds of the corpus"));
        let Goal::Oracle(oracle) = detection.caught_by else {
            panic!("{bug} was caught only as a stuck run");
        };
        assert!(
            expected(*bug).contains(&oracle),
            "{bug} was caught by {oracle} in {}, expected one of {:?}",
            detection.scenario,
            expected(*bug)
        );
    }
}

#[test]
fn correct_system_has_no_planted_bug_to_find() {
    // Proves the hunt's detections come from the bugs: with no bug switched on, the same
    // first seed of every huntable scenario passes.
    for scenario in huntable(&corpus()) {
        let run = shipsim::run_seed(&shipsim::reference::target(), scenario, 1, &BugSet::none());
        assert!(
            run.passed(),
            "{} seed 1: {:?}",
            scenario.name,
            run.violations
        );
    }
}

#[test]
fn a_caught_case_shrinks_and_replays_exactly() {
    // Proves shrinking keeps the failure (same oracle), makes the story shorter, and that
    // the written repro parses back and replays to the same trace hash.
    let corpus = corpus();
    let scenarios = huntable(&corpus);
    let detection = hunt::detect(
        &shipsim::reference::target(),
        Bug::CarrierWithoutKey,
        &scenarios,
        SEEDS_MAX,
    )
    .expect("caught");
    let before = detection.run.history.operations().len();
    let target = detection.caught_by;
    let shrunk = hunt::shrink_detection(&shipsim::reference::target(), detection, &scenarios);
    assert!(
        shrunk.operations_after < before,
        "{} -> {}",
        before,
        shrunk.operations_after
    );
    assert!(
        shrunk
            .run
            .violations
            .iter()
            .any(|v| Goal::Oracle(v.oracle) == target)
    );
    let text = shrunk.scenario.to_toml();
    let reloaded =
        Scenario::parse("repro.toml", "repro", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(reloaded.seed, Some(shrunk.seed));
    let replay = shipsim::run_seed(
        &shipsim::reference::target(),
        &reloaded,
        shrunk.seed,
        &reloaded.bugs,
    );
    assert_eq!(
        Some(replay.trace.hash()),
        reloaded.trace_hash,
        "the repro must replay exactly"
    );
    assert!(!replay.violations.is_empty());
}

#[test]
fn bugs_that_shrank_to_12_and_17_operations_shrink_to_at_most_ten() {
    // Proves two of the shrinker's newer steps on the corpus, where the planted bugs once
    // shrank to 17 and 12 operations: a crash moved earlier at the same operation count
    // before the operations are cut (`idempotency_in_memory`), a random duplicate made
    // certain (`webhook_dedupe_after_effect`). Each now shrinks to at most 10 operations,
    // still fails the oracle that caught it, and its repro replays to the same trace hash.
    // (`lock_survives_crash` and `feed_cursor_skips_boundary` shrink to at most 10 too, in
    // twice the time: the README's hunt table shows them.)
    let corpus = corpus();
    let scenarios = huntable(&corpus);
    let target = shipsim::reference::target();
    for bug in [Bug::IdempotencyInMemory, Bug::WebhookDedupeAfterEffect] {
        let detection = hunt::detect(&target, bug, &scenarios, SEEDS_MAX).expect("caught");
        let goal = detection.caught_by;
        let shrunk = hunt::shrink_detection(&target, detection, &scenarios);
        assert!(
            shrunk.operations_after <= 10,
            "{bug}: {} -> {} operations\n{}",
            shrunk.operations_before,
            shrunk.operations_after,
            shrunk.scenario.to_toml()
        );
        assert!(goal.hit(&shrunk.run), "{bug}");
        let text = shrunk.scenario.to_toml();
        let reloaded =
            Scenario::parse("repro.toml", "repro", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let replay = shipsim::run_seed(&target, &reloaded, shrunk.seed, &reloaded.bugs);
        assert_eq!(Some(replay.trace.hash()), reloaded.trace_hash, "{bug}");
        assert!(goal.hit(&replay), "{bug}");
    }
}
