//! Reachability: the dangerous moments a run is meant to reach (Antithesis's "sometimes"
//! properties), counted after every run from what the wire and the system's own events
//! recorded.
//!
//! An oracle says a run did nothing wrong; it cannot say the run tried anything hard. A
//! [`Moment`] is a boundary of one of the documented rules being crossed: a response lost
//! after the service committed, a crash between the label purchase and the local commit, a
//! retry arriving while the first attempt holds the key's lock, a replay after a restart, a
//! duplicate webhook after its effect committed, a stale signed event. Every report counts
//! how often each was reached, per scenario and per sweep; a scenario lists the ones it is
//! about in `reach = [...]`, and a sweep that never reached one of them fails like a fault
//! that never fired (`reachability`). A green run then also proves it tested what it claims.
//!
//! Moments are counted, never recorded: they read the finished run (its history of raw
//! attempts, its trace, the injected deliveries' answers) and add no event to the trace, so
//! counting them moves no trace hash.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use shipsim_system::client::{AttemptOutcome, ClientError};
use shipsim_system::observe::SystemEvent;

use crate::oracle::ProbeRule;
use crate::run::history::{EventKind, History, OpId, OpOutcome, Operation, Phase, Trace};
use crate::run::hosts::SERVICE;
use crate::target::Conventions;

/// The closed family of moments: one arm per boundary of a rule, each counted by its own
/// function below.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Moment {
    /// A write's attempt got no definite answer (timeout, broken connection, 5xx) although
    /// the target had acted on it: a later attempt with the key was answered with the stored
    /// outcome (a replay).
    ResponseLostAfterCommit,
    /// The service crashed after the carrier sold a shipment's label and before the label
    /// was committed locally.
    CrashAfterLabelBought,
    /// The service crashed after it committed a shipment (the key claimed) and before it
    /// bought the label.
    CrashAfterClaim,
    /// An attempt with a key arrived while the key's first request still held its lock, and
    /// was answered "in flight" (409).
    RetryWhileInFlight,
    /// The service answered a key from its stored outcome after a restart that happened
    /// after the key's first request.
    ReplayAfterRestart,
    /// The service resumed an operation that a crashed process had left half done.
    ResumedAfterCrash,
    /// Two operations of one caller with one key were in flight at once (a double submit).
    SameKeyConcurrently,
    /// Two callers used the same key, and both were answered with success.
    SameKeyTwoCallers,
    /// A key was sent again with another body and refused as reused.
    KeyReusedRefused,
    /// A write carrying its key in the body instead of the header was answered with success.
    KeyInBody,
    /// A write whose key was exactly the target's documented key-length limit long was
    /// answered with success (the accepting side of the boundary).
    KeyAtLengthLimit,
    /// A write whose key was past the target's documented key-length limit was answered 400
    /// (the refusing side of the boundary).
    KeyPastLengthLimit,
    /// An attempt was answered 429, and the operation tried again.
    RateLimitedThenRetried,
    /// An operation ended on a status that retrying cannot change (a 4xx other than 409 and
    /// 429).
    NonRetryableRefusal,
    /// A client's circuit breaker refused an operation.
    BreakerOpened,
    /// A client stopped retrying an operation because its retry budget was spent.
    RetryBudgetSpent,
    /// A client held an attempt back for its own rate limit: the attempt went out later than
    /// its operation started (a first attempt), or than its backoff ended (a retry).
    ClientThrottled,
    /// A downstream (the carrier) answered a retried effect request from its ledger: a lost
    /// downstream response was retried under its key.
    DownstreamReplay,
    /// An ambiguous write, re-issued after the faults healed, got a definite answer.
    AmbiguousSettled,
    /// A write whose every attempt was answered with a 5xx (no timeout, no broken
    /// connection: ambiguous from its statuses alone) gave up and was re-issued after the
    /// heal.
    AmbiguousOn5xx,
    /// A write gave up having sent attempts none of which the server could have acted on
    /// unseen (each refused to connect, or was answered with a definite status such as a
    /// 429), and was reported failed, not ambiguous: the other side of `AmbiguousOn5xx`.
    DefiniteFailure,
    /// A webhook delivery arrived again after its first delivery's effect committed, and was
    /// acknowledged as a duplicate.
    DuplicateWebhookAfterEffect,
    /// A webhook event announcing a shipment's status arrived at the merchant after a later
    /// status had been applied, and was taken in without moving its record backwards.
    WebhookOutOfOrder,
    /// A webhook event exhausted its attempts and was dead-lettered (then redelivered after
    /// the heal).
    WebhookDeadLettered,
    /// A carrier tracking event exhausted the carrier's delivery attempts and was
    /// dead-lettered at the carrier (then redelivered after the heal).
    TrackingDeadLettered,
    /// A captured, correctly signed delivery was replayed to its receiver after the signature
    /// tolerance (a stale signed event), and answered.
    StaleSignedEvent,
    /// A captured delivery was replayed within the signature tolerance, and answered.
    ReplayWithinTolerance,
    /// A forged delivery (a new event id under another body's signature) reached its
    /// receiver, and was answered.
    ForgedEvent,
    /// An event whose webhook was dead-lettered was applied by the merchant from the
    /// service's events feed (`GET /v1/events`), read by its poller after the outage.
    EventRecoveredByFeed,
    /// A caller without the admin key (or with a wrong one) probed an operator route and was
    /// refused (401 or 403).
    OperatorRouteRefused,
    /// A misbehaving caller's probe of the service (an unknown route, an invalid
    /// `X-Request-Id`, a header key and a body key that disagree) was answered with a 4xx or
    /// a replaced request id (`[service] probe_misuse`).
    MisuseProbed,
    /// A write was replayed just inside the idempotency retention, and answered
    /// (`[service] probe_retention`).
    ReplayInsideRetention,
    /// A key was reused after the idempotency retention expired and a sweep interval passed,
    /// and answered (`[service] probe_retention` with a short retention).
    KeyReusedAfterExpiry,
    /// A delivery of the service's outbox failed and the event was delivered by a later
    /// attempt of the sender's own retry schedule (not by an operator's redelivery).
    WebhookRetried,
    /// A probe of the webhook side was answered: a page of the events feed (with the page
    /// after it), a signed carrier event about an unknown shipment, the carrier's tracking
    /// counts (`[service] probe_misuse` with `[webhooks]`).
    WebhooksProbed,
    /// A scan the carrier scheduled (picked up, in transit, ...) fell due while its tracking
    /// sender was quiet (no sale, burst or delivery in the two polls before), and its first
    /// attempt went out: the case where the sender's sleep until the due time, not a poll,
    /// decides when it leaves.
    ScanDueWhileQuiet,
}

impl Moment {
    /// Every moment, in catalogue order.
    pub const ALL: &'static [Moment] = &[
        Moment::ResponseLostAfterCommit,
        Moment::CrashAfterLabelBought,
        Moment::CrashAfterClaim,
        Moment::RetryWhileInFlight,
        Moment::ReplayAfterRestart,
        Moment::ResumedAfterCrash,
        Moment::SameKeyConcurrently,
        Moment::SameKeyTwoCallers,
        Moment::KeyReusedRefused,
        Moment::KeyInBody,
        Moment::KeyAtLengthLimit,
        Moment::KeyPastLengthLimit,
        Moment::RateLimitedThenRetried,
        Moment::NonRetryableRefusal,
        Moment::BreakerOpened,
        Moment::RetryBudgetSpent,
        Moment::ClientThrottled,
        Moment::DownstreamReplay,
        Moment::AmbiguousSettled,
        Moment::AmbiguousOn5xx,
        Moment::DefiniteFailure,
        Moment::DuplicateWebhookAfterEffect,
        Moment::WebhookOutOfOrder,
        Moment::WebhookDeadLettered,
        Moment::TrackingDeadLettered,
        Moment::StaleSignedEvent,
        Moment::ReplayWithinTolerance,
        Moment::ForgedEvent,
        Moment::EventRecoveredByFeed,
        Moment::OperatorRouteRefused,
        Moment::MisuseProbed,
        Moment::ReplayInsideRetention,
        Moment::KeyReusedAfterExpiry,
        Moment::WebhookRetried,
        Moment::WebhooksProbed,
        Moment::ScanDueWhileQuiet,
    ];

    /// The name scenario files (`reach = [...]`) and reports use.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Moment::ResponseLostAfterCommit => "response_lost_after_commit",
            Moment::CrashAfterLabelBought => "crash_after_label_bought",
            Moment::CrashAfterClaim => "crash_after_claim",
            Moment::RetryWhileInFlight => "retry_while_in_flight",
            Moment::ReplayAfterRestart => "replay_after_restart",
            Moment::ResumedAfterCrash => "resumed_after_crash",
            Moment::SameKeyConcurrently => "same_key_concurrently",
            Moment::SameKeyTwoCallers => "same_key_two_callers",
            Moment::KeyReusedRefused => "key_reused_refused",
            Moment::KeyInBody => "key_in_body",
            Moment::KeyAtLengthLimit => "key_at_length_limit",
            Moment::KeyPastLengthLimit => "key_past_length_limit",
            Moment::RateLimitedThenRetried => "rate_limited_then_retried",
            Moment::NonRetryableRefusal => "non_retryable_refusal",
            Moment::BreakerOpened => "breaker_opened",
            Moment::RetryBudgetSpent => "retry_budget_spent",
            Moment::ClientThrottled => "client_throttled",
            Moment::DownstreamReplay => "downstream_replay",
            Moment::AmbiguousSettled => "ambiguous_settled",
            Moment::AmbiguousOn5xx => "ambiguous_on_5xx",
            Moment::DefiniteFailure => "definite_failure",
            Moment::DuplicateWebhookAfterEffect => "duplicate_webhook_after_effect",
            Moment::WebhookOutOfOrder => "webhook_out_of_order",
            Moment::WebhookDeadLettered => "webhook_dead_lettered",
            Moment::TrackingDeadLettered => "tracking_dead_lettered",
            Moment::StaleSignedEvent => "stale_signed_event",
            Moment::ReplayWithinTolerance => "replay_within_tolerance",
            Moment::ForgedEvent => "forged_event",
            Moment::EventRecoveredByFeed => "event_recovered_by_feed",
            Moment::OperatorRouteRefused => "operator_route_refused",
            Moment::MisuseProbed => "misuse_probed",
            Moment::ReplayInsideRetention => "replay_inside_retention",
            Moment::KeyReusedAfterExpiry => "key_reused_after_expiry",
            Moment::WebhookRetried => "webhook_retried",
            Moment::WebhooksProbed => "webhooks_probed",
            Moment::ScanDueWhileQuiet => "scan_due_while_quiet",
        }
    }

    /// One line saying what it is.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Moment::ResponseLostAfterCommit => {
                "a write's answer was lost after it took effect (a later attempt got the replay)"
            }
            Moment::CrashAfterLabelBought => {
                "the service crashed between the label purchase and its local commit"
            }
            Moment::CrashAfterClaim => {
                "the service crashed after claiming a key, before buying the label"
            }
            Moment::RetryWhileInFlight => {
                "a retry arrived while the key's first request held the lock (409)"
            }
            Moment::ReplayAfterRestart => "a stored outcome was replayed after a service restart",
            Moment::ResumedAfterCrash => "the service resumed an operation a crash left half done",
            Moment::SameKeyConcurrently => {
                "two requests with one caller's key were in flight at once"
            }
            Moment::SameKeyTwoCallers => "two callers used the same key, both successfully",
            Moment::KeyReusedRefused => "a key sent again with another body was refused",
            Moment::KeyInBody => "a write with its key in the body succeeded",
            Moment::KeyAtLengthLimit => "a write with a key exactly at the length limit succeeded",
            Moment::KeyPastLengthLimit => "a write with a key past the length limit was refused",
            Moment::RateLimitedThenRetried => "a 429 was answered and the operation retried",
            Moment::NonRetryableRefusal => "an operation ended on a non-retryable 4xx",
            Moment::BreakerOpened => "a client's circuit breaker refused an operation",
            Moment::RetryBudgetSpent => "a client stopped retrying: its retry budget was spent",
            Moment::ClientThrottled => "a client held an attempt back for its own rate limit",
            Moment::DownstreamReplay => {
                "the carrier answered a retried label request from its ledger"
            }
            Moment::AmbiguousSettled => "an ambiguous write got a definite answer after the heal",
            Moment::AmbiguousOn5xx => {
                "a write answered only 5xx gave up and was re-issued after the heal"
            }
            Moment::DefiniteFailure => {
                "a write gave up on definite answers only and was reported failed, not ambiguous"
            }
            Moment::DuplicateWebhookAfterEffect => {
                "a webhook arrived again after its effect committed"
            }
            Moment::WebhookOutOfOrder => "a webhook arrived after a later event was applied",
            Moment::WebhookDeadLettered => "a webhook was dead-lettered (redelivered after heal)",
            Moment::TrackingDeadLettered => {
                "a carrier tracking event was dead-lettered at the carrier (redelivered after heal)"
            }
            Moment::StaleSignedEvent => "a signed delivery was replayed past the tolerance",
            Moment::ReplayWithinTolerance => "a signed delivery was replayed within the tolerance",
            Moment::ForgedEvent => "a forged delivery reached its receiver",
            Moment::EventRecoveredByFeed => {
                "a dead-lettered webhook's event was applied from the events feed"
            }
            Moment::OperatorRouteRefused => {
                "a caller without the admin key was refused at an operator route"
            }
            Moment::MisuseProbed => {
                "a misbehaving caller's probe (unknown route, bad request id, disagreeing keys) was answered"
            }
            Moment::ReplayInsideRetention => "a write was replayed just inside the key retention",
            Moment::KeyReusedAfterExpiry => {
                "a key was reused after its retention expired and a sweep interval passed"
            }
            Moment::WebhookRetried => {
                "a failed delivery of the service's outbox was retried on its schedule and delivered"
            }
            Moment::WebhooksProbed => {
                "a probe of the webhook side (feed page, unknown shipment's event, tracking counts) was answered"
            }
            Moment::ScanDueWhileQuiet => {
                "a scheduled carrier scan fell due while the tracking sender was quiet, and was sent"
            }
        }
    }

    /// How often the run reached this moment.
    #[must_use]
    pub fn count(self, run: &RunFacts<'_>) -> u64 {
        match self {
            Moment::ResponseLostAfterCommit => response_lost_after_commit(run),
            Moment::CrashAfterLabelBought => crash_after_label_bought(run),
            Moment::CrashAfterClaim => crash_after_claim(run),
            Moment::RetryWhileInFlight => attempts_where(run.history, |outcome| {
                matches!(outcome, AttemptOutcome::Response { status, .. }
                    if *status == run.conventions.in_flight_status)
            }),
            Moment::ReplayAfterRestart => replay_after_restart(run),
            Moment::ResumedAfterCrash => system_events(run.trace, |event| {
                matches!(event, SystemEvent::Resumed { .. })
            }),
            Moment::SameKeyConcurrently => same_key_concurrently(run.history),
            Moment::SameKeyTwoCallers => same_key_two_callers(run.history),
            Moment::KeyReusedRefused => attempts_where(run.history, |outcome| {
                matches!(outcome, AttemptOutcome::Response { status, error_code, .. }
                    if run.conventions.is_key_reused(*status, error_code.as_deref()))
            }),
            Moment::KeyInBody => count(run.history.operations().iter().filter(|op| {
                op.placement == Some(shipsim_system::client::KeyPlacement::Body)
                    && matches!(op.outcome, OpOutcome::Ok { .. })
            })),
            Moment::KeyAtLengthLimit => keys_of_length(run, |len, max| len == max, |op| {
                matches!(op.outcome, OpOutcome::Ok { .. })
            }),
            Moment::KeyPastLengthLimit => keys_of_length(run, |len, max| len > max, |op| {
                matches!(op.outcome, OpOutcome::Rejected { status: 400, .. })
            }),
            Moment::RateLimitedThenRetried => count(
                run.history
                    .operations()
                    .iter()
                    .flat_map(|op| op.attempts.windows(2))
                    .filter(|pair| {
                        matches!(pair[0].outcome, AttemptOutcome::Response { status: 429, .. })
                    }),
            ),
            Moment::NonRetryableRefusal => count(
                run.history
                    .operations()
                    .iter()
                    .filter(|op| matches!(op.outcome, OpOutcome::Rejected { status, .. } if is_permanent(status))),
            ),
            Moment::BreakerOpened => breaker_opened(run.history),
            Moment::AmbiguousOn5xx => ambiguous_on_5xx(run.history),
            Moment::DefiniteFailure => definite_failure(run.history, run.conventions),
            Moment::RetryBudgetSpent => retry_budget_spent(run.history),
            Moment::ClientThrottled => count(
                run.history
                    .operations()
                    .iter()
                    .flat_map(|op| op.attempts.iter().scan(None, throttle_wait_ms))
                    .filter(|wait_ms| *wait_ms > 0),
            ),
            Moment::DownstreamReplay => system_events(run.trace, |event| {
                matches!(
                    event,
                    SystemEvent::LabelReplayed { .. } | SystemEvent::DownstreamReplayed { .. }
                )
            }),
            Moment::AmbiguousSettled => count(run.history.operations().iter().filter(|op| {
                op.phase == Phase::Settle
                    && matches!(op.outcome, OpOutcome::Ok { .. } | OpOutcome::Rejected { .. })
            })),
            Moment::DuplicateWebhookAfterEffect => system_events(run.trace, |event| {
                matches!(
                    event,
                    SystemEvent::WebhookReceived {
                        duplicate: true,
                        ..
                    }
                )
            }),
            Moment::WebhookOutOfOrder => run.webhooks.map_or(0, |view| {
                count(
                    view.effects
                        .iter()
                        .filter(|e| e.shipment_id.is_some() && e.status.is_some() && !e.advanced),
                )
            }),
            Moment::WebhookDeadLettered => system_events(run.trace, |event| {
                matches!(event, SystemEvent::WebhookDeadLettered { .. })
            }),
            Moment::TrackingDeadLettered => system_events(run.trace, |event| {
                matches!(event, SystemEvent::WebhookDeadLettered { sender, .. } if sender == "carrier")
            }),
            Moment::StaleSignedEvent => count(run.injections.iter().filter(|i| {
                i.status.is_some() && i.kind == InjectionKind::Replay && i.stale(run.tolerance_s)
            })),
            Moment::ReplayWithinTolerance => count(run.injections.iter().filter(|i| {
                i.status.is_some() && i.kind == InjectionKind::Replay && i.fresh(run.tolerance_s)
            })),
            Moment::ForgedEvent => count(
                run.injections
                    .iter()
                    .filter(|i| i.status.is_some() && i.kind == InjectionKind::Forgery),
            ),
            Moment::EventRecoveredByFeed => run.webhooks.map_or(0, event_recovered_by_feed),
            Moment::OperatorRouteRefused => run.webhooks.map_or(0, |view| {
                count(view.operator_probes.iter().filter(|p| {
                    p.key != crate::oracle::ProbeKey::Operator
                        && matches!(p.status, Some(401 | 403))
                }))
            }),
            Moment::MisuseProbed => probes_answered(run.history, |rule| {
                matches!(
                    rule,
                    ProbeRule::UnknownRoute | ProbeRule::RequestIdReplaced | ProbeRule::KeysDisagree
                )
            }),
            Moment::ReplayInsideRetention => probes_answered(run.history, |rule| {
                rule == ProbeRule::ReplayInsideRetention
            }),
            Moment::KeyReusedAfterExpiry => {
                probes_answered(run.history, |rule| rule == ProbeRule::ReusedAfterExpiry)
            }
            Moment::WebhookRetried => system_events(run.trace, |event| {
                matches!(event, SystemEvent::WebhookDelivered { sender, attempts, .. } if sender == "service" && *attempts >= 2)
            }),
            Moment::WebhooksProbed => probes_answered(run.history, |rule| {
                matches!(
                    rule,
                    ProbeRule::FeedHasMore
                        | ProbeRule::UnknownShipmentIgnored
                        | ProbeRule::TrackingCounted
                        | ProbeRule::UnknownKindIgnored
                        | ProbeRule::ToleranceBoundaryAccepted
                )
            }),
            Moment::ScanDueWhileQuiet => run.webhooks.map_or(0, |view| {
                count(
                    crate::oracle::scan_timings(view, run.tick_ms)
                        .iter()
                        .filter(|scan| scan.quiet && scan.boot == 0),
                )
            }),
        }
    }
}

/// Probes of `rule` that got an answer.
fn probes_answered(history: &History, rule: impl Fn(ProbeRule) -> bool) -> u64 {
    count(
        history
            .probes()
            .iter()
            .filter(|p| p.status.is_some() && p.rule.is_some_and(&rule)),
    )
}

impl fmt::Display for Moment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Moment {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Moment::ALL
            .iter()
            .copied()
            .find(|m| m.name() == text)
            .ok_or_else(|| format!("unknown moment `{text}`"))
    }
}

/// Effects the merchant took from the events feed for events whose webhook the service
/// dead-lettered: read from the merchant's effects and the service's durable outbox.
fn event_recovered_by_feed(view: &crate::oracle::WebhookView) -> u64 {
    let dead: BTreeSet<&str> = view
        .durable
        .outbox
        .values()
        .filter(|r| {
            matches!(
                r.delivery,
                shipsim_system::store::Delivery::DeadLetter { .. }
            )
        })
        .map(|r| r.event.event_id.as_str())
        .collect();
    count(view.effects.iter().filter(|e| {
        e.via == shipsim_system::receiver::Via::Feed && dead.contains(e.event_id.as_str())
    }))
}

/// What an injected webhook delivery was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectionKind {
    /// The same signed bytes again, later (`webhook_replay`).
    Replay,
    /// A new event id under the original signature (`webhook_forge`).
    Forgery,
    /// An extra copy sent at once (`webhook_duplicate`).
    Copy,
}

/// One delivery a webhook fault injected, and the answer its receiver gave, read off the
/// wire: each injected attack has its own verdict, not only the effects it did or did not
/// cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injection {
    /// The fault that injected it.
    pub fault: usize,
    /// What it was.
    pub kind: InjectionKind,
    /// The host it was sent to.
    pub receiver: String,
    /// Seconds between the signature's timestamp (`t=` of the header as sent) and the
    /// receiver's clock when it was sent, either way (a skewed receiver may see it in its
    /// future), if the header had a timestamp.
    pub age_s: Option<u64>,
    /// The status it was answered with; `None` when no answer came (a partition, a timeout).
    pub status: Option<u16>,
}

impl Injection {
    /// Whether its signature was outside `tolerance_s` when it was sent: the receiver must
    /// refuse it.
    #[must_use]
    pub fn stale(&self, tolerance_s: Option<u64>) -> bool {
        matches!((self.age_s, tolerance_s), (Some(age), Some(tolerance)) if age > tolerance)
    }

    /// Whether its signature was well inside `tolerance_s` (a second of margin for the
    /// receiver's rounding): a replayed original must then be acknowledged as a duplicate.
    #[must_use]
    pub fn fresh(&self, tolerance_s: Option<u64>) -> bool {
        matches!((self.age_s, tolerance_s), (Some(age), Some(tolerance)) if age + 1 < tolerance)
    }
}

/// The signature timestamp (`t=` seconds) of a `Shipsim-Signature` header value.
#[must_use]
pub fn signed_at_s(header: &str) -> Option<u64> {
    header.split(',').find_map(|part| {
        let (name, value) = part.trim().split_once('=')?;
        (name == "t").then(|| value.parse().ok()).flatten()
    })
}

/// What moments are counted from: one finished run.
pub struct RunFacts<'a> {
    /// Every operation with its attempts as the wire carried them.
    pub history: &'a History,
    /// Every event (the system's own among them).
    pub trace: &'a Trace,
    /// How the target marks replays, in-flight keys and reused keys.
    pub conventions: &'a Conventions,
    /// The deliveries webhook faults injected, with their answers.
    pub injections: &'a [Injection],
    /// The webhook signature tolerance of the scenario, when it has webhooks.
    pub tolerance_s: Option<u64>,
    /// The webhook parties' records (the merchant's effects), when the target has them.
    pub webhooks: Option<&'a crate::oracle::WebhookView>,
    /// The scenario's tick, ms.
    pub tick_ms: u64,
}

/// How often the run reached every moment (moments never reached are left out).
#[must_use]
pub fn count_all(run: &RunFacts<'_>) -> BTreeMap<Moment, u64> {
    Moment::ALL
        .iter()
        .map(|m| (*m, m.count(run)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn count<T>(items: impl Iterator<Item = T>) -> u64 {
    items.count() as u64
}

/// A status the documented rules call non-retryable: any 4xx but 409 (in flight) and 429.
fn is_permanent(status: u16) -> bool {
    (400..500).contains(&status) && status != 409 && status != 429
}

/// Writes whose key's length stands to the target's documented limit as `length` says, and
/// that ended as `ended` says (none when the target documents no limit).
fn keys_of_length(
    run: &RunFacts<'_>,
    length: impl Fn(usize, usize) -> bool,
    ended: impl Fn(&Operation) -> bool,
) -> u64 {
    let Some(max) = run.conventions.key_len_max else {
        return 0;
    };
    count(run.history.operations().iter().filter(|op| {
        op.kind.is_write()
            && op.key.as_deref().is_some_and(|key| length(key.len(), max))
            && ended(op)
    }))
}

fn attempts_where(history: &History, predicate: impl Fn(&AttemptOutcome) -> bool) -> u64 {
    count(
        history
            .operations()
            .iter()
            .filter(|op| op.kind.is_write())
            .flat_map(|op| &op.attempts)
            .filter(|a| predicate(&a.outcome)),
    )
}

fn system_events(trace: &Trace, predicate: impl Fn(&SystemEvent) -> bool) -> u64 {
    count(trace.events().iter().filter(|event| match &event.kind {
        EventKind::System(system) => predicate(system),
        _ => false,
    }))
}

/// Absolute end of an attempt, µs.
fn ended_us(op: &Operation, attempt: &shipsim_system::client::AttemptRecord) -> u64 {
    op.invoked_at_us + attempt.ended_at_ms * 1_000
}

fn sent_us(op: &Operation, attempt: &shipsim_system::client::AttemptRecord) -> u64 {
    op.invoked_at_us + attempt.sent_at_ms * 1_000
}

fn is_replay(outcome: &AttemptOutcome) -> bool {
    matches!(outcome, AttemptOutcome::Response { status, replayed: true, .. } if (200..300).contains(status))
}

fn lost(outcome: &AttemptOutcome) -> bool {
    match outcome {
        AttemptOutcome::Response { status, .. } => *status >= 500,
        AttemptOutcome::Timeout => true,
        AttemptOutcome::Transport(error) => error.may_have_reached_server(),
    }
}

/// Writes with an answer lost, whose key was later answered with the stored outcome.
fn response_lost_after_commit(run: &RunFacts<'_>) -> u64 {
    let mut replays: BTreeMap<(&str, &str), Vec<u64>> = BTreeMap::new();
    for op in run
        .history
        .operations()
        .iter()
        .filter(|op| op.kind.is_write())
    {
        let Some(key) = op.key.as_deref() else {
            continue;
        };
        for attempt in op.attempts.iter().filter(|a| is_replay(&a.outcome)) {
            replays
                .entry((&op.caller, key))
                .or_default()
                .push(ended_us(op, attempt));
        }
    }
    count(
        run.history
            .operations()
            .iter()
            .filter(|op| op.kind.is_write())
            .filter(|op| {
                let Some(key) = op.key.as_deref() else {
                    return false;
                };
                let Some(later) = replays.get(&(op.caller.as_str(), key)) else {
                    return false;
                };
                op.attempts.iter().any(|a| {
                    lost(&a.outcome) && later.iter().any(|&replayed| replayed > ended_us(op, a))
                })
            }),
    )
}

/// Crashes of the service host, µs.
fn service_crashes(trace: &Trace) -> Vec<u64> {
    trace
        .events()
        .iter()
        .filter(|e| e.host == SERVICE && matches!(e.kind, EventKind::HostCrashed { .. }))
        .map(|e| e.at_us)
        .collect()
}

/// For each (start event, id) the next service crash after it; counts those with no
/// `done` event for the id between the start and the crash.
fn crashed_between(
    trace: &Trace,
    start: impl Fn(&SystemEvent) -> Option<&str>,
    done: impl Fn(&SystemEvent) -> Option<&str>,
) -> u64 {
    let crashes = service_crashes(trace);
    if crashes.is_empty() {
        return 0;
    }
    let mut started: Vec<(u64, &str)> = Vec::new();
    let mut finished: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for event in trace.events() {
        if let EventKind::System(system) = &event.kind {
            if let Some(id) = start(system) {
                started.push((event.at_us, id));
            }
            if let Some(id) = done(system) {
                finished.entry(id).or_default().push(event.at_us);
            }
        }
    }
    count(started.into_iter().filter(|(at, id)| {
        let Some(crash) = crashes.iter().copied().find(|c| c >= at) else {
            return false;
        };
        !finished
            .get(id)
            .is_some_and(|times| times.iter().any(|t| *t >= *at && *t <= crash))
    }))
}

fn crash_after_label_bought(run: &RunFacts<'_>) -> u64 {
    crashed_between(
        run.trace,
        |event| match event {
            SystemEvent::LabelSold { shipment_ref, .. } => Some(shipment_ref.as_str()),
            _ => None,
        },
        |event| match event {
            SystemEvent::LabelAttached { shipment_id, .. } => Some(shipment_id.as_str()),
            _ => None,
        },
    )
}

/// A crash at the `shipment_claimed` checkpoint kills the service before it records the
/// shipment it just committed, so those are counted from the fault that fired there; a
/// crash at any other instant counts when a recorded shipment had no label sold before it.
fn crash_after_claim(run: &RunFacts<'_>) -> u64 {
    let at_checkpoint = count(run.trace.events().iter().filter(|e| {
        e.host == SERVICE
            && matches!(&e.kind, EventKind::FaultFired { detail, .. }
                if detail == CRASH_AT_CLAIM)
    }));
    at_checkpoint
        + crashed_between(
            run.trace,
            |event| match event {
                SystemEvent::ShipmentCreated { shipment_id, .. } => Some(shipment_id.as_str()),
                _ => None,
            },
            |event| match event {
                SystemEvent::LabelSold { shipment_ref, .. } => Some(shipment_ref.as_str()),
                _ => None,
            },
        )
}

/// The detail the crash fault records when it fires at the `shipment_claimed` checkpoint.
const CRASH_AT_CLAIM: &str = "crash at shipment_claimed";

/// Replayed answers for a key first sent before a service restart that preceded them.
fn replay_after_restart(run: &RunFacts<'_>) -> u64 {
    let restarts: Vec<u64> = run
        .trace
        .events()
        .iter()
        .filter(|e| e.host == SERVICE && matches!(e.kind, EventKind::HostRestarted { .. }))
        .map(|e| e.at_us)
        .collect();
    if restarts.is_empty() {
        return 0;
    }
    let mut first_sent: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for op in run
        .history
        .operations()
        .iter()
        .filter(|op| op.kind.is_write())
    {
        let (Some(key), Some(first)) = (op.key.as_deref(), op.attempts.first()) else {
            continue;
        };
        let sent = sent_us(op, first);
        first_sent
            .entry((&op.caller, key))
            .and_modify(|t| *t = (*t).min(sent))
            .or_insert(sent);
    }
    count(
        run.history
            .operations()
            .iter()
            .filter(|op| op.kind.is_write())
            .flat_map(|op| op.attempts.iter().map(move |a| (op, a)))
            .filter(|(op, a)| {
                if !is_replay(&a.outcome) {
                    return false;
                }
                let Some(&first) = op
                    .key
                    .as_deref()
                    .and_then(|key| first_sent.get(&(op.caller.as_str(), key)))
                else {
                    return false;
                };
                let replayed = ended_us(op, a);
                restarts.iter().any(|&r| first < r && r < replayed)
            }),
    )
}

/// Workload writes whose (caller, key) overlaps in time with another's.
fn same_key_concurrently(history: &History) -> u64 {
    let mut by_key: BTreeMap<(&str, &str), Vec<&Operation>> = BTreeMap::new();
    for op in history.workload().filter(|op| op.kind.is_write()) {
        if let Some(key) = op.key.as_deref() {
            by_key.entry((&op.caller, key)).or_default().push(op);
        }
    }
    count(by_key.values().flat_map(|ops| {
        ops.iter().enumerate().filter(move |(i, a)| {
            ops.iter().enumerate().any(|(j, b)| {
                *i != j
                    && a.invoked_at_us <= b.completed_at_us
                    && b.invoked_at_us <= a.completed_at_us
            })
        })
    }))
}

/// Keys answered with success for more than one caller.
fn same_key_two_callers(history: &History) -> u64 {
    let mut callers: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for op in history.operations().iter().filter(|op| op.kind.is_write()) {
        if let (Some(key), OpOutcome::Ok { .. }) = (op.key.as_deref(), &op.outcome) {
            callers.entry(key).or_default().insert(&op.caller);
        }
    }
    count(callers.values().filter(|c| c.len() > 1))
}

fn breaker_opened(history: &History) -> u64 {
    ended_with(
        history,
        &ClientError::CircuitOpen {
            attempts: 0,
            last: String::new(),
        },
    )
}

fn ambiguous_on_5xx(history: &History) -> u64 {
    let only_5xx = |op: &Operation| {
        op.kind.is_write()
            && !op.attempts.is_empty()
            && op.attempts.iter().all(
                |a| matches!(a.outcome, AttemptOutcome::Response { status, .. } if status >= 500),
            )
    };
    let resolved: BTreeSet<OpId> = history
        .operations()
        .iter()
        .filter(|op| op.phase == Phase::Settle)
        .filter_map(|op| op.resolves)
        .collect();
    count(
        history
            .workload()
            .filter(|op| resolved.contains(&op.id) && only_5xx(op)),
    )
}

fn definite_failure(history: &History, conventions: &Conventions) -> u64 {
    let definite = |outcome: &AttemptOutcome| match outcome {
        AttemptOutcome::Transport(shipsim_system::transport::TransportError::Connect(_)) => true,
        AttemptOutcome::Response { status, .. } => {
            *status < 500 && *status != conventions.in_flight_status
        }
        AttemptOutcome::Timeout | AttemptOutcome::Transport(_) => false,
    };
    count(history.workload().filter(|op| {
        op.kind.is_write()
            && matches!(op.outcome, OpOutcome::Failed { .. })
            && !op.attempts.is_empty()
            && op.attempts.iter().all(|a| definite(&a.outcome))
    }))
}

fn retry_budget_spent(history: &History) -> u64 {
    ended_with(
        history,
        &ClientError::RetryBudgetExhausted {
            attempts: 0,
            last: String::new(),
        },
    )
}

/// Operations that ended (failed or ambiguous) with `error`'s kind of client error.
fn ended_with(history: &History, error: &ClientError) -> u64 {
    let text = error.to_string();
    let prefix = text.split(" after").next().unwrap_or(&text);
    count(history.operations().iter().filter(|op| {
        matches!(&op.outcome, OpOutcome::Failed { reason } | OpOutcome::Ambiguous { reason }
            if reason.starts_with(prefix))
    }))
}

/// How long the client held an attempt back before sending it, in ms on its own timeline:
/// a first attempt from its operation's start, a retry from the end of the attempt before
/// it plus its backoff. Only the client's own rate limiter holds a send back; everything
/// else (backoff, `Retry-After`) is in `waited_ms`. A `scan` step over an operation's
/// attempts, `previous` being the attempt before.
/// Exact in whole milliseconds: the client floors both ends of the same timeline and its
/// waits are whole milliseconds, so an attempt nothing held back gives 0.
pub(crate) fn throttle_wait_ms(
    previous_ended_at_ms: &mut Option<u64>,
    attempt: &shipsim_system::client::AttemptRecord,
) -> Option<u64> {
    let ready_ms = previous_ended_at_ms.map_or(0, |ended_at_ms| {
        ended_at_ms.saturating_add(attempt.waited_ms)
    });
    *previous_ended_at_ms = Some(attempt.ended_at_ms);
    Some(attempt.sent_at_ms.saturating_sub(ready_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claim_crash_detail_is_what_the_crash_fault_records() {
        // Proves the text `crash_after_claim` looks for is the one the checkpoint observer
        // (run/state.rs) writes when it crashes the service at `shipment_claimed`.
        let point = shipsim_system::observe::Checkpoint::ShipmentClaimed;
        assert_eq!(CRASH_AT_CLAIM, format!("crash at {}", point.name()));
    }

    #[test]
    fn names_round_trip_and_are_unique() {
        // Proves every moment parses back from its name and no two share one.
        let mut names = BTreeSet::new();
        for moment in Moment::ALL {
            assert_eq!(moment.name().parse::<Moment>(), Ok(*moment));
            assert!(names.insert(moment.name()), "duplicate {}", moment.name());
        }
        assert!("nowhere".parse::<Moment>().is_err());
    }

    #[test]
    fn signature_timestamps_are_read_from_the_raw_header() {
        // Proves the timestamp is read from `t=` wherever it stands, and a header without
        // one has none.
        assert_eq!(signed_at_s("t=1767225600,v1=ab"), Some(1_767_225_600));
        assert_eq!(signed_at_s("v1=ab, t=5"), Some(5));
        assert_eq!(signed_at_s("v1=ab"), None);
    }

    #[test]
    fn stale_and_fresh_leave_a_margin_at_the_boundary() {
        // Proves a replay just past the tolerance is stale, one well inside is fresh, and
        // one at the boundary is neither (the receiver rounds to seconds).
        let at = |age_s| Injection {
            fault: 0,
            kind: InjectionKind::Replay,
            receiver: "receiver".into(),
            age_s: Some(age_s),
            status: Some(400),
        };
        assert!(at(301).stale(Some(300)));
        assert!(!at(300).stale(Some(300)));
        assert!(!at(300).fresh(Some(300)));
        assert!(!at(299).fresh(Some(300)));
        assert!(at(10).fresh(Some(300)));
        assert!(!at(10).stale(None));
    }
}
