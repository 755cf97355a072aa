//! `exactly_once`: at most one shipment (and one order) per (caller, idempotency key) and
//! per logical operation, at most one carrier label per shipment, and no label sold for a
//! shipment the service does not have.

use std::collections::BTreeMap;

use shipsim_system::carrier::LabelSale;
use shipsim_system::store::Tables;

use super::{OracleInput, OracleKind, Violation};
use crate::history::{History, OpId, Phase};

const ORACLE: OracleKind = OracleKind::ExactlyOnce;

/// Duplicates in a final state, for the report's totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Duplicates {
    /// Shipments beyond the first per (caller, key).
    pub shipments: u64,
    /// Labels beyond the first per shipment.
    pub labels: u64,
}

impl Duplicates {
    /// Counts duplicates in `tables` and `sales`.
    #[must_use]
    pub fn count(tables: &Tables, sales: &[LabelSale]) -> Self {
        let mut per_key: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for record in tables.shipments.values() {
            *per_key
                .entry((&record.caller, &record.idempotency_key))
                .or_insert(0) += 1;
        }
        let mut per_shipment: BTreeMap<&str, u64> = BTreeMap::new();
        for sale in sales {
            *per_shipment.entry(&sale.label.shipment_ref).or_insert(0) += 1;
        }
        Duplicates {
            shipments: per_key.values().map(|n| n - 1).sum(),
            labels: per_shipment.values().map(|n| n - 1).sum(),
        }
    }
}

/// Operations by (caller, key sent): built once per check, so naming the operations of a
/// violation costs a lookup, not a scan of the history.
struct KeyIndex(BTreeMap<(String, String), Vec<OpId>>);

impl KeyIndex {
    fn of(history: &History) -> Self {
        let mut index: BTreeMap<(String, String), Vec<OpId>> = BTreeMap::new();
        for op in history.operations() {
            for key in op.keys_sent() {
                index
                    .entry((op.caller.clone(), key.to_string()))
                    .or_default()
                    .push(op.id);
            }
        }
        KeyIndex(index)
    }

    /// Operations of `caller` that sent `key`.
    fn ops(&self, caller: &str, key: &str) -> Vec<OpId> {
        self.0
            .get(&(caller.to_string(), key.to_string()))
            .cloned()
            .unwrap_or_default()
    }
}

pub(super) fn check(input: &OracleInput<'_>) -> Vec<Violation> {
    let mut found = Vec::new();
    let tables = input.tables;
    let index = KeyIndex::of(input.history);

    let mut shipments_per_key: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for (id, record) in &tables.shipments {
        shipments_per_key
            .entry((&record.caller, &record.idempotency_key))
            .or_default()
            .push(id);
    }
    for ((caller, key), ids) in &shipments_per_key {
        if ids.len() > 1 {
            let mut violation = Violation::new(
                ORACLE,
                input,
                format!(
                    "{} shipments for one idempotency key `{key}` of {caller}",
                    ids.len()
                ),
            )
            .ops(index.ops(caller, key));
            for id in ids {
                let shipment = &tables.shipments[*id].shipment;
                violation = violation.evidence(format!(
                    "shipment {id}: status {:?}, label {}",
                    shipment.status,
                    shipment.label_id.as_deref().unwrap_or("-")
                ));
            }
            found.push(violation);
        }
    }

    let mut orders_per_key: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for (id, record) in &tables.orders {
        orders_per_key
            .entry((&record.caller, &record.idempotency_key))
            .or_default()
            .push(id);
    }
    for ((caller, key), ids) in &orders_per_key {
        if ids.len() > 1 {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "{} orders for one idempotency key `{key}` of {caller}",
                        ids.len()
                    ),
                )
                .ops(index.ops(caller, key))
                .evidence(format!("orders: {}", ids.join(", "))),
            );
        }
    }

    // Per logical operation: an operation whose attempts carried several keys (a client
    // that invents a key per attempt) may have created several shipments under them.
    for op in input
        .history
        .operations()
        .iter()
        .filter(|op| op.kind.is_write() && op.phase == Phase::Workload)
    {
        let keys: Vec<&str> = op.keys_sent().collect();
        if keys.len() < 2 {
            continue;
        }
        let created: Vec<&str> = keys
            .iter()
            .flat_map(|key| {
                let scope = (op.caller.as_str(), *key);
                let shipments = shipments_per_key.get(&scope).into_iter().flatten();
                let orders = orders_per_key.get(&scope).into_iter().flatten();
                shipments.chain(orders).copied()
            })
            .collect();
        if created.len() > 1 {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "operation {} created {} resources under {} keys",
                        op.id,
                        created.len(),
                        keys.len()
                    ),
                )
                .ops([op.id])
                .evidence(format!("keys sent: {}", keys.join(", ")))
                .evidence(format!("created: {}", created.join(", "))),
            );
        }
    }

    let mut labels_per_shipment: BTreeMap<&str, Vec<&LabelSale>> = BTreeMap::new();
    for sale in input.sales {
        labels_per_shipment
            .entry(&sale.label.shipment_ref)
            .or_default()
            .push(sale);
    }
    for (shipment_id, sales) in &labels_per_shipment {
        let owner = tables.shipments.get(*shipment_id);
        let ops = || owner.map_or_else(Vec::new, |r| index.ops(&r.caller, &r.idempotency_key));
        if sales.len() > 1 {
            let mut violation = Violation::new(
                ORACLE,
                input,
                format!(
                    "{} carrier labels bought for shipment {shipment_id}",
                    sales.len()
                ),
            )
            .ops(ops());
            for sale in sales {
                violation = violation.evidence(format!(
                    "label {} sold at {} ms under key {}",
                    sale.label.label_id,
                    sale.sold_at_ms,
                    sale.idempotency_key.as_deref().unwrap_or("(none)")
                ));
            }
            found.push(violation);
        } else if owner.is_none() {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "label {} sold for shipment {shipment_id}, which the service does not have",
                        sales[0].label.label_id
                    ),
                )
                .evidence(
                    "the shipment row was lost or never committed: the label was paid for nothing",
                ),
            );
        }
    }

    for (shipment_id, record) in &tables.shipments {
        let Some(label_id) = &record.shipment.label_id else {
            continue;
        };
        let sold = labels_per_shipment
            .get(shipment_id.as_str())
            .is_some_and(|sales| sales.iter().any(|s| &s.label.label_id == label_id));
        if !sold {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!("shipment {shipment_id} carries label {label_id}, which the carrier never sold for it"),
                )
                .ops(index.ops(&record.caller, &record.idempotency_key)),
            );
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use shipsim_system::api::ShipmentStatus;

    use super::super::testing::{Fixture, assert_one, ok_attempt, shipment};
    use super::*;
    use crate::history::{OpKind, OpOutcome};

    #[test]
    fn two_shipments_under_one_key_are_caught() {
        // Proves a second shipment stored under the same (caller, key) is one violation.
        let mut fixture = Fixture::happy();
        fixture.put_shipment(
            "merchant-0",
            "ship-0",
            shipment("shp_2", "ord_1", ShipmentStatus::PendingLabel, None),
        );
        let found = fixture.check(ORACLE);
        assert_one(&found, "2 shipments for one idempotency key `ship-0`");
        assert_eq!(
            found[0].operations,
            [1],
            "names the operation that used the key"
        );
    }

    #[test]
    fn same_key_of_two_callers_is_not_a_duplicate() {
        // Proves scoping: another merchant's shipment under the same key string is fine.
        let mut fixture = Fixture::happy();
        fixture.put_shipment(
            "merchant-1",
            "ship-0",
            shipment("shp_9", "ord_1", ShipmentStatus::PendingLabel, None),
        );
        let found: Vec<_> = fixture
            .check(ORACLE)
            .into_iter()
            .filter(|v| v.message.contains("idempotency key"))
            .collect();
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn second_label_for_a_shipment_is_caught() {
        // Proves two carrier sales for one shipment are one violation with both labels as
        // evidence, and the duplicate is counted.
        let mut fixture = Fixture::happy();
        fixture.sell("lbl_2", "shp_1", None);
        let found = fixture.check(ORACLE);
        assert_one(&found, "2 carrier labels bought for shipment shp_1");
        assert_eq!(found[0].evidence.len(), 2);
        assert_eq!(Duplicates::count(&fixture.tables, &fixture.sales).labels, 1);
    }

    #[test]
    fn label_for_an_unknown_shipment_is_caught() {
        // Proves a label sold for a shipment the service lost is a violation.
        let mut fixture = Fixture::happy();
        fixture.sell("lbl_9", "shp_lost", Some("label-shp_lost"));
        assert_one(&fixture.check(ORACLE), "which the service does not have");
    }

    #[test]
    fn an_operation_with_several_keys_creating_several_shipments_is_caught() {
        // Proves the per-operation check: a client that changed keys between attempts and
        // created two shipments is caught even though each key has one shipment.
        let mut fixture = Fixture::happy();
        fixture.op(
            "merchant-0",
            OpKind::CreateShipment,
            Some("ship-1"),
            Some("{}"),
            Some("ord_1"),
            vec![
                ok_attempt(500, Some("ship-1")),
                ok_attempt(201, Some("ship-1-retry1")),
            ],
            OpOutcome::Failed { reason: "x".into() },
        );
        fixture.put_shipment(
            "merchant-0",
            "ship-1",
            shipment("shp_a", "ord_1", ShipmentStatus::PendingLabel, None),
        );
        fixture.put_shipment(
            "merchant-0",
            "ship-1-retry1",
            shipment("shp_b", "ord_1", ShipmentStatus::PendingLabel, None),
        );
        let found: Vec<_> = fixture
            .check(ORACLE)
            .into_iter()
            .filter(|v| v.message.starts_with("operation"))
            .collect();
        assert_one(&found, "created 2 resources under 2 keys");
    }
}
