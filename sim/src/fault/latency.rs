//! `latency`: slower, jittery links between two sets of hosts.

use super::params::Params;
use super::{Family, KindInfo, ParamInfo, sides};
use crate::hosts::HostSel;
use crate::scenario::ScenarioError;
use crate::scenario::limits::{LATENCY_MS_MAX, Limit};

/// `min_ms`
const MIN_MS: ParamInfo = ParamInfo::numeric(
    "min_ms",
    true,
    "fastest message, ms",
    Limit::int(0, LATENCY_MS_MAX as i128),
);
/// `max_ms`
const MAX_MS: ParamInfo = ParamInfo::numeric(
    "max_ms",
    true,
    "slowest message, ms, at least `min_ms`",
    Limit::int(0, LATENCY_MS_MAX as i128),
);

/// Link latency during the window: each message takes between `min_ms` and `max_ms`
/// (turmoil's exponential curve inside that range).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Latency {
    /// One side.
    pub a: HostSel,
    /// The other side.
    pub b: HostSel,
    /// Fastest message, ms.
    pub min_ms: u64,
    /// Slowest message, ms.
    pub max_ms: u64,
}

impl Latency {
    pub(crate) const INFO: KindInfo = KindInfo {
        name: "latency",
        family: Family::Network,
        summary: "slow, jittery links between two sets of hosts",
        params: &[
            ParamInfo {
                name: "between",
                required: true,
                doc: "the two sides, e.g. [\"clients\", \"service\"]",
                limit: None,
            },
            MIN_MS,
            MAX_MS,
        ],
    };

    pub(crate) fn parse(params: &mut Params<'_>) -> Result<Self, ScenarioError> {
        let (a, b) = params.between()?;
        let (min_ms, _) = params.required_ranged(&MIN_MS, Params::u64)?;
        let (max_ms, span) = params.required_ranged(&MAX_MS, Params::u64)?;
        if max_ms < min_ms {
            return Err(params.error(
                span,
                format!("max_ms ({max_ms}) is below min_ms ({min_ms})"),
            ));
        }
        Ok(Latency {
            a,
            b,
            min_ms,
            max_ms,
        })
    }

    /// What it does.
    #[must_use]
    pub fn describe(&self) -> String {
        format!(
            "{} at {}..{} ms",
            sides(&self.a, &self.b),
            self.min_ms,
            self.max_ms
        )
    }
}
