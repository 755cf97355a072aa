//! `crash`: kill a server process and restart it after a while. The store keeps what was
//! durable and loses the rest. The crash lands at a random instant of the window, or exactly
//! at a named checkpoint between two steps of an operation (e.g. between "carrier label
//! bought" and "shipment stored").

use shipsim_system::observe::Checkpoint;

use super::params::Params;
use super::{Family, KindInfo, PROBABILITY, ParamInfo, Window};
use crate::hosts::HostSel;
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

impl Crash {
    pub(crate) const INFO: KindInfo = KindInfo {
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

    pub(crate) fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
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
                    HostSel::Host(crate::hosts::CARRIER.to_string())
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

    /// What it does.
    #[must_use]
    pub fn describe(&self) -> String {
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
}
