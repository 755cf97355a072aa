//! The service's seams: everything it takes from the outside world, as small traits of its
//! own. The binary implements them with the operating system (wall clock, OS randomness,
//! reqwest); a test harness implements them with its own simulated pieces. The service
//! itself never names either.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

/// A boxed, `Send` future: the return type of object-safe async seams.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The time of day. Durations and timeouts go through `tokio::time`.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// Where ids come from (`cus_...`, `pay_...`): unique for the life of the data, even across
/// restarts.
pub trait Ids: Send + Sync + 'static {
    /// A new id starting with `prefix` and `_`.
    fn next(&self, prefix: &str) -> String;
}

/// An outbound HTTP client: one buffered request with an absolute URI, one buffered
/// response. Timeouts are the caller's (`tokio::time::timeout`).
pub trait HttpClient: Send + Sync + 'static {
    /// Sends `request` and waits for the whole response.
    ///
    /// # Errors
    /// An [`HttpError`] when no complete response arrived.
    fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> BoxFuture<'_, Result<http::Response<Bytes>, HttpError>>;
}

/// No complete response: the connection failed, before or after the request was sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(pub String);
