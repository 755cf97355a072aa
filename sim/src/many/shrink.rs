//! Shrinking a failing case to a small one that still fails the same way.
//!
//! The input is a scenario and a seed; the output is a smaller scenario (and possibly a
//! neighbouring seed) on which the same oracle still finds a violation. The search is
//! greedy delta debugging over the scenario's structure: drop faults, halve and trim clients
//! and operations, move fault windows earlier and shorten them, shorten crash downtimes,
//! lower fault probabilities or make them certain, lower the service's rate limit, the
//! webhook sender's attempts and the feed's page size, switch off workload features,
//! tracking webhooks and reads, remove think time. The first candidate that still fails
//! with a smaller story is kept and the next round starts from it; when none does, the first
//! that still fails with as many operations is kept as a step towards one (see [`shrink`]).
//! Rounds repeat until nothing fails any more or the run budget is spent.
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
    // Candidates are written out and read back before they run: one the format refuses
    // (webhook faults with the webhooks off, ...) is no repro, and one that reads back
    // runs exactly as its file replays.
    let topology = system.topology().ok();
    let reread = |candidate: &Scenario| {
        let text = candidate.to_toml();
        match &topology {
            Some(topology) => {
                Scenario::parse_for(&candidate.path, &candidate.name, &text, topology).ok()
            }
            None => Some(candidate.clone()),
        }
    };
    let mut best = scenario.clone();
    // A repro replays one seed to show one violation: the moments a sweep must reach are
    // the original scenario's claim, not the repro's (and, left in, the format would refuse
    // candidates that switch off what reaches them).
    best.reach.clear();
    let mut best_seed = seed;
    let mut best_run = failing;
    // Rounds over the candidates of the best case so far, in order. The first candidate
    // that still fails with a smaller story (fewer operations, or as many with fewer events)
    // is kept at once and starts the next round. A round without one keeps the first
    // candidate that still fails with as many operations (a crash moved earlier, a random
    // fault made certain, a lower rate): such a step opens the way to fewer operations (a
    // crash that strikes sooner needs fewer operations before it). Every candidate lowers
    // some number of the scenario, or raises a probability to 1 for good, so the rounds end.
    'rounds: while search.runs < SHRINK_RUNS_MAX {
        let mut level: Option<(Scenario, u64, SeedRun)> = None;
        for candidate in candidates(&best, default_mix.as_ref()) {
            if search.runs >= SHRINK_RUNS_MAX {
                break 'rounds;
            }
            let Some(written) = reread(&candidate) else {
                continue;
            };
            let Some((found_seed, run)) = search.fails(&written, best_seed) else {
                continue;
            };
            match compare(&run, &best_run) {
                Size::Smaller => {
                    best = written;
                    best_seed = found_seed;
                    best_run = run;
                    continue 'rounds;
                }
                Size::Level if level.is_none() => level = Some((written, found_seed, run)),
                Size::Level | Size::Larger => {}
            }
        }
        let Some((scenario, found_seed, run)) = level else {
            break;
        };
        best = scenario;
        best_seed = found_seed;
        best_run = run;
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

/// How a failing candidate's story compares with the best one's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Size {
    /// Fewer operations, or as many with fewer events.
    Smaller,
    /// As many operations, and as many events or more.
    Level,
    /// More operations.
    Larger,
}

/// How `run` compares with `best`.
fn compare(run: &SeedRun, best: &SeedRun) -> Size {
    size_of(
        (run.history.operations().len(), run.trace.events().len()),
        (best.history.operations().len(), best.trace.events().len()),
    )
}

/// [`compare`] on (operations, events).
fn size_of(run: (usize, usize), best: (usize, usize)) -> Size {
    if run < best {
        Size::Smaller
    } else if run.0 == best.0 {
        Size::Level
    } else {
        Size::Larger
    }
}

/// Halves `value` (rounding down), when that lowers it and stays at least `floor`.
fn halved(value: u64, floor: u64) -> Option<u64> {
    let half = value / 2;
    (half >= floor && half < value).then_some(half)
}

/// Every single-step simplification of `scenario`, most aggressive first. `default_mix` is
/// the target's mix, for scenarios that give none.
fn candidates(scenario: &Scenario, default_mix: Option<&Mix>) -> Vec<Scenario> {
    let mut out = Vec::new();
    let mut add = |change: &dyn Fn(&mut Scenario)| {
        let mut candidate = scenario.clone();
        change(&mut candidate);
        if &candidate != scenario {
            out.push(candidate);
        }
    };
    for index in 0..scenario.faults.len() {
        add(&|s: &mut Scenario| {
            s.faults.remove(index);
            for (i, fault) in s.faults.iter_mut().enumerate() {
                fault.index = i;
            }
        });
    }
    let clients = scenario.hosts.clients;
    for fewer in [clients / 2, clients.saturating_sub(1)] {
        if fewer >= 1 && fewer < clients {
            add(&|s: &mut Scenario| {
                s.hosts.clients = fewer;
                s.hosts.callers = s.hosts.callers.min(fewer);
            });
        }
    }
    if scenario.hosts.callers > 1 {
        add(&|s: &mut Scenario| s.hosts.callers -= 1);
    }
    let operations = scenario.workload.operations;
    for fewer in [
        operations / 2,
        operations * 3 / 4,
        operations.saturating_sub(1),
    ] {
        if fewer >= 1 && fewer < operations {
            add(&|s: &mut Scenario| s.workload.operations = fewer);
        }
    }
    for (index, fault) in scenario.faults.iter().enumerate() {
        // Earlier windows (same length): a fault that strikes sooner needs fewer operations
        // before it for the failure to show.
        let start = fault.window.start_ms;
        for earlier in [0, start / 2] {
            if earlier < start {
                add(&|s: &mut Scenario| {
                    let window = &mut s.faults[index].window;
                    window.end_ms = window.end_ms.map(|end| end - (start - earlier));
                    window.start_ms = earlier;
                });
            }
        }
        if let Some(half) = fault
            .window
            .end_ms
            .and_then(|end| halved(end - fault.window.start_ms, 1))
        {
            add(&|s: &mut Scenario| {
                s.faults[index].window.end_ms = Some(s.faults[index].window.start_ms + half);
            });
        }
        // A shorter downtime: the crashed operation's own retries reach the restarted
        // process, instead of later operations.
        if let crate::fault::FaultKind::Crash(crash) = &fault.kind
            && crash.restart_after_ms > 50
        {
            let half = crash.restart_after_ms / 2;
            add(&|s: &mut Scenario| {
                if let crate::fault::FaultKind::Crash(crash) = &mut s.faults[index].kind {
                    crash.restart_after_ms = half;
                }
            });
        }
        if fault.probability < 1.0 {
            // Certain: a fault that strikes every time needs fewer operations to strike
            // the one that matters (it adds faulty events, so it is kept only when it
            // shortens the story, or when nothing else helps).
            add(&|s: &mut Scenario| {
                s.faults[index].probability = 1.0;
            });
            if fault.probability > 0.01 {
                add(&|s: &mut Scenario| {
                    s.faults[index].probability =
                        (s.faults[index].probability / 2.0 * 100.0).round() / 100.0;
                });
            }
        }
    }
    lower_settings(scenario, &mut add);
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
            add(off);
        }
    }
    if let Some(mix) = workload.mix.as_ref().or(default_mix) {
        let reads_off = Mix::new(mix.entries().map(|(name, weight)| {
            let weight = if name.starts_with("get_") { 0 } else { weight };
            (name.to_string(), weight)
        }));
        if &reads_off != mix && reads_off.total() > 0 {
            add(&|s: &mut Scenario| {
                s.workload.mix = Some(reads_off.clone());
            });
        }
    }
    out
}

/// The lower values a count of at least 1 is tried at: 1, then half of it, each once.
fn one_or_half(count: u32) -> Vec<u32> {
    let mut lower = vec![1, count / 2];
    lower.retain(|&value| value >= 1 && value < count);
    lower.dedup();
    lower
}

/// Lower counts and rates of the service and the webhooks: a smaller allowance is spent
/// by fewer operations, an event is dead-lettered after fewer sends, a page of one event
/// puts every event at a page boundary, and webhooks of one direction only leave the other
/// out of the story.
fn lower_settings(scenario: &Scenario, add: &mut impl FnMut(&dyn Fn(&mut Scenario))) {
    if let Some(limit) = scenario.service.rate_limit {
        if let Some(burst) = halved(u64::from(limit.burst), 1) {
            add(&|s: &mut Scenario| {
                if let Some(limit) = s.service.rate_limit.as_mut() {
                    limit.burst = u32::try_from(burst).expect("half of a u32");
                }
            });
        }
        if let Some(rate) = halved(u64::from(limit.per_second), 1) {
            add(&|s: &mut Scenario| {
                if let Some(limit) = s.service.rate_limit.as_mut() {
                    limit.per_second = u32::try_from(rate).expect("half of a u32");
                }
            });
        }
    }
    let Some(webhooks) = scenario.webhooks else {
        return;
    };
    for fewer in one_or_half(webhooks.sender.attempt_count_max) {
        add(&|s: &mut Scenario| {
            if let Some(w) = s.webhooks.as_mut() {
                w.sender.attempt_count_max = fewer;
            }
        });
    }
    if let Some(poll) = webhooks.poll_events {
        for fewer in one_or_half(poll.limit) {
            add(&|s: &mut Scenario| {
                if let Some(p) = s.webhooks.as_mut().and_then(|w| w.poll_events.as_mut()) {
                    p.limit = fewer;
                }
            });
        }
    }
    if webhooks.exception_percent > 0 {
        add(&|s: &mut Scenario| {
            if let Some(w) = s.webhooks.as_mut() {
                w.exception_percent = 0;
            }
        });
    }
    // One direction off (the feed needs outbound webhooks, so tracking is the one to drop
    // while it polls).
    if webhooks.tracking && webhooks.outbound {
        add(&|s: &mut Scenario| {
            if let Some(w) = s.webhooks.as_mut() {
                w.tracking = false;
            }
        });
        if webhooks.poll_events.is_none() {
            add(&|s: &mut Scenario| {
                if let Some(w) = s.webhooks.as_mut() {
                    w.outbound = false;
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(source: &str) -> Scenario {
        Scenario::parse("t.toml", "t", source).unwrap()
    }

    /// The candidates of `scenario` that pass `test`.
    fn offered(scenario: &Scenario, test: impl Fn(&Scenario) -> bool) -> usize {
        candidates(scenario, None)
            .iter()
            .filter(|c| test(c))
            .count()
    }

    #[test]
    fn candidates_are_valid_and_smaller() {
        // Proves every candidate round-trips through the scenario format (so it can be a
        // repro file) and differs from the original.
        let scenario = parse(
            r#"
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
"#,
        );
        let candidates = candidates(&scenario, None);
        assert!(candidates.len() >= 8, "{}", candidates.len());
        for candidate in &candidates {
            assert_ne!(candidate, &scenario);
            let text = candidate.to_toml();
            Scenario::parse("c.toml", "c", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        }
    }

    const SETTINGS: &str = r#"
[hosts]
clients = 1
[workload]
operations = 4
[service]
rate_limit = { burst = 9, per_second = 25 }
[webhooks]
tracking = true
outbound = true
exception_percent = 5
sender_attempts = 6
poll_events = { every_ms = 400, limit = 3 }
[[fault]]
kind = "webhook_duplicate"
direction = "outbound"
copies = 2
probability = 0.3
"#;

    #[test]
    fn a_smaller_service_allowance_is_a_candidate() {
        // Proves the rate-limit pass: an allowance spent by fewer operations (the adaptive
        // client's bug needs the allowance spent).
        let scenario = parse(SETTINGS);
        let limit = |s: &Scenario| s.service.rate_limit.expect("kept");
        assert_eq!(
            offered(&scenario, |s| limit(s).burst == 4
                && limit(s).per_second == 25),
            1
        );
        assert_eq!(
            offered(&scenario, |s| limit(s).burst == 9
                && limit(s).per_second == 12),
            1
        );
    }

    #[test]
    fn fewer_sender_attempts_and_smaller_pages_are_candidates() {
        // Proves the webhook passes: an event dead-lettered after one send, a feed page of
        // one event (every event at a page boundary), no exceptions, tracking off.
        let scenario = parse(SETTINGS);
        let webhooks = |s: &Scenario| s.webhooks.expect("kept");
        for attempts in [1, 3] {
            assert_eq!(
                offered(&scenario, |s| webhooks(s).sender.attempt_count_max
                    == attempts),
                1,
                "{attempts}"
            );
        }
        assert_eq!(
            offered(&scenario, |s| webhooks(s)
                .poll_events
                .is_some_and(|p| p.limit == 1)),
            1
        );
        assert_eq!(
            offered(&scenario, |s| webhooks(s).exception_percent == 0),
            1
        );
        assert_eq!(offered(&scenario, |s| !webhooks(s).tracking), 1);
        // The feed needs outbound webhooks: the poller's scenario keeps them.
        assert_eq!(offered(&scenario, |s| !webhooks(s).outbound), 0);
    }

    #[test]
    fn a_random_fault_made_certain_is_a_candidate() {
        // Proves the certainty pass: a fault with p < 1 is offered at p = 1 (beside the
        // halved probability).
        let scenario = parse(SETTINGS);
        let probability = |s: &Scenario| s.faults.first().map(|f| f.probability);
        assert_eq!(offered(&scenario, |s| probability(s) == Some(1.0)), 1);
        assert_eq!(offered(&scenario, |s| probability(s) == Some(0.15)), 1);
    }

    #[test]
    fn counts_are_tried_at_one_and_at_half_once_each() {
        // Proves the count pass offers each lower value once: a page limit of 3 is tried
        // at 1 alone (half of it is 1 too), one of 1 is not lowered.
        assert_eq!(one_or_half(6), vec![1, 3]);
        assert_eq!(one_or_half(3), vec![1]);
        assert_eq!(one_or_half(1), Vec::<u32>::new());
    }

    #[test]
    fn as_many_operations_is_level_not_smaller() {
        // Proves the two tiers of the search: fewer operations (or as many with fewer
        // events) is kept at once; as many operations with more events is only a level
        // step, kept when a round finds nothing smaller (a crash moved earlier needs as many
        // operations until the next step cuts them); more operations is never kept.
        assert_eq!(size_of((7, 900), (8, 100)), Size::Smaller);
        assert_eq!(size_of((8, 99), (8, 100)), Size::Smaller);
        assert_eq!(size_of((8, 100), (8, 100)), Size::Level);
        assert_eq!(size_of((8, 150), (8, 100)), Size::Level);
        assert_eq!(size_of((9, 10), (8, 100)), Size::Larger);
    }
}
