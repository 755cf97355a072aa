//! The reference service's HTTP contract, request by request, without a network: every
//! route, the error envelope, the idempotency rules, rate limiting and the carrier webhook.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::BodyExt;
use shipsim_system::api::{Label, LabelRequest, TrackingEvent, TrackingKind};
use shipsim_system::bugs::BugSet;
use shipsim_system::client::RetryPolicy;
use shipsim_system::clock::{Clock, FixedClock};
use shipsim_system::observe::NoopObserver;
use shipsim_system::seed::Seed;
use shipsim_system::service::{
    self, RateLimit, ServiceConfig, ServiceDeps, WebhookSettings, WebhookTarget,
};
use shipsim_system::store::MemoryStore;
use shipsim_system::transport::{BoxFuture, HttpRequest, HttpResponse, Transport, TransportError};
use shipsim_system::webhook::{self, SenderConfig};
use tower::ServiceExt;

const NOW_MS: u64 = 1_767_225_600_000;
const CARRIER_SECRET: &str = "whsec_carrier";

/// A carrier that sells a label per shipment (one per key), refuses Antarctica, and can be
/// told to hang until released.
#[derive(Default)]
struct FakeCarrier {
    sold: AtomicU64,
    hold: Mutex<Option<Arc<tokio::sync::Notify>>>,
    calls: AtomicU64,
}

impl Transport for FakeCarrier {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let hold = self.hold.lock().unwrap().clone();
            if let Some(notify) = hold {
                notify.notified().await;
            }
            let label_request: LabelRequest = serde_json::from_slice(request.body()).unwrap();
            if label_request.ship_to.country == "AQ" {
                let body = r#"{"error":{"code":"validation_failed","message":"unserviceable","details":[],"request_id":"r"}}"#;
                return Ok(http::Response::builder()
                    .status(400)
                    .body(Bytes::from(body))
                    .unwrap());
            }
            let n = self.sold.fetch_add(1, Ordering::SeqCst);
            let label = Label {
                label_id: format!("lbl_{n}"),
                tracking_number: format!("1Z{n}"),
                shipment_ref: label_request.shipment_ref,
                cost_cents: 600,
            };
            Ok(http::Response::builder()
                .status(201)
                .body(Bytes::from(serde_json::to_vec(&label).unwrap()))
                .unwrap())
        })
    }
}

struct Harness {
    router: axum::Router,
    carrier: Arc<FakeCarrier>,
    store: Arc<MemoryStore>,
}

fn harness(rate_limit: Option<RateLimit>) -> Harness {
    harness_with(rate_limit, Some("admin"))
}

fn harness_with(rate_limit: Option<RateLimit>, admin_key: Option<&str>) -> Harness {
    harness_full(rate_limit, admin_key, Arc::new(FixedClock(NOW_MS)))
}

fn harness_full(
    rate_limit: Option<RateLimit>,
    admin_key: Option<&str>,
    clock: Arc<dyn Clock>,
) -> Harness {
    let store = Arc::new(MemoryStore::new());
    let carrier = Arc::new(FakeCarrier::default());
    let router = service::router(
        config(rate_limit, admin_key),
        ServiceDeps {
            clock,
            store: store.clone(),
            carrier: carrier.clone(),
            observer: Arc::new(NoopObserver),
            seed: Seed(1),
            boot: 0,
        },
    );
    Harness {
        router,
        carrier,
        store,
    }
}

/// The service's configuration in these tests: two merchants, merchant-a subscribed to
/// webhooks.
fn config(rate_limit: Option<RateLimit>, admin_key: Option<&str>) -> ServiceConfig {
    ServiceConfig {
        api_keys: [
            ("key-a".to_string(), "merchant-a".to_string()),
            ("key-b".to_string(), "merchant-b".to_string()),
        ]
        .into_iter()
        .collect(),
        key_retirements: std::collections::BTreeMap::new(),
        carrier_base_url: "http://carrier".into(),
        carrier_api_key: "ck".into(),
        carrier_policy: RetryPolicy::new(500, 2_000),
        rate_limit,
        lock_lease_ms: 30_000,
        idempotency_retention_ms: service::IDEMPOTENCY_RETENTION_MS_DEFAULT,
        store_latency_ms: (0, 0),
        bugs: BugSet::none(),
        admin_key: admin_key.map(str::to_string),
        webhooks: WebhookSettings {
            carrier_secret: CARRIER_SECRET.into(),
            tolerance_s: 300,
            targets: [(
                "merchant-a".to_string(),
                WebhookTarget {
                    url: "http://merchant/webhooks".into(),
                    secret: "whsec_a".into(),
                    previous_secret: None,
                },
            )]
            .into_iter()
            .collect(),
            sender: SenderConfig::DEFAULT,
        },
    }
}

struct Reply {
    status: u16,
    headers: http::HeaderMap,
    json: serde_json::Value,
}

impl Harness {
    async fn call(&self, request: http::Request<axum::body::Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Reply {
            status,
            headers,
            json,
        }
    }

    async fn post(&self, path: &str, api_key: &str, key: Option<&str>, body: &str) -> Reply {
        let mut request = http::Request::post(path)
            .header("x-api-key", api_key)
            .header("content-type", "application/json");
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        self.call(
            request
                .body(axum::body::Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    async fn get(&self, path: &str, api_key: &str) -> Reply {
        self.call(
            http::Request::get(path)
                .header("x-api-key", api_key)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
    }

    /// An order of merchant-a (key `o1`) and its shipment (key `s1`), label bought.
    async fn order_with_shipment(&self) -> (String, Reply) {
        let order = self.order("key-a", "o1", "DE").await;
        let shipment = self
            .post(
                &format!("/v1/orders/{order}/shipments"),
                "key-a",
                Some("s1"),
                SHIPMENT,
            )
            .await;
        assert_eq!(shipment.status, 201, "{}", shipment.json);
        (order, shipment)
    }

    /// The carrier's scans of `shipment` (event id, kind), each signed and taken in.
    async fn scans(&self, shipment: &Reply, scans: &[(&str, TrackingKind)]) {
        for (id, kind) in scans {
            let event = TrackingEvent {
                event_id: (*id).into(),
                kind: *kind,
                shipment_ref: shipment.json["id"].as_str().unwrap().into(),
                label_id: shipment.json["label_id"].as_str().unwrap().into(),
                tracking_number: "1Z0".into(),
                occurred_at_ms: NOW_MS,
            };
            let reply = self
                .call(signed_event(self, &event, NOW_MS / 1_000, CARRIER_SECRET))
                .await;
            assert_eq!(reply.status, 200, "{}", reply.json);
        }
    }

    async fn order(&self, api_key: &str, key: &str, country: &str) -> String {
        let reply = self
            .post("/v1/orders", api_key, Some(key), &order_body(country))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.json);
        reply.json["id"].as_str().unwrap().to_string()
    }
}

fn order_body(country: &str) -> String {
    format!(
        r#"{{"reference":"PO-1","items":[{{"sku":"A","quantity":2}}],"ship_to":{{"name":"N","line1":"L","city":"C","postal_code":"P","country":"{country}"}}}}"#
    )
}

const SHIPMENT: &str = r#"{"service_level":"ground","weight_grams":500}"#;

fn assert_envelope(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.json);
    assert_eq!(reply.json["error"]["code"], code, "{}", reply.json);
    let request_id = reply.headers["x-request-id"].to_str().unwrap();
    assert_eq!(
        reply.json["error"]["request_id"], request_id,
        "envelope carries the request id"
    );
    assert!(
        reply.json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(reply.json["error"]["details"].is_array());
}

#[tokio::test]
async fn every_response_has_a_request_id_and_errors_one_envelope() {
    // Proves unauthenticated, unknown-route and wrong-method requests all answer with the
    // envelope and an X-Request-Id, and success does too.
    let h = harness(None);
    let missing = h
        .call(
            http::Request::get("/v1/orders/x")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_envelope(&missing, 401, "unauthenticated");
    assert_envelope(
        &h.get("/v1/orders/x", "wrong").await,
        401,
        "unauthenticated",
    );
    assert_envelope(&h.get("/v1/nope", "key-a").await, 404, "route_not_found");
    let wrong = h
        .call(
            http::Request::delete("/v1/orders")
                .header("x-api-key", "key-a")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_envelope(&wrong, 405, "method_not_allowed");
    let ok = h
        .post("/v1/orders", "key-a", Some("k1"), &order_body("DE"))
        .await;
    assert!(ok.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn bad_payloads_are_400s_naming_the_field() {
    // Proves validation: missing key, malformed JSON, unknown fields, wrong types, bad
    // values, wrong content type and oversized bodies each get a clear error.
    let h = harness(None);
    let missing = h.post("/v1/orders", "key-a", None, &order_body("DE")).await;
    assert_envelope(&missing, 400, "idempotency_key_missing");
    assert_eq!(
        missing.json["error"]["details"][0]["field"],
        "Idempotency-Key"
    );
    let broken = h
        .post("/v1/orders", "key-a", Some("k"), "{\"reference\":")
        .await;
    assert_envelope(&broken, 400, "malformed_json");
    assert!(
        broken.json["error"]["details"][0]["issue"]
            .as_str()
            .unwrap()
            .contains("line 1")
    );
    let unknown = h
        .post(
            "/v1/orders",
            "key-a",
            Some("k"),
            &order_body("DE").replace("\"reference\"", "\"colour\":1,\"reference\""),
        )
        .await;
    assert_envelope(&unknown, 400, "malformed_json");
    let invalid = h
        .post("/v1/orders", "key-a", Some("k"), &order_body("germany"))
        .await;
    assert_envelope(&invalid, 400, "validation_failed");
    assert_eq!(
        invalid.json["error"]["details"][0]["field"],
        "ship_to.country"
    );
    let text = h
        .call(
            http::Request::post("/v1/orders")
                .header("x-api-key", "key-a")
                .header("idempotency-key", "k")
                .body(axum::body::Body::from("x"))
                .unwrap(),
        )
        .await;
    assert_envelope(&text, 415, "unsupported_media_type");
    let huge = h
        .post("/v1/orders", "key-a", Some("k"), &" ".repeat(70_000))
        .await;
    assert_envelope(&huge, 413, "payload_too_large");
    assert!(
        h.store.snapshot().orders.is_empty(),
        "bad input stores nothing"
    );
}

#[tokio::test]
async fn idempotent_creates_replay_reject_reuse_and_scope_by_caller() {
    // Proves the idempotency rules: same key and body replays the same order with the
    // replay header; a different body is 422; another caller's same key is its own; the
    // key may come in the body.
    let h = harness(None);
    let first = h
        .post("/v1/orders", "key-a", Some("order-1"), &order_body("DE"))
        .await;
    assert_eq!(first.status, 201);
    assert!(!first.headers.contains_key("idempotent-replayed"));
    let again = h
        .post("/v1/orders", "key-a", Some("order-1"), &order_body("DE"))
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.json["id"], first.json["id"]);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_envelope(
        &h.post("/v1/orders", "key-a", Some("order-1"), &order_body("FR"))
            .await,
        422,
        "idempotency_key_reused",
    );
    let other = h
        .post("/v1/orders", "key-b", Some("order-1"), &order_body("DE"))
        .await;
    assert_eq!(other.status, 201);
    assert_ne!(
        other.json["id"], first.json["id"],
        "keys are scoped per caller"
    );
    let with_key = order_body("DE").replacen('{', "{\"idempotency_key\":\"order-2\",", 1);
    let in_body = h.post("/v1/orders", "key-a", None, &with_key).await;
    assert_eq!(in_body.status, 201, "{}", in_body.json);
    assert_eq!(h.store.snapshot().orders.len(), 3);
    let id = first.json["id"].as_str().unwrap();
    assert_eq!(
        h.get(&format!("/v1/orders/{id}"), "key-a").await.status,
        200
    );
    assert_envelope(
        &h.get(&format!("/v1/orders/{id}"), "key-b").await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn shipments_buy_one_label_and_replay_it() {
    // Proves a shipment is created with its label, a replay returns the same ids without a
    // second carrier call, and a carrier refusal is stored and replayed too.
    let h = harness(None);
    let order = h.order("key-a", "o1", "DE").await;
    let path = format!("/v1/orders/{order}/shipments");
    let first = h.post(&path, "key-a", Some("s1"), SHIPMENT).await;
    assert_eq!(first.status, 201, "{}", first.json);
    assert_eq!(first.json["status"], "label_purchased");
    let again = h.post(&path, "key-a", Some("s1"), SHIPMENT).await;
    assert_eq!(again.json["id"], first.json["id"]);
    assert_eq!(again.json["label_id"], first.json["label_id"]);
    assert_eq!(
        h.carrier.calls.load(Ordering::SeqCst),
        1,
        "a replay does not call the carrier"
    );
    let fetched = h
        .get(
            &format!("/v1/shipments/{}", first.json["id"].as_str().unwrap()),
            "key-a",
        )
        .await;
    assert_eq!(fetched.json["label_id"], first.json["label_id"]);
    assert_eq!(
        h.get(&format!("/v1/orders/{order}"), "key-a").await.json["status"],
        "fulfilling"
    );

    let far = h.order("key-a", "o2", "AQ").await;
    let refused = h
        .post(
            &format!("/v1/orders/{far}/shipments"),
            "key-a",
            Some("s2"),
            SHIPMENT,
        )
        .await;
    assert_eq!(refused.status, 422);
    assert_eq!(refused.json["error"]["code"], "carrier_rejected");
    let replayed = h
        .post(
            &format!("/v1/orders/{far}/shipments"),
            "key-a",
            Some("s2"),
            SHIPMENT,
        )
        .await;
    assert_eq!(replayed.status, 422);
    assert_eq!(replayed.headers["idempotent-replayed"], "true");
    assert_envelope(
        &h.post(
            "/v1/orders/ord_missing/shipments",
            "key-a",
            Some("s3"),
            SHIPMENT,
        )
        .await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn a_key_in_flight_is_a_409_with_retry_after() {
    // Proves a second request with a key whose first request is still buying its label
    // gets 409 and Retry-After, and the first completes afterwards.
    let h = Arc::new(harness(None));
    let order = h.order("key-a", "o1", "DE").await;
    let notify = Arc::new(tokio::sync::Notify::new());
    *h.carrier.hold.lock().unwrap() = Some(notify.clone());
    let path = format!("/v1/orders/{order}/shipments");
    let first = tokio::spawn({
        let h = h.clone();
        let path = path.clone();
        async move { h.post(&path, "key-a", Some("s1"), SHIPMENT).await }
    });
    while h.carrier.calls.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let second = h.post(&path, "key-a", Some("s1"), SHIPMENT).await;
    assert_envelope(&second, 409, "idempotency_request_in_progress");
    assert!(second.headers.contains_key("retry-after"));
    *h.carrier.hold.lock().unwrap() = None;
    notify.notify_waiters();
    assert_eq!(first.await.unwrap().status, 201);
}

#[tokio::test]
async fn rate_limited_callers_get_429_with_retry_after_and_headers() {
    // Proves the per-caller limiter: past the burst, 429 with Retry-After and the
    // X-RateLimit headers; another caller is unaffected.
    let h = harness(Some(RateLimit {
        burst: 2,
        per_second: 1,
    }));
    assert_eq!(h.get("/v1/orders/x", "key-a").await.status, 404);
    let second = h.get("/v1/orders/x", "key-a").await;
    assert_eq!(second.headers["x-ratelimit-remaining"], "0");
    let limited = h.get("/v1/orders/x", "key-a").await;
    assert_envelope(&limited, 429, "rate_limited");
    assert_eq!(limited.headers["retry-after"], "1");
    assert_eq!(limited.headers["x-ratelimit-limit"], "2");
    assert_eq!(h.get("/v1/orders/x", "key-b").await.status, 404);
}

fn signed_event(
    h: &Harness,
    event: &TrackingEvent,
    signed_at_s: u64,
    secret: &str,
) -> http::Request<axum::body::Body> {
    let _ = h;
    let body = serde_json::to_vec(event).unwrap();
    http::Request::post("/v1/webhooks/carrier")
        .header("content-type", "application/json")
        .header(
            webhook::HEADER_SIGNATURE,
            webhook::sign(secret, signed_at_s, &body),
        )
        .body(axum::body::Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn carrier_webhooks_are_verified_deduplicated_and_never_go_backwards() {
    // Proves the inbound webhook: bad signatures and stale timestamps are refused and
    // change nothing; an event applies once; a duplicate is acknowledged (and counted in
    // /metrics); a late in-transit after delivered does not move the shipment back.
    let h = harness(None);
    let (order, shipment) = h.order_with_shipment().await;
    let shipment_id = shipment.json["id"].as_str().unwrap().to_string();
    let event = |id: &str, kind| TrackingEvent {
        event_id: id.into(),
        kind,
        shipment_ref: shipment_id.clone(),
        label_id: shipment.json["label_id"].as_str().unwrap().into(),
        tracking_number: "1Z0".into(),
        occurred_at_ms: NOW_MS,
    };
    let now_s = NOW_MS / 1_000;
    let outbox_before = h.store.snapshot().outbox.len();
    assert_envelope(
        &h.call(signed_event(
            &h,
            &event("e1", TrackingKind::Delivered),
            now_s,
            "wrong",
        ))
        .await,
        400,
        "invalid_signature",
    );
    assert_envelope(
        &h.call(signed_event(
            &h,
            &event("e1", TrackingKind::Delivered),
            now_s - 301,
            CARRIER_SECRET,
        ))
        .await,
        400,
        "timestamp_out_of_tolerance",
    );
    assert_eq!(
        h.store.snapshot().outbox.len(),
        outbox_before,
        "refused events change nothing"
    );

    let applied = h
        .call(signed_event(
            &h,
            &event("e1", TrackingKind::Delivered),
            now_s,
            CARRIER_SECRET,
        ))
        .await;
    assert_eq!(
        (applied.status, &applied.json["applied"]),
        (200, &serde_json::json!(true))
    );
    let duplicate = h
        .call(signed_event(
            &h,
            &event("e1", TrackingKind::Delivered),
            now_s,
            CARRIER_SECRET,
        ))
        .await;
    assert_eq!(
        (duplicate.status, &duplicate.json["duplicate"]),
        (200, &serde_json::json!(true))
    );
    let late = h
        .call(signed_event(
            &h,
            &event("e2", TrackingKind::InTransit),
            now_s,
            CARRIER_SECRET,
        ))
        .await;
    assert_eq!(
        (late.status, &late.json["applied"]),
        (200, &serde_json::json!(false))
    );
    let tables = h.store.snapshot();
    assert_eq!(
        tables.shipments[&shipment_id].shipment.status,
        shipsim_system::api::ShipmentStatus::Delivered
    );
    let caused: Vec<_> = tables
        .outbox
        .values()
        .filter_map(|r| r.cause.clone())
        .collect();
    assert_eq!(caused, ["e1", "e2"], "one announcement per carrier event");
    assert_eq!(
        h.get(&format!("/v1/orders/{order}"), "key-a").await.json["status"],
        "delivered"
    );
    let metrics = h
        .router
        .clone()
        .oneshot(
            http::Request::get("/metrics")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let text = metrics.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.lines()
            .any(|l| l == "shipsim_webhook_duplicates_absorbed_total 1"),
        "{text}"
    );
}

#[tokio::test]
async fn operator_routes_take_the_admin_key_not_a_merchant_key() {
    // Proves the route table's access classes: the admin routes answer the admin key with
    // no merchant API key (so a merchant's rate limit never applies to them) and refuse a
    // missing or wrong admin key with 401; a merchant key does not open them.
    let h = harness(Some(RateLimit {
        burst: 1,
        per_second: 1,
    }));
    for (method, path) in [
        ("GET", "/v1/admin/state"),
        ("GET", "/v1/admin/outbox"),
        ("POST", "/v1/admin/outbox/redeliver"),
    ] {
        let request = |admin_key: Option<&str>| {
            let mut builder = http::Request::builder().method(method).uri(path);
            if let Some(key) = admin_key {
                builder = builder.header("x-admin-key", key);
            }
            builder.body(axum::body::Body::empty()).unwrap()
        };
        for _ in 0..3 {
            assert_eq!(h.call(request(Some("admin"))).await.status, 200, "{path}");
        }
        assert_envelope(&h.call(request(None)).await, 401, "unauthenticated");
        assert_envelope(&h.call(request(Some("nope"))).await, 401, "unauthenticated");
        let merchant = h
            .call(
                http::Request::builder()
                    .method(method)
                    .uri(path)
                    .header("x-api-key", "key-a")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        assert_envelope(&merchant, 401, "unauthenticated");
    }
}

#[tokio::test]
async fn admin_calls_say_admin_is_disabled_without_an_admin_key() {
    // Proves a service started without an admin key answers every admin call, with or
    // without a key, by saying the admin endpoints are disabled (403 `admin_disabled`),
    // not by asking for a key no one could send.
    let h = harness_with(None, None);
    for (method, path) in [
        ("GET", "/v1/admin/state"),
        ("GET", "/v1/admin/outbox"),
        ("POST", "/v1/admin/outbox/redeliver"),
    ] {
        for key in [None, Some("admin")] {
            let mut builder = http::Request::builder().method(method).uri(path);
            if let Some(key) = key {
                builder = builder.header("x-admin-key", key);
            }
            let reply = h
                .call(builder.body(axum::body::Body::empty()).unwrap())
                .await;
            assert_envelope(&reply, 403, "admin_disabled");
            let message = reply.json["error"]["message"].as_str().unwrap();
            assert!(message.contains("disabled"), "{message}");
            assert!(!message.contains("X-Admin-Key header"), "{message}");
        }
    }
}

#[tokio::test]
async fn a_callers_request_id_is_echoed_and_a_bad_one_replaced() {
    // Proves `X-Request-Id`: a valid id the caller sends comes back in the header and in
    // the error envelope (so the caller's logs and ours share it); an invalid one (spaces,
    // too long, empty) is replaced by a fresh `req_...` id; with none, one is generated.
    let h = harness(None);
    let get = |id: Option<&str>| {
        let mut builder = http::Request::get("/v1/orders/ord_missing").header("x-api-key", "key-a");
        if let Some(id) = id {
            builder = builder.header("x-request-id", id);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    };
    for id in [
        "client-trace-42",
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        "a:b/c+d=e@f.g_h",
    ] {
        let reply = h.call(get(Some(id))).await;
        assert_envelope(&reply, 404, "not_found");
        assert_eq!(reply.headers["x-request-id"], id);
        assert_eq!(reply.json["error"]["request_id"], id);
    }
    let long = "x".repeat(129);
    for id in [Some("has spaces"), Some(long.as_str()), Some(""), None] {
        let reply = h.call(get(id)).await;
        let given = reply.headers["x-request-id"].to_str().unwrap();
        assert!(given.starts_with("req_"), "{id:?} -> {given}");
        assert_eq!(reply.json["error"]["request_id"], given);
    }
    let created = h
        .call(
            http::Request::post("/v1/orders")
                .header("x-api-key", "key-a")
                .header("content-type", "application/json")
                .header("idempotency-key", "rid-1")
                .header("x-request-id", "trace-7")
                .body(axum::body::Body::from(order_body("DE")))
                .unwrap(),
        )
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(created.headers["x-request-id"], "trace-7");
}

#[tokio::test]
async fn framework_rejections_wear_the_envelope_too() {
    // Proves the rejections axum makes before a handler runs come out in the envelope with
    // a request id: a 100 KB body to the carrier webhook (413 from the body limit, which
    // was `text/plain`), and a path id that is not UTF-8 once decoded (a 400 naming `id`,
    // not a 404 quoting the extractor's message as if it were an id).
    let h = harness(None);
    let huge = h
        .call(
            http::Request::post("/v1/webhooks/carrier")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(vec![b' '; 100 * 1024]))
                .unwrap(),
        )
        .await;
    assert_envelope(&huge, 413, "payload_too_large");
    assert_eq!(huge.headers["content-type"], "application/json");
    for path in [
        "/v1/orders/%FF",
        "/v1/shipments/%C3%28",
        "/v1/orders/%FF/shipments",
    ] {
        let request = http::Request::builder()
            .method(if path.ends_with("shipments") {
                "POST"
            } else {
                "GET"
            })
            .uri(path)
            .header("x-api-key", "key-a")
            .header("content-type", "application/json")
            .header("idempotency-key", "utf8")
            .body(axum::body::Body::from(SHIPMENT))
            .unwrap();
        let reply = h.call(request).await;
        assert_envelope(&reply, 400, "validation_failed");
        assert_eq!(reply.json["error"]["details"][0]["field"], "id", "{path}");
        assert!(
            !reply.json.to_string().contains("Invalid URL"),
            "{path}: {}",
            reply.json
        );
    }
}

/// A carrier event as raw JSON, signed.
fn signed_json(body: &serde_json::Value) -> http::Request<axum::body::Body> {
    let body = serde_json::to_vec(body).unwrap();
    http::Request::post("/v1/webhooks/carrier")
        .header("content-type", "application/json")
        .header(
            webhook::HEADER_SIGNATURE,
            webhook::sign(CARRIER_SECRET, NOW_MS / 1_000, &body),
        )
        .body(axum::body::Body::from(body))
        .unwrap()
}

async fn metrics_text(h: &Harness) -> String {
    let response = h
        .router
        .clone()
        .oneshot(
            http::Request::get("/metrics")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).to_string()
}

#[tokio::test]
async fn carrier_events_are_read_forward_compatibly() {
    // Proves a correctly signed event of a kind the service does not know is acknowledged
    // (200, `ignored: unknown_kind`) and taken in once (a redelivery is a duplicate), a
    // known kind with an extra field is applied as usual, an event for a shipment the
    // service does not have is acknowledged (`ignored: unknown_shipment`), and /metrics
    // counts each; before, the first two were 400 `malformed_json`, which the carrier
    // retries until it dead-letters them.
    let h = harness(None);
    let (_, shipment) = h.order_with_shipment().await;
    let shipment_id = shipment.json["id"].as_str().unwrap().to_string();
    let label_id = shipment.json["label_id"].as_str().unwrap().to_string();
    let unknown_kind = serde_json::json!({
        "event_id": "e-new", "kind": "returned_to_sender", "shipment_ref": shipment_id,
        "label_id": label_id, "tracking_number": "1Z0", "occurred_at_ms": NOW_MS,
        "reason": "refused"
    });
    let reply = h.call(signed_json(&unknown_kind)).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["ignored"], "unknown_kind");
    assert_eq!(reply.json["applied"], false);
    let again = h.call(signed_json(&unknown_kind)).await;
    assert_eq!(
        (again.status, &again.json["duplicate"]),
        (200, &serde_json::json!(true))
    );
    assert!(h.store.snapshot().processed_events.contains_key("e-new"));

    let extra_field = serde_json::json!({
        "event_id": "e-extra", "kind": "picked_up", "shipment_ref": shipment_id,
        "label_id": label_id, "tracking_number": "1Z0", "occurred_at_ms": NOW_MS,
        "weather": "rain", "depot": { "id": 7 }
    });
    let reply = h.call(signed_json(&extra_field)).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["applied"], true);
    assert_eq!(reply.json["ignored"], serde_json::Value::Null);
    assert_eq!(
        h.store.snapshot().shipments[&shipment_id].shipment.status,
        shipsim_system::api::ShipmentStatus::InTransit
    );

    let stranger = serde_json::json!({
        "event_id": "e-stranger", "kind": "delivered", "shipment_ref": "shp_elsewhere",
        "label_id": "lbl_x", "tracking_number": "1Z9", "occurred_at_ms": NOW_MS
    });
    let reply = h.call(signed_json(&stranger)).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["ignored"], "unknown_shipment");

    // A known kind without its fields is still malformed: the carrier has a bug to fix.
    let incomplete = serde_json::json!({ "event_id": "e-bad", "kind": "delivered" });
    assert_envelope(
        &h.call(signed_json(&incomplete)).await,
        400,
        "malformed_json",
    );

    let text = metrics_text(&h).await;
    for line in [
        "shipsim_webhook_events_ignored_total{reason=\"unknown_kind\"} 1",
        "shipsim_webhook_events_ignored_total{reason=\"unknown_shipment\"} 1",
        "shipsim_webhook_unknown_fields_total 3",
        "shipsim_webhook_duplicates_absorbed_total 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
}

/// A clock a test moves by hand.
struct MovableClock(AtomicU64);

impl Clock for MovableClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[tokio::test(start_paused = true)]
async fn idempotency_keys_are_forgotten_after_the_retention_and_swept() {
    // Proves the retention, by moving the service's clock: a key replays its order until
    // 24 h after completion, and from then on executes as new (a new order, not a replay);
    // the sweeper, run on tokio's paused clock, deletes completed records past retention
    // and leaves a record in progress alone, however old. Before, keys were never
    // forgotten and nothing deleted them.
    const DAY_MS: u64 = service::IDEMPOTENCY_RETENTION_MS_DEFAULT;
    let clock = Arc::new(MovableClock(AtomicU64::new(NOW_MS)));
    let h = harness_full(None, Some("admin"), clock.clone());
    let first = h
        .post("/v1/orders", "key-a", Some("k-kept"), &order_body("DE"))
        .await;
    assert_eq!(first.status, 201);
    clock.0.store(NOW_MS + DAY_MS - 1, Ordering::SeqCst);
    let replay = h
        .post("/v1/orders", "key-a", Some("k-kept"), &order_body("DE"))
        .await;
    assert_eq!(replay.json["id"], first.json["id"]);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    clock.0.store(NOW_MS + DAY_MS, Ordering::SeqCst);
    let after = h
        .post("/v1/orders", "key-a", Some("k-kept"), &order_body("DE"))
        .await;
    assert_eq!(after.status, 201, "{}", after.json);
    assert_ne!(after.json["id"], first.json["id"], "the key was forgotten");
    assert!(!after.headers.contains_key("idempotent-replayed"));
    let other = h
        .post("/v1/orders", "key-b", Some("k-other"), &order_body("DE"))
        .await;
    assert_eq!(other.status, 201);

    // An operation stuck in progress since the start: never swept.
    let stuck = shipsim_system::store::IdempotencyRecord {
        scope: shipsim_system::store::IdemScope {
            caller: "merchant-a".into(),
            key: "k-stuck".into(),
        },
        fingerprint: "fp".into(),
        created_at_ms: NOW_MS,
        state: shipsim_system::store::IdemState::InProgress {
            lock: None,
            recovery: shipsim_system::store::RecoveryPoint::ShipmentCreated {
                shipment_id: "shp_stuck".into(),
            },
        },
    };
    shipsim_system::store::transact(&*h.store, shipsim_system::store::Durability::Sync, |tx| {
        tx.put_idempotency(stuck.clone());
        Ok::<_, shipsim_system::store::StoreError>(())
    })
    .unwrap();
    assert_eq!(h.store.snapshot().idempotency.len(), 3);
    // A batch of one: the two expired records take two transactions in one sweep, so the
    // sweep's repeat-until-fewer loop is what deletes the second.
    tokio::spawn(service::run_idempotency_sweeper(
        h.store.clone(),
        clock.clone(),
        DAY_MS,
        1,
    ));
    tokio::time::sleep(std::time::Duration::from_millis(
        service::SWEEP_INTERVAL_MS + 1_000,
    ))
    .await;
    assert_eq!(
        h.store.snapshot().idempotency.len(),
        3,
        "nothing expired yet"
    );
    clock.0.store(NOW_MS + 2 * DAY_MS, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(service::SWEEP_INTERVAL_MS)).await;
    let left: Vec<String> = h
        .store
        .snapshot()
        .idempotency
        .keys()
        .map(|scope| scope.key.clone())
        .collect();
    assert_eq!(
        left,
        ["k-stuck"],
        "completed records past retention are deleted"
    );
}

/// A SQLite store that notes the thread every transaction body runs on.
struct ThreadSpy {
    inner: shipsim_system::store::SqliteStore,
    threads: Arc<Mutex<Vec<std::thread::ThreadId>>>,
}

impl shipsim_system::store::Store for ThreadSpy {
    fn run_tx(
        &self,
        durability: shipsim_system::store::Durability,
        body: &mut dyn FnMut(
            &mut dyn shipsim_system::store::Tx,
        ) -> shipsim_system::store::TxDecision,
    ) -> Result<(), shipsim_system::store::StoreError> {
        self.threads
            .lock()
            .unwrap()
            .push(std::thread::current().id());
        self.inner.run_tx(durability, body)
    }

    fn run_tx_owned(
        &self,
        durability: shipsim_system::store::Durability,
        mut body: shipsim_system::store::OwnedTxBody,
    ) -> shipsim_system::store::TxFuture {
        let threads = self.threads.clone();
        self.inner.run_tx_owned(
            durability,
            Box::new(move |tx| {
                threads.lock().unwrap().push(std::thread::current().id());
                body(tx)
            }),
        )
    }

    fn read_all(&self) -> Result<shipsim_system::store::Tables, shipsim_system::store::StoreError> {
        self.inner.read_all()
    }
}

#[tokio::test]
async fn sqlite_commits_never_run_on_the_async_worker() {
    // Proves the service keeps SQLite's commits (each an fsync) off its async worker: on a
    // single-threaded runtime, creating an order and a shipment (label bought), reading
    // them back and taking a carrier webhook in runs every transaction body on the store's
    // writer thread, never on the runtime's one thread, which would otherwise serve
    // nothing while the disk syncs.
    let dir = tempfile::tempdir().unwrap();
    let (sqlite, _) =
        shipsim_system::store::SqliteStore::open(&dir.path().join("service.db")).unwrap();
    let threads = Arc::new(Mutex::new(Vec::new()));
    let store = Arc::new(ThreadSpy {
        inner: sqlite,
        threads: threads.clone(),
    });
    let carrier = Arc::new(FakeCarrier::default());
    let h = Harness {
        router: service::router(
            config(None, Some("admin")),
            ServiceDeps {
                clock: Arc::new(FixedClock(NOW_MS)),
                store,
                carrier: carrier.clone(),
                observer: Arc::new(NoopObserver),
                seed: Seed(1),
                boot: 0,
            },
        ),
        carrier,
        store: Arc::new(MemoryStore::new()),
    };
    let (order, shipment) = h.order_with_shipment().await;
    assert_eq!(
        h.get(&format!("/v1/orders/{order}"), "key-a").await.status,
        200
    );
    let event = TrackingEvent {
        event_id: "e1".into(),
        kind: TrackingKind::PickedUp,
        shipment_ref: shipment.json["id"].as_str().unwrap().into(),
        label_id: shipment.json["label_id"].as_str().unwrap().into(),
        tracking_number: "1Z0".into(),
        occurred_at_ms: NOW_MS,
    };
    assert_eq!(
        h.call(signed_event(&h, &event, NOW_MS / 1_000, CARRIER_SECRET))
            .await
            .status,
        200
    );
    let worker = std::thread::current().id();
    let threads = threads.lock().unwrap();
    assert!(threads.len() >= 6, "{} transactions", threads.len());
    assert!(
        threads.iter().all(|t| *t != worker),
        "a transaction ran on the async worker"
    );
}

#[tokio::test]
async fn outbound_events_carry_a_per_shipment_sequence_in_commit_order() {
    // Proves every outbound webhook says where it stands among its shipment's events: the
    // shipment's creation is 1, each carrier scan announced after it the next number
    // (whether it moved the shipment or was a tracking update), in commit order, so a
    // receiver that sees deliveries overtake each other can tell a stale one. The order's
    // own event is 1 of its order. Before, events had no sequence at all.
    let h = harness(None);
    let (_, shipment) = h.order_with_shipment().await;
    let shipment_id = shipment.json["id"].as_str().unwrap().to_string();
    h.scans(
        &shipment,
        &[
            ("e1", TrackingKind::PickedUp),
            ("e2", TrackingKind::InTransit),
            ("e3", TrackingKind::Delivered),
        ],
    )
    .await;
    let tables = h.store.snapshot();
    let announced: Vec<(String, serde_json::Value)> = tables
        .outbox
        .values()
        .map(|record| {
            let body = serde_json::to_value(&record.event).unwrap();
            (record.event.event_type.clone(), body["sequence"].clone())
        })
        .collect();
    assert_eq!(
        announced,
        [
            ("order.created".to_string(), serde_json::json!(1)),
            ("shipment.created".to_string(), serde_json::json!(1)),
            ("shipment.shipped".to_string(), serde_json::json!(2)),
            ("shipment.tracking_update".to_string(), serde_json::json!(3)),
            ("shipment.delivered".to_string(), serde_json::json!(4)),
        ]
    );
    assert_eq!(tables.shipments[&shipment_id].webhook_sequence, 4);
}

#[tokio::test]
async fn the_events_feed_pages_the_callers_webhook_events_in_commit_order() {
    // Proves `GET /v1/events` returns exactly the events the caller's webhooks carry (same
    // ids, same bodies as the outbox), oldest first, in pages that follow `next_cursor`
    // without skipping or repeating the boundary event; that an empty page keeps the cursor;
    // that another caller sees none of them; and that bad parameters are 400s naming the
    // field, never a panic or a silent default.
    let h = harness(None);
    let (_, shipment) = h.order_with_shipment().await;
    h.scans(
        &shipment,
        &[
            ("e1", TrackingKind::PickedUp),
            ("e2", TrackingKind::Delivered),
        ],
    )
    .await;
    let outbox: Vec<serde_json::Value> = h
        .store
        .snapshot()
        .outbox
        .values()
        .map(|record| serde_json::to_value(&record.event).unwrap())
        .collect();
    assert_eq!(outbox.len(), 4, "order, shipment and two scans announced");

    let mut seen = Vec::new();
    let mut path = "/v1/events?limit=3".to_string();
    let mut pages = 0;
    loop {
        let page = h.get(&path, "key-a").await;
        assert_eq!(page.status, 200, "{}", page.json);
        seen.extend(page.json["events"].as_array().unwrap().iter().cloned());
        let cursor = page.json["next_cursor"].as_str().unwrap().to_string();
        pages += 1;
        path = format!("/v1/events?after={cursor}&limit=3");
        if page.json["has_more"] == false {
            break;
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(
        seen, outbox,
        "the feed carries the webhooks' bodies, in commit order"
    );
    let empty = h.get(&path, "key-a").await;
    assert_eq!(empty.json["events"], serde_json::json!([]));
    assert_eq!(
        format!(
            "/v1/events?after={}&limit=3",
            empty.json["next_cursor"].as_str().unwrap()
        ),
        path,
        "an empty page hands the same cursor back"
    );

    let other = h.get("/v1/events", "key-b").await;
    assert_eq!(other.status, 200);
    assert_eq!(
        other.json["events"],
        serde_json::json!([]),
        "callers see their own"
    );

    for (query, field) in [
        ("after=evt_1", "after"),
        ("after=evc_00000000000000zz", "after"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=lots", "limit"),
        ("cursor=evc_0000000000000001", "cursor"),
    ] {
        let reply = h.get(&format!("/v1/events?{query}"), "key-a").await;
        assert_envelope(&reply, 400, "validation_failed");
        assert_eq!(reply.json["error"]["details"][0]["field"], field, "{query}");
    }
    let anonymous = h
        .call(
            http::Request::get("/v1/events")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_envelope(&anonymous, 401, "unauthenticated");
}
