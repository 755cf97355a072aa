//! A shipment-tracking webhook receiver: a carrier posts `shipment.*` events, signed with
//! Standard Webhooks, and the receiver records each event once and moves the shipment's
//! status forward.
//!
//! ```text
//! POST /webhooks           webhook-id, webhook-timestamp, webhook-signature   200 | 400 | 401
//! GET  /shipments/{id}                                                        200 shipment | 404
//! ```
//!
//! The correct path: verify the signature over `"{id}.{timestamp}.{raw body}"` and the
//! timestamp's distance from now (five minutes) before reading the body; then, in one
//! transaction, skip an event already processed (answering 200, so the sender stops) or
//! apply it (record it on the shipment, move the status only forward) and mark it
//! processed. [`Mistake`] plants the usual ways to get this wrong.
//!
//! The receiver takes its clock, its database and the database's round trip through seams
//! ([`Deps`]), so a test harness runs it in a simulation unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Largest accepted distance between a delivery's timestamp and the receiver's clock: five
/// minutes, as the Standard Webhooks libraries default to.
pub const TOLERANCE_S: u64 = 300;

/// A realistic receiver mistake, planted on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mistake {
    /// Checks "already processed?", applies the event, and only then marks it processed, in
    /// separate database round trips: two copies racing each other both apply.
    DedupeAfterEffect,
    /// Parses and applies the event first and verifies the signature last (answering 401
    /// too late): a forged or tampered delivery has its effect.
    SignatureAfterActing,
    /// Verifies the signature but not the timestamp's age: a captured delivery replayed an
    /// hour later is accepted.
    NoTimestampTolerance,
    /// Sets the status from every event, whatever its sequence: a late, older event moves
    /// the shipment backwards.
    LastWriteWins,
}

/// The receiver's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The Standard Webhooks secret, `whsec_<base64 key>`.
    pub secret: String,
    /// A planted mistake, or none.
    pub mistake: Option<Mistake>,
}

/// The time of day, in unix milliseconds.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now_ms(&self) -> u64;
}

/// A database round trip: awaited before each access to [`Db`], as with a networked
/// database (a no-op in memory).
pub trait RoundTrip: Send + Sync + 'static {
    /// Waits one round trip.
    fn wait(&self) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// One shipment as the receiver knows it.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Shipment {
    /// The highest sequence applied.
    pub sequence: u64,
    /// Its event type.
    pub status: String,
    /// Ids of the events recorded on it, in the order they were applied.
    pub applied: Vec<String>,
}

/// The receiver's database: every access is one transaction under the lock.
#[derive(Debug, Default)]
pub struct Db {
    processed: BTreeSet<String>,
    shipments: BTreeMap<String, Shipment>,
}

/// What the receiver is given.
#[derive(Clone)]
pub struct Deps {
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The database.
    pub db: Arc<Mutex<Db>>,
    /// Its round trip.
    pub round_trip: Arc<dyn RoundTrip>,
}

#[derive(Clone)]
struct App {
    key: Arc<Vec<u8>>,
    mistake: Option<Mistake>,
    deps: Deps,
}

/// The event body: Standard Webhooks' envelope.
#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    resource: String,
    sequence: u64,
}

/// The receiver's router.
///
/// # Errors
/// When the secret is not `whsec_` followed by base64.
pub fn router(config: &Config, deps: Deps) -> Result<Router, String> {
    let encoded = config
        .secret
        .strip_prefix("whsec_")
        .unwrap_or(&config.secret);
    let key = STANDARD
        .decode(encoded)
        .map_err(|e| format!("webhook secret is not whsec_<base64>: {e}"))?;
    let app = App {
        key: Arc::new(key),
        mistake: config.mistake,
        deps,
    };
    Ok(Router::new()
        .route("/webhooks", post(receive))
        .route("/shipments/{id}", get(shipment))
        .with_state(app))
}

fn refuse(status: StatusCode, reason: &str) -> Response {
    (status, Json(serde_json::json!({ "error": reason }))).into_response()
}

async fn receive(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if app.mistake != Some(Mistake::SignatureAfterActing)
        && let Err((status, reason)) = verify(&app, &headers, &body)
    {
        return refuse(status, reason);
    }
    let event: Event = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(error) => return refuse(StatusCode::BAD_REQUEST, &format!("bad event: {error}")),
    };
    let duplicate = if app.mistake == Some(Mistake::DedupeAfterEffect) {
        apply_in_steps(&app, &event).await
    } else {
        app.deps.round_trip.wait().await;
        let mut db = app.deps.db.lock().expect("db lock");
        let duplicate = !db.processed.insert(event.id.clone());
        if !duplicate {
            apply(&mut db, &event, app.mistake);
        }
        duplicate
    };
    if app.mistake == Some(Mistake::SignatureAfterActing)
        && let Err((status, reason)) = verify(&app, &headers, &body)
    {
        return refuse(status, reason);
    }
    Json(serde_json::json!({ "received": event.id, "duplicate": duplicate })).into_response()
}

/// The [`Mistake::DedupeAfterEffect`] path: check, apply and mark in three round trips.
async fn apply_in_steps(app: &App, event: &Event) -> bool {
    app.deps.round_trip.wait().await;
    if app
        .deps
        .db
        .lock()
        .expect("db lock")
        .processed
        .contains(&event.id)
    {
        return true;
    }
    app.deps.round_trip.wait().await;
    apply(
        &mut app.deps.db.lock().expect("db lock"),
        event,
        app.mistake,
    );
    app.deps.round_trip.wait().await;
    app.deps
        .db
        .lock()
        .expect("db lock")
        .processed
        .insert(event.id.clone());
    false
}

/// Records `event` on its shipment and moves the status forward (or, with
/// [`Mistake::LastWriteWins`], anywhere).
fn apply(db: &mut Db, event: &Event, mistake: Option<Mistake>) {
    let shipment = db.shipments.entry(event.data.resource.clone()).or_default();
    shipment.applied.push(event.id.clone());
    if event.data.sequence > shipment.sequence || mistake == Some(Mistake::LastWriteWins) {
        shipment.sequence = event.data.sequence;
        shipment.status.clone_from(&event.kind);
    }
}

/// Checks the Standard Webhooks signature and (unless the mistake says otherwise) the
/// timestamp's age.
fn verify(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<(), (StatusCode, &'static str)> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(timestamp), Some(signatures)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) else {
        return Err((StatusCode::BAD_REQUEST, "missing webhook headers"));
    };
    let Ok(timestamp_s) = timestamp.parse::<u64>() else {
        return Err((StatusCode::BAD_REQUEST, "bad webhook-timestamp"));
    };
    if app.mistake != Some(Mistake::NoTimestampTolerance) {
        let now_s = app.deps.clock.now_ms() / 1_000;
        if now_s.abs_diff(timestamp_s) > TOLERANCE_S {
            return Err((StatusCode::BAD_REQUEST, "timestamp outside tolerance"));
        }
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&app.key).expect("HMAC takes any key");
    mac.update(format!("{id}.{timestamp_s}.").as_bytes());
    mac.update(body);
    let valid = signatures.split(' ').any(|candidate| {
        candidate
            .strip_prefix("v1,")
            .and_then(|s| STANDARD.decode(s).ok())
            .is_some_and(|sig| mac.clone().verify_slice(&sig).is_ok())
    });
    if valid {
        Ok(())
    } else {
        Err((StatusCode::UNAUTHORIZED, "bad signature"))
    }
}

async fn shipment(State(app): State<App>, Path(id): Path<String>) -> Response {
    app.deps.round_trip.wait().await;
    let db = app.deps.db.lock().expect("db lock");
    match db.shipments.get(&id) {
        Some(shipment) => Json(shipment.clone()).into_response(),
        None => refuse(StatusCode::NOT_FOUND, "no such shipment"),
    }
}
