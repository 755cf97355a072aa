//! `shipsim demo`: live mode in one command. Starts the carrier, a fault proxy in front of
//! it, the service (SQLite) calling the carrier through that proxy, and a fault proxy in
//! front of the service, each as a child process of this binary on a free loopback port;
//! drives the scenario through the service's proxy; prints the verdict; stops them all.
//!
//! [`ChildServer`] is also what the integration tests use to run real server processes.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::LISTENING_PREFIX;

/// How long a child server may take to print its listening line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A server running as a child process (`shipsim serve`, `carrier` or `proxy`), killed
/// (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct ChildServer {
    child: Child,
    /// Held open so the child never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
}

/// Why a child server could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The process could not be started.
    #[error("cannot start {program}: {source}")]
    Start {
        /// The command.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// It did not print its listening line in time (see its log).
    #[error("{what} did not start listening within {seconds} s (log: {log})")]
    NotListening {
        /// The subcommand.
        what: String,
        /// The limit.
        seconds: u64,
        /// Where its stderr went.
        log: String,
    },
}

impl ChildServer {
    /// Runs `exe args...` with stderr appended to `log`, and waits for its listening line.
    ///
    /// # Errors
    /// [`SpawnError`] when it cannot start or does not listen in time.
    pub fn spawn(exe: &Path, args: &[&str], log: &Path) -> Result<ChildServer, SpawnError> {
        let what = args.first().copied().unwrap_or("server").to_string();
        let start = |source| SpawnError::Start {
            program: format!("{} {}", exe.display(), args.join(" ")),
            source,
        };
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(start)?;
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(start)?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let read = reader.read_line(&mut line);
            let _ = sender.send((read.map(|_| line), reader));
        });
        let not_listening = || SpawnError::NotListening {
            what: what.clone(),
            seconds: STARTUP_TIMEOUT.as_secs(),
            log: log.display().to_string(),
        };
        let Ok((Ok(line), reader)) = receiver.recv_timeout(STARTUP_TIMEOUT) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(not_listening());
        };
        let Some(url) = line.trim().strip_prefix(LISTENING_PREFIX) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(not_listening());
        };
        Ok(ChildServer {
            url: url.to_string(),
            child,
            _stdout: reader,
        })
    }

    /// The port it listens on.
    ///
    /// # Panics
    /// If its URL has no port (it always has).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("listening URLs end in a port")
    }

    /// Its process id.
    #[must_use]
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Kills it with SIGKILL, as `kill -9` would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for it to exit by itself (after a SIGTERM sent elsewhere) for up to `limit`;
    /// returns its exit code, or `None` if it had to be killed.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let step = Duration::from_millis(20);
        let mut waited = Duration::ZERO;
        while waited < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(step);
            waited += step;
        }
        self.kill();
        None
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What `shipsim demo` runs.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// The scenario file.
    pub scenario: PathBuf,
    /// Seed of the workload and the proxies.
    pub seed: u64,
    /// Planted service bugs, passed to `shipsim serve`.
    pub bugs: Vec<String>,
    /// Where databases and logs go.
    pub dir: PathBuf,
}

/// The four servers of a demo, stopped when dropped.
#[derive(Debug)]
pub struct DemoStack {
    /// `shipsim carrier`.
    pub carrier: ChildServer,
    /// `shipsim proxy` in front of the carrier.
    pub carrier_proxy: ChildServer,
    /// `shipsim serve`.
    pub service: ChildServer,
    /// `shipsim proxy` in front of the service.
    pub service_proxy: ChildServer,
}

/// The admin key the demo's servers are started with.
pub const DEMO_ADMIN_KEY: &str = "sk_admin_demo";

/// Starts the demo's servers.
///
/// # Errors
/// When one of them cannot start.
pub fn start(exe: &Path, options: &DemoOptions) -> Result<DemoStack, SpawnError> {
    let path = |name: &str| options.dir.join(name);
    let text = |p: PathBuf| p.display().to_string();
    let scenario = text(options.scenario.clone());
    let seed = options.seed.to_string();
    let carrier = ChildServer::spawn(
        exe,
        &[
            "carrier",
            "--listen",
            "127.0.0.1:0",
            "--db",
            &text(path("carrier.db")),
            "--admin-key",
            DEMO_ADMIN_KEY,
        ],
        &path("carrier.log"),
    )?;
    let carrier_proxy = ChildServer::spawn(
        exe,
        &[
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &carrier.url,
            "--host",
            "carrier",
            "--seed",
            &seed,
            &scenario,
        ],
        &path("carrier-proxy.log"),
    )?;
    let mut serve_args = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--db",
        "",
        "--carrier-url",
        &carrier_proxy.url,
        "--admin-key",
        DEMO_ADMIN_KEY,
    ];
    let db = text(path("service.db"));
    serve_args[4] = &db;
    for bug in &options.bugs {
        serve_args.push("--bug");
        serve_args.push(bug);
    }
    let service = ChildServer::spawn(exe, &serve_args, &path("service.log"))?;
    let service_proxy = ChildServer::spawn(
        exe,
        &[
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &service.url,
            "--host",
            "service",
            "--seed",
            &seed,
            &scenario,
        ],
        &path("service-proxy.log"),
    )?;
    Ok(DemoStack {
        carrier,
        carrier_proxy,
        service,
        service_proxy,
    })
}
