//! Integration tests of the harness: one binary, one module per concern (turmoil's layout).

mod cli;
mod determinism;
mod live;
mod scenario_errors;
mod scenarios;
