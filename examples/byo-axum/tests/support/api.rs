//! The payments API in shipsim's terms: customers, and payments on them (which charge the
//! bank); how to draw a body, build a create or a read, and read a response.

use byo_axum::api::{CreateCustomer, CreatePayment, CustomerView, PaymentView};
use rand::Rng;
use rand::seq::IndexedRandom;
use shipsim::{
    Api, ApiError, Conventions, CreateCall, Draw, HttpRequest, HttpResponse, Kind, ReadCall, Seen,
    json_request,
};

use super::DECLINED_SOURCE;

const CURRENCIES: &[&str] = &["eur", "usd", "gbp", "chf"];
const SOURCES: &[&str] = &["tok_visa", "tok_mastercard", "tok_amex"];

/// The payments API.
#[derive(Clone, Copy, Debug)]
pub struct PaymentsApi;

fn is_customer(kind: &Kind) -> bool {
    kind.name() == "customer"
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("API types serialise")
}

impl Api for PaymentsApi {
    fn kinds(&self) -> Vec<Kind> {
        vec![
            Kind::new("customer", "POST /v1/customers")
                .read_route("GET /v1/customers/{id}")
                .key_prefix("cus")
                .weights(1, 1),
            Kind::new("payment", "POST /v1/customers/{id}/payments")
                .read_route("GET /v1/payments/{id}")
                .parent("customer")
                .spends()
                .key_prefix("pay")
                .states(["pending", "succeeded|failed"])
                .weights(4, 2),
        ]
    }

    fn body(&self, kind: &Kind, draw: &mut Draw<'_>) -> String {
        let (slot, sequence) = (draw.slot(), draw.sequence());
        if is_customer(kind) {
            return json(&CreateCustomer {
                email: format!("buyer-{slot}-{sequence}@example.com"),
                name: format!("Buyer {}", draw.rng().random_range(1..10_000)),
            });
        }
        let refuse = draw.refuse_probability();
        let rng = draw.rng();
        let declined = rng.random_bool(refuse);
        let source = if declined {
            DECLINED_SOURCE
        } else {
            SOURCES.choose(rng).copied().unwrap_or("tok_visa")
        };
        json(&CreatePayment {
            amount: rng.random_range(100..=50_000),
            currency: CURRENCIES.choose(rng).copied().unwrap_or("eur").into(),
            source: source.into(),
            description: Some(format!("order {slot}-{sequence}")),
        })
    }

    fn vary(&self, kind: &Kind, body: &str) -> String {
        if is_customer(kind) {
            return match serde_json::from_str::<CreateCustomer>(body) {
                Ok(mut request) => {
                    request.name.push_str(" Jr.");
                    json(&request)
                }
                Err(_) => body.to_string(),
            };
        }
        match serde_json::from_str::<CreatePayment>(body) {
            Ok(mut request) => {
                request.amount += 1;
                json(&request)
            }
            Err(_) => body.to_string(),
        }
    }

    fn create(&self, kind: &Kind, call: &CreateCall<'_>) -> Result<HttpRequest, ApiError> {
        let path = if is_customer(kind) {
            "/v1/customers".to_string()
        } else {
            let customer = call
                .parent
                .ok_or_else(|| ApiError::new("a payment is created on a customer"))?;
            format!("/v1/customers/{customer}/payments")
        };
        let authorization = format!("Bearer {}", call.caller.api_key);
        json_request(
            "POST",
            &path,
            &[
                ("authorization", authorization.as_str()),
                ("idempotency-key", call.key),
                ("content-type", "application/json"),
            ],
            call.body.to_string(),
        )
    }

    fn read(&self, kind: &Kind, call: &ReadCall<'_>) -> Result<HttpRequest, ApiError> {
        let path = if is_customer(kind) {
            format!("/v1/customers/{}", call.id)
        } else {
            format!("/v1/payments/{}", call.id)
        };
        let authorization = format!("Bearer {}", call.caller.api_key);
        json_request(
            "GET",
            &path,
            &[("authorization", authorization.as_str())],
            "",
        )
    }

    fn parse(&self, kind: &Kind, response: &HttpResponse) -> Result<Seen, ApiError> {
        if is_customer(kind) {
            let customer: CustomerView =
                serde_json::from_slice(response.body()).map_err(ApiError::new)?;
            return Ok(Seen {
                id: customer.id,
                ..Seen::default()
            });
        }
        let payment: PaymentView =
            serde_json::from_slice(response.body()).map_err(ApiError::new)?;
        Ok(Seen {
            id: payment.id,
            parent: Some(payment.customer),
            state: Some(payment.status),
            downstream_ref: payment.charge,
        })
    }

    /// Errors are problem details without an error code: a reused key is told by its
    /// status, 422 (validation errors are 400).
    fn conventions(&self) -> Conventions {
        Conventions {
            key_reused_code: None,
            key_reused_status: Some(422),
            ..Conventions::default()
        }
    }
}
