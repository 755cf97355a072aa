//! `flap`: a host's links go down and up every period (a bad cable, a flapping BGP route).

use super::params::Params;
use super::{Family, KindInfo, ParamInfo, Effect, Fault, Window};
use super::driver::{DriverEffect, LinkCut, NetDriver, Started};
use super::FaultSpec;
use crate::scenario::write_quote as quote;
use crate::run::hosts::HostSel;
use crate::scenario::ScenarioError;
use crate::scenario::limits::Limit;

/// `period_ms`
const PERIOD_MS: ParamInfo = ParamInfo::numeric(
    "period_ms",
    true,
    "time between toggles, ms",
    Limit::duration_ms(1),
);

/// Toggles every link of `target` every `period_ms`, starting down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flap {
    /// Host(s) whose links flap.
    pub target: HostSel,
    /// Time between toggles, ms.
    pub period_ms: u64,
}

impl Fault for Flap {
    const INFO: KindInfo = KindInfo {
        name: "flap",
        family: Family::Network,
        summary: "a host's links go down and up every period",
        params: &[
            ParamInfo {
                name: "target",
                required: true,
                doc: "the host(s) whose links flap",
                limit: None,
            },
            PERIOD_MS,
        ],
    };

    const EXAMPLE: &'static str = r#"
        target = "service"
        period_ms = 100
        duration_ms = 1000
    "#;

    fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        let Some((target, _)) = params.host("target")? else {
            return Err(params.missing("target"));
        };
        let (period_ms, _) = params.required_ranged(&PERIOD_MS, Params::u64)?;
        Ok(Flap { target, period_ms })
    }

    fn describe(&self) -> String {
        format!("{} every {} ms", self.target, self.period_ms)
    }

    fn params_toml(&self) -> Vec<(&'static str, String)> {
        vec![
            ("target", quote(&self.target.to_string())),
            ("period_ms", self.period_ms.to_string()),
        ]
    }

    fn effect(&self) -> Effect<'_> {
        Effect::Driver(self)
    }
}

impl Flap {
    /// The hosts `target` talks to, whose links with it flap.
    fn others(&self) -> HostSel {
        // A flap cuts the target off from the hosts it talks to: clients talk to the
        // service, the service to clients and carrier, the carrier to the service.
        match self.target {
            HostSel::Service => HostSel::Clients,
            HostSel::Host(_) | HostSel::Downstreams(_) | HostSel::Clients | HostSel::Client(_) => {
                HostSel::Service
            }
        }
    }
}

/// Starts with the links up; each tick at or after the next toggle flips them, and the
/// first flip down is recorded as the fault firing.
impl DriverEffect for Flap {
    fn start(&self, driver: &mut NetDriver, _: &mut turmoil::Sim<'_>, spec: &FaultSpec, now_ms: u64) -> Started {
        driver.toggles.insert(spec.index, (false, now_ms));
        Started::Armed
    }

    fn tick(&self, driver: &mut NetDriver, sim: &mut turmoil::Sim<'_>, spec: &FaultSpec, now_ms: u64) {
        let (down, next_ms) = driver.toggles[&spec.index];
        if now_ms < next_ms {
            return;
        }
        if down {
            driver.mend(sim, LinkCut::Partition, &self.target, &self.others());
        } else {
            driver.cut(sim, LinkCut::Partition, &self.target, &self.others());
            driver.fired(spec, format!("{} links down", self.target));
        }
        let next_ms = now_ms
            .checked_add(self.period_ms)
            .expect("period_ms is at most DURATION_MS_MAX (checked at parse time)");
        driver.toggles.insert(spec.index, (!down, next_ms));
    }

    fn end(&self, driver: &mut NetDriver, sim: &mut turmoil::Sim<'_>, spec: &FaultSpec) {
        if let Some((true, _)) = driver.toggles.remove(&spec.index) {
            driver.mend(sim, LinkCut::Partition, &self.target, &self.others());
        }
    }
}
