//! shipsim's seams in the service's terms: three one-line adapters.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use byo_axum::{BoxFuture, HttpError};
use bytes::Bytes;

/// The host's simulated clock (with the scenario's skew).
pub struct SimClock(pub Arc<dyn shipsim::Clock>);

impl byo_axum::Clock for SimClock {
    fn now_ms(&self) -> u64 {
        self.0.now_ms()
    }
}

/// Ids from the run's seed, a fresh stream at every boot.
pub struct SimIds(pub shipsim::IdGen);

impl byo_axum::Ids for SimIds {
    fn next(&self, prefix: &str) -> String {
        self.0.next(prefix)
    }
}

/// HTTP to a simulated host, through the scenario's network and HTTP faults.
pub struct SimHttp(pub Arc<dyn shipsim::Transport>);

impl byo_axum::HttpClient for SimHttp {
    fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> BoxFuture<'_, Result<http::Response<Bytes>, HttpError>> {
        Box::pin(async move {
            self.0
                .send(request)
                .await
                .map_err(|error| HttpError(error.to_string()))
        })
    }
}

/// Ids from the standard library's randomly keyed hasher: different in every run, as a
/// service that reached past its seams for randomness would have them.
#[derive(Default)]
pub struct OsIds {
    keys: RandomState,
    issued: AtomicU64,
}

impl byo_axum::Ids for OsIds {
    fn next(&self, prefix: &str) -> String {
        let issued = self.issued.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}_{:016x}", self.keys.hash_one(issued))
    }
}
