//! `drop_response`: the request is handled and committed, then the connection closes with no
//! response at all: the classic "did my payment go through?" ambiguity.

use super::http_rules::{HttpEffect, HttpRule};
use super::params::Params;
use super::{Family, KindInfo, PATH_PREFIX, PROBABILITY, Fault, Window};
use crate::scenario::ScenarioError;

/// Loses eligible responses after the work is done.
#[derive(Clone, Debug, PartialEq)]
pub struct DropResponse {
    /// Where and what.
    pub rule: HttpRule,
}

impl Fault for DropResponse {
    const INFO: KindInfo = KindInfo {
        name: "drop_response",
        family: Family::Http,
        summary: "handle the request, then close the connection without answering",
        params: &[HttpRule::TARGET, PROBABILITY, PATH_PREFIX],
    };

    const EXAMPLE: &'static str = r#"
        target = "service"
        probability = 0.3
        path_prefix = "/v1"
    "#;

    fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        let (target, path_prefix) = HttpRule::parse_common(params)?;
        Ok(DropResponse {
            rule: HttpRule {
                target,
                path_prefix,
                effect: HttpEffect::Drop,
            },
        })
    }

    rule_fault!(Http);
}
