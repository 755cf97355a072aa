//! A small, fixed report built in code: two scenarios, one passing and one failing, with
//! names and messages full of characters that markup must escape, histograms from a fixed
//! formula, a violation with a timeline, and a planted-bug table.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use shipsim_reports::histogram::{
    HistogramKind, encode, new_latency_histogram, record_clamped, summarize,
};
use shipsim_reports::model::{
    BudgetReport, BugDetection, FaultReport, MomentReport, OperationCounts, OracleReport, Report,
    RequestCounts, RunInfo, SCHEMA_VERSION, ScenarioReport, SeedReport, ShrunkCase, TimelineEntry,
    TimelineKind, Totals, ViolationReport, WallClock,
};

/// The endpoints every fixture scenario measures.
pub const ENDPOINTS: [&str; 2] = ["POST /v1/orders", "POST /v1/orders/{id}/shipments"];

/// Latencies of one seed of one endpoint: a fixed spread, slower under faults.
fn samples_ms(seed: u64, endpoint_index: u64, faulted: bool) -> Vec<u64> {
    (0..40)
        .map(|i| {
            let base = 3 + (i * 7 + seed * 13 + endpoint_index * 5) % 25;
            if faulted && i % 4 == 0 {
                base * 40 + i
            } else {
                base
            }
        })
        .collect()
}

/// Histograms of `seeds` (fault and quiet windows by sample position) keyed as reports
/// store them.
pub fn histograms(seeds: &[u64]) -> BTreeMap<String, Histogram<u64>> {
    let mut out = BTreeMap::new();
    for (index, endpoint) in ENDPOINTS.iter().enumerate() {
        let mut all = new_latency_histogram();
        let mut fault = new_latency_histogram();
        let mut quiet = new_latency_histogram();
        let mut attempt = new_latency_histogram();
        for &seed in seeds {
            for (i, value) in samples_ms(seed, index as u64, true).into_iter().enumerate() {
                record_clamped(&mut all, value);
                record_clamped(if i % 2 == 0 { &mut fault } else { &mut quiet }, value);
                record_clamped(&mut attempt, value.min(400));
            }
        }
        out.insert(HistogramKind::E2e.key(endpoint), all);
        out.insert(HistogramKind::E2eFault.key(endpoint), fault);
        out.insert(HistogramKind::E2eQuiet.key(endpoint), quiet);
        out.insert(HistogramKind::Attempt.key(endpoint), attempt);
    }
    out
}

fn summaries(
    histograms: &BTreeMap<String, Histogram<u64>>,
    kind: HistogramKind,
) -> BTreeMap<String, shipsim_reports::model::LatencySummary> {
    ENDPOINTS
        .iter()
        .map(|e| (e.to_string(), summarize(&histograms[&kind.key(e)])))
        .collect()
}

fn timeline() -> Vec<TimelineEntry> {
    let entry = |at_us, host: &str, what: &str, kind, op, fault, until_us| TimelineEntry {
        at_us,
        host: host.to_string(),
        what: what.to_string(),
        kind,
        op,
        fault,
        until_us,
    };
    vec![
        entry(
            1_000,
            "client-0",
            "op 3 create_shipment invoked key=k<1>",
            TimelineKind::OpInvoked,
            Some(3),
            None,
            None,
        ),
        entry(
            1_000,
            "client-0",
            "op 3 attempt 1 -> timeout (waited 0 ms)",
            TimelineKind::Attempt,
            Some(3),
            None,
            Some(401_000),
        ),
        entry(
            2_000,
            "driver",
            "fault #1 fired: partition clients <-> service",
            TimelineKind::FaultFired,
            None,
            Some(1),
            None,
        ),
        entry(
            150_000,
            "carrier",
            "LabelSold { label_id: \"lbl_1\" }",
            TimelineKind::System,
            None,
            None,
            None,
        ),
        entry(
            300_000,
            "service",
            "CRASH (1 unflushed transaction(s) lost)",
            TimelineKind::Crash,
            None,
            None,
            None,
        ),
        entry(
            350_000,
            "driver",
            "fault #1 ended",
            TimelineKind::FaultEnded,
            None,
            Some(1),
            None,
        ),
        entry(
            451_000,
            "client-0",
            "op 3 attempt 2 -> 201 (waited 50 ms)",
            TimelineKind::Attempt,
            Some(3),
            None,
            Some(460_000),
        ),
        entry(
            460_000,
            "client-0",
            "op 3 -> ok 201 after attempts [timeout, 201]",
            TimelineKind::OpCompleted,
            Some(3),
            None,
            None,
        ),
        entry(
            470_000,
            "driver",
            "faults healed; settle phase",
            TimelineKind::Healed,
            None,
            None,
            None,
        ),
    ]
}

fn seeds(seeds: &[u64], failing: &[u64]) -> Vec<SeedReport> {
    seeds
        .iter()
        .map(|&seed| SeedReport {
            seed,
            passed: !failing.contains(&seed),
            trace_hash: format!("{:016x}", seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            violations: u64::from(failing.contains(&seed)),
            operations: 60,
            sim_ms: 4_000 + seed * 10,
        })
        .collect()
}

/// A scenario over `seed_list`, failing on `failing` seeds with one `exactly_once`
/// violation each.
pub fn scenario(name: &str, seed_list: &[u64], failing: &[u64]) -> ScenarioReport {
    let histograms = histograms(seed_list);
    let seeds_run = seed_list.len() as u64;
    let violations: Vec<ViolationReport> = failing
        .iter()
        .map(|&seed| ViolationReport {
            oracle: "exactly_once".to_string(),
            seed,
            message: format!("2 carrier labels bought for shipment \"shp_<{seed}>\" & more"),
            operations: vec![3],
            evidence: vec!["label lbl_1 sold under key (none)".to_string()],
            faults_active: vec!["#1 partition clients <-> service".to_string()],
            timeline: timeline(),
            repro: Some(format!("repro/{name}-seed{seed}.toml")),
            replay_command: format!("shipsim replay out/repro/{name}-seed{seed}.toml"),
        })
        .collect();
    let shrunk = violations.first().map(|first| ShrunkCase {
        seed: first.seed,
        shrunk_seed: first.seed + 1,
        caught_by: "exactly_once".to_string(),
        operations_before: 60,
        operations_after: 2,
        faults_before: 2,
        faults_after: 1,
        shrink_runs: 37,
        violation: ViolationReport {
            seed: first.seed + 1,
            repro: Some(format!("repro/{name}-seed{}-min.toml", first.seed)),
            replay_command: format!(
                "shipsim replay out/repro/{name}-seed{}-min.toml",
                first.seed
            ),
            ..first.clone()
        },
    });
    let n = seeds_run;
    ScenarioReport {
        name: name.to_string(),
        path: format!("scenarios/{name}.toml"),
        description: "5xx & 429 <in front of> the \"service\"".to_string(),
        passed: failing.is_empty(),
        seeds_run,
        seeds_failed: failing.len() as u64,
        operations: OperationCounts {
            total: 60 * n,
            ok: 55 * n,
            failed: 2 * n,
            ambiguous: 3 * n,
            resolved_after_heal: 3 * n,
        },
        requests: RequestCounts {
            total: 80 * n,
            s2xx: 60 * n,
            s4xx: 2 * n,
            s5xx: 8 * n,
            s429: 4 * n,
            timeouts: 5 * n,
            transport_errors: n,
        },
        retries: 20 * n,
        idempotent_replays: 6 * n,
        duplicate_shipments: 0,
        duplicate_labels: failing.len() as u64,
        duplicate_deliveries_absorbed: 9 * n,
        in_flight_conflicts: n,
        latency_ms: summaries(&histograms, HistogramKind::E2e),
        attempt_latency_ms: summaries(&histograms, HistogramKind::Attempt),
        fault_window_latency_ms: summaries(&histograms, HistogramKind::E2eFault),
        quiet_window_latency_ms: summaries(&histograms, HistogramKind::E2eQuiet),
        histograms: histograms
            .iter()
            .map(|(k, h)| (k.clone(), encode(h).unwrap()))
            .collect(),
        faults: vec![
            FaultReport {
                index: 0,
                kind: "http_error".into(),
                description: "http_error 503 on service with p=0.1".into(),
                fired: 12 * n,
                seeds_fired: n,
                line: 30,
            },
            FaultReport {
                index: 1,
                kind: "partition".into(),
                description: "partition clients <-> service during 300..1000 ms".into(),
                fired: n,
                seeds_fired: n,
                line: 36,
            },
        ],
        oracles: vec![
            OracleReport {
                name: "exactly_once".into(),
                violations: failing.len() as u64,
            },
            OracleReport {
                name: "stable_replays".into(),
                violations: 0,
            },
        ],
        budgets: vec![BudgetReport {
            endpoint: ENDPOINTS[1].to_string(),
            metric: "p99".into(),
            limit_ms: 5_000,
            observed_ms: summarize(&histograms[&HistogramKind::E2e.key(ENDPOINTS[1])]).p99,
            passed: true,
        }],
        violations,
        seeds: seeds(seed_list, failing),
        expected_to_fail: false,
        webhooks: None,
        shrunk,
        moments: vec![
            MomentReport {
                name: "retry_while_in_flight".into(),
                reached: 3 * n,
                seeds_reached: n,
                required: true,
            },
            MomentReport {
                name: "forged_event".into(),
                reached: 0,
                seeds_reached: 0,
                required: false,
            },
        ],
    }
}

/// The fixed report: `walking <skeleton>` passes over seeds 1..=4, `lost & "found"` fails
/// seeds 2 and 3 of 1..=4.
pub fn report() -> Report {
    let scenarios = vec![
        scenario("walking <skeleton>", &[1, 2, 3, 4], &[]),
        scenario("lost & \"found\"", &[1, 2, 3, 4], &[2, 3]),
    ];
    Report {
        schema_version: SCHEMA_VERSION,
        tool: "shipsim 0.1.0".to_string(),
        run: RunInfo {
            seeds: "1..5".to_string(),
            bugs: vec!["carrier_without_key".to_string()],
            shard: None,
            check_determinism: true,
            jobs: 2,
            wall: WallClock {
                elapsed_ms: 1_234,
                seeds_per_second: 6.48,
                sim_speedup: 52.5,
                peak_rss_mib: 64.0,
                scenario_busy_ms: [
                    ("walking <skeleton>".to_string(), 412),
                    ("lost & \"found\"".to_string(), 1_530),
                ]
                .into_iter()
                .collect(),
            },
        },
        totals: Totals::of(&scenarios),
        scenarios,
        bugs: vec![
            BugDetection {
                bug: "carrier_without_key".into(),
                scenario: "lost & \"found\"".into(),
                seeds_to_detect: Some(2),
                seeds_run: 4,
                caught_by: Some("exactly_once".into()),
                operations_before: Some(40),
                operations_after: Some(2),
                shrink_runs: Some(31),
                repro: Some("repro/hunt-<lost>.toml".into()),
            },
            BugDetection {
                bug: "new_key_per_attempt".into(),
                scenario: "walking <skeleton>".into(),
                seeds_to_detect: None,
                seeds_run: 4,
                ..BugDetection::default()
            },
        ],
    }
}
