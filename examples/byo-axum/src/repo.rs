//! The repository: where the service keeps its rows, behind a trait of its own.
//!
//! The trait is a small unit-of-work interface rather than a list of domain queries: the
//! service's decisions (claim a key, replay, refuse) are plain functions in
//! [`crate::idempotency`], and a backend only has to run them atomically. That keeps each
//! backend a page long and free of business logic:
//!
//! - [`MemoryRepository`] (this module): a mutex over ordered maps, for the binary's demo
//!   mode. It keeps nothing across a restart.
//! - A test harness implements the trait over its own durable store (shipsim's `Kv`, in
//!   this crate's tests), with its crash semantics: the same handlers then run against a
//!   store that loses what was not committed durably.
//!
//! A backend over a SQL database implements `with_key` as `SELECT ... FOR UPDATE` on the
//! key's row, the writes, and `COMMIT`, in one transaction.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use crate::model::{Customer, KeyRecord, Payment};

/// One row to insert or replace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// A customer, by its id.
    Customer(Customer),
    /// A payment, by its id.
    Payment(Payment),
    /// An idempotency record, by its scope.
    Key(KeyRecord),
}

/// The store failed (it is down, full, or holds something unreadable).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("storage: {0}")]
pub struct RepoError(pub String);

/// Where the service's rows live. Every method is one transaction.
pub trait Repository: Send + Sync + 'static {
    /// Reads the idempotency record stored under `scope`, hands it to `decide`, and writes
    /// what `decide` returns, all in one transaction: no other transaction sees the record
    /// between the read and the writes. Returns what `decide` returned.
    ///
    /// # Errors
    /// A [`RepoError`]; nothing was written.
    fn with_key<T, F>(
        &self,
        scope: &str,
        decide: F,
    ) -> impl Future<Output = Result<T, RepoError>> + Send
    where
        T: Send + 'static,
        F: FnOnce(Option<KeyRecord>) -> (Vec<Write>, T) + Send + 'static;

    /// The idempotency record stored under `scope`.
    ///
    /// # Errors
    /// A [`RepoError`].
    fn key(&self, scope: &str)
    -> impl Future<Output = Result<Option<KeyRecord>, RepoError>> + Send;

    /// Writes `writes`, all or nothing.
    ///
    /// # Errors
    /// A [`RepoError`]; nothing was written.
    fn write(&self, writes: Vec<Write>) -> impl Future<Output = Result<(), RepoError>> + Send;

    /// The customer `id`.
    ///
    /// # Errors
    /// A [`RepoError`].
    fn customer(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Customer>, RepoError>> + Send;

    /// The payment `id`.
    ///
    /// # Errors
    /// A [`RepoError`].
    fn payment(&self, id: &str) -> impl Future<Output = Result<Option<Payment>, RepoError>> + Send;
}

#[derive(Debug, Default)]
struct Tables {
    customers: BTreeMap<String, Customer>,
    payments: BTreeMap<String, Payment>,
    keys: BTreeMap<String, KeyRecord>,
}

impl Tables {
    fn apply(&mut self, writes: Vec<Write>) {
        for write in writes {
            match write {
                Write::Customer(c) => {
                    self.customers.insert(c.id.clone(), c);
                }
                Write::Payment(p) => {
                    self.payments.insert(p.id.clone(), p);
                }
                Write::Key(k) => {
                    self.keys.insert(k.scope.clone(), k);
                }
            }
        }
    }
}

/// Rows in process memory: for the binary's demo mode (and unit tests). Lost on restart.
#[derive(Clone, Debug, Default)]
pub struct MemoryRepository {
    tables: Arc<Mutex<Tables>>,
}

impl MemoryRepository {
    /// An empty repository.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // Writes are applied after `decide` returns and cannot fail half-way: a poisoned
        // lock still guards whole tables.
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Repository for MemoryRepository {
    async fn with_key<T, F>(&self, scope: &str, decide: F) -> Result<T, RepoError>
    where
        T: Send + 'static,
        F: FnOnce(Option<KeyRecord>) -> (Vec<Write>, T) + Send + 'static,
    {
        let mut tables = self.lock();
        let (writes, decided) = decide(tables.keys.get(scope).cloned());
        tables.apply(writes);
        Ok(decided)
    }

    async fn key(&self, scope: &str) -> Result<Option<KeyRecord>, RepoError> {
        Ok(self.lock().keys.get(scope).cloned())
    }

    async fn write(&self, writes: Vec<Write>) -> Result<(), RepoError> {
        self.lock().apply(writes);
        Ok(())
    }

    async fn customer(&self, id: &str) -> Result<Option<Customer>, RepoError> {
        Ok(self.lock().customers.get(id).cloned())
    }

    async fn payment(&self, id: &str) -> Result<Option<Payment>, RepoError> {
        Ok(self.lock().payments.get(id).cloned())
    }
}
