//! A transactional, ordered key-value store with honest crash semantics, for a user's own
//! service to keep its records in under the simulation.
//!
//! Like [`super::MemoryStore`], it keeps two views: `live`, what the running process sees,
//! and `durable`, what would survive a crash. A [`Durability::Sync`] transaction reaches both
//! before [`Kv::transact`] returns (and forces every earlier lazy one down first, as an fsync
//! of a log does); a [`Durability::Lazy`] one reaches `live` at once and `durable` only at the
//! next [`Kv::flush`]. [`Kv::crash`] throws `live` away and restarts from `durable`, and says
//! how many unflushed transactions it lost.
//!
//! A transaction is a closure over a [`KvTx`]: it reads its own writes, and its writes are
//! applied all together when it returns `Ok`, or not at all when it returns `Err`.
//! Transactions on one store run one at a time, so a read-decide-write body (claim an
//! idempotency key) is serialisable. Keys are `String`s kept in order (`BTreeMap`), so scans
//! and snapshots are deterministic; values are bytes, with JSON helpers for serde types.
//!
//! The store is a cheap handle (`Arc` inside): the simulation makes one per host, hands a
//! clone to every boot of it, and calls [`Kv::crash`] when it kills the host.
//!
//! # Putting a repository behind it
//!
//! A service that keeps its records behind a trait of its own implements the trait once
//! over `Kv`; its handlers do not change. Every method is one transaction:
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use shipsim_system::store::{Durability, Kv, KvError};
//!
//! #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
//! struct Payment { id: String, key: String, amount_cents: u64 }
//!
//! /// The service's own repository trait.
//! trait Payments {
//!     /// Stores `payment` unless its key was used; returns the payment stored for the key.
//!     fn insert_once(&self, payment: Payment) -> Result<Payment, KvError>;
//!     fn get(&self, id: &str) -> Result<Option<Payment>, KvError>;
//! }
//!
//! struct KvPayments(Kv);
//!
//! impl Payments for KvPayments {
//!     fn insert_once(&self, payment: Payment) -> Result<Payment, KvError> {
//!         self.0.transact(Durability::Sync, |tx| {
//!             let by_key = format!("payment-key/{}", payment.key);
//!             if let Some(id) = tx.get_json::<String>(&by_key)? {
//!                 let stored = tx.get_json(&format!("payment/{id}"))?;
//!                 return stored.ok_or_else(|| KvError::Missing(format!("payment/{id}")));
//!             }
//!             tx.put_json(&format!("payment/{}", payment.id), &payment)?;
//!             tx.put_json(&by_key, &payment.id)?;
//!             Ok(payment)
//!         })
//!     }
//!
//!     fn get(&self, id: &str) -> Result<Option<Payment>, KvError> {
//!         self.0.get_json(&format!("payment/{id}"))
//!     }
//! }
//!
//! let store = Kv::new(); // the simulation keeps this across the host's boots
//! let payments = KvPayments(store.clone());
//! let first = Payment { id: "pay_1".into(), key: "k".into(), amount_cents: 500 };
//! let retry = Payment { id: "pay_2".into(), ..first.clone() };
//! assert_eq!(payments.insert_once(first.clone())?, first);
//! assert_eq!(payments.insert_once(retry)?, first, "the key was used: the first payment");
//! store.crash(); // sync commits survive
//! assert_eq!(payments.get("pay_1")?, Some(first));
//! # Ok::<(), KvError>(())
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{CrashLoss, Durability};

/// Longest key, in bytes (1 KiB).
pub const KV_KEY_BYTES_MAX: usize = 1024;
/// Largest value, in bytes (1 MiB).
pub const KV_VALUE_BYTES_MAX: usize = 1024 * 1024;

/// Why a key-value operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    /// A key longer than [`KV_KEY_BYTES_MAX`].
    #[error("key of {len} bytes is longer than {KV_KEY_BYTES_MAX}")]
    KeyTooLong {
        /// Its length.
        len: usize,
    },
    /// A value larger than [`KV_VALUE_BYTES_MAX`].
    #[error("value of {len} bytes for `{key}` is larger than {KV_VALUE_BYTES_MAX}")]
    ValueTooLarge {
        /// The key it was written under.
        key: String,
        /// Its length.
        len: usize,
    },
    /// A value could not be encoded as JSON.
    #[error("cannot encode the value for `{key}` as JSON: {message}")]
    Encode {
        /// The key it was written under.
        key: String,
        /// serde_json's reason.
        message: String,
    },
    /// A stored value is not the JSON of the type asked for.
    #[error("the value at `{key}` is not the JSON asked for: {message}")]
    Decode {
        /// The key it was read from.
        key: String,
        /// serde_json's reason, with line and column.
        message: String,
    },
    /// A transaction was started inside another on the same store, which would wait for
    /// itself forever.
    #[error("a transaction on this store is already running on this thread")]
    NestedTransaction,
    /// A record the caller's own invariants say must exist does not (for repositories built
    /// on the store to report with).
    #[error("missing record `{0}`")]
    Missing(String),
}

/// The writes of one transaction: a value, or `None` for a delete.
type WriteSet = BTreeMap<String, Option<Vec<u8>>>;

fn apply(writes: WriteSet, view: &mut BTreeMap<String, Vec<u8>>) {
    for (key, value) in writes {
        match value {
            Some(value) => view.insert(key, value),
            None => view.remove(&key),
        };
    }
}

#[derive(Debug, Default)]
struct State {
    live: BTreeMap<String, Vec<u8>>,
    durable: BTreeMap<String, Vec<u8>>,
    /// Lazy transactions not yet flushed, oldest first.
    unflushed: Vec<WriteSet>,
}

/// The store. See the [module docs](crate::store::kv).
#[derive(Clone, Debug, Default)]
pub struct Kv {
    state: Arc<Mutex<State>>,
}

thread_local! {
    /// The stores this thread is inside a transaction of (by address), to refuse a nested
    /// transaction instead of deadlocking on the store's lock.
    static IN_TRANSACTION: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Marks a store as in a transaction on this thread until dropped.
struct TransactionMark(usize);

impl TransactionMark {
    fn enter(store: usize) -> Result<Self, KvError> {
        IN_TRANSACTION.with_borrow_mut(|stores| {
            if stores.contains(&store) {
                return Err(KvError::NestedTransaction);
            }
            stores.push(store);
            Ok(TransactionMark(store))
        })
    }
}

impl Drop for TransactionMark {
    fn drop(&mut self) {
        IN_TRANSACTION.with_borrow_mut(|stores| stores.retain(|s| *s != self.0));
    }
}

impl Kv {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The state. Writes are applied only after a body returns and cannot fail half-way, so
    /// a panic in a body leaves the state whole, and a poisoned lock is taken over.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn address(&self) -> usize {
        Arc::as_ptr(&self.state) as usize
    }

    /// Runs `body` as one transaction: its writes apply together if it returns `Ok`, not at
    /// all if it returns `Err`. With [`Durability::Sync`] they are durable when this returns.
    ///
    /// # Errors
    /// The body's error, or [`KvError::NestedTransaction`] (converted into `E`) when called
    /// from inside a transaction on the same store.
    pub fn transact<R, E>(
        &self,
        durability: Durability,
        body: impl FnOnce(&mut KvTx<'_>) -> Result<R, E>,
    ) -> Result<R, E>
    where
        E: From<KvError>,
    {
        let _mark = TransactionMark::enter(self.address())?;
        let mut state = self.lock();
        let mut tx = KvTx {
            base: &state.live,
            writes: WriteSet::new(),
        };
        let result = body(&mut tx);
        let writes = tx.writes;
        if result.is_err() || writes.is_empty() {
            return result;
        }
        let State {
            live,
            durable,
            unflushed,
        } = &mut *state;
        match durability {
            Durability::Lazy => {
                apply(writes.clone(), live);
                unflushed.push(writes);
            }
            Durability::Sync => {
                for earlier in unflushed.drain(..) {
                    apply(earlier, durable);
                }
                apply(writes.clone(), durable);
                apply(writes, live);
            }
        }
        result
    }

    /// The value at `key`, as the running process sees it.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().live.get(key).cloned()
    }

    /// The value at `key` decoded from JSON.
    ///
    /// # Errors
    /// [`KvError::Decode`] when the value is not the JSON of `T`.
    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, KvError> {
        decode(key, self.lock().live.get(key).map(Vec::as_slice))
    }

    /// Up to `limit` entries whose keys start with `prefix`, after `start_after` if given,
    /// in key order: pages through a prefix.
    #[must_use]
    pub fn scan(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Vec<(String, Vec<u8>)> {
        let state = self.lock();
        KvTx {
            base: &state.live,
            writes: WriteSet::new(),
        }
        .scan(prefix, start_after, limit)
    }

    /// Makes every lazy transaction durable, oldest first.
    pub fn flush(&self) {
        let mut state = self.lock();
        let State {
            durable, unflushed, ..
        } = &mut *state;
        for writes in unflushed.drain(..) {
            apply(writes, durable);
        }
    }

    /// Forgets everything that was not durable, as a process crash would, and says how many
    /// lazy transactions that lost.
    pub fn crash(&self) -> CrashLoss {
        let mut state = self.lock();
        let lost = state.unflushed.len() as u64;
        state.unflushed.clear();
        state.live = state.durable.clone();
        CrashLoss {
            transactions_lost: lost,
        }
    }

    /// How many lazy transactions a crash now would lose.
    #[must_use]
    pub fn unflushed(&self) -> usize {
        self.lock().unflushed.len()
    }

    /// A copy of what the running process sees.
    #[must_use]
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        self.lock().live.clone()
    }

    /// A copy of what would survive a crash now.
    #[must_use]
    pub fn durable_snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        self.lock().durable.clone()
    }
}

/// Reads and writes inside one [`Kv`] transaction. Reads see the transaction's own writes
/// over the store's live view.
#[derive(Debug)]
pub struct KvTx<'a> {
    base: &'a BTreeMap<String, Vec<u8>>,
    writes: WriteSet,
}

impl KvTx<'_> {
    /// The value at `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        match self.writes.get(key) {
            Some(written) => written.as_deref(),
            None => self.base.get(key).map(Vec::as_slice),
        }
    }

    /// Whether `key` holds a value.
    #[must_use]
    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Writes `value` at `key`.
    ///
    /// # Errors
    /// [`KvError::KeyTooLong`] or [`KvError::ValueTooLarge`]; nothing is written.
    pub fn put(&mut self, key: &str, value: impl Into<Vec<u8>>) -> Result<(), KvError> {
        check_key(key)?;
        let value = value.into();
        if value.len() > KV_VALUE_BYTES_MAX {
            return Err(KvError::ValueTooLarge {
                key: key.to_string(),
                len: value.len(),
            });
        }
        self.writes.insert(key.to_string(), Some(value));
        Ok(())
    }

    /// Deletes `key`; returns whether it held a value.
    ///
    /// # Errors
    /// [`KvError::KeyTooLong`]; nothing is deleted.
    pub fn delete(&mut self, key: &str) -> Result<bool, KvError> {
        check_key(key)?;
        let existed = self.contains(key);
        self.writes.insert(key.to_string(), None);
        Ok(existed)
    }

    /// The value at `key` decoded from JSON.
    ///
    /// # Errors
    /// [`KvError::Decode`] when the value is not the JSON of `T`.
    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, KvError> {
        decode(key, self.get(key))
    }

    /// Writes `value` at `key` as JSON.
    ///
    /// # Errors
    /// [`KvError::Encode`], or the errors of [`KvTx::put`].
    pub fn put_json<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), KvError> {
        let bytes = serde_json::to_vec(value).map_err(|error| KvError::Encode {
            key: key.to_string(),
            message: error.to_string(),
        })?;
        self.put(key, bytes)
    }

    /// Up to `limit` entries whose keys start with `prefix`, after `start_after` if given,
    /// in key order, this transaction's writes included.
    #[must_use]
    pub fn scan(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Vec<(String, Vec<u8>)> {
        let lower = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let range = (lower, Bound::Unbounded);
        let mut stored = self
            .base
            .range::<str, _>(range)
            .take_while(|(key, _)| key.starts_with(prefix))
            .peekable();
        let mut written = self
            .writes
            .range::<str, _>(range)
            .take_while(|(key, _)| key.starts_with(prefix))
            .peekable();
        // A merge of two ordered streams; a write shadows the stored value of its key.
        let mut entries = Vec::new();
        while entries.len() < limit {
            let take_written = match (stored.peek(), written.peek()) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((s, _)), Some((w, _))) => w <= s,
            };
            if take_written {
                let (key, value) = written.next().expect("peeked");
                if stored.peek().is_some_and(|(s, _)| *s == key) {
                    stored.next();
                }
                if let Some(value) = value {
                    entries.push((key.clone(), value.clone()));
                }
            } else {
                let (key, value) = stored.next().expect("peeked");
                entries.push((key.clone(), value.clone()));
            }
        }
        entries
    }
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.len() > KV_KEY_BYTES_MAX {
        return Err(KvError::KeyTooLong { len: key.len() });
    }
    Ok(())
}

fn decode<T: DeserializeOwned>(key: &str, bytes: Option<&[u8]>) -> Result<Option<T>, KvError> {
    bytes
        .map(|bytes| {
            serde_json::from_slice(bytes).map_err(|error| KvError::Decode {
                key: key.to_string(),
                message: error.to_string(),
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(store: &Kv, durability: Durability, key: &str, value: &str) {
        store.transact(durability, |tx| tx.put(key, value)).unwrap();
    }

    fn text(store: &Kv, key: &str) -> Option<String> {
        store.get(key).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn crash_keeps_sync_and_flushed_commits_and_loses_the_rest() {
        // Proves the durability model: a sync commit survives a crash, a lazy one is seen
        // live at once but survives only if flushed, and the crash counts what it lost.
        let store = Kv::new();
        put(&store, Durability::Sync, "a", "1");
        put(&store, Durability::Lazy, "b", "2");
        assert_eq!(text(&store, "b").as_deref(), Some("2"), "lazy is live");
        assert!(!store.durable_snapshot().contains_key("b"));
        assert_eq!(store.unflushed(), 1);
        assert_eq!(store.crash().transactions_lost, 1);
        assert_eq!(text(&store, "a").as_deref(), Some("1"));
        assert_eq!(text(&store, "b"), None, "unflushed lazy commit lost");
        put(&store, Durability::Lazy, "c", "3");
        store.flush();
        assert_eq!(store.crash().transactions_lost, 0);
        assert_eq!(text(&store, "c").as_deref(), Some("3"), "flushed survives");
    }

    #[test]
    fn a_sync_commit_makes_earlier_lazy_ones_durable_in_order() {
        // Proves durability follows commit order: a sync commit forces earlier lazy commits
        // down first, so a later lazy delete of a key is not undone by an older lazy put.
        let store = Kv::new();
        put(&store, Durability::Lazy, "k", "old");
        store
            .transact(Durability::Lazy, |tx| tx.delete("k").map(|_| ()))
            .unwrap();
        put(&store, Durability::Sync, "s", "1");
        store.crash();
        assert_eq!(text(&store, "k"), None);
        assert_eq!(text(&store, "s").as_deref(), Some("1"));
    }

    #[test]
    fn a_failed_body_applies_nothing() {
        // Proves atomicity: writes made before the body returns Err leave no trace, live or
        // durable.
        let store = Kv::new();
        put(&store, Durability::Sync, "a", "1");
        let result: Result<(), KvError> = store.transact(Durability::Sync, |tx| {
            tx.put("a", "2")?;
            tx.put("b", "3")?;
            Err(KvError::Missing("boom".into()))
        });
        assert!(result.is_err());
        assert_eq!(text(&store, "a").as_deref(), Some("1"));
        assert_eq!(text(&store, "b"), None);
        assert_eq!(store.durable_snapshot(), store.snapshot());
    }

    #[test]
    fn a_transaction_reads_its_own_writes_and_deletes() {
        // Proves reads inside a transaction see its writes over the live view, deletes
        // included, and that delete reports whether the key held a value.
        let store = Kv::new();
        put(&store, Durability::Sync, "a", "1");
        store
            .transact(Durability::Sync, |tx| {
                assert_eq!(tx.get("a"), Some(&b"1"[..]));
                tx.put("a", "2")?;
                assert_eq!(tx.get("a"), Some(&b"2"[..]));
                assert!(tx.delete("a")?);
                assert!(!tx.contains("a"));
                assert!(!tx.delete("never")?);
                Ok::<_, KvError>(())
            })
            .unwrap();
        assert_eq!(text(&store, "a"), None);
    }

    #[test]
    fn scans_merge_writes_in_key_order_and_page() {
        // Proves a prefix scan sees stored and written entries merged in key order, a
        // written delete hiding a stored key, other prefixes excluded, and that `limit` and
        // `start_after` page through the result.
        let store = Kv::new();
        for key in ["o/1", "o/3", "o/5", "p/1", "o"] {
            put(&store, Durability::Sync, key, key);
        }
        store
            .transact(Durability::Sync, |tx| {
                tx.put("o/2", "new")?;
                tx.put("o/3", "changed")?;
                tx.delete("o/5")?;
                let keys: Vec<(String, Vec<u8>)> = tx.scan("o/", None, 10);
                let keys: Vec<(&str, &[u8])> = keys
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_slice()))
                    .collect();
                assert_eq!(
                    keys,
                    vec![("o/1", &b"o/1"[..]), ("o/2", b"new"), ("o/3", b"changed")]
                );
                Ok::<_, KvError>(())
            })
            .unwrap();
        let page = |after, limit| -> Vec<String> {
            store
                .scan("o/", after, limit)
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        assert_eq!(page(None, 2), vec!["o/1", "o/2"]);
        assert_eq!(page(Some("o/2"), 2), vec!["o/3"]);
        assert_eq!(
            page(Some("a"), 1),
            vec!["o/1"],
            "a cursor before the prefix"
        );
        assert!(page(None, 0).is_empty());
    }

    #[test]
    fn json_helpers_round_trip_and_name_the_key_on_bad_data() {
        // Proves typed values round-trip through JSON, and that reading bytes that are not
        // the asked-for type is a Decode error naming the key, not a panic or a default.
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Order {
            id: String,
            cents: u64,
        }
        let store = Kv::new();
        let order = Order {
            id: "o1".into(),
            cents: 5,
        };
        store
            .transact(Durability::Sync, |tx| tx.put_json("order/o1", &order))
            .unwrap();
        assert_eq!(store.get_json::<Order>("order/o1").unwrap(), Some(order));
        assert_eq!(store.get_json::<Order>("order/none").unwrap(), None);
        put(&store, Durability::Sync, "order/bad", "not json");
        let error = store.get_json::<Order>("order/bad").unwrap_err();
        assert!(
            matches!(&error, KvError::Decode { key, .. } if key == "order/bad"),
            "{error}"
        );
    }

    #[test]
    fn oversized_keys_and_values_are_refused() {
        // Proves the bounds: a key or value past its limit is an error and writes nothing.
        let store = Kv::new();
        let long_key = "k".repeat(KV_KEY_BYTES_MAX + 1);
        let result = store.transact(Durability::Sync, |tx| tx.put(&long_key, "v"));
        assert_eq!(
            result,
            Err(KvError::KeyTooLong {
                len: KV_KEY_BYTES_MAX + 1
            })
        );
        let big = vec![0_u8; KV_VALUE_BYTES_MAX + 1];
        let result = store.transact(Durability::Sync, |tx| tx.put("k", big.clone()));
        assert!(matches!(result, Err(KvError::ValueTooLarge { .. })));
        assert!(store.snapshot().is_empty());
    }

    #[test]
    fn a_nested_transaction_is_an_error_not_a_deadlock() {
        // Proves a transaction started inside another on the same store returns
        // NestedTransaction instead of waiting on its own lock forever, that a transaction
        // on another store inside one is fine, and that the store is usable afterwards.
        let store = Kv::new();
        let other = Kv::new();
        let result = store.transact(Durability::Sync, |tx| {
            tx.put("outer", "1")?;
            other.transact(Durability::Sync, |inner| inner.put("x", "1"))?;
            store.transact(Durability::Sync, |inner| inner.put("inner", "1"))
        });
        assert_eq!(result, Err(KvError::NestedTransaction));
        assert!(
            store.snapshot().is_empty(),
            "the outer body failed: nothing applied"
        );
        assert_eq!(other.snapshot().len(), 1);
        put(&store, Durability::Sync, "after", "1");
        assert_eq!(text(&store, "after").as_deref(), Some("1"));
    }

    #[test]
    fn clones_share_one_store_across_boots() {
        // Proves a clone is a handle to the same store, as the simulation hands one to each
        // boot: what one boot committed durably, the next boot's handle reads after a crash.
        let store = Kv::new();
        let first_boot = store.clone();
        put(&first_boot, Durability::Sync, "a", "1");
        put(&first_boot, Durability::Lazy, "b", "2");
        drop(first_boot);
        store.crash();
        let second_boot = store.clone();
        assert_eq!(text(&second_boot, "a").as_deref(), Some("1"));
        assert_eq!(text(&second_boot, "b"), None);
    }
}
