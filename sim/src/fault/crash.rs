//! `crash`: kill a server process and restart it after a while. The store keeps what was
//! durable and loses the rest. The crash lands at a random instant of the window, or exactly
//! at a named checkpoint between two steps of an operation (e.g. between "carrier label
//! bought" and "shipment stored").

use shipsim_system::observe::Checkpoint;

use super::params::Params;
use super::{Family, KindInfo, PROBABILITY, ParamInfo, Window};
use crate::hosts::HostSel;
use crate::scenario::ScenarioError;

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

/// Most crashes one point-triggered fault may cause.
const TIMES_MAX: u32 = 100;

impl Crash {
    pub(crate) const INFO: KindInfo = KindInfo {
        name: "crash",
        family: Family::Process,
        summary: "kill a server (losing what it had not made durable) and restart it",
        params: &[
            ParamInfo {
                name: "target",
                required: true,
                doc: "\"service\" or \"carrier\"",
            },
            ParamInfo {
                name: "point",
                required: false,
                doc: "crash exactly at: shipment_claimed, label_bought, response_stored (service) or label_sold (carrier); without it, at a random instant of the window",
            },
            ParamInfo {
                name: "times",
                required: false,
                doc: "with `point`: most crashes, 1..=100 (default 1)",
            },
            ParamInfo {
                name: "restart_after_ms",
                required: false,
                doc: "downtime before the restart, ms (default 500)",
            },
            PROBABILITY,
        ],
    };

    pub(crate) fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        let target = params.server("target")?;
        let restart_after_ms = params.u64("restart_after_ms").map_or(500, |(v, _)| v);
        let point = params.text("point");
        let times = params.u32("times");
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
                let on_carrier = target == HostSel::Host(crate::hosts::CARRIER.to_string());
                if point.on_carrier() != on_carrier {
                    return Err(params.error(
                        span,
                        format!("point `{name}` is not reached on the {target}"),
                    ));
                }
                let times = match times {
                    None => 1,
                    Some((times, _)) if (1..=TIMES_MAX).contains(&times) => times,
                    Some((times, span)) => {
                        return Err(
                            params.error(span, format!("times {times} is outside 1..={TIMES_MAX}"))
                        );
                    }
                };
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
