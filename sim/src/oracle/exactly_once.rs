//! `exactly_once`: at most one resource per (caller, idempotency key) and per logical
//! operation, at most one downstream effect (a label, a charge) per resource, and no effect
//! paid for a resource the target does not have.
//!
//! The downstreams' ledgers are the ground truth: an effect is counted where it was
//! performed, not where the target says it was. With the target's inventory, effects that
//! name the resource they were for are matched to it; without, an effect that no resource
//! the clients were answered with carries is one paid for nothing.

use std::collections::{BTreeMap, BTreeSet};

use super::{OracleInput, OracleKind, Violation};
use crate::run::history::{History, OpId, OpOutcome, Phase};
use crate::target::{Effect, Inventory};

const ORACLE: OracleKind = OracleKind::ExactlyOnce;

/// Duplicates in a final state, for the report's totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Duplicates {
    /// Resources of spending kinds beyond the first per (caller, key): the report's
    /// `duplicate_shipments`.
    pub shipments: u64,
    /// Downstream effects beyond the first per resource, and effects no resource carries:
    /// the report's `duplicate_labels`.
    pub labels: u64,
}

impl Duplicates {
    /// Counts duplicates in a run's final state: its inventory (when the target gives one;
    /// otherwise what the clients were answered with) and the downstreams' effects.
    #[must_use]
    pub fn count(input: &OracleInput<'_>) -> Self {
        let spending: BTreeSet<&str> = input
            .kinds
            .iter()
            .filter(|k| k.is_spending())
            .map(|k| k.name())
            .collect();
        let mut per_key: BTreeMap<(&str, &str, &str), BTreeSet<&str>> = BTreeMap::new();
        match input.inventory {
            Some(inventory) => {
                for resource in inventory.live.resources() {
                    if let Some(key) = &resource.key
                        && spending.contains(resource.kind.as_str())
                    {
                        per_key
                            .entry((&resource.kind, &resource.caller, key))
                            .or_default()
                            .insert(&resource.id);
                    }
                }
            }
            None => {
                for op in input.history.operations() {
                    if let (OpOutcome::Ok { resource, .. }, Some(key)) = (&op.outcome, &op.key)
                        && op.kind.is_write()
                        && spending.contains(op.kind.resource())
                    {
                        per_key
                            .entry((op.kind.resource(), &op.caller, key))
                            .or_default()
                            .insert(&resource.id);
                    }
                }
            }
        }
        let (per_subject, orphans) = effects_by_owner(input);
        Duplicates {
            shipments: per_key
                .iter()
                .map(|((_, caller, key), ids)| {
                    (ids.len() as u64 - 1)
                        .saturating_sub(input.history.created_after_expiry(caller, key))
                })
                .sum(),
            labels: per_subject
                .values()
                .map(|effects| effects.len() as u64 - 1)
                .sum::<u64>()
                + orphans.len() as u64,
        }
    }
}

/// Effects grouped by the resource they were for (by the subject the request named, or
/// else by the resource that carries the effect's id), and the effects no resource
/// carries when nothing names their subject.
fn effects_by_owner<'a>(
    input: &OracleInput<'a>,
) -> (BTreeMap<&'a str, Vec<&'a Effect>>, Vec<&'a Effect>) {
    let carried = carried_refs(input);
    let mut per_subject: BTreeMap<&str, Vec<&Effect>> = BTreeMap::new();
    let mut orphans = Vec::new();
    for effect in input.effects {
        match (&effect.subject, carried.get(effect.id.as_str())) {
            (Some(subject), _) => per_subject.entry(subject).or_default().push(effect),
            (None, Some(owner)) => per_subject.entry(owner).or_default().push(effect),
            (None, None) => orphans.push(effect),
        }
    }
    (per_subject, orphans)
}

/// Downstream reference -> the resource that carries it: from the inventory when there is
/// one, else from every resource a client was answered with.
fn carried_refs<'a>(input: &OracleInput<'a>) -> BTreeMap<&'a str, &'a str> {
    let mut carried = BTreeMap::new();
    match input.inventory {
        Some(inventory) => {
            for resource in inventory.live.resources() {
                if let Some(reference) = &resource.downstream_ref {
                    carried.insert(reference.as_str(), resource.id.as_str());
                }
            }
        }
        None => {
            for op in input.history.operations() {
                if let OpOutcome::Ok { resource, .. } = &op.outcome
                    && let Some(reference) = &resource.downstream_ref
                {
                    carried.insert(reference.as_str(), resource.id.as_str());
                }
            }
        }
    }
    carried
}

/// Every resource id (and parent id) some operation was answered with.
fn answered_ids<'a>(input: &OracleInput<'a>) -> BTreeSet<&'a str> {
    let mut ids = BTreeSet::new();
    for op in input.history.operations() {
        if let OpOutcome::Ok { resource, .. } = &op.outcome {
            ids.insert(resource.id.as_str());
            ids.extend(resource.parent.as_deref());
        }
    }
    ids
}

/// What the history says of the writes left without an answer: the observation that goes
/// with an effect nobody was answered with, instead of a guess at its cause.
fn unresolved_note(input: &OracleInput<'_>) -> String {
    let unresolved = input.history.unresolved_writes().count();
    if unresolved == 0 {
        "every create was answered after the faults healed, and no answer named it".to_string()
    } else {
        format!("{unresolved} create(s) were still without an answer after the faults healed")
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

/// `n` things of kind `kind`, as a phrase: `2 shipments`.
fn plural(n: usize, kind: &str) -> String {
    if n == 1 {
        format!("1 {kind}")
    } else {
        format!("{n} {kind}s")
    }
}

pub(super) fn check(input: &OracleInput<'_>) -> Vec<Violation> {
    let mut found = Vec::new();
    let index = KeyIndex::of(input.history);
    if let Some(inventory) = input.inventory {
        per_key(input, &inventory.live, &index, &mut found);
    }
    per_operation(input, &mut found);
    per_effect(input, &index, &mut found);
    found
}

/// At most one resource of a kind per (caller, key), in the target's own store.
fn per_key(
    input: &OracleInput<'_>,
    inventory: &Inventory,
    index: &KeyIndex,
    found: &mut Vec<Violation>,
) {
    // Children before parents: a duplicated child is the costly one, and is listed first.
    for kind in input.kinds.iter().rev() {
        let mut per_key: BTreeMap<(&str, &str), Vec<&crate::target::Resource>> = BTreeMap::new();
        for resource in inventory
            .resources()
            .iter()
            .filter(|r| r.kind == kind.name())
        {
            if let Some(key) = &resource.key {
                per_key
                    .entry((&resource.caller, key))
                    .or_default()
                    .push(resource);
            }
        }
        for ((caller, key), resources) in &per_key {
            let anew = input.history.created_after_expiry(caller, key);
            if resources.len() as u64 <= 1 + anew {
                continue;
            }
            let mut violation = Violation::new(
                ORACLE,
                input,
                format!(
                    "{} for one idempotency key `{key}` of {caller}",
                    plural(resources.len(), kind.name())
                ),
            )
            .ops(index.ops(caller, key));
            for resource in resources {
                violation = violation.evidence(format!(
                    "{} {}: state {}, {}",
                    kind.name(),
                    resource.id,
                    resource.state.as_deref().unwrap_or("-"),
                    resource
                        .downstream_ref
                        .as_deref()
                        .unwrap_or("no downstream reference")
                ));
            }
            found.push(violation);
        }
    }
}

/// Per logical operation: an operation whose attempts carried several keys (a client that
/// invents a key per attempt) may have created several resources under them.
fn per_operation(input: &OracleInput<'_>, found: &mut Vec<Violation>) {
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
        let created: Vec<&str> = match input.inventory {
            Some(inventory) => inventory
                .live
                .resources()
                .iter()
                .filter(|r| {
                    r.caller == op.caller && r.key.as_deref().is_some_and(|k| keys.contains(&k))
                })
                .map(|r| r.id.as_str())
                .collect(),
            None => Vec::new(),
        };
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
}

/// At most one effect per resource, none for a resource the target does not have, and
/// every downstream reference a resource carries performed for it.
fn per_effect(input: &OracleInput<'_>, index: &KeyIndex, found: &mut Vec<Violation>) {
    let (per_subject, orphans) = effects_by_owner(input);
    let owner_ops = |id: &str| -> Vec<OpId> {
        match input.inventory.and_then(|i| i.live.find(id)) {
            Some(resource) => resource
                .key
                .as_deref()
                .map_or_else(Vec::new, |key| index.ops(&resource.caller, key)),
            None => input
                .history
                .operations()
                .iter()
                .filter(
                    |op| matches!(&op.outcome, OpOutcome::Ok { resource, .. } if resource.id == id),
                )
                .map(|op| op.id)
                .collect(),
        }
    };
    // Without the target's store, what clients were answered with stands for what it holds:
    // after the settle phase every correct create was answered to someone.
    let answered = (input.inventory.is_none()).then(|| answered_ids(input));
    for (subject, effects) in &per_subject {
        let first = effects[0];
        let unanswered = answered
            .as_ref()
            .is_some_and(|ids| first.subject.is_some() && !ids.contains(*subject));
        if effects.len() > 1 {
            let mut violation = Violation::new(
                ORACLE,
                input,
                format!(
                    "{} {} bought for {subject}",
                    effects.len(),
                    if first.what.is_empty() {
                        "effects".to_string()
                    } else {
                        format!("{} {}s", first.downstream, first.what)
                    }
                ),
            )
            .ops(owner_ops(subject));
            for effect in effects {
                violation = violation.evidence(format!(
                    "{} {} at {} ms under key {}",
                    effect.what,
                    effect.id,
                    effect.at_ms,
                    effect.key.as_deref().unwrap_or("(none)")
                ));
            }
            if unanswered {
                violation = violation.evidence(format!("no client was answered with {subject}"));
            }
            found.push(violation);
        } else if unanswered {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "{} {} {} was made for {subject}, which no client was answered with",
                        first.downstream, first.what, first.id
                    ),
                )
                .evidence(format!(
                    "made at {} ms under key {}",
                    first.at_ms,
                    first.key.as_deref().unwrap_or("(none)")
                ))
                .evidence(unresolved_note(input)),
            );
        } else if let Some(inventory) = input.inventory
            && inventory.live.find(subject).is_none()
        {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "{} {} bought for {subject}, which the target does not have",
                        first.what, first.id
                    ),
                )
                .evidence(
                    "the resource was lost or never committed: the effect was paid for nothing",
                ),
            );
        }
    }
    for effect in &orphans {
        found.push(
            Violation::new(
                ORACLE,
                input,
                format!(
                    "{} {} at {} belongs to no resource",
                    effect.what, effect.id, effect.downstream
                ),
            )
            .evidence(format!(
                "performed at {} ms under key {}; its request named no resource, and no resource the target holds or answered with carries it",
                effect.at_ms,
                effect.key.as_deref().unwrap_or("(none)")
            )),
        );
    }
    // An empty ledger is evidence (nothing was performed); no ledger at all is none.
    if !input.ledgers_read {
        return;
    }
    let Some(inventory) = input.inventory else {
        return;
    };
    let performed: BTreeSet<(&str, Option<&str>)> = input
        .effects
        .iter()
        .map(|e| (e.id.as_str(), e.subject.as_deref()))
        .collect();
    for resource in inventory.live.resources() {
        let Some(reference) = &resource.downstream_ref else {
            continue;
        };
        let for_it = performed.contains(&(reference.as_str(), Some(resource.id.as_str())))
            || performed.contains(&(reference.as_str(), None));
        if !for_it {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "{} {} carries {reference}, which no downstream performed for it",
                        resource.kind, resource.id
                    ),
                )
                .ops(
                    resource
                        .key
                        .as_deref()
                        .map_or_else(Vec::new, |key| index.ops(&resource.caller, key)),
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::op_kind;
    use shipsim_system::api::ShipmentStatus;

    use super::super::testing::{Fixture, assert_one, ok_attempt, shipment};
    use super::*;
    use crate::run::history::OpOutcome;

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
    fn a_shipment_created_anew_after_its_key_expired_is_allowed_once() {
        // Proves the retention allowance is exact: a key reused past its retention and
        // answered 201 (a probe on the wire) may stand beside the first shipment, and a
        // third shipment under the key is still caught.
        let mut fixture = Fixture::happy();
        fixture.put_shipment(
            "merchant-0",
            "ship-0",
            shipment("shp_2", "ord_1", ShipmentStatus::PendingLabel, None),
        );
        fixture.history.probe(crate::oracle::Probe {
            rule: Some(crate::oracle::ProbeRule::ReusedAfterExpiry),
            status: Some(201),
            scope: Some(("merchant-0".into(), "ship-0".into())),
            ..crate::oracle::Probe::default()
        });
        assert_eq!(fixture.check(ORACLE), vec![]);
        assert_eq!(fixture.duplicates().shipments, 0);
        fixture.put_shipment(
            "merchant-0",
            "ship-0",
            shipment("shp_3", "ord_1", ShipmentStatus::PendingLabel, None),
        );
        assert_one(
            &fixture.check(ORACLE),
            "3 shipments for one idempotency key `ship-0`",
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
        assert_one(&found, "2 carrier labels bought for shp_1");
        assert_eq!(found[0].evidence.len(), 2);
        assert_eq!(fixture.duplicates().labels, 1);
    }

    #[test]
    fn label_for_an_unknown_shipment_is_caught() {
        // Proves a label sold for a shipment the service lost is a violation.
        let mut fixture = Fixture::happy();
        fixture.sell("lbl_9", "shp_lost", Some("label-shp_lost"));
        assert_one(&fixture.check(ORACLE), "which the target does not have");
    }

    #[test]
    fn a_label_no_ledger_holds_is_caught_even_when_the_ledger_is_empty() {
        // Proves an empty ledger is evidence, not absence: a shipment carrying a label the
        // carrier's ledger does not hold is a violation when the ledger holds nothing at all
        // (a carrier that forgot its sales), as when it holds other sales.
        let mut fixture = Fixture::happy();
        fixture.sales.clear();
        assert_one(
            &fixture.check(ORACLE),
            "shp_1 carries lbl_1, which no downstream performed for it",
        );
    }

    #[test]
    fn an_operation_with_several_keys_creating_several_shipments_is_caught() {
        // Proves the per-operation check: a client that changed keys between attempts and
        // created two shipments is caught even though each key has one shipment.
        let mut fixture = Fixture::happy();
        fixture.op(
            "merchant-0",
            op_kind("create_shipment"),
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

    #[test]
    fn without_the_store_an_effect_nobody_was_answered_with_is_caught() {
        // Proves the check for targets without an inventory: a label bought for a shipment
        // that no operation was ever answered with is one violation, whose evidence says what
        // was observed (every create answered, none naming it), while the happy run holds.
        let mut fixture = Fixture::happy();
        fixture.without_inventory = true;
        assert_eq!(fixture.check(ORACLE), vec![]);
        fixture.sell("lbl_9", "shp_lost", Some("label-shp_lost"));
        let found = fixture.check(ORACLE);
        assert_one(
            &found,
            "label lbl_9 was made for shp_lost, which no client was answered with",
        );
        assert!(
            found[0].evidence[1].contains("every create was answered"),
            "{:?}",
            found[0].evidence
        );
    }

    #[test]
    fn without_the_store_the_evidence_names_what_was_left_unanswered() {
        // Proves the message says what was observed when evidence is partial: with a create
        // still ambiguous after heal, the evidence counts it instead of claiming a duplicate.
        let mut fixture = Fixture::happy();
        fixture.without_inventory = true;
        fixture.op(
            "merchant-0",
            op_kind("create_shipment"),
            Some("ship-5"),
            Some("{}"),
            Some("ord_1"),
            vec![ok_attempt(503, Some("ship-5"))],
            OpOutcome::Ambiguous {
                reason: "503".into(),
            },
        );
        fixture.sell("lbl_9", "shp_pending", Some("label-shp_pending"));
        let found = fixture.check(ORACLE);
        assert_one(&found, "which no client was answered with");
        assert!(
            found[0].evidence[1].contains("1 create(s) were still without an answer"),
            "{:?}",
            found[0].evidence
        );
    }
}
