//! The kill test of mutation testing (`.ci/mutants`, cargo-mutants): a seeded sweep of the
//! scenario corpus and of swarm exploration against the reference system, judged by every
//! oracle. A mutant of `shipsim-system` (or of the simulated receiver) is caught when this
//! test fails.
//!
//! It is `#[ignore]`d in a plain `cargo test` (the corpus has its own per-file tests and
//! `it::explore` its own clean seeds); `.cargo/mutants.toml` runs it with `--ignored`.
//! It stops at the first failure, since one is enough to catch a mutant.
//!
//! Seeds: the first `SHIPSIM_MUTANTS_SEEDS` (default [`CORPUS_SEEDS`]) of each corpus
//! scenario's range, then exploration seeds `1..=SHIPSIM_MUTANTS_EXPLORE` (default
//! [`EXPLORE_SEEDS`]). Regressions under `scenarios/regressions/` are left out: they pin
//! planted bugs, and a mutant that happens to mask one is luck, not detection.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use shipsim::Scenario;
use shipsim::many::explore;
use shipsim_system::bugs::BugSet;

/// Seeds per corpus scenario.
const CORPUS_SEEDS: u64 = 3;

/// Exploration seeds after the corpus.
const EXPLORE_SEEDS: u64 = 60;

fn count(var: &str, default: u64) -> u64 {
    match std::env::var(var) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{var}={text:?}: not a count ({e})")),
        Err(_) => default,
    }
}

/// The corpus scenario files (not the regressions), in name order.
fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
#[ignore = "mutation testing's kill test: .ci/mutants runs it (cargo test -- --ignored)"]
fn corpus_and_exploration_hold() {
    let target = shipsim::reference::target();
    let seeds = count("SHIPSIM_MUTANTS_SEEDS", CORPUS_SEEDS);
    let files = corpus();
    assert!(files.len() > 10, "the corpus is there: {files:?}");
    for path in &files {
        let scenario = Scenario::load(path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            scenario.bugs.is_empty(),
            "{}: corpus files pin no bugs",
            path.display()
        );
        let first = scenario.seed.unwrap_or_else(|| scenario.seeds.start());
        let mut reached = BTreeSet::new();
        for seed in first..first + seeds {
            let run = shipsim::run_seed(&target, &scenario, seed, &scenario.bugs);
            reached.extend(run.reached.keys().copied());
            if let Some((goal, message)) = explore::goal_of(&run) {
                panic!(
                    "{} seed {seed}: {goal:?}: {message}\nreplay: shipsim run {} --seed {seed}",
                    path.display(),
                    path.display()
                );
            }
        }
        let missed: Vec<&str> = scenario
            .reach
            .iter()
            .filter(|m| !reached.contains(*m))
            .map(|m| m.name())
            .collect();
        assert!(
            missed.is_empty() || seeds == 0,
            "{}: required moments never reached in {seeds} seeds: {missed:?}",
            path.display()
        );
    }
    for seed in 1..=count("SHIPSIM_MUTANTS_EXPLORE", EXPLORE_SEEDS) {
        let explored = explore::explore_one(&target, seed, &BugSet::none());
        if let Some((goal, message)) = explore::goal_of(&explored.run) {
            panic!(
                "explore seed {seed}: {goal:?}: {message}\nreplay: shipsim explore --seeds {seed}..{}",
                seed + 1
            );
        }
    }
}
