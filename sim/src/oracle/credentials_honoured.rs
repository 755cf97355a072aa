//! `credentials_honoured`: a key rotation (`[credentials]`) causes no downtime. Each
//! operation's key is the one its client used when it started (the caller's new key from
//! the rotation time by the client's clock, the old one before); the old key is active until
//! its retirement by the service's clock, the new one throughout. An attempt answered 401
//! whose key was still active when the attempt ended (so also whenever the service read it)
//! is a violation: the service refused a credential it had promised to honour.
//!
//! Judged from the history only (the attempts' times and statuses) and the scenario; a run
//! without `[credentials]` has nothing to judge.
//!
//! With a webhook secret rotation (`rotate_secrets_at_ms` ..), the same promise for the
//! merchants' receiver, judged from the wire: each delivery's raw signature header and body
//! say which secrets signed it (the MACs are recomputed here, no component is asked). A
//! delivery refused with a 4xx is a violation when a secret that signed it was in the
//! receiver's accepted set (old until the retirement, new from the receiver's switch, by the
//! receiver's clock) for the whole time the delivery was on the wire, and its timestamp
//! was within the tolerance throughout: the rotation cost the merchant a delivery.

use shipsim_system::client::AttemptOutcome;

use super::{OracleInput, OracleKind, SignedDelivery, Violation};
use crate::run::clock::{EPOCH_UNIX_MS, SimClock};
use crate::scenario::SecretRotationSettings;

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
    if let Some(secrets) = rotation.secrets {
        refused_deliveries(input, secrets, &mut found);
    }
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

/// Deliveries refused although the rotation's schedule had the service sign them under a
/// secret the receiver accepted throughout.
fn refused_deliveries(
    input: &OracleInput<'_>,
    rotation: SecretRotationSettings,
    found: &mut Vec<Violation>,
) {
    let Some(view) = input.webhooks else { return };
    let receiver = SimClock::for_host(crate::run::hosts::RECEIVER, &input.scenario.faults);
    let service = SimClock::for_host(SERVICE_HOST, &input.scenario.faults);
    let on = |clock: &SimClock, us: u64| clock.at(std::time::Duration::from_micros(us));
    let rotated_at_ms = EPOCH_UNIX_MS + rotation.rotate_at_ms;
    let switched_at_ms = EPOCH_UNIX_MS + rotation.receiver_switches_at_ms;
    let retired_at_ms = EPOCH_UNIX_MS + rotation.retire_old_at_ms;
    // The first refusal per merchant is reported, with how many followed it.
    let mut reported: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for delivery in &view.deliveries {
        if !delivery.status.is_some_and(|s| (400..500).contains(&s)) {
            continue;
        }
        let Some(header) = delivery.signature.as_deref() else {
            continue;
        };
        let Some(signed_at_s) = crate::reach::signed_at_s(header) else {
            continue;
        };
        let start_ms = on(&receiver, delivery.sent_at_us);
        let end_ms = on(&receiver, delivery.answered_at_us);
        let fresh = [start_ms, end_ms]
            .iter()
            .all(|ms| (ms / 1_000).abs_diff(signed_at_s) < view.settings.tolerance_s);
        let old = crate::reference::deployment::merchant_secret(&delivery.caller);
        let new = SecretRotationSettings::rotated_secret(&old);
        let carried = [
            signed_under(&old, header, delivery),
            signed_under(&new, header, delivery),
        ];
        // A forged or tampered body (no secret's MAC matches) or a stale timestamp is
        // refused rightly, rotation or not.
        if !fresh || carried == [false, false] {
            continue;
        }
        let signed_ms = on(&service, delivery.sent_at_us);
        let owed = [signed_ms < retired_at_ms, signed_ms >= rotated_at_ms];
        let accepted = [end_ms < retired_at_ms, start_ms >= switched_at_ms];
        let names = ["old", "new"];
        let Some(due) = (0..2).find(|&i| owed[i] && accepted[i]) else {
            continue;
        };
        if let Some((_, more)) = reported.get_mut(delivery.caller.as_str()) {
            *more += 1;
            continue;
        }
        reported.insert(&delivery.caller, (found.len(), 0));
        let wire: Vec<&str> = (0..2).filter(|&i| carried[i]).map(|i| names[i]).collect();
        found.push(
            Violation::new(
                ORACLE,
                input,
                format!(
                    "a webhook delivery to {} was refused with {} although the rotation had it \
                     signed with the {} secret, which the receiver accepted; the wire carried \
                     the {} secret's signature",
                    delivery.caller,
                    delivery.status.unwrap_or_default(),
                    names[due],
                    wire.join(" and ")
                ),
            )
            .evidence(format!(
                "sent at {:.3} s, signature `{header}`; the secrets rotated at {} ms, the \
                 receiver switched at {} ms, the old one retired at {} ms",
                delivery.sent_at_us as f64 / 1e6,
                rotation.rotate_at_ms,
                rotation.receiver_switches_at_ms,
                rotation.retire_old_at_ms
            )),
        );
    }
    for (index, more) in reported.into_values() {
        if more > 0 {
            found[index]
                .evidence
                .push(format!("{more} more such refusals of this merchant"));
        }
    }
}

/// Whether one of the header's `v1=` MACs is `secret`'s over the delivery's body.
fn signed_under(secret: &str, header: &str, delivery: &SignedDelivery) -> bool {
    let signed_at_s = crate::reach::signed_at_s(header).unwrap_or_default();
    shipsim_system::webhook::verify(
        secret,
        Some(header),
        &delivery.body,
        signed_at_s.saturating_mul(1_000),
        u64::MAX,
    )
    .is_ok()
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
            secrets: None,
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

#[cfg(test)]
mod secret_tests {
    use shipsim_system::webhook::sign_rotating;

    use super::super::testing::{Fixture, assert_one};
    use super::super::{SignedDelivery, WebhookView};
    use super::*;
    use crate::scenario::{CredentialSettings, WebhookSettings};

    /// One delivery to merchant-0 sent 1 s into the run and answered 10 ms later with
    /// `status`, signed at that time under the old and/or new secret, its body `body` on
    /// the wire; the secrets rotate at 500 ms, the receiver switches at 2 s, the old secret
    /// is retired at 5 s.
    fn judged(old: bool, new: bool, body: &[u8], status: u16) -> Vec<Violation> {
        let mut fixture = Fixture::new();
        fixture.scenario.credentials = Some(CredentialSettings {
            rotate_keys_at_ms: 100,
            retire_old_keys_at_ms: 50_000,
            secrets: Some(SecretRotationSettings {
                rotate_at_ms: 500,
                receiver_switches_at_ms: 2_000,
                retire_old_at_ms: 5_000,
            }),
        });
        let old_secret = crate::reference::deployment::merchant_secret("merchant-0");
        let new_secret = SecretRotationSettings::rotated_secret(&old_secret);
        let signed_at_s = (EPOCH_UNIX_MS + 1_000) / 1_000;
        let signature = match (old, new) {
            (true, true) => sign_rotating(&new_secret, Some(&old_secret), signed_at_s, b"{}"),
            (true, false) => sign_rotating(&old_secret, None, signed_at_s, b"{}"),
            _ => sign_rotating(&new_secret, None, signed_at_s, b"{}"),
        };
        fixture.webhooks = Some(WebhookView {
            settings: WebhookSettings {
                tracking: false,
                outbound: true,
                tolerance_s: 300,
                exception_percent: 0,
                sender: shipsim_system::webhook::SenderConfig::DEFAULT,
                poll_events: None,
                probe_operator: false,
            },
            tracking: Vec::new(),
            effects: Vec::new(),
            receiver_absorbed: (0, 0),
            forged: Default::default(),
            tables: Default::default(),
            durable: Default::default(),
            deliveries: vec![SignedDelivery {
                caller: "merchant-0".into(),
                signature: Some(signature),
                body: bytes::Bytes::copy_from_slice(body),
                sent_at_us: 1_000_000,
                answered_at_us: 1_010_000,
                status: Some(status),
                boot: 0,
            }],
            tracking_deliveries: Vec::new(),
            operator_probes: Vec::new(),
        });
        fixture.check(ORACLE)
    }

    #[test]
    fn a_delivery_refused_inside_the_rotation_is_caught_from_the_wire() {
        // Proves the wire judgement: at 1 s the schedule owes a signature under the old
        // secret, which the receiver (not switched until 2 s) accepts. Signed under the new
        // one only (the planted bug's wire) and refused: caught, naming what the wire
        // carried. Signed under both and still refused (a receiver at fault): caught. The
        // same deliveries accepted, or a tampered body refused, are no violation.
        assert_one(
            &judged(false, true, b"{}", 400),
            "signed with the old secret, which the receiver accepted; the wire carried the new",
        );
        assert_one(
            &judged(true, true, b"{}", 400),
            "the wire carried the old and new secret's signature",
        );
        assert_eq!(judged(false, true, b"{}", 200), vec![]);
        assert_eq!(judged(true, true, b"{\"x\":1}", 400), vec![]);
    }
}
