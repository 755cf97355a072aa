//! HTTP faults, injected in front of a server host: every request to the host passes here
//! before (and its response after) the real router, and the host's active HTTP faults decide
//! what happens to it. Each fault draws from its own seeded stream in request arrival order,
//! which the simulation makes deterministic. The rules and decisions live in
//! [`super::http_rules`], shared with live mode's proxy.

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use shipsim_system::clock::Clock;
use shipsim_system::seed::Seed;
use tower::ServiceExt;

use super::FaultSpec;
use super::http_rules::{self, Armed, Rule};
use crate::run::net::{BoxFutureLocal, ConnectionDropped};
use crate::run::state::Shared;

/// The fault layer of one server host boot.
#[derive(Clone)]
pub(crate) struct FaultLayer {
    inner: Arc<LayerState>,
}

struct LayerState {
    host: String,
    router: axum::Router,
    rules: Vec<Rule>,
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
        let rules = http_rules::arm(host, faults, seed);
        FaultLayer {
            inner: Arc::new(LayerState {
                host: host.to_string(),
                router,
                rules,
                clock,
                shared,
            }),
        }
    }

    /// The handler to give [`crate::run::net::serve`].
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
        {
            // Counted per request: look the host up before allocating its name (only the
            // host's first request inserts it).
            let mut run = state.shared.lock();
            match run.requests_seen.get_mut(state.host.as_str()) {
                Some(seen) => *seen += 1,
                None => {
                    run.requests_seen.insert(state.host.clone(), 1);
                }
            }
        }
        if state.rules.is_empty() || state.shared.healed() {
            return None;
        }
        let now_ms = state.shared.now_us() / 1_000;
        http_rules::decide(&state.rules, &state.host, path, now_ms).cloned()
    }

    async fn handle(
        self,
        request: http::Request<Incoming>,
    ) -> Result<http::Response<axum::body::Body>, ConnectionDropped> {
        let (parts, body) = request.into_parts();
        let body = http_rules::read_body(body).await?;
        let Some(armed) = self.decide(parts.uri.path()) else {
            // No fault: the request goes on as it came, without a copy of its head.
            return Ok(self.forward_owned(parts, body).await);
        };
        let state = &self.inner;
        let detail = format!(
            "{} {} {}",
            armed.rule.describe(),
            parts.method,
            parts.uri.path()
        );
        state.shared.fired(&state.host, armed.index, detail);
        http_rules::apply(
            &armed.rule.effect,
            || self.forward(&parts, body.clone()),
            || {
                let layer = self.clone();
                let parts = parts.clone();
                let body = body.clone();
                tokio::task::spawn_local(async move {
                    let _unheard = layer.forward(&parts, body).await;
                });
            },
            || state.clock.now_ms(),
        )
        .await
    }

    async fn forward(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
    ) -> http::Response<axum::body::Body> {
        self.forward_owned(parts.clone(), body).await
    }

    async fn forward_owned(
        &self,
        parts: http::request::Parts,
        body: Bytes,
    ) -> http::Response<axum::body::Body> {
        let request = http::Request::from_parts(parts, axum::body::Body::from(body));
        match self.inner.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}
