//! `hold`: messages between two sets of hosts are held, then released all at once when the
//! window ends (a stalled switch, a GC pause in a proxy).

use super::params::Params;
use super::{Family, KindInfo, ParamInfo, sides, Effect, Fault, Window};
use super::driver::{DriverEffect, LinkCut, NetDriver, Started};
use super::{FaultSpec, between_toml};
use crate::run::hosts::HostSel;
use crate::scenario::ScenarioError;

/// Holds messages for the window, then delivers them together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    /// One side.
    pub a: HostSel,
    /// The other side.
    pub b: HostSel,
}

impl Fault for Hold {
    const INFO: KindInfo = KindInfo {
        name: "hold",
        family: Family::Network,
        summary: "hold messages between two sets of hosts, release them together at the end",
        params: &[ParamInfo {
            name: "between",
            required: true,
            doc: "the two sides",
            limit: None,
        }],
    };

    const EXAMPLE: &'static str = r#"
        between = ["clients", "service"]
        duration_ms = 200
    "#;

    fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        let (a, b) = params.between()?;
        Ok(Hold { a, b })
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

impl DriverEffect for Hold {
    fn start(&self, driver: &mut NetDriver, sim: &mut turmoil::Sim<'_>, _: &FaultSpec, _: u64) -> Started {
        driver.cut(sim, LinkCut::Hold, &self.a, &self.b);
        Started::Fired
    }

    fn end(&self, driver: &mut NetDriver, sim: &mut turmoil::Sim<'_>, _: &FaultSpec) {
        driver.mend(sim, LinkCut::Hold, &self.a, &self.b);
    }
}
