//! HTTP faults, independent of how requests arrive: the rules a scenario declares, the
//! decision whether one fires for a request, and the responses a fault fabricates. The
//! simulation applies them in front of a turmoil host ([`super::layer`]); live mode applies
//! the same rules, with the same decisions from the same seeded streams, in a real proxy
//! (`crate::live::proxy`). Nothing here knows turmoil or reads a clock: the caller passes
//! the time.

use std::sync::Mutex;

use bytes::Bytes;
use http_body_util::BodyExt;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use shipsim_system::client::http_date;
use shipsim_system::seed::Seed;

use super::params::Params;
use super::{FaultSpec, ParamInfo, Window};
use crate::run::hosts::HostSel;
use crate::scenario::ScenarioError;
use crate::scenario::write_quote as quote;

/// Largest request body a fault layer or proxy buffers (it must, to duplicate requests):
/// the service's own limit plus headroom, so the service still sees and refuses oversize
/// bodies.
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
        limit: None,
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
    pub(crate) fn matches(&self, host: &str, path: &str) -> bool {
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

/// One rule armed in front of a host: its fault's index, window and probability.
#[derive(Clone, Debug)]
pub(crate) struct Armed {
    /// Index of the fault in the scenario.
    pub index: usize,
    /// When it is active, ms from the start of the run.
    pub window: Window,
    /// Chance per request.
    pub probability: f64,
    /// What it does.
    pub rule: HttpRule,
}

/// An armed rule with the generator its decisions draw from: one stream per fault, so
/// removing a fault never changes another's decisions.
pub(crate) struct Rule {
    /// The rule.
    pub armed: Armed,
    rng: Mutex<ChaCha8Rng>,
}

/// The HTTP rules of `faults` that act in front of `host`, in file order, each drawing from
/// its own stream `seed / rule[stream]` (the fault's stream number, stable when other faults
/// are added or removed).
pub(crate) fn arm(host: &str, faults: &[FaultSpec], seed: Seed) -> Vec<Rule> {
    faults
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
        .collect()
}

/// The first rule that fires for a request to `host` for `path` at `now_ms`, if any.
///
/// Every active, matching rule draws once from its own stream, fired or not, and the first
/// in file order that fires wins: one rule's decisions never depend on another's. The
/// simulation depends on this exact sequence of draws for its determinism (and its
/// regression files pin trace hashes), so change it only with the trace hashes in mind.
///
/// # Panics
/// If a rule's generator lock was poisoned.
pub(crate) fn decide<'a>(
    rules: &'a [Rule],
    host: &str,
    path: &str,
    now_ms: u64,
) -> Option<&'a Armed> {
    let mut chosen = None;
    for rule in rules {
        let armed = &rule.armed;
        if !armed.window.contains(now_ms) || !armed.rule.matches(host, path) {
            continue;
        }
        let draw: f64 = rule.rng.lock().expect("fault rng lock poisoned").random();
        if draw < armed.probability && chosen.is_none() {
            chosen = Some(armed);
        }
    }
    chosen
}

/// Returned by a fault's handler to close the connection without answering (how a fault
/// loses a response after the work is done).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionDropped;

impl std::fmt::Display for ConnectionDropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for ConnectionDropped {}

/// A request's whole body, up to [`REQUEST_BYTES_MAX`] (buffered: a duplicate must be sent
/// again). A body that cannot be read is one the client broke off: nothing to serve.
pub(crate) async fn read_body(body: hyper::body::Incoming) -> Result<Bytes, ConnectionDropped> {
    Ok(http_body_util::Limited::new(body, REQUEST_BYTES_MAX)
        .collect()
        .await
        .map_err(|_| ConnectionDropped)?
        .to_bytes())
}

/// Applies `effect` to one request. `forward` hands the request to the real server and
/// returns its response; `spawn_copy` delivers one more copy in the background, its answer
/// unheard; `now_ms` reads the server's time of day (for `Retry-After` dates). The
/// simulation's fault layer and live mode's proxy differ only in these three.
pub(crate) async fn apply<F>(
    effect: &HttpEffect,
    forward: impl Fn() -> F,
    spawn_copy: impl Fn(),
    now_ms: impl Fn() -> u64,
) -> Result<http::Response<axum::body::Body>, ConnectionDropped>
where
    F: std::future::Future<Output = http::Response<axum::body::Body>>,
{
    match *effect {
        HttpEffect::Status { status, after } => {
            if after {
                let _discarded = forward().await;
            }
            Ok(injected(status, None))
        }
        HttpEffect::TooManyRequests {
            retry_after_s,
            as_date,
        } => {
            let value = if as_date {
                // `retry_after_s` is at most 300 (its limit) and the server's clock reads
                // about 1.8e12 ms (a skew moves it by a day at most): no overflow.
                let wait_ms = retry_after_s
                    .checked_mul(1_000)
                    .expect("retry_after_s is at most 300 (checked at parse time)");
                http_date(now_ms().saturating_add(wait_ms))
            } else {
                retry_after_s.to_string()
            };
            Ok(injected(429, Some(value)))
        }
        HttpEffect::Slow { delay_ms } => {
            let response = forward().await;
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
            Ok(response)
        }
        HttpEffect::Drop => {
            let _discarded = forward().await;
            Err(ConnectionDropped)
        }
        HttpEffect::Reset => {
            let response = forward().await;
            Ok(truncate(response).await)
        }
        HttpEffect::Duplicate { copies } => {
            // The extra copies run as their own tasks, as a retrying proxy's would; the
            // client gets the answer to the first and never hears of the others.
            for _ in 1..copies {
                spawn_copy();
            }
            Ok(forward().await)
        }
    }
}

/// A response produced by the fault itself, shaped like a proxy's error page.
pub(crate) fn injected(
    status: u16,
    retry_after: Option<String>,
) -> http::Response<axum::body::Body> {
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
pub(crate) async fn truncate(
    response: http::Response<axum::body::Body>,
) -> http::Response<axum::body::Body> {
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
