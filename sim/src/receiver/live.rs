//! Live mode for receivers (`shipsim live-receiver`): a running receiver, in any language,
//! described by a `[receiver]` table, sent the same plans over real sockets and judged by
//! the same verdicts.
//!
//! What a live run can do honestly: the plan of each seed is drawn exactly as the
//! simulation draws it (duplicates racing or late, reordering, forged, stale and tampered
//! deliveries, bursts), the sender retries a genuine event with backoff after a non-2xx or
//! a connection error, and each resource is read back at the end. What it cannot: stop the
//! receiver for a down window (it is not ours to stop), so those attacks are dropped and
//! counted; and replay a run byte for byte (real networks and clocks), so a failing seed
//! is re-run with the same plan, not replayed. Every run namespaces its event ids and
//! resources with a fresh run id, so a receiver that keeps state across runs is judged on
//! this run's events only.
//!
//! **Invariant:** nothing here runs on a simulated path; plans come from the seed alone.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shipsim_system::clock::{Clock as _, WallClock};
use shipsim_system::seed::Seed;
use shipsim_system::transport::{ReqwestTransport, Transport as _, TransportError};

use super::plan::{Attack, Event, Plan};
use super::send::{self, Job, Schedule, Sender, Wire};
use super::verdict::Evidence;
use super::{Events, ReadBack, ReceiverFailure, ReceiverOutcome, Signing, Verdict, judge};

/// The wall clock and real sockets.
struct LiveWire {
    base: String,
    start: tokio::time::Instant,
    transport: ReqwestTransport,
}

impl Wire for LiveWire {
    type Connection = ReqwestTransport;

    fn base(&self) -> &str {
        &self.base
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn now_s(&self) -> u64 {
        WallClock.now_ms() / 1_000
    }

    fn connect(&self) -> ReqwestTransport {
        // One pool for the run: reqwest opens another connection when one is busy, so
        // racing copies still race.
        self.transport.clone()
    }
}

/// What a live run needs.
#[derive(Clone)]
pub(crate) struct LiveReceiver {
    /// The receiver's base URL, without a trailing `/`.
    pub target: String,
    pub events: Events,
    pub signing: Signing,
    pub read_back: ReadBack,
    /// Events in a burst, when a seed draws one.
    pub burst_events: u32,
    /// Namespaces this run's event ids and resources.
    pub run_id: String,
}

/// One seed's live run.
#[derive(Clone, Debug)]
pub(crate) struct LiveSeed {
    pub seed: u64,
    /// Deliveries sent (every attempt and copy).
    pub deliveries: usize,
    /// Down windows the plan drew that a live run cannot apply.
    pub downs_skipped: usize,
    /// Every verdict that broke, with its evidence.
    pub failures: Vec<(Verdict, Vec<String>)>,
    /// Why the seed could not be judged.
    pub problem: Option<String>,
    /// Burst deliveries' latency, ms (sent, answered).
    pub burst: Vec<super::verdict::Delivery>,
}

impl LiveReceiver {
    /// Runs `seeds`, at most `jobs` at a time, on the current thread (call inside a
    /// `LocalSet`). Results in seed order.
    pub(crate) async fn run(
        self: Arc<Self>,
        seeds: std::ops::Range<u64>,
        jobs: usize,
        wait: Duration,
    ) -> Result<Vec<LiveSeed>, String> {
        let transport = ReqwestTransport::new().map_err(|e| e.to_string())?;
        self.preflight(&transport, wait).await?;
        let permits = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
        let mut tasks = Vec::new();
        for seed in seeds {
            let live = self.clone();
            let transport = transport.clone();
            let permits = permits.clone();
            tasks.push(tokio::task::spawn_local(async move {
                let _permit = permits.acquire_owned().await;
                live.run_seed(transport, seed).await
            }));
        }
        let mut out = Vec::with_capacity(tasks.len());
        for task in tasks {
            out.push(
                task.await
                    .map_err(|e| format!("a seed's task failed: {e}"))?,
            );
        }
        Ok(out)
    }

    /// Reads back a resource no event names: the receiver must answer (404 or an empty
    /// state) before any seed runs. A connection refused is retried for up to `wait` (a
    /// receiver started just before the run).
    async fn preflight(&self, transport: &ReqwestTransport, wait: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + wait;
        let uri = format!(
            "{}{}",
            self.target,
            (self.read_back.request)(&format!("{}_preflight", self.run_id)).uri()
        );
        loop {
            let mut request = (self.read_back.request)(&format!("{}_preflight", self.run_id));
            *request.uri_mut() = uri
                .parse()
                .map_err(|e| format!("read-back uri {uri}: {e}"))?;
            let answer = tokio::time::timeout(Duration::from_secs(5), transport.send(request))
                .await
                .map_err(|_| format!("{uri}: no answer within 5 s"))?;
            match answer {
                Ok(response) => {
                    return (self.read_back.parse)(&response)
                        .map(|_| ())
                        .map_err(|e| format!("{uri}: {e}"));
                }
                Err(TransportError::Connect(_)) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => {
                    return Err(format!("{uri}: {error} (is the receiver running there?)"));
                }
            }
        }
    }

    async fn run_seed(self: Arc<Self>, transport: ReqwestTransport, seed: u64) -> LiveSeed {
        let mut plan = Plan::draw(Seed(seed), self.signing.has_timestamp(), self.burst_events);
        let downs_skipped = plan
            .attacks
            .iter()
            .filter(|a| matches!(a, Attack::Down { .. }))
            .count();
        plan.attacks.retain(|a| !matches!(a, Attack::Down { .. }));
        let mut schedule = send::schedule(&self.events, Seed(seed), &plan);
        namespace(&mut schedule, &self.run_id, seed);
        let schedule = Arc::new(schedule);
        let mut evidence = Evidence {
            genuine: send::genuine_of(&schedule),
            ..Evidence::default()
        };
        let mut result = LiveSeed {
            seed,
            deliveries: 0,
            downs_skipped,
            failures: Vec::new(),
            problem: None,
            burst: Vec::new(),
        };
        let key = match self.signing.key() {
            Ok(key) => key,
            Err(problem) => {
                result.problem = Some(problem);
                return result;
            }
        };
        let sender = Arc::new(Sender {
            events: self.events.clone(),
            signing: self.signing.clone(),
            key,
            deliveries: Mutex::new(Vec::new()),
            wire: LiveWire {
                base: self.target.clone(),
                start: tokio::time::Instant::now(),
                transport,
            },
        });
        send::send_all(&sender, &schedule).await;
        tokio::time::sleep(Duration::from_millis(send::SETTLE_MS)).await;
        let resources = send::resources_of(&schedule);
        match send::read_back(&sender.wire, &self.read_back, &resources).await {
            Ok(seen) => evidence.observation = send::observation(&seen),
            Err(problem) => result.problem = Some(problem),
        }
        evidence.deliveries =
            std::mem::take(&mut *sender.deliveries.lock().expect("deliveries lock"));
        result.deliveries = evidence.deliveries.len();
        result.burst = evidence
            .deliveries
            .iter()
            .filter(|d| d.burst)
            .cloned()
            .collect();
        if result.problem.is_none() {
            result.failures = judge(&evidence);
        }
        result
    }
}

/// Gives every event of `schedule` an id and a resource of this run and seed's own.
fn namespace(schedule: &mut Schedule, run_id: &str, seed: u64) {
    let rename = |event: &mut Event| {
        event.id = format!("{}_{run_id}", event.id);
        event.resource = format!("{run_id}_s{seed}_{}", event.resource);
    };
    for (event, _, _) in &mut schedule.genuine {
        rename(event);
    }
    for job in &mut schedule.jobs {
        if let Job::Attack { fresh, .. } = job {
            rename(fresh);
        }
    }
}

/// Every seed folded into one outcome (failures in seed order, burst latency over every
/// seed), with what the run could not do in sentences.
pub(crate) fn outcome(seeds: &[LiveSeed]) -> (ReceiverOutcome, Vec<String>) {
    let mut outcome = ReceiverOutcome {
        seeds_run: seeds.len() as u64,
        ..ReceiverOutcome::default()
    };
    for seed in seeds {
        if let Some(problem) = &seed.problem {
            outcome
                .problem
                .get_or_insert_with(|| format!("seed {}: {problem}", seed.seed));
        }
        for (verdict, evidence) in &seed.failures {
            outcome.failures.push(ReceiverFailure {
                verdict: *verdict,
                seed: seed.seed,
                evidence: evidence.clone(),
                repro: None,
            });
        }
    }
    let burst: Vec<_> = seeds.iter().flat_map(|s| s.burst.iter().cloned()).collect();
    outcome.latency_ms_burst = send::percentiles(&burst, true).map(|p| {
        p.into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<BTreeMap<_, _>>()
    });
    let deliveries: usize = seeds.iter().map(|s| s.deliveries).sum();
    let downs: usize = seeds.iter().map(|s| s.downs_skipped).sum();
    let mut notes = vec![format!(
        "{deliveries} deliveries sent over real sockets; failures are re-run with the same plan (a live run is not replayed byte for byte)"
    )];
    if downs > 0 {
        notes.push(format!(
            "{downs} receiver-down window(s) drawn by the plans were not applied: a live receiver is not ours to stop (the simulation applies them)"
        ));
    }
    (outcome, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A receiver on real sockets: plain HMAC of the body in `x-sig`, state in memory.
    /// With `dedupe`, an event id already processed is acknowledged and not applied again.
    async fn serve(dedupe: bool) -> String {
        use axum::extract::{Path, State};
        use axum::http::{HeaderMap, StatusCode};
        type Things = Arc<Mutex<(Vec<String>, BTreeMap<String, (u64, Vec<String>)>)>>;
        async fn hook(
            State((things, dedupe)): State<(Things, bool)>,
            headers: HeaderMap,
            body: bytes::Bytes,
        ) -> StatusCode {
            let signing = Signing::HmacBody {
                header: "x-sig".into(),
                secret: "s3cret".into(),
            };
            let expected =
                signing.headers(b"s3cret", "", 0, std::str::from_utf8(&body).unwrap_or(""));
            if headers.get("x-sig").and_then(|v| v.to_str().ok()) != Some(expected[0].1.as_str()) {
                return StatusCode::UNAUTHORIZED;
            }
            let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) else {
                return StatusCode::BAD_REQUEST;
            };
            let id = event["id"].as_str().unwrap_or_default().to_string();
            let thing = event["thing"].as_str().unwrap_or_default().to_string();
            let seq = event["seq"].as_u64().unwrap_or_default();
            let mut state = things.lock().unwrap();
            if dedupe && state.0.contains(&id) {
                return StatusCode::OK;
            }
            state.0.push(id.clone());
            let entry = state.1.entry(thing).or_default();
            entry.0 = entry.0.max(seq);
            entry.1.push(id);
            StatusCode::OK
        }
        async fn read(
            State((things, _)): State<(Things, bool)>,
            Path(thing): Path<String>,
        ) -> (StatusCode, String) {
            match things.lock().unwrap().1.get(&thing) {
                None => (StatusCode::NOT_FOUND, String::new()),
                Some((seq, applied)) => (
                    StatusCode::OK,
                    serde_json::json!({ "seq": seq, "applied": applied }).to_string(),
                ),
            }
        }
        let things: Things = Arc::default();
        let router = axum::Router::new()
            .route("/hooks", axum::routing::post(hook))
            .route("/things/{thing}", axum::routing::get(read))
            .with_state((things, dedupe));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::task::spawn_local(async move { axum::serve(listener, router).await });
        format!("http://{address}")
    }

    fn live(target: String) -> Arc<LiveReceiver> {
        Arc::new(LiveReceiver {
            target,
            events: Events::new(
                "/hooks",
                r#"{"id":"{id}","thing":"{resource}","seq":{sequence}}"#,
            ),
            signing: Signing::HmacBody {
                header: "x-sig".into(),
                secret: "s3cret".into(),
            },
            read_back: ReadBack::new(
                |resource| {
                    http::Request::get(format!("/things/{resource}"))
                        .body(bytes::Bytes::new())
                        .unwrap()
                },
                |response| {
                    if response.status() == http::StatusCode::NOT_FOUND {
                        return Ok(super::super::Observed::default());
                    }
                    let body: serde_json::Value =
                        serde_json::from_slice(response.body()).map_err(|e| e.to_string())?;
                    Ok(super::super::Observed {
                        sequence: body["seq"].as_u64(),
                        applied: body["applied"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|id| id.as_str().map(String::from))
                            .collect(),
                    })
                },
            ),
            burst_events: 5,
            run_id: "test".into(),
        })
    }

    #[test]
    fn a_live_run_over_real_sockets_judges_the_receiver() {
        // Proves the live sender end to end on loopback: a receiver that dedupes holds every
        // verdict on three seeds; one that does not is caught by effect_once, and by
        // nothing else, on the seeds whose plans duplicate an event.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        let (correct, broken) = local.block_on(&runtime, async {
            let correct = live(serve(true).await)
                .run(0..3, 3, Duration::ZERO)
                .await
                .unwrap();
            let broken = live(serve(false).await)
                .run(0..3, 3, Duration::ZERO)
                .await
                .unwrap();
            (correct, broken)
        });
        for seed in &correct {
            assert_eq!(seed.problem, None, "seed {}", seed.seed);
            assert!(
                seed.failures.is_empty(),
                "seed {}: {:?}",
                seed.seed,
                seed.failures
            );
            assert!(seed.deliveries > 0);
        }
        let (outcome, notes) = outcome(&broken);
        assert!(outcome.problem.is_none(), "{:?}", outcome.problem);
        assert!(
            !outcome.failures.is_empty(),
            "no seed caught the missing dedupe"
        );
        assert!(
            outcome
                .failures
                .iter()
                .all(|f| f.verdict == Verdict::EffectOnce),
            "{:?}",
            outcome.failures
        );
        assert!(
            notes[0].contains("deliveries sent over real sockets"),
            "{notes:?}"
        );
    }

    #[test]
    fn namespacing_keeps_the_plan_and_renames_every_event() {
        // Proves a live run sends the simulation's plan for a seed (same events, times and
        // attacks) under ids and resources of its own run and seed, so two runs against one
        // receiver never share an event.
        let events = Events::new("/hooks", super::super::BODY_DEFAULT);
        let plan = Plan::draw(Seed(5), true, 8);
        let plain = send::schedule(&events, Seed(5), &plan);
        let mut renamed = send::schedule(&events, Seed(5), &plan);
        namespace(&mut renamed, "run1", 5);
        assert_eq!(plain.genuine.len(), renamed.genuine.len());
        for ((a, at_a, burst_a), (b, at_b, burst_b)) in plain.genuine.iter().zip(&renamed.genuine) {
            assert_eq!((at_a, burst_a, a.sequence), (at_b, burst_b, b.sequence));
            assert_eq!(b.id, format!("{}_run1", a.id));
            assert_eq!(b.resource, format!("run1_s5_{}", a.resource));
        }
        let mut other = send::schedule(&events, Seed(5), &plan);
        namespace(&mut other, "run2", 5);
        assert!(
            other
                .genuine
                .iter()
                .zip(&renamed.genuine)
                .all(|(a, b)| a.0.id != b.0.id)
        );
    }
}
