//! Wire types of the service's public API and of the carrier's API, shared by the service,
//! the carrier and the client so that both ends of every call agree by construction.
//!
//! Request types deny unknown fields: a typo in a merchant's payload is a 400 naming the
//! field, never a silently ignored value.
//!
//! The types of the service's API derive their OpenAPI schemas ([`utoipa::ToSchema`]): doc
//! comments become descriptions, and the limits validation enforces come from
//! `service::openapi`'s schema functions, built from the same constants.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::service::openapi::schema;

/// Header carrying the caller's API key.
pub const HEADER_API_KEY: &str = "x-api-key";
/// Header carrying the idempotency key of a write (IETF httpapi draft).
pub const HEADER_IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Header set to `true` on a response replayed from a stored idempotent outcome (as Stripe).
pub const HEADER_IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// Header carrying the operator's key for the admin endpoints (live mode's state read-back).
pub const HEADER_ADMIN_KEY: &str = "x-admin-key";
/// Header carrying the id the service gave the request.
pub const HEADER_REQUEST_ID: &str = "x-request-id";
/// Rate-limit headers sent with every authenticated response.
pub const HEADER_RATE_LIMIT: &str = "x-ratelimit-limit";
/// Requests left in the current window.
pub const HEADER_RATE_REMAINING: &str = "x-ratelimit-remaining";
/// Unix seconds at which a request will next be admitted.
pub const HEADER_RATE_RESET: &str = "x-ratelimit-reset";

/// Longest `X-Request-Id` the service takes from a caller (128 characters: a UUID, a
/// ULID or a W3C trace id with room to spare); longer or odd ones are replaced.
pub const REQUEST_ID_LEN_MAX: usize = 128;

/// Longest idempotency key accepted (255 characters, as Stripe).
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 255;

/// `POST /v1/orders` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrderRequest {
    /// The merchant's own order number.
    #[schema(schema_with = schema::text)]
    pub reference: String,
    /// What to ship: 1 to 50 lines.
    #[schema(schema_with = schema::order_items)]
    pub items: Vec<OrderItem>,
    /// Where to ship it.
    pub ship_to: Address,
    /// Idempotency key given in the body instead of the header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = schema::body_key)]
    pub idempotency_key: Option<String>,
}

/// One line of an order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderItem {
    /// Stock keeping unit.
    #[schema(schema_with = schema::text)]
    pub sku: String,
    /// How many, 1 to 1000.
    #[schema(schema_with = schema::quantity)]
    pub quantity: u32,
}

/// A postal address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Recipient.
    #[schema(schema_with = schema::text)]
    pub name: String,
    /// Street and number.
    #[schema(schema_with = schema::text)]
    pub line1: String,
    /// City.
    #[schema(schema_with = schema::text)]
    pub city: String,
    /// Postal code.
    #[schema(schema_with = schema::text)]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code, upper case.
    #[schema(pattern = "^[A-Z]{2}$")]
    pub country: String,
}

/// Lifecycle of an order. Moves forward only.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Accepted, nothing shipped yet.
    Created,
    /// At least one shipment has a label.
    Fulfilling,
    /// A shipment is with the carrier.
    Shipped,
    /// A shipment was delivered.
    Delivered,
}

/// An order as the API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct Order {
    /// Service-assigned id (`ord_...`).
    pub id: String,
    /// The merchant's own order number.
    pub reference: String,
    /// Where the order is in its lifecycle.
    pub status: OrderStatus,
    /// What to ship.
    pub items: Vec<OrderItem>,
    /// Where to ship it.
    pub ship_to: Address,
    /// Shipments created for this order, oldest first.
    pub shipment_ids: Vec<String>,
    /// Creation time, Unix milliseconds by the service's clock.
    pub created_at_ms: u64,
}

/// How fast the carrier should move a parcel.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ServiceLevel {
    /// Cheapest.
    Ground,
    /// Next day.
    Express,
}

/// `POST /v1/orders/{id}/shipments` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateShipmentRequest {
    /// Carrier speed.
    pub service_level: ServiceLevel,
    /// Parcel weight, 1 g to 70 kg.
    #[schema(schema_with = schema::weight_grams)]
    pub weight_grams: u32,
    /// Idempotency key given in the body instead of the header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = schema::body_key)]
    pub idempotency_key: Option<String>,
}

/// Lifecycle of a shipment. Moves forward only; `Delivered` and `Exception` end it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ShipmentStatus {
    /// Created; the label is being bought.
    PendingLabel,
    /// The carrier sold a label.
    LabelPurchased,
    /// The carrier refused to sell a label; nothing will ship.
    LabelRejected,
    /// Picked up by the carrier.
    InTransit,
    /// Delivered to the recipient.
    Delivered,
    /// The carrier reported a problem.
    Exception,
}

impl ShipmentStatus {
    /// Order of the states along the happy path, for "never moves backwards" checks.
    /// `Exception` ranks with `InTransit`: it can follow it but does not end a delivered parcel.
    #[must_use]
    pub fn rank(self) -> u8 {
        match self {
            ShipmentStatus::PendingLabel => 0,
            ShipmentStatus::LabelPurchased | ShipmentStatus::LabelRejected => 1,
            ShipmentStatus::InTransit => 2,
            ShipmentStatus::Exception => 3,
            ShipmentStatus::Delivered => 4,
        }
    }
}

/// A shipment as the API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct Shipment {
    /// Service-assigned id (`shp_...`).
    pub id: String,
    /// The order it ships.
    pub order_id: String,
    /// Where the shipment is in its lifecycle.
    pub status: ShipmentStatus,
    /// Carrier speed.
    pub service_level: ServiceLevel,
    /// Parcel weight.
    pub weight_grams: u32,
    /// The carrier's label, once bought.
    #[schema(required = true)]
    pub label_id: Option<String>,
    /// The carrier's tracking number, once bought.
    #[schema(required = true)]
    pub tracking_number: Option<String>,
    /// Creation time, Unix milliseconds by the service's clock.
    pub created_at_ms: u64,
}

/// The one error envelope of every non-2xx response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ErrorBody,
}

/// Body of the error envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable code (`validation_failed`, `idempotency_key_reused`, ...).
    pub code: String,
    /// A sentence for people.
    pub message: String,
    /// Field-level details; empty when the error is not about fields.
    pub details: Vec<FieldError>,
    /// The id of the request, also in the `X-Request-Id` header.
    pub request_id: String,
}

/// One invalid field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// Path of the field (`items[0].quantity`, `Idempotency-Key`).
    pub field: String,
    /// What is wrong with it.
    pub issue: String,
}

/// Carrier: `POST /v1/labels` body. The service sends an `Idempotency-Key` with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelRequest {
    /// The service's shipment id, the carrier's reference for the parcel.
    pub shipment_ref: String,
    /// Carrier speed.
    pub service_level: ServiceLevel,
    /// Parcel weight.
    pub weight_grams: u32,
    /// Destination.
    pub ship_to: Address,
}

/// Carrier: a label sold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// Carrier-assigned id (`lbl_...`).
    pub label_id: String,
    /// Tracking number printed on the label.
    pub tracking_number: String,
    /// The shipment it was sold for.
    pub shipment_ref: String,
    /// Price in cents, billed to the platform.
    pub cost_cents: u32,
}

/// The service's endpoints, as route templates: the unit of latency histograms and budgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// `POST /v1/orders`
    CreateOrder,
    /// `GET /v1/orders/{id}`
    GetOrder,
    /// `POST /v1/orders/{id}/shipments`
    CreateShipment,
    /// `GET /v1/shipments/{id}`
    GetShipment,
}

impl Endpoint {
    /// Every endpoint, in a fixed order.
    pub const ALL: &'static [Endpoint] = &[
        Endpoint::CreateOrder,
        Endpoint::GetOrder,
        Endpoint::CreateShipment,
        Endpoint::GetShipment,
    ];

    /// Method and route template, e.g. `POST /v1/orders/{id}/shipments`.
    #[must_use]
    pub fn route(self) -> &'static str {
        match self {
            Endpoint::CreateOrder => "POST /v1/orders",
            Endpoint::GetOrder => "GET /v1/orders/{id}",
            Endpoint::CreateShipment => "POST /v1/orders/{id}/shipments",
            Endpoint::GetShipment => "GET /v1/shipments/{id}",
        }
    }

    /// Whether the endpoint creates state (and so takes an idempotency key).
    #[must_use]
    pub fn is_write(self) -> bool {
        matches!(self, Endpoint::CreateOrder | Endpoint::CreateShipment)
    }
}

/// What a carrier tracking event reports, in the order a parcel goes through them.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TrackingKind {
    /// The label exists (informational: the service learns of labels from its own call).
    LabelCreated,
    /// The carrier collected the parcel.
    PickedUp,
    /// The parcel is moving.
    InTransit,
    /// The parcel arrived.
    Delivered,
    /// Something went wrong (damaged, refused, lost).
    Exception,
}

impl TrackingKind {
    /// The shipment status this event moves a shipment to, if any.
    #[must_use]
    pub fn shipment_status(self) -> Option<ShipmentStatus> {
        match self {
            TrackingKind::LabelCreated => None,
            TrackingKind::PickedUp | TrackingKind::InTransit => Some(ShipmentStatus::InTransit),
            TrackingKind::Delivered => Some(ShipmentStatus::Delivered),
            TrackingKind::Exception => Some(ShipmentStatus::Exception),
        }
    }
}

/// Carrier -> service: `POST /v1/webhooks/carrier`, signed with the carrier's secret.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingEvent {
    /// Unique per event; the service applies each id once.
    pub event_id: String,
    /// What happened.
    pub kind: TrackingKind,
    /// The service's shipment id.
    pub shipment_ref: String,
    /// The carrier's label.
    pub label_id: String,
    /// The carrier's tracking number.
    pub tracking_number: String,
    /// When it happened, by the carrier's clock.
    pub occurred_at_ms: u64,
}

/// Service -> merchant: the body of an outbound webhook, signed with the merchant's secret.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEvent {
    /// Unique per event (`evt_...`), the same in the webhook and the feed; the merchant
    /// applies each id once.
    pub event_id: String,
    /// `order.created`, `shipment.created`, `shipment.label_rejected`, `shipment.shipped`,
    /// `shipment.delivered`, `shipment.exception` or `shipment.tracking_update` (a scan
    /// that did not change the status).
    pub event_type: String,
    /// When the service committed it, by the service's clock.
    pub created_at_ms: u64,
    /// The order concerned.
    pub order_id: String,
    /// The shipment concerned, for shipment events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub shipment_id: Option<String>,
    /// The shipment's status after the event, for shipment events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub status: Option<ShipmentStatus>,
    /// Position of this event among the events about its shipment (for `order.created`,
    /// its order), from 1, in the order the service committed them. Deliveries overtake
    /// each other (several are in flight, and retries come later): a receiver that already
    /// acted on a higher sequence for the shipment holds a stale event.
    #[serde(default)]
    #[schema(required = true, minimum = 1)]
    pub sequence: u64,
}

impl WebhookEvent {
    /// The outbound event type announcing a shipment's new `status`.
    #[must_use]
    pub fn shipment_type(status: ShipmentStatus) -> &'static str {
        match status {
            ShipmentStatus::PendingLabel | ShipmentStatus::LabelPurchased => "shipment.created",
            ShipmentStatus::LabelRejected => "shipment.label_rejected",
            ShipmentStatus::InTransit => "shipment.shipped",
            ShipmentStatus::Delivered => "shipment.delivered",
            ShipmentStatus::Exception => "shipment.exception",
        }
    }
}

/// Service -> merchant: one page of `GET /v1/events`, the caller's events in commit order
/// after a cursor. Each event is the body its webhook carried (same id, same fields).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsPage {
    /// The caller's events after the cursor, oldest first.
    pub events: Vec<WebhookEvent>,
    /// Where the next page starts: pass it as `after`. The cursor of the last event
    /// returned, or the request's own `after` when the page is empty (poll again later).
    pub next_cursor: String,
    /// Whether more events are waiting after this page (fetch the next page at once).
    pub has_more: bool,
}
