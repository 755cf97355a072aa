//! [`ReqwestTransport`]: the [`Transport`] of live mode, reqwest over real sockets (rustls
//! for `https`, never the platform's TLS).

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::{BoxFuture, HttpRequest, HttpResponse, RESPONSE_BYTES_MAX, Transport, TransportError};

/// How long an idle pooled connection is kept (30 s): as long as the simulated server keeps
/// idle keep-alive connections, so both modes reuse connections alike.
const POOL_IDLE_MS: u64 = 30_000;

/// How long connecting may take before the attempt fails as a connect error. Attempt
/// deadlines are the caller's (the retrier wraps `send` in a timeout); this only makes an
/// unroutable address fail as "never reached the server" rather than as a timeout.
const CONNECT_TIMEOUT_MS: u64 = 2_000;

/// Sends requests with a pooled reqwest client.
#[derive(Clone, Debug)]
pub struct ReqwestTransport {
    client: ::reqwest::Client,
}

impl ReqwestTransport {
    /// A transport with its own connection pool. Proxy environment variables are ignored:
    /// live mode puts its own fault proxy where it wants one.
    ///
    /// # Errors
    /// [`TransportError::Protocol`] when the TLS backend cannot be set up.
    pub fn new() -> Result<Self, TransportError> {
        let client = ::reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_millis(POOL_IDLE_MS))
            .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
            .build()
            .map_err(|e| TransportError::Protocol(format!("cannot build the HTTP client: {e}")))?;
        Ok(ReqwestTransport { client })
    }

    /// The transport's client, for callers that need raw requests (the fault proxy).
    #[must_use]
    pub fn client(&self) -> &::reqwest::Client {
        &self.client
    }
}

/// Classifies a reqwest error by whether the server may have seen the request.
fn classify(error: &::reqwest::Error) -> TransportError {
    if error.is_connect() {
        TransportError::Connect(error.to_string())
    } else if error.is_builder() {
        TransportError::Protocol(error.to_string())
    } else {
        TransportError::Io(error.to_string())
    }
}

impl Transport for ReqwestTransport {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            let request = ::reqwest::Request::try_from(request)
                .map_err(|e| TransportError::Protocol(format!("bad request: {e}")))?;
            let mut response = self
                .client
                .execute(request)
                .await
                .map_err(|e| classify(&e))?;
            let mut builder = http::Response::builder()
                .status(response.status())
                .version(response.version());
            if let Some(headers) = builder.headers_mut() {
                *headers = std::mem::take(response.headers_mut());
            }
            let mut body = BytesMut::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| TransportError::Io(format!("response body: {e}")))?
            {
                if body.len() + chunk.len() > RESPONSE_BYTES_MAX {
                    return Err(TransportError::Protocol(format!(
                        "response body over {RESPONSE_BYTES_MAX} bytes"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            builder
                .body(Bytes::from(body))
                .map_err(|e| TransportError::Protocol(e.to_string()))
        })
    }
}
