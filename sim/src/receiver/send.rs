//! One run against a receiver: its hosts inside turmoil, shipsim's sender delivering the
//! plan's events with the plan's attacks (retrying what is not acknowledged, with
//! backoff), the receiver crashed and restarted for the plan's down windows, then every
//! resource read back.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use shipsim_system::bugs::BugSet;
use shipsim_system::clock::Clock;
use shipsim_system::seed::{Fnv64, Seed};
use shipsim_system::transport::{HttpRequest, Transport};

use super::plan::{Attack, Event, Plan, SPACING_MS, STALE_S};
use super::verdict::{Class, Delivery, Evidence, Observation};
use super::{Events, Observed, ReadBack, Receiver, Signing};
use crate::run::clock::{EPOCH_UNIX_MS, SimClock};
use crate::run::hosts::HTTP_PORT;
use crate::run::net::SimTransport;
use crate::run::state::Shared;
use crate::scenario::Scenario;
use crate::target::Durables;

/// The receiver's host name.
pub(crate) const RECEIVER_HOST: &str = "receiver";
/// The sender's host name.
const SENDER_HOST: &str = "webhook-sender";
/// Attempts per genuine event before the sender gives up: with the backoff below, about
/// 30 s of simulated time, longer than any down window the plans draw.
const ATTEMPTS_MAX: u32 = 10;
/// First retry delay, doubled per attempt up to [`BACKOFF_MS_MAX`].
const BACKOFF_MS_BASE: u64 = 250;
/// Longest retry delay.
const BACKOFF_MS_MAX: u64 = 4_000;
const _: () = assert!(BACKOFF_MS_BASE <= BACKOFF_MS_MAX);
/// How long the sender waits for one answer, as real senders do (Stripe waits longer;
/// shorter keeps runs small).
const TIMEOUT_MS_PER_ATTEMPT: u64 = 2_000;
/// Quiet time after the last delivery before reading back, for background work.
pub(crate) const SETTLE_MS: u64 = 1_000;
/// Simulated-time limit of one run.
const TIME_LIMIT_MS: u64 = 600_000;

/// Every resource read back, or why reading failed.
type ReadBacks = Result<Vec<(String, Observed)>, String>;

/// What one run produced.
pub(crate) struct RunResult {
    pub evidence: Evidence,
    pub trace_hash: u64,
    /// Why the run could not be judged (the simulation stopped, a read-back failed).
    pub problem: Option<String>,
}

/// Where a run's deliveries go and whose time they carry: the simulated network and
/// clock ([`SimWire`]), or real sockets and the wall clock (live mode). Everything else a
/// run does (the schedule, the sender's retries, the read-back) is the same code on both.
pub(crate) trait Wire: 'static {
    /// What carries requests.
    type Connection: Transport;
    /// The base URL events and read-backs are sent to (`http://receiver:80`).
    fn base(&self) -> &str;
    /// Milliseconds since the run started.
    fn elapsed_ms(&self) -> u64;
    /// Unix seconds, as a delivery is signed.
    fn now_s(&self) -> u64;
    /// A connection for one delivery, or for a whole read-back.
    fn connect(&self) -> Self::Connection;
}

/// The simulation's wire: turmoil's network and the sender host's simulated clock.
struct SimWire {
    base: String,
    clock: SimClock,
}

impl Wire for SimWire {
    type Connection = SimTransport;

    fn base(&self) -> &str {
        &self.base
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(turmoil::sim_elapsed().unwrap_or_default().as_millis()).unwrap_or(u64::MAX)
    }

    fn now_s(&self) -> u64 {
        self.clock.now_ms() / 1_000
    }

    fn connect(&self) -> SimTransport {
        SimTransport::new(RECEIVER_HOST, HTTP_PORT)
    }
}

/// What every delivery task shares.
pub(crate) struct Sender<W: Wire> {
    pub(crate) events: Events,
    pub(crate) signing: Signing,
    pub(crate) key: Vec<u8>,
    pub(crate) deliveries: Mutex<Vec<Delivery>>,
    pub(crate) wire: W,
}

impl<W: Wire> Sender<W> {
    fn now_s(&self) -> u64 {
        self.wire.now_s()
    }

    fn request(&self, body: &str, headers: &[(String, String)]) -> HttpRequest {
        let mut builder = http::Request::builder()
            .method("POST")
            .uri(format!("{}{}", self.wire.base(), self.events.path))
            .header("content-type", "application/json");
        for (name, value) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
            .body(Bytes::from(body.to_string()))
            .expect("event paths and signature headers are valid HTTP")
    }

    /// Sends one delivery and records it.
    async fn send(
        &self,
        event: &str,
        class: Class,
        repeat: bool,
        burst: bool,
        request: HttpRequest,
    ) -> Option<u16> {
        let transport = self.wire.connect();
        let sent_ms = self.wire.elapsed_ms();
        let answer = tokio::time::timeout(
            Duration::from_millis(TIMEOUT_MS_PER_ATTEMPT),
            transport.send(request),
        )
        .await;
        let status = match answer {
            Ok(Ok(response)) => Some(response.status().as_u16()),
            _ => None,
        };
        self.deliveries
            .lock()
            .expect("deliveries lock")
            .push(Delivery {
                event: event.to_string(),
                class,
                repeat,
                burst,
                sent_ms,
                answered_ms: status.map(|_| self.wire.elapsed_ms()),
                status,
            });
        status
    }

    /// Delivers a genuine event until it is acknowledged, re-signing each attempt.
    async fn deliver(&self, event: &Event, burst: bool) {
        for attempt in 0..ATTEMPTS_MAX {
            let timestamp_s = self.now_s();
            let body = self.events.render(event, timestamp_s);
            let headers = self
                .signing
                .headers(&self.key, &event.id, timestamp_s, &body);
            let status = self
                .send(
                    &event.id,
                    Class::Genuine,
                    attempt > 0,
                    burst,
                    self.request(&body, &headers),
                )
                .await;
            if status.is_some_and(|s| (200..300).contains(&s)) {
                return;
            }
            let backoff_ms = (BACKOFF_MS_BASE << attempt.min(8)).min(BACKOFF_MS_MAX);
            tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
        }
    }

    /// One copy of a genuine event, sent once.
    async fn copy(&self, event: &Event) {
        let timestamp_s = self.now_s();
        let body = self.events.render(event, timestamp_s);
        let headers = self
            .signing
            .headers(&self.key, &event.id, timestamp_s, &body);
        self.send(
            &event.id,
            Class::Genuine,
            true,
            false,
            self.request(&body, &headers),
        )
        .await;
    }

    /// One bad delivery: `fresh` under a wrong key, an old timestamp, or `genuine`'s
    /// signature.
    async fn attack(&self, class: Class, fresh: &Event, genuine: &Event) {
        let now_s = self.now_s();
        let (body, headers) = match class {
            Class::Forged => {
                let body = self.events.render(fresh, now_s);
                let mut wrong = self.key.clone();
                wrong.push(0x5a);
                let headers = self.signing.headers(&wrong, &fresh.id, now_s, &body);
                (body, headers)
            }
            Class::Stale => {
                let then_s = now_s.saturating_sub(STALE_S);
                let body = self.events.render(fresh, then_s);
                let headers = self.signing.headers(&self.key, &fresh.id, then_s, &body);
                (body, headers)
            }
            Class::Tampered => {
                let signed = self.events.render(genuine, now_s);
                let headers = self.signing.headers(&self.key, &genuine.id, now_s, &signed);
                (self.events.render(fresh, now_s), headers)
            }
            Class::Genuine => unreachable!("genuine deliveries are not attacks"),
        };
        self.send(
            &fresh.id,
            class,
            false,
            false,
            self.request(&body, &headers),
        )
        .await;
    }

    async fn sleep_until(&self, at_ms: u64) {
        let now_ms = self.wire.elapsed_ms();
        if at_ms > now_ms {
            tokio::time::sleep(Duration::from_millis(at_ms - now_ms)).await;
        }
    }
}

/// Every event the plan sends, genuine (with first-send times) and fresh (per attack).
pub(crate) struct Schedule {
    pub(crate) genuine: Vec<(Event, u64, bool)>,
    pub(crate) jobs: Vec<Job>,
}

pub(crate) enum Job {
    Copy {
        event: usize,
        at_ms: u64,
    },
    Attack {
        class: Class,
        fresh: Event,
        event: usize,
        at_ms: u64,
    },
}

pub(crate) fn schedule(events: &Events, seed: Seed, plan: &Plan) -> Schedule {
    let types = &events.types;
    let mut genuine: Vec<(Event, u64, bool)> = (0..plan.genuine())
        .map(|i| (plan.event(seed, types, i), u64::from(i) * SPACING_MS, false))
        .collect();
    let mut next = plan.genuine();
    for attack in &plan.attacks {
        if let Attack::Burst { at_ms, events } = *attack {
            for _ in 0..events {
                genuine.push((plan.event(seed, types, next), at_ms, true));
                next += 1;
            }
        }
    }
    for attack in &plan.attacks {
        if let Attack::Reorder { event, hold_ms } = *attack {
            genuine[event as usize].1 += hold_ms;
        }
    }
    let mut jobs = Vec::new();
    for (index, attack) in plan.attacks.iter().enumerate() {
        let (class, event) = match *attack {
            Attack::Duplicate {
                event,
                copies,
                gap_ms,
            } => {
                let at_ms = genuine[event as usize].1 + gap_ms;
                for _ in 0..copies {
                    jobs.push(Job::Copy {
                        event: event as usize,
                        at_ms,
                    });
                }
                continue;
            }
            Attack::Forge { event } => (Class::Forged, event),
            Attack::Stale { event } => (Class::Stale, event),
            Attack::Tamper { event } => (Class::Tampered, event),
            Attack::Reorder { .. } | Attack::Burst { .. } | Attack::Down { .. } => continue,
        };
        let near = &genuine[event as usize];
        jobs.push(Job::Attack {
            class,
            fresh: plan.fresh(seed, types, index, &near.0),
            event: event as usize,
            at_ms: near.1 + 1,
        });
    }
    Schedule { genuine, jobs }
}

/// Runs `plan` against `receiver` under `seed`.
pub(crate) fn run(receiver: &Arc<Receiver>, seed: Seed, plan: &Plan) -> RunResult {
    let key = match receiver.signing.key() {
        Ok(key) => key,
        Err(problem) => {
            return RunResult {
                evidence: Evidence::default(),
                trace_hash: 0,
                problem: Some(problem),
            };
        }
    };
    let schedule = Arc::new(schedule(&receiver.events, seed, plan));
    let mut evidence = Evidence {
        genuine: genuine_of(&schedule),
        ..Evidence::default()
    };
    let scenario = Arc::new(
        Scenario::parse_for(
            "receiver.toml",
            "receiver",
            "",
            &crate::scenario::Topology::reference(),
        )
        .expect("the empty scenario is valid"),
    );
    let shared = Shared::new();
    let durables = Durables::default();
    let mut sim = turmoil::Builder::new()
        .epoch(std::time::UNIX_EPOCH + Duration::from_millis(EPOCH_UNIX_MS))
        .rng_seed(seed.derive("turmoil").0)
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(10))
        .simulation_duration(Duration::from_millis(TIME_LIMIT_MS))
        .tcp_capacity(1024)
        .build();
    // The receiver's hosts start, crash and restart as a target's do: the same host
    // wiring, with no scenario faults.
    let context = crate::run::runner::HostContext {
        scenario,
        root: seed,
        shared,
        durables: durables.clone(),
        callers: Arc::from(Vec::new()),
        bugs: BugSet::default(),
    };
    crate::run::runner::add_server_host(&mut sim, RECEIVER_HOST, &context, receiver.router.clone());
    for (name, factory) in &receiver.hosts {
        crate::run::runner::add_server_host(&mut sim, name, &context, factory.clone());
    }
    let sunk: Arc<Mutex<Vec<String>>> = Arc::default();
    for (host, pointer) in &receiver.sinks {
        let sink = sink(pointer.clone(), sunk.clone());
        crate::run::runner::add_server_host(&mut sim, host, &context, sink);
    }
    let sender = Arc::new(Sender {
        events: receiver.events.clone(),
        signing: receiver.signing.clone(),
        key,
        deliveries: Mutex::new(Vec::new()),
        wire: SimWire {
            base: format!("http://{RECEIVER_HOST}:{HTTP_PORT}"),
            clock: SimClock::for_host(SENDER_HOST, &[]),
        },
    });
    let observed: Arc<Mutex<ReadBacks>> = Arc::new(Mutex::new(Ok(Vec::new())));
    {
        let sender = sender.clone();
        let schedule = schedule.clone();
        let observed = observed.clone();
        let read = receiver.read_back.clone();
        sim.client(SENDER_HOST, async move {
            send_all(&sender, &schedule).await;
            tokio::time::sleep(Duration::from_millis(SETTLE_MS)).await;
            let resources = resources_of(&schedule);
            *observed.lock().expect("observed lock") = match &read {
                Some(read) => read_back(&sender.wire, read, &resources).await,
                None => Ok(Vec::new()),
            };
            Ok(())
        });
    }
    let mut downs: Vec<(u64, u64)> = plan
        .attacks
        .iter()
        .filter_map(|a| match *a {
            Attack::Down { at_ms, for_ms } => Some((at_ms, at_ms + for_ms)),
            _ => None,
        })
        .collect();
    downs.sort_unstable();
    let mut problem = drive(&mut sim, &durables, &downs);
    evidence.deliveries = std::mem::take(&mut *sender.deliveries.lock().expect("deliveries lock"));
    match std::mem::replace(
        &mut *observed.lock().expect("observed lock"),
        Ok(Vec::new()),
    ) {
        Ok(seen) => {
            evidence.observation = observation(&seen);
            for id in sunk.lock().expect("sink lock").iter() {
                *evidence.observation.effects.entry(id.clone()).or_insert(0) += 1;
            }
        }
        Err(error) => problem = problem.or(Some(error)),
    }
    let trace_hash = trace_hash(&evidence);
    RunResult {
        evidence,
        trace_hash,
        problem,
    }
}

pub(crate) async fn send_all<W: Wire>(sender: &Arc<Sender<W>>, schedule: &Arc<Schedule>) {
    let mut tasks = Vec::new();
    for index in 0..schedule.genuine.len() {
        let sender = sender.clone();
        let schedule = schedule.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let (event, at_ms, burst) = &schedule.genuine[index];
            sender.sleep_until(*at_ms).await;
            sender.deliver(event, *burst).await;
        }));
    }
    for index in 0..schedule.jobs.len() {
        let sender = sender.clone();
        let schedule = schedule.clone();
        tasks.push(tokio::task::spawn_local(async move {
            match &schedule.jobs[index] {
                Job::Copy { event, at_ms } => {
                    sender.sleep_until(*at_ms).await;
                    sender.copy(&schedule.genuine[*event].0).await;
                }
                Job::Attack {
                    class,
                    fresh,
                    event,
                    at_ms,
                } => {
                    sender.sleep_until(*at_ms).await;
                    sender
                        .attack(*class, fresh, &schedule.genuine[*event].0)
                        .await;
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// The genuine events of `schedule`: id -> (resource, sequence).
pub(crate) fn genuine_of(schedule: &Schedule) -> BTreeMap<String, (String, u64)> {
    schedule
        .genuine
        .iter()
        .map(|(event, _, _)| (event.id.clone(), (event.resource.clone(), event.sequence)))
        .collect()
}

pub(crate) fn resources_of(schedule: &Schedule) -> Vec<String> {
    let mut resources: Vec<String> = schedule
        .genuine
        .iter()
        .map(|(e, _, _)| e.resource.clone())
        .collect();
    resources.sort();
    resources.dedup();
    resources
}

/// Reads every resource back, retrying while the receiver is down or restarting.
pub(crate) async fn read_back<W: Wire>(
    wire: &W,
    read: &ReadBack,
    resources: &[String],
) -> Result<Vec<(String, Observed)>, String> {
    let transport = wire.connect();
    let mut out = Vec::new();
    for resource in resources {
        let mut last = String::new();
        let mut seen = None;
        for _ in 0..ATTEMPTS_MAX {
            let mut request = (read.request)(resource);
            let uri = format!("{}{}", wire.base(), request.uri());
            *request.uri_mut() = uri
                .parse()
                .map_err(|e| format!("read-back uri {uri}: {e}"))?;
            match tokio::time::timeout(
                Duration::from_millis(TIMEOUT_MS_PER_ATTEMPT),
                transport.send(request),
            )
            .await
            {
                Ok(Ok(response)) if response.status().is_server_error() => {
                    last = format!("answered {}", response.status());
                }
                Ok(Ok(response)) => match (read.parse)(&response) {
                    Ok(observed) => {
                        seen = Some(observed);
                        break;
                    }
                    Err(error) => return Err(format!("read-back of {resource}: {error}")),
                },
                Ok(Err(error)) => last = error.to_string(),
                Err(_) => last = "timed out".into(),
            }
            tokio::time::sleep(Duration::from_millis(BACKOFF_MS_MAX)).await;
        }
        let observed = seen.ok_or_else(|| format!("read-back of {resource} failed: {last}"))?;
        out.push((resource.clone(), observed));
    }
    Ok(out)
}

pub(crate) fn observation(seen: &[(String, Observed)]) -> Observation {
    let mut observation = Observation::default();
    for (resource, observed) in seen {
        observation
            .sequences
            .insert(resource.clone(), observed.sequence);
        for id in &observed.applied {
            *observation.effects.entry(id.clone()).or_insert(0) += 1;
        }
    }
    observation
}

fn trace_hash(evidence: &Evidence) -> u64 {
    let mut hash = Fnv64::new();
    for d in &evidence.deliveries {
        hash.write(
            format!(
                "{} {} {} {} {} {:?} {:?}\n",
                d.event,
                d.class.name(),
                d.repeat,
                d.burst,
                d.sent_ms,
                d.answered_ms,
                d.status
            )
            .as_bytes(),
        );
    }
    for (id, count) in &evidence.observation.effects {
        hash.write(format!("effect {id} {count}\n").as_bytes());
    }
    for (resource, sequence) in &evidence.observation.sequences {
        hash.write(format!("state {resource} {sequence:?}\n").as_bytes());
    }
    hash.finish()
}

/// Steps the simulation to its end, crashing and restarting the receiver for `downs`.
fn drive(sim: &mut turmoil::Sim<'_>, durables: &Durables, downs: &[(u64, u64)]) -> Option<String> {
    let mut down_until: Option<u64> = None;
    let mut next = 0;
    loop {
        let now_ms = u64::try_from(sim.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Some(until) = down_until
            && now_ms >= until
        {
            sim.bounce(RECEIVER_HOST);
            down_until = None;
        }
        while next < downs.len() && downs[next].0 <= now_ms {
            let (_, until) = downs[next];
            next += 1;
            if down_until.is_none() {
                sim.crash(RECEIVER_HOST);
                durables.crash(RECEIVER_HOST);
            }
            down_until = Some(down_until.map_or(until, |u| u.max(until)));
        }
        match sim.step() {
            Ok(true) => return None,
            Ok(false) => {}
            Err(error) => return Some(format!("simulation failed: {error}")),
        }
    }
}

/// An effect sink's router: records the event id at `pointer` of every request's body.
fn sink(pointer: String, sunk: Arc<Mutex<Vec<String>>>) -> crate::target::Factory {
    Arc::new(move |_boot: &crate::target::Boot| {
        let pointer = pointer.clone();
        let sunk = sunk.clone();
        axum::Router::new().fallback(move |body: Bytes| {
            let id = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    v.pointer(&pointer).map(|id| match id {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                })
                .unwrap_or_else(|| "(no event id)".to_string());
            sunk.lock().expect("sink lock").push(id);
            async { axum::Json(serde_json::json!({})) }
        })
    })
}

/// Latency percentiles, ms.
pub(crate) fn percentiles(
    deliveries: &[Delivery],
    burst: bool,
) -> Option<BTreeMap<&'static str, u64>> {
    let mut histogram =
        hdrhistogram::Histogram::<u64>::new(3).expect("3 significant digits is valid");
    for d in deliveries
        .iter()
        .filter(|d| d.burst == burst && d.class == Class::Genuine)
    {
        if let Some(answered_ms) = d.answered_ms {
            histogram.saturating_record(answered_ms - d.sent_ms);
        }
    }
    if histogram.is_empty() {
        return None;
    }
    Some(BTreeMap::from([
        ("p50", histogram.value_at_quantile(0.5)),
        ("p95", histogram.value_at_quantile(0.95)),
        ("p99", histogram.value_at_quantile(0.99)),
        ("max", histogram.max()),
        ("count", histogram.len()),
    ]))
}
