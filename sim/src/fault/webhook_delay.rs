//! `webhook_delay`: a delivery is processed but its answer arrives late, past the sender's
//! timeout, so the sender sends it again.

use super::params::Params;
use super::webhook::{WebhookEffect, WebhookRule};
use super::{Family, KindInfo, PROBABILITY, ParamInfo};
use crate::scenario::ScenarioError;

/// Delays webhook answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookDelay {
    /// Which traffic and what.
    pub rule: WebhookRule,
}

impl WebhookDelay {
    pub(crate) const INFO: KindInfo = KindInfo {
        name: "webhook_delay",
        family: Family::Webhook,
        summary: "deliver, then hold the answer (past the sender's timeout: it sends again)",
        params: &[
            WebhookRule::DIRECTION,
            ParamInfo {
                name: "delay_ms",
                required: true,
                doc: "how long the answer is held, ms (>= 1)",
            },
            PROBABILITY,
        ],
    };

    pub(crate) fn parse(params: &mut Params<'_>) -> Result<Self, ScenarioError> {
        let direction = WebhookRule::parse_direction(params)?;
        let (delay_ms, span) = params.required("delay_ms", Params::u64)?;
        if delay_ms == 0 {
            return Err(params.error(span, "`delay_ms` must be at least 1"));
        }
        Ok(WebhookDelay {
            rule: WebhookRule {
                direction,
                effect: WebhookEffect::Delay { delay_ms },
            },
        })
    }

    /// What it does.
    #[must_use]
    pub fn describe(&self) -> String {
        self.rule.describe()
    }
}
