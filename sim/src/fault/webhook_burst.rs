//! `webhook_burst`: a spike of tracking events (thousands at once) from the carrier, as
//! when a sorting centre scans a truckload; the service must take them all in exactly once
//! and its outbox must drain.

use super::params::Params;
use super::{Family, KindInfo, ParamInfo};
use crate::scenario::ScenarioError;
use crate::scenario::limits::Limit;

/// `events`: at most 100,000 per burst; a larger load test is several bursts, and the cost
/// of every burst is stated before the run (`Scenario::cost`).
const EVENTS: ParamInfo = ParamInfo::numeric(
    "events",
    true,
    "tracking events in the burst, for shipments labelled so far",
    Limit::int(1, 100_000),
);

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
        params: &[EVENTS],
    };

    pub(crate) fn parse(params: &mut Params<'_>) -> Result<Self, ScenarioError> {
        if !params.webhooks().is_some_and(|w| w.tracking) {
            return Err(params
                .whole("`webhook_burst` needs carrier tracking events")
                .with_hint("add `[webhooks]` with `tracking = true`"));
        }
        let (events, _) = params.required_ranged(&EVENTS, Params::u32)?;
        Ok(WebhookBurst { events })
    }

    /// What it does.
    #[must_use]
    pub fn describe(&self) -> String {
        format!("{} tracking events at once", self.events)
    }
}
