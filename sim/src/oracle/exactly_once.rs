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

/// Operations of `caller` that sent `key`.
fn ops_with_key(history: &History, caller: &str, key: &str) -> Vec<OpId> {
    history
        .operations()
        .iter()
        .filter(|op| op.caller == caller && op.keys_sent().any(|k| k == key))
        .map(|op| op.id)
        .collect()
}

pub(super) fn check(input: &OracleInput<'_>) -> Vec<Violation> {
    let mut found = Vec::new();
    let tables = input.tables;

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
            .ops(ops_with_key(input.history, caller, key));
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
                .ops(ops_with_key(input.history, caller, key))
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
        let created: Vec<&str> = tables
            .shipments
            .iter()
            .filter(|(_, r)| r.caller == op.caller && keys.contains(&r.idempotency_key.as_str()))
            .map(|(id, _)| id.as_str())
            .chain(
                tables
                    .orders
                    .iter()
                    .filter(|(_, r)| {
                        r.caller == op.caller && keys.contains(&r.idempotency_key.as_str())
                    })
                    .map(|(id, _)| id.as_str()),
            )
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
        let ops = owner.map_or_else(Vec::new, |r| {
            ops_with_key(input.history, &r.caller, &r.idempotency_key)
        });
        if sales.len() > 1 {
            let mut violation = Violation::new(
                ORACLE,
                input,
                format!(
                    "{} carrier labels bought for shipment {shipment_id}",
                    sales.len()
                ),
            )
            .ops(ops);
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
                .ops(ops_with_key(input.history, &record.caller, &record.idempotency_key)),
            );
        }
    }
    found
}
