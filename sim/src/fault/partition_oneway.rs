//! `partition_oneway`: messages from one side to the other are dropped, the reverse
//! direction still flows (requests arrive, responses are lost; or the opposite).

use super::params::Params;
use super::{Family, KindInfo, ParamInfo};
use crate::hosts::HostSel;
use crate::scenario::ScenarioError;

/// Drops messages in one direction only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionOneway {
    /// Sender side whose messages are dropped.
    pub from: HostSel,
    /// Receiver side.
    pub to: HostSel,
}

impl PartitionOneway {
    pub(crate) const INFO: KindInfo = KindInfo {
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

    pub(crate) fn parse(params: &mut Params<'_>) -> Result<Self, ScenarioError> {
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

    /// What it does.
    #[must_use]
    pub fn describe(&self) -> String {
        format!("{} -> {}", self.from, self.to)
    }
}
