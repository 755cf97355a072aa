//! The file's schema: its tables and their migrations, and opening a file (pragmas, schema,
//! boot counter).

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::columns::{corrupt, unavailable};
use crate::store::StoreError;

/// is brought up to date by [`MIGRATIONS`]; one of a later version is refused rather than
/// misread.
const SCHEMA_VERSION: i64 = 4;

/// The steps from each earlier schema version to the next, in order: `(from, sql)`. A fresh
/// file gets [`SCHEMA`] and the carrier's tables (which are the latest) and no step.
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

/// The service's tables. Every file holds the carrier's tables too
/// (`carrier::journal::TABLES`), and the carrier's file the service's: one schema, one
/// version and one migration list for both (see [`open_database`]).
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
";

/// Opens (creating if needed) the database at `path` with the pragmas described in
/// `store::sqlite`'s module docs, brings its schema up to [`SCHEMA_VERSION`] and counts one more boot of its
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
    let boot = prepare(&mut connection, &path.display().to_string())?;
    connection
        .busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))
        .map_err(unavailable)?;
    Ok((connection, boot))
}

/// Brings the schema of the open database `connection` (called `name` in errors) up to
/// [`SCHEMA_VERSION`] and counts one more boot of its owner: what opening a file does after
/// its pragmas, and all that opening the simulation's in-memory database does (it has no
/// file, so no journal mode, lock or fsync to set). Returns how many boots came before (0
/// on a fresh database).
pub(crate) fn prepare(connection: &mut Connection, name: &str) -> Result<u64, StoreError> {
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(unavailable)?;
    match version {
        0 => {
            for tables in [SCHEMA, crate::carrier::journal::TABLES] {
                connection.execute_batch(tables).map_err(unavailable)?;
            }
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
                name,
                format!("schema version {other}, this shipsim reads {SCHEMA_VERSION}"),
            ));
        }
    }
    let boot = start_boot(connection)?;
    // Every statement the stores run, parsed once (SqliteTx uses `prepare_cached`).
    connection.set_prepared_statement_cache_capacity(STATEMENTS_CACHED_MAX);
    Ok(boot)
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

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::SCHEMA_VERSION;
    use crate::store::sqlite::SqliteStore;
    use crate::store::sqlite::testing::{order, shipment, temp_db};
    use crate::store::{Durability, Store, StoreError, transact};

    #[test]
    fn a_version_2_file_is_migrated() {
        // Proves a database written by an earlier schema version opens: the migrations add
        // what versions 3 and 4 have (the sweep's index, the shipments' webhook sequence),
        // record the new version, and the rows are kept.
        let db = temp_db();
        let path = db.path();
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
}
