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
}

/// Receives [`SystemEvent`]s.
pub trait Observer: Send + Sync + 'static {
    /// Records one event. Must not block or fail.
    fn record(&self, event: SystemEvent);
}

/// An observer that drops every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl Observer for NoopObserver {
    fn record(&self, _event: SystemEvent) {}
}

/// An observer that logs every event through `tracing`, for live mode.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingObserver;

impl Observer for TracingObserver {
    fn record(&self, event: SystemEvent) {
        tracing::info!(event = ?event, "system event");
    }
}

/// A shared observer handle.
pub type SharedObserver = Arc<dyn Observer>;
