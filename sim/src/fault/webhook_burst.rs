//! `webhook_burst`: a spike of tracking events (thousands at once) from the carrier, as
//! when a sorting centre scans a truckload; the service must take them all in exactly once
//! and its outbox must drain.

use super::params::Params;
use super::{Family, KindInfo, ParamInfo};
use crate::scenario::ScenarioError;

/// Most events one burst may add.
const EVENTS_MAX: u32 = 100_000;

/// Adds a burst of tracking events at the window's start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookBurst {
    /// Events in the burst.
    pub events: u32,
}

impl WebhookBurst {
    pub(crate) const INFO: KindInfo = KindInfo {
        name: "webhook_burst",
        family: Family::Webhook,
        summary: "the carrier sends a spike of tracking events at once",
        params: &[ParamInfo {
            name: "events",
            required: true,
            doc: "tracking events in the burst, 1..=100000, for shipments labelled so far",
        }],
    };

    pub(crate) fn parse(params: &mut Params<'_>) -> Result<Self, ScenarioError> {
        if !params.webhooks().is_some_and(|w| w.tracking) {
            return Err(params
                .whole("`webhook_burst` needs carrier tracking events")
                .with_hint("add `[webhooks]` with `tracking = true`"));
        }
        let (events, span) = params.required("events", Params::u32)?;
        if !(1..=EVENTS_MAX).contains(&events) {
            return Err(params.error(span, format!("events {events} is outside 1..={EVENTS_MAX}")));
        }
        Ok(WebhookBurst { events })
    }

    /// What it does.
    #[must_use]
    pub fn describe(&self) -> String {
        format!("{} tracking events at once", self.events)
    }
}
