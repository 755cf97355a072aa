//! The service's contract as an OpenAPI 3.1 document, served at `GET /openapi.json`.
//!
//! Derived, not written (utoipa): the schemas come from the wire types (`#[derive(ToSchema)]`
//! in [`crate::api`], doc comments as descriptions, limits from `schema`, which builds them
//! from the constants validation enforces), each operation from the `#[utoipa::path]` beside
//! its handler, and what every route of a kind shares from the route table ([`routes`]) by
//! `Conventions`: who may call it (security scheme, 401/403/429), `X-Request-Id` on every
//! response, the error envelope on every error, `Retry-After` on the retryable ones, the
//! rate-limit headers on merchant answers, and the `Idempotency-Key` and `Idempotent-Replayed`
//! of merchant writes. Those rules are applied to the derived document in code because
//! utoipa's path attributes write headers and parameters inline (never as a reference to a
//! shared one) and cannot say "on every route of this kind": written per operation, they
//! would be the duplication this replaces.
//!
//! The tests check what derivation cannot: that the document lists exactly the routes the
//! router serves, and that the limits it states are the ones the service enforces.

use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use super::{Access, routes};
use crate::api::{IDEMPOTENCY_KEY_LEN_MAX, REQUEST_ID_LEN_MAX};

/// Version of the API contract. Bumped on any change a client could notice; the URL prefix
/// (`/v1`) changes only with an incompatible one.
pub const API_VERSION: &str = "1.0.0";

const DESCRIPTION: &str = "Orders and shipments with Stripe-style idempotency: writes take an `Idempotency-Key` (header or `idempotency_key` body field) scoped to the caller; a repeated request replays the stored outcome with `Idempotent-Replayed: true`; the same key with another request is 422; a key whose first request is still executing is 409 with `Retry-After`. Every error uses the ErrorEnvelope; every response carries `X-Request-Id`, echoing the caller's own when it sent a valid one (any request may carry `X-Request-Id`: 1 to 128 ASCII letters, digits or `-_.:/+=@`; others are replaced).";

// What the handlers' errors mean, shared by the operations that answer them.
pub(crate) const ID_NOT_UTF8: &str =
    "`validation_failed`: the path's id is not UTF-8 once percent-decoded";
pub(crate) const NOT_FOUND: &str = "`not_found`: no such resource for this caller";
pub(crate) const UNAVAILABLE: &str =
    "`store_unavailable` or `carrier_unavailable`: transient; retry with the same key";
pub(crate) const STORE_UNAVAILABLE: &str = "`store_unavailable`";
pub(crate) const WRITE_INVALID: &str =
    "`validation_failed`, `malformed_json` or `idempotency_key_missing`, with field details";
pub(crate) const IN_FLIGHT: &str =
    "`idempotency_request_in_progress`: a request with this key is still executing";
pub(crate) const TOO_LARGE: &str = "`payload_too_large`: body over 64 KiB";
pub(crate) const NOT_JSON: &str = "`unsupported_media_type`: send `application/json`";
pub(crate) const KEY_REUSED: &str = "`idempotency_key_reused` (the key was used with another request) or `carrier_rejected` (stored and replayed like a success)";

/// The document's root: its operations are the handlers' `#[utoipa::path]`s, listed as
/// [`routes`] lists the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "shipsim reference order/shipment service",
        version = API_VERSION,
        description = DESCRIPTION,
    ),
    paths(
        super::orders::create,
        super::orders::fetch,
        super::shipments::create,
        super::shipments::fetch,
        super::events::list,
        super::webhooks::carrier_event,
        super::admin_state,
        super::webhooks::outbox_counts,
        super::webhooks::redeliver,
        super::metrics::scrape,
        serve,
    ),
    // Every error answers with the envelope: no handler names it, `Conventions` refers to it.
    // `TrackingKind` is named by the tracking event's `kind`, read as free text.
    components(schemas(crate::api::ErrorEnvelope, crate::api::TrackingKind)),
    modifiers(&Conventions),
)]
struct Contract;

/// The whole document.
#[must_use]
pub fn document() -> Value {
    serde_json::to_value(Contract::openapi()).expect("an OpenAPI document serialises")
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    summary = "This document",
    responses((status = 200, description = "The OpenAPI document", body = Object)),
)]
pub(crate) async fn serve() -> Response {
    axum::Json(document()).into_response()
}

/// The rules every route of a kind follows, applied to the derived operations by walking
/// [`routes`] (see the module's documentation for why this is code).
struct Conventions;

const REQUEST_ID: &str = "X-Request-Id";
const RETRY_AFTER: &str = "Retry-After";
const RATE_LIMIT: [&str; 3] = [
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
];
const REPLAYED: &str = "Idempotent-Replayed";
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
const ENVELOPE: &str = "ErrorEnvelope";

fn header_ref(name: &str) -> RefOr<Header> {
    RefOr::Ref(Ref::new(format!("#/components/headers/{name}")))
}

fn header(description: &str, schema: impl Into<RefOr<Schema>>) -> RefOr<Header> {
    let mut header = Header::new(schema);
    header.description = Some(description.to_string());
    RefOr::T(header)
}

fn integer() -> Schema {
    ObjectBuilder::new().schema_type(Type::Integer).into()
}

fn api_key(header: &str, description: &str) -> RefOr<SecurityScheme> {
    RefOr::T(SecurityScheme::ApiKey(ApiKey::Header(
        ApiKeyValue::with_description(header, description),
    )))
}

fn operation_mut<'a>(item: &'a mut PathItem, method: &Method) -> Option<&'a mut Operation> {
    match *method {
        Method::GET => item.get.as_mut(),
        Method::POST => item.post.as_mut(),
        Method::PUT => item.put.as_mut(),
        Method::PATCH => item.patch.as_mut(),
        Method::DELETE => item.delete.as_mut(),
        Method::HEAD => item.head.as_mut(),
        Method::OPTIONS => item.options.as_mut(),
        Method::TRACE => item.trace.as_mut(),
        _ => None,
    }
}

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.security_schemes.extend([
            ("ApiKey".to_string(), api_key("X-API-Key", "The merchant's API key")),
            ("AdminKey".to_string(), api_key("X-Admin-Key", "The operator's key")),
            (
                "WebhookSignature".to_string(),
                api_key(
                    "Shipsim-Signature",
                    "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"{t}.{raw body}\">` under the carrier's webhook secret",
                ),
            ),
        ]);
        let replayed = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["true"]));
        components.headers.extend([
            (REQUEST_ID.to_string(), header(&format!("The request's id, also in error bodies: the caller's own `X-Request-Id` request header when it sent a valid one (1 to {REQUEST_ID_LEN_MAX} ASCII letters, digits or `-_.:/+=@`), else one the service gave it (`req_...`)"), ObjectBuilder::new().schema_type(Type::String))),
            (REPLAYED.to_string(), header("`true` when the response replays a stored outcome", replayed)),
            (RETRY_AFTER.to_string(), header("Seconds to wait before retrying", integer())),
            (RATE_LIMIT[0].to_string(), header("Requests the caller may burst", integer())),
            (RATE_LIMIT[1].to_string(), header("Requests left now", integer())),
            (RATE_LIMIT[2].to_string(), header("Unix seconds at which a request will next be admitted", integer())),
        ]);
        components.parameters.insert(
            IDEMPOTENCY_KEY.to_string(),
            RefOr::T(
                ParameterBuilder::new()
                    .name(IDEMPOTENCY_KEY)
                    .parameter_in(ParameterIn::Header)
                    .required(Required::False)
                    .description(Some(format!("1 to {IDEMPOTENCY_KEY_LEN_MAX} printable ASCII characters without spaces, scoped to the caller; required unless the body carries `idempotency_key`")))
                    .schema(Some(schema::key()))
                    .build(),
            ),
        );
        for route in routes() {
            let operation = openapi
                .paths
                .paths
                .get_mut(route.path)
                .and_then(|item| operation_mut(item, &route.method));
            // A route without an operation fails the coverage test; nothing to add to here.
            let Some(operation) = operation else {
                continue;
            };
            apply(operation, route.access, route.method == Method::POST);
        }
    }
}

/// The conventions of a route of `access` on one operation; `post` for a write.
fn apply(operation: &mut Operation, access: Access, post: bool) {
    let write = access == Access::Merchant && post;
    let (scheme, refusals): (Option<&str>, &[(&str, &str)]) = match access {
        // `context::authenticate`, the merchant routes' layer.
        Access::Merchant => (
            Some("ApiKey"),
            &[
                ("401", "`unauthenticated`: no or unknown `X-API-Key`"),
                (
                    "429",
                    "`rate_limited`: over the caller's limit; wait `Retry-After` seconds",
                ),
            ],
        ),
        // `check_admin_key`, which every operator handler calls first.
        Access::Admin => (
            Some("AdminKey"),
            &[
                ("401", "`unauthenticated`: no or wrong `X-Admin-Key`"),
                (
                    "403",
                    "`admin_disabled`: the server runs without an admin key, so the operator's endpoints are off",
                ),
            ],
        ),
        Access::Signed => (Some("WebhookSignature"), &[]),
        Access::Public => (None, &[]),
    };
    // utoipa tags each operation with its handler's module path; the contract has no tags.
    operation.tags = None;
    operation.security = Some(
        scheme
            .map(|name| SecurityRequirement::new(name, Vec::<String>::new()))
            .into_iter()
            .collect(),
    );
    let responses = &mut operation.responses.responses;
    for (status, description) in refusals {
        responses.entry((*status).to_string()).or_insert_with(|| {
            RefOr::T(
                utoipa::openapi::ResponseBuilder::new()
                    .description(*description)
                    .build(),
            )
        });
    }
    if write {
        operation
            .parameters
            .get_or_insert_with(Vec::new)
            .push(RefOr::Ref(Ref::new(format!(
                "#/components/parameters/{IDEMPOTENCY_KEY}"
            ))));
    }
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        let headers = &mut response.headers;
        headers.insert(REQUEST_ID.to_string(), header_ref(REQUEST_ID));
        if status.starts_with('4') || status.starts_with('5') {
            response.content = [(
                "application/json".to_string(),
                RefOr::T(
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(ENVELOPE)))
                        .build(),
                ),
            )]
            .into_iter()
            .collect();
            if ["409", "429", "503"].contains(&status.as_str()) {
                headers.insert(RETRY_AFTER.to_string(), header_ref(RETRY_AFTER));
            }
        } else if access == Access::Merchant {
            for name in RATE_LIMIT {
                headers.insert(name.to_string(), header_ref(name));
            }
            if write {
                headers.insert(REPLAYED.to_string(), header_ref(REPLAYED));
            }
        }
    }
}

/// The operator's read-back of the store. Its type ([`crate::store::TablesDump`]) keeps
/// the store's records, which are not part of the contract: the document names its tables
/// only (a test checks them against the type's fields).
impl PartialSchema for crate::store::TablesDump {
    fn schema() -> RefOr<Schema> {
        let objects = || ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::Object));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("orders", objects())
            .property("shipments", objects())
            .property("idempotency", objects())
            .property(
                "processed_events",
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .description(Some("Carrier events taken in, by event id"))
                    .additional_properties(Some(ObjectBuilder::new().schema_type(Type::Object))),
            )
            .property(
                "outbox",
                objects().description(Some(
                    "Outbound webhook events with their delivery state, in sequence order",
                )),
            )
            .required("orders")
            .required("shipments")
            .required("idempotency")
            .required("processed_events")
            .required("outbox")
            .into()
    }
}

impl ToSchema for crate::store::TablesDump {
    fn name() -> std::borrow::Cow<'static, str> {
        "AdminState".into()
    }
}

/// Schemas of the limits validation enforces, built from its constants, for the wire
/// types' `#[schema(schema_with = ...)]`: what [`super::validate`] accepts, no more and no
/// less.
pub(crate) mod schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    use utoipa::openapi::{Ref, RefOr, Schema};

    use crate::api::IDEMPOTENCY_KEY_LEN_MAX;
    use crate::service::validate::{
        ITEM_QUANTITY_MAX, KEY_PATTERN, ORDER_ITEMS_MAX, PARCEL_GRAMS_MAX, TEXT_LEN_MAX,
        not_blank_pattern,
    };

    /// A free-text field: 1 to [`TEXT_LEN_MAX`] characters, not all whitespace.
    pub(crate) fn text() -> Schema {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(TEXT_LEN_MAX))
            .pattern(Some(not_blank_pattern()))
            .description(Some(format!(
                "1 to {TEXT_LEN_MAX} characters, not all whitespace"
            )))
            .into()
    }

    /// An idempotency key, in the header.
    pub(crate) fn key() -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(IDEMPOTENCY_KEY_LEN_MAX))
            .pattern(Some(KEY_PATTERN))
    }

    /// An idempotency key in the body: `null` is the same as leaving the field out, as serde
    /// reads an optional field.
    pub(crate) fn body_key() -> Schema {
        key()
            .schema_type(utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null]))
            .description(Some(format!(
                "Alternative to the Idempotency-Key header (1 to {IDEMPOTENCY_KEY_LEN_MAX} printable ASCII characters, no spaces); must equal it if both are sent; `null` is the same as leaving it out"
            )))
            .into()
    }

    /// The lines of an order.
    pub(crate) fn order_items() -> Schema {
        ArrayBuilder::new()
            .items(RefOr::Ref(Ref::from_schema_name("OrderItem")))
            .min_items(Some(1))
            .max_items(Some(ORDER_ITEMS_MAX))
            .into()
    }

    fn bounded(max: u32) -> Schema {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(max))
            .into()
    }

    /// Units of a line.
    pub(crate) fn quantity() -> Schema {
        bounded(ITEM_QUANTITY_MAX)
    }

    /// A parcel's weight.
    pub(crate) fn weight_grams() -> Schema {
        bounded(PARCEL_GRAMS_MAX)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use axum::body::Body;
    use http_body_util::BodyExt;
    use serde_json::json;
    use tower::ServiceExt;

    use super::*;
    use crate::bugs::BugSet;
    use crate::client::RetryPolicy;
    use crate::clock::FixedClock;
    use crate::observe::NoopObserver;
    use crate::seed::Seed;
    use crate::service::validate::{KEY_PATTERN, TEXT_LEN_MAX, not_blank_pattern};
    use crate::service::{ServiceConfig, ServiceDeps, WebhookSettings, router};
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
    #[test]
    fn admin_state_names_exactly_the_dumped_tables() {
        // Proves the one hand-built schema (the store's dump, whose records are not part of
        // the contract) names exactly the tables the type serialises.
        let dumped: BTreeSet<String> = serde_json::to_value(crate::store::TablesDump::default())
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let documented: BTreeSet<String> =
            document()["components"]["schemas"]["AdminState"]["properties"]
                .as_object()
                .expect("AdminState has properties")
                .keys()
                .cloned()
                .collect();
        assert_eq!(dumped, documented);
    }

    /// Every `$ref` in `value`.
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("$ref", Value::String(target)) => out.push(target.clone()),
                        _ => refs(value, out),
                    }
                }
            }
            Value::Array(values) => values.iter().for_each(|value| refs(value, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves() {
        // Proves the references made by name (the conventions' headers and parameter, the
        // order lines' schema) all point at a component the document has, and that every
        // wire type the service answers with is among them.
        let document = document();
        let mut targets = Vec::new();
        refs(&document, &mut targets);
        assert!(targets.len() > 50, "{} references", targets.len());
        for target in &targets {
            let pointer = target.strip_prefix('#').expect("a local reference");
            assert!(
                document.pointer(pointer).is_some(),
                "{target} does not resolve"
            );
        }
        for schema in [
            "Order",
            "OrderItem",
            "Address",
            "OrderStatus",
            "Shipment",
            "ShipmentStatus",
            "ServiceLevel",
            "CreateOrderRequest",
            "CreateShipmentRequest",
            "ErrorEnvelope",
            "ErrorBody",
            "FieldError",
            "EventsPage",
            "WebhookEvent",
            "TrackingEvent",
            "WebhookAck",
            "OutboxCounts",
            "Requeued",
            "AdminState",
        ] {
            assert!(
                document["components"]["schemas"][schema].is_object(),
                "{schema} is not a component"
            );
        }
    }

    #[test]
    fn feed_parameters_are_what_the_parser_reads() {
        // Proves the feed's documented query matches its parser: a cursor the service gives
        // has the documented shape (prefix and hex digits), and `limit` spans 1 to the max.
        let document = document();
        let parameters = document["paths"]["/v1/events"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .clone();
        let after = &parameters[0]["schema"]["pattern"];
        let cursor = super::super::cursor_of(0x1f);
        assert_eq!(cursor, "evc_000000000000001f");
        assert_eq!(after, "^evc_[0-9a-f]{16}$");
        assert_eq!(parameters[1]["schema"]["minimum"], 1);
        assert_eq!(
            parameters[1]["schema"]["maximum"],
            super::super::EVENTS_LIMIT_MAX
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
