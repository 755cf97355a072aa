//! Runs one scenario with one seed: builds the simulated world, drives it through the
//! workload with faults, heals, resolves ambiguous operations, and judges the result.
//!
//! Phases of a run:
//! 1. **Workload**: clients issue operations while faults fire.
//! 2. **Heal**: every fault is lifted, crashed hosts restart.
//! 3. **Settle**: the settler re-issues each ambiguous write until it gets an answer.
//! 4. **Judge**: the oracles read the history, the store and the carrier's ledger.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shipsim_system::bugs::BugSet;
use shipsim_system::seed::Seed;

use crate::fault::CrashTrigger;
use crate::fault::FaultKind;
use crate::fault::driver::NetDriver;
use crate::fault::layer::FaultLayer;
use crate::oracle::{self, Duplicates, OracleInput, Violation};
use crate::run::clock::{EPOCH_UNIX_MS, SimClock};
use crate::run::history::{EventKind, History, OpOutcome, Trace};
use crate::run::hosts::{HTTP_PORT, SERVICE, SETTLER};
use crate::run::net::{SimTransport, serve};
use crate::run::state::{HostObserver, Shared};
use crate::run::workload::{self, ClientIdentity};
use crate::scenario::Scenario;
use crate::target::plan::Plan;
use crate::target::{Boot, Caller, Durables, Effect, Factory, Inventories, Target};

/// Simulated time the settle phase may take before the run is declared stuck, ms.
const SETTLE_TIME_LIMIT_MS: u64 = 600_000;

thread_local! {
    /// The panics of the run stepping on this thread, while one is: tokio catches a
    /// task's panic (a handler's, a background sender's) and carries on, so without this a
    /// run whose service panicked would look like a run whose service did not.
    static PANICS: std::cell::RefCell<Option<Vec<String>>> = const { std::cell::RefCell::new(None) };
}

/// Installs, once per process, a panic hook that files every panic on a thread that is
/// stepping a run, then hands it to the previous hook.
fn record_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-text panic".to_string());
            let at = info
                .location()
                .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
            PANICS.with(|panics| {
                if let Ok(mut panics) = panics.try_borrow_mut()
                    && let Some(list) = panics.as_mut()
                {
                    list.push(format!("{payload}{at}"));
                }
            });
            previous(info);
        }));
    });
}

/// Everything one (scenario, seed) run produced.
#[derive(Debug)]
pub struct SeedRun {
    /// The seed.
    pub seed: u64,
    /// Every event, hashed.
    pub trace: Trace,
    /// Every operation.
    pub history: History,
    /// What the oracles found.
    pub violations: Vec<Violation>,
    /// Times each fault fired, by index.
    pub fired: std::collections::BTreeMap<usize, u64>,
    /// Requests each server host received.
    pub requests_seen: std::collections::BTreeMap<String, u64>,
    /// Connections the workload clients opened to the service.
    pub client_connections: u64,
    /// Duplicates in the final state.
    pub duplicates: Duplicates,
    /// Simulated time the run took, ms.
    pub sim_ms: u64,
    /// Every endpoint of the target, in endpoint order.
    pub endpoints: Vec<crate::run::history::Endpoint>,
    /// What the target held at the end, when it says how to read it.
    pub inventory: Option<Inventories>,
    /// Every effect the target's downstreams performed.
    pub effects: Vec<Effect>,
    /// The target's durable state at the end of the run (its stores and ledgers), for
    /// assertions of a test's own.
    pub durables: Durables,
    /// Why the run could not finish, if it could not (a stuck simulation is a failure).
    pub stuck: Option<String>,
    /// Webhook traffic, when the scenario has webhooks.
    pub webhooks: Option<crate::oracle::WebhookView>,
    /// Deliveries the webhook faults injected, with their answers.
    pub injections: Vec<crate::reach::Injection>,
    /// How often the run reached each dangerous moment (those reached only).
    pub reached: std::collections::BTreeMap<crate::reach::Moment, u64>,
}

impl SeedRun {
    /// Whether the seed passed: no violation and not stuck.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.violations.is_empty() && self.stuck.is_none()
    }
}

/// Runs `scenario` with `seed` and planted `bugs` against `target`.
///
/// # Panics
/// If the target has no [`crate::Api`] or its kinds are invalid: [`Target::run`] and the
/// CLI check both before any run.
#[must_use]
pub fn run_seed(target: &Target, scenario: &Scenario, seed: u64, bugs: &BugSet) -> SeedRun {
    let table = target
        .table()
        .expect("targets are checked before they run (Target::run, the CLI)");
    let api = target.api.clone().expect("checked by Target::table");
    let mut plan = Plan::new(api, table, scenario);
    plan.client = target.client.clone();
    let plan = Arc::new(plan);
    let scenario = Arc::new(scenario.clone());
    let root = Seed(seed);
    let shared = Shared::new();
    record_panics();
    PANICS.with(|panics| *panics.borrow_mut() = Some(Vec::new()));
    {
        let mut state = shared.lock();
        for spec in &scenario.faults {
            if let FaultKind::Crash(crash) = &spec.kind
                && let CrashTrigger::AtPoint { times, .. } = crash.trigger
            {
                state.point_budget.insert(spec.index, times);
            }
        }
    }
    let durables = Durables::default();

    let mut sim = build_sim(&scenario, root);

    let context = HostContext {
        scenario: scenario.clone(),
        root,
        shared: shared.clone(),
        durables: durables.clone(),
        callers: plan.callers.clone(),
        bugs: bugs.clone(),
    };
    add_server_host(&mut sim, SERVICE, &context, target.service.clone());
    for host in &target.hosts {
        if host
            .presence
            .as_ref()
            .is_none_or(|present| present(&scenario))
        {
            add_server_host(&mut sim, &host.name, &context, host.factory.clone());
        }
    }

    let mut driver = new_driver(target, &scenario, &durables, &shared, root);
    for index in 0..scenario.hosts.clients {
        let identity = ClientIdentity::new(index, &plan.callers);
        let transport = Arc::new(SimTransport::new(SERVICE, HTTP_PORT));
        driver.register_transport(identity.host.clone(), transport.clone());
        let host = identity.host.clone();
        sim.client(
            host.as_str(),
            workload::run_client(
                identity,
                scenario.clone(),
                plan.clone(),
                root,
                shared.clone(),
                transport,
                bugs.clone(),
            ),
        );
    }

    let mut stuck = drive(&mut sim, &mut driver, &shared, scenario.run.time_limit_ms);

    // Heal, then settle what the clients could not know.
    settle(&mut sim, &mut driver, &mut stuck, &context, &plan, target);
    let sim_ms = elapsed_ms(&sim);
    let client_connections = driver.client_connections();
    drop(sim);
    let panics = PANICS.with(|panics| panics.borrow_mut().take().unwrap_or_default());
    if stuck.is_none()
        && let Some(first) = panics.first()
    {
        // A panic in any host's task (a handler, a background sender) is a failure of the
        // run even though the simulation carried on.
        stuck = Some(format!(
            "a task panicked ({} panic(s)); the first: {first}",
            panics.len()
        ));
    }

    judge(
        target,
        &scenario,
        seed,
        &plan,
        durables,
        &shared,
        stuck,
        sim_ms,
        client_connections,
    )
}

/// The turmoil simulation of one run: its epoch, seeded randomness, tick, message
/// latencies and time limit (the scenario's plus the settling time).
fn build_sim(scenario: &Scenario, root: Seed) -> turmoil::Sim<'static> {
    let (min_ms, max_ms) = scenario.run.latency_ms;
    turmoil::Builder::new()
        .epoch(std::time::UNIX_EPOCH + Duration::from_millis(EPOCH_UNIX_MS))
        .rng_seed(root.derive("turmoil").0)
        .tick_duration(Duration::from_millis(scenario.run.tick_ms))
        .min_message_latency(Duration::from_millis(min_ms))
        .max_message_latency(Duration::from_millis(max_ms))
        .simulation_duration(Duration::from_millis(
            scenario
                .run
                .time_limit_ms
                .saturating_add(SETTLE_TIME_LIMIT_MS),
        ))
        .tcp_capacity(1024)
        .build()
}

/// The fault driver of one run, told which optional hosts the scenario leaves out.
fn new_driver(
    target: &Target,
    scenario: &Scenario,
    durables: &Durables,
    shared: &Shared,
    root: Seed,
) -> NetDriver {
    let mut driver = NetDriver::new(
        &scenario.faults,
        scenario.hosts.clients,
        scenario.run.latency_ms,
        durables.clone(),
        target.extensions.webhooks.clone(),
        shared.clone(),
        root.derive("faults"),
    );
    driver.set_absent(
        target
            .hosts
            .iter()
            .filter(|h| {
                h.presence
                    .as_ref()
                    .is_some_and(|present| !present(scenario))
            })
            .map(|h| h.name.clone())
            .collect(),
    );
    driver
}

/// After the clients' time: heals every fault, then (unless the run is already stuck)
/// runs the settler for what the clients could not know: ambiguous writes, the target's
/// quiescence wait, and a final read when the target gives no inventory.
fn settle(
    sim: &mut turmoil::Sim<'_>,
    driver: &mut NetDriver,
    stuck: &mut Option<String>,
    context: &HostContext,
    plan: &Arc<Plan>,
    target: &Target,
) {
    let HostContext {
        scenario,
        root,
        shared,
        durables,
        bugs,
        ..
    } = context;
    driver.heal(sim);
    {
        shared.lock().healed = true;
    }
    shared.record("driver", EventKind::Healed);
    let ambiguous: Vec<_> = shared
        .lock()
        .history
        .workload()
        .filter(|op| op.kind.is_write() && matches!(op.outcome, OpOutcome::Ambiguous { .. }))
        .cloned()
        .collect();
    let quiesce = target
        .quiesce
        .as_ref()
        .filter(|q| (q.when)(scenario))
        .map(|q| q.wait.clone());
    // A target that gives no inventory is judged on what its API serves at the end.
    let verify = target.inventory.is_none()
        && shared
            .lock()
            .history
            .operations()
            .iter()
            .any(|op| op.kind.is_write() && matches!(op.outcome, OpOutcome::Ok { .. }));
    if stuck.is_none() && (!ambiguous.is_empty() || quiesce.is_some() || verify) {
        let faults = Arc::new(scenario.faults.clone());
        sim.client(
            SETTLER,
            workload::run_settler(
                ambiguous,
                faults,
                plan.clone(),
                scenario.clone(),
                root.derive("settle"),
                shared.clone(),
                bugs.clone(),
                quiesce,
                durables.clone(),
                verify,
            ),
        );
        let limit = elapsed_ms(sim).saturating_add(SETTLE_TIME_LIMIT_MS);
        *stuck = drive(sim, driver, shared, limit);
    }
}

/// Reads what the run left (inventory, effects, webhook traffic, the shared state) and
/// judges it: the oracles (unless stuck), duplicates and the dangerous moments reached.
#[allow(clippy::too_many_arguments)]
fn judge(
    target: &Target,
    scenario: &Scenario,
    seed: u64,
    plan: &Plan,
    durables: Durables,
    shared: &Shared,
    stuck: Option<String>,
    sim_ms: u64,
    client_connections: u64,
) -> SeedRun {
    let inventory = target.inventory.as_ref().map(|read| read(&durables));
    let effects: Vec<Effect> = target
        .effects
        .iter()
        .flat_map(|read| read(&durables))
        .collect();
    let state = std::mem::take(&mut *shared.lock());
    let webhooks = target
        .extensions
        .webhooks
        .as_ref()
        .and_then(|parties| parties.view(&durables, scenario, &state.forged));
    let input = OracleInput {
        scenario,
        seed,
        history: &state.history,
        kinds: plan.table.kinds(),
        conventions: &plan.conventions,
        inventory: inventory.as_ref(),
        effects: &effects,
        ledgers_read: !target.effects.is_empty(),
        webhooks: webhooks.as_ref(),
        injections: &state.injections,
    };
    let violations = if stuck.is_none() {
        oracle::check_all(&input)
    } else {
        Vec::new()
    };
    let duplicates = Duplicates::count(&input);
    let reached = crate::reach::count_all(&crate::reach::RunFacts {
        history: &state.history,
        trace: &state.trace,
        conventions: &plan.conventions,
        injections: &state.injections,
        tolerance_s: scenario.webhooks.map(|w| w.tolerance_s),
        webhooks: webhooks.as_ref(),
        tick_ms: scenario.run.tick_ms,
    });
    SeedRun {
        seed,
        duplicates,
        trace: state.trace,
        history: state.history,
        violations,
        fired: state.fired,
        requests_seen: state.requests_seen,
        client_connections,
        sim_ms,
        endpoints: plan.table.endpoints(),
        inventory,
        effects,
        durables,
        stuck,
        webhooks,
        injections: state.injections,
        reached,
    }
}

fn elapsed_ms(sim: &turmoil::Sim<'_>) -> u64 {
    u64::try_from(sim.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Steps the simulation until every client finished, applying scheduled faults between
/// steps. Returns why it stopped early, if it did.
fn drive(
    sim: &mut turmoil::Sim<'_>,
    driver: &mut NetDriver,
    shared: &Shared,
    limit_ms: u64,
) -> Option<String> {
    loop {
        let now_ms = elapsed_ms(sim);
        shared.lock().driver_now_us = now_ms * 1_000;
        if now_ms > limit_ms {
            return Some(format!(
                "the run did not finish within {limit_ms} ms of simulated time: clients are stuck"
            ));
        }
        driver.advance(sim, now_ms);
        let finished = match sim.step() {
            Ok(finished) => finished,
            Err(error) => return Some(format!("simulation failed: {error}")),
        };
        let requests = std::mem::take(&mut shared.lock().crash_requests);
        for (host, restart_after_ms) in requests {
            driver.crash(sim, &host, elapsed_ms(sim), Some(restart_after_ms));
        }
        if finished {
            return None;
        }
    }
}

/// What every server host of one run shares.
pub(crate) struct HostContext {
    pub scenario: Arc<Scenario>,
    pub root: Seed,
    pub shared: Shared,
    pub durables: Durables,
    pub callers: Arc<[Caller]>,
    pub bugs: BugSet,
}

/// Adds server host `name`. On every start it records a restart, derives the host's clock,
/// seed and observer, lets `build` make its router (and spawn its background tasks), then
/// serves that router on [`HTTP_PORT`] behind the scenario's HTTP faults for the host.
pub(crate) fn add_server_host(
    sim: &mut turmoil::Sim<'_>,
    name: &str,
    context: &HostContext,
    build: Factory,
) {
    let boots = Arc::new(AtomicU64::new(0));
    let name: Arc<str> = Arc::from(name);
    let scenario = context.scenario.clone();
    let shared = context.shared.clone();
    let durables = context.durables.clone();
    let callers = context.callers.clone();
    let bugs = context.bugs.clone();
    let root = context.root;
    let host_name = name.to_string();
    sim.host(host_name.as_str(), move || {
        let boot = boots.fetch_add(1, Ordering::Relaxed);
        let name = name.clone();
        let scenario = scenario.clone();
        let shared = shared.clone();
        let durables = durables.clone();
        let callers = callers.clone();
        let bugs = bugs.clone();
        let build = build.clone();
        async move {
            if boot > 0 {
                shared.record(&name, EventKind::HostRestarted { boot });
            }
            let clock: Arc<SimClock> = Arc::new(SimClock::for_host(&name, &scenario.faults));
            let host_seed = root
                .derive(&format!("host-{name}"))
                .derive_index("boot", boot);
            let observer = Arc::new(HostObserver::new(
                &name,
                shared.clone(),
                &scenario.faults,
                host_seed.derive("checkpoints"),
            ));
            let router = build(&Boot {
                host: name.to_string(),
                boot,
                root,
                host_seed,
                clock: clock.clone(),
                observer,
                shared: shared.clone(),
                scenario: scenario.clone(),
                durables,
                callers,
                bugs,
            });
            let layer = FaultLayer::new(
                &name,
                router,
                &scenario.faults,
                host_seed.derive("http-faults"),
                clock,
                shared,
            );
            serve(HTTP_PORT, layer.handler()).await
        }
    });
}
