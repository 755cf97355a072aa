//! `reset_mid_response`: the request is handled, the response's head is sent, and the
//! connection breaks before the body ends.

use super::http_rules::{HttpEffect, HttpRule};
use super::params::Params;
use super::{Family, KindInfo, PATH_PREFIX, PROBABILITY, Fault, Window};
use crate::scenario::ScenarioError;

/// Cuts eligible responses off mid-body.
#[derive(Clone, Debug, PartialEq)]
pub struct ResetMidResponse {
    /// Where and what.
    pub rule: HttpRule,
}

impl Fault for ResetMidResponse {
    const INFO: KindInfo = KindInfo {
        name: "reset_mid_response",
        family: Family::Http,
        summary: "handle the request, send the status line, reset the connection mid-body",
        params: &[HttpRule::TARGET, PROBABILITY, PATH_PREFIX],
    };

    const EXAMPLE: &'static str = r#"
        target = "service"
        probability = 0.3
    "#;

    fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        let (target, path_prefix) = HttpRule::parse_common(params)?;
        Ok(ResetMidResponse {
            rule: HttpRule {
                target,
                path_prefix,
                effect: HttpEffect::Reset,
            },
        })
    }

    rule_fault!(Http);
}
