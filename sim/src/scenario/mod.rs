//! Scenarios: the unit of the regression corpus, written as TOML files (format reference in
//! `scenarios/README.md`).
//!
//! Parsing is strict: unknown keys, wrong types and impossible values are refused with the
//! file, line, column and a hint, before anything runs. [`Scenario::to_toml`] writes a
//! scenario back in canonical form, which is how repro files are made.

mod cost;
pub(crate) mod error;
pub mod limits;
pub(crate) mod raw;
mod seeds;
mod validate;
mod write;

use std::collections::BTreeMap;
use std::path::Path;

use shipsim_system::bugs::BugSet;
use shipsim_system::client::{Breaker, RetryBudget, RetryPolicy};
use shipsim_system::service::RateLimit;

pub use cost::Cost;
pub use error::ScenarioError;
pub use seeds::{SEEDS_MAX, SeedRange};
pub(crate) use write::quote as write_quote;

use crate::fault::FaultSpec;
use crate::oracle::OracleKind;
use crate::reach::Moment;
use raw::RawScenario;
use validate::validate;

/// A validated scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Name (the file stem unless given).
    pub name: String,
    /// What it exercises.
    pub description: String,
    /// File it was read from (`<inline>` for scenarios built in code).
    pub path: String,
    /// Seeds run when the command line does not choose.
    pub seeds: SeedRange,
    /// A pinned seed (repro files): replay runs exactly this one.
    pub seed: Option<u64>,
    /// The trace hash the pinned seed must reproduce (repro files).
    pub trace_hash: Option<u64>,
    /// Planted bugs switched on by the file itself (repro files).
    pub bugs: BugSet,
    /// Simulation settings.
    pub run: RunSettings,
    /// Host counts.
    pub hosts: HostSettings,
    /// What the clients do.
    pub workload: WorkloadSettings,
    /// The merchant client's retry policy.
    pub client: RetryPolicy,
    /// The service's settings.
    pub service: ServiceSettings,
    /// Webhook traffic; `None` when the scenario has no `[webhooks]` table.
    pub webhooks: Option<WebhookSettings>,
    /// An API key rotation of every caller mid-run; `None` (no `[credentials]` table): each
    /// caller keeps its one key.
    pub credentials: Option<CredentialSettings>,
    /// Faults, in file order.
    pub faults: Vec<FaultSpec>,
    /// Oracles that judge each seed, in catalogue order.
    pub oracles: Vec<OracleKind>,
    /// Moments the sweep must reach at least once (`reach = [...]`), in catalogue order: a
    /// sweep that never reached one fails (`reachability`), as a fault that never fired does.
    pub reach: Vec<Moment>,
    /// Latency budgets per endpoint (method and route template, `POST /v1/orders`).
    pub budgets: BTreeMap<String, Budget>,
}

/// `[run]`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunSettings {
    /// Simulated time per step, ms.
    pub tick_ms: u64,
    /// Network latency range of every link, ms.
    pub latency_ms: (u64, u64),
    /// Simulated time after which a run is declared stuck, ms.
    pub time_limit_ms: u64,
}

/// `[hosts]`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostSettings {
    /// Client hosts.
    pub clients: u32,
    /// Distinct merchants; clients are assigned round-robin.
    pub callers: u32,
}

/// `[workload]`
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadSettings {
    /// Logical operations per client.
    pub operations: u32,
    /// Pause between operations, drawn uniformly, ms.
    pub think_ms: (u64, u64),
    /// Relative weights of the target's operations; `None`: the target's defaults.
    pub mix: Option<Mix>,
    /// Chance a shipment create is sent twice at once with one key (a double click).
    pub double_submit: f64,
    /// Chance a write carries its key in the body instead of the header.
    pub key_in_body: f64,
    /// Chance an order ships to a country the carrier refuses.
    pub unserviceable: f64,
    /// Chance a shipment create reuses an earlier key with a different body (a client bug
    /// the service must refuse with 422).
    pub reuse_key_with_other_body: f64,
    /// Chance a create's key is stretched to the target's documented key-length limit
    /// ([`crate::Conventions::key_len_max`]): half of those exactly at the limit (a key the
    /// target must accept like any other), half one character past it (a misbehaving caller
    /// the target must refuse with 400, with no effect). No effect on a target that documents
    /// no limit.
    pub keys_at_length_limit: f64,
}

/// Relative weights of the target's operations by name (`create_order = 2`); an operation
/// the mix does not name has weight 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mix(BTreeMap<String, u32>);

impl Mix {
    /// A mix of `entries`.
    #[must_use]
    pub fn new<S: Into<String>>(entries: impl IntoIterator<Item = (S, u32)>) -> Mix {
        Mix(entries.into_iter().map(|(n, w)| (n.into(), w)).collect())
    }

    /// The weight of operation `name`.
    #[must_use]
    pub fn weight(&self, name: &str) -> u32 {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// Sets the weight of operation `name`.
    pub fn set(&mut self, name: &str, weight: u32) {
        self.0.insert(name.to_string(), weight);
    }

    /// Sum of the weights.
    ///
    /// # Panics
    /// When the sum overflows `u32`, which parsing rules out: each weight is at most
    /// [`limits::MIX_WEIGHT_MAX`], and four of them fit (checked at compile time there).
    #[must_use]
    pub fn total(&self) -> u32 {
        self.0.values().fold(0u32, |sum, w| sum.saturating_add(*w))
    }

    /// Every (operation, weight), by name.
    pub fn entries(&self) -> impl Iterator<Item = (&str, u32)> {
        self.0.iter().map(|(n, w)| (n.as_str(), *w))
    }
}

/// What a scenario may name, from the target it runs against: its operations (for `mix`),
/// its endpoints (for `[budgets]`) and its hosts (for faults).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Topology {
    /// Operation names, in table order (`create_order`, ..., `get_shipment`).
    pub operations: Vec<String>,
    /// Endpoint routes, in endpoint order (`POST /v1/orders`, ...).
    pub routes: Vec<String>,
    /// Server host names besides `service` (`carrier`, `receiver`).
    pub hosts: Vec<String>,
}

impl Topology {
    /// The reference system's: orders and shipments, the carrier and the receiver.
    #[must_use]
    pub fn reference() -> Topology {
        crate::reference::target()
            .topology()
            .expect("the reference target is valid")
    }
}

/// `[service]`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceSettings {
    /// Per-caller rate limit, if any.
    pub rate_limit: Option<RateLimit>,
    /// Store round trip range, ms.
    pub store_latency_ms: (u64, u64),
    /// How the service retries the carrier.
    pub carrier: RetryPolicy,
    /// In-progress lock lease, ms.
    pub lock_lease_ms: u64,
    /// Where the service keeps its tables.
    pub store: ServiceStore,
    /// How long a completed key is remembered, ms; `None`: the service's default (the
    /// README's 24 h).
    pub idempotency_retention_ms: Option<u64>,
    /// Idempotency records the service's sweeper deletes per transaction; `None`: the
    /// service's own (the README's 1,000).
    pub idempotency_sweep_batch: Option<u64>,
    /// After the settle, a misbehaving caller probes the service: an unknown route, valid
    /// and invalid `X-Request-Id`s, a header key and a body key that disagree, a key reused
    /// with another body (the `service_probes` oracle judges the answers).
    pub probe_misuse: bool,
    /// After the settle, a caller replays a shipment just inside the retention and, when the
    /// retention is short enough to wait out, reuses its key after it expired and after a
    /// sweep interval (with a burst of more records than one sweep transaction deletes).
    pub probe_retention: bool,
}

/// `[service] store`: the store the reference service keeps its tables in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ServiceStore {
    /// `"memory"` (the default): the simulated durable store, which models durability itself
    /// (a lazy commit is lost unless the simulated OS flushed it before the crash).
    #[default]
    Memory,
    /// `"sqlite"`: the SQLite store the service ships with (its tables, SQL and schema), on
    /// an in-memory database kept outside the host, so a crash keeps exactly what SQLite
    /// committed.
    Sqlite,
}

impl ServiceStore {
    /// Every store, in the order `shipsim list` and the errors name them.
    pub const ALL: [ServiceStore; 2] = [ServiceStore::Memory, ServiceStore::Sqlite];

    /// The name a scenario file spells it with.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ServiceStore::Memory => "memory",
            ServiceStore::Sqlite => "sqlite",
        }
    }
}

impl Default for ServiceSettings {
    /// What a scenario without a `[service]` table gets.
    fn default() -> Self {
        ServiceSettings {
            rate_limit: None,
            store_latency_ms: (1, 3),
            carrier: RetryPolicy {
                timeout_ms_per_attempt: 500,
                deadline_ms: 2_000,
                attempt_count_max: 3,
                backoff_ms_base: 50,
                backoff_ms_max: 400,
                budget: None,
                breaker: None,
                rate_limit: None,
            },
            lock_lease_ms: shipsim_system::service::LOCK_LEASE_MS_DEFAULT,
            store: ServiceStore::Memory,
            idempotency_retention_ms: None,
            idempotency_sweep_batch: None,
            probe_misuse: false,
            probe_retention: false,
        }
    }
}

/// `[credentials]`: every caller rotates its API key. The service holds each caller's old
/// and new key from the start (the new one issued); clients start operations with the new
/// key from `rotate_keys_at_ms` by their own clock; the old key is refused from
/// `retire_old_keys_at_ms` by the service's clock. Operations started earlier keep the old
/// key for all their attempts, as a client that read its key at the start of a call does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CredentialSettings {
    /// When clients move to the new key, ms of simulated time.
    pub rotate_keys_at_ms: u64,
    /// When the old key is retired, ms of simulated time.
    pub retire_old_keys_at_ms: u64,
    /// A webhook signing secret rotation of every merchant, when the table asks for one.
    pub secrets: Option<SecretRotationSettings>,
}

/// `[credentials] rotate_secrets_at_ms / receiver_switches_at_ms / retire_old_secrets_at_ms`:
/// every merchant's webhook signing secret rotates. The service signs each delivery with
/// the old secret, from `rotate_at_ms` (its clock) with the new and the old one (two `v1=`),
/// from `retire_old_at_ms` with the new one only. The merchants' receiver verifies with the
/// old secret, from `receiver_switches_at_ms` (its clock) with either, and from
/// `retire_old_at_ms` with the new one only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecretRotationSettings {
    /// When the service starts signing with both secrets, ms of simulated time.
    pub rotate_at_ms: u64,
    /// When the receiver starts accepting the new secret, ms of simulated time.
    pub receiver_switches_at_ms: u64,
    /// When the old secret stops signing and being accepted, ms of simulated time.
    pub retire_old_at_ms: u64,
}

impl SecretRotationSettings {
    /// The signing secret merchant secret `old` rotates to.
    #[must_use]
    pub fn rotated_secret(old: &str) -> String {
        format!("{old}_rotated")
    }
}

impl CredentialSettings {
    /// The key caller `api_key` rotates to.
    #[must_use]
    pub fn rotated_key(api_key: &str) -> String {
        format!("{api_key}_rotated")
    }
}

/// `[webhooks]`: tracking events from the carrier, outbound events to the merchants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebhookSettings {
    /// The carrier sends tracking events to the service.
    pub tracking: bool,
    /// The service delivers its outbox to the merchants' receiver host.
    pub outbound: bool,
    /// Accepted signature age at both receivers, seconds.
    pub tolerance_s: u64,
    /// Chance, in percent, that a parcel ends in an exception.
    pub exception_percent: u32,
    /// How both senders deliver.
    pub sender: shipsim_system::webhook::SenderConfig,
    /// The merchants' receiver also polls the service's events feed (`GET /v1/events`) to
    /// catch up on what its webhooks missed; `None` (the default) for webhooks alone.
    pub poll_events: Option<PollEvents>,
    /// After the settle phase, before dead letters are redelivered, a misbehaving caller
    /// probes the outbox's operator routes without and with a wrong admin key (each must be
    /// refused and requeue nothing), and the operator's own read of the outbox counts is
    /// compared with the store; `webhook_once` judges both. Needs `outbound`.
    pub probe_operator: bool,
}

/// `[webhooks] poll_events = { every_ms, limit }`: how the merchants' poller reads the
/// service's events feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollEvents {
    /// Time between polls, simulated ms.
    pub every_ms: u64,
    /// Events per page.
    pub limit: u32,
}

/// `[budgets]` entry: latency limits of one endpoint, end to end, over all seeds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    /// Median limit.
    pub p50_ms_max: Option<u64>,
    /// 95th percentile limit.
    pub p95_ms_max: Option<u64>,
    /// 99th percentile limit.
    pub p99_ms_max: Option<u64>,
    /// Largest sample limit.
    pub max_ms_max: Option<u64>,
}

impl Budget {
    /// The limits set, as (metric, limit).
    #[must_use]
    pub fn limits(&self) -> Vec<(&'static str, u64)> {
        [
            ("p50", self.p50_ms_max),
            ("p95", self.p95_ms_max),
            ("p99", self.p99_ms_max),
            ("max", self.max_ms_max),
        ]
        .into_iter()
        .filter_map(|(metric, limit)| limit.map(|l| (metric, l)))
        .collect()
    }
}

/// Default simulated time per step: 5 ms. Network delivery happens on tick boundaries, so a
/// hop costs 5 to 10 ms, a fair model of calls between services; a 1 ms tick is 3x slower
/// to simulate (idle ticks dominate) for latencies no integration test depends on.
pub const TICK_MS_DEFAULT: u64 = 5;

/// Most client hosts a scenario may declare.
pub const CLIENTS_MAX: u32 = 1_000;
/// Most operations per client.
pub const OPERATIONS_MAX: u32 = 100_000;
/// Longest simulated run, ms (one simulated day).
pub const TIME_LIMIT_MS_MAX: u64 = 86_400_000;

impl Scenario {
    /// Reads and validates a scenario file.
    ///
    /// # Errors
    /// [`ScenarioError`] naming the file (and line and column where there is one).
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        Scenario::load_for(path, &Topology::reference())
    }

    /// Reads and validates a scenario file for a target with `topology`.
    ///
    /// # Errors
    /// [`ScenarioError`] naming the file (and line and column where there is one).
    pub fn load_for(path: &Path, topology: &Topology) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let source = std::fs::read_to_string(path)
            .map_err(|e| ScenarioError::whole_file(&file, format!("cannot read: {e}")))?;
        let stem = path.file_stem().map_or_else(
            || "scenario".to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        Scenario::parse_for(&file, &stem, &source, topology)
    }

    /// Validates scenario text. `file` names it in errors; `default_name` is used when the
    /// text gives none.
    ///
    /// # Errors
    /// [`ScenarioError`] with line and column.
    pub fn parse(file: &str, default_name: &str, source: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse_for(file, default_name, source, &Topology::reference())
    }

    /// Validates scenario text for a target with `topology`.
    ///
    /// # Errors
    /// [`ScenarioError`] with line and column.
    pub fn parse_for(
        file: &str,
        default_name: &str,
        source: &str,
        topology: &Topology,
    ) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = toml::from_str(source).map_err(|e| toml_error(file, source, &e))?;
        validate(file, default_name, source, topology, raw)
    }

    /// The bugs to run with: the file's own plus the command line's.
    #[must_use]
    pub fn bugs_with(&self, extra: &BugSet) -> BugSet {
        BugSet::of(self.bugs.iter().chain(extra.iter()))
    }
}

fn toml_error(file: &str, source: &str, error: &toml::de::Error) -> ScenarioError {
    let message = error.message().trim().to_string();
    let span = error.span().unwrap_or(0..0);
    let mut scenario_error = ScenarioError::at(file, source, span.clone(), message.clone());
    if let Some(hint) = unknown_field_hint(&message).or_else(|| range_hint(source, &span)) {
        scenario_error = scenario_error.with_hint(hint);
    }
    scenario_error
}

/// For a value serde refused (a negative count, a number too large for its type, a string
/// where a number belongs): the range of the key it was given to, found on its line.
fn range_hint(source: &str, span: &std::ops::Range<usize>) -> Option<String> {
    let start = span.start.min(source.len());
    let before = source.get(..start)?;
    let line = &before[before.rfind('\n').map_or(0, |i| i + 1)..];
    // The key is the last `key =` before the value, on the value's line (inline tables and
    // pairs included: `mix = { create_order = -1 }`).
    let (keyed, _) = line.rsplit_once('=')?;
    let key = keyed
        .trim_end()
        .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()?;
    let ranges = limits::ranges_of(key);
    (!ranges.is_empty()).then(|| ranges.join("; or "))
}

/// Turns serde's "unknown field `x`, expected one of `a`, `b`" into a hint.
pub(crate) fn unknown_field_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected: Vec<&str> = rest
        .split('`')
        .enumerate()
        .filter_map(|(i, part)| (i % 2 == 1).then_some(part))
        .collect();
    let mut hint = match error::closest(field, expected.iter().copied()) {
        Some(guess) => format!("did you mean `{guess}`?"),
        None => format!("accepted keys here: {}", expected.join(", ")),
    };
    if [
        "oracles",
        "reach",
        "bugs",
        "name",
        "description",
        "seed",
        "trace_hash",
    ]
    .contains(&field)
    {
        hint.push_str(" (top-level keys must come before the first [table] header)");
    }
    Some(hint)
}

/// The merchant client's storm protection unless a scenario says otherwise: open after 8
/// transient failures in a row for 500 ms; retries up to 20 plus half the first attempts.
/// Generous enough that short faults are ridden out by retries, tight enough that a long
/// outage does not turn into a storm.
pub const BREAKER_DEFAULT: Breaker = Breaker {
    failures_to_open: 8,
    cooldown_ms: 500,
};
/// See [`BREAKER_DEFAULT`].
pub const RETRY_BUDGET_DEFAULT: RetryBudget = RetryBudget {
    percent: 50,
    reserve: 20,
};
