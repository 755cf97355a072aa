//! The network seam: how the client and the service reach another host over HTTP.
//!
//! A [`Transport`] sends one buffered request and returns one buffered response. The
//! simulation implements it over turmoil's TCP streams with hyper; live mode implements it
//! with reqwest over real sockets ([`ReqwestTransport`]). Timeouts are not the transport's business: callers wrap
//! `send` in `tokio::time::timeout`, so the same policy code runs on both.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

mod reqwest;

pub use self::reqwest::ReqwestTransport;

/// A boxed, `Send` future, the return type of object-safe async seams.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A request with its whole body in memory. The URI is absolute (`http://service/v1/orders`).
pub type HttpRequest = http::Request<Bytes>;

/// A response with its whole body in memory.
pub type HttpResponse = http::Response<Bytes>;

/// The largest response body a transport will buffer (1 MiB). Our APIs answer with a few
/// hundred bytes; anything near this size is a bug or an attack, and is refused.
pub const RESPONSE_BYTES_MAX: usize = 1 << 20;

/// Why a request produced no response.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No connection could be made: refused, unreachable, host down.
    /// The request certainly did not reach the server.
    #[error("connect failed: {0}")]
    Connect(String),
    /// The connection failed after the request may have been written: reset, closed before
    /// the response, or the response body broke off. The server may have acted on it.
    #[error("connection failed after send: {0}")]
    Io(String),
    /// The response was malformed or larger than [`RESPONSE_BYTES_MAX`].
    #[error("bad response: {0}")]
    Protocol(String),
}

impl TransportError {
    /// Whether the server may have received and acted on the request.
    #[must_use]
    pub fn may_have_reached_server(&self) -> bool {
        !matches!(self, TransportError::Connect(_))
    }
}

/// Sends HTTP requests to another host.
pub trait Transport: Send + Sync + 'static {
    /// Sends `request` and waits for the whole response.
    ///
    /// # Errors
    /// A [`TransportError`] when no complete response arrived.
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>>;
}
