//! The system under test, as shipsim sees it: a [`Target`].
//!
//! A target is an HTTP service (an axum [`Router`], built afresh at every boot of its host
//! from the seams in [`Boot`]), the [`Api`] adapter that says how to create and read its
//! resources, and the simulated hosts it calls (downstreams that keep a ledger of the
//! effects they performed). shipsim runs it inside turmoil's network with the scenario's
//! faults, drives it with its workload, and judges it with its oracles. The reference
//! order/shipment service is a target too ([`crate::reference`]), built with nothing but
//! this module's public API.

mod api;
mod boot;
pub(crate) mod client;
mod inventory;
pub(crate) mod plan;
mod run;
pub(crate) mod user_client;

use std::sync::Arc;

use axum::Router;

pub use api::{
    Api, ApiError, Caller, Conventions, CreateCall, Draw, KeyPlacement, Kind, ReadCall, Seen,
    json_request,
};
pub use boot::{Boot, Downstream, Durable, Durables, RoundTrip};
pub use inventory::{Effect, Inventories, Inventory, Resource, Unfinished};
pub use run::{Outcome, REPLAY_ENV, RunError};
pub use user_client::{Client, ClientSeams, TransportService};

use crate::scenario::Scenario;
use shipsim_system::transport::BoxFuture;

/// The name of the host the system under test runs on; scenario files call it `service`.
pub const SERVICE_HOST: &str = crate::run::hosts::SERVICE;

/// Builds a host's router at each of its boots.
pub(crate) type Factory = Arc<dyn Fn(&Boot) -> Router + Send + Sync>;

/// Whether a host takes part in a scenario.
pub(crate) type Presence = Arc<dyn Fn(&Scenario) -> bool + Send + Sync>;

/// Reads the target's inventory out of its durable state at the end of a run.
pub(crate) type InventoryReader = Arc<dyn Fn(&Durables) -> Inventories + Send + Sync>;

/// Reads a downstream's effects out of its durable state at the end of a run.
pub(crate) type EffectReader = Arc<dyn Fn(&Durables) -> Vec<Effect> + Send + Sync>;

/// Waits, after the settle phase, until the target's background work is done.
pub(crate) type QuiesceWait = Arc<dyn Fn(QuiesceContext) -> BoxFuture<'static, ()> + Send + Sync>;

/// A wait after the settle phase, in the scenarios that need one.
#[derive(Clone)]
pub(crate) struct Quiesce {
    pub when: Presence,
    pub wait: QuiesceWait,
}

/// A host of the target besides the service: a downstream, a webhook receiver.
#[derive(Clone)]
pub(crate) struct HostSpec {
    pub name: String,
    pub presence: Option<Presence>,
    pub factory: Factory,
}

/// What a [`Target::quiesce`] hook gets: clients to the target's hosts and the run's state.
#[derive(Clone)]
pub struct QuiesceContext {
    pub(crate) shared: crate::run::state::Shared,
    pub(crate) scenario: Arc<Scenario>,
    pub(crate) durables: Durables,
}

impl std::fmt::Debug for QuiesceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuiesceContext").finish_non_exhaustive()
    }
}

impl QuiesceContext {
    /// An HTTP client to simulated host `host`.
    #[must_use]
    pub fn client(&self, host: &str) -> Arc<dyn shipsim_system::transport::Transport> {
        Arc::new(crate::run::net::SimTransport::new(
            host,
            crate::run::hosts::HTTP_PORT,
        ))
    }

    /// The scenario being run.
    #[must_use]
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The hosts' durable state (what each host keeps across crashes), to wait on what a
    /// host has done rather than for a fixed time.
    #[must_use]
    pub fn durables(&self) -> &Durables {
        &self.durables
    }

    /// Simulated time since the run began, ms.
    #[must_use]
    pub fn now_ms(&self) -> u64 {
        self.shared.now_us() / 1_000
    }

    /// Files a probe the hook sent (a request crossing a rule's boundary) with its answer,
    /// for the `service_probes` oracle and the moments.
    pub fn file_probe(&self, probe: crate::oracle::Probe) {
        self.shared.lock().history.probe(probe);
    }

    /// How many of the system's own reports so far (the events it gives its `Observer`:
    /// what its operator counts and logs) match `matching`.
    #[must_use]
    pub fn system_events(
        &self,
        matching: impl Fn(&shipsim_system::observe::SystemEvent) -> bool,
    ) -> u64 {
        self.shared
            .lock()
            .trace
            .events()
            .iter()
            .filter(|event| {
                matches!(&event.kind, crate::run::history::EventKind::System(e) if matching(e))
            })
            .count() as u64
    }

    /// Deliveries the scenario's webhook faults injected (replays, forgeries, duplicate
    /// copies) that are still unanswered: wait for them too.
    #[must_use]
    pub fn injections_in_flight(&self) -> u64 {
        self.shared.lock().injections_in_flight
    }
}

/// A system under test: its service, how to talk to its API, and the hosts it calls.
///
/// ```no_run
/// # use shipsim::{Target, Boot};
/// # fn my_router(boot: &Boot) -> axum::Router { axum::Router::new() }
/// # struct MyApi;
/// # impl shipsim::Api for MyApi {
/// #   fn kinds(&self) -> Vec<shipsim::Kind> { vec![] }
/// #   fn body(&self, _: &shipsim::Kind, _: &mut shipsim::Draw<'_>) -> String { String::new() }
/// #   fn vary(&self, _: &shipsim::Kind, b: &str) -> String { b.to_string() }
/// #   fn create(&self, _: &shipsim::Kind, _: &shipsim::CreateCall<'_>) -> Result<shipsim_system::transport::HttpRequest, shipsim::ApiError> { todo!() }
/// #   fn read(&self, _: &shipsim::Kind, _: &shipsim::ReadCall<'_>) -> Result<shipsim_system::transport::HttpRequest, shipsim::ApiError> { todo!() }
/// #   fn parse(&self, _: &shipsim::Kind, _: &shipsim_system::transport::HttpResponse) -> Result<shipsim::Seen, shipsim::ApiError> { todo!() }
/// # }
/// let target = Target::new("payments", my_router).api(MyApi);
/// ```
#[derive(Clone)]
pub struct Target {
    pub(crate) name: String,
    pub(crate) service: Factory,
    pub(crate) api: Option<Arc<dyn Api>>,
    pub(crate) hosts: Vec<HostSpec>,
    pub(crate) inventory: Option<InventoryReader>,
    pub(crate) effects: Vec<EffectReader>,
    pub(crate) quiesce: Option<Quiesce>,
    pub(crate) extensions: Extensions,
    pub(crate) client: Option<user_client::ClientFactory>,
    pub(crate) run: run::RunConfig,
    /// Problems found while the target was built (a downstream spec that does not
    /// compile), reported when it runs.
    pub(crate) problems: Vec<String>,
}

/// Capabilities only some targets have, kept out of the common path.
#[derive(Clone, Default)]
pub(crate) struct Extensions {
    /// Webhook parties, for the `webhook_once` oracle and the `webhook_burst` fault.
    pub webhooks: Option<Arc<dyn crate::oracle::WebhookParties>>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hosts: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("hosts", &hosts)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// A target called `name` whose service `router` builds at every boot of the
    /// `service` host.
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        router: impl Fn(&Boot) -> Router + Send + Sync + 'static,
    ) -> Target {
        Target {
            name: name.into(),
            service: Arc::new(router),
            api: None,
            hosts: Vec::new(),
            inventory: None,
            effects: Vec::new(),
            quiesce: None,
            extensions: Extensions::default(),
            client: None,
            run: run::RunConfig::default(),
            problems: Vec::new(),
        }
    }

    /// How shipsim talks to the service's API.
    #[must_use]
    pub fn api(mut self, api: impl Api) -> Target {
        self.api = Some(Arc::new(api));
        self
    }

    /// The merchants' client: the user's own (built by `factory` for each merchant process
    /// from the simulated network and the scenario's policy) instead of shipsim's. The
    /// workload drives it, every attempt it sends is recorded on the wire, and
    /// `client_discipline` judges it by the scenario's `[client]` limits.
    #[must_use]
    pub fn client(
        mut self,
        factory: impl Fn(ClientSeams) -> Box<dyn Client> + Send + Sync + 'static,
    ) -> Target {
        self.client = Some(Arc::new(factory));
        self
    }

    /// Another simulated host the service calls (a downstream), served by `router` and
    /// reachable from the service as `http://{name}` ([`Boot::downstream`]).
    #[must_use]
    pub fn host(
        mut self,
        name: impl Into<String>,
        router: impl Fn(&Boot) -> Router + Send + Sync + 'static,
    ) -> Target {
        self.hosts.push(HostSpec {
            name: name.into(),
            presence: None,
            factory: Arc::new(router),
        });
        self
    }

    /// A simulated third party the service calls, described by `spec` (a bank, a payment
    /// provider): served on the host named as the spec, reachable from the service as
    /// `http://{name}` ([`Boot::downstream`]), with its own idempotency, and a ledger of every
    /// effect it performed that the oracles audit. Effect routes with a `subject` tie each
    /// effect to the resource it was for.
    #[must_use]
    pub fn downstream(mut self, spec: shipsim_system::downstream::DownstreamSpec) -> Target {
        let downstream = match spec.compile() {
            Ok(downstream) => downstream,
            Err(error) => {
                self.problems
                    .push(format!("target `{}`: downstream spec: {error}", self.name));
                return self;
            }
        };
        let name = spec.name.clone();
        let host = name.clone();
        self = self.host(name.clone(), move |boot: &Boot| {
            let ledger = boot.durable("ledger", shipsim_system::downstream::DownstreamLedger::new);
            downstream.router(shipsim_system::downstream::DownstreamDeps {
                clock: boot.clock(),
                ledger: (*ledger).clone(),
                observer: boot.observer(),
                seed: boot.seed(&host),
                boot: boot.boot_number(),
            })
        });
        self.effects(move |durables| {
            durables
                .get::<shipsim_system::downstream::DownstreamLedger>(&name, "ledger")
                .map(|ledger| effects_of_ledger(&spec, ledger.effects()))
                .unwrap_or_default()
        })
    }

    /// [`Target::host`], present only in scenarios for which `when` says so.
    #[must_use]
    pub fn host_when(
        mut self,
        name: impl Into<String>,
        when: impl Fn(&Scenario) -> bool + Send + Sync + 'static,
        router: impl Fn(&Boot) -> Router + Send + Sync + 'static,
    ) -> Target {
        self.hosts.push(HostSpec {
            name: name.into(),
            presence: Some(Arc::new(when)),
            factory: Arc::new(router),
        });
        self
    }

    /// How to read what the target holds out of its durable state at the end of a run
    /// (both views: the running process's, and what would survive a crash). Without it
    /// the oracles judge from what the API answered and the downstreams' ledgers only.
    #[must_use]
    pub fn inventory(
        mut self,
        read: impl Fn(&Durables) -> Inventories + Send + Sync + 'static,
    ) -> Target {
        self.inventory = Some(Arc::new(read));
        self
    }

    /// How to read a downstream's ledger of effects at the end of a run.
    #[must_use]
    pub fn effects(
        mut self,
        read: impl Fn(&Durables) -> Vec<Effect> + Send + Sync + 'static,
    ) -> Target {
        self.effects.push(Arc::new(read));
        self
    }

    /// A wait, after every ambiguous operation was settled, until the target's
    /// background work (an outbox of webhooks) is done, so the oracles judge a quiet
    /// system; only in the scenarios for which `when` says so.
    #[must_use]
    pub fn quiesce(
        mut self,
        when: impl Fn(&Scenario) -> bool + Send + Sync + 'static,
        wait: impl Fn(QuiesceContext) -> BoxFuture<'static, ()> + Send + Sync + 'static,
    ) -> Target {
        self.quiesce = Some(Quiesce {
            when: Arc::new(when),
            wait: Arc::new(wait),
        });
        self
    }

    /// The target's webhook parties (a carrier that sends tracking events, an outbox of
    /// merchant webhooks): the `webhook_once` oracle judges them, and the `webhook_burst`
    /// fault adds events through them.
    #[must_use]
    pub fn webhook_parties(mut self, parties: impl crate::oracle::WebhookParties) -> Target {
        self.extensions.webhooks = Some(Arc::new(parties));
        self
    }

    /// The target's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks the target: an API adapter with valid kinds, host names that are unique and
    /// not shipsim's own. Returns its operation table.
    ///
    /// # Errors
    /// A [`TargetError`] saying what is wrong.
    pub(crate) fn table(&self) -> Result<plan::KindTable, TargetError> {
        if let Some(problem) = self.problems.first() {
            return Err(TargetError::Invalid {
                reason: problem.clone(),
            });
        }
        let api = self.api.as_ref().ok_or_else(|| TargetError::NoApi {
            target: self.name.clone(),
        })?;
        let table = plan::KindTable::of(&**api).map_err(|reason| TargetError::Kinds {
            target: self.name.clone(),
            reason,
        })?;
        let mut seen: Vec<&str> = vec![SERVICE_HOST];
        for host in &self.hosts {
            let name = host.name.as_str();
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !valid || name.starts_with("client") || name == crate::run::hosts::SETTLER {
                return Err(TargetError::Host {
                    target: self.name.clone(),
                    host: name.to_string(),
                    reason: "host names are lowercase letters, digits and `-`, and not `client*` or `settler` (shipsim's own hosts)".into(),
                });
            }
            if seen.contains(&name) {
                return Err(TargetError::Host {
                    target: self.name.clone(),
                    host: name.to_string(),
                    reason: "declared twice (or named `service`, the system under test's host)"
                        .into(),
                });
            }
            seen.push(name);
        }
        Ok(table)
    }

    /// What scenario files may name for this target: its operations, endpoints and hosts.
    ///
    /// # Errors
    /// A [`TargetError`] when the target itself is invalid.
    pub fn topology(&self) -> Result<crate::scenario::Topology, TargetError> {
        let table = self.table()?;
        Ok(crate::scenario::Topology {
            operations: table.names(),
            routes: table
                .endpoints()
                .iter()
                .map(|e| e.route().to_string())
                .collect(),
            hosts: self.hosts.iter().map(|h| h.name.clone()).collect(),
        })
    }
}

/// A downstream's ledger in shipsim's terms: each effect tied to the resource its request
/// named at its route's `subject` pointer, when the route has one. Live mode reads the same
/// ledger over HTTP and maps it here too.
pub(crate) fn effects_of_ledger(
    spec: &shipsim_system::downstream::DownstreamSpec,
    effects: Vec<shipsim_system::downstream::Effect>,
) -> Vec<Effect> {
    let subjects: Vec<(String, Option<&str>)> = spec
        .effects
        .iter()
        .map(|route| {
            (
                format!("{} {}", route.method.as_http(), route.path),
                route.subject.as_deref(),
            )
        })
        .collect();
    effects
        .into_iter()
        .map(|effect| {
            let pointer = subjects
                .iter()
                .find(|(route, _)| *route == effect.route)
                .and_then(|(_, pointer)| *pointer);
            let subject = pointer
                .and_then(|p| effect.request.pointer(p))
                .and_then(|v| match v {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Null => None,
                    other => Some(other.to_string()),
                });
            Effect {
                downstream: spec.name.clone(),
                what: effect.effect,
                id: effect.id,
                key: effect.key,
                subject,
                at_ms: effect.at_ms,
            }
        })
        .collect()
}

/// A target that cannot run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// No [`Api`] adapter was given.
    #[error("target `{target}` has no API adapter: call `.api(...)` with your `shipsim::Api`")]
    NoApi {
        /// The target.
        target: String,
    },
    /// The adapter's kinds are invalid.
    #[error("target `{target}`: {reason}")]
    Kinds {
        /// The target.
        target: String,
        /// What is wrong.
        reason: String,
    },
    /// Something given to the target's builder is invalid (a downstream spec).
    #[error("{reason}")]
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// A host is misnamed or declared twice.
    #[error("target `{target}`, host `{host}`: {reason}")]
    Host {
        /// The target.
        target: String,
        /// The host.
        host: String,
        /// What is wrong.
        reason: String,
    },
}
