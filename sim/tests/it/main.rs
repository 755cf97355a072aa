//! Integration tests of the harness: one binary, one module per concern (turmoil's layout).

mod cli;
mod determinism;
mod reports;
mod scenario_errors;
mod scenarios;
