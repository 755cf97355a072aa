//! The `shipsim` command line.
//!
//! Exit codes: 0 every oracle held, 1 a violation was found (report written) or, for
//! `compare`, a regression against the baseline, 2 bad input or usage (with a message
//! saying what and where).

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Writes to standard output, ignoring a closed pipe (`shipsim list | head` must not panic).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// [`out!`] with a newline.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod compare;
mod explore;
mod hunt;
mod inspect;
mod live_drive;
mod live_serve;
mod load;
mod parse;
mod promote;
mod run;

use compare::{CompareArgs, MergeArgs, compare, merge};
use explore::{ExploreArgs, explore};
use hunt::{HuntArgs, hunt};
use inspect::{CheckArgs, ListArgs, check, list};
use live_drive::{DemoArgs, LiveArgs, LiveReceiverArgs, demo, live, live_receiver};
use live_serve::{
    CarrierArgs, DownstreamArgs, ProxyArgs, ServeArgs, carrier, downstream, proxy, serve,
};
use load::{load_description, load_one, load_one_for};
pub use load::{load_scenarios, load_scenarios_for, scenario_files};
use parse::{
    parse_bug, parse_downstream_url, parse_host, parse_seed, parse_seeds, parse_threshold,
    parse_wait, parse_webhook_url,
};
use promote::{PromoteArgs, promote};
use run::{ReplayArgs, RunArgs, replay, run};

/// Deterministic simulation and chaos tests for HTTP integrations.
#[derive(Debug, Parser)]
#[command(
    name = "shipsim",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no subcommand: `shipsim run` with these arguments.
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run scenarios over seeds and write a report (the default).
    Run(RunArgs),
    /// Re-run one repro file exactly.
    Replay(ReplayArgs),
    /// Validate scenario files; run nothing.
    Check(CheckArgs),
    /// List scenarios, fault kinds, oracles and planted bugs.
    List(ListArgs),
    /// Run every planted bug against the corpus: seeds to detect, shrunk repro per bug.
    Hunt(HuntArgs),
    /// Swarm exploration: each seed draws its own scenario from the fault catalogue, runs it,
    /// and shrinks any failure to a repro file.
    Explore(ExploreArgs),
    /// Copy a repro file into the regression corpus (scenarios/regressions/).
    Promote(PromoteArgs),
    /// Compare a summary.json with a baseline: exit 1 on new violations or latency
    /// regressions beyond the threshold.
    Compare(CompareArgs),
    /// Merge the summary.json of every shard of a sweep into one report directory.
    Merge(MergeArgs),
    /// Live mode: run the reference service on real TCP with a SQLite store.
    Serve(ServeArgs),
    /// Live mode: run the carrier on real TCP.
    Carrier(CarrierArgs),
    /// Live mode: a simulated third party from a spec file, on real TCP, behind a fault
    /// layer a live run arms; its ledger of effects at GET /__shipsim/ledger.
    Downstream(DownstreamArgs),
    /// Live mode: a proxy injecting a scenario's HTTP faults on real connections.
    Proxy(ProxyArgs),
    /// Live mode: drive a scenario against a real URL and judge it with the oracles.
    Live(LiveArgs),
    /// Live mode in one command: carrier, service, two fault proxies and the driver.
    Demo(DemoArgs),
    /// Live mode for a webhook receiver in any language: send it each seed's plan
    /// (duplicates, reordering, forged, stale and tampered deliveries, bursts, retries) and
    /// judge it by the receiver verdicts.
    LiveReceiver(LiveReceiverArgs),
}

/// Why the command stopped.
enum Failure {
    /// Input or usage problem: exit 2.
    Input(anyhow::Error),
    /// Violations found: exit 1.
    Violations,
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Input(error)
    }
}

/// Runs the command line and returns the process exit code.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => run(cli.run),
        Some(Command::Run(args)) => run(args),
        Some(Command::Replay(args)) => replay(&args),
        Some(Command::Check(args)) => check(&args),
        Some(Command::List(args)) => list(&args),
        Some(Command::Hunt(args)) => hunt(&args),
        Some(Command::Explore(args)) => explore(&args),
        Some(Command::Promote(args)) => promote(&args),
        Some(Command::Compare(args)) => compare(&args),
        Some(Command::Merge(args)) => merge(&args),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Carrier(args)) => carrier(args),
        Some(Command::Downstream(args)) => downstream(args),
        Some(Command::Proxy(args)) => proxy(args),
        Some(Command::Live(args)) => live(args),
        Some(Command::Demo(args)) => demo(args),
        Some(Command::LiveReceiver(args)) => live_receiver(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Violations) => ExitCode::from(1),
        Err(Failure::Input(error)) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

pub(crate) fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::Input)
}

/// The process's peak memory for a report's wall-clock block (0 where the OS does not say).
fn peak_rss_mib() -> f64 {
    crate::output::wall::peak_rss_mib().unwrap_or(0.0)
}
