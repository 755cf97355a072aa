//! The wire: request bodies (strict: unknown fields are refused) and the JSON views of
//! customers and payments.

use serde::{Deserialize, Serialize};

use crate::model::{Customer, Payment};

/// `POST /v1/customers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    /// Contact address.
    pub email: String,
    /// Full name.
    pub name: String,
}

/// `POST /v1/customers/{id}/payments`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePayment {
    /// Minor units, 1 to [`AMOUNT_MAX`].
    pub amount: u64,
    /// ISO 4217, three lower-case letters.
    pub currency: String,
    /// The card token to charge.
    pub source: String,
    /// Shown on the statement, at most [`DESCRIPTION_LEN_MAX`] characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The largest amount one payment may charge (999,999.99 in a two-decimal currency).
pub const AMOUNT_MAX: u64 = 99_999_999;
/// The longest description.
pub const DESCRIPTION_LEN_MAX: usize = 200;

/// A customer as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerView {
    /// `cus_...`.
    pub id: String,
    /// Always `customer`.
    pub object: String,
    /// Contact address.
    pub email: String,
    /// Full name.
    pub name: String,
    /// Unix seconds.
    pub created: u64,
}

impl From<&Customer> for CustomerView {
    fn from(customer: &Customer) -> Self {
        CustomerView {
            id: customer.id.clone(),
            object: "customer".into(),
            email: customer.email.clone(),
            name: customer.name.clone(),
            created: customer.created_ms / 1000,
        }
    }
}

/// A payment as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentView {
    /// `pay_...`.
    pub id: String,
    /// Always `payment`.
    pub object: String,
    /// The customer paying.
    pub customer: String,
    /// Minor units.
    pub amount: u64,
    /// ISO 4217.
    pub currency: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    /// The bank's charge id, once succeeded.
    pub charge: Option<String>,
    /// Why the bank refused, once failed.
    pub failure_code: Option<String>,
    /// Unix seconds.
    pub created: u64,
}

impl From<&Payment> for PaymentView {
    fn from(payment: &Payment) -> Self {
        PaymentView {
            id: payment.id.clone(),
            object: "payment".into(),
            customer: payment.customer.clone(),
            amount: payment.amount,
            currency: payment.currency.clone(),
            status: payment.status.as_str().into(),
            charge: payment.charge.clone(),
            failure_code: payment.failure_code.clone(),
            created: payment.created_ms / 1000,
        }
    }
}
