//! Live mode on loopback: real `shipsim serve`, `carrier` and `proxy` processes (this
//! crate's own binary), real sockets, a real SQLite file, and the simulation's oracles.
//! Every server listens on 127.0.0.1:0 and is killed when its handle drops.

use std::path::Path;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shipsim::live::demo::ChildServer;
use shipsim::live::driver::{self, LiveRun, StateSource};
use shipsim::oracle::OracleKind;
use shipsim::scenario::Scenario;

use crate::live_fixture::{
    ADMIN_KEY, ANY_PORT, admin_json, carrier, corpus_file, create_order, create_shipment, demo_run,
    exe, options, scratch, serve, spawn, verdict, webhook_endpoint,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_requests_with_one_key_make_one_shipment_and_one_label() {
    // Proves the idempotency claim over real sockets and a real database: 50 concurrent
    // shipment creates with one key give exactly one shipment row and one carrier label;
    // every other request replays it or is told 409 (in flight). Also reads /metrics and
    // /openapi.json from the running server.
    let dir = scratch("fifty");
    let carrier = carrier(&dir);
    let service = serve(&dir, ANY_PORT, &carrier.url, &[]);
    let http = reqwest::Client::new();
    let order_id = create_order(&http, &service.url, "order-1").await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let http = http.clone();
        let service_url = service.url.clone();
        let order_id = order_id.clone();
        tasks.spawn(async move {
            let response =
                create_shipment(&http, &service_url, &order_id, "ship-same-key", 1200).await;
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, body)
        });
    }
    let mut created = std::collections::BTreeSet::new();
    let (mut ok, mut conflicts) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        let (status, body) = joined.unwrap();
        match status {
            201 => {
                ok += 1;
                created.insert(body["id"].as_str().unwrap().to_string());
            }
            409 => {
                conflicts += 1;
                assert_eq!(body["error"]["code"], "idempotency_request_in_progress");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ok + conflicts, 50);
    assert!(ok >= 1, "at least the first request succeeds");
    assert_eq!(
        created.len(),
        1,
        "every success names the same shipment: {created:?}"
    );
    let shipment_id = created.into_iter().next().unwrap();

    let state = admin_json(&format!("{}/v1/admin/state", service.url)).await;
    let rows: Vec<&serde_json::Value> = state["shipments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["idempotency_key"] == "ship-same-key")
        .collect();
    assert_eq!(rows.len(), 1, "one shipment row for the key: {rows:?}");
    let labels = admin_json(&format!("{}/v1/admin/labels", carrier.url)).await;
    let sold: Vec<_> = labels
        .as_array()
        .unwrap()
        .iter()
        .filter(|sale| sale["label"]["shipment_ref"] == shipment_id.as_str())
        .collect();
    assert_eq!(sold.len(), 1, "one label for the shipment: {sold:?}");

    let metrics = http
        .get(format!("{}/metrics", service.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("shipsim_http_requests_total{method=\"POST\",route=\"/v1/orders/{id}/shipments\",class=\"2xx\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("shipsim_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/orders/{id}/shipments\",le=\"+Inf\"} 50"));
    let openapi: serde_json::Value = http
        .get(format!("{}/openapi.json", service.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openapi["openapi"], "3.1.0");
    assert!(openapi["paths"]["/v1/orders/{id}/shipments"]["post"].is_object());

    // The incident is searchable: the line that records the creation carries the request's
    // id, the caller, the key and both resource ids.
    let log = std::fs::read_to_string(dir.join("service.log")).unwrap();
    let created: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["message"] == "shipment created")
        .collect();
    assert_eq!(created.len(), 1, "one creation logged: {created:?}");
    let line = &created[0];
    assert_eq!(line["idempotency_key"], "ship-same-key");
    assert_eq!(line["shipment_id"], shipment_id.as_str());
    assert_eq!(line["span"]["order_id"], order_id.as_str());
    assert_eq!(line["span"]["caller"], "merchant-0");
    assert!(
        line["span"]["request_id"]
            .as_str()
            .unwrap()
            .starts_with("req_"),
        "{line}"
    );
}

/// A workload without faults, long enough for a few kills to land in it.
fn kill_scenario() -> Scenario {
    Scenario::parse(
        "<kill test>",
        "live_kill_restart",
        r#"
[hosts]
clients = 3
callers = 2

[workload]
operations = 60
think_ms = [5, 25]
double_submit = 0.1

[client]
timeout_ms = 1000
deadline_ms = 10000
attempts = 8
backoff_ms_base = 50
backoff_ms_max = 800
"#,
    )
    .unwrap()
}

/// Runs the kill workload against a service started with `serve_args`, killing it with
/// SIGKILL three times at seeded random instants (`round` is the seed) and restarting it on
/// the same database and port each time. Returns the run, its rendering and the service log.
async fn run_with_kills(
    name: &str,
    round: u64,
    serve_args: &'static [&'static str],
) -> (LiveRun, String, String) {
    let dir = scratch(&format!("{name}-{round}"));
    let carrier = carrier(&dir);
    let first = serve(&dir, ANY_PORT, &carrier.url, serve_args);
    let listen = format!("127.0.0.1:{}", first.port());
    let target = first.url.clone();
    let scenario = kill_scenario();
    let killer_dir = dir.clone();
    let carrier_url = carrier.url.clone();
    let killer = tokio::task::spawn_blocking(move || {
        let mut rng = ChaCha8Rng::seed_from_u64(round);
        let mut service = first;
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(rng.random_range(100..350)));
            service.kill();
            service = serve(&killer_dir, &listen, &carrier_url, serve_args);
        }
        service
    });
    let run = driver::run(options(scenario.clone(), &target, &carrier.url, round))
        .await
        .unwrap();
    let _service = killer.await.unwrap();
    let text = verdict(&run, &scenario, &target);
    let ambiguous = run
        .history
        .workload()
        .filter(|op| {
            matches!(
                op.outcome,
                shipsim::run::history::OpOutcome::Ambiguous { .. }
            )
        })
        .count();
    eprintln!(
        "{name} round {round}: {} operations, {ambiguous} ambiguous, {} shipments, {} violations",
        run.history.operations().len(),
        run.tables.shipments.len(),
        run.violations.len()
    );
    let log = std::fs::read_to_string(dir.join("service.log")).unwrap();
    (run, text, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_killed_with_sigkill_mid_run_loses_nothing_and_duplicates_nothing() {
    // Proves crash safety on a real database: while a live workload runs, the service
    // process is killed with SIGKILL at seeded random instants and restarted on the same
    // file and port; afterwards every oracle holds (no acknowledged write lost, one shipment
    // per key, one label per shipment, nothing left in progress). Rounds:
    // SHIPSIM_LIVE_KILL_ROUNDS (default 1), each with 3 kills.
    let rounds: u64 = std::env::var("SHIPSIM_LIVE_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for round in 0..rounds {
        let (run, text, log) = run_with_kills("kill", round, &[]).await;
        assert!(run.passed(), "round {round}:\n{text}");
        assert!(run.history.operations().len() >= 180, "{text}");
        assert!(
            log.contains("\"boot\":3"),
            "the fourth start reads boot 3 from the database"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_expose_idempotency_records_kept_in_memory() {
    // Proves the kill test has teeth: the same kills against a service whose planted bug
    // keeps idempotency records in process memory let retries after a restart create
    // second shipments, and `exactly_once` reports them.
    let (run, text, _) = run_with_kills("kill-bug", 0, &["--bug", "idempotency_in_memory"]).await;
    assert!(
        run.violations
            .iter()
            .any(|v| v.oracle == OracleKind::ExactlyOnce),
        "the planted bug must be caught:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_faults_fire_and_oracles_hold_and_a_planted_bug_is_caught() {
    // Proves the fault proxy and the oracles on real processes: with the corpus's HTTP-fault
    // scenario in front of both service and carrier, faults fire on both and every oracle
    // holds; the same stack with the service's `carrier_without_key` bug, and lost carrier
    // responses, is caught by `exactly_once`.
    let path = corpus_file("live_http_faults.toml");
    let dir = scratch("proxy");
    let (run, text) = demo_run(&path, 3, &[], dir.clone()).await;
    assert!(run.passed(), "{text}");
    assert_eq!(run.proxies.len(), 2, "{text}");
    let service_fired: u64 = (0..7).map(|i| run.fired(i)).sum();
    let carrier_fired: u64 = (7..9).map(|i| run.fired(i)).sum();
    assert!(service_fired >= 3 && carrier_fired >= 1, "{text}");
    assert!(
        run.oracles_skipped
            .iter()
            .any(|(o, _)| *o == OracleKind::LatencyBudget)
    );

    let buggy_path = dir.join("carrier_drops.toml");
    std::fs::write(
        &buggy_path,
        r#"
[hosts]
clients = 2

[workload]
operations = 12
mix = { create_order = 1, create_shipment = 3 }

[[fault]]
kind = "drop_response"
target = "carrier"
probability = 0.5
"#,
    )
    .unwrap();
    let (run, text) = demo_run(
        &buggy_path,
        5,
        &["carrier_without_key"],
        scratch("proxy-bug"),
    )
    .await;
    assert!(
        run.violations
            .iter()
            .any(|v| v.oracle == OracleKind::ExactlyOnce && v.message.contains("carrier labels")),
        "the planted bug must be caught:\n{text}"
    );
    assert!(run.duplicates.labels >= 1, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_judged_through_its_public_api_only() {
    // Proves the mode for services that are not ours: without the admin key the final state
    // is read through public GETs, the oracles that need the store's internals say what
    // they could not see, and a correct service still passes, here behind the driver's
    // own in-process fault proxy (`--proxy`), whose HTTP and link-latency faults fire; the
    // partition, which no proxy can apply, is listed as not applied. The merchants' keys
    // are given explicitly, as for a foreign service, and too few of them are refused.
    let dir = scratch("api-only");
    let carrier = carrier(&dir);
    let service = serve(&dir, ANY_PORT, &carrier.url, &[]);
    let scenario = Scenario::parse(
        "<api test>",
        "live_api_only",
        r#"
[hosts]
clients = 2
callers = 2

[workload]
operations = 15

[[fault]]
kind = "http_error"
target = "service"
status = 503
when = "after"
probability = 0.2

[[fault]]
kind = "latency"
between = ["clients", "service"]
min_ms = 2
max_ms = 10

[[fault]]
kind = "partition"
between = ["clients", "service"]
start_ms = 100
duration_ms = 100
"#,
    )
    .unwrap();
    let mut foreign = options(scenario.clone(), &service.url, &carrier.url, 9);
    foreign.admin_key = None;
    foreign.carrier_url = None;
    foreign.proxy = true;
    foreign.api_keys = vec!["sk_sim_merchant_0".into()];
    let refused = driver::run(foreign.clone()).await.unwrap_err().to_string();
    assert!(
        refused.contains("2 merchants but only 1 API keys"),
        "{refused}"
    );
    foreign.api_keys.push("sk_sim_merchant_1".into());
    let run = driver::run(foreign).await.unwrap();
    let text = verdict(&run, &scenario, &service.url);
    assert!(run.passed(), "{text}");
    assert_eq!(run.state_source, StateSource::ApiReads);
    assert!(!run.tables.shipments.is_empty(), "{text}");
    assert!(run.fired(0) >= 1, "the in-process proxy injects: {text}");
    assert!(
        run.fired(1) >= 1,
        "link latency applies to every request: {text}"
    );
    assert_eq!(run.faults_not_applied.len(), 1, "{text}");
    assert!(
        text.contains("not applied in live mode: fault #2 partition"),
        "{text}"
    );
    assert!(
        text.contains("partial: idempotency records are not visible"),
        "{text}"
    );
    assert!(text.contains("labels not audited"), "{text}");
}

#[test]
fn serve_exits_0_on_sigterm() {
    // Proves graceful shutdown: SIGTERM makes `shipsim serve` stop and exit 0, and the
    // database opens again at once (the process released it).
    let dir = scratch("sigterm");
    let mut service = serve(&dir, ANY_PORT, "http://127.0.0.1:9", &[]);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &service.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(service.wait_exit(Duration::from_secs(10)), Some(0));
    let again = serve(&dir, ANY_PORT, "http://127.0.0.1:9", &[]);
    drop(again);
    let log = std::fs::read_to_string(dir.join("service.log")).unwrap();
    assert!(log.contains("service stopped"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_flow_both_ways_and_a_killed_carrier_resumes_its_tracking() {
    // Proves the live webhook wiring: with `--tracking-url` the carrier delivers a parcel's
    // tracking events to the service, which moves the shipment to its final status; with
    // `--webhook-url` the service delivers its outbox, signed, to the merchant. The carrier
    // is killed with SIGKILL right after the sale, and restarted on the same file first
    // without a tracking URL (its pending events are still there) and then with one (they
    // are delivered): its tracking log survives the kill.
    let dir = scratch("webhooks");
    let (hooks_url, received) = webhook_endpoint(|signature, body| {
        use shipsim_system::clock::{Clock as _, WallClock};
        shipsim_system::webhook::verify(
            "whsec_sim_merchant-0",
            signature,
            body,
            WallClock.now_ms(),
            shipsim_system::webhook::TOLERANCE_S_DEFAULT,
        )
        .is_ok()
    })
    .await;
    // The carrier must know the service's URL before the service exists: reserve a port.
    let service_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tracking_url = format!("http://127.0.0.1:{service_port}/v1/webhooks/carrier");
    let spawn_carrier = |listen: &str, tracking: bool| {
        let mut args = vec!["--admin-key", ADMIN_KEY, "--exception-percent", "0"];
        if tracking {
            args.extend(["--tracking-url", tracking_url.as_str()]);
        }
        spawn(&dir, "carrier", listen, "carrier.db", &args)
    };
    let mut carrier = spawn_carrier(ANY_PORT, true);
    let carrier_listen = format!("127.0.0.1:{}", carrier.port());
    let webhook = format!("merchant-0={hooks_url}");
    let service = serve(
        &dir,
        &format!("127.0.0.1:{service_port}"),
        &carrier.url,
        &["--webhook-url", &webhook],
    );
    let http = reqwest::Client::new();
    let order_id = create_order(&http, &service.url, "order-hooks").await;
    let shipment: serde_json::Value =
        create_shipment(&http, &service.url, &order_id, "ship-hooks", 1200)
            .await
            .json()
            .await
            .unwrap();
    let shipment_id = shipment["id"].as_str().unwrap().to_string();
    // The parcel's later events are due 100 ms to 1.5 s after the sale.
    carrier.kill();
    let quiet = spawn_carrier(&carrier_listen, false);
    let counts = admin_json(&format!("{}/v1/admin/tracking", quiet.url)).await;
    assert_eq!(
        counts["pending"].as_u64().unwrap() + counts["delivered"].as_u64().unwrap(),
        4,
        "the parcel's four events survived the kill: {counts}"
    );
    assert!(counts["pending"].as_u64().unwrap() >= 1, "{counts}");
    drop(quiet);
    let _carrier = spawn_carrier(&carrier_listen, true);
    let mut status = String::new();
    for _ in 0..100 {
        let state: serde_json::Value = http
            .get(format!("{}/v1/shipments/{shipment_id}", service.url))
            .header("x-api-key", "sk_sim_merchant_0")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        status = state["status"].as_str().unwrap_or_default().to_string();
        let outbox = admin_json(&format!("{}/v1/admin/outbox", service.url)).await;
        if status == "delivered" && outbox["pending"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status, "delivered",
        "the tracking events reached the service"
    );
    let types: Vec<String> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, body)| {
            serde_json::from_slice::<shipsim_system::api::WebhookEvent>(body)
                .expect("the service sends WebhookEvents")
        })
        .filter(|e| e.order_id == order_id)
        .map(|e| e.event_type)
        .collect();
    for expected in ["order.created", "shipment.created", "shipment.delivered"] {
        assert!(
            types.iter().any(|t| t == expected),
            "the merchant got no {expected}: {types:?}"
        );
    }
    let state = admin_json(&format!("{}/v1/admin/state", service.url)).await;
    assert!(
        state["processed_events"].as_object().unwrap().len() >= 3,
        "the service recorded the carrier events it took in: {state}"
    );
}

fn downstream(dir: &Path, spec: &str) -> ChildServer {
    let spec = crate::support::repo().join(spec);
    ChildServer::spawn(
        exe(),
        &[
            "downstream",
            "--spec",
            spec.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &dir.join("downstream.log"),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downstream_from_a_spec_file_records_effects_and_takes_a_runs_faults() {
    // Proves `shipsim downstream` on real TCP: a repeat with one key replays instead of
    // making a second label, its ledger counts one effect naming its parcel, and its fault
    // layer injects nothing until armed with a scenario, then applies that scenario's
    // faults for its host (a dropped answer after the label was made), and heals.
    let dir = scratch("downstream");
    let carrier = downstream(&dir, "examples/python-shipping/carrier.toml");
    let http = reqwest::Client::new();
    let buy = |key: &'static str, parcel: &'static str| {
        http.post(format!("{}/v1/labels", carrier.url))
            .header("authorization", "Bearer ck_test_shop")
            .header("idempotency-key", key)
            .json(&serde_json::json!({"parcel": parcel, "weight_g": 500, "country": "DE"}))
            .send()
    };
    let first: serde_json::Value = buy("label-par_1", "par_1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let again = buy("label-par_1", "par_1").await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    let ledger = admin_json(&format!("{}/__shipsim/ledger", carrier.url)).await;
    assert_eq!(ledger["effects"].as_array().unwrap().len(), 1, "{ledger}");
    assert_eq!(ledger["effects"][0]["request"]["parcel"], "par_1");

    let info = admin_json(&format!("{}/_shipsim/proxy", carrier.url)).await;
    assert_eq!(info["armable"], true, "{info}");
    assert_eq!(
        info["rules"].as_array().unwrap().len(),
        0,
        "dormant: {info}"
    );
    let scenario = Scenario::parse(
        "<arm test>",
        "arm_test",
        "[[fault]]\nkind = \"drop_response\"\ntarget = \"carrier\"\nprobability = 1.0\n",
    )
    .unwrap();
    let mut topology = shipsim::scenario::Topology::reference();
    topology.hosts = vec!["carrier".into()];
    let arm = shipsim::live::proxy::ArmRequest {
        scenario: scenario.to_toml(),
        topology,
        seed: 3,
    };
    let armed: serde_json::Value = http
        .post(format!("{}/_shipsim/arm", carrier.url))
        .json(&arm)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(armed["rules"].as_array().unwrap().len(), 1, "{armed}");
    http.post(format!("{}/_shipsim/begin", carrier.url))
        .send()
        .await
        .unwrap();
    assert!(
        buy("label-par_2", "par_2").await.is_err(),
        "the answer is dropped"
    );
    http.post(format!("{}/_shipsim/heal", carrier.url))
        .send()
        .await
        .unwrap();
    let ledger = admin_json(&format!("{}/__shipsim/ledger", carrier.url)).await;
    assert_eq!(
        ledger["effects"].as_array().unwrap().len(),
        2,
        "the label behind the lost answer was made: {ledger}"
    );
    let replayed = buy("label-par_2", "par_2").await.unwrap();
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
}

#[test]
fn live_refuses_to_start_naming_an_unreachable_dependency() {
    // Proves the preflight (the report in issue 21): a service whose carrier is not there
    // makes `shipsim live` exit 2 before the run, naming the carrier, instead of reporting
    // violations the service never committed; and a described target whose downstream is
    // not there is refused the same way.
    let dir = scratch("preflight");
    let service = serve(&dir, ANY_PORT, "http://127.0.0.1:9", &[]);
    let scenario = crate::support::scenarios_dir().join("carrier_trouble.toml");
    let output =
        crate::support::shipsim(&["live", "--target", &service.url, scenario.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("is not ready: GET /__shipsim/ready answered 503"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the carrier at http://127.0.0.1:9 is unreachable"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("VIOLATION"));

    let output = crate::support::shipsim(&[
        "live",
        "--api",
        "examples/reference/target.toml",
        "--target",
        &service.url,
        "--downstream",
        "carrier=http://127.0.0.1:9",
        "--wait",
        "0",
        scenario.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the downstream `carrier` at http://127.0.0.1:9 is unreachable"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_a_carrier_url_runs_its_own_and_says_so() {
    // Proves the embedded default: `shipsim serve --db FILE` alone starts the carrier in its
    // process, says where, and the reference service described in a file passes a live run
    // against it with the carrier's faults absent and the service's applied in-process.
    let dir = scratch("embedded");
    let service = spawn(&dir, "serve", ANY_PORT, "service.db", &[]);
    let log = std::fs::read_to_string(dir.join("service.log")).unwrap();
    assert!(
        log.contains("no --carrier-url: the carrier runs in this process"),
        "{log}"
    );
    assert!(
        dir.join("service.carrier.db").exists(),
        "the carrier's ledger sits beside the database"
    );
    let path = crate::support::repo().join("examples/reference/target.toml");
    let description = shipsim::described::Description::load(&path).unwrap();
    let scenario = Scenario::load_for(
        &corpus_file("live_http_faults.toml"),
        &description.topology(),
    )
    .unwrap();
    let mut options = options(scenario.clone(), &service.url, "", 5);
    options.admin_key = None;
    options.carrier_url = None;
    options.proxy = true;
    options.described = Some(shipsim::described::DescribedApi::new(description));
    let run = driver::run(options).await.unwrap();
    let text = verdict(&run, &scenario, &service.url);
    assert!(run.passed(), "{text}");
    assert_eq!(run.state_source, StateSource::ReadBack);
    assert!(
        text.contains("read-back(s) of acknowledged resources"),
        "{text}"
    );
}

#[test]
fn live_waits_for_a_service_started_in_the_same_breath() {
    // Proves the start-up wait: the README's commands, pasted at once, start the service and
    // the run together; `shipsim live` waits (bounded by --wait) for the target to listen
    // instead of refusing it as unreachable. The service is started only after the run has
    // said it is waiting, so the order is certain, not timed.
    use std::io::BufRead as _;
    let dir = scratch("wait");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = format!("http://127.0.0.1:{port}");
    let mut live = std::process::Command::new(exe())
        .args([
            "live",
            "--api",
            "examples/reference/target.toml",
            "--target",
            &target,
            "--proxy",
            "--wait",
            "600",
            corpus_file("live_http_faults.toml").to_str().unwrap(),
        ])
        .current_dir(crate::support::repo())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(live.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(
        first.starts_with("waiting up to ")
            && first
                .trim_end()
                .ends_with(&format!(" s for {target} to listen")),
        "{first}"
    );
    let _service = spawn(
        &dir,
        "serve",
        &format!("127.0.0.1:{port}"),
        "service.db",
        &[],
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let output = live.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{rest}");
    assert!(stdout.contains("PASSED"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_feed_serves_live_and_survives_a_kill() {
    // Proves `shipsim serve` exposes `GET /v1/events` on its SQLite store: a merchant whose
    // webhook endpoint is unreachable reads its events from the feed, with the ids and
    // bodies the outbox holds for the webhooks; after SIGKILL and a restart on the same file
    // the same cursor reads the same events (they are durable with the change they
    // announce); a bad cursor is a 400 naming `after`.
    let dir = scratch("events-feed");
    let carrier = carrier(&dir);
    // Nothing listens on port 9 of loopback: every delivery fails, the feed must serve.
    let webhook = "merchant-0=http://127.0.0.1:9/hooks";
    let mut service = serve(
        &dir,
        "127.0.0.1:0",
        &carrier.url,
        &["--webhook-url", webhook],
    );
    let http = reqwest::Client::new();
    let order_id = create_order(&http, &service.url, "order-feed").await;
    let read = |url: String| {
        let http = http.clone();
        async move {
            let response = http
                .get(url)
                .header("x-api-key", "sk_sim_merchant_0")
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, page) = read(format!("{}/v1/events?limit=10", service.url)).await;
    assert_eq!(status, 200, "{page}");
    let events = page["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 1, "{page}");
    assert_eq!(events[0]["event_type"], "order.created");
    assert_eq!(events[0]["order_id"], order_id.as_str());
    let state = admin_json(&format!("{}/v1/admin/state", service.url)).await;
    assert_eq!(
        state["outbox"][0]["event"], events[0],
        "the feed serves the webhook's own body"
    );
    service.kill();
    let service = serve(
        &dir,
        "127.0.0.1:0",
        &carrier.url,
        &["--webhook-url", webhook],
    );
    let (status, again) = read(format!("{}/v1/events?limit=10", service.url)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        again["events"],
        serde_json::Value::Array(events),
        "durable across SIGKILL"
    );
    let cursor = again["next_cursor"].as_str().unwrap();
    let (status, empty) = read(format!("{}/v1/events?after={cursor}", service.url)).await;
    assert_eq!(
        (status, empty["events"].clone()),
        (200, serde_json::json!([]))
    );
    let (status, bad) = read(format!("{}/v1/events?after=evt_1", service.url)).await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["error"]["details"][0]["field"], "after", "{bad}");
}

#[test]
fn serve_refuses_demo_credentials_off_loopback() {
    // Proves `shipsim serve` will not listen on a non-loopback address (0.0.0.0) with the
    // well-known demo keys: it exits 2 before binding, naming the address, what is demo and
    // where real credentials go. (The decision itself is unit-tested in live::credentials.)
    let dir = scratch("demo-off-loopback");
    let mut command = std::process::Command::new(exe());
    command.args([
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--db",
        dir.join("service.db").to_str().unwrap(),
    ]);
    for name in shipsim::live::credentials::ENV_ALL {
        command.env_remove(name);
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0"),
        "{stderr}"
    );
    assert!(
        stderr.contains("merchant API keys sk_sim_merchant_N"),
        "{stderr}"
    );
    assert!(stderr.contains("SHIPSIM_MERCHANT_KEYS"), "{stderr}");
    assert!(!dir.join("service.db").exists(), "nothing was opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_in_rotation_authenticates_with_either_key_and_gets_both_signatures() {
    // Proves a rotation without downtime in live mode, from a keys file: merchant-0 holds
    // two API keys, and a create under one idempotency key with the new key is replayed
    // (same order id) with the old one, so both authenticate as the same merchant; the demo
    // key no longer does (401). Its webhook deliveries carry two v1= signatures, each
    // verifying under one of its two secrets, so a receiver holding either accepts them.
    let dir = scratch("rotation");
    let keys = dir.join("keys.toml");
    std::fs::write(
        &keys,
        r#"carrier_webhook_secret = "whsec_carrier_live"

[[merchant]]
api_keys = ["sk_live_0_new", "sk_live_0_old"]
webhook_secrets = ["whsec_0_new", "whsec_0_old"]

[[merchant]]
api_keys = ["sk_live_1"]
webhook_secrets = ["whsec_1"]
"#,
    )
    .unwrap();
    let (hooks_url, received) = webhook_endpoint(|_, _| true).await;
    let carrier = carrier(&dir);
    let webhook = format!("merchant-0={hooks_url}");
    let service = serve(
        &dir,
        "127.0.0.1:0",
        &carrier.url,
        &[
            "--keys-file",
            keys.to_str().unwrap(),
            "--webhook-url",
            &webhook,
        ],
    );
    let http = reqwest::Client::new();
    let create = |api_key: &'static str| {
        http.post(format!("{}/v1/orders", service.url))
            .header("x-api-key", api_key)
            .header("idempotency-key", "order-rotation")
            .json(&serde_json::json!({
                "reference": "PO-rotation",
                "items": [{ "sku": "SKU-1", "quantity": 1 }],
                "ship_to": { "name": "A", "line1": "B", "city": "C", "postal_code": "12345", "country": "DE" }
            }))
            .send()
    };
    let first = create("sk_live_0_new").await.unwrap();
    assert_eq!(first.status(), 201);
    let first: serde_json::Value = first.json().await.unwrap();
    let again = create("sk_live_0_old").await.unwrap();
    assert_eq!(again.status(), 201, "the old key still authenticates");
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(
        first["id"], again["id"],
        "both keys are the same merchant: its idempotency key replays"
    );
    let demo = create("sk_sim_merchant_0").await.unwrap();
    assert_eq!(demo.status(), 401, "demo keys are off when keys are given");
    let mut deliveries = Vec::new();
    for _ in 0..100 {
        deliveries = received.lock().unwrap().clone();
        if !deliveries.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!deliveries.is_empty(), "order.created was delivered");
    use shipsim_system::clock::{Clock as _, WallClock};
    for (signature, body) in &deliveries {
        assert_eq!(signature.matches("v1=").count(), 2, "{signature}");
        for secret in ["whsec_0_new", "whsec_0_old"] {
            let checked = shipsim_system::webhook::verify(
                secret,
                Some(signature),
                body,
                WallClock.now_ms(),
                shipsim_system::webhook::TOLERANCE_S_DEFAULT,
            );
            assert_eq!(checked, Ok(()), "{secret}");
        }
    }
}
