//! Idempotency-Key handling, after the IETF httpapi draft and Stripe's practice.
//!
//! - The key comes from the `Idempotency-Key` header or the `idempotency_key` body field; if
//!   both are present they must agree. A write without a key is a 400.
//! - Keys are scoped to the caller.
//! - The first request's fingerprint (method, path and body without the key) is stored; a
//!   later request with the same key and a different fingerprint is a 422.
//! - A completed operation's response is replayed verbatim, marked `Idempotent-Replayed`.
//! - A request finding the operation still executing gets a 409; one finding it abandoned (no
//!   lock, a lock from an earlier boot, or a lock older than the lease) resumes it.
//! - Requests that fail validation before anything executes store nothing (Stripe: "results
//!   are only saved if an API endpoint started executing").
//! - A completed record is kept for the retention period (24 h by default, as Stripe) from
//!   its completion; after that the key is forgotten: a request with it executes as new,
//!   whether or not the sweeper ([`super::run_idempotency_sweeper`]) has deleted the record
//!   yet. Records in progress never expire: they guard a shipment a retry must resume.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::api::{FieldError, HEADER_IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_LEN_MAX};
use crate::store::{IdemState, IdempotencyRecord, RecoveryPoint, StoredResponse};

/// Picks the idempotency key from the header or the body field.
///
/// # Errors
/// 400 when neither is present, when both are present and differ, or when the key is empty,
/// too long or not printable ASCII.
pub(crate) fn extract_key(headers: &HeaderMap, body_key: Option<&str>) -> Result<String, ApiError> {
    let header_key = match headers.get(HEADER_IDEMPOTENCY_KEY) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| key_invalid("Idempotency-Key", "must be printable ASCII"))?,
        ),
    };
    let key = match (header_key, body_key) {
        (None, None) => return Err(ApiError::key_missing()),
        (Some(header), Some(body)) if header != body => {
            return Err(key_invalid(
                "idempotency_key",
                "differs from the Idempotency-Key header; send one or make them equal",
            ));
        }
        (Some(key), _) | (None, Some(key)) => key,
    };
    let field = if header_key.is_some() {
        "Idempotency-Key"
    } else {
        "idempotency_key"
    };
    if key.is_empty() {
        return Err(key_invalid(field, "must not be empty"));
    }
    if key.len() > IDEMPOTENCY_KEY_LEN_MAX {
        return Err(key_invalid(
            field,
            &format!("must be at most {IDEMPOTENCY_KEY_LEN_MAX} characters"),
        ));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(key_invalid(field, "must be printable ASCII without spaces"));
    }
    Ok(key.to_string())
}

fn key_invalid(field: &str, issue: &str) -> ApiError {
    ApiError::validation(vec![FieldError {
        field: field.into(),
        issue: issue.into(),
    }])
}

/// SHA-256 of the method, the path and the canonical body, hex, first 16 bytes.
pub(crate) fn fingerprint(method: &str, path: &str, canonical_body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(path.as_bytes());
    hasher.update([0]);
    hasher.update(canonical_body);
    let digest = hasher.finalize();
    crate::hex::encode(&digest[..16])
}

/// What a request should do given the stored record for its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// No record: execute from the start.
    Fresh,
    /// Completed before: replay this response.
    Replay(StoredResponse),
    /// Abandoned mid-way: take the lock and continue from here.
    Resume(RecoveryPoint),
    /// Another request is executing it now: 409.
    InFlight,
    /// The key was used with a different request: 422.
    KeyReused,
}

/// Who is deciding, and when.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Decider {
    pub boot: u64,
    pub now_ms: u64,
    pub lease_ms: u64,
    /// How long a completed record is remembered, ms.
    pub retention_ms: u64,
    /// Planted bug: a lock of an earlier boot counts as live.
    pub lock_ignores_boot: bool,
}

impl Decider {
    /// Decides, from the stored record (if any) and this request's fingerprint.
    pub(crate) fn decide(&self, stored: Option<&IdempotencyRecord>, fingerprint: &str) -> Decision {
        let Some(record) = stored else {
            return Decision::Fresh;
        };
        if matches!(record.state, IdemState::Completed { .. }) && self.expired(record) {
            return Decision::Fresh;
        }
        if record.fingerprint != fingerprint {
            return Decision::KeyReused;
        }
        match &record.state {
            IdemState::Completed { response } => Decision::Replay(response.clone()),
            IdemState::InProgress {
                lock: Some(lock), ..
            } if (lock.boot == self.boot || self.lock_ignores_boot)
                && self.now_ms.saturating_sub(lock.acquired_at_ms) < self.lease_ms =>
            {
                Decision::InFlight
            }
            IdemState::InProgress { recovery, .. } => Decision::Resume(recovery.clone()),
        }
    }

    /// Whether a completed record is past its retention.
    fn expired(&self, record: &IdempotencyRecord) -> bool {
        self.now_ms.saturating_sub(record.created_at_ms) >= self.retention_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{IdemScope, Lock};

    fn record(state: IdemState) -> IdempotencyRecord {
        IdempotencyRecord {
            scope: IdemScope {
                caller: "m".into(),
                key: "k".into(),
            },
            fingerprint: "fp".into(),
            created_at_ms: 0,
            state,
        }
    }

    fn in_progress(lock: Option<Lock>) -> IdemState {
        IdemState::InProgress {
            lock,
            recovery: RecoveryPoint::ShipmentCreated {
                shipment_id: "shp_1".into(),
            },
        }
    }

    const DECIDER: Decider = Decider {
        boot: 2,
        now_ms: 10_000,
        lease_ms: 5_000,
        retention_ms: 1_000_000,
        lock_ignores_boot: false,
    };

    #[test]
    fn decisions_follow_the_draft() {
        // Proves each stored state maps to the IETF-draft outcome: replay, 409, 422, resume.
        let done = record(IdemState::Completed {
            response: StoredResponse {
                status: 201,
                body: "{}".into(),
            },
        });
        assert_eq!(DECIDER.decide(None, "fp"), Decision::Fresh);
        assert!(matches!(
            DECIDER.decide(Some(&done), "fp"),
            Decision::Replay(_)
        ));
        assert_eq!(DECIDER.decide(Some(&done), "other"), Decision::KeyReused);

        let live = record(in_progress(Some(Lock {
            boot: 2,
            acquired_at_ms: 9_000,
        })));
        assert_eq!(DECIDER.decide(Some(&live), "fp"), Decision::InFlight);
        assert_eq!(DECIDER.decide(Some(&live), "other"), Decision::KeyReused);
    }

    #[test]
    fn completed_keys_are_forgotten_after_the_retention_and_others_never() {
        // Proves retention: a completed record replays until `retention_ms` after its
        // completion and is treated as absent from then on (even with another request
        // under the key); an in-progress record is never forgotten, however old.
        let done = |created_at_ms| IdempotencyRecord {
            created_at_ms,
            ..record(IdemState::Completed {
                response: StoredResponse {
                    status: 201,
                    body: "{}".into(),
                },
            })
        };
        let at = |now_ms| Decider { now_ms, ..DECIDER };
        assert!(matches!(
            at(1_000_000 - 1).decide(Some(&done(0)), "fp"),
            Decision::Replay(_)
        ));
        assert_eq!(at(1_000_000).decide(Some(&done(0)), "fp"), Decision::Fresh);
        assert_eq!(
            at(1_000_000).decide(Some(&done(0)), "other"),
            Decision::Fresh
        );
        let old_in_progress = IdempotencyRecord {
            created_at_ms: 0,
            ..record(in_progress(None))
        };
        assert!(matches!(
            at(50_000_000).decide(Some(&old_in_progress), "fp"),
            Decision::Resume(_)
        ));
    }

    #[test]
    fn abandoned_operations_resume() {
        // Proves an operation is resumed when its lock is absent, from a dead boot, or stale.
        let unlocked = record(in_progress(None));
        let dead_boot = record(in_progress(Some(Lock {
            boot: 1,
            acquired_at_ms: 9_999,
        })));
        let stale = record(in_progress(Some(Lock {
            boot: 2,
            acquired_at_ms: 4_000,
        })));
        for stored in [unlocked, dead_boot, stale] {
            assert!(
                matches!(DECIDER.decide(Some(&stored), "fp"), Decision::Resume(_)),
                "{stored:?}"
            );
        }
    }

    #[test]
    fn planted_bug_keeps_dead_locks_alive() {
        // Proves the lock-survives-crash bug really changes the decision (so its scenario can
        // catch it): a lock of a dead boot within the lease answers 409 instead of resuming.
        let dead_boot = record(in_progress(Some(Lock {
            boot: 1,
            acquired_at_ms: 9_999,
        })));
        let buggy = Decider {
            lock_ignores_boot: true,
            ..DECIDER
        };
        assert_eq!(buggy.decide(Some(&dead_boot), "fp"), Decision::InFlight);
        assert!(matches!(
            DECIDER.decide(Some(&dead_boot), "fp"),
            Decision::Resume(_)
        ));
    }

    #[test]
    fn key_extraction_rules() {
        // Proves the header/body rules: one of them required, both must agree, and bad keys
        // are 400s naming the field.
        let mut headers = HeaderMap::new();
        assert_eq!(
            extract_key(&headers, None).unwrap_err().code,
            "idempotency_key_missing"
        );
        assert_eq!(extract_key(&headers, Some("b")).unwrap(), "b");
        headers.insert(HEADER_IDEMPOTENCY_KEY, "h".parse().unwrap());
        assert_eq!(extract_key(&headers, None).unwrap(), "h");
        assert_eq!(extract_key(&headers, Some("h")).unwrap(), "h");
        let differ = extract_key(&headers, Some("b")).unwrap_err();
        assert_eq!(differ.details[0].field, "idempotency_key");
        let long = "x".repeat(IDEMPOTENCY_KEY_LEN_MAX + 1);
        assert_eq!(
            extract_key(&HeaderMap::new(), Some(&long))
                .unwrap_err()
                .code,
            "validation_failed"
        );
        assert!(extract_key(&HeaderMap::new(), Some("has space")).is_err());
        assert!(extract_key(&HeaderMap::new(), Some("")).is_err());
    }

    #[test]
    fn fingerprint_separates_fields() {
        // Proves method, path and body all count, and that the separator prevents
        // "ab"+"c" from colliding with "a"+"bc".
        let base = fingerprint("POST", "/v1/orders", b"{}");
        assert_eq!(base, fingerprint("POST", "/v1/orders", b"{}"));
        assert_ne!(base, fingerprint("POST", "/v1/orders", b"{ }"));
        assert_ne!(base, fingerprint("PUT", "/v1/orders", b"{}"));
        assert_ne!(fingerprint("P", "Ox", b""), fingerprint("PO", "x", b""));
    }
}
