//! The webhook sender: delivers queued events at least once, signed, with a bounded number
//! of deliveries in flight, full-jitter exponential backoff between attempts up to a time
//! horizon (and an attempt limit), and a dead-letter state for events that reach it, from
//! which an operator redelivers them (`POST /v1/admin/outbox/redeliver`,
//! `/v1/admin/tracking/redeliver`).
//!
//! Two schedules: [`SenderConfig::LIVE`], what `shipsim serve` and `shipsim carrier` use,
//! survives a receiver that is down for hours (1 s doubling to 1 h between attempts, for up
//! to 72 h); [`SenderConfig::DEFAULT`] is the simulation's, ten attempts within the seconds
//! a simulated run lasts.
//!
//! The queue is the sender's source of truth (the service's outbox, the carrier's tracking
//! log); an event is marked delivered only after a 2xx, so a sender that crashes mid-way
//! re-sends it after the restart. Receivers must therefore deduplicate by event id.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rand_chacha::ChaCha8Rng;

use super::signature::{HEADER_SIGNATURE, SigningKeys};
use crate::client::backoff_ms;
use crate::clock::Clock;
use crate::observe::{Observer, SystemEvent};
use crate::seed::Seed;
use crate::store::Delivery;
use crate::transport::{BoxFuture, Transport};

/// One delivery to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The queue's id for it.
    pub seq: u64,
    /// The event's id (for logs and the trace).
    pub event_id: String,
    /// Where to POST it.
    pub url: String,
    /// The receiver's signing secret.
    pub secret: String,
    /// During a secret rotation, the secret being retired: the delivery is signed under
    /// both, so the receiver may hold either.
    pub previous_secret: Option<String>,
    /// A scheduled secret rotation, when one is under way: it decides at each attempt which
    /// secrets sign it (see [`SecretRotation::signing`]); `secret` is then the old one.
    pub rotation: Option<SecretRotation>,
    /// The JSON body, fixed at enqueue time so every attempt sends the same bytes.
    pub body: Bytes,
    /// Attempts made before this one.
    pub attempts: u32,
    /// When the event first became due (committed, or scheduled), by the sender's clock:
    /// the retry horizon counts from here.
    pub first_due_at_ms: u64,
}

/// A scheduled rotation of a receiver's signing secret: from `from_ms` by the sender's clock
/// each attempt is signed under the new secret and the old one (two `v1=`), from
/// `old_until_ms` under the new one only, so a receiver may switch at any time in between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRotation {
    /// The new secret.
    pub secret: String,
    /// When signing under both starts, unix ms by the sender's clock.
    pub from_ms: u64,
    /// When the old secret stops signing, unix ms by the sender's clock.
    pub old_until_ms: u64,
}

impl SecretRotation {
    /// The secrets an attempt at `now_ms` is signed under: the primary one, and the one
    /// signing beside it during the overlap. `old` is the secret before the rotation.
    #[must_use]
    pub fn signing<'a>(&'a self, old: &'a str, now_ms: u64) -> (&'a str, Option<&'a str>) {
        if now_ms < self.from_ms {
            (old, None)
        } else if now_ms < self.old_until_ms {
            (&self.secret, Some(old))
        } else {
            (&self.secret, None)
        }
    }
}

/// How a delivery attempt ended, for the queue to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryResult {
    /// 2xx: done.
    Delivered {
        /// Attempts it took.
        attempts: u32,
        /// When, by the sender's clock.
        at_ms: u64,
    },
    /// Failed; try again not before `next_at_ms`.
    Retry {
        /// Attempts so far.
        attempts: u32,
        /// Earliest next attempt, by the sender's clock.
        next_at_ms: u64,
        /// What went wrong.
        error: String,
    },
    /// Failed for the last permitted time.
    DeadLetter {
        /// Attempts made.
        attempts: u32,
        /// What went wrong last.
        error: String,
    },
}

impl DeliveryResult {
    /// The delivery state this result leaves its event in, as a queue records it.
    #[must_use]
    pub fn delivery(&self) -> Delivery {
        match self {
            DeliveryResult::Delivered { attempts, at_ms } => Delivery::Delivered {
                attempts: *attempts,
                delivered_at_ms: *at_ms,
            },
            DeliveryResult::Retry {
                attempts,
                next_at_ms,
                ..
            } => Delivery::Pending {
                attempts: *attempts,
                next_attempt_at_ms: *next_at_ms,
            },
            DeliveryResult::DeadLetter { attempts, error } => Delivery::DeadLetter {
                attempts: *attempts,
                last_error: error.clone(),
            },
        }
    }
}

/// Where a sender takes its events from and records how they went. Both are async so a
/// queue on a database that blocks (SQLite's fsync) can do its work off the async workers;
/// a queue in memory answers at once.
pub trait DeliveryQueue: Send + Sync + 'static {
    /// Up to `limit` deliveries due at `now_ms`, oldest first, none of those in `in_flight`.
    fn due(
        &self,
        now_ms: u64,
        limit: usize,
        in_flight: BTreeSet<u64>,
    ) -> BoxFuture<'_, Vec<Outgoing>>;
    /// Records the result of a delivery attempt.
    fn settle(&self, seq: u64, result: DeliveryResult) -> BoxFuture<'_, ()>;
    /// The earliest time (by the sender's clock) a pending delivery not in `in_flight` is
    /// due, `None` when none is pending. Asked only of a queue that signals its
    /// [`changes`](DeliveryQueue::changes).
    fn next_due_ms(&self, in_flight: BTreeSet<u64>) -> BoxFuture<'_, Option<u64>>;
    /// A receiver that sees a change whenever the queue gains a delivery or one is settled,
    /// so the sender sleeps until the next due time, a change, or `idle_poll_ms`, as an
    /// outbox worker woken by its database does. `None` (the default): the queue cannot
    /// tell, and the sender looks every `poll_ms`.
    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

/// How a sender behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderConfig {
    /// Time between looks at a queue that cannot signal its changes, ms; for one that
    /// can, the wait when a delivery is due but the sender could not take it (all slots in
    /// flight).
    pub poll_ms: u64,
    /// The longest wait between looks at a queue that signals its changes, ms: the
    /// fallback should a change go unseen (a clock that jumped, a commit that failed).
    pub idle_poll_ms: u64,
    /// Deliveries in flight at once. Above 1, a slow delivery lets later events overtake it:
    /// receivers see events out of order, as they do from every real sender.
    pub concurrency: usize,
    /// Per-attempt timeout, ms.
    pub timeout_ms: u64,
    /// Attempts before an event is dead-lettered, whatever the horizon says: a bound.
    pub attempt_count_max: u32,
    /// Backoff cap of the first retry, ms (doubles per retry).
    pub backoff_ms_base: u64,
    /// Largest backoff cap, ms.
    pub backoff_ms_max: u64,
    /// How long after an event first became due the sender keeps trying, ms: the last
    /// attempt is made at the horizon, and an event that fails it is dead-lettered. An
    /// event an operator redelivers after its horizon gets one attempt, and goes back to
    /// the dead letters if that fails.
    pub horizon_ms: u64,
}

impl SenderConfig {
    /// The simulation's schedule: 20 ms polls (1 s when the queue signals its changes), 4 in flight, 500 ms timeout, 10 attempts,
    /// backoff 100 ms doubling to 2 s (about 10 s of retrying before the dead letter), no
    /// time horizon (the attempt limit decides): a simulated run lasts seconds, and its
    /// scenarios heal their receivers and redeliver dead letters within that.
    pub const DEFAULT: SenderConfig = SenderConfig {
        poll_ms: 20,
        idle_poll_ms: 1_000,
        concurrency: 4,
        timeout_ms: 500,
        attempt_count_max: 10,
        backoff_ms_base: 100,
        backoff_ms_max: 2_000,
        horizon_ms: u64::MAX,
    };

    /// Live mode's schedule, for receivers that can be down for hours: 250 ms polls (5 s
    /// when the queue signals its changes), 4 in
    /// flight, 10 s per attempt, full-jitter backoff from 1 s doubling to a 1 h cap, for 72
    /// hours after the event (Stripe retries for three days), then the dead letter; about
    /// 12 attempts in the first hour, then one every 30 min on average, at most 500.
    pub const LIVE: SenderConfig = SenderConfig {
        poll_ms: 250,
        idle_poll_ms: 5_000,
        concurrency: 4,
        timeout_ms: 10_000,
        attempt_count_max: 500,
        backoff_ms_base: 1_000,
        backoff_ms_max: 3_600_000,
        horizon_ms: 72 * 3_600_000,
    };
}

const _: () = assert!(SenderConfig::LIVE.backoff_ms_base <= SenderConfig::LIVE.backoff_ms_max);
const _: () =
    assert!(SenderConfig::DEFAULT.backoff_ms_base <= SenderConfig::DEFAULT.backoff_ms_max);

/// How a failed attempt number `attempt` (1-based) at `now_ms` continues: the time of the
/// next attempt, or `None` when the event is to be dead-lettered (the attempt limit, or
/// the horizon reached). The next attempt comes after a full-jitter backoff, drawn by
/// `backoff` only when there is a next attempt, but never later than the horizon, so the
/// last attempt is made at the horizon.
pub fn next_attempt_at_ms(
    config: &SenderConfig,
    attempt: u32,
    first_due_at_ms: u64,
    now_ms: u64,
    backoff: impl FnOnce() -> u64,
) -> Option<u64> {
    let horizon_at_ms = first_due_at_ms.saturating_add(config.horizon_ms);
    if attempt >= config.attempt_count_max || now_ms >= horizon_at_ms {
        return None;
    }
    Some(now_ms.saturating_add(backoff()).min(horizon_at_ms))
}

/// Everything a delivery task needs.
struct Sender {
    name: &'static str,
    queue: Arc<dyn DeliveryQueue>,
    transport: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    rng: Mutex<ChaCha8Rng>,
    config: SenderConfig,
    observer: Arc<dyn Observer>,
    in_flight: Mutex<BTreeSet<u64>>,
    /// Signalled when a delivery ends (a slot is free, a retry may be scheduled).
    finished: tokio::sync::Notify,
    /// The receivers' secrets, each keyed once for this boot rather than per signature.
    keys: SigningKeys,
}

/// Runs a sender until its host dies. `name` tells its events apart in the trace.
pub async fn run_sender(
    name: &'static str,
    queue: Arc<dyn DeliveryQueue>,
    transport: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    seed: Seed,
    config: SenderConfig,
    observer: Arc<dyn Observer>,
) {
    let sender = Arc::new(Sender {
        name,
        queue,
        transport,
        clock,
        rng: Mutex::new(seed.rng()),
        config,
        observer,
        in_flight: Mutex::new(BTreeSet::new()),
        finished: tokio::sync::Notify::new(),
        keys: SigningKeys::default(),
    });
    let mut changes = sender.queue.changes();
    let mut wait_ms = config.poll_ms;
    let mut looked_at = tokio::time::Instant::now();
    loop {
        match changes.as_mut() {
            None => tokio::time::sleep(Duration::from_millis(wait_ms)).await,
            Some(changed) => {
                let woken = tokio::select! {
                    biased;
                    seen = changed.changed() => Some(seen.is_err()),
                    () = sender.finished.notified() => Some(false),
                    () = tokio::time::sleep(Duration::from_millis(wait_ms)) => None,
                };
                if woken == Some(true) {
                    changes = None;
                }
                if woken.is_some() {
                    // Woken by a change: at most one look per `poll_ms`, so a burst of
                    // commits is taken in batches, as polling took it.
                    tokio::time::sleep_until(looked_at + Duration::from_millis(config.poll_ms))
                        .await;
                }
            }
        }
        looked_at = tokio::time::Instant::now();
        let now_ms = sender.clock.now_ms();
        let (room, in_flight) = {
            let in_flight = sender.in_flight.lock().expect("in-flight lock poisoned");
            let room = config.concurrency.saturating_sub(in_flight.len());
            (room, in_flight.clone())
        };
        if changes.is_none() {
            wait_ms = config.poll_ms;
        } else if room == 0 {
            // A delivery that ends wakes the sender for the next one.
            wait_ms = config.idle_poll_ms;
        }
        if room == 0 {
            continue;
        }
        let due = sender.queue.due(now_ms, room, in_flight).await;
        for outgoing in due {
            sender
                .in_flight
                .lock()
                .expect("in-flight lock poisoned")
                .insert(outgoing.seq);
            tokio::spawn(sender.clone().deliver(outgoing));
        }
        if changes.is_some() {
            let in_flight = sender
                .in_flight
                .lock()
                .expect("in-flight lock poisoned")
                .clone();
            wait_ms = idle_wait_ms(&config, now_ms, sender.queue.next_due_ms(in_flight).await);
        }
    }
}

/// How long a sender whose queue signals its changes sleeps after a look at `now_ms`,
/// the queue's next delivery being due at `next_due_ms`: until then, at most
/// `idle_poll_ms`; `poll_ms` when one is due already but was not taken (no slot free, or
/// a delivery the queue holds back).
fn idle_wait_ms(config: &SenderConfig, now_ms: u64, next_due_ms: Option<u64>) -> u64 {
    match next_due_ms {
        None => config.idle_poll_ms,
        Some(at_ms) if at_ms > now_ms => (at_ms - now_ms).min(config.idle_poll_ms),
        Some(_) => config.poll_ms,
    }
}

impl Sender {
    async fn deliver(self: Arc<Self>, outgoing: Outgoing) {
        let attempt = outgoing.attempts + 1;
        let signed_at_ms = self.clock.now_ms();
        let signed_at_s = signed_at_ms / 1_000;
        let (secret, previous) = match &outgoing.rotation {
            Some(rotation) => rotation.signing(&outgoing.secret, signed_at_ms),
            None => (
                outgoing.secret.as_str(),
                outgoing.previous_secret.as_deref(),
            ),
        };
        let previous = previous.map(|previous| self.keys.key(previous));
        let signature =
            self.keys
                .key(secret)
                .sign_rotating(previous.as_ref(), signed_at_s, &outgoing.body);
        let request = http::Request::post(&outgoing.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(HEADER_SIGNATURE, signature)
            .body(outgoing.body.clone());
        let failure = match request {
            Err(error) => Some(format!("bad request: {error}")),
            Ok(request) => {
                let sent = tokio::time::timeout(
                    Duration::from_millis(self.config.timeout_ms),
                    self.transport.send(request),
                )
                .await;
                match sent {
                    Err(_) => Some("timeout".to_string()),
                    Ok(Err(error)) => Some(error.to_string()),
                    Ok(Ok(response)) if response.status().is_success() => None,
                    Ok(Ok(response)) => Some(format!("status {}", response.status().as_u16())),
                }
            }
        };
        let now_ms = self.clock.now_ms();
        let next_at_ms = failure.as_ref().and_then(|_| {
            next_attempt_at_ms(
                &self.config,
                attempt,
                outgoing.first_due_at_ms,
                now_ms,
                || {
                    let mut rng = self.rng.lock().expect("sender rng lock poisoned");
                    backoff_ms(
                        attempt - 1,
                        self.config.backoff_ms_base,
                        self.config.backoff_ms_max,
                        &mut *rng,
                    )
                },
            )
        });
        let result = match failure {
            None => {
                self.observer.record(SystemEvent::WebhookDelivered {
                    sender: self.name.to_string(),
                    event_id: outgoing.event_id.clone(),
                    attempts: attempt,
                });
                DeliveryResult::Delivered {
                    attempts: attempt,
                    at_ms: now_ms,
                }
            }
            Some(error) if next_at_ms.is_none() => {
                self.observer.record(SystemEvent::WebhookDeadLettered {
                    sender: self.name.to_string(),
                    event_id: outgoing.event_id.clone(),
                    attempts: attempt,
                });
                DeliveryResult::DeadLetter {
                    attempts: attempt,
                    error,
                }
            }
            Some(error) => DeliveryResult::Retry {
                attempts: attempt,
                next_at_ms: next_at_ms.expect("checked above"),
                error,
            },
        };
        self.queue.settle(outgoing.seq, result).await;
        self.in_flight
            .lock()
            .expect("in-flight lock poisoned")
            .remove(&outgoing.seq);
        self.finished.notify_one();
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_secret_rotation_signs_old_then_both_then_new() {
        // Proves the overlap: before the rotation the old secret alone signs, through the
        // overlap the new one with the old beside it, after it the new one alone. And the
        // receiver's switch: old, then either, then new.
        let rotation = SecretRotation {
            secret: "new".into(),
            from_ms: 100,
            old_until_ms: 200,
        };
        assert_eq!(rotation.signing("old", 99), ("old", None));
        assert_eq!(rotation.signing("old", 100), ("new", Some("old")));
        assert_eq!(rotation.signing("old", 199), ("new", Some("old")));
        assert_eq!(rotation.signing("old", 200), ("new", None));
        let receiver = crate::receiver::ReceiverRotation {
            secret: "new".into(),
            accepts_new_from_ms: 150,
            drops_old_at_ms: 200,
        };
        assert_eq!(receiver.accepted("old", 149), vec!["old"]);
        assert_eq!(receiver.accepted("old", 150), vec!["old", "new"]);
        assert_eq!(receiver.accepted("old", 200), vec!["new"]);
    }

    use std::collections::BTreeMap;

    use super::*;
    use crate::observe::NoopObserver;
    use crate::transport::{HttpRequest, HttpResponse, TransportError};

    const HOUR_MS: u64 = 3_600_000;
    const EPOCH_MS: u64 = 1_767_225_600_000;

    /// The time of day on tokio's (paused) clock.
    struct TokioClock(tokio::time::Instant);

    impl Clock for TokioClock {
        fn now_ms(&self) -> u64 {
            EPOCH_MS + u64::try_from(self.0.elapsed().as_millis()).unwrap()
        }
    }

    /// A receiver that refuses connections until `up_at` on tokio's clock.
    struct DownUntil {
        up_at: tokio::time::Instant,
    }

    impl Transport for DownUntil {
        fn send(&self, _: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
            let up = tokio::time::Instant::now() >= self.up_at;
            Box::pin(async move {
                if up {
                    Ok(http::Response::new(Bytes::new()))
                } else {
                    Err(TransportError::Connect("receiver down".into()))
                }
            })
        }
    }

    /// One event's delivery, in memory.
    #[derive(Default)]
    struct OneEvent {
        deliveries: Mutex<BTreeMap<u64, Delivery>>,
        results: Mutex<Vec<DeliveryResult>>,
        /// Signals its changes when set (as the simulation's stores do).
        signals: Option<tokio::sync::watch::Sender<u64>>,
        /// How many times the sender looked at the queue.
        looks: std::sync::atomic::AtomicU64,
    }

    impl DeliveryQueue for OneEvent {
        fn due(
            &self,
            now_ms: u64,
            limit: usize,
            in_flight: BTreeSet<u64>,
        ) -> BoxFuture<'_, Vec<Outgoing>> {
            self.looks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let deliveries = self.deliveries.lock().unwrap();
            let due = deliveries
                .iter()
                .filter(|(seq, _)| !in_flight.contains(seq))
                .filter_map(|(seq, delivery)| match delivery {
                    Delivery::Pending {
                        attempts,
                        next_attempt_at_ms,
                    } if *next_attempt_at_ms <= now_ms => Some(Outgoing {
                        seq: *seq,
                        event_id: format!("evt_{seq}"),
                        url: "http://merchant/hooks".into(),
                        secret: "whsec".into(),
                        previous_secret: None,
                        rotation: None,
                        body: Bytes::from_static(b"{}"),
                        attempts: *attempts,
                        first_due_at_ms: EPOCH_MS,
                    }),
                    _ => None,
                })
                .take(limit)
                .collect();
            Box::pin(std::future::ready(due))
        }

        fn next_due_ms(&self, in_flight: BTreeSet<u64>) -> BoxFuture<'_, Option<u64>> {
            let deliveries = self.deliveries.lock().unwrap();
            let next = deliveries
                .iter()
                .filter(|(seq, _)| !in_flight.contains(seq))
                .filter_map(|(_, delivery)| match delivery {
                    Delivery::Pending {
                        next_attempt_at_ms, ..
                    } => Some(*next_attempt_at_ms),
                    _ => None,
                })
                .min();
            Box::pin(std::future::ready(next))
        }

        fn settle(&self, seq: u64, result: DeliveryResult) -> BoxFuture<'_, ()> {
            self.deliveries
                .lock()
                .unwrap()
                .insert(seq, result.delivery());
            self.results.lock().unwrap().push(result);
            Box::pin(std::future::ready(()))
        }

        fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
            self.signals
                .as_ref()
                .map(tokio::sync::watch::Sender::subscribe)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_signalled_queue_is_looked_at_when_it_changes_not_every_poll() {
        // Proves the wake-on-commit schedule: an idle sender whose queue signals its
        // changes looks only every `idle_poll_ms`, not every `poll_ms`; an event added
        // (and signalled) is sent at once; a retry is sent when it falls due, not at the
        // next idle look.
        let start = tokio::time::Instant::now();
        let queue = Arc::new(OneEvent {
            signals: Some(tokio::sync::watch::Sender::default()),
            ..OneEvent::default()
        });
        let config = SenderConfig::DEFAULT;
        let sender = tokio::spawn(run_sender(
            "test",
            queue.clone(),
            Arc::new(DownUntil {
                up_at: start + Duration::from_millis(HOUR_MS),
            }),
            Arc::new(TokioClock(start)),
            Seed(5),
            config,
            Arc::new(NoopObserver),
        ));
        tokio::time::sleep(Duration::from_millis(5_000)).await;
        let idle_looks = queue.looks.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            (1..=6).contains(&idle_looks),
            "an idle sender looks about every {} ms: {idle_looks} looks in 5 s",
            config.idle_poll_ms
        );
        // The receiver is down: the attempt made at once fails, and its retry is due
        // within the first backoff (at most 100 ms).
        queue.deliveries.lock().unwrap().insert(
            1,
            Delivery::Pending {
                attempts: 0,
                next_attempt_at_ms: EPOCH_MS + 5_000,
            },
        );
        queue
            .signals
            .as_ref()
            .unwrap()
            .send_modify(|version| *version += 1);
        tokio::time::sleep(Duration::from_millis(1)).await;
        let results = queue.results.lock().unwrap().clone();
        let [DeliveryResult::Retry { next_at_ms, .. }, ..] = results.as_slice() else {
            panic!("the event was tried at once: {results:?}");
        };
        assert!(*next_at_ms <= EPOCH_MS + 5_100, "{next_at_ms}");
        // Due again well before the next idle look (a second away): the sender sleeps
        // until then and makes the second attempt on time.
        let retry_in = next_at_ms.saturating_sub(EPOCH_MS + 5_001) + 1;
        tokio::time::sleep(Duration::from_millis(retry_in)).await;
        let results = queue.results.lock().unwrap().clone();
        assert_eq!(
            results.len(),
            2,
            "retries follow their due times, not the idle poll: {results:?}"
        );
        sender.abort();
    }

    #[test]
    fn the_wait_follows_the_next_due_time_within_the_idle_poll() {
        // Proves the pure wait: until the next due time, never longer than the idle poll;
        // the ordinary poll when something is due already (it could not be taken).
        let config = SenderConfig::DEFAULT;
        assert_eq!(idle_wait_ms(&config, 1_000, None), config.idle_poll_ms);
        assert_eq!(idle_wait_ms(&config, 1_000, Some(1_250)), 250);
        assert_eq!(
            idle_wait_ms(&config, 1_000, Some(1_000 + 10 * config.idle_poll_ms)),
            config.idle_poll_ms
        );
        assert_eq!(idle_wait_ms(&config, 1_000, Some(900)), config.poll_ms);
        assert_eq!(idle_wait_ms(&config, 1_000, Some(1_000)), config.poll_ms);
    }

    /// Runs `config`'s sender against a receiver down for `down_ms`, for `run_ms` of
    /// tokio's paused time; returns how the event's delivery ended and every result.
    async fn outage(
        config: SenderConfig,
        down_ms: u64,
        run_ms: u64,
    ) -> (Delivery, Vec<DeliveryResult>) {
        let start = tokio::time::Instant::now();
        let queue = Arc::new(OneEvent::default());
        queue.deliveries.lock().unwrap().insert(
            1,
            Delivery::Pending {
                attempts: 0,
                next_attempt_at_ms: 0,
            },
        );
        let sender = tokio::spawn(run_sender(
            "test",
            queue.clone(),
            Arc::new(DownUntil {
                up_at: start + Duration::from_millis(down_ms),
            }),
            Arc::new(TokioClock(start)),
            Seed(5),
            config,
            Arc::new(NoopObserver),
        ));
        tokio::time::sleep(Duration::from_millis(run_ms)).await;
        sender.abort();
        let delivery = queue.deliveries.lock().unwrap()[&1].clone();
        let results = queue.results.lock().unwrap().clone();
        (delivery, results)
    }

    #[tokio::test(start_paused = true)]
    async fn live_schedule_outlasts_a_receiver_down_for_hours() {
        // Proves live mode's retry schedule survives a long outage: with the receiver down
        // for 5 hours the event is retried with growing waits (never more than an hour
        // apart) and delivered once it is back, never dead-lettered. The simulation's
        // schedule, which live mode used before, dead-letters it within the first minute.
        // Polls every 10 s instead of 250 ms: the schedule is the same, the test cheaper.
        let live = SenderConfig {
            poll_ms: 10_000,
            ..SenderConfig::LIVE
        };
        let (delivery, results) = outage(live, 5 * HOUR_MS, 7 * HOUR_MS).await;
        assert!(
            matches!(delivery, Delivery::Delivered { .. }),
            "{delivery:?}"
        );
        assert!(
            !results
                .iter()
                .any(|r| matches!(r, DeliveryResult::DeadLetter { .. }))
        );
        let attempts = results.len() as u64;
        assert!(
            (10..=SenderConfig::LIVE.attempt_count_max.into()).contains(&attempts),
            "{attempts}"
        );
        let mut previous_ms = EPOCH_MS;
        for result in &results {
            if let DeliveryResult::Retry { next_at_ms, .. } = result {
                assert!(next_at_ms - previous_ms <= HOUR_MS + 10_000, "{result:?}");
                previous_ms = *next_at_ms;
            }
        }
        let (delivery, _) = outage(SenderConfig::DEFAULT, 5 * HOUR_MS, 60_000).await;
        assert!(
            matches!(delivery, Delivery::DeadLetter { .. }),
            "{delivery:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn live_schedule_dead_letters_at_its_horizon() {
        // Proves the schedule ends: a receiver that never comes back gets its last attempt
        // at the 72 h horizon and the event is dead-lettered then, for an operator to
        // redeliver.
        let live = SenderConfig {
            poll_ms: 60_000,
            ..SenderConfig::LIVE
        };
        let horizon_ms = live.horizon_ms;
        let (delivery, results) = outage(live, 1_000 * HOUR_MS, horizon_ms + HOUR_MS).await;
        assert!(
            matches!(delivery, Delivery::DeadLetter { .. }),
            "{delivery:?}"
        );
        let last_retry = results
            .iter()
            .filter_map(|r| match r {
                DeliveryResult::Retry { next_at_ms, .. } => Some(*next_at_ms),
                _ => None,
            })
            .max()
            .unwrap();
        assert_eq!(
            last_retry,
            EPOCH_MS + horizon_ms,
            "the last attempt is at the horizon"
        );
    }

    #[test]
    fn the_next_attempt_is_clamped_to_the_horizon_and_bounded_by_attempts() {
        // Proves the pure schedule: a backoff that would end past the horizon is moved to
        // the horizon; at or past the horizon, or at the attempt limit, the event is
        // dead-lettered, without drawing a backoff (so the generator's stream is as before).
        let config = SenderConfig {
            horizon_ms: 1_000,
            attempt_count_max: 5,
            ..SenderConfig::LIVE
        };
        assert_eq!(next_attempt_at_ms(&config, 1, 0, 100, || 200), Some(300));
        assert_eq!(next_attempt_at_ms(&config, 2, 0, 900, || 500), Some(1_000));
        assert_eq!(
            next_attempt_at_ms(&config, 3, 0, 1_000, || unreachable!()),
            None
        );
        assert_eq!(
            next_attempt_at_ms(&config, 5, 0, 10, || unreachable!()),
            None
        );
    }
}
