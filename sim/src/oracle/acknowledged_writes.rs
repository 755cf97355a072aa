//! `acknowledged_writes`: every write the target acknowledged is in its durable store, as
//! acknowledged: a resource answered with a downstream reference (a label, a charge) has
//! that reference on disk. A write that is only in memory at the end would be lost by a
//! crash now, so it counts even if no crash happened.
//!
//! It reads the target's inventory; a target that gives none is judged by reading every
//! acknowledged resource back through its API after the run (see the runner).
//!
//! Reads during the workload are judged too, from what came back: a caller reading a
//! resource it was acknowledged before the read began must not be told it does not exist
//! (404), nor be served another resource.

use super::{OracleInput, OracleKind, Violation};
use crate::run::history::{OpOutcome, Operation};
use crate::target::Seen;

const ORACLE: OracleKind = OracleKind::AcknowledgedWrites;

pub(super) fn check(input: &OracleInput<'_>) -> Vec<Violation> {
    let mut found = workload_reads(input);
    let Some(inventory) = input.inventory else {
        found.extend(read_back(input));
        return found;
    };
    for (op, resource) in acknowledged(input) {
        let kind = op.kind.resource();
        match inventory.durable.get(kind, &resource.id) {
            None => found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!("acknowledged {kind} {} is not durable", resource.id),
                )
                .ops([op.id])
                .evidence(lost_or_volatile(inventory.live.get(kind, &resource.id).is_some())),
            ),
            Some(stored) if stored.downstream_ref != resource.downstream_ref => found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "{kind} {} was acknowledged with a downstream reference the store does not have",
                        resource.id
                    ),
                )
                .ops([op.id])
                .evidence(format!(
                    "acknowledged {}, stored {} (state {})",
                    resource.downstream_ref.as_deref().unwrap_or("-"),
                    stored.downstream_ref.as_deref().unwrap_or("-"),
                    stored.state.as_deref().unwrap_or("-")
                )),
            ),
            Some(_) => {}
        }
    }
    found
}

/// Every write the target acknowledged, with the resource it answered with.
fn acknowledged<'a>(input: &'a OracleInput<'_>) -> impl Iterator<Item = (&'a Operation, &'a Seen)> {
    input
        .history
        .operations()
        .iter()
        .filter(|op| op.kind.is_write())
        .filter_map(|op| match &op.outcome {
            OpOutcome::Ok { resource, .. } => Some((op, resource)),
            _ => None,
        })
}

/// Every workload read of a resource its caller was acknowledged before the read was
/// invoked: answered with that resource, or with anything but "not found".
fn workload_reads(input: &OracleInput<'_>) -> Vec<Violation> {
    // (kind, id, caller) -> the acknowledging write, the earliest if several.
    let mut acked: std::collections::BTreeMap<(usize, &str, &str), &Operation> =
        std::collections::BTreeMap::new();
    for (op, resource) in acknowledged(input) {
        let entry = acked
            .entry((
                op.kind.kind_index(),
                resource.id.as_str(),
                op.caller.as_str(),
            ))
            .or_insert(op);
        if op.completed_at_us < entry.completed_at_us {
            *entry = op;
        }
    }
    let mut found = Vec::new();
    for read in input.history.workload() {
        if read.kind.is_write() {
            continue;
        }
        let Some(target) = read.target.as_deref() else {
            continue;
        };
        let Some(write) = acked.get(&(read.kind.kind_index(), target, read.caller.as_str())) else {
            continue;
        };
        if write.completed_at_us > read.invoked_at_us {
            continue;
        }
        let kind = read.kind.resource();
        let wrong = match &read.outcome {
            OpOutcome::Rejected { status: 404, .. } => Some(format!(
                "{} was told its acknowledged {kind} {target} does not exist",
                read.caller
            )),
            OpOutcome::Ok { resource, .. } if resource.id != target => Some(format!(
                "{} read its {kind} {target} and was served {kind} {}",
                read.caller, resource.id
            )),
            _ => None,
        };
        if let Some(message) = wrong {
            found.push(
                Violation::new(ORACLE, input, message)
                    .ops([write.id, read.id])
                    .evidence(format!("read: {}", read.outcome.label())),
            );
        }
    }
    found
}

/// Without the target's store: every acknowledged resource, read back through the API at
/// the end of the run, must still be served, as acknowledged.
fn read_back(input: &OracleInput<'_>) -> Vec<Violation> {
    let mut reads: std::collections::BTreeMap<(usize, &str), &Operation> =
        std::collections::BTreeMap::new();
    for op in input.history.operations() {
        if op.phase == crate::run::history::Phase::Verify
            && let Some(target) = op.target.as_deref()
        {
            reads.insert((op.kind.kind_index(), target), op);
        }
    }
    let mut found = Vec::new();
    let mut judged = std::collections::BTreeSet::new();
    for (op, resource) in acknowledged(input) {
        let kind = op.kind.resource();
        let Some(read) = reads.get(&(op.kind.kind_index(), resource.id.as_str())) else {
            continue;
        };
        if !judged.insert((
            op.kind.kind_index(),
            resource.id.as_str(),
            op.caller.as_str(),
        )) {
            continue;
        }
        match &read.outcome {
            OpOutcome::Ok {
                resource: served, ..
            } => {
                if served.downstream_ref != resource.downstream_ref
                    && resource.downstream_ref.is_some()
                {
                    found.push(
                        Violation::new(
                            ORACLE,
                            input,
                            format!(
                                "{kind} {} was acknowledged with {}, but is served with {} after the run",
                                resource.id,
                                resource.downstream_ref.as_deref().unwrap_or("-"),
                                served.downstream_ref.as_deref().unwrap_or("no downstream reference")
                            ),
                        )
                        .ops([op.id, read.id]),
                    );
                }
            }
            other => found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "acknowledged {kind} {} could not be read back after the run",
                        resource.id
                    ),
                )
                .ops([op.id, read.id])
                .evidence(format!("read back: {}", other.label()))
                .evidence("a crash or a lost commit may have dropped an acknowledged write"),
            ),
        }
    }
    found
}

fn lost_or_volatile(in_memory: bool) -> &'static str {
    if in_memory {
        "it is in the running process's memory only: a crash now would lose it"
    } else {
        "it is gone: a crash lost it after it was acknowledged"
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Fixture, assert_one};
    use super::*;

    #[test]
    fn acknowledged_but_volatile_write_is_caught() {
        // Proves a shipment acknowledged to the client but absent from the durable view is
        // a violation that says a crash would lose it.
        let mut fixture = Fixture::happy();
        let mut durable = fixture.tables.clone();
        durable.shipments.clear();
        fixture.durable = Some(durable);
        let found = fixture.check(ORACLE);
        assert_one(&found, "acknowledged shipment shp_1 is not durable");
        assert!(found[0].evidence[0].contains("crash now would lose it"));
    }

    #[test]
    fn acknowledged_label_missing_from_store_is_caught() {
        // Proves a shipment stored without the label its client was told about is caught.
        let mut fixture = Fixture::happy();
        let stored = &mut fixture.tables.shipments.get_mut("shp_1").unwrap().shipment;
        stored.label_id = None;
        stored.status = shipsim_system::api::ShipmentStatus::PendingLabel;
        assert_one(
            &fixture.check(ORACLE),
            "acknowledged with a downstream reference the store does not have",
        );
    }

    #[test]
    fn a_read_told_its_acknowledged_resource_is_missing_is_caught() {
        // Proves a caller's read of its own acknowledged order answered 404 (or with another
        // order) is a violation, while another caller's 404 for it is right.
        use super::super::testing::{Resource, ok, ok_attempt, op_kind, order};
        use shipsim_system::api::OrderStatus;
        let not_found = || OpOutcome::Rejected {
            status: 404,
            code: Some("not_found".into()),
        };
        let mut fixture = Fixture::happy();
        fixture.op(
            "merchant-1",
            op_kind("get_order"),
            None,
            None,
            Some("ord_1"),
            vec![ok_attempt(404, None)],
            not_found(),
        );
        assert!(
            fixture.check(ORACLE).is_empty(),
            "another caller's 404 is right"
        );
        fixture.op(
            "merchant-0",
            op_kind("get_order"),
            None,
            None,
            Some("ord_1"),
            vec![ok_attempt(404, None)],
            not_found(),
        );
        assert_one(
            &fixture.check(ORACLE),
            "merchant-0 was told its acknowledged order ord_1 does not exist",
        );
        let mut fixture = Fixture::happy();
        fixture.op(
            "merchant-0",
            op_kind("get_order"),
            None,
            None,
            Some("ord_1"),
            vec![ok_attempt(200, None)],
            ok(Resource::Order(Box::new(order(
                "ord_2",
                OrderStatus::Created,
                &[],
            )))),
        );
        assert_one(
            &fixture.check(ORACLE),
            "merchant-0 read its order ord_1 and was served order ord_2",
        );
    }
}
