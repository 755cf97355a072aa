//! shipsim: prove that an HTTP service is idempotent and retry-safe, deterministically.
//!
//! You hand shipsim your axum service (a [`Target`]: a router built afresh at every boot
//! from the seams in [`Boot`], an [`Api`] adapter that says how to create and read its
//! resources, and the simulated third parties it calls). shipsim runs it inside turmoil's
//! simulated network with seeded faults (timeouts, partitions, 5xx, 429 with `Retry-After`,
//! lost, duplicated and reordered deliveries, crashes), drives it with a workload of
//! retrying merchant clients (double submits, keys reused with another body), settles every
//! ambiguous operation once the faults heal, and judges the result with oracles: one effect
//! per idempotency key where the money is spent (the downstream's ledger), stable replays,
//! ambiguity resolved, acknowledged writes durable, states only moving forward, a client
//! that retries with discipline. Any failure is shrunk to a small repro file that replays
//! byte for byte.
//!
//! ```no_run
//! # fn router(_boot: &shipsim::Boot) -> axum::Router { axum::Router::new() }
//! # #[derive(Clone)] struct PaymentsApi;
//! # impl shipsim::Api for PaymentsApi {
//! #   fn kinds(&self) -> Vec<shipsim::Kind> { vec![shipsim::Kind::new("payment", "POST /v1/payments")] }
//! #   fn body(&self, _: &shipsim::Kind, d: &mut shipsim::Draw<'_>) -> String { format!("{{\"n\":{}}}", d.sequence()) }
//! #   fn vary(&self, _: &shipsim::Kind, b: &str) -> String { format!("{b} ") }
//! #   fn create(&self, _: &shipsim::Kind, c: &shipsim::CreateCall<'_>) -> Result<shipsim::HttpRequest, shipsim::ApiError> {
//! #       shipsim::json_request("POST", "/v1/payments", &[("idempotency-key", c.key)], c.body.to_string()) }
//! #   fn read(&self, _: &shipsim::Kind, c: &shipsim::ReadCall<'_>) -> Result<shipsim::HttpRequest, shipsim::ApiError> {
//! #       shipsim::json_request("GET", &format!("/v1/payments/{}", c.id), &[], "") }
//! #   fn parse(&self, _: &shipsim::Kind, r: &shipsim::HttpResponse) -> Result<shipsim::Seen, shipsim::ApiError> {
//! #       Ok(shipsim::Seen { id: String::from_utf8_lossy(r.body()).into_owned(), ..Default::default() }) }
//! # }
//! // in your crate's tests/chaos.rs
//! #[test]
//! fn payments_are_exactly_once() {
//!     shipsim::Target::new("payments", router)
//!         .api(PaymentsApi)
//!         .scenarios("tests/chaos")
//!         .seeds(0..200)
//!         .run()
//!         .assert_ok();
//! }
//! ```
//!
//! The reference order/shipment service is a target built with nothing but this API
//! ([`reference::target`]); the `shipsim` command runs it. Same scenario and seed, same
//! trace, byte for byte: the run reads no wall clock and no unseeded randomness.
//!
//! # Public API
//!
//! The items re-exported at the root, and the modules [`scenario`], [`oracle`], [`reach`],
//! [`receiver`], [`reference`](mod@reference), [`corpus`], [`store`] and [`downstream`]. The
//! other modules are shipsim's own machinery, public only so that the `shipsim` binary, the
//! benchmarks and the integration tests can reach it: they are hidden from the
//! documentation and carry no stability promise.

#![deny(missing_docs)]

pub mod corpus;
pub mod oracle;
pub mod reach;
pub mod receiver;
pub mod reference;
pub mod scenario;
mod target;

pub use receiver::{
    Events, Observed, Receiver, ReceiverFailure, ReceiverOutcome, Signing, Verdict,
};
pub use run::runner::{SeedRun, run_seed};
pub use scenario::{Scenario, ScenarioError, SeedRange, Topology};
/// The report model (`summary.json`'s types) and its renderers.
pub use shipsim_reports as reports;
pub use shipsim_system::bugs::Bug;
pub use shipsim_system::clock::Clock;
pub use shipsim_system::observe::Observer;
pub use shipsim_system::seed::{IdGen, Seed};
pub use shipsim_system::transport::{HttpRequest, HttpResponse, Transport, TransportError};
pub use target::{
    Api, ApiError, Boot, Caller, Client, ClientSeams, Conventions, CreateCall, Downstream, Draw,
    Durable, Durables, Effect, Inventories, Inventory, KeyPlacement, Kind, Outcome, QuiesceContext,
    REPLAY_ENV, ReadCall, Resource, RoundTrip, RunError, SERVICE_HOST, Seen, Target, TargetError,
    TransportService, Unfinished, json_request,
};

/// Durable stores a service can keep its repository behind, with crash semantics the
/// simulation controls (they implement [`Durable`]): a transactional key-value store and a
/// real SQLite database kept across a host's crash boots. [`store::Durability`] says when a
/// [`store::Kv`] commit survives a crash.
pub mod store {
    pub use shipsim_system::store::{
        Durability, Kv, KvError, KvTx, SimSqlite, SimSqliteError, SqlConn,
    };
}

/// A configurable simulated third party (a bank, a payment provider, a carrier) with its own
/// idempotency and a ledger of every effect it performed: the ground truth of exactly-once.
/// Add one to a target with [`Target::downstream`].
pub mod downstream {
    pub use shipsim_system::downstream::{
        AuthSpec, DownstreamLedger, DownstreamSpec, EffectRoute, HttpMethod, KeyPolicy, ReadRoute,
        Refusal, SpecError,
    };
}

#[doc(hidden)]
pub mod cli;
#[doc(hidden)]
pub mod described;
#[doc(hidden)]
pub mod fault;
#[doc(hidden)]
pub mod live;
#[doc(hidden)]
pub mod many;
#[doc(hidden)]
pub mod output;
#[doc(hidden)]
pub mod run;
