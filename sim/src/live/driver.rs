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

use super::proxy::{self, ArmRequest, CONTROL_PREFIX, ProxiedHost, Proxy, ProxyInfo};
use super::{LiveError, base_url, error_chain};
use crate::described::{DescribedApi, DownstreamRef};
use crate::oracle::{Duplicates, OracleInput, OracleKind, Violation};
use crate::reference::{ReferenceApi, effects_of, inventory_of};
use crate::run::history::{Event, EventKind, History, OpOutcome, Trace};
use crate::run::workload::{self, ClientIdentity, Recorder, SETTLE_POLICY};
use crate::scenario::Scenario;
use crate::target::client::ApiClient;
use crate::target::plan::{KindTable, Plan};
use crate::target::{Api, Caller, Effect, Inventories, ReadCall};

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
    /// The target's description (`--api FILE`): its API is driven, its resources are read
    /// back after the run, its downstreams' ledgers audited. `None`: the reference service.
    pub described: Option<DescribedApi>,
    /// Where the description's downstreams are served, by name (`--downstream NAME=URL`),
    /// over the description's own `url`s.
    pub downstream_urls: Vec<(String, String)>,
    /// This run's namespace of idempotency keys (`ship-{run_id}-0-7`), so that a second run
    /// against the same service never collides with the keys of the first
    /// ([`LiveOptions::fresh_run_id`]).
    pub run_id: String,
    /// How long the target and the downstreams given by URL may take to start listening
    /// before the preflight judges them (`--wait`): a service started in the same breath as
    /// the run is not yet listening. Zero: judged at once.
    pub start_wait: Duration,
}

/// The target's API with every kind's idempotency keys in the run's namespace: services
/// keep keys for a day or more, and the workload's keys are sequence numbers, so two runs
/// against one service would otherwise send the same key with other requests.
struct Namespaced {
    inner: Arc<dyn Api>,
    run: String,
}

impl Api for Namespaced {
    fn kinds(&self) -> Vec<crate::target::Kind> {
        self.inner
            .kinds()
            .into_iter()
            .map(|kind| {
                let prefix = format!("{}-{}", kind.key_prefix_or_name(), self.run);
                kind.key_prefix(prefix)
            })
            .collect()
    }

    fn body(&self, kind: &crate::target::Kind, draw: &mut crate::target::Draw<'_>) -> String {
        self.inner.body(kind, draw)
    }

    fn vary(&self, kind: &crate::target::Kind, body: &str) -> String {
        self.inner.vary(kind, body)
    }

    fn create(
        &self,
        kind: &crate::target::Kind,
        call: &crate::target::CreateCall<'_>,
    ) -> Result<shipsim_system::transport::HttpRequest, crate::target::ApiError> {
        self.inner.create(kind, call)
    }

    fn read(
        &self,
        kind: &crate::target::Kind,
        call: &ReadCall<'_>,
    ) -> Result<shipsim_system::transport::HttpRequest, crate::target::ApiError> {
        self.inner.read(kind, call)
    }

    fn parse(
        &self,
        kind: &crate::target::Kind,
        response: &shipsim_system::transport::HttpResponse,
    ) -> Result<crate::target::Seen, crate::target::ApiError> {
        self.inner.parse(kind, response)
    }

    fn conventions(&self) -> crate::target::Conventions {
        self.inner.conventions()
    }
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

    /// The plan of the run: the target's API (the reference's, or the described one), the
    /// scenario's mix, the merchants with their credentials on the target.
    ///
    /// # Errors
    /// When the description's secrets do not cover the scenario's merchants.
    fn plan(&self) -> Result<Plan, LiveError> {
        let callers = self.scenario.hosts.callers;
        let (api, callers): (Arc<dyn Api>, Vec<Caller>) = match &self.described {
            None => (
                Arc::new(ReferenceApi),
                (0..callers).map(|i| self.caller(i)).collect(),
            ),
            Some(described) => {
                let description = described.description();
                let callers = (0..callers)
                    .map(|i| description.caller(i))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|problem| LiveError::Unready {
                        problems: vec![format!("{}: {problem}", description.file)],
                    })?;
                (Arc::new(described.clone()), callers)
            }
        };
        let api: Arc<dyn Api> = Arc::new(Namespaced {
            inner: api,
            run: self.run_id.clone(),
        });
        let table = KindTable::of(&*api).map_err(|reason| LiveError::Target {
            url: self.target.clone(),
            detail: reason,
        })?;
        let mut plan = Plan::new(api, table, &self.scenario);
        plan.callers = callers.into();
        Ok(plan)
    }

    /// A run id no other run is likely to have: six base-36 characters from the process's
    /// OS-seeded hasher keys, the process id and the wall clock. Live mode promises no
    /// determinism; a key namespace must differ between runs, whatever their seeds.
    #[must_use]
    pub fn fresh_run_id() -> String {
        use shipsim_system::clock::Clock as _;
        use std::hash::{BuildHasher as _, Hasher as _};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(WallClock.now_ms());
        hasher.write_u32(std::process::id());
        let mut value = hasher.finish();
        let mut id = String::with_capacity(6);
        for _ in 0..6 {
            let digit = u32::try_from(value % 36).expect("below 36");
            id.push(char::from_digit(digit, 36).expect("a base-36 digit"));
            value /= 36;
        }
        id
    }

    /// The described target's downstreams with the URL each is served at, if known.
    fn downstreams(&self) -> Vec<(DownstreamRef, Option<String>)> {
        let Some(described) = &self.described else {
            return Vec::new();
        };
        described
            .description()
            .downstreams
            .iter()
            .map(|downstream| {
                let url = self
                    .downstream_urls
                    .iter()
                    .find(|(name, _)| *name == downstream.name)
                    .map(|(_, url)| base_url(url))
                    .or_else(|| downstream.url.clone());
                (downstream.clone(), url)
            })
            .collect()
    }
}

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

/// How long a preflight probe waits for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The default of [`LiveOptions::start_wait`].
pub const START_WAIT_DEFAULT: Duration = Duration::from_secs(10);

/// Waits, up to `wait` in all, until every one of `urls` accepts a TCP connection. A URL
/// still refusing at the end is left for the preflight to name; this only spares a run
/// started in the same breath as its service from failing on a server still starting.
async fn wait_until_listening(urls: &[String], wait: Duration) {
    const RETRY: Duration = Duration::from_millis(100);
    let deadline = Instant::now() + wait;
    for url in urls {
        let Some(address) = socket_address(url) else {
            continue;
        };
        let mut announced = false;
        loop {
            let attempt =
                tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(&address));
            if matches!(attempt.await, Ok(Ok(_))) || Instant::now() + RETRY > deadline {
                break;
            }
            if !announced {
                eprintln!(
                    "waiting up to {} s for {url} to listen",
                    deadline
                        .saturating_duration_since(Instant::now())
                        .as_secs_f64()
                        .ceil()
                );
                announced = true;
            }
            tokio::time::sleep(RETRY).await;
        }
    }
}

/// `host:port` of an `http://` or `https://` URL (the scheme's port when none is written).
fn socket_address(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    Some(if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// The readiness route `shipsim serve` answers (200 when its carrier answers, 503 naming it
/// when not); a reference-shaped target without it is probed for reachability only.
pub const REFERENCE_READY_PATH: &str = "/__shipsim/ready";

/// One probe: `GET url` with `headers`, answered within [`PROBE_TIMEOUT`]; the status and
/// the start of the body, or why nothing answered.
async fn probe(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, String), String> {
    let mut request = client.get(url).timeout(PROBE_TIMEOUT);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.map_err(|e| error_chain(&e))?;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    Ok((status, excerpt(&body)))
}

/// The start of a body, on one line, for a message.
fn excerpt(body: &str) -> String {
    const EXCERPT_CHARS_MAX: usize = 200;
    let flat: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(EXCERPT_CHARS_MAX)
        .collect();
    if body.chars().count() > EXCERPT_CHARS_MAX {
        format!("{flat}...")
    } else {
        flat
    }
}

/// The target answers at all, and its readiness route says ready.
async fn preflight_target(
    client: &reqwest::Client,
    options: &LiveOptions,
    problems: &mut Vec<String>,
) {
    // The service itself, not the in-process proxy in front of it: a proxy would answer 502
    // for an unreachable upstream and hide what is wrong.
    let service = base_url(&options.target);
    let ready = match &options.described {
        Some(described) => described
            .description()
            .ready
            .as_ref()
            .map(|route| route.path.clone()),
        None => Some(REFERENCE_READY_PATH.to_string()),
    };
    let path = ready.clone().unwrap_or_else(|| "/".to_string());
    match probe(client, &format!("{service}{path}"), &[]).await {
        Err(error) => problems.push(format!("the target {service} is unreachable: {error}")),
        Ok((status, _)) if ready.is_none() || (200..300).contains(&status) => {}
        // A reference-shaped service without shipsim's readiness route is not ours: it was
        // reachable, which is all that can be checked.
        Ok((404, _)) if options.described.is_none() => {}
        Ok((status, body)) => problems.push(format!(
            "the target {service} is not ready: GET {path} answered {status}: {body}"
        )),
    }
}

/// Every downstream whose ledger the oracles will read answers with it.
///
/// Returns, per downstream, the sequence number of its last effect so far: the run judges
/// only the effects made after it (a downstream that served an earlier run still holds
/// that run's effects).
async fn preflight_ledgers(
    client: &reqwest::Client,
    options: &LiveOptions,
    problems: &mut Vec<String>,
) -> BTreeMap<String, u64> {
    let mut marks = BTreeMap::new();
    for (downstream, url) in options.downstreams() {
        let Some(url) = url else { continue };
        match read_ledger(client, &downstream, &url, 0).await {
            Ok(effects) => {
                marks.insert(downstream.name.clone(), effects.seq_last);
            }
            Err(problem) => problems.push(problem),
        }
    }
    let carrier_url = options.carrier_url.as_deref().map(base_url);
    let carrier_key = options
        .carrier_admin_key
        .as_deref()
        .or(options.admin_key.as_deref());
    if let (Some(url), Some(key)) = (carrier_url, carrier_key)
        && let Err(error) = read_sales(client, &url, key).await
    {
        problems.push(format!("the carrier's ledger cannot be read: {error}"));
    }
    marks
}

/// Every merchant's credentials are accepted: a read of an id that does not exist must not
/// be refused as unauthenticated.
async fn preflight_keys(
    client: &reqwest::Client,
    target: &str,
    options: &LiveOptions,
    plan: &Plan,
    problems: &mut Vec<String>,
) {
    let callers = options.scenario.hosts.callers;
    if options.described.is_none()
        && !options.api_keys.is_empty()
        && options.api_keys.len() < callers as usize
    {
        problems.push(format!(
            "the scenario has {callers} merchants but only {} API keys were given",
            options.api_keys.len()
        ));
        return;
    }
    let Some(kind) = plan
        .table
        .kinds()
        .iter()
        .find(|k| k.read_route_template().is_some())
    else {
        return;
    };
    for caller in plan.callers.iter() {
        let Ok(request) = plan.api.read(
            kind,
            &ReadCall {
                caller,
                id: "shipsim-preflight-0",
            },
        ) else {
            return;
        };
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str);
        let url = format!("{target}{path}");
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let mut last = Err(String::new());
        // A few tries: a proxy in front may inject a fault on any request, even this one.
        for _ in 0..10 {
            last = probe(client, &url, &headers).await;
            if matches!(&last, Ok((status, _)) if *status < 500) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match last {
            Ok((401 | 403, body)) => {
                let whence = match &options.described {
                    Some(d) => d.description().auth.as_ref().map_or_else(
                        || "the description has no [auth]".to_string(),
                        |auth| match &auth.secrets {
                            crate::described::Secrets::Read { source, .. } => {
                                format!("its secret from {source}")
                            }
                            _ => format!("header {}", auth.header),
                        },
                    ),
                    None => format!(
                        "key {}: start the service with at least {callers} merchants (`shipsim serve --callers {callers}`), or give the target's own keys with --api-key",
                        caller.api_key
                    ),
                };
                problems.push(format!(
                    "the target refuses the credentials of {} ({whence}): {body}",
                    caller.id
                ));
            }
            Ok(_) => {}
            Err(error) => {
                problems.push(format!("the target {target} is not usable: {error}"));
                return;
            }
        }
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

/// Where the clients send their requests and which proxies the run controls.
struct Begun {
    /// The URL the clients use: the target, or the in-process proxy in front of it.
    target: String,
    /// Fault proxies found at the client URL and the downstream URLs.
    proxies: Vec<String>,
    /// The in-process proxy, serving until dropped.
    _in_process: Option<proxy::ProxyHandle>,
    /// Per downstream, its last effect before the run: only later ones are judged.
    ledger_marks: BTreeMap<String, u64>,
}

/// Phase 1: starts the in-process proxy if asked, finds the fault proxies, checks what the
/// run depends on (the preflight), arms the proxies that take the run's scenario, and
/// restarts every proxy's windows and counts.
async fn begin(
    options: &LiveOptions,
    http: &reqwest::Client,
    plan: &Plan,
) -> Result<Begun, LiveError> {
    let service_url = base_url(&options.target);
    let mut awaited = vec![service_url.clone()];
    awaited.extend(options.carrier_url.as_deref().map(base_url));
    awaited.extend(options.downstreams().into_iter().filter_map(|(_, url)| url));
    wait_until_listening(&awaited, options.start_wait).await;
    let (target, in_process) = if options.proxy {
        let proxy = Proxy::new(
            ProxiedHost::service(),
            &service_url,
            &options.scenario.faults,
            options.seed,
        )?;
        let (handle, address) = proxy::spawn(proxy, "127.0.0.1:0").await?;
        (format!("http://{address}"), Some(handle))
    } else {
        (service_url.clone(), None)
    };
    let carrier_url = options.carrier_url.as_deref().map(base_url);
    let downstream_urls: Vec<String> = options
        .downstreams()
        .into_iter()
        .filter_map(|(_, url)| url)
        .collect();
    let mut candidates: Vec<&String> = vec![&target];
    if service_url != target {
        candidates.push(&service_url);
    }
    candidates.extend(carrier_url.as_ref());
    candidates.extend(&downstream_urls);
    let mut proxies = Vec::new();
    let mut armable = Vec::new();
    for url in candidates {
        if let Some(info) = probe_proxy(http, url).await {
            if info.armable {
                armable.push(url.clone());
            }
            proxies.push(url.clone());
        }
    }
    // The checks run healed, so they neither meet a fault nor draw from the proxies'
    // decision streams; `begin` then starts the windows and counts from zero.
    let mut problems = Vec::new();
    for url in &proxies {
        if let Err(error) = control(http, url, "heal").await {
            problems.push(format!("the fault proxy at {url} does not answer: {error}"));
        }
    }
    preflight_target(http, options, &mut problems).await;
    if !problems.is_empty() {
        // Nothing else can be checked through a target that does not answer.
        let _ = preflight_ledgers(http, options, &mut problems).await;
        return Err(LiveError::Unready { problems });
    }
    let ledger_marks = preflight_ledgers(http, options, &mut problems).await;
    preflight_keys(http, &target, options, plan, &mut problems).await;
    if !problems.is_empty() {
        return Err(LiveError::Unready { problems });
    }
    let arm = ArmRequest {
        scenario: options.scenario.to_toml(),
        topology: topology(options),
        seed: options.seed,
    };
    for url in &armable {
        arm_proxy(http, url, &arm).await?;
    }
    for url in &proxies {
        control(http, url, "begin").await?;
    }
    Ok(Begun {
        target,
        proxies,
        _in_process: in_process,
        ledger_marks,
    })
}

/// What the run's scenario may name: the described target's, or the reference's.
fn topology(options: &LiveOptions) -> crate::scenario::Topology {
    match &options.described {
        Some(described) => described.description().topology(),
        None => crate::scenario::Topology::reference(),
    }
}

/// Arms the fault layer at `url` with the run's scenario and seed.
async fn arm_proxy(
    client: &reqwest::Client,
    url: &str,
    arm: &ArmRequest,
) -> Result<ProxyInfo, LiveError> {
    let response = client
        .post(format!("{url}{CONTROL_PREFIX}arm"))
        .json(arm)
        .send()
        .await
        .map_err(|e| target_error(url, format!("proxy arm: {}", error_chain(&e))))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(target_error(
            url,
            format!("proxy arm answered {status}: {}", excerpt(&body)),
        ));
    }
    response
        .json::<ProxyInfo>()
        .await
        .map_err(|e| target_error(url, format!("proxy arm: {e}")))
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

/// What phase 4 read: the target's state and its downstreams' effects.
struct FinalState {
    tables: Tables,
    source: StateSource,
    sales: Option<Vec<LabelSale>>,
    effects: Vec<Effect>,
    ledgers: Vec<(String, usize)>,
}

/// Phase 4, first half: the final state (whole store with the admin key, public reads
/// without, or, for a described target, every acknowledged resource read back through its
/// API, recorded as verify operations) and the downstreams' ledgers when they can be read.
async fn read_final_state(
    options: &LiveOptions,
    plan: &Plan,
    http: &reqwest::Client,
    transport: &Arc<ReqwestTransport>,
    begun: &Begun,
    recorder: &LiveRecorder,
) -> Result<FinalState, LiveError> {
    if options.described.is_some() {
        let acknowledged = recorder.with_history(|history| workload::acknowledged(history));
        let verify_seed = Seed(options.seed).derive("verify");
        workload::read_back(acknowledged, plan, recorder.clone(), |caller| {
            api_client(
                plan,
                transport,
                &begun.target,
                caller,
                SETTLE_POLICY,
                verify_seed.derive_index("verifier", u64::from(caller.index)),
                &BugSet::none(),
            )
        })
        .await;
        let mut effects = Vec::new();
        let mut ledgers = Vec::new();
        for (downstream, url) in options.downstreams() {
            let Some(url) = url else { continue };
            let after = begun
                .ledger_marks
                .get(&downstream.name)
                .copied()
                .unwrap_or(0);
            let read = patiently(|| async {
                read_ledger(http, &downstream, &url, after)
                    .await
                    .map_err(|detail| target_error(&url, detail))
            })
            .await?;
            ledgers.push((downstream.name.clone(), read.effects.len()));
            effects.extend(read.effects);
        }
        return Ok(FinalState {
            tables: Tables::default(),
            source: StateSource::ReadBack,
            sales: None,
            effects,
            ledgers,
        });
    }
    let history = recorder.with_history(|history| history.clone());
    let target = &begun.target;
    let admin_key = options.admin_key.as_deref();
    let (tables, source) = match admin_key {
        Some(key) => (
            patiently(|| read_admin_state(http, target, key)).await?,
            StateSource::Admin,
        ),
        None => (
            read_through_api(http, target, &history, options).await,
            StateSource::ApiReads,
        ),
    };
    let carrier_url = options.carrier_url.as_deref().map(base_url);
    let carrier_key = options.carrier_admin_key.as_deref().or(admin_key);
    let sales = match (&carrier_url, carrier_key) {
        (Some(url), Some(key)) => Some(patiently(|| read_sales(http, url, key)).await?),
        _ => None,
    };
    let effects = sales.as_deref().map(effects_of).unwrap_or_default();
    let ledgers = sales
        .as_ref()
        .map(|s| vec![(crate::run::hosts::CARRIER.to_string(), s.len())])
        .unwrap_or_default();
    Ok(FinalState {
        tables,
        source,
        sales,
        effects,
        ledgers,
    })
}

/// What a downstream's ledger held.
struct LedgerRead {
    /// The effects made after the mark asked for, in shipsim's terms.
    effects: Vec<Effect>,
    /// The sequence number of its last effect (0 when it has none).
    seq_last: u64,
}

/// A downstream's ledger (`GET /__shipsim/ledger`, with the spec's admin key): the effects
/// made after effect number `after`.
///
/// # Errors
/// A sentence naming the downstream and what answered.
async fn read_ledger(
    client: &reqwest::Client,
    downstream: &DownstreamRef,
    url: &str,
    after: u64,
) -> Result<LedgerRead, String> {
    let path = shipsim_system::downstream::ADMIN_LEDGER_PATH;
    let name = &downstream.name;
    let headers: Vec<(&str, &str)> = downstream
        .spec
        .admin_key
        .as_deref()
        .map(|key| (HEADER_ADMIN_KEY, key))
        .into_iter()
        .collect();
    let mut request = client.get(format!("{url}{path}")).timeout(PROBE_TIMEOUT);
    for (header, value) in headers {
        request = request.header(header, value);
    }
    let response = request.send().await.map_err(|e| {
        format!(
            "the downstream `{name}` at {url} is unreachable: {}",
            error_chain(&e)
        )
    })?;
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap_or_default();
    if status != 200 {
        return Err(format!(
            "the downstream `{name}` at {url} answered {status} at GET {path} (is it `shipsim downstream --spec {}`?): {}",
            downstream.spec_file.display(),
            excerpt(&String::from_utf8_lossy(&body))
        ));
    }
    let snapshot: shipsim_system::downstream::LedgerSnapshot = serde_json::from_slice(&body)
        .map_err(|e| {
            format!("the downstream `{name}` at {url} answered an undecodable ledger: {e}")
        })?;
    let seq_last = snapshot.effects.iter().map(|e| e.seq).max().unwrap_or(0);
    let effects = snapshot
        .effects
        .into_iter()
        .filter(|e| e.seq > after)
        .collect();
    Ok(LedgerRead {
        effects: crate::target::effects_of_ledger(&downstream.spec, effects),
        seq_last,
    })
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

    let reports = heal_and_settle(&options, &plan, &http, &transport, &begun, &recorder).await?;
    let state = tokio::time::timeout(
        Duration::from_millis(limit_ms),
        read_final_state(&options, &plan, &http, &transport, &begun, &recorder),
    )
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

/// Shipments the service holds that no operation was answered with, other than those whose
/// label the carrier refused (their requests were answered with a stored 422). Only needed
/// when the state comes from API reads, where shipment keys are unknown; with the whole
/// store, `exactly_once` sees the keys.
///
/// After the settle phase every correct creation was answered to someone, unless its
/// operation is still without an answer: a shipment on an order where such an operation of
/// the same merchant was left is that operation's, and `ambiguity_resolved` reports it. Any
/// other is reported with what was observed of it, never with a guessed cause.
fn orphan_violations(input: &OracleInput<'_>, tables: &Tables) -> Vec<Violation> {
    let unresolved: BTreeSet<(&str, &str)> = input
        .history
        .unresolved_writes()
        .filter_map(|op| Some((op.caller.as_str(), op.parent.as_deref()?)))
        .collect();
    tables
        .shipments
        .values()
        .filter(|r| r.idempotency_key.starts_with('?'))
        .filter(|r| r.shipment.status != ShipmentStatus::LabelRejected)
        .filter(|r| !unresolved.contains(&(r.caller.as_str(), r.shipment.order_id.as_str())))
        .map(|record| {
            let shipment = &record.shipment;
            Violation::new(
                OracleKind::ExactlyOnce,
                input,
                format!(
                    "shipment {} of order {} is in the service, but no operation was answered with it",
                    shipment.id, shipment.order_id
                ),
            )
            .evidence(format!(
                "observed: status {}, label {}",
                crate::reference::spelled(&shipment.status),
                shipment.label_id.as_deref().unwrap_or("none")
            ))
            .evidence(format!(
                "every create of {} on order {} ended with an answer, and none named it",
                record.caller, shipment.order_id
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
    ledgers_known: bool,
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
            (OracleKind::StateMachine, StateSource::ApiReads | StateSource::ReadBack) => Some(
                "the final state is checked over the resources clients know of".to_string(),
            ),
            (OracleKind::ExactlyOnce, StateSource::ApiReads) => Some(
                "keys of shipments no client received are unknown: such shipments are reported as orphans".to_string(),
            ),
            (OracleKind::ExactlyOnce, StateSource::ReadBack) => Some(
                "the target's store is not visible: judged from the answers and the downstream ledgers".to_string(),
            ),
            (OracleKind::AmbiguityResolved, StateSource::ApiReads) => {
                Some("idempotency records are not visible: only pending shipments are checked".to_string())
            }
            (OracleKind::AmbiguityResolved, StateSource::ReadBack) => {
                Some("idempotency records are not visible: judged from the re-issued operations".to_string())
            }
            (OracleKind::AcknowledgedWrites, StateSource::ApiReads | StateSource::ReadBack) => {
                Some("durable means what the API serves after the run".to_string())
            }
            _ => None,
        };
        let caveat = match (oracle, ledgers_known, caveat) {
            (OracleKind::ExactlyOnce, false, Some(c)) if source == StateSource::ReadBack => {
                Some(format!(
                    "{c}; effects not audited (no downstream ledger read: give --downstream NAME=URL)"
                ))
            }
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
    state: FinalState,
) -> LiveRun {
    let scenario = &options.scenario;
    let ledgers_known = !state.ledgers.is_empty() || state.sales.is_some();
    let (oracles_run, oracles_skipped) = self::plan(scenario, state.source, ledgers_known);
    // What the service serves after the run is what it keeps: both views are the same. A
    // described target's store is not visible at all: the oracles judge from the answers,
    // the read-backs and the ledgers.
    let inventories = (state.source != StateSource::ReadBack).then(|| {
        let inventory = inventory_of(&state.tables);
        Inventories {
            live: inventory.clone(),
            durable: inventory,
        }
    });
    let input = OracleInput {
        scenario,
        seed: options.seed,
        history: &history,
        kinds: plan.table.kinds(),
        conventions: &plan.conventions,
        inventory: inventories.as_ref(),
        effects: &state.effects,
        webhooks: None,
        injections: &[],
    };
    let mut violations: Vec<Violation> = oracles_run
        .iter()
        .flat_map(|(oracle, _)| oracle.check(&input))
        .collect();
    if state.source == StateSource::ApiReads
        && oracles_run
            .iter()
            .any(|(o, _)| *o == OracleKind::ExactlyOnce)
    {
        violations.extend(orphan_violations(&input, &state.tables));
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
        run_id: options.run_id.clone(),
        history,
        trace,
        violations,
        oracles_run,
        oracles_skipped,
        proxies: Vec::new(),
        faults_not_applied,
        state_source: state.source,
        tables: state.tables,
        sales: state.sales,
        effects: state.effects,
        ledgers: state.ledgers,
        duplicates,
        endpoints: plan.table.endpoints(),
        workload_ms: 0,
        total_ms: 0,
    }
}

#[cfg(test)]
mod tests {
    use shipsim_system::api::ShipmentStatus;

    use super::*;
    use crate::oracle::testing::{Fixture, ok_attempt, op_kind, shipment};

    #[test]
    fn a_shipment_nobody_received_is_reported_as_observed_not_as_a_guess() {
        // Proves the orphan check of public-read runs says what it saw (state, label) rather
        // than "a second shipment", and leaves a pending shipment to `ambiguity_resolved`
        // when an operation of its merchant on its order was left without an answer (a
        // carrier outage, not a duplicate).
        let mut fixture = Fixture::happy();
        fixture.put_shipment(
            "merchant-0",
            "?shp_2",
            shipment("shp_2", "ord_1", ShipmentStatus::PendingLabel, None),
        );
        let found = fixture.with_input(|input| orphan_violations(input, &fixture.tables));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0]
                .message
                .contains("no operation was answered with it")
        );
        assert_eq!(
            found[0].evidence[0],
            "observed: status pending_label, label none"
        );
        assert!(!found[0].to_string().contains("second"), "{}", found[0]);

        fixture.op(
            "merchant-0",
            op_kind("create_shipment"),
            Some("ship-7"),
            Some("{}"),
            Some("ord_1"),
            vec![ok_attempt(503, Some("ship-7"))],
            OpOutcome::Ambiguous {
                reason: "503: carrier unavailable".into(),
            },
        );
        let found = fixture.with_input(|input| orphan_violations(input, &fixture.tables));
        assert_eq!(found, vec![], "the unanswered create accounts for it");
    }
}

/// Golden tests of the terminal summary of a live run: fixed runs (one per way the final
/// state is read) rendered to fixed text, so moving the renderer cannot change a byte.
#[cfg(test)]
mod golden {
    use std::collections::BTreeMap;

    use shipsim_system::api::ShipmentStatus;

    use super::*;
    use crate::live::proxy::RuleInfo;
    use crate::oracle::testing::{Fixture, Resource, ok, ok_attempt, op_kind, shipment};
    use crate::run::history::Phase;

    /// A scenario with one HTTP fault (a proxy would apply it) and one partition (none can).
    fn scenario() -> Scenario {
        Scenario::parse(
            "golden.toml",
            "golden_live",
            r#"
[[fault]]
kind = "http_error"
target = "service"
status = 503
probability = 0.5

[[fault]]
kind = "partition"
between = ["clients", "service"]
start_ms = 100
duration_ms = 100
"#,
        )
        .expect("a valid scenario")
    }

    /// A run of the happy fixture plus one ambiguous create and a stray shipment, judged
    /// with `source`, with two violations (one with operations), a partial oracle, a skipped
    /// one, and (for `Admin`) a proxy whose rule fired.
    fn run(source: StateSource, failed: bool) -> LiveRun {
        let mut fixture = Fixture::happy();
        fixture.put_shipment(
            "merchant-0",
            "?shp_2",
            shipment("shp_2", "ord_1", ShipmentStatus::PendingLabel, None),
        );
        let ambiguous = fixture.op(
            "merchant-0",
            op_kind("create_shipment"),
            Some("ship-7"),
            Some("{}"),
            Some("ord_1"),
            vec![
                ok_attempt(503, Some("ship-7")),
                ok_attempt(201, Some("ship-7")),
            ],
            OpOutcome::Ambiguous {
                reason: "503: carrier unavailable".into(),
            },
        );
        fixture.op_at(
            "merchant-0",
            "settler",
            Phase::Verify,
            op_kind("get_shipment"),
            None,
            None,
            Some("shp_1"),
            vec![ok_attempt(200, None)],
            ok(Resource::Shipment(Box::new(shipment(
                "shp_1",
                "ord_1",
                ShipmentStatus::LabelPurchased,
                Some("lbl_1"),
            )))),
        );
        let mut violations = vec![
            Violation {
                oracle: OracleKind::ExactlyOnce,
                seed: 7,
                message: "a second shipment for one key".into(),
                operations: vec![ambiguous, 0, ambiguous],
                evidence: vec!["shipments: shp_1, shp_2".into(), "key: ship-7".into()],
            },
            Violation {
                oracle: OracleKind::AcknowledgedWrites,
                seed: 7,
                message: "an acknowledged order is missing".into(),
                operations: Vec::new(),
                evidence: Vec::new(),
            },
        ];
        if !failed {
            violations.clear();
        }
        let proxies = if source == StateSource::Admin {
            vec![ProxyInfo {
                host: ProxiedHost::service(),
                upstream: "http://127.0.0.1:8080".into(),
                seed: 7,
                elapsed_ms: 900,
                healed: true,
                rules: vec![RuleInfo {
                    index: 0,
                    describe: "http_error 503 on service".into(),
                    window: "0..end".into(),
                    probability: 0.5,
                }],
                fired: BTreeMap::from([(0, 4)]),
                armable: false,
                scenario: "golden_live".into(),
            }]
        } else {
            Vec::new()
        };
        let duplicates = fixture.duplicates();
        LiveRun {
            seed: 7,
            run_id: "r1a2b3".into(),
            history: fixture.history.clone(),
            trace: Trace::default(),
            violations,
            oracles_run: vec![
                (OracleKind::ExactlyOnce, None),
                (
                    OracleKind::AcknowledgedWrites,
                    Some("idempotency records are not visible".into()),
                ),
                (OracleKind::StateMachine, None),
            ],
            oracles_skipped: vec![(
                OracleKind::LatencyBudget,
                "wall-clock latency is not simulated time".into(),
            )],
            proxies,
            faults_not_applied: vec!["#1 partition clients <-> service (line 8)".into()],
            state_source: source,
            tables: fixture.tables.clone(),
            sales: (source == StateSource::Admin).then(|| fixture.sales.clone()),
            effects: Vec::new(),
            ledgers: if source == StateSource::ReadBack && failed {
                vec![("carrier".into(), 2), ("mailer".into(), 0)]
            } else {
                Vec::new()
            },
            duplicates,
            endpoints: KindTable::of(&ReferenceApi).unwrap().endpoints(),
            workload_ms: 1_500,
            total_ms: 2_250,
        }
    }

    /// A failed run judged from the whole store, behind a proxy whose rule fired.
    const ADMIN_FAILED: &str = r#"LIVE run of golden_live against http://127.0.0.1:9000: real network, real processes, no determinism guarantee
  workload seed 7 (operations and fault decisions come from it; timing and interleaving do not); idempotency keys of this run: *-r1a2b3-*
  3 operations (2 ok, 0 failed, 1 ambiguous, 0 resolved after heal) in 1500 ms; 4 requests (3/s): 3 2xx, 0 4xx, 0 429, 1 5xx, 0 timeouts, 0 transport errors; 1 retries, 0 replays
  POST /v1/orders                  p50    10 ms  p95    10 ms  max    10 ms
  POST /v1/orders/{id}/shipments   p50    10 ms  p95    10 ms  max    10 ms
  proxy in front of service (http://127.0.0.1:8080):
    fault #0 http_error 503 on service during 0..end: fired 4
  not applied in live mode: fault #1 partition clients <-> service (line 8)
  final state from the service's whole store (admin endpoint): 1 orders, 2 shipments; carrier ledger 1 labels
  duplicate resources 0, duplicate effects 0
  oracle exactly_once         1 violation(s)
  oracle acknowledged_writes  1 violation(s) (partial: idempotency records are not visible)
  oracle state_machine        held
  oracle latency_budget       skipped: wall-clock latency is not simulated time
VIOLATION [exactly_once] seed 7: a second shipment for one key
    shipments: shp_1, shp_2
    key: ship-7
    operations: {0, 2}
VIOLATION [acknowledged_writes] seed 7: an acknowledged order is missing
FAILED (seed 7, 2250 ms)
"#;

    /// A failed run judged from public reads, with no proxy for its HTTP fault and no carrier ledger.
    const API_READS_FAILED: &str = r#"LIVE run of golden_live against http://127.0.0.1:9000: real network, real processes, no determinism guarantee
  workload seed 7 (operations and fault decisions come from it; timing and interleaving do not); idempotency keys of this run: *-r1a2b3-*
  3 operations (2 ok, 0 failed, 1 ambiguous, 0 resolved after heal) in 1500 ms; 4 requests (3/s): 3 2xx, 0 4xx, 0 429, 1 5xx, 0 timeouts, 0 transport errors; 1 retries, 0 replays
  POST /v1/orders                  p50    10 ms  p95    10 ms  max    10 ms
  POST /v1/orders/{id}/shipments   p50    10 ms  p95    10 ms  max    10 ms
  no fault proxy found: the scenario's HTTP faults were not applied (use --proxy or `shipsim proxy`)
  not applied in live mode: fault #1 partition clients <-> service (line 8)
  final state from public API reads (no admin key: a service that is not ours): 1 orders, 2 shipments; carrier ledger not read
  duplicate resources 0, duplicate effects 0
  oracle exactly_once         1 violation(s)
  oracle acknowledged_writes  1 violation(s) (partial: idempotency records are not visible)
  oracle state_machine        held
  oracle latency_budget       skipped: wall-clock latency is not simulated time
VIOLATION [exactly_once] seed 7: a second shipment for one key
    shipments: shp_1, shp_2
    key: ship-7
    operations: {0, 2}
VIOLATION [acknowledged_writes] seed 7: an acknowledged order is missing
FAILED (seed 7, 2250 ms)
"#;

    /// A failed run judged from read-backs, with two downstream ledgers.
    const READ_BACK_FAILED: &str = r#"LIVE run of golden_live against http://127.0.0.1:9000: real network, real processes, no determinism guarantee
  workload seed 7 (operations and fault decisions come from it; timing and interleaving do not); idempotency keys of this run: *-r1a2b3-*
  3 operations (2 ok, 0 failed, 1 ambiguous, 0 resolved after heal) in 1500 ms; 4 requests (3/s): 3 2xx, 0 4xx, 0 429, 1 5xx, 0 timeouts, 0 transport errors; 1 retries, 0 replays
  POST /v1/orders                  p50    10 ms  p95    10 ms  max    10 ms
  POST /v1/orders/{id}/shipments   p50    10 ms  p95    10 ms  max    10 ms
  no fault proxy found: the scenario's HTTP faults were not applied (use --proxy or `shipsim proxy`)
  not applied in live mode: fault #1 partition clients <-> service (line 8)
  final state from 1 read-back(s) of acknowledged resources through the API; downstream ledgers: `carrier` 2 effect(s), `mailer` 0 effect(s)
  resources beyond the first per key 0, effects beyond the first per resource 0
  oracle exactly_once         1 violation(s)
  oracle acknowledged_writes  1 violation(s) (partial: idempotency records are not visible)
  oracle state_machine        held
  oracle latency_budget       skipped: wall-clock latency is not simulated time
VIOLATION [exactly_once] seed 7: a second shipment for one key
    shipments: shp_1, shp_2
    key: ship-7
    operations: {0, 2}
VIOLATION [acknowledged_writes] seed 7: an acknowledged order is missing
FAILED (seed 7, 2250 ms)
"#;

    /// A passed run judged from read-backs, with no downstream ledger.
    const READ_BACK_PASSED: &str = r#"LIVE run of golden_live against http://127.0.0.1:9000: real network, real processes, no determinism guarantee
  workload seed 7 (operations and fault decisions come from it; timing and interleaving do not); idempotency keys of this run: *-r1a2b3-*
  3 operations (2 ok, 0 failed, 1 ambiguous, 0 resolved after heal) in 1500 ms; 4 requests (3/s): 3 2xx, 0 4xx, 0 429, 1 5xx, 0 timeouts, 0 transport errors; 1 retries, 0 replays
  POST /v1/orders                  p50    10 ms  p95    10 ms  max    10 ms
  POST /v1/orders/{id}/shipments   p50    10 ms  p95    10 ms  max    10 ms
  no fault proxy found: the scenario's HTTP faults were not applied (use --proxy or `shipsim proxy`)
  not applied in live mode: fault #1 partition clients <-> service (line 8)
  final state from 1 read-back(s) of acknowledged resources through the API; downstream ledgers: no downstream ledger read
  resources beyond the first per key 0, effects beyond the first per resource 0
  oracle exactly_once         held
  oracle acknowledged_writes  held (partial: idempotency records are not visible)
  oracle state_machine        held
  oracle latency_budget       skipped: wall-clock latency is not simulated time
PASSED (seed 7, 2250 ms)
"#;

    fn rendered(source: StateSource, failed: bool) -> String {
        shipsim_reports::text::live(
            &run(source, failed).report(&scenario(), "http://127.0.0.1:9000"),
        )
    }

    #[test]
    fn the_live_summary_renders_byte_for_byte_as_before() {
        // Proves the terminal summary of a live run is unchanged text: four fixed runs, one
        // per way the final state is read (and a passed one), render to the golden text
        // captured from the renderer before it moved into `reports`.
        assert_eq!(rendered(StateSource::Admin, true), ADMIN_FAILED);
        assert_eq!(rendered(StateSource::ApiReads, true), API_READS_FAILED);
        assert_eq!(rendered(StateSource::ReadBack, true), READ_BACK_FAILED);
        assert_eq!(rendered(StateSource::ReadBack, false), READ_BACK_PASSED);
    }
}
