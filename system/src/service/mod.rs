//! The reference order/shipment service (axum).
//!
//! Merchant routes: `POST /v1/orders`, `GET /v1/orders/{id}`, `POST /v1/orders/{id}/shipments`,
//! `GET /v1/shipments/{id}`, `GET /v1/events` (the caller's webhook events after a cursor,
//! see `events`), each authenticated by `X-API-Key` and rate limited per caller.
//! The carrier's tracking webhooks arrive at `POST /v1/webhooks/carrier`, authenticated by
//! their signature (see `webhooks`). Operator routes: `GET /openapi.json` (the contract,
//! [`openapi`]), `GET /metrics` (Prometheus text, [`metrics`]), and for the holder of the
//! admin key `GET /v1/admin/state` (the whole store), `GET /v1/admin/outbox` and
//! `POST /v1/admin/outbox/redeliver` (the webhook outbox). None of these takes a merchant's
//! API key or counts against a merchant's rate limit. Every response carries an `X-Request-Id`, errors use one envelope, and
//! every request runs in a `tracing` span carrying its request id, caller, idempotency key,
//! order and shipment ids. Writes are idempotent per (caller, `Idempotency-Key`); see
//! `idempotency` for the rules. [`routes`] is the one list of endpoints: the router is
//! built from it and the OpenAPI document is tested against it.
//!
//! The service is a `Router`; whoever runs it supplies the listener (turmoil's in the
//! simulation, a real socket in live mode), and its clock, store, carrier transport, ids and
//! observer come in through [`ServiceDeps`].

mod carrier_client;
mod context;
mod error;
mod events;
mod framing;
mod idempotency;
pub mod metrics;
pub mod openapi;
mod orders;
mod rate_limit;
mod shipments;
pub(crate) mod validate;
mod webhooks;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use rand_chacha::ChaCha8Rng;

pub use crate::api::HEADER_ADMIN_KEY;
pub use carrier_client::carrier_key;
pub use context::{Caller, RequestId, is_valid_request_id};
pub use error::ApiError;
pub use events::{EVENTS_LIMIT_DEFAULT, EVENTS_LIMIT_MAX, cursor_of, seq_of};
pub use framing::{EnvelopeIo, EnvelopeListener, envelope_parse_error};
pub use rate_limit::RateLimit;
pub use webhooks::{
    OutboxCounts, WebhookSettings, WebhookTarget, run_outbox_sender, run_outbox_sender_rotating,
};

pub(crate) use context::request_context as request_context_layer;
pub(crate) use context::{no_route, wrong_method};
pub(crate) use idempotency::fingerprint as fingerprint_of;

use self::carrier_client::CarrierClient;
use self::idempotency::Decider;
use self::metrics::Metrics;
use self::rate_limit::Buckets;
use crate::api::HEADER_IDEMPOTENT_REPLAYED;
use crate::bugs::{Bug, BugSet};
use crate::client::RetryPolicy;
use crate::clock::Clock;
use crate::observe::Observer;
use crate::secret::KeyRing;
use crate::seed::{IdGen, Seed};
use crate::store::{self, Durability, IdemScope, IdempotencyRecord, Store, TablesDump, Tx};
use crate::transport::Transport;

/// How long a request's claim on an in-progress operation lasts (30 s) before another
/// request may take it over. Requests finish or fail well within it (the carrier call is
/// bounded by its own deadline); the lease only matters if a handler is wedged.
pub const LOCK_LEASE_MS_DEFAULT: u64 = 30_000;

/// How long a completed idempotency record is remembered (24 h, as Stripe retains keys):
/// long enough for any client's retries, even across a day-long outage of the client, and
/// short enough that the table stays proportional to a day of writes.
pub const IDEMPOTENCY_RETENTION_MS_DEFAULT: u64 = 24 * 60 * 60 * 1_000;

/// How often the sweeper looks for idempotency records past their retention (1 min): the
/// table holds at most a minute of expired records beyond the retention.
pub const SWEEP_INTERVAL_MS: u64 = 60_000;

/// Records deleted per sweep transaction: each transaction holds the write lock briefly;
/// the sweeper repeats until a sweep deletes fewer.
pub const SWEEP_BATCH_MAX: usize = 1_000;

/// A key's retirement in a rotation: its replacement was issued at `replaced_at_ms`, and
/// it stays accepted until `retired_at_ms` (unix ms by the service's clock), so requests
/// sent with it before clients moved over, retries included, still authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRetirement {
    /// When the replacement key was issued (clients start moving to it).
    pub replaced_at_ms: u64,
    /// From when the key is refused.
    pub retired_at_ms: u64,
}

/// What the service needs to know.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// API key -> caller (merchant id). A caller in a rotation holds two keys, both
    /// authenticating as it.
    pub api_keys: BTreeMap<String, String>,
    /// Keys of `api_keys` being retired by a rotation, and when: accepted until then,
    /// refused (401) from then. Empty: every key is accepted for ever.
    pub key_retirements: BTreeMap<String, KeyRetirement>,
    /// Carrier base URL, no trailing slash (`http://carrier`).
    pub carrier_base_url: String,
    /// The service's API key at the carrier.
    pub carrier_api_key: String,
    /// How the service retries the carrier.
    pub carrier_policy: RetryPolicy,
    /// Per-caller limit; `None` admits everything.
    pub rate_limit: Option<RateLimit>,
    /// See [`LOCK_LEASE_MS_DEFAULT`].
    pub lock_lease_ms: u64,
    /// How long a completed idempotency record is remembered, ms; see
    /// [`IDEMPOTENCY_RETENTION_MS_DEFAULT`] and [`run_idempotency_sweeper`].
    pub idempotency_retention_ms: u64,
    /// Simulated store round trip after each transaction, drawn uniformly from this range in
    /// ms. `(0, 0)` for none. Widens the windows between separate transactions the way a real
    /// database does, which is where check-then-act bugs live.
    pub store_latency_ms: (u64, u64),
    /// Planted service bugs; empty for the correct service.
    pub bugs: BugSet,
    /// The key (`X-Admin-Key`) of the operator's admin endpoints (`/v1/admin/...`); `None`
    /// refuses everyone.
    pub admin_key: Option<String>,
    /// Inbound and outbound webhooks.
    pub webhooks: WebhookSettings,
}

/// What the service is given by whoever runs it.
#[derive(Clone)]
pub struct ServiceDeps {
    /// Time of day.
    pub clock: Arc<dyn Clock>,
    /// Durable storage.
    pub store: Arc<dyn Store>,
    /// How to reach the carrier.
    pub carrier: Arc<dyn Transport>,
    /// Where system events go.
    pub observer: Arc<dyn Observer>,
    /// The service's component seed; ids and jitter derive from it and the boot number.
    pub seed: Seed,
    /// How many times this service has started before (0 for the first boot).
    pub boot: u64,
}

/// The running service's shared state.
pub(crate) struct Service {
    config: ServiceConfig,
    clock: Arc<dyn Clock>,
    store: Arc<dyn Store>,
    observer: Arc<dyn Observer>,
    ids: Arc<IdGen>,
    rng: Mutex<ChaCha8Rng>,
    boot: u64,
    buckets: Buckets,
    carrier: CarrierClient,
    metrics: Metrics,
    /// The merchants' API keys (`config.api_keys`), compared in constant time, each with
    /// its retirement if a rotation retires it.
    api_keys: KeyRing<(String, Option<KeyRetirement>)>,
    /// Only used by the planted bug that keeps idempotency records in memory.
    memory_idempotency: Mutex<BTreeMap<IdemScope, IdempotencyRecord>>,
    /// `config.webhooks.carrier_secret`, keyed once per boot for the carrier's signatures.
    carrier_key: crate::webhook::SigningKey,
}

/// Builds the service's router, its ids seeded from `deps.seed` and the boot number (the
/// simulation's reproducible ids).
pub fn router(config: ServiceConfig, deps: ServiceDeps) -> Router {
    let ids = IdGen::new(deps.seed.derive_index("boot", deps.boot).derive("ids"));
    router_with_ids(config, deps, Arc::new(ids))
}

/// Builds the service's router with its ids (orders, shipments, events, requests) drawn
/// from `ids`: live mode passes [`IdGen::from_entropy`], so ids are unguessable and unique
/// across processes and databases, and with them the carrier keys derived from shipment
/// ids ([`carrier_key`]).
pub fn router_with_ids(config: ServiceConfig, deps: ServiceDeps, ids: Arc<IdGen>) -> Router {
    let boot_seed = deps.seed.derive_index("boot", deps.boot);
    let carrier = CarrierClient::new(
        deps.carrier.clone(),
        deps.clock.clone(),
        boot_seed.derive("carrier-client"),
        &config,
    );
    let service = Arc::new(Service {
        clock: deps.clock,
        store: deps.store,
        observer: deps.observer,
        ids: ids.clone(),
        rng: Mutex::new(boot_seed.derive("jitter").rng()),
        boot: deps.boot,
        buckets: Buckets::default(),
        carrier,
        metrics: Metrics::default(),
        memory_idempotency: Mutex::new(BTreeMap::new()),
        carrier_key: crate::webhook::SigningKey::new(&config.webhooks.carrier_secret),
        api_keys: KeyRing::new(config.api_keys.iter().map(|(key, caller)| {
            let retirement = config.key_retirements.get(key).copied();
            (key.clone(), (caller.clone(), retirement))
        })),
        config,
    });
    // Only merchant routes take a merchant's API key and count against its rate limit:
    // webhooks authenticate by signature, admin calls by admin key, and the public routes
    // not at all.
    let mut merchant = Router::new();
    let mut unmetered = Router::new();
    for route in routes() {
        match route.access {
            Access::Merchant => merchant = merchant.route(route.path, route.handler),
            Access::Public | Access::Signed | Access::Admin => {
                unmetered = unmetered.route(route.path, route.handler);
            }
        }
    }
    // Authentication and the rate limit are one layer (`authenticate` calls the limit), as
    // are the request id, error envelope and metrics (`served`): each `from_fn` layer costs
    // every request a boxed future and a clone of the router below it.
    let merchant = merchant.layer(axum::middleware::from_fn_with_state(
        service.clone(),
        context::authenticate,
    ));
    Router::new()
        .merge(merchant)
        .merge(unmetered)
        .fallback(context::no_route)
        .method_not_allowed_fallback(context::wrong_method)
        .layer(axum::middleware::from_fn_with_state(
            service.clone(),
            context::served,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(
            validate::REQUEST_BYTES_MAX,
        ))
        .with_state(service)
}

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A merchant with an `X-API-Key`; rate limited per caller.
    Merchant,
    /// Anyone (the contract, the metrics scrape).
    Public,
    /// Whoever holds the signing secret: the request carries its body's signature
    /// (the carrier's tracking webhooks).
    Signed,
    /// The operator, with the `X-Admin-Key`.
    Admin,
}

/// One endpoint of the service.
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path template, axum syntax (`/v1/orders/{id}`), which is also OpenAPI's.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    handler: MethodRouter<Arc<Service>>,
}

fn route(
    method: Method,
    path: &'static str,
    access: Access,
    handler: MethodRouter<Arc<Service>>,
) -> Route {
    Route {
        method,
        path,
        access,
        handler,
    }
}

/// Every endpoint of the service, in the order the OpenAPI document lists them. The router
/// is built from this list and nothing else, so a route cannot exist undocumented.
#[must_use]
pub fn routes() -> Vec<Route> {
    vec![
        route(
            Method::POST,
            "/v1/orders",
            Access::Merchant,
            post(orders::create),
        ),
        route(
            Method::GET,
            "/v1/orders/{id}",
            Access::Merchant,
            get(orders::fetch),
        ),
        route(
            Method::POST,
            "/v1/orders/{id}/shipments",
            Access::Merchant,
            post(shipments::create),
        ),
        route(
            Method::GET,
            "/v1/shipments/{id}",
            Access::Merchant,
            get(shipments::fetch),
        ),
        route(
            Method::GET,
            "/v1/events",
            Access::Merchant,
            get(events::list),
        ),
        route(
            Method::POST,
            "/v1/webhooks/carrier",
            Access::Signed,
            post(webhooks::carrier_event),
        ),
        route(
            Method::GET,
            "/v1/admin/state",
            Access::Admin,
            get(admin_state),
        ),
        route(
            Method::GET,
            "/v1/admin/outbox",
            Access::Admin,
            get(webhooks::outbox_counts),
        ),
        route(
            Method::POST,
            "/v1/admin/outbox/redeliver",
            Access::Admin,
            post(webhooks::redeliver),
        ),
        route(
            Method::GET,
            "/metrics",
            Access::Public,
            get(metrics::scrape),
        ),
        route(
            Method::GET,
            "/openapi.json",
            Access::Public,
            get(openapi::serve),
        ),
    ]
}

/// Refuses a request that does not carry `expected` in `X-Admin-Key`, and every request
/// when no admin key is configured. The comparison takes the same time wherever the keys
/// differ, and whatever their lengths (`secret::equal`).
///
/// # Errors
/// 403 `admin_disabled` when no admin key is configured; 401 `unauthenticated` when the
/// key is missing or wrong.
pub fn check_admin_key(expected: Option<&str>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = expected else {
        return Err(ApiError::admin_disabled());
    };
    let presented = headers
        .get(HEADER_ADMIN_KEY)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    if crate::secret::equal(presented, expected.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::unauthenticated(
            "send the operator's key in the X-Admin-Key header",
        ))
    }
}

/// Deletes completed idempotency records past `retention_ms` every
/// [`SWEEP_INTERVAL_MS`], in transactions of at most `batch_max` records (a deployment
/// passes [`SWEEP_BATCH_MAX`]), repeating until a transaction deletes fewer, until the host
/// dies. Expiry itself does not wait for the sweeper (a request finding an expired record
/// treats it as absent); the sweeper only gives the space back.
pub async fn run_idempotency_sweeper(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    retention_ms: u64,
    batch_max: usize,
) {
    loop {
        tokio::time::sleep(Duration::from_millis(SWEEP_INTERVAL_MS)).await;
        loop {
            // Expired means completed at least `retention_ms` ago, as the decider sees it.
            let created_before_ms = clock
                .now_ms()
                .saturating_sub(retention_ms)
                .saturating_add(1);
            let swept = store::transact(&*store, Durability::Sync, |tx| {
                Ok::<_, store::StoreError>(tx.sweep_idempotency(created_before_ms, batch_max))
            });
            match swept {
                Ok(0) => break,
                Ok(swept) => {
                    tracing::info!(swept, "idempotency records past their retention deleted");
                    if swept < batch_max as u64 {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "idempotency sweep failed; retrying at the next interval");
                    break;
                }
            }
            tokio::task::yield_now().await;
        }
    }
}

/// `GET /v1/admin/state`: every committed row of the store, for live mode's oracles.
#[utoipa::path(
    get,
    path = "/v1/admin/state",
    operation_id = "adminState",
    summary = "Every committed row of the store (operators and live-mode oracles)",
    responses(
        (status = 200, description = "The store", body = TablesDump),
        (status = 503, description = openapi::STORE_UNAVAILABLE),
    ),
)]
async fn admin_state(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_admin_key(service.config.admin_key.as_deref(), &headers)?;
    // A whole-table read for operators: it waits for the store's lock (never an fsync) on
    // this thread, which is fine for a call made once per live run.
    let tables = service.store.read_all()?;
    Ok(axum::Json(TablesDump::from(&tables)).into_response())
}

impl Service {
    /// The scope of a key: per caller, unless a planted bug shares keys across callers.
    fn scope(&self, caller: &str, key: &str) -> IdemScope {
        let caller = if self.config.bugs.has(Bug::KeysNotScopedPerCaller) {
            String::new()
        } else {
            caller.to_string()
        };
        IdemScope {
            caller,
            key: key.to_string(),
        }
    }

    /// The request fingerprint; a planted bug leaves the body out.
    fn fingerprint(&self, method: &str, path: &str, canonical_body: &[u8]) -> String {
        let body: &[u8] = if self.config.bugs.has(Bug::FingerprintIgnoresBody) {
            b""
        } else {
            canonical_body
        };
        idempotency::fingerprint(method, path, body)
    }

    fn decider(&self) -> Decider {
        Decider {
            boot: self.boot,
            now_ms: self.clock.now_ms(),
            lease_ms: self.config.lock_lease_ms,
            retention_ms: self.config.idempotency_retention_ms,
            lock_ignores_boot: self.config.bugs.has(Bug::LockSurvivesCrash),
        }
    }

    /// Runs a transaction with the durability and idempotency placement the configuration
    /// (and its planted bugs) asks for, where the store runs it: on SQLite's writer thread
    /// in live mode (never blocking an async worker on an fsync), at once on the calling
    /// thread in the simulation. `body` owns what it uses for that reason.
    async fn transact<R: Send + 'static>(
        self: &Arc<Self>,
        mut body: impl FnMut(&mut dyn Tx) -> Result<R, ApiError> + Send + 'static,
    ) -> Result<R, ApiError> {
        let durability = if self.config.bugs.has(Bug::LazyDurability) {
            Durability::Lazy
        } else {
            Durability::Sync
        };
        if !self.config.bugs.has(Bug::IdempotencyInMemory) {
            return store::transact_owned(&*self.store, durability, body).await;
        }
        // The planted bug keeps idempotency records in process memory: the body sees them
        // through a wrapper, and they are kept only once the store's part committed.
        let staged: Arc<Mutex<BTreeMap<IdemScope, IdempotencyRecord>>> = Arc::default();
        let result = store::transact_owned(&*self.store, durability, {
            let service = self.clone();
            let staged = staged.clone();
            move |tx| {
                let memory = service
                    .memory_idempotency
                    .lock()
                    .expect("idempotency memory lock poisoned");
                let mut written = BTreeMap::new();
                let mut split = MemoryIdempotencyTx {
                    inner: tx,
                    memory: &memory,
                    staged: &mut written,
                };
                let result = body(&mut split);
                *staged.lock().expect("staged records lock poisoned") = written;
                result
            }
        })
        .await;
        if result.is_ok() {
            let written =
                std::mem::take(&mut *staged.lock().expect("staged records lock poisoned"));
            self.memory_idempotency
                .lock()
                .expect("idempotency memory lock poisoned")
                .extend(written);
        }
        result
    }

    /// Waits one simulated store round trip (see [`ServiceConfig::store_latency_ms`]).
    async fn store_round_trip(&self) {
        crate::clock::store_round_trip(self.config.store_latency_ms, &self.rng).await;
    }
}

/// Planted bug `idempotency_in_memory`: idempotency records live in a process-local map,
/// everything else in the store.
struct MemoryIdempotencyTx<'a> {
    inner: &'a mut dyn Tx,
    memory: &'a BTreeMap<IdemScope, IdempotencyRecord>,
    staged: &'a mut BTreeMap<IdemScope, IdempotencyRecord>,
}

impl Tx for MemoryIdempotencyTx<'_> {
    fn idempotency(&self, scope: &IdemScope) -> Option<IdempotencyRecord> {
        self.staged
            .get(scope)
            .or_else(|| self.memory.get(scope))
            .cloned()
    }
    fn put_idempotency(&mut self, record: IdempotencyRecord) {
        self.staged.insert(record.scope.clone(), record);
    }
    fn sweep_idempotency(&mut self, created_before_ms: u64, limit: usize) -> u64 {
        // The planted bug's records die with the process anyway; sweep only the store's.
        self.inner.sweep_idempotency(created_before_ms, limit)
    }
    fn order(&self, order_id: &str) -> Option<store::OrderRecord> {
        self.inner.order(order_id)
    }
    fn put_order(&mut self, record: store::OrderRecord) {
        self.inner.put_order(record);
    }
    fn shipment(&self, shipment_id: &str) -> Option<store::ShipmentRecord> {
        self.inner.shipment(shipment_id)
    }
    fn put_shipment(&mut self, record: store::ShipmentRecord) {
        self.inner.put_shipment(record);
    }
    fn processed_event(&self, event_id: &str) -> Option<store::ProcessedEvent> {
        self.inner.processed_event(event_id)
    }
    fn put_processed_event(&mut self, event_id: &str, event: store::ProcessedEvent) {
        self.inner.put_processed_event(event_id, event);
    }
    fn next_outbox_seq(&self) -> u64 {
        self.inner.next_outbox_seq()
    }
    fn put_outbox(&mut self, record: store::OutboxRecord) {
        self.inner.put_outbox(record);
    }
    fn outbox(&self, seq: u64) -> Option<store::OutboxRecord> {
        self.inner.outbox(seq)
    }
    fn outbox_due(
        &self,
        now_ms: u64,
        limit: usize,
        skip: &std::collections::BTreeSet<u64>,
    ) -> Vec<store::OutboxRecord> {
        self.inner.outbox_due(now_ms, limit, skip)
    }
    fn outbox_next_due(&self, skip: &std::collections::BTreeSet<u64>) -> Option<u64> {
        self.inner.outbox_next_due(skip)
    }
    fn outbox_dead(&self) -> Vec<store::OutboxRecord> {
        self.inner.outbox_dead()
    }
    fn outbox_after(&self, caller: &str, after_seq: u64, limit: usize) -> Vec<store::OutboxRecord> {
        self.inner.outbox_after(caller, after_seq, limit)
    }
    fn outbox_counts(&self) -> (u64, u64, u64) {
        self.inner.outbox_counts()
    }
}

/// Records the ids of a replayed resource in the request's span, so a replay is found by
/// the same ids as the request that first created the resource.
fn record_ids_of(body: &str) {
    let span = tracing::Span::current();
    if span.is_disabled() {
        // Nobody collects the span (the simulation without logs): parsing the body would
        // record into nothing.
        return;
    }
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        return;
    };
    match (value["id"].as_str(), value["order_id"].as_str()) {
        (Some(shipment_id), Some(order_id)) => {
            span.record("shipment_id", shipment_id);
            span.record("order_id", order_id);
        }
        (Some(order_id), None) => {
            span.record("order_id", order_id);
        }
        _ => {}
    }
}

/// A JSON response from stored or fresh bytes; replays carry `Idempotent-Replayed: true`.
pub(crate) fn json_response(status: u16, body: String, replayed: bool) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Bytes::from(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if replayed {
        headers.insert(HEADER_IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    response
}
