//! A live run rendered to the terminal (`text::live`), from a fixed model.

use shipsim_reports::model::{
    LiveLatency, LiveLedger, LiveOracle, LiveOracleSkipped, LiveProxy, LiveReport, LiveRule,
    LiveState, LiveViolation, OperationCounts, RequestCounts,
};
use shipsim_reports::text;

/// A failed run judged from the whole store: one proxy whose rule fired, an unapplied
/// partition, a partial oracle, a skipped one, two violations (one naming operations).
fn report() -> LiveReport {
    LiveReport {
        scenario: "live_http_faults".into(),
        target: "http://127.0.0.1:9000".into(),
        seed: 3,
        run_id: "r1a2b3".into(),
        operations: OperationCounts {
            total: 40,
            ok: 35,
            failed: 2,
            ambiguous: 3,
            resolved_after_heal: 3,
        },
        requests: RequestCounts {
            total: 52,
            s2xx: 40,
            s4xx: 2,
            s5xx: 6,
            s429: 1,
            timeouts: 2,
            transport_errors: 1,
        },
        retries: 12,
        replays: 4,
        workload_ms: 2_600,
        total_ms: 3_100,
        latency_ms: vec![
            LiveLatency {
                route: "POST /v1/orders".into(),
                p50: 4,
                p95: 19,
                max: 230,
            },
            LiveLatency {
                route: "POST /v1/orders/{id}/shipments".into(),
                p50: 11,
                p95: 480,
                max: 1_210,
            },
        ],
        proxies: vec![LiveProxy {
            host: "service".into(),
            upstream: "http://127.0.0.1:8080".into(),
            rules: vec![LiveRule {
                index: 0,
                describe: "http_error 503 on service".into(),
                window: "0..end".into(),
                fired: 6,
            }],
        }],
        http_faults_unapplied: false,
        faults_not_applied: vec!["#1 partition clients <-> service (line 14)".into()],
        state: LiveState::Admin {
            orders: 14,
            shipments: 21,
            labels: Some(21),
        },
        duplicate_resources: 1,
        duplicate_effects: 0,
        oracles: vec![
            LiveOracle {
                name: "exactly_once".into(),
                violations: 1,
                caveat: None,
            },
            LiveOracle {
                name: "acknowledged_writes".into(),
                violations: 0,
                caveat: Some("idempotency records are not visible".into()),
            },
        ],
        oracles_skipped: vec![LiveOracleSkipped {
            name: "latency_budget".into(),
            reason: "wall-clock latency is not simulated time".into(),
        }],
        violations: vec![LiveViolation {
            oracle: "exactly_once".into(),
            seed: 3,
            message: "2 shipments for one key".into(),
            operations: vec![7, 19],
            evidence: vec!["shipments: shp_1, shp_2".into()],
        }],
    }
}

#[test]
fn live_summary_snapshot() {
    // Proves the terminal summary of a live run, line for line, from a fixed model: the
    // snapshot is the contract (`shipsim live`'s output), reviewed when it changes.
    insta::assert_snapshot!(text::live(&report()));
}

#[test]
fn each_way_of_reading_the_final_state_says_which() {
    // Proves the state line names its source: public reads without a carrier ledger, and
    // read-backs with the downstream ledgers (or none); and that a run without violations
    // passes and one with HTTP faults and no proxy says they were not applied.
    let mut report = report();
    report.violations.clear();
    report.oracles[0].violations = 0;
    report.proxies.clear();
    report.http_faults_unapplied = true;
    report.state = LiveState::ApiReads {
        orders: 2,
        shipments: 3,
        labels: None,
    };
    let text = text::live(&report);
    assert!(
        text.contains("final state from public API reads (no admin key: a service that is not ours): 2 orders, 3 shipments; carrier ledger not read"),
        "{text}"
    );
    assert!(text.contains("no fault proxy found"), "{text}");
    assert!(text.ends_with("PASSED (seed 3, 3100 ms)\n"), "{text}");
    report.state = LiveState::ReadBack {
        reads: 5,
        ledgers: vec![LiveLedger {
            name: "carrier".into(),
            effects: 4,
        }],
    };
    let text = text::live(&report);
    assert!(
        text.contains("final state from 5 read-back(s) of acknowledged resources through the API; downstream ledgers: `carrier` 4 effect(s)"),
        "{text}"
    );
    assert!(
        text.contains(
            "resources beyond the first per key 1, effects beyond the first per resource 0"
        ),
        "{text}"
    );
}

#[test]
fn the_live_model_round_trips_through_json() {
    // Proves the model is plain serialisable data: JSON out and back gives the same report,
    // and the state is tagged with its source.
    let report = report();
    let json = serde_json::to_string(&report).unwrap();
    assert!(json.contains(r#""state":{"source":"admin""#), "{json}");
    let back: LiveReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
}
