//! The carrier API the service buys labels from: a separate host with its own idempotency.
//!
//! `POST /v1/labels` sells a label. With an `Idempotency-Key`, a repeated request replays the
//! label sold the first time and a different request under the same key is refused (422);
//! without one, every request sells a new label, as many real carriers do. That is why the
//! service must send a key, and what the `carrier_without_key` planted bug gets wrong.
//! `GET /v1/labels/{id}` reads a label back. Every sale is recorded in the [`CarrierLedger`],
//! which `GET /v1/admin/labels` shows whole to a holder of the admin key (live mode's
//! oracles audit it through that endpoint). With [`TrackingConfig`], each sale schedules the
//! parcel's tracking events, which [`run_tracking_sender`] delivers to the service;
//! `GET /v1/admin/tracking` counts those deliveries and `POST /v1/admin/tracking/redeliver`
//! puts dead letters back in the queue.

pub(crate) mod journal;
mod ledger;
mod tracking;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub use ledger::{CarrierLedger, LabelSale, Sale};
pub use tracking::{
    TrackingConfig, TrackingCounts, TrackingItem, event as tracking_event, run_tracking_sender,
};

use crate::api::{FieldError, HEADER_API_KEY, HEADER_IDEMPOTENCY_KEY, Label, LabelRequest};
use crate::clock::Clock;
use crate::observe::{Checkpoint, Observer, SystemEvent, checkpoint};
use crate::seed::{IdGen, Seed};
use crate::service::{ApiError, validate};

/// How the carrier behaves.
#[derive(Clone, Debug)]
pub struct CarrierConfig {
    /// The key the service must present.
    pub api_key: String,
    /// Destination countries the carrier does not serve: labels for them are refused with a
    /// 422, which the service must store and replay like a success.
    pub unserviceable_countries: BTreeSet<String>,
    /// Tracking webhooks to the service; `None` sends none.
    pub tracking: Option<TrackingConfig>,
    /// The key (`X-Admin-Key`) of the admin endpoints (the whole ledger, the tracking
    /// deliveries); `None` refuses everyone.
    pub admin_key: Option<String>,
}

/// What the carrier is given by whoever runs it.
#[derive(Clone)]
pub struct CarrierDeps {
    /// Time of day.
    pub clock: Arc<dyn Clock>,
    /// The sales record, owned outside the host so it survives crashes.
    pub ledger: Arc<CarrierLedger>,
    /// Where system events go.
    pub observer: Arc<dyn Observer>,
    /// The carrier's component seed.
    pub seed: Seed,
    /// How many times the carrier has started before.
    pub boot: u64,
}

struct Carrier {
    config: CarrierConfig,
    deps: CarrierDeps,
    ids: Arc<IdGen>,
    rng: Mutex<ChaCha8Rng>,
}

/// Builds the carrier's router, its ids seeded from `deps.seed` and the boot number.
pub fn router(config: CarrierConfig, deps: CarrierDeps) -> Router {
    let ids = IdGen::new(deps.seed.derive_index("boot", deps.boot).derive("ids"));
    router_with_ids(config, deps, Arc::new(ids))
}

/// Builds the carrier's router with its ids (labels, tracking events, requests) drawn from
/// `ids` (live mode: [`IdGen::from_entropy`]).
pub fn router_with_ids(config: CarrierConfig, deps: CarrierDeps, ids: Arc<IdGen>) -> Router {
    let boot_seed = deps.seed.derive_index("boot", deps.boot);
    let carrier = Arc::new(Carrier {
        config,
        ids: ids.clone(),
        rng: Mutex::new(boot_seed.derive("tracking").rng()),
        deps,
    });
    Router::new()
        .route("/v1/labels", post(sell))
        .route("/v1/labels/{id}", get(fetch))
        .route("/v1/admin/labels", get(admin_labels))
        .route("/v1/admin/tracking", get(tracking_counts))
        .route("/v1/admin/tracking/redeliver", post(redeliver_tracking))
        .layer(axum::middleware::from_fn_with_state(
            ids,
            crate::service::request_context_layer,
        ))
        .with_state(carrier)
}

fn authenticate(carrier: &Carrier, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = headers
        .get(HEADER_API_KEY)
        .map(axum::http::HeaderValue::as_bytes)
        .unwrap_or_default();
    // Constant time: `==` on the secret would stop at the first wrong byte.
    if crate::secret::equal(presented, carrier.config.api_key.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::unauthenticated(
            "unknown or missing carrier API key",
        ))
    }
}

async fn sell(
    State(carrier): State<Arc<Carrier>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    authenticate(&carrier, &headers)?;
    let body = body.map_err(|_| ApiError::too_large(validate::REQUEST_BYTES_MAX))?;
    let request: LabelRequest = validate::parse_json(&headers, &body)?;
    if request.weight_grams == 0 || request.weight_grams > validate::PARCEL_GRAMS_MAX {
        return Err(ApiError::validation(vec![FieldError {
            field: "weight_grams".into(),
            issue: format!("must be between 1 and {}", validate::PARCEL_GRAMS_MAX),
        }]));
    }
    if carrier
        .config
        .unserviceable_countries
        .contains(&request.ship_to.country)
    {
        return Err(ApiError::validation(vec![FieldError {
            field: "ship_to.country".into(),
            issue: format!("the carrier does not serve {}", request.ship_to.country),
        }]));
    }
    let key = match headers.get(HEADER_IDEMPOTENCY_KEY) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| {
            ApiError::validation(vec![FieldError {
                field: "Idempotency-Key".into(),
                issue: "must be printable ASCII".into(),
            }])
        })?),
    };
    let canonical = serde_json::to_vec(&request).expect("API types serialise");
    let fingerprint = crate::service::fingerprint_of("POST", "/v1/labels", &canonical);
    let now_ms = carrier.deps.clock.now_ms();
    let sale = if carrier.deps.ledger.is_durable() {
        // A file-backed ledger fsyncs each sale: off the async workers.
        let carrier = carrier.clone();
        let key = key.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            record_sale(&carrier, key.as_deref(), &fingerprint, now_ms, &request)
        })
        .await
        .map_err(|e| ApiError::internal(format!("label sale task failed: {e}")))??
    } else {
        record_sale(&carrier, key, &fingerprint, now_ms, &request)?
    };
    match sale {
        Sale::New(label) => {
            carrier.deps.observer.record(SystemEvent::LabelSold {
                label_id: label.label_id.clone(),
                shipment_ref: label.shipment_ref.clone(),
                key: key.map(str::to_string),
            });
            checkpoint(&*carrier.deps.observer, Checkpoint::LabelSold).await;
            Ok((StatusCode::CREATED, axum::Json(label)).into_response())
        }
        Sale::Replay(label) => {
            carrier.deps.observer.record(SystemEvent::LabelReplayed {
                label_id: label.label_id.clone(),
                key: key.unwrap_or_default().to_string(),
            });
            let mut response = (StatusCode::OK, axum::Json(label)).into_response();
            response.headers_mut().insert(
                crate::api::HEADER_IDEMPOTENT_REPLAYED,
                axum::http::HeaderValue::from_static("true"),
            );
            Ok(response)
        }
        Sale::KeyReused => Err(ApiError::key_reused()),
    }
}

/// Sells a label for `request` under `key`, or replays or refuses per the key, in the
/// ledger (committed before it returns, for a file-backed ledger). The parcel's tracking
/// story is scheduled with the sale, in one commit, so a carrier killed right after a sale
/// still reports its parcel.
fn record_sale(
    carrier: &Carrier,
    key: Option<&str>,
    fingerprint: &str,
    now_ms: u64,
    request: &LabelRequest,
) -> Result<Sale, crate::store::StoreError> {
    let make = || {
        let tracking: u64 = carrier
            .rng
            .lock()
            .expect("carrier rng lock poisoned")
            .random_range(100_000_000_000..1_000_000_000_000);
        Label {
            label_id: carrier.ids.next("lbl"),
            tracking_number: format!("1Z{tracking}"),
            shipment_ref: request.shipment_ref.clone(),
            cost_cents: price_cents(request),
        }
    };
    let story = |label: &Label| match &carrier.config.tracking {
        Some(tracking) => {
            let mut rng = carrier.rng.lock().expect("carrier rng lock poisoned");
            tracking::story(
                label,
                now_ms,
                tracking.exception_percent,
                &carrier.ids,
                &mut *rng,
            )
        }
        None => Vec::new(),
    };
    carrier
        .deps
        .ledger
        .sell(key, fingerprint, now_ms, make, story)
}

fn check_admin(carrier: &Carrier, headers: &HeaderMap) -> Result<(), ApiError> {
    crate::service::check_admin_key(carrier.config.admin_key.as_deref(), headers)
}

/// `GET /v1/admin/tracking`: tracking deliveries by state.
async fn tracking_counts(
    State(carrier): State<Arc<Carrier>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_admin(&carrier, &headers)?;
    let (pending, delivered, dead_letter) = carrier.deps.ledger.tracking_counts();
    Ok(axum::Json(crate::service::OutboxCounts {
        pending,
        delivered,
        dead_letter,
    })
    .into_response())
}

/// `POST /v1/admin/tracking/redeliver`: dead letters go back in the queue.
async fn redeliver_tracking(
    State(carrier): State<Arc<Carrier>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_admin(&carrier, &headers)?;
    let requeued = carrier.deps.ledger.redeliver_tracking()?;
    Ok(axum::Json(serde_json::json!({ "requeued": requeued })).into_response())
}

/// Ground costs 5.90 plus 1 cent per 10 g; express doubles it.
fn price_cents(request: &LabelRequest) -> u32 {
    let base = 590 + request.weight_grams / 10;
    match request.service_level {
        crate::api::ServiceLevel::Ground => base,
        crate::api::ServiceLevel::Express => base * 2,
    }
}

async fn fetch(
    State(carrier): State<Arc<Carrier>>,
    headers: HeaderMap,
    Path(label_id): Path<String>,
) -> Result<Response, ApiError> {
    authenticate(&carrier, &headers)?;
    carrier
        .deps
        .ledger
        .label(&label_id)
        .map(|label| axum::Json(label).into_response())
        .ok_or_else(|| ApiError::not_found("label", &label_id))
}

/// `GET /v1/admin/labels`: every sale, in order, for the holder of the admin key.
async fn admin_labels(
    State(carrier): State<Arc<Carrier>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_admin(&carrier, &headers)?;
    Ok(axum::Json(carrier.deps.ledger.sales()).into_response())
}
