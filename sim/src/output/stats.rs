//! Measurements of one seed's run, cheap to merge across seeds: latency histograms per
//! endpoint (end to end and per attempt, simulated ms; end to end also split by whether the
//! operation overlapped a fault), counts of operations and requests by outcome, and the
//! duplicate deliveries the service absorbed.

use std::collections::{BTreeMap, BTreeSet};

use hdrhistogram::Histogram;
use shipsim_reports::histogram::{new_latency_histogram, record_clamped};
use shipsim_reports::model::{OperationCounts, RequestCounts};
use shipsim_system::client::AttemptOutcome;

use shipsim_system::observe::SystemEvent;

use crate::run::history::{Endpoint, EventKind, History, OpOutcome, Phase, Trace};

/// One latency histogram per endpoint, ms. A histogram is allocated on its endpoint's first
/// sample: each holds about 100 KiB of counters (1 ms to an hour at three significant
/// figures), a sweep keeps four sets per scenario, and most scenarios use a few endpoints,
/// so allocating them all up front cost a corpus sweep some 80 MiB of zeroed pages. An
/// endpoint without samples reads as an empty histogram of the same bounds.
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    histograms: BTreeMap<Endpoint, Histogram<u64>>,
    /// Every endpoint of the target, sampled or not: reports list them all.
    declared: BTreeSet<Endpoint>,
}

/// The histogram an endpoint without samples reads as.
static EMPTY_LATENCY: std::sync::LazyLock<Histogram<u64>> =
    std::sync::LazyLock::new(new_latency_histogram);

impl Latencies {
    /// Records one sample of `endpoint`.
    pub fn record(&mut self, endpoint: &Endpoint, ms: u64) {
        if !self.histograms.contains_key(endpoint) {
            self.histograms
                .insert(endpoint.clone(), new_latency_histogram());
        }
        let histogram = self
            .histograms
            .get_mut(endpoint)
            .expect("inserted just above");
        record_clamped(histogram, ms);
    }

    /// Declares the target's endpoints, so that those without samples are listed too.
    pub fn declare<'a>(&mut self, endpoints: impl IntoIterator<Item = &'a Endpoint>) {
        for endpoint in endpoints {
            if !self.declared.contains(endpoint) {
                self.declared.insert(endpoint.clone());
            }
        }
    }

    /// `endpoint`'s histogram (empty if it had no sample).
    #[must_use]
    pub fn get(&self, endpoint: &Endpoint) -> &Histogram<u64> {
        self.histograms.get(endpoint).unwrap_or(&EMPTY_LATENCY)
    }

    /// The histogram of the endpoint with route `route` (empty if it had no sample).
    #[must_use]
    pub fn get_route(&self, route: &str) -> &Histogram<u64> {
        self.histograms
            .iter()
            .find(|(e, _)| e.route() == route)
            .map_or(&EMPTY_LATENCY, |(_, h)| h)
    }

    /// Every endpoint with its histogram, those declared without samples included, in
    /// endpoint order.
    pub fn all(&self) -> impl Iterator<Item = (&Endpoint, &Histogram<u64>)> {
        let mut endpoints: BTreeSet<&Endpoint> = self.declared.iter().collect();
        endpoints.extend(self.histograms.keys());
        endpoints.into_iter().map(|e| (e, self.get(e)))
    }
}

/// Latency and counts of one or more seeds.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// End-to-end latency of workload operations per endpoint, ms.
    pub e2e: Latencies,
    /// Latency of single attempts of workload operations per endpoint, ms.
    pub attempts: Latencies,
    /// End-to-end latency of the workload operations whose span overlapped a fault, ms.
    pub e2e_fault: Latencies,
    /// End-to-end latency of the workload operations that overlapped no fault, ms.
    pub e2e_quiet: Latencies,
    /// Operations and requests by outcome, summed over the seeds.
    pub counts: Counts,
    /// Webhook traffic, for runs with webhooks.
    pub webhooks: Option<WebhookTotals>,
}

/// The counts of one or more seeds, the part of [`SeedStats`] and [`Stats`] that adds up
/// as it is: a seed's are measured by [`SeedStats::of`], a scenario's are their sum.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// Operations by outcome.
    pub operations: OperationCounts,
    /// Attempts by outcome.
    pub requests: RequestCounts,
    /// Attempts beyond the first.
    pub retries: u64,
    /// Responses marked replayed.
    pub replays: u64,
    /// Answers the service replayed from a stored outcome (every phase).
    pub replays_served: u64,
    /// Requests the service refused with 409 because their key was in flight (every phase).
    pub in_flight_conflicts: u64,
}

impl Counts {
    /// Adds `other`'s counts.
    pub fn add(&mut self, other: &Counts) {
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
        self.replays_served += other.replays_served;
        self.in_flight_conflicts += other.in_flight_conflicts;
    }

    /// Duplicate deliveries the service absorbed: replayed answers plus in-flight refusals.
    #[must_use]
    pub fn duplicate_deliveries_absorbed(&self) -> u64 {
        self.replays_served + self.in_flight_conflicts
    }
}

/// One seed's measurements: counts and raw latency samples. Histograms (a few hundred KiB
/// each, zeroed on creation) are built only per scenario, in [`Stats::add`]: building 16 of
/// them per seed cost a tenth of the run time.
#[derive(Clone, Debug, Default)]
pub struct SeedStats {
    /// Every endpoint of the target.
    pub endpoints: Vec<Endpoint>,
    /// End-to-end latency of each workload operation: (endpoint, ms, overlapped a fault).
    pub e2e: Vec<(Endpoint, u64, bool)>,
    /// Latency of each attempt of the workload: (endpoint, ms).
    pub attempts: Vec<(Endpoint, u64)>,
    /// Operations and requests by outcome.
    pub counts: Counts,
    /// Webhook traffic, for runs with webhooks.
    pub webhooks: Option<WebhookStats>,
}

/// Webhook counts of one or more seeds, the part of [`WebhookStats`] and [`WebhookTotals`]
/// that adds up as it is.
#[derive(Clone, Debug, Default)]
pub struct WebhookCounts {
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
}

impl WebhookCounts {
    /// Adds `other`'s counts.
    pub fn add(&mut self, other: &WebhookCounts) {
        self.delivered += other.delivered;
        self.attempts += other.attempts;
        self.duplicates_absorbed += other.duplicates_absorbed;
        self.rejected += other.rejected;
        self.dead_lettered += other.dead_lettered;
    }
}

/// Webhook measurements of one seed: counts and raw latency samples.
#[derive(Clone, Debug, Default)]
pub struct WebhookStats {
    /// Deliveries by outcome.
    pub counts: WebhookCounts,
    /// Carrier event due -> delivered to the service, ms.
    pub inbound: Vec<u64>,
    /// Service commit -> merchant acted, ms.
    pub outbound: Vec<u64>,
}

impl WebhookStats {
    /// Measures a finished run's webhook traffic.
    #[must_use]
    pub fn of(view: &crate::oracle::WebhookView, trace: &crate::run::history::Trace) -> Self {
        use shipsim_system::store::Delivery;
        let mut stats = WebhookStats::default();
        let counts = &mut stats.counts;
        for item in &view.tracking {
            if let Delivery::Delivered {
                attempts,
                delivered_at_ms,
            } = item.delivery
            {
                counts.delivered += 1;
                counts.attempts += u64::from(attempts);
                stats
                    .inbound
                    .push(delivered_at_ms.saturating_sub(item.due_at_ms));
            }
        }
        for record in view.tables.outbox.values() {
            if let Delivery::Delivered { attempts, .. } = record.delivery {
                counts.delivered += 1;
                counts.attempts += u64::from(attempts);
            }
        }
        for effect in &view.effects {
            stats
                .outbound
                .push(effect.at_ms.saturating_sub(effect.created_at_ms));
        }
        let (receiver_duplicates, receiver_rejected) = view.receiver_absorbed;
        counts.duplicates_absorbed = receiver_duplicates;
        counts.rejected = receiver_rejected;
        let mut dead: BTreeSet<&str> = BTreeSet::new();
        for event in trace.events() {
            if let EventKind::System(system) = &event.kind {
                match system {
                    SystemEvent::WebhookReceived {
                        receiver,
                        duplicate: true,
                        ..
                    } if receiver == "service" => {
                        counts.duplicates_absorbed += 1;
                    }
                    SystemEvent::WebhookRejected { receiver, .. } if receiver == "service" => {
                        counts.rejected += 1;
                    }
                    SystemEvent::WebhookDeadLettered { event_id, .. } => {
                        dead.insert(event_id);
                    }
                    _ => {}
                }
            }
        }
        counts.dead_lettered = dead.len() as u64;
        stats
    }
}

/// Webhook measurements of many seeds: counts and latency histograms.
#[derive(Clone, Debug)]
pub struct WebhookTotals {
    /// Deliveries by outcome, summed over the seeds.
    pub counts: WebhookCounts,
    /// Carrier event due -> delivered to the service, ms.
    pub inbound: Histogram<u64>,
    /// Service commit -> merchant acted, ms.
    pub outbound: Histogram<u64>,
}

impl Default for WebhookTotals {
    fn default() -> Self {
        WebhookTotals {
            counts: WebhookCounts::default(),
            inbound: new_latency_histogram(),
            outbound: new_latency_histogram(),
        }
    }
}

impl WebhookTotals {
    fn add(&mut self, seed: &WebhookStats) {
        self.counts.add(&seed.counts);
        for ms in &seed.inbound {
            record_clamped(&mut self.inbound, *ms);
        }
        for ms in &seed.outbound {
            record_clamped(&mut self.outbound, *ms);
        }
    }
}

impl SeedStats {
    /// Drops the raw latency samples once they are folded into a [`Stats`]; the counts
    /// stay.
    pub fn drop_samples(&mut self) {
        self.e2e = Vec::new();
        self.attempts = Vec::new();
        if let Some(webhooks) = self.webhooks.as_mut() {
            webhooks.inbound = Vec::new();
            webhooks.outbound = Vec::new();
        }
    }

    /// Measures a finished run: its operations, and from its trace the faults they
    /// overlapped and what the service absorbed.
    #[must_use]
    pub fn of(history: &History, trace: &Trace, endpoints: &[Endpoint]) -> Self {
        let mut stats = SeedStats {
            endpoints: endpoints.to_vec(),
            ..SeedStats::default()
        };
        stats.counts.count_absorbed(history, trace);
        let windows_us = fault_windows_us(trace);
        let resolved: BTreeSet<u32> = history
            .operations()
            .iter()
            .filter_map(|op| op.resolves)
            .collect();
        for op in history.operations() {
            if op.phase != Phase::Workload {
                continue;
            }
            let endpoint = op.kind.endpoint();
            stats
                .counts
                .count_operation(&op.outcome, resolved.contains(&op.id));
            let elapsed_ms = (op.completed_at_us - op.invoked_at_us) / 1_000;
            let faulty = overlaps(&windows_us, op.invoked_at_us, op.completed_at_us);
            stats.e2e.push((endpoint.clone(), elapsed_ms, faulty));
            stats.counts.retries += op.attempts.len().saturating_sub(1) as u64;
            for attempt in &op.attempts {
                stats
                    .attempts
                    .push((endpoint.clone(), attempt.ended_at_ms - attempt.sent_at_ms));
                stats.counts.count_attempt(&attempt.outcome);
            }
        }
        stats
    }
}

impl Counts {
    /// Counts what the service absorbed, every phase: answers it replayed and requests it
    /// refused because their key was in flight; from its reports in the trace, or, for a
    /// service that reports nothing to shipsim (a user's), from what the clients were
    /// answered.
    fn count_absorbed(&mut self, history: &History, trace: &Trace) {
        let mut service_reports = false;
        for event in trace.events() {
            match &event.kind {
                EventKind::System(SystemEvent::Replayed { .. }) => self.replays_served += 1,
                EventKind::System(SystemEvent::InFlightConflict { .. }) => {
                    self.in_flight_conflicts += 1;
                }
                _ => {}
            }
            service_reports |= matches!(event.kind, EventKind::System(_));
        }
        if !service_reports {
            for attempt in history.operations().iter().flat_map(|op| &op.attempts) {
                if let AttemptOutcome::Response {
                    status, replayed, ..
                } = &attempt.outcome
                {
                    self.replays_served += u64::from(*replayed);
                    self.in_flight_conflicts += u64::from(*status == 409);
                }
            }
        }
    }

    /// Counts one workload operation by its outcome (`resolved`: an ambiguous one the
    /// settler re-issued after the heal).
    fn count_operation(&mut self, outcome: &OpOutcome, resolved: bool) {
        let operations = &mut self.operations;
        operations.total += 1;
        match outcome {
            OpOutcome::Ok { .. } => operations.ok += 1,
            OpOutcome::Rejected { .. } | OpOutcome::Failed { .. } => operations.failed += 1,
            OpOutcome::Ambiguous { .. } => {
                operations.ambiguous += 1;
                if resolved {
                    operations.resolved_after_heal += 1;
                }
            }
            OpOutcome::Pending => {}
        }
    }

    /// Counts one attempt of a workload operation by its outcome.
    fn count_attempt(&mut self, outcome: &AttemptOutcome) {
        let requests = &mut self.requests;
        requests.total += 1;
        match outcome {
            AttemptOutcome::Response {
                status, replayed, ..
            } => {
                if *replayed {
                    self.replays += 1;
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

impl Stats {
    /// Adds one seed's measurements.
    pub fn add(&mut self, other: &SeedStats) {
        for latencies in [
            &mut self.e2e,
            &mut self.attempts,
            &mut self.e2e_fault,
            &mut self.e2e_quiet,
        ] {
            latencies.declare(&other.endpoints);
        }
        for (endpoint, ms, faulty) in &other.e2e {
            self.e2e.record(endpoint, *ms);
            let split = if *faulty {
                &mut self.e2e_fault
            } else {
                &mut self.e2e_quiet
            };
            split.record(endpoint, *ms);
        }
        for (endpoint, ms) in &other.attempts {
            self.attempts.record(endpoint, *ms);
        }
        self.counts.add(&other.counts);
        if let Some(theirs) = &other.webhooks {
            self.webhooks
                .get_or_insert_with(WebhookTotals::default)
                .add(theirs);
        }
    }
}

/// When faults were active in a run, as sorted, disjoint, inclusive `[start, end]` spans of
/// simulated µs. A windowed fault is active from a `FaultFired` to the `FaultEnded` of the
/// same fault; a fault that hits single requests (and never ends) is active at the instant
/// it fired. Overlapping spans are joined.
#[must_use]
pub fn fault_windows_us(trace: &Trace) -> Vec<(u64, u64)> {
    let mut open: BTreeMap<usize, u64> = BTreeMap::new();
    let mut spans = Vec::new();
    for event in trace.events() {
        match &event.kind {
            EventKind::FaultFired { fault, .. } => {
                spans.push((event.at_us, event.at_us));
                open.entry(*fault).or_insert(event.at_us);
            }
            EventKind::FaultEnded { fault } => {
                if let Some(start_us) = open.remove(fault) {
                    spans.push((start_us, event.at_us));
                }
            }
            _ => {}
        }
    }
    join_spans(spans)
}

/// Sorts spans and joins those that overlap or touch, so that the result is disjoint and
/// its ends are sorted too.
fn join_spans(mut spans: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    spans.sort_unstable();
    let mut joined: Vec<(u64, u64)> = Vec::with_capacity(spans.len());
    for (start_us, end_us) in spans {
        assert!(start_us <= end_us, "fault span ends before it starts");
        match joined.last_mut() {
            Some(last) if start_us <= last.1 => last.1 = last.1.max(end_us),
            _ => joined.push((start_us, end_us)),
        }
    }
    joined
}

/// Whether `[start_us, end_us]` overlaps any of `windows_us` (sorted and disjoint, as
/// [`fault_windows_us`] returns them).
#[must_use]
pub fn overlaps(windows_us: &[(u64, u64)], start_us: u64, end_us: u64) -> bool {
    // Disjoint sorted spans have sorted ends: the first span ending at or after `start_us`
    // is the only candidate that can begin before `end_us` without an earlier one doing so.
    let first = windows_us.partition_point(|&(_, window_end_us)| window_end_us < start_us);
    windows_us
        .get(first)
        .is_some_and(|&(window_start_us, _)| window_start_us <= end_us)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::history::Event;

    fn event(at_us: u64, kind: EventKind) -> Event {
        Event {
            at_us,
            host: "driver".into(),
            kind,
        }
    }

    fn fired(fault: usize) -> EventKind {
        EventKind::FaultFired {
            fault,
            detail: "x".into(),
        }
    }

    #[test]
    fn fault_windows_pair_fired_with_ended_and_keep_instants() {
        // Proves a windowed fault spans FaultFired..FaultEnded, a per-request fault is an
        // instant, and overlapping spans are joined into one.
        let mut trace = Trace::new();
        trace.push(event(100, fired(0)));
        trace.push(event(150, fired(1)));
        trace.push(event(400, EventKind::FaultEnded { fault: 0 }));
        trace.push(event(350, fired(2)));
        trace.push(event(900, fired(1)));
        assert_eq!(fault_windows_us(&trace), vec![(100, 400), (900, 900)]);
    }

    #[test]
    fn overlap_checks_both_ends_of_the_span() {
        // Proves an operation overlaps a window when any part of it does, including the
        // instants at the edges, and not when it falls in a gap.
        let windows_us = vec![(100, 200), (500, 500)];
        assert!(overlaps(&windows_us, 50, 100));
        assert!(overlaps(&windows_us, 150, 160));
        assert!(overlaps(&windows_us, 200, 300));
        assert!(overlaps(&windows_us, 400, 600));
        assert!(!overlaps(&windows_us, 201, 499));
        assert!(!overlaps(&windows_us, 0, 99));
        assert!(!overlaps(&windows_us, 501, 900));
        assert!(!overlaps(&[], 0, u64::MAX));
    }

    #[test]
    fn latencies_read_every_endpoint_and_allocate_on_first_sample() {
        // Proves an endpoint without samples reads as an empty histogram of the same bounds
        // as a recorded one, `all` lists every endpoint once in order, and only sampled
        // endpoints hold a histogram of their own.
        let table = crate::target::plan::KindTable::of(&crate::reference::ReferenceApi).unwrap();
        let endpoints = table.endpoints();
        let mut latencies = Latencies::default();
        latencies.declare(&endpoints);
        let sampled = &endpoints[0];
        latencies.record(sampled, 42);
        latencies.record(sampled, 7);
        assert_eq!(latencies.histograms.len(), 1);
        assert_eq!(latencies.get(sampled).len(), 2);
        assert_eq!(latencies.get(sampled).max(), 42);
        let listed: Vec<&Endpoint> = latencies.all().map(|(e, _)| e).collect();
        let expected: Vec<&Endpoint> = endpoints.iter().collect();
        assert_eq!(listed, expected);
        let routes: Vec<&str> = listed.iter().map(|e| e.route()).collect();
        assert_eq!(
            routes,
            [
                "POST /v1/orders",
                "GET /v1/orders/{id}",
                "POST /v1/orders/{id}/shipments",
                "GET /v1/shipments/{id}"
            ],
            "endpoint order is each kind's create, then its read"
        );
        for (endpoint, histogram) in latencies.all() {
            let fresh = new_latency_histogram();
            assert_eq!(histogram.high(), fresh.high(), "{endpoint:?}");
            assert_eq!(histogram.sigfig(), fresh.sigfig(), "{endpoint:?}");
            assert_eq!(histogram.is_empty(), endpoint != sampled, "{endpoint:?}");
        }
    }

    #[test]
    fn a_scenario_counts_the_sum_of_its_seeds() {
        // Proves `Stats::add` sums every count of the shared core (operations, requests,
        // retries, replays, duplicates absorbed) and of the webhook counts, and folds each
        // seed's raw webhook samples into the scenario's histograms.
        let seed = |n: u64| SeedStats {
            counts: Counts {
                operations: OperationCounts {
                    total: n,
                    ok: n,
                    failed: 0,
                    ambiguous: 1,
                    resolved_after_heal: 1,
                },
                requests: RequestCounts {
                    total: 2 * n,
                    s2xx: n,
                    s4xx: 0,
                    s5xx: n,
                    s429: 0,
                    timeouts: 1,
                    transport_errors: 0,
                },
                retries: n,
                replays: 1,
                replays_served: 2,
                in_flight_conflicts: 3,
            },
            webhooks: Some(WebhookStats {
                counts: WebhookCounts {
                    delivered: n,
                    attempts: n + 1,
                    duplicates_absorbed: 1,
                    rejected: 0,
                    dead_lettered: 1,
                },
                inbound: vec![n],
                outbound: vec![],
            }),
            ..SeedStats::default()
        };
        let mut stats = Stats::default();
        stats.add(&seed(3));
        stats.add(&seed(4));
        let counts = &stats.counts;
        assert_eq!(counts.operations.total, 7);
        assert_eq!(counts.operations.resolved_after_heal, 2);
        assert_eq!(counts.requests.total, 14);
        assert_eq!(counts.requests.s5xx, 7);
        assert_eq!(counts.requests.timeouts, 2);
        assert_eq!((counts.retries, counts.replays), (7, 2));
        assert_eq!(counts.duplicate_deliveries_absorbed(), 10);
        assert_eq!(
            stats.counts.operations.total, 7,
            "the counts read as fields of the stats"
        );
        let webhooks = stats.webhooks.as_ref().expect("seeds had webhooks");
        assert_eq!(webhooks.counts.delivered, 7);
        assert_eq!(webhooks.counts.attempts, 9);
        assert_eq!(webhooks.counts.dead_lettered, 2);
        assert_eq!(webhooks.inbound.len(), 2);
        assert!(webhooks.outbound.is_empty());
    }
}
