//! Runs the reference system over a scenario directory and seeds, and prints every
//! (scenario, seed, trace hash) as `.ci/trace-hashes` does, sorted.
//!
//! Usage: `shipsim-upstream-check SCENARIOS_DIR START..END OUT_DIR`

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, seeds, out] = args.as_slice() else {
        eprintln!("usage: shipsim-upstream-check SCENARIOS_DIR START..END OUT_DIR");
        return ExitCode::from(2);
    };
    let Some((start, end)) = seeds
        .split_once("..")
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
    else {
        eprintln!("bad seed range `{seeds}`: write START..END");
        return ExitCode::from(2);
    };
    let outcome = shipsim::reference::target()
        .scenarios(dir)
        .seeds(start..end)
        .no_shrink()
        .out_dir(out)
        .run();
    if let Some(problem) = outcome.problem() {
        eprintln!("{problem}");
        return ExitCode::from(2);
    }
    let report = outcome.report().expect("the run started");
    let mut rows = Vec::new();
    for scenario in &report.scenarios {
        for seed in &scenario.seeds {
            rows.push((scenario.name.as_str(), seed.seed, seed.trace_hash.as_str()));
        }
    }
    rows.sort();
    for (name, seed, hash) in rows {
        println!("{name}\t{seed}\t{hash}");
    }
    ExitCode::SUCCESS
}
