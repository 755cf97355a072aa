//! The one place the harness reads the wall clock: to report how fast it ran. Nothing read
//! here reaches a simulation, a trace or an oracle; it lands only in the report's `wall`
//! fields, which the determinism contract excludes.

use std::time::Instant;

/// Measures elapsed wall time.
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    /// Starts measuring.
    #[must_use]
    // Wall time is the measurement itself here, never an input to a simulated path.
    #[allow(clippy::disallowed_methods)]
    pub fn start() -> Self {
        Stopwatch(Instant::now())
    }

    /// Nanoseconds since `start`.
    #[must_use]
    pub fn elapsed_ns(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// The process's peak resident set size in MiB, from `/proc/self/status` (`VmHWM`); `None`
/// where that file does not exist.
#[must_use]
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kib / 1024.0 * 10.0).round() / 10.0)
}
