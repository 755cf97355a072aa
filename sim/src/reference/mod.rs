//! The reference order/shipment system as a [`Target`]: shipsim's exemplar and test bed,
//! plugged in through the same public API a user's service is ([`Target`], [`Boot`],
//! [`Api`](crate::Api)), with nothing private. Its pieces live in `shipsim-system`; this module only
//! wires them: the service on the `service` host with a [`MemoryStore`] (or, with `[service]
//! store = "sqlite"`, the [`SqliteStore`] it ships with, on the host's simulated SQLite
//! database: [`Boot::sqlite`]), the carrier it
//! buys labels from on `carrier` (a ledger of every label sold), and, in scenarios with
//! outbound webhooks, the merchants' receiver on `receiver`.

mod api;
pub(crate) mod probes;
mod webhooks;

use std::collections::BTreeMap;

use shipsim_system::api::ShipmentStatus;
use shipsim_system::carrier::{
    self, CarrierConfig, CarrierDeps, CarrierLedger, LabelSale, TrackingConfig,
};
use shipsim_system::receiver::poll::PollConfig;
use shipsim_system::receiver::{self, ReceiverConfig, ReceiverDeps, ReceiverLedger};
use shipsim_system::service::{self, ServiceConfig, ServiceDeps, WebhookSettings, WebhookTarget};
use shipsim_system::store::{IdemState, MemoryStore, SimSqlite, SqliteStore, Store, Tables};
use shipsim_system::webhook::{SecretRotation, SenderConfig};

pub use api::ReferenceApi;

use crate::scenario::{Scenario, SecretRotationSettings, ServiceStore};
use crate::target::{Boot, Effect, Inventories, Inventory, Resource, Target, Unfinished};

/// The service's API key at the carrier.
pub(crate) const CARRIER_API_KEY: &str = "ck_sim_platform";

/// A country the simulated carrier does not serve (Antarctica).
pub(crate) const UNSERVICEABLE_COUNTRY: &str = "AQ";

pub use crate::run::hosts::{CARRIER, RECEIVER};

/// Names and secrets of the simulated deployment (live mode's defaults too).
pub(crate) mod deployment {
    /// The operator's admin key (service and carrier admin endpoints).
    pub const ADMIN_KEY: &str = "ak_sim_operator";
    /// The prefix of the ids of tracking events a `webhook_burst` fault schedules at the
    /// carrier: extra scans outside any parcel's story.
    pub const BURST_EVENT_PREFIX: &str = "burst-";

    /// The secret the carrier signs tracking events with.
    pub const CARRIER_WEBHOOK_SECRET: &str = "whsec_sim_carrier";

    /// The secret merchant `caller` verifies the service's webhooks with.
    pub fn merchant_secret(caller: &str) -> String {
        format!("whsec_sim_{caller}")
    }
}

pub use deployment::ADMIN_KEY;

/// The reference system: service, carrier, and (with outbound webhooks) receiver.
#[must_use]
pub fn target() -> Target {
    Target::new("reference", service_router)
        .api(ReferenceApi)
        .host(CARRIER, carrier_router)
        .host_when(
            RECEIVER,
            |scenario: &Scenario| scenario.webhooks.is_some_and(|w| w.outbound),
            receiver_router,
        )
        .inventory(|durables| {
            service_tables(durables, |live, durable| Inventories {
                live: inventory_of(live),
                durable: inventory_of(durable),
            })
            .unwrap_or_default()
        })
        .effects(|durables| {
            durables
                .get::<CarrierLedger>(CARRIER, "ledger")
                .map(|ledger| effects_of(&ledger.sales()))
                .unwrap_or_default()
        })
        .quiesce(
            |scenario: &Scenario| webhooks::needs_drain(scenario) || probes::wanted(scenario),
            |context| {
                Box::pin(async move {
                    // The probes first: what they create (an order a misbehaving caller got
                    // through) emits webhooks too, which the drain then waits for like any
                    // other (explore seeds 124, 257, 338, 431: drained first, the probes'
                    // order.created events were still in the outbox when the run ended).
                    probes::run(&context).await;
                    webhooks::drain(context.clone()).await;
                })
            },
        )
        .webhook_parties(webhooks::Parties)
}

fn webhook_settings(scenario: &Scenario) -> WebhookSettings {
    let settings = scenario.webhooks;
    let outbound = settings.is_some_and(|w| w.outbound);
    WebhookSettings {
        carrier_secret: deployment::CARRIER_WEBHOOK_SECRET.to_string(),
        tolerance_s: settings.map_or(shipsim_system::webhook::TOLERANCE_S_DEFAULT, |w| {
            w.tolerance_s
        }),
        targets: if outbound {
            (0..scenario.hosts.callers)
                .map(|i| {
                    let caller = crate::target::Caller::new(i).id;
                    let target = WebhookTarget {
                        url: format!(
                            "http://{RECEIVER}:{}/webhooks/{caller}",
                            crate::run::hosts::HTTP_PORT
                        ),
                        secret: deployment::merchant_secret(&caller),
                        previous_secret: None,
                    };
                    (caller, target)
                })
                .collect()
        } else {
            BTreeMap::new()
        },
        sender: settings.map_or(SenderConfig::DEFAULT, |w| w.sender),
    }
}

/// The service's keys: each caller's own, and with a `[credentials]` rotation its new key
/// too, the old one retired at the scenario's time.
fn api_keys(
    callers: &[crate::target::Caller],
    rotation: Option<crate::scenario::CredentialSettings>,
) -> (
    BTreeMap<String, String>,
    BTreeMap<String, service::KeyRetirement>,
) {
    let mut keys: BTreeMap<String, String> = callers
        .iter()
        .map(|c| (c.api_key.clone(), c.id.clone()))
        .collect();
    let mut retirements = BTreeMap::new();
    if let Some(rotation) = rotation {
        let unix_ms = |at_ms: u64| crate::run::clock::EPOCH_UNIX_MS + at_ms;
        for caller in callers {
            keys.insert(
                crate::scenario::CredentialSettings::rotated_key(&caller.api_key),
                caller.id.clone(),
            );
            retirements.insert(
                caller.api_key.clone(),
                service::KeyRetirement {
                    replaced_at_ms: unix_ms(rotation.rotate_keys_at_ms),
                    retired_at_ms: unix_ms(rotation.retire_old_keys_at_ms),
                },
            );
        }
    }
    (keys, retirements)
}

/// The service's durable store, by this name on its host: a [`MemoryStore`], or the
/// [`SimSqlite`] database its [`SqliteStore`] keeps its tables in.
const STORE: &str = "store";

/// Reads the service's tables as its running process sees them and as a crash would leave
/// them, on whichever store the scenario runs it; `None` before the service's first boot.
pub(crate) fn service_tables<R>(
    durables: &crate::target::Durables,
    read: impl FnOnce(&Tables, &Tables) -> R,
) -> Option<R> {
    let host = crate::target::SERVICE_HOST;
    if let Some(db) = durables.get::<SimSqlite>(host, STORE) {
        // SQLite acknowledges only what it committed, and a crash keeps every commit: the
        // running process's view is the durable one. No task holds the connection between
        // transactions (they never await), so it is free whenever the simulation reads it.
        let tables = SqliteStore::sim_tables(&db)
            .expect("the service's simulated database is readable between transactions");
        return Some(read(&tables, &tables));
    }
    durables
        .get::<MemoryStore>(host, STORE)
        .map(|store| store.inspect(read))
}

/// Whether the service has booted with a store (of either kind), without reading it.
pub(crate) fn has_service_store(durables: &crate::target::Durables) -> bool {
    let host = crate::target::SERVICE_HOST;
    durables.get::<SimSqlite>(host, STORE).is_some()
        || durables.get::<MemoryStore>(host, STORE).is_some()
}

/// The service's store for this boot, of the kind the scenario names.
fn service_store(boot: &Boot) -> std::sync::Arc<dyn Store> {
    match boot.scenario().service.store {
        ServiceStore::Memory => boot.durable(STORE, MemoryStore::new),
        ServiceStore::Sqlite => {
            let db = boot
                .sqlite(STORE)
                .expect("an in-memory SQLite database opens");
            let (store, boots_before) = SqliteStore::on_sim(&db)
                .expect("the service's simulated database holds its own schema");
            // The store counts the host's boots as the simulation does (one open per boot).
            assert_eq!(
                boots_before,
                boot.boot_number(),
                "the store's boot counter agrees with the host's"
            );
            std::sync::Arc::new(store)
        }
    }
}

fn service_router(boot: &Boot) -> axum::Router {
    let scenario = boot.scenario();
    let webhooks = webhook_settings(scenario);
    let (api_keys, key_retirements) = api_keys(boot.callers(), scenario.credentials);
    let config = ServiceConfig {
        api_keys,
        key_retirements,
        carrier_base_url: boot.downstream(CARRIER).base_url().to_string(),
        carrier_api_key: CARRIER_API_KEY.to_string(),
        carrier_policy: scenario.service.carrier,
        rate_limit: scenario.service.rate_limit,
        lock_lease_ms: scenario.service.lock_lease_ms,
        idempotency_retention_ms: retention_ms(scenario),
        store_latency_ms: scenario.service.store_latency_ms,
        bugs: boot.bugs().clone(),
        admin_key: Some(deployment::ADMIN_KEY.to_string()),
        webhooks: webhooks.clone(),
    };
    let deps = ServiceDeps {
        clock: boot.clock(),
        store: service_store(boot),
        carrier: boot.downstream(CARRIER).transport(),
        observer: boot.observer(),
        seed: boot.seed("service"),
        boot: boot.boot_number(),
    };
    if !webhooks.targets.is_empty() {
        // The wire is recorded: `credentials_honoured` reads the signatures under a secret
        // rotation, `webhook_once` the retry schedule. Recording awaits nothing and draws
        // nothing, so it moves no delivery and no trace hash.
        let transport: std::sync::Arc<dyn shipsim_system::transport::Transport> =
            std::sync::Arc::new(webhooks::Recorded {
                inner: boot.webhook_sender(RECEIVER, false).transport(),
                log: boot.durable(webhooks::WIRE_LOG, webhooks::WireLog::default),
                boot: boot.boot_number(),
            });
        let mut rotations = BTreeMap::new();
        if let Some(rotation) = scenario.credentials.and_then(|c| c.secrets) {
            for (caller, target) in &webhooks.targets {
                let rotated = SecretRotation {
                    secret: SecretRotationSettings::rotated_secret(&target.secret),
                    from_ms: unix_ms(rotation.rotate_at_ms),
                    old_until_ms: unix_ms(rotation.retire_old_at_ms),
                };
                rotations.insert(caller.clone(), rotated);
            }
        }
        tokio::task::spawn_local(service::run_outbox_sender_rotating(
            webhooks,
            rotations,
            boot.bugs().clone(),
            deps.clone(),
            transport,
        ));
    }
    // The sweeper runs as in a deployment (live mode spawns it too); with the default
    // retention no simulated run lasts long enough for it to find anything.
    tokio::task::spawn_local(service::run_idempotency_sweeper(
        deps.store.clone(),
        deps.clock.clone(),
        retention_ms(scenario),
        sweep_batch(scenario),
    ));
    service::router(config, deps)
}

/// Records per sweep transaction: the scenario's (at most 100,000, so it fits), or the
/// service's own.
fn sweep_batch(scenario: &Scenario) -> usize {
    scenario
        .service
        .idempotency_sweep_batch
        .and_then(|batch| usize::try_from(batch).ok())
        .unwrap_or(service::SWEEP_BATCH_MAX)
}

/// The service's idempotency retention: the scenario's, or the service's own default.
fn retention_ms(scenario: &Scenario) -> u64 {
    scenario
        .service
        .idempotency_retention_ms
        .unwrap_or(service::IDEMPOTENCY_RETENTION_MS_DEFAULT)
}

fn carrier_router(boot: &Boot) -> axum::Router {
    let scenario = boot.scenario();
    let tracking = scenario
        .webhooks
        .filter(|w| w.tracking)
        .map(|w| TrackingConfig {
            webhook_url: format!(
                "http://{}:{}/v1/webhooks/carrier",
                crate::target::SERVICE_HOST,
                crate::run::hosts::HTTP_PORT
            ),
            secret: deployment::CARRIER_WEBHOOK_SECRET.to_string(),
            exception_percent: w.exception_percent,
            sender: w.sender,
        });
    let deps = CarrierDeps {
        clock: boot.clock(),
        ledger: boot.durable("ledger", CarrierLedger::new),
        observer: boot.observer(),
        seed: boot.seed("carrier"),
        boot: boot.boot_number(),
    };
    if let Some(tracking) = &tracking {
        // The wire is recorded: `webhook_once` judges the tracking sender's wake-ups from it.
        // Recording awaits nothing and draws nothing, so it moves no delivery and no hash.
        let transport: std::sync::Arc<dyn shipsim_system::transport::Transport> =
            std::sync::Arc::new(webhooks::Recorded {
                inner: boot
                    .webhook_sender(crate::target::SERVICE_HOST, true)
                    .transport(),
                log: boot.durable(webhooks::TRACKING_WIRE_LOG, webhooks::WireLog::default),
                boot: boot.boot_number(),
            });
        tokio::task::spawn_local(carrier::run_tracking_sender(
            tracking.clone(),
            deps.clone(),
            transport,
        ));
    }
    carrier::router(
        CarrierConfig {
            api_key: CARRIER_API_KEY.to_string(),
            unserviceable_countries: [UNSERVICEABLE_COUNTRY.to_string()].into_iter().collect(),
            tracking,
            admin_key: Some(deployment::ADMIN_KEY.to_string()),
        },
        deps,
    )
}

fn receiver_router(boot: &Boot) -> axum::Router {
    let scenario = boot.scenario();
    let tolerance_s = scenario
        .webhooks
        .map_or(shipsim_system::webhook::TOLERANCE_S_DEFAULT, |w| {
            w.tolerance_s
        });
    let deps = ReceiverDeps {
        clock: boot.clock(),
        ledger: boot.durable("ledger", ReceiverLedger::new),
        observer: boot.observer(),
        seed: boot.seed("receiver"),
        boot: boot.boot_number(),
    };
    if let Some(poll) = scenario.webhooks.and_then(|w| w.poll_events) {
        // The merchant also reads its events feed; the poller dies with the host and
        // resumes from the ledger's cursor when it boots again.
        let service = boot.downstream(crate::target::SERVICE_HOST);
        let config = PollConfig {
            service_base_url: service.base_url().to_string(),
            api_keys: boot
                .callers()
                .iter()
                .map(|c| (c.id.clone(), c.api_key.clone()))
                .collect(),
            every_ms: poll.every_ms,
            limit: poll.limit,
            timeout_ms: POLL_TIMEOUT_MS,
            bugs: boot.bugs().clone(),
        };
        tokio::task::spawn_local(receiver::poll::run_poller(
            config,
            deps.clone(),
            service.transport(),
        ));
    }
    receiver::router(
        ReceiverConfig {
            secrets: boot
                .callers()
                .iter()
                .map(|c| (c.id.clone(), deployment::merchant_secret(&c.id)))
                .collect(),
            rotations: receiver_rotations(boot.callers(), scenario),
            tolerance_s,
            store_latency_ms: scenario.service.store_latency_ms,
            bugs: boot.bugs().clone(),
        },
        deps,
    )
}

/// The merchants' switches to their new signing secrets under a `[credentials]` secret
/// rotation.
fn receiver_rotations(
    callers: &[crate::target::Caller],
    scenario: &Scenario,
) -> BTreeMap<String, receiver::ReceiverRotation> {
    let Some(rotation) = scenario.credentials.and_then(|c| c.secrets) else {
        return BTreeMap::new();
    };
    callers
        .iter()
        .map(|c| {
            let rotated = receiver::ReceiverRotation {
                secret: SecretRotationSettings::rotated_secret(&deployment::merchant_secret(&c.id)),
                accepts_new_from_ms: unix_ms(rotation.receiver_switches_at_ms),
                drops_old_at_ms: unix_ms(rotation.retire_old_at_ms),
            };
            (c.id.clone(), rotated)
        })
        .collect()
}

/// `at_ms` of simulated time as unix ms.
fn unix_ms(at_ms: u64) -> u64 {
    crate::run::clock::EPOCH_UNIX_MS + at_ms
}

/// Deadline of one events-feed page request of the merchants' poller: a partition can hold
/// a request forever, and the next poll should not wait for it.
const POLL_TIMEOUT_MS: u64 = 2_000;

/// Whether a shipment's status says its label was bought.
fn labelled(status: ShipmentStatus) -> bool {
    matches!(
        status,
        ShipmentStatus::LabelPurchased
            | ShipmentStatus::InTransit
            | ShipmentStatus::Delivered
            | ShipmentStatus::Exception
    )
}

/// A status as the API spells it (`label_purchased`).
pub(crate) fn spelled<T: serde::Serialize>(status: &T) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The service's tables in shipsim's terms: orders (with their shipments listed), then
/// shipments; idempotency records left in progress and shipments left pending their label
/// as unfinished work; an order's status that disagrees with its shipments' labels as an
/// inconsistency.
#[must_use]
pub fn inventory_of(tables: &Tables) -> Inventory {
    let mut resources = Vec::with_capacity(tables.orders.len() + tables.shipments.len());
    for (id, record) in &tables.orders {
        resources.push(Resource {
            kind: "order".into(),
            id: id.clone(),
            caller: record.caller.clone(),
            key: Some(record.idempotency_key.clone()),
            parent: None,
            children: Some(record.order.shipment_ids.clone()),
            state: Some(spelled(&record.order.status)),
            downstream_ref: None,
            settled: None,
        });
    }
    for (id, record) in &tables.shipments {
        let shipment = &record.shipment;
        resources.push(Resource {
            kind: "shipment".into(),
            id: id.clone(),
            caller: record.caller.clone(),
            key: Some(record.idempotency_key.clone()),
            parent: Some(shipment.order_id.clone()),
            children: None,
            state: Some(spelled(&shipment.status)),
            downstream_ref: shipment.label_id.clone(),
            settled: Some(labelled(shipment.status)),
        });
    }
    let mut inventory = Inventory::new(resources);
    for (id, record) in &tables.shipments {
        if record.shipment.status == ShipmentStatus::PendingLabel {
            inventory.unfinished.push(Unfinished {
                caller: record.caller.clone(),
                key: record.idempotency_key.clone(),
                what: format!("shipment {id} was left pending its label"),
            });
        }
    }
    for (scope, record) in &tables.idempotency {
        if let IdemState::InProgress { recovery, .. } = &record.state {
            inventory.unfinished.push(Unfinished {
                caller: scope.caller.clone(),
                key: scope.key.clone(),
                what: format!(
                    "idempotency record `{}` of {} was left in progress (recovery point: {recovery:?})",
                    scope.key, scope.caller
                ),
            });
        }
    }
    // Computed once: checking each order against every shipment would be quadratic in the
    // run's length (the oracles benchmark caught it).
    let labelled_orders: std::collections::BTreeSet<&str> = tables
        .shipments
        .values()
        .filter(|s| s.shipment.label_id.is_some())
        .map(|s| s.shipment.order_id.as_str())
        .collect();
    for (id, record) in &tables.orders {
        let has_label = labelled_orders.contains(id.as_str());
        let status = record.order.status;
        if has_label && status == shipsim_system::api::OrderStatus::Created {
            inventory.inconsistencies.push(format!(
                "order {id} has a labelled shipment but is still `created`"
            ));
        }
        if !has_label && status != shipsim_system::api::OrderStatus::Created {
            inventory.inconsistencies.push(format!(
                "order {id} is `{}` without any labelled shipment",
                spelled(&status)
            ));
        }
    }
    inventory
}

/// The carrier's sales as effects: one label each, for the shipment it names.
#[must_use]
pub fn effects_of(sales: &[LabelSale]) -> Vec<Effect> {
    sales
        .iter()
        .map(|sale| Effect {
            downstream: CARRIER.to_string(),
            what: "label".to_string(),
            id: sale.label.label_id.clone(),
            key: sale.idempotency_key.clone(),
            subject: Some(sale.label.shipment_ref.clone()),
            at_ms: sale.sold_at_ms,
        })
        .collect()
}
