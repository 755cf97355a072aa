//! `webhook_burst`: a spike of tracking events (thousands at once) from the carrier, as
//! when a sorting centre scans a truckload; the service must take them all in exactly once
//! and its outbox must drain.

use super::params::Params;
use super::{Family, KindInfo, ParamInfo, Effect, Fault, Window};
use super::driver::{DriverEffect, NetDriver, Started};
use super::FaultSpec;
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

impl Fault for WebhookBurst {
    const INFO: KindInfo = KindInfo {
        name: "webhook_burst",
        family: Family::Webhook,
        summary: "the carrier sends a spike of tracking events at once",
        params: &[EVENTS],
    };

    const EXAMPLE: &'static str = r#"
        events = 50
        start_ms = 500
    "#;

    fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        if !params.webhooks().is_some_and(|w| w.tracking) {
            return Err(params
                .whole("`webhook_burst` needs carrier tracking events")
                .with_hint("add `[webhooks]` with `tracking = true`"));
        }
        let (events, _) = params.required_ranged(&EVENTS, Params::u32)?;
        Ok(WebhookBurst { events })
    }

    fn describe(&self) -> String {
        format!("{} tracking events at once", self.events)
    }

    fn params_toml(&self) -> Vec<(&'static str, String)> {
        vec![("events", self.events.to_string())]
    }

    fn effect(&self) -> Effect<'_> {
        Effect::Driver(self)
    }
}

/// Schedules the burst at the window's start.
impl DriverEffect for WebhookBurst {
    fn start(&self, driver: &mut NetDriver, _: &mut turmoil::Sim<'_>, spec: &FaultSpec, now_ms: u64) -> Started {
        driver.burst(spec, self.events, now_ms);
        Started::Fired
    }
}
