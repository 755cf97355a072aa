//! The service's measurements, exposed at `GET /metrics` in the Prometheus text format
//! (version 0.0.4), and the per-request middleware that takes them and opens the request's
//! `tracing` span.
//!
//! Series:
//! - `shipsim_http_requests_total{method, route, class}`: requests by route template and
//!   status class (`2xx`, `4xx`, `5xx`, `429`, and `1xx`/`3xx` should they ever occur).
//! - `shipsim_http_request_duration_seconds{method, route}`: a latency histogram; p50 and
//!   p95 come from its buckets with `histogram_quantile`.
//! - `shipsim_idempotent_replays_total`: responses answered from a stored outcome.
//! - `shipsim_webhook_duplicates_absorbed_total`: carrier webhook deliveries whose event id
//!   was already taken in, acknowledged and ignored (`POST /v1/webhooks/carrier` answering
//!   `duplicate: true`).
//! - `shipsim_webhook_events_ignored_total{reason}`: carrier events acknowledged and taken
//!   in without effect: `unknown_kind` (a kind this service does not know yet) or
//!   `unknown_shipment` (no shipment with that reference here).
//! - `shipsim_webhook_unknown_fields_total`: carrier events that carried fields this
//!   service does not know (ignored; the event is applied as usual).
//!
//! Routes are labelled by template (`/v1/orders/{id}`), never by raw path, and unmatched
//! paths share one `unmatched` label, so the number of series is bounded by the route table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument as _;
use tracing::field::Empty;

use super::Service;
use super::context::RequestId;
use crate::api::HEADER_IDEMPOTENT_REPLAYED;

/// Upper bounds of the latency buckets, µs: 1 ms to 10 s, roughly ×2.5 apart, the span
/// between a replay from the store and a carrier call at the end of its deadline.
const BUCKET_BOUNDS_US: [u64; 13] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000,
];

/// The status class label of `status`: 429 has its own, as clients treat it apart.
#[must_use]
pub fn status_class(status: u16) -> &'static str {
    match status {
        429 => "429",
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[derive(Clone, Debug, Default)]
struct Histogram {
    /// Observations at or below each bound (not cumulative; summed when rendered).
    buckets: [u64; BUCKET_BOUNDS_US.len()],
    count: u64,
    sum_us: u64,
}

impl Histogram {
    fn observe(&mut self, elapsed_us: u64) {
        if let Some(index) = BUCKET_BOUNDS_US.iter().position(|b| elapsed_us <= *b) {
            self.buckets[index] += 1;
        }
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(elapsed_us);
    }
}

/// What is counted per (method, route template).
#[derive(Debug, Default)]
struct RouteSeries {
    /// Requests by status class.
    requests: BTreeMap<&'static str, u64>,
    latency: Histogram,
}

#[derive(Debug, Default)]
struct Series {
    /// By method, then route template: nested rather than keyed by a `(String, String)`
    /// pair so that counting a request looks its series up by `&str` and allocates only the
    /// first time a route is seen. Iterated in (method, route) order, as the text format
    /// lists them.
    routes: BTreeMap<String, BTreeMap<String, RouteSeries>>,
    replays: u64,
    webhook_duplicates_absorbed: u64,
    /// By reason; both reasons are always listed, so a scrape sees the series from the start.
    webhook_ignored: BTreeMap<&'static str, u64>,
    webhook_unknown_fields: u64,
}

impl Series {
    /// Every (method, route template) counted, in that order, with its series.
    fn series(&self) -> impl Iterator<Item = (&str, &str, &RouteSeries)> {
        self.routes.iter().flat_map(|(method, routes)| {
            routes
                .iter()
                .map(move |(route, series)| (method.as_str(), route.as_str(), series))
        })
    }
}

/// The value of `key` in `map`, inserted as the default if absent; the key is copied into
/// an owned `String` only then.
fn entry_by_str<'m, V: Default>(map: &'m mut BTreeMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key).expect("inserted above if absent")
}

/// The reasons a carrier event is taken in without effect, as `reason` label values.
pub const IGNORED_REASONS: [&str; 2] = ["unknown_kind", "unknown_shipment"];

/// The service's counters and histograms. Cheap to update: one short lock per request.
#[derive(Debug, Default)]
pub struct Metrics {
    state: Mutex<Series>,
}

impl Metrics {
    /// Counts one served request.
    ///
    /// # Panics
    /// If the metrics lock was poisoned.
    pub fn record(&self, method: &str, route: &str, status: u16, elapsed_us: u64, replayed: bool) {
        let mut state = self.state.lock().expect("metrics lock poisoned");
        let series = entry_by_str(entry_by_str(&mut state.routes, method), route);
        *series.requests.entry(status_class(status)).or_insert(0) += 1;
        series.latency.observe(elapsed_us);
        if replayed {
            state.replays += 1;
        }
    }

    /// Counts one duplicate webhook delivery recognised and ignored.
    ///
    /// # Panics
    /// If the metrics lock was poisoned.
    pub fn webhook_duplicate_absorbed(&self) {
        self.state
            .lock()
            .expect("metrics lock poisoned")
            .webhook_duplicates_absorbed += 1;
    }

    /// Counts one carrier event acknowledged without effect; `reason` is one of
    /// [`IGNORED_REASONS`].
    ///
    /// # Panics
    /// If the metrics lock was poisoned, or `reason` is not a known reason (a bug).
    pub fn webhook_ignored(&self, reason: &'static str) {
        assert!(IGNORED_REASONS.contains(&reason), "unknown reason {reason}");
        *self
            .state
            .lock()
            .expect("metrics lock poisoned")
            .webhook_ignored
            .entry(reason)
            .or_insert(0) += 1;
    }

    /// Counts one carrier event that carried fields this service does not know.
    ///
    /// # Panics
    /// If the metrics lock was poisoned.
    pub fn webhook_unknown_fields(&self) {
        self.state
            .lock()
            .expect("metrics lock poisoned")
            .webhook_unknown_fields += 1;
    }

    /// Everything, in the Prometheus text exposition format.
    ///
    /// # Panics
    /// If the metrics lock was poisoned.
    #[must_use]
    pub fn render(&self) -> String {
        let state = self.state.lock().expect("metrics lock poisoned");
        let mut out = String::new();
        out.push_str(
            "# HELP shipsim_http_requests_total HTTP requests served, by route template and status class.\n\
             # TYPE shipsim_http_requests_total counter\n",
        );
        for (method, route, series) in state.series() {
            for (class, count) in &series.requests {
                let _ = writeln!(
                    out,
                    "shipsim_http_requests_total{{method=\"{method}\",route=\"{}\",class=\"{class}\"}} {count}",
                    escape(route)
                );
            }
        }
        out.push_str(
            "# HELP shipsim_http_request_duration_seconds Time from request to response, by route template.\n\
             # TYPE shipsim_http_request_duration_seconds histogram\n",
        );
        for (method, route, series) in state.series() {
            let histogram = &series.latency;
            let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
            let mut cumulative = 0;
            for (bound, count) in BUCKET_BOUNDS_US.iter().zip(histogram.buckets) {
                cumulative += count;
                let seconds = *bound as f64 / 1e6;
                let _ = writeln!(
                    out,
                    "shipsim_http_request_duration_seconds_bucket{{{labels},le=\"{seconds}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "shipsim_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "shipsim_http_request_duration_seconds_sum{{{labels}}} {}",
                histogram.sum_us as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "shipsim_http_request_duration_seconds_count{{{labels}}} {}",
                histogram.count
            );
        }
        let _ = write!(
            out,
            "# HELP shipsim_idempotent_replays_total Responses answered from a stored idempotent outcome.\n\
             # TYPE shipsim_idempotent_replays_total counter\n\
             shipsim_idempotent_replays_total {}\n\
             # HELP shipsim_webhook_duplicates_absorbed_total Duplicate webhook deliveries recognised and ignored.\n\
             # TYPE shipsim_webhook_duplicates_absorbed_total counter\n\
             shipsim_webhook_duplicates_absorbed_total {}\n",
            state.replays, state.webhook_duplicates_absorbed
        );
        out.push_str(
            "# HELP shipsim_webhook_events_ignored_total Carrier events acknowledged and taken in without effect, by reason.\n\
             # TYPE shipsim_webhook_events_ignored_total counter\n",
        );
        for reason in IGNORED_REASONS {
            let count = state.webhook_ignored.get(reason).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "shipsim_webhook_events_ignored_total{{reason=\"{reason}\"}} {count}"
            );
        }
        let _ = write!(
            out,
            "# HELP shipsim_webhook_unknown_fields_total Carrier event deliveries carrying fields this service does not know (ignored).\n\
             # TYPE shipsim_webhook_unknown_fields_total counter\n\
             shipsim_webhook_unknown_fields_total {}\n",
            state.webhook_unknown_fields
        );
        out
    }
}

/// A label value with `\`, `"` and newlines escaped, as the format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    summary = "Prometheus metrics (text format 0.0.4)",
    responses((status = 200, description = "The metrics", body = String, content_type = "text/plain")),
)]
pub(crate) async fn scrape(State(service): State<Arc<Service>>) -> Response {
    let mut response = service.metrics.render().into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Around every route (called by the outermost middleware, [`super::context::served`]):
/// opens the request's span (handlers fill in the caller, key and ids as they learn them),
/// measures the request, and logs its outcome.
pub(crate) async fn observe(service: &Service, request: Request, next: Next) -> Response {
    // Handles, not copies: a matched path is a shared string and a standard method is
    // stored inline, so neither allocates per request.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = request.method().clone();
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map_or("", |id| id.0.as_str());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = %route,
        caller = Empty,
        idempotency_key = Empty,
        order_id = Empty,
        shipment_id = Empty,
        event_id = Empty,
    );
    // tokio's clock: the OS's in live mode, turmoil's in the simulation.
    let started = tokio::time::Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let status = response.status().as_u16();
    let replayed = response.headers().contains_key(HEADER_IDEMPOTENT_REPLAYED);
    service
        .metrics
        .record(method.as_str(), route, status, elapsed_us, replayed);
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = elapsed_us as f64 / 1_000.0,
            replayed,
            "request served"
        );
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_counts_classes_and_fills_cumulative_buckets() {
        // Proves the text format: one counter line per (route, class) with 429 apart from
        // 4xx, cumulative buckets ending in +Inf equal to the count, and the replay counter.
        let metrics = Metrics::default();
        metrics.record("POST", "/v1/orders", 201, 800, false);
        metrics.record("POST", "/v1/orders", 201, 30_000, true);
        metrics.record("POST", "/v1/orders", 429, 100, false);
        metrics.record("POST", "/v1/orders", 422, 100, false);
        metrics.record("GET", "unmatched", 503, 20_000_000, false);
        let text = metrics.render();
        for line in [
            "shipsim_http_requests_total{method=\"POST\",route=\"/v1/orders\",class=\"2xx\"} 2",
            "shipsim_http_requests_total{method=\"POST\",route=\"/v1/orders\",class=\"429\"} 1",
            "shipsim_http_requests_total{method=\"POST\",route=\"/v1/orders\",class=\"4xx\"} 1",
            "shipsim_http_requests_total{method=\"GET\",route=\"unmatched\",class=\"5xx\"} 1",
            "shipsim_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/orders\",le=\"0.001\"} 3",
            "shipsim_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/orders\",le=\"0.025\"} 3",
            "shipsim_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/orders\",le=\"0.05\"} 4",
            "shipsim_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/orders\",le=\"+Inf\"} 4",
            "shipsim_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/orders\"} 4",
            "shipsim_http_request_duration_seconds_bucket{method=\"GET\",route=\"unmatched\",le=\"10\"} 0",
            "shipsim_http_request_duration_seconds_bucket{method=\"GET\",route=\"unmatched\",le=\"+Inf\"} 1",
            "shipsim_idempotent_replays_total 1",
            "shipsim_webhook_duplicates_absorbed_total 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in:\n{text}"
            );
        }
        // Series are listed by method, then route, then class: sorted, so a scrape (and a
        // trace that holds one) reads the same whatever order the requests came in.
        let counters: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("shipsim_http_requests_total{"))
            .collect();
        let mut sorted = counters.clone();
        sorted.sort_unstable();
        assert_eq!(counters, sorted);
        assert_eq!(counters.len(), 4);
    }

    #[test]
    fn status_classes() {
        // Proves 429 is its own class and every other status falls in its hundred.
        assert_eq!(status_class(201), "2xx");
        assert_eq!(status_class(429), "429");
        assert_eq!(status_class(409), "4xx");
        assert_eq!(status_class(503), "5xx");
    }
}
