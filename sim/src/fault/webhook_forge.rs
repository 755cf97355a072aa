//! `webhook_forge`: next to a real delivery, a forgery: the same body with a new event id,
//! under the original (now invalid) signature. A receiver must refuse it.

use super::params::Params;
use super::webhook::{WebhookEffect, WebhookRule};
use super::{Family, KindInfo, PROBABILITY, Fault, Window};
use crate::scenario::ScenarioError;

/// Sends forged webhook deliveries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookForge {
    /// Which traffic and what.
    pub rule: WebhookRule,
}

impl Fault for WebhookForge {
    const INFO: KindInfo = KindInfo {
        name: "webhook_forge",
        family: Family::Webhook,
        summary: "also send a forgery (new event id, signature of the original)",
        params: &[WebhookRule::DIRECTION, PROBABILITY],
    };

    const EXAMPLE: &'static str = r#"
        direction = "inbound"
        probability = 0.5
    "#;

    fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        let direction = WebhookRule::parse_direction(params)?;
        Ok(WebhookForge {
            rule: WebhookRule {
                direction,
                effect: WebhookEffect::Forge,
            },
        })
    }

    rule_fault!(Webhook);
}
