//! The conversions between records and SQLite columns that every table of the file shares,
//! the service's and the carrier's: errors, integers, JSON text, and a [`Delivery`] as
//! the columns that store it.

use rusqlite::types::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::{Delivery, StoreError};

/// A SQLite error as the store reports it.
pub(crate) fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// A stored value that does not read back as what was written.
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

/// An integer column to `u64`; SQLite stores signed 64-bit integers.
pub(crate) fn to_u64(what: &str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|e| corrupt(what, e))
}

/// A `u64` for an integer column. Values past `i64::MAX` (300 million years of ms) are a
/// bug upstream, not something to store.
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).expect("stored integers fit in i64")
}

/// A unit enum (`"label_purchased"`) or a nested value as the JSON text stored in a column.
pub(crate) fn to_json(value: &impl Serialize) -> String {
    let json = serde_json::to_value(value).expect("API types serialise");
    match json {
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    }
}

/// Reads back what [`to_json`] wrote: bare text for unit enums, JSON for the rest.
pub(crate) fn from_json<T: DeserializeOwned>(
    what: &str,
    text: &str,
    bare: bool,
) -> Result<T, StoreError> {
    let parsed = if bare {
        serde_json::from_value(serde_json::Value::String(text.to_string()))
    } else {
        serde_json::from_str(text)
    };
    parsed.map_err(|e| corrupt(what, e))
}

/// A [`Delivery`] as the columns that store it (`outbox` and `tracking` tables): the state's
/// name, the attempt count every state has, and the one field particular to the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DeliveryColumns {
    /// `pending`, `delivered` or `dead_letter`.
    pub state: String,
    /// Attempts so far.
    pub attempts: u32,
    /// Set for `pending`.
    pub next_attempt_at_ms: Option<u64>,
    /// Set for `delivered`.
    pub delivered_at_ms: Option<u64>,
    /// Set for `dead_letter`.
    pub last_error: Option<String>,
}

impl From<&Delivery> for DeliveryColumns {
    fn from(delivery: &Delivery) -> Self {
        let (state, attempts, next, delivered, error) = match delivery {
            Delivery::Pending {
                attempts,
                next_attempt_at_ms,
            } => ("pending", *attempts, Some(*next_attempt_at_ms), None, None),
            Delivery::Delivered {
                attempts,
                delivered_at_ms,
            } => ("delivered", *attempts, None, Some(*delivered_at_ms), None),
            Delivery::DeadLetter {
                attempts,
                last_error,
            } => (
                "dead_letter",
                *attempts,
                None,
                None,
                Some(last_error.clone()),
            ),
        };
        DeliveryColumns {
            state: state.to_string(),
            attempts,
            next_attempt_at_ms: next,
            delivered_at_ms: delivered,
            last_error: error,
        }
    }
}

impl DeliveryColumns {
    /// The names of the columns, in the order of [`DeliveryColumns::values`].
    pub(crate) const NAMES: &str =
        "delivery_state, attempts, next_attempt_at_ms, delivered_at_ms, last_error";

    /// The columns as values to bind, in the order of [`DeliveryColumns::NAMES`].
    pub(crate) fn values(self) -> [Value; 5] {
        [
            self.state.into(),
            i64::from(self.attempts).into(),
            self.next_attempt_at_ms.map(to_i64).into(),
            self.delivered_at_ms.map(to_i64).into(),
            self.last_error.into(),
        ]
    }

    /// The columns as SQLite returns them (integers are signed there).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a number does not fit its field.
    pub(crate) fn from_row(
        state: String,
        attempts: i64,
        next_attempt_at_ms: Option<i64>,
        delivered_at_ms: Option<i64>,
        last_error: Option<String>,
    ) -> Result<Self, StoreError> {
        let ms = |what: &str, value: Option<i64>| value.map(|v| to_u64(what, v)).transpose();
        Ok(DeliveryColumns {
            state,
            attempts: u32::try_from(attempts).map_err(|e| corrupt("attempts", e))?,
            next_attempt_at_ms: ms("next_attempt_at_ms", next_attempt_at_ms)?,
            delivered_at_ms: ms("delivered_at_ms", delivered_at_ms)?,
            last_error,
        })
    }

    /// The [`Delivery`] these columns hold.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the state is unknown or its field is missing.
    pub(crate) fn into_delivery(self) -> Result<Delivery, StoreError> {
        let missing = |field: &str| corrupt("delivery", format!("{} without {field}", self.state));
        Ok(match self.state.as_str() {
            "pending" => Delivery::Pending {
                attempts: self.attempts,
                next_attempt_at_ms: self
                    .next_attempt_at_ms
                    .ok_or_else(|| missing("next_attempt_at_ms"))?,
            },
            "delivered" => Delivery::Delivered {
                attempts: self.attempts,
                delivered_at_ms: self
                    .delivered_at_ms
                    .ok_or_else(|| missing("delivered_at_ms"))?,
            },
            "dead_letter" => Delivery::DeadLetter {
                attempts: self.attempts,
                last_error: self
                    .last_error
                    .clone()
                    .ok_or_else(|| missing("last_error"))?,
            },
            other => return Err(corrupt("delivery state", other)),
        })
    }
}
