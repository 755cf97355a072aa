//! `POST /v1/orders/{id}/shipments` and `GET /v1/shipments/{id}`.
//!
//! Creating a shipment spans a network call, so it runs in atomic phases (Brandur Leach,
//! "Implementing Stripe-like Idempotency Keys in Postgres"):
//!
//! 1. One transaction claims the key (idempotency record in progress, locked by this boot)
//!    and creates the shipment row in `pending_label`, with the recovery point naming it.
//! 2. The label is bought from the carrier under a key derived from the shipment id
//!    (`label-{shipment_id}`), so however often this phase is retried or resumed, the carrier
//!    sells one label.
//! 3. One transaction stores the label on the shipment and completes the idempotency record
//!    with the response.
//!
//! A crash between phases leaves a record in progress whose lock belongs to a dead boot; the
//! next request with the key resumes at phase 2. Phases 2 and 3 run in their own task, so a
//! client that disconnects mid-request cannot cancel them half-way.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use tracing::Instrument as _;

use super::carrier_client::LabelOutcome;
use super::context::{Caller, RequestId};
use super::error::ApiError;
use super::idempotency::{self, Decision};
use super::orders::record_refusal;
use super::{Service, json_response, openapi, validate};
use crate::api::{
    CreateShipmentRequest, ErrorBody, ErrorEnvelope, OrderStatus, Shipment, ShipmentStatus,
};
use crate::bugs::Bug;
use crate::observe::{Checkpoint, SystemEvent, checkpoint};
use crate::store::{
    IdemScope, IdemState, IdempotencyRecord, Lock, RecoveryPoint, ShipmentRecord, StoredResponse,
};

/// What phase 1 decided.
enum Claimed {
    /// Answer at once with a stored response.
    Replay(StoredResponse),
    /// Buy the label for this shipment (new or resumed).
    Work { shipment_id: String, resumed: bool },
}

/// Everything phases 2 and 3 need, owned so it can move into its own task.
struct Job {
    scope: IdemScope,
    fingerprint: String,
    shipment_id: String,
    request_id: String,
}

/// `POST /v1/orders/{id}/shipments`.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/shipments",
    operation_id = "createShipment",
    summary = "Create a shipment for an order and buy its label (idempotent)",
    params(("id" = String, Path, description = "The order's id.")),
    request_body = CreateShipmentRequest,
    responses(
        (status = 201, description = "The shipment was created and its label bought (a replay carries `Idempotent-Replayed: true`)", body = Shipment),
        (status = 400, description = openapi::WRITE_INVALID),
        (status = 404, description = openapi::NOT_FOUND),
        (status = 409, description = openapi::IN_FLIGHT),
        (status = 413, description = openapi::TOO_LARGE),
        (status = 415, description = openapi::NOT_JSON),
        (status = 422, description = openapi::KEY_REUSED),
        (status = 503, description = openapi::UNAVAILABLE),
    ),
)]
pub(crate) async fn create(
    State(service): State<Arc<Service>>,
    Extension(Caller(caller)): Extension<Caller>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    order_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Path(order_id) = order_id.map_err(|e| validate::path_id(&e))?;
    let span = tracing::Span::current();
    span.record("order_id", order_id.as_str());
    let body = body.map_err(|_| ApiError::too_large(validate::REQUEST_BYTES_MAX))?;
    let mut request: CreateShipmentRequest = validate::parse_json(&headers, &body)?;
    validate::shipment(&request)?;
    let key = idempotency::extract_key(&headers, request.idempotency_key.as_deref())?;
    span.record("idempotency_key", key.as_str());
    request.idempotency_key = None;
    let canonical = serde_json::to_vec(&request).expect("API types serialise");
    let path = format!("/v1/orders/{order_id}/shipments");
    let scope = service.scope(&caller, &key);
    let fingerprint = service.fingerprint("POST", &path, &canonical);

    let claimed = claim(
        &service,
        Claim {
            scope: scope.clone(),
            fingerprint: fingerprint.clone(),
            caller: caller.clone(),
            key: key.clone(),
            order_id: order_id.clone(),
            request: request.clone(),
            shipment_id: service.ids.next("shp"),
            lock: Lock {
                boot: service.boot,
                acquired_at_ms: service.clock.now_ms(),
            },
        },
    )
    .await;
    if let Err(error) = &claimed {
        record_refusal(&service, &caller, &key, error);
    }
    let (shipment_id, resumed) = match claimed? {
        Claimed::Replay(response) => {
            super::record_ids_of(&response.body);
            service.observer.record(SystemEvent::Replayed {
                caller,
                key,
                status: response.status,
            });
            return Ok(json_response(response.status, response.body, true));
        }
        Claimed::Work {
            shipment_id,
            resumed,
        } => (shipment_id, resumed),
    };
    span.record("shipment_id", shipment_id.as_str());
    checkpoint(&*service.observer, Checkpoint::ShipmentClaimed).await;
    if resumed {
        service.observer.record(SystemEvent::Resumed {
            caller: caller.clone(),
            key: key.clone(),
        });
    } else {
        service.observer.record(SystemEvent::ShipmentCreated {
            caller: caller.clone(),
            key: key.clone(),
            shipment_id: shipment_id.clone(),
        });
    }
    let job = Job {
        scope,
        fingerprint,
        shipment_id,
        request_id,
    };
    // Phases 2 and 3 run detached: if the client goes away, hyper drops this handler, but
    // the label purchase and its commit still finish.
    let worker = tokio::spawn(finish(service, job).instrument(span));
    match worker.await {
        Ok(result) => result,
        Err(join_error) => Err(ApiError::internal(format!(
            "shipment worker failed: {join_error}"
        ))),
    }
}

/// What phase 1 works with, owned so its transactions can run off this thread.
#[derive(Clone)]
struct Claim {
    scope: IdemScope,
    fingerprint: String,
    caller: String,
    key: String,
    order_id: String,
    request: CreateShipmentRequest,
    /// The id the shipment gets if this request creates it.
    shipment_id: String,
    /// This request's claim on the key.
    lock: Lock,
}

/// Phase 1: decide from the key's record, and claim it (creating the shipment) if needed.
async fn claim(service: &Arc<Service>, input: Claim) -> Result<Claimed, ApiError> {
    let decider = idempotency::Decider {
        now_ms: input.lock.acquired_at_ms,
        ..service.decider()
    };
    let check_separately = service.config.bugs.has(Bug::CheckThenInsertRace);

    // The correct service decides and claims in one transaction. The planted race decides
    // in one and claims in the next, with a store round trip between them.
    let decided = service
        .transact({
            let service = service.clone();
            let input = input.clone();
            move |tx| {
                let decision =
                    decider.decide(tx.idempotency(&input.scope).as_ref(), &input.fingerprint);
                match decision {
                    Decision::Fresh if check_separately => Ok(None),
                    Decision::Fresh => create_shipment(&service, tx, &input).map(Some),
                    other => apply_decision(tx, other, &input.scope, input.lock).map(Some),
                }
            }
        })
        .await;
    service.store_round_trip().await;
    if let Some(claimed) = decided? {
        return Ok(claimed);
    }
    let created = service
        .transact({
            let service = service.clone();
            move |tx| create_shipment(&service, tx, &input)
        })
        .await;
    service.store_round_trip().await;
    created
}

/// Every decision but `Fresh`.
fn apply_decision(
    tx: &mut dyn crate::store::Tx,
    decision: Decision,
    scope: &IdemScope,
    lock: Lock,
) -> Result<Claimed, ApiError> {
    match decision {
        Decision::Fresh => Err(ApiError::internal("fresh decisions create a shipment")),
        Decision::Replay(response) => Ok(Claimed::Replay(response)),
        Decision::KeyReused => Err(ApiError::key_reused()),
        Decision::InFlight => Err(ApiError::in_flight()),
        Decision::Resume(RecoveryPoint::ShipmentCreated { shipment_id }) => {
            let mut record = tx
                .idempotency(scope)
                .ok_or_else(|| ApiError::internal("resumed record vanished"))?;
            record.state = IdemState::InProgress {
                lock: Some(lock),
                recovery: RecoveryPoint::ShipmentCreated {
                    shipment_id: shipment_id.clone(),
                },
            };
            tx.put_idempotency(record);
            Ok(Claimed::Work {
                shipment_id,
                resumed: true,
            })
        }
    }
}

/// Creates the shipment row and claims the key, in the caller's transaction.
fn create_shipment(
    service: &Service,
    tx: &mut dyn crate::store::Tx,
    input: &Claim,
) -> Result<Claimed, ApiError> {
    let Claim {
        scope,
        fingerprint,
        caller,
        key,
        order_id,
        request,
        shipment_id,
        lock,
    } = input;
    let lock = *lock;
    let mut order = tx
        .order(order_id)
        .filter(|order| order.caller == *caller)
        .ok_or_else(|| ApiError::not_found("order", order_id))?;
    let shipment = Shipment {
        id: shipment_id.to_string(),
        order_id: order_id.to_string(),
        status: ShipmentStatus::PendingLabel,
        service_level: request.service_level,
        weight_grams: request.weight_grams,
        label_id: None,
        tracking_number: None,
        created_at_ms: lock.acquired_at_ms,
    };
    tx.put_shipment(ShipmentRecord {
        shipment,
        caller: caller.to_string(),
        idempotency_key: key.to_string(),
        webhook_sequence: 0,
    });
    order.order.shipment_ids.push(shipment_id.to_string());
    tx.put_order(order);
    // The planted "key stored after carrier" bug writes no record until phase 3.
    if !service.config.bugs.has(Bug::KeyStoredAfterCarrier) {
        tx.put_idempotency(IdempotencyRecord {
            scope: scope.clone(),
            fingerprint: fingerprint.to_string(),
            created_at_ms: lock.acquired_at_ms,
            state: IdemState::InProgress {
                lock: Some(lock),
                recovery: RecoveryPoint::ShipmentCreated {
                    shipment_id: shipment_id.to_string(),
                },
            },
        });
    }
    Ok(Claimed::Work {
        shipment_id: shipment_id.to_string(),
        resumed: false,
    })
}

/// Phases 2 and 3: buy the label, then store it and the response together.
async fn finish(service: Arc<Service>, job: Job) -> Result<Response, ApiError> {
    let shipment = service
        .transact({
            let shipment_id = job.shipment_id.clone();
            move |tx| Ok(tx.shipment(&shipment_id))
        })
        .await?
        .ok_or_else(|| ApiError::internal("claimed shipment is missing"))?;
    let order = service
        .transact({
            let order_id = shipment.shipment.order_id.clone();
            move |tx| Ok(tx.order(&order_id))
        })
        .await?
        .ok_or_else(|| ApiError::internal("shipment's order is missing"))?;
    service.store_round_trip().await;

    let outcome = service
        .carrier
        .buy(&shipment.shipment, &order.order.ship_to)
        .await;
    let (status, new_status, label) = match outcome {
        LabelOutcome::Bought(label) => (201, ShipmentStatus::LabelPurchased, Some(label)),
        LabelOutcome::Rejected(reason) => {
            let error = ApiError::carrier_rejected(&reason);
            let body = stored_error(&error, &job.request_id);
            return complete(&service, &job, error.status.as_u16(), body, |shipment| {
                shipment.status = ShipmentStatus::LabelRejected;
            })
            .await;
        }
        LabelOutcome::Unavailable(reason) => {
            release(&service, &job).await?;
            service.store_round_trip().await;
            return Err(ApiError::carrier_unavailable(&reason));
        }
    };
    let label = label.expect("bought outcome carries a label");
    checkpoint(&*service.observer, Checkpoint::LabelBought).await;
    service.observer.record(SystemEvent::LabelAttached {
        shipment_id: job.shipment_id.clone(),
        label_id: label.label_id.clone(),
    });
    complete(&service, &job, status, String::new(), move |shipment| {
        // Never backwards: after a crash between the sale and this commit, the carrier's
        // tracking events may have reached the shipment first (they attach the label and
        // move it on, see webhooks::apply); the resumed purchase, answered with the same
        // label, must not take it back to label_purchased.
        if shipment.status.rank() < new_status.rank() {
            shipment.status = new_status;
        }
        shipment.label_id = Some(label.label_id.clone());
        shipment.tracking_number = Some(label.tracking_number.clone());
    })
    .await
}

/// Phase 3: applies `update` to the shipment and completes the record with the response
/// (`body`, or the updated shipment when `body` is empty).
async fn complete(
    service: &Arc<Service>,
    job: &Job,
    status: u16,
    body: String,
    update: impl Fn(&mut Shipment) + Send + Sync + 'static,
) -> Result<Response, ApiError> {
    let now_ms = service.clock.now_ms();
    let split = service.config.bugs.has(Bug::ResponseBeforeCommit);
    let update = Arc::new(update);
    let stored = service
        .transact({
            let service = service.clone();
            let update = update.clone();
            let (shipment_id, scope) = (job.shipment_id.clone(), job.scope.clone());
            let fingerprint = job.fingerprint.clone();
            move |tx| {
                let mut shipment = tx
                    .shipment(&shipment_id)
                    .ok_or_else(|| ApiError::internal("shipment vanished before completion"))?;
                update(&mut shipment.shipment);
                let response = StoredResponse {
                    status,
                    body: if body.is_empty() {
                        serde_json::to_string(&shipment.shipment).expect("API types serialise")
                    } else {
                        body.clone()
                    },
                };
                tx.put_idempotency(IdempotencyRecord {
                    scope: scope.clone(),
                    fingerprint: fingerprint.clone(),
                    created_at_ms: now_ms,
                    state: IdemState::Completed {
                        response: response.clone(),
                    },
                });
                // The planted bug commits the response first and the side effect in a later
                // transaction; the correct service commits both here.
                if !split {
                    apply_to_order(tx, &shipment.shipment);
                    announce(&service, tx, &mut shipment, now_ms);
                    tx.put_shipment(shipment);
                }
                Ok(response)
            }
        })
        .await?;
    service.store_round_trip().await;
    checkpoint(&*service.observer, Checkpoint::ResponseStored).await;
    if split {
        service
            .transact({
                let service = service.clone();
                let shipment_id = job.shipment_id.clone();
                move |tx| {
                    let mut shipment = tx
                        .shipment(&shipment_id)
                        .ok_or_else(|| ApiError::internal("shipment vanished before completion"))?;
                    update(&mut shipment.shipment);
                    apply_to_order(tx, &shipment.shipment);
                    announce(&service, tx, &mut shipment, now_ms);
                    tx.put_shipment(shipment);
                    Ok(())
                }
            })
            .await?;
        service.store_round_trip().await;
    }
    Ok(json_response(stored.status, stored.body, false))
}

/// Tells the merchant, in the committing transaction, how its shipment creation ended,
/// numbering the event after the shipment's earlier ones (the caller stores `record`).
fn announce(
    service: &Service,
    tx: &mut dyn crate::store::Tx,
    record: &mut ShipmentRecord,
    now_ms: u64,
) {
    let shipment = &record.shipment;
    let sequence = record.webhook_sequence + 1;
    let event = |event_id| crate::api::WebhookEvent {
        event_id,
        event_type: crate::api::WebhookEvent::shipment_type(shipment.status).to_string(),
        created_at_ms: now_ms,
        order_id: shipment.order_id.clone(),
        shipment_id: Some(shipment.id.clone()),
        status: Some(shipment.status),
        sequence,
    };
    if super::webhooks::emit(service, tx, &record.caller, event, None).is_some() {
        record.webhook_sequence = sequence;
    }
}

/// A bought label moves its order to `fulfilling` (never backwards).
fn apply_to_order(tx: &mut dyn crate::store::Tx, shipment: &Shipment) {
    if shipment.status != ShipmentStatus::LabelPurchased {
        return;
    }
    if let Some(mut order) = tx.order(&shipment.order_id)
        && order.order.status < OrderStatus::Fulfilling
    {
        order.order.status = OrderStatus::Fulfilling;
        tx.put_order(order);
    }
}

/// The carrier could not be reached: give the key back so a retry can resume.
async fn release(service: &Arc<Service>, job: &Job) -> Result<(), ApiError> {
    let scope = job.scope.clone();
    service
        .transact(move |tx| {
            if let Some(mut record) = tx.idempotency(&scope)
                && let IdemState::InProgress { recovery, .. } = record.state
            {
                record.state = IdemState::InProgress {
                    lock: None,
                    recovery,
                };
                tx.put_idempotency(record);
            }
            Ok(())
        })
        .await
}

/// An error envelope serialised for storage, so replays of a stored failure are identical.
fn stored_error(error: &ApiError, request_id: &str) -> String {
    serde_json::to_string(&ErrorEnvelope {
        error: ErrorBody {
            code: error.code.to_string(),
            message: error.message.clone(),
            details: error.details.clone(),
            request_id: request_id.to_string(),
        },
    })
    .expect("envelope serialises")
}

/// `GET /v1/shipments/{id}`: only the owner sees its shipments.
#[utoipa::path(
    get,
    path = "/v1/shipments/{id}",
    operation_id = "getShipment",
    summary = "Read a shipment",
    params(("id" = String, Path, description = "The shipment's id.")),
    responses(
        (status = 200, description = "The shipment", body = Shipment),
        (status = 400, description = openapi::ID_NOT_UTF8),
        (status = 404, description = openapi::NOT_FOUND),
        (status = 503, description = openapi::UNAVAILABLE),
    ),
)]
pub(crate) async fn fetch(
    State(service): State<Arc<Service>>,
    Extension(Caller(caller)): Extension<Caller>,
    shipment_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(shipment_id) = shipment_id.map_err(|e| validate::path_id(&e))?;
    tracing::Span::current().record("shipment_id", shipment_id.as_str());
    let record = service
        .transact({
            let shipment_id = shipment_id.clone();
            move |tx| Ok(tx.shipment(&shipment_id))
        })
        .await?;
    service.store_round_trip().await;
    match record {
        Some(record) if record.caller == caller => Ok(json_response(
            200,
            serde_json::to_string(&record.shipment).expect("API types serialise"),
            false,
        )),
        _ => Err(ApiError::not_found("shipment", &shipment_id)),
    }
}
