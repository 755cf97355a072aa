//! shipsim: a deterministic simulation and chaos test harness for HTTP integrations.
//!
//! `sim` takes a [`scenario::Scenario`] and a seed, runs the system under test
//! (`shipsim-system`) inside turmoil's simulated network while injecting [`fault`]s,
//! records a [`history::History`], checks it with [`oracle`]s, and hands a report model to
//! `shipsim-reports`. Same scenario and seed, same trace, byte for byte.

#![warn(missing_docs)]

pub mod clock;
pub mod corpus;
pub mod fault;
pub mod history;
pub mod hosts;
pub mod live;
pub mod net;
pub mod oracle;
pub mod reference;
pub mod runner;
pub mod scenario;
pub(crate) mod shared;
pub mod shrink;
pub mod target;
pub mod workload;

pub use runner::{SeedRun, run_seed};
pub use scenario::{Scenario, ScenarioError, SeedRange};
pub use target::{
    Api, ApiError, Boot, Caller, Conventions, CreateCall, Downstream, Draw, Durable, Durables,
    Effect, Inventories, Inventory, KeyPlacement, Kind, ReadCall, Resource, Seen, Target,
    Unfinished,
};
pub mod cli;
pub mod hunt;
pub mod report;
pub mod stats;
pub mod sweep;
pub(crate) mod wall;
