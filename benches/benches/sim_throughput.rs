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
//!   on bare turmoil, each client host replaying the harness run's operations: the same
//!   requests at the same simulated times (`replay_plan`). No fault layer, observer,
//!   workload driver, history, settle phase, oracles or report. The setup asserts that it
//!   serves as many requests as the harness run, so `harness / same_service` is the
//!   harness's own overhead.
//!
//! And for a bring-your-own target (`shipsim_benches::byo`: a small payments service with
//! a `Kv` store and a `bank` downstream, written as a user would write it):
//!
//! - `harness/byo_payments_clean`: `shipsim::Target` running it with a clean scenario (the
//!   setup asserts its payments reach the bank);
//! - `bare_turmoil_hyper/byo_same_service`: the same router and bank served by bare hyper
//!   on bare turmoil, each client host replaying the harness run's operations (workload
//!   and the settle phase's read-backs) with requests the same `Api` adapter builds, at the
//!   same simulated times, over plain transports; the setup asserts it serves as many
//!   requests. `harness / byo_same_service` is the harness's overhead on a user's service.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shipsim_benches::bare::{
    Shape, bare_byo_loop, bare_loop, bare_service_loop, byo_scenario, requests,
};
use shipsim_system::bugs::BugSet;

fn sim_throughput(c: &mut Criterion) {
    let faulty = shipsim_benches::scenario("walking_skeleton");
    let mut clean = faulty.clone();
    clean.faults.clear();
    let clean_run = shipsim::run_seed(&shipsim::reference::target(), &clean, 1, &BugSet::none());
    assert!(clean_run.passed(), "{:?}", clean_run.violations);
    let clean_requests = requests(&clean_run);
    let same_shape = Shape::of_run(&clean, &clean_run);
    let faulty_requests = requests(&shipsim::run_seed(
        &shipsim::reference::target(),
        &faulty,
        1,
        &BugSet::none(),
    ));
    let (service_requests, service_failures) = bare_service_loop(&clean, &clean_run);
    assert_eq!(service_failures, 0, "the bare service loop runs clean");
    assert_eq!(
        service_requests, clean_requests,
        "the bare service loop serves the harness run's requests"
    );

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
    group.bench_function("bare_turmoil_hyper/same_service", |b| {
        b.iter(|| bare_service_loop(&clean, &clean_run));
    });
    group.throughput(Throughput::Elements(faulty_requests));
    group.bench_function("harness/walking_skeleton_faults", |b| {
        b.iter(|| shipsim::run_seed(&shipsim::reference::target(), &faulty, 1, &BugSet::none()));
    });

    let byo = shipsim_benches::byo::target();
    let byo_clean = byo_scenario();
    let byo_run = shipsim::run_seed(&byo, &byo_clean, 1, &BugSet::none());
    assert!(byo_run.passed(), "{:?}", byo_run.violations);
    assert!(
        !byo_run.effects.is_empty(),
        "the bench's payments reach the bank (a create the service refuses measures nothing)"
    );
    let byo_requests = requests(&byo_run);
    let (bare_byo_requests, byo_failures) = bare_byo_loop(&byo_clean, &byo_run);
    assert_eq!(byo_failures, 0, "the bare byo loop runs clean");
    assert_eq!(
        bare_byo_requests, byo_requests,
        "the bare byo loop serves the harness run's requests"
    );
    group.throughput(Throughput::Elements(byo_requests));
    group.bench_function("harness/byo_payments_clean", |b| {
        b.iter(|| shipsim::run_seed(&byo, &byo_clean, 1, &BugSet::none()));
    });
    group.bench_function("bare_turmoil_hyper/byo_same_service", |b| {
        b.iter(|| bare_byo_loop(&byo_clean, &byo_run));
    });
    group.finish();
}

criterion_group!(benches, sim_throughput);
criterion_main!(benches);
