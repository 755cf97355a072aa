//! `shipsim explore`: swarm exploration, and `explore --hunt`.

use std::path::PathBuf;

use clap::Args;
use shipsim_system::bugs::{Bug, BugSet};

use crate::output::summary;
use crate::scenario::SeedRange;

use super::*;

#[derive(Debug, Args)]
pub(super) struct ExploreArgs {
    /// Seeds to explore: each draws its own scenario (A..B, end exclusive, A..=B or N).
    #[arg(long, default_value = "1..201", value_parser = parse_seeds)]
    seeds: SeedRange,
    /// Switch on a planted bug (repeatable).
    #[arg(long = "bug", value_parser = parse_bug)]
    bugs: Vec<Bug>,
    /// For each planted bug (or each --bug), the first seed (1, 2, 3, ...) whose explored
    /// scenario catches it, up to --seeds-max: seeds to detect, shrunk repro per bug.
    #[arg(long)]
    hunt: bool,
    /// With --hunt: give up on a bug after this many seeds.
    #[arg(long, default_value_t = 1_000)]
    seeds_max: u64,
    /// Skip shrinking.
    #[arg(long)]
    no_shrink: bool,
    /// Failures shrunk (the first of each oracle, up to this many).
    #[arg(long, default_value_t = 3)]
    shrink_max: usize,
    /// Parallel workers (default: available cores).
    #[arg(long, short)]
    jobs: Option<usize>,
    /// Where the repro files (and the hunt's report) go.
    #[arg(long, default_value = "target/shipsim/explore")]
    out: PathBuf,
}

pub(super) fn explore(args: &ExploreArgs) -> Result<(), Failure> {
    if args.jobs == Some(0) {
        return Err(anyhow::anyhow!("--jobs must be at least 1").into());
    }
    let jobs = args.jobs.unwrap_or_else(default_jobs).max(1);
    if args.hunt {
        return explore_hunt(args, jobs);
    }
    let watch = crate::output::wall::Stopwatch::start();
    let target = crate::reference::target();
    let bugs = BugSet::of(args.bugs.iter().copied());
    let seeds: Vec<u64> = args.seeds.iter().collect();
    let (summaries, coverage) = crate::many::explore::sweep(&target, &seeds, &bugs, jobs);
    let wall_s = (watch.elapsed_ns() as f64 / 1e9).max(1e-9);
    let failed: Vec<&crate::many::explore::SeedSummary> =
        summaries.iter().filter(|s| s.failure.is_some()).collect();
    outln!(
        "explored {} seed(s) ({}) in {wall_s:.1} s: {:.1} seeds/s, {} failed",
        seeds.len(),
        args.seeds,
        seeds.len() as f64 / wall_s,
        failed.len()
    );
    print_coverage(&coverage);
    let repros = failure_repros(&target, &failed, &bugs, args);
    summary::write_repros(&args.out, &repros)?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Violations)
    }
}

/// What the explored seeds exercised: per fault kind the seeds that drew and fired it,
/// per dangerous moment how often and in how many seeds it was reached.
fn print_coverage(coverage: &crate::many::explore::Coverage) {
    outln!("\nfault kind            drawn  fired (seeds)");
    for (kind, (drawn, fired)) in &coverage.faults {
        outln!("  {kind:<20} {drawn:>5}  {fired:>5}");
    }
    outln!(
        "\nrules exercised: {} of {} dangerous moments reached",
        coverage.moments.len(),
        crate::reach::Moment::ALL.len()
    );
    for moment in crate::reach::Moment::ALL {
        let (times, in_seeds) = coverage.moments.get(moment).copied().unwrap_or((0, 0));
        outln!(
            "  {:<30} {times:>7} times in {in_seeds:>5} seed(s)",
            moment.name()
        );
    }
}

/// Per failed seed its repro file and, for the first `--shrink-max` distinct goals
/// (unless `--no-shrink`), a shrunk one.
fn failure_repros(
    target: &crate::Target,
    failed: &[&crate::many::explore::SeedSummary],
    bugs: &BugSet,
    args: &ExploreArgs,
) -> Vec<summary::ReproFile> {
    let mut repros = Vec::new();
    let mut shrunk_goals = Vec::new();
    for summary in failed {
        let (goal, message) = summary.failure.clone().expect("filtered on failures");
        outln!("FAILED seed {}: [{}] {message}", summary.seed, goal.name());
        let explored = crate::many::explore::explore_one(target, summary.seed, bugs);
        let mut pinned = explored.scenario.clone();
        pinned.bugs = bugs.clone();
        pinned.trace_hash = Some(explored.run.trace.hash());
        let path = format!("repro/explore-seed{}.toml", summary.seed);
        outln!("  repro: {}", args.out.join(&path).display());
        repros.push(summary::ReproFile {
            relative_path: path,
            contents: format!(
                "# shipsim explore seed {}: [{}] {message}\n# Replays exactly: shipsim replay <this file>\n\n{}",
                summary.seed,
                goal.name(),
                pinned.to_toml()
            ),
        });
        if args.no_shrink || shrunk_goals.contains(&goal) || shrunk_goals.len() >= args.shrink_max {
            continue;
        }
        shrunk_goals.push(goal);
        let shrunk = crate::many::explore::shrink(target, explored, bugs);
        let path = format!("repro/explore-seed{}-min.toml", summary.seed);
        outln!(
            "  shrunk to {} operations ({} -> {} faults) in {} runs: {}",
            shrunk.operations_after,
            pinned.faults.len(),
            shrunk.scenario.faults.len(),
            shrunk.runs,
            args.out.join(&path).display()
        );
        repros.push(summary::ReproFile {
            relative_path: path,
            contents: format!(
                "# shipsim explore seed {} shrunk from {} to {} operations: [{}]\n# Replays exactly: shipsim replay <this file>\n\n{}",
                summary.seed,
                shrunk.operations_before,
                shrunk.operations_after,
                goal.name(),
                shrunk.scenario.to_toml()
            ),
        });
    }
    repros
}

/// What `explore --hunt` found for one bug: the exploration seeds it took to detect it,
/// the failing seed, its goal, its operations and (unless `--no-shrink`) the shrunk case.
type ExploredHunt = (u64, u64, String, u64, Option<crate::many::shrink::Shrunk>);

/// `explore --hunt` for one bug: the first exploration seed that catches it, shrunk.
fn hunt_by_exploring(target: &crate::Target, bug: Bug, args: &ExploreArgs) -> Option<ExploredHunt> {
    let set = BugSet::of([bug]);
    let found = crate::many::explore::first_failure(target, &set, args.seeds_max);
    found.map(|(seeds, explored)| {
        let seed = explored.seed;
        let goal = crate::many::explore::goal_of(&explored.run)
            .map(|(g, _)| g.name().to_string())
            .unwrap_or_default();
        let before = explored.run.history.operations().len() as u64;
        let shrunk =
            (!args.no_shrink).then(|| crate::many::explore::shrink(target, explored, &set));
        (seeds, seed, goal, before, shrunk)
    })
}

/// `explore --hunt`: seeds to detect per planted bug under exploration.
pub(super) fn explore_hunt(args: &ExploreArgs, jobs: usize) -> Result<(), Failure> {
    let watch = crate::output::wall::Stopwatch::start();
    let bugs: Vec<Bug> = if args.bugs.is_empty() {
        Bug::ALL.to_vec()
    } else {
        args.bugs.clone()
    };
    let target = crate::reference::target();
    let mut results = Vec::with_capacity(bugs.len());
    crate::many::sweep::pool(
        &bugs,
        jobs,
        |&bug| (bug, hunt_by_exploring(&target, bug, args)),
        |index, (bug, hunted)| results.push((index, bug, hunted)),
    );
    results.sort_by_key(|(index, _, _)| *index);
    outln!(
        "{:<w$} {:>6}  {:<20} {:>12}  repro",
        "bug",
        "seeds",
        "caught by",
        "ops->shrunk",
        w = super::hunt::bug_column()
    );
    let mut detections = Vec::new();
    let mut repros = Vec::new();
    for (_, bug, hunted) in results {
        let mut detection = shipsim_reports::model::BugDetection {
            bug: bug.name().to_string(),
            scenario: "explore".to_string(),
            seeds_run: args.seeds_max,
            ..shipsim_reports::model::BugDetection::default()
        };
        match hunted {
            None => outln!(
                "{:<w$} {:>6}  NOT CAUGHT within {} seeds",
                bug.name(),
                "-",
                args.seeds_max,
                w = super::hunt::bug_column()
            ),
            Some((seeds, seed, goal, before, shrunk)) => {
                detection.scenario = format!("explore-{seed}");
                detection.seeds_to_detect = Some(seeds);
                detection.seeds_run = seeds;
                detection.caught_by = Some(goal.clone());
                detection.operations_before = Some(before);
                let mut ops = before.to_string();
                let mut repro = "-".to_string();
                if let Some(shrunk) = shrunk {
                    let path = format!("repro/explore-{}.toml", bug.name());
                    ops = format!("{before}->{}", shrunk.operations_after);
                    detection.operations_after = Some(shrunk.operations_after as u64);
                    detection.shrink_runs = Some(shrunk.runs as u64);
                    detection.repro = Some(path.clone());
                    repro.clone_from(&path);
                    repros.push(summary::ReproFile {
                        relative_path: path,
                        contents: format!(
                            "# shipsim explore --hunt: planted bug `{}` caught by {goal} at exploration seed {seed}; shrunk from {before} to {} operations in {} runs.\n# Replays exactly: shipsim replay <this file>\n\n{}",
                            bug.name(),
                            shrunk.operations_after,
                            shrunk.runs,
                            shrunk.scenario.to_toml()
                        ),
                    });
                }
                outln!(
                    "{:<w$} {seeds:>6}  {goal:<20} {ops:>12}  {repro}",
                    bug.name(),
                    w = super::hunt::bug_column()
                );
            }
        }
        detections.push(detection);
    }
    let caught: Vec<u64> = detections
        .iter()
        .filter_map(|d| d.seeds_to_detect)
        .collect();
    if !caught.is_empty() {
        let mut sorted = caught.clone();
        sorted.sort_unstable();
        outln!(
            "seeds to detect over {} caught bug(s): median {}, max {}",
            sorted.len(),
            sorted[(sorted.len() - 1) / 2],
            sorted[sorted.len() - 1]
        );
    }
    let report = summary::hunt(
        detections,
        &format!("explore 1..={}", args.seeds_max),
        jobs,
        watch.elapsed_ns() / 1_000_000,
        peak_rss_mib(),
    );
    summary::write(&args.out, &report, &repros)?;
    outln!("report: {}", args.out.join("index.html").display());
    if report.bugs_escaped() == 0 {
        Ok(())
    } else {
        Err(Failure::Violations)
    }
}
