//! Storm protection shared by every operation of one client: a retry budget and a circuit
//! breaker (seeds 001 and 003: "use circuit breakers for critical paths").
//!
//! - The **retry budget** (Finagle/gRPC style) lets retries be at most `reserve` plus
//!   `percent`% of first attempts: under a long outage retries stop growing with load,
//!   so a fleet of clients cannot multiply an incident.
//! - The **circuit breaker** opens after `failures_to_open` consecutive transient failures
//!   (timeouts, transport errors, 5xx; not 429, which names its own wait) and then sends
//!   nothing for `cooldown_ms`; after that one probe goes through (half-open): success
//!   closes it, failure opens it again.
//!
//! Both are pure state machines over simulated milliseconds, so the oracle can check a
//! client against the same rules.

/// Retry budget settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryBudget {
    /// Retries allowed per 100 first attempts.
    pub percent: u32,
    /// Retries always allowed (the budget's starting balance and floor of its growth).
    pub reserve: u32,
}

/// Circuit breaker settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Breaker {
    /// Consecutive transient failures that open the circuit.
    pub failures_to_open: u32,
    /// How long an open circuit refuses to send, ms.
    pub cooldown_ms: u64,
}

/// The budget's balance, in hundredths of a retry so that percentages stay exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetState {
    centi_tokens: u64,
    cap: u64,
}

impl BudgetState {
    /// A full reserve; the balance never exceeds ten times the reserve.
    #[must_use]
    pub fn new(budget: RetryBudget) -> Self {
        let reserve = u64::from(budget.reserve) * 100;
        BudgetState {
            centi_tokens: reserve,
            cap: reserve.max(100) * 10,
        }
    }

    /// A first attempt earns `percent` hundredths of a retry.
    pub fn on_first_attempt(&mut self, budget: RetryBudget) {
        self.centi_tokens = (self.centi_tokens + u64::from(budget.percent)).min(self.cap);
    }

    /// Spends one retry if the balance allows it.
    pub fn try_retry(&mut self) -> bool {
        if self.centi_tokens >= 100 {
            self.centi_tokens -= 100;
            true
        } else {
            false
        }
    }
}

/// Where a circuit breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Sending; counting consecutive transient failures.
    Closed {
        /// Transient failures in a row.
        failures: u32,
    },
    /// Refusing to send until `until_ms`.
    Open {
        /// End of the cooldown, ms on the client's monotonic clock.
        until_ms: u64,
    },
    /// One probe is out; everything else is refused until it returns.
    HalfOpen,
}

/// What the breaker says about sending now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Send.
    Send,
    /// Send as the half-open probe.
    Probe,
    /// Do not send: the circuit is open.
    Refuse,
}

impl BreakerState {
    /// A closed breaker.
    #[must_use]
    pub fn new() -> Self {
        BreakerState::Closed { failures: 0 }
    }

    /// Whether an attempt may be sent at `now_ms`.
    pub fn admit(&mut self, now_ms: u64) -> Admit {
        match *self {
            BreakerState::Closed { .. } => Admit::Send,
            BreakerState::Open { until_ms } if now_ms >= until_ms => {
                *self = BreakerState::HalfOpen;
                Admit::Probe
            }
            BreakerState::Open { .. } | BreakerState::HalfOpen => Admit::Refuse,
        }
    }

    /// Records how an admitted attempt ended: `transient_failure` for timeouts, transport
    /// errors and 5xx. Returns true when this outcome opened the circuit.
    pub fn record(&mut self, breaker: Breaker, transient_failure: bool, now_ms: u64) -> bool {
        let open = BreakerState::Open {
            until_ms: now_ms.saturating_add(breaker.cooldown_ms),
        };
        match (*self, transient_failure) {
            (_, false) => {
                *self = BreakerState::Closed { failures: 0 };
                false
            }
            (BreakerState::HalfOpen, true) => {
                *self = open;
                true
            }
            (BreakerState::Closed { failures }, true) => {
                if failures + 1 >= breaker.failures_to_open {
                    *self = open;
                    true
                } else {
                    *self = BreakerState::Closed {
                        failures: failures + 1,
                    };
                    false
                }
            }
            // An attempt admitted before the circuit opened ended after it: the open
            // circuit stands.
            (BreakerState::Open { .. }, true) => false,
        }
    }
}

impl Default for BreakerState {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BREAKER: Breaker = Breaker {
        failures_to_open: 3,
        cooldown_ms: 1_000,
    };

    #[test]
    fn breaker_opens_after_consecutive_failures_and_recovers_after_cooldown() {
        // Proves the state machine: three failures open it, nothing is sent during the
        // cooldown, one probe after it, and a successful probe closes the circuit.
        let mut state = BreakerState::new();
        assert!(!state.record(BREAKER, true, 10));
        assert!(!state.record(BREAKER, true, 20));
        assert!(state.record(BREAKER, true, 30), "third failure opens");
        assert_eq!(state.admit(500), Admit::Refuse);
        assert_eq!(state.admit(1_029), Admit::Refuse);
        assert_eq!(state.admit(1_030), Admit::Probe);
        assert_eq!(state.admit(1_031), Admit::Refuse, "one probe at a time");
        state.record(BREAKER, false, 1_040);
        assert_eq!(state, BreakerState::Closed { failures: 0 });
        assert_eq!(state.admit(1_041), Admit::Send);
    }

    #[test]
    fn failed_probe_reopens_and_success_resets_the_count() {
        // Proves a failed probe opens the circuit for another cooldown, and that a success
        // between failures resets the consecutive count.
        let mut state = BreakerState::Open { until_ms: 100 };
        assert_eq!(state.admit(100), Admit::Probe);
        assert!(state.record(BREAKER, true, 150));
        assert_eq!(state, BreakerState::Open { until_ms: 1_150 });
        let mut state = BreakerState::new();
        state.record(BREAKER, true, 1);
        state.record(BREAKER, true, 2);
        state.record(BREAKER, false, 3);
        assert!(!state.record(BREAKER, true, 4));
    }

    #[test]
    fn budget_allows_reserve_plus_percent() {
        // Proves the budget: the reserve is spendable at once, then each first attempt
        // earns `percent`/100 of a retry.
        let budget = RetryBudget {
            percent: 50,
            reserve: 2,
        };
        let mut state = BudgetState::new(budget);
        assert!(state.try_retry());
        assert!(state.try_retry());
        assert!(!state.try_retry(), "reserve spent");
        state.on_first_attempt(budget);
        assert!(!state.try_retry(), "half a retry is not a retry");
        state.on_first_attempt(budget);
        assert!(state.try_retry());
    }
}
