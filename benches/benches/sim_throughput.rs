//! Simulated requests per wall second: the harness running the default scenario's workload
//! (clean, then with its faults), and the same number of HTTP requests through a bare
//! turmoil + hyper client/server loop with no harness, side by side in one group, so the
//! report shows the harness's overhead as a ratio of two numbers measured in one run.
//!
//! Two bare baselines, because turmoil's cost is per step and per host, not per request:
//!
//! - `bare_turmoil_hyper/same_requests`: the requests back to back between two hosts, the
//!   cheapest way turmoil can carry them (the minimal loop).
//! - `bare_turmoil_hyper/same_shape`: the same requests on as many hosts as the harness run
//!   has, paced over the same simulated time. Every host is ticked every step whether it
//!   works or not, so this is the floor for that run; `harness / same_shape` is what the
//!   harness itself (faults, store, client policy, history, oracles) costs on top.
//!
//! Both the harness and the bare loops run on the vendored turmoil, which fast-forwards a
//! host with nothing to do in a step (`sim/vendor/turmoil/SHIPSIM_PATCH.md`). The
//! `*_reference_stepping` entries step every host through tokio every step, as upstream
//! turmoil does, so the report also shows what the fast-forward saves each side.

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioIo, TokioTimer};
use shipsim_system::bugs::BugSet;

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
    /// Fast-forward hosts with nothing to do in a step (the vendored turmoil's default);
    /// off steps every host through tokio every step, as upstream turmoil does.
    fast_forward: bool,
}

impl Shape {
    fn minimal(scenario: &shipsim::Scenario) -> Self {
        Self {
            tick_ms: scenario.run.tick_ms,
            latency_ms: scenario.run.latency_ms,
            idle_hosts: 0,
            spread_ms: 0,
            fast_forward: true,
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

    /// The same shape, every host stepped through tokio every step.
    fn reference_stepping(self) -> Self {
        Self {
            fast_forward: false,
            ..self
        }
    }
}

/// `requests` sequential GETs over one keep-alive connection, laid out as `shape` says,
/// and nothing else.
fn bare_loop(requests: u64, shape: Shape) {
    let mut sim = turmoil::Builder::new()
        .epoch(UNIX_EPOCH + Duration::from_secs(1_767_225_600))
        .rng_seed(1)
        .tick_duration(Duration::from_millis(shape.tick_ms))
        .min_message_latency(Duration::from_millis(shape.latency_ms.0))
        .max_message_latency(Duration::from_millis(shape.latency_ms.1))
        .simulation_duration(Duration::from_secs(86_400))
        .fast_forward_quiet_hosts(shape.fast_forward)
        .build();
    sim.host("server", || async {
        let router =
            axum::Router::new().route("/x", axum::routing::get(|| async { "{\"ok\":true}" }));
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

fn sim_throughput(c: &mut Criterion) {
    let faulty = shipsim_benches::scenario("walking_skeleton");
    let mut clean = faulty.clone();
    clean.faults.clear();
    let clean_run = shipsim::run_seed(&clean, 1, &BugSet::none());
    let clean_requests = requests(&clean_run);
    let same_shape = Shape::of_run(&clean, &clean_run);
    let faulty_requests = requests(&shipsim::run_seed(&faulty, 1, &BugSet::none()));

    let mut group = c.benchmark_group("sim_throughput");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(clean_requests));
    group.bench_function("harness/walking_skeleton_clean", |b| {
        b.iter(|| shipsim::run_seed(&clean, 1, &BugSet::none()));
    });
    group.bench_function("bare_turmoil_hyper/same_requests", |b| {
        b.iter(|| bare_loop(clean_requests, Shape::minimal(&clean)));
    });
    group.bench_function("bare_turmoil_hyper/same_shape", |b| {
        b.iter(|| bare_loop(clean_requests, same_shape));
    });
    group.bench_function("harness/walking_skeleton_clean_reference_stepping", |b| {
        b.iter(|| {
            shipsim::run_seed_stepping(&clean, 1, &BugSet::none(), shipsim::Stepping::REFERENCE)
        });
    });
    group.bench_function("bare_turmoil_hyper/same_shape_reference_stepping", |b| {
        b.iter(|| bare_loop(clean_requests, same_shape.reference_stepping()));
    });
    group.throughput(Throughput::Elements(faulty_requests));
    group.bench_function("harness/walking_skeleton_faults", |b| {
        b.iter(|| shipsim::run_seed(&faulty, 1, &BugSet::none()));
    });
    group.finish();
}

criterion_group!(benches, sim_throughput);
criterion_main!(benches);
