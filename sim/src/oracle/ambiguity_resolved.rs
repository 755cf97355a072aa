//! `ambiguity_resolved`: every operation whose outcome the client could not know was
//! re-issued after the faults healed and got a definite answer; and nothing is left
//! half-done in the target's store (a resource stuck waiting for its downstream effect, an
//! idempotency record stuck in progress), when the target says how to read it.
//!
//! Which operations were ambiguous is judged from the wire, not taken from the client's
//! word: a write that ended without a definite answer although one of its attempts timed
//! out or was answered with a 5xx or the target's in-flight status (the server may have
//! acted on it) must have been treated as ambiguous, that is re-issued after the heal. And
//! the other way: an operation reported ambiguous must have had such an attempt. One whose
//! every attempt was a definite answer (a 4xx other than the in-flight status, a 2xx) or a
//! connection refused before anything was sent had a known outcome (nothing happened), and
//! calling it ambiguous tells its caller something the wire contradicts.

use std::collections::BTreeMap;

use super::{OracleInput, OracleKind, Violation};
use shipsim_system::client::AttemptOutcome;
use shipsim_system::transport::TransportError;

use crate::run::history::{OpId, OpOutcome, Operation, Phase};

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

    for op in input.history.workload() {
        not_called_failed(input, op, &mut found);
    }
    for op in input.history.operations() {
        not_called_ambiguous(input, op, &mut found);
    }

    let Some(inventory) = input.inventory else {
        return found;
    };
    for unfinished in &inventory.live.unfinished {
        let ops: Vec<OpId> = input
            .history
            .operations()
            .iter()
            .filter(|op| {
                op.caller == unfinished.caller && op.key.as_deref() == Some(unfinished.key.as_str())
            })
            .map(|op| op.id)
            .collect();
        found.push(
            Violation::new(ORACLE, input, unfinished.what.clone())
                .ops(ops)
                .evidence(format!("key `{}` of {}", unfinished.key, unfinished.caller)),
        );
    }
    found
}

/// A write that ended `Failed` ("nothing happened") although the wire shows an attempt the
/// server may have acted on: its outcome was unknown, yet nobody re-issued it.
fn not_called_failed(input: &OracleInput<'_>, op: &Operation, found: &mut Vec<Violation>) {
    if !op.kind.is_write() || !matches!(op.outcome, OpOutcome::Failed { .. }) {
        return;
    }
    let in_flight = input.conventions.in_flight_status;
    let unknown = op
        .attempts
        .iter()
        .find_map(|attempt| match &attempt.outcome {
            AttemptOutcome::Timeout => Some((attempt.index, "no answer before the timeout".into())),
            AttemptOutcome::Response { status, .. } if *status >= 500 || *status == in_flight => {
                Some((attempt.index, format!("answered {status}")))
            }
            AttemptOutcome::Response { .. } | AttemptOutcome::Transport(_) => None,
        });
    if let Some((index, what)) = unknown {
        found.push(
            Violation::new(
                ORACLE,
                input,
                format!(
                    "op {} ended as failed (nothing happened), but its attempt {index} was {what}: the server may have acted, and the write was never re-issued",
                    op.id
                ),
            )
            .ops([op.id])
            .evidence(format!("outcome: {}", op.outcome.label()))
            .evidence(wire_attempts(op)),
        );
    }
}

/// The evidence line listing an operation's attempts as the wire carried them.
fn wire_attempts(op: &Operation) -> String {
    let labels: Vec<_> = op.attempts.iter().map(|a| a.outcome.label()).collect();
    format!("attempts on the wire: {}", labels.join(", "))
}

/// An operation reported ambiguous although no attempt on the wire could have been acted on
/// unseen: every attempt was answered with a definite status (not 5xx, not the in-flight
/// status) or failed to connect. Read from the attempts' raw outcomes (status, timeout, the
/// transport's error kind), not from the client's `is_ambiguous`.
fn not_called_ambiguous(input: &OracleInput<'_>, op: &Operation, found: &mut Vec<Violation>) {
    if !matches!(op.outcome, OpOutcome::Ambiguous { .. }) {
        return;
    }
    let in_flight = input.conventions.in_flight_status;
    let unknown = op.attempts.iter().any(|attempt| match &attempt.outcome {
        AttemptOutcome::Timeout => true,
        AttemptOutcome::Transport(TransportError::Connect(_)) => false,
        // A connection broken after sending (`Io`), a bad response (`Protocol`), or a kind
        // this oracle does not know: the request may have been acted on.
        AttemptOutcome::Transport(_) => true,
        AttemptOutcome::Response { status, .. } => *status >= 500 || *status == in_flight,
    });
    if unknown {
        return;
    }
    found.push(
        Violation::new(
            ORACLE,
            input,
            format!(
                "op {} was reported ambiguous, but none of its {} attempts could have been acted on unseen (no timeout, no 5xx or {in_flight}, no connection broken after sending): its outcome was known",
                op.id,
                op.attempts.len()
            ),
        )
        .ops([op.id])
        .evidence(format!("outcome: {}", op.outcome.label()))
        .evidence(wire_attempts(op)),
    );
}

#[cfg(test)]
mod tests {
    use super::super::testing::op_kind;
    use shipsim_system::api::ShipmentStatus;
    use shipsim_system::store::{IdemScope, IdemState, IdempotencyRecord, RecoveryPoint};

    use super::super::testing::{Fixture, assert_one, attempt, ok_attempt, shipment};
    use super::*;

    fn ambiguous(fixture: &mut Fixture) -> OpId {
        fixture.op(
            "merchant-0",
            op_kind("create_shipment"),
            Some("ship-5"),
            Some("{}"),
            Some("ord_1"),
            vec![ok_attempt(503, Some("ship-5"))],
            OpOutcome::Ambiguous {
                reason: "timeout".into(),
            },
        )
    }

    #[test]
    fn unresolved_ambiguity_is_caught() {
        // Proves an ambiguous operation with no settle operation is a violation.
        let mut fixture = Fixture::happy();
        ambiguous(&mut fixture);
        assert_one(&fixture.check(ORACLE), "was never re-issued after heal");
    }

    #[test]
    fn a_write_called_failed_after_a_5xx_or_a_timeout_is_caught() {
        // Proves the oracle judges ambiguity from the attempts on the wire, not from the
        // outcome the client's classification gave: a write that got a 503, or a timeout,
        // and ended as `Failed` was ambiguous and never re-issued; one that got a definite
        // 4xx only is not.
        for (attempts, expected) in [
            (
                vec![ok_attempt(503, Some("ship-5"))],
                "attempt 0 was answered 503",
            ),
            (
                vec![
                    ok_attempt(429, Some("ship-5")),
                    attempt(1, 50, AttemptOutcome::Timeout, Some("ship-5")),
                ],
                "attempt 1 was no answer before the timeout",
            ),
        ] {
            let mut fixture = Fixture::happy();
            fixture.op(
                "merchant-0",
                op_kind("create_shipment"),
                Some("ship-5"),
                Some("{}"),
                Some("ord_1"),
                attempts,
                OpOutcome::Failed {
                    reason: "gave up".into(),
                },
            );
            assert_one(&fixture.check(ORACLE), expected);
        }
        let mut fixture = Fixture::happy();
        fixture.op(
            "merchant-0",
            op_kind("create_shipment"),
            Some("ship-6"),
            Some("{}"),
            Some("ord_1"),
            vec![ok_attempt(400, Some("ship-6"))],
            OpOutcome::Failed {
                reason: "bad request".into(),
            },
        );
        assert!(fixture.check(ORACLE).is_empty());
    }

    #[test]
    fn a_write_called_ambiguous_on_definite_answers_is_caught() {
        // Proves the oracle holds "ambiguous" to what the wire allows: a write reported
        // ambiguous whose attempts were a definite 4xx and a refused connection (nothing the
        // server could have acted on unseen) is a violation, whatever the client said; one
        // with a 409, a broken connection after sending or a timeout among them is not.
        let write = |fixture: &mut Fixture, key: &str, attempts| {
            fixture.op(
                "merchant-0",
                op_kind("create_shipment"),
                Some(key),
                Some("{}"),
                Some("ord_1"),
                attempts,
                OpOutcome::Ambiguous {
                    reason: "gave up".into(),
                },
            )
        };
        let mut fixture = Fixture::happy();
        write(
            &mut fixture,
            "ship-5",
            vec![
                ok_attempt(429, Some("ship-5")),
                attempt(
                    1,
                    50,
                    AttemptOutcome::Transport(TransportError::Connect("refused".into())),
                    Some("ship-5"),
                ),
            ],
        );
        let found: Vec<_> = fixture
            .check(ORACLE)
            .into_iter()
            .filter(|v| v.message.contains("reported ambiguous"))
            .collect();
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].message.contains("none of its 2 attempts"),
            "{found:#?}"
        );
        for outcome in [
            AttemptOutcome::Timeout,
            AttemptOutcome::Transport(TransportError::Io("reset".into())),
        ] {
            let mut fixture = Fixture::happy();
            write(
                &mut fixture,
                "ship-6",
                vec![
                    ok_attempt(400, Some("ship-6")),
                    attempt(1, 50, outcome, Some("ship-6")),
                ],
            );
            assert!(
                !fixture
                    .check(ORACLE)
                    .iter()
                    .any(|v| v.message.contains("reported ambiguous"))
            );
        }
        let mut fixture = Fixture::happy();
        write(
            &mut fixture,
            "ship-7",
            vec![ok_attempt(409, Some("ship-7"))],
        );
        assert!(
            !fixture
                .check(ORACLE)
                .iter()
                .any(|v| v.message.contains("reported ambiguous"))
        );
    }

    #[test]
    fn settle_that_stays_unknown_is_caught() {
        // Proves a settle operation that is itself ambiguous leaves the original unknown.
        let mut fixture = Fixture::happy();
        let original = ambiguous(&mut fixture);
        let settle = fixture.op_at(
            "merchant-0",
            "settler",
            Phase::Settle,
            op_kind("create_shipment"),
            Some("ship-5"),
            Some("{}"),
            Some("ord_1"),
            vec![ok_attempt(503, Some("ship-5"))],
            OpOutcome::Ambiguous {
                reason: "still".into(),
            },
        );
        // Link the settle operation to the original, as the settler does.
        let mut rebuilt = crate::run::history::History::new();
        for op in fixture.history.operations() {
            let mut op = op.clone();
            if op.id == settle {
                op.resolves = Some(original);
            }
            let outcome = op.outcome.clone();
            let attempts = op.attempts.clone();
            let completed = op.completed_at_us;
            let id = rebuilt.invoke(op);
            rebuilt.complete(id, completed, attempts, outcome);
        }
        fixture.history = rebuilt;
        assert_one(&fixture.check(ORACLE), "is still unknown after heal");
    }

    #[test]
    fn half_done_state_is_caught() {
        // Proves a shipment left pending its label and a record left in progress are each
        // a violation.
        let mut fixture = Fixture::happy();
        fixture.put_shipment(
            "merchant-0",
            "ship-9",
            shipment("shp_9", "ord_1", ShipmentStatus::PendingLabel, None),
        );
        fixture
            .tables
            .orders
            .get_mut("ord_1")
            .unwrap()
            .order
            .shipment_ids
            .push("shp_9".into());
        fixture.tables.idempotency.insert(
            IdemScope {
                caller: "merchant-0".into(),
                key: "ship-9".into(),
            },
            IdempotencyRecord {
                scope: IdemScope {
                    caller: "merchant-0".into(),
                    key: "ship-9".into(),
                },
                fingerprint: "f".into(),
                created_at_ms: 0,
                state: IdemState::InProgress {
                    lock: None,
                    recovery: RecoveryPoint::ShipmentCreated {
                        shipment_id: "shp_9".into(),
                    },
                },
            },
        );
        let found = fixture.check(ORACLE);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found[0].message.contains("left pending its label"));
        assert!(found[1].message.contains("left in progress"));
    }
}
