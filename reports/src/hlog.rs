//! `<endpoint-slug>.hlog`: HdrHistogram interval logs (format 1.3, as the Java
//! `HistogramLogWriter` writes them), one file per endpoint, for HdrHistogram's own tools
//! (`HistogramLogProcessor`, HistogramLogAnalyzer, the `hdrhistogram` crate's
//! `IntervalLogIterator`).
//!
//! The simulation has no wall-clock intervals, so each scenario is one interval: scenarios
//! are laid end to end in report order, each lasting its simulated time summed over seeds.
//! Per scenario the log holds an untagged interval (end-to-end latency of every operation,
//! so that the untagged stream covers the whole run) and intervals tagged `fault_window`,
//! `quiet_window` and `attempt`. Values are milliseconds: pass `-outputValueUnitRatio 1`
//! to `HistogramLogProcessor`, whose default assumes nanoseconds.

use std::time::Duration;

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use crate::RenderError;
use crate::histogram::{HistogramKind, decode};
use crate::markup::slug;
use crate::model::Report;

/// One interval log to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HlogFile {
    /// The endpoint it measures (`POST /v1/orders`).
    pub endpoint: String,
    /// File name: the endpoint's slug plus `.hlog`.
    pub file_name: String,
    /// The log.
    pub contents: String,
}

/// The line the Java writer puts first; readers use it to pick the format.
const FORMAT_VERSION_LINE: &str = "[Histogram log format version 1.3]";

/// The column legend the Java writer puts before the first interval (readers skip it).
const LEGEND_LINE: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n";

/// The tag and kind of each interval written per scenario, in order.
const INTERVALS: [(Option<&str>, HistogramKind); 4] = [
    (None, HistogramKind::E2e),
    (Some("fault_window"), HistogramKind::E2eFault),
    (Some("quiet_window"), HistogramKind::E2eQuiet),
    (Some("attempt"), HistogramKind::Attempt),
];

/// The file name of `endpoint`'s log.
#[must_use]
pub fn file_name(endpoint: &str) -> String {
    format!("{}.hlog", slug(endpoint))
}

/// Every endpoint any scenario measured, sorted.
#[must_use]
pub fn endpoints(report: &Report) -> Vec<String> {
    let mut all: Vec<String> = report
        .scenarios
        .iter()
        .flat_map(|s| s.latency_ms.keys().cloned())
        .collect();
    all.sort();
    all.dedup();
    all
}

/// The interval log of `endpoint`.
///
/// # Errors
/// [`RenderError::Histogram`] if a stored histogram cannot be decoded or re-encoded.
pub fn render(report: &Report, endpoint: &str) -> Result<String, RenderError> {
    let mut bytes: Vec<u8> = Vec::new();
    // The header as the Java writer lays it out: comments, then the column legend. The
    // crate's builder writes only `#` lines, so the header is written here.
    for comment in [
        FORMAT_VERSION_LINE.to_string(),
        format!("[{} latency of `{endpoint}`, simulated ms]", report.tool),
        format!(
            "[seeds {}; one interval per scenario, laid end to end over its simulated time]",
            report.run.seeds
        ),
        "[untagged: end to end, all operations; Tag=fault_window / quiet_window: end to end, split by overlap with a fault; Tag=attempt: single HTTP attempts]".to_string(),
    ] {
        bytes.push(b'#');
        bytes.extend_from_slice(one_line(&comment).as_bytes());
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(LEGEND_LINE.as_bytes());
    let mut serializer = V2DeflateSerializer::new();
    {
        let mut writer = IntervalLogWriterBuilder::new()
            .begin_log_with(&mut bytes, &mut serializer)
            .map_err(|e| RenderError::Histogram(format!("hlog header: {e}")))?;
        let mut start_ms: u64 = 0;
        for scenario in &report.scenarios {
            let duration_ms: u64 = scenario.seeds.iter().map(|s| s.sim_ms).sum();
            writer
                .write_comment(&one_line(&format!(
                    "[scenario {} at {:.3} s: {} seed(s)]",
                    scenario.name,
                    start_ms as f64 / 1_000.0,
                    scenario.seeds_run
                )))
                .map_err(|e| RenderError::Histogram(format!("hlog: {e}")))?;
            for (tag, kind) in INTERVALS {
                let Some(text) = scenario.histograms.get(&kind.key(endpoint)) else {
                    continue;
                };
                let histogram = decode(text)?;
                let tag = tag.map(|t| Tag::new(t).expect("constant tags have no separators"));
                writer
                    .write_histogram(
                        &histogram,
                        Duration::from_millis(start_ms),
                        Duration::from_millis(duration_ms),
                        tag,
                    )
                    .map_err(|e| RenderError::Histogram(format!("hlog interval: {e}")))?;
            }
            start_ms += duration_ms;
        }
    }
    String::from_utf8(bytes).map_err(|e| RenderError::Histogram(format!("hlog is not UTF-8: {e}")))
}

/// `text` with line breaks turned into spaces, so that a comment stays one line.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// One interval log per endpoint of the report.
///
/// # Errors
/// As [`render`].
pub fn render_all(report: &Report) -> Result<Vec<HlogFile>, RenderError> {
    endpoints(report)
        .into_iter()
        .map(|endpoint| {
            Ok(HlogFile {
                file_name: file_name(&endpoint),
                contents: render(report, &endpoint)?,
                endpoint,
            })
        })
        .collect()
}
