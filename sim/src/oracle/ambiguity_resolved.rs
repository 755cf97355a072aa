//! `ambiguity_resolved`: every operation whose outcome the client could not know was
//! re-issued after the faults healed and got a definite answer; and nothing is left
//! half-done: no shipment stuck without its label, no idempotency record stuck in progress.

use std::collections::BTreeMap;

use shipsim_system::api::ShipmentStatus;
use shipsim_system::store::IdemState;

use super::{OracleInput, OracleKind, Violation};
use crate::history::{OpId, OpOutcome, Operation, Phase};

const ORACLE: OracleKind = OracleKind::AmbiguityResolved;

pub(super) fn check(input: &OracleInput<'_>) -> Vec<Violation> {
    let mut found = Vec::new();
    let mut resolutions: BTreeMap<OpId, &Operation> = BTreeMap::new();
    for op in input
        .history
        .operations()
        .iter()
        .filter(|op| op.phase == Phase::Settle)
    {
        if let Some(original) = op.resolves {
            // Later settle attempts (after a 409) supersede earlier ones.
            resolutions.insert(original, op);
        }
    }
    for op in input
        .history
        .workload()
        .filter(|op| matches!(op.outcome, OpOutcome::Ambiguous { .. }))
    {
        match resolutions.get(&op.id) {
            None => found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!("ambiguous op {} was never re-issued after heal", op.id),
                )
                .ops([op.id])
                .evidence(format!("outcome: {}", op.outcome.label())),
            ),
            Some(settle) => match &settle.outcome {
                OpOutcome::Ok { .. } | OpOutcome::Rejected { .. } => {}
                other => found.push(
                    Violation::new(
                        ORACLE,
                        input,
                        format!("ambiguous op {} is still unknown after heal", op.id),
                    )
                    .ops([op.id, settle.id])
                    .evidence(format!("workload outcome: {}", op.outcome.label()))
                    .evidence(format!("after heal: {}", other.label())),
                ),
            },
        }
    }

    for (id, record) in &input.tables.shipments {
        if record.shipment.status == ShipmentStatus::PendingLabel {
            let ops: Vec<OpId> = input
                .history
                .operations()
                .iter()
                .filter(|op| {
                    op.caller == record.caller
                        && op.key.as_deref() == Some(record.idempotency_key.as_str())
                })
                .map(|op| op.id)
                .collect();
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!("shipment {id} was left pending its label"),
                )
                .ops(ops)
                .evidence(format!(
                    "key `{}` of {}",
                    record.idempotency_key, record.caller
                )),
            );
        }
    }
    for (scope, record) in &input.tables.idempotency {
        if let IdemState::InProgress { recovery, .. } = &record.state {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "idempotency record `{}` of {} was left in progress",
                        scope.key, scope.caller
                    ),
                )
                .evidence(format!("recovery point: {recovery:?}")),
            );
        }
    }
    found
}
