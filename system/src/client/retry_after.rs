//! `Retry-After` (RFC 9110, 10.2.3): either a number of seconds or an HTTP date.
//!
//! A date is turned into a delay with the caller's own clock, which is why clock skew
//! between client and server changes how long a client waits: exactly what the clock-skew
//! faults exercise.

use std::time::{Duration, UNIX_EPOCH};

/// Longest wait we accept from a server (one hour). A larger value is treated as this cap so
/// that one bad header cannot park a client for days; the deadline decides whether to wait.
pub const RETRY_AFTER_MS_MAX: u64 = 3_600_000;

/// A parsed `Retry-After` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// Wait this many seconds.
    Seconds(u64),
    /// Wait until this instant, Unix milliseconds.
    AtUnixMs(u64),
}

impl RetryAfter {
    /// Parses a header value; `None` when it is neither form.
    #[must_use]
    pub fn parse(value: &str) -> Option<RetryAfter> {
        let value = value.trim();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            return value.parse::<u64>().ok().map(RetryAfter::Seconds);
        }
        let at = httpdate::parse_http_date(value).ok()?;
        let since_epoch = at.duration_since(UNIX_EPOCH).ok()?;
        Some(RetryAfter::AtUnixMs(
            u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX),
        ))
    }

    /// The delay it asks for, given the client's current time; a date in the past means no
    /// wait. Capped at [`RETRY_AFTER_MS_MAX`].
    #[must_use]
    pub fn delay_ms(self, now_ms: u64) -> u64 {
        let raw = match self {
            RetryAfter::Seconds(seconds) => seconds.saturating_mul(1_000),
            RetryAfter::AtUnixMs(at) => at.saturating_sub(now_ms),
        };
        raw.min(RETRY_AFTER_MS_MAX)
    }
}

/// Formats Unix milliseconds as an HTTP date (second precision, rounded up so that a client
/// honouring it never retries early).
#[must_use]
pub fn http_date(unix_ms: u64) -> String {
    let seconds = unix_ms.div_ceil(1_000);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        // Proves the two RFC 9110 forms parse and garbage does not.
        assert_eq!(RetryAfter::parse("120"), Some(RetryAfter::Seconds(120)));
        assert_eq!(RetryAfter::parse(" 3 "), Some(RetryAfter::Seconds(3)));
        assert_eq!(
            RetryAfter::parse("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(RetryAfter::AtUnixMs(784_111_777_000))
        );
        assert_eq!(RetryAfter::parse("-1"), None);
        assert_eq!(RetryAfter::parse("soon"), None);
        assert_eq!(RetryAfter::parse(""), None);
    }

    #[test]
    fn date_delay_depends_on_the_reader_clock() {
        // Proves a date is read against the client's clock: a client whose clock runs 2 s
        // fast waits 2 s less, and a date in the past means no wait.
        let at = RetryAfter::AtUnixMs(10_000);
        assert_eq!(at.delay_ms(7_000), 3_000);
        assert_eq!(at.delay_ms(9_000), 1_000);
        assert_eq!(at.delay_ms(12_000), 0);
        assert_eq!(
            RetryAfter::Seconds(u64::MAX).delay_ms(0),
            RETRY_AFTER_MS_MAX
        );
    }

    #[test]
    fn http_date_round_trips_rounding_up() {
        // Proves formatting rounds up to the next whole second, so it never shortens a wait.
        let text = http_date(784_111_776_001);
        assert_eq!(
            RetryAfter::parse(&text),
            Some(RetryAfter::AtUnixMs(784_111_777_000))
        );
    }
}
