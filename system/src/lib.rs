//! The system under test: the reference order/shipment service, the carrier it buys labels
//! from, the merchant's resilient client, and the stores, with no knowledge of turmoil.
//!
//! Everything that would make a run irreproducible comes in through a seam: the time of day
//! ([`clock::Clock`]), randomness and ids ([`seed::Seed`], [`seed::IdGen`]), the network
//! ([`transport::Transport`] for outgoing calls; routers for incoming ones, served on a
//! listener the caller supplies), storage ([`store::Store`]) and observation
//! ([`observe::Observer`]). The simulation plugs turmoil into these seams; live mode plugs in
//! real sockets and the wall clock.
//!
//! Planted bugs ([`bugs::Bug`]) can be switched on to prove the oracles catch them; with none
//! switched on, every component here is meant to be correct.

#![warn(missing_docs)]

pub mod api;
pub mod bugs;
pub mod carrier;
pub mod client;
pub mod clock;
pub mod downstream;
pub(crate) mod hex;
pub mod observe;
pub mod receiver;
pub(crate) mod secret;
pub mod seed;
pub mod service;
pub mod store;
pub mod transport;
pub mod webhook;
