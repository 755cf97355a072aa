//! A service written in this file, outside shipsim, judged through the public API only and
//! with no inventory: the oracles see what its API answers and what its bank's ledger
//! recorded, nothing of its store. A correct version passes the built-in corpus; two
//! broken ones (state kept in process memory, the bank charged without an idempotency key)
//! are each caught by the oracle that judges from the wire or from the ledger.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};
use shipsim::downstream::{DownstreamSpec, EffectRoute};
use shipsim::store::Kv;
use shipsim::{
    Api, ApiError, Boot, CreateCall, Draw, HttpRequest, HttpResponse, Kind, ReadCall, Seen, Target,
    json_request,
};
use shipsim_system::store::Durability;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mistake {
    None,
    /// Notes live in this boot's memory: a crash forgets acknowledged ones.
    Volatile,
    /// The bank is called without an idempotency key and the call is retried.
    ChargeWithoutKey,
    /// The handler panics on some bodies (an `unwrap` on input it did not expect).
    Panics,
}

/// Where notes are kept: the durable store, or (the mistake) this boot's memory.
#[derive(Clone)]
enum Notes {
    Durable(Kv),
    Volatile(Arc<Mutex<std::collections::BTreeMap<String, Vec<u8>>>>),
}

impl Notes {
    fn get(&self, key: &str) -> Option<Value> {
        let bytes = match self {
            Notes::Durable(kv) => kv.get(key),
            Notes::Volatile(map) => map.lock().unwrap().get(key).cloned(),
        }?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Stores `value` under `key` unless `only_if_absent` and something is there; returns
    /// what is stored afterwards.
    fn put(&self, key: &str, value: &Value, only_if_absent: bool) -> Value {
        let bytes = serde_json::to_vec(value).unwrap();
        match self {
            Notes::Durable(kv) => kv
                .transact(Durability::Sync, |tx| {
                    if only_if_absent && let Some(existing) = tx.get(key) {
                        return Ok::<_, shipsim::store::KvError>(
                            serde_json::from_slice(existing).unwrap(),
                        );
                    }
                    tx.put(key, bytes.clone())?;
                    Ok(value.clone())
                })
                .unwrap(),
            Notes::Volatile(map) => {
                let mut map = map.lock().unwrap();
                if only_if_absent && let Some(existing) = map.get(key) {
                    return serde_json::from_slice(existing).unwrap();
                }
                map.insert(key.to_string(), bytes);
                value.clone()
            }
        }
    }
}

#[derive(Clone)]
struct App {
    notes: Notes,
    ids: Arc<shipsim::IdGen>,
    bank: shipsim::Downstream,
    mistake: Mistake,
}

fn caller(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    auth.strip_prefix("Bearer ").map(str::to_string)
}

async fn create(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, String) {
    let mut out = HeaderMap::new();
    let (Some(caller), Some(key)) = (
        caller(&headers),
        headers.get("idempotency-key").and_then(|v| v.to_str().ok()),
    ) else {
        return (StatusCode::BAD_REQUEST, out, "{}".into());
    };
    let scope = format!("key/{caller}/{key}");
    let fingerprint = String::from_utf8_lossy(&body).into_owned();
    if app.mistake == Mistake::Panics && fingerprint.contains('7') {
        let parsed: Option<u32> = fingerprint
            .split(|c: char| !c.is_ascii_digit())
            .find(|part| part.len() > 6)
            .and_then(|part| part.parse().ok());
        parsed.expect("a number the handler did not expect");
    }
    let fresh = json!({"id": app.ids.next("note"), "body": fingerprint, "charge": null});
    let claimed = app.notes.put(&scope, &fresh, true);
    if claimed["body"] != json!(fingerprint) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            out,
            r#"{"error":{"code":"idempotency_key_reused"}}"#.into(),
        );
    }
    if let Some(charge) = claimed["charge"].as_str() {
        out.insert("idempotent-replayed", "true".parse().unwrap());
        let id = claimed["id"].as_str().unwrap();
        return (
            StatusCode::CREATED,
            out,
            json!({"id": id, "charge": charge}).to_string(),
        );
    }
    let id = claimed["id"].as_str().unwrap().to_string();
    let attempts = if app.mistake == Mistake::ChargeWithoutKey {
        3
    } else {
        1
    };
    let mut charge = None;
    for _ in 0..attempts {
        let mut request = http::Request::post(format!("{}/v1/charges", app.bank.base_url()))
            .header("content-type", "application/json");
        if app.mistake != Mistake::ChargeWithoutKey {
            request = request.header("idempotency-key", format!("charge-{id}"));
        }
        let request = request
            .body(Bytes::from(json!({"note": id, "amount": 100}).to_string()))
            .unwrap();
        let sent = tokio::time::timeout(
            Duration::from_millis(500),
            app.bank.transport().send(request),
        )
        .await;
        if let Ok(Ok(response)) = sent
            && response.status().is_success()
        {
            let body: Value = serde_json::from_slice(response.body()).unwrap_or_default();
            charge = body["id"].as_str().map(str::to_string);
            break;
        }
    }
    let Some(charge) = charge else {
        return (StatusCode::BAD_GATEWAY, out, "{}".into());
    };
    let note = json!({"id": id, "body": fingerprint, "charge": charge, "caller": caller});
    app.notes.put(&scope, &note, false);
    app.notes.put(&format!("note/{id}"), &note, false);
    (
        StatusCode::CREATED,
        out,
        json!({"id": id, "charge": charge}).to_string(),
    )
}

async fn read(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> (StatusCode, String) {
    match app.notes.get(&format!("note/{id}")) {
        Some(note)
            if Some(note["caller"].as_str().unwrap_or("")) == caller(&headers).as_deref() =>
        {
            (
                StatusCode::OK,
                json!({"id": note["id"], "charge": note["charge"]}).to_string(),
            )
        }
        _ => (StatusCode::NOT_FOUND, "{}".into()),
    }
}

fn router(boot: &Boot, mistake: Mistake) -> axum::Router {
    let notes = match mistake {
        Mistake::Volatile => Notes::Volatile(Arc::default()),
        _ => Notes::Durable(boot.kv("notes")),
    };
    axum::Router::new()
        .route("/notes", post(create))
        .route("/notes/{id}", get(read))
        .with_state(App {
            notes,
            ids: Arc::new(boot.ids("notes")),
            bank: boot.downstream("bank"),
            mistake,
        })
}

struct NotesApi;

impl Api for NotesApi {
    fn kinds(&self) -> Vec<Kind> {
        vec![
            Kind::new("note", "POST /notes")
                .read_route("GET /notes/{id}")
                .spends(),
        ]
    }

    fn body(&self, _kind: &Kind, draw: &mut Draw<'_>) -> String {
        use rand::Rng;
        json!({"text": format!("note {}", draw.rng().random_range(0..1000))}).to_string()
    }

    fn vary(&self, _kind: &Kind, body: &str) -> String {
        let mut value: Value = serde_json::from_str(body).unwrap_or_default();
        value["text"] = json!(format!("{} (edited)", value["text"].as_str().unwrap_or("")));
        value.to_string()
    }

    fn create(&self, _kind: &Kind, call: &CreateCall<'_>) -> Result<HttpRequest, ApiError> {
        let auth = format!("Bearer {}", call.caller.id);
        json_request(
            "POST",
            "/notes",
            &[("authorization", &auth), ("idempotency-key", call.key)],
            call.body.to_string(),
        )
    }

    fn read(&self, _kind: &Kind, call: &ReadCall<'_>) -> Result<HttpRequest, ApiError> {
        let auth = format!("Bearer {}", call.caller.id);
        json_request(
            "GET",
            &format!("/notes/{}", call.id),
            &[("authorization", &auth)],
            "",
        )
    }

    fn parse(&self, _kind: &Kind, response: &HttpResponse) -> Result<Seen, ApiError> {
        let body: Value = serde_json::from_slice(response.body()).map_err(ApiError::new)?;
        Ok(Seen {
            id: body["id"]
                .as_str()
                .ok_or_else(|| ApiError::new("no id"))?
                .to_string(),
            downstream_ref: body["charge"].as_str().map(str::to_string),
            ..Seen::default()
        })
    }
}

fn target(name: &str, mistake: Mistake) -> Target {
    Target::new(name, move |boot| router(boot, mistake))
        .api(NotesApi)
        .downstream(
            DownstreamSpec::new("bank").effect(
                EffectRoute::post("/v1/charges", "charge")
                    .id_prefix("ch_")
                    .subject("/note"),
            ),
        )
        .builtin_scenarios()
        .jobs(2)
        .out_dir(crate::support::scratch_kept(&format!("byo-test-{name}")))
}

fn oracle_counts(outcome: &shipsim::Outcome) -> Vec<(String, u64)> {
    let mut counts: Vec<(String, u64)> = Vec::new();
    for scenario in &outcome.report().expect("the run started").scenarios {
        for oracle in &scenario.oracles {
            if oracle.violations > 0 {
                match counts.iter_mut().find(|(name, _)| *name == oracle.name) {
                    Some(entry) => entry.1 += oracle.violations,
                    None => counts.push((oracle.name.clone(), oracle.violations)),
                }
            }
        }
    }
    counts
}

#[test]
fn a_correct_service_without_inventory_passes_the_builtin_corpus() {
    // Proves a service shipsim knows only through its API and its bank's ledger holds every
    // oracle over the built-in corpus, read-back phase included (every acknowledged note is
    // read back at the end), deterministically.
    let outcome = target("notes", Mistake::None)
        .seeds(1..6)
        .check_determinism()
        .run();
    outcome.assert_ok();
}

#[test]
fn state_kept_in_process_memory_is_caught_by_reading_back() {
    // Proves the read-back phase bites: notes acknowledged before a crash are gone after it,
    // and `acknowledged_writes` says so without any access to the service's store.
    let outcome = target("notes-volatile", Mistake::Volatile)
        .seeds(1..6)
        .no_shrink()
        .run();
    assert!(!outcome.passed());
    let counts = oracle_counts(&outcome);
    assert!(
        counts
            .iter()
            .any(|(name, n)| name == "acknowledged_writes" && *n > 0),
        "{counts:?}\n{}",
        outcome.summary()
    );
}

#[test]
fn charging_without_a_key_is_caught_at_the_bank() {
    // Proves exactly-once is judged where the money is spent: retries of a key-less bank
    // call leave charges that no note carries, which `exactly_once` finds in the ledger.
    let outcome = target("notes-no-key", Mistake::ChargeWithoutKey)
        .seeds(1..6)
        .no_shrink()
        .run();
    assert!(!outcome.passed());
    let counts = oracle_counts(&outcome);
    assert!(
        counts
            .iter()
            .any(|(name, n)| name == "exactly_once" && *n > 0),
        "{counts:?}\n{}",
        outcome.summary()
    );
}

/// The merchant's own retrying client of the notes service, as a user would write it:
/// exponential backoff, `Retry-After` honoured (unless told otherwise), one key per
/// operation (unless told otherwise).
struct NotesClient {
    seams: shipsim::ClientSeams,
    honour_retry_after: bool,
    new_key_per_attempt: bool,
    /// Breaker and retry budget shared by the client's operations, as the scenario's
    /// `[client]` table asks; the milliseconds zero of the breaker.
    guard: Mutex<(
        shipsim_system::client::BreakerState,
        Option<shipsim_system::client::BudgetState>,
    )>,
    zero: tokio::time::Instant,
}

impl NotesClient {
    async fn send(
        &self,
        build: impl Fn(u32) -> Result<HttpRequest, ApiError>,
    ) -> Result<HttpResponse, String> {
        use shipsim_system::client::Admit;
        let policy = self.seams.policy;
        let now_ms = || u64::try_from(self.zero.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut last = Err("no attempt was sent".to_string());
        for attempt in 0..policy.attempt_count_max {
            {
                let mut guard = self.guard.lock().unwrap();
                if policy.breaker.is_some() && guard.0.admit(now_ms()) == Admit::Refuse {
                    return Err("circuit open".to_string());
                }
                if let (Some(budget), Some(state)) = (policy.budget, guard.1.as_mut()) {
                    if attempt == 0 {
                        state.on_first_attempt(budget);
                    } else if !state.try_retry() {
                        return last;
                    }
                }
            }
            let request = build(attempt).map_err(|e| e.to_string())?;
            let (mut parts, body) = request.into_parts();
            parts.uri = format!("{}{}", self.seams.base_url, parts.uri)
                .parse()
                .unwrap();
            let request = http::Request::from_parts(parts, body);
            let sent = tokio::time::timeout(
                Duration::from_millis(policy.timeout_ms_per_attempt),
                self.seams.transport.send(request),
            )
            .await;
            let mut wait_ms =
                (policy.backoff_ms_base << attempt.min(16)).min(policy.backoff_ms_max);
            let transient = !matches!(&sent, Ok(Ok(r)) if r.status().as_u16() < 500);
            if let Some(breaker) = policy.breaker {
                self.guard
                    .lock()
                    .unwrap()
                    .0
                    .record(breaker, transient, now_ms());
            }
            match sent {
                Ok(Ok(response))
                    if response.status().is_server_error() || response.status() == 429 =>
                {
                    let asked = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .map(|s| s * 1_000);
                    if self.honour_retry_after {
                        wait_ms = wait_ms.max(asked.unwrap_or(0));
                    }
                    last = Ok(response);
                }
                Ok(Ok(response)) => return Ok(response),
                Ok(Err(error)) => last = Err(error.to_string()),
                Err(_) => last = Err("timeout".to_string()),
            }
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        }
        last
    }
}

impl shipsim::Client for NotesClient {
    fn create<'a>(
        &'a self,
        kind: &'a Kind,
        call: CreateCall<'a>,
    ) -> shipsim_system::transport::BoxFuture<'a, Result<HttpResponse, String>> {
        Box::pin(self.send(move |attempt| {
            let key = if self.new_key_per_attempt && attempt > 0 {
                format!("{}-retry{attempt}", call.key)
            } else {
                call.key.to_string()
            };
            NotesApi.create(kind, &CreateCall { key: &key, ..call })
        }))
    }

    fn read<'a>(
        &'a self,
        kind: &'a Kind,
        call: ReadCall<'a>,
    ) -> shipsim_system::transport::BoxFuture<'a, Result<HttpResponse, String>> {
        Box::pin(self.send(move |_| NotesApi.read(kind, &call)))
    }
}

fn with_client(target: Target, honour_retry_after: bool, new_key_per_attempt: bool) -> Target {
    target.client(move |seams| {
        Box::new(NotesClient {
            guard: Mutex::new((
                shipsim_system::client::BreakerState::new(),
                seams
                    .policy
                    .budget
                    .map(shipsim_system::client::BudgetState::new),
            )),
            zero: tokio::time::Instant::now(),
            seams,
            honour_retry_after,
            new_key_per_attempt,
        })
    })
}

#[test]
fn a_users_own_client_is_driven_and_judged_from_the_wire() {
    // Proves a user's retrying client runs in the simulation in place of shipsim's: the
    // correct one holds every oracle over the built-in corpus; one that ignores Retry-After
    // is caught by `client_discipline` from the raw headers its attempts met; one that
    // invents a key per attempt is caught too. Attempts are recorded by the transport it
    // sends through, not by anything the client reports.
    let good = with_client(target("notes-own-client", Mistake::None), true, false)
        .seeds(1..4)
        .run();
    good.assert_ok();
    let retries: u64 = good
        .report()
        .unwrap()
        .scenarios
        .iter()
        .map(|s| s.retries)
        .sum();
    assert!(
        retries > 0,
        "the user's client retried: its attempts were recorded"
    );

    let impatient = with_client(
        target("notes-impatient-client", Mistake::None),
        false,
        false,
    )
    .seeds(1..4)
    .no_shrink()
    .run();
    let counts = oracle_counts(&impatient);
    assert!(
        counts
            .iter()
            .any(|(name, n)| name == "client_discipline" && *n > 0),
        "{counts:?}\n{}",
        impatient.summary()
    );

    let forgetful = with_client(target("notes-forgetful-client", Mistake::None), true, true)
        .seeds(1..4)
        .no_shrink()
        .run();
    assert!(!forgetful.passed(), "{}", forgetful.summary());
}

#[test]
fn a_handler_that_panics_fails_the_run() {
    // Proves a panic inside the service (tokio catches it, the client sees a reset and
    // retries, the run carries on) still fails the seed, naming the panic.
    let outcome = target("notes-panics", Mistake::Panics)
        .seeds(1..3)
        .no_shrink()
        .run();
    assert!(!outcome.passed());
    assert!(
        outcome.summary().contains("a task panicked"),
        "{}",
        outcome.summary()
    );
    assert!(
        outcome
            .summary()
            .contains("a number the handler did not expect"),
        "{}",
        outcome.summary()
    );
}
