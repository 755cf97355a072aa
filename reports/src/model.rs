//! The report model: everything a run produced, in the shape every renderer reads.
//!
//! `sim` fills it; renderers only read it. Field names are part of the `summary.json`
//! contract (schema version [`SCHEMA_VERSION`]): add fields freely, never rename or remove
//! one without bumping the version; fields added within a version are `#[serde(default)]`
//! so that older files still read. `reports/SCHEMA.md` documents every field. Wall-clock
//! measurements live only in [`WallClock`], so two runs of the same seeds produce reports
//! that are equal once that block is cleared.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the `summary.json` schema. Bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// A whole run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`] of the writer.
    pub schema_version: u32,
    /// Name and version of the tool that wrote it (`shipsim 0.1.0`).
    pub tool: String,
    /// How the run was invoked.
    pub run: RunInfo,
    /// Sums over every scenario.
    pub totals: Totals,
    /// One entry per scenario, in the order they were given.
    pub scenarios: Vec<ScenarioReport>,
    /// Per planted bug and scenario, how many seeds it took an oracle to catch it. Filled
    /// by a bug hunt; empty for an ordinary run (and absent from reports written before it).
    #[serde(default)]
    pub bugs: Vec<BugDetection>,
}

impl Report {
    /// Whether this is a bug hunt's report: planted-bug detections and no scenario sweep.
    #[must_use]
    pub fn is_hunt(&self) -> bool {
        self.scenarios.is_empty() && !self.bugs.is_empty()
    }

    /// The verdict: every scenario met its expectation and every hunted bug was caught.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.totals.scenarios_failed == 0 && self.bugs_escaped() == 0
    }

    /// Hunted planted bugs that no seed caught.
    #[must_use]
    pub fn bugs_escaped(&self) -> usize {
        self.bugs
            .iter()
            .filter(|b| b.seeds_to_detect.is_none())
            .count()
    }
}

/// How the run was invoked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The seed selection (`1..50`, or `scenario defaults`).
    pub seeds: String,
    /// Planted bugs switched on.
    pub bugs: Vec<String>,
    /// `I/N` when this run was one shard of a sweep.
    pub shard: Option<String>,
    /// Whether each seed was run twice and its trace hashes compared.
    pub check_determinism: bool,
    /// Parallel workers.
    pub jobs: u32,
    /// Wall-clock measurements: the only non-deterministic part of a report.
    pub wall: WallClock,
}

/// Wall-clock measurements of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WallClock {
    /// Wall time of the whole run, ms.
    pub elapsed_ms: u64,
    /// Seeds (scenario, seed pairs) finished per wall second.
    pub seeds_per_second: f64,
    /// Simulated time divided by the wall time spent simulating it (summed over workers).
    pub sim_speedup: f64,
    /// Peak resident memory of the process, MiB (`VmHWM`; 0 where the OS does not say).
    #[serde(default)]
    pub peak_rss_mib: f64,
    /// Wall time spent simulating each scenario, summed over its seeds (and workers), ms,
    /// by scenario name: the `time` of its JUnit test case.
    #[serde(default)]
    pub scenario_busy_ms: BTreeMap<String, u64>,
}

/// Sums over every scenario of the run. Failure counts (seeds failed, violations,
/// duplicates, operations) leave out scenarios that are expected to fail (regression
/// proofs that pin planted bugs); `scenarios_failed` counts any scenario whose outcome
/// differs from its expectation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Scenarios run.
    pub scenarios: u64,
    /// Scenarios with at least one failing seed.
    pub scenarios_failed: u64,
    /// (scenario, seed) pairs run.
    pub seeds_run: u64,
    /// (scenario, seed) pairs with at least one violation.
    pub seeds_failed: u64,
    /// Violations found.
    pub violations: u64,
    /// Shipments beyond the first per (caller, idempotency key) or per logical operation.
    pub duplicate_shipments: u64,
    /// Labels beyond the first per shipment.
    pub duplicate_labels: u64,
    /// Logical operations issued by the workload.
    pub operations: u64,
    /// Operations whose outcome the client could not know.
    pub ambiguous_operations: u64,
    /// Simulated time, summed over seeds, ms.
    pub sim_ms: u64,
    /// See [`ScenarioReport::duplicate_deliveries_absorbed`].
    #[serde(default)]
    pub duplicate_deliveries_absorbed: u64,
    /// Times each dangerous moment was reached over the whole sweep, by name (moments
    /// never reached are left out); regression proofs are left out as for the other sums.
    #[serde(default)]
    pub moments: BTreeMap<String, u64>,
}

impl Totals {
    /// Sums `scenarios`: the totals of a report are always derived, never measured apart.
    #[must_use]
    pub fn of(scenarios: &[ScenarioReport]) -> Totals {
        let mut totals = Totals {
            scenarios: scenarios.len() as u64,
            ..Totals::default()
        };
        for scenario in scenarios {
            totals.scenarios_failed += u64::from(!scenario.passed);
            totals.seeds_run += scenario.seeds_run;
            totals.sim_ms += scenario.seeds.iter().map(|s| s.sim_ms).sum::<u64>();
            if scenario.expected_to_fail {
                // Regression proofs fail on purpose; their violations are not the system's.
                continue;
            }
            totals.seeds_failed += scenario.seeds_failed;
            totals.violations += scenario.oracles.iter().map(|o| o.violations).sum::<u64>();
            totals.duplicate_shipments += scenario.duplicate_shipments;
            totals.duplicate_labels += scenario.duplicate_labels;
            totals.operations += scenario.operations.total;
            totals.ambiguous_operations += scenario.operations.ambiguous;
            totals.duplicate_deliveries_absorbed += scenario.duplicate_deliveries_absorbed;
            for moment in scenario.moments.iter().filter(|m| m.reached > 0) {
                *totals.moments.entry(moment.name.clone()).or_insert(0) += moment.reached;
            }
        }
        totals
    }
}

/// One scenario over all its seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioReport {
    /// Scenario name.
    pub name: String,
    /// File it came from.
    pub path: String,
    /// What it exercises.
    pub description: String,
    /// No seed found a violation.
    pub passed: bool,
    /// Seeds run.
    pub seeds_run: u64,
    /// Seeds with a violation.
    pub seeds_failed: u64,
    /// Logical operations by outcome.
    pub operations: OperationCounts,
    /// HTTP attempts by outcome.
    pub requests: RequestCounts,
    /// Attempts beyond the first of each operation.
    pub retries: u64,
    /// Responses the service marked `Idempotent-Replayed`.
    pub idempotent_replays: u64,
    /// See [`Totals::duplicate_shipments`].
    pub duplicate_shipments: u64,
    /// See [`Totals::duplicate_labels`].
    pub duplicate_labels: u64,
    /// Repeated deliveries of a request the service absorbed without acting twice: answers
    /// replayed from a stored idempotent outcome plus `409` refusals of a key already in
    /// flight, as the service saw them (every phase, settle included; client retries and
    /// injected duplicate deliveries alike).
    #[serde(default)]
    pub duplicate_deliveries_absorbed: u64,
    /// The `409` in-flight refusals among [`Self::duplicate_deliveries_absorbed`].
    #[serde(default)]
    pub in_flight_conflicts: u64,
    /// End-to-end latency per endpoint (all attempts and waits), simulated ms.
    pub latency_ms: BTreeMap<String, LatencySummary>,
    /// Latency of single attempts per endpoint, simulated ms.
    pub attempt_latency_ms: BTreeMap<String, LatencySummary>,
    /// End-to-end latency per endpoint of the operations whose span overlapped a fault
    /// (a windowed fault between its start and end, or a per-request fault's instant),
    /// simulated ms. With [`Self::quiet_window_latency_ms`] it partitions `latency_ms`.
    #[serde(default)]
    pub fault_window_latency_ms: BTreeMap<String, LatencySummary>,
    /// End-to-end latency per endpoint of the operations that overlapped no fault,
    /// simulated ms.
    #[serde(default)]
    pub quiet_window_latency_ms: BTreeMap<String, LatencySummary>,
    /// Serialised HdrHistograms (V2, deflate, base64) keyed `<kind> <endpoint>`, `kind`
    /// one of [`crate::histogram::HistogramKind`]'s prefixes (`e2e`, `attempt`,
    /// `e2e_fault`, `e2e_quiet`): the exact data behind the summaries, for merging shards.
    pub histograms: BTreeMap<String, String>,
    /// Each fault of the scenario and how often it fired.
    pub faults: Vec<FaultReport>,
    /// Each oracle that ran and how many violations it found.
    pub oracles: Vec<OracleReport>,
    /// Latency budgets of the scenario and whether they held.
    pub budgets: Vec<BudgetReport>,
    /// The violations found (the first [`VIOLATIONS_KEPT_MAX`] in full).
    pub violations: Vec<ViolationReport>,
    /// One line per seed.
    pub seeds: Vec<SeedReport>,
    /// The scenario pins planted bugs (a promoted regression): it passes when every seed
    /// finds a violation, proving the oracles still catch those bugs.
    #[serde(default)]
    pub expected_to_fail: bool,
    /// Webhook traffic, for scenarios with webhooks.
    #[serde(default)]
    pub webhooks: Option<WebhookReport>,
    /// The first failing seed shrunk to the smallest case that still fails the same way;
    /// `None` when the scenario passed, expected to fail, or shrinking was switched off.
    #[serde(default)]
    pub shrunk: Option<ShrunkCase>,
    /// Every dangerous moment of the catalogue (`shipsim list --moments`) and how often the
    /// scenario's seeds reached it, in catalogue order; the ones the scenario requires
    /// (`reach = [...]`) are marked, and one never reached fails it (`reachability`).
    #[serde(default)]
    pub moments: Vec<MomentReport>,
}

/// One dangerous moment (a rule's boundary crossed) over a scenario's seeds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MomentReport {
    /// Its name (`retry_while_in_flight`).
    pub name: String,
    /// Times it was reached, over all seeds.
    pub reached: u64,
    /// Seeds that reached it at least once.
    pub seeds_reached: u64,
    /// Whether the scenario requires it (`reach = [...]`).
    pub required: bool,
}

/// A failing case shrunk to a minimal repro.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShrunkCase {
    /// The failing seed that was shrunk (the scenario's first failing seed).
    pub seed: u64,
    /// The seed the shrunk repro pins (the original or a neighbour: a smaller scenario
    /// reshuffles every random choice).
    pub shrunk_seed: u64,
    /// The oracle that still fails (`liveness` for a stuck run).
    pub caught_by: String,
    /// Operations of the original failing run.
    pub operations_before: u64,
    /// Operations of the shrunk failing run.
    pub operations_after: u64,
    /// `[[fault]]` entries of the scenario.
    pub faults_before: u64,
    /// `[[fault]]` entries of the shrunk repro.
    pub faults_after: u64,
    /// Simulation runs the shrink spent.
    pub shrink_runs: u64,
    /// The shrunk run's violation, with its timeline, repro path and replay command.
    pub violation: ViolationReport,
}

/// Webhook traffic of a scenario over all its seeds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookReport {
    /// Events delivered (2xx), carrier tracking and service outbox together.
    pub delivered: u64,
    /// Delivery attempts those took.
    pub attempts: u64,
    /// Deliveries the receivers acknowledged as duplicates without acting again.
    pub duplicates_absorbed: u64,
    /// Deliveries the receivers refused (bad signature, stale timestamp).
    pub rejected: u64,
    /// Events dead-lettered at least once (and redelivered after heal).
    pub dead_lettered: u64,
    /// Time from an event becoming due (carrier) or committed (service) to its delivery
    /// (carrier) or to the merchant acting on it (service), ms: keys `inbound`, `outbound`.
    pub latency_ms: BTreeMap<String, LatencySummary>,
}

/// How many violations a scenario report keeps in full; the counts stay exact.
pub const VIOLATIONS_KEPT_MAX: usize = 50;

/// Logical operations by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationCounts {
    /// All operations of the workload.
    pub total: u64,
    /// Succeeded.
    pub ok: u64,
    /// Definitively refused (4xx).
    pub failed: u64,
    /// Outcome unknown to the client when it gave up.
    pub ambiguous: u64,
    /// Ambiguous operations re-issued after the faults healed.
    pub resolved_after_heal: u64,
}

/// HTTP attempts by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    /// Attempts sent.
    pub total: u64,
    /// 2xx responses.
    #[serde(rename = "2xx")]
    pub s2xx: u64,
    /// 4xx responses other than 429.
    #[serde(rename = "4xx")]
    pub s4xx: u64,
    /// 5xx responses.
    #[serde(rename = "5xx")]
    pub s5xx: u64,
    /// 429 responses.
    #[serde(rename = "429")]
    pub s429: u64,
    /// Attempts that timed out.
    pub timeouts: u64,
    /// Attempts that failed in the transport (refused, reset, dropped).
    pub transport_errors: u64,
}

/// Percentiles of one latency histogram, ms.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

/// A fault of a scenario.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultReport {
    /// Position in the file (0-based `[[fault]]` index).
    pub index: u64,
    /// Fault kind.
    pub kind: String,
    /// One line saying what it does.
    pub description: String,
    /// Times it fired, over all seeds.
    pub fired: u64,
    /// Seeds in which it fired at least once.
    pub seeds_fired: u64,
    /// Line of its `[[fault]]` table in the scenario file (0 when unknown).
    #[serde(default)]
    pub line: u64,
}

/// An oracle that ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OracleReport {
    /// Oracle name.
    pub name: String,
    /// Violations it found over all seeds.
    pub violations: u64,
}

/// A latency budget check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetReport {
    /// Endpoint (`POST /v1/orders`).
    pub endpoint: String,
    /// Metric (`p95`).
    pub metric: String,
    /// The budget, ms.
    pub limit_ms: u64,
    /// What was measured over all seeds, ms.
    pub observed_ms: u64,
    /// Whether the budget held.
    pub passed: bool,
}

/// One violation, with what an engineer needs to understand and replay it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationReport {
    /// The oracle that found it.
    pub oracle: String,
    /// The seed.
    pub seed: u64,
    /// One sentence.
    pub message: String,
    /// Ids of the operations involved.
    pub operations: Vec<u64>,
    /// Facts that show it, one per line.
    pub evidence: Vec<String>,
    /// Faults active when the involved operations ran.
    pub faults_active: Vec<String>,
    /// The involved operations' story, in simulated time.
    pub timeline: Vec<TimelineEntry>,
    /// The repro file written for it, relative to the report directory.
    pub repro: Option<String>,
    /// A command that replays it.
    pub replay_command: String,
}

/// One line of a timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Simulated time, µs since the start of the run.
    pub at_us: u64,
    /// Host where it happened.
    pub host: String,
    /// What happened.
    pub what: String,
    /// What kind of thing happened, for drawing it.
    #[serde(default)]
    pub kind: TimelineKind,
    /// The operation it belongs to, if any.
    #[serde(default)]
    pub op: Option<u64>,
    /// The fault (0-based `[[fault]]` index) it belongs to, if any.
    #[serde(default)]
    pub fault: Option<u64>,
    /// When what it records ended, µs since the start of the run, for things that last
    /// (an attempt: from sent to answered or given up).
    #[serde(default)]
    pub until_us: Option<u64>,
}

/// What a [`TimelineEntry`] records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TimelineKind {
    /// A client started an operation.
    OpInvoked,
    /// A client finished an operation.
    OpCompleted,
    /// One HTTP attempt of an operation (a retry when not the first).
    Attempt,
    /// A fault fired (a window opened, or one request was hit).
    FaultFired,
    /// A windowed fault ended.
    FaultEnded,
    /// A host process was killed.
    Crash,
    /// A host process started again.
    Restart,
    /// Every fault was lifted; the settle phase began.
    Healed,
    /// The service or carrier reported something.
    System,
    /// Anything else, including kinds this build does not know.
    #[default]
    #[serde(other)]
    Other,
}

impl ScenarioReport {
    /// The endpoint a summary headlines, with its end-to-end latency: the reference
    /// service's shipment create when it has samples, else the create (a `POST`) with the
    /// most samples, else none.
    #[must_use]
    pub fn headline_latency(&self) -> Option<(&str, &LatencySummary)> {
        const PREFERRED: &str = "POST /v1/orders/{id}/shipments";
        if let Some(summary) = self.latency_ms.get(PREFERRED).filter(|l| l.count > 0) {
            return Some((PREFERRED, summary));
        }
        self.latency_ms
            .iter()
            .filter(|(route, l)| route.starts_with("POST ") && l.count > 0)
            .max_by(|a, b| a.1.count.cmp(&b.1.count).then_with(|| b.0.cmp(a.0)))
            .map(|(route, l)| (route.as_str(), l))
    }
}

/// One seed of a scenario.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// No violation.
    pub passed: bool,
    /// FNV-1a hash of the seed's event trace, 16 hex digits: equal across runs of the same
    /// scenario and seed, on any machine.
    pub trace_hash: String,
    /// Violations found.
    pub violations: u64,
    /// Logical operations run.
    pub operations: u64,
    /// Simulated time the seed took, ms.
    pub sim_ms: u64,
}

/// How quickly the oracles caught one planted bug in one scenario.
#[derive(Default, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BugDetection {
    /// Planted bug name (`shipsim list --bugs`).
    pub bug: String,
    /// Scenario it was hunted in.
    pub scenario: String,
    /// Seeds run up to and including the first that found a violation; `None` when no
    /// seed of the hunt found one.
    pub seeds_to_detect: Option<u64>,
    /// Seeds the hunt ran.
    pub seeds_run: u64,
    /// The oracle that caught it (`liveness` for a stuck run).
    #[serde(default)]
    pub caught_by: Option<String>,
    /// Operations of the catching run.
    #[serde(default)]
    pub operations_before: Option<u64>,
    /// Operations of the shrunk repro.
    #[serde(default)]
    pub operations_after: Option<u64>,
    /// Simulation runs the shrink took.
    #[serde(default)]
    pub shrink_runs: Option<u64>,
    /// The shrunk repro file, relative to the report directory.
    #[serde(default)]
    pub repro: Option<String>,
}

/// A webhook receiver judged by shipsim as its sender: the verdicts over every seed, in the
/// simulation (`shipsim::Receiver::run`) or live (`shipsim live-receiver`). Rendered to
/// `index.html`, `summary.md` and the terminal by [`crate::html::receiver`],
/// [`crate::markdown::receiver`] and [`crate::text::receiver`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiverReport {
    /// The receiver's name.
    pub receiver: String,
    /// `simulated` or `live`.
    pub mode: String,
    /// Where it was reached (live mode).
    #[serde(default)]
    pub target: Option<String>,
    /// The seeds, as given (`0..20`).
    pub seeds: String,
    /// Seeds run.
    pub seeds_run: u64,
    /// One row per verdict, in the verdicts' order, broken or not.
    pub verdicts: Vec<ReceiverVerdictReport>,
    /// Every verdict broken on every seed.
    pub failures: Vec<ReceiverFailureReport>,
    /// Latency of the receiver's answers to burst deliveries, ms: `p50`, `p95`, `p99`,
    /// `max`, `count` (none if no seed drew a burst).
    #[serde(default)]
    pub latency_ms_burst: Option<BTreeMap<String, u64>>,
    /// What the run could not do, in sentences (live: down windows not applied).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Why the run could not be completed or judged.
    #[serde(default)]
    pub problem: Option<String>,
}

impl ReceiverReport {
    /// Every verdict held on every seed and nothing stopped the run.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.problem.is_none() && self.failures.is_empty()
    }

    /// The burst latency as `[p50, p95, p99, max, count]`, if a seed drew a burst.
    #[must_use]
    pub fn burst(&self) -> Option<[u64; 5]> {
        let latency = self.latency_ms_burst.as_ref()?;
        Some(["p50", "p95", "p99", "max", "count"].map(|k| latency.get(k).copied().unwrap_or(0)))
    }
}

/// One verdict over the whole run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiverVerdictReport {
    /// Its name (`effect_once`).
    pub name: String,
    /// What it demands, in a sentence.
    pub description: String,
    /// Seeds on which it broke.
    pub seeds_failed: u64,
    /// The first of them.
    pub first_seed: Option<u64>,
}

/// One verdict broken on one seed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiverFailureReport {
    /// The verdict (`effect_once`).
    pub verdict: String,
    /// The seed.
    pub seed: u64,
    /// What was seen.
    pub evidence: Vec<String>,
    /// The shrunk repro file, when there is one (simulation).
    #[serde(default)]
    pub repro: Option<String>,
    /// The command that runs this case again.
    pub replay_command: String,
}

/// A live run (`shipsim live`, `shipsim demo`): a scenario's workload against a real URL,
/// judged by the simulation's oracles. Rendered to the terminal by [`crate::text::live`].
/// It has no determinism guarantee: its timings are wall-clock ones, and the same seed does
/// not give the same report twice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveReport {
    /// The scenario's name.
    pub scenario: String,
    /// The URL the workload was driven against.
    pub target: String,
    /// The workload seed (operations and fault decisions come from it).
    pub seed: u64,
    /// The run's namespace of idempotency keys.
    pub run_id: String,
    /// Workload operations by outcome.
    pub operations: OperationCounts,
    /// Attempts by outcome.
    pub requests: RequestCounts,
    /// Attempts beyond the first.
    pub retries: u64,
    /// Responses marked replayed.
    pub replays: u64,
    /// Wall time of the workload phase, ms.
    pub workload_ms: u64,
    /// Wall time of the whole run, ms.
    pub total_ms: u64,
    /// End-to-end latency of each endpoint that had a sample, in endpoint order.
    pub latency_ms: Vec<LiveLatency>,
    /// The fault proxies of the run, as they reported at the end.
    pub proxies: Vec<LiveProxy>,
    /// The scenario has HTTP faults but no proxy was found to apply them.
    pub http_faults_unapplied: bool,
    /// Faults of the scenario that no proxy can apply (`#index describe (line N)`).
    pub faults_not_applied: Vec<String>,
    /// How the final state was read, and what it held.
    pub state: LiveState,
    /// Resources beyond the first per (caller, key).
    pub duplicate_resources: u64,
    /// Downstream effects beyond the first per resource.
    pub duplicate_effects: u64,
    /// The oracles run, in order.
    pub oracles: Vec<LiveOracle>,
    /// The oracles not run, and why.
    pub oracles_skipped: Vec<LiveOracleSkipped>,
    /// What the oracles found.
    pub violations: Vec<LiveViolation>,
}

impl LiveReport {
    /// Whether every oracle that ran held.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// End-to-end latency of one endpoint in a live run, wall-clock ms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveLatency {
    /// Method and route template (`POST /v1/orders`).
    pub route: String,
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// Largest sample.
    pub max: u64,
}

/// A fault proxy of a live run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveProxy {
    /// The simulated host it stands for (`service`, `carrier`).
    pub host: String,
    /// Where it forwards.
    pub upstream: String,
    /// Its armed rules.
    pub rules: Vec<LiveRule>,
}

/// One armed rule of a fault proxy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRule {
    /// Index of the fault in the scenario.
    pub index: u64,
    /// What it does.
    pub describe: String,
    /// When, in ms from the start of the run.
    pub window: String,
    /// Times it fired.
    pub fired: u64,
}

/// How a live run's final state was read, and what it held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum LiveState {
    /// The service's whole store, through its admin endpoint.
    Admin {
        /// Orders in the store.
        orders: u64,
        /// Shipments in the store.
        shipments: u64,
        /// Labels in the carrier's ledger, when it could be read.
        labels: Option<u64>,
    },
    /// Public API reads of what the clients learned of: a service that is not ours.
    ApiReads {
        /// Orders read.
        orders: u64,
        /// Shipments read.
        shipments: u64,
        /// Labels in the carrier's ledger, when it could be read.
        labels: Option<u64>,
    },
    /// Every acknowledged resource read back through a described target's read routes.
    ReadBack {
        /// Read-backs made.
        reads: u64,
        /// The downstream ledgers read, in order.
        ledgers: Vec<LiveLedger>,
    },
}

/// A downstream ledger read after a live run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveLedger {
    /// The downstream's name.
    pub name: String,
    /// Effects it made.
    pub effects: u64,
}

/// An oracle run on a live run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveOracle {
    /// Its name (`exactly_once`).
    pub name: String,
    /// Violations it found.
    pub violations: u64,
    /// What it could not see, when it saw less than in the simulation.
    pub caveat: Option<String>,
}

/// An oracle a live run could not run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveOracleSkipped {
    /// Its name.
    pub name: String,
    /// Why not.
    pub reason: String,
}

/// A violation found in a live run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveViolation {
    /// The oracle that found it.
    pub oracle: String,
    /// The seed.
    pub seed: u64,
    /// One sentence.
    pub message: String,
    /// Ids of the operations involved, ascending, each once.
    pub operations: Vec<u64>,
    /// Facts that show it, one per line.
    pub evidence: Vec<String>,
}
