//! Live mode's drivers: `live`, `demo`, `live-receiver`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use shipsim_system::bugs::{Bug, BugSet};

use crate::live::driver::{self, LiveOptions};
use crate::live::{self, demo};
use crate::scenario::SeedRange;

use super::*;

#[derive(Debug, Args)]
pub(super) struct LiveArgs {
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
pub(super) struct DemoArgs {
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

#[derive(Debug, Args)]
pub(super) struct LiveReceiverArgs {
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

/// `shipsim live`'s merchant keys (each merchant's current one) and admin key: the flags,
/// or the keys file or the environment; a credential given both ways is refused.
pub(super) fn live_credentials(
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

pub(super) fn live(args: LiveArgs) -> Result<(), Failure> {
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
    print!(
        "{}",
        shipsim_reports::text::live(&run.report(&scenario, &args.target))
    );
    if run.passed() {
        Ok(())
    } else {
        Err(Failure::Violations)
    }
}

pub(super) fn demo(args: DemoArgs) -> Result<(), Failure> {
    let scenario = load_one(&args.scenario)?;
    let seed = args.seed.unwrap_or_else(|| scenario.seeds.start());
    let dir = match args.dir {
        Some(dir) => dir,
        // A fresh directory of its own, kept for the logs and databases the demo names.
        None => tempfile::Builder::new()
            .prefix("shipsim-demo-")
            .tempdir()
            .context("cannot create the demo's directory")?
            .keep(),
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
        shipsim_reports::text::live(&run.report(&scenario, &stack.service_proxy.url))
    );
    drop(stack);
    if run.passed() {
        Ok(())
    } else {
        Err(Failure::Violations)
    }
}

pub(super) fn live_receiver(args: &LiveReceiverArgs) -> Result<(), Failure> {
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
    crate::receiver::write_summary(&args.out, &report)
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
