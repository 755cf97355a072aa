//! Hand-built runs for oracle unit tests: a tiny history, store and ledger that a test
//! shapes into exactly the violation it wants an oracle to find.

use shipsim_system::api::{
    Address, Label, Order, OrderStatus, ServiceLevel, Shipment, ShipmentStatus,
};
use shipsim_system::carrier::LabelSale;
use shipsim_system::client::{AttemptOutcome, AttemptRecord, KeyPlacement};
use shipsim_system::store::{OrderRecord, ShipmentRecord, Tables};

use super::{OracleInput, OracleKind, Violation};
use crate::reference::{ReferenceApi, effects_of, inventory_of};
use crate::run::history::{History, OpId, OpKind, OpOutcome, Operation, Phase};
use crate::scenario::Scenario;
use crate::target::plan::KindTable;
use crate::target::{Api, Inventories, Seen};

/// What a test's operation got back: a reference order or shipment, in shipsim's terms.
pub(crate) enum Resource {
    Order(Box<Order>),
    Shipment(Box<Shipment>),
}

impl From<Resource> for Seen {
    fn from(resource: Resource) -> Seen {
        let spelled = |v: serde_json::Value| v.as_str().map(str::to_string);
        match resource {
            Resource::Order(order) => Seen {
                state: spelled(serde_json::to_value(order.status).unwrap()),
                id: order.id,
                parent: None,
                downstream_ref: None,
            },
            Resource::Shipment(shipment) => Seen {
                state: spelled(serde_json::to_value(shipment.status).unwrap()),
                id: shipment.id,
                parent: Some(shipment.order_id),
                downstream_ref: shipment.label_id,
            },
        }
    }
}

/// The reference API's operation called `name` (`create_shipment`).
pub(crate) fn op_kind(name: &str) -> OpKind {
    let table = KindTable::of(&ReferenceApi).unwrap();
    table
        .ops()
        .iter()
        .find(|op| op.name() == name)
        .cloned()
        .unwrap_or_else(|| panic!("no operation {name}"))
}

/// The reference API's kinds.
pub(crate) fn kinds() -> Vec<crate::target::Kind> {
    KindTable::of(&ReferenceApi).unwrap().kinds().to_vec()
}

/// A run under construction.
pub(crate) struct Fixture {
    pub scenario: Scenario,
    pub history: History,
    pub tables: Tables,
    /// `None` means "same as `tables`" (everything durable).
    pub durable: Option<Tables>,
    pub sales: Vec<LabelSale>,
    pub webhooks: Option<super::WebhookView>,
    /// Judge without the target's store, as for a target that gives no inventory.
    pub without_inventory: bool,
    /// Injected webhook deliveries and their answers.
    pub injections: Vec<crate::reach::Injection>,
    clock_us: u64,
}

pub(crate) fn address() -> Address {
    Address {
        name: "N".into(),
        line1: "L".into(),
        city: "C".into(),
        postal_code: "P".into(),
        country: "DE".into(),
    }
}

pub(crate) fn order(id: &str, status: OrderStatus, shipments: &[&str]) -> Order {
    Order {
        id: id.into(),
        reference: "PO".into(),
        status,
        items: vec![],
        ship_to: address(),
        shipment_ids: shipments.iter().map(|s| (*s).to_string()).collect(),
        created_at_ms: 0,
    }
}

pub(crate) fn shipment(
    id: &str,
    order_id: &str,
    status: ShipmentStatus,
    label: Option<&str>,
) -> Shipment {
    Shipment {
        id: id.into(),
        order_id: order_id.into(),
        status,
        service_level: ServiceLevel::Ground,
        weight_grams: 500,
        label_id: label.map(str::to_string),
        tracking_number: label.map(|l| format!("1Z{l}")),
        created_at_ms: 0,
    }
}

/// A successful first attempt.
pub(crate) fn ok_attempt(status: u16, key: Option<&str>) -> AttemptRecord {
    attempt(
        0,
        0,
        AttemptOutcome::Response {
            status,
            retry_after_ms: None,
            replayed: false,
            error_code: None,
            advertised: shipsim_system::client::Advertised::default(),
        },
        key,
    )
}

pub(crate) fn attempt(
    index: u32,
    waited_ms: u64,
    outcome: AttemptOutcome,
    key: Option<&str>,
) -> AttemptRecord {
    AttemptRecord {
        index,
        waited_ms,
        sent_at_ms: u64::from(index) * 100 + waited_ms,
        ended_at_ms: u64::from(index) * 100 + waited_ms + 10,
        idempotency_key: key.map(str::to_string),
        outcome,
    }
}

impl Fixture {
    /// An empty run of a default scenario (every oracle on).
    pub(crate) fn new() -> Self {
        Fixture {
            scenario: Scenario::parse("fixture.toml", "fixture", "")
                .expect("empty scenario is valid"),
            history: History::new(),
            tables: Tables::default(),
            durable: None,
            sales: Vec::new(),
            webhooks: None,
            without_inventory: false,
            injections: Vec::new(),
            clock_us: 0,
        }
    }

    /// Records a finished operation; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn op(
        &mut self,
        caller: &str,
        kind: OpKind,
        key: Option<&str>,
        body: Option<&str>,
        order_id: Option<&str>,
        attempts: Vec<AttemptRecord>,
        outcome: OpOutcome,
    ) -> OpId {
        self.op_at(
            caller,
            "client-0",
            Phase::Workload,
            kind,
            key,
            body,
            order_id,
            attempts,
            outcome,
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn op_at(
        &mut self,
        caller: &str,
        client: &str,
        phase: Phase,
        kind: OpKind,
        key: Option<&str>,
        body: Option<&str>,
        order_id: Option<&str>,
        attempts: Vec<AttemptRecord>,
        outcome: OpOutcome,
    ) -> OpId {
        self.clock_us += 1_000_000;
        let id = self.history.invoke(Operation {
            id: 0,
            client: client.into(),
            caller: caller.into(),
            kind: kind.clone(),
            phase,
            key: key.map(str::to_string),
            placement: key.map(|_| KeyPlacement::Header),
            parent: kind
                .is_write()
                .then(|| order_id.map(str::to_string))
                .flatten(),
            target: (!kind.is_write())
                .then(|| order_id.map(str::to_string))
                .flatten(),
            body: body.map(str::to_string),
            resolves: None,
            invoked_at_us: self.clock_us,
            completed_at_us: self.clock_us,
            attempts: Vec::new(),
            outcome: OpOutcome::Pending,
        });
        let end = self.clock_us + attempts.last().map_or(0, |a| a.ended_at_ms * 1_000);
        self.history.complete(id, end, attempts, outcome);
        self.clock_us = end;
        id
    }

    pub(crate) fn put_order(&mut self, caller: &str, key: &str, order: Order) {
        self.tables.orders.insert(
            order.id.clone(),
            OrderRecord {
                order,
                caller: caller.into(),
                idempotency_key: key.into(),
            },
        );
    }

    pub(crate) fn put_shipment(&mut self, caller: &str, key: &str, shipment: Shipment) {
        self.tables.shipments.insert(
            shipment.id.clone(),
            ShipmentRecord {
                shipment,
                caller: caller.into(),
                idempotency_key: key.into(),
                webhook_sequence: 0,
            },
        );
    }

    pub(crate) fn sell(&mut self, label_id: &str, shipment_id: &str, key: Option<&str>) {
        self.sales.push(LabelSale {
            label: Label {
                label_id: label_id.into(),
                tracking_number: format!("1Z{label_id}"),
                shipment_ref: shipment_id.into(),
                cost_cents: 600,
            },
            idempotency_key: key.map(str::to_string),
            sold_at_ms: 0,
        });
    }

    /// A consistent happy run: one order, one labelled shipment, created by two clean
    /// operations of merchant-0.
    pub(crate) fn happy() -> Self {
        let mut fixture = Fixture::new();
        let created = order("ord_1", OrderStatus::Fulfilling, &["shp_1"]);
        let labelled = shipment(
            "shp_1",
            "ord_1",
            ShipmentStatus::LabelPurchased,
            Some("lbl_1"),
        );
        fixture.op(
            "merchant-0",
            op_kind("create_order"),
            Some("order-0"),
            Some("{\"o\":1}"),
            None,
            vec![ok_attempt(201, Some("order-0"))],
            ok(Resource::Order(Box::new(order(
                "ord_1",
                OrderStatus::Created,
                &[],
            )))),
        );
        fixture.op(
            "merchant-0",
            op_kind("create_shipment"),
            Some("ship-0"),
            Some("{\"s\":1}"),
            Some("ord_1"),
            vec![ok_attempt(201, Some("ship-0"))],
            ok(Resource::Shipment(Box::new(labelled.clone()))),
        );
        fixture.put_order("merchant-0", "order-0", created);
        fixture.put_shipment("merchant-0", "ship-0", labelled);
        fixture.sell("lbl_1", "shp_1", Some("label-shp_1"));
        fixture
    }

    pub(crate) fn check(&self, oracle: OracleKind) -> Vec<Violation> {
        self.with_input(|input| oracle.check(input))
    }

    /// Duplicates in the fixture's final state.
    pub(crate) fn duplicates(&self) -> super::Duplicates {
        self.with_input(super::Duplicates::count)
    }

    pub(crate) fn with_input<R>(&self, f: impl FnOnce(&OracleInput<'_>) -> R) -> R {
        let durable = self.durable.as_ref().unwrap_or(&self.tables);
        let inventories = Inventories {
            live: inventory_of(&self.tables),
            durable: inventory_of(durable),
        };
        let effects = effects_of(&self.sales);
        let webhooks = self.webhooks.clone().map(|mut view| {
            view.tables = self.tables.clone();
            view.durable = durable.clone();
            view
        });
        let kinds = kinds();
        f(&OracleInput {
            scenario: &self.scenario,
            seed: 42,
            history: &self.history,
            kinds: &kinds,
            conventions: &ReferenceApi.conventions(),
            inventory: (!self.without_inventory).then_some(&inventories),
            effects: &effects,
            ledgers_read: true,
            webhooks: webhooks.as_ref(),
            injections: &self.injections,
        })
    }
}

/// A fresh 201 success.
pub(crate) fn ok(resource: Resource) -> OpOutcome {
    OpOutcome::Ok {
        status: 201,
        replayed: false,
        resource: resource.into(),
    }
}

/// Asserts `found` is exactly one violation whose message contains `needle`.
pub(crate) fn assert_one(found: &[Violation], needle: &str) {
    assert_eq!(
        found.len(),
        1,
        "expected one violation containing `{needle}`, got {found:#?}"
    );
    assert!(
        found[0].message.contains(needle),
        "`{}` lacks `{needle}`",
        found[0].message
    );
    assert_eq!(found[0].seed, 42);
}

#[test]
fn happy_run_satisfies_every_oracle() {
    // Proves the baseline fixture is clean, so each oracle test's violation comes from the
    // one thing it changes.
    let fixture = Fixture::happy();
    for oracle in OracleKind::ALL {
        assert_eq!(fixture.check(*oracle), vec![], "{oracle}");
    }
}
