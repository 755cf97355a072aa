//! Sweeps: many (scenario, seed) pairs, run in parallel, sharded across machines, merged
//! into per-scenario results in a fixed order whatever the number of jobs.
//!
//! Failing seeds are not kept in memory: a seed replays exactly, so the report re-runs the
//! few failures it shows in full.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use shipsim_system::bugs::BugSet;
use shipsim_system::seed::Fnv64;

use crate::oracle::{Duplicates, Violation};
use crate::output::stats::{SeedStats, Stats};
use crate::output::wall::Stopwatch;
use crate::run::runner::{SeedRun, run_seed};
use crate::scenario::{Scenario, SeedRange};

/// One of N shards of a sweep, 1-based (`--shard 2/4`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, 1..=count.
    pub index: u32,
    /// How many shards.
    pub count: u32,
}

impl Shard {
    /// Parses `I/N`.
    ///
    /// # Errors
    /// A sentence when the text is not `I/N` with 1 <= I <= N.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (index, count) = text
            .split_once('/')
            .ok_or_else(|| format!("bad shard `{text}`: write I/N, e.g. 2/4"))?;
        let index: u32 = index
            .trim()
            .parse()
            .map_err(|_| format!("bad shard `{text}`: `{index}` is not a number"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("bad shard `{text}`: `{count}` is not a number"))?;
        if count == 0 || index == 0 || index > count {
            return Err(format!("bad shard `{text}`: need 1 <= I <= N"));
        }
        Ok(Shard { index, count })
    }

    /// Parses `I/N`, or `auto`: the shard this process is in a CI matrix or a Kubernetes
    /// Indexed Job, read from the environment (see [`Shard::from_env`]).
    ///
    /// # Errors
    /// As [`Shard::parse`], or when `auto` finds no shard in the environment.
    pub fn parse_or_auto(text: &str) -> Result<Shard, String> {
        if text.trim() == "auto" {
            Shard::from_env(|name| std::env::var(name).ok())
        } else {
            Shard::parse(text)
        }
    }

    /// The shard named by the environment `var` reads, tried in this order:
    ///
    /// | variables | set by | index |
    /// |---|---|---|
    /// | `SHIPSIM_SHARD` = `I/N` | you | 1-based |
    /// | `SHIPSIM_SHARD_INDEX`, `SHIPSIM_SHARD_COUNT` | you (GitHub Actions: `${{ strategy.job-index }}`, `${{ strategy.job-total }}`) | 0-based |
    /// | `JOB_COMPLETION_INDEX`, `SHIPSIM_SHARD_COUNT` | a Kubernetes Indexed Job (the count is the Job's `completions`, passed in the pod's env) | 0-based |
    /// | `CI_NODE_INDEX`, `CI_NODE_TOTAL` | GitLab CI `parallel:` | 1-based |
    /// | `CIRCLE_NODE_INDEX`, `CIRCLE_NODE_TOTAL` | CircleCI `parallelism:` | 0-based |
    /// | `BUILDKITE_PARALLEL_JOB`, `BUILDKITE_PARALLEL_JOB_COUNT` | Buildkite `parallelism:` | 0-based |
    ///
    /// # Errors
    /// A sentence naming the variables when none is set, one is not a number, or the index
    /// is outside the count.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
        if let Some(text) = var("SHIPSIM_SHARD") {
            return Shard::parse(&text).map_err(|e| format!("SHIPSIM_SHARD: {e}"));
        }
        const PAIRS: [(&str, &str, u32); 5] = [
            ("SHIPSIM_SHARD_INDEX", "SHIPSIM_SHARD_COUNT", 0),
            ("JOB_COMPLETION_INDEX", "SHIPSIM_SHARD_COUNT", 0),
            ("CI_NODE_INDEX", "CI_NODE_TOTAL", 1),
            ("CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL", 0),
            ("BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT", 0),
        ];
        for (index_var, count_var, base) in PAIRS {
            let Some(index_text) = var(index_var) else {
                continue;
            };
            let Some(count_text) = var(count_var) else {
                return Err(format!(
                    "--shard auto: {index_var} is set but {count_var} is not (set it to the number of shards)"
                ));
            };
            let number = |name: &str, text: &str| {
                text.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("--shard auto: {name}=`{text}` is not a number"))
            };
            let index = number(index_var, &index_text)?;
            let count = number(count_var, &count_text)?;
            let one_based = index
                .checked_add(1 - base)
                .ok_or_else(|| format!("--shard auto: {index_var}={index} is too large"))?;
            if count == 0 || one_based == 0 || one_based > count {
                return Err(format!(
                    "--shard auto: {index_var}={index} is not a shard of {count_var}={count} ({} to {})",
                    base,
                    count.saturating_sub(1) + base
                ));
            }
            return Ok(Shard {
                index: one_based,
                count,
            });
        }
        Err("--shard auto: no shard in the environment: set SHIPSIM_SHARD=I/N, or SHIPSIM_SHARD_INDEX and SHIPSIM_SHARD_COUNT, or run in a Kubernetes Indexed Job (JOB_COMPLETION_INDEX) or a GitLab, CircleCI or Buildkite parallel job".to_string())
    }

    /// Whether the pair (scenario `name`, `seed`) belongs to this shard. Assignment hashes
    /// the pair, so it does not change when other scenarios are added or removed.
    #[must_use]
    pub fn owns(&self, name: &str, seed: u64) -> bool {
        let mut hash = Fnv64::new();
        hash.write(name.as_bytes());
        hash.write(&seed.to_le_bytes());
        hash.finish() % u64::from(self.count) == u64::from(self.index - 1)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Nothing.
    Quiet,
    /// A bar on stderr if it is a terminal, plain lines otherwise.
    Auto,
}

/// What to sweep and how.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// The system under test.
    pub target: crate::target::Target,
    /// Seeds for every scenario; `None` uses each scenario's own (or its pinned seed).
    pub seeds: Option<SeedRange>,
    /// Worker threads.
    pub jobs: usize,
    /// Only this shard's pairs.
    pub shard: Option<Shard>,
    /// Planted bugs to switch on.
    pub bugs: BugSet,
    /// Run each seed twice and compare trace hashes.
    pub check_determinism: bool,
    /// Progress display.
    pub progress: Progress,
    /// How a failing case is replayed, for the commands reports print.
    pub replay: Replay,
}

/// How a repro file is replayed: with the `shipsim` command (the reference system), or by
/// running the user's test again with `SHIPSIM_REPLAY` pointing at the file (a target that
/// lives in the user's crate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Replay {
    /// `shipsim replay FILE`.
    Cli,
    /// `SHIPSIM_REPLAY=FILE` in front of this command (`cargo test --test chaos payments`).
    Test(String),
}

impl Replay {
    /// The command that replays the repro file at `path`.
    #[must_use]
    pub fn command(&self, path: &str) -> String {
        match self {
            Replay::Cli => format!("shipsim replay {path}"),
            Replay::Test(command) => format!("SHIPSIM_REPLAY={path} {command}"),
        }
    }
}

/// What one seed produced, reduced to what the report needs.
#[derive(Clone, Debug)]
pub struct SeedOutcome {
    /// The seed.
    pub seed: u64,
    /// Hash of its trace.
    pub trace_hash: u64,
    /// Oracle violations.
    pub violations: Vec<Violation>,
    /// Set when the run could not finish.
    pub stuck: Option<String>,
    /// Set when a second run of the seed diverged from the first.
    pub nondeterminism: Option<String>,
    /// Times each fault fired.
    pub fired: BTreeMap<usize, u64>,
    /// Duplicates in the final state.
    pub duplicates: Duplicates,
    /// Simulated time, ms.
    pub sim_ms: u64,
    /// Measurements.
    pub stats: SeedStats,
    /// Wall time spent simulating, ns (not part of any deterministic output).
    pub wall_ns: u64,
    /// How often it reached each dangerous moment (those reached only).
    pub reached: BTreeMap<crate::reach::Moment, u64>,
}

impl SeedOutcome {
    /// Whether the seed passed.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.violations.is_empty() && self.stuck.is_none() && self.nondeterminism.is_none()
    }

    fn from_run(run: &SeedRun, wall_ns: u64) -> Self {
        SeedOutcome {
            seed: run.seed,
            trace_hash: run.trace.hash(),
            violations: run.violations.clone(),
            stuck: run.stuck.clone(),
            nondeterminism: None,
            fired: run.fired.clone(),
            duplicates: run.duplicates,
            sim_ms: run.sim_ms,
            stats: {
                let mut stats = SeedStats::of(&run.history, &run.trace, &run.endpoints);
                stats.webhooks = run
                    .webhooks
                    .as_ref()
                    .map(|view| crate::output::stats::WebhookStats::of(view, &run.trace));
                stats
            },
            wall_ns,
            reached: run.reached.clone(),
        }
    }
}

/// One scenario's seeds, in seed order.
#[derive(Clone, Debug)]
pub struct ScenarioOutcome {
    /// The scenario.
    pub scenario: Arc<Scenario>,
    /// Its seeds, sorted.
    pub seeds: Vec<SeedOutcome>,
    /// Measurements over all its seeds.
    pub stats: Stats,
}

impl ScenarioOutcome {
    /// Times `moment` was reached, and in how many seeds.
    #[must_use]
    pub fn reached(&self, moment: crate::reach::Moment) -> (u64, u64) {
        let counts = self
            .seeds
            .iter()
            .map(|s| s.reached.get(&moment).copied().unwrap_or(0));
        let total = counts.clone().sum();
        let seeds = counts.filter(|n| *n > 0).count() as u64;
        (total, seeds)
    }

    /// Times fault `index` fired, and in how many seeds.
    #[must_use]
    pub fn fired(&self, index: usize) -> (u64, u64) {
        let total = self
            .seeds
            .iter()
            .map(|s| s.fired.get(&index).copied().unwrap_or(0))
            .sum();
        let seeds = self
            .seeds
            .iter()
            .filter(|s| s.fired.get(&index).copied().unwrap_or(0) > 0)
            .count();
        (total, seeds as u64)
    }
}

/// A whole sweep.
#[derive(Clone, Debug)]
pub struct SweepOutcome {
    /// One entry per scenario, in the order given.
    pub scenarios: Vec<ScenarioOutcome>,
    /// Wall time of the sweep, ms.
    pub wall_ms: u64,
    /// Wall time spent inside simulations, summed over workers, ns.
    pub busy_ns: u64,
}

/// The seeds a scenario runs under `options`: a repro or regression file's pinned seed
/// always (it is about that seed), else the command line's, else the scenario's own.
#[must_use]
pub fn seeds_for(scenario: &Scenario, options: &SweepOptions) -> Vec<u64> {
    let range = match (scenario.seed, options.seeds) {
        (Some(pinned), _) => SeedRange::single(pinned),
        (None, Some(range)) => range,
        (None, None) => scenario.seeds,
    };
    range
        .iter()
        .filter(|seed| {
            options
                .shard
                .is_none_or(|shard| shard.owns(&scenario.name, *seed))
        })
        .collect()
}

/// Runs one seed of a scenario (twice when checking determinism).
#[must_use]
pub fn run_one(scenario: &Scenario, seed: u64, options: &SweepOptions) -> SeedOutcome {
    let bugs = scenario.bugs_with(&options.bugs);
    let watch = Stopwatch::start();
    let run = run_seed(&options.target, scenario, seed, &bugs);
    let mut outcome = SeedOutcome::from_run(&run, watch.elapsed_ns());
    if options.check_determinism {
        let again = run_seed(&options.target, scenario, seed, &bugs);
        if again.trace.hash() != run.trace.hash() {
            outcome.nondeterminism = Some(describe_divergence(&run, &again));
        }
    }
    outcome
}

fn describe_divergence(first: &SeedRun, second: &SeedRun) -> String {
    let index = first.trace.first_divergence(&second.trace).unwrap_or(0);
    let show = |run: &SeedRun| {
        run.trace
            .events()
            .get(index)
            .map_or_else(|| "(trace ended)".to_string(), ToString::to_string)
    };
    format!(
        "seed {} did not replay: traces {:016x} and {:016x} first differ at event {index}\n  run 1: {}\n  run 2: {}",
        first.seed,
        first.trace.hash(),
        second.trace.hash(),
        show(first),
        show(second)
    )
}

/// Runs every (scenario, seed) pair of the sweep.
#[must_use]
pub fn sweep(scenarios: &[Scenario], options: &SweepOptions) -> SweepOutcome {
    let watch = Stopwatch::start();
    let scenarios: Vec<Arc<Scenario>> = scenarios.iter().cloned().map(Arc::new).collect();
    let pairs: Vec<(usize, u64)> = scenarios
        .iter()
        .enumerate()
        .flat_map(|(index, scenario)| {
            seeds_for(scenario, options)
                .into_iter()
                .map(move |seed| (index, seed))
        })
        .collect();
    let total = pairs.len();
    // Progress counts work (operations and burst events), not seeds, so that a sweep of
    // one heavy scenario and many light ones shows how far along it really is.
    let work: Vec<u64> = scenarios.iter().map(|s| s.cost().work().max(1)).collect();
    let total_work = pairs
        .iter()
        .map(|&(scenario, _)| work[scenario])
        .fold(0, u64::saturating_add);
    let progress = ProgressView::new(options.progress, total, total_work);
    let mut collected: Vec<(usize, SeedOutcome)> = Vec::with_capacity(total);
    // Each seed's raw latency samples are folded into its scenario's histograms as the seed
    // arrives and then dropped, so memory grows with concurrent seeds, not with the sweep.
    // Histogram addition commutes, so arrival order cannot change a report.
    let mut per_scenario: Vec<ScenarioOutcome> = scenarios
        .iter()
        .map(|scenario| ScenarioOutcome {
            scenario: scenario.clone(),
            seeds: Vec::new(),
            stats: Stats::default(),
        })
        .collect();
    let mut failed = 0;
    pool(
        &pairs,
        options.jobs,
        |&(scenario, seed)| run_one(&scenarios[scenario], seed, options),
        |index, mut outcome| {
            let scenario = pairs[index].0;
            if !outcome.passed() {
                failed += 1;
            }
            per_scenario[scenario].stats.add(&outcome.stats);
            outcome.stats.drop_samples();
            collected.push((scenario, outcome));
            progress.advance(work[scenario], failed);
        },
    );
    progress.finish();

    collected.sort_by_key(|(scenario, outcome)| (*scenario, outcome.seed));
    let busy_ns = collected.iter().map(|(_, o)| o.wall_ns).sum();
    for (scenario, outcome) in collected {
        per_scenario[scenario].seeds.push(outcome);
    }
    SweepOutcome {
        scenarios: per_scenario,
        wall_ms: watch.elapsed_ns() / 1_000_000,
        busy_ns,
    }
}

/// The sweep's worker pool: runs `work` on every item on up to `jobs` threads, each taking
/// the next item as it finishes one, and hands each result, with its item's index, to
/// `take` on the calling thread as it arrives (in no particular order: callers that need
/// one sort by index).
pub(crate) fn pool<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&T) -> R + Sync,
    mut take: impl FnMut(usize, R),
) {
    let next = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel::<(usize, R)>();
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1).min(items.len().max(1)) {
            let sender = sender.clone();
            let next = &next;
            let work = &work;
            scope.spawn(move || {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else {
                        break;
                    };
                    if sender.send((index, work(item))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        for (index, result) in receiver {
            take(index, result);
        }
    });
}

/// Progress on stderr: a bar on a terminal, a line per 10% otherwise. Both measure work
/// ([`crate::scenario::Cost::work`]), so a heavy scenario's seeds move it further.
struct ProgressView {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    total_work: u64,
    /// Seeds done, work done, and the last tenth of the work printed (plain lines).
    done: std::sync::Mutex<(usize, u64, u64)>,
    enabled: bool,
}

impl ProgressView {
    fn new(mode: Progress, total: usize, total_work: u64) -> Self {
        let enabled = mode == Progress::Auto && total > 1;
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total_work);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:40}] {percent:>3}% of the work  {msg}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar
        });
        ProgressView {
            bar,
            total,
            total_work: total_work.max(1),
            done: std::sync::Mutex::new((0, 0, 0)),
            enabled,
        }
    }

    fn advance(&self, work: u64, failed: usize) {
        if !self.enabled {
            return;
        }
        let mut done = self.done.lock().expect("progress lock poisoned");
        done.0 += 1;
        done.1 = done.1.saturating_add(work);
        let (seeds, work_done) = (done.0, done.1);
        let seeds_text = format!("{seeds}/{} seeds, {failed} failed", self.total);
        if let Some(bar) = &self.bar {
            bar.set_position(work_done);
            bar.set_message(seeds_text);
            return;
        }
        // Work is at most a few hundred million per seed times ten million seeds: u128
        // holds the product.
        let percent = u64::try_from(u128::from(work_done) * 100 / u128::from(self.total_work))
            .expect("work done never exceeds the total");
        let tenth = percent / 10;
        if tenth > done.2 || seeds == self.total {
            done.2 = tenth;
            eprintln!("[{percent:>3}%] {seeds_text}");
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_pairs() {
        // Proves every (scenario, seed) pair belongs to exactly one of N shards, and that
        // shards are roughly even.
        let shards: Vec<Shard> = (1..=4).map(|i| Shard { index: i, count: 4 }).collect();
        let mut sizes = [0u32; 4];
        for seed in 0..1_000 {
            for name in ["a", "b"] {
                let owners: Vec<usize> = (0..4).filter(|&i| shards[i].owns(name, seed)).collect();
                assert_eq!(owners.len(), 1, "pair ({name}, {seed}) owned by {owners:?}");
                sizes[owners[0]] += 1;
            }
        }
        for size in sizes {
            assert!((400..=600).contains(&size), "uneven shards: {sizes:?}");
        }
    }

    #[test]
    fn auto_reads_each_ci_and_kubernetes() {
        // Proves `--shard auto` reads every documented source with its own index base, that
        // an explicit SHIPSIM_SHARD wins, and that a missing count, a non-number, an index
        // outside the count and an empty environment are refused with the variable's name.
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_string())
            }
        };
        let shard = |index, count| Ok(Shard { index, count });
        assert_eq!(
            Shard::from_env(env(&[("SHIPSIM_SHARD", "2/4")])),
            shard(2, 4)
        );
        assert_eq!(
            Shard::from_env(env(&[
                ("SHIPSIM_SHARD_INDEX", "0"),
                ("SHIPSIM_SHARD_COUNT", "4")
            ])),
            shard(1, 4)
        );
        assert_eq!(
            Shard::from_env(env(&[
                ("JOB_COMPLETION_INDEX", "3"),
                ("SHIPSIM_SHARD_COUNT", "4")
            ])),
            shard(4, 4)
        );
        assert_eq!(
            Shard::from_env(env(&[("CI_NODE_INDEX", "1"), ("CI_NODE_TOTAL", "4")])),
            shard(1, 4)
        );
        assert_eq!(
            Shard::from_env(env(&[
                ("CIRCLE_NODE_INDEX", "2"),
                ("CIRCLE_NODE_TOTAL", "3")
            ])),
            shard(3, 3)
        );
        assert_eq!(
            Shard::from_env(env(&[
                ("BUILDKITE_PARALLEL_JOB", "0"),
                ("BUILDKITE_PARALLEL_JOB_COUNT", "2")
            ])),
            shard(1, 2)
        );
        assert_eq!(
            Shard::from_env(env(&[
                ("SHIPSIM_SHARD", "1/2"),
                ("CI_NODE_INDEX", "2"),
                ("CI_NODE_TOTAL", "2")
            ])),
            shard(1, 2)
        );
        let refused = |result: Result<Shard, String>, needle: &str| {
            let error = result.expect_err("refused");
            assert!(error.contains(needle), "{error}");
        };
        refused(
            Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "1")])),
            "SHIPSIM_SHARD_COUNT is not",
        );
        refused(
            Shard::from_env(env(&[("CI_NODE_INDEX", "x"), ("CI_NODE_TOTAL", "4")])),
            "CI_NODE_INDEX=`x`",
        );
        refused(
            Shard::from_env(env(&[("CI_NODE_INDEX", "0"), ("CI_NODE_TOTAL", "4")])),
            "(1 to 4)",
        );
        refused(
            Shard::from_env(env(&[
                ("CIRCLE_NODE_INDEX", "3"),
                ("CIRCLE_NODE_TOTAL", "3"),
            ])),
            "(0 to 2)",
        );
        refused(Shard::from_env(env(&[])), "no shard in the environment");
        refused(
            Shard::from_env(env(&[("SHIPSIM_SHARD", "5/4")])),
            "SHIPSIM_SHARD",
        );
    }

    #[test]
    fn shard_syntax_is_checked() {
        // Proves bad shard specifications are refused with a reason.
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert!(Shard::parse("0/4").is_err());
        assert!(Shard::parse("5/4").is_err());
        assert!(Shard::parse("2-4").is_err());
        assert!(Shard::parse("a/4").is_err());
    }
}
