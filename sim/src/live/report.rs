//! A live run in the report model's terms: the pure conversion of a [`LiveRun`] into
//! [`LiveReport`], which `reports` renders (`shipsim_reports::text::live`). It measures
//! nothing and renders nothing.

use std::collections::BTreeSet;

use shipsim_reports::model::{
    LiveLatency, LiveLedger, LiveOracle, LiveOracleSkipped, LiveProxy, LiveReport, LiveRule,
    LiveState, LiveViolation,
};

use super::driver::{LiveRun, StateSource};
use crate::output::stats::{SeedStats, Stats};
use crate::run::history::Phase;
use crate::scenario::Scenario;

impl LiveRun {
    /// The report model of this run of `scenario` against `target`.
    #[must_use]
    pub fn report(&self, scenario: &Scenario, target: &str) -> LiveReport {
        let mut stats = Stats::default();
        stats.add(&SeedStats::of(&self.history, &self.trace, &self.endpoints));
        let latency_ms = stats
            .e2e
            .all()
            .filter(|(_, histogram)| !histogram.is_empty())
            .map(|(endpoint, histogram)| LiveLatency {
                route: endpoint.route().to_string(),
                p50: histogram.value_at_quantile(0.5),
                p95: histogram.value_at_quantile(0.95),
                max: histogram.max(),
            })
            .collect();
        let proxies = self
            .proxies
            .iter()
            .map(|proxy| LiveProxy {
                host: proxy.host.name().to_string(),
                upstream: proxy.upstream.clone(),
                rules: proxy
                    .rules
                    .iter()
                    .map(|rule| LiveRule {
                        index: rule.index as u64,
                        describe: rule.describe.clone(),
                        window: rule.window.clone(),
                        fired: proxy.fired.get(&rule.index).copied().unwrap_or(0),
                    })
                    .collect(),
            })
            .collect();
        LiveReport {
            scenario: scenario.name.clone(),
            target: target.to_string(),
            seed: self.seed,
            run_id: self.run_id.clone(),
            operations: stats.operations.clone(),
            requests: stats.requests.clone(),
            retries: stats.retries,
            replays: stats.replays,
            workload_ms: self.workload_ms,
            total_ms: self.total_ms,
            latency_ms,
            proxies,
            http_faults_unapplied: self.proxies.is_empty()
                && scenario.faults.iter().any(|f| f.kind.http_rule().is_some()),
            faults_not_applied: self.faults_not_applied.clone(),
            state: self.state(),
            duplicate_resources: self.duplicates.shipments,
            duplicate_effects: self.duplicates.labels,
            oracles: self.oracles(),
            oracles_skipped: self
                .oracles_skipped
                .iter()
                .map(|(oracle, reason)| LiveOracleSkipped {
                    name: oracle.name().to_string(),
                    reason: reason.clone(),
                })
                .collect(),
            violations: self
                .violations
                .iter()
                .map(|violation| LiveViolation {
                    oracle: violation.oracle.name().to_string(),
                    seed: violation.seed,
                    message: violation.message.clone(),
                    operations: violation
                        .operations
                        .iter()
                        .map(|&id| u64::from(id))
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect(),
                    evidence: violation.evidence.clone(),
                })
                .collect(),
        }
    }

    /// How the final state was read, and what it held.
    fn state(&self) -> LiveState {
        let orders = self.tables.orders.len() as u64;
        let shipments = self.tables.shipments.len() as u64;
        let labels = self.sales.as_ref().map(|sales| sales.len() as u64);
        match self.state_source {
            StateSource::Admin => LiveState::Admin {
                orders,
                shipments,
                labels,
            },
            StateSource::ApiReads => LiveState::ApiReads {
                orders,
                shipments,
                labels,
            },
            StateSource::ReadBack => LiveState::ReadBack {
                reads: self
                    .history
                    .operations()
                    .iter()
                    .filter(|op| op.phase == Phase::Verify)
                    .count() as u64,
                ledgers: self
                    .ledgers
                    .iter()
                    .map(|(name, effects)| LiveLedger {
                        name: name.clone(),
                        effects: *effects as u64,
                    })
                    .collect(),
            },
        }
    }

    /// Each oracle run, with the violations it found.
    fn oracles(&self) -> Vec<LiveOracle> {
        self.oracles_run
            .iter()
            .map(|(oracle, caveat)| LiveOracle {
                name: oracle.name().to_string(),
                violations: self
                    .violations
                    .iter()
                    .filter(|v| v.oracle == *oracle)
                    .count() as u64,
                caveat: caveat.clone(),
            })
            .collect()
    }
}
