//! `stable_replays`: every success for an idempotency key returns the first outcome's ids
//! (and downstream reference); a key reused with another body is refused, never applied or
//! replayed; a request is never refused as a reuse when its caller never used the key
//! otherwise; what comes back belongs to the caller and to the parent it asked about; and,
//! for a target that documents a key-length limit, a key exactly at the limit is accepted
//! like any key while a key past it is refused with 400 and has no effect (judged from the
//! statuses on the wire and the target's store, not from the client's reading).

use std::collections::BTreeMap;

use super::{OracleInput, OracleKind, Violation};
use crate::run::history::{OpKind, OpOutcome, Operation};
use shipsim_system::client::AttemptOutcome;

const ORACLE: OracleKind = OracleKind::StableReplays;

/// The parts of an outcome a replay must reproduce.
fn definite(input: &OracleInput<'_>, op: &Operation) -> Option<String> {
    match &op.outcome {
        OpOutcome::Ok {
            resource, status, ..
        } => Some(format!(
            "{status} {} {} ref {}",
            op.kind.resource(),
            resource.id,
            resource.downstream_ref.as_deref().unwrap_or("-")
        )),
        OpOutcome::Rejected { status, code }
            if !input.conventions.is_key_reused(*status, code.as_deref()) =>
        {
            Some(format!("{status} {}", code.as_deref().unwrap_or("-")))
        }
        _ => None,
    }
}

pub(super) fn check(input: &OracleInput<'_>) -> Vec<Violation> {
    let mut found = Vec::new();
    let mut groups: BTreeMap<(&str, &str, OpKind), Vec<&Operation>> = BTreeMap::new();
    for op in input
        .history
        .operations()
        .iter()
        .filter(|op| op.kind.is_write())
    {
        if let Some(key) = op.key.as_deref() {
            groups
                .entry((&op.caller, key, op.kind.clone()))
                .or_default()
                .push(op);
        }
    }
    for ((caller, key, _), ops) in &groups {
        // The request the key stands for: the first one answered with success (every later
        // success is that request or a replay of it). Not simply the first invoked: that one
        // may never have reached the service (sent to a crashed host, held back by the
        // client's own limiter), leaving the key free for the next request.
        let first = ops
            .iter()
            .copied()
            .find(|op| matches!(op.outcome, OpOutcome::Ok { .. }))
            .unwrap_or(ops[0]);
        let first_body = first.body.as_deref();
        let first_parent = first.parent.as_deref();
        let request = |op: &Operation| (op.body.clone(), op.parent.clone());
        let mut outcomes: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for op in ops {
            let same_request =
                op.body.as_deref() == first_body && op.parent.as_deref() == first_parent;
            let reuse_refused = matches!(
                &op.outcome,
                OpOutcome::Rejected { status, code } if input.conventions.is_key_reused(*status, code.as_deref())
            );
            // Another request sent with this key (at least one attempt) before this one
            // ended: only that can make this one a reuse.
            let other_request_sent = ops.iter().any(|other| {
                !other.attempts.is_empty()
                    && other.invoked_at_us <= op.completed_at_us
                    && request(other) != request(op)
            });
            if !same_request && matches!(op.outcome, OpOutcome::Ok { .. }) {
                found.push(
                    Violation::new(
                        ORACLE,
                        input,
                        format!("key `{key}` of {caller} reused with a different request was answered with success"),
                    )
                    .ops([first.id, op.id])
                    .evidence(format!("first request (op {}): {}", first.id, first_body.unwrap_or("-")))
                    .evidence(format!("reused with (op {}): {}", op.id, op.body.as_deref().unwrap_or("-")))
                    .evidence(format!("answer: {}", op.outcome.label())),
                );
            }
            if reuse_refused && !other_request_sent {
                found.push(
                    Violation::new(
                        ORACLE,
                        input,
                        format!("op {} refused as a reused key, but {caller} only ever sent `{key}` with this request", op.id),
                    )
                    .ops([op.id])
                    .evidence("another caller's use of the same key leaked into this caller's scope"),
                );
            }
            if same_request && let Some(outcome) = definite(input, op) {
                outcomes.entry(outcome).or_default().push(op.id);
            }
        }
        if outcomes.len() > 1 {
            let mut violation = Violation::new(
                ORACLE,
                input,
                format!(
                    "key `{key}` of {caller} got {} different outcomes for one request",
                    outcomes.len()
                ),
            );
            for (outcome, ids) in &outcomes {
                violation = violation
                    .ops(ids.iter().copied())
                    .evidence(format!("{outcome}: ops {ids:?}"));
            }
            found.push(violation);
        }
    }
    ownership(input, &mut found);
    key_length(input, &mut found);
    found
}

/// Refusals a request meets before its idempotency key is read (the caller's credentials,
/// then the service's rate limit): a key past the limit may be answered with these rather
/// than 400, nothing having executed either way. Any other 4xx means the key was used.
const REFUSED_BEFORE_THE_KEY: [u16; 3] = [401, 403, 429];

/// The key-length rule, both sides of the boundary: a key of exactly the documented limit
/// is a key like any other (no attempt answered 400: nothing else in the request differs
/// from the workload's other, valid, requests); a key past it is refused with 400 before
/// anything executes (no attempt answered 2xx, every answered refusal a 400, and no
/// resource stored under the key).
fn key_length(input: &OracleInput<'_>, found: &mut Vec<Violation>) {
    let Some(max) = input.conventions.key_len_max else {
        return;
    };
    for op in input
        .history
        .operations()
        .iter()
        .filter(|op| op.kind.is_write())
    {
        for attempt in &op.attempts {
            let (Some(key), AttemptOutcome::Response { status, .. }) =
                (attempt.idempotency_key.as_deref(), &attempt.outcome)
            else {
                continue;
            };
            let verdict = if key.len() == max && *status == 400 {
                format!("a key of exactly {max} characters (the limit) was refused with 400")
            } else if key.len() > max && (200..300).contains(status) {
                format!(
                    "a key of {} characters (limit {max}) was accepted with {status}",
                    key.len()
                )
            } else if key.len() > max
                && (400..500).contains(status)
                && *status != 400
                && !REFUSED_BEFORE_THE_KEY.contains(status)
            {
                format!(
                    "a key of {} characters (limit {max}) was answered {status}, not refused with 400 before anything executed",
                    key.len()
                )
            } else {
                continue;
            };
            found.push(
                Violation::new(ORACLE, input, format!("op {}: {verdict}", op.id))
                    .ops([op.id])
                    .evidence(format!(
                        "attempt {} of {} sent `{}…` ({} characters) and was answered {status}",
                        attempt.index,
                        op.caller,
                        key.chars().take(16).collect::<String>(),
                        key.len()
                    )),
            );
        }
        // No effect: nothing stored under a key past the limit, whatever the client heard.
        if let (Some(key), Some(inventory)) = (op.key.as_deref(), input.inventory)
            && key.len() > max
            && let Some(resource) = inventory.live.resources().iter().find(|r| {
                r.caller == op.caller
                    && r.key.as_deref() == Some(key)
                    && r.kind == op.kind.resource()
            })
        {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "op {}: {} {} was stored under a key of {} characters (limit {max})",
                        op.id,
                        resource.kind,
                        resource.id,
                        key.len()
                    ),
                )
                .ops([op.id]),
            );
        }
    }
}

/// What comes back belongs to the caller that asked (by the target's store when it gives
/// one, else by who else was answered with the same resource) and to the parent asked for.
fn ownership(input: &OracleInput<'_>, found: &mut Vec<Violation>) {
    // Without the store: the first caller answered with a resource stands for its owner.
    let mut first_holder: BTreeMap<(usize, &str), &Operation> = BTreeMap::new();
    for op in input.history.operations() {
        let OpOutcome::Ok { resource, .. } = &op.outcome else {
            continue;
        };
        let owner = match input.inventory {
            Some(inventory) => inventory
                .live
                .get(op.kind.resource(), &resource.id)
                .map(|r| r.caller.clone()),
            None => {
                let holder = first_holder
                    .entry((op.kind.kind_index(), resource.id.as_str()))
                    .or_insert(op);
                Some(holder.caller.clone())
            }
        };
        if let Some(owner) = owner
            && owner != op.caller
        {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!("{} received {} of {owner}", op.caller, resource.id),
                )
                .ops([op.id])
                .evidence(format!(
                    "op {} ({}) of {} was answered with another merchant's resource",
                    op.id,
                    op.kind.name(),
                    op.caller
                )),
            );
        }
        if let (Some(asked), Some(parent)) = (op.parent.as_deref(), resource.parent.as_deref())
            && op.kind.is_write()
            && parent != asked
        {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "{} create on {asked} answered with {} {} of {parent}",
                        op.kind.resource(),
                        op.kind.resource(),
                        resource.id
                    ),
                )
                .ops([op.id]),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Resource, op_kind};
    use shipsim_system::api::ShipmentStatus;

    use super::super::testing::{Fixture, assert_one, attempt, ok, ok_attempt, shipment};
    use super::*;
    use shipsim_system::client::AttemptOutcome;

    #[test]
    fn replay_with_other_ids_is_caught() {
        // Proves a retry of the same request answered with a different shipment is caught.
        let mut fixture = Fixture::happy();
        fixture.op(
            "merchant-0",
            op_kind("create_shipment"),
            Some("ship-0"),
            Some("{\"s\":1}"),
            Some("ord_1"),
            vec![ok_attempt(201, Some("ship-0"))],
            ok(Resource::Shipment(Box::new(shipment(
                "shp_other",
                "ord_1",
                ShipmentStatus::LabelPurchased,
                Some("lbl_x"),
            )))),
        );
        assert_one(
            &fixture.check(ORACLE),
            "got 2 different outcomes for one request",
        );
    }

    #[test]
    fn reused_key_with_other_body_applied_is_caught() {
        // Proves a key reused with a different body must never succeed.
        let mut fixture = Fixture::happy();
        fixture.op(
            "merchant-0",
            op_kind("create_shipment"),
            Some("ship-0"),
            Some("{\"s\":2}"),
            Some("ord_1"),
            vec![ok_attempt(201, Some("ship-0"))],
            ok(Resource::Shipment(Box::new(shipment(
                "shp_1",
                "ord_1",
                ShipmentStatus::LabelPurchased,
                Some("lbl_1"),
            )))),
        );
        assert_one(
            &fixture.check(ORACLE),
            "reused with a different request was answered with success",
        );
    }

    #[test]
    fn a_first_request_that_never_took_effect_leaves_the_key_to_the_next() {
        // Proves the key stands for the first request the service applied, not the first
        // one invoked: a request sent to a crashed host (it timed out, ambiguous) frees the
        // key, a reuse with another body then succeeds, and the settler's re-issue of the
        // lost request is refused as a reuse. None of that is a violation (found by
        // `shipsim explore` seed 124 as two false alarms). An applied first request still
        // makes a successful reuse a violation (the test above).
        let mut fixture = Fixture::new();
        fixture.op(
            "merchant-0",
            op_kind("create_shipment"),
            Some("ship-9"),
            Some("{\"s\":1}"),
            Some("ord_1"),
            vec![attempt(0, 0, AttemptOutcome::Timeout, Some("ship-9"))],
            OpOutcome::Ambiguous {
                reason: "timeout".into(),
            },
        );
        fixture.op(
            "merchant-0",
            op_kind("create_shipment"),
            Some("ship-9"),
            Some("{\"s\":2}"),
            Some("ord_1"),
            vec![ok_attempt(201, Some("ship-9"))],
            ok(Resource::Shipment(Box::new(shipment(
                "shp_9",
                "ord_1",
                ShipmentStatus::LabelPurchased,
                Some("lbl_9"),
            )))),
        );
        fixture.op(
            "merchant-0",
            op_kind("create_shipment"),
            Some("ship-9"),
            Some("{\"s\":1}"),
            Some("ord_1"),
            vec![ok_attempt(422, Some("ship-9"))],
            OpOutcome::Rejected {
                status: 422,
                code: Some("idempotency_key_reused".into()),
            },
        );
        assert_eq!(fixture.check(ORACLE), vec![]);
    }

    #[test]
    fn reuse_refused_for_a_caller_that_never_reused_is_caught() {
        // Proves a 422 key-reused answer to a first use of a key (another caller's key
        // leaking in) is caught; a 422 for a real reuse is fine.
        let mut fixture = Fixture::happy();
        fixture.op(
            "merchant-1",
            op_kind("create_shipment"),
            Some("ship-0"),
            Some("{\"s\":7}"),
            Some("ord_7"),
            vec![ok_attempt(422, Some("ship-0"))],
            OpOutcome::Rejected {
                status: 422,
                code: Some("idempotency_key_reused".into()),
            },
        );
        assert_one(&fixture.check(ORACLE), "refused as a reused key");
        let mut fine = Fixture::happy();
        fine.op(
            "merchant-0",
            op_kind("create_shipment"),
            Some("ship-0"),
            Some("{\"s\":2}"),
            Some("ord_1"),
            vec![ok_attempt(422, Some("ship-0"))],
            OpOutcome::Rejected {
                status: 422,
                code: Some("idempotency_key_reused".into()),
            },
        );
        assert_eq!(fine.check(ORACLE), vec![]);
    }

    #[test]
    fn another_callers_resource_is_caught() {
        // Proves a caller receiving a resource stored for another caller is caught.
        let mut fixture = Fixture::happy();
        fixture.tables.shipments.get_mut("shp_1").unwrap().caller = "merchant-9".into();
        let found = fixture.check(ORACLE);
        assert_one(&found, "merchant-0 received shp_1 of merchant-9");
    }

    /// A shipment create with `key`, answered `status` on the wire and ending in `outcome`.
    fn keyed(fixture: &mut Fixture, key: &str, status: u16, outcome: OpOutcome) {
        fixture.op(
            "merchant-0",
            op_kind("create_shipment"),
            Some(key),
            Some("{\"s\":5}"),
            Some("ord_1"),
            vec![ok_attempt(status, Some(key))],
            outcome,
        );
    }

    fn refused_400() -> OpOutcome {
        OpOutcome::Rejected {
            status: 400,
            code: Some("validation_failed".into()),
        }
    }

    #[test]
    fn a_key_at_the_limit_refused_is_caught() {
        // Proves a key of exactly the documented 255 characters answered 400 on the wire (a
        // service whose length check is off by one) is caught, and that a key one past the
        // limit answered 400 is fine.
        let at = format!("ship-5-{}", "x".repeat(248));
        assert_eq!(at.len(), 255);
        let mut fixture = Fixture::happy();
        keyed(&mut fixture, &at, 400, refused_400());
        assert_one(
            &fixture.check(ORACLE),
            "a key of exactly 255 characters (the limit) was refused with 400",
        );
        let mut fine = Fixture::happy();
        keyed(&mut fine, &format!("{at}x"), 400, refused_400());
        assert_eq!(fine.check(ORACLE), vec![]);
    }

    #[test]
    fn a_key_past_the_limit_accepted_or_stored_is_caught() {
        // Proves a key of 256 characters answered with success is caught from the wire
        // status, that one answered with another refusal than 400 (the service looked the
        // key up instead of refusing it first) is caught, and that a resource stored under
        // it is caught even when the client heard 400.
        let long = format!("ship-6-{}", "x".repeat(249));
        assert_eq!(long.len(), 256);
        let mut accepted = Fixture::happy();
        keyed(
            &mut accepted,
            &long,
            201,
            ok(Resource::Shipment(Box::new(shipment(
                "shp_6",
                "ord_1",
                ShipmentStatus::LabelPurchased,
                Some("lbl_6"),
            )))),
        );
        assert_one(
            &accepted.check(ORACLE),
            "a key of 256 characters (limit 255) was accepted with 201",
        );
        let mut looked_up = Fixture::happy();
        keyed(
            &mut looked_up,
            &long,
            422,
            OpOutcome::Rejected {
                status: 422,
                code: Some("carrier_rejected".into()),
            },
        );
        assert_one(
            &looked_up.check(ORACLE),
            "was answered 422, not refused with 400",
        );
        // Rate limited before the key was read: a refusal too, and nothing executed (found
        // by `shipsim explore` seed 58 once it drew keys past the limit with a rate limit).
        let mut rate_limited = Fixture::happy();
        keyed(
            &mut rate_limited,
            &long,
            429,
            OpOutcome::Rejected {
                status: 429,
                code: Some("rate_limited".into()),
            },
        );
        assert_eq!(rate_limited.check(ORACLE), vec![]);
        let mut stored = Fixture::happy();
        keyed(&mut stored, &long, 400, refused_400());
        stored.put_shipment(
            "merchant-0",
            &long,
            shipment(
                "shp_6",
                "ord_1",
                ShipmentStatus::LabelPurchased,
                Some("lbl_6"),
            ),
        );
        assert_one(
            &stored.check(ORACLE),
            "shipment shp_6 was stored under a key of 256 characters",
        );
    }
}
