//! An in-memory store that models durability honestly, for the simulation.
//!
//! It keeps two copies of every table: `live`, what the running process sees, and `durable`,
//! what would survive a crash. A `Sync` commit reaches both before `transact` returns; a
//! `Lazy` commit reaches `live` at once and `durable` only at the next [`MemoryStore::flush`].
//! [`MemoryStore::crash`] throws `live` away and restarts from `durable`, exactly what a
//! process that lost its page cache would find.
//!
//! The store outlives the host that uses it: the simulation owns it, hands a clone of the
//! `Arc` to each boot of the service, and calls `crash` when it kills the host.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use super::{
    Delivery, Durability, IdemScope, IdemState, IdempotencyRecord, OrderRecord, OutboxRecord,
    PendingIndex, ProcessedEvent, ShipmentRecord, Store, StoreError, Tx, TxDecision,
};

/// The tables of the service's store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tables {
    /// Idempotency records by caller and key.
    pub idempotency: BTreeMap<IdemScope, IdempotencyRecord>,
    /// Orders by id.
    pub orders: BTreeMap<String, OrderRecord>,
    /// Shipments by id.
    pub shipments: BTreeMap<String, ShipmentRecord>,
    /// Carrier events taken in, by event id.
    pub processed_events: BTreeMap<String, ProcessedEvent>,
    /// Outbound webhook events, by sequence number.
    pub outbox: BTreeMap<u64, OutboxRecord>,
}

/// The writes of one transaction, applied together.
#[derive(Clone, Debug, Default)]
struct WriteSet {
    idempotency: BTreeMap<IdemScope, IdempotencyRecord>,
    /// Idempotency records deleted (never also in `idempotency`).
    idempotency_deleted: BTreeSet<IdemScope>,
    orders: BTreeMap<String, OrderRecord>,
    shipments: BTreeMap<String, ShipmentRecord>,
    processed_events: BTreeMap<String, ProcessedEvent>,
    outbox: BTreeMap<u64, OutboxRecord>,
}

impl WriteSet {
    fn is_empty(&self) -> bool {
        self.idempotency.is_empty()
            && self.idempotency_deleted.is_empty()
            && self.orders.is_empty()
            && self.shipments.is_empty()
            && self.processed_events.is_empty()
            && self.outbox.is_empty()
    }

    /// Applies the writes to `tables` by moving them: for the copy that gets them last.
    fn move_into(self, tables: &mut Tables) {
        for scope in &self.idempotency_deleted {
            tables.idempotency.remove(scope);
        }
        tables.idempotency.extend(self.idempotency);
        tables.orders.extend(self.orders);
        tables.shipments.extend(self.shipments);
        tables.processed_events.extend(self.processed_events);
        tables.outbox.extend(self.outbox);
    }

    fn apply_to(&self, tables: &mut Tables) {
        for scope in &self.idempotency_deleted {
            tables.idempotency.remove(scope);
        }
        for (scope, record) in &self.idempotency {
            tables.idempotency.insert(scope.clone(), record.clone());
        }
        for (id, record) in &self.orders {
            tables.orders.insert(id.clone(), record.clone());
        }
        for (id, record) in &self.shipments {
            tables.shipments.insert(id.clone(), record.clone());
        }
        for (id, event) in &self.processed_events {
            tables.processed_events.insert(id.clone(), event.clone());
        }
        for (seq, record) in &self.outbox {
            tables.outbox.insert(*seq, record.clone());
        }
    }
}

#[derive(Debug, Default)]
struct State {
    live: Tables,
    /// The outbox records of `live` still to be delivered.
    live_pending: PendingIndex,
    durable: Tables,
    /// Lazy commits not yet flushed, oldest first.
    unflushed: Vec<WriteSet>,
    crashes: u64,
    writes_lost: u64,
}

/// The simulated durable store. See the module docs.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    /// Bumped after every commit that wrote to the outbox, and at a crash.
    outbox_commits: tokio::sync::watch::Sender<u64>,
}

/// What a crash threw away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrashLoss {
    /// Lazy commits that had not been flushed.
    pub transactions_lost: u64,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every lazy commit durable, oldest first.
    ///
    /// # Panics
    /// If the store's lock was poisoned.
    pub fn flush(&self) {
        let mut state = self.state.lock().expect("store lock poisoned");
        let State {
            durable, unflushed, ..
        } = &mut *state;
        for writes in unflushed.drain(..) {
            writes.move_into(durable);
        }
    }

    /// Forgets everything that was not durable, as a process crash would.
    ///
    /// # Panics
    /// If the store's lock was poisoned.
    pub fn crash(&self) -> CrashLoss {
        let mut state = self.state.lock().expect("store lock poisoned");
        let lost = state.unflushed.len() as u64;
        state.unflushed.clear();
        state.live = state.durable.clone();
        let mut pending = PendingIndex::default();
        for (seq, record) in &state.live.outbox {
            pending.note(*seq, &record.delivery);
        }
        state.live_pending = pending;
        state.crashes += 1;
        state.writes_lost += lost;
        self.outbox_commits.send_modify(|version| *version += 1);
        CrashLoss {
            transactions_lost: lost,
        }
    }

    /// A copy of what the running process sees.
    ///
    /// # Panics
    /// If the store's lock was poisoned.
    #[must_use]
    pub fn snapshot(&self) -> Tables {
        self.state.lock().expect("store lock poisoned").live.clone()
    }

    /// Reads what the running process sees and what would survive a crash now, without
    /// copying them (the simulation's end-of-run reads and polls).
    ///
    /// # Panics
    /// If the store's lock was poisoned.
    pub fn inspect<R>(&self, read: impl FnOnce(&Tables, &Tables) -> R) -> R {
        let state = self.state.lock().expect("store lock poisoned");
        read(&state.live, &state.durable)
    }

    /// A copy of what would survive a crash now.
    ///
    /// # Panics
    /// If the store's lock was poisoned.
    #[must_use]
    pub fn durable_snapshot(&self) -> Tables {
        self.state
            .lock()
            .expect("store lock poisoned")
            .durable
            .clone()
    }
}

struct MemTx<'a> {
    base: &'a Tables,
    base_pending: &'a PendingIndex,
    writes: WriteSet,
}

impl Tx for MemTx<'_> {
    fn idempotency(&self, scope: &IdemScope) -> Option<IdempotencyRecord> {
        if self.writes.idempotency_deleted.contains(scope) {
            return None;
        }
        self.writes
            .idempotency
            .get(scope)
            .or_else(|| self.base.idempotency.get(scope))
            .cloned()
    }

    fn put_idempotency(&mut self, record: IdempotencyRecord) {
        self.writes.idempotency_deleted.remove(&record.scope);
        self.writes.idempotency.insert(record.scope.clone(), record);
    }

    fn sweep_idempotency(&mut self, created_before_ms: u64, limit: usize) -> u64 {
        let expired: Vec<IdemScope> = self
            .base
            .idempotency
            .values()
            .filter(|r| {
                matches!(r.state, IdemState::Completed { .. })
                    && r.created_at_ms < created_before_ms
                    && !self.writes.idempotency.contains_key(&r.scope)
                    && !self.writes.idempotency_deleted.contains(&r.scope)
            })
            .take(limit)
            .map(|r| r.scope.clone())
            .collect();
        let swept = expired.len() as u64;
        self.writes.idempotency_deleted.extend(expired);
        swept
    }

    fn order(&self, order_id: &str) -> Option<OrderRecord> {
        self.writes
            .orders
            .get(order_id)
            .or_else(|| self.base.orders.get(order_id))
            .cloned()
    }

    fn put_order(&mut self, record: OrderRecord) {
        self.writes.orders.insert(record.order.id.clone(), record);
    }

    fn shipment(&self, shipment_id: &str) -> Option<ShipmentRecord> {
        self.writes
            .shipments
            .get(shipment_id)
            .or_else(|| self.base.shipments.get(shipment_id))
            .cloned()
    }

    fn put_shipment(&mut self, record: ShipmentRecord) {
        self.writes
            .shipments
            .insert(record.shipment.id.clone(), record);
    }

    fn processed_event(&self, event_id: &str) -> Option<ProcessedEvent> {
        self.writes
            .processed_events
            .get(event_id)
            .or_else(|| self.base.processed_events.get(event_id))
            .cloned()
    }

    fn put_processed_event(&mut self, event_id: &str, event: ProcessedEvent) {
        self.writes
            .processed_events
            .insert(event_id.to_string(), event);
    }

    fn next_outbox_seq(&self) -> u64 {
        let written = self.writes.outbox.keys().next_back().copied();
        let stored = self.base.outbox.keys().next_back().copied();
        written.max(stored).map_or(1, |last| last + 1)
    }

    fn put_outbox(&mut self, record: OutboxRecord) {
        self.writes.outbox.insert(record.seq, record);
    }

    fn outbox(&self, seq: u64) -> Option<OutboxRecord> {
        self.writes
            .outbox
            .get(&seq)
            .or_else(|| self.base.outbox.get(&seq))
            .cloned()
    }

    fn outbox_due(&self, now_ms: u64, limit: usize, skip: &BTreeSet<u64>) -> Vec<OutboxRecord> {
        // Reads see committed state; a transaction that reads the due list writes nothing
        // to the outbox first.
        self.base_pending
            .due(&self.base.outbox, |r| &r.delivery, now_ms, limit, skip)
            .cloned()
            .collect()
    }

    fn outbox_next_due(&self, skip: &BTreeSet<u64>) -> Option<u64> {
        self.base_pending.next_due_ms(skip)
    }

    fn outbox_dead(&self) -> Vec<OutboxRecord> {
        self.base
            .outbox
            .values()
            .filter(|r| matches!(r.delivery, Delivery::DeadLetter { .. }))
            .cloned()
            .collect()
    }

    fn outbox_after(&self, caller: &str, after_seq: u64, limit: usize) -> Vec<OutboxRecord> {
        // Reads see committed state, as `outbox_due` does.
        self.base
            .outbox
            .range(after_seq.saturating_add(1)..)
            .map(|(_, record)| record)
            .filter(|record| record.caller == caller)
            .take(limit)
            .cloned()
            .collect()
    }

    fn outbox_counts(&self) -> (u64, u64, u64) {
        let mut counts = (0, 0, 0);
        for record in self.base.outbox.values() {
            match record.delivery {
                Delivery::Pending { .. } => counts.0 += 1,
                Delivery::Delivered { .. } => counts.1 += 1,
                Delivery::DeadLetter { .. } => counts.2 += 1,
            }
        }
        counts
    }
}

impl Store for MemoryStore {
    fn run_tx(
        &self,
        durability: Durability,
        body: &mut dyn FnMut(&mut dyn Tx) -> TxDecision,
    ) -> Result<(), StoreError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| StoreError::Unavailable("store lock poisoned".into()))?;
        let mut tx = MemTx {
            base: &state.live,
            base_pending: &state.live_pending,
            writes: WriteSet::default(),
        };
        let decision = body(&mut tx);
        let writes = tx.writes;
        if decision == TxDecision::Abort || writes.is_empty() {
            return Ok(());
        }
        writes.apply_to(&mut state.live);
        for (seq, record) in &writes.outbox {
            state.live_pending.note(*seq, &record.delivery);
        }
        if !writes.outbox.is_empty() {
            self.outbox_commits.send_modify(|version| *version += 1);
        }
        match durability {
            Durability::Lazy => state.unflushed.push(writes),
            Durability::Sync => {
                // A sync commit forces every earlier lazy commit to disk first, as fsync of a
                // log does: durability follows commit order.
                let State {
                    durable, unflushed, ..
                } = &mut *state;
                for earlier in unflushed.drain(..) {
                    earlier.move_into(durable);
                }
                writes.move_into(durable);
            }
        }
        Ok(())
    }

    fn read_all(&self) -> Result<Tables, StoreError> {
        Ok(self.snapshot())
    }

    fn outbox_commits(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.outbox_commits.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Address, Order, OrderStatus};
    use crate::store::transact;

    fn order(id: &str) -> OrderRecord {
        OrderRecord {
            order: Order {
                id: id.into(),
                reference: "r".into(),
                status: OrderStatus::Created,
                items: vec![],
                ship_to: Address {
                    name: "n".into(),
                    line1: "l".into(),
                    city: "c".into(),
                    postal_code: "p".into(),
                    country: "DE".into(),
                },
                shipment_ids: vec![],
                created_at_ms: 0,
            },
            caller: "m".into(),
            idempotency_key: "k".into(),
        }
    }

    #[test]
    fn crash_keeps_sync_and_loses_unflushed_lazy_commits() {
        // Proves the durability model: a sync commit survives a crash, a lazy one survives
        // only if flushed, and the crash reports what it lost.
        let store = MemoryStore::new();
        transact(&store, Durability::Sync, |tx| {
            tx.put_order(order("a"));
            Ok::<_, StoreError>(())
        })
        .unwrap();
        transact(&store, Durability::Lazy, |tx| {
            tx.put_order(order("b"));
            Ok::<_, StoreError>(())
        })
        .unwrap();
        assert!(
            store.snapshot().orders.contains_key("b"),
            "lazy commit is visible live"
        );
        assert!(!store.durable_snapshot().orders.contains_key("b"));
        let loss = store.crash();
        assert_eq!(loss.transactions_lost, 1);
        let after = store.snapshot();
        assert!(after.orders.contains_key("a"));
        assert!(
            !after.orders.contains_key("b"),
            "unflushed lazy commit must be lost"
        );

        transact(&store, Durability::Lazy, |tx| {
            tx.put_order(order("c"));
            Ok::<_, StoreError>(())
        })
        .unwrap();
        store.flush();
        store.crash();
        assert!(
            store.snapshot().orders.contains_key("c"),
            "flushed commit survives"
        );
    }

    #[test]
    fn aborted_transaction_applies_nothing() {
        // Proves atomicity: a body that errors after writing leaves no trace.
        let store = MemoryStore::new();
        let result: Result<(), StoreError> = transact(&store, Durability::Sync, |tx| {
            tx.put_order(order("a"));
            Err(StoreError::Unavailable("boom".into()))
        });
        assert!(result.is_err());
        assert!(store.snapshot().orders.is_empty());
    }

    #[test]
    fn sync_commit_flushes_earlier_lazy_commits() {
        // Proves durability follows commit order: a sync commit makes earlier lazy ones durable.
        let store = MemoryStore::new();
        transact(&store, Durability::Lazy, |tx| {
            tx.put_order(order("a"));
            Ok::<_, StoreError>(())
        })
        .unwrap();
        transact(&store, Durability::Sync, |tx| {
            tx.put_order(order("b"));
            Ok::<_, StoreError>(())
        })
        .unwrap();
        store.crash();
        let after = store.snapshot();
        assert!(after.orders.contains_key("a") && after.orders.contains_key("b"));
    }
}
