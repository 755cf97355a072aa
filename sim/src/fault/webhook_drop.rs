//! `webhook_drop`: a delivery lost on the way, or its answer lost after the receiver
//! processed it.

use super::params::Params;
use super::webhook::{WebhookEffect, WebhookRule};
use super::{Family, KindInfo, PROBABILITY, ParamInfo, Fault, Window};
use crate::scenario::ScenarioError;

/// Drops webhook deliveries or their answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookDrop {
    /// Which traffic and what.
    pub rule: WebhookRule,
}

impl Fault for WebhookDrop {
    const INFO: KindInfo = KindInfo {
        name: "webhook_drop",
        family: Family::Webhook,
        summary: "lose a delivery before it arrives, or its answer after it was processed",
        params: &[
            WebhookRule::DIRECTION,
            ParamInfo {
                name: "when",
                required: false,
                doc: "\"before\" (never arrives, default) or \"after\" (processed, answer lost)",
                limit: None,
            },
            PROBABILITY,
        ],
    };

    const EXAMPLE: &'static str = r#"
        direction = "outbound"
        when = "after"
        probability = 0.5
    "#;

    fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        let direction = WebhookRule::parse_direction(params)?;
        let after = params.when_after()?;
        Ok(WebhookDrop {
            rule: WebhookRule {
                direction,
                effect: WebhookEffect::Drop { after },
            },
        })
    }

    rule_fault!(Webhook);
}
