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
use tables::{Idempotency, Orders, Outbox, ProcessedEvents, Shipments};
use tx::run_body;

use super::{Durability, OwnedTxBody, Store, StoreError, Tables, Tx, TxDecision, TxFuture};

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
