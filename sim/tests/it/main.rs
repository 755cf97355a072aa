//! Integration tests of the harness: one binary, one module per concern (turmoil's layout).

mod bugs;
mod byo;
mod checklist;
mod cli;
mod described;
mod determinism;
mod explore;
mod faults;
mod fuzz;
mod live;
mod live_fixture;
mod live_hardening;
mod matrix;
mod reach;
mod receiver;
mod reports;
mod scenario_errors;
mod scenarios;
mod support;
mod target;
