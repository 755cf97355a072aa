//! `summary.json`.

use crate::RenderError;
use crate::model::Report;

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
