//! The service's client of its bank: `POST /v1/charges` with a timeout per attempt and a
//! few retries, under an idempotency key the caller derives from the payment, so that any
//! number of retries, resumptions and restarts charge the card once.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::model::Payment;
use crate::seams::HttpClient;

/// Timeouts and retries towards the bank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BankPolicy {
    /// One attempt's limit.
    pub timeout_ms_per_attempt: u64,
    /// Attempts per charge, the first included.
    pub attempt_count_max: u32,
    /// The wait before the second attempt; it doubles after each further one.
    pub backoff_ms_base: u64,
}

impl BankPolicy {
    /// 400 ms per attempt, three attempts, 100 ms then 200 ms between them: at most 1.5 s
    /// in all, well inside a client's patience and [`crate::config::LOCK_LEASE_MS_DEFAULT`].
    pub const DEFAULT: BankPolicy = BankPolicy {
        timeout_ms_per_attempt: 400,
        attempt_count_max: 3,
        backoff_ms_base: 100,
    };
}

const _: () = assert!(BankPolicy::DEFAULT.attempt_count_max >= 1);

/// What the service tells the bank it charges for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChargeMetadata {
    /// The payment: the bank's ledger ties each charge to it.
    pub payment_id: String,
    /// Whose payment it is.
    pub merchant: String,
}

/// `POST /v1/charges`, built from the stored payment only, so that a retry or a resumption
/// after a crash sends the very same request under the same key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChargeRequest {
    /// Minor units.
    pub amount: u64,
    /// ISO 4217.
    pub currency: String,
    /// Card token.
    pub source: String,
    /// Statement text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Ties the charge to the payment.
    pub metadata: ChargeMetadata,
}

impl ChargeRequest {
    /// The charge of `payment`.
    #[must_use]
    pub fn of(payment: &Payment) -> ChargeRequest {
        ChargeRequest {
            amount: payment.amount,
            currency: payment.currency.clone(),
            source: payment.source.clone(),
            description: payment.description.clone(),
            metadata: ChargeMetadata {
                payment_id: payment.id.clone(),
                merchant: payment.merchant.clone(),
            },
        }
    }
}

/// The idempotency key of `payment`'s charge: one payment, one key, one charge.
#[must_use]
pub fn charge_key(payment: &Payment) -> String {
    format!("charge-{}", payment.id)
}

/// A charge the bank made.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Charge {
    /// The bank's id (`ch_...`).
    pub id: String,
}

/// Why a charge did not happen, or may not have.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BankError {
    /// The bank refused the card (402): definite, no money moved.
    #[error("declined: {code}")]
    Declined {
        /// The bank's reason (`card_declined`).
        code: String,
    },
    /// The bank refused the request itself (another 4xx): definite, no money moved, and a
    /// bug on one side or the other.
    #[error("refused with {status}: {detail}")]
    Refused {
        /// Its status.
        status: u16,
        /// Its body.
        detail: String,
    },
    /// No definite answer within the attempts: the charge may or may not have happened.
    /// Retrying under the same key finds out without charging twice.
    #[error("unavailable: {last}")]
    Unavailable {
        /// What the last attempt saw.
        last: String,
    },
}

/// The bank client.
#[derive(Clone)]
pub struct BankClient {
    http: Arc<dyn HttpClient>,
    base_url: String,
    authorization: String,
    policy: BankPolicy,
    /// Whether charges carry their idempotency key (always, but for the planted
    /// `bank_without_key` mistake).
    send_keys: bool,
}

impl std::fmt::Debug for BankClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankClient")
            .field("base_url", &self.base_url)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// What one attempt learnt.
enum Attempt {
    Done(Result<Charge, BankError>),
    /// Worth another attempt: no answer, a 5xx, a 429, a 409.
    Retry(String),
}

impl BankClient {
    /// A client of the bank at `base_url` sending `authorization`.
    #[must_use]
    pub fn new(
        http: Arc<dyn HttpClient>,
        base_url: &str,
        authorization: &str,
        policy: BankPolicy,
        send_keys: bool,
    ) -> BankClient {
        BankClient {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            authorization: authorization.to_string(),
            policy,
            send_keys,
        }
    }

    /// Charges `request` under `key`, retrying what may be retried.
    ///
    /// # Errors
    /// A [`BankError`]: declined or refused (definite), or unavailable (unknown).
    pub async fn charge(&self, request: &ChargeRequest, key: &str) -> Result<Charge, BankError> {
        let body = Bytes::from(serde_json::to_vec(request).expect("a charge serialises"));
        let mut last = String::from("no attempt");
        for attempt in 0..self.policy.attempt_count_max {
            if attempt > 0 {
                let wait = self.policy.backoff_ms_base << (attempt - 1).min(16);
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            match self.attempt(body.clone(), key).await {
                Attempt::Done(result) => return result,
                Attempt::Retry(why) => last = why,
            }
        }
        Err(BankError::Unavailable { last })
    }

    async fn attempt(&self, body: Bytes, key: &str) -> Attempt {
        let mut builder = http::Request::post(format!("{}/v1/charges", self.base_url))
            .header(http::header::AUTHORIZATION, &self.authorization)
            .header(http::header::CONTENT_TYPE, "application/json");
        if self.send_keys {
            builder = builder.header("idempotency-key", key);
        }
        let request = match builder.body(body) {
            Ok(request) => request,
            Err(error) => {
                return Attempt::Done(Err(BankError::Refused {
                    status: 0,
                    detail: format!("the request cannot be built: {error}"),
                }));
            }
        };
        let timeout = Duration::from_millis(self.policy.timeout_ms_per_attempt);
        let response = match tokio::time::timeout(timeout, self.http.send(request)).await {
            Err(_) => return Attempt::Retry("timed out".into()),
            Ok(Err(error)) => return Attempt::Retry(error.to_string()),
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        match status {
            200..=299 => match serde_json::from_slice::<Charge>(response.body()) {
                Ok(charge) => Attempt::Done(Ok(charge)),
                // Charged, but the answer is unreadable: asking again under the key replays it.
                Err(error) => Attempt::Retry(format!("unreadable charge: {error}")),
            },
            402 => Attempt::Done(Err(BankError::Declined {
                code: error_code(response.body()).unwrap_or_else(|| "declined".into()),
            })),
            409 | 429 | 500..=599 => Attempt::Retry(format!("bank answered {status}")),
            _ => Attempt::Done(Err(BankError::Refused {
                status,
                detail: String::from_utf8_lossy(response.body()).into_owned(),
            })),
        }
    }
}

/// The code of the bank's error envelope (`{"error": {"code": ...}}`).
fn error_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value
        .pointer("/error/code")
        .and_then(|c| c.as_str())
        .map(str::to_string)
}
