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
//! keeps its label sales and tracking log in tables of this schema too, in its own file
//! (its tables and rows: `carrier/journal.rs`).
//!
//! In the simulation. [`SqliteStore::on_sim`] puts the same tables, transactions and rows on
//! a [`SimSqlite`]: an in-memory database that the simulation keeps outside the service's
//! host, so it outlives the host's crashes exactly as a file outlives `kill -9`. There is no
//! writer thread there: every transaction runs at once on the caller's thread, as
//! [`super::MemoryStore`]'s do, so nothing depends on how threads are scheduled and a
//! simulated crash (which drops the host's tasks, and with them the store) finds no
//! transaction open: what committed survives, nothing else was ever written. Both
//! durabilities are the same there: a process crash keeps what SQLite committed (WAL with
//! `synchronous = NORMAL` does too); only a power loss, which the simulation does not
//! model, tells them apart.
//!
//! Files: `schema.rs` (tables, migrations, opening a file), `tables.rs` (one `Table` impl per
//! service table: name, columns, key, row <-> record), `tx.rs` (the `Tx` of one transaction,
//! every read and write through `Table`), `columns.rs` (conversions every table shares), and
//! here the store and its writer thread.

pub(crate) mod columns;
mod schema;
mod tables;
#[cfg(test)]
mod testing;
mod tx;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, TransactionBehavior};

use columns::unavailable;
pub(crate) use schema::open_database;
use schema::prepare;
use tables::{Idempotency, Orders, Outbox, ProcessedEvents, Shipments};
use tx::run_body;

use super::{
    Durability, OwnedTxBody, SimSqlite, Store, StoreError, Tables, Tx, TxDecision, TxFuture,
};

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
///
/// In the simulation ([`SqliteStore::on_sim`]) the same tables live in a [`SimSqlite`] and
/// every transaction runs at once on the caller's thread (see the module docs).
pub struct SqliteStore {
    backend: Backend,
}

/// Where the database is and who runs its transactions.
enum Backend {
    /// A file of the store's own, written by its writer thread (live mode).
    File {
        inner: Arc<Mutex<Inner>>,
        jobs: Option<std::sync::mpsc::Sender<Job>>,
        writer: Option<std::thread::JoinHandle<()>>,
    },
    /// The simulation's in-memory database, kept across crashes by the simulation; every
    /// transaction runs at once on the caller's thread.
    Sim(SimSqlite),
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
            backend: Backend::File {
                inner,
                jobs: Some(jobs),
                writer: Some(writer),
            },
        };
        Ok((store, boot))
    }

    /// The store on the simulation's in-memory database `db` (the same instance at every
    /// boot of the host): creates the tables on a fresh database and counts one more boot,
    /// as opening a file does. Returns the store and how many boots came before this one.
    ///
    /// # Errors
    /// [`StoreError`] when a task holds the database's connection, or SQLite refuses the
    /// schema (a database of an unknown schema version).
    pub fn on_sim(db: &SimSqlite) -> Result<(SqliteStore, u64), StoreError> {
        let boot = prepare(&mut *sim_connection(db)?, "the simulated database")?;
        let store = SqliteStore {
            backend: Backend::Sim(db.clone()),
        };
        Ok((store, boot))
    }

    /// Every table of the simulation's database `db`, read outside the host (the oracles'
    /// view after a run), with no boot counted.
    ///
    /// # Errors
    /// [`StoreError`] when a task holds the connection or a row cannot be read.
    pub fn sim_tables(db: &SimSqlite) -> Result<Tables, StoreError> {
        read_tables(&*sim_connection(db)?)
    }
}

/// `db`'s connection, which no task holds between transactions (they never await).
fn sim_connection(db: &SimSqlite) -> Result<crate::store::SqlConn, StoreError> {
    db.try_lock()
        .map_err(|e| StoreError::Unavailable(format!("the simulated database: {e}")))
}

fn lock(inner: &Mutex<Inner>) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
    inner
        .lock()
        .map_err(|_| StoreError::Unavailable("store lock poisoned".into()))
}

impl Drop for SqliteStore {
    /// Stops the writer thread once it has answered every queued transaction, so the file
    /// (and its exclusive lock) is released when the store is gone.
    fn drop(&mut self) {
        if let Backend::File { jobs, writer, .. } = &mut self.backend {
            drop(jobs.take());
            if let Some(writer) = writer.take() {
                let _ = writer.join();
            }
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
        let batch = take_queued(first, queue);
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

/// `first` and whatever else is queued now, up to [`GROUP_JOBS_MAX`] jobs in all, in
/// arrival order (the rest wait for the next group).
fn take_queued(first: Job, queue: &std::sync::mpsc::Receiver<Job>) -> Vec<Job> {
    let mut batch = vec![first];
    while batch.len() < GROUP_JOBS_MAX {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    batch
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
        match &self.backend {
            Backend::File { inner, .. } => {
                let mut inner = lock(inner)?;
                inner.set_durability(durability)?;
                run_immediate(&mut inner.connection, body)
            }
            // In memory, `synchronous` changes nothing (see the module docs).
            Backend::Sim(db) => run_immediate(&mut *sim_connection(db)?, body),
        }
    }

    fn run_tx_owned(&self, durability: Durability, mut body: OwnedTxBody) -> TxFuture {
        let jobs = match &self.backend {
            Backend::File { jobs, .. } => jobs,
            Backend::Sim(_) => {
                // At once, on the caller's thread: the simulation's hosts run one at a time.
                let outcome = self.run_tx(durability, &mut *body);
                return Box::pin(std::future::ready(outcome));
            }
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let queued = jobs.as_ref().is_some_and(|jobs| {
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
        match &self.backend {
            Backend::File { inner, .. } => read_tables(&lock(inner)?.connection),
            Backend::Sim(db) => read_tables(&*sim_connection(db)?),
        }
    }
}

/// One `BEGIN IMMEDIATE` transaction of `body` on `connection`: committed if the body says
/// so, rolled back if it aborts or fails.
fn run_immediate(
    connection: &mut Connection,
    body: &mut dyn FnMut(&mut dyn Tx) -> TxDecision,
) -> Result<(), StoreError> {
    let tx = connection
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

/// Every table of the database on `connection`.
fn read_tables(connection: &Connection) -> Result<Tables, StoreError> {
    Ok(Tables {
        idempotency: tables::whole::<Idempotency>(connection)?
            .into_iter()
            .map(|record| (record.scope.clone(), record))
            .collect(),
        orders: tables::whole::<Orders>(connection)?
            .into_iter()
            .map(|record| (record.order.id.clone(), record))
            .collect(),
        shipments: tables::whole::<Shipments>(connection)?
            .into_iter()
            .map(|record| (record.shipment.id.clone(), record))
            .collect(),
        processed_events: tables::whole::<ProcessedEvents>(connection)?
            .into_iter()
            .collect(),
        outbox: tables::whole::<Outbox>(connection)?
            .into_iter()
            .map(|record| (record.seq, record))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::testing::{order, temp_db};
    use super::*;
    use crate::store::transact;

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
        let db = temp_db();
        let path = db.path();
        let (store, _) = SqliteStore::open(&path).unwrap();
        let caller = std::thread::current().id();
        // Hold the connection so the writer waits with the first job while the rest queue.
        let Backend::File { inner, .. } = &store.backend else {
            unreachable!("a file store")
        };
        let held = inner.lock().unwrap();
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
    fn a_group_takes_at_most_group_jobs_max_jobs() {
        // Proves the cap on a group: with more jobs queued than a group takes, the writer
        // takes exactly GROUP_JOBS_MAX of them and leaves the rest queued for the next group.
        let (jobs, queue) = std::sync::mpsc::channel();
        let job = |marker: u64| {
            let (reply, _) = tokio::sync::oneshot::channel();
            let body: OwnedTxBody = Box::new(move |tx: &mut dyn Tx| {
                tx.put_order(order(&format!("ord_{marker}")));
                TxDecision::Commit
            });
            Job {
                durability: Durability::Sync,
                body,
                reply,
            }
        };
        let queued = GROUP_JOBS_MAX + 6;
        for i in 1..u64::try_from(queued).unwrap() {
            jobs.send(job(i)).unwrap();
        }
        let batch = take_queued(job(0), &queue);
        assert_eq!(batch.len(), GROUP_JOBS_MAX);
        let left = queue.try_iter().count();
        assert_eq!(
            left,
            queued - GROUP_JOBS_MAX,
            "the rest wait for the next group"
        );
    }

    #[test]
    fn lazy_commits_run_with_synchronous_normal_and_sync_ones_with_full() {
        // Proves the durability of each commit reaches SQLite: a Lazy transaction runs with
        // `synchronous = NORMAL` (1), a Sync one with `FULL` (2), on the caller's path and on
        // the writer thread's.
        let db = temp_db();
        let (store, _) = SqliteStore::open(&db.path()).unwrap();
        let synchronous = |store: &SqliteStore| -> i64 {
            let Backend::File { inner, .. } = &store.backend else {
                unreachable!("a file store")
            };
            let inner = inner.lock().unwrap();
            inner
                .connection
                .query_row("PRAGMA synchronous", [], |row| row.get(0))
                .unwrap()
        };
        assert_eq!(synchronous(&store), 2, "opened with FULL");
        for (durability, expected) in [(Durability::Lazy, 1), (Durability::Sync, 2)] {
            store
                .run_tx(durability, &mut |_: &mut dyn Tx| TxDecision::Commit)
                .unwrap();
            assert_eq!(synchronous(&store), expected, "{durability:?} on run_tx");
        }
        block_on(store.run_tx_owned(Durability::Lazy, Box::new(|_| TxDecision::Commit))).unwrap();
        assert_eq!(synchronous(&store), 1, "Lazy on the writer thread");
    }

    #[test]
    fn on_the_simulated_database_a_crash_keeps_exactly_what_committed() {
        // Proves what the simulation's SQLite runs rely on: transactions run at once on the
        // caller's thread (an owned one is answered before it is polled, by a body that ran
        // here), a committed write survives the store being dropped with its crashed host
        // and the database reopened at the next boot, an aborted one is gone, and the boot
        // counter counts the opens.
        use crate::clock::FixedClock;
        use crate::seed::Seed;
        let db = SimSqlite::open(Seed(3), Arc::new(FixedClock(1_700_000_000_000))).unwrap();
        let (store, boots_before) = SqliteStore::on_sim(&db).unwrap();
        assert_eq!(boots_before, 0);
        let caller = std::thread::current().id();
        let ran_on = Arc::new(Mutex::new(None));
        let answer = store.run_tx_owned(Durability::Sync, {
            let ran_on = ran_on.clone();
            Box::new(move |tx| {
                *ran_on.lock().unwrap() = Some(std::thread::current().id());
                tx.put_order(order("ord_kept"));
                TxDecision::Commit
            })
        });
        assert_eq!(
            *ran_on.lock().unwrap(),
            Some(caller),
            "the body ran at once, on the caller's thread"
        );
        block_on(answer).unwrap();
        let aborted: Result<(), StoreError> = transact(&store, Durability::Lazy, |tx| {
            tx.put_order(order("ord_aborted"));
            Err(StoreError::Unavailable("the body gives up".into()))
        });
        assert!(aborted.is_err());
        drop(store);
        assert!(!db.crash().unwrap(), "no transaction was left open");
        db.boot(Arc::new(FixedClock(1_700_000_060_000)));
        let (store, boots_before) = SqliteStore::on_sim(&db).unwrap();
        assert_eq!(boots_before, 1);
        let orders = store.read_all().unwrap().orders;
        assert_eq!(orders.keys().collect::<Vec<_>>(), ["ord_kept"]);
        assert_eq!(SqliteStore::sim_tables(&db).unwrap().orders, orders);
    }

    #[test]
    fn aborted_transaction_applies_nothing() {
        // Proves atomicity on disk: a body that writes and then errs leaves no row.
        let db = temp_db();
        let path = db.path();
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
        let db = temp_db();
        let path = db.path();
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
