//! Phase 4, second half: which oracles can judge a live run (and with what caveat), and
//! their verdicts on the history and the final state.

use std::collections::BTreeSet;

use shipsim_system::api::ShipmentStatus;
use shipsim_system::store::Tables;

use super::super::proxy;
use super::options::LiveOptions;
use super::state::FinalState;
use super::{LiveRun, StateSource};
use crate::oracle::{Duplicates, OracleInput, OracleKind, Violation};
use crate::reference::inventory_of;
use crate::run::history::{History, Trace};
use crate::scenario::Scenario;
use crate::target::Inventories;
use crate::target::plan::Plan;

/// Shipments the service holds that no operation was answered with, other than those whose
/// label the carrier refused (their requests were answered with a stored 422). Only needed
/// when the state comes from API reads, where shipment keys are unknown; with the whole
/// store, `exactly_once` sees the keys.
///
/// After the settle phase every correct creation was answered to someone, unless its
/// operation is still without an answer: a shipment on an order where such an operation of
/// the same merchant was left is that operation's, and `ambiguity_resolved` reports it. Any
/// other is reported with what was observed of it, never with a guessed cause.
fn orphan_violations(input: &OracleInput<'_>, tables: &Tables) -> Vec<Violation> {
    let unresolved: BTreeSet<(&str, &str)> = input
        .history
        .unresolved_writes()
        .filter_map(|op| Some((op.caller.as_str(), op.parent.as_deref()?)))
        .collect();
    tables
        .shipments
        .values()
        .filter(|r| r.idempotency_key.starts_with('?'))
        .filter(|r| r.shipment.status != ShipmentStatus::LabelRejected)
        .filter(|r| !unresolved.contains(&(r.caller.as_str(), r.shipment.order_id.as_str())))
        .map(|record| {
            let shipment = &record.shipment;
            Violation::new(
                OracleKind::ExactlyOnce,
                input,
                format!(
                    "shipment {} of order {} is in the service, but no operation was answered with it",
                    shipment.id, shipment.order_id
                ),
            )
            .evidence(format!(
                "observed: status {}, label {}",
                crate::reference::spelled(&shipment.status),
                shipment.label_id.as_deref().unwrap_or("none")
            ))
            .evidence(format!(
                "every create of {} on order {} ended with an answer, and none named it",
                record.caller, shipment.order_id
            ))
        })
        .collect()
}

/// Oracles to run, each with its caveat if it sees less than in the simulation.
pub type OraclePlan = Vec<(OracleKind, Option<String>)>;

/// Which oracles can judge a live run, and with what caveat; and which cannot, and why.
fn plan(
    scenario: &Scenario,
    source: StateSource,
    ledgers_known: bool,
) -> (OraclePlan, Vec<(OracleKind, String)>) {
    let mut run = Vec::new();
    let mut skipped = Vec::new();
    for oracle in &scenario.oracles {
        let caveat = match (oracle, source) {
            (OracleKind::LatencyBudget, _) => {
                skipped.push((
                    *oracle,
                    "budgets are written for simulated time; live latencies are printed, not judged".to_string(),
                ));
                continue;
            }
            (OracleKind::WebhookOnce, _) => {
                skipped.push((
                    *oracle,
                    "live mode runs no merchant webhook receiver to audit; webhook delivery is judged in the simulation".to_string(),
                ));
                continue;
            }
            (OracleKind::StateMachine, StateSource::ApiReads | StateSource::ReadBack) => Some(
                "the final state is checked over the resources clients know of".to_string(),
            ),
            (OracleKind::ExactlyOnce, StateSource::ApiReads) => Some(
                "keys of shipments no client received are unknown: such shipments are reported as orphans".to_string(),
            ),
            (OracleKind::ExactlyOnce, StateSource::ReadBack) => Some(
                "the target's store is not visible: judged from the answers and the downstream ledgers".to_string(),
            ),
            (OracleKind::AmbiguityResolved, StateSource::ApiReads) => {
                Some("idempotency records are not visible: only pending shipments are checked".to_string())
            }
            (OracleKind::AmbiguityResolved, StateSource::ReadBack) => {
                Some("idempotency records are not visible: judged from the re-issued operations".to_string())
            }
            (OracleKind::AcknowledgedWrites, StateSource::ApiReads | StateSource::ReadBack) => {
                Some("durable means what the API serves after the run".to_string())
            }
            _ => None,
        };
        let caveat = match (oracle, ledgers_known, caveat) {
            (OracleKind::ExactlyOnce, false, Some(c)) if source == StateSource::ReadBack => {
                Some(format!(
                    "{c}; effects not audited (no downstream ledger read: give --downstream NAME=URL)"
                ))
            }
            (OracleKind::ExactlyOnce, false, Some(c)) => {
                Some(format!("{c}; labels not audited (no carrier ledger)"))
            }
            (OracleKind::ExactlyOnce, false, None) => Some(
                "labels not audited: give --carrier-url and the carrier's admin key".to_string(),
            ),
            (_, _, caveat) => caveat,
        };
        run.push((*oracle, caveat));
    }
    (run, skipped)
}

/// Phase 4, second half: the planned oracles' verdicts on the history and the final state,
/// as the run's result (its proxies and timings are filled in by the caller).
pub(super) fn judge(
    options: &LiveOptions,
    plan: &Plan,
    history: History,
    trace: Trace,
    state: FinalState,
) -> LiveRun {
    let scenario = &options.scenario;
    let ledgers_known = !state.ledgers.is_empty() || state.sales.is_some();
    let (oracles_run, oracles_skipped) = self::plan(scenario, state.source, ledgers_known);
    // What the service serves after the run is what it keeps: both views are the same. A
    // described target's store is not visible at all: the oracles judge from the answers,
    // the read-backs and the ledgers.
    let inventories = (state.source != StateSource::ReadBack).then(|| {
        let inventory = inventory_of(&state.tables);
        Inventories {
            live: inventory.clone(),
            durable: inventory,
        }
    });
    let input = OracleInput {
        scenario,
        seed: options.seed,
        history: &history,
        kinds: plan.table.kinds(),
        conventions: &plan.conventions,
        inventory: inventories.as_ref(),
        effects: &state.effects,
        ledgers_read: ledgers_known,
        webhooks: None,
        injections: &[],
    };
    let violations = violations(&input, &oracles_run, &state);
    let duplicates = Duplicates::count(&input);
    LiveRun {
        seed: options.seed,
        run_id: options.run_id.clone(),
        history,
        trace,
        violations,
        oracles_run,
        oracles_skipped,
        proxies: Vec::new(),
        faults_not_applied: faults_not_applied(scenario),
        state_source: state.source,
        tables: state.tables,
        sales: state.sales,
        effects: state.effects,
        ledgers: state.ledgers,
        duplicates,
        endpoints: plan.table.endpoints(),
        workload_ms: 0,
        total_ms: 0,
    }
}

/// Every violation the planned oracles find; with public reads, also the shipments no
/// operation was answered with.
fn violations(
    input: &OracleInput<'_>,
    oracles_run: &OraclePlan,
    state: &FinalState,
) -> Vec<Violation> {
    let mut violations: Vec<Violation> = oracles_run
        .iter()
        .flat_map(|(oracle, _)| oracle.check(input))
        .collect();
    if state.source == StateSource::ApiReads
        && oracles_run
            .iter()
            .any(|(o, _)| *o == OracleKind::ExactlyOnce)
    {
        violations.extend(orphan_violations(input, &state.tables));
    }
    violations
}

/// The scenario's faults that no proxy can apply, each as `#index describe (line N)`.
fn faults_not_applied(scenario: &Scenario) -> Vec<String> {
    scenario
        .faults
        .iter()
        .filter(|f| !proxy::applies_live(f))
        .map(|f| format!("#{} {} (line {})", f.index, f.describe(), f.line))
        .collect()
}

#[cfg(test)]
mod tests {
    use shipsim_system::api::ShipmentStatus;

    use super::*;
    use crate::oracle::testing::{Fixture, ok_attempt, op_kind, shipment};
    use crate::run::history::OpOutcome;

    #[test]
    fn a_shipment_nobody_received_is_reported_as_observed_not_as_a_guess() {
        // Proves the orphan check of public-read runs says what it saw (state, label) rather
        // than "a second shipment", and leaves a pending shipment to `ambiguity_resolved`
        // when an operation of its merchant on its order was left without an answer (a
        // carrier outage, not a duplicate).
        let mut fixture = Fixture::happy();
        fixture.put_shipment(
            "merchant-0",
            "?shp_2",
            shipment("shp_2", "ord_1", ShipmentStatus::PendingLabel, None),
        );
        let found = fixture.with_input(|input| orphan_violations(input, &fixture.tables));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0]
                .message
                .contains("no operation was answered with it")
        );
        assert_eq!(
            found[0].evidence[0],
            "observed: status pending_label, label none"
        );
        assert!(!found[0].to_string().contains("second"), "{}", found[0]);

        fixture.op(
            "merchant-0",
            op_kind("create_shipment"),
            Some("ship-7"),
            Some("{}"),
            Some("ord_1"),
            vec![ok_attempt(503, Some("ship-7"))],
            OpOutcome::Ambiguous {
                reason: "503: carrier unavailable".into(),
            },
        );
        let found = fixture.with_input(|input| orphan_violations(input, &fixture.tables));
        assert_eq!(found, vec![], "the unanswered create accounts for it");
    }
}
