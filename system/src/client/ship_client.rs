//! [`ShipClient`]: the merchant's typed client of the order/shipment API.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::{AttemptRecord, ClientError};
use super::policy::RetryPolicy;
use super::retrier::Retrier;
use crate::api::{
    CreateOrderRequest, CreateShipmentRequest, HEADER_API_KEY, HEADER_IDEMPOTENCY_KEY,
    HEADER_IDEMPOTENT_REPLAYED, Order, Shipment,
};
use crate::bugs::{Bug, BugSet};
use crate::clock::Clock;
use crate::seed::Seed;
use crate::transport::{HttpRequest, Transport};

/// Where a write carries its idempotency key; the service accepts both (seed 004, A).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPlacement {
    /// `Idempotency-Key` header.
    Header,
    /// `idempotency_key` field of the JSON body.
    Body,
}

/// How a [`ShipClient`] reaches the service and behaves.
#[derive(Clone, Debug)]
pub struct ShipClientConfig {
    /// Absolute base URL, no trailing slash (`http://service`).
    pub base_url: String,
    /// The merchant's API key.
    pub api_key: String,
    /// Timeouts, deadline and backoff.
    pub policy: RetryPolicy,
    /// Planted client bugs; empty for the correct client.
    pub bugs: BugSet,
}

/// A successful operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Success<T> {
    /// The decoded resource.
    pub value: T,
    /// HTTP status of the final attempt.
    pub status: u16,
    /// Whether the service replayed a stored outcome.
    pub replayed: bool,
}

/// The outcome of one logical operation with every attempt it took.
#[derive(Clone, Debug)]
pub struct OpReport<T> {
    /// The resource, or why there is none.
    pub result: Result<Success<T>, ClientError>,
    /// Every HTTP attempt, in order.
    pub attempts: Vec<AttemptRecord>,
    /// Time from the first send to the end, in ms, waits included.
    pub elapsed_ms: u64,
}

/// The merchant's client. One instance per merchant process; cheap to share by reference.
pub struct ShipClient {
    retrier: Retrier,
    config: ShipClientConfig,
    /// Only used by the planted bug that invents a key per attempt.
    key_rng: Mutex<ChaCha8Rng>,
}

impl std::fmt::Debug for ShipClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShipClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ShipClient {
    /// A client sending through `transport`, drawing jitter from `seed`.
    #[must_use]
    pub fn new(
        transport: Arc<dyn Transport>,
        clock: Arc<dyn Clock>,
        seed: Seed,
        config: ShipClientConfig,
    ) -> Self {
        ShipClient {
            retrier: Retrier::new(
                transport,
                clock,
                seed.derive("retry"),
                config.policy,
                config.bugs.clone(),
            ),
            key_rng: Mutex::new(seed.derive("keys").rng()),
            config,
        }
    }

    /// `POST /v1/orders` with idempotency key `key`.
    pub async fn create_order(
        &self,
        request: &CreateOrderRequest,
        key: &str,
        placement: KeyPlacement,
    ) -> OpReport<Order> {
        let mut body = request.clone();
        if placement == KeyPlacement::Body {
            body.idempotency_key = Some(key.to_string());
        }
        self.write("/v1/orders".to_string(), &body, key, placement)
            .await
    }

    /// `POST /v1/orders/{order_id}/shipments` with idempotency key `key`.
    pub async fn create_shipment(
        &self,
        order_id: &str,
        request: &CreateShipmentRequest,
        key: &str,
        placement: KeyPlacement,
    ) -> OpReport<Shipment> {
        let mut body = request.clone();
        if placement == KeyPlacement::Body {
            body.idempotency_key = Some(key.to_string());
        }
        self.write(
            format!("/v1/orders/{order_id}/shipments"),
            &body,
            key,
            placement,
        )
        .await
    }

    /// `GET /v1/orders/{order_id}`.
    pub async fn get_order(&self, order_id: &str) -> OpReport<Order> {
        self.read(format!("/v1/orders/{order_id}")).await
    }

    /// `GET /v1/shipments/{shipment_id}`.
    pub async fn get_shipment(&self, shipment_id: &str) -> OpReport<Shipment> {
        self.read(format!("/v1/shipments/{shipment_id}")).await
    }

    async fn write<B: Serialize, T: DeserializeOwned>(
        &self,
        path: String,
        body: &B,
        key: &str,
        placement: KeyPlacement,
    ) -> OpReport<T> {
        let json = Bytes::from(serde_json::to_vec(body).expect("API types serialise"));
        let uri = format!("{}{path}", self.config.base_url);
        let report = self
            .retrier
            .call(|attempt| {
                let key = self.key_for_attempt(key, attempt);
                let mut builder = http::Request::post(&uri)
                    .header(HEADER_API_KEY, &self.config.api_key)
                    .header(http::header::CONTENT_TYPE, "application/json");
                if placement == KeyPlacement::Header {
                    builder = builder.header(HEADER_IDEMPOTENCY_KEY, key);
                }
                builder.body(json.clone()).expect("valid request")
            })
            .await;
        decode(report)
    }

    async fn read<T: DeserializeOwned>(&self, path: String) -> OpReport<T> {
        let uri = format!("{}{path}", self.config.base_url);
        let report = self
            .retrier
            .call(|_attempt| -> HttpRequest {
                http::Request::get(&uri)
                    .header(HEADER_API_KEY, &self.config.api_key)
                    .body(Bytes::new())
                    .expect("valid request")
            })
            .await;
        decode(report)
    }

    fn key_for_attempt(&self, key: &str, attempt: u32) -> String {
        if self.config.bugs.has(Bug::ClientNewKeyPerAttempt) && attempt > 0 {
            let mut rng = self.key_rng.lock().expect("key rng lock poisoned");
            let suffix: u32 = rng.random();
            format!("{key}-retry{attempt}-{suffix:08x}")
        } else {
            key.to_string()
        }
    }
}

fn decode<T: DeserializeOwned>(report: super::retrier::CallReport) -> OpReport<T> {
    let result = report.result.and_then(|response| {
        let status = response.status().as_u16();
        let replayed = response
            .headers()
            .get(HEADER_IDEMPOTENT_REPLAYED)
            .is_some_and(|v| v.as_bytes() == b"true");
        serde_json::from_slice::<T>(response.body())
            .map(|value| Success {
                value,
                status,
                replayed,
            })
            .map_err(|error| ClientError::Decode {
                status,
                message: error.to_string(),
            })
    });
    OpReport {
        result,
        attempts: report.attempts,
        elapsed_ms: report.elapsed_ms,
    }
}
