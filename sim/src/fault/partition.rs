//! `partition`: no message passes between two sets of hosts until the window ends.

use super::params::Params;
use super::{Family, KindInfo, ParamInfo, sides, Effect, Fault, Window};
use super::driver::{DriverEffect, LinkCut, NetDriver, Started};
use super::{FaultSpec, between_toml};
use crate::run::hosts::HostSel;
use crate::scenario::ScenarioError;

/// Drops every message between the sides for the window, then heals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// One side.
    pub a: HostSel,
    /// The other side.
    pub b: HostSel,
}

impl Fault for Partition {
    const INFO: KindInfo = KindInfo {
        name: "partition",
        family: Family::Network,
        summary: "drop every message between two sets of hosts, then heal",
        params: &[ParamInfo {
            name: "between",
            required: true,
            doc: "the two sides",
            limit: None,
        }],
    };

    const EXAMPLE: &'static str = r#"
        between = ["clients", "service"]
        duration_ms = 300
    "#;

    fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        let (a, b) = params.between()?;
        Ok(Partition { a, b })
    }

    fn describe(&self) -> String {
        sides(&self.a, &self.b)
    }

    fn params_toml(&self) -> Vec<(&'static str, String)> {
        vec![("between", between_toml(&self.a, &self.b))]
    }

    fn effect(&self) -> Effect<'_> {
        Effect::Driver(self)
    }
}

impl DriverEffect for Partition {
    fn start(&self, driver: &mut NetDriver, sim: &mut turmoil::Sim<'_>, _: &FaultSpec, _: u64) -> Started {
        driver.cut(sim, LinkCut::Partition, &self.a, &self.b);
        Started::Fired
    }

    fn end(&self, driver: &mut NetDriver, sim: &mut turmoil::Sim<'_>, _: &FaultSpec) {
        driver.mend(sim, LinkCut::Partition, &self.a, &self.b);
    }
}
