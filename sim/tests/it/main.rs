//! Integration tests of the harness: one binary, one module per concern (turmoil's layout).

mod bugs;
mod byo;
mod cli;
mod determinism;
mod faults;
mod fuzz;
mod live;
mod live_hardening;
mod receiver;
mod reports;
mod scenario_errors;
mod scenarios;
mod support;
mod target;
