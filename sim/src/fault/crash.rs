//! `crash`: kill a server process and restart it after a while. The store keeps what was
//! durable and loses the rest. The crash lands at a random instant of the window, or exactly
//! at a named checkpoint between two steps of an operation (e.g. between "carrier label
//! bought" and "shipment stored").

use shipsim_system::observe::Checkpoint;

use super::params::Params;
use super::{Family, KindInfo, PROBABILITY, ParamInfo, Window, Effect, Fault};
use super::driver::{DriverEffect, NetDriver, Started};
use super::FaultSpec;
use crate::scenario::write_quote as quote;
use rand::Rng;
use shipsim_system::seed::Seed;
use crate::run::hosts::HostSel;
use crate::scenario::ScenarioError;
use crate::scenario::limits::Limit;

/// When a crash happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashTrigger {
    /// Once, at an instant drawn uniformly from the window (at `start_ms` when the window
    /// is open-ended).
    AtRandom,
    /// Each time the target reaches `point` inside the window (with the fault's
    /// probability), at most `times` times.
    AtPoint {
        /// Where.
        point: Checkpoint,
        /// How many crashes at most.
        times: u32,
    },
}

/// Crashes and restarts a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crash {
    /// `service` or `carrier`.
    pub target: HostSel,
    /// When.
    pub trigger: CrashTrigger,
    /// Downtime before the restart, ms.
    pub restart_after_ms: u64,
}

/// `times`: at most 100 crashes from one point-triggered fault.
const TIMES: ParamInfo = ParamInfo::numeric(
    "times",
    false,
    "with `point`: most crashes (default 1)",
    Limit::int(1, 100),
);
/// `restart_after_ms`
const RESTART_AFTER_MS: ParamInfo = ParamInfo::numeric(
    "restart_after_ms",
    false,
    "downtime before the restart, ms (default 500)",
    Limit::duration_ms(0),
);

impl Fault for Crash {
    const INFO: KindInfo = KindInfo {
        name: "crash",
        family: Family::Process,
        summary: "kill a server (losing what it had not made durable) and restart it",
        params: &[
            ParamInfo {
                name: "target",
                required: true,
                doc: "\"service\", \"carrier\" or (with outbound webhooks) \"receiver\"",
                limit: None,
            },
            ParamInfo {
                name: "point",
                required: false,
                doc: "crash exactly at: shipment_claimed, label_bought, response_stored (service) or label_sold (carrier); without it, at a random instant of the window",
                limit: None,
            },
            TIMES,
            RESTART_AFTER_MS,
            PROBABILITY,
        ],
    };

    const EXAMPLE: &'static str = r#"
        target = "service"
        restart_after_ms = 300
        duration_ms = 800
    "#;

    fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        let target = params.server("target")?;
        let restart_after_ms = params
            .ranged(&RESTART_AFTER_MS, Params::u64)?
            .map_or(500, |(v, _)| v);
        let point = params.text("point");
        let times = params.ranged(&TIMES, Params::u32)?;
        let trigger = match point {
            None => {
                if let Some((_, span)) = times {
                    return Err(params
                        .error(span, "`times` applies only to crashes at a `point`")
                        .with_hint("a crash without `point` happens once; add more [[fault]] tables for more"));
                }
                CrashTrigger::AtRandom
            }
            Some((name, span)) => {
                let Some(point) = Checkpoint::ALL.iter().copied().find(|p| p.name() == name) else {
                    let names: Vec<&str> = Checkpoint::ALL.iter().map(|p| p.name()).collect();
                    return Err(params
                        .error(span, format!("unknown crash point `{name}`"))
                        .with_hint(format!("points are: {}", names.join(", "))));
                };
                let reached_on = if point.on_carrier() {
                    HostSel::Host(crate::run::hosts::CARRIER.to_string())
                } else {
                    HostSel::Service
                };
                if target != reached_on {
                    return Err(params.error(
                        span,
                        format!("point `{name}` is not reached on the {target}"),
                    ));
                }
                let times = times.map_or(1, |(times, _)| times);
                CrashTrigger::AtPoint { point, times }
            }
        };
        Ok(Crash {
            target,
            trigger,
            restart_after_ms,
        })
    }

    fn describe(&self) -> String {
        match self.trigger {
            CrashTrigger::AtRandom => format!(
                "{} at a random instant, restart after {} ms",
                self.target, self.restart_after_ms
            ),
            CrashTrigger::AtPoint { point, times } => format!(
                "{} at `{}` (up to {times}x), restart after {} ms",
                self.target,
                point.name(),
                self.restart_after_ms
            ),
        }
    }

    fn params_toml(&self) -> Vec<(&'static str, String)> {
        let mut params = vec![
            ("target", quote(&self.target.to_string())),
            ("restart_after_ms", self.restart_after_ms.to_string()),
        ];
        if let CrashTrigger::AtPoint { point, times } = self.trigger {
            params.push(("point", quote(point.name())));
            params.push(("times", times.to_string()));
        }
        params
    }

    fn effect(&self) -> Effect<'_> {
        Effect::Driver(self)
    }
}

/// A crash at a point is armed in the host observer (`Shared`'s point faults), the runner
/// applying it; a crash at random fires at the instant drawn at set-up.
impl DriverEffect for Crash {
    fn schedule(&self, spec: &FaultSpec, seed: Seed) -> Option<u64> {
        if self.trigger != CrashTrigger::AtRandom {
            return None;
        }
        // Each random crash draws from its own stream: another fault never shifts its
        // instant.
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
        (fires < spec.probability).then_some(spec.window.start_ms + offset)
    }

    fn start(&self, driver: &mut NetDriver, _: &mut turmoil::Sim<'_>, spec: &FaultSpec, _: u64) -> Started {
        if self.trigger == CrashTrigger::AtRandom && !driver.is_scheduled(spec) {
            return Started::Skipped;
        }
        Started::Armed
    }

    fn tick(&self, driver: &mut NetDriver, sim: &mut turmoil::Sim<'_>, spec: &FaultSpec, now_ms: u64) {
        if driver.take_due(spec, now_ms) {
            let host = self.target.to_string();
            driver.fired(spec, format!("crash {host}"));
            driver.crash(sim, &host, now_ms, Some(self.restart_after_ms));
        }
    }
}
