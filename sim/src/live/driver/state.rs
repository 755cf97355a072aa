//! Phase 4, first half: the final state read back after a live run (the whole store with
//! the admin key, public reads without it, read-backs of a described target), and the
//! downstreams' ledgers.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use shipsim_system::api::{HEADER_ADMIN_KEY, HEADER_API_KEY, Order, Shipment};
use shipsim_system::bugs::BugSet;
use shipsim_system::carrier::LabelSale;
use shipsim_system::seed::Seed;
use shipsim_system::store::{OrderRecord, ShipmentRecord, Tables, TablesDump};

use super::super::{LiveError, base_url, error_chain};
use super::options::LiveOptions;
use super::preflight::{PROBE_TIMEOUT, excerpt};
use super::{Live, StateSource, target_error};
use crate::described::DownstreamRef;
use crate::reference::effects_of;
use crate::run::history::{History, OpOutcome};
use crate::run::workload::{self, Recorder as _, SETTLE_POLICY};
use crate::target::Effect;

/// What phase 4 read: the target's state and its downstreams' effects.
pub(super) struct FinalState {
    pub(super) tables: Tables,
    pub(super) source: StateSource,
    pub(super) sales: Option<Vec<LabelSale>>,
    pub(super) effects: Vec<Effect>,
    pub(super) ledgers: Vec<(String, usize)>,
}

/// Phase 4, first half: the final state (whole store with the admin key, public reads
/// without, or, for a described target, every acknowledged resource read back through its
/// API, recorded as verify operations) and the downstreams' ledgers when they can be read.
pub(super) async fn read_final_state(live: &Live<'_>) -> Result<FinalState, LiveError> {
    if live.options.described.is_some() {
        read_back_state(live).await
    } else {
        read_store_state(live).await
    }
}

/// A described target's final state: every acknowledged resource read back through its API
/// (recorded as verify operations), and its downstreams' ledgers since the run began.
async fn read_back_state(live: &Live<'_>) -> Result<FinalState, LiveError> {
    let Live {
        options,
        plan,
        http,
        begun,
        recorder,
        ..
    } = *live;
    let acknowledged = recorder.with_history(|history| workload::acknowledged(history));
    let verify_seed = Seed(options.seed).derive("verify");
    workload::read_back(acknowledged, plan, recorder.clone(), |caller| {
        live.client(
            caller,
            SETTLE_POLICY,
            verify_seed.derive_index("verifier", u64::from(caller.index)),
            &BugSet::none(),
        )
    })
    .await;
    let mut effects = Vec::new();
    let mut ledgers = Vec::new();
    for (downstream, url) in options.downstreams() {
        let Some(url) = url else { continue };
        let after = begun
            .ledger_marks
            .get(&downstream.name)
            .copied()
            .unwrap_or(0);
        let read = patiently(|| async {
            read_ledger(http, &downstream, &url, after)
                .await
                .map_err(|detail| target_error(&url, detail))
        })
        .await?;
        ledgers.push((downstream.name.clone(), read.effects.len()));
        effects.extend(read.effects);
    }
    Ok(FinalState {
        tables: Tables::default(),
        source: StateSource::ReadBack,
        sales: None,
        effects,
        ledgers,
    })
}

/// The reference-shaped service's final state: its whole store with the admin key, public
/// reads without it; and the carrier's ledger when its URL and a key are known.
async fn read_store_state(live: &Live<'_>) -> Result<FinalState, LiveError> {
    let Live {
        options,
        http,
        begun,
        recorder,
        ..
    } = *live;
    let history = recorder.with_history(|history| history.clone());
    let target = &begun.target;
    let admin_key = options.admin_key.as_deref();
    let (tables, source) = match admin_key {
        Some(key) => (
            patiently(|| read_admin_state(http, target, key)).await?,
            StateSource::Admin,
        ),
        None => (
            read_through_api(http, target, &history, options).await,
            StateSource::ApiReads,
        ),
    };
    let carrier_url = options.carrier_url.as_deref().map(base_url);
    let carrier_key = options.carrier_admin_key.as_deref().or(admin_key);
    let sales = match (&carrier_url, carrier_key) {
        (Some(url), Some(key)) => Some(patiently(|| read_sales(http, url, key)).await?),
        _ => None,
    };
    let effects = sales.as_deref().map(effects_of).unwrap_or_default();
    let ledgers = sales
        .as_ref()
        .map(|s| vec![(crate::run::hosts::CARRIER.to_string(), s.len())])
        .unwrap_or_default();
    Ok(FinalState {
        tables,
        source,
        sales,
        effects,
        ledgers,
    })
}

/// What a downstream's ledger held.
pub(super) struct LedgerRead {
    /// The effects made after the mark asked for, in shipsim's terms.
    pub(super) effects: Vec<Effect>,
    /// The sequence number of its last effect (0 when it has none).
    pub(super) seq_last: u64,
}

/// A downstream's ledger (`GET /__shipsim/ledger`, with the spec's admin key): the effects
/// made after effect number `after`.
///
/// # Errors
/// A sentence naming the downstream and what answered.
pub(super) async fn read_ledger(
    client: &reqwest::Client,
    downstream: &DownstreamRef,
    url: &str,
    after: u64,
) -> Result<LedgerRead, String> {
    let path = shipsim_system::downstream::ADMIN_LEDGER_PATH;
    let name = &downstream.name;
    let headers: Vec<(&str, &str)> = downstream
        .spec
        .admin_key
        .as_deref()
        .map(|key| (HEADER_ADMIN_KEY, key))
        .into_iter()
        .collect();
    let mut request = client.get(format!("{url}{path}")).timeout(PROBE_TIMEOUT);
    for (header, value) in headers {
        request = request.header(header, value);
    }
    let response = request.send().await.map_err(|e| {
        format!(
            "the downstream `{name}` at {url} is unreachable: {}",
            error_chain(&e)
        )
    })?;
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap_or_default();
    if status != 200 {
        return Err(format!(
            "the downstream `{name}` at {url} answered {status} at GET {path} (is it `shipsim downstream --spec {}`?): {}",
            downstream.spec_file.display(),
            excerpt(&String::from_utf8_lossy(&body))
        ));
    }
    let snapshot: shipsim_system::downstream::LedgerSnapshot = serde_json::from_slice(&body)
        .map_err(|e| {
            format!("the downstream `{name}` at {url} answered an undecodable ledger: {e}")
        })?;
    let seq_last = snapshot.effects.iter().map(|e| e.seq).max().unwrap_or(0);
    let effects = snapshot
        .effects
        .into_iter()
        .filter(|e| e.seq > after)
        .collect();
    Ok(LedgerRead {
        effects: crate::target::effects_of_ledger(&downstream.spec, effects),
        seq_last,
    })
}

/// Reads of the final state are retried a few times: a server that was just restarted (or a
/// proxy) may refuse a connection for a moment.
const STATE_READ_ATTEMPTS: u32 = 10;

async fn patiently<T, F: Future<Output = Result<T, LiveError>>>(
    read: impl Fn() -> F,
) -> Result<T, LiveError> {
    let mut attempt = 1;
    loop {
        match read().await {
            Ok(value) => return Ok(value),
            Err(error) if attempt >= STATE_READ_ATTEMPTS => return Err(error),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// `GET {url}` with the admin key, decoded as `T` (`what` names it in errors).
async fn get_admin<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    what: &str,
) -> Result<T, LiveError> {
    let response = client
        .get(url)
        .header(HEADER_ADMIN_KEY, key)
        .send()
        .await
        .map_err(|e| target_error(url, error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(target_error(
            url,
            format!("answered {} (is the admin key right?)", response.status()),
        ));
    }
    response
        .json()
        .await
        .map_err(|e| target_error(url, format!("undecodable {what}: {e}")))
}

async fn read_admin_state(
    client: &reqwest::Client,
    target: &str,
    key: &str,
) -> Result<Tables, LiveError> {
    let url = format!("{target}/v1/admin/state");
    let dump: TablesDump = get_admin(client, &url, key, "state").await?;
    Ok(Tables::from(dump))
}

pub(super) async fn read_sales(
    client: &reqwest::Client,
    carrier: &str,
    key: &str,
) -> Result<Vec<LabelSale>, LiveError> {
    get_admin(client, &format!("{carrier}/v1/admin/labels"), key, "ledger").await
}

/// Reads `GET {path}` with `api_key`; `None` unless it answers 200 with `T`.
async fn get_as<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    target: &str,
    path: &str,
    api_key: &str,
) -> Option<T> {
    let response = client
        .get(format!("{target}{path}"))
        .header(HEADER_API_KEY, api_key)
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// The state as the public API shows it to each merchant: every order an operation got
/// back, every shipment such an order lists. Keys come from the operations that received
/// each resource; a shipment no operation ever received gets the key `?{shipment id}`.
async fn read_through_api(
    client: &reqwest::Client,
    target: &str,
    history: &History,
    options: &LiveOptions,
) -> Tables {
    let (order_keys, shipment_keys) = keys_of(history);
    let mut tables = Tables::default();
    for (order_id, (caller, key)) in &order_keys {
        let index = caller
            .strip_prefix("merchant-")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let api_key = options.api_key(index);
        let Some(order) =
            get_as::<Order>(client, target, &format!("/v1/orders/{order_id}"), &api_key).await
        else {
            continue;
        };
        for shipment_id in &order.shipment_ids {
            let Some(shipment) = get_as::<Shipment>(
                client,
                target,
                &format!("/v1/shipments/{shipment_id}"),
                &api_key,
            )
            .await
            else {
                continue;
            };
            let key = shipment_keys
                .get(shipment_id)
                .map_or_else(|| format!("?{shipment_id}"), |(_, key)| key.clone());
            tables.shipments.insert(
                shipment_id.clone(),
                ShipmentRecord {
                    shipment,
                    caller: caller.clone(),
                    idempotency_key: key,
                    // The public API does not show it; no oracle reads it.
                    webhook_sequence: 0,
                },
            );
        }
        tables.orders.insert(
            order_id.clone(),
            OrderRecord {
                order,
                caller: caller.clone(),
                idempotency_key: key.clone(),
            },
        );
    }
    tables
}

/// (caller, idempotency key) by resource id.
type Keys = BTreeMap<String, (String, String)>;

/// The keys of every order and of every shipment, from the write operations answered with
/// them.
fn keys_of(history: &History) -> (Keys, Keys) {
    let mut order_keys = Keys::new();
    let mut shipment_keys = Keys::new();
    for op in history.operations() {
        let OpOutcome::Ok { resource, .. } = &op.outcome else {
            continue;
        };
        if !op.kind.is_write() {
            continue;
        }
        let key = op.key.clone().unwrap_or_default();
        match op.kind.resource() {
            "order" => {
                order_keys.insert(resource.id.clone(), (op.caller.clone(), key));
            }
            "shipment" => {
                shipment_keys.insert(resource.id.clone(), (op.caller.clone(), key));
            }
            _ => {}
        }
    }
    (order_keys, shipment_keys)
}
