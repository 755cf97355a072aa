//! `slow_response`: the request is handled, its response held back (past the client's
//! timeout, typically), so the client times out on work that was done.

use super::http_rules::{HttpEffect, HttpRule};
use super::params::Params;
use super::{Family, KindInfo, PATH_PREFIX, PROBABILITY, ParamInfo, Fault, Window};
use crate::scenario::ScenarioError;
use crate::scenario::limits::Limit;

/// `delay_ms`
const DELAY_MS: ParamInfo = ParamInfo::numeric(
    "delay_ms",
    true,
    "how long to hold the response, ms",
    Limit::duration_ms(1),
);

/// Delays eligible responses.
#[derive(Clone, Debug, PartialEq)]
pub struct SlowResponse {
    /// Where and what.
    pub rule: HttpRule,
}

impl Fault for SlowResponse {
    const INFO: KindInfo = KindInfo {
        name: "slow_response",
        family: Family::Http,
        summary: "handle the request, then hold the response back",
        params: &[HttpRule::TARGET, DELAY_MS, PROBABILITY, PATH_PREFIX],
    };

    const EXAMPLE: &'static str = r#"
        target = "carrier"
        delay_ms = 200
        probability = 0.5
    "#;

    fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        let (target, path_prefix) = HttpRule::parse_common(params)?;
        let (delay_ms, _) = params.required_ranged(&DELAY_MS, Params::u64)?;
        Ok(SlowResponse {
            rule: HttpRule {
                target,
                path_prefix,
                effect: HttpEffect::Slow { delay_ms },
            },
        })
    }

    rule_fault!(Http);
}
