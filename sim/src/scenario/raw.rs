//! The scenario file exactly as written: serde types mirroring the TOML, every table strict
//! (`deny_unknown_fields`), every value that validation may complain about kept with its
//! span so the complaint can name the line and column.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// A whole scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    pub name: Option<Spanned<String>>,
    pub description: Option<String>,
    pub oracles: Option<Spanned<Vec<Spanned<String>>>>,
    pub reach: Option<Spanned<Vec<Spanned<String>>>>,
    pub bugs: Option<Spanned<Vec<Spanned<String>>>>,
    pub seed: Option<Spanned<u64>>,
    pub trace_hash: Option<Spanned<String>>,
    pub run: Option<RawRun>,
    pub hosts: Option<RawHosts>,
    pub workload: Option<RawWorkload>,
    pub client: Option<RawClient>,
    pub service: Option<RawService>,
    pub webhooks: Option<Spanned<RawWebhooks>>,
    pub credentials: Option<Spanned<RawCredentials>>,
    #[serde(default)]
    pub fault: Vec<Spanned<RawFault>>,
    pub budgets: Option<BTreeMap<Spanned<String>, Spanned<RawBudget>>>,
}

/// `[run]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRun {
    pub seeds: Option<Spanned<String>>,
    pub tick_ms: Option<Spanned<u64>>,
    pub latency_ms: Option<Spanned<[u64; 2]>>,
    pub time_limit_ms: Option<Spanned<u64>>,
}

/// `[hosts]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHosts {
    pub clients: Option<Spanned<u32>>,
    pub callers: Option<Spanned<u32>>,
}

/// `[workload]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkload {
    pub operations: Option<Spanned<u32>>,
    pub think_ms: Option<Spanned<[u64; 2]>>,
    pub mix: Option<Spanned<BTreeMap<Spanned<String>, Spanned<u32>>>>,
    pub double_submit: Option<Spanned<f64>>,
    pub key_in_body: Option<Spanned<f64>>,
    pub unserviceable: Option<Spanned<f64>>,
    pub reuse_key_with_other_body: Option<Spanned<f64>>,
    pub keys_at_length_limit: Option<Spanned<f64>>,
}

/// `[client]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClient {
    pub timeout_ms: Option<Spanned<u64>>,
    pub deadline_ms: Option<Spanned<u64>>,
    pub attempts: Option<Spanned<u32>>,
    pub backoff_ms_base: Option<Spanned<u64>>,
    pub backoff_ms_max: Option<Spanned<u64>>,
    pub breaker: Option<Spanned<bool>>,
    pub breaker_failures: Option<Spanned<u32>>,
    pub breaker_cooldown_ms: Option<Spanned<u64>>,
    pub retry_budget: Option<Spanned<bool>>,
    pub retry_budget_percent: Option<Spanned<u32>>,
    pub retry_budget_reserve: Option<Spanned<u32>>,
    pub rate_limit: Option<Spanned<RawClientRateLimit>>,
}

/// `[client] rate_limit = { burst, per_second, adaptive }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClientRateLimit {
    pub burst: Spanned<u32>,
    pub per_second: Spanned<u32>,
    pub adaptive: Option<Spanned<bool>>,
}

/// `[service]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    pub rate_limit: Option<Spanned<RawRateLimit>>,
    pub store_latency_ms: Option<Spanned<[u64; 2]>>,
    pub carrier_timeout_ms: Option<Spanned<u64>>,
    pub carrier_deadline_ms: Option<Spanned<u64>>,
    pub carrier_attempts: Option<Spanned<u32>>,
    pub lock_lease_ms: Option<Spanned<u64>>,
    pub store: Option<Spanned<String>>,
    pub idempotency_retention_ms: Option<Spanned<u64>>,
    pub idempotency_sweep_batch: Option<Spanned<u64>>,
    pub probe_misuse: Option<Spanned<bool>>,
    pub probe_retention: Option<Spanned<bool>>,
}

/// `[credentials]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCredentials {
    pub rotate_keys_at_ms: Spanned<u64>,
    pub retire_old_keys_at_ms: Spanned<u64>,
    pub rotate_secrets_at_ms: Option<Spanned<u64>>,
    pub receiver_switches_at_ms: Option<Spanned<u64>>,
    pub retire_old_secrets_at_ms: Option<Spanned<u64>>,
}

/// `[webhooks]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhooks {
    pub tracking: Option<Spanned<bool>>,
    pub outbound: Option<Spanned<bool>>,
    pub tolerance_s: Option<Spanned<u64>>,
    pub exception_percent: Option<Spanned<u32>>,
    pub sender_timeout_ms: Option<Spanned<u64>>,
    pub sender_attempts: Option<Spanned<u32>>,
    pub sender_concurrency: Option<Spanned<u32>>,
    pub poll_events: Option<Spanned<RawPollEvents>>,
    pub probe_operator: Option<Spanned<bool>>,
}

/// `[webhooks] poll_events = { every_ms, limit }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPollEvents {
    pub every_ms: Spanned<u64>,
    pub limit: Spanned<u32>,
}

/// `[service] rate_limit = { burst, per_second }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateLimit {
    pub burst: Spanned<u32>,
    pub per_second: Spanned<u32>,
}

/// One `[[fault]]`: every parameter of every kind is optional here; validation checks that
/// the kind's required ones are present and that no other kind's parameter is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFault {
    pub kind: Spanned<String>,
    pub target: Option<Spanned<String>>,
    pub between: Option<Spanned<[String; 2]>>,
    pub from: Option<Spanned<String>>,
    pub to: Option<Spanned<String>>,
    pub stream: Option<Spanned<u64>>,
    pub start_ms: Option<Spanned<u64>>,
    pub end_ms: Option<Spanned<u64>>,
    pub duration_ms: Option<Spanned<u64>>,
    pub probability: Option<Spanned<f64>>,
    pub path_prefix: Option<Spanned<String>>,
    pub status: Option<Spanned<u16>>,
    pub when: Option<Spanned<String>>,
    pub retry_after_s: Option<Spanned<u64>>,
    pub retry_after_form: Option<Spanned<String>>,
    pub delay_ms: Option<Spanned<u64>>,
    pub min_ms: Option<Spanned<u64>>,
    pub max_ms: Option<Spanned<u64>>,
    pub copies: Option<Spanned<u32>>,
    pub period_ms: Option<Spanned<u64>>,
    pub point: Option<Spanned<String>>,
    pub restart_after_ms: Option<Spanned<u64>>,
    pub times: Option<Spanned<u32>>,
    pub offset_ms: Option<Spanned<i64>>,
    pub drift_ppm: Option<Spanned<i64>>,
    pub direction: Option<Spanned<String>>,
    pub after_ms: Option<Spanned<u64>>,
    pub events: Option<Spanned<u32>>,
}

/// `[budgets] "ENDPOINT" = { ... }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBudget {
    pub p50_ms_max: Option<Spanned<u64>>,
    pub p95_ms_max: Option<Spanned<u64>>,
    pub p99_ms_max: Option<Spanned<u64>>,
    pub max_ms_max: Option<Spanned<u64>>,
}
