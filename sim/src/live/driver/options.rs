//! What a live run is asked to do ([`LiveOptions`]), and the plan it makes of it: the
//! target's API with every idempotency key in the run's namespace, the scenario's mix, the
//! merchants with their credentials on the target.

use std::sync::Arc;
use std::time::Duration;

use shipsim_system::bugs::BugSet;
use shipsim_system::clock::WallClock;

use super::super::{LiveError, base_url};
use crate::described::{DescribedApi, DownstreamRef};
use crate::reference::ReferenceApi;
use crate::scenario::Scenario;
use crate::target::plan::{KindTable, Plan};
use crate::target::{Api, Caller, ReadCall};

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
    pub(super) fn plan(&self) -> Result<Plan, LiveError> {
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
    pub(super) fn downstreams(&self) -> Vec<(DownstreamRef, Option<String>)> {
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
