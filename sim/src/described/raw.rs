//! A target description exactly as written: serde types mirroring the TOML, every table
//! strict (`deny_unknown_fields`), every value validation may complain about kept with its
//! span so the complaint can name the line and column (as `scenario/raw.rs`).

use serde::Deserialize;
use toml::Spanned;

/// A whole description file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDescription {
    pub name: Option<Spanned<String>>,
    pub ready: Option<Spanned<String>>,
    pub auth: Option<Spanned<RawAuth>>,
    pub idempotency: Option<Spanned<RawIdempotency>>,
    #[serde(default)]
    pub kind: Vec<Spanned<RawKind>>,
    #[serde(default)]
    pub downstream: Vec<Spanned<RawDownstream>>,
    pub receiver: Option<Spanned<RawReceiver>>,
}

/// `[auth]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    pub header: Spanned<String>,
    pub value: Option<Spanned<String>>,
    pub secrets_env: Option<Spanned<String>>,
    pub secrets_file: Option<Spanned<String>>,
}

/// `[idempotency]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIdempotency {
    pub replayed_header: Option<Spanned<String>>,
    pub in_flight_status: Option<Spanned<u16>>,
    pub key_reused_status: Option<Spanned<u16>>,
    pub key_reused_code: Option<Spanned<String>>,
}

/// One `[[kind]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKind {
    pub name: Spanned<String>,
    pub create: Spanned<String>,
    pub read: Option<Spanned<String>>,
    pub parent: Option<Spanned<String>>,
    pub spends: Option<Spanned<bool>>,
    pub key_header: Option<Spanned<String>>,
    pub key_field: Option<Spanned<String>>,
    pub key_prefix: Option<Spanned<String>>,
    pub body: Option<Spanned<toml::Table>>,
    pub vary: Option<Spanned<String>>,
    pub response: Spanned<RawResponse>,
    pub states: Option<Spanned<Vec<Spanned<String>>>>,
    pub weights: Option<Spanned<[u32; 2]>>,
}

/// `[kind.response]`: JSON pointers into a success response.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResponse {
    pub id: Spanned<String>,
    pub parent: Option<Spanned<String>>,
    pub state: Option<Spanned<String>>,
    pub downstream_ref: Option<Spanned<String>>,
}

/// One `[[downstream]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDownstream {
    pub spec: Spanned<String>,
    pub url: Option<Spanned<String>>,
}

/// `[receiver]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReceiver {
    pub events: Spanned<String>,
    pub body: Option<Spanned<String>>,
    pub types: Option<Spanned<Vec<Spanned<String>>>>,
    pub signing: Option<Spanned<RawSigning>>,
    pub read_back: Option<Spanned<RawReadBack>>,
}

/// `[receiver.signing]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSigning {
    pub scheme: Spanned<String>,
    pub header: Option<Spanned<String>>,
    pub secret_env: Option<Spanned<String>>,
    pub secret_file: Option<Spanned<String>>,
}

/// `[receiver.read_back]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReadBack {
    pub request: Spanned<String>,
    pub sequence: Spanned<String>,
    pub applied: Spanned<String>,
}
