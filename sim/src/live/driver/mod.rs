//! `shipsim live`: a scenario's workload against a real URL, judged by the same oracles as
//! the simulation.
//!
//! A live run has the simulation's phases on real time:
//! 1. **Begin**: fault proxies found at the target or the carrier URL (or started here with
//!    `--proxy`) restart their windows; every merchant's API key is checked.
//! 2. **Workload**: one task per client, the simulation's own workload code
//!    (`crate::run::workload::run_operations`) over reqwest, recording every operation.
//! 3. **Heal and settle**: the proxies stop injecting, and every ambiguous write is re-issued
//!    with its original key until it gets an answer.
//! 4. **Judge**: the final state is read back and the oracles run on it. With the admin key
//!    of a shipsim service, the whole store (`GET /v1/admin/state`; every commit there is
//!    fsynced before it is acknowledged, so what it shows is what survives a crash). Against
//!    a service that is not ours, only the API: each order the clients learned of, every
//!    shipment those orders list, read as their merchant; oracles that need more are
//!    reported as skipped or partial. Against a **described** target (`--api FILE`, any
//!    language), every acknowledged resource is read back through its read route (the
//!    simulation's verify phase), and exactly-once is judged from the ledgers of the
//!    `shipsim downstream`s it calls.
//!
//! Before any of this, a **preflight** checks what the run depends on: the target answers
//! (and its readiness route, if it has one, says ready), every downstream's ledger can be
//! read, every fault proxy answers, every merchant's credentials are accepted. Anything
//! unreachable ends the run before it starts, naming what ([`LiveError::Unready`]), rather
//! than reporting as violations what the service never did.
//!
//! The workload's choices and the proxies' fault decisions come from the seed, but a real
//! network and real scheduling decide the interleaving: the same seed does not give the same
//! history twice, and the output says so.

mod begin;
mod judge;
mod options;
mod preflight;
mod state;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use shipsim_system::bugs::BugSet;
use shipsim_system::carrier::LabelSale;
use shipsim_system::clock::WallClock;
use shipsim_system::seed::Seed;
use shipsim_system::store::Tables;
use shipsim_system::transport::ReqwestTransport;
use tokio::time::Instant;

pub use judge::OraclePlan;
pub use options::LiveOptions;
pub use preflight::{REFERENCE_READY_PATH, START_WAIT_DEFAULT};

use super::LiveError;
use super::proxy::ProxyInfo;
use crate::oracle::{Duplicates, OracleKind, Violation};
use crate::run::history::{Event, EventKind, History, OpOutcome, Trace};
use crate::run::workload::{self, ClientIdentity, Recorder, SETTLE_POLICY};
use crate::target::client::ApiClient;
use crate::target::plan::Plan;
use crate::target::{Caller, Effect};
use begin::{Begun, begin, control};
use judge::judge;
use state::read_final_state;

/// How the final state was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateSource {
    /// `GET /v1/admin/state`: the whole store.
    Admin,
    /// Public reads of what the clients learned of: a service that is not ours.
    ApiReads,
    /// Every acknowledged resource read back through a described target's read routes.
    ReadBack,
}

/// Everything a live run produced.
#[derive(Debug)]
pub struct LiveRun {
    /// The workload seed.
    pub seed: u64,
    /// The run's namespace of idempotency keys.
    pub run_id: String,
    /// Every operation.
    pub history: History,
    /// Every operation event, in wall-clock order (the hash means nothing here).
    pub trace: Trace,
    /// What the oracles found.
    pub violations: Vec<Violation>,
    /// Oracles run, each with a caveat when it saw less than in the simulation.
    pub oracles_run: OraclePlan,
    /// Oracles not run, and why.
    pub oracles_skipped: Vec<(OracleKind, String)>,
    /// The fault proxies of the run, as they reported at the end.
    pub proxies: Vec<ProxyInfo>,
    /// Faults of the scenario that no proxy can apply (network, process and time faults).
    pub faults_not_applied: Vec<String>,
    /// How the final state was read.
    pub state_source: StateSource,
    /// The final state, as read.
    pub tables: Tables,
    /// The carrier's sales, when its ledger could be read.
    pub sales: Option<Vec<LabelSale>>,
    /// Every effect of the downstreams whose ledgers were read (the carrier's sales, or a
    /// described target's downstreams').
    pub effects: Vec<Effect>,
    /// The downstream ledgers read: name and effects made.
    pub ledgers: Vec<(String, usize)>,
    /// Duplicates in the final state.
    pub duplicates: Duplicates,
    /// The target's endpoints.
    pub endpoints: Vec<crate::run::history::Endpoint>,
    /// Wall time of the workload phase, ms.
    pub workload_ms: u64,
    /// Wall time of the whole run, ms.
    pub total_ms: u64,
}

impl LiveRun {
    /// Whether every oracle that ran held.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// Times fault `index` fired, over every proxy.
    #[must_use]
    pub fn fired(&self, index: usize) -> u64 {
        self.proxies
            .iter()
            .filter_map(|p| p.fired.get(&index))
            .sum()
    }
}

/// The recorder of a live run: the history and trace, timed by the OS's monotonic clock.
#[derive(Clone)]
struct LiveRecorder {
    origin: Instant,
    state: Arc<Mutex<(History, Trace)>>,
}

impl LiveRecorder {
    fn new() -> Self {
        LiveRecorder {
            origin: Instant::now(),
            state: Arc::new(Mutex::new((History::new(), Trace::new()))),
        }
    }
}

impl Recorder for LiveRecorder {
    fn now_us(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn with_history<R>(&self, f: impl FnOnce(&mut History) -> R) -> R {
        f(&mut self.state.lock().expect("live history lock poisoned").0)
    }

    fn record(&self, host: &str, kind: EventKind) {
        let at_us = self.now_us();
        self.state
            .lock()
            .expect("live history lock poisoned")
            .1
            .push(Event {
                at_us,
                host: host.to_string(),
                kind,
            });
    }
}

fn target_error(url: &str, detail: impl Into<String>) -> LiveError {
    LiveError::Target {
        url: url.to_string(),
        detail: detail.into(),
    }
}

fn api_client(
    plan: &Plan,
    transport: &Arc<ReqwestTransport>,
    target: &str,
    caller: &Caller,
    policy: shipsim_system::client::RetryPolicy,
    seed: Seed,
    bugs: &BugSet,
) -> ApiClient {
    ApiClient::new(
        plan.api.clone(),
        transport.clone(),
        Arc::new(WallClock),
        seed,
        target.to_string(),
        caller.clone(),
        policy,
        bugs.clone(),
    )
}

/// Runs the workload's clients concurrently on this thread and waits for all of them.
async fn run_workload(
    options: &LiveOptions,
    plan: &Arc<Plan>,
    transport: &Arc<ReqwestTransport>,
    target: &str,
    recorder: &LiveRecorder,
) {
    let scenario = Arc::new(options.scenario.clone());
    let root = Seed(options.seed);
    let local = tokio::task::LocalSet::new();
    for index in 0..scenario.hosts.clients {
        let identity = ClientIdentity::new(index, &plan.callers);
        let client = api_client(
            plan,
            transport,
            target,
            &identity.caller,
            scenario.client,
            workload::client_seed(root, &identity),
            &options.bugs,
        );
        let scenario = scenario.clone();
        let recorder = recorder.clone();
        let plan = plan.clone();
        local.spawn_local(async move {
            let client = crate::target::client::OpClient::Builtin(client);
            workload::run_operations(&identity, &scenario, &plan, root, client, recorder).await;
        });
    }
    local.await;
}

/// What the phases after the begin share: the run's options and plan, the HTTP client and
/// transport, where the clients send their requests, and the recorder.
struct Live<'a> {
    options: &'a LiveOptions,
    plan: &'a Plan,
    http: &'a reqwest::Client,
    transport: &'a Arc<ReqwestTransport>,
    begun: &'a Begun,
    recorder: &'a LiveRecorder,
}

impl Live<'_> {
    /// A client of the target for `caller`, sending where the workload's clients did.
    fn client(
        &self,
        caller: &Caller,
        policy: shipsim_system::client::RetryPolicy,
        seed: Seed,
        bugs: &BugSet,
    ) -> ApiClient {
        api_client(
            self.plan,
            self.transport,
            &self.begun.target,
            caller,
            policy,
            seed,
            bugs,
        )
    }
}

/// Phase 3: heals the proxies (returning their final reports) and re-issues every
/// ambiguous write until it is answered.
async fn heal_and_settle(live: &Live<'_>) -> Result<Vec<ProxyInfo>, LiveError> {
    let mut reports = Vec::new();
    for url in &live.begun.proxies {
        reports.push(control(live.http, url, "heal").await?);
    }
    live.recorder.record("driver", EventKind::Healed);
    let ambiguous: Vec<_> = live.recorder.with_history(|history| {
        history
            .workload()
            .filter(|op| op.kind.is_write() && matches!(op.outcome, OpOutcome::Ambiguous { .. }))
            .cloned()
            .collect()
    });
    let settle_seed = Seed(live.options.seed).derive("settle");
    let limit_ms = live.options.scenario.run.time_limit_ms;
    tokio::time::timeout(
        Duration::from_millis(limit_ms),
        workload::settle(ambiguous, live.plan, live.recorder.clone(), |caller| {
            live.client(
                caller,
                SETTLE_POLICY,
                settle_seed.derive_index("settler", u64::from(caller.index)),
                &live.options.bugs,
            )
        }),
    )
    .await
    .map_err(|_| LiveError::Stuck { limit_ms })?;
    Ok(reports)
}

/// Runs a live scenario. See the module docs.
///
/// # Errors
/// When the preflight finds a target or dependency unusable (unreachable, not ready,
/// refused keys, unreadable ledger), or the run does not finish within the scenario's time
/// limit.
pub async fn run(options: LiveOptions) -> Result<LiveRun, LiveError> {
    let recorder = LiveRecorder::new();
    let plan = Arc::new(options.plan()?);
    let transport = Arc::new(ReqwestTransport::new()?);
    let http = transport.client().clone();
    let begun = begin(&options, &http, &plan).await?;

    let started = Instant::now();
    let limit_ms = options.scenario.run.time_limit_ms;
    tokio::time::timeout(
        Duration::from_millis(limit_ms),
        run_workload(&options, &plan, &transport, &begun.target, &recorder),
    )
    .await
    .map_err(|_| LiveError::Stuck { limit_ms })?;
    let workload_ms = millis(started.elapsed());

    let live = Live {
        options: &options,
        plan: &plan,
        http: &http,
        transport: &transport,
        begun: &begun,
        recorder: &recorder,
    };
    let reports = heal_and_settle(&live).await?;
    let state = tokio::time::timeout(Duration::from_millis(limit_ms), read_final_state(&live))
        .await
        .map_err(|_| LiveError::Stuck { limit_ms })??;
    let (history, trace) =
        std::mem::take(&mut *recorder.state.lock().expect("live history lock poisoned"));
    let mut run = judge(&options, &plan, history, trace, state);
    run.proxies = reports;
    run.workload_ms = workload_ms;
    run.total_ms = millis(recorder.origin.elapsed());
    Ok(run)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
