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
    /// Webhook traffic, for runs with webhooks.
    pub webhooks: Option<WebhookStats>,
}

/// Webhook measurements of one or more seeds.
#[derive(Clone, Debug)]
pub struct WebhookStats {
    /// Events delivered.
    pub delivered: u64,
    /// Attempts the deliveries took.
    pub attempts: u64,
    /// Duplicates absorbed by receivers.
    pub duplicates_absorbed: u64,
    /// Deliveries refused by receivers.
    pub rejected: u64,
    /// Events dead-lettered at least once.
    pub dead_lettered: u64,
    /// Carrier event due -> delivered to the service, ms.
    pub inbound: Histogram<u64>,
    /// Service commit -> merchant acted, ms.
    pub outbound: Histogram<u64>,
}

impl Default for WebhookStats {
    fn default() -> Self {
        WebhookStats {
            delivered: 0,
            attempts: 0,
            duplicates_absorbed: 0,
            rejected: 0,
            dead_lettered: 0,
            inbound: new_latency_histogram(),
            outbound: new_latency_histogram(),
        }
    }
}

impl WebhookStats {
    /// Measures a finished run's webhook traffic.
    #[must_use]
    pub fn of(
        view: &crate::oracle::WebhookView,
        tables: &shipsim_system::store::Tables,
        trace: &crate::history::Trace,
    ) -> Self {
        use shipsim_system::observe::SystemEvent;
        use shipsim_system::store::Delivery;
        let mut stats = WebhookStats::default();
        for item in &view.tracking {
            if let Delivery::Delivered {
                attempts,
                delivered_at_ms,
            } = item.delivery
            {
                stats.delivered += 1;
                stats.attempts += u64::from(attempts);
                record_clamped(
                    &mut stats.inbound,
                    delivered_at_ms.saturating_sub(item.due_at_ms),
                );
            }
        }
        for record in tables.outbox.values() {
            if let Delivery::Delivered { attempts, .. } = record.delivery {
                stats.delivered += 1;
                stats.attempts += u64::from(attempts);
            }
        }
        for effect in &view.effects {
            record_clamped(
                &mut stats.outbound,
                effect.at_ms.saturating_sub(effect.created_at_ms),
            );
        }
        let (receiver_duplicates, receiver_rejected) = view.receiver_absorbed;
        stats.duplicates_absorbed = receiver_duplicates;
        stats.rejected = receiver_rejected;
        let mut dead: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
        for event in trace.events() {
            if let crate::history::EventKind::System(system) = &event.kind {
                match system {
                    SystemEvent::WebhookReceived {
                        receiver,
                        duplicate: true,
                        ..
                    } if receiver == "service" => {
                        stats.duplicates_absorbed += 1;
                    }
                    SystemEvent::WebhookRejected { receiver, .. } if receiver == "service" => {
                        stats.rejected += 1
                    }
                    SystemEvent::WebhookDeadLettered { event_id, .. } => {
                        dead.insert(event_id);
                    }
                    _ => {}
                }
            }
        }
        stats.dead_lettered = dead.len() as u64;
        stats
    }

    fn merge(&mut self, other: &WebhookStats) {
        self.delivered += other.delivered;
        self.attempts += other.attempts;
        self.duplicates_absorbed += other.duplicates_absorbed;
        self.rejected += other.rejected;
        self.dead_lettered += other.dead_lettered;
        self.inbound
            .add(&other.inbound)
            .expect("histograms share bounds");
        self.outbound
            .add(&other.outbound)
            .expect("histograms share bounds");
    }
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
            webhooks: None,
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
        if let Some(theirs) = &other.webhooks {
            self.webhooks
                .get_or_insert_with(WebhookStats::default)
                .merge(theirs);
        }
    }
}
