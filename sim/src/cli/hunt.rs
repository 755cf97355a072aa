//! `shipsim hunt`: every planted bug against the corpus, seeds to detect and a shrunk repro per bug.

use std::path::PathBuf;

use clap::Args;
use shipsim_system::bugs::Bug;

use crate::output::summary;
use crate::scenario::Scenario;

use super::*;

#[derive(Debug, Args)]
pub(super) struct HuntArgs {
    /// Scenario files or directories.
    #[arg(default_value = "scenarios")]
    paths: Vec<PathBuf>,
    /// Hunt only these bugs (repeatable); default: every planted bug.
    #[arg(long = "bug", value_parser = parse_bug)]
    bugs: Vec<Bug>,
    /// Give up on a bug after this many seeds.
    #[arg(long, default_value_t = 100)]
    seeds_max: u64,
    /// Skip shrinking.
    #[arg(long)]
    no_shrink: bool,
    /// Parallel workers (default: available cores).
    #[arg(long, short)]
    jobs: Option<usize>,
    /// Where the shrunk repro files go.
    #[arg(long, default_value = "target/shipsim/hunt")]
    out: PathBuf,
}

pub(super) fn hunt(args: &HuntArgs) -> Result<(), Failure> {
    let watch = crate::output::wall::Stopwatch::start();
    let scenarios = load_scenarios(&args.paths)?;
    let huntable = crate::many::hunt::huntable(&scenarios);
    if huntable.is_empty() {
        return Err(anyhow::anyhow!(
            "no scenario to hunt with (files pinning seeds or bugs are skipped)"
        )
        .into());
    }
    if args.seeds_max == 0 {
        return Err(anyhow::anyhow!("--seeds-max must be at least 1").into());
    }
    let bugs: Vec<Bug> = if args.bugs.is_empty() {
        Bug::ALL.to_vec()
    } else {
        args.bugs.clone()
    };
    let jobs = args.jobs.unwrap_or_else(default_jobs).max(1);
    let mut hunted: Vec<Option<Hunted>> = bugs.iter().map(|_| None).collect();
    crate::many::sweep::pool(
        &bugs,
        jobs,
        |&bug| hunt_one(bug, &huntable, args),
        |index, result| hunted[index] = Some(result),
    );
    let hunted: Vec<Hunted> = hunted
        .into_iter()
        .map(|h| h.expect("the pool runs every bug"))
        .collect();
    outln!(
        "{:<w$} {:>6}  {:<20} {:<20} {:>12}  {:>8}  repro",
        "bug",
        "seeds",
        "scenario",
        "caught by",
        "ops->shrunk",
        "shrink",
        w = bug_column()
    );
    for h in &hunted {
        outln!("{}", h.row(args.seeds_max));
    }
    let detections: Vec<_> = hunted.iter().map(|h| h.detection.clone()).collect();
    let repros: Vec<_> = hunted.into_iter().filter_map(|h| h.repro).collect();
    let report = summary::hunt(
        detections,
        &format!("1..{}", args.seeds_max),
        jobs,
        watch.elapsed_ns() / 1_000_000,
        peak_rss_mib(),
    );
    summary::write(&args.out, &report, &repros)?;
    outln!("report: {}", args.out.join("index.html").display());
    let missed: Vec<&str> = report
        .bugs
        .iter()
        .filter(|b| b.seeds_to_detect.is_none())
        .map(|b| b.bug.as_str())
        .collect();
    if missed.is_empty() {
        Ok(())
    } else {
        eprintln!(
            "{} planted bug(s) escaped: {}",
            missed.len(),
            missed.join(", ")
        );
        Err(Failure::Violations)
    }
}

/// The width of the tables' bug column: the longest planted bug's name, so that every
/// row's columns line up.
pub(super) fn bug_column() -> usize {
    Bug::ALL
        .iter()
        .map(|bug| bug.name().len())
        .max()
        .unwrap_or(0)
        .max("bug".len())
}

/// One bug's hunt: what goes into the report, its shrunk repro, and the shrink's wall time.
pub(super) struct Hunted {
    detection: shipsim_reports::model::BugDetection,
    repro: Option<summary::ReproFile>,
    shrink_ms: Option<u64>,
}

impl Hunted {
    fn row(&self, seeds_max: u64) -> String {
        let d = &self.detection;
        let Some(seeds) = d.seeds_to_detect else {
            return format!(
                "{:<w$} {:>6}  NOT CAUGHT within {seeds_max} seeds",
                d.bug,
                "-",
                w = bug_column()
            );
        };
        let ops = match (d.operations_before, d.operations_after) {
            (Some(before), Some(after)) => format!("{before}->{after}"),
            (Some(before), None) => before.to_string(),
            _ => "-".to_string(),
        };
        let shrink = self
            .shrink_ms
            .map_or_else(|| "-".to_string(), |ms| format!("{ms}ms"));
        format!(
            "{:<w$} {:>6}  {:<20} {:<20} {:>12}  {:>8}  {}",
            d.bug,
            seeds,
            d.scenario,
            d.caught_by.as_deref().unwrap_or("-"),
            ops,
            shrink,
            d.repro.as_deref().unwrap_or("-"),
            w = bug_column()
        )
    }
}

/// Hunts one bug: detection, then (unless `--no-shrink`) the smallest repro.
pub(super) fn hunt_one(bug: Bug, scenarios: &[&Scenario], args: &HuntArgs) -> Hunted {
    let target = crate::reference::target();
    let Some(detection) = crate::many::hunt::detect(&target, bug, scenarios, args.seeds_max) else {
        return Hunted {
            detection: shipsim_reports::model::BugDetection {
                bug: bug.name().to_string(),
                scenario: format!("any of {} scenarios", scenarios.len()),
                seeds_to_detect: None,
                seeds_run: args.seeds_max,
                ..shipsim_reports::model::BugDetection::default()
            },
            repro: None,
            shrink_ms: None,
        };
    };
    let mut found = shipsim_reports::model::BugDetection {
        bug: bug.name().to_string(),
        scenario: detection.scenario.clone(),
        seeds_to_detect: Some(detection.seeds_to_detect),
        seeds_run: detection.seeds_to_detect,
        caught_by: Some(detection.caught_by.name().to_string()),
        operations_before: Some(detection.run.history.operations().len() as u64),
        ..shipsim_reports::model::BugDetection::default()
    };
    if args.no_shrink {
        return Hunted {
            detection: found,
            repro: None,
            shrink_ms: None,
        };
    }
    let shrunk = crate::many::hunt::shrink_detection(&target, detection, scenarios);
    let relative_path = format!("repro/hunt-{}.toml", bug.name());
    let header = format!(
        "# shipsim hunt: planted bug `{}` caught by {}; shrunk from {} to {} operations in {} runs.\n# Replays exactly: shipsim replay <this file>\n\n",
        bug.name(),
        shrunk
            .run
            .violations
            .first()
            .map_or_else(|| "liveness".to_string(), ToString::to_string),
        shrunk.operations_before,
        shrunk.operations_after,
        shrunk.runs
    );
    found.operations_after = Some(shrunk.operations_after as u64);
    found.shrink_runs = Some(shrunk.runs as u64);
    found.repro = Some(relative_path.clone());
    Hunted {
        detection: found,
        repro: Some(summary::ReproFile {
            relative_path,
            contents: header + &shrunk.scenario.to_toml(),
        }),
        shrink_ms: Some(shrunk.wall_ms),
    }
}
