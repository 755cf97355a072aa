//! Idempotency keys: where a key's record is stored, what request it was first used with,
//! and what a new request with it must do. The decisions are pure functions of the stored
//! record, run by the repository inside the transaction that reads it
//! ([`crate::repo::Repository::with_key`]).
//!
//! - A key is scoped to the merchant: one merchant's key never replays, blocks or collides
//!   with another's.
//! - Same key, same request: the stored response is replayed with `Idempotent-Replayed:
//!   true`. Same key, another request: 422. A key whose first request is still running: 409
//!   with `Retry-After`.
//! - A payment is claimed (key record and payment row, one transaction) before the bank is
//!   called. A claim held by a process that died (another instance id), or held past its
//!   lease, is taken over and the payment resumed under the same charge key.

use axum::http::HeaderMap;
use serde::Serialize;

use crate::model::{KeyRecord, KeyState, Owner, Payment};
use crate::problem::Problem;
use crate::repo::Write;

/// The header that carries the key.
pub const HEADER: &str = "idempotency-key";
/// The header a replayed response carries, with the value `true`.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// The longest key (Stripe's limit).
pub const KEY_LEN_MAX: usize = 255;

/// The key of a create request: required, 1 to [`KEY_LEN_MAX`] printable ASCII characters.
///
/// # Errors
/// A 400 [`Problem`] naming the header.
pub fn key_from(headers: &HeaderMap) -> Result<String, Problem> {
    let Some(value) = headers.get(HEADER) else {
        return Err(Problem::invalid_field(
            "Idempotency-Key",
            "required on every create",
        ));
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= KEY_LEN_MAX)
        .filter(|k| k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            Problem::invalid_field(
                "Idempotency-Key",
                format!("1 to {KEY_LEN_MAX} printable ASCII characters"),
            )
        })?;
    Ok(key.to_string())
}

/// Where the record of `merchant`'s `key` is stored. The merchant's length prefixes it, so
/// no (merchant, key) pair can spell another's scope. With `global`, the merchant is left
/// out: the `global_keys` mistake.
#[must_use]
pub fn scope(merchant: &str, key: &str, global: bool) -> String {
    if global {
        format!("*/{key}")
    } else {
        format!("{}/{merchant}/{key}", merchant.len())
    }
}

/// The request a key is used with: method, path and the typed body (serialised in field
/// order, so two equal requests give equal fingerprints whatever order the client sent
/// their fields in), hashed with 64-bit FNV-1a.
#[must_use]
pub fn fingerprint(method: &str, path: &str, body: &impl Serialize) -> String {
    let json = serde_json::to_vec(body).expect("request types serialise");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in method
        .bytes()
        .chain([b' '])
        .chain(path.bytes())
        .chain([b'\n'])
        .chain(json)
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// What a request with a key must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key was free: the request's rows were written with it; go on.
    Fresh,
    /// A payment claimed under the key was left unfinished; it is this request's now.
    Resume {
        /// The payment to finish.
        payment: String,
    },
    /// The key's first request is still running.
    InFlight,
    /// The key's request finished: answer this.
    Replay {
        /// HTTP status.
        status: u16,
        /// Body.
        body: String,
    },
    /// The key was first used with another request.
    Reused,
}

/// How a held key may be taken over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockPolicy {
    /// Who asks, and since when.
    pub me: Owner,
    /// A holder older than this may be taken over (a wedged handler); `None`: never.
    pub lease_ms: Option<u64>,
    /// Whether a key held by another process (a crashed one: the service runs as one
    /// instance) is taken over at once.
    pub take_over_other_instances: bool,
}

impl LockPolicy {
    fn may_take(&self, holder: &Owner) -> bool {
        let expired = self
            .lease_ms
            .is_some_and(|lease| self.me.since_ms >= holder.since_ms.saturating_add(lease));
        expired || (self.take_over_other_instances && holder.instance != self.me.instance)
    }
}

/// What to do with a create that is done in one transaction (a customer): `fresh` is the
/// finished record to store with `rows` if the key is free.
#[must_use]
pub fn decide_create(
    existing: Option<KeyRecord>,
    fresh: KeyRecord,
    rows: Vec<Write>,
) -> (Vec<Write>, Claim) {
    let Some(stored) = existing else {
        let mut writes = rows;
        writes.push(Write::Key(fresh));
        return (writes, Claim::Fresh);
    };
    let claim = match stored.state {
        _ if stored.fingerprint != fresh.fingerprint => Claim::Reused,
        KeyState::Done { status, body } => Claim::Replay { status, body },
        // Such creates are never left pending; a record that is belongs to a request
        // still running.
        KeyState::Pending { .. } => Claim::InFlight,
    };
    (Vec::new(), claim)
}

/// What to do with a payment create: `fresh` is the record claiming `payment` for `lock.me`,
/// stored with it if the key is free.
#[must_use]
pub fn decide_payment(
    existing: Option<KeyRecord>,
    fresh: KeyRecord,
    payment: Payment,
    lock: &LockPolicy,
) -> (Vec<Write>, Claim) {
    let Some(mut stored) = existing else {
        return (
            vec![Write::Key(fresh), Write::Payment(payment)],
            Claim::Fresh,
        );
    };
    if stored.fingerprint != fresh.fingerprint {
        return (Vec::new(), Claim::Reused);
    }
    let (claimed, holder) = match &stored.state {
        KeyState::Done { status, body } => {
            let replay = Claim::Replay {
                status: *status,
                body: body.clone(),
            };
            return (Vec::new(), replay);
        }
        KeyState::Pending { payment, owner } => (payment.clone(), owner.as_ref()),
    };
    if holder.is_some_and(|holder| !lock.may_take(holder)) {
        return (Vec::new(), Claim::InFlight);
    }
    stored.state = KeyState::Pending {
        payment: claimed.clone(),
        owner: Some(lock.me.clone()),
    };
    (vec![Write::Key(stored)], Claim::Resume { payment: claimed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PaymentStatus;

    fn owner(instance: &str, since_ms: u64) -> Owner {
        Owner {
            instance: instance.into(),
            since_ms,
        }
    }

    fn record(fingerprint: &str, state: KeyState) -> KeyRecord {
        KeyRecord {
            scope: scope("m", "k", false),
            merchant: "m".into(),
            key: "k".into(),
            fingerprint: fingerprint.into(),
            created_ms: 0,
            state,
        }
    }

    fn payment(id: &str) -> Payment {
        Payment {
            id: id.into(),
            merchant: "m".into(),
            customer: "cus_1".into(),
            key: "k".into(),
            amount: 100,
            currency: "eur".into(),
            source: "tok_visa".into(),
            description: None,
            status: PaymentStatus::Pending,
            charge: None,
            failure_code: None,
            created_ms: 0,
        }
    }

    fn pending(payment: &str, holder: Option<Owner>) -> KeyState {
        KeyState::Pending {
            payment: payment.into(),
            owner: holder,
        }
    }

    #[test]
    fn payments_claim_replay_refuse_and_resume() {
        // Proves each branch of the payment decision: a free key claims (key and payment
        // written together), a finished key replays, another request is refused, a key held
        // by this process is in flight, and one held by a dead process, released, or past
        // its lease is taken over for the same payment.
        let policy = LockPolicy {
            me: owner("inst_b", 50_000),
            lease_ms: Some(30_000),
            take_over_other_instances: true,
        };
        let fresh = || record("f", pending("pay_new", Some(policy.me.clone())));
        let decide = |existing: Option<KeyRecord>| {
            decide_payment(existing, fresh(), payment("pay_new"), &policy)
        };

        let (writes, claim) = decide(None);
        assert_eq!(claim, Claim::Fresh);
        assert_eq!(
            writes,
            vec![Write::Key(fresh()), Write::Payment(payment("pay_new"))]
        );

        let done = KeyState::Done {
            status: 201,
            body: "{}".into(),
        };
        let (writes, claim) = decide(Some(record("f", done.clone())));
        assert!(writes.is_empty());
        assert_eq!(
            claim,
            Claim::Replay {
                status: 201,
                body: "{}".into()
            }
        );
        assert_eq!(decide(Some(record("other", done))).1, Claim::Reused);

        let mine = pending("pay_old", Some(owner("inst_b", 40_000)));
        assert_eq!(decide(Some(record("f", mine))).1, Claim::InFlight);
        for taken in [
            pending("pay_old", Some(owner("inst_a", 40_000))),
            pending("pay_old", None),
            pending("pay_old", Some(owner("inst_b", 10_000))),
        ] {
            let (writes, claim) = decide(Some(record("f", taken)));
            assert_eq!(
                claim,
                Claim::Resume {
                    payment: "pay_old".into()
                }
            );
            assert_eq!(
                writes,
                vec![Write::Key(record(
                    "f",
                    pending("pay_old", Some(policy.me.clone()))
                ))]
            );
        }
    }

    #[test]
    fn a_lock_without_lease_or_takeover_is_held_for_ever() {
        // Proves the `stuck_lock` policy: a dead process's claim is never taken over.
        let policy = LockPolicy {
            me: owner("inst_b", 1_000_000),
            lease_ms: None,
            take_over_other_instances: false,
        };
        let held = record("f", pending("pay_old", Some(owner("inst_a", 0))));
        let fresh = record("f", pending("pay_new", Some(policy.me.clone())));
        let (_, claim) = decide_payment(Some(held), fresh, payment("pay_new"), &policy);
        assert_eq!(claim, Claim::InFlight);
    }

    #[test]
    fn scopes_separate_merchants_unless_global() {
        // Proves keys are per merchant, that no merchant/key split spells another's scope,
        // and that the global mistake merges them.
        assert_ne!(scope("a", "k", false), scope("b", "k", false));
        assert_ne!(scope("a/b", "c", false), scope("a", "b/c", false));
        assert_eq!(scope("a", "k", true), scope("b", "k", true));
    }

    #[test]
    fn fingerprints_cover_method_path_and_body() {
        // Proves a fingerprint changes with each part of the request and only with them.
        let a = fingerprint("POST", "/v1/x", &serde_json::json!({"amount": 1}));
        assert_eq!(
            a,
            fingerprint("POST", "/v1/x", &serde_json::json!({"amount": 1}))
        );
        assert_ne!(
            a,
            fingerprint("POST", "/v1/y", &serde_json::json!({"amount": 1}))
        );
        assert_ne!(
            a,
            fingerprint("PUT", "/v1/x", &serde_json::json!({"amount": 1}))
        );
        assert_ne!(
            a,
            fingerprint("POST", "/v1/x", &serde_json::json!({"amount": 2}))
        );
    }
}
