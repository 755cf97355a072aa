//! The `Clock` seam: where the system reads the time of day.
//!
//! Durations and timers go through `tokio::time`, which turmoil drives in the simulation and
//! the OS drives in live mode. The time of day (timestamps in records, webhook signatures,
//! `Retry-After` dates, rate-limit windows) comes from a [`Clock`], so the simulation can hand
//! each host its own offset and drift.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Waits one simulated store round trip: a delay drawn uniformly from `latency_ms`
/// (fastest, slowest) with `rng`, the owner's seeded stream; none when the slowest is 0
/// (no draw either, so a store without latency leaves the stream untouched).
///
/// # Panics
/// If another thread panicked holding `rng`.
pub(crate) async fn store_round_trip(
    latency_ms: (u64, u64),
    rng: &std::sync::Mutex<rand_chacha::ChaCha8Rng>,
) {
    use rand::Rng as _;
    let (low, high) = latency_ms;
    if high == 0 {
        return;
    }
    let ms = rng
        .lock()
        .expect("a store-latency rng lock is never held across a panic")
        .random_range(low..=high);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Milliseconds since the Unix epoch, as a host believes them to be.
pub type UnixMs = u64;

/// A source of the time of day.
pub trait Clock: Send + Sync + 'static {
    /// The current time of day, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> UnixMs;

    /// The current time as a `SystemTime`, for formatting HTTP dates.
    fn now_system(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.now_ms())
    }
}

/// The operating system's clock, for live mode only.
#[derive(Clone, Copy, Debug, Default)]
pub struct WallClock;

impl Clock for WallClock {
    // Live mode runs on real sockets against real processes: the wall clock is the truth
    // there, and no simulated path constructs a WallClock.
    #[allow(clippy::disallowed_methods)]
    fn now_ms(&self) -> UnixMs {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
    }
}

/// A clock that always reads the same instant, for unit tests.
#[derive(Clone, Copy, Debug)]
pub struct FixedClock(pub UnixMs);

impl Clock for FixedClock {
    fn now_ms(&self) -> UnixMs {
        self.0
    }
}
