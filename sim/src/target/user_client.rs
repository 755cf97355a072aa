//! Bring your own client: a user's retrying Rust client, driven by shipsim's workload in
//! place of shipsim's built-in client, sending through a transport that records every
//! attempt on the wire. `client_discipline` then judges the user's client from what it
//! actually sent and waited: keys, retries after permanent refusals, waits against the raw
//! `Retry-After` headers, backoff, budgets.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use shipsim_system::client::{
    AttemptOutcome, AttemptRecord, ClientError, OpReport, RetryAfter, RetryPolicy, Success,
};
use shipsim_system::clock::Clock;
use shipsim_system::seed::Seed;
use shipsim_system::transport::{BoxFuture, HttpRequest, HttpResponse, Transport, TransportError};
use tokio::time::Instant;

use super::api::{Api, ApiError, Caller, Conventions, CreateCall, Kind, ReadCall, Seen};

/// A user's own client of their service.
///
/// One instance per merchant process (built by the factory given to
/// [`crate::Target::client`]). For a logical operation it builds its requests, sends them
/// through the transport in its [`ClientSeams`] (retrying as it sees fit, waiting with
/// `tokio::time`), and returns the final response or why it gave up. shipsim records each
/// attempt as the transport saw it and reads the final response with the target's
/// [`Api::parse`].
pub trait Client: Send + Sync + 'static {
    /// One create of `kind`: every attempt must carry `call.key`.
    fn create<'a>(
        &'a self,
        kind: &'a Kind,
        call: CreateCall<'a>,
    ) -> BoxFuture<'a, Result<HttpResponse, String>>;

    /// One read of `kind`.
    fn read<'a>(
        &'a self,
        kind: &'a Kind,
        call: ReadCall<'a>,
    ) -> BoxFuture<'a, Result<HttpResponse, String>>;
}

/// What a user's client is built from: the simulated network (every send recorded), the
/// service's base URL, the host's clock, a seed for its jitter, who it acts for, and the
/// scenario's `[client]` policy (the limits `client_discipline` judges it by).
#[derive(Clone)]
pub struct ClientSeams {
    /// Sends one request with an absolute URI; record-keeping included.
    pub transport: Arc<dyn Transport>,
    /// `http://service:80`, to put in front of paths.
    pub base_url: String,
    /// The client host's clock of the time of day.
    pub clock: Arc<dyn Clock>,
    /// The seed of the client's own randomness (retry jitter).
    pub seed: Seed,
    /// The merchant it acts for.
    pub caller: Caller,
    /// Timeouts, attempts and backoff bounds from the scenario's `[client]` table.
    pub policy: RetryPolicy,
}

impl std::fmt::Debug for ClientSeams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSeams")
            .field("base_url", &self.base_url)
            .field("caller", &self.caller)
            .finish_non_exhaustive()
    }
}

/// A [`tower::Service`] over a shipsim transport, for clients written against tower.
#[derive(Clone)]
pub struct TransportService(pub Arc<dyn Transport>);

impl tower::Service<HttpRequest> for TransportService {
    type Response = HttpResponse;
    type Error = TransportError;
    type Future = BoxFuture<'static, Result<HttpResponse, TransportError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        let transport = self.0.clone();
        Box::pin(async move { transport.send(request).await })
    }
}

/// Builds a user's client for one merchant process.
pub(crate) type ClientFactory = Arc<dyn Fn(ClientSeams) -> Box<dyn Client> + Send + Sync>;

tokio::task_local! {
    /// The operation whose future is being polled: the recorder files attempts under it.
    static OPERATION: u64;
}

/// The attempts of the operations in flight, by operation.
#[derive(Default)]
struct Ledger {
    next: u64,
    attempts: std::collections::BTreeMap<u64, Vec<AttemptRecord>>,
    started: std::collections::BTreeMap<u64, Instant>,
    last_end: std::collections::BTreeMap<u64, Instant>,
}

/// A transport that records each attempt of the current operation.
pub(crate) struct Recorder {
    inner: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    ledger: Mutex<Ledger>,
}

impl Recorder {
    pub(crate) fn new(inner: Arc<dyn Transport>, clock: Arc<dyn Clock>) -> Arc<Recorder> {
        Arc::new(Recorder {
            inner,
            clock,
            ledger: Mutex::new(Ledger::default()),
        })
    }

    fn begin(&self) -> u64 {
        let mut ledger = self.ledger.lock().expect("recorder lock poisoned");
        ledger.next += 1;
        let id = ledger.next;
        ledger.attempts.insert(id, Vec::new());
        ledger.started.insert(id, Instant::now());
        id
    }

    fn finish(&self, id: u64) -> (Vec<AttemptRecord>, u64) {
        let mut ledger = self.ledger.lock().expect("recorder lock poisoned");
        let started = ledger.started.remove(&id);
        ledger.last_end.remove(&id);
        let elapsed = started.map_or(0, |s| millis(s.elapsed()));
        (ledger.attempts.remove(&id).unwrap_or_default(), elapsed)
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Records one attempt when it ends, or as a timeout when the client drops it first.
struct Attempt {
    recorder: Arc<Recorder>,
    operation: u64,
    index: u32,
    waited_ms: u64,
    sent_at_ms: u64,
    key: Option<String>,
    sent: Instant,
    done: bool,
}

impl Attempt {
    fn end(&mut self, outcome: AttemptOutcome) {
        self.done = true;
        let now = Instant::now();
        let mut ledger = self.recorder.ledger.lock().expect("recorder lock poisoned");
        let ended_at_ms = self.sent_at_ms + millis(now.duration_since(self.sent));
        ledger.last_end.insert(self.operation, now);
        if let Some(attempts) = ledger.attempts.get_mut(&self.operation) {
            attempts.push(AttemptRecord {
                index: self.index,
                waited_ms: self.waited_ms,
                sent_at_ms: self.sent_at_ms,
                ended_at_ms,
                idempotency_key: self.key.take(),
                outcome,
            });
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.done {
            self.end(AttemptOutcome::Timeout);
        }
    }
}

/// The recorder as the transport a user's client sends through.
struct Recording(Arc<Recorder>);

impl Transport for Recording {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        let operation = OPERATION.try_with(|id| *id).ok();
        let recorder = self.0.clone();
        Box::pin(async move {
            let Some(operation) = operation else {
                // Outside an operation (a client's own housekeeping): not an attempt.
                return recorder.inner.send(request).await;
            };
            let now = Instant::now();
            let key = request
                .headers()
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut attempt = {
                let ledger = recorder.ledger.lock().expect("recorder lock poisoned");
                let started = ledger.started.get(&operation).copied().unwrap_or(now);
                let previous_end = ledger.last_end.get(&operation).copied().unwrap_or(started);
                let index = ledger
                    .attempts
                    .get(&operation)
                    .map_or(0, |a| u32::try_from(a.len()).unwrap_or(u32::MAX));
                Attempt {
                    recorder: recorder.clone(),
                    operation,
                    index,
                    waited_ms: millis(now.saturating_duration_since(previous_end)),
                    sent_at_ms: millis(now.saturating_duration_since(started)),
                    key,
                    sent: now,
                    done: false,
                }
            };
            let result = recorder.inner.send(request).await;
            let outcome = match &result {
                Ok(response) => describe(response, &*recorder.clock),
                Err(error) => AttemptOutcome::Transport(error.clone()),
            };
            attempt.end(outcome);
            result
        })
    }
}

/// What an attempt's response says, read from the raw headers and body.
fn describe(response: &HttpResponse, clock: &dyn Clock) -> AttemptOutcome {
    let status = response.status().as_u16();
    let retry_after_ms = response
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(RetryAfter::parse)
        .map(|ra| ra.delay_ms(clock.now_ms()));
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v.as_bytes() == b"true");
    AttemptOutcome::Response {
        status,
        retry_after_ms,
        replayed,
        error_code: (status >= 300)
            .then(|| error_code(response.body()))
            .flatten(),
        advertised: shipsim_system::client::Advertised::of(response.headers()),
    }
}

/// The error code of a JSON error body: `error.code`, `code`, or `error` as a string.
pub(crate) fn error_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value
        .pointer("/error/code")
        .or_else(|| value.get("code"))
        .or_else(|| value.get("error").filter(|e| e.is_string()))
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

/// Drives a user's client for the workload: each operation in its own recording scope.
pub(crate) struct UserClient {
    client: Box<dyn Client>,
    recorder: Arc<Recorder>,
    api: Arc<dyn Api>,
    conventions: Conventions,
    caller: Caller,
}

impl UserClient {
    pub(crate) fn new(
        factory: &ClientFactory,
        api: Arc<dyn Api>,
        seams: ClientSeams,
    ) -> UserClient {
        let recorder = Recorder::new(seams.transport.clone(), seams.clock.clone());
        let caller = seams.caller.clone();
        let client = factory(ClientSeams {
            transport: Arc::new(Recording(recorder.clone())),
            ..seams
        });
        UserClient {
            client,
            recorder,
            conventions: api.conventions(),
            api,
            caller,
        }
    }

    pub(crate) async fn create(
        &self,
        kind: &Kind,
        key: &str,
        placement: super::KeyPlacement,
        parent: Option<&str>,
        body: &str,
    ) -> Result<OpReport<Seen>, ApiError> {
        let operation = self.recorder.begin();
        let call = CreateCall {
            caller: &self.caller,
            key,
            placement,
            parent,
            body,
        };
        let result = OPERATION
            .scope(operation, self.client.create(kind, call))
            .await;
        Ok(self.report(kind, operation, result))
    }

    pub(crate) async fn read(&self, kind: &Kind, id: &str) -> Result<OpReport<Seen>, ApiError> {
        let operation = self.recorder.begin();
        let call = ReadCall {
            caller: &self.caller,
            id,
        };
        let result = OPERATION
            .scope(operation, self.client.read(kind, call))
            .await;
        Ok(self.report(kind, operation, result))
    }

    fn report(
        &self,
        kind: &Kind,
        operation: u64,
        result: Result<HttpResponse, String>,
    ) -> OpReport<Seen> {
        let (attempts, elapsed_ms) = self.recorder.finish(operation);
        let result = match result {
            Err(reason) => Err(ClientError::AttemptsExhausted {
                attempts: u32::try_from(attempts.len()).unwrap_or(u32::MAX),
                last: reason,
            }),
            // A client that gives up on a 5xx or a 429 hands back the last answer: the
            // operation's outcome is as unknown as if it had returned an error.
            Ok(response)
                if response.status().is_server_error() || response.status().as_u16() == 429 =>
            {
                Err(ClientError::AttemptsExhausted {
                    attempts: u32::try_from(attempts.len()).unwrap_or(u32::MAX),
                    last: response.status().as_u16().to_string(),
                })
            }
            Ok(response) if response.status().is_success() => {
                let status = response.status().as_u16();
                let replayed = self
                    .conventions
                    .replayed_header
                    .as_deref()
                    .and_then(|h| response.headers().get(h))
                    .is_some_and(|v| v.as_bytes() == b"true");
                self.api
                    .parse(kind, &response)
                    .map(|value| Success {
                        value,
                        status,
                        replayed,
                    })
                    .map_err(|e| ClientError::Decode {
                        status,
                        message: e.0,
                    })
            }
            Ok(response) => Err(ClientError::Rejected {
                status: response.status().as_u16(),
                body: error_code(response.body()).map(|code| shipsim_system::api::ErrorBody {
                    code,
                    message: String::new(),
                    details: Vec::new(),
                    request_id: String::new(),
                }),
            }),
        };
        OpReport {
            result,
            attempts,
            elapsed_ms,
        }
    }
}
