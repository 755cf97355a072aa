//! The carrier ledger's SQLite file (live mode): the carrier's tables, and its sales and
//! tracking log as rows of them. The file is opened by the store's
//! [`open_database`](crate::store::sqlite::open_database), so it has the store's pragmas,
//! schema version and boot counter; every file holds these tables and the service's.

use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};

use super::ledger::LabelSale;
use super::tracking::TrackingItem;
use crate::api::Label;
use crate::store::sqlite::columns::{DeliveryColumns, corrupt, to_i64, to_u64, unavailable};
use crate::store::{Delivery, StoreError};

/// The carrier's tables: its label sales and its tracking log (its webhooks to the
/// service), created in every file beside the service's.
pub(crate) const TABLES: &str = "
CREATE TABLE IF NOT EXISTS label_sales (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    label_id        TEXT NOT NULL,
    tracking_number TEXT NOT NULL,
    shipment_ref    TEXT NOT NULL,
    cost_cents      INTEGER NOT NULL,
    idempotency_key TEXT,
    fingerprint     TEXT NOT NULL,
    sold_at_ms      INTEGER NOT NULL
);
-- The carrier's tracking log (its webhooks to the service), beside its label sales.
CREATE TABLE IF NOT EXISTS tracking (
    seq                INTEGER PRIMARY KEY,
    event              TEXT NOT NULL,
    due_at_ms          INTEGER NOT NULL,
    delivery_state     TEXT NOT NULL CHECK (delivery_state IN ('pending', 'delivered', 'dead_letter')),
    attempts           INTEGER NOT NULL,
    next_attempt_at_ms INTEGER,
    delivered_at_ms    INTEGER,
    last_error         TEXT
);
";

type SaleRow = (String, String, String, i64, Option<String>, String, i64);

type TrackingRow = (
    i64,
    String,
    i64,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

/// Commits one sale, with the tracking `items` of its parcel, in one transaction.
pub(super) fn insert_sale(
    connection: &mut Connection,
    sale: &LabelSale,
    fingerprint: &str,
    items: &[TrackingItem],
) -> Result<(), StoreError> {
    let tx = connection.transaction().map_err(unavailable)?;
    tx.execute(
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
            to_i64(sale.sold_at_ms),
        ],
    )
    .map_err(unavailable)?;
    insert_tracking_in(&tx, items).map_err(unavailable)?;
    tx.commit().map_err(unavailable)
}

/// Commits tracking `items` in one transaction.
pub(super) fn insert_tracking(
    connection: &mut Connection,
    items: &[TrackingItem],
) -> Result<(), StoreError> {
    let tx = connection.transaction().map_err(unavailable)?;
    insert_tracking_in(&tx, items).map_err(unavailable)?;
    tx.commit().map_err(unavailable)
}

/// Inserts tracking `items` in `tx`.
fn insert_tracking_in(
    tx: &rusqlite::Transaction<'_>,
    items: &[TrackingItem],
) -> rusqlite::Result<()> {
    for item in items {
        let mut values: Vec<Value> = vec![
            to_i64(item.seq).into(),
            serde_json::to_string(&item.event)
                .expect("API types serialise")
                .into(),
            to_i64(item.due_at_ms).into(),
        ];
        values.extend(DeliveryColumns::from(&item.delivery).values());
        tx.execute(
            &format!(
                "INSERT INTO tracking (seq, event, due_at_ms, {}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                DeliveryColumns::NAMES
            ),
            params_from_iter(values),
        )?;
    }
    Ok(())
}

/// Writes the delivery state of tracking items `updates` in one transaction.
pub(super) fn update_tracking(
    connection: &mut Connection,
    updates: &[(u64, &Delivery)],
) -> Result<(), StoreError> {
    let tx = connection.transaction().map_err(unavailable)?;
    for (seq, delivery) in updates {
        let mut values: Vec<Value> = vec![to_i64(*seq).into()];
        values.extend(DeliveryColumns::from(*delivery).values());
        tx.execute(
            "UPDATE tracking SET delivery_state = ?2, attempts = ?3, next_attempt_at_ms = ?4, \
             delivered_at_ms = ?5, last_error = ?6 WHERE seq = ?1",
            params_from_iter(values),
        )
        .map_err(unavailable)?;
    }
    tx.commit().map_err(unavailable)
}

/// Every sale in `connection`, in order, each with the fingerprint of its request.
pub(super) fn sales(connection: &Connection) -> Result<Vec<(LabelSale, String)>, StoreError> {
    let mut statement = connection
        .prepare(
            "SELECT label_id, tracking_number, shipment_ref, cost_cents, \
             idempotency_key, fingerprint, sold_at_ms FROM label_sales ORDER BY seq",
        )
        .map_err(unavailable)?;
    let rows = statement
        .query_map([], |row| SaleRow::try_from(row))
        .map_err(unavailable)?;
    let mut sales = Vec::new();
    for row in rows {
        let (label_id, tracking_number, shipment_ref, cost, key, fingerprint, sold): SaleRow =
            row.map_err(unavailable)?;
        let sale = LabelSale {
            label: Label {
                label_id,
                tracking_number,
                shipment_ref,
                cost_cents: u32::try_from(cost).map_err(|e| corrupt("cost_cents", e))?,
            },
            idempotency_key: key,
            sold_at_ms: to_u64("sold_at_ms", sold)?,
        };
        sales.push((sale, fingerprint));
    }
    Ok(sales)
}

/// Every tracking item in `connection`, in order.
pub(super) fn tracking(connection: &Connection) -> Result<Vec<TrackingItem>, StoreError> {
    let mut statement = connection
        .prepare(
            "SELECT seq, event, due_at_ms, delivery_state, attempts, next_attempt_at_ms, \
             delivered_at_ms, last_error FROM tracking ORDER BY seq",
        )
        .map_err(unavailable)?;
    let rows = statement
        .query_map([], |row| TrackingRow::try_from(row))
        .map_err(unavailable)?;
    let mut items = Vec::new();
    for row in rows {
        let (seq, event, due, delivery_state, attempts, next, delivered, last_error) =
            row.map_err(unavailable)?;
        let seq = to_u64("tracking seq", seq)?;
        items.push(TrackingItem {
            seq,
            event: serde_json::from_str(&event).map_err(|e| corrupt("tracking event", e))?,
            due_at_ms: to_u64("due_at_ms", due)?,
            delivery: DeliveryColumns::from_row(
                delivery_state,
                attempts,
                next,
                delivered,
                last_error,
            )?
            .into_delivery()?,
        });
    }
    Ok(items)
}
