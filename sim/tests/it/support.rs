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

/// A directory of its own for what one test writes, under the system's temporary directory
/// with a fresh name (tests running at once, here or in another checkout, never share one),
/// removed when the guard is dropped at the end of the test.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("shipsim-test-")
        .tempdir()
        .expect("the temporary directory is writable")
}

/// A fresh directory named after `name`, for a helper that hands the path on (a target's
/// report directory) and so cannot hold a guard: it is kept after the test, like the report
/// a user would read.
pub fn scratch_kept(name: &str) -> PathBuf {
    tempfile::Builder::new()
        .prefix(&format!("shipsim-{name}-"))
        .tempdir()
        .expect("the temporary directory is writable")
        .keep()
}
