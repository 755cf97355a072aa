//! `partition`: no message passes between two sets of hosts until the window ends.

use super::params::Params;
use super::{Family, KindInfo, ParamInfo, sides};
use crate::hosts::HostSel;
use crate::scenario::ScenarioError;

/// Drops every message between the sides for the window, then heals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// One side.
    pub a: HostSel,
    /// The other side.
    pub b: HostSel,
}

impl Partition {
    pub(crate) const INFO: KindInfo = KindInfo {
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

    pub(crate) fn parse(params: &mut Params<'_>) -> Result<Self, ScenarioError> {
        let (a, b) = params.between()?;
        Ok(Partition { a, b })
    }

    /// What it does.
    #[must_use]
    pub fn describe(&self) -> String {
        sides(&self.a, &self.b)
    }
}
