//! The service's tables: for each, its name, its columns, its key, the row as SQLite returns
//! it and the conversions between that row and the record it holds. The transaction
//! ([`super::tx`]) and [`Store::read_all`](crate::store::Store::read_all) read and write
//! every table through the one [`Table`] trait, so a table's SQL is written once.

use rusqlite::types::Value;
use rusqlite::{Connection, Params};

use super::columns::{DeliveryColumns, corrupt, from_json, to_i64, to_json, to_u64, unavailable};
use crate::api::{Order, Shipment};
use crate::store::{
    IdemScope, IdemState, IdempotencyRecord, Lock, OrderRecord, OutboxRecord, ProcessedEvent,
    RecoveryPoint, ShipmentRecord, StoreError, StoredResponse,
};

/// One table of the service's schema ([`super::schema`]) and the record a row of it holds.
pub(super) trait Table {
    /// The table's name.
    const NAME: &'static str;
    /// Its columns, in the order of [`Table::Row`] and of [`Table::values`].
    const COLUMNS: &'static str;
    /// The `WHERE` condition that finds one record by its key (`?1`, ...).
    const KEY: &'static str;
    /// A row as SQLite returns it: a tuple of the columns' stored types.
    type Row: for<'a> TryFrom<&'a rusqlite::Row<'a>, Error = rusqlite::Error>;
    /// What a row holds.
    type Record;

    /// The record a row holds.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a column does not read back as what was written.
    fn record(row: Self::Row) -> Result<Self::Record, StoreError>;

    /// The record as the values of [`Table::COLUMNS`].
    fn values(record: &Self::Record) -> Vec<Value>;

    /// Reads one row of this table (for `query_row` and `query_map`).
    fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self::Row> {
        Self::Row::try_from(row)
    }
}

/// `SELECT` of every column of `T`, followed by `rest` (a `WHERE` or `ORDER BY` clause).
pub(super) fn select<T: Table>(rest: &str) -> String {
    format!("SELECT {} FROM {} {rest}", T::COLUMNS, T::NAME)
}

/// `INSERT OR REPLACE` of one record of `T`, its values bound as `?1`, `?2`, ...
pub(super) fn insert<T: Table>() -> String {
    let count = T::COLUMNS.split(',').count();
    let placeholders: Vec<String> = (1..=count).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT OR REPLACE INTO {} ({}) VALUES ({})",
        T::NAME,
        T::COLUMNS,
        placeholders.join(", ")
    )
}

/// Every record `sql` (a [`select`] of `T`) finds, in the order it finds them.
pub(super) fn all<T: Table>(
    connection: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<Vec<T::Record>, StoreError> {
    let mut statement = connection.prepare_cached(sql).map_err(unavailable)?;
    let rows = statement.query_map(params, T::row).map_err(unavailable)?;
    rows.map(|row| T::record(row.map_err(unavailable)?))
        .collect()
}

/// Every record of `T`, in the order SQLite keeps them.
pub(super) fn whole<T: Table>(connection: &Connection) -> Result<Vec<T::Record>, StoreError> {
    all::<T>(connection, &select::<T>(""), [])
}

/// `idempotency`: one record per (caller, key).
pub(super) struct Idempotency;

impl Table for Idempotency {
    const NAME: &'static str = "idempotency";
    const COLUMNS: &'static str = "caller, key, fingerprint, created_at_ms, state, lock_boot, \
         lock_acquired_at_ms, recovery_shipment, response_status, response_body";
    const KEY: &'static str = "caller = ?1 AND key = ?2";
    type Row = (
        String,
        String,
        String,
        i64,
        String,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<i64>,
        Option<String>,
    );
    type Record = IdempotencyRecord;

    fn record(row: Self::Row) -> Result<IdempotencyRecord, StoreError> {
        let (caller, key, fingerprint, created, state, lock_boot, lock_at, recovery, status, body) =
            row;
        let state = match state.as_str() {
            "in_progress" => IdemState::InProgress {
                lock: match (lock_boot, lock_at) {
                    (Some(boot), Some(at)) => Some(Lock {
                        boot: to_u64("lock_boot", boot)?,
                        acquired_at_ms: to_u64("lock_acquired_at_ms", at)?,
                    }),
                    _ => None,
                },
                recovery: RecoveryPoint::ShipmentCreated {
                    shipment_id: recovery
                        .ok_or_else(|| corrupt("idempotency", "in progress without recovery"))?,
                },
            },
            "completed" => IdemState::Completed {
                response: StoredResponse {
                    status: u16::try_from(
                        status.ok_or_else(|| corrupt("idempotency", "completed without status"))?,
                    )
                    .map_err(|e| corrupt("response_status", e))?,
                    body: body.ok_or_else(|| corrupt("idempotency", "completed without body"))?,
                },
            },
            other => return Err(corrupt("idempotency state", other)),
        };
        Ok(IdempotencyRecord {
            scope: IdemScope { caller, key },
            fingerprint,
            created_at_ms: to_u64("created_at_ms", created)?,
            state,
        })
    }

    fn values(record: &IdempotencyRecord) -> Vec<Value> {
        let (state, lock, recovery, response) = match &record.state {
            IdemState::InProgress { lock, recovery } => {
                let RecoveryPoint::ShipmentCreated { shipment_id } = recovery;
                ("in_progress", *lock, Some(shipment_id.clone()), None)
            }
            IdemState::Completed { response } => ("completed", None, None, Some(response)),
        };
        vec![
            record.scope.caller.clone().into(),
            record.scope.key.clone().into(),
            record.fingerprint.clone().into(),
            to_i64(record.created_at_ms).into(),
            state.to_string().into(),
            lock.map(|l| to_i64(l.boot)).into(),
            lock.map(|l| to_i64(l.acquired_at_ms)).into(),
            recovery.into(),
            response.map(|r| i64::from(r.status)).into(),
            response.map(|r| r.body.clone()).into(),
        ]
    }
}

/// `orders`, by id.
pub(super) struct Orders;

impl Table for Orders {
    const NAME: &'static str = "orders";
    const COLUMNS: &'static str = "id, caller, idempotency_key, reference, status, items, \
         ship_to, shipment_ids, created_at_ms";
    const KEY: &'static str = "id = ?1";
    type Row = (
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        i64,
    );
    type Record = OrderRecord;

    fn record(row: Self::Row) -> Result<OrderRecord, StoreError> {
        let (id, caller, key, reference, status, items, ship_to, shipment_ids, created) = row;
        Ok(OrderRecord {
            order: Order {
                id,
                reference,
                status: from_json("order status", &status, true)?,
                items: from_json("order items", &items, false)?,
                ship_to: from_json("order ship_to", &ship_to, false)?,
                shipment_ids: from_json("order shipment_ids", &shipment_ids, false)?,
                created_at_ms: to_u64("created_at_ms", created)?,
            },
            caller,
            idempotency_key: key,
        })
    }

    fn values(record: &OrderRecord) -> Vec<Value> {
        let order = &record.order;
        vec![
            order.id.clone().into(),
            record.caller.clone().into(),
            record.idempotency_key.clone().into(),
            order.reference.clone().into(),
            to_json(&order.status).into(),
            to_json(&order.items).into(),
            to_json(&order.ship_to).into(),
            to_json(&order.shipment_ids).into(),
            to_i64(order.created_at_ms).into(),
        ]
    }
}

/// `shipments`, by id.
pub(super) struct Shipments;

impl Table for Shipments {
    const NAME: &'static str = "shipments";
    const COLUMNS: &'static str = "id, order_id, caller, idempotency_key, status, service_level, \
         weight_grams, label_id, tracking_number, created_at_ms, webhook_sequence";
    const KEY: &'static str = "id = ?1";
    type Row = (
        String,
        String,
        String,
        String,
        String,
        String,
        i64,
        Option<String>,
        Option<String>,
        i64,
        i64,
    );
    type Record = ShipmentRecord;

    fn record(row: Self::Row) -> Result<ShipmentRecord, StoreError> {
        let (
            id,
            order_id,
            caller,
            key,
            status,
            level,
            grams,
            label_id,
            tracking,
            created,
            sequence,
        ) = row;
        Ok(ShipmentRecord {
            shipment: Shipment {
                id,
                order_id,
                status: from_json("shipment status", &status, true)?,
                service_level: from_json("service_level", &level, true)?,
                weight_grams: u32::try_from(grams).map_err(|e| corrupt("weight_grams", e))?,
                label_id,
                tracking_number: tracking,
                created_at_ms: to_u64("created_at_ms", created)?,
            },
            caller,
            idempotency_key: key,
            webhook_sequence: to_u64("webhook_sequence", sequence)?,
        })
    }

    fn values(record: &ShipmentRecord) -> Vec<Value> {
        let shipment = &record.shipment;
        vec![
            shipment.id.clone().into(),
            shipment.order_id.clone().into(),
            record.caller.clone().into(),
            record.idempotency_key.clone().into(),
            to_json(&shipment.status).into(),
            to_json(&shipment.service_level).into(),
            i64::from(shipment.weight_grams).into(),
            shipment.label_id.clone().into(),
            shipment.tracking_number.clone().into(),
            to_i64(shipment.created_at_ms).into(),
            to_i64(record.webhook_sequence).into(),
        ]
    }
}

/// `processed_events`: the carrier events the service has taken in, by event id.
pub(super) struct ProcessedEvents;

impl Table for ProcessedEvents {
    const NAME: &'static str = "processed_events";
    const COLUMNS: &'static str = "event_id, received_at_ms, effect";
    const KEY: &'static str = "event_id = ?1";
    type Row = (String, i64, Option<i64>);
    /// The event's id and what processing it did.
    type Record = (String, ProcessedEvent);

    fn record(row: Self::Row) -> Result<(String, ProcessedEvent), StoreError> {
        let (event_id, received, effect) = row;
        Ok((
            event_id,
            ProcessedEvent {
                received_at_ms: to_u64("received_at_ms", received)?,
                effect: effect.map(|v| to_u64("effect", v)).transpose()?,
            },
        ))
    }

    fn values((event_id, event): &(String, ProcessedEvent)) -> Vec<Value> {
        vec![
            event_id.clone().into(),
            to_i64(event.received_at_ms).into(),
            event.effect.map(to_i64).into(),
        ]
    }
}

/// `outbox`: the service's webhook events, by sequence number.
pub(super) struct Outbox;

impl Table for Outbox {
    const NAME: &'static str = "outbox";
    const COLUMNS: &'static str = "seq, caller, event, cause, delivery_state, attempts, \
         next_attempt_at_ms, delivered_at_ms, last_error";
    const KEY: &'static str = "seq = ?1";
    type Row = (
        i64,
        String,
        String,
        Option<String>,
        String,
        i64,
        Option<i64>,
        Option<i64>,
        Option<String>,
    );
    type Record = OutboxRecord;

    fn record(row: Self::Row) -> Result<OutboxRecord, StoreError> {
        let (seq, caller, event, cause, state, attempts, next, delivered, last_error) = row;
        let columns = DeliveryColumns::from_row(state, attempts, next, delivered, last_error)?;
        Ok(OutboxRecord {
            seq: to_u64("outbox seq", seq)?,
            caller,
            event: from_json("outbox event", &event, false)?,
            cause,
            delivery: columns.into_delivery()?,
        })
    }

    fn values(record: &OutboxRecord) -> Vec<Value> {
        let mut values = vec![
            to_i64(record.seq).into(),
            record.caller.clone().into(),
            to_json(&record.event).into(),
            record.cause.clone().into(),
        ];
        values.extend(DeliveryColumns::from(&record.delivery).values());
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_table_binds_one_value_per_column() {
        // Proves the statements built from `COLUMNS` fit the values and rows: `insert`
        // numbers one placeholder per column, and the outbox's columns end with the
        // delivery's, in `DeliveryColumns::values` order.
        assert_eq!(
            insert::<ProcessedEvents>(),
            "INSERT OR REPLACE INTO processed_events (event_id, received_at_ms, effect) \
             VALUES (?1, ?2, ?3)"
        );
        assert!(Outbox::COLUMNS.ends_with(DeliveryColumns::NAMES));
        for (columns, placeholders) in [
            (Idempotency::COLUMNS, insert::<Idempotency>()),
            (Orders::COLUMNS, insert::<Orders>()),
            (Shipments::COLUMNS, insert::<Shipments>()),
            (Outbox::COLUMNS, insert::<Outbox>()),
        ] {
            let count = columns.split(',').count();
            assert!(
                placeholders.ends_with(&format!("?{count})")),
                "{placeholders}"
            );
        }
    }
}
