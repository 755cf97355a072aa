//! The service's repository over shipsim's durable key-value store, and how shipsim reads
//! what the service holds at the end of a run.
//!
//! [`KvRepository`] implements the service's own `Repository` trait: each method is one
//! `Kv` transaction, committed `Sync` (durable before it returns, survives a crash) unless
//! the service's configuration turns synchronous commits off, when it is `Lazy` (durable at
//! the next flush, lost by a crash before it). Rows are JSON under `customer/{id}`,
//! `payment/{id}` and `key/{scope}`.
//!
//! `Kv` answers at once; a real database takes a round trip. Each call first waits a seeded
//! 1 to 3 ms of simulated time, so concurrent requests interleave between their
//! transactions as they would in production (without it, a lookup and an insert in two
//! transactions would still never be split by another request).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use byo_axum::model::{Customer, KeyRecord, KeyState, Payment, PaymentStatus};
use byo_axum::{RepoError, Repository, Write};
use rand::{Rng, RngCore};
use serde::de::DeserializeOwned;
use shipsim::store::{Durability, Kv, KvError, KvTx};
use shipsim::{Durables, Inventories, Inventory, Resource, SERVICE_HOST, Unfinished};

/// The simulated round trip to the database, ms (inclusive range).
const ROUND_TRIP_MS: (u64, u64) = (1, 3);

const CUSTOMER: &str = "customer/";
const PAYMENT: &str = "payment/";
const KEY: &str = "key/";

/// The service's repository over a shipsim `Kv`.
#[derive(Clone)]
pub struct KvRepository {
    kv: Kv,
    durability: Durability,
    latency: Arc<Mutex<Box<dyn RngCore + Send>>>,
}

impl KvRepository {
    /// A repository over `kv`, committing durably when `synchronous`, drawing its round
    /// trips from `latency`.
    pub fn new(kv: Kv, synchronous: bool, latency: impl RngCore + Send + 'static) -> Self {
        KvRepository {
            kv,
            durability: if synchronous {
                Durability::Sync
            } else {
                Durability::Lazy
            },
            latency: Arc::new(Mutex::new(Box::new(latency))),
        }
    }

    async fn round_trip(&self) {
        let ms = {
            let mut rng = self.latency.lock().unwrap_or_else(PoisonError::into_inner);
            rng.random_range(ROUND_TRIP_MS.0..=ROUND_TRIP_MS.1)
        };
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    async fn read<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, RepoError> {
        self.round_trip().await;
        self.kv.get_json(key).map_err(storage)
    }
}

fn storage(error: KvError) -> RepoError {
    RepoError(error.to_string())
}

fn put(tx: &mut KvTx<'_>, write: &Write) -> Result<(), KvError> {
    match write {
        Write::Customer(c) => tx.put_json(&format!("{CUSTOMER}{}", c.id), c),
        Write::Payment(p) => tx.put_json(&format!("{PAYMENT}{}", p.id), p),
        Write::Key(k) => tx.put_json(&format!("{KEY}{}", k.scope), k),
    }
}

impl Repository for KvRepository {
    async fn with_key<T, F>(&self, scope: &str, decide: F) -> Result<T, RepoError>
    where
        T: Send + 'static,
        F: FnOnce(Option<KeyRecord>) -> (Vec<Write>, T) + Send + 'static,
    {
        self.round_trip().await;
        self.kv
            .transact(self.durability, |tx| {
                let existing = tx.get_json(&format!("{KEY}{scope}"))?;
                let (writes, decided) = decide(existing);
                for write in &writes {
                    put(tx, write)?;
                }
                Ok(decided)
            })
            .map_err(storage)
    }

    async fn key(&self, scope: &str) -> Result<Option<KeyRecord>, RepoError> {
        self.read(&format!("{KEY}{scope}")).await
    }

    async fn write(&self, writes: Vec<Write>) -> Result<(), RepoError> {
        self.round_trip().await;
        self.kv
            .transact(self.durability, |tx| {
                writes.iter().try_for_each(|write| put(tx, write))
            })
            .map_err(storage)
    }

    async fn customer(&self, id: &str) -> Result<Option<Customer>, RepoError> {
        self.read(&format!("{CUSTOMER}{id}")).await
    }

    async fn payment(&self, id: &str) -> Result<Option<Payment>, RepoError> {
        self.read(&format!("{PAYMENT}{id}")).await
    }
}

/// What the service holds at the end of a run, in both views: what the running process
/// sees, and what would survive a crash now.
pub fn inventory(durables: &Durables) -> Inventories {
    let Some(kv) = durables.get::<Kv>(SERVICE_HOST, super::STORE) else {
        return Inventories::default();
    };
    Inventories {
        live: inventory_of(&kv.snapshot()),
        durable: inventory_of(&kv.durable_snapshot()),
    }
}

/// The rows under `prefix`, decoded. A row that does not decode is a bug in the service
/// or in this adapter, so it stops the test.
fn rows<'a, T: DeserializeOwned>(
    entries: &'a BTreeMap<String, Vec<u8>>,
    prefix: &'a str,
) -> impl Iterator<Item = T> + 'a {
    entries
        .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
        .take_while(move |(key, _)| key.starts_with(prefix))
        .map(|(key, value)| {
            serde_json::from_slice(value)
                .unwrap_or_else(|error| panic!("row `{key}` does not decode: {error}"))
        })
}

/// The service's rows in shipsim's terms: customers, then payments (with their customer,
/// state and bank charge); payments and keys left pending as unfinished work.
fn inventory_of(entries: &BTreeMap<String, Vec<u8>>) -> Inventory {
    let mut resources = Vec::new();
    for customer in rows::<Customer>(entries, CUSTOMER) {
        resources.push(Resource {
            kind: "customer".into(),
            id: customer.id,
            caller: customer.merchant,
            key: Some(customer.key),
            ..Resource::default()
        });
    }
    let mut unfinished = Vec::new();
    for payment in rows::<Payment>(entries, PAYMENT) {
        if payment.status == PaymentStatus::Pending {
            unfinished.push(Unfinished {
                caller: payment.merchant.clone(),
                key: payment.key.clone(),
                what: format!("payment {} was left pending", payment.id),
            });
        }
        resources.push(Resource {
            kind: "payment".into(),
            caller: payment.merchant,
            key: Some(payment.key),
            parent: Some(payment.customer),
            state: Some(payment.status.as_str().into()),
            settled: Some(payment.status == PaymentStatus::Succeeded),
            downstream_ref: payment.charge,
            id: payment.id,
            children: None,
        });
    }
    for record in rows::<KeyRecord>(entries, KEY) {
        if let KeyState::Pending { payment, owner } = &record.state {
            unfinished.push(Unfinished {
                caller: record.merchant.clone(),
                key: record.key.clone(),
                what: format!(
                    "key `{}` of {} was left claimed for payment {payment} ({})",
                    record.key,
                    record.merchant,
                    owner.as_ref().map_or("released".to_string(), |o| format!(
                        "held by {}",
                        o.instance
                    ))
                ),
            });
        }
    }
    let mut inventory = Inventory::new(resources);
    inventory.unfinished = unfinished;
    inventory
}
