//! The reference system's webhook traffic as shipsim sees it: what the `webhook_once`
//! oracle reads, how the `webhook_burst` fault adds carrier events, and the wait after the
//! settle phase until every webhook is delivered.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use shipsim_system::api::TrackingKind;
use shipsim_system::carrier::{CarrierLedger, tracking_event};
use shipsim_system::receiver::ReceiverLedger;
use shipsim_system::transport::{BoxFuture, HttpRequest, HttpResponse, Transport, TransportError};

use super::{ADMIN_KEY, CARRIER, RECEIVER};
use crate::oracle::{OperatorProbe, ProbeKey, SignedDelivery, WebhookParties, WebhookView};
use crate::scenario::Scenario;
use crate::target::{Durables, QuiesceContext, SERVICE_HOST};

/// The carrier, the service's outbox and the merchants' receiver.
pub(super) struct Parties;

impl WebhookParties for Parties {
    fn view(
        &self,
        durables: &Durables,
        scenario: &Scenario,
        forged: &BTreeSet<String>,
    ) -> Option<WebhookView> {
        let settings = scenario.webhooks?;
        let (tables, durable) =
            super::service_tables(durables, |live, durable| (live.clone(), durable.clone()))
                .unwrap_or_default();
        let carrier = durables.get::<CarrierLedger>(CARRIER, "ledger");
        let receiver = durables.get::<ReceiverLedger>(RECEIVER, "ledger");
        Some(WebhookView {
            settings,
            tracking: carrier.map(|l| l.tracking()).unwrap_or_default(),
            effects: receiver.as_ref().map(|l| l.effects()).unwrap_or_default(),
            receiver_absorbed: receiver.map_or((0, 0), |l| l.absorbed()),
            forged: forged.clone(),
            tables,
            durable,
            deliveries: durables
                .get::<WireLog>(SERVICE_HOST, WIRE_LOG)
                .map(|log| log.deliveries())
                .unwrap_or_default(),
            tracking_deliveries: durables
                .get::<WireLog>(CARRIER, TRACKING_WIRE_LOG)
                .map(|log| log.deliveries())
                .unwrap_or_default(),
            operator_probes: durables
                .get::<ProbeLog>(SERVICE_HOST, PROBE_LOG)
                .map(|log| log.probes())
                .unwrap_or_default(),
        })
    }

    fn burst(
        &self,
        durables: &Durables,
        events: u32,
        rng: &mut ChaCha8Rng,
        due_at_ms: u64,
        stream: u64,
    ) {
        let Some(ledger) = durables.get::<CarrierLedger>(CARRIER, "ledger") else {
            return;
        };
        let sales = ledger.sales();
        if sales.is_empty() {
            return;
        }
        for index in 0..events {
            let sale = &sales[rng.random_range(0..sales.len())];
            let event = tracking_event(
                &sale.label,
                TrackingKind::InTransit,
                due_at_ms,
                format!("{}{stream}-{index}", super::deployment::BURST_EVENT_PREFIX),
            );
            ledger
                .schedule(event, due_at_ms)
                .expect("the simulation's ledger is in memory and cannot fail to commit");
        }
    }
}

/// Whether a scenario has webhook traffic to wait for.
pub(super) fn needs_drain(scenario: &Scenario) -> bool {
    scenario.webhooks.is_some_and(|w| w.tracking || w.outbound)
}

/// Polls between drain checks.
const DRAIN_POLL_MS: u64 = 100;
/// Checks per round before giving up (the run's oracles then report what is left).
const DRAIN_POLLS_MAX: u32 = 1_200;
/// Redelivery rounds of dead letters.
const DRAIN_ROUNDS_MAX: u32 = 5;

/// Waits until no webhook is pending at the carrier or the service, then redelivers dead
/// letters and waits again, until none are left (bounded).
pub(super) fn drain(context: QuiesceContext) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let Some(settings) = context.scenario().webhooks else {
            return;
        };
        let service = context.client(SERVICE_HOST);
        let carrier = context.client(CARRIER);
        let mut probed = false;
        for _round in 0..DRAIN_ROUNDS_MAX {
            for _poll in 0..DRAIN_POLLS_MAX {
                let carrier_pending = if settings.tracking {
                    pending(&*carrier, "/v1/admin/tracking").await
                } else {
                    Some(0)
                };
                let service_pending = if settings.outbound {
                    pending(&*service, "/v1/admin/outbox").await
                } else {
                    Some(0)
                };
                let injected = context.injections_in_flight();
                if carrier_pending == Some(0) && service_pending == Some(0) && injected == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(DRAIN_POLL_MS)).await;
            }
            // Once, when the outbox has settled and before the operator redelivers: the
            // moment a caller without the key could do most harm (dead letters to requeue).
            if settings.probe_operator && !probed {
                probed = true;
                probe_operator(&*service, context.durables()).await;
            }
            let mut requeued = 0;
            if settings.tracking {
                requeued += redeliver(&*carrier, "/v1/admin/tracking/redeliver").await;
            }
            // A merchant that polls its events feed reconciles its dead letters itself:
            // no operator redelivers them, so the feed is what must recover them.
            if settings.outbound && settings.poll_events.is_none() {
                requeued += redeliver(&*service, "/v1/admin/outbox/redeliver").await;
            }
            if settings.poll_events.is_some() {
                caught_up(context.durables()).await;
            }
            if requeued == 0 {
                return;
            }
        }
    })
}

/// Waits until the merchants' poller has read every caller's feed up to the caller's
/// latest committed event (bounded: a poller that cannot catch up leaves the oracle to say
/// what it missed). The wait reads the receiver's cursor only to know when to stop; the
/// oracle judges what the merchant applied, not what the poller believed.
async fn caught_up(durables: &Durables) {
    let Some(ledger) = durables.get::<ReceiverLedger>(RECEIVER, "ledger") else {
        return;
    };
    for _poll in 0..DRAIN_POLLS_MAX {
        let Some(latest) = super::service_tables(durables, |live, _| {
            let mut latest: BTreeMap<String, u64> = BTreeMap::new();
            for record in live.outbox.values() {
                latest.insert(record.caller.clone(), record.seq);
            }
            latest
        }) else {
            return;
        };
        let behind = latest.iter().any(|(caller, seq)| {
            let read = ledger
                .cursor(caller)
                .and_then(|cursor| shipsim_system::service::seq_of(&cursor).ok());
            read.is_none_or(|read| read < *seq)
        });
        if !behind {
            return;
        }
        tokio::time::sleep(Duration::from_millis(DRAIN_POLL_MS)).await;
    }
}

/// An admin key that is not the operator's, as a caller guessing or replaying an old one
/// would send it.
const WRONG_ADMIN_KEY: &str = "ak_sim_intruder";

/// The probes of `[webhooks] probe_operator`, in the order they are sent: a caller without
/// the key reading the outbox, requeuing its dead letters without and with a wrong key,
/// reading the whole store with a wrong key; then the operator reading the outbox counts.
const PROBES: &[(&str, &str, ProbeKey)] = &[
    ("GET", "/v1/admin/outbox", ProbeKey::Missing),
    ("POST", "/v1/admin/outbox/redeliver", ProbeKey::Missing),
    ("POST", "/v1/admin/outbox/redeliver", ProbeKey::Wrong),
    ("GET", "/v1/admin/state", ProbeKey::Wrong),
    ("GET", "/v1/admin/outbox", ProbeKey::Operator),
];

/// Sends [`PROBES`] to the service, filing each with its raw answer and the store's outbox
/// counts around it in the service host's [`ProbeLog`] (`webhook_once` judges them).
async fn probe_operator(transport: &dyn Transport, durables: &Durables) {
    if !super::has_service_store(durables) {
        return;
    }
    let log = durables.get_or_init(SERVICE_HOST, PROBE_LOG, ProbeLog::default);
    for (method, path, key) in PROBES {
        let admin_key = match key {
            ProbeKey::Missing => None,
            ProbeKey::Wrong => Some(WRONG_ADMIN_KEY),
            ProbeKey::Operator => Some(ADMIN_KEY),
        };
        let method_value = http::Method::from_bytes(method.as_bytes())
            .expect("the probes' methods are valid HTTP methods");
        let outbox_before = outbox_counts(durables);
        let answer = send_admin(transport, method_value, path, admin_key).await;
        let outbox_after = outbox_counts(durables);
        log.0
            .lock()
            .expect("probe log lock poisoned")
            .push(OperatorProbe {
                method: (*method).to_string(),
                path: (*path).to_string(),
                key: *key,
                status: answer.as_ref().map(|r| r.status().as_u16()),
                body: answer.map(|r| r.body().clone()).unwrap_or_default(),
                outbox_before,
                outbox_after,
            });
    }
}

/// The outbox's (pending, delivered, dead letter) counts as the store holds them.
fn outbox_counts(durables: &Durables) -> (u64, u64, u64) {
    super::service_tables(durables, |live, _| {
        delivery_counts(live.outbox.values().map(|r| &r.delivery))
    })
    .unwrap_or_default()
}

/// (pending, delivered, dead letter) counts of `deliveries`, tallied here rather than asked
/// of the store or the carrier: the operator routes that report them are what is judged.
pub(super) fn delivery_counts<'a>(
    deliveries: impl Iterator<Item = &'a shipsim_system::store::Delivery>,
) -> (u64, u64, u64) {
    use shipsim_system::store::Delivery;
    let mut counts = (0, 0, 0);
    for delivery in deliveries {
        match delivery {
            Delivery::Pending { .. } => counts.0 += 1,
            Delivery::Delivered { .. } => counts.1 += 1,
            Delivery::DeadLetter { .. } => counts.2 += 1,
        }
    }
    counts
}

/// Sends `method path` with `admin_key` in `X-Admin-Key` (none when `None`); `None` when no
/// answer came back within 5 s.
async fn send_admin(
    transport: &dyn Transport,
    method: http::Method,
    path: &str,
    admin_key: Option<&str>,
) -> Option<HttpResponse> {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(format!("http://admin{path}"));
    if let Some(key) = admin_key {
        builder = builder.header(shipsim_system::service::HEADER_ADMIN_KEY, key);
    }
    let request = builder.body(bytes::Bytes::new()).ok()?;
    tokio::time::timeout(Duration::from_secs(5), transport.send(request))
        .await
        .ok()?
        .ok()
}

async fn admin(
    transport: &dyn Transport,
    method: http::Method,
    path: &str,
) -> Option<serde_json::Value> {
    let response = send_admin(transport, method, path, Some(ADMIN_KEY)).await?;
    if !response.status().is_success() {
        return None;
    }
    serde_json::from_slice(response.body()).ok()
}

async fn pending(transport: &dyn Transport, path: &str) -> Option<u64> {
    admin(transport, http::Method::GET, path)
        .await?
        .get("pending")?
        .as_u64()
}

async fn redeliver(transport: &dyn Transport, path: &str) -> u64 {
    admin(transport, http::Method::POST, path)
        .await
        .and_then(|v| v.get("requeued").and_then(serde_json::Value::as_u64))
        .unwrap_or(0)
}

/// The service host's durable name of its [`WireLog`].
pub(super) const WIRE_LOG: &str = "wire";

/// The carrier's tracking deliveries to the service, on the carrier's host, recorded the same
/// way: the wire `webhook_once` judges the tracking sender's wake-ups by.
pub(super) const TRACKING_WIRE_LOG: &str = "tracking_wire";

/// The service's outbound deliveries as they left it and were answered, kept outside the
/// host so a crash loses none: the wire `credentials_honoured` judges a secret rotation by,
/// and `webhook_once` the sender's retry schedule.
#[derive(Default)]
pub(super) struct WireLog(std::sync::Mutex<Vec<SignedDelivery>>);

impl WireLog {
    fn deliveries(&self) -> Vec<SignedDelivery> {
        self.0.lock().expect("wire log lock poisoned").clone()
    }
}

impl crate::target::Durable for WireLog {
    fn crash(&self) -> u64 {
        0
    }
}

/// The service host's durable name of its [`ProbeLog`].
pub(super) const PROBE_LOG: &str = "operator-probes";

/// The operator-route probes of `[webhooks] probe_operator` and their answers, kept outside
/// the host so a crash loses none.
#[derive(Default)]
pub(super) struct ProbeLog(std::sync::Mutex<Vec<OperatorProbe>>);

impl ProbeLog {
    fn probes(&self) -> Vec<OperatorProbe> {
        self.0.lock().expect("probe log lock poisoned").clone()
    }
}

impl crate::target::Durable for ProbeLog {
    fn crash(&self) -> u64 {
        0
    }
}

/// A transport that files every request it carries, with its answer, in a [`WireLog`]. An
/// attempt the sender cut short (its timeout, or a crash of the host) is filed too, when its
/// future is dropped, with no status: the wire saw it leave and never saw it answered.
pub(super) struct Recorded {
    pub(super) inner: std::sync::Arc<dyn Transport>,
    pub(super) log: std::sync::Arc<WireLog>,
    /// The host's boot.
    pub(super) boot: u64,
}

fn elapsed_us() -> Option<u64> {
    turmoil::sim_elapsed().map(|e| u64::try_from(e.as_micros()).unwrap_or(u64::MAX))
}

/// One attempt on its way: filed in the log when it ends, answered or dropped.
struct InFlight {
    log: std::sync::Arc<WireLog>,
    delivery: Option<SignedDelivery>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(mut delivery) = self.delivery.take() {
            // Dropped outside the simulation (the host's runtime torn down by a crash):
            // the end is unknown, the attempt is filed as ending when it began.
            delivery.answered_at_us =
                elapsed_us().map_or(delivery.sent_at_us, |now| now.max(delivery.sent_at_us));
            self.log
                .0
                .lock()
                .expect("wire log lock poisoned")
                .push(delivery);
        }
    }
}

impl Transport for Recorded {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            let caller = request
                .uri()
                .path()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            let signature = request
                .headers()
                .get(shipsim_system::webhook::HEADER_SIGNATURE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let sent_at_us = elapsed_us().unwrap_or(0);
            let mut in_flight = InFlight {
                log: self.log.clone(),
                delivery: Some(SignedDelivery {
                    caller,
                    signature,
                    body: request.body().clone(),
                    sent_at_us,
                    answered_at_us: sent_at_us,
                    status: None,
                    boot: self.boot,
                }),
            };
            let answer = self.inner.send(request).await;
            if let Some(delivery) = in_flight.delivery.as_mut() {
                delivery.status = answer.as_ref().ok().map(|r| r.status().as_u16());
            }
            drop(in_flight);
            answer
        })
    }
}
