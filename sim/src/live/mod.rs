//! Live mode: the same scenarios against real sockets, a real database and real processes
//! that can be killed.
//!
//! - [`credentials`]: merchant keys, webhook secrets and admin key from the environment or
//!   a keys file, rotations, and the refusal of demo credentials off loopback.
//! - [`serve`]: `shipsim serve` and `shipsim carrier`, the reference service (SQLite store)
//!   and the carrier on real TCP, stopping gracefully on SIGTERM or ctrl-c.
//! - [`downstream`]: `shipsim downstream`, a simulated third party from a spec file, on real
//!   TCP behind a fault layer a live run arms, for services in any language to call.
//! - [`proxy`]: `shipsim proxy`, a fault-injecting HTTP proxy that applies a scenario's HTTP
//!   faults on real connections, with the simulation's own rules and seeded decisions.
//! - [`driver`]: `shipsim live`, which drives a scenario's workload with reqwest, records the
//!   history, reads the final state back through the API and runs the oracles on it.
//! - [`report`]: a live run converted into `reports`' `LiveReport`, which `reports`
//!   renders to the terminal.
//! - [`demo`]: `shipsim demo`, all of the above in one command.
//! - [`telemetry`]: JSON-lines logs.
//!
//! **Invariant:** nothing here runs on a simulated path. Live mode reads the OS clock
//! (`WallClock`, tokio's timers) and real networks reorder as they please: a live run has
//! no determinism guarantee, only a recorded seed for its workload and fault decisions.

pub mod credentials;
pub mod demo;
pub mod downstream;
pub mod driver;
pub mod proxy;
pub mod report;
pub mod serve;
pub mod telemetry;

use shipsim_system::store::StoreError;
use shipsim_system::transport::TransportError;

/// Header of the admin endpoints, re-exported for the command line.
pub use shipsim_system::api::HEADER_ADMIN_KEY;

/// Why a live-mode command could not do its job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The listening address could not be bound.
    #[error("cannot listen on {address}")]
    Bind {
        /// What was asked for.
        address: String,
        /// Why not.
        source: std::io::Error,
    },
    /// The database could not be opened or used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A target (service, carrier or proxy) answered what it must not, or nothing.
    #[error("{url}: {detail}")]
    Target {
        /// Where.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The preflight found the target or something it depends on unusable: the run did not
    /// start.
    #[error("{}", unready(problems))]
    Unready {
        /// Each unreachable or unusable thing, in a sentence naming it.
        problems: Vec<String>,
    },
    /// The run did not finish in time.
    #[error("the live run did not finish within {limit_ms} ms: clients are stuck")]
    Stuck {
        /// The limit (the scenario's `time_limit_ms`).
        limit_ms: u64,
    },
    /// A socket or file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn unready(problems: &[String]) -> String {
    let mut text = String::from("preflight: the run did not start; unreachable or not ready:");
    for problem in problems {
        text.push_str("\n  - ");
        text.push_str(problem);
    }
    text
}

/// Binds `listen` (port 0 picks a free one) and returns the listener and the address bound.
pub(crate) async fn bind(
    listen: &str,
) -> Result<(tokio::net::TcpListener, std::net::SocketAddr), LiveError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| LiveError::Bind {
            address: listen.to_string(),
            source,
        })?;
    let address = listener.local_addr()?;
    Ok((listener, address))
}

/// An error and its causes on one line (reqwest's own message leaves out why a connection
/// failed: "error sending request" without "connection refused").
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}

/// `url` without trailing slashes, so paths can be appended.
pub(crate) fn base_url(url: &str) -> String {
    url.trim_end_matches('/').to_string()
}

/// The line a server prints on stdout once it listens, which scripts and tests wait for.
pub const LISTENING_PREFIX: &str = "listening on ";

/// Prints the listening line and flushes it, so a parent process reading our stdout sees it
/// at once.
pub(crate) fn announce(address: std::net::SocketAddr) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{LISTENING_PREFIX}http://{address}");
    let _ = stdout.flush();
}

/// A future that resolves when the process is asked to stop: SIGTERM or SIGINT (ctrl-c).
///
/// The handlers are installed here, when it is called, not when the future is first polled:
/// call it before announcing that the server listens, or a SIGTERM sent right after the
/// announcement would meet the default action and kill the process.
///
/// # Panics
/// Outside a tokio runtime.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // Without a handler (the call failed) that signal keeps its default action.
        let mut terminate = signal(SignalKind::terminate()).ok();
        let mut interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            let terminated = async {
                match terminate.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let interrupted = async {
                match interrupt.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                biased;
                () = terminated => {}
                () = interrupted => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
