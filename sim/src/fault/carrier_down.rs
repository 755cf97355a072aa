//! `carrier_down`: the carrier's process is stopped for the window and starts again at its
//! end (or at heal). Its ledger survives: the carrier commits sales before answering.

use super::params::Params;
use super::{Family, KindInfo, Effect, Fault, Window};
use super::driver::{DriverEffect, NetDriver, Started};
use super::FaultSpec;
use crate::run::hosts::CARRIER;
use crate::scenario::ScenarioError;

/// Stops the carrier for the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CarrierDown;

impl Fault for CarrierDown {
    const INFO: KindInfo = KindInfo {
        name: "carrier_down",
        family: Family::Process,
        summary: "the carrier is down (process stopped) for the window",
        params: &[],
    };

    const EXAMPLE: &'static str = r#"
        duration_ms = 300
    "#;

    fn parse(_params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        Ok(CarrierDown)
    }

    fn describe(&self) -> String {
        "carrier stopped".to_string()
    }

    fn params_toml(&self) -> Vec<(&'static str, String)> {
        vec![]
    }

    fn effect(&self) -> Effect<'_> {
        Effect::Driver(self)
    }
}

/// Stops the host until the window's end (or the heal).
impl DriverEffect for CarrierDown {
    fn start(&self, driver: &mut NetDriver, sim: &mut turmoil::Sim<'_>, _: &FaultSpec, now_ms: u64) -> Started {
        driver.crash(sim, CARRIER, now_ms, None);
        Started::Fired
    }

    fn end(&self, driver: &mut NetDriver, sim: &mut turmoil::Sim<'_>, _: &FaultSpec) {
        driver.restart_if_stopped(sim, CARRIER);
    }
}
