//! The simulated [`Clock`]: a host's time of day is the fixed epoch plus simulated time,
//! plus whatever clock-skew faults say about that host.

use std::time::Duration;

use shipsim_system::clock::{Clock, UnixMs};

use crate::fault::{FaultKind, FaultSpec, Window};

/// The simulation's epoch: 2026-01-01T00:00:00Z. Fixed so that no run depends on when it
/// ran; turmoil's own default is the wall clock.
pub const EPOCH_UNIX_MS: u64 = 1_767_225_600_000;

/// One skew acting on a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Skew {
    window: Window,
    offset_ms: i64,
    drift_ppm: i64,
}

/// A host's clock.
#[derive(Clone, Debug)]
pub struct SimClock {
    skews: Vec<Skew>,
}

impl SimClock {
    /// The clock of `host`, skewed by the clock-skew faults that target it.
    #[must_use]
    pub fn for_host(host: &str, faults: &[FaultSpec]) -> Self {
        let skews = faults
            .iter()
            .filter_map(|spec| match &spec.kind {
                FaultKind::ClockSkew(skew) if skew.target.contains(host) => Some(Skew {
                    window: spec.window,
                    offset_ms: skew.offset_ms,
                    drift_ppm: skew.drift_ppm,
                }),
                _ => None,
            })
            .collect();
        SimClock { skews }
    }

    /// The time of day this clock shows when `elapsed` of simulated time has passed.
    #[must_use]
    pub fn at(&self, elapsed: Duration) -> UnixMs {
        let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let mut now = i128::from(EPOCH_UNIX_MS) + i128::from(elapsed_ms);
        for skew in self.skews.iter().filter(|s| s.window.contains(elapsed_ms)) {
            let skewed_for_ms = i128::from(elapsed_ms - skew.window.start_ms);
            now +=
                i128::from(skew.offset_ms) + skewed_for_ms * i128::from(skew.drift_ppm) / 1_000_000;
        }
        u64::try_from(now.max(0)).unwrap_or(u64::MAX)
    }
}

impl Clock for SimClock {
    fn now_ms(&self) -> UnixMs {
        // Hosts read their clock from inside the simulation; turmoil knows the time there.
        self.at(turmoil::sim_elapsed().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::ClockSkew;
    use crate::run::hosts::HostSel;

    fn skew_fault(offset_ms: i64, drift_ppm: i64, start_ms: u64) -> FaultSpec {
        FaultSpec {
            index: 0,
            stream: 0,
            line: 1,
            kind: FaultKind::ClockSkew(ClockSkew {
                target: HostSel::Service,
                offset_ms,
                drift_ppm,
            }),
            window: Window {
                start_ms,
                end_ms: None,
            },
            probability: 1.0,
        }
    }

    #[test]
    fn unskewed_clock_is_epoch_plus_elapsed() {
        // Proves the base clock: the fixed epoch plus simulated time, nothing else.
        let clock = SimClock::for_host("service", &[]);
        assert_eq!(
            clock.at(Duration::from_millis(1_500)),
            EPOCH_UNIX_MS + 1_500
        );
    }

    #[test]
    fn skew_applies_offset_and_drift_from_its_start_on_its_host_only() {
        // Proves offset and drift apply from the window's start, only to the targeted host:
        // 100 ppm over 10 s is 1 ms.
        let faults = [skew_fault(-2_000, 100, 1_000)];
        let service = SimClock::for_host("service", &faults);
        let client = SimClock::for_host("client-0", &faults);
        assert_eq!(service.at(Duration::from_millis(500)), EPOCH_UNIX_MS + 500);
        assert_eq!(
            service.at(Duration::from_millis(11_000)),
            EPOCH_UNIX_MS + 11_000 - 2_000 + 1
        );
        assert_eq!(
            client.at(Duration::from_millis(11_000)),
            EPOCH_UNIX_MS + 11_000
        );
    }
}
