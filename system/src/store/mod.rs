//! Storage: the records the service keeps, the [`Store`] trait it keeps them through, and
//! the implementations.
//!
//! Every write happens inside a transaction ([`transact`]), which is atomic: all its writes
//! become visible together or not at all. A transaction is durable when it returns if it was
//! run with [`Durability::Sync`]; with [`Durability::Lazy`] it is durable only after the next
//! flush, and a crash before that loses it. The correct service only uses `Sync`; lazy
//! commits exist so that a planted bug can acknowledge before it is durable.

mod memory;
mod records;

pub use memory::{CrashLoss, MemoryStore, Tables};
pub use records::{
    Delivery, IdemScope, IdemState, IdempotencyRecord, Lock, OrderRecord, OutboxRecord,
    ProcessedEvent, RecoveryPoint, ShipmentRecord, StoredResponse,
};

/// When a committed transaction becomes durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Durable before `transact` returns.
    Sync,
    /// Durable at the next flush; lost if the process crashes first.
    Lazy,
}

/// Whether a transaction body wants its writes kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxDecision {
    /// Apply every write of the body atomically.
    Commit,
    /// Discard every write of the body.
    Abort,
}

/// The store could not run a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store is not reachable or refused the write (disk full, database locked).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back.
    #[error("store corrupt: {0}")]
    Corrupt(String),
}

/// Reads and writes inside one transaction.
pub trait Tx {
    /// The idempotency record for `scope`, if any.
    fn idempotency(&self, scope: &IdemScope) -> Option<IdempotencyRecord>;
    /// Inserts or replaces the idempotency record for `record.scope`.
    fn put_idempotency(&mut self, record: IdempotencyRecord);
    /// The order with this id, if any.
    fn order(&self, order_id: &str) -> Option<OrderRecord>;
    /// Inserts or replaces an order.
    fn put_order(&mut self, record: OrderRecord);
    /// The shipment with this id, if any.
    fn shipment(&self, shipment_id: &str) -> Option<ShipmentRecord>;
    /// Inserts or replaces a shipment.
    fn put_shipment(&mut self, record: ShipmentRecord);
    /// The carrier event with this id, if it was taken in.
    fn processed_event(&self, event_id: &str) -> Option<ProcessedEvent>;
    /// Records a carrier event as taken in.
    fn put_processed_event(&mut self, event_id: &str, event: ProcessedEvent);
    /// The sequence number the next outbox event gets.
    fn next_outbox_seq(&self) -> u64;
    /// Inserts or replaces an outbox event.
    fn put_outbox(&mut self, record: OutboxRecord);
    /// The outbox event with this sequence number.
    fn outbox(&self, seq: u64) -> Option<OutboxRecord>;
    /// Up to `limit` pending outbox events due at `now_ms`, oldest first, skipping `skip`.
    fn outbox_due(
        &self,
        now_ms: u64,
        limit: usize,
        skip: &std::collections::BTreeSet<u64>,
    ) -> Vec<OutboxRecord>;
    /// Every dead-lettered outbox event.
    fn outbox_dead(&self) -> Vec<OutboxRecord>;
    /// Outbox events by state: (pending, delivered, dead-lettered).
    fn outbox_counts(&self) -> (u64, u64, u64);
}

/// Durable storage of orders, shipments and idempotency records.
pub trait Store: Send + Sync + 'static {
    /// Runs `body` as one atomic transaction and commits it if the body says so.
    /// Callers use [`transact`], which carries the body's result out.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot run or commit the transaction; nothing is applied.
    fn run_tx(
        &self,
        durability: Durability,
        body: &mut dyn FnMut(&mut dyn Tx) -> TxDecision,
    ) -> Result<(), StoreError>;
}

/// Runs `body` in a transaction: commits when it returns `Ok`, aborts when it returns `Err`.
///
/// # Errors
/// The body's own error, or a [`StoreError`] converted into `E`.
pub fn transact<R, E>(
    store: &dyn Store,
    durability: Durability,
    mut body: impl FnMut(&mut dyn Tx) -> Result<R, E>,
) -> Result<R, E>
where
    E: From<StoreError>,
{
    let mut outcome = None;
    store.run_tx(durability, &mut |tx| {
        let result = body(tx);
        let decision = if result.is_ok() {
            TxDecision::Commit
        } else {
            TxDecision::Abort
        };
        outcome = Some(result);
        decision
    })?;
    outcome.expect("a store must run the transaction body before returning Ok")
}
