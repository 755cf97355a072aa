//! Bring your own webhook receiver: shipsim plays the provider that sends it events.
//!
//! A [`Receiver`] is the user's receiver router (built afresh at every boot of its host
//! from the same [`Boot`] seams a [`crate::Target`] gets), how to sign a delivery for it
//! ([`Signing`]), what an event's body looks like ([`Events`]) and how to read back what it
//! did ([`Receiver::read_back`]). For every seed shipsim draws a plan of genuine events
//! about a few resources (each resource's events carry a rising sequence) and attacks on
//! them: duplicate copies (racing the original or arriving later), reordering, forged
//! signatures, stale timestamps, tampered bodies, bursts, and windows in which the
//! receiver's host is down while the sender retries with backoff. Then it judges the
//! receiver with its [`Verdict`]s, shrinks each failure to a small plan written to a repro
//! file, and replays that file byte for byte.

pub(crate) mod live;
mod plan;
mod send;
mod sign;
mod verdict;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use serde::{Deserialize, Serialize};
use shipsim_system::seed::Seed;
use shipsim_system::transport::{HttpRequest, HttpResponse};

pub use sign::Signing;
pub use verdict::Verdict;

use crate::target::{Boot, Factory};
use plan::{Event, Plan};

/// The default event body (Standard Webhooks' recommended envelope: `type`, `timestamp`,
/// `data`), about a shipment whose status moves forward with `sequence`.
pub const BODY_DEFAULT: &str = r#"{"id":"{id}","type":"{type}","timestamp":{timestamp},"data":{"resource":"{resource}","sequence":{sequence}}}"#;

/// The placeholders an event body may use.
const PLACEHOLDERS: [&str; 5] = ["id", "type", "timestamp", "resource", "sequence"];

/// Runs that shrinking may spend on one failure.
const SHRINK_RUNS_MAX: u32 = 200;

/// What an event looks like on the wire: the path it is posted to and a body template.
///
/// The template's placeholders are `{id}` (the event id, also in the signature), `{type}`
/// (from [`Events::types`], by sequence), `{timestamp}` (unix seconds, as signed),
/// `{resource}` (what the event is about) and `{sequence}` (1, 2, 3... per resource: a
/// receiver must never let a lower one overwrite a higher one).
#[derive(Clone, Debug)]
pub struct Events {
    pub(crate) path: String,
    pub(crate) body: String,
    pub(crate) types: Vec<String>,
}

impl Events {
    /// Events posted to `path` with body `template`.
    #[must_use]
    pub fn new(path: impl Into<String>, template: impl Into<String>) -> Events {
        Events {
            path: path.into(),
            body: template.into(),
            types: vec![
                "shipment.created".into(),
                "shipment.in_transit".into(),
                "shipment.delivered".into(),
            ],
        }
    }

    /// The event types, by sequence (the last repeats for higher sequences).
    #[must_use]
    pub fn types(mut self, types: impl IntoIterator<Item = impl Into<String>>) -> Events {
        self.types = types.into_iter().map(Into::into).collect();
        self
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if !self.path.starts_with('/') {
            return Err(format!("event path `{}` must start with `/`", self.path));
        }
        if self.types.is_empty() {
            return Err("events need at least one type".into());
        }
        for (start, _) in self.body.match_indices('{') {
            let rest = &self.body[start + 1..];
            let Some(end) = rest.find('}') else { continue };
            let name = &rest[..end];
            let word =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if word && !PLACEHOLDERS.contains(&name) {
                return Err(format!(
                    "event body template: unknown placeholder `{{{name}}}` at byte {start}; the placeholders are {{id}}, {{type}}, {{timestamp}}, {{resource}} and {{sequence}}"
                ));
            }
        }
        for required in ["{id}", "{resource}", "{sequence}"] {
            if !self.body.contains(required) {
                return Err(format!(
                    "event body template has no `{required}`: the receiver needs it to dedupe and order events"
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn render(&self, event: &Event, timestamp_s: u64) -> String {
        self.body
            .replace("{id}", &event.id)
            .replace("{type}", &event.kind)
            .replace("{timestamp}", &timestamp_s.to_string())
            .replace("{resource}", &event.resource)
            .replace("{sequence}", &event.sequence.to_string())
    }
}

/// What the receiver shows for one resource when read back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// The resource's sequence (the highest event applied, if the receiver is right), or
    /// `None` if the resource is unknown.
    pub sequence: Option<u64>,
    /// The ids of the events whose effect was applied to this resource, once per
    /// application (an event applied twice appears twice).
    pub applied: Vec<String>,
}

type ReadRequest = Arc<dyn Fn(&str) -> HttpRequest + Send + Sync>;
type ReadParse = Arc<dyn Fn(&HttpResponse) -> Result<Observed, String> + Send + Sync>;

#[derive(Clone)]
pub(crate) struct ReadBack {
    request: ReadRequest,
    parse: ReadParse,
}

impl ReadBack {
    pub(crate) fn new(
        request: impl Fn(&str) -> HttpRequest + Send + Sync + 'static,
        parse: impl Fn(&HttpResponse) -> Result<Observed, String> + Send + Sync + 'static,
    ) -> ReadBack {
        ReadBack {
            request: Arc::new(request),
            parse: Arc::new(parse),
        }
    }
}

/// A user's webhook receiver under test. See the module documentation.
#[derive(Clone)]
pub struct Receiver {
    pub(crate) name: String,
    pub(crate) router: Factory,
    pub(crate) hosts: Vec<(String, Factory)>,
    pub(crate) signing: Signing,
    pub(crate) events: Events,
    pub(crate) read_back: Option<ReadBack>,
    /// Effect sinks: (host, JSON pointer to the event id in each POST's body).
    pub(crate) sinks: Vec<(String, String)>,
    seeds: (u64, u64),
    out: Option<PathBuf>,
    burst_events: u32,
    no_shrink: bool,
    jobs: usize,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.name)
            .field("signing", &self.signing)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// A receiver called `name`, served by `router` (built at every boot of the `receiver`
    /// host), signed with `signing`, taking [`BODY_DEFAULT`] events at `/webhooks`.
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        signing: Signing,
        router: impl Fn(&Boot) -> Router + Send + Sync + 'static,
    ) -> Receiver {
        Receiver {
            name: name.into(),
            router: Arc::new(router),
            hosts: Vec::new(),
            signing,
            events: Events::new("/webhooks", BODY_DEFAULT),
            read_back: None,
            sinks: Vec::new(),
            seeds: (0, 100),
            out: None,
            burst_events: 100,
            no_shrink: false,
            jobs: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        }
    }

    /// The events' path and body shape.
    #[must_use]
    pub fn events(mut self, events: Events) -> Receiver {
        self.events = events;
        self
    }

    /// How to read a resource back after the run: `request` builds the request for a
    /// resource (a path-only URI, `/shipments/res_0`), `parse` reads its answer.
    #[must_use]
    pub fn read_back(
        mut self,
        request: impl Fn(&str) -> HttpRequest + Send + Sync + 'static,
        parse: impl Fn(&HttpResponse) -> Result<Observed, String> + Send + Sync + 'static,
    ) -> Receiver {
        self.read_back = Some(ReadBack::new(request, parse));
        self
    }

    /// A simulated downstream called `host` that the receiver calls to perform an event's
    /// effect (reachable as [`Boot::downstream`]`(host)`): every request it gets counts as
    /// one effect of the event whose id is at JSON pointer `pointer` of the request's body
    /// (`/event_id`). It answers `200 {}` and never fails. Without a read-back,
    /// `no_regression` has no state to judge and holds.
    #[must_use]
    pub fn effects_at(mut self, host: impl Into<String>, pointer: impl Into<String>) -> Receiver {
        self.sinks.push((host.into(), pointer.into()));
        self
    }

    /// Another simulated host the receiver calls, reachable as [`Boot::downstream`]`(name)`.
    #[must_use]
    pub fn host(
        mut self,
        name: impl Into<String>,
        router: impl Fn(&Boot) -> Router + Send + Sync + 'static,
    ) -> Receiver {
        self.hosts.push((name.into(), Arc::new(router)));
        self
    }

    /// Seeds to run (end exclusive; default `0..100`).
    #[must_use]
    pub fn seeds(mut self, seeds: std::ops::Range<u64>) -> Receiver {
        self.seeds = (seeds.start, seeds.end);
        self
    }

    /// Events in a burst, when a seed draws one (default 100; 0: no bursts).
    #[must_use]
    pub fn burst_events(mut self, events: u32) -> Receiver {
        self.burst_events = events;
        self
    }

    /// Where the report and repro files go (default `target/shipsim/{name}/`, under
    /// `CARGO_TARGET_DIR` when it is set).
    #[must_use]
    pub fn out_dir(mut self, dir: impl AsRef<Path>) -> Receiver {
        self.out = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Seeds run at once (default: the machine's cores). Results do not depend on it: seeds
    /// are judged and shrunk in seed order.
    #[must_use]
    pub fn jobs(mut self, jobs: usize) -> Receiver {
        self.jobs = jobs.max(1);
        self
    }

    /// Does not shrink failures.
    #[must_use]
    pub fn no_shrink(mut self) -> Receiver {
        self.no_shrink = true;
        self
    }

    fn out(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| PathBuf::from("target"), PathBuf::from)
                .join("shipsim")
                .join(crate::output::summary::file_safe(&self.name))
        })
    }

    fn check(&self) -> Result<(), String> {
        let valid = |name: &str| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        };
        self.events.check()?;
        self.signing.key()?;
        if self.read_back.is_none() && self.sinks.is_empty() {
            return Err(format!(
                "receiver `{}` has no read-back: call `.read_back(request, parse)` or `.effects_at(host, pointer)` so shipsim can see its effects",
                self.name
            ));
        }
        for (pointer, host) in self.sinks.iter().map(|(h, p)| (p, h)) {
            if !pointer.starts_with('/') {
                return Err(format!(
                    "receiver `{}`, effect sink `{host}`: `{pointer}` is not a JSON pointer (it starts with `/`)",
                    self.name
                ));
            }
        }
        for host in self
            .hosts
            .iter()
            .map(|(h, _)| h)
            .chain(self.sinks.iter().map(|(h, _)| h))
        {
            if !valid(host) || host == send::RECEIVER_HOST || host.starts_with("webhook-sender") {
                return Err(format!(
                    "receiver `{}`, host `{host}`: host names are lowercase letters, digits and `-`, not `receiver` or `webhook-sender`",
                    self.name
                ));
            }
        }
        Ok(())
    }

    /// Runs every seed, or, when `SHIPSIM_REPLAY` names a repro file, replays it. Never
    /// panics: a problem is a [`ReceiverOutcome`] whose [`ReceiverOutcome::assert_ok`]
    /// says what it is.
    #[must_use]
    pub fn run(self) -> ReceiverOutcome {
        if let Some(file) = std::env::var_os(crate::REPLAY_ENV).filter(|f| !f.is_empty()) {
            return self.replay(PathBuf::from(file));
        }
        if let Err(problem) = self.check() {
            return ReceiverOutcome::problem(problem);
        }
        let receiver = Arc::new(self);
        let mut outcome = ReceiverOutcome::default();
        let mut burst = Vec::new();
        let mut shrunk: Vec<Verdict> = Vec::new();
        // Seeds run on the sweep's worker pool; their results are judged (and the first
        // failure of each verdict shrunk) in seed order, as if they had run one by one.
        let seeds: Vec<u64> = (receiver.seeds.0..receiver.seeds.1).collect();
        let mut runs: Vec<Option<(Plan, send::RunResult)>> = Vec::new();
        runs.resize_with(seeds.len(), || None);
        crate::many::sweep::pool(
            &seeds,
            receiver.jobs,
            |&seed| {
                let plan = Plan::draw(
                    Seed(seed),
                    receiver.signing.has_timestamp(),
                    receiver.burst_events,
                );
                let result = send::run(&receiver, Seed(seed), &plan);
                (plan, result)
            },
            |index, run| runs[index] = Some(run),
        );
        for (&seed, run) in seeds.iter().zip(runs) {
            let (plan, result) = run.expect("the pool runs every seed");
            outcome.seeds_run += 1;
            burst.extend(
                result
                    .evidence
                    .deliveries
                    .iter()
                    .filter(|d| d.burst)
                    .cloned(),
            );
            if let Some(problem) = result.problem {
                outcome.problem = Some(format!("seed {seed}: {problem}"));
                break;
            }
            for (verdict, evidence) in judge(&result.evidence) {
                let repro = if receiver.no_shrink || shrunk.contains(&verdict) {
                    None
                } else {
                    shrunk.push(verdict);
                    Some(receiver.shrink_and_write(Seed(seed), plan.clone(), verdict))
                };
                let (repro, evidence) = match repro {
                    Some(Ok((path, evidence))) => (Some(path), evidence),
                    Some(Err(problem)) => {
                        outcome.problem = Some(problem);
                        (None, evidence)
                    }
                    None => (None, evidence),
                };
                outcome.failures.push(ReceiverFailure {
                    verdict,
                    seed,
                    evidence,
                    repro,
                });
            }
        }
        outcome.latency_ms_burst = send::percentiles(&burst, true)
            .map(|p| p.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        if let Err(problem) = receiver.write_summary(&outcome) {
            outcome.problem.get_or_insert(problem);
        }
        outcome
    }

    /// Shrinks `plan` while it still breaks `verdict`, then writes its repro file.
    fn shrink_and_write(
        self: &Arc<Self>,
        seed: Seed,
        mut plan: Plan,
        verdict: Verdict,
    ) -> Result<(PathBuf, Vec<String>), String> {
        let mut runs = 0;
        let mut result = send::run(self, seed, &plan);
        'shrink: while runs < SHRINK_RUNS_MAX {
            for candidate in plan.smaller() {
                runs += 1;
                let tried = send::run(self, seed, &candidate);
                if tried.problem.is_none() && !verdict.check(&tried.evidence).is_empty() {
                    plan = candidate;
                    result = tried;
                    continue 'shrink;
                }
                if runs >= SHRINK_RUNS_MAX {
                    break 'shrink;
                }
            }
            break;
        }
        let repro = Repro {
            receiver: self.name.clone(),
            seed: seed.0,
            verdict: verdict.name().to_string(),
            trace_hash: format!("{:016x}", result.trace_hash),
            plan,
        };
        let dir = self.out().join("repro");
        let path = dir.join(format!(
            "{}-seed{}-{}.toml",
            crate::output::summary::file_safe(&self.name),
            seed.0,
            verdict.name()
        ));
        let text = toml::to_string(&repro).map_err(|e| format!("repro file: {e}"))?;
        let header = format!(
            "# shipsim webhook receiver repro: replay with\n#   {}={} cargo test <your test> -- --exact\n",
            crate::REPLAY_ENV,
            path.display()
        );
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&path, header + &text))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((path, verdict.check(&result.evidence)))
    }

    /// Replays the repro file at `path`: its seed and plan, its trace hash checked.
    #[must_use]
    pub fn replay(self, path: impl AsRef<Path>) -> ReceiverOutcome {
        let path = path.as_ref();
        if let Err(problem) = self.check() {
            return ReceiverOutcome::problem(problem);
        }
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => return ReceiverOutcome::problem(format!("{}: {error}", path.display())),
        };
        let repro: Repro = match toml::from_str(&text) {
            Ok(repro) => repro,
            Err(error) => return ReceiverOutcome::problem(format!("{}: {error}", path.display())),
        };
        if repro.receiver != self.name {
            return ReceiverOutcome::problem(format!(
                "{}: a repro of receiver `{}`, not `{}`",
                path.display(),
                repro.receiver,
                self.name
            ));
        }
        let receiver = Arc::new(self);
        let result = send::run(&receiver, Seed(repro.seed), &repro.plan);
        let mut outcome = ReceiverOutcome {
            seeds_run: 1,
            replay: true,
            problem: result.problem.clone(),
            ..ReceiverOutcome::default()
        };
        let replayed = format!("{:016x}", result.trace_hash);
        if replayed != repro.trace_hash {
            outcome.problem.get_or_insert(format!(
                "{} did not replay: it expects trace {}, this build produced {replayed} (the receiver or shipsim changed since the file was written)",
                path.display(),
                repro.trace_hash
            ));
        }
        for (verdict, evidence) in judge(&result.evidence) {
            outcome.failures.push(ReceiverFailure {
                verdict,
                seed: repro.seed,
                evidence,
                repro: Some(path.to_path_buf()),
            });
        }
        outcome
    }

    fn write_summary(&self, outcome: &ReceiverOutcome) -> Result<(), String> {
        let seeds = format!("{}..{}", self.seeds.0, self.seeds.1);
        let report = outcome.report(&self.name, "simulated", None, &seeds, &[], |failure| {
            failure.repro.as_ref().map_or_else(
                || format!("cargo test <this test> (seed {})", failure.seed),
                |repro| {
                    format!(
                        "{}={} cargo test <this test> -- --exact",
                        crate::REPLAY_ENV,
                        repro.display()
                    )
                },
            )
        });
        write_summary(&self.out(), &report)
    }
}

/// Writes `report` as `summary.json`, `index.html` and `summary.md` into `dir`.
pub(crate) fn write_summary(
    dir: &Path,
    report: &shipsim_reports::model::ReceiverReport,
) -> Result<(), String> {
    let text = shipsim_reports::json::receiver(report).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(dir.join("summary.json"), text))
        .and_then(|()| {
            std::fs::write(
                dir.join("index.html"),
                shipsim_reports::html::receiver(report),
            )
        })
        .and_then(|()| {
            std::fs::write(
                dir.join("summary.md"),
                shipsim_reports::markdown::receiver(report),
            )
        })
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// Every verdict that fails on `evidence`, with its evidence.
fn judge(evidence: &verdict::Evidence) -> Vec<(Verdict, Vec<String>)> {
    Verdict::ALL
        .into_iter()
        .filter_map(|v| {
            let found = v.check(evidence);
            (!found.is_empty()).then_some((v, found))
        })
        .collect()
}

/// A repro file: everything one failing run needs.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Repro {
    receiver: String,
    seed: u64,
    verdict: String,
    trace_hash: String,
    plan: Plan,
}

/// One verdict broken on one seed.
#[derive(Clone, Debug)]
pub struct ReceiverFailure {
    /// What broke.
    pub verdict: Verdict,
    /// The seed.
    pub seed: u64,
    /// What was seen (after shrinking, when shrunk).
    pub evidence: Vec<String>,
    /// The shrunk repro file (the first failure of each verdict gets one).
    pub repro: Option<PathBuf>,
}

/// What [`Receiver::run`] found.
#[derive(Clone, Debug, Default)]
pub struct ReceiverOutcome {
    /// Seeds run.
    pub seeds_run: u64,
    /// Every broken verdict, by seed.
    pub failures: Vec<ReceiverFailure>,
    /// Latency of the receiver's answers to burst deliveries, ms: p50, p95, p99, max,
    /// count (none if no seed drew a burst).
    pub latency_ms_burst: Option<BTreeMap<String, u64>>,
    /// Why the run could not be completed or judged.
    pub problem: Option<String>,
    /// Whether this was a replay of a repro file.
    pub replay: bool,
}

impl ReceiverOutcome {
    /// The report model of this outcome: `mode` `simulated` or `live`, `replay` the
    /// command that runs a failure again.
    pub(crate) fn report(
        &self,
        name: &str,
        mode: &str,
        target: Option<&str>,
        seeds: &str,
        notes: &[String],
        replay: impl Fn(&ReceiverFailure) -> String,
    ) -> shipsim_reports::model::ReceiverReport {
        use shipsim_reports::model::{
            ReceiverFailureReport, ReceiverReport, ReceiverVerdictReport,
        };
        let verdicts = Verdict::ALL
            .iter()
            .map(|&verdict| {
                let seeds: std::collections::BTreeSet<u64> = self
                    .failures
                    .iter()
                    .filter(|f| f.verdict == verdict)
                    .map(|f| f.seed)
                    .collect();
                ReceiverVerdictReport {
                    name: verdict.name().to_string(),
                    description: verdict.description().to_string(),
                    seeds_failed: seeds.len() as u64,
                    first_seed: seeds.first().copied(),
                }
            })
            .collect();
        let failures = self
            .failures
            .iter()
            .map(|f| ReceiverFailureReport {
                verdict: f.verdict.name().to_string(),
                seed: f.seed,
                evidence: f.evidence.clone(),
                repro: f.repro.as_ref().map(|p| p.display().to_string()),
                replay_command: replay(f),
            })
            .collect();
        ReceiverReport {
            receiver: name.to_string(),
            mode: mode.to_string(),
            target: target.map(str::to_string),
            seeds: seeds.to_string(),
            seeds_run: self.seeds_run,
            verdicts,
            failures,
            latency_ms_burst: self.latency_ms_burst.clone(),
            notes: notes.to_vec(),
            problem: self.problem.clone(),
        }
    }

    fn problem(problem: String) -> ReceiverOutcome {
        ReceiverOutcome {
            problem: Some(problem),
            ..ReceiverOutcome::default()
        }
    }

    /// The first failure of `verdict`, if it broke.
    #[must_use]
    pub fn failure(&self, verdict: Verdict) -> Option<&ReceiverFailure> {
        self.failures.iter().find(|f| f.verdict == verdict)
    }

    /// Panics, saying what broke and how to replay it, unless every verdict held.
    ///
    /// # Panics
    /// When a verdict broke or the run had a problem.
    pub fn assert_ok(&self) {
        let mut message = String::new();
        if let Some(problem) = &self.problem {
            message.push_str(&format!("problem: {problem}\n"));
        }
        for failure in &self.failures {
            message.push_str(&format!(
                "{} broken on seed {}:\n  {}\n",
                failure.verdict.name(),
                failure.seed,
                failure.evidence.join("\n  ")
            ));
            if let Some(repro) = &failure.repro {
                message.push_str(&format!(
                    "  replay: {}={} cargo test <this test> -- --exact\n",
                    crate::REPLAY_ENV,
                    repro.display()
                ));
            }
        }
        assert!(
            message.is_empty(),
            "webhook receiver verdicts broke:\n{message}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_placeholder_is_refused_with_its_position() {
        // Proves a typo in the body template is a clear error, not a literal `{evnt_id}`
        // sent to the receiver.
        let error = Events::new(
            "/hooks",
            r#"{"id":"{evnt_id}","r":"{resource}","s":{sequence}}"#,
        )
        .check()
        .unwrap_err();
        assert!(error.contains("`{evnt_id}` at byte 7"), "{error}");
    }

    #[test]
    fn the_default_body_renders_valid_json() {
        // Proves the default template, filled in, is JSON with the event's fields.
        let event = Event {
            id: "evt_1".into(),
            kind: "shipment.created".into(),
            resource: "res_0".into(),
            sequence: 2,
        };
        let body = Events::new("/webhooks", BODY_DEFAULT).render(&event, 17);
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["data"]["sequence"], 2);
        assert_eq!(value["timestamp"], 17);
        Events::new("/webhooks", BODY_DEFAULT).check().unwrap();
    }

    /// A fixed outcome: two failures (one with a repro file), burst latency, a problem.
    fn golden_outcome() -> ReceiverOutcome {
        ReceiverOutcome {
            seeds_run: 3,
            failures: vec![
                ReceiverFailure {
                    verdict: Verdict::EffectOnce,
                    seed: 1,
                    evidence: vec!["event e1 was applied 2 times (delivered 2 times)".into()],
                    repro: Some(PathBuf::from("repros/effect_once-1.toml")),
                },
                ReceiverFailure {
                    verdict: Verdict::NothingLost,
                    seed: 2,
                    evidence: vec![
                        "event e4 was never acknowledged (3 attempts): the sender gave up".into(),
                        "event e5 was acknowledged but its effect is missing".into(),
                    ],
                    repro: None,
                },
            ],
            latency_ms_burst: Some(BTreeMap::from(
                [
                    ("count", 50),
                    ("max", 40),
                    ("p50", 3),
                    ("p95", 12),
                    ("p99", 30),
                ]
                .map(|(k, v)| (k.to_string(), v)),
            )),
            problem: Some("seed 2: the receiver stopped answering".into()),
            replay: false,
        }
    }

    #[test]
    fn the_receiver_summary_json_is_written_byte_for_byte_as_before() {
        // Proves `summary.json` of a receiver run is unchanged bytes: a fixed outcome written
        // by `write_summary` reads back as the golden text captured before the file was
        // routed through the report model.
        let outcome = golden_outcome();
        let report = outcome.report(
            "golden",
            "live",
            Some("http://127.0.0.1:8090"),
            "1..4",
            &[],
            |f| format!("replay seed {}", f.seed),
        );
        let dir = tempfile::tempdir().unwrap();
        write_summary(dir.path(), &report).unwrap();
        let written = std::fs::read_to_string(dir.path().join("summary.json")).unwrap();
        assert_eq!(written, GOLDEN_SUMMARY);
    }

    /// `summary.json` of [`golden_outcome`].
    const GOLDEN_SUMMARY: &str = r#"{
  "failures": [
    {
      "evidence": [
        "event e1 was applied 2 times (delivered 2 times)"
      ],
      "repro": "repros/effect_once-1.toml",
      "seed": 1,
      "verdict": "effect_once"
    },
    {
      "evidence": [
        "event e4 was never acknowledged (3 attempts): the sender gave up",
        "event e5 was acknowledged but its effect is missing"
      ],
      "repro": null,
      "seed": 2,
      "verdict": "nothing_lost"
    }
  ],
  "latency_ms_burst": {
    "count": 50,
    "max": 40,
    "p50": 3,
    "p95": 12,
    "p99": 30
  },
  "receiver": "golden",
  "seeds_run": 3,
  "verdicts": [
    "effect_once",
    "forged_refused",
    "stale_refused",
    "tampered_refused",
    "duplicates_acknowledged",
    "no_regression",
    "nothing_lost"
  ]
}"#;
}
