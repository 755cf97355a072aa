//! Finding and loading scenario files (every bad file reported, not just the first).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::scenario::Scenario;

use super::*;

/// Every scenario file under `paths`, sorted, each directory searched recursively.
///
/// # Errors
/// When a path does not exist or a directory holds no scenario.
pub fn scenario_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = files.len();
            collect_toml(path, &mut files)
                .with_context(|| format!("cannot read directory {}", path.display()))?;
            if files.len() == before {
                bail!(
                    "{}: no *.toml scenario files in this directory",
                    path.display()
                );
            }
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            bail!("{}: no such file or directory", path.display());
        }
    }
    Ok(files)
}

pub(super) fn collect_toml(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_toml(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    Ok(())
}

/// Loads and validates every scenario; reports every bad file, not just the first.
///
/// # Errors
/// One error listing every invalid file with its position.
pub fn load_scenarios(paths: &[PathBuf]) -> anyhow::Result<Vec<Scenario>> {
    load_scenarios_for(paths, &crate::scenario::Topology::reference())
}

/// [`load_scenarios`] for a target with `topology`.
///
/// # Errors
/// One error listing every invalid file with its position.
pub fn load_scenarios_for(
    paths: &[PathBuf],
    topology: &crate::scenario::Topology,
) -> anyhow::Result<Vec<Scenario>> {
    let files = scenario_files(paths)?;
    let mut scenarios = Vec::new();
    let mut errors = Vec::new();
    for file in &files {
        match Scenario::load_for(file, topology) {
            Ok(scenario) => scenarios.push(scenario),
            Err(error) => errors.push(error.to_string()),
        }
    }
    if !errors.is_empty() {
        bail!(
            "{} invalid scenario file(s):\n{}",
            errors.len(),
            errors.join("\n")
        );
    }
    let mut names = std::collections::BTreeMap::new();
    for scenario in &scenarios {
        if let Some(previous) = names.insert(scenario.name.clone(), scenario.path.clone()) {
            bail!(
                "two scenarios are named `{}`: {} and {} (names must be unique: reports and repro files use them)",
                scenario.name,
                previous,
                scenario.path
            );
        }
    }
    Ok(scenarios)
}

pub(super) fn load_one(path: &Path) -> Result<Scenario, Failure> {
    Scenario::load(path).map_err(|e| Failure::Input(anyhow::anyhow!("{e}")))
}

pub(super) fn load_one_for(
    path: &Path,
    topology: &crate::scenario::Topology,
) -> Result<Scenario, Failure> {
    Scenario::load_for(path, topology).map_err(|e| Failure::Input(anyhow::anyhow!("{e}")))
}

/// Reads a target description and its secrets.
pub(super) fn load_description(path: &Path) -> Result<crate::described::Description, Failure> {
    crate::described::Description::load(path).map_err(|e| Failure::Input(anyhow::anyhow!("{e}")))
}
