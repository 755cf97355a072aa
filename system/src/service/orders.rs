//! `POST /v1/orders` and `GET /v1/orders/{id}`.
//!
//! Creating an order is one transaction: the idempotency record (completed, with the
//! response) and the order commit together, so there is never a half-created order.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::context::Caller;
use super::error::ApiError;
use super::idempotency::{self, Decision};
use super::webhooks::emit;
use super::{Service, json_response, openapi, validate};
use crate::api::{CreateOrderRequest, Order, OrderStatus, WebhookEvent};
use crate::observe::SystemEvent;
use crate::store::{IdemState, IdempotencyRecord, OrderRecord, StoredResponse};

enum Created {
    New(StoredResponse, String),
    Replay(StoredResponse),
}

/// `POST /v1/orders`.
#[utoipa::path(
    post,
    path = "/v1/orders",
    operation_id = "createOrder",
    summary = "Create an order (idempotent)",
    request_body = CreateOrderRequest,
    responses(
        (status = 200, description = "Replay of the stored outcome (`Idempotent-Replayed: true`); status as first answered", body = Order),
        (status = 201, description = "The order was created", body = Order),
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
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|_| ApiError::too_large(validate::REQUEST_BYTES_MAX))?;
    let mut request: CreateOrderRequest = validate::parse_json(&headers, &body)?;
    validate::order(&request)?;
    let key = idempotency::extract_key(&headers, request.idempotency_key.as_deref())?;
    tracing::Span::current().record("idempotency_key", key.as_str());
    request.idempotency_key = None;
    let canonical = serde_json::to_vec(&request).expect("API types serialise");
    let scope = service.scope(&caller, &key);
    let fingerprint = service.fingerprint("POST", "/v1/orders", &canonical);
    let order_id = service.ids.next("ord");
    let now_ms = service.clock.now_ms();
    let decider = service.decider();

    let outcome = service
        .transact({
            let service = service.clone();
            let (scope, fingerprint) = (scope.clone(), fingerprint.clone());
            let (caller, key, order_id) = (caller.clone(), key.clone(), order_id.clone());
            let request = request.clone();
            move |tx| match decider.decide(tx.idempotency(&scope).as_ref(), &fingerprint) {
                Decision::Replay(response) => Ok(Created::Replay(response)),
                Decision::KeyReused => Err(ApiError::key_reused()),
                Decision::InFlight => Err(ApiError::in_flight()),
                Decision::Resume(point) => Err(ApiError::internal(format!(
                    "order creation has no recovery point, found {point:?}"
                ))),
                Decision::Fresh => {
                    let order = Order {
                        id: order_id.clone(),
                        reference: request.reference.clone(),
                        status: OrderStatus::Created,
                        items: request.items.clone(),
                        ship_to: request.ship_to.clone(),
                        shipment_ids: Vec::new(),
                        created_at_ms: now_ms,
                    };
                    let response = StoredResponse {
                        status: 201,
                        body: serde_json::to_string(&order).expect("API types serialise"),
                    };
                    let announced_id = order.id.clone();
                    let announcement = move |event_id| WebhookEvent {
                        event_id,
                        event_type: "order.created".into(),
                        created_at_ms: now_ms,
                        order_id: announced_id,
                        shipment_id: None,
                        status: None,
                        // An order has one event, its creation.
                        sequence: 1,
                    };
                    tx.put_order(OrderRecord {
                        order,
                        caller: caller.clone(),
                        idempotency_key: key.clone(),
                    });
                    emit(&service, tx, &caller, announcement, None);
                    tx.put_idempotency(IdempotencyRecord {
                        scope: scope.clone(),
                        fingerprint: fingerprint.clone(),
                        created_at_ms: now_ms,
                        state: IdemState::Completed {
                            response: response.clone(),
                        },
                    });
                    Ok(Created::New(response, order_id.clone()))
                }
            }
        })
        .await;
    service.store_round_trip().await;
    if let Err(error) = &outcome {
        record_refusal(&service, &caller, &key, error);
    }
    match outcome? {
        Created::New(response, order_id) => {
            tracing::Span::current().record("order_id", order_id.as_str());
            service.observer.record(SystemEvent::OrderCreated {
                caller,
                key,
                order_id,
            });
            Ok(json_response(response.status, response.body, false))
        }
        Created::Replay(response) => {
            super::record_ids_of(&response.body);
            service.observer.record(SystemEvent::Replayed {
                caller,
                key,
                status: response.status,
            });
            Ok(json_response(response.status, response.body, true))
        }
    }
}

/// Reports an idempotency refusal (409 or 422) to the observer.
pub(crate) fn record_refusal(service: &Service, caller: &str, key: &str, error: &ApiError) {
    let event = match error.code.as_ref() {
        "idempotency_request_in_progress" => SystemEvent::InFlightConflict {
            caller: caller.to_string(),
            key: key.to_string(),
        },
        "idempotency_key_reused" => SystemEvent::KeyReuseRejected {
            caller: caller.to_string(),
            key: key.to_string(),
        },
        _ => return,
    };
    service.observer.record(event);
}

/// `GET /v1/orders/{id}`: only the owner sees its orders.
#[utoipa::path(
    get,
    path = "/v1/orders/{id}",
    operation_id = "getOrder",
    summary = "Read an order",
    params(("id" = String, Path, description = "The order's id.")),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 400, description = openapi::ID_NOT_UTF8),
        (status = 404, description = openapi::NOT_FOUND),
        (status = 503, description = openapi::UNAVAILABLE),
    ),
)]
pub(crate) async fn fetch(
    State(service): State<Arc<Service>>,
    Extension(Caller(caller)): Extension<Caller>,
    order_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(order_id) = order_id.map_err(|e| validate::path_id(&e))?;
    tracing::Span::current().record("order_id", order_id.as_str());
    let record = service
        .transact({
            let order_id = order_id.clone();
            move |tx| Ok(tx.order(&order_id))
        })
        .await?;
    service.store_round_trip().await;
    match record {
        Some(record) if record.caller == caller => Ok(json_response(
            200,
            serde_json::to_string(&record.order).expect("API types serialise"),
            false,
        )),
        _ => Err(ApiError::not_found("order", &order_id)),
    }
}
