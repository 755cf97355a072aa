//! `hold`: messages between two sets of hosts are held, then released all at once when the
//! window ends (a stalled switch, a GC pause in a proxy).

use super::params::Params;
use super::{Family, KindInfo, ParamInfo, sides};
use crate::hosts::HostSel;
use crate::scenario::ScenarioError;

/// Holds messages for the window, then delivers them together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    /// One side.
    pub a: HostSel,
    /// The other side.
    pub b: HostSel,
}

impl Hold {
    pub(crate) const INFO: KindInfo = KindInfo {
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

    pub(crate) fn parse(params: &mut Params<'_>) -> Result<Self, ScenarioError> {
        let (a, b) = params.between()?;
        Ok(Hold { a, b })
    }

    /// What it does.
    #[must_use]
    pub fn describe(&self) -> String {
        sides(&self.a, &self.b)
    }
}
