//! `credentials_honoured`: a key rotation (`[credentials]`) causes no downtime. Each
//! operation's key is the one its client used when it started (the caller's new key from
//! the rotation time by the client's clock, the old one before); the old key is active until
//! its retirement by the service's clock, the new one throughout. An attempt answered 401
//! whose key was still active when the attempt ended (so also whenever the service read it)
//! is a violation: the service refused a credential it had promised to honour.
//!
//! Judged from the history only (the attempts' times and statuses) and the scenario; a run
//! without `[credentials]` has nothing to judge.

use shipsim_system::client::AttemptOutcome;

use super::{OracleInput, OracleKind, Violation};
use crate::run::clock::{EPOCH_UNIX_MS, SimClock};

const ORACLE: OracleKind = OracleKind::CredentialsHonoured;

/// The service's host name, whose clock retires keys.
const SERVICE_HOST: &str = "service";

pub(super) fn check(input: &OracleInput<'_>) -> Vec<Violation> {
    let Some(rotation) = input.scenario.credentials else {
        return Vec::new();
    };
    let rotated_at_ms = EPOCH_UNIX_MS + rotation.rotate_keys_at_ms;
    let retired_at_ms = EPOCH_UNIX_MS + rotation.retire_old_keys_at_ms;
    let service_clock = SimClock::for_host(SERVICE_HOST, &input.scenario.faults);
    let at = |us: u64| std::time::Duration::from_micros(us);
    let mut found = Vec::new();
    for op in input.history.operations() {
        let client_clock = SimClock::for_host(&op.client, &input.scenario.faults);
        let old_key = client_clock.at(at(op.invoked_at_us)) < rotated_at_ms;
        for attempt in &op.attempts {
            if !matches!(
                attempt.outcome,
                AttemptOutcome::Response { status: 401, .. }
            ) {
                continue;
            }
            let ended_us = op
                .invoked_at_us
                .saturating_add(attempt.ended_at_ms.saturating_mul(1_000));
            let ended_ms = service_clock.at(at(ended_us));
            let active = !old_key || ended_ms < retired_at_ms;
            if active {
                found.push(
                    Violation::new(
                        ORACLE,
                        input,
                        format!(
                            "op {} was refused with 401 for its caller's {} key, active until {}",
                            op.id,
                            if old_key { "old" } else { "new" },
                            if old_key {
                                format!("{} ms", rotation.retire_old_keys_at_ms)
                            } else {
                                "the end of the run".to_string()
                            }
                        ),
                    )
                    .ops([op.id])
                    .evidence(format!(
                        "attempt {} ended at {:.3} s; the rotation started at {} ms",
                        attempt.index,
                        ended_us as f64 / 1e6,
                        rotation.rotate_keys_at_ms
                    )),
                );
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use shipsim_system::client::AttemptOutcome;

    use super::super::testing::{Fixture, assert_one, attempt, op_kind};
    use super::*;
    use crate::run::history::OpOutcome;
    use crate::scenario::CredentialSettings;

    fn refused() -> AttemptOutcome {
        AttemptOutcome::Response {
            status: 401,
            retry_after_ms: None,
            replayed: false,
            error_code: Some("unauthenticated".into()),
            advertised: shipsim_system::client::Advertised::default(),
        }
    }

    /// One operation refused with 401, invoked 1 s into the run (the fixture's clock) and
    /// ended 10 ms later, under a rotation at `rotate_ms` retiring the old key at
    /// `retire_ms`.
    fn refused_under(rotation: Option<(u64, u64)>) -> Vec<Violation> {
        let mut fixture = Fixture::new();
        fixture.scenario.credentials = rotation.map(|(rotate, retire)| CredentialSettings {
            rotate_keys_at_ms: rotate,
            retire_old_keys_at_ms: retire,
        });
        fixture.op(
            "merchant-0",
            op_kind("create_order"),
            Some("k"),
            Some("{}"),
            None,
            vec![attempt(0, 0, refused(), Some("k"))],
            OpOutcome::Failed { reason: "x".into() },
        );
        fixture.check(ORACLE)
    }

    #[test]
    fn a_401_for_an_active_key_is_caught() {
        // Proves the oracle's three cases: an operation started before the rotation used the
        // old key, which is active until its retirement, so a 401 before then is caught; the
        // same 401 after the retirement is the rotation working; an operation started after
        // the rotation used the new key, never retired, so its 401 is always caught. Without
        // a rotation there is nothing to judge.
        assert_one(
            &refused_under(Some((2_000, 5_000))),
            "refused with 401 for its caller's old key, active until 5000 ms",
        );
        assert_eq!(refused_under(Some((1_005, 1_008))), vec![]);
        assert_one(
            &refused_under(Some((500, 900))),
            "refused with 401 for its caller's new key",
        );
        assert_eq!(refused_under(None), vec![]);
    }
}
