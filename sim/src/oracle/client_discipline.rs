//! `client_discipline`: the merchant client behaved. Per operation: one idempotency key, no
//! retry after a non-retryable answer, never earlier than `Retry-After`, backoff within its
//! bounds, attempts within the limit. Per client host: retries within the retry budget, no
//! burst of attempts right after its circuit breaker must have opened, and no refusal by the
//! breaker without a recent failure (it recovers), and no send faster than the client's own
//! rate limit allows (`[client] rate_limit`), retries included, nor any send held back while
//! that limit's bucket held a token (a client that throttles below its limit), and, when that limit is
//! adaptive, no send after the server advertised the caller's allowance spent
//! (`X-RateLimit-Remaining: 0`) and before the `X-RateLimit-Reset` it gave, read from the
//! raw header values recorded with each response.
//!
//! The per-host checks are necessary conditions computed from observed attempt times, with
//! slack for concurrency and millisecond rounding, so a correct client never trips them and
//! a client without budget or breaker does.

use std::collections::BTreeMap;

use shipsim_system::client::{
    Advertised, AttemptOutcome, ClientError, RETRY_AFTER_MS_MAX, StatusClass, backoff_cap_ms,
    classify_status,
};

use super::{OracleInput, OracleKind, Violation};
use crate::run::history::{OpId, Operation};

const ORACLE: OracleKind = OracleKind::ClientDiscipline;

/// Attempts a correct client may still send inside a breaker cooldown as seen by the
/// oracle: the half-open probe of an earlier opening, and one concurrent operation's.
const COOLDOWN_SENDS_SLACK: usize = 2;

pub(super) fn check(input: &OracleInput<'_>) -> Vec<Violation> {
    let mut found = Vec::new();
    let mut per_client: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in input.history.workload() {
        per_operation(input, op, &mut found);
        wire_headers(input, op, &mut found);
        per_client.entry(&op.client).or_default().push(op);
    }
    for (client, ops) in per_client {
        // Every per-client check reads the same attempts in send order: sorted once.
        let sends = attempts_of(&ops);
        budget(input, client, &sends, &mut found);
        gave_up_early(input, client, &ops, &mut found);
        breaker(input, client, &ops, &sends, &mut found);
        rate(input, client, &sends, &mut found);
        held(input, client, &ops, &sends, &mut found);
        advertised(input, client, &ops, &sends, &mut found);
    }
    found
}

fn per_operation(input: &OracleInput<'_>, op: &Operation, found: &mut Vec<Violation>) {
    let policy = input.scenario.client;
    let attempts = &op.attempts;
    if attempts.len() > policy.attempt_count_max as usize {
        found.push(
            Violation::new(
                ORACLE,
                input,
                format!(
                    "op {} made {} attempts, limit {}",
                    op.id,
                    attempts.len(),
                    policy.attempt_count_max
                ),
            )
            .ops([op.id]),
        );
    }
    let keys: Vec<&str> = attempts
        .iter()
        .filter_map(|a| a.idempotency_key.as_deref())
        .collect();
    if keys.windows(2).any(|w| w[0] != w[1]) {
        found.push(
            Violation::new(
                ORACLE,
                input,
                format!("op {} changed its idempotency key between attempts", op.id),
            )
            .ops([op.id])
            .evidence(format!("keys: {}", keys.join(", "))),
        );
    }
    for pair in attempts.windows(2) {
        let (previous, next) = (&pair[0], &pair[1]);
        if let AttemptOutcome::Response { status, .. } = &previous.outcome
            && classify_status(*status) == StatusClass::Permanent
        {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!("op {} retried after a non-retryable {status}", op.id),
                )
                .ops([op.id])
                .evidence(format!(
                    "attempt {} got {status}; attempt {} followed",
                    previous.index, next.index
                )),
            );
        }
        let retry_after = wire_retry_after(input, op, previous);
        if let Some(asked) = &retry_after {
            // Judged on the simulated timeline, not on the wait the client says it made:
            // from the end of the answer that asked to the next send.
            let gap_ms = next.sent_at_ms.saturating_sub(previous.ended_at_ms);
            if gap_ms.saturating_add(asked.slack_ms) < asked.wait_ms {
                found.push(
                    Violation::new(
                        ORACLE,
                        input,
                        format!(
                            "op {} retried {gap_ms} ms after a Retry-After of {} ms",
                            op.id, asked.wait_ms
                        ),
                    )
                    .ops([op.id])
                    .evidence(format!(
                        "attempt {} was answered `Retry-After: {}` (read by the oracle from the raw header); attempt {} went out {gap_ms} ms later (the client believed it asked for {})",
                        previous.index,
                        asked.raw,
                        next.index,
                        client_belief(&previous.outcome)
                    )),
                );
            }
        }
        let retry_after = retry_after.map(|asked| asked.wait_ms);
        let cap = backoff_cap_ms(
            previous.index,
            policy.backoff_ms_base,
            policy.backoff_ms_max,
        )
        .max(retry_after.unwrap_or(0));
        if next.waited_ms > cap {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "op {} waited {} ms before a retry, above its bound of {cap} ms",
                        op.id, next.waited_ms
                    ),
                )
                .ops([op.id]),
            );
        }
    }
}

/// Slack for the oracle's reading of a `Retry-After` date: the client read its clock when
/// the answer arrived, which the recorded (truncated) millisecond times place within 2 ms.
const RETRY_AFTER_DATE_SLACK_MS: u64 = 2;
/// Slack for the gap between two attempts: both times are truncated to milliseconds.
const GAP_SLACK_MS: u64 = 1;

/// A wait the server asked for, as the oracle reads it from the raw header.
struct Asked {
    raw: String,
    wait_ms: u64,
    slack_ms: u64,
}

/// The `Retry-After` an attempt's answer carried, parsed here from the raw header value
/// (RFC 9110 10.2.3: delta-seconds or an HTTP date), independently of the client's own
/// parse: a client that misreads the header is judged against what the server sent. A date
/// is read against the client's clock when the answer arrived (a skewed client waits by its
/// own clock, as a real one does). Waits are capped as the client documents
/// ([`RETRY_AFTER_MS_MAX`]). `None` without a header or when it cannot be parsed (that is
/// judged by [`wire_headers`]).
fn wire_retry_after(
    input: &OracleInput<'_>,
    op: &Operation,
    attempt: &shipsim_system::client::AttemptRecord,
) -> Option<Asked> {
    let AttemptOutcome::Response { advertised, .. } = &attempt.outcome else {
        return None;
    };
    let raw = advertised.retry_after.as_deref()?;
    let (wait_ms, slack_ms) = match parse_retry_after(raw)? {
        WireRetryAfter::Seconds(seconds) => (seconds.saturating_mul(1_000), GAP_SLACK_MS),
        WireRetryAfter::AtUnixS(at_s) => {
            let clock = crate::run::clock::SimClock::for_host(&op.client, &input.scenario.faults);
            let arrived_us = op
                .invoked_at_us
                .saturating_add(attempt.ended_at_ms.saturating_mul(1_000));
            let now_ms = clock.at(std::time::Duration::from_micros(arrived_us));
            (
                at_s.saturating_mul(1_000).saturating_sub(now_ms),
                GAP_SLACK_MS + RETRY_AFTER_DATE_SLACK_MS,
            )
        }
    };
    Some(Asked {
        raw: raw.to_string(),
        wait_ms: wait_ms.min(RETRY_AFTER_MS_MAX),
        slack_ms,
    })
}

/// The two forms of `Retry-After` on the wire.
#[derive(Debug, PartialEq, Eq)]
enum WireRetryAfter {
    Seconds(u64),
    AtUnixS(u64),
}

/// RFC 9110 `Retry-After = HTTP-date / delay-seconds`; `None` for anything else.
fn parse_retry_after(raw: &str) -> Option<WireRetryAfter> {
    let value = raw.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than u64 holds is still a (very long) delay: saturate.
        return Some(WireRetryAfter::Seconds(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let since_epoch = at.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(WireRetryAfter::AtUnixS(since_epoch.as_secs()))
}

/// What the client recorded as the wait it was asked for, for the evidence only.
fn client_belief(outcome: &AttemptOutcome) -> String {
    match outcome {
        AttemptOutcome::Response {
            retry_after_ms: Some(ms),
            ..
        } => format!("{ms} ms"),
        _ => "no wait".to_string(),
    }
}

/// The server's rate-limit headers, judged as sent: a `Retry-After` must parse (a client
/// cannot honour what it cannot read), and a 429 that carries both `Retry-After` (seconds)
/// and `X-RateLimit-Reset` (unix seconds) must say the same thing: the reset is the
/// server's time of answering plus the wait, each rounded up to whole seconds by the
/// server, so they differ by under a second; the server's time is bracketed by its clock
/// at the attempt's send and end, with a second of slack for a skew that steps inside it.
fn wire_headers(input: &OracleInput<'_>, op: &Operation, found: &mut Vec<Violation>) {
    let service =
        crate::run::clock::SimClock::for_host(crate::run::hosts::SERVICE, &input.scenario.faults);
    for attempt in &op.attempts {
        let AttemptOutcome::Response {
            status, advertised, ..
        } = &attempt.outcome
        else {
            continue;
        };
        let Some(raw) = advertised.retry_after.as_deref() else {
            continue;
        };
        let Some(parsed) = parse_retry_after(raw) else {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "op {} attempt {} was answered {status} with an unparseable Retry-After",
                        op.id, attempt.index
                    ),
                )
                .ops([op.id])
                .evidence(format!(
                    "Retry-After: {raw:?} is neither delay-seconds nor an HTTP date (RFC 9110 10.2.3)"
                )),
            );
            continue;
        };
        let (WireRetryAfter::Seconds(wait_s), true, Some(reset_s)) = (
            parsed,
            *status == 429,
            advertised
                .reset
                .as_deref()
                .and_then(|r| r.trim().parse::<u64>().ok()),
        ) else {
            continue;
        };
        // A 429 with `X-RateLimit-Reset` is the service's own limiter (an injected 429 has
        // no rate-limit headers). At the scenario's documented rate a token refills within
        // `1000 / per_second` ms, so the wait it asks for, in whole seconds rounded up, is
        // at most that.
        if let Some(limit) = input.scenario.service.rate_limit {
            let refill_ms = 1_000u64.div_ceil(u64::from(limit.per_second.max(1)));
            let wait_max_s = refill_ms.div_ceil(1_000).max(1);
            if wait_s > wait_max_s {
                found.push(
                    Violation::new(
                        ORACLE,
                        input,
                        format!(
                            "op {} attempt {} got the service's own 429 asking for Retry-After {wait_s} s, longer than a token takes to refill",
                            op.id, attempt.index
                        ),
                    )
                    .ops([op.id])
                    .evidence(format!(
                        "Retry-After: {raw}; at the documented {} per second a token refills in {refill_ms} ms, so at most {wait_max_s} s",
                        limit.per_second
                    )),
                );
            }
        }
        let at = |ms: u64| {
            service.at(std::time::Duration::from_micros(
                op.invoked_at_us.saturating_add(ms.saturating_mul(1_000)),
            ))
        };
        let (sent, ended) = (at(attempt.sent_at_ms), at(attempt.ended_at_ms + 1));
        let (earliest, latest) = (sent.min(ended), sent.max(ended));
        // reset·1000 − wait·1000 estimates the server's time of answering, within 1 s.
        let implied_ms = reset_s
            .saturating_mul(1_000)
            .saturating_sub(wait_s.saturating_mul(1_000));
        const SLACK_MS: u64 = 2_000;
        if implied_ms.saturating_add(SLACK_MS) < earliest || implied_ms > latest + SLACK_MS {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "op {} attempt {} got a 429 whose X-RateLimit-Reset disagrees with its Retry-After",
                        op.id, attempt.index
                    ),
                )
                .ops([op.id])
                .evidence(format!(
                    "Retry-After: {raw}, X-RateLimit-Reset: {reset_s}: the reset minus the wait is unix ms {implied_ms}, but the service's clock read {earliest}..{latest} ms while it answered"
                )),
            );
        }
    }
}

/// An attempt of one client, on the simulated timeline (µs).
struct Sent {
    op: OpId,
    index: u32,
    sent_us: u64,
    ended_us: u64,
    first: bool,
    transient: bool,
}

fn attempts_of(ops: &[&Operation]) -> Vec<Sent> {
    let mut all: Vec<Sent> = ops
        .iter()
        .flat_map(|op| {
            op.attempts.iter().map(move |a| Sent {
                op: op.id,
                index: a.index,
                sent_us: op
                    .invoked_at_us
                    .saturating_add(a.sent_at_ms.saturating_mul(1_000)),
                ended_us: op
                    .invoked_at_us
                    .saturating_add(a.ended_at_ms.saturating_mul(1_000)),
                first: a.index == 0,
                transient: match &a.outcome {
                    AttemptOutcome::Response { status, .. } => *status >= 500,
                    AttemptOutcome::Timeout | AttemptOutcome::Transport(_) => true,
                },
            })
        })
        .collect();
    all.sort_by_key(|s| (s.sent_us, s.op));
    all
}

/// The client's own rate limit, retries included: the token bucket it was configured with,
/// replayed over the times its attempts were sent, never finds itself empty at a send. The
/// bucket starts full at the first send, and each send is granted 2 ms of refill for the
/// millisecond rounding of the recorded times, so a correct client never trips it.
fn rate(input: &OracleInput<'_>, client: &str, sends: &[Sent], found: &mut Vec<Violation>) {
    let Some(limit) = input.scenario.client.rate_limit else {
        return;
    };
    let mut bucket = Bucket::new(limit);
    let slack = bucket.refill_per_us.saturating_mul(2_000);
    for sent in sends {
        bucket.refill_to(sent.sent_us);
        if bucket.tokens.saturating_add(slack) < TOKEN {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "{client} sent faster than its own rate limit of {} per second (burst {})",
                        limit.per_second, limit.burst
                    ),
                )
                .ops([sent.op])
                .evidence(format!(
                    "attempt {} of op {} went out at {:.3} s with {:.2} token(s) in the bucket",
                    sent.index,
                    sent.op,
                    sent.sent_us as f64 / 1e6,
                    bucket.tokens as f64 / TOKEN as f64
                )),
            );
            return;
        }
        bucket.take();
    }
}

/// A token, in the micro-tokens the oracle's bucket counts: `per_second` of them are added
/// per µs.
const TOKEN: u64 = 1_000_000;

/// The client's configured token bucket as the oracle replays it over the sends on the
/// wire: full until the first send, refilled from the last send it saw.
struct Bucket {
    tokens: u64,
    capacity: u64,
    refill_per_us: u64,
    last_us: Option<u64>,
}

impl Bucket {
    fn new(limit: shipsim_system::client::ClientRateLimit) -> Self {
        let capacity = u64::from(limit.burst).saturating_mul(TOKEN);
        Bucket {
            tokens: capacity,
            capacity,
            refill_per_us: u64::from(limit.per_second),
            last_us: None,
        }
    }

    /// Adds the refill from the last time seen to `at_us` (nothing before the first).
    fn refill_to(&mut self, at_us: u64) {
        if let Some(last) = self.last_us {
            let elapsed = at_us.saturating_sub(last);
            self.tokens = self
                .tokens
                .saturating_add(elapsed.saturating_mul(self.refill_per_us))
                .min(self.capacity);
        }
        self.last_us = Some(self.last_us.map_or(at_us, |last| last.max(at_us)));
    }

    /// Takes one send's token.
    fn take(&mut self) {
        self.tokens = self.tokens.saturating_sub(TOKEN);
    }
}

/// Slack, in ms of the client's clock, for the millisecond rounding of recorded send times:
/// a send recorded up to this much before the advertised reset is not held against it.
const RESET_SLACK_MS: u64 = 2;

/// A response that advertised the caller's allowance spent: nothing more may go out
/// before `reset_unix_ms` by the client's clock.
struct Spent {
    op: OpId,
    index: u32,
    ended_us: u64,
    reset_unix_ms: u64,
}

/// An adaptive client respects the server's advertised budget: after a response said
/// `X-RateLimit-Remaining: 0` with an `X-RateLimit-Reset`, the client sends nothing before
/// that reset by its own clock (a skewed client reads the reset against its skewed clock,
/// as the real one does). Only sends that started after the response arrived count, with
/// a millisecond of slack either side for the rounding of recorded times; sends already in
/// flight could not have known.
fn advertised(
    input: &OracleInput<'_>,
    client: &str,
    ops: &[&Operation],
    sends: &[Sent],
    found: &mut Vec<Violation>,
) {
    if !input
        .scenario
        .client
        .rate_limit
        .is_some_and(|limit| limit.adaptive)
    {
        return;
    }
    let spent = spent_of(ops);
    if spent.is_empty() {
        return;
    }
    let clock = crate::run::clock::SimClock::for_host(client, &input.scenario.faults);
    for sent in sends {
        let at_ms = clock.at(std::time::Duration::from_micros(sent.sent_us));
        let held = spent
            .iter()
            .take_while(|s| s.ended_us.saturating_add(1_000) < sent.sent_us)
            .filter(|s| at_ms.saturating_add(RESET_SLACK_MS) < s.reset_unix_ms)
            .max_by_key(|s| s.reset_unix_ms);
        if let Some(held) = held {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "{client} sent while the server's advertised budget was spent, {} ms before its reset",
                        held.reset_unix_ms - at_ms
                    ),
                )
                .ops([held.op, sent.op])
                .evidence(format!(
                    "attempt {} of op {} got X-RateLimit-Remaining: 0, X-RateLimit-Reset: {} (ended at {:.3} s); attempt {} of op {} went out at {:.3} s, {} by the client's clock",
                    held.index,
                    held.op,
                    held.reset_unix_ms / 1_000,
                    held.ended_us as f64 / 1e6,
                    sent.index,
                    sent.op,
                    sent.sent_us as f64 / 1e6,
                    at_ms
                )),
            );
            return;
        }
    }
}

/// Every response that advertised the caller's allowance spent, in the order they ended.
fn spent_of(ops: &[&Operation]) -> Vec<Spent> {
    let mut spent: Vec<Spent> = ops
        .iter()
        .flat_map(|op| {
            op.attempts.iter().filter_map(move |a| match &a.outcome {
                AttemptOutcome::Response { advertised, .. } => {
                    let reset_s = Advertised::spent_until_unix_s(advertised)?;
                    Some(Spent {
                        op: op.id,
                        index: a.index,
                        ended_us: op
                            .invoked_at_us
                            .saturating_add(a.ended_at_ms.saturating_mul(1_000)),
                        reset_unix_ms: reset_s.saturating_mul(1_000),
                    })
                }
                AttemptOutcome::Timeout | AttemptOutcome::Transport(_) => None,
            })
        })
        .collect();
    spent.sort_by_key(|s| (s.ended_us, s.op, s.index));
    spent
}

/// Slack, in ms, for the rounding of recorded times when judging a held send: a hold this
/// short is not judged, and the bucket must hold this much refill beyond a whole token.
const HOLD_SLACK_MS: u64 = 3;

/// The other side of the client's own rate limit: it holds a send back only when its
/// bucket is empty. For every attempt the client held back (sent later than its operation
/// started, or than its backoff ended: only the limiter delays a send), the oracle replays
/// the configured bucket over every send of the client up to the moment the attempt was
/// ready (and a few ms after, for rounding); if that bucket held a whole token then, the
/// client throttled below its own limit (a bucket that loses its burst, or refills too
/// slowly). With an adaptive limit, a hold that a spent server allowance may explain is
/// not judged.
fn held(
    input: &OracleInput<'_>,
    client: &str,
    ops: &[&Operation],
    sends: &[Sent],
    found: &mut Vec<Violation>,
) {
    let Some(limit) = input.scenario.client.rate_limit else {
        return;
    };
    let spent = if limit.adaptive {
        spent_of(ops)
    } else {
        Vec::new()
    };
    let clock = crate::run::clock::SimClock::for_host(client, &input.scenario.faults);
    let waits: BTreeMap<(OpId, u32), u64> = ops
        .iter()
        .flat_map(|op| {
            op.attempts
                .iter()
                .scan(None, crate::reach::throttle_wait_ms)
                .zip(&op.attempts)
                .map(move |(wait_ms, a)| ((op.id, a.index), wait_ms))
        })
        .collect();
    for sent in sends {
        let wait_ms = waits.get(&(sent.op, sent.index)).copied().unwrap_or(0);
        if wait_ms <= HOLD_SLACK_MS {
            continue;
        }
        let ready_us = sent.sent_us.saturating_sub(wait_ms.saturating_mul(1_000));
        let ready_ms = clock.at(std::time::Duration::from_micros(ready_us));
        if spent.iter().any(|s| {
            s.ended_us <= sent.sent_us && ready_ms < s.reset_unix_ms.saturating_add(RESET_SLACK_MS)
        }) {
            continue;
        }
        // The bucket when the attempt was ready: full at the client's first send, every
        // send up to a few ms after that moment taken out.
        let counted_until_us = ready_us.saturating_add(HOLD_SLACK_MS * 1_000);
        let mut bucket = Bucket::new(limit);
        for earlier in sends.iter().take_while(|e| e.sent_us <= counted_until_us) {
            if (earlier.op, earlier.index) != (sent.op, sent.index) {
                bucket.refill_to(earlier.sent_us);
                bucket.take();
            }
        }
        bucket.refill_to(ready_us);
        let tokens = bucket.tokens;
        if tokens >= TOKEN + bucket.refill_per_us.saturating_mul(HOLD_SLACK_MS * 1_000) {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "{client} held a send back {wait_ms} ms though its own rate limit of {} per second (burst {}) allowed it",
                        limit.per_second, limit.burst
                    ),
                )
                .ops([sent.op])
                .evidence(format!(
                    "attempt {} of op {} was ready at {:.3} s and went out at {:.3} s; replayed over the client's sends on the wire, its bucket held {:.2} token(s) when it was ready",
                    sent.index,
                    sent.op,
                    ready_us as f64 / 1e6,
                    sent.sent_us as f64 / 1e6,
                    tokens as f64 / TOKEN as f64
                )),
            );
            return;
        }
    }
}

/// Retries never exceed the reserve plus `percent`% of the first attempts sent so far.
fn budget(input: &OracleInput<'_>, client: &str, sends: &[Sent], found: &mut Vec<Violation>) {
    let Some(budget) = input.scenario.client.budget else {
        return;
    };
    let (mut firsts, mut retries) = (0u64, 0u64);
    for sent in sends {
        if sent.first {
            firsts += 1;
            continue;
        }
        retries += 1;
        if retries * 100 > u64::from(budget.reserve) * 100 + u64::from(budget.percent) * firsts {
            found.push(
                Violation::new(ORACLE, input, format!("{client} overspent its retry budget"))
                    .ops([sent.op])
                    .evidence(format!(
                        "retry #{retries} after {firsts} first attempts; budget allows {} + {}% of first attempts",
                        budget.reserve, budget.percent
                    )),
            );
            return;
        }
    }
}

/// A client never gives up for want of budget while the budget certainly had a retry left.
/// The balance at the give-up (the end of the operation's last attempt) is bounded from
/// below: the reserve plus `percent` per first attempt surely sent before it, capped as
/// the client caps it (ten times the reserve, at least ten retries), less one retry for
/// every retry that may have been decided before it (its previous attempt had ended). A
/// millisecond of slack either way covers the rounding of recorded times. That bound is
/// never above the true balance, so a correct client never trips it.
fn gave_up_early(
    input: &OracleInput<'_>,
    client: &str,
    ops: &[&Operation],
    found: &mut Vec<Violation>,
) {
    let Some(budget) = input.scenario.client.budget else {
        return;
    };
    let prefix = budget_exhausted_prefix();
    let at_us = |op: &Operation, ms: u64| op.invoked_at_us.saturating_add(ms.saturating_mul(1_000));
    let reserve = u64::from(budget.reserve) * 100;
    let cap = reserve.max(100) * 10;
    for op in ops {
        let gave_up = matches!(&op.outcome, crate::run::history::OpOutcome::Failed { reason } | crate::run::history::OpOutcome::Ambiguous { reason } if reason.starts_with(&prefix));
        let Some(last) = op.attempts.last() else {
            continue;
        };
        if !gave_up {
            continue;
        }
        let gave_up_us = at_us(op, last.ended_at_ms);
        let earned = ops
            .iter()
            .flat_map(|o| o.attempts.iter().map(move |a| (o, a)))
            .filter(|(o, a)| {
                a.index == 0 && at_us(o, a.sent_at_ms).saturating_add(1_000) <= gave_up_us
            })
            .count() as u64;
        // A retry is decided when the attempt before it ends. An operation's last attempt
        // may have spent one too without a send (the deadline or the breaker stopped it
        // after the budget granted it), unless the operation ended there for another
        // reason it records (a success, a refusal) or is the one that gave up.
        let spent = ops
            .iter()
            .flat_map(|o| {
                let last_may_spend = o.id != op.id
                    && matches!(
                        o.outcome,
                        crate::run::history::OpOutcome::Failed { .. }
                            | crate::run::history::OpOutcome::Ambiguous { .. }
                    );
                let decided = o
                    .attempts
                    .len()
                    .saturating_sub(usize::from(!last_may_spend));
                o.attempts
                    .iter()
                    .take(decided)
                    .map(move |a| at_us(o, a.ended_at_ms))
            })
            .filter(|decided_us| *decided_us <= gave_up_us.saturating_add(1_000))
            .count() as u64;
        let balance = reserve
            .saturating_add(u64::from(budget.percent).saturating_mul(earned))
            .min(cap)
            .saturating_sub(spent.saturating_mul(100));
        if balance >= 100 {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!("{client} gave up op {} for want of retry budget while the budget had a retry left", op.id),
                )
                .ops([op.id])
                .evidence(format!(
                    "at {:.3} s: {earned} first attempts sent, at most {spent} retries decided; budget {} + {}% of first attempts leaves at least {} hundredths of a retry",
                    gave_up_us as f64 / 1e6,
                    budget.reserve,
                    budget.percent,
                    balance
                )),
            );
            return;
        }
    }
}

/// How a budget refusal reads in an operation's outcome.
fn budget_exhausted_prefix() -> String {
    let text = ClientError::RetryBudgetExhausted {
        attempts: 0,
        last: String::new(),
    }
    .to_string();
    text.split(" after")
        .next()
        .unwrap_or("retry budget exhausted")
        .to_string()
}

/// After `failures_to_open` consecutive transient failures the breaker is open: at most a
/// probe may go out during the cooldown. And the breaker only refuses shortly after a
/// failure: it recovers.
fn breaker(
    input: &OracleInput<'_>,
    client: &str,
    ops: &[&Operation],
    sends: &[Sent],
    found: &mut Vec<Violation>,
) {
    let Some(breaker) = input.scenario.client.breaker else {
        return;
    };
    let mut ends: Vec<&Sent> = sends.iter().collect();
    ends.sort_by_key(|s| (s.ended_us, s.op));
    let cooldown_us = breaker.cooldown_ms.saturating_mul(1_000);
    let mut streak = 0;
    let mut opened_at_us: Option<u64> = None;
    for end in &ends {
        // Attempts in flight when the breaker opened end into an open circuit: ignored.
        if opened_at_us.is_some_and(|t| end.sent_us < t) {
            continue;
        }
        if !end.transient {
            streak = 0;
            continue;
        }
        streak += 1;
        if streak < breaker.failures_to_open {
            continue;
        }
        streak = 0;
        let opened = end.ended_us;
        opened_at_us = Some(opened);
        let inside: Vec<&Sent> = sends
            .iter()
            .filter(|s| s.sent_us > opened + 1_000 && s.sent_us + 1_000 < opened + cooldown_us)
            .collect();
        if inside.len() > COOLDOWN_SENDS_SLACK {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "{client}'s circuit breaker did not open: {} attempts inside the cooldown",
                        inside.len()
                    ),
                )
                .ops(inside.iter().map(|s| s.op))
                .evidence(format!(
                    "{} consecutive failures ended at {} us; cooldown {} ms",
                    breaker.failures_to_open, opened, breaker.cooldown_ms
                )),
            );
            return;
        }
    }
    let slack_us = cooldown_us
        .saturating_add(
            input
                .scenario
                .client
                .timeout_ms_per_attempt
                .saturating_mul(1_000),
        )
        .saturating_add(2_000);
    for op in ops {
        let refused = matches!(&op.outcome, crate::run::history::OpOutcome::Failed { reason } | crate::run::history::OpOutcome::Ambiguous { reason } if reason.starts_with(&circuit_open_prefix()));
        if !refused {
            continue;
        }
        let refused_at = op.invoked_at_us.saturating_add(
            op.attempts
                .last()
                .map_or(0, |a| a.ended_at_ms.saturating_mul(1_000)),
        );
        let recent = ends.iter().any(|e| {
            e.transient && e.ended_us <= refused_at + 1_000 && refused_at <= e.ended_us + slack_us
        });
        if !recent {
            found.push(
                Violation::new(
                    ORACLE,
                    input,
                    format!(
                        "{client}'s circuit breaker refused op {} with no recent failure",
                        op.id
                    ),
                )
                .ops([op.id])
                .evidence("an open breaker must let a probe through after its cooldown"),
            );
        }
    }
}

/// How a breaker refusal reads in an operation's outcome.
fn circuit_open_prefix() -> String {
    let text = ClientError::CircuitOpen {
        attempts: 0,
        last: String::new(),
    }
    .to_string();
    text.split(" after")
        .next()
        .unwrap_or("circuit open")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::super::testing::op_kind;
    use shipsim_system::client::AttemptOutcome;

    use super::super::testing::{Fixture, assert_one, attempt};
    use super::*;
    use crate::run::history::OpOutcome;

    /// A response; `retry_after_ms` (whole seconds) is sent as a raw `Retry-After`, and
    /// the client is recorded as having parsed it right.
    fn response(status: u16, retry_after_ms: Option<u64>) -> AttemptOutcome {
        AttemptOutcome::Response {
            status,
            retry_after_ms,
            replayed: false,
            error_code: None,
            advertised: Advertised {
                retry_after: retry_after_ms.map(|ms| (ms / 1_000).to_string()),
                ..Advertised::default()
            },
        }
    }

    /// A response whose raw headers are `retry_after` and `reset`, and whose client parsed
    /// `Retry-After` as `believed_ms`.
    fn on_the_wire(
        status: u16,
        retry_after: &str,
        reset: Option<&str>,
        believed_ms: Option<u64>,
    ) -> AttemptOutcome {
        AttemptOutcome::Response {
            status,
            retry_after_ms: believed_ms,
            replayed: false,
            error_code: None,
            advertised: Advertised {
                remaining: reset.map(|_| "0".to_string()),
                reset: reset.map(str::to_string),
                retry_after: Some(retry_after.to_string()),
            },
        }
    }

    /// Attempt `index` sent at `sent_ms` (since the operation started), 10 ms long.
    fn at(
        index: u32,
        sent_ms: u64,
        outcome: AttemptOutcome,
    ) -> shipsim_system::client::AttemptRecord {
        let mut record = attempt(index, 0, outcome, Some("k"));
        record.sent_at_ms = sent_ms;
        record.ended_at_ms = sent_ms + 10;
        record
    }

    #[test]
    fn retry_after_is_judged_from_the_raw_header() {
        // Proves the oracle reads Retry-After itself: a client that believed the server
        // asked for 1 ms (a misparse) and retried 50 ms later is caught against the 2 s
        // on the wire; waiting out the 2 s is fine whatever the client believed.
        let misread = one_op(vec![
            at(0, 0, on_the_wire(429, "2", None, Some(1))),
            at(1, 60, response(201, None)),
        ]);
        assert_one(&misread, "retried 50 ms after a Retry-After of 2000 ms");
        assert!(
            misread[0]
                .evidence
                .iter()
                .any(|e| e.contains("believed it asked for 1 ms")),
            "{misread:?}"
        );
        let patient = one_op(vec![
            at(0, 0, on_the_wire(429, "2", None, Some(1))),
            at(1, 2_010, response(201, None)),
        ]);
        assert_eq!(patient, vec![]);
    }

    #[test]
    fn retry_after_dates_are_read_against_the_client_clock() {
        // Proves the HTTP-date form: a date 6 s into the run, answered 10 ms into an
        // operation that starts 3,020 ms in (one_op's), asks for 2,970 ms;
        // retrying 1 s later is caught, 3 s later is not.
        let date = shipsim_system::client::http_date(crate::run::clock::EPOCH_UNIX_MS + 6_000);
        let early = one_op(vec![
            at(0, 0, on_the_wire(503, &date, None, Some(2_970))),
            at(1, 1_010, response(201, None)),
        ]);
        assert_one(&early, "retried 1000 ms after a Retry-After of 2970 ms");
        let patient = one_op(vec![
            at(0, 0, on_the_wire(503, &date, None, Some(2_970))),
            at(1, 3_000, response(201, None)),
        ]);
        assert_eq!(patient, vec![]);
    }

    #[test]
    fn unparseable_retry_after_is_a_located_violation() {
        // Proves a Retry-After that is neither form is reported, naming the op and attempt.
        let found = one_op(vec![at(0, 0, on_the_wire(429, "soon", None, None))]);
        assert_one(
            &found,
            "attempt 0 was answered 429 with an unparseable Retry-After",
        );
        assert_eq!(parse_retry_after(" 7 "), Some(WireRetryAfter::Seconds(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(WireRetryAfter::AtUnixS(784_111_777))
        );
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after(""), None);
    }

    #[test]
    fn reset_disagreeing_with_retry_after_is_caught() {
        // Proves a 429 whose X-RateLimit-Reset is not (about) the server's time plus its
        // Retry-After is caught, and one that agrees is not (the fixture's service clock
        // reads the epoch at the start of the run; one_op's operation starts 3,020 ms in).
        let epoch_s = crate::run::clock::EPOCH_UNIX_MS / 1_000;
        let agree = (epoch_s + 5).to_string();
        let found = one_op(vec![at(
            0,
            0,
            on_the_wire(429, "2", Some(&agree), Some(2_000)),
        )]);
        assert_eq!(found, vec![]);
        let far = (epoch_s * 2).to_string();
        let found = one_op(vec![at(
            0,
            0,
            on_the_wire(429, "2", Some(&far), Some(2_000)),
        )]);
        assert_one(
            &found,
            "whose X-RateLimit-Reset disagrees with its Retry-After",
        );
    }

    #[test]
    fn a_service_429_asking_longer_than_a_refill_is_caught() {
        // Proves the service's own 429 (it carries X-RateLimit-Reset) is held to the
        // scenario's documented rate: at one token a second, Retry-After 2 (what a limiter
        // that adds the leftover milli-tokens to the missing ones asks) is a violation,
        // Retry-After 1 is not; without a `[service] rate_limit` nothing is judged.
        let epoch_s = crate::run::clock::EPOCH_UNIX_MS / 1_000;
        let limited = |retry_after: &str, wait_ms: u64| {
            let reset = (epoch_s + 4 + wait_ms / 1_000).to_string();
            let mut fixture = Fixture::happy();
            fixture.scenario.service.rate_limit = Some(shipsim_system::service::RateLimit {
                burst: 2,
                per_second: 1,
            });
            fixture.op(
                "merchant-0",
                op_kind("create_order"),
                Some("order-9"),
                Some("{}"),
                None,
                vec![at(
                    0,
                    0,
                    on_the_wire(429, retry_after, Some(&reset), Some(wait_ms)),
                )],
                OpOutcome::Failed { reason: "x".into() },
            );
            fixture.check(ORACLE)
        };
        assert_eq!(limited("1", 1_000), vec![]);
        assert_one(
            &limited("2", 2_000),
            "asking for Retry-After 2 s, longer than a token takes to refill",
        );
    }

    fn one_op(attempts: Vec<shipsim_system::client::AttemptRecord>) -> Vec<Violation> {
        let mut fixture = Fixture::happy();
        fixture.op(
            "merchant-0",
            op_kind("create_order"),
            Some("order-9"),
            Some("{}"),
            None,
            attempts,
            OpOutcome::Failed { reason: "x".into() },
        );
        fixture.check(ORACLE)
    }

    #[test]
    fn retrying_a_400_is_caught() {
        // Proves a retry after a non-retryable 400 is a violation.
        let found = one_op(vec![
            attempt(0, 0, response(400, None), Some("k")),
            attempt(1, 10, response(400, None), Some("k")),
        ]);
        assert_one(&found, "retried after a non-retryable 400");
    }

    #[test]
    fn retrying_before_retry_after_is_caught() {
        // Proves a retry sooner than Retry-After is a violation; waiting it out is fine.
        let early = one_op(vec![
            attempt(0, 0, response(429, Some(1_000)), Some("k")),
            attempt(1, 40, response(201, None), Some("k")),
        ]);
        assert_one(&early, "retried 130 ms after a Retry-After of 1000 ms");
        let patient = one_op(vec![
            attempt(0, 0, response(429, Some(1_000)), Some("k")),
            attempt(1, 1_000, response(201, None), Some("k")),
        ]);
        assert_eq!(patient, vec![]);
    }

    #[test]
    fn changing_keys_and_overlong_backoff_are_caught() {
        // Proves a key change between attempts and a wait beyond the backoff cap are each
        // caught (cap for the first retry: base 50 ms).
        let keys = one_op(vec![
            attempt(0, 0, response(503, None), Some("k")),
            attempt(1, 10, response(201, None), Some("k2")),
        ]);
        assert_one(&keys, "changed its idempotency key");
        let slow = one_op(vec![
            attempt(0, 0, response(503, None), Some("k")),
            attempt(1, 5_000, response(201, None), Some("k")),
        ]);
        assert_one(&slow, "above its bound of 50 ms");
    }

    #[test]
    fn retry_storm_overspends_the_budget() {
        // Proves a client retrying far beyond reserve + percent of its first attempts is
        // caught once (per client), naming the retry that overspent.
        let mut attempts = vec![attempt(0, 0, AttemptOutcome::Timeout, Some("k"))];
        for index in 1..40 {
            attempts.push(attempt(index, 1, AttemptOutcome::Timeout, Some("k")));
        }
        let mut fixture = Fixture::happy();
        fixture.scenario.client.attempt_count_max = 100;
        fixture.scenario.client.breaker = None;
        fixture.op(
            "merchant-0",
            op_kind("create_order"),
            Some("k"),
            Some("{}"),
            None,
            attempts,
            OpOutcome::Failed { reason: "x".into() },
        );
        assert_one(&fixture.check(ORACLE), "overspent its retry budget");
    }

    #[test]
    fn breaker_that_never_opens_is_caught() {
        // Proves a burst of attempts right after enough consecutive failures to open the
        // breaker is caught; the default breaker opens after 8 failures for 500 ms.
        let mut attempts = vec![attempt(0, 0, AttemptOutcome::Timeout, Some("k"))];
        for index in 1..14 {
            attempts.push(attempt(index, 1, AttemptOutcome::Timeout, Some("k")));
        }
        let mut fixture = Fixture::happy();
        fixture.scenario.client.attempt_count_max = 100;
        fixture.scenario.client.budget = None;
        fixture.op(
            "merchant-0",
            op_kind("create_order"),
            Some("k"),
            Some("{}"),
            None,
            attempts,
            OpOutcome::Failed { reason: "x".into() },
        );
        assert_one(&fixture.check(ORACLE), "circuit breaker did not open");
    }

    /// One operation that gave up for want of budget after `attempts` attempts (all 503s),
    /// with the scenario's budget `reserve` retries and no percentage.
    fn gave_up(reserve: u32, attempts: u32) -> Vec<Violation> {
        let mut fixture = Fixture::happy();
        fixture.scenario.client.attempt_count_max = 100;
        fixture.scenario.client.breaker = None;
        fixture.scenario.client.budget = Some(shipsim_system::client::RetryBudget {
            percent: 0,
            reserve,
        });
        let reason = ClientError::RetryBudgetExhausted {
            attempts,
            last: "503".into(),
        }
        .to_string();
        fixture.op(
            "merchant-0",
            op_kind("create_order"),
            Some("k"),
            Some("{}"),
            None,
            (0..attempts)
                .map(|index| at(index, u64::from(index) * 100, response(503, None)))
                .collect(),
            OpOutcome::Failed { reason },
        );
        fixture.check(ORACLE)
    }

    #[test]
    fn giving_up_while_the_budget_allows_a_retry_is_caught() {
        // Proves a client that stops for want of budget with retries left is caught: with
        // a reserve of 3, giving up after the first attempt (no retry spent) or after 3
        // attempts (2 spent) is a violation; after 4 attempts (3 spent) it is not.
        assert_one(
            &gave_up(3, 1),
            "gave up op 2 for want of retry budget while the budget had a retry left",
        );
        assert_one(&gave_up(3, 3), "while the budget had a retry left");
        assert_eq!(gave_up(3, 4), vec![]);
    }

    /// A 201 that advertised the caller's allowance spent until unix second `reset_s`.
    fn spent(reset_s: u64) -> AttemptOutcome {
        AttemptOutcome::Response {
            status: 201,
            retry_after_ms: None,
            replayed: false,
            error_code: None,
            advertised: Advertised {
                remaining: Some("0".into()),
                reset: Some(reset_s.to_string()),
                retry_after: None,
            },
        }
    }

    /// Two operations of client-0, one second apart (the fixture's clock): the first's
    /// response says `reset_s`; the second is sent 1 s after it ended, 2.01 s into the run.
    fn after_spent_budget(reset_s: u64, adaptive: bool) -> Vec<Violation> {
        let mut fixture = Fixture::new();
        fixture.scenario.client.rate_limit = Some(shipsim_system::client::ClientRateLimit {
            burst: 10,
            per_second: 10,
            adaptive,
        });
        for (key, outcome) in [("k1", spent(reset_s)), ("k2", response(201, None))] {
            fixture.op(
                "merchant-0",
                op_kind("create_order"),
                Some(key),
                Some("{}"),
                None,
                vec![attempt(0, 0, outcome, Some(key))],
                OpOutcome::Failed { reason: "x".into() },
            );
        }
        fixture.check(ORACLE)
    }

    #[test]
    fn sending_into_an_advertised_spent_budget_is_caught() {
        // Proves an adaptive client that sends after the server said Remaining: 0 and before
        // the Reset it gave is caught, naming how early; that sending after the reset is
        // fine; and that a non-adaptive client is not held to the advertised budget.
        let epoch_s = crate::run::clock::EPOCH_UNIX_MS / 1_000;
        assert_one(
            &after_spent_budget(epoch_s + 3, true),
            "sent while the server's advertised budget was spent, 990 ms before its reset",
        );
        assert_eq!(after_spent_budget(epoch_s + 2, true), vec![]);
        assert_eq!(after_spent_budget(epoch_s + 3, false), vec![]);
    }

    /// Three operations of client-0, one second apart, under a limit of `burst` at 1 per
    /// second: the first sent at once, the second at once, the third held `held_ms`.
    fn held_third(burst: u32, held_ms: u64) -> Vec<Violation> {
        let mut fixture = Fixture::new();
        fixture.scenario.client.rate_limit = Some(shipsim_system::client::ClientRateLimit {
            burst,
            per_second: 1,
            adaptive: false,
        });
        for (key, sent_at_ms) in [("k1", 0), ("k2", 0), ("k3", held_ms)] {
            let mut sent = attempt(0, 0, response(201, None), Some(key));
            sent.sent_at_ms = sent_at_ms;
            sent.ended_at_ms = sent_at_ms + 10;
            fixture.op(
                "merchant-0",
                op_kind("create_order"),
                Some(key),
                Some("{}"),
                None,
                vec![sent],
                OpOutcome::Failed { reason: "x".into() },
            );
        }
        fixture.check(ORACLE)
    }

    #[test]
    fn holding_a_send_the_limit_allows_is_caught() {
        // Proves the other side of the client's own limit: with a burst of 3 the third
        // operation (1 s after the second) found tokens in the bucket, so holding it 400 ms
        // is throttling below the limit (a bucket that lost its burst); with a burst of 1
        // the bucket, spent by the second send 1 s earlier, had just refilled one token,
        // less than a token plus the rounding slack, so the same hold is not judged; nor is
        // a hold of a millisecond or two, which is rounding.
        assert_one(
            &held_third(3, 400),
            "client-0 held a send back 400 ms though its own rate limit of 1 per second (burst 3) allowed it",
        );
        assert_eq!(held_third(1, 400), vec![]);
        assert_eq!(held_third(3, 2), vec![]);
    }

    #[test]
    fn advertised_budget_is_read_from_the_raw_headers() {
        // Proves only `Remaining: 0` with a numeric reset holds sends: a positive remaining,
        // a missing or malformed reset hold nothing.
        let of = |remaining: Option<&str>, reset: Option<&str>| Advertised {
            remaining: remaining.map(str::to_string),
            reset: reset.map(str::to_string),
            retry_after: None,
        };
        assert_eq!(of(Some("0"), Some("17")).spent_until_unix_s(), Some(17));
        assert_eq!(of(Some(" 0 "), Some("17")).spent_until_unix_s(), Some(17));
        assert_eq!(of(Some("1"), Some("17")).spent_until_unix_s(), None);
        assert_eq!(of(Some("0"), None).spent_until_unix_s(), None);
        assert_eq!(of(Some("0"), Some("soon")).spent_until_unix_s(), None);
        assert_eq!(of(None, Some("17")).spent_until_unix_s(), None);
    }
}
