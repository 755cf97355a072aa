//! What one request costs the reference service itself, without a network or a
//! simulation: the axum router (its middleware, handler, JSON, idempotency fingerprint and
//! store) driven with `tower::ServiceExt::oneshot` on a current-thread runtime, the carrier
//! reached in process the same way. This is the per-request work every simulated exchange
//! pays on top of turmoil and hyper; `sim_throughput` measures it in context.
//!
//! - `create_order`: `POST /v1/orders` under a fresh key (one transaction, one outbox-free
//!   order);
//! - `create_order_replay`: the same request under a key already used (a stored replay);
//! - `get_order`: `GET /v1/orders/{id}`;
//! - `create_shipment`: `POST /v1/orders/{id}/shipments` under a fresh key, which buys a
//!   label from the carrier (two requests: the service's and the carrier's), on an order
//!   of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

// Linked for its global allocator (the one `shipsim` runs on).
use shipsim_benches as _;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use shipsim_system::bugs::BugSet;
use shipsim_system::carrier::{self, CarrierConfig, CarrierDeps, CarrierLedger};
use shipsim_system::clock::Clock;
use shipsim_system::observe::NoopObserver;
use shipsim_system::seed::Seed;
use shipsim_system::service::{self, ServiceConfig, ServiceDeps, WebhookSettings};
use shipsim_system::store::MemoryStore;
use shipsim_system::transport::{BoxFuture, HttpRequest, HttpResponse, Transport, TransportError};
use shipsim_system::webhook::{SenderConfig, TOLERANCE_S_DEFAULT};
use tower::ServiceExt;

const API_KEY: &str = "sk_bench";
const CARRIER_KEY: &str = "ck_bench";

/// A clock that stands still: the benchmark measures work, not time.
struct Still;

impl Clock for Still {
    fn now_ms(&self) -> u64 {
        1_767_225_600_000
    }
}

/// Serves a request with `router` in process.
async fn serve(router: &axum::Router, request: HttpRequest) -> HttpResponse {
    let (parts, body) = request.into_parts();
    let response = router
        .clone()
        .oneshot(http::Request::from_parts(
            parts,
            axum::body::Body::from(body),
        ))
        .await
        .expect("routers are infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("in-memory bodies").to_bytes();
    http::Response::from_parts(parts, bytes)
}

/// The carrier, reached without a network.
struct InProcess(axum::Router);

impl Transport for InProcess {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move { Ok(serve(&self.0, request).await) })
    }
}

fn service() -> axum::Router {
    let carrier = carrier::router(
        CarrierConfig {
            api_key: CARRIER_KEY.into(),
            unserviceable_countries: std::collections::BTreeSet::new(),
            tracking: None,
            admin_key: None,
        },
        CarrierDeps {
            clock: Arc::new(Still),
            ledger: Arc::new(CarrierLedger::new()),
            observer: Arc::new(NoopObserver),
            seed: Seed(1).derive("carrier"),
            boot: 0,
        },
    );
    service::router(
        ServiceConfig {
            api_keys: [(API_KEY.to_string(), "merchant-0".to_string())].into(),
            key_retirements: std::collections::BTreeMap::new(),
            carrier_base_url: "http://carrier".into(),
            carrier_api_key: CARRIER_KEY.into(),
            carrier_policy: shipsim_benches::scenario("walking_skeleton")
                .service
                .carrier,
            rate_limit: None,
            lock_lease_ms: service::LOCK_LEASE_MS_DEFAULT,
            idempotency_retention_ms: service::IDEMPOTENCY_RETENTION_MS_DEFAULT,
            store_latency_ms: (0, 0),
            bugs: BugSet::none(),
            admin_key: None,
            webhooks: WebhookSettings {
                carrier_secret: "whsec_bench".into(),
                tolerance_s: TOLERANCE_S_DEFAULT,
                targets: std::collections::BTreeMap::new(),
                sender: SenderConfig::DEFAULT,
            },
        },
        ServiceDeps {
            clock: Arc::new(Still),
            store: Arc::new(MemoryStore::new()),
            carrier: Arc::new(InProcess(carrier)),
            observer: Arc::new(NoopObserver),
            seed: Seed(1).derive("service"),
            boot: 0,
        },
    )
}

const ORDER: &str = r#"{"reference":"PO-1","items":[{"sku":"SKU-100","quantity":2},{"sku":"SKU-200","quantity":1}],"ship_to":{"name":"Customer 7","line1":"12 Main Street","city":"Springfield","postal_code":"12345","country":"DE"}}"#;
const SHIPMENT: &str = r#"{"service_level":"ground","weight_grams":1200}"#;

fn post(path: &str, key: &str, body: &'static str) -> HttpRequest {
    http::Request::post(path)
        .header("content-type", "application/json")
        .header("x-api-key", API_KEY)
        .header("idempotency-key", key)
        .body(Bytes::from_static(body.as_bytes()))
        .expect("a valid request")
}

fn get(path: &str) -> HttpRequest {
    http::Request::get(path)
        .header("x-api-key", API_KEY)
        .body(Bytes::new())
        .expect("a valid request")
}

fn id_of(response: &HttpResponse) -> String {
    assert!(response.status().is_success(), "{response:?}");
    let value: serde_json::Value = serde_json::from_slice(response.body()).expect("JSON");
    value["id"].as_str().expect("an id").to_string()
}

fn service_request(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let router = service();
    let keys = AtomicU64::new(0);
    let fresh = || format!("key-{}", keys.fetch_add(1, Ordering::Relaxed));
    let order_id = runtime
        .block_on(async { id_of(&serve(&router, post("/v1/orders", "first", ORDER)).await) });
    let order_path = format!("/v1/orders/{order_id}");

    let mut group = c.benchmark_group("service_request");
    group.bench_function("create_order", |b| {
        b.iter(|| runtime.block_on(serve(&router, post("/v1/orders", &fresh(), ORDER))));
    });
    group.bench_function("create_order_replay", |b| {
        b.iter(|| runtime.block_on(serve(&router, post("/v1/orders", "first", ORDER))));
    });
    group.bench_function("get_order", |b| {
        b.iter(|| runtime.block_on(serve(&router, get(&order_path))));
    });
    // A fresh order for each shipment (made outside the measurement): an order records
    // its shipments, so one order taking thousands would measure a growing record.
    group.bench_function("create_shipment", |b| {
        b.iter_batched(
            || {
                let order = runtime.block_on(async {
                    id_of(&serve(&router, post("/v1/orders", &fresh(), ORDER)).await)
                });
                (format!("/v1/orders/{order}/shipments"), fresh())
            },
            |(path, key)| {
                let response = runtime.block_on(serve(&router, post(&path, &key, SHIPMENT)));
                assert_eq!(response.status(), 201);
            },
            criterion::BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, service_request);
criterion_main!(benches);
