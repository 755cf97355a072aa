//! The preflight: before a live run starts, the target answers (and says it is ready),
//! every downstream ledger the oracles will read answers, and every merchant's credentials
//! are accepted. Each problem is a sentence naming what is unreachable or refused.

use std::collections::BTreeMap;
use std::time::Duration;

use super::super::{LiveError, base_url, error_chain};
use super::begin::control;
use super::options::LiveOptions;
use super::state::{read_ledger, read_sales};
use crate::target::plan::Plan;
use crate::target::{Caller, ReadCall};

/// How long a preflight probe waits for an answer.
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The default of [`LiveOptions::start_wait`].
pub const START_WAIT_DEFAULT: Duration = Duration::from_secs(10);

/// The readiness route `shipsim serve` answers (200 when its carrier answers, 503 naming it
/// when not); a reference-shaped target without it is probed for reachability only.
pub const REFERENCE_READY_PATH: &str = "/__shipsim/ready";

/// One probe: `GET url` with `headers`, answered within [`PROBE_TIMEOUT`]; the status and
/// the start of the body, or why nothing answered.
async fn probe(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, String), String> {
    let mut request = client.get(url).timeout(PROBE_TIMEOUT);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.map_err(|e| error_chain(&e))?;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    Ok((status, excerpt(&body)))
}

/// The start of a body, on one line, for a message.
pub(super) fn excerpt(body: &str) -> String {
    const EXCERPT_CHARS_MAX: usize = 200;
    let flat: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(EXCERPT_CHARS_MAX)
        .collect();
    if body.chars().count() > EXCERPT_CHARS_MAX {
        format!("{flat}...")
    } else {
        flat
    }
}

/// The preflight: with every proxy healed, the target, the ledgers and the merchants'
/// credentials are checked. Returns, per downstream, its last effect before the run.
///
/// # Errors
/// [`LiveError::Unready`], naming every problem found.
pub(super) async fn preflight(
    http: &reqwest::Client,
    options: &LiveOptions,
    plan: &Plan,
    target: &str,
    proxies: &[String],
) -> Result<BTreeMap<String, u64>, LiveError> {
    // The checks run healed, so they neither meet a fault nor draw from the proxies'
    // decision streams; `begin` then starts the windows and counts from zero.
    let mut problems = Vec::new();
    for url in proxies {
        if let Err(error) = control(http, url, "heal").await {
            problems.push(format!("the fault proxy at {url} does not answer: {error}"));
        }
    }
    preflight_target(http, options, &mut problems).await;
    if !problems.is_empty() {
        // Nothing else can be checked through a target that does not answer.
        let _ = preflight_ledgers(http, options, &mut problems).await;
        return Err(LiveError::Unready { problems });
    }
    let ledger_marks = preflight_ledgers(http, options, &mut problems).await;
    preflight_keys(http, target, options, plan, &mut problems).await;
    if !problems.is_empty() {
        return Err(LiveError::Unready { problems });
    }
    Ok(ledger_marks)
}

/// The target answers at all, and its readiness route says ready.
async fn preflight_target(
    client: &reqwest::Client,
    options: &LiveOptions,
    problems: &mut Vec<String>,
) {
    // The service itself, not the in-process proxy in front of it: a proxy would answer 502
    // for an unreachable upstream and hide what is wrong.
    let service = base_url(&options.target);
    let ready = match &options.described {
        Some(described) => described
            .description()
            .ready
            .as_ref()
            .map(|route| route.path.clone()),
        None => Some(REFERENCE_READY_PATH.to_string()),
    };
    let path = ready.clone().unwrap_or_else(|| "/".to_string());
    match probe(client, &format!("{service}{path}"), &[]).await {
        Err(error) => problems.push(format!("the target {service} is unreachable: {error}")),
        Ok((status, _)) if ready.is_none() || (200..300).contains(&status) => {}
        // A reference-shaped service without shipsim's readiness route is not ours: it was
        // reachable, which is all that can be checked.
        Ok((404, _)) if options.described.is_none() => {}
        Ok((status, body)) => problems.push(format!(
            "the target {service} is not ready: GET {path} answered {status}: {body}"
        )),
    }
}

/// Every downstream whose ledger the oracles will read answers with it.
///
/// Returns, per downstream, the sequence number of its last effect so far: the run judges
/// only the effects made after it (a downstream that served an earlier run still holds
/// that run's effects).
async fn preflight_ledgers(
    client: &reqwest::Client,
    options: &LiveOptions,
    problems: &mut Vec<String>,
) -> BTreeMap<String, u64> {
    let mut marks = BTreeMap::new();
    for (downstream, url) in options.downstreams() {
        let Some(url) = url else { continue };
        match read_ledger(client, &downstream, &url, 0).await {
            Ok(effects) => {
                marks.insert(downstream.name.clone(), effects.seq_last);
            }
            Err(problem) => problems.push(problem),
        }
    }
    let carrier_url = options.carrier_url.as_deref().map(base_url);
    let carrier_key = options
        .carrier_admin_key
        .as_deref()
        .or(options.admin_key.as_deref());
    if let (Some(url), Some(key)) = (carrier_url, carrier_key)
        && let Err(error) = read_sales(client, &url, key).await
    {
        problems.push(format!("the carrier's ledger cannot be read: {error}"));
    }
    marks
}

/// Every merchant's credentials are accepted: a read of an id that does not exist must not
/// be refused as unauthenticated.
async fn preflight_keys(
    client: &reqwest::Client,
    target: &str,
    options: &LiveOptions,
    plan: &Plan,
    problems: &mut Vec<String>,
) {
    let callers = options.scenario.hosts.callers;
    if options.described.is_none()
        && !options.api_keys.is_empty()
        && options.api_keys.len() < callers as usize
    {
        problems.push(format!(
            "the scenario has {callers} merchants but only {} API keys were given",
            options.api_keys.len()
        ));
        return;
    }
    let Some(kind) = plan
        .table
        .kinds()
        .iter()
        .find(|k| k.read_route_template().is_some())
    else {
        return;
    };
    for caller in plan.callers.iter() {
        let Ok(request) = plan.api.read(
            kind,
            &ReadCall {
                caller,
                id: "shipsim-preflight-0",
            },
        ) else {
            return;
        };
        match probe_request(client, target, &request).await {
            Ok((401 | 403, body)) => {
                let whence = credentials_source(options, caller);
                problems.push(format!(
                    "the target refuses the credentials of {} ({whence}): {body}",
                    caller.id
                ));
            }
            Ok(_) => {}
            Err(error) => {
                problems.push(format!("the target {target} is not usable: {error}"));
                return;
            }
        }
    }
}

/// `request` sent to `target` as a probe, tried a few times: a proxy in front may inject a
/// fault on any request, even this one. The last answer (below 500 ends the tries).
async fn probe_request(
    client: &reqwest::Client,
    target: &str,
    request: &shipsim_system::transport::HttpRequest,
) -> Result<(u16, String), String> {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    let url = format!("{target}{path}");
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let mut last = Err(String::new());
    for _ in 0..10 {
        last = probe(client, &url, &headers).await;
        if matches!(&last, Ok((status, _)) if *status < 500) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

/// Where `caller`'s refused credentials came from, and what to do about it, for the
/// preflight's message.
fn credentials_source(options: &LiveOptions, caller: &Caller) -> String {
    let callers = options.scenario.hosts.callers;
    match &options.described {
        Some(d) => d.description().auth.as_ref().map_or_else(
            || "the description has no [auth]".to_string(),
            |auth| match &auth.secrets {
                crate::described::Secrets::Read { source, .. } => {
                    format!("its secret from {source}")
                }
                _ => format!("header {}", auth.header),
            },
        ),
        None => format!(
            "key {}: start the service with at least {callers} merchants (`shipsim serve --callers {callers}`), or give the target's own keys with --api-key",
            caller.api_key
        ),
    }
}
