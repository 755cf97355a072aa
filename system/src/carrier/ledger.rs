//! The carrier's record of every label it sold: what the exactly-once oracle audits.
//!
//! In the simulation the ledger lives in memory, outside the carrier host, so it survives
//! the host's crashes. In live mode it can be backed by a SQLite file
//! ([`CarrierLedger::open`]): every sale is committed (fsynced) before the carrier answers,
//! and a restarted carrier reads every earlier sale back.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use crate::api::Label;
use crate::store::{StoreError, open_database};

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
    /// The database every sale is committed to first, in live mode.
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
}

/// Every label the carrier sold, and its idempotency index. The carrier commits each sale
/// before answering, so the ledger survives carrier crashes whole.
#[derive(Default)]
pub struct CarrierLedger {
    state: Mutex<State>,
}

impl std::fmt::Debug for CarrierLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CarrierLedger").finish_non_exhaustive()
    }
}

type SaleRow = (String, String, String, i64, Option<String>, String, i64);

impl CarrierLedger {
    /// An empty ledger in memory.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A ledger on the SQLite file at `path` (created if needed), holding every sale made
    /// there before. Returns it and how many boots of the carrier came before this one.
    ///
    /// # Errors
    /// [`StoreError`] when the file cannot be opened or read.
    pub fn open(path: &Path) -> Result<(CarrierLedger, u64), StoreError> {
        let (connection, boot) = open_database(path)?;
        let unavailable = |e: rusqlite::Error| StoreError::Unavailable(e.to_string());
        let mut state = State::default();
        {
            let mut statement = connection
                .prepare(
                    "SELECT label_id, tracking_number, shipment_ref, cost_cents, \
                     idempotency_key, fingerprint, sold_at_ms FROM label_sales ORDER BY seq",
                )
                .map_err(unavailable)?;
            let rows = statement
                .query_map([], |row| SaleRow::try_from(row))
                .map_err(unavailable)?;
            for row in rows {
                let (label_id, tracking_number, shipment_ref, cost, key, fingerprint, sold): SaleRow =
                    row.map_err(unavailable)?;
                let corrupt = |e: std::num::TryFromIntError| StoreError::Corrupt(e.to_string());
                let sale = LabelSale {
                    label: Label {
                        label_id,
                        tracking_number,
                        shipment_ref,
                        cost_cents: u32::try_from(cost).map_err(corrupt)?,
                    },
                    idempotency_key: key,
                    sold_at_ms: u64::try_from(sold).map_err(corrupt)?,
                };
                state.push(sale, &fingerprint);
            }
        }
        state.journal = Some(connection);
        Ok((
            CarrierLedger {
                state: Mutex::new(state),
            },
            boot,
        ))
    }

    /// Sells a label (built by `make` only if one is sold), or replays the one sold under
    /// `key`. Atomic: two requests with one key can never both sell. A file-backed ledger
    /// commits the sale durably before returning it.
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
        if let Some(journal) = &state.journal {
            journal
                .execute(
                    "INSERT INTO label_sales (label_id, tracking_number, shipment_ref, \
                     cost_cents, idempotency_key, fingerprint, sold_at_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        sale.label.label_id,
                        sale.label.tracking_number,
                        sale.label.shipment_ref,
                        i64::from(sale.label.cost_cents),
                        sale.idempotency_key,
                        fingerprint,
                        i64::try_from(sold_at_ms).unwrap_or(i64::MAX),
                    ],
                )
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        }
        let label = sale.label.clone();
        state.push(sale, fingerprint);
        Ok(Sale::New(label))
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
