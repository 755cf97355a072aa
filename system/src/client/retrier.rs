//! The retry loop shared by the merchant client and the service's carrier client.
//!
//! One logical operation becomes up to `attempt_count_max` HTTP attempts. Each attempt has
//! its own timeout, the whole operation a deadline; between attempts the loop waits a
//! full-jitter backoff, never less than the server's `Retry-After`. Only timeouts, transport
//! failures, 5xx, 429 and 409 (a key whose first request is still in progress: the outcome
//! is not known yet) are retried, always with the same request and key.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use super::error::{Advertised, AttemptOutcome, AttemptRecord, ClientError};
use super::guard::{Admit, BreakerState, BudgetState};
use super::limiter::LimiterState;
use super::policy::{self, RetryPolicy, StatusClass};
use super::retry_after::RetryAfter;
use crate::api::{
    ErrorEnvelope, HEADER_IDEMPOTENCY_KEY, HEADER_IDEMPOTENT_REPLAYED, HEADER_RATE_REMAINING,
    HEADER_RATE_RESET,
};
use crate::bugs::{Bug, BugSet};
use crate::clock::Clock;
use crate::seed::Seed;
use crate::transport::{HttpRequest, HttpResponse, Transport};

/// The result of a retried call, with every attempt it took.
#[derive(Debug)]
pub struct CallReport {
    /// The successful response, or why there is none.
    pub result: Result<HttpResponse, ClientError>,
    /// Every attempt, in order.
    pub attempts: Vec<AttemptRecord>,
    /// Time from the first send to the end, in ms (waits included).
    pub elapsed_ms: u64,
}

/// Sends requests with retries according to a [`RetryPolicy`].
pub struct Retrier {
    transport: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    rng: Mutex<ChaCha8Rng>,
    policy: RetryPolicy,
    bugs: BugSet,
    guard: Mutex<Guard>,
    /// Zero of the breaker's monotonic milliseconds.
    created: Instant,
}

/// Budget and breaker state shared by every call of this retrier.
#[derive(Debug)]
struct Guard {
    budget: Option<BudgetState>,
    breaker: BreakerState,
    limiter: Option<LimiterState>,
}

impl std::fmt::Debug for Retrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retrier")
            .field("policy", &self.policy)
            .field("bugs", &self.bugs)
            .finish_non_exhaustive()
    }
}

impl Retrier {
    /// A retrier drawing its jitter from `seed`.
    #[must_use]
    pub fn new(
        transport: Arc<dyn Transport>,
        clock: Arc<dyn Clock>,
        seed: Seed,
        policy: RetryPolicy,
        bugs: BugSet,
    ) -> Self {
        // The planted retry-storm bug is a client without budget or breaker.
        let storm = bugs.has(Bug::ClientRetryStorm);
        let policy = RetryPolicy {
            budget: policy.budget.filter(|_| !storm),
            breaker: policy.breaker.filter(|_| !storm),
            ..policy
        };
        Retrier {
            transport,
            clock,
            rng: Mutex::new(seed.rng()),
            guard: Mutex::new(Guard {
                budget: policy.budget.map(BudgetState::new),
                breaker: BreakerState::new(),
                limiter: policy.rate_limit.map(|limit| LimiterState::new(limit, 0)),
            }),
            created: Instant::now(),
            policy,
            bugs,
        }
    }

    fn monotonic_ms(&self) -> u64 {
        millis(self.created.elapsed())
    }

    /// Asks the breaker whether to send now.
    fn admit(&self) -> bool {
        if self.policy.breaker.is_none() {
            return true;
        }
        let now_ms = self.monotonic_ms();
        let mut guard = self.guard.lock().expect("guard lock poisoned");
        guard.breaker.admit(now_ms) != Admit::Refuse
    }

    /// Tells the breaker how an attempt ended.
    fn observe(&self, outcome: &AttemptOutcome) {
        let Some(breaker) = self.policy.breaker else {
            return;
        };
        let transient = match outcome {
            AttemptOutcome::Response { status, .. } => *status >= 500,
            AttemptOutcome::Timeout | AttemptOutcome::Transport(_) => true,
        };
        let now_ms = self.monotonic_ms();
        let mut guard = self.guard.lock().expect("guard lock poisoned");
        guard.breaker.record(breaker, transient, now_ms);
    }

    /// Milliseconds to wait before attempt `index` may be sent under the client's own rate
    /// limit; 0 takes a token. The planted bug lets retries bypass the limiter.
    fn throttle(&self, index: u32) -> u64 {
        let Some(limit) = self.policy.rate_limit else {
            return 0;
        };
        if index > 0 && self.bugs.has(Bug::ClientRetriesBypassLimiter) {
            return 0;
        }
        let (now_ms, now_unix_ms) = (self.monotonic_ms(), self.clock.now_ms());
        let mut guard = self.guard.lock().expect("guard lock poisoned");
        let state = guard
            .limiter
            .as_mut()
            .expect("limiter state exists when configured");
        state.acquire(limit, now_ms, now_unix_ms)
    }

    /// Tells an adaptive limiter what the server said of the caller's allowance. The
    /// planted bug reads nothing: the client keeps sending into a spent allowance.
    fn observe_allowance(&self, response: &HttpResponse) {
        if !self.policy.rate_limit.is_some_and(|limit| limit.adaptive) {
            return;
        }
        if self.bugs.has(Bug::ClientIgnoresAdvertisedBudget) {
            return;
        }
        let number = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let (remaining, reset) = (number(HEADER_RATE_REMAINING), number(HEADER_RATE_RESET));
        let mut guard = self.guard.lock().expect("guard lock poisoned");
        if let Some(state) = guard.limiter.as_mut() {
            state.observe(remaining, reset);
        }
    }

    /// Earns budget for a first attempt, or spends it for a retry; false when spent.
    fn budget(&self, first: bool) -> bool {
        let Some(budget) = self.policy.budget else {
            return true;
        };
        let mut guard = self.guard.lock().expect("guard lock poisoned");
        let state = guard
            .budget
            .as_mut()
            .expect("budget state exists when configured");
        if first {
            state.on_first_attempt(budget);
            true
        } else {
            state.try_retry()
        }
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Runs one logical call. `build` makes the request of attempt `n` (0-based); it must
    /// make the same request every time, the attempt number is there for planted bugs.
    pub async fn call(&self, build: impl Fn(u32) -> HttpRequest) -> CallReport {
        let started = Instant::now();
        let deadline = Duration::from_millis(self.policy.deadline_ms);
        let mut attempts: Vec<AttemptRecord> = Vec::new();
        let mut waited_ms = 0;
        loop {
            let index = u32::try_from(attempts.len()).expect("attempts are bounded by policy");
            let elapsed = started.elapsed();
            let Some(remaining) = deadline.checked_sub(elapsed).filter(|r| !r.is_zero()) else {
                return self.finish(started, attempts, deadline_exceeded);
            };
            let timeout = remaining.min(Duration::from_millis(self.policy.timeout_ms_per_attempt));
            if !self.admit() {
                return self.finish(started, attempts, circuit_open);
            }
            let throttled = self.throttled(index, started, deadline).await;
            if !throttled {
                return self.finish(started, attempts, deadline_exceeded);
            }
            if index == 0 {
                // Earned only by first attempts actually sent, so the budget counts what the
                // server saw.
                self.budget(true);
            }
            let request = build(index);
            let idempotency_key = request
                .headers()
                .get(HEADER_IDEMPOTENCY_KEY)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let sent_at_ms = millis(started.elapsed());
            let sent = tokio::time::timeout(timeout, self.transport.send(request)).await;
            let ended_at_ms = millis(started.elapsed());
            let (outcome, response) = match sent {
                Err(_elapsed) => (AttemptOutcome::Timeout, None),
                Ok(Err(error)) => (AttemptOutcome::Transport(error), None),
                Ok(Ok(response)) => {
                    self.observe_allowance(&response);
                    (self.describe(&response), Some(response))
                }
            };
            self.observe(&outcome);
            attempts.push(AttemptRecord {
                index,
                waited_ms,
                sent_at_ms,
                ended_at_ms,
                idempotency_key,
                outcome: outcome.clone(),
            });

            let retry_after_ms = match (&outcome, response) {
                (AttemptOutcome::Response { status, .. }, Some(response)) => {
                    match policy::classify_status(*status) {
                        StatusClass::Success => {
                            return self.finish(started, attempts, |_| Ok(response));
                        }
                        StatusClass::Permanent if !self.retries_permanent(*status) => {
                            return self.finish(started, attempts, |_| Err(rejected(&response)));
                        }
                        StatusClass::Permanent
                        | StatusClass::Transient
                        | StatusClass::InProgress => match &outcome {
                            AttemptOutcome::Response { retry_after_ms, .. } => *retry_after_ms,
                            _ => None,
                        },
                    }
                }
                _ => None,
            };

            if index + 1 >= self.policy.attempt_count_max {
                return self.finish(started, attempts, attempts_exhausted);
            }
            if !self.budget(false) {
                return self.finish(started, attempts, budget_exhausted);
            }
            let backoff = {
                let mut rng = self.rng.lock().expect("retrier rng lock poisoned");
                policy::backoff_ms(
                    index,
                    self.policy.backoff_ms_base,
                    self.policy.backoff_ms_max,
                    &mut *rng,
                )
            };
            let honoured = if self.bugs.has(Bug::ClientIgnoresRetryAfter) {
                None
            } else {
                retry_after_ms
            };
            waited_ms = policy::wait_ms(backoff, honoured);
            if started.elapsed() + Duration::from_millis(waited_ms) >= deadline {
                // Waiting would end past the deadline: give up now rather than sleep for
                // nothing, so the caller learns the outcome as early as possible.
                return self.finish(started, attempts, deadline_exceeded);
            }
            tokio::time::sleep(Duration::from_millis(waited_ms)).await;
        }
    }

    /// Waits until the client's own rate limit lets attempt `index` go; false when that
    /// would pass the deadline (nothing is sent then).
    async fn throttled(&self, index: u32, started: Instant, deadline: Duration) -> bool {
        loop {
            let wait_ms = self.throttle(index);
            if wait_ms == 0 {
                return true;
            }
            if started.elapsed() + Duration::from_millis(wait_ms) >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        }
    }

    fn retries_permanent(&self, status: u16) -> bool {
        self.bugs.has(Bug::ClientRetries4xx) && (400..500).contains(&status)
    }

    fn describe(&self, response: &HttpResponse) -> AttemptOutcome {
        let status = response.status().as_u16();
        let retry_after_ms = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(RetryAfter::parse)
            .map(|ra| ra.delay_ms(self.clock.now_ms()));
        let replayed = response
            .headers()
            .get(HEADER_IDEMPOTENT_REPLAYED)
            .is_some_and(|v| v.as_bytes() == b"true");
        let error_code = (status >= 300)
            .then(|| serde_json::from_slice::<ErrorEnvelope>(response.body()).ok())
            .flatten()
            .map(|envelope| envelope.error.code);
        AttemptOutcome::Response {
            status,
            retry_after_ms,
            replayed,
            error_code,
            advertised: Advertised::of(response.headers()),
        }
    }

    fn finish(
        &self,
        started: Instant,
        attempts: Vec<AttemptRecord>,
        result: impl FnOnce(&[AttemptRecord]) -> Result<HttpResponse, ClientError>,
    ) -> CallReport {
        CallReport {
            result: result(&attempts),
            elapsed_ms: millis(started.elapsed()),
            attempts,
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn last_label(attempts: &[AttemptRecord]) -> String {
    attempts
        .last()
        .map_or_else(|| "none".to_string(), |a| a.outcome.label())
}

fn deadline_exceeded(attempts: &[AttemptRecord]) -> Result<HttpResponse, ClientError> {
    Err(ClientError::DeadlineExceeded {
        attempts: u32::try_from(attempts.len()).unwrap_or(u32::MAX),
        last: last_label(attempts),
    })
}

fn circuit_open(attempts: &[AttemptRecord]) -> Result<HttpResponse, ClientError> {
    Err(ClientError::CircuitOpen {
        attempts: u32::try_from(attempts.len()).unwrap_or(u32::MAX),
        last: last_label(attempts),
    })
}

fn budget_exhausted(attempts: &[AttemptRecord]) -> Result<HttpResponse, ClientError> {
    Err(ClientError::RetryBudgetExhausted {
        attempts: u32::try_from(attempts.len()).unwrap_or(u32::MAX),
        last: last_label(attempts),
    })
}

fn attempts_exhausted(attempts: &[AttemptRecord]) -> Result<HttpResponse, ClientError> {
    Err(ClientError::AttemptsExhausted {
        attempts: u32::try_from(attempts.len()).unwrap_or(u32::MAX),
        last: last_label(attempts),
    })
}

fn rejected(response: &HttpResponse) -> ClientError {
    ClientError::Rejected {
        status: response.status().as_u16(),
        body: serde_json::from_slice::<ErrorEnvelope>(response.body())
            .ok()
            .map(|envelope| envelope.error),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::clock::FixedClock;
    use crate::transport::{BoxFuture, TransportError};

    /// A server that answers from a script, then repeats its last answer; it keeps every
    /// request it was sent.
    struct Scripted {
        answers: Mutex<VecDeque<(u16, Option<&'static str>, &'static str)>>,
        requests: Mutex<Vec<HttpRequest>>,
    }

    impl Scripted {
        fn new(answers: &[(u16, Option<&'static str>, &'static str)]) -> Arc<Self> {
            Arc::new(Scripted {
                answers: Mutex::new(answers.iter().copied().collect()),
                requests: Mutex::new(Vec::new()),
            })
        }
    }

    impl Transport for Scripted {
        fn send(
            &self,
            request: HttpRequest,
        ) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
            self.requests.lock().unwrap().push(request);
            let mut answers = self.answers.lock().unwrap();
            let (status, retry_after, code) = if answers.len() > 1 {
                answers.pop_front().unwrap()
            } else {
                *answers.front().unwrap()
            };
            let mut response = http::Response::builder().status(status);
            if let Some(seconds) = retry_after {
                response = response.header(http::header::RETRY_AFTER, seconds);
            }
            let body = if status >= 300 {
                format!(
                    r#"{{"error":{{"code":"{code}","message":"m","details":[],"request_id":"r"}}}}"#
                )
            } else {
                "{}".to_string()
            };
            let response = response.body(bytes::Bytes::from(body)).unwrap();
            Box::pin(async move { Ok(response) })
        }
    }

    fn retrier(server: &Arc<Scripted>, deadline_ms: u64) -> Retrier {
        Retrier::new(
            server.clone(),
            Arc::new(FixedClock(1_767_225_600_000)),
            Seed(3),
            RetryPolicy {
                attempt_count_max: 6,
                backoff_ms_base: 50,
                backoff_ms_max: 400,
                ..RetryPolicy::new(1_000, deadline_ms)
            },
            BugSet::none(),
        )
    }

    fn request(_attempt: u32) -> HttpRequest {
        http::Request::post("http://service/v1/orders")
            .header(HEADER_IDEMPOTENCY_KEY, "order-7")
            .body(bytes::Bytes::new())
            .unwrap()
    }

    const IN_PROGRESS: (u16, Option<&str>, &str) =
        (409, Some("1"), "idempotency_request_in_progress");

    #[tokio::test(start_paused = true)]
    async fn a_key_in_progress_is_retried_with_the_same_key_after_retry_after() {
        // Proves a 409 "in progress" is not final: the client waits at least the server's
        // Retry-After (1 s, longer than any backoff of this policy) and sends the same
        // request with the same key until the first request's outcome is there. Before, the
        // first 409 ended the operation as rejected.
        let server = Scripted::new(&[IN_PROGRESS, IN_PROGRESS, (201, None, "")]);
        let report = retrier(&server, 10_000).call(request).await;
        assert_eq!(report.result.expect("the outcome arrives").status(), 201);
        assert_eq!(report.attempts.len(), 3);
        for attempt in &report.attempts[1..] {
            assert!(attempt.waited_ms >= 1_000, "{attempt:?}");
            assert_eq!(attempt.idempotency_key.as_deref(), Some("order-7"));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_still_in_progress_at_the_deadline_is_ambiguous() {
        // Proves the retries stop at the deadline, and that an operation whose key was still
        // in progress when the client gave up counts as ambiguous (its outcome is unknown:
        // the settler re-issues it), not as refused.
        let server = Scripted::new(&[IN_PROGRESS]);
        let report = retrier(&server, 3_500).call(request).await;
        assert!(
            matches!(report.result, Err(ClientError::DeadlineExceeded { .. })),
            "{:?}",
            report.result
        );
        assert!(report.attempts.len() >= 3, "{:?}", report.attempts);
        assert!(report.attempts.iter().all(|a| a.outcome.is_ambiguous()));
        assert!(report.elapsed_ms <= 3_500);
    }

    #[tokio::test(start_paused = true)]
    async fn other_4xx_stay_final() {
        // Proves the 409 rule does not leak: a 422 (key reused with another request) is
        // answered at once, one attempt, no retry.
        let server = Scripted::new(&[(422, None, "idempotency_key_reused")]);
        let report = retrier(&server, 10_000).call(request).await;
        assert!(matches!(
            report.result,
            Err(ClientError::Rejected { status: 422, .. })
        ));
        assert_eq!(report.attempts.len(), 1);
    }
}
