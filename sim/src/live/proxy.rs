//! `shipsim proxy`: a fault-injecting HTTP proxy between a client and a service (or between
//! the service and the carrier) that applies a scenario's HTTP faults on real connections.
//!
//! Rules, windows and decisions are the simulation's own (`crate::fault::http_rules`): the
//! same rules are armed for the same host, and each rule draws from the same ChaCha8 stream
//! the simulated host's would use (`host-{service|carrier}` / boot 0 / `http-faults` /
//! `rule[stream]` of the scenario seed), in request-arrival order. Windows are measured in wall ms from the
//! proxy's start, or from the last `POST /_shipsim/begin`. What the effects do on a real
//! connection:
//!
//! | effect | on the wire |
//! |---|---|
//! | 5xx before / after | answered by the proxy; `after` forwards first, so the upstream committed |
//! | 429 | answered by the proxy with `Retry-After` (seconds or HTTP date) |
//! | slow response | forwarded, the response held back for the delay |
//! | drop response | forwarded, then the connection closed without a response |
//! | reset mid-response | forwarded, the head and half the body sent, then the connection aborted |
//! | duplicate | forwarded several times at once; the client gets the first answer |
//! | `latency` (network) on the proxied link | request and response each held for a uniform draw in `min_ms..=max_ms` |
//!
//! The link of a proxy in front of the service is clients <-> service; in front of the
//! carrier, service <-> carrier. Link delays draw from a stream of their own, so they never
//! shift the HTTP faults' decisions.
//!
//! The proxy answers four control paths itself, for the live driver: `GET /_shipsim/proxy`
//! (what it is and how often each fault fired), `POST /_shipsim/begin` (restart the windows
//! and counts: a run begins), `POST /_shipsim/heal` (stop injecting: the settle phase) and,
//! on a proxy started without a scenario (the fault layer of `shipsim downstream`),
//! `POST /_shipsim/arm` (take the run's scenario and seed: [`ArmRequest`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rand::Rng as _;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use shipsim_system::clock::{Clock, WallClock};
use shipsim_system::seed::Seed;
use tokio::net::TcpListener;
use tokio::time::Instant;

use super::{LiveError, base_url, bind};
use crate::fault::http_rules::ConnectionDropped;
use crate::fault::http_rules::{self, Armed, Rule};
use crate::fault::{FaultKind, FaultSpec, Window};
use crate::run::hosts::{CARRIER, HostSel, SERVICE};

/// Largest upstream response the proxy buffers (it must, to cut one in half).
const RESPONSE_BYTES_MAX: usize = 1 << 20;

/// How long the proxy waits for the upstream before answering 504 itself. Longer than any
/// client attempt, so the client's own timeout decides first, but bounded so that a wedged
/// upstream cannot pin proxy tasks forever.
const UPSTREAM_TIMEOUT_MS: u64 = 30_000;

/// How long an idle client connection is kept open.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Path prefix of the proxy's own control endpoints.
pub const CONTROL_PREFIX: &str = "/_shipsim/";

/// Which server the proxy stands in front of, by host name (`service`, `carrier`, a
/// described target's downstream such as `bank`): it arms the rules that target that host.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProxiedHost(String);

impl ProxiedHost {
    /// The system under test (rules with `target = "service"`).
    #[must_use]
    pub fn service() -> ProxiedHost {
        ProxiedHost(SERVICE.to_string())
    }

    /// The reference carrier (rules with `target = "carrier"`).
    #[must_use]
    pub fn carrier() -> ProxiedHost {
        ProxiedHost(CARRIER.to_string())
    }

    /// A downstream host called `name`.
    #[must_use]
    pub fn named(name: &str) -> ProxiedHost {
        ProxiedHost(name.to_string())
    }

    /// The simulated host name it stands for.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.0
    }

    /// Whether it stands for the system under test (its link is the clients').
    fn is_service(&self) -> bool {
        self.0 == SERVICE
    }
}

/// A network `latency` fault on the link the proxy stands on.
#[derive(Clone, Debug)]
struct LinkLatency {
    index: usize,
    window: Window,
    min_ms: u64,
    max_ms: u64,
    describe: String,
}

/// Whether `spec` is a `latency` fault on the link a proxy for `host` carries.
fn on_link(host: &ProxiedHost, spec: &FaultSpec) -> Option<LinkLatency> {
    let FaultKind::Latency(latency) = &spec.kind else {
        return None;
    };
    let peer = |sel: &HostSel| {
        if host.is_service() {
            matches!(sel, HostSel::Clients | HostSel::Client(_))
        } else {
            *sel == HostSel::Service
        }
    };
    let here = |sel: &HostSel| sel.contains(host.name());
    let covered = (here(&latency.a) && peer(&latency.b)) || (here(&latency.b) && peer(&latency.a));
    covered.then(|| LinkLatency {
        index: spec.index,
        window: spec.window,
        min_ms: latency.min_ms,
        max_ms: latency.max_ms,
        describe: spec.kind.describe(),
    })
}

/// Whether a proxy (in front of the service or of a downstream) can apply `spec` on real
/// connections: every HTTP fault, and `latency` on the clients' or the service's link.
#[must_use]
pub fn applies_live(spec: &FaultSpec) -> bool {
    if spec.kind.http_rule().is_some() {
        return true;
    }
    let FaultKind::Latency(latency) = &spec.kind else {
        return false;
    };
    // A link between the service and the clients, or between the service and any other
    // server host, is a link some proxy stands on.
    let clients = |sel: &HostSel| matches!(sel, HostSel::Clients | HostSel::Client(_));
    let service = |sel: &HostSel| *sel == HostSel::Service;
    let server = |sel: &HostSel| sel.is_server() && !service(sel);
    (service(&latency.a) && (clients(&latency.b) || server(&latency.b)))
        || (service(&latency.b) && (clients(&latency.a) || server(&latency.a)))
}

/// One armed rule, as the control endpoint shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleInfo {
    /// Index of the fault in the scenario.
    pub index: usize,
    /// What it does.
    pub describe: String,
    /// When, in ms from the start of the run.
    pub window: String,
    /// Chance per request.
    pub probability: f64,
}

/// What `GET /_shipsim/proxy` answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProxyInfo {
    /// The host it stands for.
    pub host: ProxiedHost,
    /// Where it forwards.
    pub upstream: String,
    /// The seed its decisions draw from.
    pub seed: u64,
    /// Wall ms since the proxy started or the last begin.
    pub elapsed_ms: u64,
    /// Whether injection is stopped.
    pub healed: bool,
    /// The armed rules.
    pub rules: Vec<RuleInfo>,
    /// Times each fault fired since the last begin, by fault index.
    pub fired: BTreeMap<usize, u64>,
    /// Whether a live run arms it with its own scenario and seed (`POST /_shipsim/arm`): a
    /// downstream's fault layer, started without a scenario. A proxy started with a scenario
    /// keeps its own.
    #[serde(default)]
    pub armable: bool,
    /// The scenario its rules come from.
    #[serde(default)]
    pub scenario: String,
}

/// What `POST /_shipsim/arm` takes: the scenario whose faults to apply (canonical TOML, as
/// [`crate::scenario::Scenario::to_toml`] writes it), the target it is parsed for, and the
/// seed of the decisions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmRequest {
    /// The scenario, as TOML.
    pub scenario: String,
    /// What the scenario may name.
    pub topology: crate::scenario::Topology,
    /// Seed of the fault decisions.
    pub seed: u64,
}

/// Rules, link delays and their seed: replaced as a whole when a live run arms the proxy.
struct Rules {
    seed: u64,
    scenario: String,
    rules: Vec<Rule>,
    links: Vec<LinkLatency>,
    link_rng: Mutex<ChaCha8Rng>,
}

impl Rules {
    fn new(host: &ProxiedHost, faults: &[FaultSpec], seed: u64, scenario: String) -> Rules {
        let rng_seed = Seed(seed)
            .derive(&format!("host-{}", host.name()))
            .derive_index("boot", 0)
            .derive("http-faults");
        Rules {
            seed,
            scenario,
            rules: http_rules::arm(host.name(), faults, rng_seed),
            links: faults
                .iter()
                .filter_map(|spec| on_link(host, spec))
                .collect(),
            link_rng: Mutex::new(rng_seed.derive("link-latency").rng()),
        }
    }
}

struct ProxyState {
    host: ProxiedHost,
    upstream: String,
    armable: bool,
    rules: Mutex<Rules>,
    origin: Mutex<Instant>,
    healed: AtomicBool,
    fired: Mutex<BTreeMap<usize, u64>>,
    client: reqwest::Client,
}

/// A fault-injecting proxy; clone it into every connection.
#[derive(Clone)]
pub struct Proxy {
    state: Arc<ProxyState>,
}

impl Proxy {
    /// A proxy for `host` forwarding to `upstream`, armed with the HTTP faults of `faults`
    /// that target `host`, its decisions drawn from `seed` as the simulation's would be.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(
        host: ProxiedHost,
        upstream: &str,
        faults: &[FaultSpec],
        seed: u64,
    ) -> Result<Proxy, LiveError> {
        let rules = Rules::new(&host, faults, seed, String::new());
        Proxy::with_rules(host, upstream, rules, false)
    }

    /// A proxy for `host` forwarding to `upstream` with no rules yet: a live run arms it
    /// with its scenario and seed (`POST /_shipsim/arm`). `shipsim downstream` serves one in
    /// front of the downstream.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn dormant(host: ProxiedHost, upstream: &str) -> Result<Proxy, LiveError> {
        let rules = Rules::new(&host, &[], 0, String::new());
        Proxy::with_rules(host, upstream, rules, true)
    }

    fn with_rules(
        host: ProxiedHost,
        upstream: &str,
        rules: Rules,
        armable: bool,
    ) -> Result<Proxy, LiveError> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .timeout(Duration::from_millis(UPSTREAM_TIMEOUT_MS))
            .build()
            .map_err(|e| LiveError::Target {
                url: upstream.to_string(),
                detail: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Proxy {
            state: Arc::new(ProxyState {
                host,
                upstream: base_url(upstream),
                armable,
                rules: Mutex::new(rules),
                // The wall clock of live mode: windows are real milliseconds.
                origin: Mutex::new(Instant::now()),
                healed: AtomicBool::new(false),
                fired: Mutex::new(BTreeMap::new()),
                client,
            }),
        })
    }

    /// Replaces the rules with `request`'s scenario's, for this proxy's host, drawing from
    /// its seed. The windows and counts restart at the next begin.
    ///
    /// # Errors
    /// A sentence when the scenario does not parse for the topology given.
    pub fn arm(&self, request: &ArmRequest) -> Result<(), String> {
        let scenario = crate::scenario::Scenario::parse_for(
            "<armed by shipsim live>",
            "armed",
            &request.scenario,
            &request.topology,
        )
        .map_err(|e| e.to_string())?;
        let rules = Rules::new(
            &self.state.host,
            &scenario.faults,
            request.seed,
            scenario.name.clone(),
        );
        *self.state.rules.lock().expect("rules lock poisoned") = rules;
        tracing::info!(scenario = %scenario.name, seed = request.seed, "armed");
        Ok(())
    }

    /// What the proxy is and has done.
    ///
    /// # Panics
    /// If a lock was poisoned.
    #[must_use]
    pub fn info(&self) -> ProxyInfo {
        let state = &self.state;
        let rules = state.rules.lock().expect("rules lock poisoned");
        ProxyInfo {
            host: state.host.clone(),
            upstream: state.upstream.clone(),
            seed: rules.seed,
            elapsed_ms: self.elapsed_ms(),
            healed: state.healed.load(Ordering::SeqCst),
            rules: rules
                .rules
                .iter()
                .map(|rule| &rule.armed)
                .map(|armed| RuleInfo {
                    index: armed.index,
                    describe: armed.rule.describe(),
                    window: armed.window.to_string(),
                    probability: armed.probability,
                })
                .chain(rules.links.iter().map(|link| RuleInfo {
                    index: link.index,
                    describe: format!("latency {}", link.describe),
                    window: link.window.to_string(),
                    probability: 1.0,
                }))
                .collect(),
            fired: state.fired.lock().expect("fired lock poisoned").clone(),
            armable: state.armable,
            scenario: rules.scenario.clone(),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        let origin = *self.state.origin.lock().expect("origin lock poisoned");
        u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Serves connections from `listener` until `shutdown` resolves.
    ///
    /// # Errors
    /// When accepting fails.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), LiveError> {
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                accepted = listener.accept() => accepted?,
            };
            let proxy = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let proxy = proxy.clone();
                    async move { proxy.handle(request, peer).await }
                });
                // A connection that ends in error (a client gone, a fault's abort) has
                // nothing left to tell anyone.
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .keep_alive(true)
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    async fn handle(
        self,
        request: http::Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<Body>, ConnectionDropped> {
        let (parts, body) = request.into_parts();
        let body = http_rules::read_body(body).await?;
        if parts.uri.path().starts_with(CONTROL_PREFIX) {
            return Ok(self.control(&parts.method, parts.uri.path(), &body));
        }
        let delays_ms = self.link_delays();
        if let Some((_, request_ms, _)) = delays_ms {
            tokio::time::sleep(Duration::from_millis(request_ms)).await;
        }
        let response = match self.decide(parts.uri.path()) {
            None => Ok(self.forward(&parts, body).await),
            Some(armed) => {
                self.count(armed.index);
                tracing::info!(
                    fault = armed.index,
                    effect = %armed.rule.describe(),
                    method = %parts.method,
                    path = parts.uri.path(),
                    %peer,
                    "fault fired"
                );
                http_rules::apply(
                    &armed.rule.effect,
                    || self.forward(&parts, body.clone()),
                    || {
                        let proxy = self.clone();
                        let parts = parts.clone();
                        let body = body.clone();
                        tokio::spawn(async move {
                            let _unheard = proxy.forward(&parts, body).await;
                        });
                    },
                    || WallClock.now_ms(),
                )
                .await
            }
        };
        if let Some((index, _, response_ms)) = delays_ms {
            self.count(index);
            tokio::time::sleep(Duration::from_millis(response_ms)).await;
        }
        response
    }

    fn count(&self, index: usize) {
        *self
            .state
            .fired
            .lock()
            .expect("fired lock poisoned")
            .entry(index)
            .or_insert(0) += 1;
    }

    /// The first active link latency's delays for this request and its response, if any.
    fn link_delays(&self) -> Option<(usize, u64, u64)> {
        let state = &self.state;
        if state.healed.load(Ordering::SeqCst) {
            return None;
        }
        let rules = state.rules.lock().expect("rules lock poisoned");
        if rules.links.is_empty() {
            return None;
        }
        let now_ms = self.elapsed_ms();
        let link = rules.links.iter().find(|l| l.window.contains(now_ms))?;
        let mut rng = rules.link_rng.lock().expect("link rng lock poisoned");
        let request_ms = rng.random_range(link.min_ms..=link.max_ms);
        let response_ms = rng.random_range(link.min_ms..=link.max_ms);
        Some((link.index, request_ms, response_ms))
    }

    fn decide(&self, path: &str) -> Option<Armed> {
        let state = &self.state;
        if state.healed.load(Ordering::SeqCst) {
            return None;
        }
        let rules = state.rules.lock().expect("rules lock poisoned");
        if rules.rules.is_empty() {
            return None;
        }
        let now_ms = self.elapsed_ms();
        http_rules::decide(&rules.rules, state.host.name(), path, now_ms).cloned()
    }

    /// Sends the request upstream and returns its response; an unreachable upstream becomes
    /// the 502 (or 504) a real proxy would answer.
    async fn forward(&self, parts: &http::request::Parts, body: Bytes) -> Response<Body> {
        let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let url = format!("{}{path}", self.state.upstream);
        let mut headers = parts.headers.clone();
        strip_hop_by_hop(&mut headers);
        headers.remove(http::header::HOST);
        headers.remove(http::header::CONTENT_LENGTH);
        let sent = self
            .state
            .client
            .request(parts.method.clone(), &url)
            .headers(headers)
            .body(body)
            .send()
            .await;
        let mut upstream = match sent {
            Ok(response) => response,
            Err(error) => return gateway_error(&error),
        };
        let status = upstream.status();
        let mut headers = std::mem::take(upstream.headers_mut());
        strip_hop_by_hop(&mut headers);
        let mut bytes = Vec::new();
        loop {
            match upstream.chunk().await {
                Ok(Some(chunk)) if bytes.len() + chunk.len() <= RESPONSE_BYTES_MAX => {
                    bytes.extend_from_slice(&chunk);
                }
                Ok(Some(_)) => {
                    return plain(StatusCode::BAD_GATEWAY, "upstream response too large");
                }
                Ok(None) => break,
                Err(error) => return gateway_error(&error),
            }
        }
        let mut response = Response::new(Body::from(bytes));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }

    fn control(&self, method: &Method, path: &str, body: &[u8]) -> Response<Body> {
        let state = &self.state;
        match (method.as_str(), path.trim_start_matches(CONTROL_PREFIX)) {
            ("GET", "proxy") => {}
            ("POST", "arm") if !state.armable => {
                return plain(
                    StatusCode::CONFLICT,
                    "this proxy applies the scenario it was started with",
                );
            }
            ("POST", "arm") => {
                let armed = serde_json::from_slice::<ArmRequest>(body)
                    .map_err(|e| format!("not an arm request: {e}"))
                    .and_then(|request| self.arm(&request));
                if let Err(problem) = armed {
                    return plain(StatusCode::BAD_REQUEST, &problem);
                }
            }
            ("POST", "begin") => {
                *state.origin.lock().expect("origin lock poisoned") = Instant::now();
                state.fired.lock().expect("fired lock poisoned").clear();
                state.healed.store(false, Ordering::SeqCst);
                tracing::info!("run begins: fault windows restart");
            }
            ("POST", "heal") => {
                state.healed.store(true, Ordering::SeqCst);
                tracing::info!("healed: no more faults");
            }
            _ => return plain(StatusCode::NOT_FOUND, "unknown control path"),
        }
        let body = serde_json::to_vec(&self.info()).expect("proxy info serialises");
        let mut response = Response::new(Body::from(body));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// Headers that belong to one connection and must not be forwarded (RFC 9110, 7.6.1).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    const HOP_BY_HOP: [&str; 8] = [
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ];
    for name in HOP_BY_HOP {
        headers.remove(HeaderName::from_static(name));
    }
}

fn plain(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({
        "error": { "code": "bad_gateway", "message": message, "details": [], "request_id": "" }
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn gateway_error(error: &reqwest::Error) -> Response<Body> {
    let status = if error.is_timeout() {
        StatusCode::GATEWAY_TIMEOUT
    } else {
        StatusCode::BAD_GATEWAY
    };
    plain(status, &format!("upstream: {error}"))
}

/// Binds `listen` and serves `proxy` on it in a task of its own; the proxy stops when the
/// returned handle is dropped. Returns the handle and the address bound.
///
/// # Errors
/// When the address cannot be bound.
pub async fn spawn(proxy: Proxy, listen: &str) -> Result<(ProxyHandle, SocketAddr), LiveError> {
    let (listener, address) = bind(listen).await?;
    let task = tokio::spawn(proxy.serve(listener, std::future::pending()));
    Ok((ProxyHandle(task), address))
}

/// A proxy serving in the background; dropping it stops accepting.
#[derive(Debug)]
pub struct ProxyHandle(tokio::task::JoinHandle<Result<(), LiveError>>);

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use axum::routing::post;

    use super::*;
    use crate::scenario::Scenario;

    /// An upstream on loopback that counts the requests it handled and echoes a body.
    async fn upstream() -> (String, Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
        let handled = Arc::new(AtomicU64::new(0));
        let counter = handled.clone();
        let router = axum::Router::new().route(
            "/v1/orders",
            post(move || {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    (
                        StatusCode::CREATED,
                        "{\"id\":\"ord_1\",\"padding\":\"0123456789\"}",
                    )
                }
            }),
        );
        let (listener, address) = crate::live::bind("127.0.0.1:0").await.unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        (format!("http://{address}"), handled, task)
    }

    /// A proxy in front of `upstream` with one service fault, always firing.
    async fn proxy_with(fault: &str, upstream: &str) -> (String, ProxyHandle) {
        let text = format!("[[fault]]\ntarget = \"service\"\nprobability = 1.0\n{fault}\n");
        let scenario = Scenario::parse("<proxy test>", "proxy_test", &text).unwrap();
        let proxy = Proxy::new(ProxiedHost::service(), upstream, &scenario.faults, 1).unwrap();
        let (handle, address) = spawn(proxy, "127.0.0.1:0").await.unwrap();
        (format!("http://{address}"), handle)
    }

    async fn post_order(url: &str) -> Result<(u16, HeaderMap, String), reqwest::Error> {
        let response = reqwest::Client::new()
            .post(format!("{url}/v1/orders"))
            .body("{}")
            .send()
            .await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await?;
        Ok((status, headers, body))
    }

    async fn settle_counts() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_effect_does_on_the_wire_what_it_says() {
        // Proves every HTTP effect on a real connection, against an upstream that counts
        // what it handled: 503-before never reaches it, 500-after does; 429 carries
        // Retry-After; a slow response arrives after the delay; a dropped one never arrives
        // although the upstream handled it; a reset one breaks mid-body; a duplicated one is
        // handled twice and answered once; and a healed proxy forwards untouched.
        let (upstream_url, handled, _upstream) = upstream().await;
        let count = || handled.load(Ordering::SeqCst);

        let (url, _proxy) = proxy_with("kind = \"http_error\"\nstatus = 503", &upstream_url).await;
        let (status, _, body) = post_order(&url).await.unwrap();
        assert_eq!((status, count()), (503, 0), "{body}");
        assert!(body.contains("injected_fault"));

        let (url, _proxy) = proxy_with(
            "kind = \"http_error\"\nstatus = 500\nwhen = \"after\"",
            &upstream_url,
        )
        .await;
        assert_eq!(post_order(&url).await.unwrap().0, 500);
        assert_eq!(count(), 1, "500-after lets the upstream commit");

        let (url, _proxy) =
            proxy_with("kind = \"rate_limit\"\nretry_after_s = 2", &upstream_url).await;
        let (status, headers, _) = post_order(&url).await.unwrap();
        assert_eq!(status, 429);
        assert_eq!(headers[http::header::RETRY_AFTER], "2");
        assert_eq!(count(), 1, "429 is answered by the proxy");

        let (url, _proxy) =
            proxy_with("kind = \"slow_response\"\ndelay_ms = 300", &upstream_url).await;
        // The OS clock is what this test measures.
        let started = Instant::now();
        assert_eq!(post_order(&url).await.unwrap().0, 201);
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(count(), 2);

        let (url, _proxy) = proxy_with("kind = \"drop_response\"", &upstream_url).await;
        assert!(post_order(&url).await.is_err(), "no response arrives");
        assert_eq!(count(), 3, "the upstream handled the dropped request");

        let (url, _proxy) = proxy_with("kind = \"reset_mid_response\"", &upstream_url).await;
        assert!(post_order(&url).await.is_err(), "the body breaks off");
        assert_eq!(count(), 4);

        let (url, proxy) = proxy_with("kind = \"duplicate\"\ncopies = 3", &upstream_url).await;
        assert_eq!(post_order(&url).await.unwrap().0, 201);
        settle_counts().await;
        assert_eq!(count(), 7, "three deliveries, one answer");

        let client = reqwest::Client::new();
        let info: ProxyInfo = client
            .post(format!("{url}{CONTROL_PREFIX}heal"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(info.healed);
        assert_eq!(info.fired.get(&0), Some(&1));
        assert_eq!(post_order(&url).await.unwrap().0, 201);
        settle_counts().await;
        assert_eq!(count(), 8, "healed: one delivery");
        drop(proxy);
    }

    #[test]
    fn decisions_draw_from_the_simulations_stream() {
        // Proves the proxy arms exactly the rules the simulated host would and seeds each
        // rule's decisions as the simulation's fault layer does (host, boot 0, `http-faults`,
        // the rule's stream), so a seed picks the same sequence of fault decisions in both
        // modes.
        let scenario = Scenario::parse(
            "<proxy test>",
            "proxy_test",
            "[[fault]]\nkind = \"http_error\"\ntarget = \"service\"\nprobability = 0.5\n\
             [[fault]]\nkind = \"drop_response\"\ntarget = \"carrier\"\nprobability = 0.5\n",
        )
        .unwrap();
        let proxy = Proxy::new(
            ProxiedHost::carrier(),
            "http://127.0.0.1:9",
            &scenario.faults,
            42,
        )
        .unwrap();
        let info = proxy.info();
        assert_eq!(info.rules.len(), 1);
        assert_eq!(info.rules[0].index, 1);
        let expected_seed = Seed(42)
            .derive("host-carrier")
            .derive_index("boot", 0)
            .derive("http-faults");
        let rules = http_rules::arm(CARRIER, &scenario.faults, expected_seed);
        let mut seen = Vec::new();
        let mut want = Vec::new();
        for _ in 0..64 {
            seen.push(proxy.decide("/v1/labels").map(|a| a.index));
            want.push(http_rules::decide(&rules, CARRIER, "/v1/labels", 0).map(|a| a.index));
        }
        assert_eq!(seen, want);
        assert!(seen.iter().any(Option::is_some) && seen.iter().any(Option::is_none));
    }
}
