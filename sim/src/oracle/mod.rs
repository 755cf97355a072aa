//! Oracles: checks of a finished run. Each reads the history (what the clients sent and were
//! answered), the target's inventory (when the target says how to read its store) and the
//! downstreams' ledgers of effects, and returns every violation it finds (it never stops at
//! the first). None of them knows any one API: resources, keys, states and effects come in
//! the target's terms ([`crate::Kind`], [`crate::Seen`], [`crate::Resource`],
//! [`crate::Effect`]).
//!
//! One file per oracle, same shape: `check(&OracleInput) -> Vec<Violation>`. Latency
//! budgets are judged over all seeds of a scenario, in [`crate::many::sweep`]; the rest per seed.

mod acknowledged_writes;
mod ambiguity_resolved;
mod client_discipline;
mod credentials_honoured;
mod exactly_once;
mod service_probes;
mod stable_replays;
mod state_machine;
mod webhook_once;

use std::fmt;
use std::str::FromStr;

pub use exactly_once::Duplicates;
pub(crate) use service_probes::id_of;
pub use service_probes::{
    DOCUMENTED_RETENTION_MS, DOCUMENTED_SWEEP_BATCH, DOCUMENTED_SWEEP_INTERVAL_MS,
};
pub(crate) use webhook_once::scan_timings;

use crate::run::history::{History, OpId};
use crate::scenario::Scenario;
use crate::target::{Conventions, Durables, Effect, Inventories, Kind};

/// The closed family of oracles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OracleKind {
    /// At most one shipment (and order) per (caller, key) and per logical operation; at most
    /// one carrier label per shipment; no label for a shipment the service does not have.
    ExactlyOnce,
    /// Every success for a key returns the first outcome's ids; a key reused with another
    /// body is refused, never applied; one caller's key never touches another's resources.
    StableReplays,
    /// Every ambiguous operation, re-issued after heal, resolved to a definite outcome, and
    /// nothing is left half-done.
    AmbiguityResolved,
    /// Every acknowledged write is durable and matches what was acknowledged.
    AcknowledgedWrites,
    /// The client retried only what may be retried, never before `Retry-After`, within
    /// its backoff bounds, with one key per operation, within its retry budget, never
    /// while its circuit breaker was open, and never faster than its own rate limit.
    ClientDiscipline,
    /// Orders and shipments only move forward, and the final state is consistent.
    StateMachine,
    /// Every webhook event was delivered and took effect exactly once, in order.
    WebhookOnce,
    /// During a key rotation, no request was refused (401) for a key that was active
    /// while it was in flight.
    CredentialsHonoured,
    /// The probes sent after the settle (a misbehaving caller, replays at the edges of the
    /// idempotency retention) were each answered as the README's rule for it says.
    ServiceProbes,
    /// End-to-end latency per endpoint within the scenario's budgets (over all seeds).
    LatencyBudget,
}

impl OracleKind {
    /// Every oracle, in catalogue order.
    pub const ALL: &'static [OracleKind] = &[
        OracleKind::ExactlyOnce,
        OracleKind::StableReplays,
        OracleKind::AmbiguityResolved,
        OracleKind::AcknowledgedWrites,
        OracleKind::ClientDiscipline,
        OracleKind::StateMachine,
        OracleKind::WebhookOnce,
        OracleKind::CredentialsHonoured,
        OracleKind::ServiceProbes,
        OracleKind::LatencyBudget,
    ];

    /// The name used in scenario files and reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            OracleKind::ExactlyOnce => "exactly_once",
            OracleKind::StableReplays => "stable_replays",
            OracleKind::AmbiguityResolved => "ambiguity_resolved",
            OracleKind::AcknowledgedWrites => "acknowledged_writes",
            OracleKind::ClientDiscipline => "client_discipline",
            OracleKind::StateMachine => "state_machine",
            OracleKind::WebhookOnce => "webhook_once",
            OracleKind::CredentialsHonoured => "credentials_honoured",
            OracleKind::ServiceProbes => "service_probes",
            OracleKind::LatencyBudget => "latency_budget",
        }
    }

    /// One line saying what it proves.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            OracleKind::ExactlyOnce => {
                "at most one shipment per (caller, key) and per operation; one label per shipment"
            }
            OracleKind::StableReplays => {
                "replays return the first outcome; a reused key with another body is refused"
            }
            OracleKind::AmbiguityResolved => {
                "every ambiguous operation resolves after heal; nothing left half-done"
            }
            OracleKind::AcknowledgedWrites => {
                "every acknowledged write is durable and as acknowledged"
            }
            OracleKind::ClientDiscipline => {
                "no retry of 4xx, none before Retry-After, backoff in bounds, one key, budget kept, breaker obeyed"
            }
            OracleKind::StateMachine => {
                "orders and shipments only move forward; final state consistent"
            }
            OracleKind::WebhookOnce => {
                "every webhook delivered and acted on exactly once, forward only; forgeries refused"
            }
            OracleKind::CredentialsHonoured => {
                "during a key rotation, no 401 for a key active while the request was in flight"
            }
            OracleKind::ServiceProbes => {
                "probes after the settle (unknown route, request ids, disagreeing keys, retention) answered as documented"
            }
            OracleKind::LatencyBudget => {
                "per-endpoint latency percentiles within the scenario's budgets"
            }
        }
    }

    /// Checks one seed's run. The latency budget is judged per scenario, not here.
    #[must_use]
    pub fn check(self, input: &OracleInput<'_>) -> Vec<Violation> {
        let mut found = match self {
            OracleKind::ExactlyOnce => exactly_once::check(input),
            OracleKind::StableReplays => stable_replays::check(input),
            OracleKind::AmbiguityResolved => ambiguity_resolved::check(input),
            OracleKind::AcknowledgedWrites => acknowledged_writes::check(input),
            OracleKind::ClientDiscipline => client_discipline::check(input),
            OracleKind::StateMachine => state_machine::check(input),
            OracleKind::WebhookOnce => webhook_once::check(input),
            OracleKind::CredentialsHonoured => credentials_honoured::check(input),
            OracleKind::ServiceProbes => service_probes::check(input),
            OracleKind::LatencyBudget => Vec::new(),
        };
        for violation in &mut found {
            // Oracles re-assert what they were handed (STYLE.md 8): a violation names its
            // own oracle and operations that exist.
            assert_eq!(violation.oracle, self, "oracle mislabelled its violation");
            for op in &violation.operations {
                assert!(
                    input.history.get(*op).is_some(),
                    "violation names unknown operation {op}"
                );
            }
        }
        found
    }
}

impl fmt::Display for OracleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OracleKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        OracleKind::ALL
            .iter()
            .copied()
            .find(|o| o.name() == text)
            .ok_or_else(|| format!("unknown oracle `{text}`"))
    }
}

/// What the webhook parties did, for scenarios with webhooks.
#[derive(Clone, Debug)]
pub struct WebhookView {
    /// The scenario's webhook settings.
    pub settings: crate::scenario::WebhookSettings,
    /// The carrier's tracking log with delivery states.
    pub tracking: Vec<shipsim_system::carrier::TrackingItem>,
    /// Every side effect of the merchants' receiver.
    pub effects: Vec<shipsim_system::receiver::Effect>,
    /// Deliveries the receiver acknowledged as duplicates, and refused.
    pub receiver_absorbed: (u64, u64),
    /// Ids of forged events the faults sent.
    pub forged: std::collections::BTreeSet<String>,
    /// The service's store as the running process sees it at the end.
    pub tables: shipsim_system::store::Tables,
    /// The service's store as it would survive a crash at the end.
    pub durable: shipsim_system::store::Tables,
    /// The service's deliveries to the merchants as the wire carried them (every attempt,
    /// answered or cut short by the sender's timeout or a crash), in the order they ended.
    pub deliveries: Vec<SignedDelivery>,
    /// The carrier's tracking deliveries to the service as the wire carried them, recorded
    /// the same way (empty without `[webhooks] tracking`).
    pub tracking_deliveries: Vec<SignedDelivery>,
    /// Requests a misbehaving caller (and the operator) sent to the outbox's operator routes
    /// after the settle phase, as the wire answered them (`[webhooks] probe_operator`; empty
    /// otherwise).
    pub operator_probes: Vec<OperatorProbe>,
}

/// Which admin key an [`OperatorProbe`] carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKey {
    /// No `X-Admin-Key` header: must be refused.
    Missing,
    /// A key that is not the operator's: must be refused.
    Wrong,
    /// The operator's own key: must be answered, truthfully.
    Operator,
}

/// One request to an operator route, its raw answer, and the outbox's delivery counts as
/// the store held them (pending, delivered, dead letters) just before it was sent and just
/// after its answer came back: what the oracle needs to judge, without asking the service,
/// whether the route refused a caller without the key, had no effect, and told the truth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorProbe {
    /// `GET` or `POST`.
    pub method: String,
    /// The route (`/v1/admin/outbox/redeliver`).
    pub path: String,
    /// The admin key it carried.
    pub key: ProbeKey,
    /// The answer's status; `None` when none came back.
    pub status: Option<u16>,
    /// The answer's raw body.
    pub body: bytes::Bytes,
    /// The store's outbox counts just before the request was sent.
    pub outbox_before: (u64, u64, u64),
    /// The store's outbox counts just after the answer came back.
    pub outbox_after: (u64, u64, u64),
}

/// The rule a [`Probe`] crosses; the oracle `service_probes` judges each by its own rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProbeRule {
    /// A route the service does not have: 404 with the envelope's `route_not_found`.
    UnknownRoute,
    /// A valid caller-sent `X-Request-Id`: echoed.
    RequestIdEchoed,
    /// An invalid caller-sent `X-Request-Id`: replaced by a fresh, valid one.
    RequestIdReplaced,
    /// An `Idempotency-Key` header and a body key that disagree: 400, nothing stored.
    KeysDisagree,
    /// A key reused with another body: the 422 on the wire is in the service's reports.
    KeyReuseReported,
    /// The first create of a retention probe (its answer names the ids replays must keep).
    RetentionFirst,
    /// The same request again just inside the retention: the stored answer, no effect.
    ReplayInsideRetention,
    /// The store read over the operator route a sweep interval after the probe's records
    /// expired: none of them left.
    ExpiredSwept,
    /// The key again after the retention: executed as a new request.
    ReusedAfterExpiry,
    /// The carrier called with a wrong or missing API key: 401 or 403, no label sold.
    CarrierKeyRefused,
    /// A body whose JSON is well formed but whose field has the wrong type: 400 with the
    /// field's path in the details (`items[0].quantity`).
    MalformedFieldNamed,
    /// A create the carrier refused, replayed with its key: the stored refusal, byte for
    /// byte.
    RefusalReplayed,
    /// A page of the events feed: a `has_more` of true is followed by a page with events.
    FeedHasMore,
    /// A signed carrier event about a shipment the service does not have: acknowledged
    /// with `"ignored": "unknown_shipment"`.
    UnknownShipmentIgnored,
    /// The carrier's operator counts of its tracking deliveries: what its log holds.
    TrackingCounted,
    /// The operator's store read: holds the order the probes created.
    StoreReadWhole,
    /// The operator's store read after the drain: no parcel ended in an outcome the
    /// scenario's `exception_percent` (0 or 100) rules out.
    TrackingOutcomes,
    /// `GET /metrics` without credentials (a scraper): 200 with the Prometheus text
    /// exposition holding the documented `shipsim_http_requests_total` family, not an
    /// error envelope.
    MetricsExposed,
    /// A shipment body whose `weight_grams` is out of range (0): 400 naming
    /// `weight_grams`, nothing stored under its key, no label bought.
    MalformedShipmentRefused,
    /// A signed carrier event of a kind the service does not know: acknowledged with
    /// `"ignored": "unknown_kind"` (README: "an event of a kind it does not know is
    /// acknowledged and taken in without effect").
    UnknownKindIgnored,
    /// A signed carrier event whose timestamp is exactly the tolerance before the service's
    /// clock when it read it: accepted (the tolerance is the largest accepted gap).
    ToleranceBoundaryAccepted,
}

/// One probe request and its raw answer, with what was around it: what the oracle needs to
/// judge the rule without asking the service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Probe {
    /// The rule it crosses (`None` only in `Default`).
    pub rule: Option<ProbeRule>,
    /// What was sent, one line (method, path, the header or key at issue).
    pub request: String,
    /// The `X-Request-Id` it carried, if any.
    pub request_id_sent: Option<String>,
    /// Simulated time it was sent, ms.
    pub sent_at_ms: u64,
    /// The answer's status; `None` when none came back.
    pub status: Option<u16>,
    /// The answer's raw `X-Request-Id`.
    pub request_id: Option<String>,
    /// Whether the answer carried `Idempotent-Replayed: true`.
    pub replayed: bool,
    /// The answer's raw body.
    pub body: bytes::Bytes,
    /// The downstreams' effects (carrier labels sold) just before it was sent and just after
    /// its answer: the ledger, not the service, says whether it touched the carrier.
    pub effects: (u64, u64),
    /// The service's own reports of the refusal this probe provokes, before and after.
    pub reported: (u64, u64),
    /// Keys the store still held, for probes about what is stored.
    pub stored_keys: Vec<String>,
    /// Simulated ms since the probe's first create was answered (retention probes).
    pub since_first_ms: u64,
    /// The id the probe's first create was answered with (retention probes).
    pub first_id: Option<String>,
    /// The caller and idempotency key it wrote under (retention probes).
    pub scope: Option<(String, String)>,
    /// What the answer is compared with: the first answer of a replayed refusal, the next
    /// page of the feed, the counts the carrier's log holds (status and body).
    pub earlier: Option<(u16, bytes::Bytes)>,
    /// For a signed carrier event: the gap in whole seconds between its signature's
    /// timestamp and the service's clock when it read the event, when that is known
    /// exactly (the service's clock showed the same second when the probe was sent and when
    /// its answer came back); `None` otherwise.
    pub signature_skew_s: Option<u64>,
}

/// One webhook delivery attempt as it left the sender and was answered: the raw signature
/// header and body, so an oracle can tell which secrets signed it without asking anyone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedDelivery {
    /// The merchant it was for (the receiver path's last segment).
    pub caller: String,
    /// The raw `Shipsim-Signature` header.
    pub signature: Option<String>,
    /// The raw body.
    pub body: bytes::Bytes,
    /// When it was sent, µs of simulated time.
    pub sent_at_us: u64,
    /// When its answer came back (or the transport gave up), µs of simulated time.
    pub answered_at_us: u64,
    /// The answer's status; `None` when none came back.
    pub status: Option<u16>,
    /// The boot of the sending host it left from: attempts of one boot were scheduled by one
    /// running sender.
    pub boot: u64,
}

/// The webhook traffic of a target with a carrier that sends tracking events and a service
/// that announces changes to merchants (the reference system): what the `webhook_once`
/// oracle reads, and how the `webhook_burst` fault adds events.
pub trait WebhookParties: Send + Sync + 'static {
    /// What the parties did in a run of `scenario`; `None` when it has no webhooks.
    fn view(
        &self,
        durables: &Durables,
        scenario: &Scenario,
        forged: &std::collections::BTreeSet<String>,
    ) -> Option<WebhookView>;

    /// Schedules `events` more deliveries, due at `due_at_ms` (ms since the Unix epoch),
    /// choosing what they are about with `rng` (the `webhook_burst` fault, number
    /// `stream`).
    fn burst(
        &self,
        durables: &Durables,
        events: u32,
        rng: &mut rand_chacha::ChaCha8Rng,
        due_at_ms: u64,
        stream: u64,
    );
}

/// What an oracle looks at.
pub struct OracleInput<'a> {
    /// The scenario that ran.
    pub scenario: &'a Scenario,
    /// The seed.
    pub seed: u64,
    /// Every operation, workload and settle.
    pub history: &'a History,
    /// The target's resource kinds, in table order.
    pub kinds: &'a [Kind],
    /// How the target's API marks replays, in-flight and reused keys.
    pub conventions: &'a Conventions,
    /// What the target holds at the end, when it says how to read it.
    pub inventory: Option<&'a Inventories>,
    /// Every effect the downstreams performed.
    pub effects: &'a [Effect],
    /// Whether the target says how to read its downstreams' ledgers: when it does not,
    /// `effects` is empty for want of a ledger, not because nothing was performed.
    pub ledgers_read: bool,
    /// Webhook traffic, when the scenario has webhooks.
    pub webhooks: Option<&'a WebhookView>,
    /// Deliveries the webhook faults injected (replays, forgeries, copies) and the answers
    /// their receivers gave, as the wire carried them.
    pub injections: &'a [crate::reach::Injection],
}

impl OracleInput<'_> {
    /// The kind an operation acted on.
    pub(crate) fn kind(&self, op: &crate::run::history::Operation) -> &Kind {
        &self.kinds[op.kind.kind_index()]
    }
}

/// A violation: what broke, in which seed, shown by which operations and facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The oracle that found it.
    pub oracle: OracleKind,
    /// The seed.
    pub seed: u64,
    /// One sentence.
    pub message: String,
    /// Operations involved.
    pub operations: Vec<OpId>,
    /// Facts, one per line.
    pub evidence: Vec<String>,
}

impl Violation {
    pub(crate) fn new(
        oracle: OracleKind,
        input: &OracleInput<'_>,
        message: impl Into<String>,
    ) -> Self {
        Violation {
            oracle,
            seed: input.seed,
            message: message.into(),
            operations: Vec::new(),
            evidence: Vec::new(),
        }
    }

    pub(crate) fn ops(mut self, operations: impl IntoIterator<Item = OpId>) -> Self {
        self.operations.extend(operations);
        self.operations.sort_unstable();
        self.operations.dedup();
        self
    }

    pub(crate) fn evidence(mut self, line: impl Into<String>) -> Self {
        self.evidence.push(line.into());
        self
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] seed {}: {}", self.oracle, self.seed, self.message)
    }
}

/// Runs the scenario's per-seed oracles.
#[must_use]
pub fn check_all(input: &OracleInput<'_>) -> Vec<Violation> {
    input
        .scenario
        .oracles
        .iter()
        .flat_map(|oracle| oracle.check(input))
        .collect()
}

#[cfg(test)]
pub(crate) mod testing;
