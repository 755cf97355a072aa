//! The kill test of mutation testing (`.ci/mutants`, cargo-mutants): a seeded sweep of the
//! scenario corpus and of swarm exploration against the reference system, judged by every
//! oracle. A mutant of `shipsim-system` (or of the simulated receiver) is caught when this
//! test fails.
//!
//! It is `#[ignore]`d in a plain `cargo test` (the corpus has its own per-file tests and
//! `it::explore` its own clean seeds); `.cargo/mutants.toml` runs it with `--ignored`.
//! It stops at the first failure, since one is enough to catch a mutant.
//!
//! Seeds: the first `SHIPSIM_MUTANTS_SEEDS` (default [`CORPUS_SEEDS`]) of each corpus
//! scenario's range, then exploration seeds `1..=SHIPSIM_MUTANTS_EXPLORE` (default
//! [`EXPLORE_SEEDS`]). Regressions under `scenarios/regressions/` are left out: they pin
//! planted bugs, and a mutant that happens to mask one is luck, not detection.
//!
//! The corpus runs the service's SQLite store on the simulation's in-memory database
//! (`[service] store = "sqlite"`). What only live mode's files do, no simulated run does:
//! opening a file of an older schema version, the store's writer thread, and the carrier's
//! journal, read back when the carrier restarts. [`live_files_reopen_whole`] holds those,
//! through the same public API live mode uses.
//!
//! Between the corpus and exploration, [`UNTRIGGERED`]: a planted bug run on corpus
//! scenarios that never pull its trigger, where every oracle must still hold. That reaches
//! the code a planted bug switches on (its own store) without judging the bug itself.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use shipsim::Scenario;
use shipsim::many::explore;
use shipsim_system::bugs::{Bug, BugSet};

/// Seeds per corpus scenario.
const CORPUS_SEEDS: u64 = 3;

/// Exploration seeds after the corpus.
const EXPLORE_SEEDS: u64 = 60;

/// Planted bugs and corpus scenarios that never pull their trigger. `idempotency_in_memory`
/// keeps the service's idempotency records in process memory (its own `Tx`,
/// `MemoryIdempotencyTx`, which runs only with the bug planted): only a crash of the service
/// loses them, and `lost_responses` (lost answers, replays) and `receiver_down` (the outbox,
/// its dead letters and the operator's outbox counts) crash nothing. With the bug planted
/// they must hold every oracle; a mutant of that store that breaks more than crash survival
/// (records never kept, outbox sequences reused, outbox counts wrong) fails them.
const UNTRIGGERED: &[(&str, &[&str])] = &[(
    "idempotency_in_memory",
    &["lost_responses.toml", "receiver_down.toml"],
)];

fn count(var: &str, default: u64) -> u64 {
    match std::env::var(var) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{var}={text:?}: not a count ({e})")),
        Err(_) => default,
    }
}

/// The corpus scenario files (not the regressions), in name order.
fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
#[ignore = "mutation testing's kill test: .ci/mutants runs it (cargo test -- --ignored)"]
fn corpus_and_exploration_hold() {
    let target = shipsim::reference::target();
    let seeds = count("SHIPSIM_MUTANTS_SEEDS", CORPUS_SEEDS);
    let files = corpus();
    assert!(files.len() > 10, "the corpus is there: {files:?}");
    for path in &files {
        let scenario = Scenario::load(path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            scenario.bugs.is_empty(),
            "{}: corpus files pin no bugs",
            path.display()
        );
        let first = scenario.seed.unwrap_or_else(|| scenario.seeds.start());
        let mut reached = BTreeSet::new();
        for seed in first..first + seeds {
            let run = shipsim::run_seed(&target, &scenario, seed, &scenario.bugs);
            reached.extend(run.reached.keys().copied());
            if let Some((goal, message)) = explore::goal_of(&run) {
                panic!(
                    "{} seed {seed}: {goal:?}: {message}\nreplay: shipsim run {} --seed {seed}",
                    path.display(),
                    path.display()
                );
            }
        }
        let missed: Vec<&str> = scenario
            .reach
            .iter()
            .filter(|m| !reached.contains(*m))
            .map(|m| m.name())
            .collect();
        assert!(
            missed.is_empty() || seeds == 0,
            "{}: required moments never reached in {seeds} seeds: {missed:?}",
            path.display()
        );
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    for (bug, names) in UNTRIGGERED {
        let bugs = BugSet::of([bug.parse::<Bug>().unwrap_or_else(|e| panic!("{e}"))]);
        for name in *names {
            let path = dir.join(name);
            let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            let first = scenario.seed.unwrap_or_else(|| scenario.seeds.start());
            for seed in first..first + seeds {
                let run = shipsim::run_seed(&target, &scenario, seed, &bugs);
                if let Some((goal, message)) = explore::goal_of(&run) {
                    panic!(
                        "{} seed {seed} with {bug} planted (its trigger, a crash, never pulled): {goal:?}: {message}\nreplay: shipsim run {} --seed {seed} --bug {bug}",
                        path.display(),
                        path.display()
                    );
                }
            }
        }
    }
    for seed in 1..=count("SHIPSIM_MUTANTS_EXPLORE", EXPLORE_SEEDS) {
        let explored = explore::explore_one(&target, seed, &BugSet::none());
        if let Some((goal, message)) = explore::goal_of(&explored.run) {
            panic!(
                "explore seed {seed}: {goal:?}: {message}\nreplay: shipsim explore --seeds {seed}..{}",
                seed + 1
            );
        }
    }
}

#[test]
#[ignore = "mutation testing's kill test: .ci/mutants runs it (cargo test -- --ignored)"]
fn live_files_reopen_whole() {
    use shipsim_system::api::{Label, TrackingKind};
    use shipsim_system::carrier::{CarrierLedger, tracking_event};
    use shipsim_system::store::{Durability, OrderRecord, SqliteStore, Store, TxDecision};

    // What live mode's files must keep across a restart, judged from what reopening them
    // reads back: a service database written by schema version 2 opens and keeps its rows;
    // transactions committed through the store's writer thread survive and an aborted one
    // does not; every boot is counted; the carrier's journal gives back its sales and their
    // tracking log.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let order = |id: &str| OrderRecord {
        caller: "merchant-0".into(),
        idempotency_key: format!("key-{id}"),
        order: new_order(id),
    };
    let service = dir.path().join("service.sqlite");
    {
        let (store, boots_before) = SqliteStore::open(&service).expect("a fresh file opens");
        assert_eq!(boots_before, 0);
        for (id, decision) in [
            ("ord_1", TxDecision::Commit),
            ("ord_2", TxDecision::Abort),
            ("ord_3", TxDecision::Commit),
        ] {
            let record = order(id);
            let answer = store.run_tx_owned(
                Durability::Sync,
                Box::new(move |tx| {
                    tx.put_order(record.clone());
                    decision
                }),
            );
            runtime.block_on(answer).expect("the writer thread answers");
        }
    }
    {
        // Schema version 2: no retention index, shipments without their webhook sequence.
        let connection = rusqlite::Connection::open(&service).expect("the file opens");
        connection
            .execute_batch(
                "DROP INDEX idempotency_by_age; \
                 ALTER TABLE shipments DROP COLUMN webhook_sequence; \
                 PRAGMA user_version = 2;",
            )
            .expect("the file goes back to version 2");
    }
    let (store, boots_before) = SqliteStore::open(&service).expect("a version 2 file opens");
    assert_eq!(boots_before, 1, "the second open of the file");
    let orders = store.read_all().expect("the tables read back").orders;
    assert_eq!(
        orders.keys().map(String::as_str).collect::<Vec<_>>(),
        ["ord_1", "ord_3"],
        "committed rows survive the reopen and the migration; the aborted one is gone"
    );
    drop(store);

    let carrier = dir.path().join("carrier.sqlite");
    let label = |id: &str| Label {
        label_id: id.into(),
        tracking_number: format!("1Z{id}"),
        shipment_ref: format!("shp_{id}"),
        cost_cents: 700,
    };
    let story = |label: &Label| {
        [
            (TrackingKind::LabelCreated, 100),
            (TrackingKind::PickedUp, 200),
        ]
        .into_iter()
        .map(|(kind, due_at_ms)| {
            let id = format!("trk_{}_{due_at_ms}", label.label_id);
            (tracking_event(label, kind, due_at_ms, id), due_at_ms)
        })
        .collect()
    };
    let (sales, tracking) = {
        let (ledger, _) = CarrierLedger::open(&carrier).expect("a fresh journal opens");
        for id in ["lbl_1", "lbl_2"] {
            ledger
                .sell(Some(id), "fp", 10, || label(id), story)
                .expect("a sale commits");
        }
        (ledger.sales(), ledger.tracking())
    };
    assert_eq!(tracking.len(), 4, "two events per parcel");
    let (reopened, _) = CarrierLedger::open(&carrier).expect("the journal reopens");
    assert_eq!(reopened.sales(), sales, "every sale comes back");
    assert_eq!(
        reopened.tracking(),
        tracking,
        "the whole tracking log comes back"
    );
}

/// A transport that answers from a script and keeps what it answered: the wire the
/// merchant's client is judged against.
struct Scripted {
    answers: std::sync::Mutex<Vec<shipsim_system::transport::HttpResponse>>,
    carried: std::sync::Mutex<Vec<(u16, Option<String>)>>,
}

impl shipsim_system::transport::Transport for Scripted {
    fn send(
        &self,
        _request: shipsim_system::transport::HttpRequest,
    ) -> shipsim_system::transport::BoxFuture<
        '_,
        Result<shipsim_system::transport::HttpResponse, shipsim_system::transport::TransportError>,
    > {
        let answer = self.answers.lock().expect("script lock").remove(0);
        let replayed = answer
            .headers()
            .get(shipsim_system::api::HEADER_IDEMPOTENT_REPLAYED)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.carried
            .lock()
            .expect("wire lock")
            .push((answer.status().as_u16(), replayed));
        Box::pin(async move { Ok(answer) })
    }
}

/// A clock that stands still, for what is judged at one instant.
struct Frozen(u64);

impl shipsim_system::clock::Clock for Frozen {
    fn now_ms(&self) -> u64 {
        self.0
    }
}

#[test]
#[ignore = "mutation testing's kill test: .ci/mutants runs it (cargo test -- --ignored)"]
fn merchant_client_reports_what_the_wire_carried() {
    use shipsim_system::api::HEADER_IDEMPOTENT_REPLAYED;
    use shipsim_system::client::{
        ClientError, KeyPlacement, RetryPolicy, ShipClient, ShipClientConfig,
    };

    // What the merchant's own client (`ShipClient`, the client the system ships; the
    // simulation's workload runs shipsim's client of any target instead) tells its caller
    // must be what the wire carried: an answer is "replayed" iff it carried
    // `Idempotent-Replayed: true`, and an operation that gave up names the status its last
    // attempt was answered with. Judged against a scripted transport's record of what it
    // answered.
    let order = new_order("ord_1");
    let body = bytes::Bytes::from(serde_json::to_vec(&order).expect("an order serialises"));
    let answer = |status: u16, replayed: Option<&str>| {
        let mut builder = http::Response::builder().status(status);
        if let Some(value) = replayed {
            builder = builder.header(HEADER_IDEMPOTENT_REPLAYED, value);
        }
        builder.body(body.clone()).expect("a valid response")
    };
    let transport = std::sync::Arc::new(Scripted {
        answers: std::sync::Mutex::new(vec![
            answer(201, None),
            answer(200, Some("true")),
            answer(503, None),
            answer(503, None),
        ]),
        carried: std::sync::Mutex::new(Vec::new()),
    });
    let mut policy = RetryPolicy::new(1_000, 10_000);
    policy.attempt_count_max = 2;
    policy.backoff_ms_base = 0;
    policy.backoff_ms_max = 0;
    let client = ShipClient::new(
        transport.clone(),
        std::sync::Arc::new(Frozen(1_700_000_000_000)),
        shipsim_system::seed::Seed(1),
        ShipClientConfig {
            base_url: "http://service".into(),
            api_key: "key".into(),
            policy,
            bugs: BugSet::none(),
        },
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let request = shipsim_system::api::CreateOrderRequest {
        reference: "ref-1".into(),
        items: Vec::new(),
        ship_to: order.ship_to.clone(),
        idempotency_key: None,
    };
    let first = runtime.block_on(client.create_order(&request, "k-1", KeyPlacement::Header));
    let again = runtime.block_on(client.create_order(&request, "k-1", KeyPlacement::Header));
    let failed = runtime.block_on(client.create_order(&request, "k-2", KeyPlacement::Header));
    let wire = transport.carried.lock().expect("wire lock").clone();
    assert_eq!(wire.len(), 4, "four answers went over the wire: {wire:?}");
    for (report, (status, header)) in [(&first, &wire[0]), (&again, &wire[1])] {
        let success = report.result.as_ref().expect("a 2xx is a success");
        assert_eq!(success.status, *status);
        assert_eq!(
            success.replayed,
            header.as_deref() == Some("true"),
            "the client reported replayed = {} for an answer that carried Idempotent-Replayed: {header:?}",
            success.replayed
        );
    }
    let last = wire[3].0.to_string();
    match &failed.result {
        Err(ClientError::AttemptsExhausted {
            attempts,
            last: said,
        }) => {
            assert_eq!(*attempts, 2);
            assert_eq!(
                said, &last,
                "the client gave up naming its last attempt `{said}`; the wire answered it {last}"
            );
        }
        other => panic!("two 503s with two attempts allowed must exhaust them: {other:?}"),
    }
    for (attempt, (status, _)) in failed.attempts.iter().zip(&wire[2..]) {
        assert_eq!(
            attempt.outcome.label(),
            status.to_string(),
            "an attempt's label names the status the wire carried"
        );
    }
}

#[test]
#[ignore = "mutation testing's kill test: .ci/mutants runs it (cargo test -- --ignored)"]
fn a_retired_signing_secret_signs_nothing_from_its_instant() {
    use shipsim_system::observe::NoopObserver;
    use shipsim_system::transport::{
        BoxFuture, HttpRequest, HttpResponse, Transport, TransportError,
    };
    use shipsim_system::webhook::{
        DeliveryQueue, DeliveryResult, Outgoing, SecretRotation, SenderConfig, run_sender, verify,
    };

    // The service's secret rotation (README, "Credentials"): from `old_until_ms` the old
    // secret signs nothing. The sender's own delivery, signed on the very millisecond of the
    // retirement (and on the one before it), is judged from the signature header it put on
    // the wire: at the retirement the new secret alone verifies it, one ms before both do.
    // A simulated run signs at the retirement instant only by chance (a sender's look on
    // that exact millisecond), so the boundary is driven here, on a clock that stands still.
    struct One(std::sync::Mutex<Option<Outgoing>>);
    impl DeliveryQueue for One {
        fn due(&self, _: u64, _: usize, _: BTreeSet<u64>) -> BoxFuture<'_, Vec<Outgoing>> {
            let next = self.0.lock().expect("queue lock").take();
            Box::pin(async move { next.into_iter().collect() })
        }
        fn settle(&self, _: u64, _: DeliveryResult) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
        fn next_due_ms(&self, _: BTreeSet<u64>) -> BoxFuture<'_, Option<u64>> {
            Box::pin(async { None })
        }
    }
    struct Wire(std::sync::Mutex<Option<tokio::sync::oneshot::Sender<HttpRequest>>>);
    impl Transport for Wire {
        fn send(
            &self,
            request: HttpRequest,
        ) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
            if let Some(tx) = self.0.lock().expect("wire lock").take() {
                let _ = tx.send(request);
            }
            Box::pin(async {
                Ok(http::Response::builder()
                    .status(200)
                    .body(bytes::Bytes::new())
                    .expect("a valid response"))
            })
        }
    }
    let retired_at_ms = 1_700_000_020_000;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    for (signed_at_ms, old_signs) in [(retired_at_ms - 1, true), (retired_at_ms, false)] {
        let body = bytes::Bytes::from_static(br#"{"event_id":"evt_1"}"#);
        let queue = std::sync::Arc::new(One(std::sync::Mutex::new(Some(Outgoing {
            seq: 1,
            event_id: "evt_1".into(),
            url: "http://receiver/webhooks/merchant-0".into(),
            secret: "whsec_old".into(),
            previous_secret: None,
            rotation: Some(SecretRotation {
                secret: "whsec_new".into(),
                from_ms: retired_at_ms - 10_000,
                old_until_ms: retired_at_ms,
            }),
            body: body.clone(),
            attempts: 0,
            first_due_at_ms: signed_at_ms,
        }))));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let wire = std::sync::Arc::new(Wire(std::sync::Mutex::new(Some(tx))));
        let request = runtime.block_on(async {
            let sender = tokio::spawn(run_sender(
                "outbox",
                queue,
                wire,
                std::sync::Arc::new(Frozen(signed_at_ms)),
                shipsim_system::seed::Seed(1),
                SenderConfig::DEFAULT,
                std::sync::Arc::new(NoopObserver),
            ));
            let request = rx.await.expect("the sender delivers its one event");
            sender.abort();
            request
        });
        let header = request
            .headers()
            .get(shipsim_system::webhook::HEADER_SIGNATURE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let under =
            |secret: &str| verify(secret, header.as_deref(), &body, signed_at_ms, 300).is_ok();
        assert!(
            under("whsec_new"),
            "signed under the new secret at {signed_at_ms}: {header:?}"
        );
        assert_eq!(
            under("whsec_old"),
            old_signs,
            "a delivery signed {} ms before the retirement of the old secret carried {:?}",
            retired_at_ms - signed_at_ms,
            header
        );
    }
}

#[test]
#[ignore = "mutation testing's kill test: .ci/mutants runs it (cargo test -- --ignored)"]
fn a_retry_policy_built_by_hand_is_validated_naming_its_field() {
    use shipsim_system::client::{BACKOFF_MS_CEILING, Breaker, RetryPolicy};

    // `RetryPolicy` is public API of the shipped client: a merchant who builds one by hand
    // (bring your own client, no scenario file to validate it first) must hear from
    // `validate` which field is wrong, and a consistent policy, its edges included (a
    // deadline equal to the attempt timeout, a base equal to the max, a max at the ceiling),
    // must pass. The simulation validates a scenario's `[client]` table before it builds a
    // policy, so no simulated run reaches a refusal here.
    let good = RetryPolicy::new(1_000, 10_000);
    let edge = RetryPolicy {
        deadline_ms: 1_000,
        backoff_ms_base: BACKOFF_MS_CEILING,
        backoff_ms_max: BACKOFF_MS_CEILING,
        breaker: Some(Breaker {
            failures_to_open: 1,
            cooldown_ms: 1,
        }),
        ..good
    };
    for policy in [good, edge] {
        assert_eq!(policy.validate(), Ok(()), "a consistent policy: {policy:?}");
    }
    let breaker = |failures_to_open, cooldown_ms| {
        Some(Breaker {
            failures_to_open,
            cooldown_ms,
        })
    };
    let bad = [
        (
            RetryPolicy {
                timeout_ms_per_attempt: 0,
                deadline_ms: 0,
                ..good
            },
            "timeout_ms_per_attempt",
        ),
        (
            RetryPolicy {
                deadline_ms: 999,
                ..good
            },
            "deadline_ms",
        ),
        (
            RetryPolicy {
                attempt_count_max: 0,
                ..good
            },
            "attempt_count_max",
        ),
        (
            RetryPolicy {
                backoff_ms_base: 2_001,
                ..good
            },
            "backoff_ms_base",
        ),
        (
            RetryPolicy {
                breaker: breaker(0, 1_000),
                ..good
            },
            "breaker",
        ),
        (
            RetryPolicy {
                breaker: breaker(3, 0),
                ..good
            },
            "breaker",
        ),
        (
            RetryPolicy {
                backoff_ms_max: BACKOFF_MS_CEILING + 1,
                ..good
            },
            "backoff_ms_max",
        ),
    ];
    for (policy, field) in bad {
        match policy.validate() {
            Err(message) => assert!(
                message.contains(field),
                "the refusal of {policy:?} names {field}: {message}"
            ),
            Ok(()) => panic!("a policy with a bad {field} was accepted: {policy:?}"),
        }
    }
}

/// Serves one request with a router in process, as a server would: the request's parts
/// and body in, the whole response out.
async fn serve(
    router: &axum::Router,
    request: shipsim_system::transport::HttpRequest,
) -> shipsim_system::transport::HttpResponse {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let (parts, body) = request.into_parts();
    let response = router
        .clone()
        .oneshot(http::Request::from_parts(
            parts,
            axum::body::Body::from(body),
        ))
        .await
        .expect("routers are infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("in-memory bodies").to_bytes();
    http::Response::from_parts(parts, bytes)
}

/// What one exchange carried: the request's headers and body, the answer's status, headers
/// and body.
type Exchange = (
    http::HeaderMap,
    bytes::Bytes,
    u16,
    http::HeaderMap,
    bytes::Bytes,
);

/// A router reached in process, keeping every request it was sent and what it answered:
/// the wire the merchant's client is judged against.
struct InProcess {
    router: axum::Router,
    carried: std::sync::Mutex<Vec<Exchange>>,
}

impl shipsim_system::transport::Transport for InProcess {
    fn send(
        &self,
        request: shipsim_system::transport::HttpRequest,
    ) -> shipsim_system::transport::BoxFuture<
        '_,
        Result<shipsim_system::transport::HttpResponse, shipsim_system::transport::TransportError>,
    > {
        Box::pin(async move {
            let (headers, body) = (request.headers().clone(), request.body().clone());
            let answer = serve(&self.router, request).await;
            self.carried.lock().expect("wire lock").push((
                headers,
                body,
                answer.status().as_u16(),
                answer.headers().clone(),
                answer.body().clone(),
            ));
            Ok(answer)
        })
    }
}

/// The reference service, its carrier reached in process, on a clock that stands still.
fn reference_service(clock: u64) -> axum::Router {
    use shipsim_system::carrier::{self, CarrierConfig, CarrierDeps, CarrierLedger};
    use shipsim_system::client::RetryPolicy;
    use shipsim_system::observe::NoopObserver;
    use shipsim_system::service::{self, ServiceConfig, ServiceDeps, WebhookSettings};
    use shipsim_system::store::MemoryStore;
    use shipsim_system::webhook::{SenderConfig, TOLERANCE_S_DEFAULT};
    let carrier = carrier::router(
        CarrierConfig {
            api_key: "ck".into(),
            unserviceable_countries: BTreeSet::new(),
            tracking: None,
            admin_key: None,
        },
        CarrierDeps {
            clock: std::sync::Arc::new(Frozen(clock)),
            ledger: std::sync::Arc::new(CarrierLedger::new()),
            observer: std::sync::Arc::new(NoopObserver),
            seed: shipsim_system::seed::Seed(1).derive("carrier"),
            boot: 0,
        },
    );
    service::router(
        ServiceConfig {
            api_keys: [("sk".to_string(), "merchant-0".to_string())].into(),
            key_retirements: std::collections::BTreeMap::new(),
            carrier_base_url: "http://carrier".into(),
            carrier_api_key: "ck".into(),
            carrier_policy: RetryPolicy::new(1_000, 5_000),
            rate_limit: None,
            lock_lease_ms: service::LOCK_LEASE_MS_DEFAULT,
            idempotency_retention_ms: service::IDEMPOTENCY_RETENTION_MS_DEFAULT,
            store_latency_ms: (0, 0),
            bugs: BugSet::none(),
            admin_key: None,
            webhooks: WebhookSettings {
                carrier_secret: "whsec".into(),
                tolerance_s: TOLERANCE_S_DEFAULT,
                targets: std::collections::BTreeMap::new(),
                sender: SenderConfig::DEFAULT,
            },
        },
        ServiceDeps {
            clock: std::sync::Arc::new(Frozen(clock)),
            store: std::sync::Arc::new(MemoryStore::new()),
            carrier: std::sync::Arc::new(InProcess {
                router: carrier,
                carried: std::sync::Mutex::new(Vec::new()),
            }),
            observer: std::sync::Arc::new(NoopObserver),
            seed: shipsim_system::seed::Seed(1).derive("service"),
            boot: 0,
        },
    )
}

#[test]
#[ignore = "mutation testing's kill test: .ci/mutants runs it (cargo test -- --ignored)"]
fn merchant_client_writes_carry_their_key_where_asked() {
    use shipsim_system::api::{
        CreateOrderRequest, CreateShipmentRequest, HEADER_IDEMPOTENCY_KEY,
        HEADER_IDEMPOTENT_REPLAYED, ServiceLevel,
    };
    use shipsim_system::client::{KeyPlacement, RetryPolicy, ShipClient, ShipClientConfig};

    // The merchant's own client (`ShipClient`; no simulated run executes its write paths)
    // against the reference service served in process. Judged from the requests that went
    // over the wire and the answers that came back: each write carries its idempotency key
    // where its caller placed it (the `Idempotency-Key` header, or the body's
    // `idempotency_key`) and nowhere else, and the same write sent again with that key is
    // answered with the first outcome (`Idempotent-Replayed: true`, the same id), for
    // orders and shipments, in both placements.
    let clock = 1_767_225_600_000;
    let wire = std::sync::Arc::new(InProcess {
        router: reference_service(clock),
        carried: std::sync::Mutex::new(Vec::new()),
    });
    let client = ShipClient::new(
        wire.clone(),
        std::sync::Arc::new(Frozen(clock)),
        shipsim_system::seed::Seed(1),
        ShipClientConfig {
            base_url: "http://service".into(),
            api_key: "sk".into(),
            policy: RetryPolicy::new(1_000, 10_000),
            bugs: BugSet::none(),
        },
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let order = new_order("unused");
    let order_request = CreateOrderRequest {
        reference: "ref-1".into(),
        items: vec![shipsim_system::api::OrderItem {
            sku: "SKU-1".into(),
            quantity: 1,
        }],
        ship_to: order.ship_to.clone(),
        idempotency_key: None,
    };
    let shipment_request = CreateShipmentRequest {
        service_level: ServiceLevel::Ground,
        weight_grams: 1_200,
        idempotency_key: None,
    };
    // Every write and what the client said of it; judged after the wire, so that a key in
    // the wrong place is named as such, not as the refusal it earns.
    let mut sent = Vec::new();
    let mut outcomes = Vec::new();
    for (index, placement) in [KeyPlacement::Header, KeyPlacement::Body]
        .into_iter()
        .enumerate()
    {
        let order_key = format!("order-{index}");
        let shipment_key = format!("shipment-{index}");
        let mut order_id = None;
        for _ in 0..2 {
            let report =
                runtime.block_on(client.create_order(&order_request, &order_key, placement));
            if let Ok(success) = &report.result {
                order_id.get_or_insert(success.value.id.clone());
            }
            sent.push((placement, order_key.clone(), "order"));
            outcomes.push(report.result.map(|_| ()));
        }
        let order_id = order_id.unwrap_or_else(|| "ord_never_created".into());
        for _ in 0..2 {
            let report = runtime.block_on(client.create_shipment(
                &order_id,
                &shipment_request,
                &shipment_key,
                placement,
            ));
            sent.push((placement, shipment_key.clone(), "shipment"));
            outcomes.push(report.result.map(|_| ()));
        }
    }
    let carried = wire.carried.lock().expect("wire lock");
    assert_eq!(carried.len(), sent.len(), "one attempt per write");
    let mut first_ids: std::collections::BTreeMap<String, String> = Default::default();
    for ((headers, body, status, answer_headers, answer_body), (placement, key, what)) in
        carried.iter().zip(&sent)
    {
        let in_header = headers
            .get(HEADER_IDEMPOTENCY_KEY)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body: serde_json::Value = serde_json::from_slice(body).expect("a write's body is JSON");
        let in_body = body
            .get("idempotency_key")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let (header_wanted, body_wanted) = match placement {
            KeyPlacement::Header => (Some(key.clone()), None),
            KeyPlacement::Body => (None, Some(key.clone())),
        };
        assert_eq!(
            (&in_header, &in_body),
            (&header_wanted, &body_wanted),
            "the {what} written with its key placed in the {placement:?} carried it as (header, body) = ({in_header:?}, {in_body:?}) on the wire",
        );
        let answered: serde_json::Value =
            serde_json::from_slice(answer_body).expect("the service answers JSON");
        let id = answered["id"].as_str().unwrap_or_default().to_string();
        let replayed = answer_headers
            .get(HEADER_IDEMPOTENT_REPLAYED)
            .is_some_and(|v| v.as_bytes() == b"true");
        match first_ids.get(key) {
            None => {
                assert_eq!(
                    *status, 201,
                    "the first {what} under key {key} ({placement:?}) was answered {status}: {answered}"
                );
                first_ids.insert(key.clone(), id);
            }
            Some(first) => assert!(
                replayed && first == &id,
                "the {what} sent again under key {key} ({placement:?}) was answered {status} with id {id} (replayed: {replayed}); the first was {first}"
            ),
        }
    }
    for ((placement, key, what), outcome) in sent.iter().zip(&outcomes) {
        assert!(
            outcome.is_ok(),
            "the client reported the {what} under key {key} ({placement:?}) as {outcome:?}"
        );
    }
}

/// A freshly created order `id` with no items or shipments, for the tests that write or
/// answer one.
fn new_order(id: &str) -> shipsim_system::api::Order {
    use shipsim_system::api::{Address, Order, OrderStatus};
    Order {
        id: id.into(),
        reference: format!("ref-{id}"),
        status: OrderStatus::Created,
        items: Vec::new(),
        ship_to: Address {
            name: "n".into(),
            line1: "l".into(),
            city: "c".into(),
            postal_code: "12345".into(),
            country: "DE".into(),
        },
        shipment_ids: Vec::new(),
        created_at_ms: 1,
    }
}
