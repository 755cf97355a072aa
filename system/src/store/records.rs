//! The rows the service stores. They serialise (serde) so that the admin endpoint can show
//! a store's whole state to live mode's oracles.

use serde::{Deserialize, Serialize};

use crate::api::{Order, Shipment};

/// Idempotency keys are scoped to the caller: one merchant's key never matches another's.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IdemScope {
    /// The authenticated caller (merchant id).
    pub caller: String,
    /// The key the caller sent.
    pub key: String,
}

/// What the service remembers about one idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// Caller and key.
    pub scope: IdemScope,
    /// Hash of the method, path and body (without the key) of the first request.
    pub fingerprint: String,
    /// When the first request arrived, by the service's clock.
    pub created_at_ms: u64,
    /// How far the operation got.
    pub state: IdemState,
}

/// Progress of an idempotent operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdemState {
    /// Started, not finished. `lock` is held while a request is executing it; a request
    /// finding no lock (or a lock of a dead process) resumes from `recovery`.
    InProgress {
        /// The executing request's claim, if one is executing.
        lock: Option<Lock>,
        /// The last committed step.
        recovery: RecoveryPoint,
    },
    /// Finished: the stored response is replayed for every later request with this key.
    Completed {
        /// The response of the first completion.
        response: StoredResponse,
    },
}

/// A request's claim on an in-progress operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// Boot number of the process that holds it: a lock from an earlier boot is dead.
    pub boot: u64,
    /// When it was taken, by the service's clock; a lock older than the lease is stale.
    pub acquired_at_ms: u64,
}

/// The last committed step of a multi-step operation (Brandur Leach's "atomic phases").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryPoint {
    /// The shipment row exists; its label has not been stored yet.
    ShipmentCreated {
        /// The shipment being labelled.
        shipment_id: String,
    },
}

/// A response kept for replay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// HTTP status of the first completion.
    pub status: u16,
    /// Its JSON body.
    pub body: String,
}

/// An order and who created it with which key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// The order as the API shows it.
    pub order: Order,
    /// The merchant that owns it.
    pub caller: String,
    /// The idempotency key it was created with.
    pub idempotency_key: String,
}

/// A shipment and who created it with which key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentRecord {
    /// The shipment as the API shows it.
    pub shipment: Shipment,
    /// The merchant that owns it.
    pub caller: String,
    /// The idempotency key it was created with.
    pub idempotency_key: String,
    /// Webhook events announced about this shipment so far: the `sequence` of the last
    /// one (0 before the first).
    #[serde(default)]
    pub webhook_sequence: u64,
}

/// A carrier tracking event the service has taken in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessedEvent {
    /// When it arrived, by the service's clock.
    pub received_at_ms: u64,
    /// The outbox event it caused, if it moved a shipment forward.
    pub effect: Option<u64>,
}

/// An outbound webhook event and where its delivery stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRecord {
    /// Position in the outbox: commit order.
    pub seq: u64,
    /// The merchant it is for.
    pub caller: String,
    /// The event.
    pub event: crate::api::WebhookEvent,
    /// The carrier event that caused it, for shipment status events.
    pub cause: Option<String>,
    /// Delivery state.
    pub delivery: Delivery,
}

/// Where one outbound delivery stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Not delivered yet; next attempt not before `next_attempt_at_ms`.
    Pending {
        /// Attempts so far.
        attempts: u32,
        /// Earliest next attempt, by the sender's clock.
        next_attempt_at_ms: u64,
    },
    /// The receiver answered 2xx.
    Delivered {
        /// Attempts it took.
        attempts: u32,
        /// When, by the sender's clock.
        delivered_at_ms: u64,
    },
    /// Every attempt failed; kept for inspection and redelivery.
    DeadLetter {
        /// Attempts made.
        attempts: u32,
        /// How the last one failed.
        last_error: String,
    },
}

/// The sequence numbers of a delivery queue's entries that are [`Delivery::Pending`], in
/// order, and their next attempt times, in time order. A sender polls its queue every few milliseconds; scanning only what is pending
/// keeps a poll's cost proportional to the undelivered events, not to every event the
/// queue ever held (which made long webhook runs quadratic).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PendingIndex {
    /// Pending entries: sequence number -> next attempt time.
    by_seq: std::collections::BTreeMap<u64, u64>,
    /// The same entries ordered by next attempt time.
    by_time: std::collections::BTreeSet<(u64, u64)>,
}

impl PendingIndex {
    /// Records that entry `seq` is now in state `delivery`.
    pub(crate) fn note(&mut self, seq: u64, delivery: &Delivery) {
        if let Some(at_ms) = self.by_seq.remove(&seq) {
            self.by_time.remove(&(at_ms, seq));
        }
        if let Delivery::Pending {
            next_attempt_at_ms, ..
        } = delivery
        {
            self.by_seq.insert(seq, *next_attempt_at_ms);
            self.by_time.insert((*next_attempt_at_ms, seq));
        }
    }

    /// Up to `limit` entries of `queue` due at `now_ms`, lowest sequence number first, none
    /// of those in `skip`: the same entries, in the same order, as filtering the whole queue.
    pub(crate) fn due<'a, T>(
        &'a self,
        queue: &'a std::collections::BTreeMap<u64, T>,
        delivery: impl Fn(&T) -> &Delivery + 'a,
        now_ms: u64,
        limit: usize,
        skip: &'a std::collections::BTreeSet<u64>,
    ) -> impl Iterator<Item = &'a T> + 'a {
        self.by_seq
            .keys()
            .filter(move |seq| !skip.contains(seq))
            .map(move |seq| {
                queue
                    .get(seq)
                    .unwrap_or_else(|| panic!("pending index names seq {seq}, not in the queue"))
            })
            .filter(move |entry| {
                matches!(delivery(entry), Delivery::Pending { next_attempt_at_ms, .. } if *next_attempt_at_ms <= now_ms)
            })
            .take(limit)
    }

    /// The earliest time an entry not in `skip` is due, `None` when none is pending: how
    /// long a sender may sleep before its next look at the queue. Walks the entries in
    /// time order, so it costs the few in `skip`, not the whole queue.
    pub(crate) fn next_due_ms(&self, skip: &std::collections::BTreeSet<u64>) -> Option<u64> {
        self.by_time
            .iter()
            .find(|(_, seq)| !skip.contains(seq))
            .map(|(at_ms, _)| *at_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn pending_index_finds_what_a_full_scan_finds() {
        // Proves the index returns exactly the entries (and order) that filtering the whole
        // queue returns, across deliveries, retries, dead letters, skips and limits.
        let states = [
            Delivery::Pending {
                attempts: 0,
                next_attempt_at_ms: 5,
            },
            Delivery::Pending {
                attempts: 1,
                next_attempt_at_ms: 50,
            },
            Delivery::Delivered {
                attempts: 1,
                delivered_at_ms: 7,
            },
            Delivery::DeadLetter {
                attempts: 9,
                last_error: "x".into(),
            },
        ];
        let mut queue = BTreeMap::new();
        let mut index = PendingIndex::default();
        for seq in 1..200_u64 {
            let delivery = states[(seq * 7 % 4) as usize].clone();
            index.note(seq, &delivery);
            queue.insert(seq, delivery);
        }
        // Some entries change state afterwards, as settles and redeliveries do.
        for seq in (1..200_u64).step_by(5) {
            let delivery = states[(seq % 4) as usize].clone();
            index.note(seq, &delivery);
            queue.insert(seq, delivery);
        }
        let skip: BTreeSet<u64> = (1..200).step_by(3).collect();
        for now_ms in [0, 5, 49, 50, 1_000] {
            for limit in [0, 1, 4, 1_000] {
                let scanned: Vec<u64> = queue
                    .iter()
                    .filter(|(seq, _)| !skip.contains(*seq))
                    .filter(|(_, d)| matches!(d, Delivery::Pending { next_attempt_at_ms, .. } if *next_attempt_at_ms <= now_ms))
                    .take(limit)
                    .map(|(seq, _)| *seq)
                    .collect();
                let indexed: Vec<u64> = index
                    .due(&queue, |d| d, now_ms, limit, &skip)
                    .map(|d| {
                        *queue
                            .iter()
                            .find(|(_, v)| std::ptr::eq(*v, d))
                            .expect("entry")
                            .0
                    })
                    .collect();
                assert_eq!(indexed, scanned, "now {now_ms} limit {limit}");
            }
        }
        // The next due time is the earliest of the pending entries a full scan finds.
        for skip in [BTreeSet::new(), skip.clone(), (1..200).collect()] {
            let scanned = queue
                .iter()
                .filter(|(seq, _)| !skip.contains(*seq))
                .filter_map(|(_, d)| match d {
                    Delivery::Pending {
                        next_attempt_at_ms, ..
                    } => Some(*next_attempt_at_ms),
                    _ => None,
                })
                .min();
            assert_eq!(index.next_due_ms(&skip), scanned);
        }
        assert_eq!(
            index.next_due_ms(&BTreeSet::new()),
            Some(5),
            "a pending entry due at 5 exists"
        );
        assert!(
            index
                .due(&queue, |d| d, 1_000, 1_000, &BTreeSet::new())
                .next()
                .is_some()
        );
    }
}
