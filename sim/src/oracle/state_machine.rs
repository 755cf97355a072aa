//! `state_machine`: resources only move forward through their kind's states, and the final
//! state is consistent: every child belongs to a parent of the same caller that lists it
//! (when the target keeps such lists), a resource whose state says its downstream effect is
//! done carries its reference and no other does, and the target's own invariants hold.
//!
//! Every answer is the resource it claims to be: a 2xx answer whose body the target's own
//! adapter cannot read as the documented resource, or a read answered with another
//! resource than the one asked for, is a violation (judged from the wire: the attempt's
//! status and the body the adapter parsed, not from what the client concluded).
//!
//! Observations are the states clients read (reads and fresh creates; replays are stored
//! snapshots by design and are left out). A read that starts after another read of the same
//! resource finished must not see an earlier state.

use std::collections::BTreeMap;

use super::{OracleInput, OracleKind, Violation};
use shipsim_system::client::AttemptOutcome;

use crate::run::history::{OpId, OpOutcome};

const ORACLE: OracleKind = OracleKind::StateMachine;

/// One observed state of a resource: (invoked µs, completed µs, rank, op, state).
type Observation = (u64, u64, usize, OpId, String);

pub(super) fn check(input: &OracleInput<'_>) -> Vec<Violation> {
    let mut found = answers_are_resources(input);
    found.extend(observed_monotonic(input));
    found.extend(final_state(input));
    found
}

/// Every 2xx answer is the documented resource, and a read's is the one it asked for.
fn answers_are_resources(input: &OracleInput<'_>) -> Vec<Violation> {
    let mut found = Vec::new();
    for op in input.history.operations() {
        let kind = input.kind(op).name();
        match &op.outcome {
            // The client ends an operation on its first 2xx answer, so a last attempt
            // answered 2xx with the operation not Ok means the body could not be read
            // (`ClientError::Decode`): injected faults never answer 2xx themselves, and a
            // body cut by a reset fails as a transport error, not as a 2xx.
            OpOutcome::Failed { reason } | OpOutcome::Ambiguous { reason } => {
                let Some(last) = op.attempts.last() else {
                    continue;
                };
                if let AttemptOutcome::Response { status, .. } = &last.outcome
                    && (200..300).contains(status)
                {
                    found.push(
                        Violation::new(
                            ORACLE,
                            input,
                            format!(
                                "op {}: answered {status} with a body that is not a {kind}",
                                op.id
                            ),
                        )
                        .ops([op.id])
                        .evidence(reason.clone()),
                    );
                }
            }
            OpOutcome::Ok { resource, .. } => {
                if let Some(target) = &op.target
                    && resource.id != *target
                {
                    found.push(
                        Violation::new(
                            ORACLE,
                            input,
                            format!(
                                "op {}: a read of {kind} {target} was answered with {}",
                                op.id, resource.id
                            ),
                        )
                        .ops([op.id]),
                    );
                }
            }
            OpOutcome::Pending | OpOutcome::Rejected { .. } => {}
        }
    }
    found
}

fn observed_monotonic(input: &OracleInput<'_>) -> Vec<Violation> {
    let mut per_resource: BTreeMap<(usize, String), Vec<Observation>> = BTreeMap::new();
    for op in input.history.operations() {
        let OpOutcome::Ok {
            resource,
            replayed: false,
            ..
        } = &op.outcome
        else {
            continue;
        };
        let Some(state) = &resource.state else {
            continue;
        };
        let Some(rank) = input.kind(op).rank(state) else {
            continue;
        };
        per_resource
            .entry((op.kind.kind_index(), resource.id.clone()))
            .or_default()
            .push((
                op.invoked_at_us,
                op.completed_at_us,
                rank,
                op.id,
                state.clone(),
            ));
    }
    let mut found = Vec::new();
    for ((_, id), mut observations) in per_resource {
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
    let Some(inventory) = input.inventory else {
        return Vec::new();
    };
    let live = &inventory.live;
    let mut found = Vec::new();
    let mut problem = |message: String| found.push(Violation::new(ORACLE, input, message));
    let by_id: BTreeMap<&str, &crate::target::Resource> = live
        .resources()
        .iter()
        .map(|r| (r.id.as_str(), r))
        .collect();
    for resource in live.resources() {
        let id = &resource.id;
        if let Some(parent_id) = &resource.parent {
            match by_id.get(parent_id.as_str()) {
                None => problem(format!(
                    "{} {id} belongs to {parent_id}, which does not exist",
                    resource.kind
                )),
                Some(parent) => {
                    if parent.caller != resource.caller {
                        problem(format!(
                            "{} {id} of {} is on {} {} of {}",
                            resource.kind, resource.caller, parent.kind, parent.id, parent.caller
                        ));
                    }
                    if let Some(children) = &parent.children
                        && !children.contains(id)
                    {
                        problem(format!(
                            "{} {} does not list its {} {id}",
                            parent.kind, parent.id, resource.kind
                        ));
                    }
                }
            }
        }
        for child_id in resource.children.iter().flatten() {
            match by_id.get(child_id.as_str()) {
                None => problem(format!(
                    "{} {id} lists {child_id}, which does not exist",
                    resource.kind
                )),
                Some(child) if child.parent.as_deref() != Some(id.as_str()) => {
                    problem(format!(
                        "{} {id} lists {} {child_id} of {}",
                        resource.kind,
                        child.kind,
                        child.parent.as_deref().unwrap_or("no parent")
                    ));
                }
                Some(_) => {}
            }
        }
        let state = resource.state.as_deref().unwrap_or("-");
        match (resource.settled, &resource.downstream_ref) {
            (Some(true), None) => problem(format!(
                "{} {id} is {state} without its downstream reference",
                resource.kind
            )),
            (Some(false), Some(reference)) => problem(format!(
                "{} {id} is {state} but carries {reference}",
                resource.kind
            )),
            _ => {}
        }
    }
    for inconsistency in &live.inconsistencies {
        problem(inconsistency.clone());
    }
    found
}

#[cfg(test)]
mod tests {
    use shipsim_system::api::{OrderStatus, ShipmentStatus};

    use super::super::testing::{Fixture, Resource, assert_one, ok_attempt, op_kind, shipment};
    use super::*;

    #[test]
    fn a_success_whose_body_is_not_the_resource_is_caught() {
        // Proves a 2xx answer the adapter could not read as the resource is caught, and a
        // read answered with another resource than the one it asked for.
        let mut fixture = Fixture::happy();
        fixture.op(
            "merchant-0",
            op_kind("get_shipment"),
            None,
            None,
            Some("shp_1"),
            vec![ok_attempt(200, None)],
            OpOutcome::Failed {
                reason: "undecodable 200 response: EOF while parsing".into(),
            },
        );
        assert_one(
            &fixture.check(ORACLE),
            "answered 200 with a body that is not a shipment",
        );

        let mut fixture = Fixture::happy();
        fixture.op(
            "merchant-0",
            op_kind("get_shipment"),
            None,
            None,
            Some("shp_2"),
            vec![ok_attempt(200, None)],
            OpOutcome::Ok {
                status: 200,
                replayed: false,
                resource: Resource::Shipment(Box::new(shipment(
                    "shp_1",
                    "ord_1",
                    ShipmentStatus::LabelPurchased,
                    Some("lbl_1"),
                )))
                .into(),
            },
        );
        assert_one(
            &fixture.check(ORACLE),
            "a read of shipment shp_2 was answered with shp_1",
        );
    }

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
            )))
            .into(),
        };
        fixture.op(
            "merchant-0",
            op_kind("get_shipment"),
            None,
            None,
            None,
            vec![ok_attempt(200, None)],
            read(ShipmentStatus::Delivered),
        );
        fixture.op(
            "merchant-0",
            op_kind("get_shipment"),
            None,
            None,
            None,
            vec![ok_attempt(200, None)],
            read(ShipmentStatus::InTransit),
        );
        assert_one(
            &fixture.check(ORACLE),
            "moved backwards from delivered to in_transit",
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
            found.iter().any(|v| v
                .message
                .contains("label_purchased without its downstream reference")),
            "{found:#?}"
        );

        let mut stale = Fixture::happy();
        stale.tables.orders.get_mut("ord_1").unwrap().order.status = OrderStatus::Created;
        assert_one(&stale.check(ORACLE), "still `created`");
    }
}
