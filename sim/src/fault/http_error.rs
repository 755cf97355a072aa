//! `http_error`: a 5xx burst in front of a server, before or after the request is handled.

use super::http_rules::{HttpEffect, HttpRule};
use super::params::Params;
use super::{Family, KindInfo, PATH_PREFIX, PROBABILITY, ParamInfo, Fault, Window};
use crate::scenario::ScenarioError;
use crate::scenario::limits::Limit;

/// The 5xx statuses.
const STATUS_LIMIT: Limit = Limit::int(500, 599);
/// `status`
const STATUS: ParamInfo =
    ParamInfo::numeric("status", false, "the status (default 503)", STATUS_LIMIT);

/// Answers eligible requests with a 5xx.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpError {
    /// Where and what.
    pub rule: HttpRule,
}

impl Fault for HttpError {
    const INFO: KindInfo = KindInfo {
        name: "http_error",
        family: Family::Http,
        summary: "answer with a 5xx instead of (before) or after handling the request",
        params: &[
            HttpRule::TARGET,
            STATUS,
            ParamInfo {
                name: "when",
                required: false,
                doc: "\"before\": the request is not handled (default); \"after\": it is handled and its response replaced, so the client cannot know it happened",
                limit: None,
            },
            PROBABILITY,
            PATH_PREFIX,
        ],
    };

    const EXAMPLE: &'static str = r#"
        target = "service"
        status = 502
        when = "after"
        probability = 0.5
    "#;

    fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        let (target, path_prefix) = HttpRule::parse_common(params)?;
        let status = match params.u16("status") {
            None => 503,
            Some((status, _)) if STATUS_LIMIT.allows(status.into()) => status,
            Some((status, span)) => {
                return Err(params
                    .error(span, format!("status {status} is not a 5xx"))
                    .with_hint(format!(
                        "`status` takes {STATUS_LIMIT}; for 429 use kind = \"rate_limit\"; 4xx answers are not transient faults"
                    )));
            }
        };
        let after = params.when_after()?;
        Ok(HttpError {
            rule: HttpRule {
                target,
                path_prefix,
                effect: HttpEffect::Status { status, after },
            },
        })
    }

    rule_fault!(Http);
}
