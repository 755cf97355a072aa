//! `shipsim serve` and `shipsim carrier`: the reference service and the carrier on real TCP.
//!
//! `shipsim serve` without `--carrier-url` runs the carrier in its own process (on a free
//! loopback port, its ledger in a SQLite file beside the database) and says so; with it, the
//! service calls the carrier there. Either way it answers `GET /__shipsim/ready`: 200 when
//! its carrier answers, 503 naming it when not, which `shipsim live` checks before a run.
//!
//! The service keeps its state in a SQLite file ([`SqliteStore`]) and takes its boot number
//! from it, so a restart after `kill -9` recognises the dead process's in-progress locks and
//! resumes them. The carrier keeps its ledger in a SQLite file when given one (otherwise in
//! memory, lost on restart), its tracking log included, so a restarted carrier resumes the
//! tracking deliveries it owed. Both stop gracefully on SIGTERM or ctrl-c: they stop
//! accepting, finish the requests in flight, and exit 0.
//!
//! Ids come from the operating system's entropy ([`IdGen::from_entropy`]) unless a seed is
//! given explicitly (`--seed`, for a reproducible demo): two services on fresh databases, a
//! database restored from a backup, or two environments sharing one carrier account never
//! issue the same order, shipment or label id, nor so the same carrier key. Both servers
//! wrap their connections in [`EnvelopeListener`], so even hyper's own answers to
//! unparseable requests carry the error envelope and a request id.
//!
//! Webhooks are off unless asked for. The service runs its outbox sender when at least one
//! merchant subscribed ([`ServiceOptions::webhooks`]); the carrier runs its tracking sender
//! when given the service's webhook URL ([`CarrierOptions::tracking`]). Both deliver with
//! reqwest, at least once, and resume from their database after a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use shipsim_system::bugs::BugSet;
use shipsim_system::carrier::{self, CarrierConfig, CarrierDeps, CarrierLedger, TrackingConfig};
use shipsim_system::clock::WallClock;
use shipsim_system::observe::TracingObserver;
use shipsim_system::seed::{IdGen, Seed, entropy_seed};
use shipsim_system::service::{
    self, EnvelopeListener, ServiceConfig, ServiceDeps, WebhookSettings,
};
use shipsim_system::store::SqliteStore;
use shipsim_system::transport::ReqwestTransport;

use super::{LiveError, announce, base_url, bind, shutdown_signal};
use crate::reference::{CARRIER_API_KEY, UNSERVICEABLE_COUNTRY};
use crate::scenario::ServiceSettings;
use crate::target::Caller;

/// How `shipsim serve` runs the service.
#[derive(Clone, Debug)]
pub struct ServiceOptions {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: String,
    /// The SQLite database file.
    pub db: PathBuf,
    /// The carrier's base URL (or a fault proxy in front of it); `None` runs the carrier in
    /// this process, its ledger in a SQLite file beside the database ([`embedded_ledger_path`]).
    pub carrier_url: Option<String>,
    /// Merchants accepted: `sk_sim_merchant_{i}` is the key of `merchant-{i}`, as in the
    /// simulation, for i below this, unless `merchant_keys` gives theirs.
    pub callers: u32,
    /// The merchants' API keys, merchant-0 first, from the environment or a keys file
    /// ([`super::credentials`]); two for a merchant in a rotation, both accepted. `None`:
    /// the simulation's demo keys for `callers` merchants.
    pub merchant_keys: Option<Vec<super::credentials::Rotation>>,
    /// The operator's key for the admin endpoints (`/v1/admin/...`); `None` disables them.
    pub admin_key: Option<String>,
    /// Limits, carrier policy and lease (a scenario's `[service]` table).
    pub settings: ServiceSettings,
    /// The carrier's webhook secret and the merchants subscribed to the service's own
    /// webhooks; no targets means no outbox sender.
    pub webhooks: WebhookSettings,
    /// How long completed idempotency records are remembered, ms (the sweeper deletes
    /// them after that).
    pub idempotency_retention_ms: u64,
    /// Planted bugs.
    pub bugs: BugSet,
    /// Seed of the service's ids and jitter (combined with the boot number): reproducible,
    /// and so shared by every process given the same seed. `None`: ids from the OS's
    /// entropy, jitter from a random seed.
    pub seed: Option<u64>,
}

/// How `shipsim carrier` runs the carrier.
#[derive(Clone, Debug)]
pub struct CarrierOptions {
    /// Address to listen on.
    pub listen: String,
    /// The SQLite file of the ledger; `None` keeps it in memory.
    pub db: Option<PathBuf>,
    /// The operator's key for the admin endpoints (`/v1/admin/...`); `None` disables them.
    pub admin_key: Option<String>,
    /// Where and how to send tracking events; `None` sends none.
    pub tracking: Option<TrackingConfig>,
    /// Seed of the carrier's ids; `None`: from the OS's entropy (see [`ServiceOptions::seed`]).
    pub seed: Option<u64>,
}

/// The seed a live server runs with, and the ids it issues: seeded (reproducible) when a
/// seed was given, from entropy otherwise.
fn seed_and_ids(seed: Option<u64>, component: &str, boot: u64) -> (Seed, Arc<IdGen>) {
    match seed {
        Some(seed) => {
            let seed = Seed(seed).derive(component);
            let ids = IdGen::new(seed.derive_index("boot", boot).derive("ids"));
            (seed, Arc::new(ids))
        }
        None => (entropy_seed(), Arc::new(IdGen::from_entropy())),
    }
}

/// Where the embedded carrier keeps its ledger: beside the service's database,
/// `x.sqlite` -> `x.carrier.sqlite`.
#[must_use]
pub fn embedded_ledger_path(db: &Path) -> PathBuf {
    let stem = db
        .file_stem()
        .map_or_else(|| "service".into(), |s| s.to_string_lossy().into_owned());
    let name = match db.extension() {
        Some(extension) => format!("{stem}.carrier.{}", extension.to_string_lossy()),
        None => format!("{stem}.carrier"),
    };
    db.with_file_name(name)
}

/// Starts the carrier in this process on a free loopback port, its ledger in `ledger_path`
/// (so a restarted service finds the labels it bought), and returns its URL.
async fn embedded_carrier(
    ledger_path: &Path,
    admin_key: Option<String>,
    seed: Option<u64>,
) -> Result<String, LiveError> {
    let (ledger, boot) = CarrierLedger::open(ledger_path)?;
    let (seed, ids) = seed_and_ids(seed, "carrier", boot);
    let deps = CarrierDeps {
        clock: Arc::new(WallClock),
        ledger: Arc::new(ledger),
        observer: Arc::new(TracingObserver),
        seed,
        boot,
    };
    let router = carrier::router_with_ids(
        CarrierConfig {
            api_key: CARRIER_API_KEY.to_string(),
            unserviceable_countries: [UNSERVICEABLE_COUNTRY.to_string()].into_iter().collect(),
            tracking: None,
            admin_key,
        },
        deps,
        ids.clone(),
    );
    let (listener, address) = bind("127.0.0.1:0").await?;
    let listener = EnvelopeListener::new(listener, ids);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(format!("http://{address}"))
}

/// `GET /__shipsim/ready`: 200 when the carrier answers (any HTTP status: it is there),
/// 503 naming it when it does not. `shipsim live` asks before a run, so that a service
/// without its carrier is reported as such, not as a run of failures.
async fn ready(carrier_url: String, client: reqwest::Client) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let probe = client
        .get(format!("{carrier_url}/"))
        .timeout(std::time::Duration::from_secs(2))
        .send()
        .await;
    match probe {
        Ok(_) => (
            http::StatusCode::OK,
            axum::Json(serde_json::json!({ "ready": true, "carrier_url": carrier_url })),
        )
            .into_response(),
        Err(error) => (
            http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({
                "ready": false,
                "carrier_url": carrier_url,
                "problem": format!("the carrier at {carrier_url} is unreachable: {}", super::error_chain(&error)),
            })),
        )
            .into_response(),
    }
}

/// The service's key table, key to merchant: every active key of each merchant (both
/// during a rotation, so clients can move one by one), or the demo keys.
fn api_keys(
    callers: u32,
    merchant_keys: Option<&[super::credentials::Rotation]>,
) -> std::collections::BTreeMap<String, String> {
    match merchant_keys {
        None => (0..callers)
            .map(|i| {
                let caller = Caller::new(i);
                (caller.api_key, caller.id)
            })
            .collect(),
        Some(rotations) => (0_u32..)
            .zip(rotations)
            .flat_map(|(i, rotation)| {
                let id = Caller::new(i).id;
                rotation
                    .all()
                    .map(move |key| (key.to_string(), id.clone()))
                    .collect::<Vec<_>>()
            })
            .collect(),
    }
}

/// Runs the reference service until SIGTERM or ctrl-c.
///
/// # Errors
/// When the database cannot be opened or the address bound.
pub async fn run_service(options: ServiceOptions) -> Result<(), LiveError> {
    let (store, boot) = SqliteStore::open(&options.db)?;
    let carrier_url = match &options.carrier_url {
        Some(url) => base_url(url),
        None => {
            let ledger = embedded_ledger_path(&options.db);
            let url = embedded_carrier(&ledger, options.admin_key.clone(), options.seed).await?;
            tracing::info!(carrier_url = %url, ledger = %ledger.display(), "no --carrier-url: the carrier runs in this process");
            eprintln!(
                "no --carrier-url: the carrier runs in this process at {url} (ledger {}); give --carrier-url to use another",
                ledger.display()
            );
            url
        }
    };
    let config = ServiceConfig {
        api_keys: api_keys(options.callers, options.merchant_keys.as_deref()),
        key_retirements: std::collections::BTreeMap::new(),
        carrier_base_url: carrier_url.clone(),
        carrier_api_key: CARRIER_API_KEY.to_string(),
        carrier_policy: options.settings.carrier,
        rate_limit: options.settings.rate_limit,
        lock_lease_ms: options.settings.lock_lease_ms,
        idempotency_retention_ms: options.idempotency_retention_ms,
        // A real database has its own round trips; simulated ones would only add to them.
        store_latency_ms: (0, 0),
        bugs: options.bugs,
        admin_key: options.admin_key,
        webhooks: options.webhooks.clone(),
    };
    let (seed, ids) = seed_and_ids(options.seed, "service", boot);
    let deps = ServiceDeps {
        clock: Arc::new(WallClock),
        store: Arc::new(store),
        carrier: Arc::new(ReqwestTransport::new()?),
        observer: Arc::new(TracingObserver),
        seed,
        boot,
    };
    tokio::spawn(service::run_idempotency_sweeper(
        deps.store.clone(),
        deps.clock.clone(),
        options.idempotency_retention_ms,
        service::SWEEP_BATCH_MAX,
    ));
    let subscribers = options.webhooks.targets.len();
    if subscribers > 0 {
        tokio::spawn(service::run_outbox_sender(
            options.webhooks,
            deps.clone(),
            Arc::new(ReqwestTransport::new()?),
        ));
    }
    let probe_client =
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| LiveError::Target {
                url: carrier_url.clone(),
                detail: format!("cannot build the HTTP client: {e}"),
            })?;
    let router = service::router_with_ids(config, deps, ids.clone()).route(
        crate::live::driver::REFERENCE_READY_PATH,
        axum::routing::get(move || ready(carrier_url.clone(), probe_client.clone())),
    );
    let (listener, address) = bind(&options.listen).await?;
    let listener = EnvelopeListener::new(listener, ids);
    let shutdown = shutdown_signal();
    let ids_from = if options.seed.is_some() {
        "seed"
    } else {
        "entropy"
    };
    tracing::info!(%address, boot, db = %options.db.display(), subscribers, ids_from, "service listening");
    announce(address);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    tracing::info!(boot, "service stopped");
    Ok(())
}

/// Runs the carrier until SIGTERM or ctrl-c.
///
/// # Errors
/// When the ledger file cannot be opened or the address bound.
pub async fn run_carrier(options: CarrierOptions) -> Result<(), LiveError> {
    let (ledger, boot) = match &options.db {
        Some(path) => CarrierLedger::open(path)?,
        None => (CarrierLedger::new(), 0),
    };
    let (seed, ids) = seed_and_ids(options.seed, "carrier", boot);
    let deps = CarrierDeps {
        clock: Arc::new(WallClock),
        ledger: Arc::new(ledger),
        observer: Arc::new(TracingObserver),
        seed,
        boot,
    };
    if let Some(tracking) = &options.tracking {
        tokio::spawn(carrier::run_tracking_sender(
            tracking.clone(),
            deps.clone(),
            Arc::new(ReqwestTransport::new()?),
        ));
    }
    let tracking_url = options.tracking.as_ref().map(|t| t.webhook_url.clone());
    let router = carrier::router_with_ids(
        CarrierConfig {
            api_key: CARRIER_API_KEY.to_string(),
            unserviceable_countries: [UNSERVICEABLE_COUNTRY.to_string()].into_iter().collect(),
            tracking: options.tracking,
            admin_key: options.admin_key,
        },
        deps,
        ids.clone(),
    );
    let (listener, address) = bind(&options.listen).await?;
    let listener = EnvelopeListener::new(listener, ids);
    let shutdown = shutdown_signal();
    tracing::info!(%address, boot, tracking_url = tracking_url.as_deref().unwrap_or(""), "carrier listening");
    announce(address);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    tracing::info!(boot, "carrier stopped");
    Ok(())
}
