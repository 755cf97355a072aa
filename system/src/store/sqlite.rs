//! A SQLite store for live mode: the same [`Store`] contract as the simulation's
//! [`super::MemoryStore`], on a real database file that survives `kill -9`.
//!
//! Durability. The journal is a write-ahead log (`journal_mode = WAL`) and a [`Durability::Sync`]
//! commit runs with `synchronous = FULL`: SQLite fsyncs the log before `COMMIT` returns, so
//! an acknowledged write survives a process kill *and* a power loss. `NORMAL` with WAL would
//! also survive `kill -9` (the committed frames are in the OS page cache) but may roll the
//! last commits back on power loss; that is the "acknowledged before durable" mistake the
//! store exists to rule out, so `NORMAL` is used only for [`Durability::Lazy`] commits, which
//! only a planted bug asks for. An fsync per commit costs a fraction of a millisecond on an
//! SSD, well inside the service's latency.
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

use std::cell::RefCell;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    Durability, IdemScope, IdemState, IdempotencyRecord, Lock, OrderRecord, RecoveryPoint,
    ShipmentRecord, Store, StoreError, StoredResponse, Tables, Tx, TxDecision,
};
use crate::api::{Order, Shipment};

/// Version of the schema below, kept in `PRAGMA user_version`. A file written by another
/// version is refused rather than misread.
const SCHEMA_VERSION: i64 = 1;

/// How long a transaction waits for the database lock before failing, ms. Only another
/// process can hold it (in-process transactions are serialised by a mutex first), and that
/// is refused at open, without waiting; the wait covers a checkpoint in progress.
const BUSY_TIMEOUT_MS: u64 = 5_000;

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
    created_at_ms   INTEGER NOT NULL
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
);

const SHIPMENT_COLUMNS: &str = "id, order_id, caller, idempotency_key, status, service_level, \
     weight_grams, label_id, tracking_number, created_at_ms";

fn shipment_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ShipmentRow> {
    ShipmentRow::try_from(row)
}

fn shipment_record(row: ShipmentRow) -> Result<ShipmentRecord, StoreError> {
    let (id, order_id, caller, key, status, level, grams, label_id, tracking, created) = row;
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
    })
}

/// One transaction: reads and writes go straight to SQLite. The [`Tx`] trait cannot fail,
/// so the first error is kept and turns the commit into a rollback and an `Err`.
struct SqliteTx<'a> {
    tx: &'a rusqlite::Transaction<'a>,
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
        if let Err(error) = self.tx.execute(sql, values) {
            self.fail(unavailable(error));
        }
    }
}

impl Tx for SqliteTx<'_> {
    fn idempotency(&self, scope: &IdemScope) -> Option<IdempotencyRecord> {
        self.read(|| {
            let sql =
                format!("SELECT {IDEM_COLUMNS} FROM idempotency WHERE caller = ?1 AND key = ?2");
            let row = self
                .tx
                .query_row(&sql, params![scope.caller, scope.key], idem_row)
                .optional()
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

    fn order(&self, order_id: &str) -> Option<OrderRecord> {
        self.read(|| {
            let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?1");
            let row = self
                .tx
                .query_row(&sql, params![order_id], order_row)
                .optional()
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
                .tx
                .query_row(&sql, params![shipment_id], shipment_row)
                .optional()
                .map_err(unavailable)?;
            row.map(shipment_record).transpose()
        })
    }

    fn put_shipment(&mut self, record: ShipmentRecord) {
        let shipment = &record.shipment;
        let sql = format!(
            "INSERT OR REPLACE INTO shipments ({SHIPMENT_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
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
            ],
        );
    }
}

struct Inner {
    connection: Connection,
    /// The `synchronous` setting in force, so it is only changed when it must be.
    synchronous: Durability,
}

/// The service's store on a SQLite file. See the module docs for its guarantees.
pub struct SqliteStore {
    inner: Mutex<Inner>,
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
    /// unknown schema version).
    pub fn open(path: &Path) -> Result<(SqliteStore, u64), StoreError> {
        let (connection, boot) = open_database(path)?;
        let store = SqliteStore {
            inner: Mutex::new(Inner {
                connection,
                synchronous: Durability::Sync,
            }),
        };
        Ok((store, boot))
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Unavailable("store lock poisoned".into()))
    }
}

impl Store for SqliteStore {
    fn run_tx(
        &self,
        durability: Durability,
        body: &mut dyn FnMut(&mut dyn Tx) -> TxDecision,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if inner.synchronous != durability {
            let setting = match durability {
                Durability::Sync => "FULL",
                Durability::Lazy => "NORMAL",
            };
            inner
                .connection
                .pragma_update(None, "synchronous", setting)
                .map_err(unavailable)?;
            inner.synchronous = durability;
        }
        let tx = inner
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        let (decision, error) = {
            let mut sql_tx = SqliteTx {
                tx: &tx,
                error: RefCell::new(None),
            };
            let decision = body(&mut sql_tx);
            (decision, sql_tx.error.into_inner())
        };
        match (decision, error) {
            (_, Some(error)) => {
                // Dropping the transaction rolls it back; say so explicitly.
                let _ = tx.rollback();
                Err(error)
            }
            (TxDecision::Abort, None) => tx.rollback().map_err(unavailable),
            (TxDecision::Commit, None) => tx.commit().map_err(unavailable),
        }
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
}
