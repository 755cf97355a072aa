//! The merchant's resilient client, and the retry machinery the service reuses to call the
//! carrier.
//!
//! Behaviour, as seed 004 and 001 ask: a per-attempt timeout and an overall deadline; retries
//! only on network errors, timeouts, 5xx and 429; exponential backoff with full jitter from a
//! seeded generator; `Retry-After` honoured (seconds or date); other 4xx never retried; the
//! same idempotency key on every attempt of one logical operation; typed errors; and,
//! when configured, a token bucket of its own that every attempt waits for (adaptive to the
//! server's `X-RateLimit-*` headers).

mod error;
mod guard;
mod limiter;
mod policy;
mod retrier;
mod retry_after;
mod ship_client;

pub use error::{Advertised, AttemptOutcome, AttemptRecord, ClientError};
pub use guard::{Admit, Breaker, BreakerState, BudgetState, RetryBudget};
pub use limiter::{ClientRateLimit, LimiterState};
pub use policy::{
    BACKOFF_MS_CEILING, RetryPolicy, StatusClass, backoff_cap_ms, backoff_ms, classify_status,
    wait_ms,
};
pub use retrier::{CallReport, Retrier};
pub use retry_after::{RETRY_AFTER_MS_MAX, RetryAfter, http_date};
pub use ship_client::{KeyPlacement, OpReport, ShipClient, ShipClientConfig, Success};
