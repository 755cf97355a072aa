//! Oracle checking time against history length (1k, 10k, 100k operations). Throughput is
//! counted in operations, so linear growth shows as a constant time per operation.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shipsim::oracle::{OracleInput, check_all};
use shipsim::reference::{ReferenceApi, effects_of, inventory_of};
use shipsim::{Api, Conventions, Inventories};

fn oracles(c: &mut Criterion) {
    let scenario = shipsim_benches::parse("");
    let mut group = c.benchmark_group("oracles");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for operations in [1_000usize, 10_000, 100_000] {
        let (history, tables, sales) = shipsim_benches::synthetic_run(operations);
        let inventory = inventory_of(&tables);
        let inventories = Inventories {
            live: inventory.clone(),
            durable: inventory,
        };
        let effects = effects_of(&sales);
        let kinds = ReferenceApi.kinds();
        let input = OracleInput {
            scenario: &scenario,
            seed: 1,
            history: &history,
            kinds: &kinds,
            conventions: &Conventions::default(),
            inventory: Some(&inventories),
            effects: &effects,
            ledgers_read: true,
            webhooks: None,
            injections: &[],
        };
        assert!(check_all(&input).is_empty(), "the synthetic run is clean");
        group.throughput(Throughput::Elements(operations as u64));
        group.bench_function(BenchmarkId::new("check_all", operations), |b| {
            b.iter(|| check_all(&input))
        });
    }
    group.finish();
}

criterion_group!(benches, oracles);
criterion_main!(benches);
