//! `latency`: slower, jittery links between two sets of hosts.

use super::params::Params;
use super::{Family, KindInfo, ParamInfo, sides};
use crate::hosts::HostSel;
use crate::scenario::ScenarioError;

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

/// Slowest message latency a scenario may set: 60 s.
const LATENCY_MS_MAX: u64 = 60_000;

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
            },
            ParamInfo {
                name: "min_ms",
                required: true,
                doc: "fastest message, ms",
            },
            ParamInfo {
                name: "max_ms",
                required: true,
                doc: "slowest message, ms (>= min_ms, <= 60000)",
            },
        ],
    };

    pub(crate) fn parse(params: &mut Params<'_>) -> Result<Self, ScenarioError> {
        let (a, b) = params.between()?;
        let (min_ms, _) = params.required("min_ms", Params::u64)?;
        let (max_ms, span) = params.required("max_ms", Params::u64)?;
        if max_ms < min_ms {
            return Err(params.error(
                span,
                format!("max_ms ({max_ms}) is below min_ms ({min_ms})"),
            ));
        }
        if max_ms > LATENCY_MS_MAX {
            return Err(params.error(span, format!("max_ms ({max_ms}) exceeds {LATENCY_MS_MAX}")));
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
