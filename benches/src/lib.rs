//! Shared helpers of the criterion benchmarks in `benches/`.

/// The scenario corpus directory, found from this crate's manifest so benchmarks run from
/// any working directory.
#[must_use]
pub fn scenarios_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// Loads one scenario of the corpus by file stem.
///
/// # Panics
/// If the file is missing or invalid: a benchmark of a broken corpus measures nothing.
#[must_use]
pub fn scenario(stem: &str) -> shipsim::Scenario {
    let path = scenarios_dir().join(format!("{stem}.toml"));
    shipsim::Scenario::load(&path).unwrap_or_else(|error| panic!("{error}"))
}
