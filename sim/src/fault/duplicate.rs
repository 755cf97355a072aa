//! `duplicate`: the same request is delivered to the server several times (a proxy or load
//! balancer retrying behind the client's back).

use super::http_rules::{HttpEffect, HttpRule};
use super::params::Params;
use super::{Family, KindInfo, PATH_PREFIX, PROBABILITY, ParamInfo, Fault, Window};
use crate::scenario::ScenarioError;
use crate::scenario::limits::Limit;

/// `copies`: at most 10 deliveries of one request.
const COPIES: ParamInfo = ParamInfo::numeric(
    "copies",
    false,
    "deliveries per request (default 2)",
    Limit::int(2, 10),
);

/// Delivers eligible requests more than once.
#[derive(Clone, Debug, PartialEq)]
pub struct Duplicate {
    /// Where and what.
    pub rule: HttpRule,
}

impl Fault for Duplicate {
    const INFO: KindInfo = KindInfo {
        name: "duplicate",
        family: Family::Http,
        summary: "deliver the request to the server several times at once; the client sees the first answer",
        params: &[HttpRule::TARGET, COPIES, PROBABILITY, PATH_PREFIX],
    };

    const EXAMPLE: &'static str = r#"
        target = "service"
        copies = 2
        probability = 0.5
    "#;

    fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        let (target, path_prefix) = HttpRule::parse_common(params)?;
        let copies = params
            .ranged(&COPIES, Params::u32)?
            .map_or(2, |(copies, _)| copies);
        Ok(Duplicate {
            rule: HttpRule {
                target,
                path_prefix,
                effect: HttpEffect::Duplicate { copies },
            },
        })
    }

    rule_fault!(Http);
}
