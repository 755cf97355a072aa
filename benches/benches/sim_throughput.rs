//! Simulated requests per wall second: the harness running the default scenario's workload
//! (clean, then with its faults), and the same number of HTTP requests through a bare
//! turmoil + hyper client/server loop with no harness, side by side in one group, so the
//! report shows the harness's overhead as a ratio of two numbers measured in one run.
//!
//! Three bare baselines, because turmoil's cost is per step and per host, not per request,
//! and because the system under test does real work per request:
//!
//! - `bare_turmoil_hyper/same_requests`: the requests back to back between two hosts, the
//!   cheapest way turmoil can carry them (the minimal loop).
//! - `bare_turmoil_hyper/same_shape`: the same requests on as many hosts as the harness run
//!   has, paced over the same simulated time. Every host is ticked every step whether it
//!   works or not, so this is the floor for that run; `harness / same_shape` is what the
//!   system under test and the harness together cost on top.
//! - `bare_turmoil_hyper/same_service`: the system under test itself, without the harness:
//!   the reference service, the carrier and the merchant client (`shipsim-system`, as the
//!   harness runs them: in-memory store, the same client policy, hyper over turmoil TCP)
//!   on bare turmoil, the clients making the scenario's number of operations in its mix
//!   proportions (a fixed pattern, not the workload's draws) after think times drawn from
//!   its range. No fault layer, observer, workload driver, history, settle phase,
//!   oracles or report. `harness / same_service` is the harness's own overhead.
//!
//! And for a bring-your-own target (`shipsim_benches::byo`: a small payments service with
//! a `Kv` store and a `bank` downstream, written as a user would write it):
//!
//! - `harness/byo_payments_clean`: `shipsim::Target` running it with a clean scenario;
//! - `bare_turmoil_hyper/byo_same_service`: the same router and bank served by bare hyper
//!   on bare turmoil, the same clients making the same number of creates and reads with the
//!   same think times over plain transports. `harness / byo_same_service` is the harness's
//!   overhead on a user's service.

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioIo, TokioTimer};
use rand::{Rng, SeedableRng};
use shipsim::clock::SimClock;
use shipsim::net::SimTransport;
use shipsim_system::api::{Address, CreateOrderRequest, CreateShipmentRequest, OrderItem};
use shipsim_system::bugs::BugSet;
use shipsim_system::carrier::{self, CarrierConfig, CarrierDeps, CarrierLedger};
use shipsim_system::client::{KeyPlacement, ShipClient, ShipClientConfig};
use shipsim_system::observe::NoopObserver;
use shipsim_system::seed::Seed;
use shipsim_system::service::{self, ServiceConfig, ServiceDeps, WebhookSettings};
use shipsim_system::store::MemoryStore;
use shipsim_system::webhook::{SenderConfig, TOLERANCE_S_DEFAULT};

/// HTTP requests a run served (the service's and the carrier's).
fn requests(run: &shipsim::SeedRun) -> u64 {
    run.requests_seen.values().sum()
}

/// How a bare loop is laid out: the harness's tick and link latency, how many hosts the
/// simulation holds, and how much simulated time the requests are spread over.
#[derive(Clone, Copy)]
struct Shape {
    tick_ms: u64,
    latency_ms: (u64, u64),
    /// Hosts besides the server and the client, doing nothing but being ticked.
    idle_hosts: u32,
    /// Simulated time to spread the requests over; 0 sends them back to back.
    spread_ms: u64,
}

impl Shape {
    fn minimal(scenario: &shipsim::Scenario) -> Self {
        Self {
            tick_ms: scenario.run.tick_ms,
            latency_ms: scenario.run.latency_ms,
            idle_hosts: 0,
            spread_ms: 0,
        }
    }

    /// The same host count and simulated time as `run` of `scenario`.
    fn of_run(scenario: &shipsim::Scenario, run: &shipsim::SeedRun) -> Self {
        // service + carrier + one host per client, + the receiver when webhooks go out (a
        // settler joining for the settle phase is not counted); the bare loop's server and
        // client stand for two of them.
        let receiver = u32::from(scenario.webhooks.is_some_and(|w| w.outbound));
        let hosts = 2 + scenario.hosts.clients + receiver;
        Self {
            idle_hosts: hosts.saturating_sub(2),
            spread_ms: run.sim_ms,
            ..Self::minimal(scenario)
        }
    }
}

/// A turmoil simulation with `shape`'s tick and link latency, a fixed epoch and
/// seed, and room for any run.
fn bare_sim<'a>(shape: Shape) -> turmoil::Sim<'a> {
    turmoil::Builder::new()
        .epoch(UNIX_EPOCH + Duration::from_secs(1_767_225_600))
        .rng_seed(1)
        .tick_duration(Duration::from_millis(shape.tick_ms))
        .min_message_latency(Duration::from_millis(shape.latency_ms.0))
        .max_message_latency(Duration::from_millis(shape.latency_ms.1))
        .simulation_duration(Duration::from_secs(86_400))
        .build()
}

/// `requests` sequential GETs over one keep-alive connection, laid out as `shape` says,
/// and nothing else.
fn bare_loop(requests: u64, shape: Shape) {
    let mut sim = bare_sim(shape);
    sim.host("server", || {
        serve_bare(
            axum::Router::new().route("/x", axum::routing::get(|| async { "{\"ok\":true}" })),
        )
    });
    for index in 0..shape.idle_hosts {
        sim.host(format!("idle{index}"), || async {
            std::future::pending::<()>().await;
            Ok(())
        });
    }
    let gap =
        Duration::from_millis(shape.spread_ms) / u32::try_from(requests.max(1)).unwrap_or(u32::MAX);
    sim.client("client", async move {
        let start = tokio::time::Instant::now();
        let stream = turmoil::net::TcpStream::connect(("server", 80)).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::task::spawn_local(connection);
        for index in 0..requests {
            tokio::time::sleep_until(start + gap * u32::try_from(index).unwrap_or(u32::MAX)).await;
            let request = http::Request::get("/x")
                .header("host", "server")
                .body(Full::new(Bytes::new()))?;
            let response = sender.send_request(request).await?;
            let _body = response.into_body().collect().await?.to_bytes();
        }
        Ok(())
    });
    sim.run().expect("the bare loop completes");
}

/// Serves `router` on port 80 with bare hyper: one http1 connection task per accepted
/// stream, no date header, tokio's timer.
async fn serve_bare(router: axum::Router) -> turmoil::Result {
    let listener = turmoil::net::TcpListener::bind("0.0.0.0:80").await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::task::spawn_local(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .auto_date_header(false)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The system under test on bare turmoil: service, carrier and `scenario.hosts.clients`
/// merchant clients, each making `scenario.workload.operations` operations in the
/// default mix (2 order creates : 4 shipment creates : 1 order read : 1 shipment read)
/// after seeded think times. Returns the HTTP requests served (the service's and the
/// carrier's) and the operations that failed.
fn bare_service_loop(scenario: &shipsim::Scenario) -> (u64, u64) {
    const CARRIER_KEY: &str = "ck_bench";
    let mut sim = bare_sim(Shape::minimal(scenario));
    let callers = scenario.hosts.callers;
    let client_policy = scenario.client;
    let service_settings = scenario.service;
    let store = std::sync::Arc::new(MemoryStore::new());
    sim.host("service", move || {
        let store = store.clone();
        async move {
            let config = ServiceConfig {
                api_keys: (0..callers)
                    .map(|i| (shipsim::Caller::new(i).api_key, shipsim::Caller::new(i).id))
                    .collect(),
                carrier_base_url: "http://carrier:80".to_string(),
                carrier_api_key: CARRIER_KEY.to_string(),
                carrier_policy: service_settings.carrier,
                rate_limit: service_settings.rate_limit,
                lock_lease_ms: service_settings.lock_lease_ms,
                idempotency_retention_ms: service::IDEMPOTENCY_RETENTION_MS_DEFAULT,
                store_latency_ms: service_settings.store_latency_ms,
                bugs: BugSet::none(),
                admin_key: None,
                webhooks: WebhookSettings {
                    carrier_secret: "whsec_bench".to_string(),
                    tolerance_s: TOLERANCE_S_DEFAULT,
                    targets: std::collections::BTreeMap::new(),
                    sender: SenderConfig::DEFAULT,
                },
            };
            let deps = ServiceDeps {
                clock: std::sync::Arc::new(SimClock::for_host("service", &[])),
                store,
                carrier: std::sync::Arc::new(SimTransport::new("carrier", 80)),
                observer: std::sync::Arc::new(NoopObserver),
                seed: Seed(1).derive("service"),
                boot: 0,
            };
            serve_bare(service::router(config, deps)).await
        }
    });
    let ledger = std::sync::Arc::new(CarrierLedger::new());
    sim.host("carrier", move || {
        let ledger = ledger.clone();
        async move {
            let config = CarrierConfig {
                api_key: CARRIER_KEY.to_string(),
                unserviceable_countries: std::collections::BTreeSet::new(),
                tracking: None,
                admin_key: None,
            };
            let deps = CarrierDeps {
                clock: std::sync::Arc::new(SimClock::for_host("carrier", &[])),
                ledger,
                observer: std::sync::Arc::new(NoopObserver),
                seed: Seed(1).derive("carrier"),
                boot: 0,
            };
            serve_bare(carrier::router(config, deps)).await
        }
    });
    let served = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let failed = std::rc::Rc::new(std::cell::Cell::new(0u64));
    for index in 0..scenario.hosts.clients {
        let host = format!("client{index}");
        let operations = scenario.workload.operations;
        let (think_low, think_high) = scenario.workload.think_ms;
        let (served, failed) = (served.clone(), failed.clone());
        sim.client(host.clone(), async move {
            let caller = index % callers;
            let client = ShipClient::new(
                std::sync::Arc::new(SimTransport::new("service", 80)),
                std::sync::Arc::new(SimClock::for_host(&host, &[])),
                Seed(1).derive(&host),
                ShipClientConfig {
                    base_url: "http://service:80".to_string(),
                    api_key: shipsim::Caller::new(caller).api_key,
                    policy: client_policy,
                    bugs: BugSet::none(),
                },
            );
            let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(index));
            let mut order_id: Option<String> = None;
            let mut shipment_id: Option<String> = None;
            for sequence in 0..operations {
                let think = rng.random_range(think_low..=think_high);
                tokio::time::sleep(Duration::from_millis(think)).await;
                let key = format!("{host}-{sequence}");
                let ok = match (sequence % 8, order_id.clone(), shipment_id.clone()) {
                    (0 | 4, _, _) | (_, None, _) => {
                        let request = CreateOrderRequest {
                            reference: format!("PO-{key}"),
                            items: vec![OrderItem {
                                sku: format!("SKU-{}", rng.random_range(100..1000)),
                                quantity: rng.random_range(1..=5),
                            }],
                            ship_to: Address {
                                name: "Customer".into(),
                                line1: "1 Main Street".into(),
                                city: "Springfield".into(),
                                postal_code: "12345".into(),
                                country: "DE".into(),
                            },
                            idempotency_key: None,
                        };
                        let report = client
                            .create_order(&request, &key, KeyPlacement::Header)
                            .await;
                        report.result.map(|s| order_id = Some(s.value.id)).is_ok()
                    }
                    (3, Some(order), _) => client.get_order(&order).await.result.is_ok(),
                    (7, _, Some(shipment)) => client.get_shipment(&shipment).await.result.is_ok(),
                    (_, Some(order), _) => {
                        let request = CreateShipmentRequest {
                            service_level: shipsim_system::api::ServiceLevel::Ground,
                            weight_grams: rng.random_range(100..5_000),
                            idempotency_key: None,
                        };
                        let report = client
                            .create_shipment(&order, &request, &key, KeyPlacement::Header)
                            .await;
                        // The service bought one label from the carrier.
                        served.set(served.get() + 1);
                        report
                            .result
                            .map(|s| shipment_id = Some(s.value.id))
                            .is_ok()
                    }
                };
                served.set(served.get() + 1);
                if !ok {
                    failed.set(failed.get() + 1);
                }
            }
            Ok(())
        });
    }
    sim.run().expect("the bare service loop completes");
    (served.get(), failed.get())
}

/// The clean scenario the bring-your-own entries run: two merchants, 30 operations each.
fn byo_scenario() -> shipsim::Scenario {
    let topology = shipsim_benches::byo::target()
        .topology()
        .expect("the bench target is valid");
    shipsim::Scenario::parse_for(
        "byo.toml",
        "byo",
        "[hosts]\nclients = 2\ncallers = 2\n[workload]\noperations = 30\nthink_ms = [0, 30]\n",
        &topology,
    )
    .expect("the bench scenario is valid")
}

/// The bench payments service and its bank on bare turmoil + hyper: each client makes the
/// scenario's operations, two creates to one read of a payment it created, after think
/// times drawn from the scenario's range. Returns the requests served (the service's and
/// the bank's) and the operations that failed.
fn bare_byo_loop(scenario: &shipsim::Scenario) -> (u64, u64) {
    use shipsim_benches::byo;
    let mut sim = bare_sim(Shape::minimal(scenario));
    let kv = shipsim::store::Kv::new();
    sim.host("service", move || {
        let kv = kv.clone();
        async move {
            serve_bare(byo::router(byo::Payments {
                kv,
                ids: std::sync::Arc::new(shipsim::IdGen::new(Seed(1).derive("payments"))),
                bank_url: "http://bank:80".to_string(),
                bank: std::sync::Arc::new(SimTransport::new("bank", 80)),
            }))
            .await
        }
    });
    let bank = byo::bank().compile().expect("the bank spec is valid");
    let ledger = shipsim_system::downstream::DownstreamLedger::new();
    sim.host("bank", move || {
        let router = bank.router(shipsim_system::downstream::DownstreamDeps {
            clock: std::sync::Arc::new(SimClock::for_host("bank", &[])),
            ledger: ledger.clone(),
            observer: std::sync::Arc::new(NoopObserver),
            seed: Seed(1).derive("bank"),
            boot: 0,
        });
        async move { serve_bare(router).await }
    });
    let served = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let failed = std::rc::Rc::new(std::cell::Cell::new(0u64));
    for index in 0..scenario.hosts.clients {
        let host = format!("client{index}");
        let operations = scenario.workload.operations;
        let (think_low, think_high) = scenario.workload.think_ms;
        let (served, failed) = (served.clone(), failed.clone());
        sim.client(host.clone(), async move {
            let transport = SimTransport::new("service", 80);
            let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(index));
            let mut known: Vec<String> = Vec::new();
            for sequence in 0..operations {
                let think = rng.random_range(think_low..=think_high);
                tokio::time::sleep(Duration::from_millis(think)).await;
                let request = match known.last() {
                    Some(id) if sequence % 3 == 2 => {
                        http::Request::get(format!("http://service:80/v1/payments/{id}"))
                            .body(Bytes::new())?
                    }
                    _ => http::Request::post("http://service:80/v1/payments")
                        .header("idempotency-key", format!("{host}-{sequence}"))
                        .header("x-merchant", format!("merchant-{index}"))
                        .body(Bytes::from(format!(
                            "{{\"amount\":{}}}",
                            rng.random_range(100..10_000)
                        )))?,
                };
                let creating = request.method() == http::Method::POST;
                let sent = shipsim::Transport::send(&transport, request).await;
                served.set(served.get() + 1 + u64::from(creating));
                match sent {
                    Ok(response) if response.status().is_success() => {
                        if creating
                            && let Ok(body) =
                                serde_json::from_slice::<serde_json::Value>(response.body())
                            && let Some(id) = body["id"].as_str()
                        {
                            known.push(id.to_string());
                        }
                    }
                    _ => failed.set(failed.get() + 1),
                }
            }
            Ok(())
        });
    }
    sim.run().expect("the bare byo loop completes");
    (served.get(), failed.get())
}

fn sim_throughput(c: &mut Criterion) {
    let faulty = shipsim_benches::scenario("walking_skeleton");
    let mut clean = faulty.clone();
    clean.faults.clear();
    let clean_run = shipsim::run_seed(&shipsim::reference::target(), &clean, 1, &BugSet::none());
    let clean_requests = requests(&clean_run);
    let same_shape = Shape::of_run(&clean, &clean_run);
    let faulty_requests = requests(&shipsim::run_seed(
        &shipsim::reference::target(),
        &faulty,
        1,
        &BugSet::none(),
    ));
    let (service_requests, service_failures) = bare_service_loop(&clean);
    assert_eq!(service_failures, 0, "the bare service loop runs clean");

    let mut group = c.benchmark_group("sim_throughput");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(clean_requests));
    group.bench_function("harness/walking_skeleton_clean", |b| {
        b.iter(|| shipsim::run_seed(&shipsim::reference::target(), &clean, 1, &BugSet::none()));
    });
    group.bench_function("bare_turmoil_hyper/same_requests", |b| {
        b.iter(|| bare_loop(clean_requests, Shape::minimal(&clean)));
    });
    group.bench_function("bare_turmoil_hyper/same_shape", |b| {
        b.iter(|| bare_loop(clean_requests, same_shape));
    });
    group.throughput(Throughput::Elements(service_requests));
    group.bench_function("bare_turmoil_hyper/same_service", |b| {
        b.iter(|| bare_service_loop(&clean));
    });
    group.throughput(Throughput::Elements(faulty_requests));
    group.bench_function("harness/walking_skeleton_faults", |b| {
        b.iter(|| shipsim::run_seed(&shipsim::reference::target(), &faulty, 1, &BugSet::none()));
    });

    let byo = shipsim_benches::byo::target();
    let byo_clean = byo_scenario();
    let byo_run = shipsim::run_seed(&byo, &byo_clean, 1, &BugSet::none());
    assert!(byo_run.passed(), "{:?}", byo_run.violations);
    let (byo_requests, byo_failures) = bare_byo_loop(&byo_clean);
    assert_eq!(byo_failures, 0, "the bare byo loop runs clean");
    group.throughput(Throughput::Elements(requests(&byo_run)));
    group.bench_function("harness/byo_payments_clean", |b| {
        b.iter(|| shipsim::run_seed(&byo, &byo_clean, 1, &BugSet::none()));
    });
    group.throughput(Throughput::Elements(byo_requests));
    group.bench_function("bare_turmoil_hyper/byo_same_service", |b| {
        b.iter(|| bare_byo_loop(&byo_clean));
    });
    group.finish();
}

criterion_group!(benches, sim_throughput);
criterion_main!(benches);
