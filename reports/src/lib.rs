//! The report model of a shipsim run and its renderers.
//!
//! `sim` converts what it measured into [`model::Report`]; this crate turns that into the
//! files people and CI read. It is the only crate that knows JSON, HTML, JUnit and Markdown,
//! and it knows nothing of tokio, axum or turmoil.

#![warn(missing_docs)]

pub mod histogram;
pub mod json;
pub mod judge;
pub mod model;
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
