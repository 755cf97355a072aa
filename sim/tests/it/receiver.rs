//! A webhook receiver written in this file, signed with a plain HMAC of the body (the
//! scheme without a timestamp), judged through the public `Receiver` API. The correct
//! receiver holds every verdict; three broken ones (no dedupe at all, state in process
//! memory, duplicates answered 409) are each caught by their own verdict.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use shipsim::{Boot, Durable, HttpResponse, Observed, Receiver, Signing, Verdict};

const SECRET: &str = "hook-secret";
const HEADER: &str = "x-signature";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mistake {
    None,
    /// Every delivery is applied: no dedupe at all.
    NoDedupe,
    /// State lives in this boot's memory: a crash forgets acknowledged events.
    Volatile,
    /// A duplicate is answered 409, so a real sender keeps retrying it.
    ConflictOnDuplicate,
}

#[derive(Default)]
struct Db {
    processed: BTreeSet<String>,
    /// resource -> (sequence, applied event ids)
    resources: BTreeMap<String, (u64, Vec<String>)>,
}

struct DurableDb(Arc<Mutex<Db>>);

impl Durable for DurableDb {
    fn crash(&self) -> u64 {
        0
    }
}

#[derive(Clone)]
struct App {
    db: Arc<Mutex<Db>>,
    mistake: Mistake,
}

fn router(boot: &Boot, mistake: Mistake) -> axum::Router {
    let db = if mistake == Mistake::Volatile {
        Arc::new(Mutex::new(Db::default()))
    } else {
        boot.durable("db", || DurableDb(Arc::default())).0.clone()
    };
    axum::Router::new()
        .route("/hooks", post(receive))
        .route("/things/{id}", get(read))
        .with_state(App { db, mistake })
}

async fn receive(State(app): State<App>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if headers.get(HEADER).and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let id = event["id"].as_str().unwrap_or_default().to_string();
    let resource = event["thing"].as_str().unwrap_or_default().to_string();
    let sequence = event["seq"].as_u64().unwrap_or_default();
    let mut db = app.db.lock().unwrap();
    if !db.processed.insert(id.clone()) && app.mistake != Mistake::NoDedupe {
        return if app.mistake == Mistake::ConflictOnDuplicate {
            StatusCode::CONFLICT
        } else {
            StatusCode::OK
        };
    }
    let entry = db.resources.entry(resource).or_default();
    entry.1.push(id);
    entry.0 = entry.0.max(sequence);
    StatusCode::OK
}

async fn read(State(app): State<App>, Path(id): Path<String>) -> axum::Json<Value> {
    let db = app.db.lock().unwrap();
    let (sequence, applied) = db.resources.get(&id).cloned().unwrap_or_default();
    axum::Json(json!({ "sequence": sequence, "applied": applied }))
}

fn receiver(name: &str, mistake: Mistake) -> Receiver {
    Receiver::new(
        name,
        Signing::HmacBody {
            header: HEADER.into(),
            secret: SECRET.into(),
        },
        move |boot: &Boot| router(boot, mistake),
    )
    .events(shipsim::Events::new(
        "/hooks",
        r#"{"id":"{id}","kind":"{type}","thing":"{resource}","seq":{sequence}}"#,
    ))
    .read_back(
        |resource: &str| {
            http::Request::get(format!("/things/{resource}"))
                .body(Bytes::new())
                .unwrap()
        },
        |response: &HttpResponse| {
            let body: Value = serde_json::from_slice(response.body()).map_err(|e| e.to_string())?;
            Ok(Observed {
                sequence: body["sequence"].as_u64(),
                applied: body["applied"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|id| id.as_str().map(String::from))
                    .collect(),
            })
        },
    )
    .burst_events(20)
    .out_dir(crate::support::scratch_kept(&format!("it-receiver-{name}")))
}

#[test]
fn a_correct_receiver_holds_every_verdict() {
    // Proves the sender, the signing and the read-back against a receiver that dedupes,
    // orders and persists correctly: no verdict breaks over 30 seeds.
    receiver("correct", Mistake::None)
        .seeds(0..30)
        .run()
        .assert_ok();
}

#[test]
fn each_broken_receiver_is_caught_by_its_verdict() {
    // Proves effect_once, nothing_lost and duplicates_acknowledged each bite on the receiver
    // that breaks them, and that the first failure's repro replays with the same trace.
    for (mistake, verdict) in [
        (Mistake::NoDedupe, Verdict::EffectOnce),
        (Mistake::Volatile, Verdict::NothingLost),
        (
            Mistake::ConflictOnDuplicate,
            Verdict::DuplicatesAcknowledged,
        ),
    ] {
        let name = format!("{mistake:?}").to_lowercase();
        let outcome = receiver(&name, mistake).seeds(0..30).run();
        assert!(
            outcome.problem.is_none(),
            "{mistake:?}: {:?}",
            outcome.problem
        );
        let failure = outcome
            .failure(verdict)
            .unwrap_or_else(|| panic!("{mistake:?} not caught by {}", verdict.name()));
        let repro = failure.repro.clone().expect("shrunk to a repro");
        let replay = receiver(&name, mistake).replay(&repro);
        assert!(
            replay.problem.is_none(),
            "{mistake:?}: {:?}",
            replay.problem
        );
        assert!(
            replay.failure(verdict).is_some(),
            "{mistake:?}: replay did not reproduce"
        );
    }
}

#[test]
fn seeds_in_parallel_give_what_seeds_one_by_one_give() {
    // Proves running seeds on the sweep's worker pool changes nothing: one job and four
    // jobs give the same failures (verdict, seed, evidence), the same burst latency and
    // the same repro file, byte for byte.
    let run = |jobs: usize| {
        let name = format!("jobs-{jobs}");
        let outcome = receiver(&name, Mistake::NoDedupe)
            .seeds(0..12)
            .jobs(jobs)
            .run();
        assert!(outcome.problem.is_none(), "{:?}", outcome.problem);
        let failures: Vec<(Verdict, u64, Vec<String>)> = outcome
            .failures
            .iter()
            .map(|f| (f.verdict, f.seed, f.evidence.clone()))
            .collect();
        let repro = outcome.failures[0].repro.clone().expect("shrunk");
        let text = std::fs::read_to_string(&repro).unwrap();
        let plan = text.split_once("\nreceiver = ").unwrap().1.to_string();
        (failures, outcome.latency_ms_burst, plan)
    };
    let (one, burst_one, plan_one) = run(1);
    let (four, burst_four, plan_four) = run(4);
    assert!(!one.is_empty(), "the mistake is caught");
    assert_eq!(one, four);
    assert_eq!(burst_one, burst_four);
    assert_eq!(plan_one.replace("jobs-1", "jobs-4"), plan_four);
}

#[test]
fn a_receiver_without_a_read_back_is_refused() {
    // Proves a receiver shipsim cannot observe is a clear problem, not a silent pass.
    let outcome = Receiver::new(
        "blind",
        Signing::standard_webhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        |boot: &Boot| router(boot, Mistake::None),
    )
    .run();
    let problem = outcome.problem.expect("refused");
    assert!(problem.contains(".read_back("), "{problem}");
}

/// A receiver whose effect is a call to the `ledger` downstream (`POST /effects` with the
/// event id). With `dedupe`, an event already processed (durable set) is acknowledged and one
/// in flight in this boot is answered 409 (the sender retries it); without, every delivery
/// calls the ledger.
fn calling_receiver(name: &str, dedupe: bool) -> Receiver {
    Receiver::new(
        name,
        Signing::HmacBody {
            header: HEADER.into(),
            secret: SECRET.into(),
        },
        move |boot: &Boot| {
            let db = boot.durable("db", || DurableDb(Arc::default())).0.clone();
            let ledger = boot.downstream("ledger");
            let in_flight: Arc<Mutex<BTreeSet<String>>> = Arc::default();
            axum::Router::new().route(
                "/hooks",
                post(move |headers: HeaderMap, body: Bytes| {
                    let db = db.clone();
                    let ledger = ledger.clone();
                    let in_flight = in_flight.clone();
                    async move {
                        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
                        mac.update(&body);
                        let expected: String = mac
                            .finalize()
                            .into_bytes()
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect();
                        if headers.get(HEADER).and_then(|v| v.to_str().ok())
                            != Some(expected.as_str())
                        {
                            return StatusCode::UNAUTHORIZED;
                        }
                        let event: Value = serde_json::from_slice(&body).unwrap_or_default();
                        let id = event["id"].as_str().unwrap_or_default().to_string();
                        if dedupe && db.lock().unwrap().processed.contains(&id) {
                            return StatusCode::OK;
                        }
                        if dedupe && !in_flight.lock().unwrap().insert(id.clone()) {
                            return StatusCode::CONFLICT;
                        }
                        let call = http::Request::post(format!("{}/effects", ledger.base_url()))
                            .body(Bytes::from(json!({ "event_id": id }).to_string()))
                            .unwrap();
                        let sent = ledger.transport().send(call).await;
                        in_flight.lock().unwrap().remove(&id);
                        if sent.is_err() {
                            return StatusCode::SERVICE_UNAVAILABLE;
                        }
                        db.lock().unwrap().processed.insert(id);
                        StatusCode::OK
                    }
                }),
            )
        },
    )
    .events(shipsim::Events::new(
        "/hooks",
        r#"{"id":"{id}","kind":"{type}","thing":"{resource}","seq":{sequence}}"#,
    ))
    .effects_at("ledger", "/event_id")
    .burst_events(20)
    .out_dir(crate::support::scratch_kept(&format!("it-receiver-{name}")))
}

#[test]
fn effects_counted_at_a_downstream_are_judged() {
    // Proves the effect sink: a receiver that calls a downstream once per event (deduping
    // first) holds every verdict; without the dedupe, effect_once counts the downstream's
    // calls and bites.
    calling_receiver("calls-once", true)
        .seeds(0..15)
        .run()
        .assert_ok();
    let outcome = calling_receiver("calls-always", false)
        .seeds(0..15)
        .no_shrink()
        .run();
    assert!(outcome.problem.is_none(), "{:?}", outcome.problem);
    assert!(
        outcome.failure(Verdict::EffectOnce).is_some(),
        "{outcome:?}"
    );
}
