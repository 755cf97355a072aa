//! The service's contract as an OpenAPI 3.1 document, served at `GET /openapi.json`.
//!
//! The document is written by hand (no macro framework in the system under test) and kept
//! honest by tests: every route of [`super::routes`] is documented and nothing else is; every
//! documented operation reaches a handler; every schema lists exactly the fields the wire
//! types serialise, and every enum exactly their values.

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::routes;
use super::validate::{
    ITEM_QUANTITY_MAX, KEY_PATTERN, ORDER_ITEMS_MAX, PARCEL_GRAMS_MAX, TEXT_LEN_MAX,
    not_blank_pattern,
};
use super::{EVENTS_LIMIT_DEFAULT, EVENTS_LIMIT_MAX};
use crate::api::{IDEMPOTENCY_KEY_LEN_MAX, REQUEST_ID_LEN_MAX};

/// Version of the API contract. Bumped on any change a client could notice; the URL prefix
/// (`/v1`) changes only with an incompatible one.
pub const API_VERSION: &str = "1.0.0";

/// `GET /openapi.json`.
pub(crate) async fn serve() -> Response {
    axum::Json(document()).into_response()
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "headers": { "X-Request-Id": { "$ref": "#/components/headers/X-Request-Id" } },
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorEnvelope" } } }
    })
}

fn retryable_error(description: &str) -> Value {
    let mut response = error_response(description);
    response["headers"]["Retry-After"] = json!({ "$ref": "#/components/headers/Retry-After" });
    response
}

fn json_response(description: &str, schema: &str, write: bool) -> Value {
    let mut headers = json!({
        "X-Request-Id": { "$ref": "#/components/headers/X-Request-Id" },
        "X-RateLimit-Limit": { "$ref": "#/components/headers/X-RateLimit-Limit" },
        "X-RateLimit-Remaining": { "$ref": "#/components/headers/X-RateLimit-Remaining" },
        "X-RateLimit-Reset": { "$ref": "#/components/headers/X-RateLimit-Reset" }
    });
    if write {
        headers["Idempotent-Replayed"] =
            json!({ "$ref": "#/components/headers/Idempotent-Replayed" });
    }
    json!({
        "description": description,
        "headers": headers,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

/// The errors every merchant endpoint may answer.
fn merchant_errors(responses: &mut Value) {
    responses["400"] =
        error_response("`validation_failed`: the path's id is not UTF-8 once percent-decoded");
    responses["401"] = error_response("`unauthenticated`: no or unknown `X-API-Key`");
    responses["404"] = error_response("`not_found`: no such resource for this caller");
    responses["429"] =
        retryable_error("`rate_limited`: over the caller's limit; wait `Retry-After` seconds");
    responses["503"] = retryable_error(
        "`store_unavailable` or `carrier_unavailable`: transient; retry with the same key",
    );
}

/// The errors every write may answer on top of the merchant ones.
fn write_errors(responses: &mut Value) {
    responses["400"] = error_response(
        "`validation_failed`, `malformed_json` or `idempotency_key_missing`, with field details",
    );
    responses["409"] = retryable_error(
        "`idempotency_request_in_progress`: a request with this key is still executing",
    );
    responses["413"] = error_response("`payload_too_large`: body over 64 KiB");
    responses["415"] = error_response("`unsupported_media_type`: send `application/json`");
    responses["422"] = error_response(
        "`idempotency_key_reused` (the key was used with another request) or `carrier_rejected` (stored and replayed like a success)",
    );
}

/// The responses of an operator endpoint: `ok` plus the refusals of [`super::check_admin_key`].
fn admin_responses(ok: Value) -> Value {
    json!({
        "200": ok,
        "401": error_response("`unauthenticated`: no or wrong `X-Admin-Key`"),
        "403": error_response("`admin_disabled`: the server runs without an admin key, so the operator's endpoints are off"),
        "503": retryable_error("`store_unavailable`")
    })
}

fn id_parameter(what: &str) -> Value {
    json!({
        "name": "id", "in": "path", "required": true,
        "description": format!("The {what}'s id."),
        "schema": { "type": "string" }
    })
}

/// The operation object of `method path`, or `None` for a route this module does not know
/// (which the tests turn into a failure).
fn operation(method: &str, path: &str) -> Option<Value> {
    let merchant_security = json!([{ "ApiKey": [] }]);
    let operation = match (method, path) {
        ("POST", "/v1/orders") => {
            let mut responses = json!({
                "200": json_response("Replay of the stored outcome (`Idempotent-Replayed: true`); status as first answered", "Order", true),
                "201": json_response("The order was created", "Order", true)
            });
            merchant_errors(&mut responses);
            write_errors(&mut responses);
            json!({
                "operationId": "createOrder",
                "summary": "Create an order (idempotent)",
                "security": merchant_security,
                "parameters": [{ "$ref": "#/components/parameters/Idempotency-Key" }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/CreateOrderRequest" } } } },
                "responses": responses
            })
        }
        ("GET", "/v1/orders/{id}") => {
            let mut responses = json!({ "200": json_response("The order", "Order", false) });
            merchant_errors(&mut responses);
            json!({
                "operationId": "getOrder",
                "summary": "Read an order",
                "security": merchant_security,
                "parameters": [id_parameter("order")],
                "responses": responses
            })
        }
        ("POST", "/v1/orders/{id}/shipments") => {
            let mut responses = json!({
                "201": json_response("The shipment was created and its label bought (a replay carries `Idempotent-Replayed: true`)", "Shipment", true)
            });
            merchant_errors(&mut responses);
            write_errors(&mut responses);
            json!({
                "operationId": "createShipment",
                "summary": "Create a shipment for an order and buy its label (idempotent)",
                "security": merchant_security,
                "parameters": [id_parameter("order"), { "$ref": "#/components/parameters/Idempotency-Key" }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/CreateShipmentRequest" } } } },
                "responses": responses
            })
        }
        ("GET", "/v1/shipments/{id}") => {
            let mut responses = json!({ "200": json_response("The shipment", "Shipment", false) });
            merchant_errors(&mut responses);
            json!({
                "operationId": "getShipment",
                "summary": "Read a shipment",
                "security": merchant_security,
                "parameters": [id_parameter("shipment")],
                "responses": responses
            })
        }
        ("GET", "/v1/events") => {
            let mut responses = json!({ "200": json_response("A page of the caller's events", "EventsPage", false) });
            merchant_errors(&mut responses);
            responses["400"] = error_response(
                "`validation_failed`: `after` is not a cursor this service gives, `limit` is out of range, or a parameter is unknown or repeated; the details name each",
            );
            if let Some(map) = responses.as_object_mut() {
                map.remove("404");
            }
            json!({
                "operationId": "listEvents",
                "summary": "The caller's webhook events after a cursor, in commit order (reconcile missed webhooks)",
                "description": "The events the caller's webhook endpoint is sent, read back from the same outbox: same `event_id`, same body, in the order the service committed them. Poll with the last `next_cursor`; apply each event id once, whether it came by webhook, by this feed, or both. Events are kept for good, so a cursor never expires.",
                "security": merchant_security,
                "parameters": [
                    { "name": "after", "in": "query", "required": false,
                      "description": "A `next_cursor` from an earlier page; absent or empty starts at the caller's first event",
                      "schema": { "type": "string", "pattern": "^evc_[0-9a-f]{16}$" } },
                    { "name": "limit", "in": "query", "required": false,
                      "description": format!("Events per page (default {EVENTS_LIMIT_DEFAULT})"),
                      "schema": { "type": "integer", "minimum": 1, "maximum": EVENTS_LIMIT_MAX } }
                ],
                "responses": responses
            })
        }
        ("GET", "/v1/admin/state") => json!({
            "operationId": "adminState",
            "summary": "Every committed row of the store (operators and live-mode oracles)",
            "security": [{ "AdminKey": [] }],
            "responses": admin_responses(json!({ "description": "The store", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/AdminState" } } } }))
        }),
        ("POST", "/v1/webhooks/carrier") => json!({
            "operationId": "carrierWebhook",
            "summary": "Take in a carrier tracking event (signed; each event id is applied once)",
            "description": "The carrier signs `{t}.{raw body}` with HMAC-SHA256 under the shared secret and sends `Shipsim-Signature: t=<unix seconds>,v1=<hex>`; signatures older or newer than the tolerance (300 s by default) are refused. The event's dedupe record and its effect (the shipment's new status, the merchant's outbox event) commit in one transaction; a duplicate is acknowledged with `duplicate: true` and changes nothing.",
            "security": [{ "WebhookSignature": [] }],
            "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/TrackingEvent" } } } },
            "responses": {
                "200": { "description": "Taken in (or recognised as a duplicate)", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/WebhookAck" } } } },
                "400": error_response("`invalid_signature` or `timestamp_out_of_tolerance`, or `malformed_json` for a body that is not a tracking event (no `event_id` or `kind`, or a known kind without its fields)"),
                "413": error_response("`payload_too_large`: body over 64 KiB"),
                "415": error_response("`unsupported_media_type`: send `application/json`"),
                "503": retryable_error("`store_unavailable`: transient; the carrier delivers again")
            }
        }),
        ("GET", "/v1/admin/outbox") => json!({
            "operationId": "adminOutbox",
            "summary": "Webhook outbox deliveries by state",
            "security": [{ "AdminKey": [] }],
            "responses": admin_responses(json!({ "description": "The counts", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/OutboxCounts" } } } }))
        }),
        ("POST", "/v1/admin/outbox/redeliver") => json!({
            "operationId": "adminOutboxRedeliver",
            "summary": "Put every dead-lettered webhook back in the delivery queue",
            "security": [{ "AdminKey": [] }],
            "responses": admin_responses(json!({ "description": "How many were requeued", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Requeued" } } } }))
        }),
        ("GET", "/metrics") => json!({
            "operationId": "metrics",
            "summary": "Prometheus metrics (text format 0.0.4)",
            "security": [],
            "responses": { "200": { "description": "The metrics", "content": { "text/plain": { "schema": { "type": "string" } } } } }
        }),
        ("GET", "/openapi.json") => json!({
            "operationId": "openapi",
            "summary": "This document",
            "security": [],
            "responses": { "200": { "description": "The OpenAPI document", "content": { "application/json": { "schema": { "type": "object" } } } } }
        }),
        _ => return None,
    };
    Some(operation)
}

/// A free-text field: what [`super::validate`] accepts, no more and no less.
fn text_field() -> Value {
    json!({
        "type": "string", "minLength": 1, "maxLength": TEXT_LEN_MAX,
        "pattern": not_blank_pattern(),
        "description": format!("1 to {TEXT_LEN_MAX} characters, not all whitespace")
    })
}

/// An idempotency key, in the body or the header.
fn key_schema() -> Value {
    json!({
        "type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_LEN_MAX,
        "pattern": KEY_PATTERN
    })
}

fn schemas() -> Value {
    let string = json!({ "type": "string" });
    let text = text_field();
    let mut body_key = key_schema();
    // `null` is the same as leaving the field out, as serde reads an optional field.
    body_key["type"] = json!(["string", "null"]);
    body_key["description"] = json!(format!(
        "Alternative to the Idempotency-Key header (1 to {IDEMPOTENCY_KEY_LEN_MAX} printable ASCII characters, no spaces); must equal it if both are sent; `null` is the same as leaving it out"
    ));
    let nullable_string = json!({ "type": ["string", "null"] });
    let id = |prefix: &str| json!({ "type": "string", "description": format!("`{prefix}_...`") });
    json!({
        "Address": {
            "type": "object", "additionalProperties": false,
            "required": ["name", "line1", "city", "postal_code", "country"],
            "properties": {
                "name": text,
                "line1": text,
                "city": text,
                "postal_code": text,
                "country": { "type": "string", "pattern": "^[A-Z]{2}$", "description": "ISO 3166-1 alpha-2" }
            }
        },
        "OrderItem": {
            "type": "object", "additionalProperties": false,
            "required": ["sku", "quantity"],
            "properties": {
                "sku": text,
                "quantity": { "type": "integer", "minimum": 1, "maximum": ITEM_QUANTITY_MAX }
            }
        },
        "CreateOrderRequest": {
            "type": "object", "additionalProperties": false,
            "required": ["reference", "items", "ship_to"],
            "properties": {
                "reference": text,
                "items": { "type": "array", "minItems": 1, "maxItems": ORDER_ITEMS_MAX, "items": { "$ref": "#/components/schemas/OrderItem" } },
                "ship_to": { "$ref": "#/components/schemas/Address" },
                "idempotency_key": body_key
            }
        },
        "OrderStatus": { "type": "string", "enum": ["created", "fulfilling", "shipped", "delivered"] },
        "Order": {
            "type": "object",
            "required": ["id", "reference", "status", "items", "ship_to", "shipment_ids", "created_at_ms"],
            "properties": {
                "id": id("ord"),
                "reference": string,
                "status": { "$ref": "#/components/schemas/OrderStatus" },
                "items": { "type": "array", "items": { "$ref": "#/components/schemas/OrderItem" } },
                "ship_to": { "$ref": "#/components/schemas/Address" },
                "shipment_ids": { "type": "array", "items": { "type": "string" } },
                "created_at_ms": { "type": "integer", "description": "Unix ms, service clock" }
            }
        },
        "ServiceLevel": { "type": "string", "enum": ["ground", "express"] },
        "CreateShipmentRequest": {
            "type": "object", "additionalProperties": false,
            "required": ["service_level", "weight_grams"],
            "properties": {
                "service_level": { "$ref": "#/components/schemas/ServiceLevel" },
                "weight_grams": { "type": "integer", "minimum": 1, "maximum": PARCEL_GRAMS_MAX },
                "idempotency_key": body_key
            }
        },
        "ShipmentStatus": { "type": "string", "enum": ["pending_label", "label_purchased", "label_rejected", "in_transit", "delivered", "exception"] },
        "Shipment": {
            "type": "object",
            "required": ["id", "order_id", "status", "service_level", "weight_grams", "label_id", "tracking_number", "created_at_ms"],
            "properties": {
                "id": id("shp"),
                "order_id": id("ord"),
                "status": { "$ref": "#/components/schemas/ShipmentStatus" },
                "service_level": { "$ref": "#/components/schemas/ServiceLevel" },
                "weight_grams": { "type": "integer" },
                "label_id": nullable_string,
                "tracking_number": nullable_string,
                "created_at_ms": { "type": "integer", "description": "Unix ms, service clock" }
            }
        },
        "FieldError": {
            "type": "object",
            "required": ["field", "issue"],
            "properties": {
                "field": { "type": "string", "description": "Path of the field (`items[0].quantity`, `Idempotency-Key`)" },
                "issue": string
            }
        },
        "ErrorBody": {
            "type": "object",
            "required": ["code", "message", "details", "request_id"],
            "properties": {
                "code": { "type": "string", "description": "Stable machine-readable code" },
                "message": string,
                "details": { "type": "array", "items": { "$ref": "#/components/schemas/FieldError" } },
                "request_id": { "type": "string", "description": "Same as the X-Request-Id header" }
            }
        },
        "ErrorEnvelope": {
            "type": "object",
            "required": ["error"],
            "properties": { "error": { "$ref": "#/components/schemas/ErrorBody" } }
        },
        "AdminState": {
            "type": "object",
            "required": ["orders", "shipments", "idempotency", "processed_events", "outbox"],
            "properties": {
                "orders": { "type": "array", "items": { "type": "object" } },
                "shipments": { "type": "array", "items": { "type": "object" } },
                "idempotency": { "type": "array", "items": { "type": "object" } },
                "processed_events": { "type": "object", "description": "Carrier events taken in, by event id", "additionalProperties": { "type": "object" } },
                "outbox": { "type": "array", "description": "Outbound webhook events with their delivery state, in sequence order", "items": { "type": "object" } }
            }
        },
        "TrackingKind": { "type": "string", "enum": ["label_created", "picked_up", "in_transit", "delivered", "exception"] },
        "TrackingEvent": {
            "type": "object", "additionalProperties": true,
            "description": "Read forward-compatibly: fields this service does not know are ignored (and counted in /metrics); an event of a kind it does not know is acknowledged and taken in without effect. Events of a known kind need every field below.",
            "required": ["event_id", "kind"],
            "properties": {
                "event_id": { "type": "string", "description": "Unique per event; applied once" },
                "kind": { "type": "string", "description": "One of TrackingKind; other kinds are acknowledged and ignored" },
                "shipment_ref": { "type": "string", "description": "The service's shipment id" },
                "label_id": string,
                "tracking_number": string,
                "occurred_at_ms": { "type": "integer", "minimum": 0, "description": "Unix ms, carrier clock" }
            }
        },
        "WebhookAck": {
            "type": "object",
            "required": ["received", "duplicate", "applied", "ignored"],
            "properties": {
                "received": { "type": "boolean" },
                "duplicate": { "type": "boolean", "description": "The event id was taken in before; nothing changed" },
                "applied": { "type": "boolean", "description": "The shipment moved forward" },
                "ignored": { "type": ["string", "null"], "enum": ["unknown_kind", "unknown_shipment", null], "description": "Why the event was taken in without effect: a kind this service does not know, or a shipment it does not have" }
            }
        },
        "WebhookEvent": {
            "type": "object", "additionalProperties": false,
            "required": ["event_id", "event_type", "created_at_ms", "order_id", "sequence"],
            "properties": {
                "event_id": { "type": "string", "description": "`evt_...`; unique per event, the same in the webhook and the feed" },
                "event_type": { "type": "string", "description": "`order.created`, `shipment.created`, `shipment.label_rejected`, `shipment.shipped`, `shipment.delivered`, `shipment.exception` or `shipment.tracking_update`" },
                "created_at_ms": { "type": "integer", "description": "Unix ms, service clock" },
                "order_id": id("ord"),
                "shipment_id": { "type": "string", "description": "For shipment events" },
                "status": { "$ref": "#/components/schemas/ShipmentStatus" },
                "sequence": { "type": "integer", "minimum": 1, "description": "Position among the events of its shipment (of its order for `order.created`), in commit order" }
            }
        },
        "EventsPage": {
            "type": "object",
            "required": ["events", "next_cursor", "has_more"],
            "properties": {
                "events": { "type": "array", "items": { "$ref": "#/components/schemas/WebhookEvent" } },
                "next_cursor": { "type": "string", "description": "Pass as `after` for the next page; the request's own `after` when the page is empty" },
                "has_more": { "type": "boolean", "description": "Another page waits: fetch it at once" }
            }
        },
        "OutboxCounts": {
            "type": "object",
            "required": ["pending", "delivered", "dead_letter"],
            "properties": {
                "pending": { "type": "integer" },
                "delivered": { "type": "integer" },
                "dead_letter": { "type": "integer" }
            }
        },
        "Requeued": {
            "type": "object",
            "required": ["requeued"],
            "properties": { "requeued": { "type": "integer" } }
        }
    })
}

fn header(description: &str, schema: Value) -> Value {
    json!({ "description": description, "schema": schema })
}

/// The whole document.
#[must_use]
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for route in routes() {
        let method = route.method.as_str();
        let Some(operation) = operation(method, route.path) else {
            continue;
        };
        let item = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        item[method.to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "shipsim reference order/shipment service",
            "version": API_VERSION,
            "description": "Orders and shipments with Stripe-style idempotency: writes take an `Idempotency-Key` (header or `idempotency_key` body field) scoped to the caller; a repeated request replays the stored outcome with `Idempotent-Replayed: true`; the same key with another request is 422; a key whose first request is still executing is 409 with `Retry-After`. Every error uses the ErrorEnvelope; every response carries `X-Request-Id`, echoing the caller's own when it sent a valid one (any request may carry `X-Request-Id`: 1 to 128 ASCII letters, digits or `-_.:/+=@`; others are replaced)."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "ApiKey": { "type": "apiKey", "in": "header", "name": "X-API-Key", "description": "The merchant's API key" },
                "AdminKey": { "type": "apiKey", "in": "header", "name": "X-Admin-Key", "description": "The operator's key" },
                "WebhookSignature": { "type": "apiKey", "in": "header", "name": "Shipsim-Signature", "description": "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"{t}.{raw body}\">` under the carrier's webhook secret" }
            },
            "parameters": {
                "Idempotency-Key": {
                    "name": "Idempotency-Key", "in": "header", "required": false,
                    "description": "1 to 255 printable ASCII characters without spaces, scoped to the caller; required unless the body carries `idempotency_key`",
                    "schema": key_schema()
                }
            },
            "headers": {
                "X-Request-Id": header(&format!("The request's id, also in error bodies: the caller's own `X-Request-Id` request header when it sent a valid one (1 to {REQUEST_ID_LEN_MAX} ASCII letters, digits or `-_.:/+=@`), else one the service gave it (`req_...`)"), json!({ "type": "string" })),
                "Idempotent-Replayed": header("`true` when the response replays a stored outcome", json!({ "type": "string", "enum": ["true"] })),
                "Retry-After": header("Seconds to wait before retrying", json!({ "type": "integer" })),
                "X-RateLimit-Limit": header("Requests the caller may burst", json!({ "type": "integer" })),
                "X-RateLimit-Remaining": header("Requests left now", json!({ "type": "integer" })),
                "X-RateLimit-Reset": header("Unix seconds at which a request will next be admitted", json!({ "type": "integer" }))
            },
            "schemas": schemas()
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::api::{
        Address, CreateOrderRequest, CreateShipmentRequest, ErrorEnvelope, Order, OrderItem,
        OrderStatus, ServiceLevel, Shipment, ShipmentStatus, TrackingEvent, TrackingKind,
    };
    use crate::bugs::BugSet;
    use crate::client::RetryPolicy;
    use crate::clock::FixedClock;
    use crate::observe::NoopObserver;
    use crate::seed::Seed;
    use crate::service::{OutboxCounts, ServiceConfig, ServiceDeps, WebhookSettings, router};
    use crate::store::MemoryStore;
    use crate::transport::{BoxFuture, HttpRequest, HttpResponse, Transport, TransportError};

    struct NoCarrier;

    impl Transport for NoCarrier {
        fn send(&self, _: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
            Box::pin(async { Err(TransportError::Connect("no carrier in this test".into())) })
        }
    }

    fn test_router() -> axum::Router {
        let config = ServiceConfig {
            api_keys: [("sk_test".to_string(), "merchant-0".to_string())].into(),
            key_retirements: std::collections::BTreeMap::new(),
            carrier_base_url: "http://carrier".into(),
            carrier_api_key: "ck".into(),
            carrier_policy: RetryPolicy::new(10, 10),
            rate_limit: None,
            lock_lease_ms: 30_000,
            idempotency_retention_ms: crate::service::IDEMPOTENCY_RETENTION_MS_DEFAULT,
            store_latency_ms: (0, 0),
            bugs: BugSet::none(),
            admin_key: Some("admin".into()),
            webhooks: WebhookSettings {
                carrier_secret: "whsec_test".into(),
                tolerance_s: crate::webhook::TOLERANCE_S_DEFAULT,
                targets: BTreeMap::new(),
                sender: crate::webhook::SenderConfig::DEFAULT,
            },
        };
        router(
            config,
            ServiceDeps {
                clock: Arc::new(FixedClock(1_767_225_600_000)),
                store: Arc::new(MemoryStore::new()),
                carrier: Arc::new(NoCarrier),
                observer: Arc::new(NoopObserver),
                seed: Seed(1),
                boot: 0,
            },
        )
    }

    fn documented_operations(document: &Value) -> BTreeSet<(String, String)> {
        let mut operations = BTreeSet::new();
        for (path, item) in document["paths"].as_object().expect("paths is an object") {
            for method in item.as_object().expect("path item is an object").keys() {
                operations.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
        operations
    }

    #[test]
    fn every_route_of_the_router_is_documented_and_nothing_else() {
        // Proves the document and the router agree: the router is built from `routes()`
        // only, and the set of (method, path) in the document equals that list.
        let routed: BTreeSet<(String, String)> = routes()
            .iter()
            .map(|r| (r.method.as_str().to_string(), r.path.to_string()))
            .collect();
        assert_eq!(documented_operations(&document()), routed);
    }

    #[tokio::test]
    async fn every_documented_operation_reaches_a_handler() {
        // Proves no documented operation is a dead entry: sending each one to the router
        // never gets the fallbacks' `route_not_found` or `method_not_allowed`.
        let router = test_router();
        for (method, path) in documented_operations(&document()) {
            let uri = path.replace("{id}", "ord_missing");
            let request = http::Request::builder()
                .method(method.as_str())
                .uri(&uri)
                .header("x-api-key", "sk_test")
                .header("x-admin-key", "admin")
                .header("content-type", "application/json")
                .header("idempotency-key", "k")
                .body(Body::from("{}"))
                .unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let text = String::from_utf8_lossy(&body);
            assert!(
                !text.contains("route_not_found") && !text.contains("method_not_allowed"),
                "{method} {path} is documented but not routed: {status} {text}"
            );
        }
    }

    /// The keys of `value` serialised as a JSON object.
    fn fields(value: &impl serde::Serialize) -> BTreeSet<String> {
        serde_json::to_value(value)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }

    fn documented_fields(schema: &str) -> BTreeSet<String> {
        document()["components"]["schemas"][schema]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("schema {schema} has no properties"))
            .keys()
            .cloned()
            .collect()
    }

    #[test]
    fn schemas_list_exactly_the_serialised_fields() {
        // Proves each schema names exactly the fields its wire type serialises (optional
        // fields set, so they appear), so a renamed or added field fails here first.
        let address = Address {
            name: "n".into(),
            line1: "l".into(),
            city: "c".into(),
            postal_code: "p".into(),
            country: "DE".into(),
        };
        let item = OrderItem {
            sku: "s".into(),
            quantity: 1,
        };
        let order = Order {
            id: "ord_1".into(),
            reference: "r".into(),
            status: OrderStatus::Created,
            items: vec![item.clone()],
            ship_to: address.clone(),
            shipment_ids: vec![],
            created_at_ms: 0,
        };
        let shipment = Shipment {
            id: "shp_1".into(),
            order_id: "ord_1".into(),
            status: ShipmentStatus::PendingLabel,
            service_level: ServiceLevel::Ground,
            weight_grams: 1,
            label_id: None,
            tracking_number: None,
            created_at_ms: 0,
        };
        let create_order = CreateOrderRequest {
            reference: "r".into(),
            items: vec![item.clone()],
            ship_to: address.clone(),
            idempotency_key: Some("k".into()),
        };
        let create_shipment = CreateShipmentRequest {
            service_level: ServiceLevel::Express,
            weight_grams: 1,
            idempotency_key: Some("k".into()),
        };
        let envelope: ErrorEnvelope = serde_json::from_value(json!({
            "error": { "code": "c", "message": "m", "details": [{ "field": "f", "issue": "i" }], "request_id": "r" }
        }))
        .unwrap();
        assert_eq!(fields(&address), documented_fields("Address"));
        assert_eq!(fields(&item), documented_fields("OrderItem"));
        assert_eq!(fields(&order), documented_fields("Order"));
        assert_eq!(fields(&shipment), documented_fields("Shipment"));
        assert_eq!(
            fields(&create_order),
            documented_fields("CreateOrderRequest")
        );
        assert_eq!(
            fields(&create_shipment),
            documented_fields("CreateShipmentRequest")
        );
        assert_eq!(fields(&envelope), documented_fields("ErrorEnvelope"));
        assert_eq!(fields(&envelope.error), documented_fields("ErrorBody"));
        assert_eq!(
            fields(&envelope.error.details[0]),
            documented_fields("FieldError")
        );
        assert_eq!(
            fields(&crate::store::TablesDump::default()),
            documented_fields("AdminState")
        );
        let tracking = TrackingEvent {
            event_id: "trk_1".into(),
            kind: TrackingKind::PickedUp,
            shipment_ref: "shp_1".into(),
            label_id: "lbl_1".into(),
            tracking_number: "1Z1".into(),
            occurred_at_ms: 0,
        };
        assert_eq!(fields(&tracking), documented_fields("TrackingEvent"));
        let ack = super::super::webhooks::Ack {
            received: true,
            duplicate: false,
            applied: true,
            ignored: None,
        };
        assert_eq!(fields(&ack), documented_fields("WebhookAck"));
        let counts = OutboxCounts {
            pending: 0,
            delivered: 0,
            dead_letter: 0,
        };
        assert_eq!(fields(&counts), documented_fields("OutboxCounts"));
        let event = crate::api::WebhookEvent {
            event_id: "evt_1".into(),
            event_type: "shipment.shipped".into(),
            created_at_ms: 0,
            order_id: "ord_1".into(),
            shipment_id: Some("shp_1".into()),
            status: Some(crate::api::ShipmentStatus::InTransit),
            sequence: 2,
        };
        assert_eq!(fields(&event), documented_fields("WebhookEvent"));
        let page = crate::api::EventsPage {
            events: vec![event],
            next_cursor: super::super::cursor_of(1),
            has_more: false,
        };
        assert_eq!(fields(&page), documented_fields("EventsPage"));
    }

    #[test]
    fn enums_list_exactly_the_serialised_values() {
        // Proves each documented enum holds exactly the names serde writes.
        let names = |values: Vec<Value>| -> BTreeSet<String> {
            values
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        let documented = |schema: &str| {
            names(
                document()["components"]["schemas"][schema]["enum"]
                    .as_array()
                    .unwrap()
                    .clone(),
            )
        };
        let serialised = |values: Vec<Value>| names(values);
        assert_eq!(
            documented("OrderStatus"),
            serialised(
                [
                    OrderStatus::Created,
                    OrderStatus::Fulfilling,
                    OrderStatus::Shipped,
                    OrderStatus::Delivered
                ]
                .iter()
                .map(|s| serde_json::to_value(s).unwrap())
                .collect()
            )
        );
        assert_eq!(
            documented("ShipmentStatus"),
            serialised(
                [
                    ShipmentStatus::PendingLabel,
                    ShipmentStatus::LabelPurchased,
                    ShipmentStatus::LabelRejected,
                    ShipmentStatus::InTransit,
                    ShipmentStatus::Delivered,
                    ShipmentStatus::Exception,
                ]
                .iter()
                .map(|s| serde_json::to_value(s).unwrap())
                .collect()
            )
        );
        assert_eq!(
            documented("TrackingKind"),
            serialised(
                [
                    TrackingKind::LabelCreated,
                    TrackingKind::PickedUp,
                    TrackingKind::InTransit,
                    TrackingKind::Delivered,
                    TrackingKind::Exception,
                ]
                .iter()
                .map(|s| serde_json::to_value(s).unwrap())
                .collect()
            )
        );
        assert_eq!(
            documented("ServiceLevel"),
            serialised(
                [ServiceLevel::Ground, ServiceLevel::Express]
                    .iter()
                    .map(|s| serde_json::to_value(s).unwrap())
                    .collect()
            )
        );
    }

    /// The documented schema of `property` of component `schema`.
    fn property(schema: &str, property: &str) -> Value {
        document()["components"]["schemas"][schema]["properties"][property].clone()
    }

    /// The text fields of a new order, as (component, property, path in the body).
    const TEXT_FIELDS: [(&str, &str, &str); 6] = [
        ("CreateOrderRequest", "reference", "/reference"),
        ("OrderItem", "sku", "/items/0/sku"),
        ("Address", "name", "/ship_to/name"),
        ("Address", "line1", "/ship_to/line1"),
        ("Address", "city", "/ship_to/city"),
        ("Address", "postal_code", "/ship_to/postal_code"),
    ];

    #[test]
    fn constraints_are_the_ones_validation_enforces() {
        // Proves the contract is exactly as strict as the service: every free-text field is
        // 1 to TEXT_LEN_MAX characters and not blank (the pattern built from the same
        // whitespace list validation uses), and every idempotency key (body or header) is
        // 1 to 255 printable ASCII characters. Before, the document left out minLength and
        // the patterns, so a schema-valid request got a 400.
        for (schema, name, _) in TEXT_FIELDS {
            let field = property(schema, name);
            assert_eq!(field["minLength"], 1, "{schema}.{name}");
            assert_eq!(field["maxLength"], TEXT_LEN_MAX, "{schema}.{name}");
            assert_eq!(field["pattern"], not_blank_pattern(), "{schema}.{name}");
        }
        let header = document()["components"]["parameters"]["Idempotency-Key"]["schema"].clone();
        for key in [
            property("CreateOrderRequest", "idempotency_key"),
            property("CreateShipmentRequest", "idempotency_key"),
            header,
        ] {
            assert_eq!(key["minLength"], 1);
            assert_eq!(key["maxLength"], IDEMPOTENCY_KEY_LEN_MAX);
            assert_eq!(key["pattern"], KEY_PATTERN);
        }
    }

    fn order_body() -> Value {
        json!({
            "reference": "PO-1",
            "items": [{ "sku": "SKU-1", "quantity": 1 }],
            "ship_to": { "name": "A", "line1": "B", "city": "C", "postal_code": "1", "country": "DE" }
        })
    }

    async fn create_order(router: &axum::Router, body: &Value, key: &str) -> (u16, String) {
        let request = http::Request::post("/v1/orders")
            .header("x-api-key", "sk_test")
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).to_string())
    }

    #[tokio::test]
    async fn requests_at_the_edges_of_the_schema_are_accepted() {
        // Proves a request the document calls valid is never refused: each text field at
        // the shortest and the longest length its schema allows (counted in characters, as
        // JSON Schema does, with a two-byte character), and keys at both length bounds, all
        // get 201. Lengths are read from the document, so a missing bound shows up as an
        // empty or a 10,000-character field that the service refuses.
        let router = test_router();
        let mut n = 0;
        for (schema, name, path) in TEXT_FIELDS {
            let field = property(schema, name);
            let shortest = field["minLength"].as_u64().unwrap_or(0) as usize;
            let longest = field["maxLength"].as_u64().unwrap_or(10_000) as usize;
            for value in [
                "x".repeat(shortest),
                "é".repeat(longest),
                format!(" {} ", "y".repeat(shortest)),
            ] {
                let mut body = order_body();
                *body.pointer_mut(path).unwrap() = json!(value);
                n += 1;
                let (status, text) = create_order(&router, &body, &format!("edge-{n}")).await;
                assert_eq!(status, 201, "{schema}.{name} = {value:?}: {text}");
            }
        }
        let key = property("CreateOrderRequest", "idempotency_key");
        let shortest = key["minLength"].as_u64().unwrap_or(0) as usize;
        let longest = key["maxLength"].as_u64().unwrap_or(10_000) as usize;
        for key in ["!".repeat(shortest), "~".repeat(longest)] {
            let mut body = order_body();
            body["idempotency_key"] = json!(key);
            let (status, text) = create_order(&router, &body, &key).await;
            assert_eq!(status, 201, "key of {} characters: {text}", key.len());
        }
        // Just outside the bounds, the service refuses, as the schema does.
        let mut blank = order_body();
        blank["reference"] = json!(" \u{3000}\t");
        assert_eq!(create_order(&router, &blank, "blank").await.0, 400);
        let mut long = order_body();
        long["ship_to"]["city"] = json!("é".repeat(TEXT_LEN_MAX + 1));
        assert_eq!(create_order(&router, &long, "long").await.0, 400);
    }

    #[test]
    fn contract_names_every_header_and_the_envelope() {
        // Proves the headers of the conventions (seeds 000 and 004) are all in the contract,
        // and every error response points at the one envelope.
        let text = document().to_string();
        for name in [
            "Idempotency-Key",
            "X-API-Key",
            "X-Admin-Key",
            "X-Request-Id",
            "Idempotent-Replayed",
            "Retry-After",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "Shipsim-Signature",
        ] {
            assert!(text.contains(name), "header {name} is not in the document");
        }
        let document = document();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for (status, response) in operation["responses"].as_object().unwrap() {
                    if status.starts_with('4') || status.starts_with('5') {
                        assert_eq!(
                            response["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ErrorEnvelope",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
    }
}
