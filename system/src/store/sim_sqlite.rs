//! A real SQLite database in memory that outlives its host's crashes, so a user's service
//! that speaks SQL runs its real queries in the simulation.
//!
//! The simulation opens one [`SimSqlite`] per host and run, hands a clone to every boot, and
//! tells it about the host's life: [`SimSqlite::crash`] when it kills the host,
//! [`SimSqlite::boot`] when it starts it again. What survives is what a real database
//! promises: a committed transaction survives a crash; a transaction still open when its task
//! is dropped (the host crashed, or the request was cancelled) is rolled back.
//!
//! Handlers take the connection with [`SimSqlite::lock`], an async lock that yields a
//! [`SqlConn`] they may hold across an `.await` (it is `Send`). Dropping a `SqlConn` whose
//! connection is inside a transaction rolls the transaction back, as a connection pool does
//! when a connection comes back mid-transaction: this is how a crash, which drops every task
//! of the host, loses exactly the uncommitted work. [`SimSqlite::transact`] runs a synchronous
//! body in a transaction and commits it if the body returns `Ok`.
//!
//! # Determinism
//!
//! SQLite is deterministic given the same statements, except where it reads the operating
//! system. The database is in memory (no journal or WAL files; `temp_store = MEMORY`), and
//! the functions that would read the OS are replaced:
//!
//! - `random()` and `randomblob(N)` draw from a ChaCha stream derived from the database's
//!   seed and the boot number, so a restarted host does not repeat the random ids of the last
//!   boot.
//! - `'now'` in `date`, `time`, `datetime`, `julianday`, `unixepoch`, `strftime` and
//!   `timediff`, those functions called with no time value, and the `CURRENT_TIMESTAMP`,
//!   `CURRENT_DATE` and `CURRENT_TIME` keywords read the host's [`Clock`], to the millisecond.
//!   Other arguments are passed to SQLite's own functions unchanged.
//!
//! Left as SQLite has them: the `'localtime'` and `'utc'` modifiers read the process's time
//! zone (the same on one machine, not across machines: use UTC); and the replaced date
//! functions are marked deterministic, so unlike SQLite's own they are accepted with `'now'`
//! in an index expression or a CHECK constraint. The database is capped at
//! [`SQL_BYTES_MAX`]; past it a write fails with `SQLITE_FULL` rather than exhausting memory.
//!
//! # Putting a repository behind it
//!
//! A service keeps its repository trait; its SQL implementation holds a `SimSqlite` in the
//! simulation where it would hold a pool in production:
//!
//! ```
//! use std::sync::Arc;
//!
//! use rusqlite::OptionalExtension;
//! use shipsim_system::clock::FixedClock;
//! use shipsim_system::seed::Seed;
//! use shipsim_system::store::{SimSqlite, SimSqliteError};
//!
//! /// The service's own repository trait.
//! trait Payments {
//!     /// Records a payment under `key` unless the key was used; returns the stored id.
//!     fn insert_once(&self, key: &str, id: &str) -> impl Future<Output = Result<String, SimSqliteError>> + Send;
//! }
//!
//! #[derive(Clone)]
//! struct SqlPayments(SimSqlite);
//!
//! impl SqlPayments {
//!     async fn migrate(&self) -> Result<(), SimSqliteError> {
//!         let conn = self.0.lock().await;
//!         conn.execute_batch(
//!             "CREATE TABLE IF NOT EXISTS payments (
//!                  key TEXT PRIMARY KEY, id TEXT NOT NULL, created_at TEXT DEFAULT CURRENT_TIMESTAMP)",
//!         )?;
//!         Ok(())
//!     }
//! }
//!
//! impl Payments for SqlPayments {
//!     async fn insert_once(&self, key: &str, id: &str) -> Result<String, SimSqliteError> {
//!         self.0
//!             .transact(|tx| {
//!                 let stored: Option<String> = tx
//!                     .query_row("SELECT id FROM payments WHERE key = ?1", [key], |row| row.get(0))
//!                     .optional()?;
//!                 if let Some(stored) = stored {
//!                     return Ok(stored);
//!                 }
//!                 tx.execute("INSERT INTO payments (key, id) VALUES (?1, ?2)", [key, id])?;
//!                 Ok(id.to_string())
//!             })
//!             .await
//!     }
//! }
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! runtime.block_on(async {
//!     // The simulation opens the database once and keeps it across the host's boots.
//!     let db = SimSqlite::open(Seed(7), Arc::new(FixedClock(1_700_000_000_000)))?;
//!     let payments = SqlPayments(db.clone());
//!     payments.migrate().await?;
//!     assert_eq!(payments.insert_once("k", "pay_1").await?, "pay_1");
//!     db.crash()?;
//!     db.boot(Arc::new(FixedClock(1_700_000_060_000)));
//!     assert_eq!(payments.insert_once("k", "pay_2").await?, "pay_1", "committed before the crash");
//!     Ok::<(), SimSqliteError>(())
//! })?;
//! # Ok::<(), SimSqliteError>(())
//! ```

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, params_from_iter};
use tokio::sync::OwnedMutexGuard;

use crate::clock::Clock;
use crate::seed::Seed;

/// Largest database, in bytes (256 MiB: 65,536 pages of 4 KiB).
pub const SQL_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// SQLite's page size, which `max_page_count` counts in.
const PAGE_BYTES: u64 = 4096;
/// Largest blob `randomblob(N)` makes (1 MiB).
const RANDOM_BLOB_BYTES_MAX: i64 = 1024 * 1024;
/// The Julian day number of the Unix epoch.
const JULIAN_DAY_UNIX_EPOCH: f64 = 2_440_587.5;
const MS_PER_DAY: f64 = 86_400_000.0;

/// The date functions whose first argument is the time value (`'now'` when absent).
const TIME_FIRST: [&str; 5] = ["date", "time", "datetime", "julianday", "unixepoch"];
/// The keywords SQLite compiles to calls of these zero-argument functions, and the function
/// each stands for.
const CURRENT: [(&str, &str); 3] = [
    ("current_date", "date"),
    ("current_time", "time"),
    ("current_timestamp", "datetime"),
];

/// Why the database could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimSqliteError {
    /// SQLite refused (a bad statement, a constraint, a full database).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The connection is held by a task (a sync read, or a crash, found it locked). At a
    /// crash this means a task of the dead host is still alive: a harness bug.
    #[error("the database connection is held by a task")]
    Busy,
}

/// What the replaced functions read, swapped at every boot.
struct Seams {
    clock: Arc<dyn Clock>,
    rng: ChaCha8Rng,
    boot: u64,
}

struct Inner {
    connection: Arc<tokio::sync::Mutex<Connection>>,
    seams: Arc<Mutex<Seams>>,
    seed: Seed,
}

/// The database. Cheap to clone: clones share it. See the [module docs](crate::store::sim_sqlite).
#[derive(Clone)]
pub struct SimSqlite {
    inner: Arc<Inner>,
}

impl fmt::Debug for SimSqlite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimSqlite")
            .field("seed", &self.inner.seed)
            .field("boot", &self.boot_number())
            .finish_non_exhaustive()
    }
}

fn lock_seams(seams: &Mutex<Seams>) -> MutexGuard<'_, Seams> {
    // The seams are replaced whole or drawn from; a panic cannot leave them half-changed.
    seams.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SimSqlite {
    /// An empty database for a host's first boot (boot 0), reading time from `clock`.
    ///
    /// # Errors
    /// [`SimSqliteError::Sqlite`] when SQLite cannot open or configure the database.
    pub fn open(seed: Seed, clock: Arc<dyn Clock>) -> Result<Self, SimSqliteError> {
        let connection = Connection::open_in_memory()?;
        connection.execute_batch(&format!(
            "PRAGMA temp_store = MEMORY; PRAGMA page_size = {PAGE_BYTES}; \
             PRAGMA max_page_count = {};",
            SQL_BYTES_MAX / PAGE_BYTES
        ))?;
        let seams = Arc::new(Mutex::new(Seams {
            clock,
            rng: boot_rng(seed, 0),
            boot: 0,
        }));
        install_functions(&connection, &seams)?;
        Ok(SimSqlite {
            inner: Arc::new(Inner {
                connection: Arc::new(tokio::sync::Mutex::new(connection)),
                seams,
                seed,
            }),
        })
    }

    /// The connection, once no other task holds it (first come, first served).
    pub async fn lock(&self) -> SqlConn {
        SqlConn::new(self.inner.connection.clone().lock_owned().await)
    }

    /// The connection, if no task holds it now: for reads outside a host (an oracle after
    /// the run).
    ///
    /// # Errors
    /// [`SimSqliteError::Busy`] when a task holds it.
    pub fn try_lock(&self) -> Result<SqlConn, SimSqliteError> {
        let guard = self
            .inner
            .connection
            .clone()
            .try_lock_owned()
            .map_err(|_| SimSqliteError::Busy)?;
        Ok(SqlConn::new(guard))
    }

    /// Runs `body` in a transaction: commits if it returns `Ok`, rolls back if it returns
    /// `Err` (or if the task is dropped while waiting for the connection).
    ///
    /// # Errors
    /// The body's error, or SQLite's (converted into `E`) when the transaction cannot begin
    /// or commit; then nothing was applied.
    pub async fn transact<R, E>(
        &self,
        body: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<R, E>,
    ) -> Result<R, E>
    where
        E: From<rusqlite::Error>,
    {
        let mut conn = self.lock().await;
        let tx = conn.transaction()?;
        let result = body(&tx)?;
        tx.commit()?;
        Ok(result)
    }

    /// What a crash does to the database: a transaction left open is rolled back (normally
    /// there is none, since dropping the host's tasks rolled theirs back). Returns whether
    /// one was.
    ///
    /// # Errors
    /// [`SimSqliteError::Busy`] when a task still holds the connection (the host's tasks
    /// were not all dropped); [`SimSqliteError::Sqlite`] when the rollback fails.
    pub fn crash(&self) -> Result<bool, SimSqliteError> {
        let conn = self.try_lock()?;
        if conn.is_autocommit() {
            return Ok(false);
        }
        conn.execute_batch("ROLLBACK")?;
        Ok(true)
    }

    /// Starts the host's next boot: `random()` draws from a fresh stream for the new boot
    /// number, and the time functions read `clock`. Returns the new boot number.
    pub fn boot(&self, clock: Arc<dyn Clock>) -> u64 {
        let mut seams = lock_seams(&self.inner.seams);
        seams.boot += 1;
        seams.rng = boot_rng(self.inner.seed, seams.boot);
        seams.clock = clock;
        seams.boot
    }

    /// The current boot number (0 until the first [`SimSqlite::boot`]).
    #[must_use]
    pub fn boot_number(&self) -> u64 {
        lock_seams(&self.inner.seams).boot
    }
}

fn boot_rng(seed: Seed, boot: u64) -> ChaCha8Rng {
    seed.derive_index("boot", boot)
        .derive("sqlite-random")
        .rng()
}

/// The database connection, held by one task. Dereferences to [`rusqlite::Connection`].
/// Dropped inside a transaction, it rolls the transaction back.
pub struct SqlConn {
    /// Always `Some` until dropped (tests take it out to skip the rollback).
    guard: Option<OwnedMutexGuard<Connection>>,
}

impl SqlConn {
    fn new(guard: OwnedMutexGuard<Connection>) -> Self {
        SqlConn { guard: Some(guard) }
    }

    fn connection(&self) -> &Connection {
        self.guard
            .as_ref()
            .expect("a SqlConn holds its guard until dropped")
    }

    /// Releases the lock without the rollback a drop does, as a guard whose rollback
    /// failed would: only to test the crash backstop.
    #[cfg(test)]
    fn release_without_rollback(mut self) {
        drop(self.guard.take());
    }
}

impl fmt::Debug for SqlConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlConn")
            .field("in_transaction", &!self.connection().is_autocommit())
            .finish()
    }
}

impl Deref for SqlConn {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.connection()
    }
}

impl DerefMut for SqlConn {
    fn deref_mut(&mut self) -> &mut Connection {
        self.guard
            .as_mut()
            .expect("a SqlConn holds its guard until dropped")
    }
}

impl Drop for SqlConn {
    fn drop(&mut self) {
        if let Some(guard) = &self.guard
            && !guard.is_autocommit()
        {
            // If even the rollback fails, the transaction stays open and the next crash
            // (or a COMMIT by the next holder) meets it; `crash` rolls it back and says so.
            let _ = guard.execute_batch("ROLLBACK");
        }
    }
}

/// Replaces the functions that would read the OS clock or randomness.
fn install_functions(connection: &Connection, seams: &Arc<Mutex<Seams>>) -> rusqlite::Result<()> {
    let random_flags = FunctionFlags::SQLITE_UTF8;
    let rng = seams.clone();
    connection.create_scalar_function("random", 0, random_flags, move |_| {
        Ok(lock_seams(&rng).rng.random::<i64>())
    })?;
    let rng = seams.clone();
    connection.create_scalar_function("randomblob", 1, random_flags, move |ctx| {
        // SQLite's own randomblob reads its argument as an integer, whatever its type.
        let asked = match ctx.get_raw(0) {
            ValueRef::Integer(n) => n,
            #[allow(clippy::cast_possible_truncation)]
            ValueRef::Real(x) => x as i64,
            ValueRef::Text(text) => std::str::from_utf8(text)
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0),
            ValueRef::Null | ValueRef::Blob(_) => 0,
        };
        if asked > RANDOM_BLOB_BYTES_MAX {
            return Err(rusqlite::Error::UserFunctionError(
                format!("randomblob({asked}) is larger than {RANDOM_BLOB_BYTES_MAX} bytes").into(),
            ));
        }
        let mut blob = vec![0_u8; usize::try_from(asked.max(1)).unwrap_or(1)];
        lock_seams(&rng).rng.fill_bytes(&mut blob);
        Ok(blob)
    })?;
    // SQLite's own date functions, on a private connection of their own, to delegate to
    // once `'now'` is replaced by the clock's time.
    let builtin = Arc::new(Mutex::new(Connection::open_in_memory()?));
    let time_flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    let dated: Vec<(&'static str, &'static str)> = TIME_FIRST
        .iter()
        .map(|name| (*name, *name))
        .chain([("strftime", "strftime"), ("timediff", "timediff")])
        .collect();
    for (name, target) in dated {
        let (builtin, seams) = (builtin.clone(), seams.clone());
        connection.create_scalar_function(name, -1, time_flags, move |ctx| {
            let args = now_replaced(target, ctx, &seams)?;
            delegate(&builtin, target, &args)
        })?;
    }
    for (name, target) in CURRENT {
        let (builtin, seams) = (builtin.clone(), seams.clone());
        connection.create_scalar_function(name, 0, time_flags, move |ctx| {
            let args = now_replaced(target, ctx, &seams)?;
            delegate(&builtin, target, &args)
        })?;
    }
    Ok(())
}

/// The arguments of a call to date function `name`, with every `'now'` time value (and an
/// absent one) replaced by the clock's time as a Julian day number, which SQLite's own
/// functions read to the millisecond.
fn now_replaced(
    name: &str,
    ctx: &Context<'_>,
    seams: &Mutex<Seams>,
) -> rusqlite::Result<Vec<Value>> {
    let now_ms = lock_seams(seams).clock.now_ms();
    #[allow(clippy::cast_precision_loss)]
    let now = Value::Real(JULIAN_DAY_UNIX_EPOCH + now_ms as f64 / MS_PER_DAY);
    let mut args: Vec<Value> = (0..ctx.len())
        .map(|i| ctx.get::<Value>(i))
        .collect::<rusqlite::Result<_>>()?;
    let time_args = match name {
        "strftime" => 1..2,
        "timediff" => 0..2,
        _ => 0..1,
    };
    for index in time_args.clone() {
        if let Some(Value::Text(text)) = args.get(index)
            && text.eq_ignore_ascii_case("now")
        {
            args[index] = now.clone();
        }
    }
    // `datetime()` and `strftime('%s')` mean now; `timediff` needs both of its arguments.
    if args.len() == time_args.start && name != "timediff" {
        args.push(now);
    }
    Ok(args)
}

/// Calls SQLite's own function `name` with `args`.
fn delegate(builtin: &Mutex<Connection>, name: &str, args: &[Value]) -> rusqlite::Result<Value> {
    let connection = builtin.lock().unwrap_or_else(PoisonError::into_inner);
    let placeholders = (1..=args.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut statement = connection.prepare_cached(&format!("SELECT {name}({placeholders})"))?;
    statement.query_row(params_from_iter(args), |row| row.get::<_, Value>(0))
}

#[cfg(test)]
mod tests {
    use rusqlite::OptionalExtension;

    use super::*;
    use crate::clock::FixedClock;

    const NOW_MS: u64 = 1_700_000_123_456;

    fn open() -> SimSqlite {
        let db = SimSqlite::open(Seed(3), Arc::new(FixedClock(NOW_MS))).unwrap();
        db.try_lock()
            .unwrap()
            .execute_batch("CREATE TABLE t (name TEXT PRIMARY KEY)")
            .unwrap();
        db
    }

    fn names(db: &SimSqlite) -> Vec<String> {
        let conn = db.try_lock().unwrap();
        let mut statement = conn.prepare("SELECT name FROM t ORDER BY name").unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn one<T: rusqlite::types::FromSql>(db: &SimSqlite, sql: &str) -> T {
        db.try_lock()
            .unwrap()
            .query_row(sql, [], |row| row.get(0))
            .unwrap()
    }

    /// Spawns a task that commits `committed`, then opens a transaction inserting
    /// `uncommitted` and waits forever holding it; returns once the insert is made.
    async fn hold_open_transaction(
        db: &SimSqlite,
        committed: &'static str,
        uncommitted: &'static str,
    ) -> tokio::task::JoinHandle<()> {
        let (inserted, wait) = tokio::sync::oneshot::channel();
        let db = db.clone();
        let task = tokio::spawn(async move {
            db.transact(|tx| {
                tx.execute("INSERT INTO t VALUES (?1)", [committed])
                    .map(|_| ())
            })
            .await
            .unwrap();
            let conn = db.lock().await;
            conn.execute_batch("BEGIN").unwrap();
            conn.execute("INSERT INTO t VALUES (?1)", [uncommitted])
                .unwrap();
            inserted.send(()).unwrap();
            // Held across an await, as a handler calling a downstream mid-transaction.
            std::future::pending::<()>().await;
            drop(conn);
        });
        wait.await.unwrap();
        task
    }

    #[tokio::test]
    async fn a_dropped_task_loses_its_open_transaction_and_keeps_its_commits() {
        // Proves the crash model on a cancelled task: after a task commits one row and dies
        // holding a transaction with another, the committed row is there and the other is
        // not, the crash finds nothing left to roll back, and the database works on.
        let db = open();
        let task = hold_open_transaction(&db, "committed", "uncommitted").await;
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert!(!db.crash().unwrap(), "the dropped guard rolled back");
        db.boot(Arc::new(FixedClock(NOW_MS)));
        assert_eq!(names(&db), vec!["committed"]);
        db.transact(|tx| tx.execute("INSERT INTO t VALUES ('after')", []).map(|_| ()))
            .await
            .unwrap();
        assert_eq!(names(&db), vec!["after", "committed"]);
    }

    #[test]
    fn a_dropped_runtime_loses_its_open_transaction_and_keeps_its_commits() {
        // Proves the crash model as the simulation crashes a host, by dropping its whole
        // runtime with the task parked mid-transaction: committed survives, uncommitted
        // does not.
        let db = open();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let _task = hold_open_transaction(&db, "committed", "uncommitted").await;
        });
        assert!(
            db.try_lock().is_err(),
            "the parked task holds the connection"
        );
        drop(runtime);
        assert!(!db.crash().unwrap(), "the dropped runtime rolled back");
        assert_eq!(names(&db), vec!["committed"]);
    }

    #[test]
    fn a_crash_rolls_back_what_no_guard_did_and_reports_a_held_connection() {
        // Proves `crash` is the backstop: a connection still held at a crash is reported
        // as Busy rather than waited for, and a transaction left open by a guard whose
        // rollback never ran is rolled back by the crash, which says so.
        let db = open();
        let held = db.try_lock().unwrap();
        assert!(matches!(db.crash(), Err(SimSqliteError::Busy)));
        held.execute_batch("BEGIN; INSERT INTO t VALUES ('lost');")
            .unwrap();
        held.release_without_rollback();
        assert!(db.crash().unwrap(), "an open transaction was rolled back");
        assert!(names(&db).is_empty());
        assert!(!db.crash().unwrap(), "nothing left to roll back");
    }

    #[tokio::test]
    async fn transact_commits_on_ok_and_rolls_back_on_err() {
        // Proves the helper is atomic: a body returning Err leaves none of its writes, a
        // body returning Ok commits them all.
        let db = open();
        let failed: Result<(), SimSqliteError> = db
            .transact(|tx| {
                tx.execute("INSERT INTO t VALUES ('a')", [])?;
                tx.execute("INSERT INTO t VALUES ('a')", [])?;
                Ok(())
            })
            .await;
        assert!(
            matches!(failed, Err(SimSqliteError::Sqlite(_))),
            "{failed:?}"
        );
        assert!(names(&db).is_empty());
        db.transact(|tx| {
            tx.execute("INSERT INTO t VALUES ('a')", [])?;
            tx.execute("INSERT INTO t VALUES ('b')", []).map(|_| ())
        })
        .await
        .map_err(SimSqliteError::from)
        .unwrap();
        assert_eq!(names(&db), vec!["a", "b"]);
    }

    #[test]
    fn time_functions_read_the_clock() {
        // Proves every way SQL reads "now" reads the injected clock instead of the OS, to
        // the millisecond, and that times given explicitly still go to SQLite's own
        // functions unchanged.
        let db = open();
        let expected = "2023-11-14 22:15:23";
        assert_eq!(one::<String>(&db, "SELECT datetime('now')"), expected);
        assert_eq!(one::<String>(&db, "SELECT datetime()"), expected);
        assert_eq!(one::<String>(&db, "SELECT CURRENT_TIMESTAMP"), expected);
        assert_eq!(one::<String>(&db, "SELECT current_date"), "2023-11-14");
        assert_eq!(one::<String>(&db, "SELECT CURRENT_TIME"), "22:15:23");
        assert_eq!(one::<String>(&db, "SELECT time('NOW')"), "22:15:23");
        assert_eq!(
            one::<String>(&db, "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"),
            "2023-11-14 22:15:23.456"
        );
        assert_eq!(one::<String>(&db, "SELECT strftime('%s')"), "1700000123");
        assert_eq!(one::<i64>(&db, "SELECT unixepoch()"), 1_700_000_123);
        assert_eq!(
            one::<String>(&db, "SELECT date('now', '+1 day')"),
            "2023-11-15"
        );
        assert_eq!(
            one::<String>(&db, "SELECT datetime(0, 'unixepoch')"),
            "1970-01-01 00:00:00"
        );
        assert_eq!(
            one::<String>(&db, "SELECT timediff('now', '2023-11-14 22:15:22.456')"),
            "+0000-00-00 00:00:01.000"
        );
        let conn = db.try_lock().unwrap();
        conn.execute_batch(
            "CREATE TABLE stamped (id INTEGER PRIMARY KEY, at TEXT DEFAULT CURRENT_TIMESTAMP);
             INSERT INTO stamped (id) VALUES (1);",
        )
        .unwrap();
        let at: String = conn
            .query_row("SELECT at FROM stamped", [], |row| row.get(0))
            .unwrap();
        assert_eq!(at, expected, "column defaults read the clock too");
        drop(conn);
        db.boot(Arc::new(FixedClock(0)));
        assert_eq!(
            one::<String>(&db, "SELECT datetime('now')"),
            "1970-01-01 00:00:00",
            "each boot's clock"
        );
    }

    #[test]
    fn random_is_seeded_and_fresh_per_boot() {
        // Proves random() and randomblob() are a pure function of the seed and boot: two
        // databases with one seed draw the same, another seed or the next boot draws
        // differently, and randomblob is bounded.
        let draw = |db: &SimSqlite| -> (i64, Vec<u8>) {
            (one(db, "SELECT random()"), one(db, "SELECT randomblob(16)"))
        };
        let a = open();
        let b = open();
        let first = draw(&a);
        assert_eq!(first, draw(&b));
        assert_eq!(first.1.len(), 16);
        let other = SimSqlite::open(Seed(4), Arc::new(FixedClock(0))).unwrap();
        assert_ne!(first, draw(&other));
        assert_eq!(a.boot(Arc::new(FixedClock(0))), 1);
        let after_boot = draw(&a);
        assert_ne!(after_boot, draw(&open()), "boot 1 is not boot 0 again");
        assert_eq!(one::<Vec<u8>>(&a, "SELECT randomblob(0)").len(), 1);
        assert_eq!(one::<Vec<u8>>(&a, "SELECT randomblob('8')").len(), 8);
        assert_eq!(one::<Vec<u8>>(&a, "SELECT randomblob(NULL)").len(), 1);
        let huge = a
            .try_lock()
            .unwrap()
            .query_row("SELECT randomblob(1073741824)", [], |row| {
                row.get::<_, Vec<u8>>(0)
            })
            .optional();
        assert!(huge.is_err(), "randomblob is bounded");
    }

    #[test]
    fn the_connection_can_be_held_across_an_await_in_a_handler() {
        // Proves at compile time that a handler future holding the connection across an
        // await is Send, as axum requires.
        fn assert_send<T: Send>(_: &T) {}
        let db = open();
        let handler = async move {
            let conn = db.lock().await;
            tokio::task::yield_now().await;
            conn.execute_batch("SELECT 1").unwrap();
        };
        assert_send(&handler);
        assert_send(&open());
    }
}
