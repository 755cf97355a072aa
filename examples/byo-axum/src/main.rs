//! The payments service on real TCP, against a real bank URL, with its rows in memory
//! (a demo: they are lost when the process stops).
//!
//! ```sh
//! BYO_API_KEYS=sk_test_a=merchant-a BYO_BANK_URL=http://127.0.0.1:9090 \
//! BYO_BANK_AUTHORIZATION='Bearer bk_test' BYO_ADDR=127.0.0.1:8080 cargo run
//! ```
//!
//! `BYO_MISTAKE=<name>` makes it one of its planted mistakes (see `Mistake`). Exit codes: 0
//! after a graceful stop (ctrl-c), 2 on a bad configuration or a port that cannot be bound.

use std::hash::{BuildHasher, RandomState};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use byo_axum::{BoxFuture, Clock, Config, Deps, HttpClient, HttpError, Ids, MemoryRepository};
use bytes::Bytes;

/// The address to listen on, unless `BYO_ADDR` says.
const ADDR_DEFAULT: &str = "127.0.0.1:8080";

/// The operating system's clock.
struct WallClock;

impl Clock for WallClock {
    // The binary runs on real sockets: the wall clock is the truth here. Nothing under
    // simulation builds a WallClock (the tests give the service shipsim's clock).
    #[allow(clippy::disallowed_methods)]
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Ids from the standard library's randomly keyed hasher (seeded by the OS) over a counter.
struct RandomIds {
    keys: RandomState,
    issued: AtomicU64,
}

impl Ids for RandomIds {
    fn next(&self, prefix: &str) -> String {
        let issued = self.issued.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}_{:016x}{issued:x}", self.keys.hash_one(issued))
    }
}

/// reqwest, on real sockets.
struct Reqwest(reqwest::Client);

impl HttpClient for Reqwest {
    fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> BoxFuture<'_, Result<http::Response<Bytes>, HttpError>> {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)
                .map_err(|e| HttpError(format!("bad request: {e}")))?;
            let response = self
                .0
                .execute(request)
                .await
                .map_err(|e| HttpError(e.to_string()))?;
            let mut builder = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| HttpError(e.to_string()))?;
            builder.body(body).map_err(|e| HttpError(e.to_string()))
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_vars(|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let addr = std::env::var("BYO_ADDR").unwrap_or_else(|_| ADDR_DEFAULT.to_string());
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on {addr}: {error}");
            return ExitCode::from(2);
        }
    };
    if let Some(mistake) = config.mistake {
        eprintln!("warning: running with the planted mistake `{mistake}`");
    }
    eprintln!(
        "payments listening on http://{addr}, bank at {}",
        config.bank.base_url
    );
    let deps = Deps {
        repo: MemoryRepository::new(),
        clock: Arc::new(WallClock),
        ids: Arc::new(RandomIds {
            keys: RandomState::new(),
            issued: AtomicU64::new(0),
        }),
        http: Arc::new(Reqwest(reqwest::Client::new())),
    };
    let served = axum::serve(listener, byo_axum::router(config, deps))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}
