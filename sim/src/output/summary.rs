//! Turns a sweep and its triage into the report model, and writes the report directory.
//!
//! Building runs nothing and reads nothing outside its arguments: the failing seeds'
//! re-runs (for the operation timelines the report shows) and the shrunk cases come from
//! [`crate::many::triage`]. Each detailed failing seed gets a repro file: the scenario written
//! canonically with the seed and planted bugs pinned.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use shipsim_reports::histogram::{HistogramKind, encode, summarize};
use shipsim_reports::judge::{self, DETERMINISM, FAULT_COVERAGE, LIVENESS};
use shipsim_reports::model::{
    BudgetReport, BugDetection, FaultReport, LatencySummary, MomentReport, OracleReport, Report,
    RunInfo, SCHEMA_VERSION, ScenarioReport, SeedReport, ShrunkCase, TimelineEntry, TimelineKind,
    Totals, VIOLATIONS_KEPT_MAX, ViolationReport, WallClock,
};

use crate::many::shrink::{Goal, Shrunk};
use crate::many::sweep::{ScenarioOutcome, SeedOutcome, SweepOptions, SweepOutcome};
use crate::many::triage::{ScenarioTriage, ShrunkFailure, Triaged};
use crate::oracle::{OracleKind, Violation};
use crate::output::stats::Latencies;
use crate::run::history::{EventKind, OpId};
use crate::run::runner::SeedRun;
use crate::scenario::Scenario;

pub use crate::many::triage::REPRO_SEEDS_MAX;
/// Timeline entries kept per violation.
const TIMELINE_ENTRIES_MAX: usize = 200;

/// A repro file to write: path relative to the report directory, and contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReproFile {
    /// `repro/<scenario>-seed<N>.toml`
    pub relative_path: String,
    /// The scenario file.
    pub contents: String,
}

/// Builds the report of `outcome` and its `triaged` failures, and the repro files of its
/// failures, which will be written under `out_dir`. `peak_rss_mib` is the process's peak
/// memory (`crate::output::wall::peak_rss_mib`), measured by the caller: it lands only in the
/// report's wall-clock block.
///
/// # Panics
/// If `triaged` is not the triage of `outcome` (one entry per scenario).
#[must_use]
pub fn build(
    outcome: &SweepOutcome,
    triaged: &Triaged,
    options: &SweepOptions,
    seeds_label: &str,
    out_dir: &Path,
    peak_rss_mib: f64,
) -> (Report, Vec<ReproFile>) {
    assert_eq!(
        outcome.scenarios.len(),
        triaged.scenarios.len(),
        "the triage is of this sweep: one entry per scenario"
    );
    let mut repros = Vec::new();
    let mut scenarios = Vec::new();
    for (scenario_outcome, triage) in outcome.scenarios.iter().zip(&triaged.scenarios) {
        scenarios.push(scenario_report(
            scenario_outcome,
            triage,
            options,
            out_dir,
            &mut repros,
        ));
    }
    // The shrunk cases' repro files come after every scenario's own, as they always have.
    for ((scenario_outcome, triage), report) in outcome
        .scenarios
        .iter()
        .zip(&triaged.scenarios)
        .zip(&mut scenarios)
    {
        if let Some(failure) = &triage.shrunk {
            report.shrunk = Some(shrunk_case(
                &scenario_outcome.scenario,
                failure,
                options,
                out_dir,
                &mut repros,
            ));
        }
    }
    let totals = Totals::of(&scenarios);
    let wall_s = (outcome.wall_ms as f64 / 1_000.0).max(1e-9);
    let busy_s = (outcome.busy_ns as f64 / 1e9).max(1e-9);
    let report = Report {
        schema_version: SCHEMA_VERSION,
        tool: format!("shipsim {}", env!("CARGO_PKG_VERSION")),
        run: RunInfo {
            seeds: seeds_label.to_string(),
            bugs: options.bugs.iter().map(|b| b.name().to_string()).collect(),
            shard: options.shard.map(|s| s.to_string()),
            check_determinism: options.check_determinism,
            jobs: u32::try_from(options.jobs).unwrap_or(u32::MAX),
            wall: WallClock {
                elapsed_ms: outcome.wall_ms,
                seeds_per_second: round2(totals.seeds_run as f64 / wall_s),
                sim_speedup: round2(totals.sim_ms as f64 / 1_000.0 / busy_s),
                peak_rss_mib,
                scenario_busy_ms: outcome
                    .scenarios
                    .iter()
                    .map(|s| {
                        let busy_ns: u64 = s.seeds.iter().map(|seed| seed.wall_ns).sum();
                        (s.scenario.name.clone(), busy_ns / 1_000_000)
                    })
                    .collect(),
            },
        },
        totals,
        scenarios,
        bugs: Vec::new(),
    };
    (report, repros)
}

/// The report of a shrunk failure of `scenario`, its repro file
/// `repro/<scenario>-seed<N>-min.toml` pushed onto `repros`.
fn shrunk_case(
    scenario: &Scenario,
    failure: &ShrunkFailure,
    options: &SweepOptions,
    out_dir: &Path,
    repros: &mut Vec<ReproFile>,
) -> ShrunkCase {
    let ShrunkFailure { seed, goal, shrunk } = failure;
    let (seed, target) = (*seed, *goal);
    let relative_path = format!("repro/{}-seed{seed}-min.toml", file_safe(&scenario.name));
    let replay = options
        .replay
        .command(&out_dir.join(&relative_path).display().to_string());
    let violation = shrunk_violation(shrunk, target, &relative_path, &replay);
    let mut contents = String::new();
    let _ = writeln!(
        contents,
        "# shipsim repro of scenario `{}` ({}), seed {seed} shrunk (to seed {}) from {} to {} operations and {} to {} faults in {} runs",
        scenario.name,
        scenario.path,
        shrunk.seed,
        shrunk.operations_before,
        shrunk.operations_after,
        scenario.faults.len(),
        shrunk.scenario.faults.len(),
        shrunk.runs
    );
    let _ = writeln!(contents, "# [{}] {}", violation.oracle, violation.message);
    let _ = writeln!(
        contents,
        "# Replays exactly: {}\n",
        options.replay.command("<this file>")
    );
    contents.push_str(&shrunk.scenario.to_toml());
    repros.push(ReproFile {
        relative_path,
        contents,
    });
    ShrunkCase {
        seed,
        shrunk_seed: shrunk.seed,
        caught_by: target.name().to_string(),
        operations_before: shrunk.operations_before as u64,
        operations_after: shrunk.operations_after as u64,
        faults_before: scenario.faults.len() as u64,
        faults_after: shrunk.scenario.faults.len() as u64,
        shrink_runs: shrunk.runs as u64,
        violation,
    }
}

/// The shrunk run's violation of `target`, with the timeline of its operations.
fn shrunk_violation(shrunk: &Shrunk, target: Goal, repro: &str, replay: &str) -> ViolationReport {
    let found = match target {
        Goal::Oracle(oracle) => shrunk.run.violations.iter().find(|v| v.oracle == oracle),
        Goal::Stuck => None,
    };
    match found {
        Some(violation) => violation_report(
            &shrunk.scenario,
            violation,
            Some(&shrunk.run),
            Some(repro.to_string()),
            replay,
        ),
        None => {
            let message = shrunk.run.stuck.clone().unwrap_or_default();
            let (timeline, faults_active) = timeline(&shrunk.scenario, &shrunk.run, &[]);
            ViolationReport {
                faults_active,
                timeline,
                ..run_violation(
                    LIVENESS,
                    shrunk.seed,
                    &message,
                    Some(repro.to_string()),
                    replay,
                )
            }
        }
    }
}

/// The report of a bug hunt: no scenario sweep, one [`BugDetection`] per hunted bug.
/// `peak_rss_mib` as for [`build`].
#[must_use]
pub fn hunt(
    bugs: Vec<BugDetection>,
    seeds_label: &str,
    jobs: usize,
    wall_ms: u64,
    peak_rss_mib: f64,
) -> Report {
    Report {
        schema_version: SCHEMA_VERSION,
        tool: format!("shipsim {}", env!("CARGO_PKG_VERSION")),
        run: RunInfo {
            seeds: seeds_label.to_string(),
            bugs: bugs.iter().map(|b| b.bug.clone()).collect(),
            shard: None,
            check_determinism: false,
            jobs: u32::try_from(jobs).unwrap_or(u32::MAX),
            wall: WallClock {
                elapsed_ms: wall_ms,
                // A hunt stops each bug at its first catch: no sweep rate to speak of.
                seeds_per_second: 0.0,
                sim_speedup: 0.0,
                peak_rss_mib,
                scenario_busy_ms: BTreeMap::new(),
            },
        },
        totals: Totals::default(),
        scenarios: Vec::new(),
        bugs,
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The violations of one scenario, and how many each oracle found: the oracles the
/// scenario runs first, in its order, then the others as they first appear.
struct Findings {
    violations: Vec<ViolationReport>,
    oracles: Vec<OracleReport>,
}

impl Findings {
    fn new(scenario: &Scenario) -> Self {
        Findings {
            violations: Vec::new(),
            oracles: scenario
                .oracles
                .iter()
                .map(|o| OracleReport {
                    name: o.name().to_string(),
                    violations: 0,
                })
                .collect(),
        }
    }

    fn count(&mut self, name: &str) {
        if let Some(entry) = self.oracles.iter_mut().find(|o| o.name == name) {
            entry.violations += 1;
        } else {
            self.oracles.push(OracleReport {
                name: name.to_string(),
                violations: 1,
            });
        }
    }

    /// A seed's violation: counted, and kept while fewer than [`VIOLATIONS_KEPT_MAX`] are.
    fn seed_violation(&mut self, name: &str, report: impl FnOnce() -> ViolationReport) {
        self.count(name);
        if self.violations.len() < VIOLATIONS_KEPT_MAX {
            self.violations.push(report());
        }
    }

    /// A judgement over the whole scenario: counted and always kept.
    fn scenario_violation(&mut self, name: &str, report: ViolationReport) {
        self.count(name);
        self.violations.push(report);
    }
}

/// What the judgements over a whole sweep of a scenario need to say where to look.
struct SweepSpan<'a> {
    path: &'a str,
    seeds_run: u64,
    first_seed: u64,
    /// Whether this report judges the whole sweep: a shard sees only some of the seeds, so
    /// it leaves coverage and reachability to `shipsim merge`, which sees them all.
    judges_coverage: bool,
}

fn scenario_report(
    outcome: &ScenarioOutcome,
    triage: &ScenarioTriage,
    options: &SweepOptions,
    out_dir: &Path,
    repros: &mut Vec<ReproFile>,
) -> ScenarioReport {
    let scenario = &outcome.scenario;
    let mut findings = Findings::new(scenario);
    let seeds_failed = seed_findings(&mut findings, outcome, triage, options, out_dir, repros);
    let seeds_run = outcome.seeds.len() as u64;
    let span = SweepSpan {
        path: &scenario.path,
        seeds_run,
        first_seed: outcome.seeds.first().map_or(0, |s| s.seed),
        judges_coverage: options.shard.is_none() && seeds_run > 0,
    };
    let faults = fault_reports(&mut findings, outcome, &span);
    let moments = moment_reports(&mut findings, outcome, &span);
    let budgets = budget_reports(&mut findings, outcome, &span);
    let Findings {
        violations,
        oracles: oracle_counts,
    } = findings;
    let stats = &outcome.stats;
    let mut histograms = BTreeMap::new();
    let latency_ms = summaries(&stats.e2e, HistogramKind::E2e, &mut histograms);
    let attempt_latency_ms = summaries(&stats.attempts, HistogramKind::Attempt, &mut histograms);
    let fault_window_latency_ms =
        summaries(&stats.e2e_fault, HistogramKind::E2eFault, &mut histograms);
    let quiet_window_latency_ms =
        summaries(&stats.e2e_quiet, HistogramKind::E2eQuiet, &mut histograms);
    if let Some(webhooks) = &stats.webhooks {
        for (direction, histogram) in [
            ("inbound", &webhooks.inbound),
            ("outbound", &webhooks.outbound),
        ] {
            if let Ok(text) = encode(histogram) {
                histograms.insert(format!("webhook {direction}"), text);
            }
        }
    }

    let expected_to_fail = !scenario.bugs.is_empty();
    let passed = if expected_to_fail {
        seeds_failed == outcome.seeds.len() as u64
    } else {
        seeds_failed == 0 && oracle_counts.iter().all(|o| o.violations == 0)
    };
    ScenarioReport {
        name: scenario.name.clone(),
        path: scenario.path.clone(),
        description: scenario.description.clone(),
        passed,
        seeds_run: outcome.seeds.len() as u64,
        seeds_failed,
        operations: outcome.stats.counts.operations.clone(),
        requests: outcome.stats.counts.requests.clone(),
        retries: outcome.stats.counts.retries,
        idempotent_replays: outcome.stats.counts.replays,
        duplicate_shipments: outcome.seeds.iter().map(|s| s.duplicates.shipments).sum(),
        duplicate_labels: outcome.seeds.iter().map(|s| s.duplicates.labels).sum(),
        duplicate_deliveries_absorbed: outcome.stats.counts.duplicate_deliveries_absorbed(),
        in_flight_conflicts: outcome.stats.counts.in_flight_conflicts,
        latency_ms,
        attempt_latency_ms,
        fault_window_latency_ms,
        quiet_window_latency_ms,
        histograms,
        faults,
        oracles: oracle_counts,
        budgets,
        violations,
        seeds: outcome
            .seeds
            .iter()
            .map(|s| SeedReport {
                seed: s.seed,
                passed: s.passed(),
                trace_hash: format!("{:016x}", s.trace_hash),
                violations: s.violations.len() as u64
                    + u64::from(s.stuck.is_some())
                    + u64::from(s.nondeterminism.is_some()),
                operations: s.stats.counts.operations.total,
                sim_ms: s.sim_ms,
            })
            .collect(),
        expected_to_fail,
        webhooks: outcome.stats.webhooks.as_ref().map(|w| {
            let mut latency_ms = std::collections::BTreeMap::new();
            latency_ms.insert("inbound".to_string(), summarize(&w.inbound));
            latency_ms.insert("outbound".to_string(), summarize(&w.outbound));
            shipsim_reports::model::WebhookReport {
                delivered: w.counts.delivered,
                attempts: w.counts.attempts,
                duplicates_absorbed: w.counts.duplicates_absorbed,
                rejected: w.counts.rejected,
                dead_lettered: w.counts.dead_lettered,
                latency_ms,
            }
        }),
        shrunk: None,
        moments,
    }
}

/// Every failing seed's violations, detailed (timeline, repro file) for the first
/// [`REPRO_SEEDS_MAX`], which the triage re-ran. Returns how many seeds failed.
fn seed_findings(
    findings: &mut Findings,
    outcome: &ScenarioOutcome,
    triage: &ScenarioTriage,
    options: &SweepOptions,
    out_dir: &Path,
    repros: &mut Vec<ReproFile>,
) -> u64 {
    let scenario = &outcome.scenario;
    let failing: Vec<&SeedOutcome> = outcome.seeds.iter().filter(|s| !s.passed()).collect();
    for (position, seed) in failing.iter().enumerate() {
        let detailed = position < REPRO_SEEDS_MAX;
        let rerun = triage.reruns.get(&seed.seed);
        assert_eq!(
            rerun.is_some(),
            detailed,
            "the triage re-ran exactly the first REPRO_SEEDS_MAX failing seeds"
        );
        let repro = detailed.then(|| {
            let file = repro_file(scenario, seed, options);
            let path = file.relative_path.clone();
            repros.push(file);
            path
        });
        let replay = repro.as_ref().map_or_else(
            || {
                format!(
                    "shipsim run {} --seed {}{}",
                    scenario.path,
                    seed.seed,
                    bug_flags(options)
                )
            },
            |path| {
                options
                    .replay
                    .command(&out_dir.join(path).display().to_string())
            },
        );
        for violation in &seed.violations {
            findings.seed_violation(violation.oracle.name(), || {
                violation_report(scenario, violation, rerun, repro.clone(), &replay)
            });
        }
        for (pseudo, message) in [(LIVENESS, &seed.stuck), (DETERMINISM, &seed.nondeterminism)] {
            if let Some(message) = message {
                findings.seed_violation(pseudo, || {
                    run_violation(pseudo, seed.seed, message, repro.clone(), &replay)
                });
            }
        }
    }
    failing.len() as u64
}

/// How often each fault fired; a fault that never fired is a coverage violation.
fn fault_reports(
    findings: &mut Findings,
    outcome: &ScenarioOutcome,
    span: &SweepSpan<'_>,
) -> Vec<FaultReport> {
    let faults: Vec<FaultReport> = outcome
        .scenario
        .faults
        .iter()
        .map(|spec| {
            let (fired, seeds_fired) = outcome.fired(spec.index);
            FaultReport {
                index: spec.index as u64,
                kind: spec.kind.name().to_string(),
                description: spec.describe(),
                fired,
                seeds_fired,
                line: spec.line as u64,
            }
        })
        .collect();
    if span.judges_coverage {
        for fault in faults.iter().filter(|f| f.fired == 0) {
            findings.scenario_violation(
                FAULT_COVERAGE,
                judge::fault_never_fired(span.path, fault, span.seeds_run, span.first_seed),
            );
        }
    }
    faults
}

/// How often each moment was reached; a required moment never reached is a violation
/// (judged over the whole sweep, like coverage).
fn moment_reports(
    findings: &mut Findings,
    outcome: &ScenarioOutcome,
    span: &SweepSpan<'_>,
) -> Vec<MomentReport> {
    let moments: Vec<MomentReport> = crate::reach::Moment::ALL
        .iter()
        .map(|moment| {
            let (reached, seeds_reached) = outcome.reached(*moment);
            MomentReport {
                name: moment.name().to_string(),
                reached,
                seeds_reached,
                required: outcome.scenario.reach.contains(moment),
            }
        })
        .collect();
    if span.judges_coverage {
        for moment in moments.iter().filter(|m| m.required && m.reached == 0) {
            findings.scenario_violation(
                judge::REACHABILITY,
                judge::moment_never_reached(span.path, moment, span.seeds_run, span.first_seed),
            );
        }
    }
    moments
}

/// Each latency budget against what the sweep observed; one exceeded is a violation when
/// the scenario runs the latency-budget oracle.
fn budget_reports(
    findings: &mut Findings,
    outcome: &ScenarioOutcome,
    span: &SweepSpan<'_>,
) -> Vec<BudgetReport> {
    let scenario = &outcome.scenario;
    let mut budgets = Vec::new();
    for (endpoint, budget) in &scenario.budgets {
        let summary = summarize(outcome.stats.e2e.get_route(endpoint));
        for (metric, limit) in budget.limits() {
            let observed = judge::budget_observed_ms(metric, &summary);
            let report = BudgetReport {
                endpoint: endpoint.clone(),
                metric: metric.to_string(),
                limit_ms: limit,
                observed_ms: observed,
                passed: observed <= limit,
            };
            if !report.passed && scenario.oracles.contains(&OracleKind::LatencyBudget) {
                findings.scenario_violation(
                    OracleKind::LatencyBudget.name(),
                    judge::budget_exceeded(
                        span.path,
                        &report,
                        summary.count,
                        span.seeds_run,
                        span.first_seed,
                    ),
                );
            }
            budgets.push(report);
        }
    }
    budgets
}

/// Summaries of `histograms` keyed by route; each histogram's encoding goes into
/// `encoded` under its `kind`'s key.
fn summaries(
    histograms: &Latencies,
    kind: HistogramKind,
    encoded: &mut BTreeMap<String, String>,
) -> BTreeMap<String, LatencySummary> {
    let mut out = BTreeMap::new();
    for (endpoint, histogram) in histograms.all() {
        out.insert(endpoint.route().to_string(), summarize(histogram));
        if let Ok(text) = encode(histogram) {
            encoded.insert(kind.key(endpoint.route()), text);
        }
    }
    out
}

fn bug_flags(options: &SweepOptions) -> String {
    options
        .bugs
        .iter()
        .map(|b| format!(" --bug {}", b.name()))
        .collect()
}

fn repro_file(scenario: &Scenario, seed: &SeedOutcome, options: &SweepOptions) -> ReproFile {
    let mut pinned = scenario.clone();
    pinned.seed = Some(seed.seed);
    pinned.trace_hash = Some(seed.trace_hash);
    pinned.bugs = scenario.bugs_with(&options.bugs);
    let mut contents = String::new();
    let _ = writeln!(
        contents,
        "# shipsim repro of scenario `{}` ({}), seed {}",
        scenario.name, scenario.path, seed.seed
    );
    for violation in seed.violations.iter().take(3) {
        let _ = writeln!(contents, "# {violation}");
    }
    if let Some(stuck) = &seed.stuck {
        let _ = writeln!(contents, "# {LIVENESS}: {stuck}");
    }
    let _ = writeln!(
        contents,
        "# Replays exactly: {}\n",
        options.replay.command("<this file>")
    );
    contents.push_str(&pinned.to_toml());
    ReproFile {
        relative_path: format!("repro/{}-seed{}.toml", file_safe(&scenario.name), seed.seed),
        contents,
    }
}

pub(crate) fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A violation of a whole run rather than of an oracle over operations (liveness: the run
/// got stuck; determinism: it did not replay): its message's first line, the rest as
/// evidence, no operations and no timeline.
fn run_violation(
    pseudo_oracle: &str,
    seed: u64,
    message: &str,
    repro: Option<String>,
    replay: &str,
) -> ViolationReport {
    ViolationReport {
        oracle: pseudo_oracle.to_string(),
        seed,
        message: message.lines().next().unwrap_or_default().to_string(),
        operations: Vec::new(),
        evidence: message
            .lines()
            .skip(1)
            .map(|l| l.trim().to_string())
            .collect(),
        faults_active: Vec::new(),
        timeline: Vec::new(),
        repro,
        replay_command: replay.to_string(),
    }
}

fn violation_report(
    scenario: &Scenario,
    violation: &Violation,
    run: Option<&SeedRun>,
    repro: Option<String>,
    replay: &str,
) -> ViolationReport {
    let (timeline, faults_active) = run.map_or_else(
        || (Vec::new(), Vec::new()),
        |run| timeline(scenario, run, &violation.operations),
    );
    ViolationReport {
        oracle: violation.oracle.name().to_string(),
        seed: violation.seed,
        message: violation.message.clone(),
        operations: violation
            .operations
            .iter()
            .map(|&op| u64::from(op))
            .collect(),
        evidence: violation.evidence.clone(),
        faults_active,
        timeline,
        repro,
        replay_command: replay.to_string(),
    }
}

/// The story of `ops` in `run`: their attempts and outcomes, and the faults, crashes and
/// system events during their lifetime. Also the faults that fired in that span.
#[must_use]
pub fn timeline(
    scenario: &Scenario,
    run: &SeedRun,
    ops: &[OpId],
) -> (Vec<TimelineEntry>, Vec<String>) {
    let involved: BTreeSet<OpId> = ops.iter().copied().collect();
    let operations: Vec<_> = run
        .history
        .operations()
        .iter()
        .filter(|op| involved.is_empty() || involved.contains(&op.id))
        .collect();
    let start = operations
        .iter()
        .map(|op| op.invoked_at_us)
        .min()
        .unwrap_or(0);
    let end = operations
        .iter()
        .map(|op| op.completed_at_us)
        .max()
        .unwrap_or(u64::MAX);
    let mut entries = Vec::new();
    let mut faults = BTreeSet::new();
    for event in run.trace.events() {
        let in_span = event.at_us >= start && event.at_us <= end;
        let described = match &event.kind {
            EventKind::OpInvoked { op, kind, key } if involved.contains(op) => Some((
                TimelineKind::OpInvoked,
                Some(u64::from(*op)),
                None,
                format!(
                    "op {op} {} invoked{}",
                    kind.name(),
                    key.as_ref().map_or(String::new(), |k| format!(" key={k}"))
                ),
            )),
            EventKind::OpCompleted {
                op,
                outcome,
                attempts,
            } if involved.contains(op) => Some((
                TimelineKind::OpCompleted,
                Some(u64::from(*op)),
                None,
                format!(
                    "op {op} -> {outcome} after attempts [{}]",
                    attempts.join(", ")
                ),
            )),
            EventKind::FaultFired { fault, detail } if in_span => {
                faults.insert(*fault);
                Some((
                    TimelineKind::FaultFired,
                    None,
                    Some(*fault as u64),
                    format!("fault #{fault} fired: {detail}"),
                ))
            }
            EventKind::FaultEnded { fault } if in_span => Some((
                TimelineKind::FaultEnded,
                None,
                Some(*fault as u64),
                format!("fault #{fault} ended"),
            )),
            EventKind::HostCrashed { transactions_lost } if in_span => Some((
                TimelineKind::Crash,
                None,
                None,
                format!("CRASH ({transactions_lost} unflushed transaction(s) lost)"),
            )),
            EventKind::HostRestarted { boot } if in_span => Some((
                TimelineKind::Restart,
                None,
                None,
                format!("restarted (boot {boot})"),
            )),
            EventKind::Healed => Some((
                TimelineKind::Healed,
                None,
                None,
                "faults healed; settle phase".to_string(),
            )),
            EventKind::System(system) if in_span => {
                Some((TimelineKind::System, None, None, format!("{system:?}")))
            }
            _ => None,
        };
        if let Some((kind, op, fault, what)) = described {
            entries.push(TimelineEntry {
                at_us: event.at_us,
                host: event.host.clone(),
                what,
                kind,
                op,
                fault,
                until_us: None,
            });
        }
    }
    for op in &operations {
        for attempt in &op.attempts {
            entries.push(TimelineEntry {
                at_us: op.invoked_at_us + attempt.sent_at_ms * 1_000,
                host: op.client.clone(),
                what: format!(
                    "op {} attempt {} -> {} (waited {} ms)",
                    op.id,
                    attempt.index + 1,
                    attempt.outcome.label(),
                    attempt.waited_ms
                ),
                kind: TimelineKind::Attempt,
                op: Some(u64::from(op.id)),
                fault: None,
                until_us: Some(op.invoked_at_us + attempt.ended_at_ms * 1_000),
            });
        }
    }
    entries.sort_by_key(|e| e.at_us);
    entries.truncate(TIMELINE_ENTRIES_MAX);
    let faults_active = faults
        .into_iter()
        .filter_map(|index| {
            scenario
                .faults
                .get(index)
                .map(|f| format!("#{index} {}", f.describe()))
        })
        .collect();
    (entries, faults_active)
}

/// Writes the repro files under `dir/repro/`, clearing earlier ones: the paths written.
///
/// # Errors
/// When a file cannot be written, naming it.
pub fn write_repros(dir: &Path, repros: &[ReproFile]) -> anyhow::Result<Vec<PathBuf>> {
    use anyhow::Context;
    let repro_dir = dir.join("repro");
    if repro_dir.exists() {
        std::fs::remove_dir_all(&repro_dir)
            .with_context(|| format!("cannot clear {}", repro_dir.display()))?;
    }
    let mut written = Vec::new();
    for repro in repros {
        let path = dir.join(&repro.relative_path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, &repro.contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Writes the report directory: `summary.json`, `index.html`, `junit.xml`, `summary.md`,
/// one `<endpoint-slug>.hlog` per endpoint, and the repro files under `repro/`. Repro and
/// interval-log files of an earlier report in `dir` are removed first, so that the
/// directory describes this report only.
///
/// # Errors
/// When a file cannot be rendered or written, naming it.
pub fn write(dir: &Path, report: &Report, repros: &[ReproFile]) -> anyhow::Result<Vec<PathBuf>> {
    use anyhow::Context;
    use shipsim_reports::{hlog, html, json, junit, markdown};
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create report directory {}", dir.display()))?;
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list report directory {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list report directory {}", dir.display()))?
            .path();
        if path.is_file() && path.extension().is_some_and(|e| e == "hlog") {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove stale {}", path.display()))?;
        }
    }
    let mut written = write_repros(dir, repros)?;
    let mut files = vec![
        (
            "summary.json".to_string(),
            json::render(report).context("cannot render summary.json")?,
        ),
        (
            "index.html".to_string(),
            html::render(report).context("cannot render index.html")?,
        ),
        (
            "junit.xml".to_string(),
            junit::render(report).context("cannot render junit.xml")?,
        ),
        (
            "summary.md".to_string(),
            markdown::render(report).context("cannot render summary.md")?,
        ),
    ];
    for file in hlog::render_all(report).context("cannot render the .hlog interval logs")? {
        files.push((file.file_name, file.contents));
    }
    for (name, contents) in files {
        let path = dir.join(name);
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Reads a `summary.json`.
///
/// # Errors
/// When the file cannot be read, is not JSON of a report, or has another schema version;
/// the message names the file.
pub fn read(path: &Path) -> anyhow::Result<Report> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    shipsim_reports::json::parse(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a shipsim summary.json: {e}", path.display()))
}

/// Merges the `summary.json` of every shard in `shards` into the report of the whole
/// sweep, to be written under `out_dir`: the shards' repro files are carried over (read
/// from `repro/` beside each `summary.json`) and replay commands point at their new place.
///
/// # Errors
/// When a shard cannot be read or the shards are not those of one sweep
/// ([`shipsim_reports::merge::MergeError`]), naming the file.
pub fn merge(out_dir: &Path, shards: &[PathBuf]) -> anyhow::Result<(Report, Vec<ReproFile>)> {
    let mut inputs = Vec::with_capacity(shards.len());
    let mut sources: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in shards {
        let report = read(path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for scenario in &report.scenarios {
            let shrunk = scenario.shrunk.iter().map(|s| &s.violation);
            for violation in scenario.violations.iter().chain(shrunk) {
                if let Some(relative) = &violation.repro {
                    sources
                        .entry(relative.clone())
                        .or_insert_with(|| dir.join(relative));
                }
            }
        }
        inputs.push((path.display().to_string(), report));
    }
    let mut report = shipsim_reports::merge::merge(&inputs)?;
    let flags: String = report
        .run
        .bugs
        .iter()
        .map(|b| format!(" --bug {b}"))
        .collect();
    let mut repros: BTreeMap<String, ReproFile> = BTreeMap::new();
    for scenario in &mut report.scenarios {
        for violation in &mut scenario.violations {
            let Some(relative) = violation.repro.clone() else {
                continue;
            };
            let contents = sources
                .get(&relative)
                .and_then(|source| std::fs::read_to_string(source).ok());
            if let Some(contents) = contents {
                violation.replay_command =
                    format!("shipsim replay {}", out_dir.join(&relative).display());
                repros.insert(
                    relative.clone(),
                    ReproFile {
                        relative_path: relative,
                        contents,
                    },
                );
            } else {
                eprintln!(
                    "warning: repro file {relative} of scenario {} seed {} is missing beside its shard's summary.json; the merged report replays it with `shipsim run`",
                    scenario.name, violation.seed
                );
                violation.repro = None;
                violation.replay_command = format!(
                    "shipsim run {} --seed {}{flags}",
                    scenario.path, violation.seed
                );
            }
        }
        // A minimal repro is its file: without it there is nothing to replay.
        let shrunk_file = scenario.shrunk.as_ref().and_then(|shrunk| {
            let relative = shrunk.violation.repro.clone()?;
            let contents = std::fs::read_to_string(sources.get(&relative)?).ok()?;
            Some((relative, contents))
        });
        match (shrunk_file, scenario.shrunk.as_mut()) {
            (Some((relative, contents)), Some(shrunk)) => {
                shrunk.violation.replay_command =
                    format!("shipsim replay {}", out_dir.join(&relative).display());
                repros.insert(
                    relative.clone(),
                    ReproFile {
                        relative_path: relative,
                        contents,
                    },
                );
            }
            (None, Some(_)) => {
                eprintln!(
                    "warning: the minimal repro of scenario {} is missing beside its shard's summary.json; the merged report leaves it out",
                    scenario.name
                );
                scenario.shrunk = None;
            }
            _ => {}
        }
    }
    Ok((report, repros.into_values().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_oracle_name_matches_the_reports_judgement() {
        // Proves the oracle name a run counts budget violations under is the one a merge
        // of shards re-judges them under, so both count the same entry.
        assert_eq!(OracleKind::LatencyBudget.name(), judge::LATENCY_BUDGET);
    }
}
