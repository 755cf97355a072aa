//! The `shipsim` command line.
//!
//! Exit codes: 0 every oracle held, 1 a violation was found (report written), 2 bad input
//! or usage (with a message saying what and where).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use shipsim_system::bugs::{Bug, BugSet};

use crate::fault::CATALOGUE;
use crate::live::driver::{self, LiveOptions};
use crate::live::proxy::{ProxiedHost, Proxy};
use crate::live::serve::{CarrierOptions, ServiceOptions};
use crate::live::{self, demo, telemetry};
use crate::oracle::OracleKind;
use crate::report;
use crate::scenario::{Scenario, SeedRange};
use crate::sweep::{self, Progress, Shard, SweepOptions};

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
    /// Live mode: run the reference service on real TCP with a SQLite store.
    Serve(ServeArgs),
    /// Live mode: run the carrier on real TCP.
    Carrier(CarrierArgs),
    /// Live mode: a proxy injecting a scenario's HTTP faults on real connections.
    Proxy(ProxyArgs),
    /// Live mode: drive a scenario against a real URL and judge it with the oracles.
    Live(LiveArgs),
    /// Live mode in one command: carrier, service, two fault proxies and the driver.
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free one; the chosen URL is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// The SQLite database file (created if missing).
    #[arg(long)]
    db: PathBuf,
    /// The carrier's base URL (or a `shipsim proxy` in front of it).
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    carrier_url: String,
    /// Merchants accepted: sk_sim_merchant_0 .. sk_sim_merchant_{N-1}, as in the simulation.
    #[arg(long, default_value_t = 16)]
    callers: u32,
    /// The operator's key for GET /v1/admin/state (which live mode's oracles read).
    #[arg(long)]
    admin_key: Option<String>,
    /// Take the [service] settings (rate limit, carrier policy, lease) from this scenario.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Switch on a planted service bug (repeatable).
    #[arg(long = "bug", value_parser = parse_bug)]
    bugs: Vec<Bug>,
    /// Seed of the service's ids.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Debug, Args)]
struct CarrierArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: String,
    /// SQLite file for the ledger; without it the ledger is in memory, lost on restart.
    #[arg(long)]
    db: Option<PathBuf>,
    /// The operator's key for GET /v1/admin/labels.
    #[arg(long)]
    admin_key: Option<String>,
    /// Seed of the carrier's ids.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Debug, Args)]
struct ProxyArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
    /// Where to forward (the service's or the carrier's base URL).
    #[arg(long)]
    upstream: String,
    /// Which host's faults to apply: service or carrier.
    #[arg(long, default_value = "service", value_parser = parse_host)]
    host: ProxiedHost,
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
    /// Default: the simulation's keys, which `shipsim serve` accepts.
    #[arg(long = "api-key")]
    api_keys: Vec<String>,
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

fn parse_host(text: &str) -> Result<ProxiedHost, String> {
    match text {
        "service" => Ok(ProxiedHost::Service),
        "carrier" => Ok(ProxiedHost::Carrier),
        other => Err(format!("unknown host `{other}`: service or carrier")),
    }
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
    #[arg(long)]
    seed: Option<u64>,
    /// Parallel workers (default: available cores).
    #[arg(long, short)]
    jobs: Option<usize>,
    /// Run only shard I of N of the (scenario, seed) pairs.
    #[arg(long, value_parser = Shard::parse)]
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
    #[arg(required = true)]
    paths: Vec<PathBuf>,
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
    /// Where scenarios live.
    #[arg(long, default_value = "scenarios")]
    dir: PathBuf,
}

fn parse_seeds(text: &str) -> Result<SeedRange, String> {
    SeedRange::parse(text)
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
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Carrier(args)) => carrier(args),
        Some(Command::Proxy(args)) => proxy(args),
        Some(Command::Live(args)) => live(args),
        Some(Command::Demo(args)) => demo(args),
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
    let files = scenario_files(paths)?;
    let mut scenarios = Vec::new();
    let mut errors = Vec::new();
    for file in &files {
        match Scenario::load(file) {
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

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

fn run(args: RunArgs) -> Result<(), Failure> {
    let scenarios = load_scenarios(&args.paths)?;
    let seeds = args.seeds.or(args.seed.map(SeedRange::single));
    if args.jobs == Some(0) {
        return Err(anyhow::anyhow!("--jobs must be at least 1").into());
    }
    let options = SweepOptions {
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
    sweep_and_report(&scenarios, &options, &label, &args.out)
}

fn sweep_and_report(
    scenarios: &[Scenario],
    options: &SweepOptions,
    label: &str,
    out: &Path,
) -> Result<(), Failure> {
    let outcome = sweep::sweep(scenarios, options);
    let (report, repros) = report::build(&outcome, options, label, out);
    let written = report::write(out, &report, &repros)?;
    print!("{}", shipsim_reports::text::render(&report));
    println!("report: {}", out.join("summary.json").display());
    let _ = written;
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
        seeds: Some(SeedRange::single(seed)),
        jobs: 1,
        shard: None,
        bugs: BugSet::none(),
        check_determinism: true,
        progress: Progress::Quiet,
    };
    sweep_and_report(&[scenario], &options, &seed.to_string(), &args.out)
}

fn check(args: &CheckArgs) -> Result<(), Failure> {
    let scenarios = load_scenarios(&args.paths)?;
    for scenario in &scenarios {
        println!(
            "ok  {}  ({}: {} fault(s), {} client(s), seeds {})",
            scenario.name,
            scenario.path,
            scenario.faults.len(),
            scenario.hosts.clients,
            scenario.seeds
        );
    }
    Ok(())
}

fn list(args: &ListArgs) -> Result<(), Failure> {
    if args.faults {
        CATALOGUE.iter().for_each(|k| println!("{}", k.name));
        return Ok(());
    }
    if args.oracles {
        OracleKind::ALL
            .iter()
            .for_each(|o| println!("{}", o.name()));
        return Ok(());
    }
    if args.bugs {
        Bug::ALL.iter().for_each(|b| println!("{}", b.name()));
        return Ok(());
    }
    let scenarios = load_scenarios(std::slice::from_ref(&args.dir))?;
    if args.scenarios {
        scenarios.iter().for_each(|s| println!("{}", s.name));
        return Ok(());
    }
    println!("Scenarios ({}):", args.dir.display());
    for scenario in &scenarios {
        println!("  {:<28} {}", scenario.name, scenario.description);
    }
    println!("\nFault kinds (every kind also takes start_ms, end_ms | duration_ms):");
    for kind in CATALOGUE {
        println!("  {:<20} [{}] {}", kind.name, kind.family, kind.summary);
        for param in kind.params {
            let required = if param.required { " (required)" } else { "" };
            println!("      {}{required}: {}", param.name, param.doc);
        }
    }
    println!("\nOracles:");
    for oracle in OracleKind::ALL {
        println!("  {:<20} {}", oracle.name(), oracle.describe());
    }
    println!("\nPlanted bugs (--bug NAME):");
    for bug in Bug::ALL {
        println!("  {:<28} {}", bug.name(), bug.describe());
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
    let settings = match &args.scenario {
        Some(path) => load_one(path)?.service,
        None => {
            Scenario::parse("<defaults>", "defaults", "")
                .expect("the empty scenario is valid")
                .service
        }
    };
    let db = args.db.clone();
    let options = ServiceOptions {
        listen: args.listen,
        db: args.db,
        carrier_url: args.carrier_url,
        callers: args.callers,
        admin_key: args.admin_key,
        settings,
        bugs: BugSet::of(args.bugs),
        seed: args.seed,
    };
    runtime()?
        .block_on(live::serve::run_service(options))
        .with_context(|| format!("shipsim serve (database {})", db.display()))?;
    Ok(())
}

fn carrier(args: CarrierArgs) -> Result<(), Failure> {
    telemetry::init_json_logs();
    let options = CarrierOptions {
        listen: args.listen,
        db: args.db,
        admin_key: args.admin_key,
        seed: args.seed,
    };
    runtime()?
        .block_on(live::serve::run_carrier(options))
        .context("shipsim carrier")?;
    Ok(())
}

fn proxy(args: ProxyArgs) -> Result<(), Failure> {
    telemetry::init_json_logs();
    let scenario = load_one(&args.scenario)?;
    let seed = args.seed.unwrap_or_else(|| scenario.seeds.start());
    runtime()?
        .block_on(async {
            let proxy = Proxy::new(args.host, &args.upstream, &scenario.faults, seed)?;
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

fn live(args: LiveArgs) -> Result<(), Failure> {
    let scenario = load_one(&args.scenario)?;
    let seed = args.seed.unwrap_or_else(|| scenario.seeds.start());
    let options = LiveOptions {
        scenario: scenario.clone(),
        target: args.target.clone(),
        carrier_url: args.carrier_url,
        proxy: args.proxy,
        seed,
        admin_key: args.admin_key,
        carrier_admin_key: args.carrier_admin_key,
        bugs: BugSet::of(args.bugs),
        api_keys: args.api_keys,
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
