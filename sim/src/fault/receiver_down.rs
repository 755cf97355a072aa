//! `receiver_down`: the merchants' webhook receiver is stopped for the window; the service
//! must keep its events and deliver them when the receiver is back.

use super::params::Params;
use super::{Family, KindInfo, Effect, Fault, Window};
use super::driver::{DriverEffect, NetDriver, Started};
use super::FaultSpec;
use crate::run::hosts::RECEIVER;
use crate::scenario::ScenarioError;

/// Stops the merchant receiver for the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiverDown;

impl Fault for ReceiverDown {
    const INFO: KindInfo = KindInfo {
        name: "receiver_down",
        family: Family::Webhook,
        summary: "the merchants' webhook receiver is down (process stopped) for the window",
        params: &[],
    };

    const EXAMPLE: &'static str = r#"
        duration_ms = 300
    "#;

    fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        if !params.webhooks().is_some_and(|w| w.outbound) {
            return Err(params
                .whole("`receiver_down` needs a receiver: outbound webhooks are off")
                .with_hint("add `[webhooks]` with `outbound = true`"));
        }
        Ok(ReceiverDown)
    }

    fn describe(&self) -> String {
        "receiver stopped".to_string()
    }

    fn params_toml(&self) -> Vec<(&'static str, String)> {
        vec![]
    }

    fn effect(&self) -> Effect<'_> {
        Effect::Driver(self)
    }
}

/// Stops the host until the window's end (or the heal).
impl DriverEffect for ReceiverDown {
    fn start(&self, driver: &mut NetDriver, sim: &mut turmoil::Sim<'_>, _: &FaultSpec, now_ms: u64) -> Started {
        driver.crash(sim, RECEIVER, now_ms, None);
        Started::Fired
    }

    fn end(&self, driver: &mut NetDriver, sim: &mut turmoil::Sim<'_>, _: &FaultSpec) {
        driver.restart_if_stopped(sim, RECEIVER);
    }
}
