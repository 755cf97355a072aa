//! The allowed range of every numeric field of a scenario file: part of the schema, checked
//! where the value is parsed (the same located error as an unknown key, with the range in
//! the hint), and documented in `scenarios/README.md`.
//!
//! The ranges are what keeps the simulation's arithmetic on scenario values inside `u64`:
//! every duration is at most [`DURATION_MS_MAX`] (one simulated day, the longest run), every
//! count is small, so sums of a few durations, or a duration scaled by a count, cannot
//! overflow. Code that does such arithmetic says which limit makes it safe.
//!
//! The fields of the tables are listed in [`FIELDS`]; fault parameters carry their range in
//! their [`ParamInfo`](crate::fault::ParamInfo), so a fault kind's file stays the one place
//! that knows its parameters. Both lists drive the property-based tests
//! (`sim/tests/it/fuzz/`), which draw values at and just outside every range.

use std::fmt;
use std::ops::Range;

use super::ScenarioError;

/// Longest duration any `*_ms` field may hold: one simulated day, the longest run a scenario
/// may ask for ([`super::TIME_LIMIT_MS_MAX`]). A fault window, a hold or a downtime longer
/// than the whole run could never end inside it.
pub const DURATION_MS_MAX: u64 = 86_400_000;
/// Slowest network or store latency, ms: 60 s. Latency is per message or per transaction;
/// a minute is already a partition as far as any client timeout is concerned.
pub const LATENCY_MS_MAX: u64 = 60_000;
/// Longest webhook signature tolerance, s: one hour. Providers use five minutes (seed 001);
/// beyond an hour a signature no longer limits replays.
pub const TOLERANCE_S_MAX: u64 = 3_600;
/// Most attempts per operation (client, carrier calls, webhook deliveries). The corpus uses
/// up to 10; a hundred is a retry storm already.
pub const ATTEMPTS_MAX: u64 = 100;
/// Largest weight of one operation kind in `[workload] mix`: a million, so that the sum of
/// the weights stays far inside `u32`.
pub const MIX_WEIGHT_MAX: u64 = 1_000_000;
/// Largest seed a file may pin: `u64::MAX - 1`, so that the one-seed range `seed..seed + 1`
/// exists.
pub const SEED_MAX: u64 = u64::MAX - 1;

// Sums the simulation does on bounded values, checked once here.
const _: () = assert!(super::TIME_LIMIT_MS_MAX == DURATION_MS_MAX);
const _: () = assert!(DURATION_MS_MAX.checked_mul(1_000).is_some());
// A target has at most KINDS_MAX kinds, each with a create and a read in the mix.
const _: () =
    assert!(MIX_WEIGHT_MAX * 2 * crate::target::plan::KINDS_MAX as u64 <= u32::MAX as u64);
const _: () = assert!(TOLERANCE_S_MAX * 1_000 + 1_000 <= DURATION_MS_MAX);

/// What values a numeric field takes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Limit {
    /// An integer in `min..=max` (`i128` holds every `u64` and `i64`).
    Int {
        /// Smallest allowed.
        min: i128,
        /// Largest allowed.
        max: i128,
    },
    /// A probability: a number in `0..=1` (not NaN).
    Probability,
}

impl Limit {
    /// Integers `min..=max`.
    ///
    /// # Panics
    /// At compile time (limits are constants) when `max < min`.
    #[must_use]
    pub const fn int(min: i128, max: i128) -> Limit {
        assert!(min <= max, "a limit's range must not be empty");
        Limit::Int { min, max }
    }

    /// A duration in ms, `min..=`[`DURATION_MS_MAX`].
    #[must_use]
    pub const fn duration_ms(min: i128) -> Limit {
        Limit::int(min, DURATION_MS_MAX as i128)
    }

    /// Whether integer `value` is allowed.
    #[must_use]
    pub fn allows(&self, value: i128) -> bool {
        match *self {
            Limit::Int { min, max } => (min..=max).contains(&value),
            Limit::Probability => false,
        }
    }

    /// Whether number `value` is allowed.
    #[must_use]
    pub fn allows_f64(&self, value: f64) -> bool {
        match *self {
            Limit::Int { .. } => false,
            Limit::Probability => (0.0..=1.0).contains(&value),
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Int { min, max } => write!(f, "{min}..={max}"),
            Limit::Probability => f.write_str("0..=1"),
        }
    }
}

/// Whether a field is one number or a `[low, high]` pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `key = N`
    Scalar,
    /// `key = [low, high]`, both in range, `low <= high`.
    Pair,
}

/// A numeric field of one of a scenario's tables.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// The table, dotted (`""` for top-level keys, `"workload.mix"`, `"budgets.ENDPOINT"`).
    pub table: &'static str,
    /// The key.
    pub key: &'static str,
    /// Whether its table needs it.
    pub required: bool,
    /// One number or a pair.
    pub shape: Shape,
    /// What values it takes.
    pub limit: Limit,
    /// Unit and reason, for the hint.
    pub note: &'static str,
}

impl Field {
    const fn new(table: &'static str, key: &'static str, limit: Limit, note: &'static str) -> Self {
        Field {
            table,
            key,
            required: false,
            shape: Shape::Scalar,
            limit,
            note,
        }
    }

    const fn pair(self) -> Self {
        Field {
            shape: Shape::Pair,
            ..self
        }
    }

    const fn required(self) -> Self {
        Field {
            required: true,
            ..self
        }
    }

    /// Checks `value` (written at `span` of `source`).
    ///
    /// # Errors
    /// The located error, with the range in the hint, when `value` is outside it.
    pub(crate) fn check<T: Number>(
        &self,
        file: &str,
        source: &str,
        value: T,
        span: Range<usize>,
    ) -> Result<T, ScenarioError> {
        check(file, source, self.key, &self.limit, self.note, value, span)
    }
}

/// A number a [`Limit`] can judge: the integer types scenario files use, and `f64`.
pub(crate) trait Number: Copy + fmt::Display {
    /// Whether `limit` allows it.
    fn within(self, limit: &Limit) -> bool;
}

macro_rules! integer_number {
    ($($ty:ty),*) => {
        $(impl Number for $ty {
            fn within(self, limit: &Limit) -> bool {
                limit.allows(i128::from(self))
            }
        })*
    };
}
integer_number!(u16, u32, u64, i64);

impl Number for f64 {
    fn within(self, limit: &Limit) -> bool {
        limit.allows_f64(self)
    }
}

/// Checks `value` of `key` against `limit`.
///
/// # Errors
/// The located error, with the range and `note` in the hint, when `value` is outside it.
pub(crate) fn check<T: Number>(
    file: &str,
    source: &str,
    key: &str,
    limit: &Limit,
    note: &str,
    value: T,
    span: Range<usize>,
) -> Result<T, ScenarioError> {
    if value.within(limit) {
        return Ok(value);
    }
    Err(ScenarioError::at(
        file,
        source,
        span,
        format!("`{key}` {value} is outside {limit}"),
    )
    .with_hint(hint(key, limit, note)))
}

/// The hint of a value out of range: the range and why.
pub(crate) fn hint(key: &str, limit: &Limit, note: &str) -> String {
    if note.is_empty() {
        format!("`{key}` takes {limit}")
    } else {
        format!("`{key}` takes {limit} ({note})")
    }
}

const DURATION_NOTE: &str = "ms, at most one simulated day, the longest run";
const LATENCY_NOTE: &str = "ms, at most 60 s per message or transaction";
const ATTEMPTS_NOTE: &str = "attempts per operation";
const MIX_NOTE: &str = "relative weight; at least one weight of `mix` above 0";
const PROBABILITY_NOTE: &str = "a chance: 0.25 is one event in four";
const BUDGET_NOTE: &str = "ms, at most one simulated day";

/// `[run] tick_ms`
pub const TICK_MS: Field = Field::new(
    "run",
    "tick_ms",
    Limit::int(1, 100),
    "ms of simulated time per step; ticks quantise network delivery, 1 to 10 keep latencies meaningful",
);
/// `[run] latency_ms`
pub const RUN_LATENCY_MS: Field = Field::new(
    "run",
    "latency_ms",
    Limit::int(0, LATENCY_MS_MAX as i128),
    LATENCY_NOTE,
)
.pair();
/// `[run] time_limit_ms`
pub const TIME_LIMIT_MS: Field = Field::new(
    "run",
    "time_limit_ms",
    Limit::duration_ms(1),
    "ms of simulated time, at most one day",
);
/// `[hosts] clients`
pub const CLIENTS: Field = Field::new(
    "hosts",
    "clients",
    Limit::int(1, super::CLIENTS_MAX as i128),
    "client hosts",
);
/// `[hosts] callers`
pub const CALLERS: Field = Field::new(
    "hosts",
    "callers",
    Limit::int(1, super::CLIENTS_MAX as i128),
    "merchants, at most one per client",
);
/// `[workload] operations`
pub const OPERATIONS: Field = Field::new(
    "workload",
    "operations",
    Limit::int(1, super::OPERATIONS_MAX as i128),
    "operations per client; large values are allowed and their cost is stated up front",
);
/// `[workload] think_ms`
pub const THINK_MS: Field =
    Field::new("workload", "think_ms", Limit::duration_ms(0), DURATION_NOTE).pair();
/// `[workload] double_submit`
pub const DOUBLE_SUBMIT: Field = Field::new(
    "workload",
    "double_submit",
    Limit::Probability,
    PROBABILITY_NOTE,
);
/// `[workload] key_in_body`
pub const KEY_IN_BODY: Field = Field::new(
    "workload",
    "key_in_body",
    Limit::Probability,
    PROBABILITY_NOTE,
);
/// `[workload] unserviceable`
pub const UNSERVICEABLE: Field = Field::new(
    "workload",
    "unserviceable",
    Limit::Probability,
    PROBABILITY_NOTE,
);
/// `[workload] reuse_key_with_other_body`
pub const REUSE_KEY_WITH_OTHER_BODY: Field = Field::new(
    "workload",
    "reuse_key_with_other_body",
    Limit::Probability,
    PROBABILITY_NOTE,
);
/// `[workload] keys_at_length_limit`
pub const KEYS_AT_LENGTH_LIMIT: Field = Field::new(
    "workload",
    "keys_at_length_limit",
    Limit::Probability,
    PROBABILITY_NOTE,
);
/// `[workload] mix.NAME` for an operation of a target other than the reference's.
pub const MIX_WEIGHT: Field = Field::new(
    "workload.mix",
    "mix weight",
    Limit::int(0, MIX_WEIGHT_MAX as i128),
    MIX_NOTE,
);

/// The field that checks mix entry `name`: the reference's operations by name, any other
/// as a mix weight.
#[must_use]
pub fn mix_field(name: &str) -> &'static Field {
    [
        &MIX_CREATE_ORDER,
        &MIX_CREATE_SHIPMENT,
        &MIX_GET_ORDER,
        &MIX_GET_SHIPMENT,
    ]
    .into_iter()
    .find(|field| field.key == name)
    .unwrap_or(&MIX_WEIGHT)
}

/// `[workload] mix.create_order`
pub const MIX_CREATE_ORDER: Field = Field::new(
    "workload.mix",
    "create_order",
    Limit::int(0, MIX_WEIGHT_MAX as i128),
    MIX_NOTE,
);
/// `[workload] mix.create_shipment`
pub const MIX_CREATE_SHIPMENT: Field = Field::new(
    "workload.mix",
    "create_shipment",
    Limit::int(0, MIX_WEIGHT_MAX as i128),
    MIX_NOTE,
);
/// `[workload] mix.get_order`
pub const MIX_GET_ORDER: Field = Field::new(
    "workload.mix",
    "get_order",
    Limit::int(0, MIX_WEIGHT_MAX as i128),
    MIX_NOTE,
);
/// `[workload] mix.get_shipment`
pub const MIX_GET_SHIPMENT: Field = Field::new(
    "workload.mix",
    "get_shipment",
    Limit::int(0, MIX_WEIGHT_MAX as i128),
    MIX_NOTE,
);
/// `[client] timeout_ms`
pub const TIMEOUT_MS: Field =
    Field::new("client", "timeout_ms", Limit::duration_ms(1), DURATION_NOTE);
/// `[client] deadline_ms`
pub const DEADLINE_MS: Field = Field::new(
    "client",
    "deadline_ms",
    Limit::duration_ms(1),
    "ms, at least `timeout_ms`, at most one simulated day",
);
/// `[client] attempts`
pub const ATTEMPTS: Field = Field::new(
    "client",
    "attempts",
    Limit::int(1, ATTEMPTS_MAX as i128),
    ATTEMPTS_NOTE,
);
/// `[client] backoff_ms_base`
pub const BACKOFF_MS_BASE: Field = Field::new(
    "client",
    "backoff_ms_base",
    Limit::int(0, shipsim_system::client::BACKOFF_MS_CEILING as i128),
    "ms, at most `backoff_ms_max`",
);
/// `[client] backoff_ms_max`
pub const BACKOFF_MS_MAX: Field = Field::new(
    "client",
    "backoff_ms_max",
    Limit::int(0, shipsim_system::client::BACKOFF_MS_CEILING as i128),
    "ms, the client's backoff ceiling",
);
/// `[client] breaker_failures`
pub const BREAKER_FAILURES: Field = Field::new(
    "client",
    "breaker_failures",
    Limit::int(1, 1_000),
    "consecutive transient failures",
);
/// `[client] breaker_cooldown_ms`
pub const BREAKER_COOLDOWN_MS: Field = Field::new(
    "client",
    "breaker_cooldown_ms",
    Limit::duration_ms(1),
    DURATION_NOTE,
);
/// `[client] retry_budget_percent`
pub const RETRY_BUDGET_PERCENT: Field = Field::new(
    "client",
    "retry_budget_percent",
    Limit::int(0, 1_000),
    "percent of first attempts; 1000 is ten retries earned per first attempt",
);
/// `[client] retry_budget_reserve`
pub const RETRY_BUDGET_RESERVE: Field = Field::new(
    "client",
    "retry_budget_reserve",
    Limit::int(0, 100_000),
    "retries",
);
/// `[client] rate_limit.burst`
pub const CLIENT_RATE_LIMIT_BURST: Field = Field::new(
    "client.rate_limit",
    "burst",
    Limit::int(1, 1_000_000),
    "sends admitted back to back",
)
.required();
/// `[client] rate_limit.per_second`
pub const CLIENT_RATE_LIMIT_PER_SECOND: Field = Field::new(
    "client.rate_limit",
    "per_second",
    Limit::int(1, 1_000_000),
    "sends per second",
)
.required();
/// `[service] rate_limit.burst`
pub const RATE_LIMIT_BURST: Field = Field::new(
    "service.rate_limit",
    "burst",
    Limit::int(1, 1_000_000),
    "requests admitted back to back",
)
.required();
/// `[service] rate_limit.per_second`
pub const RATE_LIMIT_PER_SECOND: Field = Field::new(
    "service.rate_limit",
    "per_second",
    Limit::int(1, 1_000_000),
    "requests per second",
)
.required();
/// `[service] store_latency_ms`
pub const STORE_LATENCY_MS: Field = Field::new(
    "service",
    "store_latency_ms",
    Limit::int(0, LATENCY_MS_MAX as i128),
    LATENCY_NOTE,
)
.pair();
/// `[service] carrier_timeout_ms`
pub const CARRIER_TIMEOUT_MS: Field = Field::new(
    "service",
    "carrier_timeout_ms",
    Limit::int(1, DURATION_MS_MAX as i128 - 1),
    "ms, at most `carrier_deadline_ms`",
);
/// `[service] carrier_deadline_ms`: below the lease, which is at most a day, so at most a
/// day less a millisecond.
pub const CARRIER_DEADLINE_MS: Field = Field::new(
    "service",
    "carrier_deadline_ms",
    Limit::int(1, DURATION_MS_MAX as i128 - 1),
    "ms, at least `carrier_timeout_ms`, below `lock_lease_ms`",
);
/// `[service] carrier_attempts`
pub const CARRIER_ATTEMPTS: Field = Field::new(
    "service",
    "carrier_attempts",
    Limit::int(1, ATTEMPTS_MAX as i128),
    ATTEMPTS_NOTE,
);
/// `[service] lock_lease_ms`
pub const LOCK_LEASE_MS: Field = Field::new(
    "service",
    "lock_lease_ms",
    Limit::duration_ms(2),
    "ms, above `carrier_deadline_ms`, at most one simulated day",
);
/// `[service] idempotency_retention_ms`
pub const IDEMPOTENCY_RETENTION_MS: Field = Field::new(
    "service",
    "idempotency_retention_ms",
    Limit::duration_ms(1_000),
    "ms a completed key is remembered, at least 1 s, at most one simulated day",
);
/// `[service] idempotency_sweep_batch`
pub const IDEMPOTENCY_SWEEP_BATCH: Field = Field::new(
    "service",
    "idempotency_sweep_batch",
    Limit::int(1, 100_000),
    "records the sweeper deletes per transaction",
);
/// `[webhooks] tolerance_s`
pub const TOLERANCE_S: Field = Field::new(
    "webhooks",
    "tolerance_s",
    Limit::int(1, TOLERANCE_S_MAX as i128),
    "seconds, at most an hour",
);
/// `[webhooks] exception_percent`
pub const EXCEPTION_PERCENT: Field = Field::new(
    "webhooks",
    "exception_percent",
    Limit::int(0, 100),
    "percent of parcels",
);
/// `[webhooks] sender_timeout_ms`
pub const SENDER_TIMEOUT_MS: Field = Field::new(
    "webhooks",
    "sender_timeout_ms",
    Limit::duration_ms(1),
    DURATION_NOTE,
);
/// `[webhooks] sender_attempts`
pub const SENDER_ATTEMPTS: Field = Field::new(
    "webhooks",
    "sender_attempts",
    Limit::int(1, ATTEMPTS_MAX as i128),
    "attempts per event",
);
/// `[webhooks] sender_concurrency`
pub const SENDER_CONCURRENCY: Field = Field::new(
    "webhooks",
    "sender_concurrency",
    Limit::int(1, 1_000),
    "deliveries in flight per sender",
);
/// `[webhooks] poll_events.every_ms`
pub const POLL_EVENTS_EVERY_MS: Field = Field::new(
    "webhooks.poll_events",
    "every_ms",
    Limit::duration_ms(1),
    "ms between polls of the events feed",
)
.required();
/// `[webhooks] poll_events.limit`
pub const POLL_EVENTS_LIMIT: Field = Field::new(
    "webhooks.poll_events",
    "limit",
    Limit::int(1, shipsim_system::service::EVENTS_LIMIT_MAX as i128),
    "events per page, as `GET /v1/events` takes them",
)
.required();
/// `seed` (top level, repro files)
pub const SEED: Field = Field::new(
    "",
    "seed",
    Limit::int(0, SEED_MAX as i128),
    "a pinned seed; u64::MAX is not one",
);
/// `[budgets] "ENDPOINT".p50_ms_max`
pub const BUDGET_P50_MS_MAX: Field = Field::new(
    "budgets.ENDPOINT",
    "p50_ms_max",
    Limit::duration_ms(0),
    BUDGET_NOTE,
);
/// `[budgets] "ENDPOINT".p95_ms_max`
pub const BUDGET_P95_MS_MAX: Field = Field::new(
    "budgets.ENDPOINT",
    "p95_ms_max",
    Limit::duration_ms(0),
    BUDGET_NOTE,
);
/// `[budgets] "ENDPOINT".p99_ms_max`
pub const BUDGET_P99_MS_MAX: Field = Field::new(
    "budgets.ENDPOINT",
    "p99_ms_max",
    Limit::duration_ms(0),
    BUDGET_NOTE,
);
/// `[budgets] "ENDPOINT".max_ms_max`
pub const BUDGET_MAX_MS_MAX: Field = Field::new(
    "budgets.ENDPOINT",
    "max_ms_max",
    Limit::duration_ms(0),
    BUDGET_NOTE,
);

/// Every numeric field of the scenario's tables (fault parameters: see
/// [`crate::fault::CATALOGUE`] and [`crate::fault::WINDOW_PARAMS`]).
pub const FIELDS: &[Field] = &[
    SEED,
    TICK_MS,
    RUN_LATENCY_MS,
    TIME_LIMIT_MS,
    CLIENTS,
    CALLERS,
    OPERATIONS,
    THINK_MS,
    DOUBLE_SUBMIT,
    KEY_IN_BODY,
    UNSERVICEABLE,
    REUSE_KEY_WITH_OTHER_BODY,
    KEYS_AT_LENGTH_LIMIT,
    MIX_CREATE_ORDER,
    MIX_CREATE_SHIPMENT,
    MIX_GET_ORDER,
    MIX_GET_SHIPMENT,
    TIMEOUT_MS,
    DEADLINE_MS,
    ATTEMPTS,
    BACKOFF_MS_BASE,
    BACKOFF_MS_MAX,
    BREAKER_FAILURES,
    BREAKER_COOLDOWN_MS,
    RETRY_BUDGET_PERCENT,
    RETRY_BUDGET_RESERVE,
    CLIENT_RATE_LIMIT_BURST,
    CLIENT_RATE_LIMIT_PER_SECOND,
    RATE_LIMIT_BURST,
    RATE_LIMIT_PER_SECOND,
    STORE_LATENCY_MS,
    CARRIER_TIMEOUT_MS,
    CARRIER_DEADLINE_MS,
    CARRIER_ATTEMPTS,
    LOCK_LEASE_MS,
    IDEMPOTENCY_RETENTION_MS,
    IDEMPOTENCY_SWEEP_BATCH,
    TOLERANCE_S,
    EXCEPTION_PERCENT,
    SENDER_TIMEOUT_MS,
    SENDER_ATTEMPTS,
    SENDER_CONCURRENCY,
    POLL_EVENTS_EVERY_MS,
    POLL_EVENTS_LIMIT,
    BUDGET_P50_MS_MAX,
    BUDGET_P95_MS_MAX,
    BUDGET_P99_MS_MAX,
    BUDGET_MAX_MS_MAX,
];

/// The ranges `key` takes anywhere in a scenario, for the hint of an error serde found
/// before validation (a negative count, a number too large for its type, a string where a
/// number belongs). A key several fault kinds share (`max_ms`) may have several.
#[must_use]
pub fn ranges_of(key: &str) -> Vec<String> {
    let mut ranges: Vec<String> = Vec::new();
    let mut add = |text: String| {
        if !ranges.contains(&text) {
            ranges.push(text);
        }
    };
    for field in FIELDS.iter().filter(|f| f.key == key) {
        add(hint(field.key, &field.limit, field.note));
    }
    for param in crate::fault::WINDOW_PARAMS.iter().filter(|p| p.name == key) {
        if let Some(limit) = &param.limit {
            add(hint(param.name, limit, param.doc));
        }
    }
    for kind in crate::fault::CATALOGUE {
        for param in kind.params.iter().filter(|p| p.name == key) {
            if let Some(limit) = &param.limit {
                add(format!(
                    "{} (fault kind `{}`)",
                    hint(param.name, limit, param.doc),
                    kind.name
                ));
            }
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_show_their_range_and_refuse_outside_it() {
        // Proves the range check accepts both ends, refuses one past each, and that the
        // error names the value and the hint the range.
        let limit = Limit::int(1, 100);
        assert!(limit.allows(1) && limit.allows(100));
        assert!(!limit.allows(0) && !limit.allows(101));
        assert!(Limit::Probability.allows_f64(1.0) && !Limit::Probability.allows_f64(f64::NAN));
        let error = TICK_MS
            .check("f.toml", "tick_ms = 0\n", 0u64, 10..11)
            .unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("f.toml:1:11: `tick_ms` 0 is outside 1..=100"),
            "{text}"
        );
        assert!(text.contains("hint: `tick_ms` takes 1..=100"), "{text}");
    }

    #[test]
    fn every_key_has_one_entry_per_table() {
        // Proves the field list names each (table, key) once, so the README check and the
        // generators see every field exactly once.
        let mut seen = std::collections::BTreeSet::new();
        for field in FIELDS {
            assert!(
                seen.insert((field.table, field.key)),
                "{}.{} is listed twice",
                field.table,
                field.key
            );
        }
    }

    #[test]
    fn ranges_of_a_shared_key_name_every_kind() {
        // Proves the serde-error hint for a key several kinds share lists each range.
        let ranges = ranges_of("max_ms");
        assert!(ranges.iter().any(|r| r.contains("`latency`")), "{ranges:?}");
        assert!(
            ranges.iter().any(|r| r.contains("`webhook_reorder`")),
            "{ranges:?}"
        );
        assert!(ranges_of("tick_ms")[0].contains("1..=100"));
    }
}
