//! `reconnect_storm`: a network blip cuts every client off from the service; when it ends,
//! every client drops its connections and reconnects at the same instant.

use super::params::Params;
use super::{Family, KindInfo, ParamInfo, Window, Effect, Fault};
use super::driver::{DriverEffect, LinkCut, NetDriver, Started};
use super::FaultSpec;
use crate::scenario::write_quote as quote;
use crate::run::hosts::HostSel;
use crate::scenario::ScenarioError;

/// Cuts `target` off from the service for the window, then makes it reconnect at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconnectStorm {
    /// The clients that reconnect together.
    pub target: HostSel,
}

impl Fault for ReconnectStorm {
    const INFO: KindInfo = KindInfo {
        name: "reconnect_storm",
        family: Family::Network,
        summary: "cut clients off from the service, then have all of them reconnect at once",
        params: &[ParamInfo {
            name: "target",
            required: false,
            doc: "the clients that reconnect together (default \"clients\")",
            limit: None,
        }],
    };

    const EXAMPLE: &'static str = r#"
        target = "clients"
        duration_ms = 200
    "#;

    fn parse(params: &mut Params<'_>, window: &Window) -> Result<Self, ScenarioError> {
        let target = match params.host("target")? {
            None => HostSel::Clients,
            Some((selector, span)) => {
                if selector.is_server() {
                    return Err(params.error(span, "`target` of `reconnect_storm` must be clients"));
                }
                selector
            }
        };
        if window.end_ms.is_none() {
            return Err(params
                .missing("duration_ms")
                .with_hint("a storm needs the blip's end: give `duration_ms` or `end_ms`"));
        }
        Ok(ReconnectStorm { target })
    }

    fn describe(&self) -> String {
        format!("{} <-> service, then all reconnect", self.target)
    }

    fn params_toml(&self) -> Vec<(&'static str, String)> {
        vec![("target", quote(&self.target.to_string()))]
    }

    fn effect(&self) -> Effect<'_> {
        Effect::Driver(self)
    }
}

impl DriverEffect for ReconnectStorm {
    fn start(&self, driver: &mut NetDriver, sim: &mut turmoil::Sim<'_>, _: &FaultSpec, _: u64) -> Started {
        driver.cut(sim, LinkCut::Partition, &self.target, &HostSel::Service);
        Started::Fired
    }

    fn end(&self, driver: &mut NetDriver, sim: &mut turmoil::Sim<'_>, _: &FaultSpec) {
        driver.mend(sim, LinkCut::Partition, &self.target, &HostSel::Service);
        // Every client of the storm throws its connections away at this instant, so they
        // all reconnect together.
        driver.drop_idle_connections(&self.target);
    }
}
