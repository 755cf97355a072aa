//! Bug hunts: how many seeds the corpus needs to catch each planted bug, and the smallest
//! story that shows it.
//!
//! For each bug, seeds are tried in order (1, 2, 3, ...), each against every scenario of
//! the corpus in order; the first violation ends the hunt for that bug. "Seeds to detect"
//! is the number of that seed. The failing case is then shrunk.

use shipsim_system::bugs::{Bug, BugSet};

use crate::many::shrink::{self, Goal, Shrunk};
use crate::run::runner::{SeedRun, run_seed};
use crate::scenario::Scenario;
use crate::target::Target;

/// How a bug was caught.
#[derive(Debug)]
pub struct Detection {
    /// The bug.
    pub bug: Bug,
    /// Seeds tried until it was caught (the catching seed's position, 1-based).
    pub seeds_to_detect: u64,
    /// The seed that caught it.
    pub seed: u64,
    /// The scenario that caught it.
    pub scenario: String,
    /// What caught it (oracle name, or `liveness`).
    pub caught_by: Goal,
    /// Runs spent before the catch.
    pub runs: u64,
    /// The catching run.
    pub run: SeedRun,
}

/// Scenarios a hunt uses: the corpus minus files that pin their own seed or bugs (promoted
/// regressions), which would not test the hunted bug alone.
#[must_use]
pub fn huntable(scenarios: &[Scenario]) -> Vec<&Scenario> {
    scenarios
        .iter()
        .filter(|s| s.seed.is_none() && s.bugs.is_empty())
        .collect()
}

/// Hunts `bug` over `scenarios` for up to `seeds_max` seeds (starting at seed 1).
#[must_use]
pub fn detect(
    target: &Target,
    bug: Bug,
    scenarios: &[&Scenario],
    seeds_max: u64,
) -> Option<Detection> {
    let bugs = BugSet::of([bug]);
    let mut runs = 0;
    for (position, seed) in (1..=seeds_max).enumerate() {
        for scenario in scenarios {
            runs += 1;
            let run = run_seed(target, scenario, seed, &bugs);
            let caught_by = match (run.violations.first(), &run.stuck) {
                (Some(violation), _) => Goal::Oracle(violation.oracle),
                (None, Some(_)) => Goal::Stuck,
                (None, None) => continue,
            };
            return Some(Detection {
                bug,
                seeds_to_detect: position as u64 + 1,
                seed,
                scenario: scenario.name.clone(),
                caught_by,
                runs,
                run,
            });
        }
    }
    None
}

/// Shrinks a detection to its smallest failing case; the result pins the bug and seed.
#[must_use]
pub fn shrink_detection(target: &Target, detection: Detection, scenarios: &[&Scenario]) -> Shrunk {
    let scenario = scenarios
        .iter()
        .find(|s| s.name == detection.scenario)
        .expect("detections name a hunted scenario");
    let bugs = BugSet::of([detection.bug]);
    let mut shrunk = shrink::shrink(
        target,
        scenario,
        detection.seed,
        &bugs,
        detection.caught_by,
        detection.run,
    );
    shrunk.scenario.bugs = bugs;
    shrunk.scenario.trace_hash = Some(shrunk.run.trace.hash());
    shrunk.scenario.name = format!("{}-{}", detection.bug.name(), detection.scenario);
    shrunk
}
