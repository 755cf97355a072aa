//! The service's client of the carrier: buys a label for a shipment, retrying transient
//! failures, under an idempotency key derived from the shipment so that any number of
//! retries (or resumptions after a crash) buy one label.

use std::sync::Arc;

use bytes::Bytes;

use super::ServiceConfig;
use crate::api::{Address, HEADER_API_KEY, HEADER_IDEMPOTENCY_KEY, Label, LabelRequest, Shipment};
use crate::bugs::{Bug, BugSet};
use crate::client::{ClientError, Retrier};
use crate::clock::Clock;
use crate::seed::Seed;
use crate::transport::Transport;

/// How a label purchase ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LabelOutcome {
    /// The carrier sold (or replayed) a label.
    Bought(Label),
    /// The carrier refused for good (4xx): nothing will ship.
    Rejected(String),
    /// The carrier could not be reached within the policy; retrying later is safe.
    Unavailable(String),
}

/// The idempotency key the service sends the carrier for a shipment's label.
#[must_use]
pub fn carrier_key(shipment_id: &str) -> String {
    format!("label-{shipment_id}")
}

pub(crate) struct CarrierClient {
    retrier: Retrier,
    base_url: String,
    api_key: String,
    bugs: BugSet,
}

impl CarrierClient {
    pub(crate) fn new(
        transport: Arc<dyn Transport>,
        clock: Arc<dyn Clock>,
        seed: Seed,
        config: &ServiceConfig,
    ) -> Self {
        CarrierClient {
            // The service's own retries follow the correct policy even when client bugs are
            // planted: those bugs belong to the merchant's client.
            retrier: Retrier::new(
                transport,
                clock,
                seed,
                config.carrier_policy,
                BugSet::none(),
            ),
            base_url: config.carrier_base_url.clone(),
            api_key: config.carrier_api_key.clone(),
            bugs: config.bugs.clone(),
        }
    }

    /// Buys the label of `shipment`, shipped to `ship_to`.
    pub(crate) async fn buy(&self, shipment: &Shipment, ship_to: &Address) -> LabelOutcome {
        let request = LabelRequest {
            shipment_ref: shipment.id.clone(),
            service_level: shipment.service_level,
            weight_grams: shipment.weight_grams,
            ship_to: ship_to.clone(),
        };
        let body = Bytes::from(serde_json::to_vec(&request).expect("API types serialise"));
        let uri = format!("{}/v1/labels", self.base_url);
        let key = carrier_key(&shipment.id);
        let send_key = !self.bugs.has(Bug::CarrierWithoutKey);
        let report = self
            .retrier
            .call(|_attempt| {
                let mut builder = http::Request::post(&uri)
                    .header(HEADER_API_KEY, &self.api_key)
                    .header(http::header::CONTENT_TYPE, "application/json");
                if send_key {
                    builder = builder.header(HEADER_IDEMPOTENCY_KEY, &key);
                }
                builder.body(body.clone()).expect("valid request")
            })
            .await;
        match report.result {
            Ok(response) => match serde_json::from_slice::<Label>(response.body()) {
                Ok(label) => LabelOutcome::Bought(label),
                Err(error) => LabelOutcome::Unavailable(format!("undecodable label: {error}")),
            },
            Err(ClientError::Rejected { status, body }) => LabelOutcome::Rejected(
                body.map_or_else(|| format!("status {status}"), |b| b.message),
            ),
            Err(other) => LabelOutcome::Unavailable(other.to_string()),
        }
    }
}
