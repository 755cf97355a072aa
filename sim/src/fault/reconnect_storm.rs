//! `reconnect_storm`: a network blip cuts every client off from the service; when it ends,
//! every client drops its connections and reconnects at the same instant.

use super::params::Params;
use super::{Family, KindInfo, ParamInfo, Window};
use crate::hosts::HostSel;
use crate::scenario::ScenarioError;

/// Cuts `target` off from the service for the window, then makes it reconnect at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconnectStorm {
    /// The clients that reconnect together.
    pub target: HostSel,
}

impl ReconnectStorm {
    pub(crate) const INFO: KindInfo = KindInfo {
        name: "reconnect_storm",
        family: Family::Network,
        summary: "cut clients off from the service, then have all of them reconnect at once",
        params: &[ParamInfo {
            name: "target",
            required: false,
            doc: "the clients that reconnect together (default \"clients\")",
            limit: None,
        }],
    };

    pub(crate) fn parse(params: &mut Params<'_>, window: &Window) -> Result<Self, ScenarioError> {
        let target = match params.host("target")? {
            None => HostSel::Clients,
            Some((selector, span)) => {
                if selector.is_server() {
                    return Err(params.error(span, "`target` of `reconnect_storm` must be clients"));
                }
                selector
            }
        };
        if window.end_ms.is_none() {
            return Err(params
                .missing("duration_ms")
                .with_hint("a storm needs the blip's end: give `duration_ms` or `end_ms`"));
        }
        Ok(ReconnectStorm { target })
    }

    /// What it does.
    #[must_use]
    pub fn describe(&self) -> String {
        format!("{} <-> service, then all reconnect", self.target)
    }
}
