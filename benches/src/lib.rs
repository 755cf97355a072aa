//! Shared helpers of the criterion benchmarks in `benches/`.
//!
//! Every benchmark links this crate, so every benchmark runs on the allocator the `shipsim`
//! binary ships with: the figures measure the harness as users run it.

pub mod bare;
pub mod byo;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use shipsim::Scenario;
use shipsim::Seen;
use shipsim::run::history::{History, OpKind, OpOutcome, Operation, Phase, Verb};
use shipsim_system::api::{Address, Order, OrderStatus, ServiceLevel, Shipment, ShipmentStatus};
use shipsim_system::client::{AttemptOutcome, AttemptRecord, KeyPlacement};
use shipsim_system::store::{OrderRecord, ShipmentRecord, Tables};

/// The scenario corpus directory, found from this crate's manifest so benchmarks run from
/// any working directory.
#[must_use]
pub fn scenarios_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// Loads one scenario of the corpus by file stem.
///
/// # Panics
/// If the file is missing or invalid: a benchmark of a broken corpus measures nothing.
#[must_use]
pub fn scenario(stem: &str) -> Scenario {
    let path = scenarios_dir().join(format!("{stem}.toml"));
    Scenario::load(&path).unwrap_or_else(|error| panic!("{error}"))
}

/// Every top-level scenario of the corpus (regressions left out: they are single seeds).
///
/// # Panics
/// If the corpus is invalid.
#[must_use]
pub fn corpus() -> Vec<Scenario> {
    let mut files: Vec<_> = std::fs::read_dir(scenarios_dir())
        .expect("scenarios/ exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| Scenario::load(p).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// A scenario from TOML text.
///
/// # Panics
/// If the text is not a valid scenario.
#[must_use]
pub fn parse(text: &str) -> Scenario {
    Scenario::parse("bench.toml", "bench", text).unwrap_or_else(|e| panic!("{e}"))
}

fn address() -> Address {
    Address {
        name: "N".into(),
        line1: "L".into(),
        city: "C".into(),
        postal_code: "P".into(),
        country: "DE".into(),
    }
}

/// A consistent synthetic run of `operations` operations (alternating order and shipment
/// creates by 16 merchants, some replayed, some retried) with the store and ledger it
/// would leave: the input of the oracle benchmarks.
#[must_use]
pub fn synthetic_run(
    operations: usize,
) -> (History, Tables, Vec<shipsim_system::carrier::LabelSale>) {
    let mut history = History::new();
    let mut tables = Tables::default();
    let mut sales = Vec::new();
    for index in 0..operations {
        let caller = format!("merchant-{}", index % 16);
        let at_us = index as u64 * 1_000;
        let order_id = format!("ord_{}", index / 2);
        let (kind, key, resource) = if index % 2 == 0 {
            let order = Order {
                id: order_id.clone(),
                reference: "PO".into(),
                status: OrderStatus::Fulfilling,
                items: vec![],
                ship_to: address(),
                shipment_ids: vec![format!("shp_{}", index / 2)],
                created_at_ms: 0,
            };
            tables.orders.insert(
                order_id.clone(),
                OrderRecord {
                    order: order.clone(),
                    caller: caller.clone(),
                    idempotency_key: format!("order-{index}"),
                },
            );
            (
                OpKind::new(Verb::Create, 0, 2, "order", "POST /v1/orders"),
                format!("order-{index}"),
                Seen {
                    id: order.id,
                    parent: None,
                    state: Some("created".into()),
                    downstream_ref: None,
                },
            )
        } else {
            let shipment_id = format!("shp_{}", index / 2);
            let label_id = format!("lbl_{}", index / 2);
            let shipment = Shipment {
                id: shipment_id.clone(),
                order_id: order_id.clone(),
                status: ShipmentStatus::LabelPurchased,
                service_level: ServiceLevel::Ground,
                weight_grams: 500,
                label_id: Some(label_id.clone()),
                tracking_number: Some("1Z".into()),
                created_at_ms: 0,
            };
            tables.shipments.insert(
                shipment_id.clone(),
                ShipmentRecord {
                    shipment: shipment.clone(),
                    caller: format!("merchant-{}", (index - 1) % 16),
                    idempotency_key: format!("ship-{index}"),
                    webhook_sequence: 0,
                },
            );
            sales.push(shipsim_system::carrier::LabelSale {
                label: shipsim_system::api::Label {
                    label_id,
                    tracking_number: "1Z".into(),
                    shipment_ref: shipment_id,
                    cost_cents: 600,
                },
                idempotency_key: Some(format!("label-shp_{}", index / 2)),
                sold_at_ms: 0,
            });
            (
                OpKind::new(
                    Verb::Create,
                    1,
                    2,
                    "shipment",
                    "POST /v1/orders/{id}/shipments",
                ),
                format!("ship-{index}"),
                Seen {
                    id: shipment.id,
                    parent: Some(shipment.order_id),
                    state: Some("label_purchased".into()),
                    downstream_ref: shipment.label_id,
                },
            )
        };
        let shipment_op = kind.resource() == "shipment";
        let caller = if shipment_op {
            format!("merchant-{}", (index - 1) % 16)
        } else {
            caller
        };
        let retried = index % 7 == 0;
        let mut attempts = Vec::new();
        if retried {
            attempts.push(AttemptRecord {
                index: 0,
                waited_ms: 0,
                sent_at_ms: 0,
                ended_at_ms: 300,
                idempotency_key: Some(key.clone()),
                outcome: AttemptOutcome::Timeout,
            });
        }
        attempts.push(AttemptRecord {
            index: u32::from(retried),
            waited_ms: if retried { 20 } else { 0 },
            sent_at_ms: if retried { 320 } else { 0 },
            ended_at_ms: if retried { 340 } else { 20 },
            idempotency_key: Some(key.clone()),
            outcome: AttemptOutcome::Response {
                status: 201,
                retry_after_ms: None,
                replayed: retried,
                error_code: None,
                advertised: shipsim_system::client::Advertised::default(),
            },
        });
        let id = history.invoke(Operation {
            id: 0,
            client: format!("client-{}", index % 16),
            caller,
            kind,
            phase: Phase::Workload,
            key: Some(key),
            placement: Some(KeyPlacement::Header),
            parent: shipment_op.then(|| order_id.clone()),
            target: None,
            body: Some(format!("{{\"n\":{index}}}")),
            resolves: None,
            invoked_at_us: at_us,
            completed_at_us: at_us,
            attempts: Vec::new(),
            outcome: OpOutcome::Pending,
        });
        history.complete(
            id,
            at_us + 340_000,
            attempts,
            OpOutcome::Ok {
                status: 201,
                replayed: retried,
                resource,
            },
        );
    }
    (history, tables, sales)
}
