//! HdrHistogram helpers: summaries, and the compact text form stored in `summary.json` so
//! that reports of shards merge exactly.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

use crate::RenderError;
use crate::model::LatencySummary;

/// Highest latency a histogram tracks: one simulated hour in ms. Larger samples are
/// clamped by the recorder, never dropped.
pub const LATENCY_MS_MAX: u64 = 3_600_000;

/// Significant figures kept: 3 gives 0.1% resolution at every magnitude.
pub const SIGNIFICANT_FIGURES: u8 = 3;

/// An empty latency histogram with the project's bounds.
///
/// # Panics
/// Never: the bounds are valid constants.
#[must_use]
pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MS_MAX, SIGNIFICANT_FIGURES)
        .expect("constant histogram bounds are valid")
}

/// Records `value_ms`, clamped into the histogram's range (0 ms counts as 1 ms: the
/// resolution of a simulated tick).
pub fn record_clamped(histogram: &mut Histogram<u64>, value_ms: u64) {
    let value = value_ms.clamp(1, LATENCY_MS_MAX);
    histogram
        .record(value)
        .expect("clamped value is within bounds");
}

/// Percentiles of a histogram.
#[must_use]
pub fn summarize(histogram: &Histogram<u64>) -> LatencySummary {
    if histogram.is_empty() {
        return LatencySummary::default();
    }
    LatencySummary {
        count: histogram.len(),
        p50: histogram.value_at_quantile(0.50),
        p95: histogram.value_at_quantile(0.95),
        p99: histogram.value_at_quantile(0.99),
        p999: histogram.value_at_quantile(0.999),
        max: histogram.max(),
        mean: (histogram.mean() * 1_000.0).round() / 1_000.0,
    }
}

/// Which latency a stored histogram measures; its [`HistogramKind::prefix`] starts the
/// key under `ScenarioReport::histograms` (`e2e POST /v1/orders`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HistogramKind {
    /// End to end, every workload operation.
    E2e,
    /// Single HTTP attempts.
    Attempt,
    /// End to end, operations that overlapped a fault.
    E2eFault,
    /// End to end, operations that overlapped no fault.
    E2eQuiet,
}

impl HistogramKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [HistogramKind; 4] = [
        HistogramKind::E2e,
        HistogramKind::Attempt,
        HistogramKind::E2eFault,
        HistogramKind::E2eQuiet,
    ];

    /// The key prefix.
    #[must_use]
    pub fn prefix(self) -> &'static str {
        match self {
            HistogramKind::E2e => "e2e",
            HistogramKind::Attempt => "attempt",
            HistogramKind::E2eFault => "e2e_fault",
            HistogramKind::E2eQuiet => "e2e_quiet",
        }
    }

    /// The key of this kind's histogram of `endpoint`.
    #[must_use]
    pub fn key(self, endpoint: &str) -> String {
        format!("{} {endpoint}", self.prefix())
    }

    /// Splits a key into its kind and endpoint; `None` for keys this build does not know.
    #[must_use]
    pub fn parse_key(key: &str) -> Option<(HistogramKind, &str)> {
        let (prefix, endpoint) = key.split_once(' ')?;
        let kind = HistogramKind::ALL
            .into_iter()
            .find(|kind| kind.prefix() == prefix)?;
        Some((kind, endpoint))
    }
}

/// Serialises a histogram as base64 of its V2 deflate encoding.
///
/// # Errors
/// [`RenderError::Histogram`] if encoding fails.
pub fn encode(histogram: &Histogram<u64>) -> Result<String, RenderError> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(histogram, &mut bytes)
        .map_err(|e| RenderError::Histogram(format!("{e:?}")))?;
    Ok(STANDARD.encode(bytes))
}

/// Reads a histogram written by [`encode`].
///
/// # Errors
/// [`RenderError::Histogram`] if the text is not such a histogram.
pub fn decode(text: &str) -> Result<Histogram<u64>, RenderError> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|e| RenderError::Histogram(format!("not base64: {e}")))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| RenderError::Histogram(format!("not a V2 histogram: {e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trips_exactly() {
        // Proves the stored form loses nothing: decoding gives an equal histogram, so merged
        // shard reports equal one unsharded run.
        let mut histogram = new_latency_histogram();
        for value in [1, 2, 3, 50, 999, 10_000, LATENCY_MS_MAX] {
            record_clamped(&mut histogram, value);
        }
        let decoded = decode(&encode(&histogram).unwrap()).unwrap();
        assert_eq!(decoded, histogram);
        assert!(decode("not base64!").is_err());
    }

    #[test]
    fn histogram_keys_round_trip() {
        // Proves every kind's key parses back to the same kind and endpoint, and that an
        // unknown prefix is not mistaken for a known one.
        for kind in HistogramKind::ALL {
            let key = kind.key("POST /v1/orders/{id}/shipments");
            assert_eq!(
                HistogramKind::parse_key(&key),
                Some((kind, "POST /v1/orders/{id}/shipments"))
            );
        }
        assert_eq!(HistogramKind::parse_key("e2e_later GET /x"), None);
        assert_eq!(HistogramKind::parse_key("e2e"), None);
    }

    #[test]
    fn summary_reads_percentiles() {
        // Proves the summary's percentiles come from the histogram (1..=100 ms uniform).
        let mut histogram = new_latency_histogram();
        for value in 1..=100 {
            record_clamped(&mut histogram, value);
        }
        let summary = summarize(&histogram);
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50, 50);
        assert_eq!(summary.p95, 95);
        assert_eq!(summary.max, 100);
        assert_eq!(
            summarize(&new_latency_histogram()),
            LatencySummary::default()
        );
    }
}
