//! `webhook_duplicate`: a webhook delivered several times at once.

use super::params::Params;
use super::webhook::{WebhookEffect, WebhookRule};
use super::{Family, KindInfo, PROBABILITY, ParamInfo, Fault, Window};
use crate::scenario::ScenarioError;
use crate::scenario::limits::Limit;

/// `copies`
const COPIES: ParamInfo = ParamInfo::numeric(
    "copies",
    false,
    "deliveries per event (default 2)",
    Limit::int(2, 10),
);

/// Duplicates webhook deliveries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookDuplicate {
    /// Which traffic and what.
    pub rule: WebhookRule,
}

impl Fault for WebhookDuplicate {
    const INFO: KindInfo = KindInfo {
        name: "webhook_duplicate",
        family: Family::Webhook,
        summary: "deliver a webhook several times at once",
        params: &[WebhookRule::DIRECTION, COPIES, PROBABILITY],
    };

    const EXAMPLE: &'static str = r#"
        direction = "outbound"
        copies = 2
        probability = 0.5
    "#;

    fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        let direction = WebhookRule::parse_direction(params)?;
        let copies = params
            .ranged(&COPIES, Params::u32)?
            .map_or(2, |(copies, _)| copies);
        Ok(WebhookDuplicate {
            rule: WebhookRule {
                direction,
                effect: WebhookEffect::Duplicate { copies },
            },
        })
    }

    rule_fault!(Webhook);
}
