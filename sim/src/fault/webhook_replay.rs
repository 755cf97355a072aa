//! `webhook_replay`: a captured, validly signed delivery is sent again after the signature
//! tolerance window: the receiver must refuse the stale timestamp (or deduplicate it).

use super::params::Params;
use super::webhook::{WebhookEffect, WebhookRule};
use super::{Family, KindInfo, PROBABILITY, ParamInfo, Fault, Window};
use crate::scenario::ScenarioError;
use crate::scenario::limits::Limit;

/// `after_ms`
const AFTER_MS: ParamInfo = ParamInfo::numeric(
    "after_ms",
    false,
    "delay of the replay, ms (default: the tolerance plus one second)",
    Limit::duration_ms(0),
);

/// Replays old signed webhook deliveries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookReplay {
    /// Which traffic and what.
    pub rule: WebhookRule,
}

impl Fault for WebhookReplay {
    const INFO: KindInfo = KindInfo {
        name: "webhook_replay",
        family: Family::Webhook,
        summary: "send a signed delivery again after the tolerance window (a captured request replayed)",
        params: &[WebhookRule::DIRECTION, AFTER_MS, PROBABILITY],
    };

    const EXAMPLE: &'static str = r#"
        direction = "outbound"
        after_ms = 200
        probability = 0.5
    "#;

    fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        let direction = WebhookRule::parse_direction(params)?;
        // The tolerance is at most TOLERANCE_S_MAX (an hour): the default replay delay is
        // within AFTER_MS's range (checked at compile time in `limits`), so a repro file
        // that writes it back parses.
        let tolerance_ms = params.webhooks().map_or(0, |w| {
            w.tolerance_s
                .checked_mul(1_000)
                .expect("tolerance_s is at most TOLERANCE_S_MAX (checked at parse time)")
        });
        let after_ms = params
            .ranged(&AFTER_MS, Params::u64)?
            .map_or(tolerance_ms + 1_000, |(ms, _)| ms);
        Ok(WebhookReplay {
            rule: WebhookRule {
                direction,
                effect: WebhookEffect::Replay { after_ms },
            },
        })
    }

    rule_fault!(Webhook);
}
