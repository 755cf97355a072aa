//! The merchant's webhook receiver: takes the service's events at `POST /webhooks/{caller}`,
//! checks the signature, and acts on each event id once: it records the id and performs the
//! side effect (a customer notification, a status update in the merchant's own system) in
//! one atomic step. Duplicates are acknowledged with 200 and ignored; out-of-order events
//! never move a shipment backwards in the merchant's records.
//!
//! Everything it did is in the [`ReceiverLedger`], which outlives crashes of its host, so
//! the oracle can audit effects per event id.
//!
//! A merchant that also polls the service's events feed ([`poll`]) applies what it reads
//! there through the same ledger, under the same dedupe: each event id takes effect once,
//! whether it came by webhook, by the feed, or both.

pub mod poll;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use rand_chacha::ChaCha8Rng;

use crate::api::{ShipmentStatus, WebhookEvent};
use crate::bugs::{Bug, BugSet};
use crate::clock::Clock;
use crate::observe::{Observer, SystemEvent};
use crate::seed::{IdGen, Seed};
use crate::service::{ApiError, validate};
use crate::webhook::{self, HEADER_SIGNATURE};

/// How the receiver behaves.
#[derive(Clone, Debug)]
pub struct ReceiverConfig {
    /// Signing secret per merchant (caller id).
    pub secrets: BTreeMap<String, String>,
    /// Scheduled secret rotations by merchant (`secrets` holds the old one).
    pub rotations: BTreeMap<String, ReceiverRotation>,
    /// Accepted signature age, seconds.
    pub tolerance_s: u64,
    /// Simulated round trip to the merchant's own database, ms (uniform range).
    pub store_latency_ms: (u64, u64),
    /// Planted receiver bugs; empty for the correct receiver.
    pub bugs: BugSet,
}

/// A merchant's switch to a new signing secret: before `accepts_new_from_ms` (by the
/// receiver's clock) it verifies with the old secret only, then with either, and from
/// `drops_old_at_ms` with the new one only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiverRotation {
    /// The new secret.
    pub secret: String,
    /// When the new secret is deployed beside the old one, unix ms.
    pub accepts_new_from_ms: u64,
    /// When the old secret is removed, unix ms.
    pub drops_old_at_ms: u64,
}

impl ReceiverRotation {
    /// The secrets accepted at `now_ms`; `old` is the secret before the rotation.
    #[must_use]
    pub fn accepted<'a>(&'a self, old: &'a str, now_ms: u64) -> Vec<&'a str> {
        let mut accepted = Vec::new();
        if now_ms < self.drops_old_at_ms {
            accepted.push(old);
        }
        if now_ms >= self.accepts_new_from_ms {
            accepted.push(self.secret.as_str());
        }
        accepted
    }
}

/// What the receiver is given by whoever runs it.
#[derive(Clone)]
pub struct ReceiverDeps {
    /// Time of day.
    pub clock: Arc<dyn Clock>,
    /// What it did, owned outside the host so it survives crashes.
    pub ledger: Arc<ReceiverLedger>,
    /// Where system events go.
    pub observer: Arc<dyn Observer>,
    /// The receiver's component seed.
    pub seed: Seed,
    /// How many times the receiver has started before.
    pub boot: u64,
}

/// One side effect the merchant performed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    /// The event that caused it.
    pub event_id: String,
    /// The merchant.
    pub caller: String,
    /// The event's type.
    pub event_type: String,
    /// The event's order.
    pub order_id: String,
    /// The event's shipment, if any.
    pub shipment_id: Option<String>,
    /// The shipment status the event announced, if any.
    pub status: Option<ShipmentStatus>,
    /// Whether it moved the merchant's view of the shipment forward.
    pub advanced: bool,
    /// When the event was created at the service, by the service's clock.
    pub created_at_ms: u64,
    /// When it was acted on, by the receiver's clock.
    pub at_ms: u64,
    /// How the event reached the merchant.
    pub via: Via,
}

/// How an event reached the merchant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Via {
    /// A webhook delivery.
    Webhook,
    /// The service's events feed (`GET /v1/events`), read by the poller.
    Feed,
}

#[derive(Debug, Default)]
struct LedgerState {
    processed: BTreeMap<String, u64>,
    /// Only used by the planted bug that dedupes feed reads apart from webhooks.
    processed_from_feed: BTreeMap<String, u64>,
    /// The events feed's cursor per merchant: where the poller resumes.
    cursors: BTreeMap<String, String>,
    effects: Vec<Effect>,
    shipments: BTreeMap<String, ShipmentStatus>,
    duplicates: u64,
    rejected: u64,
}

/// Everything the receiver did.
#[derive(Debug, Default)]
pub struct ReceiverLedger {
    state: Mutex<LedgerState>,
}

impl ReceiverLedger {
    /// An empty ledger.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every side effect, in order.
    ///
    /// # Panics
    /// If the ledger's lock was poisoned.
    #[must_use]
    pub fn effects(&self) -> Vec<Effect> {
        self.state
            .lock()
            .expect("receiver lock poisoned")
            .effects
            .clone()
    }

    /// Deliveries acknowledged as duplicates, and deliveries refused.
    ///
    /// # Panics
    /// If the ledger's lock was poisoned.
    #[must_use]
    pub fn absorbed(&self) -> (u64, u64) {
        let state = self.state.lock().expect("receiver lock poisoned");
        (state.duplicates, state.rejected)
    }

    fn seen(&self, event_id: &str) -> bool {
        self.state
            .lock()
            .expect("receiver lock poisoned")
            .processed
            .contains_key(event_id)
    }

    fn mark(&self, event_id: &str, at_ms: u64) {
        self.state
            .lock()
            .expect("receiver lock poisoned")
            .processed
            .insert(event_id.to_string(), at_ms);
    }

    /// Where the poller of `caller` resumes: the last `next_cursor` it finished applying.
    ///
    /// # Panics
    /// If the ledger's lock was poisoned.
    #[must_use]
    pub fn cursor(&self, caller: &str) -> Option<String> {
        self.state
            .lock()
            .expect("receiver lock poisoned")
            .cursors
            .get(caller)
            .cloned()
    }

    fn set_cursor(&self, caller: &str, cursor: String) {
        self.state
            .lock()
            .expect("receiver lock poisoned")
            .cursors
            .insert(caller.to_string(), cursor);
    }

    fn act(&self, caller: &str, event: &WebhookEvent, at_ms: u64, via: Via) -> bool {
        let mut state = self.state.lock().expect("receiver lock poisoned");
        let advanced = match (&event.shipment_id, event.status) {
            (Some(shipment_id), Some(status)) => {
                let current = state.shipments.get(shipment_id).copied();
                let forward = current.is_none_or(|c| status.rank() > c.rank());
                if forward {
                    state.shipments.insert(shipment_id.clone(), status);
                }
                forward
            }
            _ => false,
        };
        state.effects.push(Effect {
            event_id: event.event_id.clone(),
            caller: caller.to_string(),
            event_type: event.event_type.clone(),
            order_id: event.order_id.clone(),
            shipment_id: event.shipment_id.clone(),
            status: event.status,
            advanced,
            created_at_ms: event.created_at_ms,
            at_ms,
            via,
        });
        advanced
    }

    /// Marks and acts in one step: what the correct receiver does, for a webhook and for
    /// an event read from the feed alike. `apart` is the planted bug that keeps the feed's
    /// event ids in a set of their own.
    fn mark_and_act(
        &self,
        caller: &str,
        event: &WebhookEvent,
        at_ms: u64,
        via: Via,
        apart: bool,
    ) -> Option<bool> {
        let mut guard = self.state.lock().expect("receiver lock poisoned");
        let state = &mut *guard;
        let processed = if apart && via == Via::Feed {
            &mut state.processed_from_feed
        } else {
            &mut state.processed
        };
        if processed.contains_key(&event.event_id) {
            state.duplicates += 1;
            return None;
        }
        processed.insert(event.event_id.clone(), at_ms);
        drop(guard);
        Some(self.act(caller, event, at_ms, via))
    }

    fn count_duplicate(&self) {
        self.state
            .lock()
            .expect("receiver lock poisoned")
            .duplicates += 1;
    }

    fn count_rejected(&self) {
        self.state.lock().expect("receiver lock poisoned").rejected += 1;
    }
}

struct Receiver {
    config: ReceiverConfig,
    deps: ReceiverDeps,
    rng: Mutex<ChaCha8Rng>,
    /// The merchants' secrets (and rotations' new ones), each keyed once per boot.
    keys: webhook::SigningKeys,
}

/// Builds the receiver's router.
pub fn router(config: ReceiverConfig, deps: ReceiverDeps) -> Router {
    let boot_seed = deps.seed.derive_index("boot", deps.boot);
    let ids = Arc::new(IdGen::new(boot_seed.derive("ids")));
    let receiver = Arc::new(Receiver {
        config,
        rng: Mutex::new(boot_seed.derive("latency").rng()),
        deps,
        keys: webhook::SigningKeys::default(),
    });
    Router::new()
        .route("/webhooks/{caller}", post(receive))
        .layer(axum::middleware::from_fn_with_state(
            ids,
            crate::service::request_context_layer,
        ))
        .with_state(receiver)
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    Path(caller): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let bugs = &receiver.config.bugs;
    let secret = receiver
        .config
        .secrets
        .get(&caller)
        .ok_or_else(|| ApiError::not_found("merchant", &caller))?;
    let now_ms = receiver.deps.clock.now_ms();
    if !bugs.has(Bug::ReceiverSkipsSignature) {
        let signature = headers.get(HEADER_SIGNATURE).and_then(|v| v.to_str().ok());
        let accepted = match receiver.config.rotations.get(&caller) {
            Some(rotation) => rotation.accepted(secret, now_ms),
            None => vec![secret.as_str()],
        };
        let mut verdict = Err(webhook::SignatureError::Mismatch);
        for secret in accepted {
            verdict = receiver.keys.key(secret).verify(
                signature,
                &body,
                now_ms,
                receiver.config.tolerance_s,
            );
            if verdict.is_ok() {
                break;
            }
        }
        if let Err(error) = verdict {
            receiver.deps.ledger.count_rejected();
            receiver.deps.observer.record(SystemEvent::WebhookRejected {
                receiver: "merchant".into(),
                reason: error.to_string(),
            });
            return Err(ApiError::bad_signature(&error));
        }
    }
    let event: WebhookEvent = validate::parse_json(&headers, &body)?;
    let ledger = &receiver.deps.ledger;
    let outcome = if bugs.has(Bug::ReceiverSkipsDedupe) {
        Some(ledger.act(&caller, &event, now_ms, Via::Webhook))
    } else if bugs.has(Bug::ReceiverDedupeAfterEffect) {
        if ledger.seen(&event.event_id) {
            ledger.count_duplicate();
            None
        } else {
            let advanced = ledger.act(&caller, &event, now_ms, Via::Webhook);
            receiver.round_trip().await;
            ledger.mark(&event.event_id, now_ms);
            Some(advanced)
        }
    } else {
        let apart = bugs.has(Bug::ReceiverDedupesFeedApart);
        let outcome = ledger.mark_and_act(&caller, &event, now_ms, Via::Webhook, apart);
        receiver.round_trip().await;
        outcome
    };
    receiver.deps.observer.record(SystemEvent::WebhookReceived {
        receiver: "merchant".into(),
        event_id: event.event_id.clone(),
        duplicate: outcome.is_none(),
        applied: outcome.unwrap_or(false),
    });
    let body = serde_json::json!({ "received": true, "duplicate": outcome.is_none() });
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

impl Receiver {
    async fn round_trip(&self) {
        crate::clock::store_round_trip(self.config.store_latency_ms, &self.rng).await;
    }
}
