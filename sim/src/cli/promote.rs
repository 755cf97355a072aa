//! `shipsim promote`: a repro file into the regression corpus.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::scenario::Scenario;

use super::*;

#[derive(Debug, Args)]
pub(super) struct PromoteArgs {
    /// A repro file (pins `seed`).
    file: PathBuf,
    /// Name of the regression scenario (default: from the repro).
    #[arg(long)]
    name: Option<String>,
    /// Regression directory.
    #[arg(long, default_value = "scenarios/regressions")]
    dir: PathBuf,
}

pub(super) fn promote(args: &PromoteArgs) -> Result<(), Failure> {
    let mut scenario = Scenario::load(&args.file).map_err(|e| anyhow::anyhow!("{e}"))?;
    if scenario.seed.is_none() {
        return Err(anyhow::anyhow!(
            "{}: not a repro file: it pins no `seed`",
            args.file.display()
        )
        .into());
    }
    let name = args.name.clone().unwrap_or_else(|| scenario.name.clone());
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(
            anyhow::anyhow!("bad regression name `{name}`: use letters, digits, - and _").into(),
        );
    }
    scenario.name = name.clone();
    let target = args.dir.join(format!("{name}.toml"));
    if target.exists() {
        return Err(anyhow::anyhow!("{} exists: choose another --name", target.display()).into());
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let expectation = if scenario.bugs.is_empty() {
        "must hold (the bug it caught is fixed)"
    } else {
        "must fail (it proves the oracles still catch the pinned planted bugs)"
    };
    let text = format!(
        "# Regression promoted from {}.\n# As a test this scenario {expectation}.\n\n{}",
        args.file.display(),
        scenario.to_toml()
    );
    std::fs::write(&target, text).with_context(|| format!("cannot write {}", target.display()))?;
    outln!(
        "promoted to {}: `cargo test {}` runs it",
        target.display(),
        name.replace('-', "_")
    );
    Ok(())
}
