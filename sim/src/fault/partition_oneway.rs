//! `partition_oneway`: messages from one side to the other are dropped, the reverse
//! direction still flows (requests arrive, responses are lost; or the opposite).

use super::params::Params;
use super::{Family, KindInfo, ParamInfo, Effect, Fault, Window};
use super::driver::{DriverEffect, LinkCut, NetDriver, Started};
use super::FaultSpec;
use crate::scenario::write_quote as quote;
use crate::run::hosts::HostSel;
use crate::scenario::ScenarioError;

/// Drops messages in one direction only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionOneway {
    /// Sender side whose messages are dropped.
    pub from: HostSel,
    /// Receiver side.
    pub to: HostSel,
}

impl Fault for PartitionOneway {
    const INFO: KindInfo = KindInfo {
        name: "partition_oneway",
        family: Family::Network,
        summary: "drop messages from one set of hosts to another; the other direction flows",
        params: &[
            ParamInfo {
                name: "from",
                required: true,
                doc: "the side whose messages are dropped",
                limit: None,
            },
            ParamInfo {
                name: "to",
                required: true,
                doc: "the side that stops hearing from it",
                limit: None,
            },
        ],
    };

    const EXAMPLE: &'static str = r#"
        from = "service"
        to = "clients"
        duration_ms = 300
    "#;

    fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        let Some((from, _)) = params.host("from")? else {
            return Err(params.missing("from"));
        };
        let Some((to, span)) = params.host("to")? else {
            return Err(params.missing("to"));
        };
        if from == to {
            return Err(params.error(span, "`from` and `to` must differ"));
        }
        Ok(PartitionOneway { from, to })
    }

    fn describe(&self) -> String {
        format!("{} -> {}", self.from, self.to)
    }

    fn params_toml(&self) -> Vec<(&'static str, String)> {
        vec![
            ("from", quote(&self.from.to_string())),
            ("to", quote(&self.to.to_string())),
        ]
    }

    fn effect(&self) -> Effect<'_> {
        Effect::Driver(self)
    }
}

impl DriverEffect for PartitionOneway {
    fn start(&self, driver: &mut NetDriver, sim: &mut turmoil::Sim<'_>, _: &FaultSpec, _: u64) -> Started {
        driver.cut(sim, LinkCut::Oneway, &self.from, &self.to);
        Started::Fired
    }

    fn end(&self, driver: &mut NetDriver, sim: &mut turmoil::Sim<'_>, _: &FaultSpec) {
        driver.mend(sim, LinkCut::Oneway, &self.from, &self.to);
    }
}
