//! The webhook sender: delivers queued events at least once, signed, with a bounded number
//! of deliveries in flight, full-jitter backoff between attempts, a retry limit, and a
//! dead-letter state for events that exhaust it.
//!
//! The queue is the sender's source of truth (the service's outbox, the carrier's tracking
//! log); an event is marked delivered only after a 2xx, so a sender that crashes mid-way
//! re-sends it after the restart. Receivers must therefore deduplicate by event id.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rand_chacha::ChaCha8Rng;

use super::signature::{HEADER_SIGNATURE, sign};
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
    /// The JSON body, fixed at enqueue time so every attempt sends the same bytes.
    pub body: Bytes,
    /// Attempts made before this one.
    pub attempts: u32,
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
}

/// How a sender behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderConfig {
    /// Time between looks at the queue, ms.
    pub poll_ms: u64,
    /// Deliveries in flight at once. Above 1, a slow delivery lets later events overtake it:
    /// receivers see events out of order, as they do from every real sender.
    pub concurrency: usize,
    /// Per-attempt timeout, ms.
    pub timeout_ms: u64,
    /// Attempts before an event is dead-lettered.
    pub attempt_count_max: u32,
    /// Backoff cap of the first retry, ms (doubles per retry).
    pub backoff_ms_base: u64,
    /// Largest backoff cap, ms.
    pub backoff_ms_max: u64,
}

impl SenderConfig {
    /// Our senders' defaults: 20 ms polls, 4 in flight, 500 ms timeout, 10 attempts,
    /// backoff 100 ms doubling to 2 s (about 10 s of retrying before the dead letter).
    pub const DEFAULT: SenderConfig = SenderConfig {
        poll_ms: 20,
        concurrency: 4,
        timeout_ms: 500,
        attempt_count_max: 10,
        backoff_ms_base: 100,
        backoff_ms_max: 2_000,
    };
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
    });
    loop {
        tokio::time::sleep(Duration::from_millis(config.poll_ms)).await;
        let now_ms = sender.clock.now_ms();
        let (room, in_flight) = {
            let in_flight = sender.in_flight.lock().expect("in-flight lock poisoned");
            let room = config.concurrency.saturating_sub(in_flight.len());
            (room, in_flight.clone())
        };
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
    }
}

impl Sender {
    async fn deliver(self: Arc<Self>, outgoing: Outgoing) {
        let attempt = outgoing.attempts + 1;
        let signed_at_s = self.clock.now_ms() / 1_000;
        let request = http::Request::post(&outgoing.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                HEADER_SIGNATURE,
                sign(&outgoing.secret, signed_at_s, &outgoing.body),
            )
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
            Some(error) if attempt >= self.config.attempt_count_max => {
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
            Some(error) => {
                let wait = {
                    let mut rng = self.rng.lock().expect("sender rng lock poisoned");
                    backoff_ms(
                        attempt - 1,
                        self.config.backoff_ms_base,
                        self.config.backoff_ms_max,
                        &mut *rng,
                    )
                };
                DeliveryResult::Retry {
                    attempts: attempt,
                    next_at_ms: now_ms + wait,
                    error,
                }
            }
        };
        self.queue.settle(outgoing.seq, result).await;
        self.in_flight
            .lock()
            .expect("in-flight lock poisoned")
            .remove(&outgoing.seq);
    }
}
