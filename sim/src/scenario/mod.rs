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
mod write;

use std::collections::BTreeMap;
use std::path::Path;

use shipsim_system::bugs::{Bug, BugSet};
use shipsim_system::client::{Breaker, ClientRateLimit, RetryBudget, RetryPolicy};
use shipsim_system::service::RateLimit;
use toml::Spanned;

pub use cost::Cost;
pub use error::ScenarioError;
pub use seeds::{SEEDS_MAX, SeedRange};
pub(crate) use write::quote as write_quote;

use crate::fault::{self, FaultSpec, ParseContext};
use crate::oracle::OracleKind;
use crate::reach::Moment;
use raw::RawScenario;

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

struct Ctx<'a> {
    file: &'a str,
    source: &'a str,
    topology: &'a Topology,
}

impl Ctx<'_> {
    fn error<T>(&self, value: &Spanned<T>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::at(self.file, self.source, value.span(), message)
    }

    /// A numeric field, checked against its range.
    fn int<T: limits::Number>(
        &self,
        field: &limits::Field,
        value: &Spanned<T>,
    ) -> Result<T, ScenarioError> {
        field.check(self.file, self.source, *value.get_ref(), value.span())
    }

    /// A `[low, high]` field: both ends in range, `low <= high`.
    fn pair(
        &self,
        field: &limits::Field,
        value: &Spanned<[u64; 2]>,
    ) -> Result<(u64, u64), ScenarioError> {
        let [low, high] = *value.get_ref();
        for end in [low, high] {
            field.check(self.file, self.source, end, value.span())?;
        }
        if high < low {
            return Err(self
                .error(
                    value,
                    format!("{} range [{low}, {high}] ends before it starts", field.key),
                )
                .with_hint("write [low, high] with low <= high"));
        }
        Ok((low, high))
    }

    /// A probability field, 0 when absent.
    fn probability(
        &self,
        field: &limits::Field,
        value: Option<&Spanned<f64>>,
    ) -> Result<f64, ScenarioError> {
        let Some(value) = value else {
            return Ok(0.0);
        };
        field.check(self.file, self.source, *value.get_ref(), value.span())
    }
}

fn validate(
    file: &str,
    default_name: &str,
    source: &str,
    topology: &Topology,
    raw: RawScenario,
) -> Result<Scenario, ScenarioError> {
    let ctx = Ctx {
        file,
        source,
        topology,
    };
    let name = match &raw.name {
        Some(name) if name.get_ref().trim().is_empty() => {
            return Err(ctx.error(name, "`name` must not be empty"));
        }
        Some(name) => name.get_ref().clone(),
        None => default_name.to_string(),
    };

    let run = validate_run(&ctx, raw.run.as_ref())?;
    let hosts = validate_hosts(&ctx, raw.hosts.as_ref())?;
    let workload = validate_workload(&ctx, raw.workload.as_ref())?;
    let client = validate_client(&ctx, raw.client.as_ref())?;
    let service = validate_service(&ctx, raw.service.as_ref())?;
    let seeds = match raw.run.as_ref().and_then(|r| r.seeds.as_ref()) {
        None => SeedRange::new(1, 21).expect("default range is valid"),
        Some(text) => SeedRange::parse(text.get_ref()).map_err(|m| ctx.error(text, m))?,
    };

    let webhooks = validate_webhooks(&ctx, raw.webhooks.as_ref())?;
    let credentials = validate_credentials(&ctx, raw.credentials.as_ref(), &run, webhooks)?;
    let fault_context = ParseContext {
        file,
        source,
        clients: hosts.clients,
        hosts: &topology.hosts,
        webhooks,
    };
    let faults = raw
        .fault
        .iter()
        .enumerate()
        .map(|(index, table)| fault::parse(table, index, &fault_context))
        .collect::<Result<Vec<_>, _>>()?;

    let oracles = match &raw.oracles {
        None => OracleKind::ALL.to_vec(),
        Some(list) => {
            let mut chosen = Vec::new();
            for entry in list.get_ref() {
                let oracle = entry.get_ref().parse::<OracleKind>().map_err(|_| {
                    let names = OracleKind::ALL.iter().map(|o| o.name());
                    let error = ctx.error(entry, format!("unknown oracle `{}`", entry.get_ref()));
                    match error::closest(entry.get_ref(), names) {
                        Some(guess) => error.with_hint(format!("did you mean `{guess}`?")),
                        None => error.with_hint("`shipsim list --oracles` lists them"),
                    }
                })?;
                if chosen.contains(&oracle) {
                    return Err(
                        ctx.error(entry, format!("oracle `{}` is listed twice", oracle.name()))
                    );
                }
                chosen.push(oracle);
            }
            if chosen.is_empty() {
                return Err(ctx
                    .error(list, "`oracles` is empty: nothing would judge the run")
                    .with_hint("leave `oracles` out to run every oracle"));
            }
            chosen.sort();
            chosen
        }
    };

    let reach = validate_reach(&ctx, raw.reach.as_ref())?;

    let seed = raw
        .seed
        .as_ref()
        .map(|seed| ctx.int(&limits::SEED, seed))
        .transpose()?;
    let trace_hash = match &raw.trace_hash {
        None => None,
        Some(text) => {
            if raw.seed.is_none() {
                return Err(ctx
                    .error(
                        text,
                        "`trace_hash` without `seed`: a hash belongs to one seed",
                    )
                    .with_hint("repro files pin both"));
            }
            let valid =
                text.get_ref().len() == 16 && text.get_ref().bytes().all(|b| b.is_ascii_hexdigit());
            let hash = valid
                .then(|| u64::from_str_radix(text.get_ref(), 16).ok())
                .flatten();
            Some(hash.ok_or_else(|| ctx.error(text, "`trace_hash` must be 16 hex digits"))?)
        }
    };

    let mut bugs = Vec::new();
    if let Some(list) = &raw.bugs {
        for entry in list.get_ref() {
            let bug = entry.get_ref().parse::<Bug>().map_err(|e| {
                let names = Bug::ALL.iter().map(|b| b.name());
                let error = ctx.error(entry, e.to_string());
                match error::closest(entry.get_ref(), names) {
                    Some(guess) => error.with_hint(format!("did you mean `{guess}`?")),
                    None => error,
                }
            })?;
            bugs.push(bug);
        }
    }

    let mut budgets = BTreeMap::new();
    for (endpoint_text, budget) in raw.budgets.iter().flatten() {
        let route = endpoint_text.get_ref();
        if !topology.routes.iter().any(|r| r == route) {
            let error = ctx.error(endpoint_text, format!("unknown endpoint `{route}`"));
            let hint = match error::closest(route, topology.routes.iter().map(String::as_str)) {
                Some(guess) => format!("did you mean `{guess}`?"),
                None => format!("endpoints are: {}", topology.routes.join(", ")),
            };
            return Err(error.with_hint(hint));
        }
        let endpoint = route.clone();
        let raw_budget = budget.get_ref();
        let limit = |field: &limits::Field, value: &Option<Spanned<u64>>| {
            value.as_ref().map(|v| ctx.int(field, v)).transpose()
        };
        let value = Budget {
            p50_ms_max: limit(&limits::BUDGET_P50_MS_MAX, &raw_budget.p50_ms_max)?,
            p95_ms_max: limit(&limits::BUDGET_P95_MS_MAX, &raw_budget.p95_ms_max)?,
            p99_ms_max: limit(&limits::BUDGET_P99_MS_MAX, &raw_budget.p99_ms_max)?,
            max_ms_max: limit(&limits::BUDGET_MAX_MS_MAX, &raw_budget.max_ms_max)?,
        };
        if value.limits().is_empty() {
            return Err(ctx
                .error(budget, "a budget needs at least one limit")
                .with_hint("p50_ms_max, p95_ms_max, p99_ms_max or max_ms_max"));
        }
        budgets.insert(endpoint, value);
    }

    Ok(Scenario {
        name,
        description: raw.description.unwrap_or_default(),
        path: file.to_string(),
        seeds,
        seed,
        trace_hash,
        bugs: BugSet::of(bugs),
        run,
        hosts,
        workload,
        client,
        service,
        webhooks,
        credentials,
        faults,
        oracles,
        reach,
        budgets,
    })
}

fn validate_credentials(
    ctx: &Ctx<'_>,
    raw: Option<&Spanned<raw::RawCredentials>>,
    run: &RunSettings,
    webhooks: Option<WebhookSettings>,
) -> Result<Option<CredentialSettings>, ScenarioError> {
    let Some(table) = raw else { return Ok(None) };
    let raw = table.get_ref();
    let rotate = *raw.rotate_keys_at_ms.get_ref();
    let retire = *raw.retire_old_keys_at_ms.get_ref();
    if retire <= rotate {
        return Err(ctx
            .error(
                &raw.retire_old_keys_at_ms,
                format!(
                    "the old keys are retired at {retire} ms, not after the rotation at {rotate} ms"
                ),
            )
            .with_hint("retire the old keys after clients moved to the new ones"));
    }
    if retire >= run.time_limit_ms {
        return Err(ctx.error(
            &raw.retire_old_keys_at_ms,
            format!(
                "{retire} ms is past the run's time limit of {} ms",
                run.time_limit_ms
            ),
        ));
    }
    let secrets = validate_secret_rotation(ctx, table, run, webhooks)?;
    Ok(Some(CredentialSettings {
        rotate_keys_at_ms: rotate,
        retire_old_keys_at_ms: retire,
        secrets,
    }))
}

/// The webhook secret rotation of `[credentials]`: all three times or none, in order
/// (rotate < receiver switch < retire < time limit), and only with outbound webhooks.
fn validate_secret_rotation(
    ctx: &Ctx<'_>,
    table: &Spanned<raw::RawCredentials>,
    run: &RunSettings,
    webhooks: Option<WebhookSettings>,
) -> Result<Option<SecretRotationSettings>, ScenarioError> {
    let raw = table.get_ref();
    let (rotate, switch, retire) = match (
        &raw.rotate_secrets_at_ms,
        &raw.receiver_switches_at_ms,
        &raw.retire_old_secrets_at_ms,
    ) {
        (None, None, None) => return Ok(None),
        (Some(rotate), Some(switch), Some(retire)) => (rotate, switch, retire),
        (given, _, _) => {
            let at = given
                .as_ref()
                .or(raw.receiver_switches_at_ms.as_ref())
                .or(raw.retire_old_secrets_at_ms.as_ref())
                .expect("one of the three is given");
            return Err(ctx
                .error(at, "a webhook secret rotation needs all three of its times")
                .with_hint(
                    "give rotate_secrets_at_ms, receiver_switches_at_ms and retire_old_secrets_at_ms",
                ));
        }
    };
    if !webhooks.is_some_and(|w| w.outbound) {
        return Err(ctx
            .error(rotate, "a webhook secret rotation needs outbound webhooks")
            .with_hint("add [webhooks] outbound = true"));
    }
    let (r, s, t) = (*rotate.get_ref(), *switch.get_ref(), *retire.get_ref());
    if s <= r {
        return Err(ctx.error(
            switch,
            format!("the receiver switches at {s} ms, not after the rotation at {r} ms"),
        ));
    }
    if t <= s {
        return Err(ctx.error(
            retire,
            format!(
                "the old secret is retired at {t} ms, not after the receiver switched at {s} ms"
            ),
        ));
    }
    if t >= run.time_limit_ms {
        return Err(ctx.error(
            retire,
            format!(
                "{t} ms is past the run's time limit of {} ms",
                run.time_limit_ms
            ),
        ));
    }
    Ok(Some(SecretRotationSettings {
        rotate_at_ms: r,
        receiver_switches_at_ms: s,
        retire_old_at_ms: t,
    }))
}

/// `reach = [...]`: known moment names, each once, in catalogue order.
fn validate_reach(
    ctx: &Ctx<'_>,
    raw: Option<&Spanned<Vec<Spanned<String>>>>,
) -> Result<Vec<Moment>, ScenarioError> {
    let Some(list) = raw else {
        return Ok(Vec::new());
    };
    let mut chosen = Vec::new();
    for entry in list.get_ref() {
        let moment = entry.get_ref().parse::<Moment>().map_err(|message| {
            let error = ctx.error(entry, message);
            match error::closest(entry.get_ref(), Moment::ALL.iter().map(|m| m.name())) {
                Some(guess) => error.with_hint(format!("did you mean `{guess}`?")),
                None => error.with_hint("`shipsim list --moments` lists them"),
            }
        })?;
        if chosen.contains(&moment) {
            return Err(ctx.error(entry, format!("moment `{moment}` is listed twice")));
        }
        chosen.push(moment);
    }
    chosen.sort();
    Ok(chosen)
}

fn validate_webhooks(
    ctx: &Ctx<'_>,
    raw: Option<&Spanned<raw::RawWebhooks>>,
) -> Result<Option<WebhookSettings>, ScenarioError> {
    let Some(table) = raw else { return Ok(None) };
    let raw = table.get_ref();
    let mut settings = WebhookSettings {
        tracking: true,
        outbound: true,
        tolerance_s: shipsim_system::webhook::TOLERANCE_S_DEFAULT,
        exception_percent: 5,
        sender: shipsim_system::webhook::SenderConfig::DEFAULT,
        poll_events: None,
        probe_operator: false,
    };
    if let Some(v) = &raw.tracking {
        settings.tracking = *v.get_ref();
    }
    if let Some(v) = &raw.outbound {
        settings.outbound = *v.get_ref();
    }
    if !settings.tracking && !settings.outbound {
        return Err(ctx
            .error(
                table,
                "`[webhooks]` with neither tracking nor outbound does nothing",
            )
            .with_hint("leave the table out to run without webhooks"));
    }
    if let Some(v) = &raw.tolerance_s {
        settings.tolerance_s = ctx.int(&limits::TOLERANCE_S, v)?;
    }
    if let Some(v) = &raw.exception_percent {
        settings.exception_percent = ctx.int(&limits::EXCEPTION_PERCENT, v)?;
    }
    if let Some(v) = &raw.sender_timeout_ms {
        settings.sender.timeout_ms = ctx.int(&limits::SENDER_TIMEOUT_MS, v)?;
    }
    if let Some(v) = &raw.sender_attempts {
        settings.sender.attempt_count_max = ctx.int(&limits::SENDER_ATTEMPTS, v)?;
    }
    if let Some(v) = &raw.sender_concurrency {
        settings.sender.concurrency = ctx.int(&limits::SENDER_CONCURRENCY, v)? as usize;
    }
    if let Some(poll) = &raw.poll_events {
        if !settings.outbound {
            return Err(ctx
                .error(
                    poll,
                    "`poll_events` needs outbound webhooks: with `outbound = false` there is no feed to read and no receiver to poll it",
                )
                .with_hint("set `outbound = true`, or leave `poll_events` out"));
        }
        let p = poll.get_ref();
        settings.poll_events = Some(PollEvents {
            every_ms: ctx.int(&limits::POLL_EVENTS_EVERY_MS, &p.every_ms)?,
            limit: ctx.int(&limits::POLL_EVENTS_LIMIT, &p.limit)?,
        });
    }
    if let Some(probe) = &raw.probe_operator {
        if *probe.get_ref() && !settings.outbound {
            return Err(ctx
                .error(
                    probe,
                    "`probe_operator` probes the outbox's operator routes: with `outbound = false` there is no outbox",
                )
                .with_hint("set `outbound = true`, or leave `probe_operator` out"));
        }
        settings.probe_operator = *probe.get_ref();
    }
    Ok(Some(settings))
}

fn validate_run(ctx: &Ctx<'_>, raw: Option<&raw::RawRun>) -> Result<RunSettings, ScenarioError> {
    let mut run = RunSettings {
        tick_ms: TICK_MS_DEFAULT,
        latency_ms: (1, 5),
        time_limit_ms: 600_000,
    };
    let Some(raw) = raw else { return Ok(run) };
    if let Some(tick) = &raw.tick_ms {
        run.tick_ms = ctx.int(&limits::TICK_MS, tick)?;
    }
    if let Some(latency) = &raw.latency_ms {
        run.latency_ms = ctx.pair(&limits::RUN_LATENCY_MS, latency)?;
    }
    if let Some(limit) = &raw.time_limit_ms {
        run.time_limit_ms = ctx.int(&limits::TIME_LIMIT_MS, limit)?;
    }
    Ok(run)
}

fn validate_hosts(
    ctx: &Ctx<'_>,
    raw: Option<&raw::RawHosts>,
) -> Result<HostSettings, ScenarioError> {
    let mut hosts = HostSettings {
        clients: 1,
        callers: 1,
    };
    let Some(raw) = raw else { return Ok(hosts) };
    if let Some(clients) = &raw.clients {
        hosts.clients = ctx.int(&limits::CLIENTS, clients)?;
    }
    if let Some(callers) = &raw.callers {
        hosts.callers = ctx.int(&limits::CALLERS, callers)?;
        if hosts.callers > hosts.clients {
            return Err(ctx
                .error(
                    callers,
                    format!(
                        "{} callers but only {} client(s)",
                        hosts.callers, hosts.clients
                    ),
                )
                .with_hint("each caller (merchant) needs at least one client host"));
        }
    }
    Ok(hosts)
}

fn validate_workload(
    ctx: &Ctx<'_>,
    raw: Option<&raw::RawWorkload>,
) -> Result<WorkloadSettings, ScenarioError> {
    let mut workload = WorkloadSettings {
        operations: 20,
        think_ms: (0, 20),
        mix: None,
        double_submit: 0.0,
        key_in_body: 0.0,
        unserviceable: 0.0,
        reuse_key_with_other_body: 0.0,
        keys_at_length_limit: 0.0,
    };
    let Some(raw) = raw else { return Ok(workload) };
    if let Some(operations) = &raw.operations {
        workload.operations = ctx.int(&limits::OPERATIONS, operations)?;
    }
    if let Some(think) = &raw.think_ms {
        workload.think_ms = ctx.pair(&limits::THINK_MS, think)?;
    }
    if let Some(mix) = &raw.mix {
        let mut entries = BTreeMap::new();
        for (name, weight) in mix.get_ref() {
            let field = limits::mix_field(name.get_ref());
            let weight = ctx.int(field, weight)?;
            if !ctx.topology.operations.iter().any(|o| o == name.get_ref()) {
                let operations = ctx.topology.operations.iter().map(String::as_str);
                let error = ctx.error(
                    name,
                    format!("unknown operation `{}` in `mix`", name.get_ref()),
                );
                let hint = match error::closest(name.get_ref(), operations) {
                    Some(guess) => format!("did you mean `{guess}`?"),
                    None => format!(
                        "the target's operations are: {}",
                        ctx.topology.operations.join(", ")
                    ),
                };
                return Err(error.with_hint(hint));
            }
            entries.insert(name.get_ref().clone(), weight);
        }
        let mix_value = Mix(entries);
        if mix_value.total() == 0 {
            let example = ctx
                .topology
                .operations
                .first()
                .map_or_else(String::new, |o| format!("e.g. mix = {{ {o} = 1 }}"));
            return Err(ctx
                .error(
                    mix,
                    "every weight of `mix` is 0: the clients would do nothing",
                )
                .with_hint(example));
        }
        workload.mix = Some(mix_value);
    }
    workload.double_submit = ctx.probability(&limits::DOUBLE_SUBMIT, raw.double_submit.as_ref())?;
    workload.key_in_body = ctx.probability(&limits::KEY_IN_BODY, raw.key_in_body.as_ref())?;
    workload.unserviceable = ctx.probability(&limits::UNSERVICEABLE, raw.unserviceable.as_ref())?;
    workload.reuse_key_with_other_body = ctx.probability(
        &limits::REUSE_KEY_WITH_OTHER_BODY,
        raw.reuse_key_with_other_body.as_ref(),
    )?;
    workload.keys_at_length_limit = ctx.probability(
        &limits::KEYS_AT_LENGTH_LIMIT,
        raw.keys_at_length_limit.as_ref(),
    )?;
    Ok(workload)
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

fn validate_client(
    ctx: &Ctx<'_>,
    raw: Option<&raw::RawClient>,
) -> Result<RetryPolicy, ScenarioError> {
    let mut policy = RetryPolicy {
        timeout_ms_per_attempt: 1_000,
        deadline_ms: 10_000,
        attempt_count_max: 6,
        backoff_ms_base: 50,
        backoff_ms_max: 1_000,
        budget: Some(RETRY_BUDGET_DEFAULT),
        breaker: Some(BREAKER_DEFAULT),
        rate_limit: None,
    };
    let Some(raw) = raw else { return Ok(policy) };
    let mut breaker = BREAKER_DEFAULT;
    if let Some(v) = &raw.breaker_failures {
        breaker.failures_to_open = ctx.int(&limits::BREAKER_FAILURES, v)?;
    }
    if let Some(v) = &raw.breaker_cooldown_ms {
        breaker.cooldown_ms = ctx.int(&limits::BREAKER_COOLDOWN_MS, v)?;
    }
    let breaker_off = raw.breaker.as_ref().is_some_and(|on| !*on.get_ref());
    if breaker_off && let Some(v) = raw.breaker_failures.as_ref() {
        return Err(ctx.error(v, "`breaker_failures` is set but `breaker = false`"));
    }
    policy.breaker = (!breaker_off).then_some(breaker);
    let mut budget = RETRY_BUDGET_DEFAULT;
    if let Some(v) = &raw.retry_budget_percent {
        budget.percent = ctx.int(&limits::RETRY_BUDGET_PERCENT, v)?;
    }
    if let Some(v) = &raw.retry_budget_reserve {
        budget.reserve = ctx.int(&limits::RETRY_BUDGET_RESERVE, v)?;
    }
    let budget_off = raw.retry_budget.as_ref().is_some_and(|on| !*on.get_ref());
    if budget_off
        && let Some(v) = raw
            .retry_budget_percent
            .as_ref()
            .or(raw.retry_budget_reserve.as_ref())
    {
        return Err(ctx.error(
            v,
            "retry budget settings are set but `retry_budget = false`",
        ));
    }
    policy.budget = (!budget_off).then_some(budget);
    if let Some(limit) = &raw.rate_limit {
        let l = limit.get_ref();
        policy.rate_limit = Some(ClientRateLimit {
            burst: ctx.int(&limits::CLIENT_RATE_LIMIT_BURST, &l.burst)?,
            per_second: ctx.int(&limits::CLIENT_RATE_LIMIT_PER_SECOND, &l.per_second)?,
            adaptive: l.adaptive.as_ref().is_none_or(|a| *a.get_ref()),
        });
    }
    if let Some(v) = &raw.timeout_ms {
        policy.timeout_ms_per_attempt = ctx.int(&limits::TIMEOUT_MS, v)?;
    }
    if let Some(v) = &raw.deadline_ms {
        policy.deadline_ms = ctx.int(&limits::DEADLINE_MS, v)?;
    }
    if let Some(v) = &raw.attempts {
        policy.attempt_count_max = ctx.int(&limits::ATTEMPTS, v)?;
    }
    if let Some(v) = &raw.backoff_ms_base {
        policy.backoff_ms_base = ctx.int(&limits::BACKOFF_MS_BASE, v)?;
    }
    if let Some(v) = &raw.backoff_ms_max {
        policy.backoff_ms_max = ctx.int(&limits::BACKOFF_MS_MAX, v)?;
    }
    policy.validate().map_err(|message| {
        // Point at the key the complaint is about, or the other one of its pair when only
        // that one was written (the first is then at its default).
        let span = if message.starts_with("backoff") {
            first_span([raw.backoff_ms_base.as_ref(), raw.backoff_ms_max.as_ref()])
        } else {
            first_span([raw.deadline_ms.as_ref(), raw.timeout_ms.as_ref()])
        };
        ScenarioError::at(ctx.file, ctx.source, span, format!("[client]: {message}"))
    })?;
    Ok(policy)
}

fn validate_service(
    ctx: &Ctx<'_>,
    raw: Option<&raw::RawService>,
) -> Result<ServiceSettings, ScenarioError> {
    let mut service = ServiceSettings::default();
    let Some(raw) = raw else { return Ok(service) };
    if let Some(limit) = &raw.rate_limit {
        let l = limit.get_ref();
        service.rate_limit = Some(RateLimit {
            burst: ctx.int(&limits::RATE_LIMIT_BURST, &l.burst)?,
            per_second: ctx.int(&limits::RATE_LIMIT_PER_SECOND, &l.per_second)?,
        });
    }
    if let Some(latency) = &raw.store_latency_ms {
        service.store_latency_ms = ctx.pair(&limits::STORE_LATENCY_MS, latency)?;
    }
    if let Some(v) = &raw.carrier_timeout_ms {
        service.carrier.timeout_ms_per_attempt = ctx.int(&limits::CARRIER_TIMEOUT_MS, v)?;
    }
    if let Some(v) = &raw.carrier_deadline_ms {
        service.carrier.deadline_ms = ctx.int(&limits::CARRIER_DEADLINE_MS, v)?;
    }
    if let Some(v) = &raw.carrier_attempts {
        service.carrier.attempt_count_max = ctx.int(&limits::CARRIER_ATTEMPTS, v)?;
    }
    if let Some(v) = &raw.lock_lease_ms {
        service.lock_lease_ms = ctx.int(&limits::LOCK_LEASE_MS, v)?;
    }
    service.carrier.validate().map_err(|message| {
        let span = first_span([
            raw.carrier_deadline_ms.as_ref(),
            raw.carrier_timeout_ms.as_ref(),
        ]);
        ScenarioError::at(
            ctx.file,
            ctx.source,
            span,
            format!("[service] carrier policy: {message}"),
        )
    })?;
    if service.lock_lease_ms <= service.carrier.deadline_ms {
        let span = first_span([raw.lock_lease_ms.as_ref(), raw.carrier_deadline_ms.as_ref()]);
        return Err(ScenarioError::at(
            ctx.file,
            ctx.source,
            span,
            format!(
                "`lock_lease_ms` ({}) must exceed the carrier deadline ({} ms)",
                service.lock_lease_ms, service.carrier.deadline_ms
            ),
        )
        .with_hint(
            "otherwise a live request's claim expires while it still waits on the carrier",
        ));
    }
    Ok(service)
}

/// The span of the first value written, for a complaint about a relation between keys.
/// One of them is always written: the defaults satisfy every relation.
fn first_span<const N: usize>(values: [Option<&Spanned<u64>>; N]) -> std::ops::Range<usize> {
    values
        .into_iter()
        .flatten()
        .next()
        .map_or(0..0, Spanned::span)
}

#[cfg(test)]
mod secret_rotation_tests {
    use super::Scenario;

    const BASE: &str = "[webhooks]\noutbound = true\n\n[credentials]\nrotate_keys_at_ms = 300\nretire_old_keys_at_ms = 15000\n";

    #[test]
    fn a_secret_rotation_is_parsed_strictly_and_written_back() {
        // Proves the three times are read in order, written back by `to_toml`, and refused
        // with a location when out of order, incomplete, or without outbound webhooks.
        let good = format!(
            "{BASE}rotate_secrets_at_ms = 200\nreceiver_switches_at_ms = 1500\nretire_old_secrets_at_ms = 20000\n"
        );
        let scenario = Scenario::parse("s.toml", "s", &good).expect("valid");
        let secrets = scenario
            .credentials
            .and_then(|c| c.secrets)
            .expect("parsed");
        assert_eq!(
            (
                secrets.rotate_at_ms,
                secrets.receiver_switches_at_ms,
                secrets.retire_old_at_ms
            ),
            (200, 1_500, 20_000)
        );
        let again = Scenario::parse("s.toml", "s", &scenario.to_toml()).expect("written back");
        assert_eq!(again.credentials, scenario.credentials);

        let late = good.replace(
            "receiver_switches_at_ms = 1500",
            "receiver_switches_at_ms = 100",
        );
        let error = Scenario::parse("s.toml", "s", &late)
            .unwrap_err()
            .to_string();
        assert!(error.contains("s.toml:8:27"), "{error}");
        assert!(
            error.contains("not after the rotation at 200 ms"),
            "{error}"
        );

        let partial = format!("{BASE}rotate_secrets_at_ms = 200\n");
        let error = Scenario::parse("s.toml", "s", &partial)
            .unwrap_err()
            .to_string();
        assert!(error.contains("s.toml:7:"), "{error}");
        assert!(error.contains("needs all three"), "{error}");

        let no_outbound = good.replace("outbound = true", "outbound = false");
        let error = Scenario::parse("s.toml", "s", &no_outbound)
            .unwrap_err()
            .to_string();
        assert!(error.contains("needs outbound webhooks"), "{error}");
    }
}
