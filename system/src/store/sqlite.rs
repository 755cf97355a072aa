//! A SQLite store for live mode: the same [`Store`] contract as the simulation's
//! [`super::MemoryStore`], on a real database file that survives `kill -9`.
//!
//! Durability. The journal is a write-ahead log (`journal_mode = WAL`) and a [`Durability::Sync`]
//! commit runs with `synchronous = FULL`: SQLite fsyncs the log before `COMMIT` returns, so
//! an acknowledged write survives a process kill *and* a power loss. `NORMAL` with WAL would
//! also survive `kill -9` (the committed frames are in the OS page cache) but may roll the
//! last commits back on power loss; that is the "acknowledged before durable" mistake the
//! store exists to rule out, so `NORMAL` is used only for [`Durability::Lazy`] commits, which
//! only a planted bug asks for.
//!
//! Threads and group commit. An fsync takes from a fraction of a millisecond (a good SSD)
//! to several (a shared disk, a VM), and nothing else can use the connection meanwhile.
//! The service's transactions ([`Store::run_tx_owned`]) therefore never run on an async
//! worker thread: a writer thread of the store's own runs them, taking every transaction
//! queued while it was busy (up to [`GROUP_JOBS_MAX`]) into one `BEGIN IMMEDIATE ..
//! COMMIT`, each body in a savepoint of its own, so N concurrent requests cost one fsync,
//! not N. Each body still commits or aborts alone (its savepoint), sees the writes of the
//! bodies queued before it (the group runs them in arrival order), and no body is answered
//! before the group's fsync returned: durability and isolation are those of one
//! transaction per request.
//!
//! Isolation. Every transaction is `BEGIN IMMEDIATE`: it takes the write lock before its
//! first read, so a read-decide-write body (claim an idempotency key) is serialisable. The
//! connection runs in `locking_mode = EXCLUSIVE`, so a second process opening the same file
//! fails instead of running with its own boot number beside ours; the OS drops the lock when
//! a process dies, so a restart after `kill -9` opens the file at once.
//!
//! Boots. Opening increments a counter row in its own durable transaction: each start
//! of the service gets a number no earlier start had, which is what lets a restarted service
//! recognise the in-progress locks of a dead one.
//!
//! Webhooks. Processed carrier events and the outbox are tables of the same database, so
//! they are written by the same transaction as the state change they belong to: a crash
//! can neither keep a shipment's new status without its outbox event nor keep a carrier
//! event's dedupe record without its effect. The carrier's ledger (`carrier::CarrierLedger`)
//! keeps its label sales and tracking log in tables of this schema too, in its own file.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    Delivery, Durability, IdemScope, IdemState, IdempotencyRecord, Lock, OrderRecord, OutboxRecord,
    OwnedTxBody, ProcessedEvent, RecoveryPoint, ShipmentRecord, Store, StoreError, StoredResponse,
    Tables, Tx, TxDecision, TxFuture,
};
use crate::api::{Order, Shipment};

/// Version of the schema below, kept in `PRAGMA user_version`. A file of an earlier version
/// is brought up to date by [`MIGRATIONS`]; one of a later version is refused rather than
/// misread.
const SCHEMA_VERSION: i64 = 4;

/// The steps from each earlier schema version to the next, in order: `(from, sql)`. A fresh
/// file gets [`SCHEMA`] (which is the latest) and no step.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        2,
        // Version 3: the retention sweep finds expired idempotency records by age.
        "CREATE INDEX IF NOT EXISTS idempotency_by_age ON idempotency (state, created_at_ms);",
    ),
    (
        3,
        // Version 4: each shipment counts the webhook events announced about it.
        "ALTER TABLE shipments ADD COLUMN webhook_sequence INTEGER NOT NULL DEFAULT 0;",
    ),
];

const _: () = assert!(MIGRATIONS[MIGRATIONS.len() - 1].0 + 1 == SCHEMA_VERSION);

/// How long a transaction waits for the database lock before failing, ms. Only another
/// process can hold it (in-process transactions are serialised by a mutex first), and that
/// is refused at open, without waiting; the wait covers a checkpoint in progress.
const BUSY_TIMEOUT_MS: u64 = 5_000;

/// Prepared statements a connection keeps: more than the distinct statements the service
/// and the carrier's ledger run (about 25), so none is parsed twice.
const STATEMENTS_CACHED_MAX: usize = 64;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    caller              TEXT NOT NULL,
    key                 TEXT NOT NULL,
    fingerprint         TEXT NOT NULL,
    created_at_ms       INTEGER NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),
    lock_boot           INTEGER,
    lock_acquired_at_ms INTEGER,
    recovery_shipment   TEXT,
    response_status     INTEGER,
    response_body       TEXT,
    PRIMARY KEY (caller, key)
);
CREATE INDEX IF NOT EXISTS idempotency_by_age ON idempotency (state, created_at_ms);
CREATE TABLE IF NOT EXISTS orders (
    id              TEXT PRIMARY KEY,
    caller          TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    reference       TEXT NOT NULL,
    status          TEXT NOT NULL,
    items           TEXT NOT NULL,
    ship_to         TEXT NOT NULL,
    shipment_ids    TEXT NOT NULL,
    created_at_ms   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS shipments (
    id              TEXT PRIMARY KEY,
    order_id        TEXT NOT NULL,
    caller          TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    status          TEXT NOT NULL,
    service_level   TEXT NOT NULL,
    weight_grams    INTEGER NOT NULL,
    label_id        TEXT,
    tracking_number TEXT,
    created_at_ms   INTEGER NOT NULL,
    webhook_sequence INTEGER NOT NULL DEFAULT 0
);
-- Deliberately not UNIQUE: exactly-once is the service's job, and a constraint here would
-- hide the planted bugs the oracles must catch behind a 503.
CREATE INDEX IF NOT EXISTS shipments_by_key ON shipments (caller, idempotency_key);
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
-- Carrier events the service has taken in (webhook dedupe), written in the transaction
-- that applies the event.
CREATE TABLE IF NOT EXISTS processed_events (
    event_id       TEXT PRIMARY KEY,
    received_at_ms INTEGER NOT NULL,
    effect         INTEGER
);
-- The service's webhook outbox, written in the transaction of the state change it
-- announces. The delivery columns hold a `Delivery`: which of them are set depends on
-- `delivery_state` (see `DeliveryColumns`).
CREATE TABLE IF NOT EXISTS outbox (
    seq                INTEGER PRIMARY KEY,
    caller             TEXT NOT NULL,
    event              TEXT NOT NULL,
    cause              TEXT,
    delivery_state     TEXT NOT NULL CHECK (delivery_state IN ('pending', 'delivered', 'dead_letter')),
    attempts           INTEGER NOT NULL,
    next_attempt_at_ms INTEGER,
    delivered_at_ms    INTEGER,
    last_error         TEXT
);
CREATE INDEX IF NOT EXISTS outbox_by_state ON outbox (delivery_state, seq);
-- The events feed reads one caller's events after a cursor (`GET /v1/events`).
CREATE INDEX IF NOT EXISTS outbox_by_caller ON outbox (caller, seq);
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

fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

/// Opens (creating if needed) the database at `path` with the pragmas described in the
/// module docs, brings its schema up to [`SCHEMA_VERSION`] and counts one more boot of its
/// owner. Returns the connection and how many boots came before (0 on a fresh file).
pub(crate) fn open_database(path: &Path) -> Result<(Connection, u64), StoreError> {
    let mut connection = Connection::open(path)
        .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
    // Fail at once, not after a wait, if another process holds the file.
    connection
        .busy_timeout(std::time::Duration::ZERO)
        .map_err(unavailable)?;
    connection
        .pragma_update(None, "locking_mode", "EXCLUSIVE")
        .map_err(unavailable)?;
    let mode: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(unavailable)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "{}: journal mode is {mode}, WAL is required",
            path.display()
        )));
    }
    connection
        .pragma_update(None, "synchronous", "FULL")
        .map_err(unavailable)?;
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(unavailable)?;
    match version {
        0 => {
            connection.execute_batch(SCHEMA).map_err(unavailable)?;
            connection
                .pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(unavailable)?;
        }
        SCHEMA_VERSION => {}
        old if (2..SCHEMA_VERSION).contains(&old) => {
            for (from, sql) in MIGRATIONS.iter().filter(|(from, _)| *from >= old) {
                let tx = connection.transaction().map_err(unavailable)?;
                tx.execute_batch(sql).map_err(unavailable)?;
                tx.pragma_update(None, "user_version", from + 1)
                    .map_err(unavailable)?;
                tx.commit().map_err(unavailable)?;
            }
        }
        other => {
            return Err(corrupt(
                &path.display().to_string(),
                format!("schema version {other}, this shipsim reads {SCHEMA_VERSION}"),
            ));
        }
    }
    let boot = start_boot(&mut connection)?;
    connection
        .busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))
        .map_err(unavailable)?;
    // Every statement the stores run, parsed once (SqliteTx uses `prepare_cached`).
    connection.set_prepared_statement_cache_capacity(STATEMENTS_CACHED_MAX);
    Ok((connection, boot))
}

/// Counts one more start of the process that owns `connection`, durably, and returns how
/// many starts came before (0 on a fresh database).
fn start_boot(connection: &mut Connection) -> Result<u64, StoreError> {
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    let previous: Option<i64> = tx
        .query_row("SELECT value FROM meta WHERE name = 'boots'", [], |row| {
            row.get(0)
        })
        .optional()
        .map_err(unavailable)?;
    let previous = previous.unwrap_or(0);
    tx.execute(
        "INSERT INTO meta (name, value) VALUES ('boots', ?1)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        params![previous + 1],
    )
    .map_err(unavailable)?;
    tx.commit().map_err(unavailable)?;
    u64::try_from(previous).map_err(|e| corrupt("boot counter", e))
}

/// An integer column to `u64`; SQLite stores signed 64-bit integers.
fn to_u64(what: &str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|e| corrupt(what, e))
}

/// A `u64` for an integer column. Values past `i64::MAX` (300 million years of ms) are a
/// bug upstream, not something to store.
fn to_i64(value: u64) -> i64 {
    i64::try_from(value).expect("stored integers fit in i64")
}

/// A unit enum (`"label_purchased"`) or a nested value as the JSON text stored in a column.
fn to_json(value: &impl Serialize) -> String {
    let json = serde_json::to_value(value).expect("API types serialise");
    match json {
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    }
}

/// Reads back what [`to_json`] wrote: bare text for unit enums, JSON for the rest.
fn from_json<T: DeserializeOwned>(what: &str, text: &str, bare: bool) -> Result<T, StoreError> {
    let parsed = if bare {
        serde_json::from_value(serde_json::Value::String(text.to_string()))
    } else {
        serde_json::from_str(text)
    };
    parsed.map_err(|e| corrupt(what, e))
}

/// A [`Delivery`] as the columns that store it (`outbox` and `tracking` tables): the state's
/// name, the attempt count every state has, and the one field particular to the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DeliveryColumns {
    /// `pending`, `delivered` or `dead_letter`.
    pub state: String,
    /// Attempts so far.
    pub attempts: u32,
    /// Set for `pending`.
    pub next_attempt_at_ms: Option<u64>,
    /// Set for `delivered`.
    pub delivered_at_ms: Option<u64>,
    /// Set for `dead_letter`.
    pub last_error: Option<String>,
}

impl From<&Delivery> for DeliveryColumns {
    fn from(delivery: &Delivery) -> Self {
        let (state, attempts, next, delivered, error) = match delivery {
            Delivery::Pending {
                attempts,
                next_attempt_at_ms,
            } => ("pending", *attempts, Some(*next_attempt_at_ms), None, None),
            Delivery::Delivered {
                attempts,
                delivered_at_ms,
            } => ("delivered", *attempts, None, Some(*delivered_at_ms), None),
            Delivery::DeadLetter {
                attempts,
                last_error,
            } => (
                "dead_letter",
                *attempts,
                None,
                None,
                Some(last_error.clone()),
            ),
        };
        DeliveryColumns {
            state: state.to_string(),
            attempts,
            next_attempt_at_ms: next,
            delivered_at_ms: delivered,
            last_error: error,
        }
    }
}

impl DeliveryColumns {
    /// The columns as SQLite returns them (integers are signed there).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a number does not fit its field.
    pub(crate) fn from_row(
        state: String,
        attempts: i64,
        next_attempt_at_ms: Option<i64>,
        delivered_at_ms: Option<i64>,
        last_error: Option<String>,
    ) -> Result<Self, StoreError> {
        let ms = |what: &str, value: Option<i64>| value.map(|v| to_u64(what, v)).transpose();
        Ok(DeliveryColumns {
            state,
            attempts: u32::try_from(attempts).map_err(|e| corrupt("attempts", e))?,
            next_attempt_at_ms: ms("next_attempt_at_ms", next_attempt_at_ms)?,
            delivered_at_ms: ms("delivered_at_ms", delivered_at_ms)?,
            last_error,
        })
    }

    /// The [`Delivery`] these columns hold.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the state is unknown or its field is missing.
    pub(crate) fn into_delivery(self) -> Result<Delivery, StoreError> {
        let missing = |field: &str| corrupt("delivery", format!("{} without {field}", self.state));
        Ok(match self.state.as_str() {
            "pending" => Delivery::Pending {
                attempts: self.attempts,
                next_attempt_at_ms: self
                    .next_attempt_at_ms
                    .ok_or_else(|| missing("next_attempt_at_ms"))?,
            },
            "delivered" => Delivery::Delivered {
                attempts: self.attempts,
                delivered_at_ms: self
                    .delivered_at_ms
                    .ok_or_else(|| missing("delivered_at_ms"))?,
            },
            "dead_letter" => Delivery::DeadLetter {
                attempts: self.attempts,
                last_error: self
                    .last_error
                    .clone()
                    .ok_or_else(|| missing("last_error"))?,
            },
            other => return Err(corrupt("delivery state", other)),
        })
    }
}

/// The columns of a row of `outbox`, as stored.
type OutboxRow = (
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

const OUTBOX_COLUMNS: &str = "seq, caller, event, cause, delivery_state, attempts, \
     next_attempt_at_ms, delivered_at_ms, last_error";

fn outbox_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
    OutboxRow::try_from(row)
}

fn outbox_record(row: OutboxRow) -> Result<OutboxRecord, StoreError> {
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

type ProcessedRow = (String, i64, Option<i64>);

fn processed_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ProcessedRow> {
    ProcessedRow::try_from(row)
}

fn processed_event(row: ProcessedRow) -> Result<(String, ProcessedEvent), StoreError> {
    let (event_id, received, effect) = row;
    Ok((
        event_id,
        ProcessedEvent {
            received_at_ms: to_u64("received_at_ms", received)?,
            effect: effect.map(|v| to_u64("effect", v)).transpose()?,
        },
    ))
}

/// The columns of a row of `idempotency`, as stored.
type IdemRow = (
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

const IDEM_COLUMNS: &str = "caller, key, fingerprint, created_at_ms, state, lock_boot, \
     lock_acquired_at_ms, recovery_shipment, response_status, response_body";

fn idem_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<IdemRow> {
    IdemRow::try_from(row)
}

fn idem_record(row: IdemRow) -> Result<IdempotencyRecord, StoreError> {
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

type OrderRow = (
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

const ORDER_COLUMNS: &str =
    "id, caller, idempotency_key, reference, status, items, ship_to, shipment_ids, created_at_ms";

fn order_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<OrderRow> {
    OrderRow::try_from(row)
}

fn order_record(row: OrderRow) -> Result<OrderRecord, StoreError> {
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

type ShipmentRow = (
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

const SHIPMENT_COLUMNS: &str = "id, order_id, caller, idempotency_key, status, service_level, \
     weight_grams, label_id, tracking_number, created_at_ms, webhook_sequence";

fn shipment_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ShipmentRow> {
    ShipmentRow::try_from(row)
}

fn shipment_record(row: ShipmentRow) -> Result<ShipmentRecord, StoreError> {
    let (id, order_id, caller, key, status, level, grams, label_id, tracking, created, sequence) =
        row;
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

/// One transaction: reads and writes go straight to SQLite. The [`Tx`] trait cannot fail,
/// so the first error is kept and turns the commit into a rollback and an `Err`.
struct SqliteTx<'a> {
    /// The open transaction (or a savepoint inside one, on the writer thread).
    tx: &'a Connection,
    error: RefCell<Option<StoreError>>,
}

impl SqliteTx<'_> {
    fn fail(&self, error: StoreError) {
        self.error.borrow_mut().get_or_insert(error);
    }

    /// Runs a fallible read; on error, records it and reads nothing.
    fn read<T>(&self, read: impl FnOnce() -> Result<Option<T>, StoreError>) -> Option<T> {
        match read() {
            Ok(value) => value,
            Err(error) => {
                self.fail(error);
                None
            }
        }
    }

    fn write(&self, sql: &str, values: &[&dyn rusqlite::ToSql]) {
        let written = self
            .tx
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute(values));
        if let Err(error) = written {
            self.fail(unavailable(error));
        }
    }

    /// The row `sql` selects, if any, through the connection's statement cache (a request
    /// runs the same few statements: parsing them once saves most of a read's CPU).
    fn query_one<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Option<T>> {
        self.tx
            .prepare_cached(sql)?
            .query_row(params, row)
            .optional()
    }
}

impl Tx for SqliteTx<'_> {
    fn idempotency(&self, scope: &IdemScope) -> Option<IdempotencyRecord> {
        self.read(|| {
            let sql =
                format!("SELECT {IDEM_COLUMNS} FROM idempotency WHERE caller = ?1 AND key = ?2");
            let row = self
                .query_one(&sql, params![scope.caller, scope.key], idem_row)
                .map_err(unavailable)?;
            row.map(idem_record).transpose()
        })
    }

    fn put_idempotency(&mut self, record: IdempotencyRecord) {
        let (state, lock, recovery, response) = match &record.state {
            IdemState::InProgress { lock, recovery } => {
                let RecoveryPoint::ShipmentCreated { shipment_id } = recovery;
                ("in_progress", *lock, Some(shipment_id.clone()), None)
            }
            IdemState::Completed { response } => ("completed", None, None, Some(response)),
        };
        let sql = format!(
            "INSERT OR REPLACE INTO idempotency ({IDEM_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        );
        self.write(
            &sql,
            params![
                record.scope.caller,
                record.scope.key,
                record.fingerprint,
                to_i64(record.created_at_ms),
                state,
                lock.map(|l| to_i64(l.boot)),
                lock.map(|l| to_i64(l.acquired_at_ms)),
                recovery,
                response.map(|r| i64::from(r.status)),
                response.map(|r| r.body.clone()),
            ],
        );
    }

    fn sweep_idempotency(&mut self, created_before_ms: u64, limit: usize) -> u64 {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match self.tx.execute(
            "DELETE FROM idempotency WHERE rowid IN (SELECT rowid FROM idempotency \
             WHERE state = 'completed' AND created_at_ms < ?1 ORDER BY created_at_ms LIMIT ?2)",
            params![to_i64(created_before_ms), limit],
        ) {
            Ok(deleted) => deleted as u64,
            Err(error) => {
                self.fail(unavailable(error));
                0
            }
        }
    }

    fn order(&self, order_id: &str) -> Option<OrderRecord> {
        self.read(|| {
            let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?1");
            let row = self
                .query_one(&sql, params![order_id], order_row)
                .map_err(unavailable)?;
            row.map(order_record).transpose()
        })
    }

    fn put_order(&mut self, record: OrderRecord) {
        let order = &record.order;
        let sql = format!(
            "INSERT OR REPLACE INTO orders ({ORDER_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        );
        self.write(
            &sql,
            params![
                order.id,
                record.caller,
                record.idempotency_key,
                order.reference,
                to_json(&order.status),
                to_json(&order.items),
                to_json(&order.ship_to),
                to_json(&order.shipment_ids),
                to_i64(order.created_at_ms),
            ],
        );
    }

    fn shipment(&self, shipment_id: &str) -> Option<ShipmentRecord> {
        self.read(|| {
            let sql = format!("SELECT {SHIPMENT_COLUMNS} FROM shipments WHERE id = ?1");
            let row = self
                .query_one(&sql, params![shipment_id], shipment_row)
                .map_err(unavailable)?;
            row.map(shipment_record).transpose()
        })
    }

    fn put_shipment(&mut self, record: ShipmentRecord) {
        let shipment = &record.shipment;
        let sql = format!(
            "INSERT OR REPLACE INTO shipments ({SHIPMENT_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        );
        self.write(
            &sql,
            params![
                shipment.id,
                shipment.order_id,
                record.caller,
                record.idempotency_key,
                to_json(&shipment.status),
                to_json(&shipment.service_level),
                i64::from(shipment.weight_grams),
                shipment.label_id,
                shipment.tracking_number,
                to_i64(shipment.created_at_ms),
                to_i64(record.webhook_sequence),
            ],
        );
    }

    fn processed_event(&self, event_id: &str) -> Option<ProcessedEvent> {
        self.read(|| {
            let row = self
                .query_one(
                    "SELECT event_id, received_at_ms, effect FROM processed_events \
                     WHERE event_id = ?1",
                    params![event_id],
                    processed_row,
                )
                .map_err(unavailable)?;
            Ok(row
                .map(processed_event)
                .transpose()?
                .map(|(_, event)| event))
        })
    }

    fn put_processed_event(&mut self, event_id: &str, event: ProcessedEvent) {
        self.write(
            "INSERT OR REPLACE INTO processed_events (event_id, received_at_ms, effect) \
             VALUES (?1, ?2, ?3)",
            params![
                event_id,
                to_i64(event.received_at_ms),
                event.effect.map(to_i64),
            ],
        );
    }

    fn next_outbox_seq(&self) -> u64 {
        // On an error the transaction is already doomed to roll back; any number will do.
        self.read(|| {
            let last: i64 = self
                .tx
                .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM outbox")
                .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
                .map_err(unavailable)?;
            Ok(Some(to_u64("outbox seq", last)? + 1))
        })
        .unwrap_or(0)
    }

    fn put_outbox(&mut self, record: OutboxRecord) {
        let columns = DeliveryColumns::from(&record.delivery);
        let sql = format!(
            "INSERT OR REPLACE INTO outbox ({OUTBOX_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        );
        self.write(
            &sql,
            params![
                to_i64(record.seq),
                record.caller,
                to_json(&record.event),
                record.cause,
                columns.state,
                i64::from(columns.attempts),
                columns.next_attempt_at_ms.map(to_i64),
                columns.delivered_at_ms.map(to_i64),
                columns.last_error,
            ],
        );
    }

    fn outbox(&self, seq: u64) -> Option<OutboxRecord> {
        self.read(|| {
            let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE seq = ?1");
            let row = self
                .query_one(&sql, params![to_i64(seq)], outbox_row)
                .map_err(unavailable)?;
            row.map(outbox_record).transpose()
        })
    }

    fn outbox_due(&self, now_ms: u64, limit: usize, skip: &BTreeSet<u64>) -> Vec<OutboxRecord> {
        self.read(|| {
            let sql = format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox \
                 WHERE delivery_state = 'pending' AND next_attempt_at_ms <= ?1 ORDER BY seq"
            );
            let mut statement = self.tx.prepare_cached(&sql).map_err(unavailable)?;
            let rows = statement
                .query_map(params![to_i64(now_ms)], outbox_row)
                .map_err(unavailable)?;
            let mut due = Vec::new();
            for row in rows {
                if due.len() >= limit {
                    break;
                }
                let record = outbox_record(row.map_err(unavailable)?)?;
                if !skip.contains(&record.seq) {
                    due.push(record);
                }
            }
            Ok(Some(due))
        })
        .unwrap_or_default()
    }

    fn outbox_next_due(&self, skip: &BTreeSet<u64>) -> Option<u64> {
        self.read(|| {
            let mut statement = self
                .tx
                .prepare_cached(
                    "SELECT seq, next_attempt_at_ms FROM outbox \
                     WHERE delivery_state = 'pending' ORDER BY next_attempt_at_ms, seq",
                )
                .map_err(unavailable)?;
            let rows = statement
                .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))
                .map_err(unavailable)?;
            for row in rows {
                let (seq, at_ms) = row.map_err(unavailable)?;
                let (seq, at_ms) = (to_u64("seq", seq)?, to_u64("next_attempt_at_ms", at_ms)?);
                if !skip.contains(&seq) {
                    return Ok(Some(at_ms));
                }
            }
            Ok(None)
        })
    }

    fn outbox_dead(&self) -> Vec<OutboxRecord> {
        self.read(|| {
            let sql = format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE delivery_state = 'dead_letter' \
                 ORDER BY seq"
            );
            let mut statement = self.tx.prepare_cached(&sql).map_err(unavailable)?;
            let rows = statement.query_map([], outbox_row).map_err(unavailable)?;
            let mut dead = Vec::new();
            for row in rows {
                dead.push(outbox_record(row.map_err(unavailable)?)?);
            }
            Ok(Some(dead))
        })
        .unwrap_or_default()
    }

    fn outbox_after(&self, caller: &str, after_seq: u64, limit: usize) -> Vec<OutboxRecord> {
        self.read(|| {
            let sql = format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE caller = ?1 AND seq > ?2 \
                 ORDER BY seq LIMIT ?3"
            );
            let mut statement = self.tx.prepare_cached(&sql).map_err(unavailable)?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = statement
                .query_map(params![caller, to_i64(after_seq), limit], outbox_row)
                .map_err(unavailable)?;
            let mut page = Vec::new();
            for row in rows {
                page.push(outbox_record(row.map_err(unavailable)?)?);
            }
            Ok(Some(page))
        })
        .unwrap_or_default()
    }

    fn outbox_counts(&self) -> (u64, u64, u64) {
        self.read(|| {
            let mut statement = self
                .tx
                .prepare_cached(
                    "SELECT delivery_state, COUNT(*) FROM outbox GROUP BY delivery_state",
                )
                .map_err(unavailable)?;
            let rows = statement
                .query_map([], |row| <(String, i64)>::try_from(row))
                .map_err(unavailable)?;
            let mut counts = (0, 0, 0);
            for row in rows {
                let (state, count) = row.map_err(unavailable)?;
                let count = to_u64("outbox count", count)?;
                match state.as_str() {
                    "pending" => counts.0 = count,
                    "delivered" => counts.1 = count,
                    "dead_letter" => counts.2 = count,
                    other => return Err(corrupt("delivery state", other)),
                }
            }
            Ok(Some(counts))
        })
        .unwrap_or_default()
    }
}

struct Inner {
    connection: Connection,
    /// The `synchronous` setting in force, so it is only changed when it must be.
    synchronous: Durability,
}

impl Inner {
    /// Sets `synchronous` for `durability` (outside a transaction, where SQLite takes it).
    fn set_durability(&mut self, durability: Durability) -> Result<(), StoreError> {
        if self.synchronous != durability {
            let setting = match durability {
                Durability::Sync => "FULL",
                Durability::Lazy => "NORMAL",
            };
            self.connection
                .pragma_update(None, "synchronous", setting)
                .map_err(unavailable)?;
            self.synchronous = durability;
        }
        Ok(())
    }
}

/// Runs `body` on `connection` inside the transaction or savepoint the caller opened, and
/// says how it ended: its decision, or the first SQL error it met.
fn run_body(
    connection: &Connection,
    body: &mut dyn FnMut(&mut dyn Tx) -> TxDecision,
) -> Result<TxDecision, StoreError> {
    let mut sql_tx = SqliteTx {
        tx: connection,
        error: RefCell::new(None),
    };
    let decision = body(&mut sql_tx);
    match sql_tx.error.into_inner() {
        Some(error) => Err(error),
        None => Ok(decision),
    }
}

/// Transactions the writer thread commits together at most: one `COMMIT`, so one fsync,
/// for up to this many requests that arrived while the previous group was being written.
/// Enough to take every request of a busy service at once (it has far fewer in flight),
/// few enough that a group holds the write lock for milliseconds, not seconds.
pub const GROUP_JOBS_MAX: usize = 64;

/// A transaction handed to the writer thread.
struct Job {
    durability: Durability,
    body: OwnedTxBody,
    reply: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

/// The service's store on a SQLite file. See the module docs for its guarantees.
///
/// Transactions from async code ([`Store::run_tx_owned`]) run on a writer thread of the
/// store's own, never on an async worker: an fsync takes milliseconds, and a worker
/// blocked in one serves nothing meanwhile. The writer takes every transaction queued
/// while it was busy and commits them as one group: each body in a savepoint of its own
/// (so it commits or aborts alone, and sees the writes of the bodies before it, exactly
/// as if they had run one after the other), then one `COMMIT` and one fsync for all;
/// none is answered before that fsync. [`Store::run_tx`] still runs on the caller's
/// thread, for tests and tools.
pub struct SqliteStore {
    inner: Arc<Mutex<Inner>>,
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the database file at `path` and counts one more boot of its owner.
    /// Returns the store and how many boots came before this one.
    ///
    /// # Errors
    /// [`StoreError`] when the file cannot be opened (another process holds it, bad path,
    /// unknown schema version) or its writer thread cannot be started.
    pub fn open(path: &Path) -> Result<(SqliteStore, u64), StoreError> {
        let (connection, boot) = open_database(path)?;
        let inner = Arc::new(Mutex::new(Inner {
            connection,
            synchronous: Durability::Sync,
        }));
        let (jobs, queue) = std::sync::mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn({
                let inner = inner.clone();
                move || write_groups(&inner, &queue)
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        let store = SqliteStore {
            inner,
            jobs: Some(jobs),
            writer: Some(writer),
        };
        Ok((store, boot))
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Unavailable("store lock poisoned".into()))
    }
}

impl Drop for SqliteStore {
    /// Stops the writer thread once it has answered every queued transaction, so the file
    /// (and its exclusive lock) is released when the store is gone.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The writer thread: waits for a transaction, takes whatever else is queued (up to
/// [`GROUP_JOBS_MAX`]), and commits it in groups of one durability, in arrival order.
/// Returns when the store is dropped.
fn write_groups(inner: &Mutex<Inner>, queue: &std::sync::mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        // Take the connection first: whatever queues while it is busy joins this group.
        let inner = inner.lock();
        let mut batch = vec![first];
        while batch.len() < GROUP_JOBS_MAX {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let Ok(mut inner) = inner else {
            for job in batch {
                let _ = job
                    .reply
                    .send(Err(StoreError::Unavailable("store lock poisoned".into())));
            }
            continue;
        };
        let mut batch = batch.into_iter().peekable();
        while let Some(job) = batch.next() {
            let durability = job.durability;
            let mut group = vec![job];
            while let Some(next) = batch.next_if(|job| job.durability == durability) {
                group.push(next);
            }
            commit_group(&mut inner, durability, group);
        }
    }
}

/// One `BEGIN IMMEDIATE` .. `COMMIT` for `group`, each body in its own savepoint; answers
/// every job after the commit (a failed commit fails every job that wanted to commit).
fn commit_group(inner: &mut Inner, durability: Durability, group: Vec<Job>) {
    let fail_all = |group: Vec<Job>, error: StoreError| {
        for job in group {
            let _ = job.reply.send(Err(error.clone()));
        }
    };
    if let Err(error) = inner.set_durability(durability) {
        return fail_all(group, error);
    }
    let mut tx = match inner
        .connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
    {
        Ok(tx) => tx,
        Err(error) => return fail_all(group, unavailable(error)),
    };
    let mut answers = Vec::with_capacity(group.len());
    for Job {
        mut body, reply, ..
    } in group
    {
        answers.push((reply, in_savepoint(&mut tx, &mut body)));
    }
    let committed = tx.commit().map_err(unavailable);
    for (reply, answer) in answers {
        let answer = match (&committed, answer) {
            (Err(error), Ok(())) => Err(error.clone()),
            (_, answer) => answer,
        };
        let _ = reply.send(answer);
    }
}

/// Runs one body in a savepoint of `tx`: released if it commits, rolled back if it aborts,
/// fails or panics (a panic is answered as an error; the writer carries on).
fn in_savepoint(
    tx: &mut rusqlite::Transaction<'_>,
    body: &mut OwnedTxBody,
) -> Result<(), StoreError> {
    let mut savepoint = tx.savepoint().map_err(unavailable)?;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_body(&savepoint, &mut **body)
    }));
    let outcome = outcome.unwrap_or_else(|_| {
        Err(StoreError::Unavailable(
            "the transaction body panicked".into(),
        ))
    });
    match outcome {
        Ok(TxDecision::Commit) => savepoint.commit().map_err(unavailable),
        Ok(TxDecision::Abort) => {
            savepoint.rollback().map_err(unavailable)?;
            savepoint.commit().map_err(unavailable)
        }
        Err(error) => {
            savepoint.rollback().map_err(unavailable)?;
            savepoint.commit().map_err(unavailable)?;
            Err(error)
        }
    }
}

impl Store for SqliteStore {
    fn run_tx(
        &self,
        durability: Durability,
        body: &mut dyn FnMut(&mut dyn Tx) -> TxDecision,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        inner.set_durability(durability)?;
        let tx = inner
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        match run_body(&tx, body) {
            Err(error) => {
                // Dropping the transaction rolls it back; say so explicitly.
                let _ = tx.rollback();
                Err(error)
            }
            Ok(TxDecision::Abort) => tx.rollback().map_err(unavailable),
            Ok(TxDecision::Commit) => tx.commit().map_err(unavailable),
        }
    }

    fn run_tx_owned(&self, durability: Durability, body: OwnedTxBody) -> TxFuture {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let queued = self.jobs.as_ref().is_some_and(|jobs| {
            jobs.send(Job {
                durability,
                body,
                reply,
            })
            .is_ok()
        });
        Box::pin(async move {
            if !queued {
                return Err(StoreError::Unavailable("the store is closed".into()));
            }
            answer.await.unwrap_or_else(|_| {
                Err(StoreError::Unavailable(
                    "the store's writer thread stopped".into(),
                ))
            })
        })
    }

    fn read_all(&self) -> Result<Tables, StoreError> {
        let inner = self.lock()?;
        let connection = &inner.connection;
        let mut tables = Tables::default();
        let select = |sql: String| connection.prepare(&sql).map_err(unavailable);
        let mut statement = select(format!("SELECT {IDEM_COLUMNS} FROM idempotency"))?;
        for row in statement.query_map([], idem_row).map_err(unavailable)? {
            let record = idem_record(row.map_err(unavailable)?)?;
            tables.idempotency.insert(record.scope.clone(), record);
        }
        let mut statement = select(format!("SELECT {ORDER_COLUMNS} FROM orders"))?;
        for row in statement.query_map([], order_row).map_err(unavailable)? {
            let record = order_record(row.map_err(unavailable)?)?;
            tables.orders.insert(record.order.id.clone(), record);
        }
        let mut statement = select(format!("SELECT {SHIPMENT_COLUMNS} FROM shipments"))?;
        for row in statement.query_map([], shipment_row).map_err(unavailable)? {
            let record = shipment_record(row.map_err(unavailable)?)?;
            tables.shipments.insert(record.shipment.id.clone(), record);
        }
        let mut statement =
            select("SELECT event_id, received_at_ms, effect FROM processed_events".to_string())?;
        for row in statement
            .query_map([], processed_row)
            .map_err(unavailable)?
        {
            let (event_id, event) = processed_event(row.map_err(unavailable)?)?;
            tables.processed_events.insert(event_id, event);
        }
        let mut statement = select(format!("SELECT {OUTBOX_COLUMNS} FROM outbox"))?;
        for row in statement.query_map([], outbox_row).map_err(unavailable)? {
            let record = outbox_record(row.map_err(unavailable)?)?;
            tables.outbox.insert(record.seq, record);
        }
        Ok(tables)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Address, OrderItem, OrderStatus, ServiceLevel, ShipmentStatus};
    use crate::store::transact;

    fn temp_db(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("shipsim-sqlite-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("store.db")
    }

    fn order(id: &str) -> OrderRecord {
        OrderRecord {
            order: Order {
                id: id.into(),
                reference: "PO-1".into(),
                status: OrderStatus::Fulfilling,
                items: vec![OrderItem {
                    sku: "SKU-1".into(),
                    quantity: 2,
                }],
                ship_to: Address {
                    name: "n".into(),
                    line1: "l".into(),
                    city: "c".into(),
                    postal_code: "12345".into(),
                    country: "DE".into(),
                },
                shipment_ids: vec!["shp_1".into()],
                created_at_ms: 1_767_225_600_000,
            },
            caller: "merchant-0".into(),
            idempotency_key: "order-0-0".into(),
        }
    }

    fn shipment(id: &str, label: Option<&str>) -> ShipmentRecord {
        ShipmentRecord {
            shipment: Shipment {
                id: id.into(),
                order_id: "ord_1".into(),
                status: ShipmentStatus::LabelPurchased,
                service_level: ServiceLevel::Express,
                weight_grams: 1_200,
                label_id: label.map(str::to_string),
                tracking_number: label.map(|_| "1Z123".to_string()),
                created_at_ms: 7,
            },
            caller: "merchant-0".into(),
            idempotency_key: "ship-0-1".into(),
            webhook_sequence: 3,
        }
    }

    fn idem(key: &str, state: IdemState) -> IdempotencyRecord {
        IdempotencyRecord {
            scope: IdemScope {
                caller: "merchant-0".into(),
                key: key.into(),
            },
            fingerprint: "fp".into(),
            created_at_ms: 9,
            state,
        }
    }

    #[test]
    fn rows_round_trip_and_survive_reopening() {
        // Proves every record shape is stored and read back unchanged, inside the writing
        // transaction and after the file is closed and opened again, and that each open
        // counts one more boot.
        let path = temp_db("round-trip");
        let records = (
            order("ord_1"),
            shipment("shp_1", Some("lbl_1")),
            shipment("shp_2", None),
            idem(
                "a",
                IdemState::InProgress {
                    lock: Some(Lock {
                        boot: 3,
                        acquired_at_ms: 11,
                    }),
                    recovery: RecoveryPoint::ShipmentCreated {
                        shipment_id: "shp_2".into(),
                    },
                },
            ),
            idem(
                "b",
                IdemState::InProgress {
                    lock: None,
                    recovery: RecoveryPoint::ShipmentCreated {
                        shipment_id: "shp_2".into(),
                    },
                },
            ),
            idem(
                "c",
                IdemState::Completed {
                    response: StoredResponse {
                        status: 201,
                        body: "{\"id\":\"shp_1\"}".into(),
                    },
                },
            ),
        );
        {
            let (store, boot) = SqliteStore::open(&path).unwrap();
            assert_eq!(boot, 0);
            transact(&store, Durability::Sync, |tx| {
                tx.put_order(records.0.clone());
                tx.put_shipment(records.1.clone());
                tx.put_shipment(records.2.clone());
                for record in [&records.3, &records.4, &records.5] {
                    tx.put_idempotency(record.clone());
                }
                assert_eq!(tx.order("ord_1"), Some(records.0.clone()), "read own write");
                Ok::<_, StoreError>(())
            })
            .unwrap();
        }
        let (store, boot) = SqliteStore::open(&path).unwrap();
        assert_eq!(boot, 1, "the second open is the second boot");
        let tables = store.read_all().unwrap();
        assert_eq!(tables.orders["ord_1"], records.0);
        assert_eq!(tables.shipments["shp_1"], records.1);
        assert_eq!(tables.shipments["shp_2"], records.2);
        for record in [&records.3, &records.4, &records.5] {
            assert_eq!(&tables.idempotency[&record.scope], record);
        }
    }

    #[test]
    fn the_retention_sweep_deletes_what_the_memory_store_deletes() {
        // Proves `sweep_idempotency` on SQLite deletes exactly the records the simulation's
        // store deletes: completed ones created before the cutoff, oldest first, at most
        // `limit` per call, never one in progress; and the deletion is durable.
        let path = temp_db("sweep");
        let (sqlite, _) = SqliteStore::open(&path).unwrap();
        let memory = crate::store::MemoryStore::new();
        let records: Vec<IdempotencyRecord> = (0..6_u64)
            .map(|i| IdempotencyRecord {
                created_at_ms: i * 10,
                ..idem(
                    &format!("k{i}"),
                    if i == 1 {
                        IdemState::InProgress {
                            lock: None,
                            recovery: RecoveryPoint::ShipmentCreated {
                                shipment_id: "shp_1".into(),
                            },
                        }
                    } else {
                        IdemState::Completed {
                            response: StoredResponse {
                                status: 201,
                                body: "{}".into(),
                            },
                        }
                    },
                )
            })
            .collect();
        let keys = |store: &dyn Store| -> Vec<String> {
            store
                .read_all()
                .unwrap()
                .idempotency
                .keys()
                .map(|s| s.key.clone())
                .collect()
        };
        for store in [&sqlite as &dyn Store, &memory] {
            transact(store, Durability::Sync, |tx| {
                for record in &records {
                    tx.put_idempotency(record.clone());
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
            let sweep = |before: u64, limit: usize| {
                transact(store, Durability::Sync, |tx| {
                    Ok::<_, StoreError>(tx.sweep_idempotency(before, limit))
                })
                .unwrap()
            };
            assert_eq!(sweep(35, 2), 2, "limit");
            assert_eq!(keys(store), ["k1", "k3", "k4", "k5"], "oldest first");
            assert_eq!(sweep(35, 10), 1);
            assert_eq!(keys(store), ["k1", "k4", "k5"], "in progress kept");
            assert_eq!(sweep(40, 10), 0, "created at 40 is not before 40");
        }
        drop(sqlite);
        let (reopened, _) = SqliteStore::open(&path).unwrap();
        assert_eq!(
            keys(&reopened),
            ["k1", "k4", "k5"],
            "the deletion is durable"
        );
    }

    #[test]
    fn a_version_2_file_is_migrated() {
        // Proves a database written by an earlier schema version opens: the migrations add
        // what versions 3 and 4 have (the sweep's index, the shipments' webhook sequence),
        // record the new version, and the rows are kept.
        let path = temp_db("migrate");
        {
            let (store, _) = SqliteStore::open(&path).unwrap();
            transact(&store, Durability::Sync, |tx| {
                tx.put_order(order("ord_1"));
                tx.put_shipment(shipment("shp_1", Some("lbl_1")));
                Ok::<_, StoreError>(())
            })
            .unwrap();
        }
        {
            let connection = Connection::open(&path).unwrap();
            // Version 2 had neither the sweep's index nor the shipments' webhook sequence.
            connection
                .execute_batch(
                    "DROP INDEX idempotency_by_age; \
                     CREATE TABLE shipments_v2 AS SELECT id, order_id, caller, idempotency_key, \
                     status, service_level, weight_grams, label_id, tracking_number, \
                     created_at_ms FROM shipments; \
                     DROP TABLE shipments; ALTER TABLE shipments_v2 RENAME TO shipments; \
                     PRAGMA user_version = 2;",
                )
                .unwrap();
        }
        let (store, _) = SqliteStore::open(&path).unwrap();
        let tables = store.read_all().unwrap();
        assert!(tables.orders.contains_key("ord_1"));
        assert_eq!(
            tables.shipments["shp_1"].webhook_sequence, 0,
            "shipments of a version 2 file have announced nothing yet"
        );
        drop(store);
        let connection = Connection::open(&path).unwrap();
        let version: i64 = connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let indexes: i64 = connection
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'idempotency_by_age'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 1);
    }

    /// Runs `body` through the writer thread and waits for its answer.
    fn owned(
        store: &SqliteStore,
        body: impl FnMut(&mut dyn Tx) -> Result<(), StoreError> + Send + 'static,
    ) -> TxFuture {
        let mut body = body;
        store.run_tx_owned(
            Durability::Sync,
            Box::new(move |tx| match body(tx) {
                Ok(()) => TxDecision::Commit,
                Err(_) => TxDecision::Abort,
            }),
        )
    }

    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn async_transactions_run_on_the_writer_thread_and_commit_in_groups() {
        // Proves what async callers get: their bodies never run on the calling thread (an
        // async worker would otherwise sit in the fsync), transactions queued while the
        // writer is busy share one group, yet each commits or aborts alone and sees the
        // writes of those before it, a panicking body is answered with an error without
        // stopping the writer, and everything committed is on disk after a reopen.
        let path = temp_db("writer");
        let (store, _) = SqliteStore::open(&path).unwrap();
        let caller = std::thread::current().id();
        // Hold the connection so the writer waits with the first job while the rest queue.
        let held = store.inner.lock().unwrap();
        let mut answers = Vec::new();
        let threads = Arc::new(Mutex::new(Vec::new()));
        for i in 0..10 {
            let threads = threads.clone();
            answers.push(owned(&store, move |tx| {
                threads.lock().unwrap().push(std::thread::current().id());
                if i > 0 {
                    // Sees what the body before it wrote, in the same group.
                    assert!(tx.order(&format!("ord_{}", i - 1)).is_some() || i == 4);
                }
                tx.put_order(order(&format!("ord_{i}")));
                if i == 3 {
                    return Err(StoreError::Unavailable("this one aborts".into()));
                }
                Ok(())
            }));
        }
        answers.push(owned(&store, |_| panic!("a bug in a transaction body")));
        answers.push(owned(&store, |tx| {
            tx.put_order(order("ord_after_panic"));
            Ok(())
        }));
        drop(held);
        let results: Vec<Result<(), StoreError>> =
            block_on(async { futures_join_all(answers).await });
        assert!(results[..10].iter().all(Result::is_ok), "{results:?}");
        assert!(
            results[10].is_err(),
            "the panicking body is answered with an error"
        );
        assert!(results[11].is_ok(), "the writer carries on");
        let threads = threads.lock().unwrap();
        assert_eq!(threads.len(), 10);
        assert!(
            threads.iter().all(|t| *t != caller),
            "bodies run on the writer thread"
        );
        drop(store);
        let (reopened, _) = SqliteStore::open(&path).unwrap();
        let orders = reopened.read_all().unwrap().orders;
        let mut ids: Vec<&str> = orders.keys().map(String::as_str).collect();
        ids.sort_unstable();
        assert_eq!(
            ids,
            [
                "ord_0",
                "ord_1",
                "ord_2",
                "ord_4",
                "ord_5",
                "ord_6",
                "ord_7",
                "ord_8",
                "ord_9",
                "ord_after_panic"
            ],
            "the aborted body's write is gone, every other one is durable"
        );
    }

    /// Awaits every future in order (no extra dependency for one test).
    async fn futures_join_all<T>(futures: Vec<impl std::future::Future<Output = T>>) -> Vec<T> {
        let mut out = Vec::new();
        for future in futures {
            out.push(future.await);
        }
        out
    }

    #[test]
    fn aborted_transaction_applies_nothing() {
        // Proves atomicity on disk: a body that writes and then errs leaves no row.
        let path = temp_db("abort");
        let (store, _) = SqliteStore::open(&path).unwrap();
        let result: Result<(), StoreError> = transact(&store, Durability::Sync, |tx| {
            tx.put_order(order("ord_1"));
            Err(StoreError::Unavailable("boom".into()))
        });
        assert!(result.is_err());
        assert!(store.read_all().unwrap().orders.is_empty());
    }

    #[test]
    fn a_second_process_cannot_open_a_held_database() {
        // Proves the exclusive lock: while one store holds the file, a second open fails
        // (so two processes can never run with separate boot numbers on one database), and
        // once the holder is gone the file opens again.
        let path = temp_db("exclusive");
        let (held, _) = SqliteStore::open(&path).unwrap();
        let second = SqliteStore::open(&path);
        assert!(
            second.is_err(),
            "second open must fail while the first holds the file"
        );
        drop(held);
        assert!(SqliteStore::open(&path).is_ok());
    }

    fn outbox_record(seq: u64, delivery: Delivery) -> OutboxRecord {
        OutboxRecord {
            seq,
            caller: "merchant-0".into(),
            event: crate::api::WebhookEvent {
                event_id: format!("evt_{seq}"),
                event_type: "shipment.shipped".into(),
                created_at_ms: 1_767_225_600_000 + seq,
                order_id: "ord_1".into(),
                shipment_id: Some("shp_1".into()),
                status: Some(ShipmentStatus::InTransit),
                sequence: seq,
            },
            cause: seq.is_multiple_of(2).then(|| format!("trk_{seq}")),
            delivery,
        }
    }

    fn pending(attempts: u32, next_attempt_at_ms: u64) -> Delivery {
        Delivery::Pending {
            attempts,
            next_attempt_at_ms,
        }
    }

    /// One record in each delivery state, and one pending record per due time.
    fn outbox_fixture() -> Vec<OutboxRecord> {
        vec![
            outbox_record(1, pending(0, 0)),
            outbox_record(
                2,
                Delivery::Delivered {
                    attempts: 3,
                    delivered_at_ms: 40,
                },
            ),
            outbox_record(3, pending(2, 150)),
            outbox_record(
                4,
                Delivery::DeadLetter {
                    attempts: 10,
                    last_error: "status 500".into(),
                },
            ),
            outbox_record(5, pending(1, 90)),
            outbox_record(6, pending(0, 100)),
        ]
    }

    #[test]
    fn outbox_and_processed_events_round_trip_and_survive_reopening() {
        // Proves every `Delivery` state, an event with and without a cause and a processed
        // event with and without an effect are stored and read back unchanged, by the Tx
        // reads and by `read_all`, before and after the file is closed and opened again.
        let path = temp_db("outbox-round-trip");
        let records = outbox_fixture();
        let processed = [
            (
                "trk_1",
                ProcessedEvent {
                    received_at_ms: 7,
                    effect: Some(3),
                },
            ),
            (
                "trk_2",
                ProcessedEvent {
                    received_at_ms: 8,
                    effect: None,
                },
            ),
        ];
        let check = |store: &SqliteStore| {
            transact(store, Durability::Sync, |tx| {
                for record in &records {
                    assert_eq!(tx.outbox(record.seq).as_ref(), Some(record));
                }
                for (id, event) in &processed {
                    assert_eq!(tx.processed_event(id).as_ref(), Some(event));
                }
                assert_eq!(tx.processed_event("trk_unknown"), None);
                assert_eq!(tx.outbox(99), None);
                assert_eq!(tx.next_outbox_seq(), 7);
                assert_eq!(tx.outbox_counts(), (4, 1, 1));
                Ok::<_, StoreError>(())
            })
            .unwrap();
            let tables = store.read_all().unwrap();
            let stored: Vec<OutboxRecord> = tables.outbox.values().cloned().collect();
            assert_eq!(stored, records);
            assert_eq!(tables.processed_events.len(), 2);
            assert_eq!(tables.processed_events["trk_1"], processed[0].1);
        };
        {
            let (store, _) = SqliteStore::open(&path).unwrap();
            transact(&store, Durability::Sync, |tx| {
                assert_eq!(tx.next_outbox_seq(), 1, "an empty outbox starts at 1");
                for record in &records {
                    tx.put_outbox(record.clone());
                }
                for (id, event) in &processed {
                    tx.put_processed_event(id, event.clone());
                }
                assert_eq!(
                    tx.next_outbox_seq(),
                    7,
                    "the transaction sees its own writes"
                );
                Ok::<_, StoreError>(())
            })
            .unwrap();
            check(&store);
        }
        let (store, _) = SqliteStore::open(&path).unwrap();
        check(&store);
    }

    /// A SQLite store at `path` and a memory store, each holding `outbox_fixture()` and
    /// then whatever `more` puts, so a test can ask both the same question.
    fn both_stores_with(
        path: &Path,
        more: impl Fn(&mut dyn Tx),
    ) -> (SqliteStore, crate::store::MemoryStore) {
        let (sqlite, _) = SqliteStore::open(path).unwrap();
        let memory = crate::store::MemoryStore::new();
        for store in [&sqlite as &dyn Store, &memory] {
            transact(store, Durability::Sync, |tx| {
                for record in outbox_fixture() {
                    tx.put_outbox(record);
                }
                more(tx);
                Ok::<_, StoreError>(())
            })
            .unwrap();
        }
        (sqlite, memory)
    }

    #[test]
    fn outbox_queries_match_the_memory_store() {
        // Proves the SQLite outbox answers `outbox_due` (ordered by seq, skipping in-flight
        // seqs, only pending events whose next attempt is due, at most `limit`),
        // `outbox_dead` and `outbox_counts` exactly as the simulation's `MemoryStore` does,
        // for the same rows and a spread of times, limits and skip sets.
        let (sqlite, memory) = both_stores_with(&temp_db("outbox-queries"), |_| {});
        let read = |store: &dyn Store, now_ms: u64, limit: usize, skip: &BTreeSet<u64>| {
            transact(store, Durability::Sync, |tx| {
                let due: Vec<u64> = tx
                    .outbox_due(now_ms, limit, skip)
                    .iter()
                    .map(|r| r.seq)
                    .collect();
                let dead: Vec<u64> = tx.outbox_dead().iter().map(|r| r.seq).collect();
                Ok::<_, StoreError>((due, dead, tx.outbox_counts()))
            })
            .unwrap()
        };
        let skips = [BTreeSet::new(), BTreeSet::from([1]), BTreeSet::from([1, 5])];
        for now_ms in [0, 89, 90, 100, 149, 150, 1_000] {
            for limit in [0, 1, 2, 10] {
                for skip in &skips {
                    assert_eq!(
                        read(&sqlite, now_ms, limit, skip),
                        read(&memory, now_ms, limit, skip),
                        "now {now_ms} ms, limit {limit}, skip {skip:?}"
                    );
                }
            }
        }
        assert_eq!(
            read(&sqlite, 150, 10, &BTreeSet::from([1])).0,
            vec![3, 5, 6],
            "due events in seq order, in-flight 1 skipped"
        );
    }

    #[test]
    fn the_events_feed_reads_what_the_memory_store_reads() {
        // Proves `outbox_after` (the events feed's page) answers alike in both stores: one
        // caller's events only, strictly after the cursor, in seq order, at most `limit`,
        // whatever their delivery state (dead letters included).
        let (sqlite, memory) = both_stores_with(&temp_db("outbox-feed"), |tx| {
            for seq in [7, 9] {
                let mut other = outbox_record(seq, pending(0, 0));
                other.caller = "merchant-1".into();
                tx.put_outbox(other);
            }
            tx.put_outbox(outbox_record(8, pending(0, 0)));
        });
        let feed = |store: &dyn Store, caller: &str, after: u64, limit: usize| {
            transact(store, Durability::Sync, |tx| {
                Ok::<_, StoreError>(
                    tx.outbox_after(caller, after, limit)
                        .iter()
                        .map(|r| r.seq)
                        .collect::<Vec<u64>>(),
                )
            })
            .unwrap()
        };
        for caller in ["merchant-0", "merchant-1", "merchant-9"] {
            for after in [0, 1, 3, 4, 7, 8, 9, 1_000] {
                for limit in [0, 1, 2, 10] {
                    assert_eq!(
                        feed(&sqlite, caller, after, limit),
                        feed(&memory, caller, after, limit),
                        "{caller} after {after}, limit {limit}"
                    );
                }
            }
        }
        assert_eq!(feed(&sqlite, "merchant-0", 3, 3), vec![4, 5, 6]);
        assert_eq!(feed(&sqlite, "merchant-0", 6, 10), vec![8]);
        assert_eq!(feed(&sqlite, "merchant-1", 0, 10), vec![7, 9]);
    }

    #[test]
    fn a_crash_keeps_outbox_and_processed_events_with_their_state_change() {
        // Proves the outbox event and the processed-event record share the fate of the state
        // change they belong to: a transaction that dies before its commit (its body panics,
        // and the process's store is dropped, as in a crash) leaves none of the three after
        // a reopen, and a committed one keeps all three.
        let path = temp_db("outbox-crash");
        let write = |tx: &mut dyn Tx, shipment_id: &str, event_id: &str| {
            tx.put_shipment(shipment(shipment_id, Some("lbl_1")));
            tx.put_processed_event(
                event_id,
                ProcessedEvent {
                    received_at_ms: 5,
                    effect: Some(tx.next_outbox_seq()),
                },
            );
            let seq = tx.next_outbox_seq();
            tx.put_outbox(outbox_record(seq, pending(0, 0)));
        };
        {
            let (store, _) = SqliteStore::open(&path).unwrap();
            transact(&store, Durability::Sync, |tx| {
                write(tx, "shp_kept", "trk_kept");
                Ok::<_, StoreError>(())
            })
            .unwrap();
            let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _: Result<(), StoreError> = transact(&store, Durability::Sync, |tx| {
                    write(tx, "shp_lost", "trk_lost");
                    panic!("the process dies before COMMIT");
                });
            }));
            assert!(crashed.is_err());
            // The store is dropped here, its lock poisoned: the process is gone.
        }
        let (store, _) = SqliteStore::open(&path).unwrap();
        let tables = store.read_all().unwrap();
        assert!(tables.shipments.contains_key("shp_kept"));
        assert!(tables.processed_events.contains_key("trk_kept"));
        assert_eq!(tables.outbox.keys().copied().collect::<Vec<_>>(), vec![1]);
        assert!(
            !tables.shipments.contains_key("shp_lost"),
            "uncommitted change"
        );
        assert!(
            !tables.processed_events.contains_key("trk_lost"),
            "a dedupe record without its effect"
        );
        assert_eq!(tables.outbox.len(), 1, "an outbox event without its change");
    }
}
