//! Runs one entry of `benches/sim_throughput.rs` a given number of times, without criterion,
//! for instruction counts under callgrind (repeatable whatever the machine's load):
//!
//! ```sh
//! cargo build --release -p shipsim-benches --example sim_once
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p \
//!     target/release/examples/sim_once same_service 6
//! ```
//!
//! Every entry first makes the same setup (the harness runs the bare loops replay), so the
//! instructions of one iteration are `(count at N - count at 1) / (N - 1)`.

use shipsim_benches::bare::{
    Shape, bare_byo_loop, bare_loop, bare_service_loop, byo_scenario, requests,
};
use shipsim_system::bugs::BugSet;

const USAGE: &str = "usage: sim_once ENTRY ITERATIONS, ENTRY one of harness_clean, harness_faults, \
     same_requests, same_shape, same_service, byo_harness, byo_same_service";

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(entry), Some(Ok(iterations))) = (args.first(), args.get(1).map(|n| n.parse::<u32>()))
    else {
        eprintln!("{USAGE}");
        return std::process::ExitCode::from(2);
    };
    let reference = shipsim::reference::target();
    let faulty = shipsim_benches::scenario("walking_skeleton");
    let mut clean = faulty.clone();
    clean.faults.clear();
    let clean_run = shipsim::run_seed(&reference, &clean, 1, &BugSet::none());
    let byo = shipsim_benches::byo::target();
    let byo_clean = byo_scenario();
    let byo_run = shipsim::run_seed(&byo, &byo_clean, 1, &BugSet::none());
    let mut served = 0;
    for _ in 0..iterations {
        served += match entry.as_str() {
            "harness_clean" => requests(&shipsim::run_seed(&reference, &clean, 1, &BugSet::none())),
            "harness_faults" => {
                requests(&shipsim::run_seed(&reference, &faulty, 1, &BugSet::none()))
            }
            "same_requests" => {
                bare_loop(requests(&clean_run), Shape::minimal(&clean));
                requests(&clean_run)
            }
            "same_shape" => {
                bare_loop(requests(&clean_run), Shape::of_run(&clean, &clean_run));
                requests(&clean_run)
            }
            "same_service" => bare_service_loop(&clean, &clean_run).0,
            "byo_harness" => requests(&shipsim::run_seed(&byo, &byo_clean, 1, &BugSet::none())),
            "byo_same_service" => bare_byo_loop(&byo_clean, &byo_run).0,
            _ => {
                eprintln!("{USAGE}");
                return std::process::ExitCode::from(2);
            }
        };
    }
    println!("{entry}: {iterations} iterations, {served} requests served");
    std::process::ExitCode::SUCCESS
}
