//! Simulated requests per wall second on the walking-skeleton scenario: one whole seed
//! (workload, heal, settle, oracles) per iteration, throughput counted in HTTP attempts.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shipsim_system::bugs::BugSet;

fn sim_throughput(c: &mut Criterion) {
    let scenario = shipsim_benches::scenario("walking_skeleton");
    let attempts: u64 = shipsim::run_seed(&scenario, 1, &BugSet::none())
        .history
        .operations()
        .iter()
        .map(|op| op.attempts.len() as u64)
        .sum();
    let mut group = c.benchmark_group("sim_throughput");
    group.throughput(Throughput::Elements(attempts));
    group.sample_size(20);
    group.bench_function("walking_skeleton/seed1", |b| {
        b.iter(|| shipsim::run_seed(&scenario, 1, &BugSet::none()));
    });
    group.finish();
}

criterion_group!(benches, sim_throughput);
criterion_main!(benches);
