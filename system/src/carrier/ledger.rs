//! The carrier's record of every label it sold (what the exactly-once oracle audits) and
//! the tracking events it owes the service.
//!
//! In the simulation the ledger lives in memory, outside the carrier host, so it survives
//! the host's crashes. In live mode it can be backed by a SQLite file
//! ([`CarrierLedger::open`]): every sale, with its parcel's tracking events, is committed
//! (fsynced) in one transaction before the carrier answers, and every change of a tracking
//! delivery is committed before the ledger's memory shows it, so a restarted carrier reads
//! every earlier sale back and resumes its tracking deliveries where they stood.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::journal;
use super::tracking::{TrackingCounts, TrackingItem};
use crate::api::{Label, TrackingEvent};
use crate::store::sqlite::open_database;
use crate::store::{Delivery, PendingIndex, StoreError};
use crate::webhook::DeliveryResult;

/// One label sale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSale {
    /// The label sold.
    pub label: Label,
    /// The idempotency key it was sold under, if the buyer sent one.
    pub idempotency_key: Option<String>,
    /// When, by the carrier's clock.
    pub sold_at_ms: u64,
}

/// How a sale request was settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sale {
    /// A new label was sold.
    New(Label),
    /// The key was seen before with the same request: the label sold then.
    Replay(Label),
    /// The key was seen before with a different request.
    KeyReused,
}

#[derive(Default)]
struct State {
    sales: Vec<LabelSale>,
    /// Key -> (request fingerprint, index into `sales`).
    by_key: BTreeMap<String, (String, usize)>,
    /// Tracking events, by sequence number.
    tracking: BTreeMap<u64, TrackingItem>,
    /// The tracking events still to be delivered.
    tracking_pending: PendingIndex,
    /// The database every change is committed to first, in live mode.
    journal: Option<Connection>,
}

impl State {
    fn push(&mut self, sale: LabelSale, fingerprint: &str) {
        if let Some(key) = &sale.idempotency_key {
            self.by_key
                .insert(key.clone(), (fingerprint.to_string(), self.sales.len()));
        }
        self.sales.push(sale);
    }

    /// Adds or replaces a tracking item.
    fn put_tracking(&mut self, item: TrackingItem) {
        self.tracking_pending.note(item.seq, &item.delivery);
        self.tracking.insert(item.seq, item);
    }

    /// Moves tracking item `seq`, if there is one, to `delivery`.
    fn set_delivery(&mut self, seq: u64, delivery: Delivery) {
        if let Some(item) = self.tracking.get_mut(&seq) {
            self.tracking_pending.note(seq, &delivery);
            item.delivery = delivery;
        }
    }

    /// `events` as tracking items, numbered after the last one scheduled.
    fn number(&self, events: Vec<(TrackingEvent, u64)>) -> Vec<TrackingItem> {
        let first = self.tracking.keys().next_back().map_or(1, |last| last + 1);
        (first..)
            .zip(events)
            .map(|(seq, (event, due_at_ms))| TrackingItem {
                seq,
                event,
                due_at_ms,
                delivery: Delivery::Pending {
                    attempts: 0,
                    next_attempt_at_ms: due_at_ms,
                },
            })
            .collect()
    }
}

/// Every label the carrier sold, its idempotency index and its tracking log. The carrier
/// commits each sale before answering, so the ledger survives carrier crashes whole.
#[derive(Default)]
pub struct CarrierLedger {
    state: Mutex<State>,
    /// Bumped whenever the tracking log gains an event or dead letters are requeued.
    tracking_changes: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for CarrierLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CarrierLedger").finish_non_exhaustive()
    }
}

impl CarrierLedger {
    /// An empty ledger in memory.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A ledger on the SQLite file at `path` (created if needed), holding every sale made
    /// there before and the tracking log as it stood. Returns it and how many boots of the
    /// carrier came before this one.
    ///
    /// # Errors
    /// [`StoreError`] when the file cannot be opened or read.
    pub fn open(path: &Path) -> Result<(CarrierLedger, u64), StoreError> {
        let (connection, boot) = open_database(path)?;
        let mut state = State::default();
        for (sale, fingerprint) in journal::sales(&connection)? {
            state.push(sale, &fingerprint);
        }
        for item in journal::tracking(&connection)? {
            state.put_tracking(item);
        }
        state.journal = Some(connection);
        Ok((
            CarrierLedger {
                state: Mutex::new(state),
                tracking_changes: tokio::sync::watch::Sender::default(),
            },
            boot,
        ))
    }

    /// Sells a label (built by `make` only if one is sold), or replays the one sold under
    /// `key`. Atomic: two requests with one key can never both sell. A new label's parcel
    /// gets the tracking events `story` returns for it (event, due time), scheduled with
    /// the sale. A file-backed ledger commits the sale and its events durably, in one
    /// transaction, before returning.
    ///
    /// # Errors
    /// [`StoreError`] when the sale cannot be committed; then nothing was sold.
    ///
    /// # Panics
    /// If the ledger's lock was poisoned.
    pub fn sell(
        &self,
        key: Option<&str>,
        fingerprint: &str,
        sold_at_ms: u64,
        make: impl FnOnce() -> Label,
        story: impl FnOnce(&Label) -> Vec<(TrackingEvent, u64)>,
    ) -> Result<Sale, StoreError> {
        let mut state = self.state.lock().expect("ledger lock poisoned");
        if let Some(key) = key
            && let Some((stored_fingerprint, index)) = state.by_key.get(key)
        {
            if stored_fingerprint != fingerprint {
                return Ok(Sale::KeyReused);
            }
            return Ok(Sale::Replay(state.sales[*index].label.clone()));
        }
        let sale = LabelSale {
            label: make(),
            idempotency_key: key.map(str::to_string),
            sold_at_ms,
        };
        let items = state.number(story(&sale.label));
        if let Some(connection) = state.journal.as_mut() {
            journal::insert_sale(connection, &sale, fingerprint, &items)?;
        }
        let label = sale.label.clone();
        state.push(sale, fingerprint);
        let scheduled = !items.is_empty();
        for item in items {
            state.put_tracking(item);
        }
        drop(state);
        if scheduled {
            self.tracking_changed();
        }
        Ok(Sale::New(label))
    }

    /// Whether every change is committed to a file first (live mode), so a call may wait
    /// for the disk: async callers then make it on a blocking thread.
    ///
    /// # Panics
    /// If the ledger's lock was poisoned.
    #[must_use]
    pub fn is_durable(&self) -> bool {
        self.state
            .lock()
            .expect("ledger lock poisoned")
            .journal
            .is_some()
    }

    /// The label with this id, if sold.
    ///
    /// # Panics
    /// If the ledger's lock was poisoned.
    #[must_use]
    pub fn label(&self, label_id: &str) -> Option<Label> {
        let state = self.state.lock().expect("ledger lock poisoned");
        state
            .sales
            .iter()
            .find(|sale| sale.label.label_id == label_id)
            .map(|sale| sale.label.clone())
    }

    /// Every sale, in order.
    ///
    /// # Panics
    /// If the ledger's lock was poisoned.
    #[must_use]
    pub fn sales(&self) -> Vec<LabelSale> {
        self.state
            .lock()
            .expect("ledger lock poisoned")
            .sales
            .clone()
    }

    /// Schedules a tracking event for delivery from `due_at_ms` on (committed first, for a
    /// file-backed ledger).
    ///
    /// # Errors
    /// [`StoreError`] when a file-backed ledger cannot commit it; then nothing changed.
    ///
    /// # Panics
    /// If the ledger's lock was poisoned.
    pub fn schedule(&self, event: TrackingEvent, due_at_ms: u64) -> Result<(), StoreError> {
        let mut state = self.state.lock().expect("ledger lock poisoned");
        let items = state.number(vec![(event, due_at_ms)]);
        if let Some(connection) = state.journal.as_mut() {
            journal::insert_tracking(connection, &items)?;
        }
        for item in items {
            state.put_tracking(item);
        }
        drop(state);
        self.tracking_changed();
        Ok(())
    }

    /// Up to `limit` tracking events due at `now_ms`, oldest first, none in `in_flight`.
    pub(crate) fn tracking_due(
        &self,
        now_ms: u64,
        limit: usize,
        in_flight: &BTreeSet<u64>,
    ) -> Vec<TrackingItem> {
        let state = self.state.lock().expect("ledger lock poisoned");
        state
            .tracking_pending
            .due(
                &state.tracking,
                |item| &item.delivery,
                now_ms,
                limit,
                in_flight,
            )
            .cloned()
            .collect()
    }

    /// The earliest time a pending tracking event not in `in_flight` is due, `None` when
    /// none is pending.
    pub(crate) fn tracking_next_due(&self, in_flight: &BTreeSet<u64>) -> Option<u64> {
        let state = self.state.lock().expect("ledger lock poisoned");
        state.tracking_pending.next_due_ms(in_flight)
    }

    /// A receiver that sees a change whenever the tracking log gains an event or dead
    /// letters are requeued: what wakes the tracking sender.
    pub(crate) fn tracking_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.tracking_changes.subscribe()
    }

    fn tracking_changed(&self) {
        self.tracking_changes.send_modify(|version| *version += 1);
    }

    /// Records how a tracking delivery attempt ended. A file-backed ledger that cannot
    /// commit it leaves the event as it was, so it is sent again: at least once.
    pub(crate) fn settle_tracking(&self, seq: u64, result: &DeliveryResult) {
        let mut state = self.state.lock().expect("ledger lock poisoned");
        if !state.tracking.contains_key(&seq) {
            return;
        }
        let delivery = result.delivery();
        if let Some(connection) = state.journal.as_mut()
            && journal::update_tracking(connection, &[(seq, &delivery)]).is_err()
        {
            return;
        }
        // No change signalled: the sender that settles wakes itself when a delivery ends.
        state.set_delivery(seq, delivery);
    }

    /// Dead-lettered tracking events go back in the queue; returns how many.
    ///
    /// # Errors
    /// [`StoreError`] when a file-backed ledger cannot commit the change; then nothing
    /// changed.
    ///
    /// # Panics
    /// If the ledger's lock was poisoned.
    pub fn redeliver_tracking(&self) -> Result<u64, StoreError> {
        let mut state = self.state.lock().expect("ledger lock poisoned");
        let requeued = Delivery::Pending {
            attempts: 0,
            next_attempt_at_ms: 0,
        };
        let dead: Vec<u64> = state
            .tracking
            .values()
            .filter(|item| matches!(item.delivery, Delivery::DeadLetter { .. }))
            .map(|item| item.seq)
            .collect();
        if let Some(connection) = state.journal.as_mut() {
            let updates: Vec<(u64, &Delivery)> = dead.iter().map(|seq| (*seq, &requeued)).collect();
            journal::update_tracking(connection, &updates)?;
        }
        for seq in &dead {
            state.set_delivery(*seq, requeued.clone());
        }
        drop(state);
        self.tracking_changed();
        Ok(dead.len() as u64)
    }

    /// Tracking deliveries by state.
    ///
    /// # Panics
    /// If the ledger's lock was poisoned.
    #[must_use]
    pub fn tracking_counts(&self) -> TrackingCounts {
        let state = self.state.lock().expect("ledger lock poisoned");
        let mut counts = (0, 0, 0);
        for item in state.tracking.values() {
            match item.delivery {
                Delivery::Pending { .. } => counts.0 += 1,
                Delivery::Delivered { .. } => counts.1 += 1,
                Delivery::DeadLetter { .. } => counts.2 += 1,
            }
        }
        counts
    }

    /// Every tracking event and its delivery state.
    ///
    /// # Panics
    /// If the ledger's lock was poisoned.
    #[must_use]
    pub fn tracking(&self) -> Vec<TrackingItem> {
        self.state
            .lock()
            .expect("ledger lock poisoned")
            .tracking
            .values()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TrackingKind;

    /// A temporary directory, removed when dropped, and the ledger file's path in it.
    fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("carrier.db");
        (dir, path)
    }

    fn label(id: &str) -> Label {
        Label {
            label_id: id.into(),
            tracking_number: format!("1Z{id}"),
            shipment_ref: format!("shp_{id}"),
            cost_cents: 700,
        }
    }

    fn story(label: &Label) -> Vec<(TrackingEvent, u64)> {
        [TrackingKind::LabelCreated, TrackingKind::PickedUp]
            .into_iter()
            .enumerate()
            .map(|(i, kind)| {
                let due_at_ms = 100 * (i as u64 + 1);
                let id = format!("trk_{}_{i}", label.label_id);
                (
                    super::super::tracking_event(label, kind, due_at_ms, id),
                    due_at_ms,
                )
            })
            .collect()
    }

    fn delivered(at_ms: u64) -> DeliveryResult {
        DeliveryResult::Delivered { attempts: 1, at_ms }
    }

    #[test]
    fn a_file_ledger_resumes_sales_and_tracking_after_a_restart() {
        // Proves a file-backed ledger keeps, across a close and reopen (a killed carrier's
        // restart), every sale with its idempotency index and the tracking log in the state
        // its deliveries reached: delivered events stay delivered, a dead letter stays dead
        // (and can be redelivered), pending events are due again, and new events continue
        // the numbering.
        let (_dir, path) = temp_db();
        let before = {
            let (ledger, boot) = CarrierLedger::open(&path).unwrap();
            assert_eq!(boot, 0);
            let sale = ledger
                .sell(Some("k1"), "fp1", 10, || label("lbl_1"), story)
                .unwrap();
            assert_eq!(sale, Sale::New(label("lbl_1")));
            ledger
                .sell(None, "fp2", 20, || label("lbl_2"), story)
                .unwrap();
            ledger
                .schedule(
                    super::super::tracking_event(
                        &label("lbl_2"),
                        TrackingKind::InTransit,
                        500,
                        "burst".into(),
                    ),
                    500,
                )
                .unwrap();
            ledger.settle_tracking(1, &delivered(120));
            ledger.settle_tracking(
                2,
                &DeliveryResult::DeadLetter {
                    attempts: 10,
                    error: "timeout".into(),
                },
            );
            ledger.settle_tracking(
                3,
                &DeliveryResult::Retry {
                    attempts: 1,
                    next_at_ms: 450,
                    error: "status 503".into(),
                },
            );
            (ledger.sales(), ledger.tracking())
        };
        assert_eq!(before.1.len(), 5);
        let (ledger, boot) = CarrierLedger::open(&path).unwrap();
        assert_eq!(boot, 1);
        assert_eq!((ledger.sales(), ledger.tracking()), before);
        assert_eq!(
            ledger.sell(Some("k1"), "fp1", 30, || label("never"), story),
            Ok(Sale::Replay(label("lbl_1"))),
            "the idempotency index is rebuilt"
        );
        assert_eq!(ledger.tracking_counts(), (3, 1, 1));
        let due: Vec<u64> = ledger
            .tracking_due(450, 10, &BTreeSet::new())
            .iter()
            .map(|i| i.seq)
            .collect();
        assert_eq!(due, vec![3, 4], "pending events resume; 5 is due at 500");
        assert_eq!(ledger.redeliver_tracking(), Ok(1));
        ledger
            .sell(None, "fp3", 40, || label("lbl_3"), story)
            .unwrap();
        let (reopened, _) = {
            drop(ledger);
            CarrierLedger::open(&path).unwrap()
        };
        let seqs: Vec<u64> = reopened.tracking().iter().map(|i| i.seq).collect();
        assert_eq!(seqs, (1..=7).collect::<Vec<_>>());
        assert_eq!(
            reopened.tracking_counts(),
            (6, 1, 0),
            "the redelivery was committed"
        );
    }

    #[test]
    fn memory_and_file_ledgers_agree() {
        // Proves the journal changes nothing a caller sees: the same sales, schedules and
        // settlements on an in-memory ledger and a file-backed one give equal sales,
        // tracking logs and due lists.
        let (_dir, path) = temp_db();
        let (file, _) = CarrierLedger::open(&path).unwrap();
        let memory = CarrierLedger::new();
        for ledger in [&file, &memory] {
            ledger
                .sell(Some("a"), "fa", 1, || label("lbl_a"), story)
                .unwrap();
            ledger
                .sell(Some("a"), "fb", 2, || label("lbl_x"), story)
                .unwrap();
            ledger
                .sell(None, "fc", 3, || label("lbl_c"), |_| Vec::new())
                .unwrap();
            ledger.settle_tracking(2, &delivered(300));
        }
        assert_eq!(file.sales(), memory.sales());
        assert_eq!(file.tracking(), memory.tracking());
        assert_eq!(
            file.tracking_due(1_000, 10, &BTreeSet::from([1])),
            memory.tracking_due(1_000, 10, &BTreeSet::from([1]))
        );
    }
}
