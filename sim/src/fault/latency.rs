//! `latency`: slower, jittery links between two sets of hosts.

use super::params::Params;
use super::{Family, KindInfo, ParamInfo, sides, Effect, Fault, Window};
use super::driver::{DriverEffect, NetDriver, Started};
use super::{FaultSpec, between_toml};
use crate::run::hosts::HostSel;
use crate::scenario::ScenarioError;
use crate::scenario::limits::{LATENCY_MS_MAX, Limit};

/// `min_ms`
const MIN_MS: ParamInfo = ParamInfo::numeric(
    "min_ms",
    true,
    "fastest message, ms",
    Limit::int(0, LATENCY_MS_MAX as i128),
);
/// `max_ms`
const MAX_MS: ParamInfo = ParamInfo::numeric(
    "max_ms",
    true,
    "slowest message, ms, at least `min_ms`",
    Limit::int(0, LATENCY_MS_MAX as i128),
);

/// Link latency during the window: each message takes between `min_ms` and `max_ms`
/// (turmoil's exponential curve inside that range).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Latency {
    /// One side.
    pub a: HostSel,
    /// The other side.
    pub b: HostSel,
    /// Fastest message, ms.
    pub min_ms: u64,
    /// Slowest message, ms.
    pub max_ms: u64,
}

impl Fault for Latency {
    const INFO: KindInfo = KindInfo {
        name: "latency",
        family: Family::Network,
        summary: "slow, jittery links between two sets of hosts",
        params: &[
            ParamInfo {
                name: "between",
                required: true,
                doc: "the two sides, e.g. [\"clients\", \"service\"]",
                limit: None,
            },
            MIN_MS,
            MAX_MS,
        ],
    };

    const EXAMPLE: &'static str = r#"
        between = ["clients", "service"]
        min_ms = 50
        max_ms = 100
    "#;

    fn parse(params: &mut Params<'_>, _window: &Window) -> Result<Self, ScenarioError> {
        let (a, b) = params.between()?;
        let (min_ms, _) = params.required_ranged(&MIN_MS, Params::u64)?;
        let (max_ms, span) = params.required_ranged(&MAX_MS, Params::u64)?;
        if max_ms < min_ms {
            return Err(params.error(
                span,
                format!("max_ms ({max_ms}) is below min_ms ({min_ms})"),
            ));
        }
        Ok(Latency {
            a,
            b,
            min_ms,
            max_ms,
        })
    }

    fn describe(&self) -> String {
        format!(
            "{} at {}..{} ms",
            sides(&self.a, &self.b),
            self.min_ms,
            self.max_ms
        )
    }

    fn params_toml(&self) -> Vec<(&'static str, String)> {
        let mut params = vec![("between", between_toml(&self.a, &self.b))];
        params.push(("min_ms", self.min_ms.to_string()));
        params.push(("max_ms", self.max_ms.to_string()));
        params
    }

    fn effect(&self) -> Effect<'_> {
        Effect::Driver(self)
    }
}

impl DriverEffect for Latency {
    fn start(&self, driver: &mut NetDriver, sim: &mut turmoil::Sim<'_>, _: &FaultSpec, _: u64) -> Started {
        driver.set_latency(sim, &self.a, &self.b, (self.min_ms, self.max_ms));
        Started::Fired
    }

    fn end(&self, driver: &mut NetDriver, sim: &mut turmoil::Sim<'_>, _: &FaultSpec) {
        let default_ms = driver.default_latency_ms();
        driver.set_latency(sim, &self.a, &self.b, default_ms);
    }
}
