//! `summary.json`: of a run ([`render`], read back by [`parse`]) and of a webhook
//! receiver's run ([`receiver`]).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::RenderError;
use crate::model::{ReceiverReport, Report};

/// Renders the report as pretty JSON with a trailing newline.
///
/// # Errors
/// [`RenderError::Json`] if serialisation fails.
pub fn render(report: &Report) -> Result<String, RenderError> {
    let mut text =
        serde_json::to_string_pretty(report).map_err(|e| RenderError::Json(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

/// Reads a `summary.json`, checking its schema version.
///
/// # Errors
/// [`RenderError::Json`] if the text is not a report of a schema this build reads.
pub fn parse(text: &str) -> Result<Report, RenderError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| RenderError::Json(e.to_string()))?;
    let version = value
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| RenderError::Json("no schema_version field".into()))?;
    if version != u64::from(crate::model::SCHEMA_VERSION) {
        return Err(RenderError::Json(format!(
            "schema_version {version} is not supported (this build reads {})",
            crate::model::SCHEMA_VERSION
        )));
    }
    serde_json::from_value(value).map_err(|e| RenderError::Json(e.to_string()))
}

/// Renders a webhook receiver's run as its `summary.json`: the receiver, seeds run, every
/// verdict's name, every failure (verdict, seed, evidence, repro file) and the burst latency,
/// as pretty JSON without a trailing newline.
///
/// # Errors
/// [`RenderError::Json`] if serialisation fails.
pub fn receiver(report: &ReceiverReport) -> Result<String, RenderError> {
    let summary = ReceiverSummary {
        failures: report
            .failures
            .iter()
            .map(|failure| ReceiverSummaryFailure {
                evidence: &failure.evidence,
                repro: failure.repro.as_deref(),
                seed: failure.seed,
                verdict: &failure.verdict,
            })
            .collect(),
        latency_ms_burst: report.latency_ms_burst.as_ref(),
        receiver: &report.receiver,
        seeds_run: report.seeds_run,
        verdicts: report.verdicts.iter().map(|v| v.name.as_str()).collect(),
    };
    serde_json::to_string_pretty(&summary).map_err(|e| RenderError::Json(e.to_string()))
}

/// The shape of a receiver's `summary.json`, a view of [`ReceiverReport`]. Fields are in
/// alphabetical order: the file was first written through `serde_json::Value`, whose
/// objects sort their keys, and its bytes are kept.
#[derive(Serialize)]
struct ReceiverSummary<'a> {
    failures: Vec<ReceiverSummaryFailure<'a>>,
    latency_ms_burst: Option<&'a BTreeMap<String, u64>>,
    receiver: &'a str,
    seeds_run: u64,
    verdicts: Vec<&'a str>,
}

/// One failure in a receiver's `summary.json`.
#[derive(Serialize)]
struct ReceiverSummaryFailure<'a> {
    evidence: &'a [String],
    repro: Option<&'a str>,
    seed: u64,
    verdict: &'a str,
}
