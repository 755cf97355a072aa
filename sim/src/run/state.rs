//! State shared by every part of one simulated run: the trace, the history, how often each
//! fault fired, and the requests that flow from inside hosts to the driver (crash me now).
//!
//! Everything in a run executes on one thread, one host at a time, so the mutex is never
//! contended; it is a mutex only because the service's observer must be `Send + Sync`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use shipsim_system::observe::{Checkpoint, Observer, SystemEvent};
use shipsim_system::seed::Seed;

use crate::fault::{CrashTrigger, FaultKind, FaultSpec, Window};
use crate::run::history::{Event, EventKind, History, Trace};

/// The mutable state of a run.
#[derive(Debug, Default)]
pub(crate) struct RunState {
    pub trace: Trace,
    pub history: History,
    /// Times each fault (by index) fired.
    pub fired: BTreeMap<usize, u64>,
    /// Requests each server host received (what HTTP fault rates are measured against).
    pub requests_seen: BTreeMap<String, u64>,
    /// Set once the workload is over and every fault is lifted.
    pub healed: bool,
    /// Hosts that reached a crash checkpoint this step and must be killed by the driver,
    /// with their downtime in ms.
    pub crash_requests: BTreeMap<String, u64>,
    /// Remaining crashes of each point-triggered fault.
    pub point_budget: BTreeMap<usize, u32>,
    /// Simulated time as the driver last saw it, for events recorded outside any host.
    pub driver_now_us: u64,
    /// Event ids of forged webhook deliveries: nobody may act on them.
    pub forged: std::collections::BTreeSet<String>,
    /// Injected deliveries (replays, forgeries, duplicate copies) not yet answered; the
    /// settler waits for them so their effect is part of the run.
    pub injections_in_flight: u64,
    /// Every injected delivery and its answer, in the order answered (not traced: counting
    /// them must not move a trace hash).
    pub injections: Vec<crate::reach::Injection>,
}

/// A handle to the run's shared state.
#[derive(Clone, Debug, Default)]
pub(crate) struct Shared(Arc<Mutex<RunState>>);

impl Shared {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, RunState> {
        self.0.lock().expect("run state lock poisoned")
    }

    /// Simulated µs now: the current host's view inside a host, the driver's outside.
    pub(crate) fn now_us(&self) -> u64 {
        match turmoil::sim_elapsed() {
            Some(elapsed) => u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            None => self.lock().driver_now_us,
        }
    }

    /// Records an event on `host` at the current simulated time.
    pub(crate) fn record(&self, host: &str, kind: EventKind) {
        let at_us = self.now_us();
        self.lock().trace.push(Event {
            at_us,
            host: host.to_string(),
            kind,
        });
    }

    /// Records that fault `index` fired, and counts it.
    pub(crate) fn fired(&self, host: &str, index: usize, detail: String) {
        let at_us = self.now_us();
        let mut state = self.lock();
        *state.fired.entry(index).or_insert(0) += 1;
        state.trace.push(Event {
            at_us,
            host: host.to_string(),
            kind: EventKind::FaultFired {
                fault: index,
                detail,
            },
        });
    }

    pub(crate) fn healed(&self) -> bool {
        self.lock().healed
    }
}

/// The observer given to a server host: records system events, and answers checkpoints
/// with "crash here" when a point-triggered crash fault says so.
pub(crate) struct HostObserver {
    host: String,
    shared: Shared,
    points: Vec<PointFault>,
}

struct PointFault {
    index: usize,
    rng: Mutex<ChaCha8Rng>,
    point: Checkpoint,
    window: Window,
    probability: f64,
    restart_after_ms: u64,
}

impl HostObserver {
    /// An observer for `host`, arming the point-triggered crash faults that target it.
    pub(crate) fn new(host: &str, shared: Shared, faults: &[FaultSpec], seed: Seed) -> Self {
        let points = faults
            .iter()
            .filter_map(|spec| match &spec.kind {
                FaultKind::Crash(crash) if crash.target.contains(host) => match crash.trigger {
                    CrashTrigger::AtPoint { point, .. } => Some(PointFault {
                        index: spec.index,
                        rng: Mutex::new(seed.derive_index("point", spec.stream).rng()),
                        point,
                        window: spec.window,
                        probability: spec.probability,
                        restart_after_ms: crash.restart_after_ms,
                    }),
                    CrashTrigger::AtRandom => None,
                },
                _ => None,
            })
            .collect();
        HostObserver {
            host: host.to_string(),
            shared,
            points,
        }
    }
}

impl Observer for HostObserver {
    fn record(&self, event: SystemEvent) {
        self.shared.record(&self.host, EventKind::System(event));
    }

    fn checkpoint(&self, point: Checkpoint) -> bool {
        if self.points.is_empty() || self.shared.healed() {
            return false;
        }
        let now_ms = self.shared.now_us() / 1_000;
        for fault in self
            .points
            .iter()
            .filter(|f| f.point == point && f.window.contains(now_ms))
        {
            let mut state = self.shared.lock();
            let remaining = state.point_budget.get(&fault.index).copied().unwrap_or(0);
            if remaining == 0 {
                continue;
            }
            let draw: f64 = fault
                .rng
                .lock()
                .expect("observer rng lock poisoned")
                .random();
            if draw >= fault.probability {
                continue;
            }
            state.point_budget.insert(fault.index, remaining - 1);
            state
                .crash_requests
                .insert(self.host.clone(), fault.restart_after_ms);
            drop(state);
            self.shared.fired(
                &self.host,
                fault.index,
                format!("crash at {}", point.name()),
            );
            return true;
        }
        false
    }
}
