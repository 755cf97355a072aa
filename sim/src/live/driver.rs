//! `shipsim live`: a scenario's workload against a real URL, judged by the same oracles as
//! the simulation.
//!
//! A live run has the simulation's phases on real time:
//! 1. **Begin**: fault proxies found at the target or the carrier URL (or started here with
//!    `--proxy`) restart their windows; every merchant's API key is checked.
//! 2. **Workload**: one task per client, the simulation's own workload code
//!    (`crate::workload::run_operations`) over reqwest, recording every operation.
//! 3. **Heal and settle**: the proxies stop injecting, and every ambiguous write is re-issued
//!    with its original key until it gets an answer.
//! 4. **Judge**: the final state is read back and the oracles run on it. With the admin key
//!    of a shipsim service, the whole store (`GET /v1/admin/state`; every commit there is
//!    fsynced before it is acknowledged, so what it shows is what survives a crash). Against
//!    a service that is not ours, only the API: each order the clients learned of, every
//!    shipment those orders list, read as their merchant; oracles that need more are
//!    reported as skipped or partial.
//!
//! The workload's choices and the proxies' fault decisions come from the seed, but a real
//! network and real scheduling decide the interleaving: the same seed does not give the same
//! history twice, and the output says so.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shipsim_system::api::{HEADER_ADMIN_KEY, HEADER_API_KEY, Order, Shipment, ShipmentStatus};
use shipsim_system::bugs::BugSet;
use shipsim_system::carrier::LabelSale;
use shipsim_system::clock::WallClock;
use shipsim_system::seed::Seed;
use shipsim_system::store::{OrderRecord, ShipmentRecord, Tables, TablesDump};
use shipsim_system::transport::ReqwestTransport;
use tokio::time::Instant;

use super::proxy::{self, CONTROL_PREFIX, ProxiedHost, Proxy, ProxyInfo};
use super::{LiveError, base_url, error_chain};
use crate::history::{Event, EventKind, History, OpOutcome, Trace};
use crate::oracle::{Duplicates, OracleInput, OracleKind, Violation};
use crate::reference::{ReferenceApi, effects_of, inventory_of};
use crate::scenario::Scenario;
use crate::stats::{SeedStats, Stats};
use crate::target::client::ApiClient;
use crate::target::plan::{KindTable, Plan};
use crate::target::{Caller, Inventories};
use crate::workload::{self, ClientIdentity, Recorder, SETTLE_POLICY};

/// What to run and against what.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// The scenario: workload, client policy, HTTP faults.
    pub scenario: Scenario,
    /// The service's base URL (or a fault proxy in front of it).
    pub target: String,
    /// The carrier's base URL (or a proxy in front of it), to audit its ledger.
    pub carrier_url: Option<String>,
    /// Start a fault proxy in front of `target` in this process.
    pub proxy: bool,
    /// Seed of the workload (and of a proxy started here).
    pub seed: u64,
    /// The service's admin key; without it the state is read through the public API only.
    pub admin_key: Option<String>,
    /// The carrier's admin key (defaults to the service's).
    pub carrier_admin_key: Option<String>,
    /// Planted client bugs.
    pub bugs: BugSet,
    /// The target's API keys of merchant-0, merchant-1, ...; empty means the simulation's
    /// `sk_sim_merchant_{i}`, which `shipsim serve` accepts. A service that is not ours
    /// needs its own.
    pub api_keys: Vec<String>,
}

impl LiveOptions {
    /// The API key of merchant `index` on the target.
    #[must_use]
    pub fn api_key(&self, index: u32) -> String {
        self.api_keys
            .get(index as usize)
            .cloned()
            .unwrap_or_else(|| Caller::new(index).api_key)
    }

    /// Merchant `index` with its API key on the target.
    #[must_use]
    pub fn caller(&self, index: u32) -> Caller {
        Caller {
            api_key: self.api_key(index),
            ..Caller::new(index)
        }
    }

    /// The plan of the run: the reference API, the scenario's mix, the merchants with their
    /// keys on the target.
    fn plan(&self) -> Plan {
        let api = Arc::new(ReferenceApi);
        let table = KindTable::of(&ReferenceApi).expect("the reference API's kinds are valid");
        let mut plan = Plan::new(api, table, &self.scenario);
        plan.callers = (0..self.scenario.hosts.callers)
            .map(|i| self.caller(i))
            .collect();
        plan
    }
}

/// How the final state was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateSource {
    /// `GET /v1/admin/state`: the whole store.
    Admin,
    /// Public reads of what the clients learned of: a service that is not ours.
    ApiReads,
}

/// Everything a live run produced.
#[derive(Debug)]
pub struct LiveRun {
    /// The workload seed.
    pub seed: u64,
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
    /// Duplicates in the final state.
    pub duplicates: Duplicates,
    /// The target's endpoints.
    pub endpoints: Vec<crate::history::Endpoint>,
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

/// A fault proxy found at `url`, if one answers there.
async fn probe_proxy(client: &reqwest::Client, url: &str) -> Option<ProxyInfo> {
    let response = client
        .get(format!("{url}{CONTROL_PREFIX}proxy"))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json::<ProxyInfo>().await.ok()
}

async fn control(
    client: &reqwest::Client,
    url: &str,
    action: &str,
) -> Result<ProxyInfo, LiveError> {
    let response = client
        .post(format!("{url}{CONTROL_PREFIX}{action}"))
        .send()
        .await
        .map_err(|e| target_error(url, format!("proxy {action}: {}", error_chain(&e))))?;
    response
        .json::<ProxyInfo>()
        .await
        .map_err(|e| target_error(url, format!("proxy {action}: {e}")))
}

/// Checks that the target accepts every merchant's API key before the run, so that a
/// misconfigured target fails loudly instead of producing a run of 401s.
async fn preflight(
    client: &reqwest::Client,
    target: &str,
    options: &LiveOptions,
) -> Result<(), LiveError> {
    let callers = options.scenario.hosts.callers;
    if !options.api_keys.is_empty() && options.api_keys.len() < callers as usize {
        return Err(target_error(
            target,
            format!(
                "the scenario has {callers} merchants but only {} API keys were given",
                options.api_keys.len()
            ),
        ));
    }
    for index in 0..callers {
        let url = format!("{target}/v1/orders/ord_shipsim_preflight");
        let mut last = String::new();
        // A few tries: a proxy in front may inject a fault on any request, even this one.
        for _ in 0..10 {
            match client
                .get(&url)
                .header(HEADER_API_KEY, options.api_key(index))
                .send()
                .await
            {
                Ok(response) if response.status().as_u16() == 401 => {
                    return Err(target_error(
                        target,
                        format!(
                            "refuses the API key of {} ({}): start it with at least {callers} merchants (`shipsim serve --callers {callers}`), or give the target's own keys with --api-key",
                            Caller::new(index).id,
                            options.api_key(index)
                        ),
                    ));
                }
                Ok(response) if response.status().as_u16() == 404 => {
                    last.clear();
                    break;
                }
                Ok(response) => last = format!("answered {}", response.status()),
                Err(error) => last = error_chain(&error),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !last.is_empty() {
            return Err(target_error(target, format!("is not usable: {last}")));
        }
    }
    Ok(())
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

/// Where the clients send their requests and which proxies the run controls.
struct Begun {
    /// The URL the clients use: the target, or the in-process proxy in front of it.
    target: String,
    /// Fault proxies found at the client URL and the carrier URL.
    proxies: Vec<String>,
    /// The in-process proxy, serving until dropped.
    _in_process: Option<proxy::ProxyHandle>,
}

/// Phase 1: starts the in-process proxy if asked, finds the fault proxies, checks every
/// merchant's key, and restarts the proxies' windows and counts.
async fn begin(options: &LiveOptions, http: &reqwest::Client) -> Result<Begun, LiveError> {
    let service_url = base_url(&options.target);
    let (target, in_process) = if options.proxy {
        let proxy = Proxy::new(
            ProxiedHost::Service,
            &service_url,
            &options.scenario.faults,
            options.seed,
        )?;
        let (handle, address) = proxy::spawn(proxy, "127.0.0.1:0").await?;
        (format!("http://{address}"), Some(handle))
    } else {
        (service_url, None)
    };
    let carrier_url = options.carrier_url.as_deref().map(base_url);
    let mut proxies = Vec::new();
    for url in std::iter::once(&target).chain(carrier_url.as_ref()) {
        if probe_proxy(http, url).await.is_some() {
            proxies.push(url.clone());
        }
    }
    // The key check runs healed, so it neither meets a fault nor draws from the proxies'
    // decision streams; `begin` then starts the windows and counts from zero.
    for url in &proxies {
        control(http, url, "heal").await?;
    }
    preflight(http, &target, options).await?;
    for url in &proxies {
        control(http, url, "begin").await?;
    }
    Ok(Begun {
        target,
        proxies,
        _in_process: in_process,
    })
}

/// Phase 3: heals the proxies (returning their final reports) and re-issues every
/// ambiguous write until it is answered.
async fn heal_and_settle(
    options: &LiveOptions,
    plan: &Plan,
    http: &reqwest::Client,
    transport: &Arc<ReqwestTransport>,
    begun: &Begun,
    recorder: &LiveRecorder,
) -> Result<Vec<ProxyInfo>, LiveError> {
    let mut reports = Vec::new();
    for url in &begun.proxies {
        reports.push(control(http, url, "heal").await?);
    }
    recorder.record("driver", EventKind::Healed);
    let ambiguous: Vec<_> = recorder.with_history(|history| {
        history
            .workload()
            .filter(|op| op.kind.is_write() && matches!(op.outcome, OpOutcome::Ambiguous { .. }))
            .cloned()
            .collect()
    });
    let settle_seed = Seed(options.seed).derive("settle");
    let limit_ms = options.scenario.run.time_limit_ms;
    tokio::time::timeout(
        Duration::from_millis(limit_ms),
        workload::settle(ambiguous, plan, recorder.clone(), |caller| {
            api_client(
                plan,
                transport,
                &begun.target,
                caller,
                SETTLE_POLICY,
                settle_seed.derive_index("settler", u64::from(caller.index)),
                &options.bugs,
            )
        }),
    )
    .await
    .map_err(|_| LiveError::Stuck { limit_ms })?;
    Ok(reports)
}

/// Phase 4, first half: the final state (whole store with the admin key, public reads
/// without) and the carrier's ledger when it can be read.
async fn read_final_state(
    options: &LiveOptions,
    http: &reqwest::Client,
    target: &str,
    history: &History,
) -> Result<(Tables, StateSource, Option<Vec<LabelSale>>), LiveError> {
    let admin_key = options.admin_key.as_deref();
    let (tables, source) = match admin_key {
        Some(key) => (
            patiently(|| read_admin_state(http, target, key)).await?,
            StateSource::Admin,
        ),
        None => (
            read_through_api(http, target, history, options).await,
            StateSource::ApiReads,
        ),
    };
    let carrier_url = options.carrier_url.as_deref().map(base_url);
    let carrier_key = options.carrier_admin_key.as_deref().or(admin_key);
    let sales = match (&carrier_url, carrier_key) {
        (Some(url), Some(key)) => Some(patiently(|| read_sales(http, url, key)).await?),
        _ => None,
    };
    Ok((tables, source, sales))
}

/// Runs a live scenario. See the module docs.
///
/// # Errors
/// When a target cannot be used (refused keys, unreachable, admin endpoint broken) or the
/// run does not finish within the scenario's time limit.
pub async fn run(options: LiveOptions) -> Result<LiveRun, LiveError> {
    let recorder = LiveRecorder::new();
    let plan = Arc::new(options.plan());
    let transport = Arc::new(ReqwestTransport::new()?);
    let http = transport.client().clone();
    let begun = begin(&options, &http).await?;

    let started = Instant::now();
    let limit_ms = options.scenario.run.time_limit_ms;
    tokio::time::timeout(
        Duration::from_millis(limit_ms),
        run_workload(&options, &plan, &transport, &begun.target, &recorder),
    )
    .await
    .map_err(|_| LiveError::Stuck { limit_ms })?;
    let workload_ms = millis(started.elapsed());

    let reports = heal_and_settle(&options, &plan, &http, &transport, &begun, &recorder).await?;
    let (history, trace) =
        std::mem::take(&mut *recorder.state.lock().expect("live history lock poisoned"));
    let (tables, source, sales) =
        read_final_state(&options, &http, &begun.target, &history).await?;
    let mut run = judge(&options, &plan, history, trace, tables, source, sales);
    run.proxies = reports;
    run.workload_ms = workload_ms;
    run.total_ms = millis(recorder.origin.elapsed());
    Ok(run)
}

/// Reads of the final state are retried a few times: a server that was just restarted (or a
/// proxy) may refuse a connection for a moment.
const STATE_READ_ATTEMPTS: u32 = 10;

async fn patiently<T, F: Future<Output = Result<T, LiveError>>>(
    read: impl Fn() -> F,
) -> Result<T, LiveError> {
    let mut attempt = 1;
    loop {
        match read().await {
            Ok(value) => return Ok(value),
            Err(error) if attempt >= STATE_READ_ATTEMPTS => return Err(error),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// `GET {url}` with the admin key, decoded as `T` (`what` names it in errors).
async fn get_admin<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    what: &str,
) -> Result<T, LiveError> {
    let response = client
        .get(url)
        .header(HEADER_ADMIN_KEY, key)
        .send()
        .await
        .map_err(|e| target_error(url, error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(target_error(
            url,
            format!("answered {} (is the admin key right?)", response.status()),
        ));
    }
    response
        .json()
        .await
        .map_err(|e| target_error(url, format!("undecodable {what}: {e}")))
}

async fn read_admin_state(
    client: &reqwest::Client,
    target: &str,
    key: &str,
) -> Result<Tables, LiveError> {
    let url = format!("{target}/v1/admin/state");
    let dump: TablesDump = get_admin(client, &url, key, "state").await?;
    Ok(Tables::from(dump))
}

async fn read_sales(
    client: &reqwest::Client,
    carrier: &str,
    key: &str,
) -> Result<Vec<LabelSale>, LiveError> {
    get_admin(client, &format!("{carrier}/v1/admin/labels"), key, "ledger").await
}

/// Reads `GET {path}` with `api_key`; `None` unless it answers 200 with `T`.
async fn get_as<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    target: &str,
    path: &str,
    api_key: &str,
) -> Option<T> {
    let response = client
        .get(format!("{target}{path}"))
        .header(HEADER_API_KEY, api_key)
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// The state as the public API shows it to each merchant: every order an operation got
/// back, every shipment such an order lists. Keys come from the operations that received
/// each resource; a shipment no operation ever received gets the key `?{shipment id}`.
async fn read_through_api(
    client: &reqwest::Client,
    target: &str,
    history: &History,
    options: &LiveOptions,
) -> Tables {
    let mut order_keys: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut shipment_keys: BTreeMap<String, (String, String)> = BTreeMap::new();
    for op in history.operations() {
        let OpOutcome::Ok { resource, .. } = &op.outcome else {
            continue;
        };
        if !op.kind.is_write() {
            continue;
        }
        let key = op.key.clone().unwrap_or_default();
        match op.kind.resource() {
            "order" => {
                order_keys.insert(resource.id.clone(), (op.caller.clone(), key));
            }
            "shipment" => {
                shipment_keys.insert(resource.id.clone(), (op.caller.clone(), key));
            }
            _ => {}
        }
    }
    let mut tables = Tables::default();
    for (order_id, (caller, key)) in &order_keys {
        let index = caller
            .strip_prefix("merchant-")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let api_key = options.api_key(index);
        let Some(order) =
            get_as::<Order>(client, target, &format!("/v1/orders/{order_id}"), &api_key).await
        else {
            continue;
        };
        for shipment_id in &order.shipment_ids {
            let Some(shipment) = get_as::<Shipment>(
                client,
                target,
                &format!("/v1/shipments/{shipment_id}"),
                &api_key,
            )
            .await
            else {
                continue;
            };
            let key = shipment_keys
                .get(shipment_id)
                .map_or_else(|| format!("?{shipment_id}"), |(_, key)| key.clone());
            tables.shipments.insert(
                shipment_id.clone(),
                ShipmentRecord {
                    shipment,
                    caller: caller.clone(),
                    idempotency_key: key,
                    // The public API does not show it; no oracle reads it.
                    webhook_sequence: 0,
                },
            );
        }
        tables.orders.insert(
            order_id.clone(),
            OrderRecord {
                order,
                caller: caller.clone(),
                idempotency_key: key.clone(),
            },
        );
    }
    tables
}

/// Shipments the service holds that no operation ever received, other than those whose
/// label the carrier refused (their requests were answered with a stored 422). After the
/// settle phase every correct creation was answered to someone, so each one is a duplicate
/// or a phantom. Only needed when the state comes from API reads, where shipment keys are
/// unknown; with the whole store, `exactly_once` sees the keys.
fn orphan_violations(input: &OracleInput<'_>, tables: &Tables) -> Vec<Violation> {
    tables
        .shipments
        .values()
        .filter(|r| r.idempotency_key.starts_with('?'))
        .filter(|r| r.shipment.status != ShipmentStatus::LabelRejected)
        .map(|record| {
            Violation::new(
                OracleKind::ExactlyOnce,
                input,
                format!(
                    "shipment {} of order {} was never returned to any operation",
                    record.shipment.id, record.shipment.order_id
                ),
            )
            .evidence(format!(
                "status {:?}, label {}: a second shipment created behind a lost answer",
                record.shipment.status,
                record.shipment.label_id.as_deref().unwrap_or("-")
            ))
        })
        .collect()
}

/// Oracles to run, each with its caveat if it sees less than in the simulation.
pub type OraclePlan = Vec<(OracleKind, Option<String>)>;

/// Which oracles can judge a live run, and with what caveat; and which cannot, and why.
fn plan(
    scenario: &Scenario,
    source: StateSource,
    sales_known: bool,
) -> (OraclePlan, Vec<(OracleKind, String)>) {
    let mut run = Vec::new();
    let mut skipped = Vec::new();
    for oracle in &scenario.oracles {
        let caveat = match (oracle, source) {
            (OracleKind::LatencyBudget, _) => {
                skipped.push((
                    *oracle,
                    "budgets are written for simulated time; live latencies are printed, not judged".to_string(),
                ));
                continue;
            }
            (OracleKind::WebhookOnce, _) => {
                skipped.push((
                    *oracle,
                    "live mode runs no merchant webhook receiver to audit; webhook delivery is judged in the simulation".to_string(),
                ));
                continue;
            }
            (OracleKind::StateMachine, StateSource::ApiReads) => Some(
                "the final state is checked over the resources clients know of".to_string(),
            ),
            (OracleKind::ExactlyOnce, StateSource::ApiReads) => Some(
                "keys of shipments no client received are unknown: such shipments are reported as orphans".to_string(),
            ),
            (OracleKind::AmbiguityResolved, StateSource::ApiReads) => {
                Some("idempotency records are not visible: only pending shipments are checked".to_string())
            }
            (OracleKind::AcknowledgedWrites, StateSource::ApiReads) => {
                Some("durable means what the API serves after the run".to_string())
            }
            _ => None,
        };
        let caveat = match (oracle, sales_known, caveat) {
            (OracleKind::ExactlyOnce, false, Some(c)) => {
                Some(format!("{c}; labels not audited (no carrier ledger)"))
            }
            (OracleKind::ExactlyOnce, false, None) => Some(
                "labels not audited: give --carrier-url and the carrier's admin key".to_string(),
            ),
            (_, _, caveat) => caveat,
        };
        run.push((*oracle, caveat));
    }
    (run, skipped)
}

fn judge(
    options: &LiveOptions,
    plan: &Plan,
    history: History,
    trace: Trace,
    tables: Tables,
    state_source: StateSource,
    sales: Option<Vec<LabelSale>>,
) -> LiveRun {
    let scenario = &options.scenario;
    let (oracles_run, oracles_skipped) = self::plan(scenario, state_source, sales.is_some());
    // What the service serves after the run is what it keeps: both views are the same.
    let inventory = inventory_of(&tables);
    let inventories = Inventories {
        live: inventory.clone(),
        durable: inventory,
    };
    // Without the ledger the effect checks have nothing to judge; the key checks still run.
    let effects = sales.as_deref().map(effects_of).unwrap_or_default();
    let input = OracleInput {
        scenario,
        seed: options.seed,
        history: &history,
        kinds: plan.table.kinds(),
        conventions: &plan.conventions,
        inventory: Some(&inventories),
        effects: &effects,
        webhooks: None,
        injections: &[],
    };
    let mut violations: Vec<Violation> = oracles_run
        .iter()
        .flat_map(|(oracle, _)| oracle.check(&input))
        .collect();
    if state_source == StateSource::ApiReads
        && oracles_run
            .iter()
            .any(|(o, _)| *o == OracleKind::ExactlyOnce)
    {
        violations.extend(orphan_violations(&input, &tables));
    }
    let duplicates = Duplicates::count(&input);
    let faults_not_applied = scenario
        .faults
        .iter()
        .filter(|f| !proxy::applies_live(f))
        .map(|f| format!("#{} {} (line {})", f.index, f.describe(), f.line))
        .collect();
    LiveRun {
        seed: options.seed,
        history,
        trace,
        violations,
        oracles_run,
        oracles_skipped,
        proxies: Vec::new(),
        faults_not_applied,
        state_source,
        tables,
        sales,
        duplicates,
        endpoints: plan.table.endpoints(),
        workload_ms: 0,
        total_ms: 0,
    }
}

/// A human summary of a live run, for the terminal.
#[must_use]
pub fn render(run: &LiveRun, scenario: &Scenario, target: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "LIVE run of {} against {target}: real network, real processes, no determinism guarantee",
        scenario.name
    );
    let _ = writeln!(
        out,
        "  workload seed {} (operations and fault decisions come from it; timing and interleaving do not)",
        run.seed
    );
    let mut stats = Stats::default();
    stats.add(&SeedStats::of(&run.history, &run.trace, &run.endpoints));
    let ops = &stats.operations;
    let requests = &stats.requests;
    let rate = requests.total as f64 / (run.workload_ms.max(1) as f64 / 1_000.0);
    let _ = writeln!(
        out,
        "  {} operations ({} ok, {} failed, {} ambiguous, {} resolved after heal) in {} ms; {} requests ({rate:.0}/s): {} 2xx, {} 4xx, {} 429, {} 5xx, {} timeouts, {} transport errors; {} retries, {} replays",
        ops.total,
        ops.ok,
        ops.failed,
        ops.ambiguous,
        ops.resolved_after_heal,
        run.workload_ms,
        requests.total,
        requests.s2xx,
        requests.s4xx,
        requests.s429,
        requests.s5xx,
        requests.timeouts,
        requests.transport_errors,
        stats.retries,
        stats.replays
    );
    for (endpoint, histogram) in stats.e2e.all() {
        if histogram.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "  {:<32} p50 {:>5} ms  p95 {:>5} ms  max {:>5} ms",
            endpoint.route(),
            histogram.value_at_quantile(0.5),
            histogram.value_at_quantile(0.95),
            histogram.max()
        );
    }
    for proxy in &run.proxies {
        let _ = writeln!(
            out,
            "  proxy in front of {} ({}):",
            proxy.host.name(),
            proxy.upstream
        );
        for rule in &proxy.rules {
            let _ = writeln!(
                out,
                "    fault #{} {} during {}: fired {}",
                rule.index,
                rule.describe,
                rule.window,
                proxy.fired.get(&rule.index).copied().unwrap_or(0)
            );
        }
    }
    if run.proxies.is_empty() && scenario.faults.iter().any(|f| f.kind.http_rule().is_some()) {
        let _ = writeln!(
            out,
            "  no fault proxy found: the scenario's HTTP faults were not applied (use --proxy or `shipsim proxy`)"
        );
    }
    for fault in &run.faults_not_applied {
        let _ = writeln!(out, "  not applied in live mode: fault {fault}");
    }
    let source = match run.state_source {
        StateSource::Admin => "the service's whole store (admin endpoint)",
        StateSource::ApiReads => "public API reads (no admin key: a service that is not ours)",
    };
    let _ = writeln!(
        out,
        "  final state from {source}: {} orders, {} shipments; carrier ledger {}",
        run.tables.orders.len(),
        run.tables.shipments.len(),
        run.sales
            .as_ref()
            .map_or_else(|| "not read".to_string(), |s| format!("{} labels", s.len()))
    );
    let _ = writeln!(
        out,
        "  duplicate shipments {}, duplicate labels {}",
        run.duplicates.shipments, run.duplicates.labels
    );
    for (oracle, caveat) in &run.oracles_run {
        let count = run
            .violations
            .iter()
            .filter(|v| v.oracle == *oracle)
            .count();
        let verdict = if count == 0 {
            "held".to_string()
        } else {
            format!("{count} violation(s)")
        };
        match caveat {
            Some(caveat) => {
                let _ = writeln!(
                    out,
                    "  oracle {:<20} {verdict} (partial: {caveat})",
                    oracle.name()
                );
            }
            None => {
                let _ = writeln!(out, "  oracle {:<20} {verdict}", oracle.name());
            }
        }
    }
    for (oracle, reason) in &run.oracles_skipped {
        let _ = writeln!(out, "  oracle {:<20} skipped: {reason}", oracle.name());
    }
    for violation in &run.violations {
        let _ = writeln!(out, "VIOLATION {violation}");
        for line in &violation.evidence {
            let _ = writeln!(out, "    {line}");
        }
        if !violation.operations.is_empty() {
            let ops: BTreeSet<_> = violation.operations.iter().collect();
            let _ = writeln!(out, "    operations: {ops:?}");
        }
    }
    let _ = writeln!(
        out,
        "{} (seed {}, {} ms)",
        if run.passed() { "PASSED" } else { "FAILED" },
        run.seed,
        run.total_ms
    );
    out
}
