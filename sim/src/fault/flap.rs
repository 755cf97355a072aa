//! `flap`: a host's links go down and up every period (a bad cable, a flapping BGP route).

use super::params::Params;
use super::{Family, KindInfo, ParamInfo};
use crate::hosts::HostSel;
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

impl Flap {
    pub(crate) const INFO: KindInfo = KindInfo {
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

    pub(crate) fn parse(params: &mut Params<'_>) -> Result<Self, ScenarioError> {
        let Some((target, _)) = params.host("target")? else {
            return Err(params.missing("target"));
        };
        let (period_ms, _) = params.required_ranged(&PERIOD_MS, Params::u64)?;
        Ok(Flap { target, period_ms })
    }

    /// What it does.
    #[must_use]
    pub fn describe(&self) -> String {
        format!("{} every {} ms", self.target, self.period_ms)
    }
}
