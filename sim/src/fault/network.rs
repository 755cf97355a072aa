//! Network, process and time faults, applied by the driver between simulation steps.
//!
//! Each such fault has a start (its window's start) and an end (its window's end, or the
//! heal at the end of the workload). Overlapping faults on one link are reference counted,
//! so the link heals when the last of them ends. Random crash instants are drawn when the
//! run is set up, from the run's fault stream, so they do not depend on anything that
//! happens during the run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use shipsim_system::seed::Seed;

use super::{CrashTrigger, FaultKind, FaultSpec};
use crate::history::EventKind;
use crate::hosts::{CARRIER, HostSel, RECEIVER};
use crate::net::SimTransport;
use crate::oracle::WebhookParties;
use crate::shared::Shared;
use crate::target::Durables;

/// How often the simulated store flushes lazy commits, ms: the page-cache writeback a lazy
/// (planted-bug) commit relies on. A crash loses up to this much of acknowledged work.
pub(crate) const FLUSH_INTERVAL_MS: u64 = 50;

/// A directed host pair.
type Pair = (String, String);

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
    /// Instant of each random crash that will happen (drawn at set-up).
    crash_at_ms: BTreeMap<usize, u64>,
    /// Flapping faults: whether the links are down now, and when they toggle next.
    flaps: BTreeMap<usize, (bool, u64)>,
    partitions: BTreeMap<Pair, u32>,
    oneways: BTreeMap<Pair, u32>,
    holds: BTreeMap<Pair, u32>,
    /// Crashed hosts and when they restart (`None`: at heal).
    down: BTreeMap<String, Option<u64>>,
    next_flush_ms: u64,
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
        let mut crash_at_ms = BTreeMap::new();
        for spec in faults {
            if let FaultKind::Crash(crash) = &spec.kind
                && crash.trigger == CrashTrigger::AtRandom
            {
                // Each random crash draws from its own stream: another fault never shifts
                // its instant.
                let mut rng = seed.derive_index("crash", spec.stream).rng();
                let fires: f64 = rng.random();
                let span = spec
                    .window
                    .end_ms
                    .map_or(0, |end| end - spec.window.start_ms);
                let offset = if span == 0 {
                    0
                } else {
                    rng.random_range(0..span)
                };
                if fires < spec.probability {
                    crash_at_ms.insert(spec.index, spec.window.start_ms + offset);
                }
            }
        }
        NetDriver {
            faults: faults
                .iter()
                .filter(|spec| {
                    spec.kind.http_rule().is_none() && spec.kind.webhook_rule().is_none()
                })
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
            crash_at_ms,
            flaps: BTreeMap::new(),
            partitions: BTreeMap::new(),
            oneways: BTreeMap::new(),
            holds: BTreeMap::new(),
            down: BTreeMap::new(),
            next_flush_ms: FLUSH_INTERVAL_MS,
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

    fn restart(&mut self, sim: &mut turmoil::Sim<'_>, host: &str) {
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

    fn names(&self, selector: &HostSel) -> Vec<String> {
        let mut names = selector.names(self.clients);
        names.retain(|name| !self.absent.contains(name));
        names
    }

    /// Hosts of the target that this scenario does not run (the reference receiver without
    /// outbound webhooks): faults that name them have nothing to act on.
    pub(crate) fn set_absent(&mut self, absent: BTreeSet<String>) {
        self.absent = absent;
    }

    fn pairs(&self, a: &HostSel, b: &HostSel) -> Vec<Pair> {
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

    /// Every host other than `target`'s, for flapping all of its links.
    fn others(&self, target: &HostSel) -> HostSel {
        // A flap cuts the target off from the hosts it talks to: clients talk to the
        // service, the service to clients and carrier, the carrier to the service.
        match target {
            HostSel::Service => HostSel::Clients,
            HostSel::Host(_) | HostSel::Downstreams(_) | HostSel::Clients | HostSel::Client(_) => {
                HostSel::Service
            }
        }
    }

    fn start(&mut self, sim: &mut turmoil::Sim<'_>, spec: &FaultSpec, now_ms: u64) {
        match &spec.kind {
            FaultKind::Crash(crash) => {
                // Point crashes are armed in the host observer; random ones fire at their
                // instant (see `tick`); neither needs a start action.
                if crash.trigger == CrashTrigger::AtRandom
                    && !self.crash_at_ms.contains_key(&spec.index)
                {
                    self.done.insert(spec.index);
                    return;
                }
                self.active.insert(spec.index);
                return;
            }
            FaultKind::Latency(f) => {
                for (x, y) in self.pairs(&f.a, &f.b) {
                    sim.set_link_latency(x.as_str(), y.as_str(), Duration::from_millis(f.min_ms));
                    sim.set_link_max_message_latency(
                        x.as_str(),
                        y.as_str(),
                        Duration::from_millis(f.max_ms),
                    );
                }
            }
            FaultKind::Hold(f) => {
                for pair in self.pairs(&f.a, &f.b) {
                    count_up(&mut self.holds, &pair, || {
                        sim.hold(pair.0.as_str(), pair.1.as_str())
                    });
                }
            }
            FaultKind::Partition(f) => {
                for pair in self.pairs(&f.a, &f.b) {
                    count_up(&mut self.partitions, &pair, || {
                        sim.partition(pair.0.as_str(), pair.1.as_str())
                    });
                }
            }
            FaultKind::PartitionOneway(f) => {
                for pair in self.pairs(&f.from, &f.to) {
                    count_up(&mut self.oneways, &pair, || {
                        sim.partition_oneway(pair.0.as_str(), pair.1.as_str());
                    });
                }
            }
            FaultKind::Flap(_) => {
                self.flaps.insert(spec.index, (false, now_ms));
            }
            FaultKind::ReconnectStorm(f) => {
                for pair in self.pairs(&f.target, &HostSel::Service) {
                    count_up(&mut self.partitions, &pair, || {
                        sim.partition(pair.0.as_str(), pair.1.as_str())
                    });
                }
            }
            FaultKind::CarrierDown(_) => {
                self.crash(sim, CARRIER, now_ms, None);
            }
            FaultKind::ReceiverDown(_) => {
                self.crash(sim, RECEIVER, now_ms, None);
            }
            FaultKind::WebhookBurst(burst) => {
                self.burst(spec, burst.events, now_ms);
            }
            FaultKind::ClockSkew(_) => {
                // Clocks read their skew themselves (SimClock); the start is recorded so the
                // report shows the skew took effect.
            }
            FaultKind::HttpError(_)
            | FaultKind::RateLimit(_)
            | FaultKind::SlowResponse(_)
            | FaultKind::ResetMidResponse(_)
            | FaultKind::DropResponse(_)
            | FaultKind::Duplicate(_)
            | FaultKind::WebhookDuplicate(_)
            | FaultKind::WebhookReorder(_)
            | FaultKind::WebhookDelay(_)
            | FaultKind::WebhookDrop(_)
            | FaultKind::WebhookReplay(_)
            | FaultKind::WebhookForge(_) => {
                unreachable!("HTTP and webhook faults act in transports")
            }
        }
        self.active.insert(spec.index);
        if !matches!(spec.kind, FaultKind::Flap(_)) {
            self.shared
                .fired("driver", spec.index, spec.kind.describe());
        }
    }

    fn tick(&mut self, sim: &mut turmoil::Sim<'_>, spec: &FaultSpec, now_ms: u64) {
        match &spec.kind {
            FaultKind::Crash(crash) => {
                if let Some(&at) = self.crash_at_ms.get(&spec.index)
                    && now_ms >= at
                {
                    self.crash_at_ms.remove(&spec.index);
                    let host = crash.target.to_string();
                    self.shared
                        .fired("driver", spec.index, format!("crash {host}"));
                    self.crash(sim, &host, now_ms, Some(crash.restart_after_ms));
                }
            }
            FaultKind::Flap(flap) => {
                let (down, next) = self.flaps[&spec.index];
                if now_ms < next {
                    return;
                }
                let others = self.others(&flap.target);
                for pair in self.pairs(&flap.target, &others) {
                    if down {
                        count_down(&mut self.partitions, &pair, || {
                            sim.repair(pair.0.as_str(), pair.1.as_str())
                        });
                    } else {
                        count_up(&mut self.partitions, &pair, || {
                            sim.partition(pair.0.as_str(), pair.1.as_str())
                        });
                    }
                }
                if !down {
                    self.shared
                        .fired("driver", spec.index, format!("{} links down", flap.target));
                }
                let next_ms = now_ms
                    .checked_add(flap.period_ms)
                    .expect("period_ms is at most DURATION_MS_MAX (checked at parse time)");
                self.flaps.insert(spec.index, (!down, next_ms));
            }
            _ => {}
        }
    }

    fn end(&mut self, sim: &mut turmoil::Sim<'_>, spec: &FaultSpec) {
        self.active.remove(&spec.index);
        self.done.insert(spec.index);
        match &spec.kind {
            FaultKind::Latency(f) => {
                let (min, max) = self.default_latency_ms;
                for (x, y) in self.pairs(&f.a, &f.b) {
                    sim.set_link_latency(x.as_str(), y.as_str(), Duration::from_millis(min));
                    sim.set_link_max_message_latency(
                        x.as_str(),
                        y.as_str(),
                        Duration::from_millis(max),
                    );
                }
            }
            FaultKind::Hold(f) => {
                for pair in self.pairs(&f.a, &f.b) {
                    count_down(&mut self.holds, &pair, || {
                        sim.release(pair.0.as_str(), pair.1.as_str())
                    });
                }
            }
            FaultKind::Partition(f) => {
                for pair in self.pairs(&f.a, &f.b) {
                    count_down(&mut self.partitions, &pair, || {
                        sim.repair(pair.0.as_str(), pair.1.as_str())
                    });
                }
            }
            FaultKind::PartitionOneway(f) => {
                for pair in self.pairs(&f.from, &f.to) {
                    count_down(&mut self.oneways, &pair, || {
                        sim.repair_oneway(pair.0.as_str(), pair.1.as_str());
                    });
                }
            }
            FaultKind::Flap(flap) => {
                if let Some((true, _)) = self.flaps.remove(&spec.index) {
                    let others = self.others(&flap.target);
                    for pair in self.pairs(&flap.target, &others) {
                        count_down(&mut self.partitions, &pair, || {
                            sim.repair(pair.0.as_str(), pair.1.as_str())
                        });
                    }
                }
            }
            FaultKind::ReconnectStorm(f) => {
                for pair in self.pairs(&f.target, &HostSel::Service) {
                    count_down(&mut self.partitions, &pair, || {
                        sim.repair(pair.0.as_str(), pair.1.as_str())
                    });
                }
                // Every client of the storm throws its connections away at this instant, so
                // they all reconnect together.
                for host in self.names(&f.target) {
                    if let Some(transport) = self.transports.get(&host) {
                        transport.drop_idle();
                    }
                }
            }
            FaultKind::CarrierDown(_) if self.down.get(CARRIER) == Some(&None) => {
                self.restart(sim, CARRIER);
            }
            FaultKind::ReceiverDown(_) if self.down.get(RECEIVER) == Some(&None) => {
                self.restart(sim, RECEIVER);
            }
            FaultKind::Crash(_) | FaultKind::ClockSkew(_) => {}
            _ => {}
        }
        self.shared
            .record("driver", EventKind::FaultEnded { fault: spec.index });
    }
}

impl NetDriver {
    /// Schedules `events` in-transit pings for labels sold so far, due now. The carrier's
    /// clock reads the same as the simulation's here unless skewed, and a skewed carrier
    /// only delays or hastens its own burst.
    fn burst(&mut self, spec: &FaultSpec, events: u32, now_ms: u64) {
        let Some(parties) = &self.webhooks else {
            return;
        };
        let mut rng = self.seed.derive_index("burst", spec.stream).rng();
        let due_at_ms = crate::clock::EPOCH_UNIX_MS + now_ms;
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

fn count_down(counts: &mut BTreeMap<Pair, u32>, pair: &Pair, apply: impl FnOnce()) {
    if let Some(count) = counts.get_mut(pair) {
        *count -= 1;
        if *count == 0 {
            counts.remove(pair);
            apply();
        }
    }
}
