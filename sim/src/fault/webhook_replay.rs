//! `webhook_replay`: a captured, validly signed delivery is sent again after the signature
//! tolerance window: the receiver must refuse the stale timestamp (or deduplicate it).

use super::params::Params;
use super::webhook::{WebhookEffect, WebhookRule};
use super::{Family, KindInfo, PROBABILITY, ParamInfo};
use crate::scenario::ScenarioError;

/// Replays old signed webhook deliveries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookReplay {
    /// Which traffic and what.
    pub rule: WebhookRule,
}

impl WebhookReplay {
    pub(crate) const INFO: KindInfo = KindInfo {
        name: "webhook_replay",
        family: Family::Webhook,
        summary: "send a signed delivery again after the tolerance window (a captured request replayed)",
        params: &[
            WebhookRule::DIRECTION,
            ParamInfo {
                name: "after_ms",
                required: false,
                doc: "delay of the replay, ms (default: the tolerance plus one second)",
            },
            PROBABILITY,
        ],
    };

    pub(crate) fn parse(params: &mut Params<'_>) -> Result<Self, ScenarioError> {
        let direction = WebhookRule::parse_direction(params)?;
        let tolerance_ms = params.webhooks().map_or(0, |w| w.tolerance_s * 1_000);
        let after_ms = params
            .u64("after_ms")
            .map_or(tolerance_ms + 1_000, |(ms, _)| ms);
        Ok(WebhookReplay {
            rule: WebhookRule {
                direction,
                effect: WebhookEffect::Replay { after_ms },
            },
        })
    }

    /// What it does.
    #[must_use]
    pub fn describe(&self) -> String {
        self.rule.describe()
    }
}
