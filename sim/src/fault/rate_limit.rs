//! `rate_limit`: 429 with `Retry-After`, as seconds or as an HTTP date.

use super::http_rules::{HttpEffect, HttpRule};
use super::params::Params;
use super::{Family, KindInfo, PATH_PREFIX, PROBABILITY, ParamInfo, Fault, Window};
use crate::scenario::ScenarioError;
use crate::scenario::limits::Limit;

/// Sheds eligible requests with 429.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimit {
    /// Where and what.
    pub rule: HttpRule,
}

/// `retry_after_s`: at most five simulated minutes.
const RETRY_AFTER_S: ParamInfo = ParamInfo::numeric(
    "retry_after_s",
    false,
    "seconds to ask the client to wait (default 1)",
    Limit::int(0, 300),
);

impl Fault for RateLimit {
    const INFO: KindInfo = KindInfo {
        name: "rate_limit",
        family: Family::Http,
        summary: "answer 429 with Retry-After without handling the request",
        params: &[
            HttpRule::TARGET,
            RETRY_AFTER_S,
            ParamInfo {
                name: "retry_after_form",
                required: false,
                doc: "\"seconds\" (default) or \"date\": an HTTP date by the server's clock",
                limit: None,
            },
            PROBABILITY,
            PATH_PREFIX,
        ],
    };

    const EXAMPLE: &'static str = r#"
        target = "service"
        retry_after_s = 1
        probability = 0.5
    "#;

    fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        let (target, path_prefix) = HttpRule::parse_common(params)?;
        let retry_after_s = params
            .ranged(&RETRY_AFTER_S, Params::u64)?
            .map_or(1, |(s, _)| s);
        let as_date = match params.text("retry_after_form") {
            None => false,
            Some((form, span)) => match form.as_str() {
                "seconds" => false,
                "date" => true,
                other => {
                    return Err(params.error(
                        span,
                        format!("`retry_after_form` is \"seconds\" or \"date\", not \"{other}\""),
                    ));
                }
            },
        };
        Ok(RateLimit {
            rule: HttpRule {
                target,
                path_prefix,
                effect: HttpEffect::TooManyRequests {
                    retry_after_s,
                    as_date,
                },
            },
        })
    }

    rule_fault!(Http);
}
