//! One run: a scenario and a seed driven through the simulated world.
//!
//! `runner` drives a seed from boot to quiescence; `workload` is the client
//! traffic it generates; `net` and `hosts` are the simulated network and its
//! hosts; `clock` is simulated time; `state` is the state one run shares among
//! its tasks; `history` is the record of operations the oracles judge.

#[doc(hidden)]
pub mod clock;
#[doc(hidden)]
pub mod history;
#[doc(hidden)]
pub mod hosts;
#[doc(hidden)]
pub mod net;
#[doc(hidden)]
pub mod runner;
pub(crate) mod state;
#[doc(hidden)]
pub mod workload;
