//! Storage: the records the service keeps, the [`Store`] trait it keeps them through, and
//! the implementations.
//!
//! Every write happens inside a transaction ([`transact`]), which is atomic: all its writes
//! become visible together or not at all. A transaction is durable when it returns if it was
//! run with [`Durability::Sync`]; with [`Durability::Lazy`] it is durable only after the next
//! flush, and a crash before that loses it. The correct service only uses `Sync`; lazy
//! commits exist so that a planted bug can acknowledge before it is durable.
//!
//! [`MemoryStore`] is the simulation's store, with an honest durability model;
//! [`SqliteStore`] is live mode's, a real database file that survives `kill -9`.
//!
//! A user's own service keeps its records in one of two stores the simulation holds across
//! its host's crash boots: [`Kv`], an ordered key-value store with the same durability model
//! as `MemoryStore`, or [`SimSqlite`], a real SQLite database in memory for a service that
//! speaks SQL. Each module ([`kv`], [`sim_sqlite`]) shows how to put a repository trait
//! behind it.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

pub mod kv;
mod memory;
mod records;
pub mod sim_sqlite;
pub(crate) mod sqlite;

pub use kv::{KV_KEY_BYTES_MAX, KV_VALUE_BYTES_MAX, Kv, KvError, KvTx};
pub use memory::{CrashLoss, MemoryStore, Tables};
pub(crate) use records::PendingIndex;
pub use records::{
    Delivery, IdemScope, IdemState, IdempotencyRecord, Lock, OrderRecord, OutboxRecord,
    ProcessedEvent, RecoveryPoint, ShipmentRecord, StoredResponse,
};
pub use sim_sqlite::{SQL_BYTES_MAX, SimSqlite, SimSqliteError, SqlConn};
pub use sqlite::{GROUP_JOBS_MAX, SqliteStore};

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
    /// Deletes up to `limit` *completed* idempotency records created before
    /// `created_before_ms` (the retention sweep) and returns how many. Records in progress
    /// are never deleted: they guard a shipment being labelled, which a retry must resume.
    fn sweep_idempotency(&mut self, created_before_ms: u64, limit: usize) -> u64;
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
    /// The earliest time a pending outbox event not in `skip` is due, `None` when none is
    /// pending (a sender sleeps until then, or until a commit changes the outbox).
    fn outbox_next_due(&self, skip: &std::collections::BTreeSet<u64>) -> Option<u64>;
    /// Every dead-lettered outbox event.
    fn outbox_dead(&self) -> Vec<OutboxRecord>;
    /// Up to `limit` outbox events of `caller` with a sequence number above `after_seq`,
    /// in sequence order, whatever their delivery state: the events feed's page. Sequence
    /// numbers are handed out inside the committing transaction, one writer at a time, so
    /// sequence order is commit order and no lower number commits after a higher one is
    /// visible (a cursor never jumps over an event that appears later).
    fn outbox_after(&self, caller: &str, after_seq: u64, limit: usize) -> Vec<OutboxRecord>;
    /// Outbox events by state: (pending, delivered, dead-lettered).
    fn outbox_counts(&self) -> (u64, u64, u64);
}

/// A transaction body that owns what it uses, so that it can run on a thread other than
/// the caller's ([`Store::run_tx_owned`]).
pub type OwnedTxBody = Box<dyn FnMut(&mut dyn Tx) -> TxDecision + Send>;

/// The outcome of a transaction run by [`Store::run_tx_owned`].
pub type TxFuture = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>;

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

    /// Runs `body` as [`Store::run_tx`] does, where the store prefers: a store whose
    /// commits block on the disk runs it on a thread of its own, so that the async worker
    /// awaiting the future keeps serving other requests meanwhile. The default runs it at
    /// once on the calling thread and returns a finished future, so a store that never
    /// blocks (the simulation's) behaves exactly as with `run_tx`. Callers use
    /// [`transact_owned`].
    fn run_tx_owned(&self, durability: Durability, mut body: OwnedTxBody) -> TxFuture {
        let result = self.run_tx(durability, &mut *body);
        Box::pin(std::future::ready(result))
    }

    /// Every committed row, as the running process sees it (the admin endpoint's view).
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    fn read_all(&self) -> Result<Tables, StoreError>;

    /// A receiver that sees a change after every commit that wrote to the outbox, so the
    /// outbox sender wakes on a new event (or a settled delivery) instead of polling. The
    /// default, `None`, is for a store that cannot tell: its sender polls.
    fn outbox_commits(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

/// A store's whole state as lists: the admin endpoint's wire shape (JSON object keys must be
/// strings, and [`Tables`] keys idempotency records by scope).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TablesDump {
    /// Every order.
    pub orders: Vec<OrderRecord>,
    /// Every shipment.
    pub shipments: Vec<ShipmentRecord>,
    /// Every idempotency record.
    pub idempotency: Vec<IdempotencyRecord>,
    /// Carrier events taken in, by event id.
    pub processed_events: BTreeMap<String, ProcessedEvent>,
    /// The webhook outbox, in sequence order.
    pub outbox: Vec<OutboxRecord>,
}

impl From<&Tables> for TablesDump {
    fn from(tables: &Tables) -> Self {
        TablesDump {
            orders: tables.orders.values().cloned().collect(),
            shipments: tables.shipments.values().cloned().collect(),
            idempotency: tables.idempotency.values().cloned().collect(),
            processed_events: tables.processed_events.clone(),
            outbox: tables.outbox.values().cloned().collect(),
        }
    }
}

impl From<TablesDump> for Tables {
    fn from(dump: TablesDump) -> Self {
        Tables {
            orders: dump
                .orders
                .into_iter()
                .map(|r| (r.order.id.clone(), r))
                .collect(),
            shipments: dump
                .shipments
                .into_iter()
                .map(|r| (r.shipment.id.clone(), r))
                .collect(),
            idempotency: dump
                .idempotency
                .into_iter()
                .map(|r| (r.scope.clone(), r))
                .collect(),
            processed_events: dump.processed_events,
            outbox: dump.outbox.into_iter().map(|r| (r.seq, r)).collect(),
        }
    }
}

/// [`transact`] for async callers: `body` owns what it uses and runs where the store wants
/// it ([`Store::run_tx_owned`]), off the async worker threads for a store whose commits
/// block (SQLite's fsync), at once for one that does not. Commits when `body` returns `Ok`,
/// aborts when it returns `Err`.
///
/// # Errors
/// The body's own error, or a [`StoreError`] converted into `E`.
///
/// # Panics
/// If a store reports success without having run the body (a bug in the store).
pub async fn transact_owned<R, E>(
    store: &dyn Store,
    durability: Durability,
    mut body: impl FnMut(&mut dyn Tx) -> Result<R, E> + Send + 'static,
) -> Result<R, E>
where
    R: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    let outcome: Arc<Mutex<Option<Result<R, E>>>> = Arc::new(Mutex::new(None));
    let slot = outcome.clone();
    let owned: OwnedTxBody = Box::new(move |tx| {
        let result = body(tx);
        let decision = if result.is_ok() {
            TxDecision::Commit
        } else {
            TxDecision::Abort
        };
        *slot.lock().expect("transaction outcome lock poisoned") = Some(result);
        decision
    });
    store.run_tx_owned(durability, owned).await?;
    let result = outcome
        .lock()
        .expect("transaction outcome lock poisoned")
        .take();
    result.expect("a store must run the transaction body before returning Ok")
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
