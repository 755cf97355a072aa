//! Tracking events: after a sale the carrier schedules the parcel's story (label created,
//! picked up, in transit, delivered or exception) and delivers each event to the service's
//! webhook endpoint at least once, signed with the carrier's secret.
//!
//! The schedule lives in the ledger, which survives carrier crashes, so a restarted carrier
//! resumes sending where it stopped (and may send an event twice: the service dedupes).

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use rand::Rng;

use super::{CarrierDeps, CarrierLedger};
use crate::api::{Label, TrackingEvent, TrackingKind};
use crate::seed::IdGen;
use crate::store::Delivery;
use crate::transport::BoxFuture;
use crate::webhook::{self, DeliveryQueue, DeliveryResult, Outgoing, SenderConfig};

/// Where and how the carrier sends tracking events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackingConfig {
    /// The service's webhook URL.
    pub webhook_url: String,
    /// The signing secret shared with the service.
    pub secret: String,
    /// Chance, in percent, that a parcel ends in an exception instead of delivery.
    pub exception_percent: u32,
    /// How events are delivered.
    pub sender: SenderConfig,
}

/// One scheduled tracking event and its delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackingItem {
    /// Position in the carrier's log.
    pub seq: u64,
    /// The event.
    pub event: TrackingEvent,
    /// When it becomes due, by the carrier's clock.
    pub due_at_ms: u64,
    /// Delivery state.
    pub delivery: Delivery,
}

/// Delivery counts of the carrier's tracking log: (pending, delivered, dead-lettered).
pub type TrackingCounts = (u64, u64, u64);

/// The story of a parcel whose label was sold at `sold_at_ms`: events with their due times.
pub(crate) fn story(
    label: &Label,
    sold_at_ms: u64,
    exception_percent: u32,
    ids: &IdGen,
    rng: &mut impl Rng,
) -> Vec<(TrackingEvent, u64)> {
    let picked_up = sold_at_ms + rng.random_range(100..=300);
    let in_transit = picked_up + rng.random_range(100..=400);
    let ended = in_transit + rng.random_range(200..=800);
    let last = if rng.random_range(0..100) < exception_percent {
        TrackingKind::Exception
    } else {
        TrackingKind::Delivered
    };
    [
        (TrackingKind::LabelCreated, sold_at_ms),
        (TrackingKind::PickedUp, picked_up),
        (TrackingKind::InTransit, in_transit),
        (last, ended),
    ]
    .into_iter()
    .map(|(kind, due_at_ms)| (event(label, kind, due_at_ms, ids.next("trk")), due_at_ms))
    .collect()
}

/// A tracking event about `label`.
#[must_use]
pub fn event(
    label: &Label,
    kind: TrackingKind,
    occurred_at_ms: u64,
    event_id: String,
) -> TrackingEvent {
    TrackingEvent {
        event_id,
        kind,
        shipment_ref: label.shipment_ref.clone(),
        label_id: label.label_id.clone(),
        tracking_number: label.tracking_number.clone(),
        occurred_at_ms,
    }
}

/// The ledger's tracking log as a sender's queue.
struct Queue {
    ledger: Arc<CarrierLedger>,
    url: String,
    secret: String,
}

impl DeliveryQueue for Queue {
    fn due(
        &self,
        now_ms: u64,
        limit: usize,
        in_flight: BTreeSet<u64>,
    ) -> BoxFuture<'_, Vec<Outgoing>> {
        // A read of the ledger's memory: never waits for the disk.
        let due = self
            .ledger
            .tracking_due(now_ms, limit, &in_flight)
            .into_iter()
            .map(|item| Outgoing {
                seq: item.seq,
                event_id: item.event.event_id.clone(),
                url: self.url.clone(),
                secret: self.secret.clone(),
                previous_secret: None,
                rotation: None,
                body: Bytes::from(serde_json::to_vec(&item.event).expect("API types serialise")),
                attempts: match item.delivery {
                    Delivery::Pending { attempts, .. } => attempts,
                    _ => 0,
                },
                first_due_at_ms: item.due_at_ms,
            })
            .collect();
        Box::pin(std::future::ready(due))
    }

    fn next_due_ms(&self, in_flight: BTreeSet<u64>) -> BoxFuture<'_, Option<u64>> {
        Box::pin(std::future::ready(
            self.ledger.tracking_next_due(&in_flight),
        ))
    }

    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.ledger.tracking_changes())
    }

    fn settle(&self, seq: u64, result: DeliveryResult) -> BoxFuture<'_, ()> {
        let ledger = self.ledger.clone();
        Box::pin(async move {
            if ledger.is_durable() {
                // A file-backed ledger commits (fsyncs) the result: off the async workers.
                let _ =
                    tokio::task::spawn_blocking(move || ledger.settle_tracking(seq, &result)).await;
            } else {
                ledger.settle_tracking(seq, &result);
            }
        })
    }
}

/// Sends the carrier's tracking events until the host dies. `transport` reaches the
/// service.
pub async fn run_tracking_sender(
    config: TrackingConfig,
    deps: CarrierDeps,
    transport: Arc<dyn crate::transport::Transport>,
) {
    let queue = Arc::new(Queue {
        ledger: deps.ledger.clone(),
        url: config.webhook_url.clone(),
        secret: config.secret.clone(),
    });
    webhook::run_sender(
        "carrier",
        queue,
        transport,
        deps.clock,
        deps.seed.derive_index("tracking-sender", deps.boot),
        config.sender,
        deps.observer,
    )
    .await;
}
