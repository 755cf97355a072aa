//! `acknowledged_writes`: every write the target acknowledged is in its durable store, as
//! acknowledged: a resource answered with a downstream reference (a label, a charge) has
//! that reference on disk. A write that is only in memory at the end would be lost by a
//! crash now, so it counts even if no crash happened.
//!
//! It reads the target's inventory; a target that gives none is judged by reading every
//! acknowledged resource back through its API after the run (see the runner).

use super::{OracleInput, OracleKind, Violation};
use crate::history::{OpOutcome, Operation};
use crate::target::Seen;

const ORACLE: OracleKind = OracleKind::AcknowledgedWrites;

pub(super) fn check(input: &OracleInput<'_>) -> Vec<Violation> {
    let mut found = Vec::new();
    let Some(inventory) = input.inventory else {
        return read_back(input);
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

/// Without the target's store: every acknowledged resource, read back through the API at
/// the end of the run, must still be served, as acknowledged.
fn read_back(input: &OracleInput<'_>) -> Vec<Violation> {
    let mut reads: std::collections::BTreeMap<(usize, &str), &Operation> =
        std::collections::BTreeMap::new();
    for op in input.history.operations() {
        if op.phase == crate::history::Phase::Verify
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
}
