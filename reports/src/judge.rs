//! Judgements made over a whole scenario rather than one seed: fault coverage and latency
//! budgets. They are built here, from model values only, so that a run and a merge of its
//! shards derive them identically (same oracle name, message, evidence and replay command).

use crate::model::{BudgetReport, FaultReport, LatencySummary, MomentReport, ViolationReport};

/// Pseudo-oracle of a fault that never fired in any seed of a scenario.
pub const FAULT_COVERAGE: &str = "fault_coverage";

/// Oracle of the per-endpoint latency budgets (judged over all seeds of a scenario).
pub const LATENCY_BUDGET: &str = "latency_budget";

/// Pseudo-oracle of seeds whose simulation could not finish.
pub const LIVENESS: &str = "liveness";

/// Pseudo-oracle of seeds that did not replay identically.
pub const DETERMINISM: &str = "determinism";

/// Pseudo-oracle of a moment a scenario requires (`reach = [...]`) that no seed reached.
pub const REACHABILITY: &str = "reachability";

/// Whether violations of `oracle` are derived from a whole scenario (and so re-derived,
/// not summed, when shards merge).
#[must_use]
pub fn is_scenario_wide(oracle: &str) -> bool {
    oracle == FAULT_COVERAGE || oracle == LATENCY_BUDGET || oracle == REACHABILITY
}

/// The violation of the required moment `moment` never having been reached in `seeds_run`
/// seeds of the scenario at `path`, whose first seed is `first_seed`.
#[must_use]
pub fn moment_never_reached(
    path: &str,
    moment: &MomentReport,
    seeds_run: u64,
    first_seed: u64,
) -> ViolationReport {
    ViolationReport {
        oracle: REACHABILITY.to_string(),
        seed: first_seed,
        message: format!(
            "required moment `{}` was never reached in {seeds_run} seed(s)",
            moment.name
        ),
        operations: Vec::new(),
        evidence: vec![
            "the scenario claims to cross this rule's boundary but no seed did: a green run would prove nothing about it".into(),
        ],
        faults_active: Vec::new(),
        timeline: Vec::new(),
        repro: None,
        replay_command: format!("shipsim run {path} --seed {first_seed}"),
    }
}

/// The violation of `fault` never having fired in `seeds_run` seeds of the scenario at
/// `path`, whose first seed is `first_seed`.
#[must_use]
pub fn fault_never_fired(
    path: &str,
    fault: &FaultReport,
    seeds_run: u64,
    first_seed: u64,
) -> ViolationReport {
    ViolationReport {
        oracle: FAULT_COVERAGE.to_string(),
        seed: first_seed,
        message: format!(
            "fault #{} (line {}) never fired in {seeds_run} seed(s): {}",
            fault.index, fault.line, fault.description
        ),
        operations: Vec::new(),
        evidence: vec![
            "an unreachable fault tests nothing: fix its window, target or probability".into(),
        ],
        faults_active: Vec::new(),
        timeline: Vec::new(),
        repro: None,
        replay_command: format!("shipsim run {path} --seed {first_seed}"),
    }
}

/// The value a budget `metric` (`p50`, `p95`, `p99`, `max`) reads from `summary`.
#[must_use]
pub fn budget_observed_ms(metric: &str, summary: &LatencySummary) -> u64 {
    match metric {
        "p50" => summary.p50,
        "p95" => summary.p95,
        "p99" => summary.p99,
        _ => summary.max,
    }
}

/// The violation of `budget` (already judged failed) over `samples` operations in
/// `seeds_run` seeds of the scenario at `path`, whose first seed is `first_seed`.
#[must_use]
pub fn budget_exceeded(
    path: &str,
    budget: &BudgetReport,
    samples: u64,
    seeds_run: u64,
    first_seed: u64,
) -> ViolationReport {
    ViolationReport {
        oracle: LATENCY_BUDGET.to_string(),
        seed: first_seed,
        message: format!(
            "{} {} is {} ms, budget {} ms",
            budget.endpoint, budget.metric, budget.observed_ms, budget.limit_ms
        ),
        operations: Vec::new(),
        evidence: vec![format!(
            "over {samples} operation(s) in {seeds_run} seed(s)"
        )],
        faults_active: Vec::new(),
        timeline: Vec::new(),
        repro: None,
        replay_command: format!("shipsim run {path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_reads_the_named_metric() {
        // Proves each budget metric reads its own percentile, and anything else the max.
        let summary = LatencySummary {
            count: 10,
            p50: 1,
            p95: 2,
            p99: 3,
            p999: 4,
            max: 5,
            mean: 1.5,
        };
        let read: Vec<u64> = ["p50", "p95", "p99", "max"]
            .iter()
            .map(|m| budget_observed_ms(m, &summary))
            .collect();
        assert_eq!(read, vec![1, 2, 3, 5]);
        assert!(is_scenario_wide(FAULT_COVERAGE));
        assert!(is_scenario_wide(LATENCY_BUDGET));
        assert!(is_scenario_wide(REACHABILITY));
        assert!(!is_scenario_wide(LIVENESS));
    }
}
