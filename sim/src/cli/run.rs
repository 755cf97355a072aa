//! `shipsim run` and `shipsim replay`: a sweep, its triage and its report.

use std::path::{Path, PathBuf};

use clap::Args;
use shipsim_system::bugs::{Bug, BugSet};

use crate::many::sweep::{self, Progress, Shard, SweepOptions};
use crate::many::triage;
use crate::output::summary;
use crate::scenario::{Scenario, SeedRange};

use super::*;

#[derive(Debug, Args, Clone)]
pub(super) struct RunArgs {
    /// Scenario files or directories (searched recursively for *.toml).
    #[arg(default_value = "scenarios")]
    paths: Vec<PathBuf>,
    /// Seeds to run for every scenario: A..B (end exclusive), A..=B, or N.
    #[arg(long, conflicts_with = "seed", value_parser = parse_seeds)]
    seeds: Option<SeedRange>,
    /// One seed to run for every scenario.
    #[arg(long, value_parser = parse_seed)]
    seed: Option<u64>,
    /// Parallel workers (default: available cores).
    #[arg(long, short)]
    jobs: Option<usize>,
    /// Run only shard I of N of the (scenario, seed) pairs; `auto` reads I and N from the
    /// CI's parallel-job variables or a Kubernetes Indexed Job (README, "Sweeps in CI").
    #[arg(long, value_parser = Shard::parse_or_auto)]
    shard: Option<Shard>,
    /// Report directory.
    #[arg(long, default_value = "target/shipsim/latest")]
    out: PathBuf,
    /// Run every seed twice and compare the trace hashes.
    #[arg(long)]
    check_determinism: bool,
    /// Switch on a planted bug (repeatable); `shipsim list --bugs` names them.
    #[arg(long = "bug", value_parser = parse_bug)]
    bugs: Vec<Bug>,
    /// No progress display.
    #[arg(long, short)]
    quiet: bool,
    /// Do not shrink failures (by default each failing scenario's first failing seed is
    /// shrunk to a minimal repro, `repro/<scenario>-seed<N>-min.toml`).
    #[arg(long)]
    no_shrink: bool,
}

#[derive(Debug, Args)]
pub(super) struct ReplayArgs {
    /// A repro file (a scenario with `seed = N`).
    file: PathBuf,
    /// Report directory.
    #[arg(long, default_value = "target/shipsim/replay")]
    out: PathBuf,
}

pub(super) fn run(args: RunArgs) -> Result<(), Failure> {
    let scenarios = load_scenarios(&args.paths)?;
    let seeds = args.seeds.or(args.seed.map(SeedRange::single));
    if args.jobs == Some(0) {
        return Err(anyhow::anyhow!("--jobs must be at least 1").into());
    }
    let options = SweepOptions {
        target: crate::reference::target(),
        replay: crate::many::sweep::Replay::Cli,
        seeds,
        jobs: args.jobs.unwrap_or_else(default_jobs),
        shard: args.shard,
        bugs: BugSet::of(args.bugs.iter().copied()),
        check_determinism: args.check_determinism,
        progress: if args.quiet {
            Progress::Quiet
        } else {
            Progress::Auto
        },
    };
    let label = seeds.map_or_else(|| "scenario defaults".to_string(), |s| s.to_string());
    if !args.quiet {
        announce_heavy(&scenarios);
    }
    sweep_and_report(&scenarios, &options, &label, &args.out, !args.no_shrink)
}

/// Says, before a sweep starts, what each heavy scenario will cost per seed.
pub(super) fn announce_heavy(scenarios: &[Scenario]) {
    for scenario in scenarios {
        let cost = scenario.cost();
        if cost.is_heavy() {
            eprintln!("note: {} is heavy: {}", scenario.name, cost.describe());
        }
    }
}

pub(super) fn sweep_and_report(
    scenarios: &[Scenario],
    options: &SweepOptions,
    label: &str,
    out: &Path,
    shrink: bool,
) -> Result<(), Failure> {
    let outcome = sweep::sweep(scenarios, options);
    let progress = options.progress != Progress::Quiet;
    let failing = triage::shrinkable(&outcome);
    if shrink && failing > 0 && progress {
        eprintln!("shrinking the first failure of {failing} scenario(s)...");
    }
    let triaged = triage::triage(&outcome, options, shrink, |scenario, wall_ms| {
        if progress {
            eprintln!("shrunk {scenario} in {wall_ms} ms");
        }
    });
    let (report, repros) = summary::build(&outcome, &triaged, options, label, out, peak_rss_mib());
    summary::write(out, &report, &repros)?;
    out!("{}", shipsim_reports::text::render(&report));
    outln!("report: {}", out.join("index.html").display());
    if report.totals.scenarios_failed > 0 {
        Err(Failure::Violations)
    } else {
        Ok(())
    }
}

pub(super) fn replay(args: &ReplayArgs) -> Result<(), Failure> {
    let scenario = Scenario::load(&args.file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(seed) = scenario.seed else {
        return Err(anyhow::anyhow!(
            "{}: not a repro file: it pins no `seed` (use `shipsim run` for scenarios)",
            args.file.display()
        )
        .into());
    };
    let options = SweepOptions {
        target: crate::reference::target(),
        replay: crate::many::sweep::Replay::Cli,
        seeds: Some(SeedRange::single(seed)),
        jobs: 1,
        shard: None,
        bugs: BugSet::none(),
        check_determinism: true,
        progress: Progress::Quiet,
    };
    let outcome = sweep::sweep(std::slice::from_ref(&scenario), &options);
    let replayed = outcome.scenarios[0].seeds[0].trace_hash;
    let exact = match scenario.trace_hash {
        Some(expected) if expected != replayed => {
            outln!(
                "DID NOT REPLAY: {} expects trace {expected:016x}, this build produced {replayed:016x}",
                args.file.display()
            );
            false
        }
        Some(expected) => {
            outln!("replayed exactly: trace {expected:016x}");
            true
        }
        None => {
            outln!(
                "replayed seed {seed}: trace {replayed:016x} (the file pins no trace_hash to compare)"
            );
            true
        }
    };
    let triaged = triage::triage(&outcome, &options, false, |_, _| {});
    let (report, repros) = summary::build(
        &outcome,
        &triaged,
        &options,
        &seed.to_string(),
        &args.out,
        peak_rss_mib(),
    );
    summary::write(&args.out, &report, &repros)?;
    out!("{}", shipsim_reports::text::render(&report));
    // Replay's exit code says whether the failure reproduced, whatever the file expects:
    // 1 when a violation was found (or the trace differs), 0 when the case no longer fails.
    let reproduced = report.scenarios.iter().any(|s| s.seeds_failed > 0);
    if !reproduced {
        outln!("no violation: this case no longer fails");
    }
    if !exact || reproduced {
        Err(Failure::Violations)
    } else {
        Ok(())
    }
}
