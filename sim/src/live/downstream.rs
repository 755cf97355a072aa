//! `shipsim downstream`: a simulated third party (a [`DownstreamSpec`] read from a TOML file)
//! on real TCP, for a service in any language to call in live mode.
//!
//! The downstream itself listens on a loopback port of its own; in front of it, on the
//! address asked for, stands a fault proxy ([`Proxy::dormant`]) that injects nothing until a
//! live run arms it with its scenario's faults for this host (`target = "carrier"`, or
//! `downstreams`) and its seed, and heals it before settling. Its ledger of effects is at
//! `GET /__shipsim/ledger` (through the proxy too), which `shipsim live` reads to judge
//! exactly-once where the effects were made.
//!
//! The ledger lives in memory: a restarted `shipsim downstream` starts empty, as if the
//! third party had forgotten every effect and key. Restart it between runs, never during
//! one (a run that needs a downstream to survive crashes belongs in the simulation, where
//! the ledger outlives its host).

use std::sync::Arc;

use shipsim_system::clock::WallClock;
use shipsim_system::downstream::{
    ADMIN_LEDGER_PATH, DownstreamDeps, DownstreamLedger, DownstreamSpec,
};
use shipsim_system::observe::TracingObserver;
use shipsim_system::seed::Seed;

use super::proxy::{ProxiedHost, Proxy};
use super::{LiveError, announce, bind, shutdown_signal};

/// How `shipsim downstream` runs.
#[derive(Clone, Debug)]
pub struct DownstreamOptions {
    /// The spec.
    pub spec: DownstreamSpec,
    /// Where it was read from, for logs.
    pub spec_file: String,
    /// Address of the fault proxy in front of the downstream (what callers use).
    pub listen: String,
    /// Seed of the downstream's ids.
    pub seed: u64,
}

/// Serves the downstream behind a dormant fault proxy until SIGTERM or ctrl-c.
///
/// # Errors
/// When the spec does not compile or an address cannot be bound.
pub async fn run(options: DownstreamOptions) -> Result<(), LiveError> {
    let downstream = options.spec.compile().map_err(|e| LiveError::Target {
        url: options.spec_file.clone(),
        detail: e.to_string(),
    })?;
    let ledger = DownstreamLedger::new();
    let router = downstream.router(DownstreamDeps {
        clock: Arc::new(WallClock),
        ledger: ledger.clone(),
        observer: Arc::new(TracingObserver),
        seed: Seed(options.seed).derive(downstream.name()),
        boot: 0,
    });
    let (inner, inner_address) = bind("127.0.0.1:0").await?;
    let served = tokio::spawn(async move { axum::serve(inner, router).await });
    let proxy = Proxy::dormant(
        ProxiedHost::named(downstream.name()),
        &format!("http://{inner_address}"),
    )?;
    let (listener, address) = bind(&options.listen).await?;
    let shutdown = shutdown_signal();
    tracing::info!(
        %address,
        downstream = downstream.name(),
        spec = %options.spec_file,
        ledger = %format!("http://{address}{ADMIN_LEDGER_PATH}"),
        "downstream listening behind a dormant fault proxy (a live run arms it)"
    );
    eprintln!(
        "downstream `{}` ({}) listening on http://{address}; ledger at http://{address}{ADMIN_LEDGER_PATH}; fault layer dormant until `shipsim live` arms it; the ledger is in memory (a restart forgets every effect)",
        downstream.name(),
        options.spec_file
    );
    announce(address);
    let result = proxy.serve(listener, shutdown).await;
    served.abort();
    tracing::info!(effects = ledger.len(), "downstream stopped");
    result
}
