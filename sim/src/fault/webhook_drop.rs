//! `webhook_drop`: a delivery lost on the way, or its answer lost after the receiver
//! processed it.

use super::params::Params;
use super::webhook::{WebhookEffect, WebhookRule};
use super::{Family, KindInfo, PROBABILITY, ParamInfo, Effect, Fault, Window};
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
        let after = match params.text("when") {
            None => false,
            Some((when, span)) => match when.as_str() {
                "before" => false,
                "after" => true,
                other => {
                    return Err(params.error(
                        span,
                        format!("`when` is \"before\" or \"after\", not \"{other}\""),
                    ));
                }
            },
        };
        Ok(WebhookDrop {
            rule: WebhookRule {
                direction,
                effect: WebhookEffect::Drop { after },
            },
        })
    }

    fn describe(&self) -> String {
        self.rule.describe()
    }

    fn params_toml(&self) -> Vec<(&'static str, String)> {
        self.rule.params_toml()
    }

    fn effect(&self) -> Effect<'_> {
        Effect::Webhook(&self.rule)
    }
}
