//! HTTP faults, injected in front of a server host: every request to the host passes here
//! before (and its response after) the real router, and the host's active HTTP faults decide
//! what happens to it. Decisions draw from the host's own seeded generator in request
//! arrival order, which the simulation makes deterministic. The rules and decisions live in
//! [`super::http_rules`], shared with live mode's proxy.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use rand_chacha::ChaCha8Rng;
use shipsim_system::client::http_date;
use shipsim_system::clock::Clock;
use shipsim_system::seed::Seed;
use tower::ServiceExt;

use super::FaultSpec;
use super::http_rules::{self, Armed, HttpEffect, injected, truncate};
use crate::net::{BoxFutureLocal, ConnectionDropped};
use crate::shared::Shared;

/// Largest request body the fault layer buffers (it must, to duplicate requests): the
/// service's own limit plus headroom, so the service still sees and refuses oversize bodies.
const REQUEST_BYTES_MAX: usize = 256 * 1024;

/// The fault layer of one server host boot.
#[derive(Clone)]
pub(crate) struct FaultLayer {
    inner: Arc<LayerState>,
}

struct LayerState {
    host: String,
    router: axum::Router,
    rules: Vec<Armed>,
    rng: Mutex<ChaCha8Rng>,
    clock: Arc<dyn Clock>,
    shared: Shared,
}

impl FaultLayer {
    /// Wraps `router` of `host` with the HTTP faults that target it.
    pub(crate) fn new(
        host: &str,
        router: axum::Router,
        faults: &[FaultSpec],
        seed: Seed,
        clock: Arc<dyn Clock>,
        shared: Shared,
    ) -> Self {
        let rules = http_rules::arm(host, faults);
        FaultLayer {
            inner: Arc::new(LayerState {
                host: host.to_string(),
                router,
                rules,
                rng: Mutex::new(seed.rng()),
                clock,
                shared,
            }),
        }
    }

    /// The handler to give [`crate::net::serve`].
    pub(crate) fn handler(
        self,
    ) -> impl Fn(
        http::Request<Incoming>,
    ) -> BoxFutureLocal<Result<http::Response<axum::body::Body>, ConnectionDropped>>
    + Clone
    + 'static {
        move |request| {
            let layer = self.clone();
            Box::pin(async move { layer.handle(request).await })
        }
    }

    /// The first active rule that fires for this request, if any.
    fn decide(&self, path: &str) -> Option<Armed> {
        let state = &self.inner;
        if state.rules.is_empty() || state.shared.healed() {
            return None;
        }
        let now_ms = state.shared.now_us() / 1_000;
        let mut rng = state.rng.lock().expect("fault rng lock poisoned");
        http_rules::decide(&state.rules, &state.host, path, now_ms, &mut rng).cloned()
    }

    async fn handle(
        self,
        request: http::Request<Incoming>,
    ) -> Result<http::Response<axum::body::Body>, ConnectionDropped> {
        let (parts, body) = request.into_parts();
        // A request whose body cannot be read is one the client broke off: nothing to serve.
        let body = Limited::new(body, REQUEST_BYTES_MAX)
            .collect()
            .await
            .map_err(|_| ConnectionDropped)?
            .to_bytes();
        let Some(armed) = self.decide(parts.uri.path()) else {
            return Ok(self.forward(&parts, body).await);
        };
        let state = &self.inner;
        let detail = format!(
            "{} {} {}",
            armed.rule.describe(),
            parts.method,
            parts.uri.path()
        );
        state.shared.fired(&state.host, armed.index, detail);
        match armed.rule.effect {
            HttpEffect::Status { status, after } => {
                if after {
                    let _discarded = self.forward(&parts, body).await;
                }
                Ok(injected(status, None))
            }
            HttpEffect::TooManyRequests {
                retry_after_s,
                as_date,
            } => {
                let value = if as_date {
                    http_date(state.clock.now_ms() + retry_after_s * 1_000)
                } else {
                    retry_after_s.to_string()
                };
                Ok(injected(429, Some(value)))
            }
            HttpEffect::Slow { delay_ms } => {
                let response = self.forward(&parts, body).await;
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                Ok(response)
            }
            HttpEffect::Drop => {
                let _discarded = self.forward(&parts, body).await;
                Err(ConnectionDropped)
            }
            HttpEffect::Reset => {
                let response = self.forward(&parts, body).await;
                Ok(truncate(response).await)
            }
            HttpEffect::Duplicate { copies } => {
                // The extra copies run as their own tasks, as a retrying proxy's would; the
                // client gets the answer to the first and never hears of the others.
                for _ in 1..copies {
                    let layer = self.clone();
                    let parts = parts.clone();
                    let body = body.clone();
                    tokio::task::spawn_local(async move {
                        let _unheard = layer.forward(&parts, body).await;
                    });
                }
                Ok(self.forward(&parts, body).await)
            }
        }
    }

    async fn forward(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
    ) -> http::Response<axum::body::Body> {
        let request = http::Request::from_parts(parts.clone(), axum::body::Body::from(body));
        match self.inner.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}
