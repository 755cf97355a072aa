//! Phase 1 of a live run: the fault proxies are found (or one is started in this process),
//! the preflight checks what the run depends on, and the proxies are armed and begun.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::super::proxy::{self, ArmRequest, CONTROL_PREFIX, ProxiedHost, Proxy, ProxyInfo};
use super::super::{LiveError, base_url, error_chain};
use super::options::LiveOptions;
use super::preflight::{PROBE_TIMEOUT, excerpt, preflight};
use super::target_error;
use crate::target::plan::Plan;

/// Where the clients send their requests and which proxies the run controls.
pub(super) struct Begun {
    /// The URL the clients use: the target, or the in-process proxy in front of it.
    pub(super) target: String,
    /// Fault proxies found at the client URL and the downstream URLs.
    pub(super) proxies: Vec<String>,
    /// The in-process proxy, serving until dropped.
    _in_process: Option<proxy::ProxyHandle>,
    /// Per downstream, its last effect before the run: only later ones are judged.
    pub(super) ledger_marks: BTreeMap<String, u64>,
}

/// Phase 1: starts the in-process proxy if asked, finds the fault proxies, checks what the
/// run depends on (the preflight), arms the proxies that take the run's scenario, and
/// restarts every proxy's windows and counts.
pub(super) async fn begin(
    options: &LiveOptions,
    http: &reqwest::Client,
    plan: &Plan,
) -> Result<Begun, LiveError> {
    let service_url = base_url(&options.target);
    let mut awaited = vec![service_url.clone()];
    awaited.extend(options.carrier_url.as_deref().map(base_url));
    awaited.extend(options.downstreams().into_iter().filter_map(|(_, url)| url));
    wait_until_listening(&awaited, options.start_wait).await;
    let (target, in_process) = in_process_proxy(options, &service_url).await?;
    let (proxies, armable) = find_proxies(http, options, &target, &service_url).await;
    let ledger_marks = preflight(http, options, plan, &target, &proxies).await?;
    let arm = ArmRequest {
        scenario: options.scenario.to_toml(),
        topology: topology(options),
        seed: options.seed,
    };
    for url in &armable {
        arm_proxy(http, url, &arm).await?;
    }
    for url in &proxies {
        control(http, url, "begin").await?;
    }
    Ok(Begun {
        target,
        proxies,
        _in_process: in_process,
        ledger_marks,
    })
}

/// The URL the clients use: the target, or, with `--proxy`, a fault proxy started here in
/// front of it (served until the handle drops).
async fn in_process_proxy(
    options: &LiveOptions,
    service_url: &str,
) -> Result<(String, Option<proxy::ProxyHandle>), LiveError> {
    if !options.proxy {
        return Ok((service_url.to_string(), None));
    }
    let proxy = Proxy::new(
        ProxiedHost::service(),
        service_url,
        &options.scenario.faults,
        options.seed,
    )?;
    let (handle, address) = proxy::spawn(proxy, "127.0.0.1:0").await?;
    Ok((format!("http://{address}"), Some(handle)))
}

/// The fault proxies answering at the client URL, the service, the carrier and the
/// downstreams, and those among them that a run arms with its own scenario.
async fn find_proxies(
    http: &reqwest::Client,
    options: &LiveOptions,
    target: &String,
    service_url: &String,
) -> (Vec<String>, Vec<String>) {
    let carrier_url = options.carrier_url.as_deref().map(base_url);
    let downstream_urls: Vec<String> = options
        .downstreams()
        .into_iter()
        .filter_map(|(_, url)| url)
        .collect();
    let mut candidates: Vec<&String> = vec![target];
    if service_url != target {
        candidates.push(service_url);
    }
    candidates.extend(carrier_url.as_ref());
    candidates.extend(&downstream_urls);
    let mut proxies = Vec::new();
    let mut armable = Vec::new();
    for url in candidates {
        if let Some(info) = probe_proxy(http, url).await {
            if info.armable {
                armable.push(url.clone());
            }
            proxies.push(url.clone());
        }
    }
    (proxies, armable)
}

/// What the run's scenario may name: the described target's, or the reference's.
fn topology(options: &LiveOptions) -> crate::scenario::Topology {
    match &options.described {
        Some(described) => described.description().topology(),
        None => crate::scenario::Topology::reference(),
    }
}

/// A fault proxy found at `url`, if one answers there.
async fn probe_proxy(client: &reqwest::Client, url: &str) -> Option<ProxyInfo> {
    let response = client
        .get(format!("{url}{CONTROL_PREFIX}proxy"))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json::<ProxyInfo>().await.ok()
}

pub(super) async fn control(
    client: &reqwest::Client,
    url: &str,
    action: &str,
) -> Result<ProxyInfo, LiveError> {
    let response = client
        .post(format!("{url}{CONTROL_PREFIX}{action}"))
        .send()
        .await
        .map_err(|e| target_error(url, format!("proxy {action}: {}", error_chain(&e))))?;
    response
        .json::<ProxyInfo>()
        .await
        .map_err(|e| target_error(url, format!("proxy {action}: {e}")))
}

/// Arms the fault layer at `url` with the run's scenario and seed.
async fn arm_proxy(
    client: &reqwest::Client,
    url: &str,
    arm: &ArmRequest,
) -> Result<ProxyInfo, LiveError> {
    let response = client
        .post(format!("{url}{CONTROL_PREFIX}arm"))
        .json(arm)
        .send()
        .await
        .map_err(|e| target_error(url, format!("proxy arm: {}", error_chain(&e))))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(target_error(
            url,
            format!("proxy arm answered {status}: {}", excerpt(&body)),
        ));
    }
    response
        .json::<ProxyInfo>()
        .await
        .map_err(|e| target_error(url, format!("proxy arm: {e}")))
}

/// Waits, up to `wait` in all, until every one of `urls` accepts a TCP connection. A URL
/// still refusing at the end is left for the preflight to name; this only spares a run
/// started in the same breath as its service from failing on a server still starting.
async fn wait_until_listening(urls: &[String], wait: Duration) {
    const RETRY: Duration = Duration::from_millis(100);
    let deadline = Instant::now() + wait;
    for url in urls {
        let Some(address) = socket_address(url) else {
            continue;
        };
        let mut announced = false;
        loop {
            let attempt =
                tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(&address));
            if matches!(attempt.await, Ok(Ok(_))) || Instant::now() + RETRY > deadline {
                break;
            }
            if !announced {
                eprintln!(
                    "waiting up to {} s for {url} to listen",
                    deadline
                        .saturating_duration_since(Instant::now())
                        .as_secs_f64()
                        .ceil()
                );
                announced = true;
            }
            tokio::time::sleep(RETRY).await;
        }
    }
}

/// `host:port` of an `http://` or `https://` URL (the scheme's port when none is written).
fn socket_address(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    Some(if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}
