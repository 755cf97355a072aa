//! `shipsim compare` and `shipsim merge`: work on written summary.json files.

use std::path::PathBuf;

use clap::Args;

use crate::output::summary;

use super::*;

#[derive(Debug, Args)]
pub(super) struct CompareArgs {
    /// The baseline summary.json (e.g. checked in).
    base: PathBuf,
    /// The summary.json to judge.
    new: PathBuf,
    /// Growth of an endpoint's end-to-end p95 or p99 over the baseline that fails, percent.
    #[arg(long, default_value_t = 10.0, value_parser = parse_threshold)]
    threshold: f64,
    /// Latency growth below this many ms never fails, whatever the percentage.
    #[arg(long = "min-delta-ms", default_value_t = 1)]
    delta_ms_min: u64,
}

#[derive(Debug, Args)]
pub(super) struct MergeArgs {
    /// Report directory to write the merged report to.
    out: PathBuf,
    /// The summary.json of each shard (`shipsim run --shard I/N --out DIR`).
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// No summary table on stdout.
    #[arg(long, short)]
    quiet: bool,
}

pub(super) fn compare(args: &CompareArgs) -> Result<(), Failure> {
    let base = summary::read(&args.base)?;
    let new = summary::read(&args.new)?;
    let options = shipsim_reports::compare::CompareOptions {
        threshold_percent: args.threshold,
        delta_ms_min: args.delta_ms_min,
    };
    let comparison = shipsim_reports::compare::compare(&base, &new, &options);
    out!(
        "{}",
        shipsim_reports::compare::render(
            &comparison,
            &args.base.display().to_string(),
            &args.new.display().to_string(),
            &options
        )
    );
    if comparison.regressed() {
        Err(Failure::Violations)
    } else {
        Ok(())
    }
}

pub(super) fn merge(args: &MergeArgs) -> Result<(), Failure> {
    let (merged, repros) = summary::merge(&args.out, &args.shards)?;
    summary::write(&args.out, &merged, &repros)?;
    if !args.quiet {
        out!("{}", shipsim_reports::text::render(&merged));
    }
    outln!(
        "merged {} shard report(s): {}",
        args.shards.len(),
        args.out.join("index.html").display()
    );
    if merged.totals.scenarios_failed > 0 {
        Err(Failure::Violations)
    } else {
        Ok(())
    }
}
