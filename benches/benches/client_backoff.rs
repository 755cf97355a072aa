//! Retry-policy decisions per second: classify an outcome, draw a full-jitter backoff,
//! honour a Retry-After, and update the breaker and the retry budget, as the client does
//! after every failed attempt.

use std::hint::black_box;

// Linked for its global allocator (the one `shipsim` runs on).
use shipsim_benches as _;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shipsim_system::client::{
    Breaker, BreakerState, BudgetState, RetryBudget, backoff_ms, classify_status, wait_ms,
};
use shipsim_system::seed::Seed;

fn client_backoff(c: &mut Criterion) {
    let mut rng = Seed(1).rng();
    let breaker = Breaker {
        failures_to_open: 8,
        cooldown_ms: 500,
    };
    let budget = RetryBudget {
        percent: 50,
        reserve: 20,
    };
    let mut state = BreakerState::new();
    let mut balance = BudgetState::new(budget);
    let mut now_ms = 0u64;
    let mut group = c.benchmark_group("client_backoff");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decision", |b| {
        b.iter(|| {
            now_ms += 1;
            let status = if now_ms.is_multiple_of(3) { 503 } else { 429 };
            let class = classify_status(black_box(status));
            let retry = (now_ms % 8) as u32;
            let wait = wait_ms(
                backoff_ms(retry, 50, 1_000, &mut rng),
                (status == 429).then_some(1_000),
            );
            state.admit(now_ms);
            state.record(breaker, status >= 500, now_ms);
            balance.on_first_attempt(budget);
            black_box((class, wait, balance.try_retry()))
        });
    });
    group.finish();
}

criterion_group!(benches, client_backoff);
criterion_main!(benches);
