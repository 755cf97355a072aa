//! The merchants' workload: what each client host does, and the settler that resolves
//! ambiguous operations once the faults have healed. It knows nothing of any one API: it
//! drives the target's [`crate::Api`] through the operations of its `Plan`.
//!
//! Each client is one merchant process issuing operations one after another (a double
//! submit sends two at once), with seeded think time, choosing among creating and reading
//! the target's resource kinds. Idempotency keys are merchant-local sequence numbers
//! (`ship-0-17`), unique per merchant but shared across merchants, as real integrations
//! derive them from their own order numbers: exactly the collision that per-caller scoping
//! must keep apart.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use shipsim_system::bugs::BugSet;
use shipsim_system::client::{ClientError, KeyPlacement, OpReport, RetryPolicy};
use shipsim_system::seed::Seed;

use crate::run::clock::SimClock;
use crate::run::history::{EventKind, History, OpId, OpKind, OpOutcome, Operation, Phase, Verb};
use crate::run::hosts::{HTTP_PORT, SERVICE, SETTLER};
use crate::run::net::SimTransport;
use crate::run::state::Shared;
use crate::scenario::Scenario;
use crate::target::client::{ApiClient, OpClient};
use crate::target::plan::Plan;
use crate::target::{Caller, Draw, Seen};

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
    rate_limit: None,
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
    pub caller: Caller,
    /// Position among the clients of the same caller; keeps keys unique per caller.
    pub slot: u32,
}

impl ClientIdentity {
    /// Client `index` of a scenario with `callers`, acting for one of them (round robin).
    pub(crate) fn new(index: u32, callers: &[Caller]) -> Self {
        let count = u32::try_from(callers.len()).expect("callers fit in u32");
        assert!(count > 0, "a scenario has at least one caller");
        let caller_index = index % count;
        ClientIdentity {
            index,
            host: crate::run::hosts::client_name(index),
            caller: callers[caller_index as usize].clone(),
            slot: index / count,
        }
    }
}

/// A create sent so far, for reusing its key: (key, parent id, body).
type Write = (String, Option<String>, String);

/// What a client knows of its own resources, per kind (in kind-table order).
struct Known {
    resources: Vec<Vec<Seen>>,
    /// Creates of spending kinds issued so far, for reusing keys.
    writes: Vec<Vec<Write>>,
}

struct Client<'a, R> {
    identity: &'a ClientIdentity,
    scenario: &'a Scenario,
    plan: &'a Plan,
    client: OpClient,
    shared: R,
    rng: ChaCha8Rng,
    known: Known,
}

/// Runs client `identity`'s workload to the end.
pub(crate) async fn run_client(
    identity: ClientIdentity,
    scenario: Arc<Scenario>,
    plan: Arc<Plan>,
    seed: Seed,
    shared: Shared,
    transport: Arc<SimTransport>,
    bugs: BugSet,
) -> turmoil::Result {
    let clock = Arc::new(SimClock::for_host(&identity.host, &scenario.faults));
    let base_url = format!("http://{SERVICE}:{HTTP_PORT}");
    let client = match &plan.client {
        None => OpClient::Builtin(
            ApiClient::new(
                plan.api.clone(),
                transport,
                clock,
                client_seed(seed, &identity),
                base_url,
                identity.caller.clone(),
                scenario.client,
                bugs,
            )
            .rotating(scenario.credentials),
        ),
        Some(factory) => OpClient::User(crate::target::user_client::UserClient::new(
            factory,
            plan.api.clone(),
            crate::target::ClientSeams {
                transport,
                base_url,
                clock,
                seed: client_seed(seed, &identity),
                caller: identity.caller.clone(),
                policy: scenario.client,
            },
        )),
    };
    run_operations(&identity, &scenario, &plan, seed, client, shared).await;
    Ok(())
}

/// The seed of client `identity`'s [`ApiClient`] (its retry jitter).
pub(crate) fn client_seed(seed: Seed, identity: &ClientIdentity) -> Seed {
    seed.derive_index("client", u64::from(identity.index))
}

/// Issues client `identity`'s operations through `client`, one after another, recording
/// each in `recorder`. The sequence of operations is a function of `seed` and of the answers.
pub(crate) async fn run_operations<R: Recorder>(
    identity: &ClientIdentity,
    scenario: &Scenario,
    plan: &Plan,
    seed: Seed,
    client: OpClient,
    recorder: R,
) {
    let kinds = plan.table.kinds().len();
    let mut this = Client {
        identity,
        scenario,
        plan,
        client,
        shared: recorder,
        rng: seed
            .derive_index("workload", u64::from(identity.index))
            .rng(),
        known: Known {
            resources: vec![Vec::new(); kinds],
            writes: vec![Vec::new(); kinds],
        },
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
        let (verb, index) = self.choose();
        match verb {
            Verb::Create => self.create(index, sequence).await,
            Verb::Read => self.read(index).await,
        }
    }

    /// Draws an operation by the mix's weights; an operation that needs a resource the
    /// client does not know yet falls back to creating one (a read to a create of its
    /// kind, a create to a create of its parent).
    fn choose(&mut self) -> (Verb, usize) {
        let draw = self.rng.random_range(0..self.plan.total());
        let mut cumulative = 0;
        let mut chosen = self.plan.table.ops().len() - 1;
        for (position, weight) in self.plan.weights.iter().enumerate() {
            cumulative += weight;
            if draw < cumulative {
                chosen = position;
                break;
            }
        }
        let op = &self.plan.table.ops()[chosen];
        let (mut verb, mut index) = (op.verb(), op.kind_index());
        if verb == Verb::Read && self.known.resources[index].is_empty() {
            verb = Verb::Create;
        }
        // Parents come before children in the table, so this walks up and ends.
        if verb == Verb::Create {
            while let Some(parent) = self.parent_index(index)
                && self.known.resources[parent].is_empty()
            {
                index = parent;
            }
        }
        (verb, index)
    }

    fn parent_index(&self, index: usize) -> Option<usize> {
        let kind = &self.plan.table.kinds()[index];
        kind.parent_kind().and_then(|p| self.plan.table.index_of(p))
    }

    fn placement(&mut self, index: usize) -> KeyPlacement {
        // Drawn whatever the kind accepts, so one kind's placement never shifts the stream.
        let in_body = self.rng.random_bool(self.scenario.workload.key_in_body);
        if in_body && self.plan.table.kinds()[index].accepts_key_in_body() {
            KeyPlacement::Body
        } else {
            KeyPlacement::Header
        }
    }

    fn operation(&self, kind: &OpKind) -> Operation {
        new_operation(
            &self.identity.host,
            &self.identity.caller.id,
            kind.clone(),
            Phase::Workload,
            self.shared.now_us(),
        )
    }

    async fn create(&mut self, index: usize, sequence: u32) {
        let workload = &self.scenario.workload;
        let spends = self.plan.table.kinds()[index].is_spending();
        if spends
            && !self.known.writes[index].is_empty()
            && self.rng.random_bool(workload.reuse_key_with_other_body)
        {
            return self.reuse_key(index).await;
        }
        let parent = match self.parent_index(index) {
            Some(parent) => Some(
                self.known.resources[parent]
                    .choose(&mut self.rng)
                    .map(|p| p.id.clone())
                    .expect("choose() ensures a parent is known"),
            ),
            None => None,
        };
        let kind = &self.plan.table.kinds()[index];
        let body = self.plan.api.body(
            kind,
            &mut Draw {
                rng: &mut self.rng,
                refuse_probability: workload.unserviceable,
                sequence,
                slot: self.identity.slot,
            },
        );
        let key = format!(
            "{}-{}-{sequence}",
            kind.key_prefix_or_name(),
            self.identity.slot
        );
        let placement = self.placement(index);
        let (key, too_long) = self.stretch(key);
        let copies = if spends {
            // A key past the limit names no request (the target must refuse it before
            // executing anything): never offered for reuse.
            if !too_long {
                self.known.writes[index].push((key.clone(), parent.clone(), body.clone()));
            }
            if self.rng.random_bool(workload.double_submit) {
                2
            } else {
                1
            }
        } else {
            1
        };
        self.send(index, parent.as_deref(), &body, &key, placement, copies)
            .await;
    }

    /// A caller at the edge of the key rules, as often as `keys_at_length_limit` says: `key`
    /// padded to exactly the target's documented key-length limit (a key like any other) or
    /// one character past it (a misbehaving caller the target must refuse). Returns the key
    /// to send and whether it is past the limit. Draws nothing when the knob is off or the
    /// target documents no limit, so scenarios without it keep their random streams.
    fn stretch(&mut self, key: String) -> (String, bool) {
        let chance = self.scenario.workload.keys_at_length_limit;
        let Some(max) = self.plan.conventions.key_len_max else {
            return (key, false);
        };
        if chance <= 0.0 || !self.rng.random_bool(chance) {
            return (key, false);
        }
        let too_long = self.rng.random_bool(0.5);
        let length = if too_long { max + 1 } else { max };
        (stretched(&key, length), too_long)
    }

    /// A client bug on purpose: an earlier key with a different body. The service must
    /// refuse it, never apply or replay it.
    async fn reuse_key(&mut self, index: usize) {
        let position = self.rng.random_range(0..self.known.writes[index].len());
        let (key, parent, body) = self.known.writes[index][position].clone();
        let body = self.plan.api.vary(&self.plan.table.kinds()[index], &body);
        let placement = self.placement(index);
        self.send(index, parent.as_deref(), &body, &key, placement, 1)
            .await;
    }

    async fn send(
        &mut self,
        index: usize,
        parent: Option<&str>,
        body: &str,
        key: &str,
        placement: KeyPlacement,
        copies: u32,
    ) {
        let op_kind = self.plan.table.op(Verb::Create, index).clone();
        let kind = &self.plan.table.kinds()[index];
        let mut ids: Vec<OpId> = Vec::new();
        for _ in 0..copies {
            let mut operation = self.operation(&op_kind);
            operation.key = Some(key.to_string());
            operation.placement = Some(placement);
            operation.parent = parent.map(str::to_string);
            operation.body = Some(body.to_string());
            ids.push(invoke(&self.shared, operation));
        }
        let client = &self.client;
        let reports = if copies == 2 {
            let (a, b) = tokio::join!(
                client.create(kind, key, placement, parent, body),
                client.create(kind, key, placement, parent, body)
            );
            vec![a, b]
        } else {
            vec![client.create(kind, key, placement, parent, body).await]
        };
        // A resource of a spending kind is remembered once (a double submit's twin, or a
        // reused key's replay, comes back with one the client knows); others as often as
        // they came back.
        let spends = kind.is_spending();
        for (id, report) in ids.into_iter().zip(reports) {
            if let Ok(OpReport {
                result: Ok(success),
                ..
            }) = &report
            {
                let known = &mut self.known.resources[index];
                if !spends || !known.iter().any(|s| s.id == success.value.id) {
                    known.push(success.value.clone());
                }
            }
            complete(&self.shared, &self.plan.conventions, id, report, true);
        }
    }

    async fn read(&mut self, index: usize) {
        let id = self.known.resources[index]
            .choose(&mut self.rng)
            .map(|r| r.id.clone())
            .expect("choose() ensures a resource is known");
        let op_kind = self.plan.table.op(Verb::Read, index).clone();
        let mut operation = self.operation(&op_kind);
        operation.target = Some(id.clone());
        let op = invoke(&self.shared, operation);
        let kind = &self.plan.table.kinds()[index];
        let report = self.client.read(kind, &id).await;
        complete(&self.shared, &self.plan.conventions, op, report, false);
    }
}

/// `key` padded with `-` and then `x` to exactly `length` characters (the sequence-based
/// key stays its prefix, so stretched keys stay unique); `key` unchanged when it is already
/// that long.
fn stretched(key: &str, length: usize) -> String {
    let mut out = String::with_capacity(length);
    out.push_str(key);
    if out.len() < length {
        out.push('-');
    }
    while out.len() < length {
        out.push('x');
    }
    out
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
        parent: None,
        target: None,
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
    let kind = operation.kind.clone();
    let key = operation.key.clone();
    let id = shared.with_history(|history| history.invoke(operation));
    shared.record(&host, EventKind::OpInvoked { op: id, kind, key });
    id
}

fn complete(
    shared: &impl Recorder,
    conventions: &crate::target::Conventions,
    id: OpId,
    report: Result<OpReport<Seen>, crate::target::ApiError>,
    is_write: bool,
) {
    let now_us = shared.now_us();
    let (outcome, attempts) = match report {
        Ok(report) => {
            let outcome = classify(&report, is_write, conventions.in_flight_status);
            let outcome = match (outcome, report.result) {
                (OpOutcome::Pending, Ok(success)) => OpOutcome::Ok {
                    status: success.status,
                    replayed: success.replayed,
                    resource: success.value,
                },
                (outcome, _) => outcome,
            };
            (outcome, report.attempts)
        }
        Err(error) => (
            OpOutcome::Failed {
                reason: format!("the API adapter could not build the request: {error}"),
            },
            Vec::new(),
        ),
    };
    let labels = attempts.iter().map(|a| a.outcome.label()).collect();
    let label = outcome.label();
    let host = shared.with_history(|history| {
        history.complete(id, now_us, attempts, outcome);
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
fn classify<T>(report: &OpReport<T>, is_write: bool, in_flight_status: u16) -> OpOutcome {
    let any_ambiguous = report.attempts.iter().any(|a| a.outcome.is_ambiguous());
    match &report.result {
        Ok(_) => OpOutcome::Pending,
        Err(ClientError::Rejected { status, body }) => {
            let code = body.as_ref().map(|b| b.code.clone()).or_else(|| {
                // An envelope other than ours: the code the attempt read, if any.
                report.attempts.last().and_then(|a| match &a.outcome {
                    shipsim_system::client::AttemptOutcome::Response { error_code, .. } => {
                        error_code.clone()
                    }
                    _ => None,
                })
            });
            // The key's first request is still executing: this operation did not learn the
            // outcome.
            if *status == in_flight_status && is_write {
                OpOutcome::Ambiguous {
                    reason: format!("{status}: the key's first request is still in flight"),
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

/// Re-issues every ambiguous workload write, in id order, once the faults have healed, and
/// records each as a settle operation resolving the original.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_settler(
    ambiguous: Vec<Operation>,
    faults: Arc<Vec<crate::fault::FaultSpec>>,
    plan: Arc<Plan>,
    scenario: Arc<Scenario>,
    seed: Seed,
    shared: Shared,
    bugs: BugSet,
    quiesce: Option<crate::target::QuiesceWait>,
    durables: crate::target::Durables,
    verify: bool,
) -> turmoil::Result {
    let transport = Arc::new(SimTransport::new(SERVICE, HTTP_PORT));
    let credentials = scenario.credentials;
    settle(ambiguous, &plan, shared.clone(), |caller| {
        ApiClient::new(
            plan.api.clone(),
            transport.clone(),
            Arc::new(SimClock::for_host(SETTLER, &faults)),
            seed.derive_index("settler", u64::from(caller.index)),
            format!("http://{SERVICE}:{HTTP_PORT}"),
            caller.clone(),
            SETTLE_POLICY,
            bugs.clone(),
        )
        .rotating(credentials)
    })
    .await;
    if let Some(quiesce) = quiesce {
        quiesce(crate::target::QuiesceContext {
            shared: shared.clone(),
            scenario,
            durables,
        })
        .await;
    }
    if verify {
        let acknowledged = shared.with_history(|history| acknowledged(history));
        let make = |caller: &Caller| {
            ApiClient::new(
                plan.api.clone(),
                transport.clone(),
                Arc::new(SimClock::for_host(SETTLER, &faults)),
                seed.derive_index("verifier", u64::from(caller.index)),
                format!("http://{SERVICE}:{HTTP_PORT}"),
                caller.clone(),
                SETTLE_POLICY,
                BugSet::none(),
            )
            .rotating(credentials)
        };
        read_back(acknowledged, &plan, shared, make).await;
    }
    Ok(())
}

/// Every resource a create was answered with, once, in the order first acknowledged:
/// (caller, kind index, id).
pub(crate) fn acknowledged(history: &History) -> Vec<(String, usize, String)> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for op in history.operations() {
        if let OpOutcome::Ok { resource, .. } = &op.outcome
            && op.kind.is_write()
            && seen.insert((op.kind.kind_index(), resource.id.clone()))
        {
            out.push((op.caller.clone(), op.kind.kind_index(), resource.id.clone()));
        }
    }
    out
}

/// Reads back every acknowledged resource of a readable kind through the API, recording
/// each read as a verify operation: what the target serves after the run is what it keeps.
pub(crate) async fn read_back<R: Recorder>(
    acknowledged: Vec<(String, usize, String)>,
    plan: &Plan,
    recorder: R,
    make_client: impl Fn(&Caller) -> ApiClient,
) {
    let mut clients: BTreeMap<String, ApiClient> = BTreeMap::new();
    for (caller_id, index, id) in acknowledged {
        let kind = &plan.table.kinds()[index];
        if kind.read_route_template().is_none() {
            continue;
        }
        let caller = plan
            .caller(&caller_id)
            .expect("workload operations act for the plan's callers");
        let client = clients
            .entry(caller_id.clone())
            .or_insert_with(|| make_client(caller));
        let op_kind = plan.table.op(Verb::Read, index).clone();
        let mut operation = new_operation(
            SETTLER,
            &caller_id,
            op_kind,
            Phase::Verify,
            recorder.now_us(),
        );
        operation.target = Some(id.clone());
        let op = invoke(&recorder, operation);
        let report = client.read(kind, &id).await;
        complete(&recorder, &plan.conventions, op, report, false);
    }
}

/// The settle phase, whatever the network: re-issues each ambiguous write through the
/// client `make_client` builds for its caller (one per caller, built on first use).
pub(crate) async fn settle<R: Recorder>(
    ambiguous: Vec<Operation>,
    plan: &Plan,
    recorder: R,
    make_client: impl Fn(&Caller) -> ApiClient,
) {
    let mut clients: BTreeMap<String, ApiClient> = BTreeMap::new();
    for original in ambiguous {
        let caller = plan
            .caller(&original.caller)
            .expect("workload operations act for the plan's callers");
        let client = clients
            .entry(original.caller.clone())
            .or_insert_with(|| make_client(caller));
        settle_one(client, plan, &original, &recorder).await;
    }
}

async fn settle_one(client: &ApiClient, plan: &Plan, original: &Operation, shared: &impl Recorder) {
    let key = original.key.clone().expect("writes have keys");
    let placement = original.placement.unwrap_or(KeyPlacement::Header);
    let body = original.body.clone().expect("writes have bodies");
    assert!(original.kind.is_write(), "only writes are ambiguous");
    let kind = &plan.table.kinds()[original.kind.kind_index()];
    for _ in 0..SETTLE_IN_FLIGHT_RETRIES_MAX {
        let mut operation = new_operation(
            SETTLER,
            &original.caller,
            original.kind.clone(),
            Phase::Settle,
            shared.now_us(),
        );
        operation.key = Some(key.clone());
        operation.placement = Some(placement);
        operation.parent.clone_from(&original.parent);
        operation.body = Some(body.clone());
        operation.resolves = Some(original.id);
        let id = invoke(shared, operation);
        let report = client
            .create(kind, &key, placement, original.parent.as_deref(), &body)
            .await;
        let in_flight = matches!(
            &report,
            Ok(OpReport { result: Err(ClientError::Rejected { status, .. }), .. })
                if *status == plan.conventions.in_flight_status
        );
        complete(shared, &plan.conventions, id, report, true);
        if !in_flight {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::stretched;

    #[test]
    fn stretched_keys_hit_the_length_exactly_and_keep_their_prefix() {
        // Proves the key-length knob sends what it claims: exactly the limit, or one past
        // it, and still unique by the sequence-based key it starts with.
        let at = stretched("ship-0-17", 255);
        assert_eq!(at.len(), 255);
        assert!(at.starts_with("ship-0-17-x"));
        assert_eq!(stretched("ship-0-17", 256).len(), 256);
        assert!(at.bytes().all(|b| b.is_ascii_graphic()));
        assert_eq!(stretched("ship-0-17", 9), "ship-0-17");
    }
}
