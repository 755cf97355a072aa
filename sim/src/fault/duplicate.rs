//! `duplicate`: the same request is delivered to the server several times (a proxy or load
//! balancer retrying behind the client's back).

use super::http_rules::{HttpEffect, HttpRule};
use super::params::Params;
use super::{Family, KindInfo, PATH_PREFIX, PROBABILITY, ParamInfo};
use crate::scenario::ScenarioError;

/// Most copies a duplicate fault may deliver.
const COPIES_MAX: u32 = 10;

/// Delivers eligible requests more than once.
#[derive(Clone, Debug, PartialEq)]
pub struct Duplicate {
    /// Where and what.
    pub rule: HttpRule,
}

impl Duplicate {
    pub(crate) const INFO: KindInfo = KindInfo {
        name: "duplicate",
        family: Family::Http,
        summary: "deliver the request to the server several times at once; the client sees the first answer",
        params: &[
            HttpRule::TARGET,
            ParamInfo {
                name: "copies",
                required: false,
                doc: "deliveries per request, 2..=10 (default 2)",
            },
            PROBABILITY,
            PATH_PREFIX,
        ],
    };

    pub(crate) fn parse(params: &mut Params<'_>) -> Result<Self, ScenarioError> {
        let (target, path_prefix) = HttpRule::parse_common(params)?;
        let copies = match params.u32("copies") {
            None => 2,
            Some((copies, _)) if (2..=COPIES_MAX).contains(&copies) => copies,
            Some((copies, span)) => {
                return Err(
                    params.error(span, format!("copies {copies} is outside 2..={COPIES_MAX}"))
                );
            }
        };
        Ok(Duplicate {
            rule: HttpRule {
                target,
                path_prefix,
                effect: HttpEffect::Duplicate { copies },
            },
        })
    }

    /// What it does.
    #[must_use]
    pub fn describe(&self) -> String {
        self.rule.describe()
    }
}
