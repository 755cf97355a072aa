//! `clock_skew`: a host's clock is offset and drifts, from the window's start.

use super::params::Params;
use super::{Family, KindInfo, ParamInfo};
use crate::hosts::HostSel;
use crate::scenario::ScenarioError;
use crate::scenario::limits::{DURATION_MS_MAX, Limit};

/// `offset_ms`: at most one day either way.
const OFFSET_MS: ParamInfo = ParamInfo::numeric(
    "offset_ms",
    false,
    "constant offset, ms, negative: behind (default 0)",
    Limit::int(-(DURATION_MS_MAX as i128), DURATION_MS_MAX as i128),
);
/// `drift_ppm`: at most 10% (100,000 ppm) either way; real clocks drift by tens of ppm.
const DRIFT_PPM: ParamInfo = ParamInfo::numeric(
    "drift_ppm",
    false,
    "drift in ppm of elapsed time, negative: slow (default 0)",
    Limit::int(-100_000, 100_000),
);

/// Skews the clocks of `target`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockSkew {
    /// Host(s) whose clock is wrong.
    pub target: HostSel,
    /// Constant offset, ms (negative: behind).
    pub offset_ms: i64,
    /// Drift, parts per million of elapsed time (negative: slow).
    pub drift_ppm: i64,
}

impl ClockSkew {
    pub(crate) const INFO: KindInfo = KindInfo {
        name: "clock_skew",
        family: Family::Time,
        summary: "offset and drift a host's clock (timestamps, Retry-After dates, rate windows)",
        params: &[
            ParamInfo {
                name: "target",
                required: true,
                doc: "the host(s) whose clock is wrong",
                limit: None,
            },
            OFFSET_MS,
            DRIFT_PPM,
        ],
    };

    pub(crate) fn parse(params: &mut Params<'_>) -> Result<Self, ScenarioError> {
        let Some((target, target_span)) = params.host("target")? else {
            return Err(params.missing("target"));
        };
        let offset = params.ranged(&OFFSET_MS, Params::i64)?;
        let drift = params.ranged(&DRIFT_PPM, Params::i64)?;
        let offset_ms = offset.map_or(0, |(v, _)| v);
        let drift_ppm = drift.map_or(0, |(v, _)| v);
        if offset_ms == 0 && drift_ppm == 0 {
            return Err(params
                .error(
                    target_span,
                    "a clock skew with no offset and no drift does nothing",
                )
                .with_hint("give `offset_ms`, `drift_ppm`, or both"));
        }
        Ok(ClockSkew {
            target,
            offset_ms,
            drift_ppm,
        })
    }

    /// What it does.
    #[must_use]
    pub fn describe(&self) -> String {
        format!(
            "{} offset {} ms, drift {} ppm",
            self.target, self.offset_ms, self.drift_ppm
        )
    }
}
