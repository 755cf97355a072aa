//! Report costs: recording and merging latency histograms, and rendering summary.json and
//! index.html for a large run (the corpus with a planted bug, its scenarios repeated to 100).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shipsim::many::sweep::{Progress, SweepOptions, sweep};
use shipsim_reports::histogram::{new_latency_histogram, record_clamped};
use shipsim_system::bugs::{Bug, BugSet};

fn large_report() -> shipsim_reports::Report {
    let options = SweepOptions {
        target: shipsim::reference::target(),
        replay: shipsim::many::sweep::Replay::Cli,
        seeds: Some(shipsim::SeedRange::new(1, 6).unwrap()),
        jobs: 2,
        shard: None,
        bugs: BugSet::of([Bug::CarrierWithoutKey]),
        check_determinism: false,
        progress: Progress::Quiet,
    };
    let outcome = sweep(&shipsim_benches::corpus(), &options);
    let triaged = shipsim::many::triage::triage(&outcome, &options, false, |_, _| {});
    let (mut report, _) = shipsim::output::summary::build(
        &outcome,
        &triaged,
        &options,
        "1..6",
        std::path::Path::new("out"),
        0.0,
    );
    let base = report.scenarios.clone();
    let mut copy = 0;
    while report.scenarios.len() < 100 {
        for scenario in &base {
            let mut scenario = scenario.clone();
            scenario.name = format!("{}-{copy}", scenario.name);
            report.scenarios.push(scenario);
        }
        copy += 1;
    }
    report.scenarios.truncate(100);
    report
}

fn histograms(c: &mut Criterion) {
    let mut group = c.benchmark_group("reports_histogram");
    group.throughput(Throughput::Elements(10_000));
    let mut rng = shipsim_system::seed::Seed(3).rng();
    let samples: Vec<u64> = (0..10_000)
        .map(|_| rand::Rng::random_range(&mut rng, 1..5_000))
        .collect();
    group.bench_function("record_10k", |b| {
        let mut histogram = new_latency_histogram();
        b.iter(|| {
            for sample in &samples {
                record_clamped(&mut histogram, *sample);
            }
        });
    });
    let parts: Vec<_> = (0..100)
        .map(|i| {
            let mut histogram = new_latency_histogram();
            for sample in samples.iter().skip(i * 100).take(100) {
                record_clamped(&mut histogram, *sample);
            }
            histogram
        })
        .collect();
    group.throughput(Throughput::Elements(100));
    group.bench_function("merge_100", |b| {
        b.iter(|| {
            let mut total = new_latency_histogram();
            for part in &parts {
                total.add(part).unwrap();
            }
            black_box(total.len())
        });
    });
    group.finish();
}

fn renderers(c: &mut Criterion) {
    let report = large_report();
    let mut group = c.benchmark_group("reports_render");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function(
        BenchmarkId::new("summary_json", report.scenarios.len()),
        |b| {
            b.iter(|| shipsim_reports::json::render(&report).unwrap().len());
        },
    );
    group.bench_function(
        BenchmarkId::new("index_html", report.scenarios.len()),
        |b| {
            b.iter(|| shipsim_reports::html::render(&report).unwrap().len());
        },
    );
    group.finish();
}

criterion_group!(benches, histograms, renderers);
criterion_main!(benches);
