//! `webhook_reorder`: deliveries held for random times, so later events overtake earlier
//! ones and receivers see them out of order.

use super::params::Params;
use super::webhook::{WebhookEffect, WebhookRule};
use super::{Family, KindInfo, PROBABILITY, ParamInfo};
use crate::scenario::ScenarioError;

/// Reorders webhook deliveries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookReorder {
    /// Which traffic and what.
    pub rule: WebhookRule,
}

impl WebhookReorder {
    pub(crate) const INFO: KindInfo = KindInfo {
        name: "webhook_reorder",
        family: Family::Webhook,
        summary: "hold deliveries for random times so later events overtake them",
        params: &[
            WebhookRule::DIRECTION,
            ParamInfo {
                name: "max_ms",
                required: true,
                doc: "longest hold, ms (>= 1)",
            },
            PROBABILITY,
        ],
    };

    pub(crate) fn parse(params: &mut Params<'_>) -> Result<Self, ScenarioError> {
        let direction = WebhookRule::parse_direction(params)?;
        let (max_delay_ms, span) = params.required("max_ms", Params::u64)?;
        if max_delay_ms == 0 {
            return Err(params.error(span, "`max_ms` must be at least 1"));
        }
        Ok(WebhookReorder {
            rule: WebhookRule {
                direction,
                effect: WebhookEffect::Reorder { max_delay_ms },
            },
        })
    }

    /// What it does.
    #[must_use]
    pub fn describe(&self) -> String {
        self.rule.describe()
    }
}
