//! Measurements of one seed's run, cheap to merge across seeds: latency histograms per
//! endpoint (end to end and per attempt, simulated ms) and counts of operations and
//! requests by outcome.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use shipsim_reports::histogram::{new_latency_histogram, record_clamped};
use shipsim_reports::model::{OperationCounts, RequestCounts};
use shipsim_system::api::Endpoint;
use shipsim_system::client::AttemptOutcome;

use crate::history::{History, OpOutcome, Phase};

/// Latency and counts of one or more seeds.
#[derive(Clone, Debug)]
pub struct Stats {
    /// End-to-end latency of workload operations per endpoint, ms.
    pub e2e: BTreeMap<Endpoint, Histogram<u64>>,
    /// Latency of single attempts of workload operations per endpoint, ms.
    pub attempts: BTreeMap<Endpoint, Histogram<u64>>,
    /// Operations by outcome.
    pub operations: OperationCounts,
    /// Attempts by outcome.
    pub requests: RequestCounts,
    /// Attempts beyond the first.
    pub retries: u64,
    /// Responses marked replayed.
    pub replays: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            e2e: Endpoint::ALL
                .iter()
                .map(|e| (*e, new_latency_histogram()))
                .collect(),
            attempts: Endpoint::ALL
                .iter()
                .map(|e| (*e, new_latency_histogram()))
                .collect(),
            operations: OperationCounts::default(),
            requests: RequestCounts::default(),
            retries: 0,
            replays: 0,
        }
    }
}

impl Stats {
    /// Measures a finished history.
    #[must_use]
    pub fn of(history: &History) -> Self {
        let mut stats = Stats::default();
        let resolved: std::collections::BTreeSet<u32> = history
            .operations()
            .iter()
            .filter_map(|op| op.resolves)
            .collect();
        for op in history.operations() {
            if op.phase == Phase::Settle {
                continue;
            }
            let endpoint = op.kind.endpoint();
            stats.operations.total += 1;
            match &op.outcome {
                OpOutcome::Ok { .. } => stats.operations.ok += 1,
                OpOutcome::Rejected { .. } | OpOutcome::Failed { .. } => {
                    stats.operations.failed += 1
                }
                OpOutcome::Ambiguous { .. } => {
                    stats.operations.ambiguous += 1;
                    if resolved.contains(&op.id) {
                        stats.operations.resolved_after_heal += 1;
                    }
                }
                OpOutcome::Pending => {}
            }
            let elapsed_ms = (op.completed_at_us - op.invoked_at_us) / 1_000;
            if let Some(histogram) = stats.e2e.get_mut(&endpoint) {
                record_clamped(histogram, elapsed_ms);
            }
            stats.retries += op.attempts.len().saturating_sub(1) as u64;
            for attempt in &op.attempts {
                if let Some(histogram) = stats.attempts.get_mut(&endpoint) {
                    record_clamped(histogram, attempt.ended_at_ms - attempt.sent_at_ms);
                }
                let requests = &mut stats.requests;
                requests.total += 1;
                match &attempt.outcome {
                    AttemptOutcome::Response {
                        status, replayed, ..
                    } => {
                        if *replayed {
                            stats.replays += 1;
                        }
                        match status {
                            200..=299 => requests.s2xx += 1,
                            429 => requests.s429 += 1,
                            400..=499 => requests.s4xx += 1,
                            _ => requests.s5xx += 1,
                        }
                    }
                    AttemptOutcome::Timeout => requests.timeouts += 1,
                    AttemptOutcome::Transport(_) => requests.transport_errors += 1,
                }
            }
        }
        stats
    }

    /// Adds `other` into `self`; histograms merge exactly.
    ///
    /// # Panics
    /// Never: histograms share bounds by construction.
    pub fn merge(&mut self, other: &Stats) {
        for (endpoint, histogram) in &other.e2e {
            self.e2e
                .entry(*endpoint)
                .or_insert_with(new_latency_histogram)
                .add(histogram)
                .expect("histograms share bounds");
        }
        for (endpoint, histogram) in &other.attempts {
            self.attempts
                .entry(*endpoint)
                .or_insert_with(new_latency_histogram)
                .add(histogram)
                .expect("histograms share bounds");
        }
        let (a, b) = (&mut self.operations, &other.operations);
        a.total += b.total;
        a.ok += b.ok;
        a.failed += b.failed;
        a.ambiguous += b.ambiguous;
        a.resolved_after_heal += b.resolved_after_heal;
        let (a, b) = (&mut self.requests, &other.requests);
        a.total += b.total;
        a.s2xx += b.s2xx;
        a.s4xx += b.s4xx;
        a.s5xx += b.s5xx;
        a.s429 += b.s429;
        a.timeouts += b.timeouts;
        a.transport_errors += b.transport_errors;
        self.retries += other.retries;
        self.replays += other.replays;
    }
}
