//! The service's store on its idempotency paths: claiming a fresh key (record + shipment in
//! one transaction), looking a key up, and deciding a replay, with synchronous (durable on
//! return) and lazy commits.

use std::hint::black_box;

// Linked for its global allocator (the one `shipsim` runs on).
use shipsim_benches as _;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shipsim_system::api::{ServiceLevel, Shipment, ShipmentStatus};
use shipsim_system::store::{
    Durability, IdemScope, IdemState, IdempotencyRecord, MemoryStore, ShipmentRecord, StoreError,
    StoredResponse, transact,
};

const KEYS: u64 = 10_000;
/// Lazy claims between two flushes of the store in the claim benchmark.
const LAZY_FLUSH_EVERY: u64 = 64;

fn record(key: u64) -> IdempotencyRecord {
    IdempotencyRecord {
        scope: IdemScope {
            caller: format!("merchant-{}", key % 16),
            key: format!("ship-{key}"),
        },
        fingerprint: "0123456789abcdef0123456789abcdef".into(),
        created_at_ms: 0,
        state: IdemState::Completed {
            response: StoredResponse {
                status: 201,
                body: "{\"id\":\"shp_1\",\"label_id\":\"lbl_1\"}".into(),
            },
        },
    }
}

fn shipment(key: u64) -> ShipmentRecord {
    ShipmentRecord {
        shipment: Shipment {
            id: format!("shp_{key}"),
            order_id: "ord_1".into(),
            status: ShipmentStatus::PendingLabel,
            service_level: ServiceLevel::Ground,
            weight_grams: 500,
            label_id: None,
            tracking_number: None,
            created_at_ms: 0,
        },
        caller: format!("merchant-{}", key % 16),
        idempotency_key: format!("ship-{key}"),
        webhook_sequence: 0,
    }
}

fn filled(durability: Durability) -> MemoryStore {
    let store = MemoryStore::new();
    for key in 0..KEYS {
        transact(&store, durability, |tx| {
            tx.put_idempotency(record(key));
            tx.put_shipment(shipment(key));
            Ok::<_, StoreError>(())
        })
        .unwrap();
    }
    store.flush();
    store
}

fn idempotency_store(c: &mut Criterion) {
    let mut group = c.benchmark_group("idempotency_store");
    group.throughput(Throughput::Elements(1));
    for (name, durability) in [("sync", Durability::Sync), ("lazy", Durability::Lazy)] {
        let store = filled(durability);
        let mut next = KEYS;
        group.bench_function(BenchmarkId::new("claim", name), |b| {
            b.iter(|| {
                next += 1;
                let result = transact(&store, durability, |tx| {
                    let scope = record(next).scope;
                    if tx.idempotency(&scope).is_none() {
                        tx.put_idempotency(record(next));
                        tx.put_shipment(shipment(next));
                    }
                    Ok::<_, StoreError>(())
                });
                // Lazy commits wait for a later flush (a log's group fsync); without one the
                // unflushed list would grow for the whole benchmark and measure the heap.
                if durability == Durability::Lazy && next.is_multiple_of(LAZY_FLUSH_EVERY) {
                    store.flush();
                }
                result
            });
        });
        let mut key = 0;
        group.bench_function(BenchmarkId::new("lookup", name), |b| {
            b.iter(|| {
                key = (key + 7_919) % KEYS;
                let scope = record(key).scope;
                transact(&store, durability, |tx| {
                    Ok::<_, StoreError>(black_box(tx.idempotency(&scope)))
                })
            });
        });
        group.bench_function(BenchmarkId::new("replay_decision", name), |b| {
            b.iter(|| {
                key = (key + 7_919) % KEYS;
                let scope = record(key).scope;
                transact(&store, durability, |tx| {
                    let found = tx.idempotency(&scope);
                    Ok::<_, StoreError>(black_box(matches!(
                        found.map(|r| r.state),
                        Some(IdemState::Completed { response }) if response.status == 201
                    )))
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, idempotency_store);
criterion_main!(benches);
