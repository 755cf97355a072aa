//! `clock_skew`: a host's clock is offset and drifts, from the window's start.

use super::params::Params;
use super::{Family, KindInfo, ParamInfo};
use crate::hosts::HostSel;
use crate::scenario::ScenarioError;

/// Largest offset a scenario may set: one day.
const OFFSET_MS_MAX: i64 = 86_400_000;
/// Largest drift: 10% (100,000 ppm); real clocks drift by tens of ppm.
const DRIFT_PPM_MAX: i64 = 100_000;

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
            },
            ParamInfo {
                name: "offset_ms",
                required: false,
                doc: "constant offset, ms, |offset| <= 1 day (default 0)",
            },
            ParamInfo {
                name: "drift_ppm",
                required: false,
                doc: "drift in ppm of elapsed time, |drift| <= 100000 (default 0)",
            },
        ],
    };

    pub(crate) fn parse(params: &mut Params<'_>) -> Result<Self, ScenarioError> {
        let Some((target, target_span)) = params.host("target")? else {
            return Err(params.missing("target"));
        };
        let offset = params.i64("offset_ms");
        let drift = params.i64("drift_ppm");
        if let Some((offset_ms, span)) = &offset
            && offset_ms.abs() > OFFSET_MS_MAX
        {
            return Err(params.error(
                span.clone(),
                format!("offset_ms {offset_ms} exceeds one day"),
            ));
        }
        if let Some((drift_ppm, span)) = &drift
            && drift_ppm.abs() > DRIFT_PPM_MAX
        {
            return Err(params.error(
                span.clone(),
                format!("drift_ppm {drift_ppm} exceeds {DRIFT_PPM_MAX}"),
            ));
        }
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
