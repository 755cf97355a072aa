//! The observation seam: the service and the carrier report what they did as
//! [`SystemEvent`]s. The simulation stamps them with simulated time and folds them into the
//! run's trace (and so its hash and timelines); live mode writes them as structured logs.

use std::sync::Arc;

/// Something the system did that a person debugging a run wants to see on the timeline.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SystemEvent {
    /// The service committed a new order.
    OrderCreated {
        /// Who asked.
        caller: String,
        /// The idempotency key of the request.
        key: String,
        /// The new order.
        order_id: String,
    },
    /// The service committed a new shipment (label not bought yet).
    ShipmentCreated {
        /// Who asked.
        caller: String,
        /// The idempotency key of the request.
        key: String,
        /// The new shipment.
        shipment_id: String,
    },
    /// The service stored a bought label on a shipment and completed its request.
    LabelAttached {
        /// The shipment.
        shipment_id: String,
        /// The carrier's label.
        label_id: String,
    },
    /// The service answered from a stored idempotent outcome.
    Replayed {
        /// Who asked.
        caller: String,
        /// The idempotency key.
        key: String,
        /// Status code replayed.
        status: u16,
    },
    /// The service resumed an operation whose earlier attempt died mid-way.
    Resumed {
        /// Who asked.
        caller: String,
        /// The idempotency key.
        key: String,
    },
    /// The service refused a request because one with the same key is in flight.
    InFlightConflict {
        /// Who asked.
        caller: String,
        /// The idempotency key.
        key: String,
    },
    /// The service refused a reused key whose request differs from the first.
    KeyReuseRejected {
        /// Who asked.
        caller: String,
        /// The idempotency key.
        key: String,
    },
    /// The service shed a request with 429.
    RateLimited {
        /// Who was limited.
        caller: String,
    },
    /// The carrier sold a new label.
    LabelSold {
        /// The label.
        label_id: String,
        /// The shipment it was sold for.
        shipment_ref: String,
        /// The idempotency key it was sold under, if any.
        key: Option<String>,
    },
    /// The carrier answered a retried label request from its records.
    LabelReplayed {
        /// The label.
        label_id: String,
        /// The idempotency key.
        key: String,
    },
    /// A webhook sender got a 2xx for an event.
    WebhookDelivered {
        /// `carrier` or `service`.
        sender: String,
        /// The event.
        event_id: String,
        /// Attempts it took.
        attempts: u32,
    },
    /// A webhook sender gave up on an event.
    WebhookDeadLettered {
        /// `carrier` or `service`.
        sender: String,
        /// The event.
        event_id: String,
        /// Attempts made.
        attempts: u32,
    },
    /// A webhook receiver took an event in.
    WebhookReceived {
        /// `service` (carrier events) or `merchant` (service events).
        receiver: String,
        /// The event.
        event_id: String,
        /// Whether it had been taken in before (acknowledged, not applied again).
        duplicate: bool,
        /// Whether it changed state (false for duplicates and stale, out-of-order events).
        applied: bool,
    },
    /// A webhook receiver refused a delivery (bad signature, stale timestamp, malformed).
    WebhookRejected {
        /// `service` or `merchant`.
        receiver: String,
        /// Why.
        reason: String,
    },
    /// A simulated downstream made an effect (a charge, a transfer).
    DownstreamEffect {
        /// The downstream's name.
        downstream: String,
        /// The effect's name.
        effect: String,
        /// The effect's id.
        id: String,
        /// The idempotency key the request carried, if any.
        key: Option<String>,
    },
    /// A simulated downstream answered a repeated request from its ledger.
    DownstreamReplayed {
        /// The downstream's name.
        downstream: String,
        /// The effect replayed.
        id: String,
        /// The idempotency key.
        key: String,
    },
    /// A simulated downstream refused an effect request (a reused key, a refusal rule).
    DownstreamRefused {
        /// The downstream's name.
        downstream: String,
        /// The effect asked for.
        effect: String,
        /// The error code answered.
        code: String,
    },
}

/// A named point between two steps of an operation where a crash is most revealing.
///
/// The system announces each point it reaches; an observer that answers `true` asks the
/// system to stop there (the task parks forever), so the host can be killed with the second
/// step not taken. This is how the simulation crashes "between carrier label bought and
/// shipment stored" exactly, rather than at a lucky instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Checkpoint {
    /// Service: the shipment row and the claimed key are committed; the label is not bought.
    ShipmentClaimed,
    /// Service: the carrier sold the label; it is not stored yet.
    LabelBought,
    /// Service: the idempotency record holds the response; it has not been sent.
    ResponseStored,
    /// Carrier: the sale is recorded; the response has not been sent.
    LabelSold,
}

impl Checkpoint {
    /// Every checkpoint, in a fixed order.
    pub const ALL: &'static [Checkpoint] = &[
        Checkpoint::ShipmentClaimed,
        Checkpoint::LabelBought,
        Checkpoint::ResponseStored,
        Checkpoint::LabelSold,
    ];

    /// The name scenario files use.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Checkpoint::ShipmentClaimed => "shipment_claimed",
            Checkpoint::LabelBought => "label_bought",
            Checkpoint::ResponseStored => "response_stored",
            Checkpoint::LabelSold => "label_sold",
        }
    }

    /// Whether the point is reached on the carrier (otherwise on the service).
    #[must_use]
    pub fn on_carrier(self) -> bool {
        matches!(self, Checkpoint::LabelSold)
    }
}

/// Receives [`SystemEvent`]s and [`Checkpoint`]s.
pub trait Observer: Send + Sync + 'static {
    /// Records one event. Must not block or fail.
    fn record(&self, event: SystemEvent);

    /// Announces a checkpoint; `true` means "stop here: this process is about to die".
    fn checkpoint(&self, _point: Checkpoint) -> bool {
        false
    }
}

/// Stops the current task forever if the observer asks for a crash at `point`.
pub async fn checkpoint(observer: &dyn Observer, point: Checkpoint) {
    if observer.checkpoint(point) {
        std::future::pending::<()>().await;
    }
}

/// An observer that drops every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl Observer for NoopObserver {
    fn record(&self, _event: SystemEvent) {}
}

/// An observer that logs every event through `tracing`, for live mode: one structured line
/// per event, with the ids as named fields (`order_id`, `shipment_id`, `idempotency_key`,
/// `caller`, `label_id`) so an incident is searchable by any of them. Inside a request the
/// line also carries the request's span (its `request_id`).
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingObserver;

impl Observer for TracingObserver {
    fn record(&self, event: SystemEvent) {
        match event {
            SystemEvent::OrderCreated {
                caller,
                key,
                order_id,
            } => tracing::info!(caller, idempotency_key = key, order_id, "order created"),
            SystemEvent::ShipmentCreated {
                caller,
                key,
                shipment_id,
            } => tracing::info!(
                caller,
                idempotency_key = key,
                shipment_id,
                "shipment created"
            ),
            SystemEvent::LabelAttached {
                shipment_id,
                label_id,
            } => tracing::info!(shipment_id, label_id, "label attached"),
            SystemEvent::Replayed {
                caller,
                key,
                status,
            } => tracing::info!(caller, idempotency_key = key, status, "idempotent replay"),
            SystemEvent::Resumed { caller, key } => {
                tracing::warn!(caller, idempotency_key = key, "operation resumed")
            }
            SystemEvent::InFlightConflict { caller, key } => {
                tracing::info!(caller, idempotency_key = key, "in-flight conflict (409)")
            }
            SystemEvent::KeyReuseRejected { caller, key } => {
                tracing::warn!(
                    caller,
                    idempotency_key = key,
                    "key reused with another request (422)"
                )
            }
            SystemEvent::RateLimited { caller } => tracing::info!(caller, "rate limited (429)"),
            SystemEvent::LabelSold {
                label_id,
                shipment_ref,
                key,
            } => tracing::info!(
                label_id,
                shipment_id = shipment_ref,
                idempotency_key = key.as_deref().unwrap_or(""),
                "label sold"
            ),
            SystemEvent::LabelReplayed { label_id, key } => {
                tracing::info!(label_id, idempotency_key = key, "label replayed")
            }
            SystemEvent::WebhookDelivered {
                sender,
                event_id,
                attempts,
            } => tracing::info!(sender, event_id, attempts, "webhook delivered"),
            SystemEvent::WebhookDeadLettered {
                sender,
                event_id,
                attempts,
            } => tracing::warn!(sender, event_id, attempts, "webhook dead-lettered"),
            SystemEvent::WebhookReceived {
                receiver,
                event_id,
                duplicate,
                applied,
            } => tracing::info!(receiver, event_id, duplicate, applied, "webhook received"),
            SystemEvent::WebhookRejected { receiver, reason } => {
                tracing::warn!(receiver, reason, "webhook rejected")
            }
            SystemEvent::DownstreamEffect {
                downstream,
                effect,
                id,
                key,
            } => tracing::info!(
                downstream,
                effect,
                id,
                idempotency_key = key.as_deref().unwrap_or(""),
                "downstream effect"
            ),
            SystemEvent::DownstreamReplayed {
                downstream,
                id,
                key,
            } => tracing::info!(downstream, id, idempotency_key = key, "downstream replay"),
            SystemEvent::DownstreamRefused {
                downstream,
                effect,
                code,
            } => tracing::info!(downstream, effect, code, "downstream refusal"),
        }
    }
}

/// A shared observer handle.
pub type SharedObserver = Arc<dyn Observer>;
