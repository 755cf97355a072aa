//! Runs one scenario with one seed: builds the simulated world, drives it through the
//! workload with faults, heals, resolves ambiguous operations, and judges the result.
//!
//! Phases of a run:
//! 1. **Workload**: clients issue operations while faults fire.
//! 2. **Heal**: every fault is lifted, crashed hosts restart.
//! 3. **Settle**: the settler re-issues each ambiguous write until it gets an answer.
//! 4. **Judge**: the oracles read the history, the store and the carrier's ledger.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shipsim_system::bugs::BugSet;
use shipsim_system::carrier::{
    self, CarrierConfig, CarrierDeps, CarrierLedger, LabelSale, TrackingConfig,
};
use shipsim_system::receiver::{self, ReceiverConfig, ReceiverDeps, ReceiverLedger};
use shipsim_system::seed::Seed;
use shipsim_system::service::{self, ServiceConfig, ServiceDeps, WebhookSettings, WebhookTarget};
use shipsim_system::store::{MemoryStore, Tables};
use shipsim_system::webhook::SenderConfig;

use crate::clock::{EPOCH_UNIX_MS, SimClock};
use crate::fault::layer::FaultLayer;
use crate::fault::network::NetDriver;
use crate::fault::webhook::WebhookFaults;
use crate::fault::{CrashTrigger, Direction, FaultKind};
use crate::history::{EventKind, History, OpOutcome, Trace};
use crate::hosts::{CARRIER, HTTP_PORT, RECEIVER, SERVICE, SETTLER};
use crate::net::{SimTransport, serve};
use crate::oracle::{self, Duplicates, OracleInput, Violation};
use crate::scenario::Scenario;
use crate::shared::{HostObserver, Shared};
use crate::workload::{self, ClientIdentity, Drain, UNSERVICEABLE_COUNTRY};

/// The service's API key at the carrier.
pub(crate) const CARRIER_API_KEY: &str = "ck_sim_platform";

/// Simulated time the settle phase may take before the run is declared stuck, ms.
const SETTLE_TIME_LIMIT_MS: u64 = 600_000;

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
    /// Host ticks the run took (each running host once per step), and how many of them
    /// only moved a quiet host's clock ([`Stepping::fast_forward`]).
    pub host_ticks: (u64, u64),
    /// The hash of every host runtime's scheduling state after every step, when
    /// [`Stepping::audit_runtime_state`] asked for it.
    pub runtime_audit_hash: Option<u64>,
    /// The service's final store (live view).
    pub tables: Tables,
    /// Every label sold.
    pub sales: Vec<LabelSale>,
    /// Why the run could not finish, if it could not (a stuck simulation is a failure).
    pub stuck: Option<String>,
    /// Webhook traffic, when the scenario has webhooks.
    pub webhooks: Option<crate::oracle::WebhookView>,
}

impl SeedRun {
    /// Whether the seed passed: no violation and not stuck.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.violations.is_empty() && self.stuck.is_none()
    }
}

/// How turmoil steps the hosts of a run. Fast-forward and reference stepping give the same
/// run, event for event: the choice only changes what a step costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stepping {
    /// A host with nothing to do before the end of a step (no task ready, no timer due)
    /// only has its clock moved (the vendored turmoil and tokio patch,
    /// `sim/vendor/turmoil/SHIPSIM_PATCH.md`). Off: every host is run through tokio
    /// every step, as upstream turmoil does, the reference the fast-forward is checked
    /// against.
    pub fast_forward: bool,
    /// Hash every host runtime's scheduling state after every step into
    /// [`SeedRun::runtime_audit_hash`] (slow; for tests of the fast-forward).
    pub audit_runtime_state: bool,
}

impl Stepping {
    /// What every run uses.
    pub const FAST_FORWARD: Stepping = Stepping {
        fast_forward: true,
        audit_runtime_state: false,
    };
    /// Upstream turmoil's stepping.
    pub const REFERENCE: Stepping = Stepping {
        fast_forward: false,
        audit_runtime_state: false,
    };

    /// The same stepping, auditing the runtimes' state.
    #[must_use]
    pub const fn audited(self) -> Stepping {
        Stepping {
            audit_runtime_state: true,
            ..self
        }
    }
}

/// Runs `scenario` with `seed` and planted `bugs`.
#[must_use]
pub fn run_seed(scenario: &Scenario, seed: u64, bugs: &BugSet) -> SeedRun {
    run_seed_stepping(scenario, seed, bugs, Stepping::FAST_FORWARD)
}

/// [`run_seed`], stepping the hosts as `stepping` says.
#[must_use]
pub fn run_seed_stepping(
    scenario: &Scenario,
    seed: u64,
    bugs: &BugSet,
    stepping: Stepping,
) -> SeedRun {
    let scenario = Arc::new(scenario.clone());
    let root = Seed(seed);
    let shared = Shared::new();
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
    let store = Arc::new(MemoryStore::new());
    let ledger = Arc::new(CarrierLedger::new());

    let (min_ms, max_ms) = scenario.run.latency_ms;
    let mut sim = turmoil::Builder::new()
        .epoch(std::time::UNIX_EPOCH + Duration::from_millis(EPOCH_UNIX_MS))
        .rng_seed(root.derive("turmoil").0)
        .tick_duration(Duration::from_millis(scenario.run.tick_ms))
        .min_message_latency(Duration::from_millis(min_ms))
        .max_message_latency(Duration::from_millis(max_ms))
        .simulation_duration(Duration::from_millis(
            scenario.run.time_limit_ms + SETTLE_TIME_LIMIT_MS,
        ))
        .tcp_capacity(1024)
        .fast_forward_quiet_hosts(stepping.fast_forward)
        .audit_runtime_state(stepping.audit_runtime_state)
        .build();

    let receiver_ledger = Arc::new(ReceiverLedger::new());
    add_service(&mut sim, &scenario, root, &shared, &store, bugs);
    add_carrier(&mut sim, &scenario, root, &shared, &ledger);
    add_receiver(&mut sim, &scenario, root, &shared, &receiver_ledger, bugs);

    let mut driver = NetDriver::new(
        &scenario.faults,
        scenario.hosts.clients,
        scenario.run.latency_ms,
        store.clone(),
        ledger.clone(),
        shared.clone(),
        root.derive("faults"),
    );
    for index in 0..scenario.hosts.clients {
        let identity = ClientIdentity::new(index, scenario.hosts.callers);
        let transport = Arc::new(SimTransport::new(SERVICE, HTTP_PORT));
        driver.register_transport(identity.host.clone(), transport.clone());
        let host = identity.host.clone();
        sim.client(
            host.as_str(),
            workload::run_client(
                identity,
                scenario.clone(),
                root,
                shared.clone(),
                transport,
                bugs.clone(),
            ),
        );
    }

    let mut stuck = drive(&mut sim, &mut driver, &shared, scenario.run.time_limit_ms);

    // Heal, then settle what the clients could not know.
    driver.heal(&mut sim);
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
    let drain = Drain {
        tracking: scenario.webhooks.is_some_and(|w| w.tracking),
        outbound: scenario.webhooks.is_some_and(|w| w.outbound),
    };
    if stuck.is_none() && (!ambiguous.is_empty() || drain.tracking || drain.outbound) {
        let faults = Arc::new(scenario.faults.clone());
        sim.client(
            SETTLER,
            workload::run_settler(
                ambiguous,
                faults,
                root.derive("settle"),
                shared.clone(),
                bugs.clone(),
                drain,
            ),
        );
        let limit = elapsed_ms(&sim) + SETTLE_TIME_LIMIT_MS;
        stuck = drive(&mut sim, &mut driver, &shared, limit);
    }
    let sim_ms = elapsed_ms(&sim);
    let host_ticks = sim.host_ticks();
    let runtime_audit_hash = sim.runtime_audit_hash();
    let client_connections = driver.client_connections();
    drop(sim);

    let tables = store.snapshot();
    let durable = store.durable_snapshot();
    let sales = ledger.sales();
    let state = std::mem::take(&mut *shared.lock());
    let webhooks = scenario
        .webhooks
        .map(|settings| crate::oracle::WebhookView {
            settings,
            tracking: ledger.tracking(),
            effects: receiver_ledger.effects(),
            receiver_absorbed: receiver_ledger.absorbed(),
            forged: state.forged.clone(),
        });
    let violations = if stuck.is_none() {
        oracle::check_all(&OracleInput {
            scenario: &scenario,
            seed,
            history: &state.history,
            tables: &tables,
            durable: &durable,
            sales: &sales,
            webhooks: webhooks.as_ref(),
        })
    } else {
        Vec::new()
    };
    SeedRun {
        seed,
        duplicates: Duplicates::count(&tables, &sales),
        trace: state.trace,
        history: state.history,
        violations,
        fired: state.fired,
        requests_seen: state.requests_seen,
        client_connections,
        sim_ms,
        host_ticks,
        runtime_audit_hash,
        tables,
        sales,
        stuck,
        webhooks,
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

/// Names and secrets of the simulated deployment (live mode's defaults too).
pub(crate) mod deployment {
    /// The operator's admin key (service and carrier admin endpoints).
    pub const ADMIN_KEY: &str = "ak_sim_operator";
    /// The secret the carrier signs tracking events with.
    pub const CARRIER_WEBHOOK_SECRET: &str = "whsec_sim_carrier";

    /// The secret merchant `caller` verifies the service's webhooks with.
    pub fn merchant_secret(caller: &str) -> String {
        format!("whsec_sim_{caller}")
    }
}

pub use deployment::ADMIN_KEY;

fn webhook_settings(scenario: &Scenario) -> WebhookSettings {
    let settings = scenario.webhooks;
    let outbound = settings.is_some_and(|w| w.outbound);
    WebhookSettings {
        carrier_secret: deployment::CARRIER_WEBHOOK_SECRET.to_string(),
        tolerance_s: settings.map_or(shipsim_system::webhook::TOLERANCE_S_DEFAULT, |w| {
            w.tolerance_s
        }),
        targets: if outbound {
            (0..scenario.hosts.callers)
                .map(|i| {
                    let caller = workload::caller_id(i);
                    let target = WebhookTarget {
                        url: format!("http://{RECEIVER}:{HTTP_PORT}/webhooks/{caller}"),
                        secret: deployment::merchant_secret(&caller),
                    };
                    (caller, target)
                })
                .collect()
        } else {
            BTreeMap::new()
        },
        sender: settings.map_or(SenderConfig::DEFAULT, |w| w.sender),
    }
}

/// What one start (or restart, after a crash) of a server host is given.
struct HostBoot {
    /// How many times the host started before.
    boot: u64,
    /// The host's clock (clock-skew faults included).
    clock: Arc<SimClock>,
    /// The host's seed for this boot.
    seed: Seed,
    /// Crash points and system events of the host.
    observer: Arc<HostObserver>,
    /// The run's shared state.
    shared: Shared,
    /// The scenario being run.
    scenario: Arc<Scenario>,
}

/// Adds server host `name`. On every start it records a restart, derives the host's clock,
/// seed and observer, lets `build` make its router (and spawn its background tasks), then
/// serves that router on [`HTTP_PORT`] behind the scenario's HTTP faults for the host.
fn add_server_host(
    sim: &mut turmoil::Sim<'_>,
    name: &'static str,
    scenario: &Arc<Scenario>,
    root: Seed,
    shared: &Shared,
    build: impl Fn(&HostBoot) -> axum::Router + 'static,
) {
    let boots = Arc::new(AtomicU64::new(0));
    let scenario = scenario.clone();
    let shared = shared.clone();
    let build = Arc::new(build);
    sim.host(name, move || {
        let boot = boots.fetch_add(1, Ordering::Relaxed);
        let scenario = scenario.clone();
        let shared = shared.clone();
        let build = build.clone();
        async move {
            if boot > 0 {
                shared.record(name, EventKind::HostRestarted { boot });
            }
            let clock: Arc<SimClock> = Arc::new(SimClock::for_host(name, &scenario.faults));
            let host_seed = root
                .derive(&format!("host-{name}"))
                .derive_index("boot", boot);
            let observer = Arc::new(HostObserver::new(
                name,
                shared.clone(),
                &scenario.faults,
                host_seed.derive("checkpoints"),
            ));
            let router = build(&HostBoot {
                boot,
                clock: clock.clone(),
                seed: host_seed,
                observer,
                shared: shared.clone(),
                scenario: scenario.clone(),
            });
            let layer = FaultLayer::new(
                name,
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

fn add_service(
    sim: &mut turmoil::Sim<'_>,
    scenario: &Arc<Scenario>,
    root: Seed,
    shared: &Shared,
    store: &Arc<MemoryStore>,
    bugs: &BugSet,
) {
    let store = store.clone();
    let bugs = bugs.clone();
    add_server_host(sim, SERVICE, scenario, root, shared, move |host| {
        let scenario = &host.scenario;
        let webhooks = webhook_settings(scenario);
        let config = ServiceConfig {
            api_keys: (0..scenario.hosts.callers)
                .map(|i| (workload::api_key(i), workload::caller_id(i)))
                .collect(),
            carrier_base_url: format!("http://{CARRIER}:{HTTP_PORT}"),
            carrier_api_key: CARRIER_API_KEY.to_string(),
            carrier_policy: scenario.service.carrier,
            rate_limit: scenario.service.rate_limit,
            lock_lease_ms: scenario.service.lock_lease_ms,
            idempotency_retention_ms: service::IDEMPOTENCY_RETENTION_MS_DEFAULT,
            store_latency_ms: scenario.service.store_latency_ms,
            bugs: bugs.clone(),
            admin_key: Some(deployment::ADMIN_KEY.to_string()),
            webhooks: webhooks.clone(),
        };
        let deps = ServiceDeps {
            clock: host.clock.clone(),
            store: store.clone(),
            carrier: Arc::new(SimTransport::new(CARRIER, HTTP_PORT)),
            observer: host.observer.clone(),
            seed: root.derive("service"),
            boot: host.boot,
        };
        if !webhooks.targets.is_empty() {
            let transport = Arc::new(WebhookFaults::new(
                Arc::new(SimTransport::new(RECEIVER, HTTP_PORT)),
                SERVICE,
                Direction::Outbound,
                &scenario.faults,
                host.seed.derive("webhook-faults"),
                host.shared.clone(),
            ));
            tokio::task::spawn_local(service::run_outbox_sender(
                webhooks,
                deps.clone(),
                transport,
            ));
        }
        service::router(config, deps)
    });
}

fn add_carrier(
    sim: &mut turmoil::Sim<'_>,
    scenario: &Arc<Scenario>,
    root: Seed,
    shared: &Shared,
    ledger: &Arc<CarrierLedger>,
) {
    let ledger = ledger.clone();
    add_server_host(sim, CARRIER, scenario, root, shared, move |host| {
        let scenario = &host.scenario;
        let tracking = scenario
            .webhooks
            .filter(|w| w.tracking)
            .map(|w| TrackingConfig {
                webhook_url: format!("http://{SERVICE}:{HTTP_PORT}/v1/webhooks/carrier"),
                secret: deployment::CARRIER_WEBHOOK_SECRET.to_string(),
                exception_percent: w.exception_percent,
                sender: w.sender,
            });
        let deps = CarrierDeps {
            clock: host.clock.clone(),
            ledger: ledger.clone(),
            observer: host.observer.clone(),
            seed: root.derive("carrier"),
            boot: host.boot,
        };
        if let Some(tracking) = &tracking {
            let transport = Arc::new(WebhookFaults::new(
                Arc::new(SimTransport::new(SERVICE, HTTP_PORT)),
                CARRIER,
                Direction::Inbound,
                &scenario.faults,
                host.seed.derive("webhook-faults"),
                host.shared.clone(),
            ));
            tokio::task::spawn_local(carrier::run_tracking_sender(
                tracking.clone(),
                deps.clone(),
                transport,
            ));
        }
        carrier::router(
            CarrierConfig {
                api_key: CARRIER_API_KEY.to_string(),
                unserviceable_countries: [UNSERVICEABLE_COUNTRY.to_string()].into_iter().collect(),
                tracking,
                admin_key: Some(deployment::ADMIN_KEY.to_string()),
            },
            deps,
        )
    });
}

fn add_receiver(
    sim: &mut turmoil::Sim<'_>,
    scenario: &Arc<Scenario>,
    root: Seed,
    shared: &Shared,
    ledger: &Arc<ReceiverLedger>,
    bugs: &BugSet,
) {
    let Some(webhooks) = scenario.webhooks.filter(|w| w.outbound) else {
        return;
    };
    let ledger = ledger.clone();
    let bugs = bugs.clone();
    add_server_host(sim, RECEIVER, scenario, root, shared, move |host| {
        let scenario = &host.scenario;
        receiver::router(
            ReceiverConfig {
                secrets: (0..scenario.hosts.callers)
                    .map(|i| {
                        let caller = workload::caller_id(i);
                        let secret = deployment::merchant_secret(&caller);
                        (caller, secret)
                    })
                    .collect(),
                tolerance_s: webhooks.tolerance_s,
                store_latency_ms: scenario.service.store_latency_ms,
                bugs: bugs.clone(),
            },
            ReceiverDeps {
                clock: host.clock.clone(),
                ledger: ledger.clone(),
                observer: host.observer.clone(),
                seed: root.derive("receiver"),
                boot: host.boot,
            },
        )
    });
}
