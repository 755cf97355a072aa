//! `receiver_down`: the merchants' webhook receiver is stopped for the window; the service
//! must keep its events and deliver them when the receiver is back.

use super::params::Params;
use super::{Family, KindInfo};
use crate::scenario::ScenarioError;

/// Stops the merchant receiver for the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiverDown;

impl ReceiverDown {
    pub(crate) const INFO: KindInfo = KindInfo {
        name: "receiver_down",
        family: Family::Webhook,
        summary: "the merchants' webhook receiver is down (process stopped) for the window",
        params: &[],
    };

    pub(crate) fn parse(params: &mut Params<'_>) -> Result<Self, ScenarioError> {
        if !params.webhooks().is_some_and(|w| w.outbound) {
            return Err(params
                .whole("`receiver_down` needs a receiver: outbound webhooks are off")
                .with_hint("add `[webhooks]` with `outbound = true`"));
        }
        Ok(ReceiverDown)
    }

    /// What it does.
    #[must_use]
    pub fn describe(&self) -> String {
        "receiver stopped".to_string()
    }
}
