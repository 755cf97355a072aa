//! The `shipsim` command line.
//!
//! Exit codes: 0 every oracle held, 1 a violation was found (report written) or, for
//! `compare`, a regression against the baseline, 2 bad input or usage (with a message
//! saying what and where).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use shipsim_system::bugs::{Bug, BugSet};
use shipsim_system::carrier::TrackingConfig;
use shipsim_system::service::{WebhookSettings, WebhookTarget};
use shipsim_system::webhook::{SenderConfig, TOLERANCE_S_DEFAULT};

use crate::fault::CATALOGUE;
use crate::live::driver::{self, LiveOptions};
use crate::live::proxy::{ProxiedHost, Proxy};
use crate::live::serve::{CarrierOptions, ServiceOptions};
use crate::live::{self, demo, telemetry};
use crate::many::sweep::{self, Progress, Shard, SweepOptions};
use crate::many::triage;
use crate::oracle::OracleKind;
use crate::output::summary;
use crate::reference::deployment;
use crate::scenario::{Scenario, SeedRange, WebhookSettings as ScenarioWebhooks};

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

#[derive(Debug, Args)]
struct LiveReceiverArgs {
    /// The target description holding the `[receiver]` table (its signing secret comes
    /// from the environment variable or file that table names).
    description: PathBuf,
    /// The receiver's base URL (`http://127.0.0.1:8090`).
    #[arg(long)]
    target: String,
    /// Seeds: each draws its own plan, as the simulation does (A..B, end exclusive, A..=B
    /// or N).
    #[arg(long, default_value = "0..20", value_parser = parse_seeds)]
    seeds: SeedRange,
    /// Seeds run at once (each seed's events and resources are its own).
    #[arg(long, short, default_value_t = 8)]
    jobs: usize,
    /// Events in a burst, when a seed draws one.
    #[arg(long, default_value_t = 50)]
    burst_events: u32,
    /// Where summary.json, index.html and summary.md go.
    #[arg(long, default_value = "target/shipsim/live-receiver")]
    out: PathBuf,
    /// Seconds the receiver may take to start listening before the preflight judges it
    /// unreachable (a receiver started just before the run).
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_wait)]
    wait: Duration,
}

#[derive(Debug, Args)]
struct HuntArgs {
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

#[derive(Debug, Args)]
struct ExploreArgs {
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

#[derive(Debug, Args)]
struct PromoteArgs {
    /// A repro file (pins `seed`).
    file: PathBuf,
    /// Name of the regression scenario (default: from the repro).
    #[arg(long)]
    name: Option<String>,
    /// Regression directory.
    #[arg(long, default_value = "scenarios/regressions")]
    dir: PathBuf,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free one; the chosen URL is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// The SQLite database file (created if missing).
    #[arg(long)]
    db: PathBuf,
    /// The carrier's base URL (or a `shipsim proxy` in front of it). Without it, the
    /// carrier runs in this process, on a free loopback port, its ledger beside the
    /// database (x.sqlite -> x.carrier.sqlite).
    #[arg(long)]
    carrier_url: Option<String>,
    /// Merchants accepted with the demo keys: sk_sim_merchant_0 .. sk_sim_merchant_{N-1},
    /// as in the simulation (loopback only). SHIPSIM_MERCHANT_KEYS or --keys-file give real
    /// keys, and so the merchants.
    #[arg(long, default_value_t = 16)]
    callers: u32,
    /// The operator's key for the admin endpoints: GET /v1/admin/state (which live mode's
    /// oracles read) and the webhook outbox's. Prefer SHIPSIM_ADMIN_KEY or --keys-file: a
    /// flag is visible to every user of the machine in the process list.
    #[arg(long)]
    admin_key: Option<String>,
    /// Credentials from this TOML file instead of the environment: admin_key,
    /// carrier_webhook_secret, and one [[merchant]] per merchant with api_keys (two during a
    /// rotation) and webhook_secrets (two during a rotation). Without it, and without the
    /// SHIPSIM_* variables, the demo credentials apply, which only a loopback address takes.
    #[arg(long)]
    keys_file: Option<PathBuf>,
    /// Take the [service] settings (rate limit, carrier policy, lease) from this scenario,
    /// and the webhook tolerance and sender settings from its [webhooks] table if it has one.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Send merchant CALLER's webhooks to URL (repeatable), e.g.
    /// `merchant-0=http://127.0.0.1:9000/hooks`. Without it, no webhooks are sent.
    #[arg(long = "webhook-url", value_name = "CALLER=URL", value_parser = parse_webhook_url)]
    webhook_urls: Vec<(String, String)>,
    /// Secret the merchants' webhooks are signed with (default: SHIPSIM_WEBHOOK_SECRETS or
    /// the keys file, else each merchant's simulation secret, `whsec_sim_<caller>`).
    #[arg(long)]
    webhook_secret: Option<String>,
    /// Secret the carrier signs its tracking events with (`shipsim carrier --tracking-secret`;
    /// default: SHIPSIM_CARRIER_WEBHOOK_SECRET or the keys file, else the demo's
    /// `whsec_sim_carrier`).
    #[arg(long)]
    carrier_webhook_secret: Option<String>,
    /// How long a completed idempotency key is remembered, seconds; after that the key is
    /// forgotten (a request with it executes as new) and a sweeper deletes its record.
    #[arg(long, default_value_t = shipsim_system::service::IDEMPOTENCY_RETENTION_MS_DEFAULT / 1_000, value_parser = clap::value_parser!(u64).range(1..))]
    idempotency_retention_s: u64,
    /// Switch on a planted service bug (repeatable).
    #[arg(long = "bug", value_parser = parse_bug)]
    bugs: Vec<Bug>,
    /// Seed of the service's ids, for a reproducible demo: every process given the same
    /// seed issues the same ids. Default: ids from the OS's entropy, unguessable and unique.
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Debug, Args)]
struct CarrierArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: String,
    /// SQLite file for the ledger; without it the ledger is in memory, lost on restart.
    #[arg(long)]
    db: Option<PathBuf>,
    /// The operator's key for GET /v1/admin/labels and the tracking admin endpoints.
    #[arg(long)]
    admin_key: Option<String>,
    /// Send tracking events to the service's webhook endpoint at this URL
    /// (`http://HOST:PORT/v1/webhooks/carrier`). Without it, the carrier sends none.
    #[arg(long)]
    tracking_url: Option<String>,
    /// Secret tracking events are signed with (`shipsim serve --carrier-webhook-secret`).
    #[arg(long, default_value = deployment::CARRIER_WEBHOOK_SECRET)]
    tracking_secret: String,
    /// Chance, in percent, that a parcel's story ends in an exception instead of delivery.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=100))]
    exception_percent: u32,
    /// Seed of the carrier's ids, for a reproducible demo. Default: from the OS's entropy.
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Debug, Args)]
struct DownstreamArgs {
    /// The downstream's spec: a TOML file (see examples/README.md).
    #[arg(long)]
    spec: PathBuf,
    /// Address to listen on (port 0 picks a free one; the chosen URL is printed).
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: String,
    /// Seed of the downstream's ids.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Debug, Args)]
struct ProxyArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
    /// Where to forward (the service's or a downstream's base URL).
    #[arg(long)]
    upstream: String,
    /// Which host's faults to apply: `service`, or a downstream's name (`carrier`).
    #[arg(long, default_value = "service", value_parser = parse_host)]
    host: ProxiedHost,
    /// The target's description, for a scenario written for a described target.
    #[arg(long)]
    api: Option<PathBuf>,
    /// The scenario whose HTTP faults to apply.
    scenario: PathBuf,
    /// Seed of the fault decisions (default: the scenario's first seed).
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Debug, Args)]
struct LiveArgs {
    /// The service's base URL (or a `shipsim proxy` in front of it).
    #[arg(long)]
    target: String,
    /// The target's description (any service, any language): how to drive its API, where
    /// its credentials come from, which downstreams it calls. Without it: the reference
    /// service.
    #[arg(long, conflicts_with_all = ["carrier_url", "admin_key", "carrier_admin_key", "api_keys", "keys_file"])]
    api: Option<PathBuf>,
    /// Where a downstream of the description is served (repeatable), over its `url`.
    #[arg(long = "downstream", value_name = "NAME=URL", value_parser = parse_downstream_url, requires = "api")]
    downstreams: Vec<(String, String)>,
    /// The carrier's base URL (or its proxy), to audit the labels it sold.
    #[arg(long)]
    carrier_url: Option<String>,
    /// Start a fault proxy in front of --target in this process.
    #[arg(long)]
    proxy: bool,
    /// The scenario to drive.
    scenario: PathBuf,
    /// Seed of the workload (default: the scenario's first seed).
    #[arg(long)]
    seed: Option<u64>,
    /// The service's admin key: judge the whole store. Without it, public reads only.
    #[arg(long)]
    admin_key: Option<String>,
    /// The carrier's admin key (default: the service's).
    #[arg(long)]
    carrier_admin_key: Option<String>,
    /// Switch on a planted client bug (repeatable).
    #[arg(long = "bug", value_parser = parse_bug)]
    bugs: Vec<Bug>,
    /// The target's API key of the next merchant (repeat: merchant-0, merchant-1, ...).
    /// Prefer SHIPSIM_MERCHANT_KEYS or --keys-file (a flag is visible in the process list).
    /// Default: the simulation's keys, which `shipsim serve` accepts on loopback.
    #[arg(long = "api-key")]
    api_keys: Vec<String>,
    /// The merchants' keys and the admin key from this TOML file (`shipsim serve
    /// --keys-file`'s format; each merchant's first key is used) instead of the environment
    /// (SHIPSIM_MERCHANT_KEYS, SHIPSIM_ADMIN_KEY).
    #[arg(long)]
    keys_file: Option<PathBuf>,
    /// Seconds the target and the downstreams may take to start listening before the
    /// preflight judges them unreachable (a service started just before the run).
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_wait)]
    wait: Duration,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// The scenario to drive (HTTP faults apply; others are listed as not applied).
    #[arg(default_value = "scenarios/live_http_faults.toml")]
    scenario: PathBuf,
    /// Seed of the workload and the proxies (default: the scenario's first seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Switch on a planted service bug (repeatable), to watch live mode catch it.
    #[arg(long = "bug", value_parser = parse_bug)]
    bugs: Vec<Bug>,
    /// Where databases and logs go (default: a fresh directory under the temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// `CALLER=URL`, as `shipsim serve --webhook-url` takes it.
fn parse_webhook_url(text: &str) -> Result<(String, String), String> {
    let Some((caller, url)) = text.split_once('=') else {
        return Err(format!(
            "`{text}` is not CALLER=URL (e.g. merchant-0=http://127.0.0.1:9000/hooks)"
        ));
    };
    if caller.is_empty() {
        return Err(format!("`{text}`: the caller is empty"));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("`{url}` is not an http:// or https:// URL"));
    }
    Ok((caller.to_string(), url.to_string()))
}

fn parse_host(text: &str) -> Result<ProxiedHost, String> {
    let valid = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with("client");
    if valid {
        Ok(ProxiedHost::named(text))
    } else {
        Err(format!(
            "`{text}` is not a server host: `service`, or a downstream's name such as `carrier`"
        ))
    }
}

/// `NAME=URL`, as `shipsim live --downstream` takes it.
/// `--wait SECONDS`: a whole or decimal number of seconds, at most an hour.
fn parse_wait(text: &str) -> Result<Duration, String> {
    const WAIT_SECS_MAX: f64 = 3600.0;
    match text.parse::<f64>() {
        Ok(secs) if (0.0..=WAIT_SECS_MAX).contains(&secs) => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!(
            "`{text}` is not a number of seconds from 0 to {WAIT_SECS_MAX}"
        )),
    }
}

fn parse_downstream_url(text: &str) -> Result<(String, String), String> {
    let Some((name, url)) = text.split_once('=') else {
        return Err(format!(
            "`{text}` is not NAME=URL (e.g. carrier=http://127.0.0.1:9100)"
        ));
    };
    if name.is_empty() {
        return Err(format!("`{text}`: the downstream's name is empty"));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("`{url}` is not an http:// or https:// URL"));
    }
    Ok((name.to_string(), url.to_string()))
}

#[derive(Debug, Args, Clone)]
struct RunArgs {
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
struct ReplayArgs {
    /// A repro file (a scenario with `seed = N`).
    file: PathBuf,
    /// Report directory.
    #[arg(long, default_value = "target/shipsim/replay")]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// Scenario files or directories.
    #[arg(required_unless_present = "api")]
    paths: Vec<PathBuf>,
    /// A target description: check it (and the downstream specs it names), and the
    /// scenarios against it.
    #[arg(long)]
    api: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[group(multiple = false)]
struct ListArgs {
    /// Scenario names only, one per line.
    #[arg(long)]
    scenarios: bool,
    /// Fault kinds only, one per line.
    #[arg(long)]
    faults: bool,
    /// Oracles only, one per line.
    #[arg(long)]
    oracles: bool,
    /// Planted bugs only, one per line.
    #[arg(long)]
    bugs: bool,
    /// Dangerous moments (for `reach = [...]`) only, one per line.
    #[arg(long)]
    moments: bool,
    /// Where scenarios live.
    #[arg(long, default_value = "scenarios")]
    dir: PathBuf,
}

#[derive(Debug, Args)]
struct CompareArgs {
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
struct MergeArgs {
    /// Report directory to write the merged report to.
    out: PathBuf,
    /// The summary.json of each shard (`shipsim run --shard I/N --out DIR`).
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// No summary table on stdout.
    #[arg(long, short)]
    quiet: bool,
}

fn parse_threshold(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{text}` is not a percentage"))?;
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(format!("`{text}`: the threshold must be a percentage >= 0"))
    }
}

fn parse_seeds(text: &str) -> Result<SeedRange, String> {
    SeedRange::parse(text)
}

/// `--seed N`: one seed, as `--seeds N` reads it (so `u64::MAX`, which has no one-seed
/// range, is refused here rather than crashing the sweep).
fn parse_seed(text: &str) -> Result<u64, String> {
    if text.contains("..") {
        return Err(format!(
            "`{text}`: --seed takes one seed (--seeds takes a range)"
        ));
    }
    SeedRange::parse(text).map(|range| range.start())
}

fn parse_bug(text: &str) -> Result<Bug, String> {
    text.parse::<Bug>().map_err(|e| e.to_string())
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

fn collect_toml(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
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

pub(crate) fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

fn run(args: RunArgs) -> Result<(), Failure> {
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

fn sweep_and_report(
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

fn replay(args: &ReplayArgs) -> Result<(), Failure> {
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

fn hunt(args: &HuntArgs) -> Result<(), Failure> {
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
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(bugs.len()) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&bug) = bugs.get(index) else { break };
                    let hunted = hunt_one(bug, &huntable, args);
                    results.lock().expect("results lock").push((index, hunted));
                }
            });
        }
    });
    let mut hunted = results.into_inner().expect("results lock");
    hunted.sort_by_key(|(index, _)| *index);
    let hunted: Vec<Hunted> = hunted.into_iter().map(|(_, h)| h).collect();
    outln!(
        "{:<28} {:>6}  {:<20} {:<20} {:>12}  {:>8}  repro",
        "bug",
        "seeds",
        "scenario",
        "caught by",
        "ops->shrunk",
        "shrink"
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

fn explore(args: &ExploreArgs) -> Result<(), Failure> {
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
    let mut repros = Vec::new();
    let mut shrunk_goals = Vec::new();
    for summary in &failed {
        let (goal, message) = summary.failure.clone().expect("filtered on failures");
        outln!("FAILED seed {}: [{}] {message}", summary.seed, goal.name());
        let explored = crate::many::explore::explore_one(&target, summary.seed, &bugs);
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
        let shrunk = crate::many::explore::shrink(&target, explored, &bugs);
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
    summary::write_repros(&args.out, &repros)?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Violations)
    }
}

/// `explore --hunt`: seeds to detect per planted bug under exploration.
fn explore_hunt(args: &ExploreArgs, jobs: usize) -> Result<(), Failure> {
    let watch = crate::output::wall::Stopwatch::start();
    let bugs: Vec<Bug> = if args.bugs.is_empty() {
        Bug::ALL.to_vec()
    } else {
        args.bugs.clone()
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(bugs.len()) {
            scope.spawn(|| {
                let target = crate::reference::target();
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&bug) = bugs.get(index) else { break };
                    let set = BugSet::of([bug]);
                    let found = crate::many::explore::first_failure(&target, &set, args.seeds_max);
                    let hunted = found.map(|(seeds, explored)| {
                        let seed = explored.seed;
                        let goal = crate::many::explore::goal_of(&explored.run)
                            .map(|(g, _)| g.name().to_string())
                            .unwrap_or_default();
                        let before = explored.run.history.operations().len() as u64;
                        let shrunk = (!args.no_shrink)
                            .then(|| crate::many::explore::shrink(&target, explored, &set));
                        (seeds, seed, goal, before, shrunk)
                    });
                    results
                        .lock()
                        .expect("results lock")
                        .push((index, bug, hunted));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("results lock");
    results.sort_by_key(|(index, _, _)| *index);
    outln!(
        "{:<28} {:>6}  {:<20} {:>12}  repro",
        "bug",
        "seeds",
        "caught by",
        "ops->shrunk"
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
                "{:<28} {:>6}  NOT CAUGHT within {} seeds",
                bug.name(),
                "-",
                args.seeds_max
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
                    "{:<28} {seeds:>6}  {goal:<20} {ops:>12}  {repro}",
                    bug.name()
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

/// One bug's hunt: what goes into the report, its shrunk repro, and the shrink's wall time.
struct Hunted {
    detection: shipsim_reports::model::BugDetection,
    repro: Option<summary::ReproFile>,
    shrink_ms: Option<u64>,
}

impl Hunted {
    fn row(&self, seeds_max: u64) -> String {
        let d = &self.detection;
        let Some(seeds) = d.seeds_to_detect else {
            return format!(
                "{:<28} {:>6}  NOT CAUGHT within {seeds_max} seeds",
                d.bug, "-"
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
            "{:<28} {:>6}  {:<20} {:<20} {:>12}  {:>8}  {}",
            d.bug,
            seeds,
            d.scenario,
            d.caught_by.as_deref().unwrap_or("-"),
            ops,
            shrink,
            d.repro.as_deref().unwrap_or("-")
        )
    }
}

/// Hunts one bug: detection, then (unless `--no-shrink`) the smallest repro.
fn hunt_one(bug: Bug, scenarios: &[&Scenario], args: &HuntArgs) -> Hunted {
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

fn promote(args: &PromoteArgs) -> Result<(), Failure> {
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

fn compare(args: &CompareArgs) -> Result<(), Failure> {
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

fn merge(args: &MergeArgs) -> Result<(), Failure> {
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

fn check(args: &CheckArgs) -> Result<(), Failure> {
    let topology = match &args.api {
        None => crate::scenario::Topology::reference(),
        Some(path) => {
            let description = load_description(path)?;
            let samples = description
                .samples(0)
                .map_err(|problem| anyhow::anyhow!("{}: {problem}", path.display()))?;
            if description.kinds().is_empty() {
                outln!(
                    "ok  {}  ({}: a webhook receiver only)",
                    description.name,
                    path.display()
                );
            } else {
                outln!(
                    "ok  {}  ({}: {} kind(s), {} downstream(s); operations {})",
                    description.name,
                    path.display(),
                    description.kinds().len(),
                    description.downstreams.len(),
                    description.topology().operations.join(", ")
                );
            }
            for sample in samples {
                outln!("    {sample}");
            }
            if let Some(receiver) = &description.receiver {
                outln!(
                    "    receiver: events {}, signed {}, read back {} (sequence {}, applied {}); test it with `shipsim live-receiver`",
                    receiver.events.label(),
                    receiver.scheme,
                    receiver.read_back.label(),
                    receiver.sequence,
                    receiver.applied
                );
            }
            description.topology()
        }
    };
    let scenarios = if args.paths.is_empty() {
        Vec::new()
    } else {
        load_scenarios_for(&args.paths, &topology)?
    };
    for scenario in &scenarios {
        outln!(
            "ok  {}  ({}: {} fault(s), {} client(s), seeds {})",
            scenario.name,
            scenario.path,
            scenario.faults.len(),
            scenario.hosts.clients,
            scenario.seeds
        );
        let cost = scenario.cost();
        if cost.is_heavy() {
            outln!("    heavy: {}", cost.describe());
        }
    }
    Ok(())
}

/// Says, before a sweep starts, what each heavy scenario will cost per seed.
fn announce_heavy(scenarios: &[Scenario]) {
    for scenario in scenarios {
        let cost = scenario.cost();
        if cost.is_heavy() {
            eprintln!("note: {} is heavy: {}", scenario.name, cost.describe());
        }
    }
}

fn list(args: &ListArgs) -> Result<(), Failure> {
    if args.faults {
        CATALOGUE.iter().for_each(|k| outln!("{}", k.name));
        return Ok(());
    }
    if args.oracles {
        OracleKind::ALL.iter().for_each(|o| outln!("{}", o.name()));
        return Ok(());
    }
    if args.bugs {
        Bug::ALL.iter().for_each(|b| outln!("{}", b.name()));
        return Ok(());
    }
    if args.moments {
        crate::reach::Moment::ALL
            .iter()
            .for_each(|m| outln!("{}", m.name()));
        return Ok(());
    }
    let scenarios = load_scenarios(std::slice::from_ref(&args.dir))?;
    if args.scenarios {
        scenarios.iter().for_each(|s| outln!("{}", s.name));
        return Ok(());
    }
    outln!("Scenarios ({}):", args.dir.display());
    for scenario in &scenarios {
        outln!("  {:<28} {}", scenario.name, scenario.description);
    }
    outln!("\nFault kinds (every kind also takes start_ms, end_ms | duration_ms, stream):");
    for param in crate::fault::WINDOW_PARAMS {
        if let Some(limit) = &param.limit {
            outln!("      {}: {}; {limit}", param.name, param.doc);
        }
    }
    for kind in CATALOGUE {
        outln!("  {:<20} [{}] {}", kind.name, kind.family, kind.summary);
        for param in kind.params {
            let required = if param.required { " (required)" } else { "" };
            match &param.limit {
                Some(limit) => outln!("      {}{required}: {}; {limit}", param.name, param.doc),
                None => outln!("      {}{required}: {}", param.name, param.doc),
            }
        }
    }
    outln!("\nOracles:");
    for oracle in OracleKind::ALL {
        outln!("  {:<20} {}", oracle.name(), oracle.describe());
    }
    outln!(
        "\nDangerous moments (counted in every report; a scenario requires some with reach = [...]):"
    );
    for moment in crate::reach::Moment::ALL {
        outln!("  {:<30} {}", moment.name(), moment.describe());
    }
    outln!("\nPlanted bugs (--bug NAME):");
    for bug in Bug::ALL {
        outln!("  {:<28} {}", bug.name(), bug.describe());
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::Input)
}

fn load_one(path: &Path) -> Result<Scenario, Failure> {
    Scenario::load(path).map_err(|e| Failure::Input(anyhow::anyhow!("{e}")))
}

fn serve(args: ServeArgs) -> Result<(), Failure> {
    telemetry::init_json_logs();
    let scenario = match &args.scenario {
        Some(path) => load_one(path)?,
        None => Scenario::parse("<defaults>", "defaults", "").expect("the empty scenario is valid"),
    };
    let credentials = serve_credentials(&args)?;
    let demo = credentials.demo_in_use(!args.webhook_urls.is_empty());
    live::credentials::refuse_demo_off_loopback(&args.listen, &demo)
        .map_err(|e| Failure::Input(anyhow::anyhow!("{e}")))?;
    let webhooks = service_webhooks(&args, scenario.webhooks, &credentials)?;
    let db = args.db.clone();
    let callers = credentials
        .merchant_keys
        .as_ref()
        .map_or(args.callers, |keys| {
            u32::try_from(keys.len()).unwrap_or(u32::MAX)
        });
    let options = ServiceOptions {
        listen: args.listen,
        db: args.db,
        carrier_url: args.carrier_url,
        callers,
        merchant_keys: credentials.merchant_keys,
        admin_key: credentials.admin_key,
        settings: scenario.service,
        webhooks,
        idempotency_retention_ms: args.idempotency_retention_s.saturating_mul(1_000),
        bugs: BugSet::of(args.bugs),
        seed: args.seed,
    };
    runtime()?
        .block_on(live::serve::run_service(options))
        .with_context(|| format!("shipsim serve (database {})", db.display()))?;
    Ok(())
}

/// `shipsim serve`'s credentials: the keys file or the environment, with the flags that
/// predate them (`--admin-key`, `--webhook-secret`, `--carrier-webhook-secret`) filling what
/// those do not give; a credential given both ways is refused.
fn serve_credentials(args: &ServeArgs) -> Result<live::credentials::Credentials, Failure> {
    let input = |e: String| Failure::Input(anyhow::anyhow!("{e}"));
    let mut credentials =
        live::credentials::Credentials::load(args.keys_file.as_deref(), &|name| {
            std::env::var(name).ok()
        })
        .map_err(input)?;
    let twice = |flag: &str, source: &str| {
        input(format!(
            "{flag} and the {source} both give it: give each credential once"
        ))
    };
    if let Some(key) = &args.admin_key {
        if credentials.admin_key.is_some() {
            return Err(twice("--admin-key", &credentials.source));
        }
        credentials.admin_key = Some(key.clone());
    }
    if let Some(secret) = &args.carrier_webhook_secret {
        if credentials.carrier_webhook_secret.is_some() {
            return Err(twice("--carrier-webhook-secret", &credentials.source));
        }
        credentials.carrier_webhook_secret = Some(secret.clone());
    }
    if let Some(secret) = &args.webhook_secret {
        if credentials.webhook_secrets.is_some() {
            return Err(twice("--webhook-secret", &credentials.source));
        }
        let one = live::credentials::Rotation {
            current: secret.clone(),
            previous: None,
        };
        credentials.webhook_secrets = Some(vec![one; 1]);
    }
    Ok(credentials)
}

/// The service's webhook settings from `shipsim serve`'s credentials and flags, tolerance
/// and sender from the scenario's `[webhooks]` table when it has one. A merchant's secret
/// comes from the credentials' entry of its index (`merchant-3`: the fourth), or, for
/// `--webhook-secret`, the one secret for all; the demo secret otherwise.
fn service_webhooks(
    args: &ServeArgs,
    scenario: Option<ScenarioWebhooks>,
    credentials: &live::credentials::Credentials,
) -> Result<WebhookSettings, Failure> {
    let mut targets = std::collections::BTreeMap::new();
    for (caller, url) in &args.webhook_urls {
        let (secret, previous_secret) = match &credentials.webhook_secrets {
            None => (deployment::merchant_secret(caller), None),
            Some(all) if args.webhook_secret.is_some() => (all[0].current.clone(), None),
            Some(all) => {
                let rotation = caller
                    .strip_prefix("merchant-")
                    .and_then(|n| n.parse::<usize>().ok())
                    .and_then(|n| all.get(n))
                    .ok_or_else(|| {
                        Failure::Input(anyhow::anyhow!(
                            "--webhook-url {caller}=...: the {} holds webhook secrets for merchant-0 .. merchant-{}, not for {caller}",
                            credentials.source,
                            all.len().saturating_sub(1)
                        ))
                    })?;
                (rotation.current.clone(), rotation.previous.clone())
            }
        };
        let target = WebhookTarget {
            url: url.clone(),
            secret,
            previous_secret,
        };
        targets.insert(caller.clone(), target);
    }
    Ok(WebhookSettings {
        carrier_secret: credentials
            .carrier_webhook_secret
            .clone()
            .unwrap_or_else(|| deployment::CARRIER_WEBHOOK_SECRET.to_string()),
        tolerance_s: scenario.map_or(TOLERANCE_S_DEFAULT, |w| w.tolerance_s),
        targets,
        // A scenario's [webhooks] table brings the simulation's compressed schedule; without
        // one, a live service retries for hours (SenderConfig::LIVE).
        sender: scenario.map_or(SenderConfig::LIVE, |w| w.sender),
    })
}

fn carrier(args: CarrierArgs) -> Result<(), Failure> {
    telemetry::init_json_logs();
    let tracking = args.tracking_url.map(|url| TrackingConfig {
        webhook_url: url,
        secret: args.tracking_secret,
        exception_percent: args.exception_percent,
        sender: SenderConfig::LIVE,
    });
    let options = CarrierOptions {
        listen: args.listen,
        db: args.db,
        admin_key: args.admin_key,
        tracking,
        seed: args.seed,
    };
    runtime()?
        .block_on(live::serve::run_carrier(options))
        .context("shipsim carrier")?;
    Ok(())
}

fn proxy(args: ProxyArgs) -> Result<(), Failure> {
    telemetry::init_json_logs();
    let scenario = match &args.api {
        None => load_one(&args.scenario)?,
        Some(path) => load_one_for(&args.scenario, &load_description(path)?.topology())?,
    };
    let seed = args.seed.unwrap_or_else(|| scenario.seeds.start());
    runtime()?
        .block_on(async {
            let proxy = Proxy::new(args.host.clone(), &args.upstream, &scenario.faults, seed)?;
            let (listener, address) = live::bind(&args.listen).await?;
            let shutdown = live::shutdown_signal();
            let info = proxy.info();
            tracing::info!(
                %address,
                upstream = %info.upstream,
                host = args.host.name(),
                seed,
                rules = info.rules.len(),
                "proxy listening"
            );
            live::announce(address);
            proxy.serve(listener, shutdown).await
        })
        .with_context(|| format!("shipsim proxy -> {}", args.upstream))?;
    Ok(())
}

/// Reads a target description and its secrets.
fn load_description(path: &Path) -> Result<crate::described::Description, Failure> {
    crate::described::Description::load(path).map_err(|e| Failure::Input(anyhow::anyhow!("{e}")))
}

fn load_one_for(path: &Path, topology: &crate::scenario::Topology) -> Result<Scenario, Failure> {
    Scenario::load_for(path, topology).map_err(|e| Failure::Input(anyhow::anyhow!("{e}")))
}

fn downstream(args: DownstreamArgs) -> Result<(), Failure> {
    telemetry::init_json_logs();
    let spec = crate::described::load_spec(&args.spec)
        .map_err(|e| Failure::Input(anyhow::anyhow!("{e}")))?;
    let options = live::downstream::DownstreamOptions {
        spec,
        spec_file: args.spec.display().to_string(),
        listen: args.listen,
        seed: args.seed,
    };
    runtime()?
        .block_on(live::downstream::run(options))
        .with_context(|| format!("shipsim downstream --spec {}", args.spec.display()))?;
    Ok(())
}

/// `shipsim live`'s merchant keys (each merchant's current one) and admin key: the flags,
/// or the keys file or the environment; a credential given both ways is refused.
fn live_credentials(
    keys_file: Option<&Path>,
    api_keys: Vec<String>,
    admin_key: Option<String>,
) -> Result<(Vec<String>, Option<String>), Failure> {
    let input = |e: String| Failure::Input(anyhow::anyhow!("{e}"));
    let credentials =
        live::credentials::Credentials::load(keys_file, &|name| std::env::var(name).ok())
            .map_err(input)?;
    let keys = match (api_keys.is_empty(), credentials.merchant_keys) {
        (false, Some(_)) => {
            return Err(input(format!(
                "--api-key and the {} both give merchant keys: give them once",
                credentials.source
            )));
        }
        (false, None) => api_keys,
        (true, Some(rotations)) => rotations.into_iter().map(|r| r.current).collect(),
        (true, None) => Vec::new(),
    };
    let admin = match (admin_key, credentials.admin_key) {
        (Some(_), Some(_)) => {
            return Err(input(format!(
                "--admin-key and the {} both give the admin key: give it once",
                credentials.source
            )));
        }
        (flag, from_source) => flag.or(from_source),
    };
    Ok((keys, admin))
}

fn live(args: LiveArgs) -> Result<(), Failure> {
    let (scenario, described) = match &args.api {
        None => (load_one(&args.scenario)?, None),
        Some(path) => {
            let description = load_description(path)?;
            if description.kinds().is_empty() {
                return Err(anyhow::anyhow!(
                        "{} describes no `[[kind]]`, only a webhook receiver: test it with `shipsim live-receiver {} --target URL`",
                        path.display(),
                        path.display()
                    )
                    .into());
            }
            for (name, _) in &args.downstreams {
                if !description.downstreams.iter().any(|d| d.name == *name) {
                    let known: Vec<&str> = description
                        .downstreams
                        .iter()
                        .map(|d| d.name.as_str())
                        .collect();
                    return Err(anyhow::anyhow!(
                        "--downstream {name}=...: {} names no downstream `{name}` (it names: {})",
                        path.display(),
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    )
                    .into());
                }
            }
            let scenario = load_one_for(&args.scenario, &description.topology())?;
            (
                scenario,
                Some(crate::described::DescribedApi::new(description)),
            )
        }
    };
    let seed = args.seed.unwrap_or_else(|| scenario.seeds.start());
    let (api_keys, admin_key) = if described.is_some() {
        // A described target names its own secrets' source.
        (args.api_keys, args.admin_key)
    } else {
        live_credentials(args.keys_file.as_deref(), args.api_keys, args.admin_key)?
    };
    let options = LiveOptions {
        scenario: scenario.clone(),
        target: args.target.clone(),
        carrier_url: args.carrier_url,
        proxy: args.proxy,
        seed,
        admin_key,
        carrier_admin_key: args.carrier_admin_key,
        bugs: BugSet::of(args.bugs),
        api_keys,
        described,
        downstream_urls: args.downstreams,
        run_id: LiveOptions::fresh_run_id(),
        start_wait: args.wait,
    };
    let run = runtime()?
        .block_on(driver::run(options))
        .context("shipsim live")?;
    print!("{}", driver::render(&run, &scenario, &args.target));
    if run.passed() {
        Ok(())
    } else {
        Err(Failure::Violations)
    }
}

fn demo(args: DemoArgs) -> Result<(), Failure> {
    let scenario = load_one(&args.scenario)?;
    let seed = args.seed.unwrap_or_else(|| scenario.seeds.start());
    let dir = match args.dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("shipsim-demo-{}", std::process::id())),
    };
    // A fresh database per demo: a stale one would mix two runs' shipments.
    let _ = std::fs::remove_file(dir.join("service.db"));
    let _ = std::fs::remove_file(dir.join("carrier.db"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let exe = std::env::current_exe().context("cannot find the shipsim binary")?;
    let options = demo::DemoOptions {
        scenario: args.scenario.clone(),
        seed,
        bugs: args.bugs.iter().map(|b| b.name().to_string()).collect(),
        dir: dir.clone(),
    };
    let stack = demo::start(&exe, &options).context("cannot start the demo's servers")?;
    println!(
        "carrier {} <- proxy {} <- service {} <- proxy {} <- driver (logs and databases in {})",
        stack.carrier.url,
        stack.carrier_proxy.url,
        stack.service.url,
        stack.service_proxy.url,
        dir.display()
    );
    let live_options = LiveOptions {
        scenario: scenario.clone(),
        target: stack.service_proxy.url.clone(),
        carrier_url: Some(stack.carrier_proxy.url.clone()),
        proxy: false,
        seed,
        admin_key: Some(demo::DEMO_ADMIN_KEY.to_string()),
        carrier_admin_key: None,
        bugs: BugSet::none(),
        api_keys: Vec::new(),
        described: None,
        downstream_urls: Vec::new(),
        run_id: LiveOptions::fresh_run_id(),
        // The demo's servers announced that they listen before it got here.
        start_wait: Duration::ZERO,
    };
    let run = runtime()?
        .block_on(driver::run(live_options))
        .context("the demo's live run")?;
    print!(
        "{}",
        driver::render(&run, &scenario, &stack.service_proxy.url)
    );
    drop(stack);
    if run.passed() {
        Ok(())
    } else {
        Err(Failure::Violations)
    }
}

fn live_receiver(args: &LiveReceiverArgs) -> Result<(), Failure> {
    use crate::receiver::live::{self as live_receiver, LiveReceiver};
    let description = load_description(&args.description)?;
    let Some(described) = description.receiver.clone() else {
        return Err(anyhow::anyhow!(
            "{}: the description has no `[receiver]` table (see examples/python-shipping/receiver.toml)",
            args.description.display()
        )
        .into());
    };
    let signing = described
        .signing()
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.description.display()))?;
    if !(args.target.starts_with("http://") || args.target.starts_with("https://")) {
        return Err(anyhow::anyhow!(
            "--target `{}` is not an http:// or https:// URL",
            args.target
        )
        .into());
    }
    if args.jobs == 0 {
        return Err(anyhow::anyhow!("--jobs 0: at least one seed must run at a time").into());
    }
    let target = args.target.trim_end_matches('/').to_string();
    let shared = std::sync::Arc::new(described.clone());
    let read = shared.clone();
    let live = std::sync::Arc::new(LiveReceiver {
        target: target.clone(),
        events: described.event_shape(),
        signing,
        read_back: crate::receiver::ReadBack::new(
            move |resource| read.read_request(resource),
            move |response| shared.parse_read(response),
        ),
        burst_events: args.burst_events,
        run_id: driver::LiveOptions::fresh_run_id(),
    });
    let seeds =
        args.seeds.iter().next().unwrap_or(0)..args.seeds.iter().last().map_or(0, |s| s + 1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let local = tokio::task::LocalSet::new();
    let results = local
        .block_on(&runtime, live.run(seeds, args.jobs, args.wait))
        .map_err(|e| anyhow::anyhow!("shipsim live-receiver: {e}"))?;
    let (outcome, notes) = live_receiver::outcome(&results);
    let description_path = args.description.display().to_string();
    let report = outcome.report(
        &description.name,
        "live",
        Some(&target),
        &args.seeds.to_string(),
        &notes,
        |failure| {
            format!(
                "shipsim live-receiver {description_path} --target {target} --seeds {}..{}",
                failure.seed,
                failure.seed + 1
            )
        },
    );
    crate::receiver::write_summary(&description.name, &args.out, &outcome, &report)
        .map_err(|e| anyhow::anyhow!("cannot write the report: {e}"))?;
    out!("{}", shipsim_reports::text::receiver(&report));
    outln!("report: {}", args.out.join("index.html").display());
    if report.passed() {
        Ok(())
    } else if outcome.problem.is_some() && outcome.failures.is_empty() {
        Err(anyhow::anyhow!("the receiver could not be judged").into())
    } else {
        Err(Failure::Violations)
    }
}

/// The process's peak memory for a report's wall-clock block (0 where the OS does not say).
fn peak_rss_mib() -> f64 {
    crate::output::wall::peak_rss_mib().unwrap_or(0.0)
}
