//! [`ReferenceApi`]: the reference service's API in shipsim's terms. Orders
//! (`POST /v1/orders`) and shipments on them (`POST /v1/orders/{id}/shipments`, which buys
//! a carrier label), both readable, both taking the idempotency key in the
//! `Idempotency-Key` header or the `idempotency_key` body field.

use rand::Rng;
use rand::seq::IndexedRandom;
use shipsim_system::api::{
    Address, CreateOrderRequest, CreateShipmentRequest, HEADER_API_KEY, HEADER_IDEMPOTENCY_KEY,
    IDEMPOTENCY_KEY_LEN_MAX, Order, OrderItem, ServiceLevel, Shipment,
};
use shipsim_system::transport::{HttpRequest, HttpResponse};

use super::UNSERVICEABLE_COUNTRY;
use crate::target::{
    Api, ApiError, Conventions, CreateCall, Draw, KeyPlacement, Kind, ReadCall, Seen, json_request,
};

/// Countries the carrier serves.
const COUNTRIES: &[&str] = &["DE", "FR", "NL", "US", "GB", "PL"];

/// The reference service's API.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReferenceApi;

impl Api for ReferenceApi {
    fn kinds(&self) -> Vec<Kind> {
        vec![
            Kind::new("order", "POST /v1/orders")
                .read_route("GET /v1/orders/{id}")
                .key_in_body()
                .weights(2, 1)
                .states(["created", "fulfilling", "shipped", "delivered"]),
            Kind::new("shipment", "POST /v1/orders/{id}/shipments")
                .read_route("GET /v1/shipments/{id}")
                .parent("order")
                .spends()
                .key_in_body()
                .key_prefix("ship")
                .weights(4, 1)
                .states([
                    "pending_label",
                    "label_purchased|label_rejected",
                    "in_transit",
                    "exception",
                    "delivered",
                ]),
        ]
    }

    fn body(&self, kind: &Kind, draw: &mut Draw<'_>) -> String {
        let json = if kind.name() == "order" {
            let refuse = draw.refuse_probability();
            let sequence = draw.sequence();
            let slot = draw.slot();
            let rng = draw.rng();
            let country = if rng.random_bool(refuse) {
                UNSERVICEABLE_COUNTRY
            } else {
                COUNTRIES.choose(rng).copied().unwrap_or("DE")
            };
            let lines = rng.random_range(1..=3);
            let items = (0..lines)
                .map(|_| OrderItem {
                    sku: format!("SKU-{}", rng.random_range(100..1000)),
                    quantity: rng.random_range(1..=5),
                })
                .collect();
            serde_json::to_string(&CreateOrderRequest {
                reference: format!("PO-{slot}-{sequence}"),
                items,
                ship_to: Address {
                    name: format!("Customer {}", rng.random_range(1..10_000)),
                    line1: format!("{} Main Street", rng.random_range(1..500)),
                    city: "Springfield".into(),
                    postal_code: format!("{:05}", rng.random_range(1_000..99_999)),
                    country: country.into(),
                },
                idempotency_key: None,
            })
        } else {
            let rng = draw.rng();
            serde_json::to_string(&CreateShipmentRequest {
                service_level: if rng.random_bool(0.3) {
                    ServiceLevel::Express
                } else {
                    ServiceLevel::Ground
                },
                weight_grams: rng.random_range(100..=20_000),
                idempotency_key: None,
            })
        };
        json.expect("API types serialise")
    }

    fn vary(&self, kind: &Kind, body: &str) -> String {
        if kind.name() != "shipment" {
            return body.to_string();
        }
        let Ok(mut request) = serde_json::from_str::<CreateShipmentRequest>(body) else {
            return body.to_string();
        };
        request.weight_grams = if request.weight_grams >= 20_000 {
            request.weight_grams - 1
        } else {
            request.weight_grams + 1
        };
        serde_json::to_string(&request).expect("API types serialise")
    }

    fn create(&self, kind: &Kind, call: &CreateCall<'_>) -> Result<HttpRequest, ApiError> {
        let in_body = call.placement == KeyPlacement::Body;
        let (path, json) = if kind.name() == "order" {
            let mut request: CreateOrderRequest =
                serde_json::from_str(call.body).map_err(ApiError::new)?;
            if in_body {
                request.idempotency_key = Some(call.key.to_string());
            }
            ("/v1/orders".to_string(), serde_json::to_vec(&request))
        } else {
            let mut request: CreateShipmentRequest =
                serde_json::from_str(call.body).map_err(ApiError::new)?;
            if in_body {
                request.idempotency_key = Some(call.key.to_string());
            }
            let order_id = call
                .parent
                .ok_or_else(|| ApiError::new("a shipment is created on an order"))?;
            (
                format!("/v1/orders/{order_id}/shipments"),
                serde_json::to_vec(&request),
            )
        };
        let json = json.map_err(ApiError::new)?;
        let mut headers = vec![
            (HEADER_API_KEY, call.caller.api_key.as_str()),
            ("content-type", "application/json"),
        ];
        if !in_body {
            headers.push((HEADER_IDEMPOTENCY_KEY, call.key));
        }
        json_request("POST", &path, &headers, json)
    }

    fn read(&self, kind: &Kind, call: &ReadCall<'_>) -> Result<HttpRequest, ApiError> {
        let path = if kind.name() == "order" {
            format!("/v1/orders/{}", call.id)
        } else {
            format!("/v1/shipments/{}", call.id)
        };
        json_request(
            "GET",
            &path,
            &[(HEADER_API_KEY, call.caller.api_key.as_str())],
            bytes::Bytes::new(),
        )
    }

    fn parse(&self, kind: &Kind, response: &HttpResponse) -> Result<Seen, ApiError> {
        if kind.name() == "order" {
            let order: Order = serde_json::from_slice(response.body()).map_err(ApiError::new)?;
            Ok(Seen {
                state: Some(super::spelled(&order.status)),
                id: order.id,
                parent: None,
                downstream_ref: None,
            })
        } else {
            let shipment: Shipment =
                serde_json::from_slice(response.body()).map_err(ApiError::new)?;
            Ok(Seen {
                state: Some(super::spelled(&shipment.status)),
                id: shipment.id,
                parent: Some(shipment.order_id),
                downstream_ref: shipment.label_id,
            })
        }
    }

    /// The default conventions, and the documented key-length limit (README, "Idempotency").
    fn conventions(&self) -> Conventions {
        Conventions {
            key_len_max: Some(IDEMPOTENCY_KEY_LEN_MAX),
            ..Conventions::default()
        }
    }
}
