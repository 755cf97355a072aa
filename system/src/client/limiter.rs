//! Client-side rate limiting (seed 000, "Client-Side Rate Limiting"; seed 002, "Implement
//! client-side rate limiting"): the client throttles itself before the server has to.
//!
//! A token bucket per client (`burst` sends at once, refilled at `per_second`), on the
//! client's clock, taken by every attempt, retries included. Adaptive: when a response
//! says the caller's server-side allowance is spent (`X-RateLimit-Remaining: 0`), the client
//! holds every send until the `X-RateLimit-Reset` it was given, so it slows down before it is
//! refused instead of after.

/// A client's own sending limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientRateLimit {
    /// Sends admitted back to back.
    pub burst: u32,
    /// Tokens added per second.
    pub per_second: u32,
    /// Whether to hold sends while the server says the allowance is spent.
    pub adaptive: bool,
}

/// The bucket and the server's last word, shared by the client's operations.
#[derive(Clone, Copy, Debug)]
pub struct LimiterState {
    /// Milli-tokens, so that refill needs no floating point.
    milli_tokens: u64,
    refilled_at_ms: u64,
    /// Unix ms (the client's clock) before which the server said nothing is admitted.
    held_until_unix_ms: u64,
}

impl LimiterState {
    /// A full bucket at `now_ms` (the client's monotonic milliseconds).
    #[must_use]
    pub fn new(limit: ClientRateLimit, now_ms: u64) -> Self {
        LimiterState {
            milli_tokens: u64::from(limit.burst).saturating_mul(1_000),
            refilled_at_ms: now_ms,
            held_until_unix_ms: 0,
        }
    }

    /// Milliseconds to wait before the next send; 0 when a send may go now, in which case
    /// its token is taken. `now_ms` is monotonic, `now_unix_ms` the clock the server's
    /// `X-RateLimit-Reset` is read against.
    pub fn acquire(&mut self, limit: ClientRateLimit, now_ms: u64, now_unix_ms: u64) -> u64 {
        let capacity = u64::from(limit.burst).saturating_mul(1_000);
        let elapsed_ms = now_ms.saturating_sub(self.refilled_at_ms);
        self.milli_tokens = self
            .milli_tokens
            .saturating_add(elapsed_ms.saturating_mul(u64::from(limit.per_second)))
            .min(capacity);
        self.refilled_at_ms = self.refilled_at_ms.max(now_ms);
        if limit.adaptive && now_unix_ms < self.held_until_unix_ms {
            return self.held_until_unix_ms - now_unix_ms;
        }
        if self.milli_tokens >= 1_000 {
            self.milli_tokens -= 1_000;
            return 0;
        }
        let missing = 1_000 - self.milli_tokens;
        // per_second is at least 1 (validated), so the wait is finite: round up.
        missing.div_ceil(u64::from(limit.per_second.max(1)))
    }

    /// Reads a response's `X-RateLimit-Remaining` and `X-RateLimit-Reset` (unix seconds):
    /// a spent allowance holds sends until the reset.
    pub fn observe(&mut self, remaining: Option<u64>, reset_unix_s: Option<u64>) {
        if let (Some(0), Some(reset)) = (remaining, reset_unix_s) {
            self.held_until_unix_ms = self.held_until_unix_ms.max(reset.saturating_mul(1_000));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: ClientRateLimit = ClientRateLimit {
        burst: 2,
        per_second: 10,
        adaptive: true,
    };

    #[test]
    fn a_full_bucket_admits_its_burst_then_paces_at_the_rate() {
        let mut state = LimiterState::new(LIMIT, 0);
        assert_eq!(state.acquire(LIMIT, 0, 0), 0);
        assert_eq!(state.acquire(LIMIT, 0, 0), 0);
        // Empty: one token per 100 ms.
        assert_eq!(state.acquire(LIMIT, 0, 0), 100);
        assert_eq!(state.acquire(LIMIT, 40, 0), 60);
        assert_eq!(state.acquire(LIMIT, 100, 0), 0);
        assert_eq!(state.acquire(LIMIT, 100, 0), 100);
        // A long pause refills to the burst, not beyond.
        assert_eq!(state.acquire(LIMIT, 10_000, 0), 0);
        assert_eq!(state.acquire(LIMIT, 10_000, 0), 0);
        assert_eq!(state.acquire(LIMIT, 10_000, 0), 100);
    }

    #[test]
    fn a_spent_server_allowance_holds_sends_until_its_reset_when_adaptive() {
        let mut state = LimiterState::new(LIMIT, 0);
        state.observe(Some(0), Some(1_767_225_601));
        assert_eq!(state.acquire(LIMIT, 0, 1_767_225_600_250), 750);
        assert_eq!(state.acquire(LIMIT, 750, 1_767_225_601_000), 0);
        // Remaining above zero, or no reset, holds nothing.
        state.observe(Some(3), Some(1_767_225_609));
        state.observe(Some(0), None);
        assert_eq!(state.acquire(LIMIT, 750, 1_767_225_601_000), 0);
        let fixed = ClientRateLimit {
            adaptive: false,
            ..LIMIT
        };
        let mut state = LimiterState::new(fixed, 0);
        state.observe(Some(0), Some(1_767_225_601));
        assert_eq!(state.acquire(fixed, 0, 1_767_225_600_250), 0);
    }

    #[test]
    fn a_clock_stepping_back_refills_nothing() {
        let mut state = LimiterState::new(LIMIT, 1_000);
        assert_eq!(state.acquire(LIMIT, 1_000, 0), 0);
        assert_eq!(state.acquire(LIMIT, 1_000, 0), 0);
        assert_eq!(state.acquire(LIMIT, 500, 0), 100);
    }
}
