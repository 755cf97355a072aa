//! Simulated requests per wall second: the harness running the default scenario's workload
//! (clean, then with its faults), and the same number of HTTP requests through a bare
//! turmoil + hyper client/server loop with no harness, side by side in one group, so the
//! report shows the harness's overhead as a ratio of two numbers measured in one run.

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

/// `requests` sequential GETs over one keep-alive connection, with the harness's tick and
/// link latency, and nothing else.
fn bare_loop(requests: u64, tick_ms: u64, latency_ms: (u64, u64)) {
    let mut sim = turmoil::Builder::new()
        .epoch(UNIX_EPOCH + Duration::from_secs(1_767_225_600))
        .rng_seed(1)
        .tick_duration(Duration::from_millis(tick_ms))
        .min_message_latency(Duration::from_millis(latency_ms.0))
        .max_message_latency(Duration::from_millis(latency_ms.1))
        .simulation_duration(Duration::from_secs(86_400))
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
    sim.client("client", async move {
        let stream = turmoil::net::TcpStream::connect(("server", 80)).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::task::spawn_local(connection);
        for _ in 0..requests {
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
    let clean_requests = requests(&shipsim::run_seed(&clean, 1, &BugSet::none()));
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
        b.iter(|| bare_loop(clean_requests, clean.run.tick_ms, clean.run.latency_ms));
    });
    group.throughput(Throughput::Elements(faulty_requests));
    group.bench_function("harness/walking_skeleton_faults", |b| {
        b.iter(|| shipsim::run_seed(&faulty, 1, &BugSet::none()));
    });
    group.finish();
}

criterion_group!(benches, sim_throughput);
criterion_main!(benches);
