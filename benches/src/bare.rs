//! The bare turmoil + hyper baselines of `benches/sim_throughput.rs`, and the setup they
//! share with the harness entries, in the library so that `examples/sim_once.rs` can run one
//! iteration of any of them under `valgrind --tool=callgrind` (instruction counts are
//! repeatable on a loaded machine; criterion's wall times are not). What each baseline
//! stands for is told in the benchmark's module documentation.

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioIo, TokioTimer};
use shipsim::run::clock::SimClock;
use shipsim::run::history::{OpOutcome, Operation, Phase, Verb};
use shipsim::run::net::SimTransport;
use shipsim_system::api::{CreateOrderRequest, CreateShipmentRequest};
use shipsim_system::bugs::BugSet;
use shipsim_system::carrier::{self, CarrierConfig, CarrierDeps, CarrierLedger};
use shipsim_system::client::{KeyPlacement, ShipClient, ShipClientConfig};
use shipsim_system::observe::NoopObserver;
use shipsim_system::seed::Seed;
use shipsim_system::service::{self, ServiceConfig, ServiceDeps, WebhookSettings};
use shipsim_system::store::MemoryStore;
use shipsim_system::webhook::{SenderConfig, TOLERANCE_S_DEFAULT};

/// HTTP requests a run served (the service's and the carrier's).
pub fn requests(run: &shipsim::SeedRun) -> u64 {
    run.requests_seen.values().sum()
}

/// How a bare loop is laid out: the harness's tick and link latency, how many hosts the
/// simulation holds, and how much simulated time the requests are spread over.
#[derive(Clone, Copy)]
pub struct Shape {
    /// Simulated time per step.
    pub tick_ms: u64,
    /// The link latency range.
    pub latency_ms: (u64, u64),
    /// Hosts besides the server and the client, doing nothing but being ticked.
    pub idle_hosts: u32,
    /// Simulated time to spread the requests over; 0 sends them back to back.
    pub spread_ms: u64,
}

impl Shape {
    /// Two hosts, requests back to back, with `scenario`'s tick and link latency.
    #[must_use]
    pub fn minimal(scenario: &shipsim::Scenario) -> Self {
        Self {
            tick_ms: scenario.run.tick_ms,
            latency_ms: scenario.run.latency_ms,
            idle_hosts: 0,
            spread_ms: 0,
        }
    }

    /// The same host count and simulated time as `run` of `scenario`.
    #[must_use]
    pub fn of_run(scenario: &shipsim::Scenario, run: &shipsim::SeedRun) -> Self {
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
pub fn bare_sim<'a>(shape: Shape) -> turmoil::Sim<'a> {
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
pub fn bare_loop(requests: u64, shape: Shape) {
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
pub async fn serve_bare(router: axum::Router) -> turmoil::Result {
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

/// What the bare loops replay: the operations a harness run made, per client host, in
/// the order and at the simulated times the harness's clients invoked them. Operations of
/// the settle phase (re-issued writes, read-backs of acknowledged resources) go to the
/// first client host of their caller, at the times the settler made them: the bare loop
/// then serves the same requests over the same simulated time as the harness run, on the
/// harness's client hosts (without its settler host).
///
/// # Panics
/// If an operation of `run` took more than one attempt or did not succeed: a bare loop
/// sends each request once, so only a clean run can be replayed faithfully.
pub fn replay_plan(run: &shipsim::SeedRun) -> std::collections::BTreeMap<String, Vec<Operation>> {
    let mut plan: std::collections::BTreeMap<String, Vec<Operation>> =
        std::collections::BTreeMap::new();
    let mut host_of_caller: std::collections::BTreeMap<String, String> =
        std::collections::BTreeMap::new();
    for op in run.history.operations() {
        assert_eq!(op.attempts.len(), 1, "op {} retried: {op:?}", op.id);
        assert!(
            matches!(op.outcome, OpOutcome::Ok { .. }),
            "op {} did not succeed: {op:?}",
            op.id
        );
        let host = if op.phase == Phase::Workload {
            host_of_caller
                .entry(op.caller.clone())
                .or_insert_with(|| op.client.clone());
            op.client.clone()
        } else {
            host_of_caller
                .get(&op.caller)
                .cloned()
                .expect("a caller's settle operations follow its workload")
        };
        plan.entry(host).or_default().push(op.clone());
    }
    plan
}

/// The id a harness operation's response carried (creates), to map onto the bare run's.
pub fn acknowledged_id(op: &Operation) -> Option<&str> {
    match &op.outcome {
        OpOutcome::Ok { resource, .. } => Some(resource.id.as_str()),
        _ => None,
    }
}

/// The caller named `id` among the first `callers` callers.
pub fn caller_named(id: &str, callers: u32) -> shipsim::Caller {
    (0..callers)
        .map(shipsim::Caller::new)
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no caller {id}"))
}

/// The system under test on bare turmoil: service, carrier and one merchant client host
/// per client of `run`, each replaying its operations of `run` ([`replay_plan`]: the same
/// requests at the same simulated times) through the system's own merchant client
/// (`ShipClient`). Returns the HTTP requests served (the service's and the carrier's) and
/// the operations that failed.
pub fn bare_service_loop(scenario: &shipsim::Scenario, run: &shipsim::SeedRun) -> (u64, u64) {
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
                key_retirements: std::collections::BTreeMap::new(),
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
    for (host, operations) in replay_plan(run) {
        let (served, failed) = (served.clone(), failed.clone());
        let caller = caller_named(&operations[0].caller, callers);
        sim.client(host.clone(), async move {
            let client = ShipClient::new(
                std::sync::Arc::new(SimTransport::new("service", 80)),
                std::sync::Arc::new(SimClock::for_host(&host, &[])),
                Seed(1).derive(&host),
                ShipClientConfig {
                    base_url: "http://service:80".to_string(),
                    api_key: caller.api_key,
                    policy: client_policy,
                    bugs: BugSet::none(),
                },
            );
            let start = tokio::time::Instant::now();
            // The harness run's ids of orders and shipments -> this run's.
            let mut ids: std::collections::BTreeMap<String, String> =
                std::collections::BTreeMap::new();
            for op in operations {
                tokio::time::sleep_until(start + Duration::from_micros(op.invoked_at_us)).await;
                let mapped = |id: &Option<String>| {
                    let id = id
                        .as_deref()
                        .expect("reads and shipments name their resource");
                    ids.get(id).cloned().unwrap_or_else(|| id.to_string())
                };
                let key = op.key.as_deref().unwrap_or_default();
                let placement = op.placement.unwrap_or(KeyPlacement::Header);
                let body = op.body.as_deref().unwrap_or("{}");
                let created = match (op.kind.verb(), op.kind.resource()) {
                    (Verb::Create, "order") => {
                        let request: CreateOrderRequest =
                            serde_json::from_str(body).expect("an order body");
                        let report = client.create_order(&request, key, placement).await;
                        report.result.map(|s| Some(s.value.id))
                    }
                    (Verb::Create, _) => {
                        let request: CreateShipmentRequest =
                            serde_json::from_str(body).expect("a shipment body");
                        let order = mapped(&op.parent);
                        let report = client
                            .create_shipment(&order, &request, key, placement)
                            .await;
                        // The service bought one label from the carrier.
                        served.set(served.get() + 1);
                        report.result.map(|s| Some(s.value.id))
                    }
                    (Verb::Read, "order") => {
                        let report = client.get_order(&mapped(&op.target)).await;
                        report.result.map(|_| None)
                    }
                    (Verb::Read, _) => {
                        let report = client.get_shipment(&mapped(&op.target)).await;
                        report.result.map(|_| None)
                    }
                };
                served.set(served.get() + 1);
                match created {
                    Ok(Some(id)) => {
                        ids.insert(acknowledged_id(&op).unwrap_or_default().to_string(), id);
                    }
                    Ok(None) => {}
                    Err(_) => failed.set(failed.get() + 1),
                }
            }
            Ok(())
        });
    }
    sim.run().expect("the bare service loop completes");
    (served.get(), failed.get())
}

/// The clean scenario the bring-your-own entries run: two merchants, 30 operations each.
pub fn byo_scenario() -> shipsim::Scenario {
    let topology = crate::byo::target()
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

/// The bench payments service and its bank on bare turmoil + hyper, one client host per
/// client of `run`, each replaying its operations of `run` ([`replay_plan`]): the same
/// requests, built by the same `Api` adapter, at the same simulated times, sent once each
/// over a plain keep-alive transport. Returns the requests served (the service's and the
/// bank's) and the operations that failed.
pub fn bare_byo_loop(scenario: &shipsim::Scenario, run: &shipsim::SeedRun) -> (u64, u64) {
    use crate::byo;
    use shipsim::Api as _;
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
    let kinds = byo::PaymentsApi.kinds();
    let callers = scenario.hosts.callers;
    let served = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let failed = std::rc::Rc::new(std::cell::Cell::new(0u64));
    for (host, operations) in replay_plan(run) {
        let (served, failed) = (served.clone(), failed.clone());
        let kinds = kinds.clone();
        sim.client(host, async move {
            let transport = SimTransport::new("service", 80);
            let start = tokio::time::Instant::now();
            let mut ids: std::collections::BTreeMap<String, String> =
                std::collections::BTreeMap::new();
            for op in operations {
                tokio::time::sleep_until(start + Duration::from_micros(op.invoked_at_us)).await;
                let caller = caller_named(&op.caller, callers);
                let kind = &kinds[op.kind.kind_index()];
                let creating = op.kind.verb() == Verb::Create;
                let request = if creating {
                    byo::PaymentsApi.create(
                        kind,
                        &shipsim::CreateCall {
                            caller: &caller,
                            key: op.key.as_deref().unwrap_or_default(),
                            placement: op.placement.unwrap_or(KeyPlacement::Header),
                            parent: None,
                            body: op.body.as_deref().unwrap_or_default(),
                        },
                    )
                } else {
                    let target = op.target.as_deref().expect("reads name their resource");
                    let id = ids.get(target).map_or(target, String::as_str);
                    byo::PaymentsApi.read(
                        kind,
                        &shipsim::ReadCall {
                            caller: &caller,
                            id,
                        },
                    )
                }
                .expect("the adapter builds the harness run's requests");
                let sent = shipsim::Transport::send(&transport, request).await;
                match sent {
                    Ok(response) if response.status().is_success() => {
                        // A charged payment was also served by the bank.
                        let charged = response.status() == http::StatusCode::CREATED;
                        served.set(served.get() + 1 + u64::from(charged));
                        if creating {
                            let seen = byo::PaymentsApi.parse(kind, &response).expect("a payment");
                            let harness = acknowledged_id(&op).unwrap_or_default();
                            ids.insert(harness.to_string(), seen.id);
                        }
                    }
                    _ => {
                        served.set(served.get() + 1);
                        failed.set(failed.get() + 1);
                    }
                }
            }
            Ok(())
        });
    }
    sim.run().expect("the bare byo loop completes");
    (served.get(), failed.get())
}
