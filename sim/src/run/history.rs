//! What happened in one run: the event [`Trace`] (everything, in the order it was recorded,
//! hashed for the determinism check) and the operation [`History`] (every logical client
//! operation with its attempts and outcome, which the oracles read).

use std::collections::BTreeMap;
use std::fmt;
use std::hash::Hash;

use std::sync::Arc;

use shipsim_system::client::{AttemptRecord, KeyPlacement};
use shipsim_system::observe::SystemEvent;
use shipsim_system::seed::Fnv64;

use crate::oracle::{Probe, ProbeRule};
use crate::target::Seen;

/// Id of a logical operation, unique within a run.
pub type OpId = u32;

/// Whether an operation creates or reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verb {
    /// A create (a write, under an idempotency key).
    Create,
    /// A read of one resource.
    Read,
}

/// What kind of logical operation: a create or a read of one resource kind of the target's
/// API ([`crate::Kind`]).
///
/// Operations compare and hash by their place in the target's operation table: creates of
/// each kind in [`crate::Api::kinds`] order, then reads. (For the reference service that is
/// `create_order`, `create_shipment`, `get_order`, `get_shipment`, the order of the enum this
/// type replaced, so trace hashes did not move.)
#[derive(Clone, Debug)]
pub struct OpKind {
    verb: Verb,
    /// Position of the resource kind among the target's kinds, and how many there are.
    index: u16,
    count: u16,
    resource: Arc<str>,
    route: Arc<str>,
}

impl OpKind {
    /// Operation `verb` on kind number `index` of `count`, called `resource`, sent to
    /// `route`.
    ///
    /// # Panics
    /// If `index` is not below `count`: the caller builds these from the kind table.
    #[must_use]
    pub fn new(verb: Verb, index: u16, count: u16, resource: &str, route: &str) -> OpKind {
        assert!(
            index < count,
            "kind index {index} outside a table of {count}"
        );
        OpKind {
            verb,
            index,
            count,
            resource: Arc::from(resource),
            route: Arc::from(route),
        }
    }

    /// Create or read.
    #[must_use]
    pub fn verb(&self) -> Verb {
        self.verb
    }

    /// The resource kind's name (`order`).
    #[must_use]
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The resource kind's position among the target's kinds.
    #[must_use]
    pub fn kind_index(&self) -> usize {
        usize::from(self.index)
    }

    /// The endpoint it calls.
    #[must_use]
    pub fn endpoint(&self) -> Endpoint {
        let read = u16::from(self.verb == Verb::Read);
        Endpoint {
            order: self.index * 2 + read,
            route: self.route.clone(),
        }
    }

    /// Whether it creates state.
    #[must_use]
    pub fn is_write(&self) -> bool {
        self.verb == Verb::Create
    }

    /// Short name for timelines and scenario mixes: `create_order`, `get_order`.
    #[must_use]
    pub fn name(&self) -> String {
        match self.verb {
            Verb::Create => format!("create_{}", self.resource),
            Verb::Read => format!("get_{}", self.resource),
        }
    }

    /// The operation's place in the target's operation table: creates first, then reads.
    fn code(&self) -> usize {
        match self.verb {
            Verb::Create => usize::from(self.index),
            Verb::Read => usize::from(self.count) + usize::from(self.index),
        }
    }
}

impl PartialEq for OpKind {
    fn eq(&self, other: &Self) -> bool {
        self.code() == other.code()
    }
}

impl Eq for OpKind {}

impl PartialOrd for OpKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OpKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.code().cmp(&other.code())
    }
}

impl Hash for OpKind {
    /// Hashes as a field-less enum with one variant per operation would: its discriminant
    /// as an `isize`. Trace hashes recorded before kinds were the target's stay valid.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let code = isize::try_from(self.code()).expect("operation tables are small");
        state.write_isize(code);
    }
}

/// An endpoint of the target: a method and route template (`POST /v1/orders`), the unit of
/// latency histograms and budgets. Ordered as the target's kinds: each kind's create, then
/// its read.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    order: u16,
    route: Arc<str>,
}

impl Endpoint {
    /// Method and route template.
    #[must_use]
    pub fn route(&self) -> &str {
        &self.route
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.route)
    }
}

/// Whether an operation belongs to the workload or to the resolution after heal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Issued by the workload while faults were active.
    Workload,
    /// Issued after the faults healed, to resolve an ambiguous workload operation.
    Settle,
    /// Issued at the very end to read back what the target acknowledged (for targets that
    /// give shipsim no inventory of their store: the API is the only way to look).
    Verify,
}

/// How an operation ended, from the client's point of view.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OpOutcome {
    /// Not finished yet (only seen mid-run).
    Pending,
    /// Succeeded.
    Ok {
        /// Final status.
        status: u16,
        /// Whether the service replayed a stored outcome.
        replayed: bool,
        /// What came back.
        resource: Seen,
    },
    /// The service said no, definitively (4xx other than 409-in-flight and 429).
    Rejected {
        /// Status.
        status: u16,
        /// Error code of the envelope.
        code: Option<String>,
    },
    /// Failed without any attempt that could have taken effect: nothing happened.
    Failed {
        /// Why.
        reason: String,
    },
    /// The client cannot know whether it took effect.
    Ambiguous {
        /// Why.
        reason: String,
    },
}

impl OpOutcome {
    /// Short label for timelines and counts.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            OpOutcome::Pending => "pending".into(),
            OpOutcome::Ok {
                status, replayed, ..
            } => {
                if *replayed {
                    format!("ok {status} (replayed)")
                } else {
                    format!("ok {status}")
                }
            }
            OpOutcome::Rejected { status, code } => {
                format!("rejected {status} {}", code.as_deref().unwrap_or("-"))
            }
            OpOutcome::Failed { reason } => format!("failed: {reason}"),
            OpOutcome::Ambiguous { reason } => format!("ambiguous: {reason}"),
        }
    }
}

/// One logical client operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Its id.
    pub id: OpId,
    /// Client host that issued it.
    pub client: String,
    /// Merchant it acted for.
    pub caller: String,
    /// What it did.
    pub kind: OpKind,
    /// Workload or settle.
    pub phase: Phase,
    /// Idempotency key of a write.
    pub key: Option<String>,
    /// Where a write put its key.
    pub placement: Option<KeyPlacement>,
    /// The parent resource a create was made on (a shipment's order).
    pub parent: Option<String>,
    /// The resource a read asked for.
    pub target: Option<String>,
    /// JSON body of a write, without the key: what a replay must match.
    pub body: Option<String>,
    /// For settle operations: the ambiguous operation this resolves.
    pub resolves: Option<OpId>,
    /// When it was invoked, µs of simulated time.
    pub invoked_at_us: u64,
    /// When it completed, µs of simulated time.
    pub completed_at_us: u64,
    /// Its HTTP attempts.
    pub attempts: Vec<AttemptRecord>,
    /// How it ended.
    pub outcome: OpOutcome,
}

impl Operation {
    /// Every idempotency key its attempts carried (more than one only with the planted
    /// new-key-per-attempt bug).
    pub fn keys_sent(&self) -> impl Iterator<Item = &str> {
        let mut keys: Vec<&str> = self
            .attempts
            .iter()
            .filter_map(|a| a.idempotency_key.as_deref())
            .collect();
        if let Some(key) = self.key.as_deref() {
            keys.push(key);
        }
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter()
    }
}

/// Every operation of a run, by id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    operations: Vec<Operation>,
    /// Requests a target's quiesce hook sent after the settle to cross a rule's boundary
    /// (a misbehaving caller, a replay at the edge of the retention), as the wire answered.
    probes: Vec<Probe>,
    /// Last invoke time per client, to assert time never runs backwards on one host.
    last_invoked_us: BTreeMap<String, u64>,
}

impl History {
    /// An empty history.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts recording `operation` (its `id` is assigned here, its outcome is Pending).
    ///
    /// # Panics
    /// If the client's clock ran backwards: a harness bug.
    pub fn invoke(&mut self, mut operation: Operation) -> OpId {
        let last = self
            .last_invoked_us
            .entry(operation.client.clone())
            .or_insert(0);
        assert!(
            operation.invoked_at_us >= *last,
            "history: time ran backwards on {} ({} < {})",
            operation.client,
            operation.invoked_at_us,
            last
        );
        *last = operation.invoked_at_us;
        let id = OpId::try_from(self.operations.len()).expect("fewer than 2^32 operations");
        operation.id = id;
        operation.outcome = OpOutcome::Pending;
        self.operations.push(operation);
        id
    }

    /// Completes operation `id`.
    ///
    /// # Panics
    /// If `id` is unknown, already complete, or completes before it was invoked.
    pub fn complete(
        &mut self,
        id: OpId,
        completed_at_us: u64,
        attempts: Vec<AttemptRecord>,
        outcome: OpOutcome,
    ) {
        let operation = self
            .operations
            .get_mut(id as usize)
            .expect("history: completing an unknown operation");
        assert_eq!(
            operation.outcome,
            OpOutcome::Pending,
            "history: operation {id} completed twice"
        );
        assert!(
            completed_at_us >= operation.invoked_at_us,
            "history: operation {id} completed before it was invoked"
        );
        assert!(
            !matches!(outcome, OpOutcome::Pending),
            "history: completing operation {id} with Pending"
        );
        operation.completed_at_us = completed_at_us;
        operation.attempts = attempts;
        operation.outcome = outcome;
    }

    /// Every operation, in id order.
    #[must_use]
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// Files a probe and its answer.
    pub fn probe(&mut self, probe: Probe) {
        self.probes.push(probe);
    }

    /// Every probe, in the order sent.
    #[must_use]
    pub fn probes(&self) -> &[Probe] {
        &self.probes
    }

    /// Resources `caller`'s `key` legitimately created anew after its retention expired
    /// (probes answered 201 for a key reused past the retention): each may stand beside the
    /// key's first resource (README, "Retention"; `service_probes` judges the reuse itself).
    #[must_use]
    pub fn created_after_expiry(&self, caller: &str, key: &str) -> u64 {
        self.probes
            .iter()
            .filter(|p| {
                p.rule == Some(ProbeRule::ReusedAfterExpiry)
                    && p.status == Some(201)
                    && p.scope
                        .as_ref()
                        .is_some_and(|(c, k)| c == caller && k == key)
            })
            .count() as u64
    }

    /// One operation.
    #[must_use]
    pub fn get(&self, id: OpId) -> Option<&Operation> {
        self.operations.get(id as usize)
    }

    /// Operations of the workload (not settle).
    pub fn workload(&self) -> impl Iterator<Item = &Operation> {
        self.operations
            .iter()
            .filter(|op| op.phase == Phase::Workload)
    }

    /// Writes of the workload still without a definite answer after the settle phase:
    /// ambiguous, and no settle operation re-issuing them was answered (with a success or a
    /// refusal).
    pub fn unresolved_writes(&self) -> impl Iterator<Item = &Operation> {
        let resolved: std::collections::BTreeSet<OpId> = self
            .operations
            .iter()
            .filter(|op| op.phase == Phase::Settle)
            .filter(|op| {
                matches!(
                    op.outcome,
                    OpOutcome::Ok { .. } | OpOutcome::Rejected { .. }
                )
            })
            .filter_map(|op| op.resolves)
            .collect();
        self.workload()
            .filter(|op| op.kind.is_write() && matches!(op.outcome, OpOutcome::Ambiguous { .. }))
            .filter(move |op| !resolved.contains(&op.id))
    }
}

/// What an event is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A client started an operation.
    OpInvoked {
        /// Operation.
        op: OpId,
        /// Kind.
        kind: OpKind,
        /// Idempotency key, for writes.
        key: Option<String>,
    },
    /// A client finished an operation.
    OpCompleted {
        /// Operation.
        op: OpId,
        /// Outcome label.
        outcome: String,
        /// Attempt outcomes, in order.
        attempts: Vec<String>,
    },
    /// A fault fired.
    FaultFired {
        /// Fault index in the scenario.
        fault: usize,
        /// What it did.
        detail: String,
    },
    /// A fault's effect ended.
    FaultEnded {
        /// Fault index in the scenario.
        fault: usize,
    },
    /// A host process was killed.
    HostCrashed {
        /// Unflushed store transactions lost.
        transactions_lost: u64,
    },
    /// A host process started again.
    HostRestarted {
        /// Its boot number.
        boot: u64,
    },
    /// The service or carrier reported something.
    System(SystemEvent),
    /// Every fault was lifted: the settle phase begins.
    Healed,
}

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    /// Simulated µs since the start of the run.
    pub at_us: u64,
    /// Host it happened on (`driver` for the simulation's own actions).
    pub host: String,
    /// What.
    pub kind: EventKind,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>10.3} ms  {:<10} {:?}",
            self.at_us as f64 / 1_000.0,
            self.host,
            self.kind
        )
    }
}

/// Every event of a run, in recording order, with a running FNV-1a hash.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    events: Vec<Event>,
    hash: Fnv64,
}

impl Trace {
    /// An empty trace.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an event.
    pub fn push(&mut self, event: Event) {
        event.hash(&mut self.hash);
        self.events.push(event);
    }

    /// The hash of every event so far: equal for equal traces, on any 64-bit platform, in
    /// any build profile.
    #[must_use]
    pub fn hash(&self) -> u64 {
        self.hash.finish()
    }

    /// The events.
    #[must_use]
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The first index where two traces differ, if they do.
    #[must_use]
    pub fn first_divergence(&self, other: &Trace) -> Option<usize> {
        let common = self.events.len().min(other.events.len());
        (0..common)
            .find(|&i| self.events[i] != other.events[i])
            .or_else(|| (self.events.len() != other.events.len()).then_some(common))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: &str, at: u64) -> Operation {
        Operation {
            id: 0,
            client: client.into(),
            caller: "m".into(),
            kind: OpKind::new(Verb::Read, 0, 2, "order", "GET /v1/orders/{id}"),
            phase: Phase::Workload,
            key: None,
            placement: None,
            parent: None,
            target: Some("o".into()),
            body: None,
            resolves: None,
            invoked_at_us: at,
            completed_at_us: 0,
            attempts: vec![],
            outcome: OpOutcome::Pending,
        }
    }

    #[test]
    fn ids_are_fresh_and_completion_is_checked() {
        // Proves ids are assigned densely and outcomes recorded.
        let mut history = History::new();
        let a = history.invoke(op("client-0", 10));
        let b = history.invoke(op("client-1", 5));
        assert_eq!((a, b), (0, 1));
        history.complete(a, 20, vec![], OpOutcome::Failed { reason: "x".into() });
        assert_eq!(history.get(a).unwrap().completed_at_us, 20);
    }

    #[test]
    #[should_panic(expected = "time ran backwards")]
    fn time_running_backwards_on_one_host_is_a_bug() {
        // Proves the history refuses a client whose invocations go back in time.
        let mut history = History::new();
        history.invoke(op("client-0", 10));
        history.invoke(op("client-0", 9));
    }

    #[test]
    #[should_panic(expected = "completed twice")]
    fn completing_twice_is_a_bug() {
        // Proves an operation cannot have two outcomes.
        let mut history = History::new();
        let id = history.invoke(op("client-0", 1));
        history.complete(id, 2, vec![], OpOutcome::Failed { reason: "x".into() });
        history.complete(id, 3, vec![], OpOutcome::Failed { reason: "y".into() });
    }

    #[test]
    fn trace_hash_and_divergence() {
        // Proves equal traces hash equal, a changed event changes the hash, and the first
        // divergent index is found.
        let event = |at_us, fault| Event {
            at_us,
            host: "service".into(),
            kind: EventKind::FaultFired {
                fault,
                detail: "503".into(),
            },
        };
        let mut a = Trace::new();
        let mut b = Trace::new();
        for i in 0..5 {
            a.push(event(i, 0));
            b.push(event(i, usize::from(i == 3)));
        }
        assert_ne!(a.hash(), b.hash());
        assert_eq!(a.first_divergence(&b), Some(3));
        assert_eq!(a.first_divergence(&a.clone()), None);
        let mut longer = a.clone();
        longer.push(event(9, 0));
        assert_eq!(a.first_divergence(&longer), Some(5));
    }
}
