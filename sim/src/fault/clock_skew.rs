//! `clock_skew`: a host's clock is offset and drifts, from the window's start.

use super::params::Params;
use super::{Family, KindInfo, ParamInfo, Effect, Fault, Window};
use super::driver::{DriverEffect, NetDriver, Started};
use super::FaultSpec;
use crate::scenario::write_quote as quote;
use crate::run::hosts::HostSel;
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

impl Fault for ClockSkew {
    const INFO: KindInfo = KindInfo {
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

    const EXAMPLE: &'static str = r#"
        target = "service"
        offset_ms = 5000
        drift_ppm = 100
    "#;

    fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
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

    fn describe(&self) -> String {
        format!(
            "{} offset {} ms, drift {} ppm",
            self.target, self.offset_ms, self.drift_ppm
        )
    }

    fn params_toml(&self) -> Vec<(&'static str, String)> {
        vec![
            ("target", quote(&self.target.to_string())),
            ("offset_ms", self.offset_ms.to_string()),
            ("drift_ppm", self.drift_ppm.to_string()),
        ]
    }

    fn effect(&self) -> Effect<'_> {
        Effect::Driver(self)
    }
}

/// Clocks read their skew themselves (`SimClock::new` takes the skews of its host); the
/// start is recorded so the report shows the skew took effect.
impl DriverEffect for ClockSkew {
    fn start(&self, _: &mut NetDriver, _: &mut turmoil::Sim<'_>, _: &FaultSpec, _: u64) -> Started {
        Started::Fired
    }
}
