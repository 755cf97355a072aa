//! HTTP faults, injected in front of a server host: every request to the host passes here
//! before (and its response after) the real router, and the host's active HTTP faults decide
//! what happens to it. Decisions draw from the host's own seeded generator in request
//! arrival order, which the simulation makes deterministic.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use shipsim_system::client::http_date;
use shipsim_system::clock::Clock;
use shipsim_system::seed::Seed;
use tower::ServiceExt;

use super::params::Params;
use super::{FaultSpec, ParamInfo, Window};
use crate::hosts::HostSel;
use crate::net::{BoxFutureLocal, ConnectionDropped};
use crate::scenario::ScenarioError;
use crate::scenario::write_quote as quote;
use crate::shared::Shared;

/// Largest request body the fault layer buffers (it must, to duplicate requests): the
/// service's own limit plus headroom, so the service still sees and refuses oversize bodies.
const REQUEST_BYTES_MAX: usize = 256 * 1024;

/// What an HTTP fault does to a request it fires on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpEffect {
    /// Answer `status`; when `after`, only after the request was handled.
    Status {
        /// The 5xx.
        status: u16,
        /// Whether the request is handled first.
        after: bool,
    },
    /// Answer 429 without handling the request.
    TooManyRequests {
        /// Seconds to ask for.
        retry_after_s: u64,
        /// Whether `Retry-After` is an HTTP date (by the server's clock).
        as_date: bool,
    },
    /// Handle the request, then hold the response.
    Slow {
        /// How long, ms.
        delay_ms: u64,
    },
    /// Handle the request, then close the connection without answering.
    Drop,
    /// Handle the request, send the head, break the body.
    Reset,
    /// Deliver the request `copies` times at once; answer with the first.
    Duplicate {
        /// Deliveries.
        copies: u32,
    },
}

/// An HTTP fault: where it applies and what it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRule {
    /// The server in front of which it acts.
    pub target: HostSel,
    /// Only requests whose path starts with this.
    pub path_prefix: Option<String>,
    /// What it does.
    pub effect: HttpEffect,
}

impl HttpRule {
    /// The `target` parameter of HTTP faults.
    pub(crate) const TARGET: ParamInfo = ParamInfo {
        name: "target",
        required: true,
        doc: "the server in front of which the fault acts: \"service\" or \"carrier\"",
    };

    /// Reads `target` and `path_prefix`.
    pub(crate) fn parse_common(
        params: &mut Params<'_>,
    ) -> Result<(HostSel, Option<String>), ScenarioError> {
        let target = params.server("target")?;
        let path_prefix = match params.text("path_prefix") {
            None => None,
            Some((prefix, span)) => {
                if !prefix.starts_with('/') {
                    return Err(params
                        .error(
                            span,
                            format!("`path_prefix` \"{prefix}\" does not start with /"),
                        )
                        .with_hint("e.g. path_prefix = \"/v1/orders\""));
                }
                Some(prefix)
            }
        };
        Ok((target, path_prefix))
    }

    /// Whether the rule applies to a request to `host` for `path`.
    fn matches(&self, host: &str, path: &str) -> bool {
        self.target.contains(host)
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|prefix| path.starts_with(prefix))
    }

    /// What it does, in words.
    #[must_use]
    pub fn describe(&self) -> String {
        let what = match &self.effect {
            HttpEffect::Status {
                status,
                after: false,
            } => format!("{status} before handling"),
            HttpEffect::Status {
                status,
                after: true,
            } => format!("{status} after handling"),
            HttpEffect::TooManyRequests {
                retry_after_s,
                as_date,
            } => format!(
                "429, Retry-After {retry_after_s} s as {}",
                if *as_date { "date" } else { "seconds" }
            ),
            HttpEffect::Slow { delay_ms } => format!("response held {delay_ms} ms"),
            HttpEffect::Drop => "response dropped after handling".to_string(),
            HttpEffect::Reset => "connection reset mid-response".to_string(),
            HttpEffect::Duplicate { copies } => format!("delivered {copies}x"),
        };
        match &self.path_prefix {
            Some(prefix) => format!("{what} at {}{prefix}", self.target),
            None => format!("{what} at {}", self.target),
        }
    }

    /// Parameters as TOML, for repro files.
    pub(crate) fn params_toml(&self) -> Vec<(&'static str, String)> {
        let mut params = vec![("target", quote(&self.target.to_string()))];
        if let Some(prefix) = &self.path_prefix {
            params.push(("path_prefix", quote(prefix)));
        }
        match &self.effect {
            HttpEffect::Status { status, after } => {
                params.push(("status", status.to_string()));
                params.push(("when", quote(if *after { "after" } else { "before" })));
            }
            HttpEffect::TooManyRequests {
                retry_after_s,
                as_date,
            } => {
                params.push(("retry_after_s", retry_after_s.to_string()));
                params.push((
                    "retry_after_form",
                    quote(if *as_date { "date" } else { "seconds" }),
                ));
            }
            HttpEffect::Slow { delay_ms } => params.push(("delay_ms", delay_ms.to_string())),
            HttpEffect::Duplicate { copies } => params.push(("copies", copies.to_string())),
            HttpEffect::Drop | HttpEffect::Reset => {}
        }
        params
    }
}

/// One armed rule of a host.
#[derive(Clone, Debug)]
struct Armed {
    index: usize,
    window: Window,
    probability: f64,
    rule: HttpRule,
}

/// An armed rule with its own generator.
struct Rule {
    armed: Armed,
    rng: Mutex<ChaCha8Rng>,
}

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
        let rules = faults
            .iter()
            .filter_map(|spec| {
                spec.kind
                    .http_rule()
                    .filter(|rule| rule.target.contains(host))
                    .map(|rule| Rule {
                        armed: Armed {
                            index: spec.index,
                            window: spec.window,
                            probability: spec.probability,
                            rule: rule.clone(),
                        },
                        rng: Mutex::new(seed.derive_index("rule", spec.stream).rng()),
                    })
            })
            .collect();
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
        *state
            .shared
            .lock()
            .requests_seen
            .entry(state.host.clone())
            .or_insert(0) += 1;
        if state.rules.is_empty() || state.shared.healed() {
            return None;
        }
        let now_ms = state.shared.now_us() / 1_000;
        // Every eligible rule draws, fired or not, so one rule's decisions never depend on
        // another's: removing a fault leaves the others' choices as they were.
        let mut chosen = None;
        for rule in &state.rules {
            let armed = &rule.armed;
            if !armed.window.contains(now_ms) || !armed.rule.matches(&state.host, path) {
                continue;
            }
            let draw: f64 = rule.rng.lock().expect("fault rng lock poisoned").random();
            if draw < armed.probability && chosen.is_none() {
                chosen = Some(armed.clone());
            }
        }
        chosen
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

/// A response produced by the fault itself, shaped like a proxy's error page.
fn injected(status: u16, retry_after: Option<String>) -> http::Response<axum::body::Body> {
    let body = r#"{"error":{"code":"injected_fault","message":"injected by shipsim","details":[],"request_id":""}}"#;
    let mut builder = http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(value) = retry_after {
        builder = builder.header(http::header::RETRY_AFTER, value);
    }
    builder
        .body(axum::body::Body::from(body))
        .expect("static response is valid")
}

/// The response's head with half its body, then a body error: hyper aborts the connection
/// mid-response, after the `Content-Length` of the whole body was promised.
async fn truncate(response: http::Response<axum::body::Body>) -> http::Response<axum::body::Body> {
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    http::Response::from_parts(
        parts,
        axum::body::Body::new(Truncated {
            data: Some(half),
            failed: false,
        }),
    )
}

/// A body of one data frame followed by an error.
struct Truncated {
    data: Option<Bytes>,
    failed: bool,
}

impl hyper::body::Body for Truncated {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        if let Some(data) = self.data.take() {
            return std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(data))));
        }
        if self.failed {
            return std::task::Poll::Ready(None);
        }
        self.failed = true;
        std::task::Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset by shipsim",
        ))))
    }
}
