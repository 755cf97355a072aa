//! Retry policy: which outcomes are retried, and how long to wait before the next attempt.
//!
//! The functions here are pure (the generator is passed in), so the policy can be tested
//! exhaustively and benchmarked without a network.

use rand::Rng;

use super::guard::{Breaker, RetryBudget};
use super::limiter::ClientRateLimit;

/// Limits and backoff of a retrying caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How long one attempt may take before it is abandoned as a timeout.
    pub timeout_ms_per_attempt: u64,
    /// How long the whole operation may take, all attempts and waits included.
    pub deadline_ms: u64,
    /// Attempts per operation, the first included.
    pub attempt_count_max: u32,
    /// Backoff cap for the first retry; doubles per retry.
    pub backoff_ms_base: u64,
    /// Largest backoff cap.
    pub backoff_ms_max: u64,
    /// Retry budget shared by the client's operations; `None` for none.
    pub budget: Option<RetryBudget>,
    /// Circuit breaker shared by the client's operations; `None` for none.
    pub breaker: Option<Breaker>,
    /// The client's own sending limit, shared by its operations; `None` for none.
    pub rate_limit: Option<ClientRateLimit>,
}

/// Backoff caps above this are clamped: a minute between two attempts is the most any of our
/// callers should ever wait without giving up.
pub const BACKOFF_MS_CEILING: u64 = 60_000;

const _: () = assert!(BACKOFF_MS_CEILING >= 1_000);

impl RetryPolicy {
    /// A policy with the given attempt timeout and deadline and our usual backoff
    /// (100 ms doubling to 2 s, 6 attempts), no budget and no breaker.
    #[must_use]
    pub fn new(timeout_ms_per_attempt: u64, deadline_ms: u64) -> Self {
        RetryPolicy {
            timeout_ms_per_attempt,
            deadline_ms,
            attempt_count_max: 6,
            backoff_ms_base: 100,
            backoff_ms_max: 2_000,
            budget: None,
            breaker: None,
            rate_limit: None,
        }
    }

    /// Checks the policy's own consistency.
    ///
    /// # Errors
    /// A sentence naming the first inconsistent field.
    pub fn validate(&self) -> Result<(), String> {
        if self.timeout_ms_per_attempt == 0 {
            return Err("timeout_ms_per_attempt must be at least 1".into());
        }
        if self.deadline_ms < self.timeout_ms_per_attempt {
            return Err(format!(
                "deadline_ms ({}) must be at least timeout_ms_per_attempt ({})",
                self.deadline_ms, self.timeout_ms_per_attempt
            ));
        }
        if self.attempt_count_max == 0 {
            return Err("attempt_count_max must be at least 1".into());
        }
        if self.backoff_ms_base > self.backoff_ms_max {
            return Err(format!(
                "backoff_ms_base ({}) must not exceed backoff_ms_max ({})",
                self.backoff_ms_base, self.backoff_ms_max
            ));
        }
        if let Some(breaker) = self.breaker
            && (breaker.failures_to_open == 0 || breaker.cooldown_ms == 0)
        {
            return Err("breaker_failures and breaker_cooldown_ms must be at least 1".into());
        }
        if self.backoff_ms_max > BACKOFF_MS_CEILING {
            return Err(format!(
                "backoff_ms_max ({}) must not exceed {BACKOFF_MS_CEILING}",
                self.backoff_ms_max
            ));
        }
        Ok(())
    }
}

/// The cap of the backoff before retry number `retry_index` (0 for the first retry):
/// `min(max, base * 2^retry_index)`.
#[must_use]
pub fn backoff_cap_ms(retry_index: u32, base_ms: u64, max_ms: u64) -> u64 {
    let factor = 1u64.checked_shl(retry_index.min(62)).unwrap_or(u64::MAX);
    base_ms.saturating_mul(factor).min(max_ms)
}

/// "Full jitter" backoff (AWS Architecture Blog, 2015): uniform in `[0, cap]`, which spreads
/// a crowd of retrying clients evenly instead of bunching them at the cap.
pub fn backoff_ms(retry_index: u32, base_ms: u64, max_ms: u64, rng: &mut impl Rng) -> u64 {
    let cap = backoff_cap_ms(retry_index, base_ms, max_ms);
    rng.random_range(0..=cap)
}

/// What a response status means for retrying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusClass {
    /// 2xx: done.
    Success,
    /// 429 or 5xx: transient, retry after a wait.
    Transient,
    /// 409: the IETF idempotency draft's answer when the key's first request is still
    /// executing. The outcome is not known yet, so the operation is retried with the same
    /// key, never sooner than the server's `Retry-After`, within the deadline.
    InProgress,
    /// Any other status: the request itself is wrong (or conflicts); retrying cannot help.
    Permanent,
}

/// Classifies an HTTP status for retrying.
#[must_use]
pub fn classify_status(status: u16) -> StatusClass {
    match status {
        200..=299 => StatusClass::Success,
        429 | 500..=599 => StatusClass::Transient,
        409 => StatusClass::InProgress,
        _ => StatusClass::Permanent,
    }
}

/// How long to wait before the next attempt: the jittered backoff, but never less than the
/// server's `Retry-After` when it sent one.
#[must_use]
pub fn wait_ms(backoff_ms: u64, retry_after_ms: Option<u64>) -> u64 {
    match retry_after_ms {
        Some(server_ms) => backoff_ms.max(server_ms),
        None => backoff_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn cap_doubles_and_saturates() {
        // Proves the cap sequence base, 2base, 4base, ... stops at max and never overflows.
        assert_eq!(backoff_cap_ms(0, 100, 2_000), 100);
        assert_eq!(backoff_cap_ms(1, 100, 2_000), 200);
        assert_eq!(backoff_cap_ms(4, 100, 2_000), 1_600);
        assert_eq!(backoff_cap_ms(5, 100, 2_000), 2_000);
        assert_eq!(backoff_cap_ms(200, 100, 2_000), 2_000);
        assert_eq!(backoff_cap_ms(63, u64::MAX / 2, u64::MAX), u64::MAX);
    }

    #[test]
    fn statuses_classify_as_the_seeds_say() {
        // Proves the retry rules of seed 004: 5xx and 429 retry, 409 (a key in flight)
        // retries as in progress, 400 and other 4xx never.
        assert_eq!(classify_status(201), StatusClass::Success);
        assert_eq!(classify_status(503), StatusClass::Transient);
        assert_eq!(classify_status(500), StatusClass::Transient);
        assert_eq!(classify_status(429), StatusClass::Transient);
        assert_eq!(classify_status(409), StatusClass::InProgress);
        for status in [400, 401, 403, 404, 413, 422] {
            assert_eq!(classify_status(status), StatusClass::Permanent, "{status}");
        }
    }

    #[test]
    fn retry_after_is_a_floor() {
        // Proves a server's Retry-After is never undercut by a shorter jittered backoff.
        assert_eq!(wait_ms(50, Some(1_000)), 1_000);
        assert_eq!(wait_ms(1_500, Some(1_000)), 1_500);
        assert_eq!(wait_ms(70, None), 70);
    }

    #[test]
    fn policy_validation_names_the_field() {
        // Proves inconsistent policies are rejected with the offending field in the message.
        let mut policy = RetryPolicy::new(500, 5_000);
        assert!(policy.validate().is_ok());
        policy.backoff_ms_base = 5_000;
        assert!(policy.validate().unwrap_err().contains("backoff_ms_base"));
        let policy = RetryPolicy::new(500, 100);
        assert!(policy.validate().unwrap_err().contains("deadline_ms"));
    }

    proptest! {
        #[test]
        fn full_jitter_stays_within_cap(seed: u64, retry in 0u32..80, base in 1u64..10_000, extra in 0u64..100_000) {
            // Proves every drawn backoff lies in [0, cap] for any seed and retry number.
            let max = base + extra;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let drawn = backoff_ms(retry, base, max, &mut rng);
            prop_assert!(drawn <= backoff_cap_ms(retry, base, max));
        }
    }
}
