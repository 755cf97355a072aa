//! `state_machine`: orders and shipments only move forward, and the final state is
//! consistent: every shipment belongs to an order that lists it, labels and statuses agree,
//! and an order with a labelled shipment is at least `fulfilling`.
//!
//! Observations are the statuses clients read (GETs and fresh creates; replays are stored
//! snapshots by design and are left out). The store is a single linearizable node, so a
//! read that starts after another read of the same resource finished must not see an
//! earlier state.

use std::collections::BTreeMap;

use shipsim_system::api::{OrderStatus, ShipmentStatus};

use super::{OracleInput, OracleKind, Violation};
use crate::history::{OpId, OpOutcome, Resource};

const ORACLE: OracleKind = OracleKind::StateMachine;

/// One observed status of a resource: (invoked µs, completed µs, rank, op, label).
type Observation = (u64, u64, u8, OpId, String);

fn order_rank(status: OrderStatus) -> u8 {
    match status {
        OrderStatus::Created => 0,
        OrderStatus::Fulfilling => 1,
        OrderStatus::Shipped => 2,
        OrderStatus::Delivered => 3,
    }
}

pub(super) fn check(input: &OracleInput<'_>) -> Vec<Violation> {
    let mut found = observed_monotonic(input);
    found.extend(final_state(input));
    found
}

fn observed_monotonic(input: &OracleInput<'_>) -> Vec<Violation> {
    let mut per_resource: BTreeMap<String, Vec<Observation>> = BTreeMap::new();
    for op in input.history.operations() {
        let OpOutcome::Ok {
            resource,
            replayed: false,
            ..
        } = &op.outcome
        else {
            continue;
        };
        let (rank, label) = match resource {
            Resource::Order(order) => (order_rank(order.status), format!("{:?}", order.status)),
            Resource::Shipment(shipment) => {
                (shipment.status.rank(), format!("{:?}", shipment.status))
            }
        };
        per_resource
            .entry(resource.id().to_string())
            .or_default()
            .push((op.invoked_at_us, op.completed_at_us, rank, op.id, label));
    }
    let mut found = Vec::new();
    for (id, mut observations) in per_resource {
        // Sweep reads in invocation order, remembering the highest state seen by any read
        // that had completed before the current one began.
        let mut by_completion = observations.clone();
        by_completion.sort_by_key(|o| o.1);
        observations.sort_by_key(|o| o.0);
        let mut highest: Option<&Observation> = None;
        let mut next = 0;
        for later in &observations {
            while next < by_completion.len() && by_completion[next].1 <= later.0 {
                if highest.is_none_or(|h| by_completion[next].2 > h.2) {
                    highest = Some(&by_completion[next]);
                }
                next += 1;
            }
            if let Some(earlier) = highest
                && later.2 < earlier.2
            {
                found.push(
                    Violation::new(
                        ORACLE,
                        input,
                        format!("{id} moved backwards from {} to {}", earlier.4, later.4),
                    )
                    .ops([earlier.3, later.3])
                    .evidence(format!(
                        "op {} saw {} (completed at {} us)",
                        earlier.3, earlier.4, earlier.1
                    ))
                    .evidence(format!(
                        "op {} saw {} (invoked at {} us)",
                        later.3, later.4, later.0
                    )),
                );
            }
        }
    }
    found
}

fn final_state(input: &OracleInput<'_>) -> Vec<Violation> {
    let tables = input.tables;
    let mut found = Vec::new();
    let mut problem = |message: String| found.push(Violation::new(ORACLE, input, message));
    for (id, record) in &tables.shipments {
        let shipment = &record.shipment;
        match tables.orders.get(&shipment.order_id) {
            None => problem(format!(
                "shipment {id} belongs to order {}, which does not exist",
                shipment.order_id
            )),
            Some(order) => {
                if order.caller != record.caller {
                    problem(format!(
                        "shipment {id} of {} is on order {} of {}",
                        record.caller, order.order.id, order.caller
                    ));
                }
                if !order.order.shipment_ids.contains(id) {
                    problem(format!(
                        "order {} does not list its shipment {id}",
                        order.order.id
                    ));
                }
            }
        }
        let labelled_status = matches!(
            shipment.status,
            ShipmentStatus::LabelPurchased
                | ShipmentStatus::InTransit
                | ShipmentStatus::Delivered
                | ShipmentStatus::Exception
        );
        if labelled_status && shipment.label_id.is_none() {
            problem(format!(
                "shipment {id} is {:?} without a label",
                shipment.status
            ));
        }
        if !labelled_status && shipment.label_id.is_some() {
            problem(format!(
                "shipment {id} is {:?} but carries a label",
                shipment.status
            ));
        }
    }
    // Computed once: checking each order against every shipment would make this oracle
    // quadratic in the run's length (the oracles benchmark caught it).
    let labelled_orders: std::collections::BTreeSet<&str> = tables
        .shipments
        .values()
        .filter(|s| s.shipment.label_id.is_some())
        .map(|s| s.shipment.order_id.as_str())
        .collect();
    for (id, record) in &tables.orders {
        for shipment_id in &record.order.shipment_ids {
            match tables.shipments.get(shipment_id) {
                None => problem(format!(
                    "order {id} lists shipment {shipment_id}, which does not exist"
                )),
                Some(shipment) if shipment.shipment.order_id != *id => {
                    problem(format!(
                        "order {id} lists shipment {shipment_id} of order {}",
                        shipment.shipment.order_id
                    ));
                }
                Some(_) => {}
            }
        }
        let labelled = labelled_orders.contains(id.as_str());
        if labelled && record.order.status == OrderStatus::Created {
            problem(format!(
                "order {id} has a labelled shipment but is still `created`"
            ));
        }
        if !labelled && record.order.status != OrderStatus::Created {
            problem(format!(
                "order {id} is {:?} without any labelled shipment",
                record.order.status
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Fixture, assert_one, ok_attempt, shipment};
    use super::*;
    use crate::history::OpKind;

    #[test]
    fn a_read_going_backwards_is_caught() {
        // Proves a later read seeing an earlier state than a finished read is caught.
        let mut fixture = Fixture::happy();
        let read = |status| OpOutcome::Ok {
            status: 200,
            replayed: false,
            resource: Resource::Shipment(Box::new(shipment(
                "shp_1",
                "ord_1",
                status,
                Some("lbl_1"),
            ))),
        };
        fixture.op(
            "merchant-0",
            OpKind::GetShipment,
            None,
            None,
            None,
            vec![ok_attempt(200, None)],
            read(ShipmentStatus::Delivered),
        );
        fixture.op(
            "merchant-0",
            OpKind::GetShipment,
            None,
            None,
            None,
            vec![ok_attempt(200, None)],
            read(ShipmentStatus::InTransit),
        );
        assert_one(
            &fixture.check(ORACLE),
            "moved backwards from Delivered to InTransit",
        );
    }

    #[test]
    fn inconsistent_final_state_is_caught() {
        // Proves each kind of inconsistency is caught: an unlisted shipment, a labelled
        // status without a label, and an order left `created` with a labelled shipment.
        let mut unlisted = Fixture::happy();
        unlisted
            .tables
            .orders
            .get_mut("ord_1")
            .unwrap()
            .order
            .shipment_ids
            .clear();
        assert_one(&unlisted.check(ORACLE), "does not list its shipment shp_1");

        let mut unlabelled = Fixture::happy();
        unlabelled
            .tables
            .shipments
            .get_mut("shp_1")
            .unwrap()
            .shipment
            .label_id = None;
        let found = unlabelled.check(ORACLE);
        assert!(
            found
                .iter()
                .any(|v| v.message.contains("LabelPurchased without a label")),
            "{found:#?}"
        );

        let mut stale = Fixture::happy();
        stale.tables.orders.get_mut("ord_1").unwrap().order.status = OrderStatus::Created;
        assert_one(&stale.check(ORACLE), "still `created`");
    }
}
