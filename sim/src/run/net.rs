//! turmoil network glue: the client side ([`SimTransport`], a small keep-alive pool of hyper
//! HTTP/1 connections over turmoil TCP streams) and the server side ([`serve`], a hyper
//! accept loop with the real-clock `Date` header switched off).
//!
//! Both are written against hyper's low-level `conn` API rather than axum::serve or
//! hyper-util's pooled client: every connection, reuse and close is then ours to see, and
//! nothing reads the wall clock (DESIGN.md, "Facts found while prototyping").

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::{TokioIo, TokioTimer};
use shipsim_system::transport::{
    BoxFuture, HttpRequest, HttpResponse, RESPONSE_BYTES_MAX, Transport, TransportError,
};

/// Idle connections kept per transport. A merchant process rarely has more than a few
/// requests in flight; more idle sockets than that would only model a leak.
const IDLE_CONNECTIONS_MAX: usize = 8;

/// How long the server waits for a request's headers before closing an idle keep-alive
/// connection (simulated time). Keeps crashed or partitioned clients from pinning tasks
/// for the whole run.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP transport to one simulated host, with connection reuse.
#[derive(Debug)]
pub struct SimTransport {
    host: String,
    port: u16,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    /// Connections opened so far.
    opened: std::sync::atomic::AtomicU64,
}

impl SimTransport {
    /// A transport to `host:port` (a turmoil host name).
    #[must_use]
    pub fn new(host: &str, port: u16) -> Self {
        SimTransport {
            host: host.to_string(),
            port,
            idle: Mutex::new(Vec::new()),
            opened: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Connections this transport has opened.
    #[must_use]
    pub fn connections_opened(&self) -> u64 {
        self.opened.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().expect("pool lock poisoned");
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    fn put_idle(&self, sender: SendRequest<Full<Bytes>>) {
        let mut idle = self.idle.lock().expect("pool lock poisoned");
        if idle.len() < IDLE_CONNECTIONS_MAX && !sender.is_closed() {
            idle.push(sender);
        }
    }

    /// Drops every pooled connection (a client process restart, or a reconnect storm).
    pub fn drop_idle(&self) {
        self.idle.lock().expect("pool lock poisoned").clear();
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, TransportError> {
        self.opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stream = turmoil::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| TransportError::Connect(e.to_string()))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| TransportError::Connect(e.to_string()))?;
        // `tokio::spawn`, not `spawn_local`: callers may themselves run in tasks spawned on
        // the runtime (the service's detached shipment worker), outside the host's LocalSet.
        tokio::spawn(async move {
            // The connection ends when either side closes it; its error, if any, has already
            // reached the request that was using it.
            let _ = connection.await;
        });
        Ok(sender)
    }

    async fn send_on(
        &self,
        mut sender: SendRequest<Full<Bytes>>,
        request: HttpRequest,
    ) -> Result<(HttpResponse, SendRequest<Full<Bytes>>), TransportError> {
        sender
            .ready()
            .await
            .map_err(|e| TransportError::Connect(format!("pooled connection unusable: {e}")))?;
        let (mut parts, body) = request.into_parts();
        // HTTP/1 origin form: path and query on the request line, authority in Host.
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .parse()
            .map_err(|e| TransportError::Protocol(format!("bad request path: {e}")))?;
        parts.uri = path;
        parts.headers.insert(
            http::header::HOST,
            http::HeaderValue::from_str(&self.host)
                .map_err(|e| TransportError::Protocol(e.to_string()))?,
        );
        let response = sender
            .send_request(http::Request::from_parts(parts, Full::new(body)))
            .await
            .map_err(|e| TransportError::Io(e.to_string()))?;
        let (parts, body) = response.into_parts();
        let bytes = Limited::new(body, RESPONSE_BYTES_MAX)
            .collect()
            .await
            .map_err(|e| TransportError::Io(format!("response body: {e}")))?
            .to_bytes();
        Ok((http::Response::from_parts(parts, bytes), sender))
    }
}

impl Transport for SimTransport {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            let sender = match self.take_idle() {
                Some(sender) => sender,
                None => self.connect().await?,
            };
            let (response, sender) = self.send_on(sender, request).await?;
            self.put_idle(sender);
            Ok(response)
        })
    }
}

/// The peer of a server-side connection, put into every request's extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

/// Serves `handle` on `0.0.0.0:port` of the current simulated host until the host dies.
///
/// `handle` sees each request with its [`Peer`]; returning `Err` drops the connection
/// without a response (how HTTP faults lose a response after the work is done).
///
/// # Errors
/// When the port cannot be bound or accepting fails.
pub async fn serve<H, F>(port: u16, handle: H) -> turmoil::Result
where
    H: Fn(http::Request<Incoming>) -> F + Clone + 'static,
    F: Future<Output = Result<http::Response<axum::body::Body>, ConnectionDropped>> + 'static,
{
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", port)).await?;
    loop {
        let (stream, peer) = listener.accept().await?;
        let handle = handle.clone();
        tokio::task::spawn_local(async move {
            let service =
                hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
                    request.extensions_mut().insert(Peer(peer));
                    handle(request)
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .auto_date_header(false)
                .keep_alive(true)
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

pub use crate::fault::http_rules::ConnectionDropped;

/// A boxed future that need not be `Send` (everything in a simulated host runs on one
/// thread).
pub type BoxFutureLocal<T> = std::pin::Pin<Box<dyn Future<Output = T>>>;
