//! The merchant's client of any target: shipsim's retrying client ([`Retrier`]: per-attempt
//! timeout, deadline, full-jitter backoff, `Retry-After`, retry budget, breaker) sending
//! the requests the target's [`Api`] builds, and reading back what its responses say.

use std::sync::{Arc, Mutex};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use shipsim_system::bugs::{Bug, BugSet};
use shipsim_system::client::{ClientError, KeyPlacement, OpReport, Retrier, RetryPolicy, Success};
use shipsim_system::clock::Clock;
use shipsim_system::seed::Seed;
use shipsim_system::transport::{HttpRequest, HttpResponse, Transport};

use super::api::{Api, ApiError, Caller, Conventions, CreateCall, Kind, ReadCall, Seen};

/// One merchant process's client of the target.
pub(crate) struct ApiClient {
    retrier: Retrier,
    api: Arc<dyn Api>,
    conventions: Conventions,
    caller: Caller,
    base_url: String,
    bugs: BugSet,
    /// Only used by the planted bug that invents a key per attempt.
    key_rng: Mutex<ChaCha8Rng>,
    /// The client's clock, read to pick the key of an operation during a rotation.
    clock: Arc<dyn Clock>,
    /// A `[credentials]` rotation: from this unix ms by the client's clock, operations
    /// start with the caller's new key.
    rotation: Option<(u64, Caller)>,
}

impl ApiClient {
    /// A client of `caller` sending through `transport` to `base_url` (`http://service:80`),
    /// drawing its jitter from `seed`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        api: Arc<dyn Api>,
        transport: Arc<dyn Transport>,
        clock: Arc<dyn Clock>,
        seed: Seed,
        base_url: String,
        caller: Caller,
        policy: RetryPolicy,
        bugs: BugSet,
    ) -> ApiClient {
        ApiClient {
            retrier: Retrier::new(
                transport,
                clock.clone(),
                seed.derive("retry"),
                policy,
                bugs.clone(),
            ),
            clock,
            rotation: None,
            key_rng: Mutex::new(seed.derive("keys").rng()),
            conventions: api.conventions(),
            api,
            caller,
            base_url,
            bugs,
        }
    }

    /// The client with the scenario's key rotation, if it has one: operations started from
    /// the rotation time (by the client's clock) use the caller's new key for every attempt;
    /// earlier ones keep the old key, retries included.
    pub(crate) fn rotating(
        mut self,
        credentials: Option<crate::scenario::CredentialSettings>,
    ) -> ApiClient {
        self.rotation = credentials.map(|c| {
            let rotated = Caller {
                api_key: crate::scenario::CredentialSettings::rotated_key(&self.caller.api_key),
                ..self.caller.clone()
            };
            (
                crate::run::clock::EPOCH_UNIX_MS + c.rotate_keys_at_ms,
                rotated,
            )
        });
        self
    }

    /// The caller, with the key an operation starting now uses.
    fn caller_now(&self) -> &Caller {
        match &self.rotation {
            Some((at_ms, rotated)) if self.clock.now_ms() >= *at_ms => rotated,
            _ => &self.caller,
        }
    }

    /// Creates a resource of `kind` under `key`.
    ///
    /// # Errors
    /// An [`ApiError`] when the adapter cannot build the request; nothing was sent.
    pub(crate) async fn create(
        &self,
        kind: &Kind,
        key: &str,
        placement: KeyPlacement,
        parent: Option<&str>,
        body: &str,
    ) -> Result<OpReport<Seen>, ApiError> {
        let caller = self.caller_now();
        let build = |attempt_key: &str| {
            self.api
                .create(
                    kind,
                    &CreateCall {
                        caller,
                        key: attempt_key,
                        placement,
                        parent,
                        body,
                    },
                )
                .and_then(|request| self.absolute(request))
        };
        let first = build(key)?;
        let report = self
            .retrier
            .call(|attempt| {
                if attempt == 0 {
                    return first.clone();
                }
                // Only the planted new-key-per-attempt bug changes a retry's request; an
                // adapter that builds the first but not a later one gets the first again.
                let attempt_key = self.key_for_attempt(key, attempt);
                build(&attempt_key).unwrap_or_else(|_| first.clone())
            })
            .await;
        Ok(self.decode(kind, report))
    }

    /// Reads the resource of `kind` with id `id`.
    ///
    /// # Errors
    /// An [`ApiError`] when the adapter cannot build the request; nothing was sent.
    pub(crate) async fn read(&self, kind: &Kind, id: &str) -> Result<OpReport<Seen>, ApiError> {
        let request = self
            .api
            .read(
                kind,
                &ReadCall {
                    caller: self.caller_now(),
                    id,
                },
            )
            .and_then(|request| self.absolute(request))?;
        let report = self.retrier.call(|_attempt| request.clone()).await;
        Ok(self.decode(kind, report))
    }

    /// Points a path-only request at the target's host.
    fn absolute(&self, request: HttpRequest) -> Result<HttpRequest, ApiError> {
        let (mut parts, body) = request.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str);
        parts.uri = format!("{}{path}", self.base_url)
            .parse()
            .map_err(|e| ApiError::new(format!("request path `{path}`: {e}")))?;
        Ok(http::Request::from_parts(parts, body))
    }

    fn key_for_attempt(&self, key: &str, attempt: u32) -> String {
        if self.bugs.has(Bug::ClientNewKeyPerAttempt) && attempt > 0 {
            let mut rng = self.key_rng.lock().expect("key rng lock poisoned");
            let suffix: u32 = rng.random();
            format!("{key}-retry{attempt}-{suffix:08x}")
        } else {
            key.to_string()
        }
    }

    fn decode(&self, kind: &Kind, report: shipsim_system::client::CallReport) -> OpReport<Seen> {
        let result = report.result.and_then(|response| {
            let status = response.status().as_u16();
            let replayed = self.replayed(&response);
            self.api
                .parse(kind, &response)
                .map(|value| Success {
                    value,
                    status,
                    replayed,
                })
                .map_err(|error| ClientError::Decode {
                    status,
                    message: error.0,
                })
        });
        OpReport {
            result,
            attempts: report.attempts,
            elapsed_ms: report.elapsed_ms,
        }
    }

    fn replayed(&self, response: &HttpResponse) -> bool {
        self.conventions
            .replayed_header
            .as_deref()
            .and_then(|name| response.headers().get(name))
            .is_some_and(|v| v.as_bytes() == b"true")
    }
}

/// The client a merchant process drives the workload with: shipsim's own, or the user's.
/// One per client host, never moved after it is built: the variants' size difference does
/// not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum OpClient {
    /// shipsim's retrying client.
    Builtin(ApiClient),
    /// The user's client, every attempt recorded on the wire.
    User(super::user_client::UserClient),
}

impl OpClient {
    /// Creates a resource of `kind` under `key`.
    pub(crate) async fn create(
        &self,
        kind: &Kind,
        key: &str,
        placement: KeyPlacement,
        parent: Option<&str>,
        body: &str,
    ) -> Result<OpReport<Seen>, ApiError> {
        match self {
            OpClient::Builtin(client) => client.create(kind, key, placement, parent, body).await,
            OpClient::User(client) => client.create(kind, key, placement, parent, body).await,
        }
    }

    /// Reads the resource of `kind` with id `id`.
    pub(crate) async fn read(&self, kind: &Kind, id: &str) -> Result<OpReport<Seen>, ApiError> {
        match self {
            OpClient::Builtin(client) => client.read(kind, id).await,
            OpClient::User(client) => client.read(kind, id).await,
        }
    }
}
