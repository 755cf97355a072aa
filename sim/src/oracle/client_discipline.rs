//! `client_discipline`: the merchant client behaved: one idempotency key per operation, no
//! retry after a non-retryable answer, never earlier than `Retry-After`, backoff within its
//! bounds, attempts within the limit.

use shipsim_system::client::{AttemptOutcome, StatusClass, backoff_cap_ms, classify_status};

use super::{OracleInput, OracleKind, Violation};
use crate::history::Phase;

const ORACLE: OracleKind = OracleKind::ClientDiscipline;

pub(super) fn check(input: &OracleInput<'_>) -> Vec<Violation> {
    let mut found = Vec::new();
    let policy = input.scenario.client;
    for op in input.history.workload() {
        assert_eq!(op.phase, Phase::Workload);
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
            let retry_after = match &previous.outcome {
                AttemptOutcome::Response {
                    status,
                    retry_after_ms,
                    ..
                } => {
                    if classify_status(*status) == StatusClass::Permanent {
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
                    *retry_after_ms
                }
                AttemptOutcome::Timeout | AttemptOutcome::Transport(_) => None,
            };
            if let Some(asked) = retry_after
                && next.waited_ms < asked
            {
                found.push(
                    Violation::new(
                        ORACLE,
                        input,
                        format!(
                            "op {} retried {} ms after a Retry-After of {asked} ms",
                            op.id, next.waited_ms
                        ),
                    )
                    .ops([op.id])
                    .evidence(format!(
                        "attempt {} asked to wait {asked} ms",
                        previous.index
                    )),
                );
            }
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
    found
}
