//! The carrier's record of every label it sold: what the exactly-once oracle audits.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::api::Label;

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
}
