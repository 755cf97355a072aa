//! What the service stores: customers, payments, and one idempotency record per (merchant,
//! key). These are the rows of its repository ([`crate::repo`]), serialised as JSON by
//! whichever store keeps them.

use serde::{Deserialize, Serialize};

/// A merchant's customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// `cus_...`.
    pub id: String,
    /// The merchant it belongs to.
    pub merchant: String,
    /// The idempotency key it was created under.
    pub key: String,
    /// Contact address.
    pub email: String,
    /// Full name.
    pub name: String,
    /// When it was created, Unix ms.
    pub created_ms: u64,
}

/// Where a payment is: `pending` until the bank answered, then `succeeded` or `failed`,
/// never back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Claimed; the bank has not answered yet (or its answer was not stored yet).
    Pending,
    /// The bank charged the card: `charge` holds the bank's charge id.
    Succeeded,
    /// The bank refused the charge: `failure_code` says why. No money moved.
    Failed,
}

impl PaymentStatus {
    /// As the API spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
        }
    }
}

/// A payment of a customer, charged at the bank.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// `pay_...`; the bank charge's idempotency key derives from it.
    pub id: String,
    /// The merchant it belongs to.
    pub merchant: String,
    /// The customer paying.
    pub customer: String,
    /// The idempotency key it was created under.
    pub key: String,
    /// Minor units (cents).
    pub amount: u64,
    /// ISO 4217, lower case.
    pub currency: String,
    /// The card token to charge.
    pub source: String,
    /// Free text, shown on the statement.
    pub description: Option<String>,
    /// Where it is.
    pub status: PaymentStatus,
    /// The bank's charge id, once `succeeded`.
    pub charge: Option<String>,
    /// Why the bank refused, once `failed`.
    pub failure_code: Option<String>,
    /// When it was created, Unix ms.
    pub created_ms: u64,
}

/// Who holds an idempotency key while its request runs: a process (by its instance id,
/// new at every start) since a moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The holding process's instance id.
    pub instance: String,
    /// When it took the key, Unix ms (the lease runs from here).
    pub since_ms: u64,
}

/// What became of a key's request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum KeyState {
    /// A payment was claimed under the key and is not finished. `owner` is the request
    /// working on it, or `None` when it gave the key back (the bank was unavailable) so a
    /// retry resumes.
    Pending {
        /// The payment claimed.
        payment: String,
        /// Who holds the key.
        owner: Option<Owner>,
    },
    /// Finished: the response to replay, verbatim.
    Done {
        /// HTTP status.
        status: u16,
        /// Body (JSON).
        body: String,
    },
}

/// The idempotency record of one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// What the record is stored under (see [`crate::idempotency::scope`]).
    pub scope: String,
    /// The merchant that first used the key.
    pub merchant: String,
    /// The key.
    pub key: String,
    /// The request it was first used with ([`crate::idempotency::fingerprint`]).
    pub fingerprint: String,
    /// When it was first used, Unix ms.
    pub created_ms: u64,
    /// What became of it.
    pub state: KeyState,
}
