//! `webhook_reorder`: deliveries held for random times, so later events overtake earlier
//! ones and receivers see them out of order.

use super::params::Params;
use super::webhook::{WebhookEffect, WebhookRule};
use super::{Family, KindInfo, PROBABILITY, ParamInfo, Fault, Window};
use crate::scenario::ScenarioError;
use crate::scenario::limits::Limit;

/// `max_ms`: at most one simulated day, which also keeps the hold's draw (`max_ms + 1`
/// possible holds) from overflowing.
const MAX_MS: ParamInfo =
    ParamInfo::numeric("max_ms", true, "longest hold, ms", Limit::duration_ms(1));

/// Reorders webhook deliveries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookReorder {
    /// Which traffic and what.
    pub rule: WebhookRule,
}

impl Fault for WebhookReorder {
    const INFO: KindInfo = KindInfo {
        name: "webhook_reorder",
        family: Family::Webhook,
        summary: "hold deliveries for random times so later events overtake them",
        params: &[WebhookRule::DIRECTION, MAX_MS, PROBABILITY],
    };

    const EXAMPLE: &'static str = r#"
        direction = "inbound"
        max_ms = 300
    "#;

    fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        let direction = WebhookRule::parse_direction(params)?;
        let (max_delay_ms, _) = params.required_ranged(&MAX_MS, Params::u64)?;
        Ok(WebhookReorder {
            rule: WebhookRule {
                direction,
                effect: WebhookEffect::Reorder { max_delay_ms },
            },
        })
    }

    rule_fault!(Webhook);
}
