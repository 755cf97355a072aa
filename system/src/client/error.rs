//! The client's typed errors and its record of each attempt.

use crate::api::ErrorBody;
use crate::transport::TransportError;

/// What one attempt ended with.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    /// A complete response arrived.
    Response {
        /// HTTP status.
        status: u16,
        /// The wait the server asked for, in ms by the client's clock, if it sent
        /// `Retry-After`.
        retry_after_ms: Option<u64>,
        /// Whether the server marked it as a replayed idempotent outcome.
        replayed: bool,
        /// The error code of the envelope, for non-2xx responses.
        error_code: Option<String>,
        /// The allowance the server advertised, as the raw header values it sent.
        advertised: Advertised,
    },
    /// No response within the attempt's timeout.
    Timeout,
    /// The transport failed.
    Transport(TransportError),
}

impl AttemptOutcome {
    /// Whether the server may have acted on this attempt without the client learning the
    /// result: a timeout, a failure after the request went out, a 5xx (which a proxy or a
    /// crash between commit and response can produce after the work was done), or a 409
    /// (the key's first request is still executing: its outcome is not known yet).
    #[must_use]
    pub fn is_ambiguous(&self) -> bool {
        match self {
            AttemptOutcome::Response { status, .. } => *status >= 500 || *status == 409,
            AttemptOutcome::Timeout => true,
            AttemptOutcome::Transport(error) => error.may_have_reached_server(),
        }
    }

    /// A short label for timelines: `201`, `timeout`, `connect`, `io`.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            AttemptOutcome::Response { status, .. } => status.to_string(),
            AttemptOutcome::Timeout => "timeout".into(),
            AttemptOutcome::Transport(TransportError::Connect(_)) => "connect-error".into(),
            AttemptOutcome::Transport(TransportError::Io(_)) => "io-error".into(),
            AttemptOutcome::Transport(TransportError::Protocol(_)) => "protocol-error".into(),
        }
    }
}

/// What a response said of the caller's allowance: the raw values of `X-RateLimit-Remaining`,
/// `X-RateLimit-Reset` and `Retry-After` as they came off the wire (`None` when absent or
/// not text), so an oracle judges the client against what the server actually sent, not
/// against the client's reading of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Advertised {
    /// `X-RateLimit-Remaining`: requests left in the caller's current allowance.
    pub remaining: Option<String>,
    /// `X-RateLimit-Reset`: unix seconds at which the allowance is next replenished.
    pub reset: Option<String>,
    /// `Retry-After`, seconds or an HTTP date.
    pub retry_after: Option<String>,
}

impl Advertised {
    /// The values of a response's headers.
    #[must_use]
    pub fn of(headers: &http::HeaderMap) -> Self {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Advertised {
            remaining: text(crate::api::HEADER_RATE_REMAINING),
            reset: text(crate::api::HEADER_RATE_RESET),
            retry_after: text(http::header::RETRY_AFTER.as_str()),
        }
    }

    /// The unix second at which a spent allowance is replenished: `Some` only when the
    /// response said `X-RateLimit-Remaining: 0` with a numeric `X-RateLimit-Reset`.
    #[must_use]
    pub fn spent_until_unix_s(&self) -> Option<u64> {
        let number = |v: &Option<String>| v.as_deref().and_then(|v| v.trim().parse::<u64>().ok());
        (number(&self.remaining) == Some(0))
            .then(|| number(&self.reset))
            .flatten()
    }
}

/// One HTTP request of an operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AttemptRecord {
    /// 0 for the first attempt.
    pub index: u32,
    /// Time waited (backoff or `Retry-After`) before this attempt was sent, in ms.
    pub waited_ms: u64,
    /// When it was sent, ms since the operation started.
    pub sent_at_ms: u64,
    /// When it ended, ms since the operation started.
    pub ended_at_ms: u64,
    /// The idempotency key it carried, for writes.
    pub idempotency_key: Option<String>,
    /// How it ended.
    pub outcome: AttemptOutcome,
}

/// Why an operation did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with a status that retrying cannot change (4xx other than 429).
    #[error("rejected with {status}: {}", body.as_ref().map_or("no error envelope", |b| b.code.as_str()))]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The decoded error envelope, when the body was one.
        body: Option<ErrorBody>,
    },
    /// Every permitted attempt failed transiently.
    #[error("gave up after {attempts} attempts; last: {last}")]
    AttemptsExhausted {
        /// Attempts made.
        attempts: u32,
        /// How the last one ended.
        last: String,
    },
    /// The operation's deadline passed, or the next wait would pass it.
    #[error("deadline exceeded after {attempts} attempts; last: {last}")]
    DeadlineExceeded {
        /// Attempts made.
        attempts: u32,
        /// How the last one ended.
        last: String,
    },
    /// The circuit breaker was open: no attempt was sent (or no further attempt).
    #[error("circuit open after {attempts} attempts; last: {last}")]
    CircuitOpen {
        /// Attempts made before the breaker refused.
        attempts: u32,
        /// How the last one ended (`none` if no attempt was sent).
        last: String,
    },
    /// The retry budget was spent: the client stopped retrying to avoid a storm.
    #[error("retry budget exhausted after {attempts} attempts; last: {last}")]
    RetryBudgetExhausted {
        /// Attempts made.
        attempts: u32,
        /// How the last one ended.
        last: String,
    },
    /// A 2xx response whose body was not what the API promises.
    #[error("undecodable {status} response: {message}")]
    Decode {
        /// HTTP status.
        status: u16,
        /// The decoder's complaint.
        message: String,
    },
}
