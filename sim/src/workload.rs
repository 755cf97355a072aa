//! The merchants' workload: what each client host does, and the settler that resolves
//! ambiguous operations once the faults have healed.
//!
//! Each client is one merchant process issuing operations one after another (a double
//! submit sends two at once), with seeded think time, choosing among creating orders,
//! creating shipments for its orders, and reading both back. Idempotency keys are
//! merchant-local sequence numbers (`ship-0-17`), unique per merchant but shared across
//! merchants, as real integrations derive them from their own order numbers: exactly the
//! collision that per-caller scoping must keep apart.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use shipsim_system::api::{
    Address, CreateOrderRequest, CreateShipmentRequest, Order, OrderItem, ServiceLevel, Shipment,
};
use shipsim_system::bugs::BugSet;
use shipsim_system::client::{
    ClientError, KeyPlacement, OpReport, RetryPolicy, ShipClient, ShipClientConfig,
};
use shipsim_system::seed::Seed;

use crate::clock::SimClock;
use crate::history::{EventKind, History, OpId, OpKind, OpOutcome, Operation, Phase, Resource};
use crate::hosts::{HTTP_PORT, SERVICE, SETTLER};
use crate::net::SimTransport;
use crate::scenario::Scenario;
use crate::shared::Shared;

/// A country the simulated carrier does not serve (Antarctica).
pub(crate) const UNSERVICEABLE_COUNTRY: &str = "AQ";
const COUNTRIES: &[&str] = &["DE", "FR", "NL", "US", "GB", "PL"];

/// Merchant id of caller `index`.
#[must_use]
pub fn caller_id(index: u32) -> String {
    format!("merchant-{index}")
}

/// The index of a workload caller (`merchant-3` is 3).
///
/// # Panics
/// If `caller` is not a workload caller's id: the workload makes no others.
pub(crate) fn caller_index(caller: &str) -> u32 {
    caller
        .strip_prefix("merchant-")
        .and_then(|n| n.parse().ok())
        .expect("workload callers are merchant-N")
}

/// API key of caller `index`.
#[must_use]
pub fn api_key(index: u32) -> String {
    format!("sk_sim_merchant_{index}")
}

/// The settler's policy: patient, because it runs after the faults healed and must get an
/// answer (up to a minute of simulated time per operation).
pub(crate) const SETTLE_POLICY: RetryPolicy = RetryPolicy {
    timeout_ms_per_attempt: 5_000,
    deadline_ms: 60_000,
    attempt_count_max: 20,
    backoff_ms_base: 100,
    backoff_ms_max: 2_000,
    budget: None,
    breaker: None,
};

/// How often the settler asks again while another request with the same key is in flight.
const SETTLE_IN_FLIGHT_RETRIES_MAX: u32 = 30;

/// Where clients record their operations: the simulation's shared run state, or live
/// mode's wall-clock history. The workload is written against this trait so that the same
/// code, drawing the same random numbers, drives both.
pub(crate) trait Recorder {
    /// Microseconds since the start of the run, on the recorder's clock.
    fn now_us(&self) -> u64;
    /// Runs `f` on the history.
    fn with_history<R>(&self, f: impl FnOnce(&mut History) -> R) -> R;
    /// Records an event of `host` in the trace.
    fn record(&self, host: &str, kind: EventKind);
}

impl Recorder for Shared {
    fn now_us(&self) -> u64 {
        Shared::now_us(self)
    }

    fn with_history<R>(&self, f: impl FnOnce(&mut History) -> R) -> R {
        f(&mut self.lock().history)
    }

    fn record(&self, host: &str, kind: EventKind) {
        Shared::record(self, host, kind);
    }
}

/// Who a client host is.
#[derive(Clone, Debug)]
pub(crate) struct ClientIdentity {
    pub index: u32,
    pub host: String,
    pub caller: String,
    pub api_key: String,
    /// Position among the clients of the same caller; keeps keys unique per caller.
    pub slot: u32,
}

impl ClientIdentity {
    pub(crate) fn new(index: u32, callers: u32) -> Self {
        let caller_index = index % callers;
        ClientIdentity {
            index,
            host: crate::hosts::client_name(index),
            caller: caller_id(caller_index),
            api_key: api_key(caller_index),
            slot: index / callers,
        }
    }
}

/// What a client knows of its own resources.
#[derive(Default)]
struct Known {
    orders: Vec<Order>,
    shipments: Vec<Shipment>,
    /// Shipment writes issued so far: (key, order id, request), for reusing keys.
    shipment_writes: Vec<(String, String, CreateShipmentRequest)>,
}

struct Client<'a, R> {
    identity: &'a ClientIdentity,
    scenario: &'a Scenario,
    client: ShipClient,
    shared: R,
    rng: ChaCha8Rng,
    known: Known,
}

/// Runs client `identity`'s workload to the end.
pub(crate) async fn run_client(
    identity: ClientIdentity,
    scenario: Arc<Scenario>,
    seed: Seed,
    shared: Shared,
    transport: Arc<SimTransport>,
    bugs: BugSet,
) -> turmoil::Result {
    let client = ShipClient::new(
        transport,
        Arc::new(SimClock::for_host(&identity.host, &scenario.faults)),
        client_seed(seed, &identity),
        ShipClientConfig {
            base_url: format!("http://{SERVICE}:{HTTP_PORT}"),
            api_key: identity.api_key.clone(),
            policy: scenario.client,
            bugs,
        },
    );
    run_operations(&identity, &scenario, seed, client, shared).await;
    Ok(())
}

/// The seed of client `identity`'s [`ShipClient`] (its retry jitter).
pub(crate) fn client_seed(seed: Seed, identity: &ClientIdentity) -> Seed {
    seed.derive_index("client", u64::from(identity.index))
}

/// Issues client `identity`'s operations through `client`, one after another, recording
/// each in `recorder`. The sequence of operations is a function of `seed` and of the answers.
pub(crate) async fn run_operations<R: Recorder>(
    identity: &ClientIdentity,
    scenario: &Scenario,
    seed: Seed,
    client: ShipClient,
    recorder: R,
) {
    let mut this = Client {
        identity,
        scenario,
        client,
        shared: recorder,
        rng: seed
            .derive_index("workload", u64::from(identity.index))
            .rng(),
        known: Known::default(),
    };
    for sequence in 0..scenario.workload.operations {
        let (low, high) = scenario.workload.think_ms;
        let think = this.rng.random_range(low..=high);
        if think > 0 {
            tokio::time::sleep(Duration::from_millis(think)).await;
        }
        this.step(sequence).await;
    }
}

impl<R: Recorder> Client<'_, R> {
    async fn step(&mut self, sequence: u32) {
        let mix = self.scenario.workload.mix;
        let draw = self.rng.random_range(0..mix.total());
        let mut kind = if draw < mix.create_order {
            OpKind::CreateOrder
        } else if draw < mix.create_order + mix.create_shipment {
            OpKind::CreateShipment
        } else if draw < mix.create_order + mix.create_shipment + mix.get_order {
            OpKind::GetOrder
        } else {
            OpKind::GetShipment
        };
        // Operations that need a resource fall back to creating one.
        if kind == OpKind::GetShipment && self.known.shipments.is_empty() {
            kind = OpKind::CreateShipment;
        }
        if matches!(kind, OpKind::CreateShipment | OpKind::GetOrder) && self.known.orders.is_empty()
        {
            kind = OpKind::CreateOrder;
        }
        match kind {
            OpKind::CreateOrder => self.create_order(sequence).await,
            OpKind::CreateShipment => self.create_shipment(sequence).await,
            OpKind::GetOrder => self.get_order().await,
            OpKind::GetShipment => self.get_shipment().await,
        }
    }

    fn placement(&mut self) -> KeyPlacement {
        if self.rng.random_bool(self.scenario.workload.key_in_body) {
            KeyPlacement::Body
        } else {
            KeyPlacement::Header
        }
    }

    fn operation(&self, kind: OpKind) -> Operation {
        new_operation(
            &self.identity.host,
            &self.identity.caller,
            kind,
            Phase::Workload,
            self.shared.now_us(),
        )
    }

    async fn create_order(&mut self, sequence: u32) {
        let country = if self.rng.random_bool(self.scenario.workload.unserviceable) {
            UNSERVICEABLE_COUNTRY
        } else {
            COUNTRIES.choose(&mut self.rng).copied().unwrap_or("DE")
        };
        let lines = self.rng.random_range(1..=3);
        let items = (0..lines)
            .map(|_| OrderItem {
                sku: format!("SKU-{}", self.rng.random_range(100..1000)),
                quantity: self.rng.random_range(1..=5),
            })
            .collect();
        let request = CreateOrderRequest {
            reference: format!("PO-{}-{sequence}", self.identity.slot),
            items,
            ship_to: Address {
                name: format!("Customer {}", self.rng.random_range(1..10_000)),
                line1: format!("{} Main Street", self.rng.random_range(1..500)),
                city: "Springfield".into(),
                postal_code: format!("{:05}", self.rng.random_range(1_000..99_999)),
                country: country.into(),
            },
            idempotency_key: None,
        };
        let key = format!("order-{}-{sequence}", self.identity.slot);
        let placement = self.placement();
        let mut operation = self.operation(OpKind::CreateOrder);
        operation.key = Some(key.clone());
        operation.placement = Some(placement);
        operation.body = Some(serde_json::to_string(&request).expect("API types serialise"));
        let id = invoke(&self.shared, operation);
        let report = self.client.create_order(&request, &key, placement).await;
        if let Ok(success) = &report.result {
            self.known.orders.push(success.value.clone());
        }
        complete(&self.shared, id, report, true, |order| {
            Resource::Order(Box::new(order))
        });
    }

    async fn create_shipment(&mut self, sequence: u32) {
        let workload = self.scenario.workload;
        if !self.known.shipment_writes.is_empty()
            && self.rng.random_bool(workload.reuse_key_with_other_body)
        {
            return self.reuse_key().await;
        }
        let order_id = self
            .known
            .orders
            .choose(&mut self.rng)
            .map(|o| o.id.clone())
            .expect("callers ensure an order is known");
        let request = CreateShipmentRequest {
            service_level: if self.rng.random_bool(0.3) {
                ServiceLevel::Express
            } else {
                ServiceLevel::Ground
            },
            weight_grams: self.rng.random_range(100..=20_000),
            idempotency_key: None,
        };
        let key = format!("ship-{}-{sequence}", self.identity.slot);
        let placement = self.placement();
        self.known
            .shipment_writes
            .push((key.clone(), order_id.clone(), request.clone()));
        let copies = if self.rng.random_bool(workload.double_submit) {
            2
        } else {
            1
        };
        self.send_shipment(&order_id, &request, &key, placement, copies)
            .await;
    }

    /// A client bug on purpose: an earlier key with a different body. The service must
    /// refuse it (422), never apply or replay it.
    async fn reuse_key(&mut self) {
        let index = self.rng.random_range(0..self.known.shipment_writes.len());
        let (key, order_id, mut request) = self.known.shipment_writes[index].clone();
        request.weight_grams = if request.weight_grams >= 20_000 {
            request.weight_grams - 1
        } else {
            request.weight_grams + 1
        };
        let placement = self.placement();
        self.send_shipment(&order_id, &request, &key, placement, 1)
            .await;
    }

    async fn send_shipment(
        &mut self,
        order_id: &str,
        request: &CreateShipmentRequest,
        key: &str,
        placement: KeyPlacement,
        copies: u32,
    ) {
        let mut ids: Vec<OpId> = Vec::new();
        for _ in 0..copies {
            let mut operation = self.operation(OpKind::CreateShipment);
            operation.key = Some(key.to_string());
            operation.placement = Some(placement);
            operation.order_id = Some(order_id.to_string());
            operation.body = Some(serde_json::to_string(request).expect("API types serialise"));
            ids.push(invoke(&self.shared, operation));
        }
        let client = &self.client;
        let reports = if copies == 2 {
            let (a, b) = tokio::join!(
                client.create_shipment(order_id, request, key, placement),
                client.create_shipment(order_id, request, key, placement)
            );
            vec![a, b]
        } else {
            vec![
                client
                    .create_shipment(order_id, request, key, placement)
                    .await,
            ]
        };
        for (id, report) in ids.into_iter().zip(reports) {
            if let Ok(success) = &report.result
                && !self
                    .known
                    .shipments
                    .iter()
                    .any(|s| s.id == success.value.id)
            {
                self.known.shipments.push(success.value.clone());
            }
            complete(&self.shared, id, report, true, |shipment| {
                Resource::Shipment(Box::new(shipment))
            });
        }
    }

    async fn get_order(&mut self) {
        let order_id = self
            .known
            .orders
            .choose(&mut self.rng)
            .map(|o| o.id.clone())
            .expect("callers ensure an order is known");
        let mut operation = self.operation(OpKind::GetOrder);
        operation.order_id = Some(order_id.clone());
        let id = invoke(&self.shared, operation);
        let report = self.client.get_order(&order_id).await;
        complete(&self.shared, id, report, false, |order| {
            Resource::Order(Box::new(order))
        });
    }

    async fn get_shipment(&mut self) {
        let shipment_id = self
            .known
            .shipments
            .choose(&mut self.rng)
            .map(|s| s.id.clone())
            .expect("callers ensure a shipment is known");
        let mut operation = self.operation(OpKind::GetShipment);
        operation.shipment_id = Some(shipment_id.clone());
        let id = invoke(&self.shared, operation);
        let report = self.client.get_shipment(&shipment_id).await;
        complete(&self.shared, id, report, false, |shipment| {
            Resource::Shipment(Box::new(shipment))
        });
    }
}

fn new_operation(host: &str, caller: &str, kind: OpKind, phase: Phase, now_us: u64) -> Operation {
    Operation {
        id: 0,
        client: host.to_string(),
        caller: caller.to_string(),
        kind,
        phase,
        key: None,
        placement: None,
        order_id: None,
        shipment_id: None,
        body: None,
        resolves: None,
        invoked_at_us: now_us,
        completed_at_us: now_us,
        attempts: Vec::new(),
        outcome: OpOutcome::Pending,
    }
}

fn invoke(shared: &impl Recorder, operation: Operation) -> OpId {
    let host = operation.client.clone();
    let kind = operation.kind;
    let key = operation.key.clone();
    let id = shared.with_history(|history| history.invoke(operation));
    shared.record(&host, EventKind::OpInvoked { op: id, kind, key });
    id
}

fn complete<T>(
    shared: &impl Recorder,
    id: OpId,
    report: OpReport<T>,
    is_write: bool,
    wrap: impl FnOnce(T) -> Resource,
) {
    let now_us = shared.now_us();
    let outcome = classify(&report, is_write);
    let outcome = match (outcome, report.result) {
        (OpOutcome::Pending, Ok(success)) => OpOutcome::Ok {
            status: success.status,
            replayed: success.replayed,
            resource: wrap(success.value),
        },
        (outcome, _) => outcome,
    };
    let labels = report.attempts.iter().map(|a| a.outcome.label()).collect();
    let label = outcome.label();
    let host = shared.with_history(|history| {
        history.complete(id, now_us, report.attempts, outcome);
        history
            .get(id)
            .map(|op| op.client.clone())
            .unwrap_or_default()
    });
    shared.record(
        &host,
        EventKind::OpCompleted {
            op: id,
            outcome: label,
            attempts: labels,
        },
    );
}

/// The outcome of a report, `Pending` standing for "Ok, fill in the resource".
fn classify<T>(report: &OpReport<T>, is_write: bool) -> OpOutcome {
    let any_ambiguous = report.attempts.iter().any(|a| a.outcome.is_ambiguous());
    match &report.result {
        Ok(_) => OpOutcome::Pending,
        Err(ClientError::Rejected { status, body }) => {
            let code = body.as_ref().map(|b| b.code.clone());
            // 409 means another request with this key is still executing: this operation
            // did not learn the outcome.
            if *status == 409 && is_write {
                OpOutcome::Ambiguous {
                    reason: "409: the key's first request is still in flight".into(),
                }
            } else {
                OpOutcome::Rejected {
                    status: *status,
                    code,
                }
            }
        }
        Err(error) if is_write && any_ambiguous => OpOutcome::Ambiguous {
            reason: error.to_string(),
        },
        Err(error) => OpOutcome::Failed {
            reason: error.to_string(),
        },
    }
}

/// What webhook traffic the settler waits to drain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Drain {
    pub tracking: bool,
    pub outbound: bool,
}

/// Re-issues every ambiguous workload write, in id order, once the faults have healed, and
/// records each as a settle operation resolving the original. Then waits until every
/// webhook is delivered, putting dead letters back in the queue as an operator would.
pub(crate) async fn run_settler(
    ambiguous: Vec<Operation>,
    faults: Arc<Vec<crate::fault::FaultSpec>>,
    seed: Seed,
    shared: Shared,
    bugs: BugSet,
    drain: Drain,
) -> turmoil::Result {
    let transport = Arc::new(SimTransport::new(SERVICE, HTTP_PORT));
    settle(ambiguous, shared.clone(), |caller_index| {
        ShipClient::new(
            transport.clone(),
            Arc::new(SimClock::for_host(SETTLER, &faults)),
            seed.derive_index("settler", u64::from(caller_index)),
            ShipClientConfig {
                base_url: format!("http://{SERVICE}:{HTTP_PORT}"),
                api_key: api_key(caller_index),
                policy: SETTLE_POLICY,
                bugs: bugs.clone(),
            },
        )
    })
    .await;
    drain_webhooks(drain, &shared).await;
    Ok(())
}

/// Polls between drain checks.
const DRAIN_POLL_MS: u64 = 100;
/// Checks per round before giving up (the run's oracles then report what is left).
const DRAIN_POLLS_MAX: u32 = 1_200;
/// Redelivery rounds of dead letters.
const DRAIN_ROUNDS_MAX: u32 = 5;

/// Waits until no webhook is pending at the carrier or the service, then redelivers dead
/// letters and waits again, until none are left (bounded).
async fn drain_webhooks(drain: Drain, shared: &Shared) {
    if !drain.tracking && !drain.outbound {
        return;
    }
    let service = SimTransport::new(SERVICE, HTTP_PORT);
    let carrier = SimTransport::new(crate::hosts::CARRIER, HTTP_PORT);
    for _round in 0..DRAIN_ROUNDS_MAX {
        for _poll in 0..DRAIN_POLLS_MAX {
            let carrier_pending = if drain.tracking {
                pending(&carrier, "/v1/admin/tracking").await
            } else {
                Some(0)
            };
            let service_pending = if drain.outbound {
                pending(&service, "/v1/admin/outbox").await
            } else {
                Some(0)
            };
            let injected = shared.lock().injections_in_flight;
            if carrier_pending == Some(0) && service_pending == Some(0) && injected == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(DRAIN_POLL_MS)).await;
        }
        let mut requeued = 0;
        if drain.tracking {
            requeued += redeliver(&carrier, "/v1/admin/tracking/redeliver").await;
        }
        if drain.outbound {
            requeued += redeliver(&service, "/v1/admin/outbox/redeliver").await;
        }
        if requeued == 0 {
            return;
        }
    }
}

async fn admin(
    transport: &SimTransport,
    method: http::Method,
    path: &str,
) -> Option<serde_json::Value> {
    let request = http::Request::builder()
        .method(method)
        .uri(format!("http://admin{path}"))
        .header(
            shipsim_system::service::HEADER_ADMIN_KEY,
            crate::runner::ADMIN_KEY,
        )
        .body(bytes::Bytes::new())
        .ok()?;
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        shipsim_system::transport::Transport::send(transport, request),
    )
    .await
    .ok()?
    .ok()?;
    if !response.status().is_success() {
        return None;
    }
    serde_json::from_slice(response.body()).ok()
}

async fn pending(transport: &SimTransport, path: &str) -> Option<u64> {
    admin(transport, http::Method::GET, path)
        .await?
        .get("pending")?
        .as_u64()
}

async fn redeliver(transport: &SimTransport, path: &str) -> u64 {
    admin(transport, http::Method::POST, path)
        .await
        .and_then(|v| v.get("requeued").and_then(serde_json::Value::as_u64))
        .unwrap_or(0)
}

/// The settle phase, whatever the network: re-issues each ambiguous write through the
/// client `make_client` builds for its caller (one per caller, built on first use).
pub(crate) async fn settle<R: Recorder>(
    ambiguous: Vec<Operation>,
    recorder: R,
    make_client: impl Fn(u32) -> ShipClient,
) {
    let mut clients: BTreeMap<String, ShipClient> = BTreeMap::new();
    for original in ambiguous {
        let caller_index = caller_index(&original.caller);
        let client = clients
            .entry(original.caller.clone())
            .or_insert_with(|| make_client(caller_index));
        settle_one(client, &original, &recorder).await;
    }
}

async fn settle_one(client: &ShipClient, original: &Operation, shared: &impl Recorder) {
    let key = original.key.clone().expect("writes have keys");
    let placement = original.placement.unwrap_or(KeyPlacement::Header);
    let body = original.body.clone().expect("writes have bodies");
    for _ in 0..SETTLE_IN_FLIGHT_RETRIES_MAX {
        let mut operation = new_operation(
            SETTLER,
            &original.caller,
            original.kind,
            Phase::Settle,
            shared.now_us(),
        );
        operation.key = Some(key.clone());
        operation.placement = Some(placement);
        operation.order_id.clone_from(&original.order_id);
        operation.body = Some(body.clone());
        operation.resolves = Some(original.id);
        let id = invoke(shared, operation);
        let in_flight = match original.kind {
            OpKind::CreateOrder => {
                let request: CreateOrderRequest =
                    serde_json::from_str(&body).expect("recorded body parses");
                let report = client.create_order(&request, &key, placement).await;
                let in_flight = is_in_flight(&report);
                complete(shared, id, report, true, |order| {
                    Resource::Order(Box::new(order))
                });
                in_flight
            }
            OpKind::CreateShipment => {
                let request: CreateShipmentRequest =
                    serde_json::from_str(&body).expect("recorded body parses");
                let order_id = original
                    .order_id
                    .as_deref()
                    .expect("shipment writes target an order");
                let report = client
                    .create_shipment(order_id, &request, &key, placement)
                    .await;
                let in_flight = is_in_flight(&report);
                complete(shared, id, report, true, |shipment| {
                    Resource::Shipment(Box::new(shipment))
                });
                in_flight
            }
            OpKind::GetOrder | OpKind::GetShipment => unreachable!("only writes are ambiguous"),
        };
        if !in_flight {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn is_in_flight<T>(report: &OpReport<T>) -> bool {
    matches!(
        &report.result,
        Err(ClientError::Rejected { status: 409, .. })
    )
}
