//! What one seed of a scenario will cost, said before it runs. The limits allow enormous
//! scenarios (a thousand clients of 100,000 operations each; bursts of 100,000 webhook
//! events): they are legitimate load tests, but a user should learn what they asked for
//! from `check`, and from `run` before the first seed, rather than from a run that seems
//! to hang. The progress display weighs each seed by the same measure.

use super::Scenario;
use crate::fault::FaultKind;

/// Work of the default scenario (one client, 20 operations), the unit of comparison.
pub const DEFAULT_WORK: u64 = 20;
/// Work per seed above which a scenario is called heavy: ten thousand operations and
/// events, ten times the corpus's largest burst (`webhook_burst`, 1,000 events plus its
/// operations, some 50 ms per seed in release).
pub const HEAVY_WORK: u64 = 10_000;

/// The cost of one seed of a scenario, in units that do not depend on the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    /// Logical operations, every client together.
    pub operations: u64,
    /// Tracking events added by `webhook_burst` faults.
    pub burst_events: u64,
    /// Simulated time the workload may take before the run is declared stuck, ms.
    pub time_limit_ms: u64,
}

impl Cost {
    /// Operations and burst events: what the progress display counts.
    #[must_use]
    pub fn work(&self) -> u64 {
        self.operations.saturating_add(self.burst_events)
    }

    /// Whether a seed does so much that the user should be told before it runs.
    #[must_use]
    pub fn is_heavy(&self) -> bool {
        self.work() > HEAVY_WORK
    }

    /// One sentence: what a seed does, against the default scenario.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut text = format!("{} operations", thousands(self.operations));
        if self.burst_events > 0 {
            text.push_str(&format!(
                " and {} burst webhook events",
                thousands(self.burst_events)
            ));
        }
        format!(
            "{text} per seed, {}x the default scenario's work; a seed may run up to {} s of simulated time",
            thousands(self.work() / DEFAULT_WORK),
            thousands(self.time_limit_ms / 1_000)
        )
    }
}

impl Scenario {
    /// What one seed of this scenario will cost.
    #[must_use]
    pub fn cost(&self) -> Cost {
        // At most 1,000 clients x 100,000 operations (the limits): no overflow.
        let operations = u64::from(self.hosts.clients) * u64::from(self.workload.operations);
        // A file may hold any number of bursts, each of at most 100,000 events.
        let burst_events = self
            .faults
            .iter()
            .filter_map(|spec| match &spec.kind {
                FaultKind::WebhookBurst(burst) => Some(u64::from(burst.events)),
                _ => None,
            })
            .fold(0u64, u64::saturating_add);
        Cost {
            operations,
            burst_events,
            time_limit_ms: self.run.time_limit_ms,
        }
    }
}

/// `65535` as `65,535`.
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_enormous_scenario_is_heavy_and_says_so() {
        // Proves the cost counts every client's operations and every burst, and that the
        // issue's example (65,535 operations in a webhook scenario) is called heavy.
        let source = "[workload]\noperations = 65535\n[webhooks]\n[[fault]]\nkind = \"webhook_burst\"\nevents = 100\n";
        let scenario = Scenario::parse("big.toml", "big", source).unwrap();
        let cost = scenario.cost();
        assert_eq!((cost.operations, cost.burst_events), (65_535, 100));
        assert!(cost.is_heavy());
        let text = cost.describe();
        assert!(
            text.starts_with("65,535 operations and 100 burst webhook events per seed, 3,281x"),
            "{text}"
        );
        let default = Scenario::parse("d.toml", "d", "").unwrap().cost();
        assert_eq!(default.work(), DEFAULT_WORK);
        assert!(!default.is_heavy());
    }

    #[test]
    fn thousands_are_grouped() {
        // Proves the digit grouping of the cost sentence.
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(100_000_000), "100,000,000");
    }
}
