//! The rows the service stores. They serialise (serde) so that the admin endpoint can show
//! a store's whole state to live mode's oracles.

use serde::{Deserialize, Serialize};

use crate::api::{Order, Shipment};

/// Idempotency keys are scoped to the caller: one merchant's key never matches another's.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IdemScope {
    /// The authenticated caller (merchant id).
    pub caller: String,
    /// The key the caller sent.
    pub key: String,
}

/// What the service remembers about one idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// Caller and key.
    pub scope: IdemScope,
    /// Hash of the method, path and body (without the key) of the first request.
    pub fingerprint: String,
    /// When the first request arrived, by the service's clock.
    pub created_at_ms: u64,
    /// How far the operation got.
    pub state: IdemState,
}

/// Progress of an idempotent operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdemState {
    /// Started, not finished. `lock` is held while a request is executing it; a request
    /// finding no lock (or a lock of a dead process) resumes from `recovery`.
    InProgress {
        /// The executing request's claim, if one is executing.
        lock: Option<Lock>,
        /// The last committed step.
        recovery: RecoveryPoint,
    },
    /// Finished: the stored response is replayed for every later request with this key.
    Completed {
        /// The response of the first completion.
        response: StoredResponse,
    },
}

/// A request's claim on an in-progress operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// Boot number of the process that holds it: a lock from an earlier boot is dead.
    pub boot: u64,
    /// When it was taken, by the service's clock; a lock older than the lease is stale.
    pub acquired_at_ms: u64,
}

/// The last committed step of a multi-step operation (Brandur Leach's "atomic phases").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryPoint {
    /// The shipment row exists; its label has not been stored yet.
    ShipmentCreated {
        /// The shipment being labelled.
        shipment_id: String,
    },
}

/// A response kept for replay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// HTTP status of the first completion.
    pub status: u16,
    /// Its JSON body.
    pub body: String,
}

/// An order and who created it with which key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// The order as the API shows it.
    pub order: Order,
    /// The merchant that owns it.
    pub caller: String,
    /// The idempotency key it was created with.
    pub idempotency_key: String,
}

/// A shipment and who created it with which key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentRecord {
    /// The shipment as the API shows it.
    pub shipment: Shipment,
    /// The merchant that owns it.
    pub caller: String,
    /// The idempotency key it was created with.
    pub idempotency_key: String,
}

/// A carrier tracking event the service has taken in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessedEvent {
    /// When it arrived, by the service's clock.
    pub received_at_ms: u64,
    /// The outbox event it caused, if it moved a shipment forward.
    pub effect: Option<u64>,
}

/// An outbound webhook event and where its delivery stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRecord {
    /// Position in the outbox: commit order.
    pub seq: u64,
    /// The merchant it is for.
    pub caller: String,
    /// The event.
    pub event: crate::api::WebhookEvent,
    /// The carrier event that caused it, for shipment status events.
    pub cause: Option<String>,
    /// Delivery state.
    pub delivery: Delivery,
}

/// Where one outbound delivery stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Not delivered yet; next attempt not before `next_attempt_at_ms`.
    Pending {
        /// Attempts so far.
        attempts: u32,
        /// Earliest next attempt, by the sender's clock.
        next_attempt_at_ms: u64,
    },
    /// The receiver answered 2xx.
    Delivered {
        /// Attempts it took.
        attempts: u32,
        /// When, by the sender's clock.
        delivered_at_ms: u64,
    },
    /// Every attempt failed; kept for inspection and redelivery.
    DeadLetter {
        /// Attempts made.
        attempts: u32,
        /// How the last one failed.
        last_error: String,
    },
}
