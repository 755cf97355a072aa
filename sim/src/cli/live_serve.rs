//! Live mode's processes on real TCP: `serve`, `carrier`, `downstream`, `proxy`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use shipsim_system::bugs::{Bug, BugSet};
use shipsim_system::carrier::TrackingConfig;
use shipsim_system::service::{WebhookSettings, WebhookTarget};
use shipsim_system::webhook::{SenderConfig, TOLERANCE_S_DEFAULT};

use crate::live::proxy::{ProxiedHost, Proxy};
use crate::live::serve::{CarrierOptions, ServiceOptions};
use crate::live::{self, telemetry};
use crate::reference::deployment;
use crate::scenario::{Scenario, WebhookSettings as ScenarioWebhooks};

use super::*;

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
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
pub(super) struct CarrierArgs {
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
pub(super) struct DownstreamArgs {
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
pub(super) struct ProxyArgs {
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

pub(super) fn serve(args: ServeArgs) -> Result<(), Failure> {
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
pub(super) fn serve_credentials(
    args: &ServeArgs,
) -> Result<live::credentials::Credentials, Failure> {
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
pub(super) fn service_webhooks(
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

pub(super) fn carrier(args: CarrierArgs) -> Result<(), Failure> {
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

pub(super) fn proxy(args: ProxyArgs) -> Result<(), Failure> {
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

pub(super) fn downstream(args: DownstreamArgs) -> Result<(), Failure> {
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
