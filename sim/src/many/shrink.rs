//! Shrinking a failing case to a small one that still fails the same way.
//!
//! The input is a scenario and a seed; the output is a smaller scenario (and possibly a
//! neighbouring seed) on which the same oracle still finds a violation. The search is
//! greedy delta debugging over the scenario's structure: drop faults, halve and trim clients
//! and operations, move fault windows earlier and shorten them, shorten crash downtimes,
//! lower fault probabilities, switch off workload features, drop operation kinds, remove
//! think time; every candidate that still fails is kept, and passes repeat until none helps
//! or the run budget is spent.
//!
//! Why not proptest's shrinking: proptest shrinks the values a strategy generated while
//! keeping the generator's shape, but here every random choice of a run flows from one seed
//! through the whole simulation, so a "smaller" seed means nothing. The structure worth
//! shrinking is the scenario itself, and its candidates are few and meaningful, so plain
//! delta debugging finds small cases in a few hundred runs, and each step stays a valid,
//! replayable scenario file.

use shipsim_system::bugs::BugSet;

use crate::oracle::OracleKind;
use crate::output::wall::Stopwatch;
use crate::run::runner::{SeedRun, run_seed};
use crate::scenario::{Mix, Scenario};
use crate::target::Target;

/// Runs a shrink may spend at most: enough for every pass over a large scenario.
pub const SHRINK_RUNS_MAX: usize = 400;

/// Neighbouring seeds a candidate is tried with (the original first), since a smaller
/// scenario reshuffles every random choice and the original seed may no longer hit.
pub const SEEDS_PER_CANDIDATE: u64 = 3;

/// What counts as "fails the same way".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Goal {
    /// A violation of this oracle.
    Oracle(OracleKind),
    /// The run could not finish.
    Stuck,
}

impl Goal {
    /// Whether `run` fails this way.
    #[must_use]
    pub fn hit(self, run: &SeedRun) -> bool {
        match self {
            Goal::Oracle(oracle) => run.violations.iter().any(|v| v.oracle == oracle),
            Goal::Stuck => run.stuck.is_some(),
        }
    }

    /// Name for reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Goal::Oracle(oracle) => oracle.name(),
            Goal::Stuck => "liveness",
        }
    }
}

/// A shrunk case and what it took.
#[derive(Debug)]
pub struct Shrunk {
    /// The smallest failing scenario found, with its seed pinned.
    pub scenario: Scenario,
    /// Its seed.
    pub seed: u64,
    /// Operations of the original failing run.
    pub operations_before: usize,
    /// Operations of the shrunk failing run.
    pub operations_after: usize,
    /// Simulation runs spent.
    pub runs: usize,
    /// Wall time spent, ms (not deterministic).
    pub wall_ms: u64,
    /// The failing run of the shrunk case.
    pub run: SeedRun,
}

struct Search<'a> {
    system: &'a Target,
    bugs: &'a BugSet,
    goal: Goal,
    runs: usize,
}

impl Search<'_> {
    /// The first of the candidate's seeds on which it still fails, with its run.
    fn fails(&mut self, candidate: &Scenario, seed: u64) -> Option<(u64, SeedRun)> {
        for offset in 0..SEEDS_PER_CANDIDATE {
            if self.runs >= SHRINK_RUNS_MAX {
                return None;
            }
            self.runs += 1;
            let try_seed = seed.wrapping_add(offset);
            let run = run_seed(self.system, candidate, try_seed, self.bugs);
            if self.goal.hit(&run) {
                return Some((try_seed, run));
            }
        }
        None
    }
}

/// Shrinks `scenario` of `system` failing on `seed` with `bugs` the way `goal` says.
/// `failing` is the original failing run.
#[must_use]
pub fn shrink(
    system: &Target,
    scenario: &Scenario,
    seed: u64,
    bugs: &BugSet,
    goal: Goal,
    failing: SeedRun,
) -> Shrunk {
    let watch = Stopwatch::start();
    let operations_before = failing.history.operations().len();
    let mut search = Search {
        system,
        bugs,
        goal,
        runs: 0,
    };
    let default_mix = system.table().ok().map(|table| {
        Mix::new(
            table
                .ops()
                .iter()
                .zip(table.default_weights())
                .map(|(op, weight)| (op.name(), weight)),
        )
    });
    let mut best = scenario.clone();
    let mut best_seed = seed;
    let mut best_run = failing;
    loop {
        let mut improved = false;
        for candidate in candidates(&best, default_mix.as_ref()) {
            if search.runs >= SHRINK_RUNS_MAX {
                break;
            }
            if let Some((found_seed, run)) = search.fails(&candidate, best_seed)
                && smaller(&run, &best_run)
            {
                best = candidate;
                best_seed = found_seed;
                best_run = run;
                improved = true;
            }
        }
        if !improved || search.runs >= SHRINK_RUNS_MAX {
            break;
        }
    }
    // Faults that never fired in the failing run are noise in a repro. Each fault draws
    // from its own stream, so dropping them changes nothing else; the run confirms it.
    let silent: Vec<usize> = best
        .faults
        .iter()
        .filter(|f| best_run.fired.get(&f.index).copied().unwrap_or(0) == 0)
        .map(|f| f.index)
        .collect();
    if !silent.is_empty() && search.runs < SHRINK_RUNS_MAX {
        let mut candidate = best.clone();
        candidate.faults.retain(|f| !silent.contains(&f.index));
        for (i, fault) in candidate.faults.iter_mut().enumerate() {
            fault.index = i;
        }
        search.runs += 1;
        let run = run_seed(system, &candidate, best_seed, bugs);
        if goal.hit(&run) {
            best = candidate;
            best_run = run;
        }
    }
    best.seed = Some(best_seed);
    best.seeds = crate::scenario::SeedRange::single(best_seed);
    // A repro replays one seed to show one violation; moments a sweep must reach are the
    // original scenario's claim, not the repro's.
    best.reach.clear();
    Shrunk {
        scenario: best,
        seed: best_seed,
        operations_before,
        operations_after: best_run.history.operations().len(),
        runs: search.runs,
        wall_ms: watch.elapsed_ns() / 1_000_000,
        run: best_run,
    }
}

/// Whether `run` is a smaller story than `best`: fewer operations, or as many with fewer
/// events.
fn smaller(run: &SeedRun, best: &SeedRun) -> bool {
    let size = |r: &SeedRun| (r.history.operations().len(), r.trace.events().len());
    size(run) < size(best)
}

/// Every single-step simplification of `scenario`, most aggressive first. `default_mix` is
/// the target's mix, for scenarios that give none.
fn candidates(scenario: &Scenario, default_mix: Option<&Mix>) -> Vec<Scenario> {
    let mut out = Vec::new();
    let with = |change: &dyn Fn(&mut Scenario)| {
        let mut candidate = scenario.clone();
        change(&mut candidate);
        candidate
    };
    for index in 0..scenario.faults.len() {
        out.push(with(&|s: &mut Scenario| {
            s.faults.remove(index);
            for (i, fault) in s.faults.iter_mut().enumerate() {
                fault.index = i;
            }
        }));
    }
    let clients = scenario.hosts.clients;
    for fewer in [clients / 2, clients.saturating_sub(1)] {
        if fewer >= 1 && fewer < clients {
            out.push(with(&|s: &mut Scenario| {
                s.hosts.clients = fewer;
                s.hosts.callers = s.hosts.callers.min(fewer);
            }));
        }
    }
    if scenario.hosts.callers > 1 {
        out.push(with(&|s: &mut Scenario| s.hosts.callers -= 1));
    }
    let operations = scenario.workload.operations;
    for fewer in [
        operations / 2,
        operations * 3 / 4,
        operations.saturating_sub(1),
    ] {
        if fewer >= 1 && fewer < operations {
            out.push(with(&|s: &mut Scenario| s.workload.operations = fewer));
        }
    }
    for (index, fault) in scenario.faults.iter().enumerate() {
        // Earlier windows (same length): a fault that strikes sooner needs fewer operations
        // before it for the failure to show.
        let start = fault.window.start_ms;
        for earlier in [0, start / 2] {
            if earlier < start {
                out.push(with(&|s: &mut Scenario| {
                    let window = &mut s.faults[index].window;
                    window.end_ms = window.end_ms.map(|end| end - (start - earlier));
                    window.start_ms = earlier;
                }));
            }
        }
        if let Some(end) = fault.window.end_ms {
            let half = (end - fault.window.start_ms) / 2;
            if half >= 1 {
                out.push(with(&|s: &mut Scenario| {
                    s.faults[index].window.end_ms = Some(s.faults[index].window.start_ms + half)
                }));
            }
        }
        // A shorter downtime: the crashed operation's own retries reach the restarted
        // process, instead of later operations.
        if let crate::fault::FaultKind::Crash(crash) = &fault.kind
            && crash.restart_after_ms > 50
        {
            let half = crash.restart_after_ms / 2;
            out.push(with(&|s: &mut Scenario| {
                if let crate::fault::FaultKind::Crash(crash) = &mut s.faults[index].kind {
                    crash.restart_after_ms = half;
                }
            }));
        }
        if fault.probability < 1.0 && fault.probability > 0.01 {
            out.push(with(&|s: &mut Scenario| {
                s.faults[index].probability =
                    (s.faults[index].probability / 2.0 * 100.0).round() / 100.0
            }));
        }
    }
    let workload = &scenario.workload;
    for (on, off) in [
        (
            workload.double_submit > 0.0,
            &(|s: &mut Scenario| s.workload.double_submit = 0.0) as &dyn Fn(&mut Scenario),
        ),
        (workload.key_in_body > 0.0, &|s: &mut Scenario| {
            s.workload.key_in_body = 0.0
        }),
        (workload.unserviceable > 0.0, &|s: &mut Scenario| {
            s.workload.unserviceable = 0.0
        }),
        (
            workload.reuse_key_with_other_body > 0.0,
            &|s: &mut Scenario| s.workload.reuse_key_with_other_body = 0.0,
        ),
        (workload.keys_at_length_limit > 0.0, &|s: &mut Scenario| {
            s.workload.keys_at_length_limit = 0.0
        }),
        (workload.think_ms != (0, 0), &|s: &mut Scenario| {
            s.workload.think_ms = (0, 0)
        }),
    ] {
        if on {
            out.push(with(off));
        }
    }
    if let Some(mix) = workload.mix.as_ref().or(default_mix) {
        let reads_off = Mix::new(mix.entries().map(|(name, weight)| {
            let weight = if name.starts_with("get_") { 0 } else { weight };
            (name.to_string(), weight)
        }));
        if &reads_off != mix && reads_off.total() > 0 {
            out.push(with(&|s: &mut Scenario| {
                s.workload.mix = Some(reads_off.clone())
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_valid_and_smaller() {
        // Proves every candidate round-trips through the scenario format (so it can be a
        // repro file) and differs from the original.
        let source = r#"
[hosts]
clients = 4
callers = 2
[workload]
operations = 10
double_submit = 0.3
[[fault]]
kind = "partition"
between = ["clients", "service"]
start_ms = 10
end_ms = 110
[[fault]]
kind = "http_error"
target = "service"
probability = 0.5
"#;
        let scenario = Scenario::parse("t.toml", "t", source).unwrap();
        let candidates = candidates(&scenario, None);
        assert!(candidates.len() >= 8, "{}", candidates.len());
        for candidate in &candidates {
            assert_ne!(candidate, &scenario);
            let text = candidate.to_toml();
            Scenario::parse("c.toml", "c", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        }
    }
}
