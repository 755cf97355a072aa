//! Wall time per seed: each scenario of the corpus, and one workload with 1, 10 and 100
//! client hosts. Seeds rotate so no single seed's luck decides a figure.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use shipsim_system::bugs::BugSet;

fn per_scenario(c: &mut Criterion) {
    let mut group = c.benchmark_group("seed_sweep");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    for scenario in shipsim_benches::corpus() {
        let mut seed = 0;
        group.bench_function(BenchmarkId::new("scenario", &scenario.name), |b| {
            b.iter(|| {
                seed = seed % 20 + 1;
                shipsim::run_seed(
                    &shipsim::reference::target(),
                    &scenario,
                    seed,
                    &BugSet::none(),
                )
            });
        });
    }
    group.finish();
}

fn per_client_count(c: &mut Criterion) {
    let mut group = c.benchmark_group("seed_sweep_clients");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for clients in [1u32, 10, 100] {
        let scenario = shipsim_benches::parse(&format!(
            "[hosts]\nclients = {clients}\ncallers = 1\n\n[workload]\noperations = 10\nthink_ms = [0, 20]\n\n[[fault]]\nkind = \"http_error\"\ntarget = \"service\"\nprobability = 0.1\n"
        ));
        let mut seed = 0;
        group.bench_function(BenchmarkId::new("clients", clients), |b| {
            b.iter(|| {
                seed = seed % 10 + 1;
                shipsim::run_seed(
                    &shipsim::reference::target(),
                    &scenario,
                    seed,
                    &BugSet::none(),
                )
            });
        });
    }
    group.finish();
}

criterion_group!(benches, per_scenario, per_client_count);
criterion_main!(benches);
