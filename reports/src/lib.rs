//! The report model of a shipsim run and its renderers.
//!
//! `sim` converts what it measured into [`model::Report`]; this crate turns that into the
//! files people and CI read: `summary.json` ([`json`]), `index.html` ([`html`]),
//! `junit.xml` ([`junit`]), `summary.md` ([`markdown`]), one HdrHistogram interval log per
//! endpoint ([`hlog`]) and the terminal table ([`text`]). A webhook receiver's run
//! ([`model::ReceiverReport`]) and a live run ([`model::LiveReport`]) have models and
//! renderers of their own in the same files. It also merges the reports of
//! shards ([`merge`]) and compares a report with a baseline ([`compare`]). It is the only
//! crate that knows JSON, HTML, JUnit and Markdown, and it knows nothing of tokio, axum or
//! turmoil.
//!
//! Every renderer is a pure function of the report: equal reports render byte-equal.

#![warn(missing_docs)]

pub mod compare;
pub mod histogram;
pub mod hlog;
pub mod html;
pub mod json;
pub mod judge;
pub mod junit;
pub mod markdown;
pub(crate) mod markup;
pub mod merge;
pub mod model;
pub(crate) mod svg;
pub mod text;

pub use model::Report;

/// A report could not be rendered or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// JSON serialisation or parsing failed.
    #[error("json: {0}")]
    Json(String),
    /// A histogram could not be encoded or decoded.
    #[error("histogram: {0}")]
    Histogram(String),
}
