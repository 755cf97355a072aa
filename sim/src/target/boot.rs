//! [`Boot`]: what a host of the target is given each time it starts (and starts again after
//! a crash): its clock, seeded randomness and ids, HTTP clients to the other simulated
//! hosts, and durable state whose crash semantics shipsim controls.
//!
//! A restarted host gets the same durable state ([`Boot::durable`] hands back the same
//! instance, minus whatever the crash lost) and a fresh everything else: a new router, new
//! tasks, a new id stream (ids derive from the boot number, so a restart never reuses one).

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rand_chacha::ChaCha8Rng;
use shipsim_system::clock::Clock;
use shipsim_system::observe::Observer;
use shipsim_system::seed::{IdGen, Seed};
use shipsim_system::transport::Transport;

use super::api::Caller;
use crate::fault::Direction;
use crate::fault::webhook::WebhookFaults;
use crate::run::clock::SimClock;
use crate::run::hosts::HTTP_PORT;
use crate::run::net::SimTransport;
use crate::run::state::{HostObserver, Shared};
use crate::scenario::Scenario;

/// State that outlives a host's process: a database, a file. The simulation keeps one
/// instance per host and name across the host's boots, and tells it when the process dies.
///
/// Implemented here for shipsim-system's stores ([`shipsim_system::store::MemoryStore`],
/// [`shipsim_system::store::Kv`], [`shipsim_system::store::SimSqlite`]); implement it for
/// your own to give it crash semantics.
pub trait Durable: Send + Sync + 'static {
    /// The process died: throw away everything that was not durable yet. Returns how many
    /// committed transactions were lost (0 for a store that only acknowledges durable
    /// commits).
    fn crash(&self) -> u64;

    /// The operating system wrote its caches back: what was committed lazily is durable
    /// now. Called every 100 ms of simulated time.
    fn flush(&self) {}
}

/// A third party's own records: they survive the host's crashes whole.
impl Durable for shipsim_system::carrier::CarrierLedger {
    fn crash(&self) -> u64 {
        0
    }
}

impl Durable for shipsim_system::receiver::ReceiverLedger {
    fn crash(&self) -> u64 {
        0
    }
}

impl Durable for shipsim_system::store::MemoryStore {
    fn crash(&self) -> u64 {
        shipsim_system::store::MemoryStore::crash(self).transactions_lost
    }

    fn flush(&self) {
        shipsim_system::store::MemoryStore::flush(self);
    }
}

impl Durable for shipsim_system::store::Kv {
    fn crash(&self) -> u64 {
        shipsim_system::store::Kv::crash(self).transactions_lost
    }

    fn flush(&self) {
        shipsim_system::store::Kv::flush(self);
    }
}

/// An in-memory SQLite database only acknowledges what it committed, and a crash rolls
/// back what its dead tasks left open: nothing acknowledged is lost.
impl Durable for shipsim_system::store::SimSqlite {
    fn crash(&self) -> u64 {
        // Busy only if something outside the dead host still holds the connection; the
        // host's own tasks were dropped with it. Either way no commit is lost.
        let _ = shipsim_system::store::SimSqlite::crash(self);
        0
    }
}

/// A third party's ledger survives its host's crashes whole.
impl Durable for shipsim_system::downstream::DownstreamLedger {
    fn crash(&self) -> u64 {
        0
    }
}

struct Slot {
    any: Arc<dyn Any + Send + Sync>,
    durable: Arc<dyn Durable>,
}

/// Every durable instance of one run, by (host, name). Ordered, so crashes and flushes
/// visit them in a fixed order.
#[derive(Clone, Default)]
pub struct Durables(Arc<Mutex<BTreeMap<(String, String), Slot>>>);

impl std::fmt::Debug for Durables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<(String, String)> = self.lock().keys().cloned().collect();
        f.debug_tuple("Durables").field(&names).finish()
    }
}

impl Durables {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Slot>> {
        self.0.lock().expect("durables lock poisoned")
    }

    /// Host `host`'s instance called `name`, made by `init` the first time it is asked for.
    ///
    /// # Panics
    /// If `name` was registered on `host` with another type: two calls of one factory that
    /// disagree are a bug in the factory.
    pub fn get_or_init<T: Durable>(
        &self,
        host: &str,
        name: &str,
        init: impl FnOnce() -> T,
    ) -> Arc<T> {
        let mut slots = self.lock();
        let slot = slots
            .entry((host.to_string(), name.to_string()))
            .or_insert_with(|| {
                let value = Arc::new(init());
                Slot {
                    any: value.clone(),
                    durable: value,
                }
            });
        slot.any.clone().downcast::<T>().unwrap_or_else(|_| {
            panic!("durable `{name}` of host `{host}` was registered with another type")
        })
    }

    /// Host `host`'s instance called `name`, if it was created and has type `T`.
    #[must_use]
    pub fn get<T: Durable>(&self, host: &str, name: &str) -> Option<Arc<T>> {
        let slots = self.lock();
        let slot = slots.get(&(host.to_string(), name.to_string()))?;
        slot.any.clone().downcast::<T>().ok()
    }

    /// Crashes every instance of `host`; returns the transactions lost.
    pub(crate) fn crash(&self, host: &str) -> u64 {
        let slots = self.lock();
        slots
            .iter()
            .filter(|((owner, _), _)| owner == host)
            .map(|(_, slot)| slot.durable.crash())
            .sum()
    }

    /// Flushes every instance.
    pub(crate) fn flush(&self) {
        for slot in self.lock().values() {
            slot.durable.flush();
        }
    }
}

/// What a host is given at each start. Cheap to clone.
#[derive(Clone)]
pub struct Boot {
    pub(crate) host: String,
    pub(crate) boot: u64,
    pub(crate) root: Seed,
    pub(crate) host_seed: Seed,
    pub(crate) clock: Arc<SimClock>,
    pub(crate) observer: Arc<HostObserver>,
    pub(crate) shared: Shared,
    pub(crate) scenario: Arc<Scenario>,
    pub(crate) durables: Durables,
    pub(crate) callers: Arc<[Caller]>,
    pub(crate) bugs: shipsim_system::bugs::BugSet,
}

impl std::fmt::Debug for Boot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Boot")
            .field("host", &self.host)
            .field("boot", &self.boot)
            .finish_non_exhaustive()
    }
}

impl Boot {
    /// The host's name (`service`, or a downstream's).
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// How many times the host started before this boot (0 at the first).
    #[must_use]
    pub fn boot_number(&self) -> u64 {
        self.boot
    }

    /// The host's clock of the time of day: simulated, with the scenario's skew for this
    /// host. Timers and sleeps use `tokio::time`, which the simulation drives.
    #[must_use]
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// The seed of `component`, the same at every boot (derive per boot with
    /// [`Seed::derive_index`] and [`Boot::boot_number`], or use [`Boot::ids`]).
    #[must_use]
    pub fn seed(&self, component: &str) -> Seed {
        self.root.derive(component)
    }

    /// A seeded generator for `component`, fresh at each boot.
    #[must_use]
    pub fn rng(&self, component: &str) -> ChaCha8Rng {
        self.root
            .derive(component)
            .derive_index("boot", self.boot)
            .rng()
    }

    /// A seeded id generator for `component`, fresh at each boot so a restarted host never
    /// hands out an id it handed out before.
    #[must_use]
    pub fn ids(&self, component: &str) -> IdGen {
        IdGen::new(self.rng_seed(component))
    }

    fn rng_seed(&self, component: &str) -> Seed {
        self.root.derive(component).derive_index("boot", self.boot)
    }

    /// An HTTP client to the simulated host `host` (a downstream's name), and the base URL
    /// to put in front of paths (`http://bank`). The client takes absolute URIs.
    #[must_use]
    pub fn downstream(&self, host: &str) -> Downstream {
        Downstream {
            base_url: format!("http://{host}:{HTTP_PORT}"),
            transport: Arc::new(SimTransport::new(host, HTTP_PORT)),
        }
    }

    /// Like [`Boot::downstream`], with the scenario's webhook faults (duplicates, reordering,
    /// delays, drops, replays, forgeries) applied to what this host sends: for the
    /// transport a webhook sender uses. `inbound` says which webhook faults apply: those
    /// aimed at deliveries into the system under test (`true`) or out of it.
    #[must_use]
    pub fn webhook_sender(&self, host: &str, inbound: bool) -> Downstream {
        let plain = Arc::new(SimTransport::new(host, HTTP_PORT));
        let direction = if inbound {
            Direction::Inbound
        } else {
            Direction::Outbound
        };
        Downstream {
            base_url: format!("http://{host}:{HTTP_PORT}"),
            transport: Arc::new(WebhookFaults::new(
                plain,
                &self.host,
                host,
                direction,
                &self.scenario.faults,
                self.host_seed.derive("webhook-faults"),
                self.shared.clone(),
            )),
        }
    }

    /// The host's durable instance called `name`, made by `init` at the first boot and
    /// handed back, whatever a crash left of it, at every later boot.
    #[must_use]
    pub fn durable<T: Durable>(&self, name: &str, init: impl FnOnce() -> T) -> Arc<T> {
        self.durables.get_or_init(&self.host, name, init)
    }

    /// The host's transactional key-value store called `name`: the same store at every
    /// boot, holding what was committed durably before a crash (see
    /// [`shipsim_system::store::Kv`]).
    #[must_use]
    pub fn kv(&self, name: &str) -> shipsim_system::store::Kv {
        (*self.durable(name, shipsim_system::store::Kv::new)).clone()
    }

    /// The host's in-memory SQLite database called `name`: the same database at every
    /// boot, with what was committed before a crash, its clock and `random()` reading the
    /// simulation (see [`shipsim_system::store::SimSqlite`]).
    ///
    /// # Errors
    /// When SQLite cannot open an in-memory database (out of memory).
    pub fn sqlite(
        &self,
        name: &str,
    ) -> Result<shipsim_system::store::SimSqlite, shipsim_system::store::SimSqliteError> {
        let seed = self.seed(&format!("sqlite-{name}"));
        if let Some(db) = self
            .durables
            .get::<shipsim_system::store::SimSqlite>(&self.host, name)
        {
            // A later boot: the database learns its new clock and boot number once.
            while db.boot_number() < self.boot {
                db.boot(self.clock());
            }
            return Ok((*db).clone());
        }
        let db = shipsim_system::store::SimSqlite::open(seed, self.clock())?;
        while db.boot_number() < self.boot {
            db.boot(self.clock());
        }
        Ok((*self.durable(name, || db)).clone())
    }

    /// A store round trip for `component`: awaiting [`RoundTrip::wait`] before each store
    /// call models the network hop to a real database (drawn from the scenario's
    /// `[service] store_latency_ms`), so requests interleave between a read and a write as
    /// they do in production. Without it a synchronous store answers at once and hides
    /// races such as check-then-insert.
    #[must_use]
    pub fn round_trip(&self, component: &str) -> RoundTrip {
        RoundTrip {
            rng: Arc::new(Mutex::new(self.rng(&format!("round-trip-{component}")))),
            range_ms: self.scenario.service.store_latency_ms,
        }
    }

    /// Where the host reports system events and asks whether to crash at a checkpoint
    /// (the scenario's point-triggered `crash` faults).
    #[must_use]
    pub fn observer(&self) -> Arc<dyn Observer> {
        self.observer.clone()
    }

    /// The merchants the workload acts for: configure their credentials.
    #[must_use]
    pub fn callers(&self) -> &[Caller] {
        &self.callers
    }

    /// The planted bugs switched on for this run (`--bug`, or a repro file's `bugs`): the
    /// reference system's deliberate mistakes, empty for every other target.
    #[must_use]
    pub fn bugs(&self) -> &shipsim_system::bugs::BugSet {
        &self.bugs
    }

    /// The scenario being run (its `[service]` and `[webhooks]` settings, say).
    #[must_use]
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }
}

/// A store's simulated round trip: see [`Boot::round_trip`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RoundTrip {
    rng: Arc<Mutex<ChaCha8Rng>>,
    range_ms: (u64, u64),
}

impl RoundTrip {
    /// Waits one round trip of simulated time.
    pub async fn wait(&self) {
        use rand::Rng;
        let (low, high) = self.range_ms;
        let ms = self
            .rng
            .lock()
            .expect("round trip lock poisoned")
            .random_range(low..=high.max(low));
        if ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
    }
}

/// An HTTP client to one simulated host.
#[derive(Clone)]
pub struct Downstream {
    base_url: String,
    transport: Arc<dyn Transport>,
}

impl std::fmt::Debug for Downstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downstream")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Downstream {
    /// `http://{host}:80`, to put in front of paths.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The transport: sends one buffered request with an absolute URI, returns one
    /// buffered response. Wrap calls in `tokio::time::timeout`: a partition can hold a
    /// request forever.
    #[must_use]
    pub fn transport(&self) -> Arc<dyn Transport> {
        self.transport.clone()
    }
}
