//! The step between a sweep and its report: re-runs failing seeds (they replay exactly) for
//! the operation timelines the report shows, and shrinks the first failure of each failing
//! scenario. The report is then built from the sweep and this, without running anything:
//! sweep -> triage -> report -> `reports` renderers, no edge running back.

use std::collections::BTreeMap;

use crate::many::shrink::{self, Goal, Shrunk};
use crate::many::sweep::{ScenarioOutcome, SweepOptions, SweepOutcome};
use crate::run::runner::{SeedRun, run_seed};

/// Failing seeds per scenario that are re-run for a timeline (and get a repro file).
pub const REPRO_SEEDS_MAX: usize = 10;

/// What the triage of one scenario found, beside its sweep outcome.
#[derive(Debug, Default)]
pub struct ScenarioTriage {
    /// The first [`REPRO_SEEDS_MAX`] failing seeds, re-run, by seed.
    pub reruns: BTreeMap<u64, SeedRun>,
    /// The scenario's first failure, shrunk (when shrinking was asked for and it applies).
    pub shrunk: Option<ShrunkFailure>,
}

/// The first failure of a scenario and its minimal case.
#[derive(Debug)]
pub struct ShrunkFailure {
    /// The failing seed of the sweep.
    pub seed: u64,
    /// What the shrink kept failing.
    pub goal: Goal,
    /// The minimal case, its bugs and trace hash pinned.
    pub shrunk: Shrunk,
}

/// The triage of a sweep: one entry per scenario, in the sweep's order.
#[derive(Debug, Default)]
pub struct Triaged {
    /// Parallel to [`SweepOutcome::scenarios`].
    pub scenarios: Vec<ScenarioTriage>,
}

/// Re-runs the failing seeds of `outcome` that the report details, and (with `shrink`)
/// shrinks the first failure of every scenario; `shrunk` is told each shrink's scenario name
/// and wall time, ms, as it finishes (for progress lines; wall time stays out of the report).
pub fn triage(
    outcome: &SweepOutcome,
    options: &SweepOptions,
    shrink: bool,
    mut shrunk: impl FnMut(&str, u64),
) -> Triaged {
    let scenarios = outcome
        .scenarios
        .iter()
        .map(|scenario_outcome| {
            let reruns = rerun_failures(scenario_outcome, options);
            let shrunk_failure = if shrink {
                shrink_first_failure(scenario_outcome, options)
            } else {
                None
            };
            if let Some(failure) = &shrunk_failure {
                shrunk(&scenario_outcome.scenario.name, failure.shrunk.wall_ms);
            }
            ScenarioTriage {
                reruns,
                shrunk: shrunk_failure,
            }
        })
        .collect();
    Triaged { scenarios }
}

/// How many scenarios of `outcome` [`triage`] would shrink: those not expected to fail
/// with a seed that found a violation or got stuck.
#[must_use]
pub fn shrinkable(outcome: &SweepOutcome) -> usize {
    outcome
        .scenarios
        .iter()
        .filter(|s| {
            s.scenario.bugs.is_empty() && s.seeds.iter().any(|seed| first_goal(seed).is_some())
        })
        .count()
}

fn rerun_failures(outcome: &ScenarioOutcome, options: &SweepOptions) -> BTreeMap<u64, SeedRun> {
    let scenario = &outcome.scenario;
    outcome
        .seeds
        .iter()
        .filter(|s| !s.passed())
        .take(REPRO_SEEDS_MAX)
        .map(|seed| {
            let bugs = scenario.bugs_with(&options.bugs);
            (
                seed.seed,
                run_seed(&options.target, scenario, seed.seed, &bugs),
            )
        })
        .collect()
}

/// What a failing seed's shrink keeps failing: its first violation's oracle, or liveness.
fn first_goal(seed: &crate::many::sweep::SeedOutcome) -> Option<Goal> {
    match (seed.violations.first(), &seed.stuck) {
        (Some(violation), _) => Some(Goal::Oracle(violation.oracle)),
        (None, Some(_)) => Some(Goal::Stuck),
        (None, None) => None,
    }
}

/// Shrinks the first failing seed of `outcome`, leaving out scenarios expected to fail and
/// seeds whose only failure is nondeterminism (which a smaller case cannot be checked
/// against).
fn shrink_first_failure(
    outcome: &ScenarioOutcome,
    options: &SweepOptions,
) -> Option<ShrunkFailure> {
    let scenario = &outcome.scenario;
    if !scenario.bugs.is_empty() {
        return None;
    }
    let (seed, goal) = outcome
        .seeds
        .iter()
        .find_map(|seed| first_goal(seed).map(|goal| (seed.seed, goal)))?;
    let bugs = scenario.bugs_with(&options.bugs);
    let failing = run_seed(&options.target, scenario, seed, &bugs);
    if !goal.hit(&failing) {
        // The rerun did not fail the same way: the determinism check reports that.
        return None;
    }
    let mut shrunk = shrink::shrink(&options.target, scenario, seed, &bugs, goal, failing);
    // The shrink keeps only candidates that still fail its goal, starting from one that does.
    assert!(
        goal.hit(&shrunk.run),
        "the shrunk case of `{}` still fails {}",
        scenario.name,
        goal.name()
    );
    shrunk.scenario.bugs = bugs;
    shrunk.scenario.trace_hash = Some(shrunk.run.trace.hash());
    Some(ShrunkFailure { seed, goal, shrunk })
}
