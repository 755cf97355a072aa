//! `carrier_down`: the carrier's process is stopped for the window and starts again at its
//! end (or at heal). Its ledger survives: the carrier commits sales before answering.

use super::params::Params;
use super::{Family, KindInfo};
use crate::scenario::ScenarioError;

/// Stops the carrier for the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CarrierDown;

impl CarrierDown {
    pub(crate) const INFO: KindInfo = KindInfo {
        name: "carrier_down",
        family: Family::Process,
        summary: "the carrier is down (process stopped) for the window",
        params: &[],
    };

    pub(crate) fn parse(_params: &mut Params<'_>) -> Result<Self, ScenarioError> {
        Ok(CarrierDown)
    }

    /// What it does.
    #[must_use]
    pub fn describe(&self) -> String {
        "carrier stopped".to_string()
    }
}
