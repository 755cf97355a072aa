//! `webhook_delay`: a delivery is processed but its answer arrives late, past the sender's
//! timeout, so the sender sends it again.

use super::params::Params;
use super::webhook::{WebhookEffect, WebhookRule};
use super::{Family, KindInfo, PROBABILITY, ParamInfo, Fault, Window};
use crate::scenario::ScenarioError;
use crate::scenario::limits::Limit;

/// `delay_ms`
const DELAY_MS: ParamInfo = ParamInfo::numeric(
    "delay_ms",
    true,
    "how long the answer is held, ms",
    Limit::duration_ms(1),
);

/// Delays webhook answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookDelay {
    /// Which traffic and what.
    pub rule: WebhookRule,
}

impl Fault for WebhookDelay {
    const INFO: KindInfo = KindInfo {
        name: "webhook_delay",
        family: Family::Webhook,
        summary: "deliver, then hold the answer (past the sender's timeout: it sends again)",
        params: &[WebhookRule::DIRECTION, DELAY_MS, PROBABILITY],
    };

    const EXAMPLE: &'static str = r#"
        direction = "outbound"
        delay_ms = 300
    "#;

    fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        let direction = WebhookRule::parse_direction(params)?;
        let (delay_ms, _) = params.required_ranged(&DELAY_MS, Params::u64)?;
        Ok(WebhookDelay {
            rule: WebhookRule {
                direction,
                effect: WebhookEffect::Delay { delay_ms },
            },
        })
    }

    rule_fault!(Webhook);
}
