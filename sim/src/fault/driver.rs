//! The driver of network, process and time faults (and the webhook burst): it calls each
//! such fault's [`DriverEffect`] between simulation steps.
//!
//! Each such fault has a start (its window's start) and an end (its window's end, or the
//! heal at the end of the workload); what it does at each lives in its own file. This
//! module holds what they share: links reference counted across faults, so a link heals
//! when the last fault on it ends; crashed hosts and their restarts; the lazy-commit flush.
//! Instants a fault schedules ([`DriverEffect::schedule`], e.g. a random crash) are drawn
//! when the run is set up, each from the fault's own stream, so they do not depend on
//! anything that happens during the run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use shipsim_system::seed::Seed;

use super::{Effect, FaultSpec};
use crate::oracle::WebhookParties;
use crate::run::history::EventKind;
use crate::run::hosts::HostSel;
use crate::run::net::SimTransport;
use crate::run::state::Shared;
use crate::target::Durables;

/// How often the simulated store flushes lazy commits, ms: the page-cache writeback a lazy
/// (planted-bug) commit relies on. A crash loses up to this much of acknowledged work.
pub(crate) const FLUSH_INTERVAL_MS: u64 = 50;

/// A directed host pair.
pub(super) type Pair = (String, String);

/// What a fault's start did, for the driver's bookkeeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Started {
    /// Active, and the start is the fault firing: recorded as such.
    Fired,
    /// Active, firing later (at an instant or a tick of its own), recorded then.
    Armed,
    /// Nothing to do in this run (e.g. a random crash whose draw said no): done.
    Skipped,
}

/// The effect of a fault the driver applies between simulation steps: network, process
/// and time faults. HTTP and webhook delivery faults act in transports instead
/// ([`Effect::Http`], [`Effect::Webhook`]).
pub(crate) trait DriverEffect {
    /// An instant (simulated ms) drawn at set-up, from the fault's own stream, at which
    /// [`DriverEffect::tick`] finds [`NetDriver::scheduled_ms`] due; `None` when it needs none.
    fn schedule(&self, _spec: &FaultSpec, _seed: Seed) -> Option<u64> {
        None
    }

    /// At the window's start.
    fn start(
        &self,
        driver: &mut NetDriver,
        sim: &mut turmoil::Sim<'_>,
        spec: &FaultSpec,
        now_ms: u64,
    ) -> Started;

    /// At every step while active, before a due end.
    fn tick(
        &self,
        _driver: &mut NetDriver,
        _sim: &mut turmoil::Sim<'_>,
        _spec: &FaultSpec,
        _now_ms: u64,
    ) {
    }

    /// At the window's end or the heal, whichever is first.
    fn end(&self, _driver: &mut NetDriver, _sim: &mut turmoil::Sim<'_>, _spec: &FaultSpec) {}
}

/// The three ways a fault takes a link down, each counted on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkCut {
    /// Both directions drop messages (`partition`, `flap`, `reconnect_storm`).
    Partition,
    /// One direction drops messages (`partition_oneway`).
    Oneway,
    /// Messages wait, to be released together (`hold`).
    Hold,
}

/// Driver-side fault state of one run.
pub(crate) struct NetDriver {
    faults: Vec<FaultSpec>,
    clients: u32,
    default_latency_ms: (u64, u64),
    durables: Durables,
    webhooks: Option<Arc<dyn WebhookParties>>,
    absent: BTreeSet<String>,
    seed: Seed,
    shared: Shared,
    /// Client transports, so a reconnect storm can drop their pooled connections.
    transports: BTreeMap<String, Arc<SimTransport>>,
    /// Faults whose start was applied and whose end was not.
    active: BTreeSet<usize>,
    /// Faults that ended (or could not start because the run healed first).
    done: BTreeSet<usize>,
    /// The instant each fault scheduled at set-up ([`DriverEffect::schedule`]), until it
    /// is taken.
    scheduled_ms: BTreeMap<usize, u64>,
    /// Toggling faults (`flap`): whether their links are down now, and when they toggle next.
    pub(super) toggles: BTreeMap<usize, (bool, u64)>,
    partitions: BTreeMap<Pair, u32>,
    oneways: BTreeMap<Pair, u32>,
    holds: BTreeMap<Pair, u32>,
    /// Crashed hosts and when they restart (`None`: at heal).
    down: BTreeMap<String, Option<u64>>,
    next_flush_ms: u64,
    /// The instant of the last step, to hold simulated time to moving forward.
    last_step_ms: u64,
}

impl NetDriver {
    pub(crate) fn new(
        faults: &[FaultSpec],
        clients: u32,
        default_latency_ms: (u64, u64),
        durables: Durables,
        webhooks: Option<Arc<dyn WebhookParties>>,
        shared: Shared,
        seed: Seed,
    ) -> Self {
        let mut scheduled_ms = BTreeMap::new();
        for spec in faults {
            if let Effect::Driver(effect) = spec.kind.effect()
                && let Some(at_ms) = effect.schedule(spec, seed)
            {
                scheduled_ms.insert(spec.index, at_ms);
            }
        }
        NetDriver {
            faults: faults
                .iter()
                .filter(|spec| matches!(spec.kind.effect(), Effect::Driver(_)))
                .cloned()
                .collect(),
            clients,
            default_latency_ms,
            durables,
            webhooks,
            absent: BTreeSet::new(),
            seed,
            shared,
            transports: BTreeMap::new(),
            active: BTreeSet::new(),
            done: BTreeSet::new(),
            scheduled_ms,
            toggles: BTreeMap::new(),
            partitions: BTreeMap::new(),
            oneways: BTreeMap::new(),
            holds: BTreeMap::new(),
            down: BTreeMap::new(),
            next_flush_ms: FLUSH_INTERVAL_MS,
            last_step_ms: 0,
        }
    }

    /// Connections the clients opened, all transports together.
    pub(crate) fn client_connections(&self) -> u64 {
        self.transports
            .values()
            .map(|t| t.connections_opened())
            .sum()
    }

    /// Registers a client's transport for reconnect storms.
    pub(crate) fn register_transport(&mut self, host: String, transport: Arc<SimTransport>) {
        self.transports.insert(host, transport);
    }

    /// Applies everything due at `now_ms`.
    pub(crate) fn advance(&mut self, sim: &mut turmoil::Sim<'_>, now_ms: u64) {
        // Windows start and end once each only because simulated time never goes back.
        assert!(
            now_ms >= self.last_step_ms,
            "simulated time went back from {} ms to {now_ms} ms",
            self.last_step_ms
        );
        self.last_step_ms = now_ms;
        if now_ms >= self.next_flush_ms {
            self.durables.flush();
            self.next_flush_ms = now_ms + FLUSH_INTERVAL_MS;
        }
        // Taken out for the loop (the methods below need `&mut self`), put back after: no
        // copy of the fault list on every simulation step.
        let faults = std::mem::take(&mut self.faults);
        for spec in &faults {
            if self.done.contains(&spec.index) {
                continue;
            }
            let started = self.active.contains(&spec.index);
            if !started && now_ms >= spec.window.start_ms {
                self.start(sim, spec, now_ms);
            }
            if self.active.contains(&spec.index) {
                self.tick(sim, spec, now_ms);
                if spec.window.end_ms.is_some_and(|end| now_ms >= end) {
                    self.end(sim, spec);
                }
            }
        }
        self.faults = faults;
        let due: Vec<String> = self
            .down
            .iter()
            .filter(|(_, until)| until.is_some_and(|t| now_ms >= t))
            .map(|(host, _)| host.clone())
            .collect();
        for host in due {
            self.restart(sim, &host);
        }
    }

    /// Kills `host` now and schedules its restart `restart_after_ms` from `now_ms`
    /// (`None`: at heal). A host already down stays down on its first schedule.
    pub(crate) fn crash(
        &mut self,
        sim: &mut turmoil::Sim<'_>,
        host: &str,
        now_ms: u64,
        restart_after_ms: Option<u64>,
    ) {
        if self.down.contains_key(host) || self.absent.contains(host) {
            return;
        }
        sim.crash(host);
        let lost = self.durables.crash(host);
        self.shared.record(
            host,
            EventKind::HostCrashed {
                transactions_lost: lost,
            },
        );
        // Both at most a few simulated days (the run's limits, and `restart_after_ms`'s):
        // no overflow.
        let restart_at_ms = restart_after_ms.map(|after| {
            now_ms
                .checked_add(after)
                .expect("restart_after_ms is at most DURATION_MS_MAX (checked at parse time)")
        });
        self.down.insert(host.to_string(), restart_at_ms);
    }

    pub(super) fn restart(&mut self, sim: &mut turmoil::Sim<'_>, host: &str) {
        if self.down.remove(host).is_some() {
            sim.bounce(host);
        }
    }

    /// Ends every fault and restarts every crashed host: the network and processes are
    /// healthy from now on.
    pub(crate) fn heal(&mut self, sim: &mut turmoil::Sim<'_>) {
        let faults = self.faults.clone();
        for spec in &faults {
            if self.active.contains(&spec.index) {
                self.end(sim, spec);
            }
            self.done.insert(spec.index);
        }
        let down: Vec<String> = self.down.keys().cloned().collect();
        for host in down {
            self.restart(sim, &host);
        }
    }

    pub(super) fn names(&self, selector: &HostSel) -> Vec<String> {
        let mut names = selector.names(self.clients);
        names.retain(|name| !self.absent.contains(name));
        names
    }

    /// Hosts of the target that this scenario does not run (the reference receiver without
    /// outbound webhooks): faults that name them have nothing to act on.
    pub(crate) fn set_absent(&mut self, absent: BTreeSet<String>) {
        // Faults compute their pairs from the hosts present: changing them once a fault
        // has started would make its end mend other pairs than its start cut.
        assert!(
            self.active.is_empty() && self.done.is_empty(),
            "absent hosts are set before the first simulation step"
        );
        self.absent = absent;
    }

    pub(super) fn pairs(&self, a: &HostSel, b: &HostSel) -> Vec<Pair> {
        let mut pairs = Vec::new();
        for x in self.names(a) {
            for y in self.names(b) {
                if x != y {
                    pairs.push((x.clone(), y));
                }
            }
        }
        pairs
    }

    fn start(&mut self, sim: &mut turmoil::Sim<'_>, spec: &FaultSpec, now_ms: u64) {
        let Effect::Driver(effect) = spec.kind.effect() else {
            unreachable!("NetDriver::new keeps only driver faults")
        };
        match effect.start(self, sim, spec, now_ms) {
            Started::Skipped => {
                self.done.insert(spec.index);
            }
            Started::Armed => {
                self.active.insert(spec.index);
            }
            Started::Fired => {
                self.active.insert(spec.index);
                self.shared
                    .fired("driver", spec.index, spec.kind.describe());
            }
        }
    }

    fn tick(&mut self, sim: &mut turmoil::Sim<'_>, spec: &FaultSpec, now_ms: u64) {
        if let Effect::Driver(effect) = spec.kind.effect() {
            effect.tick(self, sim, spec, now_ms);
        }
    }

    fn end(&mut self, sim: &mut turmoil::Sim<'_>, spec: &FaultSpec) {
        self.active.remove(&spec.index);
        self.done.insert(spec.index);
        if let Effect::Driver(effect) = spec.kind.effect() {
            effect.end(self, sim, spec);
        }
        self.shared
            .record("driver", EventKind::FaultEnded { fault: spec.index });
    }
}

/// What faults' effects may ask of the driver.
impl NetDriver {
    /// Records that fault `spec` fired, with what it did.
    pub(super) fn fired(&self, spec: &FaultSpec, what: String) {
        self.shared.fired("driver", spec.index, what);
    }

    /// Takes the instant `spec` scheduled at set-up, if it is due at `now_ms`.
    pub(super) fn take_due(&mut self, spec: &FaultSpec, now_ms: u64) -> bool {
        let due = self
            .scheduled_ms
            .get(&spec.index)
            .is_some_and(|&at_ms| now_ms >= at_ms);
        if due {
            self.scheduled_ms.remove(&spec.index);
        }
        due
    }

    /// Whether `spec` scheduled an instant at set-up that is still to come.
    pub(super) fn is_scheduled(&self, spec: &FaultSpec) -> bool {
        self.scheduled_ms.contains_key(&spec.index)
    }

    /// The run's link latency outside latency faults, ms (fastest, slowest).
    pub(super) fn default_latency_ms(&self) -> (u64, u64) {
        self.default_latency_ms
    }

    /// Sets the latency of every link between `a` and `b`.
    pub(super) fn set_latency(
        &self,
        sim: &mut turmoil::Sim<'_>,
        a: &HostSel,
        b: &HostSel,
        (min_ms, max_ms): (u64, u64),
    ) {
        for (x, y) in self.pairs(a, b) {
            sim.set_link_latency(x.as_str(), y.as_str(), Duration::from_millis(min_ms));
            sim.set_link_max_message_latency(x.as_str(), y.as_str(), Duration::from_millis(max_ms));
        }
    }

    /// Takes the links from `a` to `b` down by `cut` (counted: a link another fault
    /// already cut stays as it is).
    pub(super) fn cut(
        &mut self,
        sim: &mut turmoil::Sim<'_>,
        cut: LinkCut,
        a: &HostSel,
        b: &HostSel,
    ) {
        for pair in self.pairs(a, b) {
            let (x, y) = (pair.0.as_str(), pair.1.as_str());
            count_up(self.counts(cut), &pair, || match cut {
                LinkCut::Partition => sim.partition(x, y),
                LinkCut::Oneway => sim.partition_oneway(x, y),
                LinkCut::Hold => sim.hold(x, y),
            });
        }
    }

    /// Undoes one [`NetDriver::cut`] of the links from `a` to `b`; a link comes back when
    /// the last fault that cut it ends.
    pub(super) fn mend(
        &mut self,
        sim: &mut turmoil::Sim<'_>,
        cut: LinkCut,
        a: &HostSel,
        b: &HostSel,
    ) {
        for pair in self.pairs(a, b) {
            let (x, y) = (pair.0.as_str(), pair.1.as_str());
            count_down(self.counts(cut), &pair, || match cut {
                LinkCut::Partition => sim.repair(x, y),
                LinkCut::Oneway => sim.repair_oneway(x, y),
                LinkCut::Hold => sim.release(x, y),
            });
        }
    }

    /// The counts of links cut by `cut`, each kept apart (a hold and a partition of one
    /// link are undone by different calls).
    fn counts(&mut self, cut: LinkCut) -> &mut BTreeMap<Pair, u32> {
        match cut {
            LinkCut::Partition => &mut self.partitions,
            LinkCut::Oneway => &mut self.oneways,
            LinkCut::Hold => &mut self.holds,
        }
    }

    /// Restarts `host` if it is down until the heal (a process fault's own stop), not by
    /// a crash with a restart of its own.
    pub(super) fn restart_if_stopped(&mut self, sim: &mut turmoil::Sim<'_>, host: &str) {
        if self.down.get(host) == Some(&None) {
            self.restart(sim, host);
        }
    }

    /// Makes every client in `target` throw its pooled connections away now.
    pub(super) fn drop_idle_connections(&self, target: &HostSel) {
        for host in self.names(target) {
            if let Some(transport) = self.transports.get(&host) {
                transport.drop_idle();
            }
        }
    }
}

impl NetDriver {
    /// Schedules `events` in-transit pings for labels sold so far, due now. The carrier's
    /// clock reads the same as the simulation's here unless skewed, and a skewed carrier
    /// only delays or hastens its own burst.
    pub(super) fn burst(&mut self, spec: &FaultSpec, events: u32, now_ms: u64) {
        let Some(parties) = &self.webhooks else {
            return;
        };
        let mut rng = self.seed.derive_index("burst", spec.stream).rng();
        let due_at_ms = crate::run::clock::EPOCH_UNIX_MS + now_ms;
        parties.burst(&self.durables, events, &mut rng, due_at_ms, spec.stream);
    }
}

fn count_up(counts: &mut BTreeMap<Pair, u32>, pair: &Pair, apply: impl FnOnce()) {
    let count = counts.entry(pair.clone()).or_insert(0);
    *count += 1;
    if *count == 1 {
        apply();
    }
}

/// Counts one cut of `pair` ended; `apply` mends the link when it was the last.
///
/// # Panics
/// If `pair` has no cut counted: a fault's end mends exactly the pairs its start cut (both
/// computed by [`NetDriver::pairs`] from the same selectors, and the hosts absent from the
/// run are set before the first step), so a missing count is a driver bug, not input.
fn count_down(counts: &mut BTreeMap<Pair, u32>, pair: &Pair, apply: impl FnOnce()) {
    let count = counts
        .get_mut(pair)
        .unwrap_or_else(|| panic!("link {pair:?} mended without a cut counted"));
    assert!(*count > 0, "a counted cut of {pair:?} is at least 1");
    *count -= 1;
    if *count == 0 {
        counts.remove(pair);
        apply();
    }
}
