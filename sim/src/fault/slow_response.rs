//! `slow_response`: the request is handled, its response held back (past the client's
//! timeout, typically), so the client times out on work that was done.

use super::http_rules::{HttpEffect, HttpRule};
use super::params::Params;
use super::{Family, KindInfo, PATH_PREFIX, PROBABILITY, ParamInfo};
use crate::scenario::ScenarioError;

/// Delays eligible responses.
#[derive(Clone, Debug, PartialEq)]
pub struct SlowResponse {
    /// Where and what.
    pub rule: HttpRule,
}

impl SlowResponse {
    pub(crate) const INFO: KindInfo = KindInfo {
        name: "slow_response",
        family: Family::Http,
        summary: "handle the request, then hold the response back",
        params: &[
            HttpRule::TARGET,
            ParamInfo {
                name: "delay_ms",
                required: true,
                doc: "how long to hold the response, ms (>= 1)",
            },
            PROBABILITY,
            PATH_PREFIX,
        ],
    };

    pub(crate) fn parse(params: &mut Params<'_>) -> Result<Self, ScenarioError> {
        let (target, path_prefix) = HttpRule::parse_common(params)?;
        let (delay_ms, span) = params.required("delay_ms", Params::u64)?;
        if delay_ms == 0 {
            return Err(params.error(span, "`delay_ms` must be at least 1"));
        }
        Ok(SlowResponse {
            rule: HttpRule {
                target,
                path_prefix,
                effect: HttpEffect::Slow { delay_ms },
            },
        })
    }

    /// What it does.
    #[must_use]
    pub fn describe(&self) -> String {
        self.rule.describe()
    }
}
