//! What the SQLite store's tests share: a database in a temporary directory and records
//! of every shape.

use std::path::{Path, PathBuf};

use super::SqliteStore;
use crate::api::{Address, Order, OrderItem, OrderStatus, ServiceLevel, Shipment, ShipmentStatus};
use crate::store::{
    Delivery, Durability, IdemScope, IdemState, IdempotencyRecord, MemoryStore, OrderRecord,
    OutboxRecord, ShipmentRecord, Store, StoreError, Tx, transact,
};

/// A database file's path in a temporary directory of its own, removed when dropped.
pub(super) struct TempDb(tempfile::TempDir);

impl TempDb {
    pub(super) fn path(&self) -> PathBuf {
        self.0.path().join("store.db")
    }
}

pub(super) fn temp_db() -> TempDb {
    TempDb(tempfile::tempdir().expect("a temporary directory"))
}

pub(super) fn order(id: &str) -> OrderRecord {
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

pub(super) fn shipment(id: &str, label: Option<&str>) -> ShipmentRecord {
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

pub(super) fn idem(key: &str, state: IdemState) -> IdempotencyRecord {
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

pub(super) fn outbox_record(seq: u64, delivery: Delivery) -> OutboxRecord {
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

pub(super) fn pending(attempts: u32, next_attempt_at_ms: u64) -> Delivery {
    Delivery::Pending {
        attempts,
        next_attempt_at_ms,
    }
}

/// One record in each delivery state, and one pending record per due time.
pub(super) fn outbox_fixture() -> Vec<OutboxRecord> {
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

/// A SQLite store at `path` and a memory store, each holding `outbox_fixture()` and
/// then whatever `more` puts, so a test can ask both the same question.
pub(super) fn both_stores_with(
    path: &Path,
    more: impl Fn(&mut dyn Tx),
) -> (SqliteStore, MemoryStore) {
    let (sqlite, _) = SqliteStore::open(path).unwrap();
    let memory = MemoryStore::new();
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
