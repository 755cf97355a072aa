//! `webhook_duplicate`: a webhook delivered several times at once.

use super::params::Params;
use super::webhook::{WebhookEffect, WebhookRule};
use super::{Family, KindInfo, PROBABILITY, ParamInfo};
use crate::scenario::ScenarioError;

/// Duplicates webhook deliveries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookDuplicate {
    /// Which traffic and what.
    pub rule: WebhookRule,
}

impl WebhookDuplicate {
    pub(crate) const INFO: KindInfo = KindInfo {
        name: "webhook_duplicate",
        family: Family::Webhook,
        summary: "deliver a webhook several times at once",
        params: &[
            WebhookRule::DIRECTION,
            ParamInfo {
                name: "copies",
                required: false,
                doc: "deliveries per event, 2..=10 (default 2)",
            },
            PROBABILITY,
        ],
    };

    pub(crate) fn parse(params: &mut Params<'_>) -> Result<Self, ScenarioError> {
        let direction = WebhookRule::parse_direction(params)?;
        let copies = match params.u32("copies") {
            None => 2,
            Some((copies, _)) if (2..=10).contains(&copies) => copies,
            Some((copies, span)) => {
                return Err(params.error(span, format!("copies {copies} is outside 2..=10")));
            }
        };
        Ok(WebhookDuplicate {
            rule: WebhookRule {
                direction,
                effect: WebhookEffect::Duplicate { copies },
            },
        })
    }

    /// What it does.
    #[must_use]
    pub fn describe(&self) -> String {
        self.rule.describe()
    }
}
