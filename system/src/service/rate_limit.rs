//! Per-caller token-bucket rate limiting with `Retry-After` and `X-RateLimit-*` headers
//! (seed 000, "Rate Limiting & Throttling"; seed 004, C.8).

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Service;
use super::error::ApiError;
use crate::api::{HEADER_RATE_LIMIT, HEADER_RATE_REMAINING, HEADER_RATE_RESET};
use crate::observe::SystemEvent;

/// A caller's allowance: `burst` requests at once, refilled at `per_second`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Bucket size: requests admitted back to back.
    pub burst: u32,
    /// Tokens added per second.
    pub per_second: u32,
}

/// The buckets of every caller seen so far.
#[derive(Debug, Default)]
pub(crate) struct Buckets {
    by_caller: Mutex<BTreeMap<String, Bucket>>,
}

/// Milli-tokens, so that refill needs no floating point.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    milli_tokens: u64,
    refilled_at_ms: u64,
}

/// The verdict for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Admission {
    pub admitted: bool,
    pub remaining: u64,
    /// Milliseconds until the next token.
    pub wait_ms: u64,
}

impl Buckets {
    /// Takes a token for `caller` at `now_ms` if one is there.
    pub(crate) fn admit(&self, limit: RateLimit, caller: &str, now_ms: u64) -> Admission {
        let capacity = u64::from(limit.burst) * 1_000;
        let mut buckets = self.by_caller.lock().expect("rate limit lock poisoned");
        let bucket = buckets.entry(caller.to_string()).or_insert(Bucket {
            milli_tokens: capacity,
            refilled_at_ms: now_ms,
        });
        // A clock that steps backwards (skew faults) refills nothing rather than underflowing.
        let elapsed_ms = now_ms.saturating_sub(bucket.refilled_at_ms);
        bucket.milli_tokens = bucket
            .milli_tokens
            .saturating_add(elapsed_ms.saturating_mul(u64::from(limit.per_second)))
            .min(capacity);
        bucket.refilled_at_ms = bucket.refilled_at_ms.max(now_ms);
        if bucket.milli_tokens >= 1_000 {
            bucket.milli_tokens -= 1_000;
            return Admission {
                admitted: true,
                remaining: bucket.milli_tokens / 1_000,
                wait_ms: 0,
            };
        }
        let missing = 1_000 - bucket.milli_tokens;
        let per_ms = u64::from(limit.per_second).max(1);
        Admission {
            admitted: false,
            remaining: 0,
            wait_ms: missing.div_ceil(per_ms),
        }
    }
}

/// Sheds requests over `caller`'s limit with 429, and tells every caller where it stands
/// in the `X-RateLimit-*` headers. Called by the merchant middleware
/// ([`super::context::authenticate`]) once it knows the caller: one layer, not two.
pub(crate) async fn limit(
    service: &Service,
    caller: &str,
    request: Request,
    next: Next,
) -> Response {
    let Some(limit) = service.config.rate_limit else {
        return next.run(request).await;
    };
    let now_ms = service.clock.now_ms();
    let admission = service.buckets.admit(limit, caller, now_ms);
    let mut response = if admission.admitted {
        next.run(request).await
    } else {
        service.observer.record(SystemEvent::RateLimited {
            caller: caller.to_string(),
        });
        // Retry-After is whole seconds: round up so an obedient client is admitted.
        ApiError::rate_limited(admission.wait_ms.div_ceil(1_000).max(1)).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(HEADER_RATE_LIMIT, HeaderValue::from(limit.burst));
    headers.insert(
        HEADER_RATE_REMAINING,
        HeaderValue::from(admission.remaining),
    );
    headers.insert(
        HEADER_RATE_RESET,
        HeaderValue::from((now_ms + admission.wait_ms).div_ceil(1_000)),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_admits_burst_then_refills() {
        // Proves the bucket admits exactly `burst` back-to-back requests, then refuses with
        // the wait until the next token, then admits again once that time has passed.
        let buckets = Buckets::default();
        let limit = RateLimit {
            burst: 3,
            per_second: 2,
        };
        for expected_remaining in [2, 1, 0] {
            let admission = buckets.admit(limit, "m", 1_000);
            assert!(admission.admitted);
            assert_eq!(admission.remaining, expected_remaining);
        }
        let refused = buckets.admit(limit, "m", 1_000);
        assert!(!refused.admitted);
        assert_eq!(refused.wait_ms, 500);
        assert!(!buckets.admit(limit, "m", 1_499).admitted);
        assert!(buckets.admit(limit, "m", 1_500).admitted);
        assert!(
            buckets.admit(limit, "other", 1_500).admitted,
            "buckets are per caller"
        );
    }

    #[test]
    fn clock_stepping_back_refills_nothing() {
        // Proves a backwards clock step neither panics nor grants tokens.
        let buckets = Buckets::default();
        let limit = RateLimit {
            burst: 1,
            per_second: 1,
        };
        assert!(buckets.admit(limit, "m", 10_000).admitted);
        assert!(!buckets.admit(limit, "m", 5_000).admitted);
    }
}
