//! Helpers every module of the integration tests shares.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the `shipsim` binary from the repository root and waits for it.
pub fn shipsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shipsim"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("the shipsim binary runs")
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The scenario corpus, `scenarios/`.
pub fn scenarios_dir() -> PathBuf {
    repo().join("scenarios")
}
