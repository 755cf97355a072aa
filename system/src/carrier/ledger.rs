//! The carrier's record of every label it sold: what the exactly-once oracle audits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use super::tracking::{TrackingCounts, TrackingItem};
use crate::api::{Label, TrackingEvent};
use crate::store::Delivery;
use crate::webhook::DeliveryResult;

/// One label sale.
#[derive(Clone, Debug, PartialEq, Eq)]
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

#[derive(Debug, Default)]
struct State {
    sales: Vec<LabelSale>,
    /// Key -> (request fingerprint, index into `sales`).
    by_key: BTreeMap<String, (String, usize)>,
    /// Tracking events, by sequence number.
    tracking: BTreeMap<u64, TrackingItem>,
}

/// Every label the carrier sold, and its idempotency index. The carrier commits each sale
/// before answering, so the ledger survives carrier crashes whole.
#[derive(Debug, Default)]
pub struct CarrierLedger {
    state: Mutex<State>,
}

impl CarrierLedger {
    /// An empty ledger.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sells a label (built by `make` only if one is sold), or replays the one sold under
    /// `key`. Atomic: two requests with one key can never both sell.
    ///
    /// # Panics
    /// If the ledger's lock was poisoned.
    pub fn sell(
        &self,
        key: Option<&str>,
        fingerprint: &str,
        sold_at_ms: u64,
        make: impl FnOnce() -> Label,
    ) -> Sale {
        let mut state = self.state.lock().expect("ledger lock poisoned");
        if let Some(key) = key
            && let Some((stored_fingerprint, index)) = state.by_key.get(key)
        {
            if stored_fingerprint != fingerprint {
                return Sale::KeyReused;
            }
            return Sale::Replay(state.sales[*index].label.clone());
        }
        let label = make();
        let index = state.sales.len();
        state.sales.push(LabelSale {
            label: label.clone(),
            idempotency_key: key.map(str::to_string),
            sold_at_ms,
        });
        if let Some(key) = key {
            state
                .by_key
                .insert(key.to_string(), (fingerprint.to_string(), index));
        }
        Sale::New(label)
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

    /// Schedules a tracking event for delivery from `due_at_ms` on.
    ///
    /// # Panics
    /// If the ledger's lock was poisoned.
    pub fn schedule(&self, event: TrackingEvent, due_at_ms: u64) {
        let mut state = self.state.lock().expect("ledger lock poisoned");
        let seq = state.tracking.keys().next_back().map_or(1, |last| last + 1);
        state.tracking.insert(
            seq,
            TrackingItem {
                seq,
                event,
                due_at_ms,
                delivery: Delivery::Pending {
                    attempts: 0,
                    next_attempt_at_ms: due_at_ms,
                },
            },
        );
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
            .tracking
            .values()
            .filter(|item| !in_flight.contains(&item.seq))
            .filter(|item| matches!(item.delivery, Delivery::Pending { next_attempt_at_ms, .. } if next_attempt_at_ms <= now_ms))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Records how a tracking delivery attempt ended.
    pub(crate) fn settle_tracking(&self, seq: u64, result: &DeliveryResult) {
        let mut state = self.state.lock().expect("ledger lock poisoned");
        if let Some(item) = state.tracking.get_mut(&seq) {
            item.delivery = match result {
                DeliveryResult::Delivered { attempts, at_ms } => Delivery::Delivered {
                    attempts: *attempts,
                    delivered_at_ms: *at_ms,
                },
                DeliveryResult::Retry {
                    attempts,
                    next_at_ms,
                    ..
                } => Delivery::Pending {
                    attempts: *attempts,
                    next_attempt_at_ms: *next_at_ms,
                },
                DeliveryResult::DeadLetter { attempts, error } => Delivery::DeadLetter {
                    attempts: *attempts,
                    last_error: error.clone(),
                },
            };
        }
    }

    /// Dead-lettered tracking events go back in the queue; returns how many.
    ///
    /// # Panics
    /// If the ledger's lock was poisoned.
    pub fn redeliver_tracking(&self) -> u64 {
        let mut state = self.state.lock().expect("ledger lock poisoned");
        let mut count = 0;
        for item in state.tracking.values_mut() {
            if matches!(item.delivery, Delivery::DeadLetter { .. }) {
                item.delivery = Delivery::Pending {
                    attempts: 0,
                    next_attempt_at_ms: 0,
                };
                count += 1;
            }
        }
        count
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
