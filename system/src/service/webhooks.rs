//! Webhooks at the service: carrier tracking events in, merchant events out.
//!
//! **In** (`POST /v1/webhooks/carrier`): the signature over the raw body and timestamp is
//! checked (constant time, 300 s tolerance), then one transaction records the event id as
//! processed and applies its effect: the shipment moves forward (never backwards: a late
//! `in_transit` after `delivered` changes nothing) and the merchant's outbox gets the
//! announcement. A duplicate is acknowledged with 200 and changes nothing. Because the
//! dedupe record and the effect commit together, a crash can neither lose an acknowledged
//! event nor apply one twice.
//!
//! Inbound events are read forward-compatibly, as Stripe asks of webhook receivers: fields
//! this service does not know are ignored (and counted), and an event of a kind it does not
//! know is acknowledged with 200 and taken in without effect (logged and counted in
//! `/metrics`), so a carrier that adds a kind never sees its deliveries refused, retried
//! and dead-lettered. An event for a shipment this service does not have is acknowledged
//! the same way, on purpose, not parked: the service creates each shipment (and commits
//! it) before it asks the carrier for the label, so the carrier cannot know a shipment
//! before this database does. An unknown reference therefore belongs to another
//! environment sharing the carrier account, or to a database restored to before the
//! shipment; in neither case will the shipment ever appear here, and a parked event would
//! wait forever. It is logged with the whole event and counted.
//!
//! **Out**: every state change writes its outbox event in the same transaction as the
//! change ([`emit`]); [`run_outbox_sender`] delivers the outbox at least once.
//!
//! **Admin** (`X-Admin-Key`): `GET /v1/admin/outbox` counts deliveries by state,
//! `POST /v1/admin/outbox/redeliver` puts dead letters back in the queue.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};

use super::error::ApiError;
use super::{Service, ServiceDeps, openapi, validate};
use crate::api::{OrderStatus, ShipmentStatus, TrackingEvent, TrackingKind, WebhookEvent};
use crate::bugs::Bug;
use crate::observe::SystemEvent;
use crate::store::{self, Delivery, Durability, OutboxRecord, ProcessedEvent, Store, Tx};
use crate::transport::BoxFuture;
use crate::webhook::{
    self, DeliveryQueue, DeliveryResult, HEADER_SIGNATURE, Outgoing, SenderConfig,
};

/// Where a merchant receives its webhooks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookTarget {
    /// Absolute URL.
    pub url: String,
    /// Signing secret shared with the merchant.
    pub secret: String,
    /// During a secret rotation, the secret being retired: deliveries are signed under
    /// both (two `v1=` signatures) until it is removed, so the merchant's receiver can
    /// switch secrets at any moment of the overlap.
    pub previous_secret: Option<String>,
}

/// The service's webhook settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Secret the carrier signs tracking events with.
    pub carrier_secret: String,
    /// Accepted signature age, seconds.
    pub tolerance_s: u64,
    /// Merchants that subscribed, by caller id. Callers without a target get no events.
    pub targets: BTreeMap<String, WebhookTarget>,
    /// How the outbox is delivered.
    pub sender: SenderConfig,
}

/// Writes an outbox event for `caller` in the caller's transaction, if the caller has
/// subscribed; `event` builds it from a fresh event id (drawn only when needed, so callers
/// without subscriptions consume no ids). Returns its sequence number.
pub(crate) fn emit(
    service: &Service,
    tx: &mut dyn Tx,
    caller: &str,
    event: impl FnOnce(String) -> WebhookEvent,
    cause: Option<String>,
) -> Option<u64> {
    if !service.config.webhooks.targets.contains_key(caller) {
        return None;
    }
    let event = event(service.ids.next("evt"));
    let seq = tx.next_outbox_seq();
    tx.put_outbox(OutboxRecord {
        seq,
        caller: caller.to_string(),
        event,
        cause,
        delivery: Delivery::Pending {
            attempts: 0,
            next_attempt_at_ms: 0,
        },
    });
    Some(seq)
}

/// The order status a shipment status implies: orders follow their furthest shipment.
pub(crate) fn order_status_for(status: ShipmentStatus) -> OrderStatus {
    match status {
        ShipmentStatus::PendingLabel | ShipmentStatus::LabelRejected => OrderStatus::Created,
        ShipmentStatus::LabelPurchased => OrderStatus::Fulfilling,
        ShipmentStatus::InTransit | ShipmentStatus::Exception => OrderStatus::Shipped,
        ShipmentStatus::Delivered => OrderStatus::Delivered,
    }
}

/// Why a carrier event was taken in without effect: a kind this service does not know.
const IGNORED_UNKNOWN_KIND: &str = "unknown_kind";
/// Why a carrier event was taken in without effect: a shipment this service does not have.
const IGNORED_UNKNOWN_SHIPMENT: &str = "unknown_shipment";

/// The answer to a carrier webhook.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookAck)]
pub(crate) struct Ack {
    pub(crate) received: bool,
    /// The event id was taken in before; nothing changed.
    pub(crate) duplicate: bool,
    /// The shipment moved forward.
    pub(crate) applied: bool,
    /// Why the event was taken in without effect: a kind this service does not know, or a
    /// shipment it does not have.
    #[schema(schema_with = ignored_schema, required = true)]
    pub(crate) ignored: Option<&'static str>,
}

fn ignored_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some([
            Some(IGNORED_UNKNOWN_KIND),
            Some(IGNORED_UNKNOWN_SHIPMENT),
            None,
        ]))
        .description(Some("Why the event was taken in without effect: a kind this service does not know, or a shipment it does not have"))
}

/// A carrier tracking event. Read forward-compatibly: fields this service does not know
/// are ignored (and counted in /metrics); an event of a kind it does not know is
/// acknowledged and taken in without effect. Events of a known kind need every field below.
#[derive(Deserialize, ToSchema)]
#[schema(as = TrackingEvent)]
struct Inbound {
    /// Unique per event; applied once.
    event_id: String,
    /// One of TrackingKind; other kinds are acknowledged and ignored.
    kind: String,
    /// The service's shipment id.
    #[schema(nullable = false)]
    shipment_ref: Option<String>,
    #[schema(nullable = false)]
    label_id: Option<String>,
    #[schema(nullable = false)]
    tracking_number: Option<String>,
    /// Unix ms, carrier clock.
    #[schema(nullable = false)]
    occurred_at_ms: Option<u64>,
    /// Collected to be counted, not refused.
    #[serde(flatten)]
    #[schema(ignore)]
    unknown: BTreeMap<String, serde_json::Value>,
}

/// What an inbound event turned out to be.
enum Reading {
    /// A kind this service knows, with every field that kind needs.
    Known(TrackingEvent),
    /// A kind this service does not know (yet).
    UnknownKind,
}

impl Inbound {
    fn read(self) -> Result<Reading, ApiError> {
        let Ok(kind) = serde_json::from_value::<TrackingKind>(serde_json::Value::String(self.kind))
        else {
            return Ok(Reading::UnknownKind);
        };
        let missing = |field: &str| {
            ApiError::malformed(field.to_string(), format!("missing field `{field}`"))
        };
        Ok(Reading::Known(TrackingEvent {
            event_id: self.event_id,
            kind,
            shipment_ref: self.shipment_ref.ok_or_else(|| missing("shipment_ref"))?,
            label_id: self.label_id.ok_or_else(|| missing("label_id"))?,
            tracking_number: self
                .tracking_number
                .ok_or_else(|| missing("tracking_number"))?,
            occurred_at_ms: self
                .occurred_at_ms
                .ok_or_else(|| missing("occurred_at_ms"))?,
        }))
    }
}

/// `POST /v1/webhooks/carrier`.
#[utoipa::path(
    post,
    path = "/v1/webhooks/carrier",
    operation_id = "carrierWebhook",
    summary = "Take in a carrier tracking event (signed; each event id is applied once)",
    description = "The carrier signs `{t}.{raw body}` with HMAC-SHA256 under the shared secret and sends `Shipsim-Signature: t=<unix seconds>,v1=<hex>`; signatures older or newer than the tolerance (300 s by default) are refused. The event's dedupe record and its effect (the shipment's new status, the merchant's outbox event) commit in one transaction; a duplicate is acknowledged with `duplicate: true` and changes nothing.",
    request_body = Inbound,
    responses(
        (status = 200, description = "Taken in (or recognised as a duplicate)", body = Ack),
        (status = 400, description = "`invalid_signature` or `timestamp_out_of_tolerance`, or `malformed_json` for a body that is not a tracking event (no `event_id` or `kind`, or a known kind without its fields)"),
        (status = 413, description = openapi::TOO_LARGE),
        (status = 415, description = openapi::NOT_JSON),
        (status = 503, description = "`store_unavailable`: transient; the carrier delivers again"),
    ),
)]
pub(crate) async fn carrier_event(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let settings = &service.config.webhooks;
    let signature = headers.get(HEADER_SIGNATURE).and_then(|v| v.to_str().ok());
    if let Err(error) = service.carrier_key.verify(
        signature,
        &body,
        service.clock.now_ms(),
        settings.tolerance_s,
    ) {
        service.observer.record(SystemEvent::WebhookRejected {
            receiver: "service".into(),
            reason: error.to_string(),
        });
        return Err(ApiError::bad_signature(&error));
    }
    let inbound: Inbound = validate::parse_json(&headers, &body)?;
    tracing::Span::current().record("event_id", inbound.event_id.as_str());
    if !inbound.unknown.is_empty() {
        let fields: Vec<&str> = inbound.unknown.keys().map(String::as_str).collect();
        tracing::info!(?fields, kind = %inbound.kind, "carrier event carries fields this service does not know; ignored");
        service.metrics.webhook_unknown_fields();
    }
    let event_id = inbound.event_id.clone();
    let kind = inbound.kind.clone();
    let event = match inbound.read()? {
        Reading::Known(event) => event,
        Reading::UnknownKind => {
            tracing::warn!(%kind, "carrier event of a kind this service does not know; acknowledged without effect");
            return take_in_without_effect(&service, event_id, IGNORED_UNKNOWN_KIND).await;
        }
    };
    let now_ms = service.clock.now_ms();
    let split = service.config.bugs.has(Bug::WebhookDedupeAfterEffect);
    let outcome = service
        .transact({
            let service = service.clone();
            let event = event.clone();
            move |tx| {
                if tx.processed_event(&event.event_id).is_some() {
                    return Ok(None);
                }
                let applied = apply(&service, tx, &event, now_ms);
                // The planted bug records the event id in a later transaction.
                if !split {
                    tx.put_processed_event(
                        &event.event_id,
                        ProcessedEvent {
                            received_at_ms: now_ms,
                            effect: applied.effect,
                        },
                    );
                }
                Ok(Some(applied))
            }
        })
        .await?;
    service.store_round_trip().await;
    if split && let Some(applied) = outcome {
        let event_id = event.event_id.clone();
        service
            .transact(move |tx| {
                tx.put_processed_event(
                    &event_id,
                    ProcessedEvent {
                        received_at_ms: now_ms,
                        effect: applied.effect,
                    },
                );
                Ok(())
            })
            .await?;
    }
    let ignored =
        outcome.and_then(|applied| (!applied.known_shipment).then_some(IGNORED_UNKNOWN_SHIPMENT));
    if let Some(reason) = ignored {
        tracing::warn!(event = ?event, "carrier event for a shipment this service does not have; acknowledged without effect");
        service.metrics.webhook_ignored(reason);
    }
    let ack = Ack {
        received: true,
        duplicate: outcome.is_none(),
        applied: outcome.is_some_and(|applied| applied.advanced),
        ignored,
    };
    if ack.duplicate {
        service.metrics.webhook_duplicate_absorbed();
    }
    service.observer.record(SystemEvent::WebhookReceived {
        receiver: "service".into(),
        event_id: event.event_id.clone(),
        duplicate: ack.duplicate,
        applied: ack.applied,
    });
    Ok((StatusCode::OK, axum::Json(ack)).into_response())
}

/// Acknowledges an event the service cannot act on (`reason`), recording its id as taken
/// in, so a redelivery is answered as a duplicate.
async fn take_in_without_effect(
    service: &Arc<Service>,
    event_id: String,
    reason: &'static str,
) -> Result<Response, ApiError> {
    let now_ms = service.clock.now_ms();
    let fresh = service
        .transact({
            let event_id = event_id.clone();
            move |tx| {
                if tx.processed_event(&event_id).is_some() {
                    return Ok(false);
                }
                tx.put_processed_event(
                    &event_id,
                    ProcessedEvent {
                        received_at_ms: now_ms,
                        effect: None,
                    },
                );
                Ok(true)
            }
        })
        .await?;
    service.store_round_trip().await;
    if fresh {
        service.metrics.webhook_ignored(reason);
    } else {
        service.metrics.webhook_duplicate_absorbed();
    }
    service.observer.record(SystemEvent::WebhookReceived {
        receiver: "service".into(),
        event_id,
        duplicate: !fresh,
        applied: false,
    });
    let ack = Ack {
        received: true,
        duplicate: !fresh,
        applied: false,
        ignored: Some(reason),
    };
    Ok((StatusCode::OK, axum::Json(ack)).into_response())
}

/// What applying a carrier event did.
#[derive(Clone, Copy, Debug)]
struct Applied {
    /// The outbox event it caused.
    effect: Option<u64>,
    /// Whether the shipment moved forward.
    advanced: bool,
    /// Whether the shipment exists here.
    known_shipment: bool,
}

/// Applies a tracking event inside the caller's transaction. Every scan after the label's
/// creation is forwarded to the merchant (as the shipment's new status when it moved
/// forward, as a `shipment.tracking_update` when it did not), so each carrier event causes
/// exactly one announcement: that is what deduplication protects.
fn apply(service: &Service, tx: &mut dyn Tx, event: &TrackingEvent, now_ms: u64) -> Applied {
    let Some(mut record) = tx.shipment(&event.shipment_ref) else {
        return Applied {
            effect: None,
            advanced: false,
            known_shipment: false,
        };
    };
    let shipment = &mut record.shipment;
    // The event proves the label exists: a shipment whose label purchase was interrupted
    // (crash after the sale) learns it here, and stays consistent with its status.
    if shipment.label_id.is_none() && shipment.status == ShipmentStatus::PendingLabel {
        shipment.label_id = Some(event.label_id.clone());
        shipment.tracking_number = Some(event.tracking_number.clone());
        shipment.status = ShipmentStatus::LabelPurchased;
    }
    let advanced = event
        .kind
        .shipment_status()
        .filter(|status| shipment.label_id.is_some() && status.rank() > shipment.status.rank());
    if let Some(status) = advanced {
        shipment.status = status;
    }
    let status = shipment.status;
    let (order_id, shipment_id, caller) = (
        shipment.order_id.clone(),
        shipment.id.clone(),
        record.caller.clone(),
    );
    if let Some(mut order) = tx.order(&order_id) {
        let implied = order_status_for(status);
        if implied > order.order.status {
            order.order.status = implied;
            tx.put_order(order);
        }
    }
    if event.kind == TrackingKind::LabelCreated {
        // The merchant heard of the label from the shipment's own creation.
        tx.put_shipment(record);
        return Applied {
            effect: None,
            advanced: advanced.is_some(),
            known_shipment: true,
        };
    }
    let event_type = match advanced {
        Some(status) => WebhookEvent::shipment_type(status),
        None => "shipment.tracking_update",
    };
    let sequence = record.webhook_sequence + 1;
    let outbound = |event_id| WebhookEvent {
        event_id,
        event_type: event_type.to_string(),
        created_at_ms: now_ms,
        order_id,
        shipment_id: Some(shipment_id),
        status: Some(status),
        sequence,
    };
    let effect = emit(service, tx, &caller, outbound, Some(event.event_id.clone()));
    if effect.is_some() {
        record.webhook_sequence = sequence;
    }
    tx.put_shipment(record);
    Applied {
        effect,
        advanced: advanced.is_some(),
        known_shipment: true,
    }
}

fn check_admin(service: &Service, headers: &HeaderMap) -> Result<(), ApiError> {
    super::check_admin_key(service.config.admin_key.as_deref(), headers)
}

/// Delivery counts of an outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OutboxCounts {
    /// Not delivered yet.
    pub pending: u64,
    /// Delivered.
    pub delivered: u64,
    /// Gave up.
    pub dead_letter: u64,
}

/// `GET /v1/admin/outbox`.
#[utoipa::path(
    get,
    path = "/v1/admin/outbox",
    operation_id = "adminOutbox",
    summary = "Webhook outbox deliveries by state",
    responses(
        (status = 200, description = "The counts", body = OutboxCounts),
        (status = 503, description = openapi::STORE_UNAVAILABLE),
    ),
)]
pub(crate) async fn outbox_counts(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_admin(&service, &headers)?;
    let (pending, delivered, dead_letter) = service.transact(|tx| Ok(tx.outbox_counts())).await?;
    Ok(axum::Json(OutboxCounts {
        pending,
        delivered,
        dead_letter,
    })
    .into_response())
}

/// The answer to a redelivery.
#[derive(Serialize, ToSchema)]
pub(crate) struct Requeued {
    /// How many dead letters went back in the queue.
    requeued: u64,
}

/// `POST /v1/admin/outbox/redeliver`: dead letters go back in the queue.
#[utoipa::path(
    post,
    path = "/v1/admin/outbox/redeliver",
    operation_id = "adminOutboxRedeliver",
    summary = "Put every dead-lettered webhook back in the delivery queue",
    responses(
        (status = 200, description = "How many were requeued", body = Requeued),
        (status = 503, description = openapi::STORE_UNAVAILABLE),
    ),
)]
pub(crate) async fn redeliver(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_admin(&service, &headers)?;
    let requeued = service
        .transact(|tx| {
            let dead = tx.outbox_dead();
            let count = dead.len() as u64;
            for mut record in dead {
                record.delivery = Delivery::Pending {
                    attempts: 0,
                    next_attempt_at_ms: 0,
                };
                tx.put_outbox(record);
            }
            Ok(count)
        })
        .await?;
    Ok(axum::Json(Requeued { requeued }).into_response())
}

/// The service's outbox as a sender's queue.
struct Outbox {
    store: Arc<dyn Store>,
    targets: BTreeMap<String, crate::service::WebhookTarget>,
    /// Scheduled secret rotations by caller (the target's `secret` is the old one).
    rotations: BTreeMap<String, crate::webhook::SecretRotation>,
}

impl DeliveryQueue for Outbox {
    fn due(
        &self,
        now_ms: u64,
        limit: usize,
        in_flight: BTreeSet<u64>,
    ) -> BoxFuture<'_, Vec<Outgoing>> {
        Box::pin(async move {
            let records = store::transact_owned(&*self.store, Durability::Sync, move |tx| {
                Ok::<_, store::StoreError>(tx.outbox_due(now_ms, limit, &in_flight))
            })
            .await
            .unwrap_or_default();
            records
                .into_iter()
                .filter_map(|record| {
                    let target = self.targets.get(&record.caller)?;
                    let attempts = match record.delivery {
                        Delivery::Pending { attempts, .. } => attempts,
                        _ => return None,
                    };
                    Some(Outgoing {
                        seq: record.seq,
                        event_id: record.event.event_id.clone(),
                        url: target.url.clone(),
                        secret: target.secret.clone(),
                        previous_secret: target.previous_secret.clone(),
                        rotation: self.rotations.get(&record.caller).cloned(),
                        body: Bytes::from(
                            serde_json::to_vec(&record.event).expect("API types serialise"),
                        ),
                        attempts,
                        first_due_at_ms: record.event.created_at_ms,
                    })
                })
                .collect()
        })
    }

    fn next_due_ms(&self, in_flight: BTreeSet<u64>) -> BoxFuture<'_, Option<u64>> {
        Box::pin(async move {
            store::transact_owned(&*self.store, Durability::Sync, move |tx| {
                Ok::<_, store::StoreError>(tx.outbox_next_due(&in_flight))
            })
            .await
            // A store that cannot answer: look again at the next poll.
            .unwrap_or(Some(0))
        })
    }

    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.store.outbox_commits()
    }

    fn settle(&self, seq: u64, result: DeliveryResult) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // A failed write of the result only means the event is sent again: at least once.
            let _ = store::transact_owned(&*self.store, Durability::Sync, move |tx| {
                if let Some(mut record) = tx.outbox(seq) {
                    record.delivery = result.delivery();
                    tx.put_outbox(record);
                }
                Ok::<_, store::StoreError>(())
            })
            .await;
        })
    }
}

/// Delivers the service's outbox to merchants until the host dies. `transport` reaches
/// the merchants' receivers.
pub async fn run_outbox_sender(
    settings: WebhookSettings,
    deps: ServiceDeps,
    transport: Arc<dyn crate::transport::Transport>,
) {
    run_outbox_sender_rotating(
        settings,
        BTreeMap::new(),
        crate::bugs::BugSet::default(),
        deps,
        transport,
    )
    .await;
}

/// [`run_outbox_sender`] with scheduled secret rotations by caller: each caller's
/// deliveries are signed under its old secret, then under both through the overlap, then
/// under the new one only (see [`crate::webhook::SecretRotation`]).
pub async fn run_outbox_sender_rotating(
    settings: WebhookSettings,
    rotations: BTreeMap<String, crate::webhook::SecretRotation>,
    bugs: crate::bugs::BugSet,
    deps: ServiceDeps,
    transport: Arc<dyn crate::transport::Transport>,
) {
    let rotations = rotations
        .into_iter()
        .map(|(caller, mut rotation)| {
            if bugs.has(Bug::WebhookSignsWithNewSecretOnly) {
                // The planted bug: the deploy swaps the secret instead of adding the new
                // one beside it, so there is no overlap for the receiver to switch in.
                rotation.old_until_ms = rotation.from_ms;
            }
            (caller, rotation)
        })
        .collect();
    let queue = Arc::new(Outbox {
        store: deps.store,
        targets: settings.targets.clone(),
        rotations,
    });
    webhook::run_sender(
        "service",
        queue,
        transport,
        deps.clock,
        deps.seed.derive_index("outbox-sender", deps.boot),
        settings.sender,
        deps.observer,
    )
    .await;
}
