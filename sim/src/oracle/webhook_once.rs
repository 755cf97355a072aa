//! `webhook_once`: every webhook event was delivered, and took effect exactly once.
//!
//! Inbound (carrier -> service): every tracking event the carrier logged was delivered and
//! is recorded as processed in the service's durable store; no carrier event caused more
//! than one outbound announcement; no forged event was taken in; and each parcel's story,
//! as the carrier sent it, happened in order (label created, picked up, in transit, then
//! delivered or exception, no scan dated before the one it follows), so that an event the
//! service sees out of order was reordered on the way, not born so.
//!
//! Outbound (service -> merchant): every event the service committed to its outbox was
//! delivered; the merchant acted on each exactly once and on nothing else (no forged or
//! phantom events); each shipment only moved forward in the merchant's records, and ended
//! where the service's own record is; each event about a shipment carries its position
//! among them in commit order (`sequence` 1, 2, 3, ...); and every shipment whose creation
//! ended has its event in the outbox at all (a change never written is never delivered).
//!
//! A merchant that polls the events feed (`[webhooks] poll_events`) is held to more and to
//! less: an event its webhook never delivered (dead-lettered) is fine if the merchant
//! applied it anyway, from the feed; every event must still be applied exactly once,
//! whichever way (or both ways) it came; and what came from the feed was applied in the
//! service's commit order.
//!
//! The outbox's sender keeps its retry schedule (README, "Webhooks", "Retry schedule"): a
//! failed attempt is retried once its full-jitter backoff has run (at most the backoff's cap
//! for that attempt) and the sender's next look has come (at most `poll_ms` later), unless
//! every delivery slot was busy in between. Judged from the wire: each attempt's end and the
//! next attempt's start, as the service's outbound transport carried them.
//!
//! The outbox's operator routes (`[webhooks] probe_operator`): a caller without the admin key,
//! or with a wrong one, is refused (401 or 403, with the error envelope) and requeues no dead
//! letter; the operator's own read of the outbox counts is what the store holds. Judged from
//! the raw answers and the store's counts around each request.

use std::collections::BTreeMap;

use shipsim_system::api::{ShipmentStatus, TrackingKind};
use shipsim_system::receiver::Via;
use shipsim_system::store::Delivery;

use super::{OracleInput, OracleKind, ProbeKey, Violation, WebhookView};
use crate::reach::InjectionKind;

const ORACLE: OracleKind = OracleKind::WebhookOnce;

pub(super) fn check(input: &OracleInput<'_>) -> Vec<Violation> {
    let mut found = Vec::new();
    injections(input, &mut found);
    let Some(view) = input.webhooks else {
        return found;
    };
    if view.settings.tracking {
        inbound(input, view, &mut found);
        story_order(input, view, &mut found);
        tracking_wake_ups(input, view, &mut found);
    }
    if view.settings.outbound {
        outbound(input, view, &mut found);
        announcements(input, view, &mut found);
        sequences(input, view, &mut found);
        every_shipment_announced(input, view, &mut found);
        retry_schedule(input, view, &mut found);
    }
    operator_probes(input, view, &mut found);
    receiver_refusals(input, view, &mut found);
    found
}

/// The merchants' receiver counts every delivery it refused (the report's "rejected"
/// figure): at least as many as the injected deliveries the wire carried its 4xx refusal
/// for. A receiver that refuses attacks but forgets them in its count would hide, in every
/// report, the attacks it met.
fn receiver_refusals(input: &OracleInput<'_>, view: &WebhookView, found: &mut Vec<Violation>) {
    let refused_on_wire = input
        .injections
        .iter()
        .filter(|i| i.receiver == crate::run::hosts::RECEIVER)
        .filter(|i| i.status.is_some_and(|s| (400..500).contains(&s)))
        .count() as u64;
    let (_, counted) = view.receiver_absorbed;
    if counted < refused_on_wire {
        found.push(
            Violation::new(
                ORACLE,
                input,
                format!(
                    "the merchants' receiver counted {counted} refused deliveries; the wire carried its refusal of {refused_on_wire} injected ones"
                ),
            )
            .evidence("the report's count of refused deliveries under-counts the attacks the receiver met"),
        );
    }
}

/// The tick the simulation's timers fire on rounds a wait up by less than one tick, and the
/// sender's clock reads whole milliseconds: the slack the retry schedule is judged with.
const SCHEDULE_SLACK_MS: u64 = 1;

/// Whether the scenario moves a host's clock (skew, steps): the senders' due times are then
/// read on a clock the simulation's timeline does not share.
fn has_clock_fault(input: &OracleInput<'_>) -> bool {
    input
        .scenario
        .faults
        .iter()
        .any(|f| f.kind.info().family == crate::fault::Family::Time)
}

/// A failed delivery is retried on schedule (README, "Webhooks", "Retry schedule"): the
/// sender sleeps until the retry's due time (the failure plus a full-jitter backoff of at
/// most `backoff_cap_ms(attempt)`), and looks at its queue at most once per `poll_ms`, so the
/// next attempt of the event leaves no later than the cap plus `poll_ms` (plus one tick)
/// after the failed one ended. Judged from the wire, per event and per boot of the service
/// (a crash restarts the schedule), for the first `attempt_count_max` attempts (later ones
/// follow an operator's redelivery, not a backoff); excused when every delivery slot was
/// busy at some moment of the wait (the retry then waits for a slot) and under a clock fault
/// (the sender's due times are read on its clock, its sleeps on the simulation's).
fn retry_schedule(input: &OracleInput<'_>, view: &WebhookView, found: &mut Vec<Violation>) {
    if has_clock_fault(input) {
        return;
    }
    let sender = view.settings.sender;
    let tick_ms = input.scenario.run.tick_ms;
    let mut by_event: BTreeMap<(u64, String), Vec<&super::SignedDelivery>> = BTreeMap::new();
    for delivery in &view.deliveries {
        let Some(event_id) = BodyFields::of(&delivery.body)
            .and_then(|fields| fields.event_id.as_ref()?.as_str().map(str::to_string))
        else {
            continue;
        };
        by_event
            .entry((delivery.boot, event_id))
            .or_default()
            .push(delivery);
    }
    let mut late: Vec<String> = Vec::new();
    for ((boot, event_id), mut attempts) in by_event {
        attempts.sort_by_key(|d| (d.sent_at_us, d.answered_at_us));
        for (index, pair) in attempts.windows(2).enumerate() {
            let attempt = u32::try_from(index).unwrap_or(u32::MAX);
            if attempt + 1 >= sender.attempt_count_max {
                break;
            }
            let (failed, next) = (pair[0], pair[1]);
            if failed.status.is_some_and(|s| (200..300).contains(&s)) {
                // Delivered: a later send of the event is an operator's or a duplicate's.
                break;
            }
            let cap_ms = shipsim_system::client::backoff_cap_ms(
                attempt,
                sender.backoff_ms_base,
                sender.backoff_ms_max,
            );
            let bound_us = (cap_ms + sender.poll_ms + tick_ms + SCHEDULE_SLACK_MS) * 1_000;
            let waited_us = next.sent_at_us.saturating_sub(failed.answered_at_us);
            if waited_us <= bound_us
                || slots_full(
                    &view.deliveries,
                    boot,
                    (failed.answered_at_us, next.sent_at_us),
                    sender.concurrency,
                )
            {
                continue;
            }
            late.push(format!(
                "{event_id}: attempt {} ended at {:.3} ms ({}), attempt {} left at {:.3} ms: {} ms later, past the backoff cap of {cap_ms} ms + poll {} ms + tick {tick_ms} ms",
                attempt + 1,
                failed.answered_at_us as f64 / 1_000.0,
                failed
                    .status
                    .map_or_else(|| "no answer".to_string(), |s| format!("status {s}")),
                attempt + 2,
                next.sent_at_us as f64 / 1_000.0,
                waited_us / 1_000,
                sender.poll_ms,
            ));
        }
    }
    if let Some(first) = late.first() {
        found.push(
            Violation::new(
                ORACLE,
                input,
                format!(
                    "the outbox sender retried {} failed deliveries later than its schedule allows; first: {first}",
                    late.len()
                ),
            )
            .evidence("a retry is due when its backoff has run; the sender looks when one is due, at most once per poll")
            .evidence(format!("{} late retries in all", late.len())),
        );
    }
}

/// The fields of a delivered event's body the wire checks read, each as
/// `serde_json::from_slice::<Value>` and then `get(name)` would give it, read in one pass
/// without building the body's map (the checks read thousands of bodies a seed, twice:
/// the oracle and the reachability count). Every value is still parsed as a `Value`, so a
/// body reads exactly when it parses as one; a repeated key keeps its last value, as a
/// `Value` map does; a body that is not an object has none of the fields.
#[derive(Default)]
struct BodyFields {
    event_id: Option<serde_json::Value>,
    kind: Option<serde_json::Value>,
    occurred_at_ms: Option<serde_json::Value>,
}

impl BodyFields {
    /// The fields of `body`; `None` when it does not parse, or is not an object.
    fn of(body: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Self>(body).ok()
    }
}

impl<'de> serde::Deserialize<'de> for BodyFields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(BodyFieldsVisitor)
    }
}

struct BodyFieldsVisitor;

impl<'de> serde::de::Visitor<'de> for BodyFieldsVisitor {
    type Value = BodyFields;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<BodyFields, A::Error> {
        let mut fields = BodyFields::default();
        while let Some(key) = map.next_key::<BodyKey>()? {
            let value = map.next_value::<serde_json::Value>()?;
            match key {
                BodyKey::EventId => fields.event_id = Some(value),
                BodyKey::Kind => fields.kind = Some(value),
                BodyKey::OccurredAtMs => fields.occurred_at_ms = Some(value),
                BodyKey::Other => {}
            }
        }
        Ok(fields)
    }
}

/// A key of a delivered body, told apart without allocating it.
enum BodyKey {
    EventId,
    Kind,
    OccurredAtMs,
    Other,
}

impl<'de> serde::Deserialize<'de> for BodyKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl serde::de::Visitor<'_> for KeyVisitor {
            type Value = BodyKey;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string key")
            }
            fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<BodyKey, E> {
                Ok(match key {
                    "event_id" => BodyKey::EventId,
                    "kind" => BodyKey::Kind,
                    "occurred_at_ms" => BodyKey::OccurredAtMs,
                    _ => BodyKey::Other,
                })
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// One tracking event's first attempt on the carrier's wire, against the time it fell due.
#[derive(Clone, Debug)]
pub(crate) struct ScanTiming {
    /// Its event id.
    pub event_id: String,
    /// Its kind (`picked_up`, ...), as the body says.
    pub kind: String,
    /// When it fell due, µs of simulated time: the body's `occurred_at_ms` (the due time the
    /// carrier scheduled it for) on the simulation's unskewed clock.
    pub due_us: u64,
    /// When its first attempt left, µs of simulated time.
    pub sent_us: u64,
    /// The carrier's boot that sent its first attempt.
    pub boot: u64,
    /// Whether the sender had no wake-up other than the due time itself in the two polls
    /// (plus a tick) before it fell due, up to the send: no sale or burst scheduling an
    /// event, no delivery starting or ending.
    pub quiet: bool,
}

/// Every tracking event's first attempt on the carrier's wire (README, "Webhooks",
/// "Wake-ups"), with whether the sender was quiet before it fell due. A woken sender looks
/// at most once per `poll_ms`, and a wake-up that comes while it waits out that poll is
/// taken when the poll ends, so a wake-up up to two polls before a due time can hold the
/// look at it back (measured on the corpus, seeds 1..20 of every scenario with tracking:
/// with the last wake-up 40 ms or more before the due time, every first attempt left on the
/// due time's tick; 35 to 40 ms before, within one tick).
pub(crate) fn scan_timings(view: &WebhookView, tick_ms: u64) -> Vec<ScanTiming> {
    let epoch_ms = crate::run::clock::EPOCH_UNIX_MS;
    let mut events: BTreeMap<String, (String, u64, Vec<&super::SignedDelivery>)> = BTreeMap::new();
    for delivery in &view.tracking_deliveries {
        let Some(body) = BodyFields::of(&delivery.body) else {
            continue;
        };
        let (Some(id), Some(kind), Some(occurred_at_ms)) = (
            body.event_id.as_ref().and_then(|v| v.as_str()),
            body.kind.as_ref().and_then(|v| v.as_str()),
            body.occurred_at_ms
                .as_ref()
                .and_then(serde_json::Value::as_u64),
        ) else {
            continue;
        };
        let due_us = occurred_at_ms.saturating_sub(epoch_ms) * 1_000;
        events
            .entry(id.to_string())
            .or_insert_with(|| (kind.to_string(), due_us, Vec::new()))
            .2
            .push(delivery);
    }
    // The moments the sender is woken: a sale schedules its label-created event for the
    // sale's instant, a burst its events for the burst's; every delivery's start and end.
    let mut activity: Vec<u64> = events
        .iter()
        .filter(|(id, (kind, _, _))| {
            kind == "label_created"
                || id.starts_with(crate::reference::deployment::BURST_EVENT_PREFIX)
        })
        .map(|(_, (_, due_us, _))| *due_us)
        .collect();
    for delivery in &view.tracking_deliveries {
        activity.push(delivery.sent_at_us);
        activity.push(delivery.answered_at_us);
    }
    activity.sort_unstable();
    let quiet_us = (2 * view.settings.sender.poll_ms + tick_ms) * 1_000;
    events
        .into_iter()
        .filter_map(|(event_id, (kind, due_us, attempts))| {
            let first = attempts
                .into_iter()
                .min_by_key(|d| (d.sent_at_us, d.answered_at_us))?;
            let woken = woken_before(&activity, due_us, quiet_us, first.sent_at_us);
            Some(ScanTiming {
                event_id,
                kind,
                due_us,
                sent_us: first.sent_at_us,
                boot: first.boot,
                quiet: !woken,
            })
        })
        .collect()
}

/// Whether `activity` (sorted) holds a wake-up `at` with `at + quiet_us >= due_us` and
/// `at < sent_us`: one in the `quiet_us` before the due time (or after it) and before the
/// send. The first moment of the list from `due_us - quiet_us` on decides it.
fn woken_before(activity: &[u64], due_us: u64, quiet_us: u64, sent_us: u64) -> bool {
    let from = activity.partition_point(|at| *at + quiet_us < due_us);
    activity.get(from).is_some_and(|at| *at < sent_us)
}

/// A scan the carrier scheduled is sent when it falls due (README, "Webhooks", "Wake-ups"):
/// the tracking sender sleeps until its queue's next due time and looks then, so a quiet
/// sender's first attempt of an event leaves within one tick (plus the clock's millisecond)
/// of the time its body says it occurred, not at a fallback poll. Judged from the carrier's
/// wire ([`scan_timings`]); excused when every slot was busy in between, when the carrier
/// restarted (not its first boot: an event due while it was down waits for the boot), and
/// under a clock fault (the body's time is read on the carrier's clock).
fn tracking_wake_ups(input: &OracleInput<'_>, view: &WebhookView, found: &mut Vec<Violation>) {
    if has_clock_fault(input) {
        return;
    }
    let sender = view.settings.sender;
    let tick_ms = input.scenario.run.tick_ms;
    let bound_us = (tick_ms + SCHEDULE_SLACK_MS) * 1_000;
    let mut late: Vec<String> = Vec::new();
    for scan in scan_timings(view, tick_ms) {
        let waited_us = scan.sent_us.saturating_sub(scan.due_us);
        if !scan.quiet
            || scan.boot > 0
            || waited_us <= bound_us
            || slots_full(
                &view.tracking_deliveries,
                scan.boot,
                (scan.due_us, scan.sent_us),
                sender.concurrency,
            )
        {
            continue;
        }
        late.push(format!(
            "{} ({}): due at {:.3} ms, first attempt left at {:.3} ms: {} ms later, past one tick ({tick_ms} ms) + {SCHEDULE_SLACK_MS} ms, with no wake-up in the {} ms before it was due",
            scan.event_id,
            scan.kind,
            scan.due_us as f64 / 1_000.0,
            scan.sent_us as f64 / 1_000.0,
            waited_us / 1_000,
            2 * sender.poll_ms + tick_ms,
        ));
    }
    if let Some(first) = late.first() {
        found.push(
            Violation::new(
                ORACLE,
                input,
                format!(
                    "the carrier's tracking sender sent {} scheduled events later than they fell due; first: {first}",
                    late.len()
                ),
            )
            .evidence("a sender whose queue signals its changes sleeps until the next due time, not until a fallback poll")
            .evidence(format!("{} late first attempts in all", late.len())),
        );
    }
}

/// Whether, at some moment of `window` (µs), `slots` deliveries of `boot` were in flight at
/// once: the sender then had no slot for a retry that fell due.
fn slots_full(
    deliveries: &[super::SignedDelivery],
    boot: u64,
    window: (u64, u64),
    slots: usize,
) -> bool {
    // Starts sort before ends at the same moment, so touching attempts count as overlapping
    // (the generous reading: more waits excused).
    let mut edges: Vec<(u64, u8)> = Vec::new();
    for delivery in deliveries.iter().filter(|d| d.boot == boot) {
        if delivery.sent_at_us > window.1 || delivery.answered_at_us < window.0 {
            continue;
        }
        edges.push((delivery.sent_at_us.max(window.0), 0));
        edges.push((delivery.answered_at_us.min(window.1), 1));
    }
    edges.sort_unstable();
    let mut in_flight = 0usize;
    for (_, edge) in edges {
        if edge == 0 {
            in_flight += 1;
            if in_flight >= slots {
                return true;
            }
        } else {
            in_flight = in_flight.saturating_sub(1);
        }
    }
    false
}

/// The event types that announce a change of a shipment's status by the carrier's scans.
const STATUS_CHANGES: &[&str] = &[
    "shipment.shipped",
    "shipment.delivered",
    "shipment.exception",
];

/// Each scan's announcement says what happened (README, "Webhooks": `shipment.tracking_update`
/// is a scan that did not change the status): a shipment's event caused by a carrier scan,
/// of a status-change type, carries another status than the shipment's event before it (in
/// commit order, `sequence`). A scan that repeats the status (picked up, then in transit)
/// announced as a second `shipment.shipped` would make a merchant act twice on one change.
/// Events the service raises itself are not judged here: a label purchase resumed after a
/// crash, finishing after the scans had already moved the shipment on, announces its
/// completion under the shipment's current status (`tracking_before_resumed_label`).
fn announcements(input: &OracleInput<'_>, view: &WebhookView, found: &mut Vec<Violation>) {
    let mut by_shipment: BTreeMap<&str, Vec<&shipsim_system::store::OutboxRecord>> =
        BTreeMap::new();
    for record in view.tables.outbox.values() {
        if let Some(shipment) = record.event.shipment_id.as_deref() {
            by_shipment.entry(shipment).or_default().push(record);
        }
    }
    for (shipment, mut records) in by_shipment {
        records.sort_by_key(|r| r.event.sequence);
        for pair in records.windows(2) {
            let (before, event) = (&pair[0].event, &pair[1].event);
            if pair[1].cause.is_some()
                && STATUS_CHANGES.contains(&event.event_type.as_str())
                && event.status.is_some()
                && event.status == before.status
            {
                found.push(
                    Violation::new(
                        ORACLE,
                        input,
                        format!(
                            "{} (sequence {}) announced `{}` for {shipment}, whose status had not changed",
                            event.event_id, event.sequence, event.event_type
                        ),
                    )
                    .evidence(format!(
                        "the event before it, {} (sequence {}, `{}`), already said {:?}",
                        before.event_id, before.sequence, before.event_type, before.status
                    ))
                    .evidence("a scan that does not change the status is a `shipment.tracking_update`"),
                );
            }
        }
    }
}

/// Each event about a shipment carries its position among them (README, "Webhooks",
/// Ordering): in commit order (the outbox's own sequence numbers), 1, 2, 3, ... A number
/// repeated would make a merchant that orders by `sequence` hold a newer event as stale; a
/// number skipped or out of order would make it wait for, or act on, the wrong one. Judged
/// on every event the service committed, delivered or not. After a wrong number the count
/// goes on from the number carried, so one slip is one violation.
fn sequences(input: &OracleInput<'_>, view: &WebhookView, found: &mut Vec<Violation>) {
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    for record in view.tables.outbox.values() {
        let Some(shipment) = record.event.shipment_id.as_deref() else {
            continue;
        };
        let before = last.insert(shipment, record.event.sequence).unwrap_or(0);
        let position = before + 1;
        if record.event.sequence != position {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "{} about {shipment} carries sequence {}, not {position}: the event before it about the shipment, in commit order, carried {before}",
                        record.event.event_id, record.event.sequence
                    ),
                )
                .evidence(format!(
                    "outbox seq {} (`{}`); README, Webhooks, Ordering: every event carries its position among the events about its shipment, from 1, in commit order",
                    record.seq, record.event.event_type
                )),
            );
        }
    }
}

/// Every state change writes its event in the same transaction (README, "Webhooks",
/// Service -> merchant), and every merchant is subscribed when `outbound` is on: a shipment
/// whose creation ended (no longer `pending_label`: its label bought or refused) has at
/// least its announcement in the outbox. A change committed without its event is one the
/// merchant never hears of, by webhook or by the feed, and no delivery check can miss what
/// was never written.
fn every_shipment_announced(
    input: &OracleInput<'_>,
    view: &WebhookView,
    found: &mut Vec<Violation>,
) {
    let announced: std::collections::BTreeSet<&str> = view
        .tables
        .outbox
        .values()
        .filter_map(|record| record.event.shipment_id.as_deref())
        .collect();
    for (id, record) in &view.tables.shipments {
        let status = record.shipment.status;
        if status != ShipmentStatus::PendingLabel && !announced.contains(id.as_str()) {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "shipment {id} of {} is {status:?} in the service's store, but the outbox holds no event about it",
                        record.caller
                    ),
                )
                .evidence("README, Webhooks: every state change writes its event to the outbox in the same transaction"),
            );
        }
    }
}

/// The verdict on each operator-route probe (see the module's documentation). A probe
/// nobody answered has no verdict (the scenario's required `operator_route_refused` moment
/// then fails the sweep).
fn operator_probes(input: &OracleInput<'_>, view: &WebhookView, found: &mut Vec<Violation>) {
    for probe in &view.operator_probes {
        let Some(status) = probe.status else {
            continue;
        };
        let route = format!("{} {}", probe.method, probe.path);
        let answered = |what: String| {
            Violation::new(ORACLE, input, what)
                .evidence(format!(
                    "answer {status}: {}",
                    String::from_utf8_lossy(&probe.body)
                        .chars()
                        .take(160)
                        .collect::<String>()
                ))
                .evidence(format!(
                    "outbox (pending, delivered, dead letters) before {:?}, after {:?}",
                    probe.outbox_before, probe.outbox_after
                ))
        };
        let key = match probe.key {
            ProbeKey::Missing => "without an admin key",
            ProbeKey::Wrong => "with a wrong admin key",
            ProbeKey::Operator => {
                if let Some(told) = outbox_counts_told(&probe.body)
                    && (200..300).contains(&status)
                    && probe.outbox_before == probe.outbox_after
                    && told != probe.outbox_before
                {
                    found.push(answered(format!(
                        "{route} told the operator (pending, delivered, dead letters) {told:?}; the store held {:?}",
                        probe.outbox_before
                    )));
                }
                continue;
            }
        };
        if status != 401 && status != 403 {
            found.push(answered(format!(
                "{route} {key} was answered {status}, not refused with 401 or 403"
            )));
        } else if error_code(&probe.body).is_none() {
            found.push(answered(format!(
                "{route} {key} was refused with {status} but without the error envelope"
            )));
        }
        if probe.outbox_after.2 < probe.outbox_before.2 {
            found.push(answered(format!(
                "{route} {key} requeued {} dead letter(s)",
                probe.outbox_before.2 - probe.outbox_after.2
            )));
        }
    }
}

/// The `error.code` of an error envelope (`{"error": {"code": ...}}`), read from raw bytes.
fn error_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value
        .get("error")?
        .get("code")?
        .as_str()
        .map(str::to_string)
}

/// The (pending, delivered, dead letter) counts an outbox-counts answer states.
fn outbox_counts_told(body: &[u8]) -> Option<(u64, u64, u64)> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let field = |name: &str| value.get(name).and_then(serde_json::Value::as_u64);
    Some((
        field("pending")?,
        field("delivered")?,
        field("dead_letter")?,
    ))
}

/// Every injected attack has its own verdict, read off the wire: a forgery, and a replay
/// whose signature was outside the tolerance when it was sent, must be refused (4xx), not
/// merely absorbed by dedupe because its event id was seen before; a replay well inside the
/// tolerance is a genuine duplicate and must be acknowledged (2xx), or its sender would
/// retry it to the dead letters. Injections nobody answered (a partition) have no verdict.
fn injections(input: &OracleInput<'_>, found: &mut Vec<Violation>) {
    let tolerance_s = input.scenario.webhooks.map(|w| w.tolerance_s);
    for injection in input.injections {
        let Some(status) = injection.status else {
            continue;
        };
        // Only the receiver's own verdicts count: a 5xx (an injected HTTP fault in front
        // of it, or a crash) neither accepts nor refuses, and nor does a 429, which asks
        // the sender to come back later (an injected rate-limit fault in front of the
        // receiver answers it too: explore seeds 1231, 1468, 1485, 1736, 1968).
        let accepted = (200..300).contains(&status);
        let refused = (400..500).contains(&status) && status != 429;
        let what = match injection.kind {
            InjectionKind::Forgery if accepted => "a forged delivery",
            InjectionKind::Replay if injection.stale(tolerance_s) && accepted => {
                "a delivery replayed past the signature tolerance"
            }
            InjectionKind::Replay if injection.fresh(tolerance_s) && refused => {
                found.push(
                    Violation::new(
                        ORACLE,
                        input,
                        format!(
                            "{} refused a genuine redelivery inside the tolerance with {status}",
                            injection.receiver
                        ),
                    )
                    .evidence(format!(
                        "fault #{}: signature {} s old, tolerance {} s",
                        injection.fault,
                        injection.age_s.unwrap_or_default(),
                        tolerance_s.unwrap_or_default()
                    )),
                );
                continue;
            }
            _ => continue,
        };
        found.push(
            Violation::new(
                ORACLE,
                input,
                format!(
                    "{} accepted {what} with {status} instead of refusing it",
                    injection.receiver
                ),
            )
            .evidence(format!(
                "fault #{}: signature {} s old, tolerance {} s",
                injection.fault,
                injection
                    .age_s
                    .map_or_else(|| "?".to_string(), |a| a.to_string()),
                tolerance_s.unwrap_or_default()
            ))
            .evidence("an attack must be refused, not absorbed as a duplicate"),
        );
    }
}

fn delivery_label(delivery: &Delivery) -> String {
    match delivery {
        Delivery::Pending { attempts, .. } => format!("still pending after {attempts} attempt(s)"),
        Delivery::Delivered { attempts, .. } => format!("delivered after {attempts} attempt(s)"),
        Delivery::DeadLetter {
            attempts,
            last_error,
        } => {
            format!("dead-lettered after {attempts} attempt(s): {last_error}")
        }
    }
}

/// Each parcel's story, as the carrier logged (and sent) it, is in order: its scans sorted
/// by their place in the story (label created, picked up, in transit, then delivered or
/// exception) carry non-decreasing `occurred_at_ms`. Scans a `webhook_burst` fault adds
/// are outside any story and not judged.
fn story_order(input: &OracleInput<'_>, view: &WebhookView, found: &mut Vec<Violation>) {
    let place = |kind: TrackingKind| match kind {
        TrackingKind::LabelCreated => 0,
        TrackingKind::PickedUp => 1,
        TrackingKind::InTransit => 2,
        TrackingKind::Delivered | TrackingKind::Exception => 3,
    };
    let mut stories: BTreeMap<&str, Vec<(u8, u64, &str)>> = BTreeMap::new();
    for item in &view.tracking {
        let event = &item.event;
        if event
            .event_id
            .starts_with(crate::reference::deployment::BURST_EVENT_PREFIX)
        {
            continue;
        }
        stories.entry(&event.label_id).or_default().push((
            place(event.kind),
            event.occurred_at_ms,
            &event.event_id,
        ));
    }
    for (label, mut scans) in stories {
        scans.sort_unstable();
        if let Some(pair) = scans.windows(2).find(|pair| pair[1].1 < pair[0].1) {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!("the carrier's story of label {label} is out of order"),
                )
                .evidence(format!(
                    "scan {} (step {} of the story) occurred at {} ms, before scan {} (step {}) at {} ms",
                    pair[1].2, pair[1].0, pair[1].1, pair[0].2, pair[0].0, pair[0].1
                )),
            );
        }
    }
}

fn inbound(input: &OracleInput<'_>, view: &WebhookView, found: &mut Vec<Violation>) {
    for item in &view.tracking {
        let id = &item.event.event_id;
        if !matches!(item.delivery, Delivery::Delivered { .. }) {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!("tracking event {id} was never delivered to the service"),
                )
                .evidence(delivery_label(&item.delivery)),
            );
        } else if !view.durable.processed_events.contains_key(id) {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!("tracking event {id} was acknowledged but the service lost it"),
                )
                .evidence(format!(
                    "{:?} for shipment {}",
                    item.event.kind, item.event.shipment_ref
                )),
            );
        }
    }
    let mut effects_per_cause: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for record in view.durable.outbox.values() {
        if let Some(cause) = &record.cause {
            effects_per_cause.entry(cause).or_default().push(record.seq);
        }
    }
    for (cause, seqs) in effects_per_cause {
        if seqs.len() > 1 {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "carrier event {cause} took effect {} times at the service",
                        seqs.len()
                    ),
                )
                .evidence(format!("outbox events {seqs:?} all caused by it")),
            );
        }
    }
    for forged in &view.forged {
        if view.durable.processed_events.contains_key(forged) {
            found.push(Violation::new(
                ORACLE,
                input,
                format!("the service took in forged event {forged}"),
            ));
        }
    }
}

fn outbound(input: &OracleInput<'_>, view: &WebhookView, found: &mut Vec<Violation>) {
    let mut effects_per_event: BTreeMap<&str, usize> = BTreeMap::new();
    for effect in &view.effects {
        *effects_per_event.entry(&effect.event_id).or_insert(0) += 1;
    }
    let polled = view.settings.poll_events.is_some();
    for record in view.durable.outbox.values() {
        let id = record.event.event_id.as_str();
        let acted = effects_per_event.get(id).copied().unwrap_or(0);
        let delivered = matches!(record.delivery, Delivery::Delivered { .. });
        if polled && !delivered && acted == 0 {
            // A merchant that polls the feed must have recovered what its webhooks missed.
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "{} {id} for {} was never applied: its webhook {} and the events feed never recovered it",
                        record.event.event_type,
                        record.caller,
                        match &record.delivery {
                            Delivery::DeadLetter { .. } => "was dead-lettered",
                            _ => "was not delivered",
                        }
                    ),
                )
                .evidence(delivery_label(&record.delivery))
                .evidence(format!("outbox seq {}", record.seq)),
            );
        } else if polled {
            // Delivered by webhook, recovered by the feed, or both: judged below.
        } else if !delivered {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "{} {id} for {} was never delivered",
                        record.event.event_type, record.caller
                    ),
                )
                .evidence(delivery_label(&record.delivery)),
            );
        } else if acted == 0 {
            found.push(Violation::new(
                ORACLE,
                input,
                format!(
                    "{} {id} was acknowledged by the merchant but never acted on",
                    record.event.event_type
                ),
            ));
        }
        if acted > 1 {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "the merchant acted {acted} times on {} {id}",
                        record.event.event_type
                    ),
                )
                .evidence("a redelivery or a duplicate was not deduplicated"),
            );
        }
    }
    let committed: std::collections::BTreeSet<&str> = view
        .durable
        .outbox
        .values()
        .map(|r| r.event.event_id.as_str())
        .collect();
    for (id, count) in &effects_per_event {
        if view.forged.contains(*id) {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!("the merchant acted on forged event {id}"),
                )
                .evidence("its signature did not match its body"),
            );
        } else if !committed.contains(id) {
            found.push(Violation::new(
                ORACLE,
                input,
                format!("the merchant acted {count} time(s) on event {id}, which the service never committed"),
            ));
        }
    }

    if polled {
        feed_order(input, view, found);
    }

    // The merchant's view of each shipment: statuses it moved forward to, in order.
    let mut views: BTreeMap<&str, Vec<ShipmentStatus>> = BTreeMap::new();
    for effect in view.effects.iter().filter(|e| e.advanced) {
        if let (Some(shipment), Some(status)) = (&effect.shipment_id, effect.status) {
            views.entry(shipment).or_default().push(status);
        }
    }
    for (shipment, statuses) in &views {
        if statuses.windows(2).any(|w| w[1].rank() <= w[0].rank()) {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!("the merchant's record of {shipment} moved backwards"),
                )
                .evidence(format!("applied in order: {statuses:?}")),
            );
        }
    }
    for (id, record) in &view.tables.shipments {
        let status = record.shipment.status;
        let subscribed = view
            .durable
            .outbox
            .values()
            .any(|r| r.caller == record.caller);
        if !subscribed || status == ShipmentStatus::PendingLabel {
            continue;
        }
        let seen = views.get(id.as_str()).and_then(|s| s.last().copied());
        if seen != Some(status) {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!("the merchant believes {id} is {seen:?}, the service says {status:?}"),
                )
                .evidence("after every event was delivered, both must agree"),
            );
        }
    }
}

/// What a merchant read from the events feed, it applied in the service's commit order,
/// per caller (and so per shipment): judged from the merchant's effects and the service's
/// outbox sequence numbers, not from the poller's cursor.
fn feed_order(input: &OracleInput<'_>, view: &WebhookView, found: &mut Vec<Violation>) {
    let seq_of: BTreeMap<&str, u64> = view
        .durable
        .outbox
        .values()
        .map(|r| (r.event.event_id.as_str(), r.seq))
        .collect();
    let mut last: BTreeMap<&str, (u64, &str)> = BTreeMap::new();
    for effect in view.effects.iter().filter(|e| e.via == Via::Feed) {
        let Some(&seq) = seq_of.get(effect.event_id.as_str()) else {
            continue;
        };
        if let Some(&(before, before_id)) = last.get(effect.caller.as_str())
            && seq <= before
        {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "the merchant applied {} from the events feed after {before_id}, which the service committed later",
                        effect.event_id
                    ),
                )
                .evidence(format!(
                    "{}: outbox seq {seq} applied after seq {before}",
                    effect.caller
                )),
            );
        }
        last.insert(&effect.caller, (seq, &effect.event_id));
    }
}

#[cfg(test)]
mod tests {
    use shipsim_system::api::{Label, TrackingKind, WebhookEvent};
    use shipsim_system::carrier::{TrackingItem, tracking_event};
    use shipsim_system::receiver::Effect;
    use shipsim_system::store::{OutboxRecord, ProcessedEvent};

    use super::super::testing::{Fixture, assert_one};
    use super::*;
    use crate::scenario::WebhookSettings;

    #[test]
    fn the_wake_up_search_finds_what_a_scan_of_every_wake_up_finds() {
        // Proves the binary search over the sorted wake-ups answers as the scan of every
        // wake-up it replaced, at the edges: a wake-up exactly `quiet_us` before the due
        // time (counts), one microsecond earlier (does not), one at the send (does not),
        // none at all, and due times shorter than the quiet span.
        let lists: [&[u64]; 5] = [
            &[],
            &[0],
            &[10, 20, 30],
            &[5, 5, 25, 40],
            &[0, 1, 2, 3, 100],
        ];
        for activity in lists {
            for due_us in 0..50 {
                for sent_us in 0..50 {
                    for quiet_us in [0, 1, 7, 15, 60] {
                        let scanned = activity
                            .iter()
                            .any(|at| *at + quiet_us >= due_us && *at < sent_us);
                        assert_eq!(
                            woken_before(activity, due_us, quiet_us, sent_us),
                            scanned,
                            "{activity:?} due {due_us} quiet {quiet_us} sent {sent_us}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn body_fields_read_what_a_value_reads() {
        // Proves the one-pass read of a delivered body gives each field the checks read as
        // parsing the body into a `Value` and `get`ting it does, on the bodies where a lax
        // reader would not: a repeated key (the last counts), escaped keys, values of the
        // wrong type, bodies that are not objects, and bodies a `Value` refuses for what sits
        // in a field the checks skip (a number out of range, invalid UTF-8, nesting past
        // serde_json's limit, trailing text).
        let deep = format!(
            "{{\"event_id\":\"e\",\"x\":{}1{}}}",
            "[".repeat(200),
            "]".repeat(200)
        );
        let bodies: Vec<Vec<u8>> = vec![
            br#"{"event_id":"e1","kind":"picked_up","occurred_at_ms":5,"label_id":"l"}"#.to_vec(),
            br#"{"event_id":"e1","event_id":"e2","kind":"a","kind":7}"#.to_vec(),
            br#"{"event\u005fid":"e3","k\u0069nd":"a\"b","occurred_at_ms":1.0}"#.to_vec(),
            br#"{"event_id":null,"kind":["x"],"occurred_at_ms":-1}"#.to_vec(),
            br#"{"occurred_at_ms":18446744073709551615,"nested":{"event_id":"no"}}"#.to_vec(),
            br#"["event_id","kind"]"#.to_vec(),
            br#""event_id""#.to_vec(),
            br#"{"event_id":"e","x":1e999}"#.to_vec(),
            b"{\"event_id\":\"e\",\"x\":\"\xff\"}".to_vec(),
            deep.into_bytes(),
            br#"{"event_id":"e"} trailing"#.to_vec(),
            br#"{"event_id":"e","#.to_vec(),
            Vec::new(),
        ];
        for body in &bodies {
            let value = serde_json::from_slice::<serde_json::Value>(body).ok();
            let fields = BodyFields::of(body);
            let shown = String::from_utf8_lossy(body);
            for (name, read) in [
                ("event_id", fields.as_ref().and_then(|f| f.event_id.clone())),
                ("kind", fields.as_ref().and_then(|f| f.kind.clone())),
                (
                    "occurred_at_ms",
                    fields.as_ref().and_then(|f| f.occurred_at_ms.clone()),
                ),
            ] {
                let expected = value.as_ref().and_then(|v| v.get(name)).cloned();
                assert_eq!(read, expected, "{name} of {shown}");
            }
        }
    }

    fn settings() -> WebhookSettings {
        WebhookSettings {
            tracking: true,
            outbound: true,
            tolerance_s: 300,
            exception_percent: 0,
            sender: shipsim_system::webhook::SenderConfig::DEFAULT,
            poll_events: None,
            probe_operator: false,
        }
    }

    fn outbox(seq: u64, id: &str, cause: Option<&str>, delivered: bool) -> OutboxRecord {
        OutboxRecord {
            seq,
            caller: "merchant-0".into(),
            event: WebhookEvent {
                event_id: id.into(),
                event_type: "shipment.created".into(),
                created_at_ms: 0,
                order_id: "ord_1".into(),
                shipment_id: Some("shp_1".into()),
                status: Some(ShipmentStatus::LabelPurchased),
                // Every fixture's events are about shp_1, one per outbox seq from 1.
                sequence: seq,
            },
            cause: cause.map(str::to_string),
            delivery: if delivered {
                Delivery::Delivered {
                    attempts: 1,
                    delivered_at_ms: 0,
                }
            } else {
                Delivery::DeadLetter {
                    attempts: 4,
                    last_error: "timeout".into(),
                }
            },
        }
    }

    fn effect(id: &str, status: ShipmentStatus, advanced: bool) -> Effect {
        Effect {
            event_id: id.into(),
            caller: "merchant-0".into(),
            event_type: "shipment.created".into(),
            order_id: "ord_1".into(),
            shipment_id: Some("shp_1".into()),
            status: Some(status),
            advanced,
            created_at_ms: 0,
            at_ms: 1,
            via: Via::Webhook,
        }
    }

    fn from_feed(id: &str) -> Effect {
        Effect {
            via: Via::Feed,
            ..effect(id, ShipmentStatus::LabelPurchased, false)
        }
    }

    /// The clean fixture with a merchant that polls the events feed.
    fn polled() -> Fixture {
        let mut fixture = clean();
        fixture.webhooks.as_mut().unwrap().settings.poll_events =
            Some(crate::scenario::PollEvents {
                every_ms: 500,
                limit: 10,
            });
        fixture
    }

    /// The happy fixture with one delivered outbox event acted on once, and one carrier
    /// event taken in.
    fn clean() -> Fixture {
        let mut fixture = Fixture::happy();
        fixture
            .tables
            .outbox
            .insert(1, outbox(1, "evt_1", None, true));
        let label = Label {
            label_id: "lbl_1".into(),
            tracking_number: "1Z".into(),
            shipment_ref: "shp_1".into(),
            cost_cents: 1,
        };
        let tracked = tracking_event(&label, TrackingKind::LabelCreated, 0, "trk_1".into());
        fixture.tables.processed_events.insert(
            "trk_1".into(),
            ProcessedEvent {
                received_at_ms: 0,
                effect: None,
            },
        );
        fixture.webhooks = Some(WebhookView {
            settings: settings(),
            tracking: vec![TrackingItem {
                seq: 1,
                event: tracked,
                due_at_ms: 0,
                delivery: Delivery::Delivered {
                    attempts: 1,
                    delivered_at_ms: 0,
                },
            }],
            effects: vec![effect("evt_1", ShipmentStatus::LabelPurchased, true)],
            receiver_absorbed: (0, 0),
            forged: Default::default(),
            tables: Default::default(),
            durable: Default::default(),
            deliveries: Vec::new(),
            tracking_deliveries: Vec::new(),
            operator_probes: Vec::new(),
        });
        fixture
    }

    #[test]
    fn clean_traffic_passes() {
        // Proves the fixture is clean, so each test's violation is its own change.
        assert_eq!(clean().check(ORACLE), vec![]);
    }

    #[test]
    fn a_story_delivered_before_it_was_in_transit_is_caught() {
        // Proves the carrier's story is judged in order: a parcel delivered (at 500 ms)
        // before it was in transit (at 900 ms) is one violation naming both scans, while a
        // burst's extra scan outside the story, dated anywhere, is not judged.
        let scans = |delivered_at_ms: u64| {
            let mut fixture = clean();
            let view = fixture.webhooks.as_mut().unwrap();
            let label = Label {
                label_id: "lbl_1".into(),
                tracking_number: "1Z".into(),
                shipment_ref: "shp_1".into(),
                cost_cents: 1,
            };
            for (seq, kind, at_ms, id) in [
                (2, TrackingKind::PickedUp, 300, "trk_2"),
                (3, TrackingKind::InTransit, 900, "trk_3"),
                (4, TrackingKind::Delivered, delivered_at_ms, "trk_4"),
                (5, TrackingKind::InTransit, 2_000, "burst-0-0"),
            ] {
                fixture.tables.processed_events.insert(
                    id.into(),
                    ProcessedEvent {
                        received_at_ms: at_ms,
                        effect: None,
                    },
                );
                view.tracking.push(TrackingItem {
                    seq,
                    event: tracking_event(&label, kind, at_ms, id.into()),
                    due_at_ms: at_ms,
                    delivery: Delivery::Delivered {
                        attempts: 1,
                        delivered_at_ms: at_ms,
                    },
                });
            }
            fixture
        };
        assert_eq!(scans(1_200).check(ORACLE), vec![]);
        assert_one(
            &scans(500).check(ORACLE),
            "the carrier's story of label lbl_1 is out of order",
        );
    }

    #[test]
    fn double_effects_are_caught_both_ways() {
        // Proves an event acted on twice by the merchant, and a carrier event causing two
        // announcements, are each caught.
        let mut twice = clean();
        twice.webhooks.as_mut().unwrap().effects.push(effect(
            "evt_1",
            ShipmentStatus::LabelPurchased,
            false,
        ));
        assert_one(&twice.check(ORACLE), "the merchant acted 2 times");
        let mut caused = clean();
        caused
            .tables
            .outbox
            .insert(2, outbox(2, "evt_2", Some("trk_1"), true));
        caused
            .tables
            .outbox
            .insert(3, outbox(3, "evt_3", Some("trk_1"), true));
        let effects = &mut caused.webhooks.as_mut().unwrap().effects;
        effects.push(effect("evt_2", ShipmentStatus::LabelPurchased, false));
        effects.push(effect("evt_3", ShipmentStatus::LabelPurchased, false));
        assert_one(&caused.check(ORACLE), "took effect 2 times at the service");
    }

    #[test]
    fn lost_and_forged_events_are_caught() {
        // Proves an undelivered outbox event, an acknowledged-but-lost carrier event, and a
        // forged event acted on are each caught.
        let mut undelivered = clean();
        undelivered
            .tables
            .outbox
            .insert(2, outbox(2, "evt_2", None, false));
        assert_one(&undelivered.check(ORACLE), "was never delivered");
        let mut lost = clean();
        lost.tables.processed_events.clear();
        assert_one(&lost.check(ORACLE), "acknowledged but the service lost it");
        let mut forged = clean();
        let view = forged.webhooks.as_mut().unwrap();
        view.forged.insert("forged-1".into());
        view.effects
            .push(effect("forged-1", ShipmentStatus::Delivered, false));
        assert_one(&forged.check(ORACLE), "acted on forged event forged-1");
    }

    #[test]
    fn attacks_need_their_own_refusal() {
        // Proves a forgery or a stale replay answered 200 (absorbed, say, as a duplicate)
        // is a violation of its own, that refusing them is clean, and that a replay well
        // inside the tolerance must be acknowledged rather than refused.
        use crate::reach::{Injection, InjectionKind};
        let injected = |kind, age_s, status| Injection {
            fault: 3,
            kind,
            receiver: "receiver".into(),
            age_s: Some(age_s),
            status: Some(status),
        };
        let mut fixture = clean();
        fixture.scenario.webhooks = Some(settings());
        // The receiver counted its refusals (the count is judged on its own below).
        fixture.webhooks.as_mut().unwrap().receiver_absorbed = (0, 10);
        fixture.injections = vec![
            injected(InjectionKind::Forgery, 0, 400),
            injected(InjectionKind::Replay, 301, 400),
            injected(InjectionKind::Replay, 10, 200),
            injected(InjectionKind::Copy, 0, 200),
            // A 5xx is no verdict of the receiver's (a fault in front of it answered).
            injected(InjectionKind::Forgery, 0, 502),
            injected(InjectionKind::Replay, 301, 503),
            injected(InjectionKind::Replay, 10, 500),
            // Nor is a 429: come back later, not a verdict on the delivery.
            injected(InjectionKind::Replay, 10, 429),
        ];
        assert_eq!(fixture.check(ORACLE), vec![]);
        fixture.injections = vec![injected(InjectionKind::Replay, 301, 200)];
        assert_one(
            &fixture.check(ORACLE),
            "past the signature tolerance with 200",
        );
        fixture.injections = vec![injected(InjectionKind::Forgery, 0, 200)];
        assert_one(&fixture.check(ORACLE), "accepted a forged delivery");
        fixture.injections = vec![injected(InjectionKind::Replay, 10, 400)];
        assert_one(&fixture.check(ORACLE), "refused a genuine redelivery");
    }

    #[test]
    fn merchant_view_must_move_forward_and_agree() {
        // Proves the merchant's record must only move forward and end where the service's
        // is.
        let mut backwards = clean();
        backwards.webhooks.as_mut().unwrap().effects = vec![
            effect("evt_1", ShipmentStatus::Delivered, true),
            effect("evt_1b", ShipmentStatus::LabelPurchased, true),
        ];
        backwards
            .tables
            .outbox
            .insert(2, outbox(2, "evt_1b", None, true));
        assert_one(&backwards.check(ORACLE), "moved backwards");
        let mut disagree = clean();
        disagree
            .tables
            .shipments
            .get_mut("shp_1")
            .unwrap()
            .shipment
            .status = ShipmentStatus::Delivered;
        assert_one(&disagree.check(ORACLE), "the service says Delivered");
    }

    #[test]
    fn a_polling_merchant_recovers_dead_letters_once_and_in_commit_order() {
        // Proves that with `poll_events` a dead-lettered event applied from the feed is
        // clean, while one never applied, one applied by webhook and again from the feed,
        // and feed events applied out of commit order are each caught; and that without
        // polling the same dead letter is still "never delivered".
        let mut recovered = polled();
        recovered
            .tables
            .outbox
            .insert(2, outbox(2, "evt_2", None, false));
        recovered
            .webhooks
            .as_mut()
            .unwrap()
            .effects
            .push(from_feed("evt_2"));
        assert_eq!(recovered.check(ORACLE), vec![]);

        let mut lost = polled();
        lost.tables
            .outbox
            .insert(2, outbox(2, "evt_2", None, false));
        assert_one(&lost.check(ORACLE), "the events feed never recovered it");

        let mut unpolled = clean();
        unpolled
            .tables
            .outbox
            .insert(2, outbox(2, "evt_2", None, false));
        unpolled
            .webhooks
            .as_mut()
            .unwrap()
            .effects
            .push(from_feed("evt_2"));
        assert_one(&unpolled.check(ORACLE), "was never delivered");

        let mut twice = polled();
        twice
            .webhooks
            .as_mut()
            .unwrap()
            .effects
            .push(from_feed("evt_1"));
        assert_one(&twice.check(ORACLE), "the merchant acted 2 times");

        let mut reordered = polled();
        for seq in [2, 3] {
            let id = format!("evt_{seq}");
            reordered
                .tables
                .outbox
                .insert(seq, outbox(seq, &id, None, false));
        }
        let effects = &mut reordered.webhooks.as_mut().unwrap().effects;
        effects.push(from_feed("evt_3"));
        effects.push(from_feed("evt_2"));
        assert_one(
            &reordered.check(ORACLE),
            "which the service committed later",
        );
    }

    fn probe(
        method: &str,
        path: &str,
        key: ProbeKey,
        status: u16,
        body: &str,
        before: (u64, u64, u64),
        after: (u64, u64, u64),
    ) -> crate::oracle::OperatorProbe {
        crate::oracle::OperatorProbe {
            method: method.into(),
            path: path.into(),
            key,
            status: Some(status),
            body: bytes::Bytes::copy_from_slice(body.as_bytes()),
            outbox_before: before,
            outbox_after: after,
        }
    }

    const REFUSED: &str = r#"{"error":{"code":"unauthenticated","message":"m","request_id":"r"}}"#;

    fn probed(probes: Vec<crate::oracle::OperatorProbe>) -> Vec<Violation> {
        let mut fixture = clean();
        fixture.webhooks.as_mut().unwrap().operator_probes = probes;
        fixture.check(ORACLE)
    }

    #[test]
    fn operator_routes_must_refuse_callers_without_the_key_and_tell_the_truth() {
        // Proves each operator-route probe gets its own verdict from the raw answer and the
        // store's counts around it: refusals with the envelope and no effect pass; an open
        // route, a refusal without the envelope, a refused redelivery that still requeued,
        // and an operator count that disagrees with the store are each caught.
        let dead = (0, 3, 2);
        assert_eq!(
            probed(vec![
                probe(
                    "GET",
                    "/v1/admin/outbox",
                    ProbeKey::Missing,
                    401,
                    REFUSED,
                    dead,
                    dead
                ),
                probe(
                    "POST",
                    "/v1/admin/outbox/redeliver",
                    ProbeKey::Wrong,
                    401,
                    REFUSED,
                    dead,
                    dead
                ),
                probe(
                    "GET",
                    "/v1/admin/outbox",
                    ProbeKey::Operator,
                    200,
                    r#"{"pending":0,"delivered":3,"dead_letter":2}"#,
                    dead,
                    dead
                ),
            ]),
            vec![]
        );
        assert_one(
            &probed(vec![probe(
                "POST",
                "/v1/admin/outbox/redeliver",
                ProbeKey::Missing,
                200,
                r#"{"requeued":2}"#,
                dead,
                (2, 3, 0),
            )])
            .into_iter()
            .filter(|v| v.message.contains("not refused"))
            .collect::<Vec<_>>(),
            "POST /v1/admin/outbox/redeliver without an admin key was answered 200, not refused with 401 or 403",
        );
        assert_one(
            &probed(vec![probe(
                "GET",
                "/v1/admin/state",
                ProbeKey::Wrong,
                401,
                "nope",
                dead,
                dead,
            )]),
            "refused with 401 but without the error envelope",
        );
        assert_one(
            &probed(vec![probe(
                "POST",
                "/v1/admin/outbox/redeliver",
                ProbeKey::Wrong,
                403,
                REFUSED,
                dead,
                (2, 3, 0),
            )]),
            "with a wrong admin key requeued 2 dead letter(s)",
        );
        assert_one(
            &probed(vec![probe(
                "GET",
                "/v1/admin/outbox",
                ProbeKey::Operator,
                200,
                r#"{"pending":1,"delivered":0,"dead_letter":1}"#,
                dead,
                dead,
            )]),
            "told the operator (pending, delivered, dead letters) (1, 0, 1); the store held (0, 3, 2)",
        );
    }

    #[test]
    fn a_scan_that_did_not_change_the_status_must_not_be_announced_as_a_change() {
        // Proves a second `shipment.shipped` for a shipment already in transit (a scan that
        // repeats the status announced as a change) is caught from the outbox, and that the
        // same scan announced as `shipment.tracking_update` is fine; an event the service
        // raised itself (no carrier event caused it: a resumed label purchase finishing
        // after the scans) is not judged by this rule.
        let with_second_caused = |second_type: &str, cause: Option<&str>| {
            let mut fixture = clean();
            for (seq, event_type) in [(2, "shipment.shipped"), (3, second_type)] {
                let cause = if seq == 3 { cause } else { Some("trk_1") };
                let mut record = outbox(seq, &format!("evt_{seq}"), cause, true);
                record.event.event_type = event_type.into();
                record.event.status = Some(ShipmentStatus::InTransit);
                record.event.sequence = seq;
                fixture.tables.outbox.insert(seq, record);
            }
            fixture
                .check(ORACLE)
                .into_iter()
                .filter(|v| v.message.contains("whose status had not changed"))
                .collect::<Vec<_>>()
        };
        let with_second = |second_type: &str| with_second_caused(second_type, Some("trk_2"));
        assert_eq!(with_second_caused("shipment.shipped", None), vec![]);
        assert_one(
            &with_second("shipment.shipped"),
            "evt_3 (sequence 3) announced `shipment.shipped` for shp_1, whose status had not changed",
        );
        assert_eq!(with_second("shipment.tracking_update"), vec![]);
    }

    #[test]
    fn each_event_about_a_shipment_carries_its_position_in_commit_order() {
        // Proves the `sequence` rule bites from the outbox: a third event about shp_1 that
        // repeats the second's number (a count not moved on) or skips one is one violation
        // naming the event and both numbers; events about another shipment and an
        // `order.created` (about no shipment) between them are numbered on their own.
        let with_third = |sequence: u64| {
            let mut fixture = clean();
            let mut order = outbox(2, "evt_order", None, true);
            order.event.event_type = "order.created".into();
            order.event.shipment_id = None;
            order.event.sequence = 1;
            fixture.tables.outbox.insert(2, order);
            let mut other = outbox(3, "evt_other", Some("trk_9"), true);
            other.event.shipment_id = Some("shp_2".into());
            other.event.sequence = 1;
            fixture.tables.outbox.insert(3, other);
            for (seq, id, number) in [(4, "evt_2", 2), (5, "evt_3", sequence)] {
                let mut record = outbox(seq, id, Some("trk_1"), true);
                record.event.event_type = "shipment.tracking_update".into();
                record.event.sequence = number;
                fixture.tables.outbox.insert(seq, record);
            }
            fixture
                .check(ORACLE)
                .into_iter()
                .filter(|v| v.message.contains("carries sequence"))
                .collect::<Vec<_>>()
        };
        assert_eq!(with_third(3), vec![]);
        assert_one(
            &with_third(2),
            "evt_3 about shp_1 carries sequence 2, not 3: the event before it about the shipment, in commit order, carried 2",
        );
        assert_one(
            &with_third(4),
            "evt_3 about shp_1 carries sequence 4, not 3",
        );
    }

    #[test]
    fn a_shipment_whose_creation_ended_must_have_its_event_in_the_outbox() {
        // Proves the rule bites from the store: shp_1's label bought and no event about it
        // committed is one violation naming the shipment; the same shipment still
        // `pending_label` (its creation not ended, nothing to announce yet) is fine.
        let without_events = |status: ShipmentStatus| {
            let mut fixture = clean();
            fixture.tables.outbox.clear();
            fixture
                .tables
                .shipments
                .get_mut("shp_1")
                .expect("the fixture's shipment")
                .shipment
                .status = status;
            fixture
                .check(ORACLE)
                .into_iter()
                .filter(|v| v.message.contains("holds no event about it"))
                .collect::<Vec<_>>()
        };
        assert_one(
            &without_events(ShipmentStatus::LabelPurchased),
            "shipment shp_1 of merchant-0 is LabelPurchased in the service's store, but the outbox holds no event about it",
        );
        assert_eq!(without_events(ShipmentStatus::PendingLabel), vec![]);
    }

    #[test]
    fn refusals_the_wire_carried_must_be_counted_by_the_receiver() {
        // Proves the receiver's count of refused deliveries is held to the injected
        // deliveries the wire carried its 4xx refusal for: two refused forgeries and a count
        // of 1 is caught; a count of 2 (or more: it refuses other things too) is fine; an
        // injection to the service's inbound receiver does not count against it.
        let injection = |receiver: &str, status: u16| crate::reach::Injection {
            fault: 0,
            kind: InjectionKind::Forgery,
            receiver: receiver.into(),
            age_s: Some(1),
            status: Some(status),
        };
        let counted = |rejected: u64| {
            let mut fixture = clean();
            fixture.injections = vec![
                injection("receiver", 400),
                injection("receiver", 400),
                injection("receiver", 200),
                injection("service", 400),
            ];
            fixture.webhooks.as_mut().unwrap().receiver_absorbed = (0, rejected);
            fixture
                .check(ORACLE)
                .into_iter()
                .filter(|v| v.message.contains("refused deliveries"))
                .collect::<Vec<_>>()
        };
        assert_one(
            &counted(1),
            "the merchants' receiver counted 1 refused deliveries; the wire carried its refusal of 2 injected ones",
        );
        assert_eq!(counted(2), vec![]);
        assert_eq!(counted(5), vec![]);
    }

    #[test]
    fn a_retry_later_than_its_backoff_cap_and_a_poll_is_caught() {
        // Proves the retry schedule is judged from the wire: an event whose first attempt
        // failed and whose second left 1 s later (the default schedule allows the first
        // backoff's cap, 100 ms, plus a 20 ms poll and a 5 ms tick) is caught; 120 ms later
        // is fine, and so is 1 s later when four deliveries held every slot meanwhile, or
        // when the second attempt came from another boot (a crash restarted the sender).
        let attempt =
            |event: &str, sent_ms: u64, answered_ms: u64, status: Option<u16>, boot: u64| {
                super::super::SignedDelivery {
                    caller: "merchant-0".into(),
                    signature: None,
                    body: bytes::Bytes::from(format!(r#"{{"event_id":"{event}"}}"#)),
                    sent_at_us: sent_ms * 1_000,
                    answered_at_us: answered_ms * 1_000,
                    status,
                    boot,
                }
            };
        let judged = |deliveries: Vec<super::super::SignedDelivery>| {
            let mut fixture = clean();
            fixture.webhooks.as_mut().unwrap().deliveries = deliveries;
            fixture
                .check(ORACLE)
                .into_iter()
                .filter(|v| v.message.contains("retried"))
                .collect::<Vec<_>>()
        };
        assert_one(
            &judged(vec![
                attempt("evt_1", 1_000, 1_010, None, 1),
                attempt("evt_1", 2_010, 2_020, Some(200), 1),
            ]),
            "the outbox sender retried 1 failed deliveries later than its schedule allows; first: evt_1: attempt 1 ended at 1010.000 ms",
        );
        assert_eq!(
            judged(vec![
                attempt("evt_1", 1_000, 1_010, Some(503), 1),
                attempt("evt_1", 1_130, 1_140, Some(200), 1),
            ]),
            vec![]
        );
        let mut busy = vec![
            attempt("evt_1", 1_000, 1_010, None, 1),
            attempt("evt_1", 2_010, 2_020, Some(200), 1),
        ];
        busy.extend((2..=5).map(|n| attempt(&format!("evt_{n}"), 1_100, 1_600, None, 1)));
        assert_eq!(judged(busy), vec![]);
        assert_eq!(
            judged(vec![
                attempt("evt_1", 1_000, 1_010, None, 1),
                attempt("evt_1", 2_010, 2_020, Some(200), 2),
            ]),
            vec![]
        );
    }
}
