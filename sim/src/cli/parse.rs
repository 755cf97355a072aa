//! Argument parsers shared by the subcommands' `#[arg(value_parser = ...)]`.

use std::time::Duration;

use shipsim_system::bugs::Bug;

use crate::live::proxy::ProxiedHost;
use crate::scenario::SeedRange;

/// `CALLER=URL`, as `shipsim serve --webhook-url` takes it.
pub(super) fn parse_webhook_url(text: &str) -> Result<(String, String), String> {
    let Some((caller, url)) = text.split_once('=') else {
        return Err(format!(
            "`{text}` is not CALLER=URL (e.g. merchant-0=http://127.0.0.1:9000/hooks)"
        ));
    };
    if caller.is_empty() {
        return Err(format!("`{text}`: the caller is empty"));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("`{url}` is not an http:// or https:// URL"));
    }
    Ok((caller.to_string(), url.to_string()))
}

pub(super) fn parse_host(text: &str) -> Result<ProxiedHost, String> {
    let valid = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with("client");
    if valid {
        Ok(ProxiedHost::named(text))
    } else {
        Err(format!(
            "`{text}` is not a server host: `service`, or a downstream's name such as `carrier`"
        ))
    }
}

/// `NAME=URL`, as `shipsim live --downstream` takes it.
/// `--wait SECONDS`: a whole or decimal number of seconds, at most an hour.
pub(super) fn parse_wait(text: &str) -> Result<Duration, String> {
    const WAIT_SECS_MAX: f64 = 3600.0;
    match text.parse::<f64>() {
        Ok(secs) if (0.0..=WAIT_SECS_MAX).contains(&secs) => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!(
            "`{text}` is not a number of seconds from 0 to {WAIT_SECS_MAX}"
        )),
    }
}

pub(super) fn parse_downstream_url(text: &str) -> Result<(String, String), String> {
    let Some((name, url)) = text.split_once('=') else {
        return Err(format!(
            "`{text}` is not NAME=URL (e.g. carrier=http://127.0.0.1:9100)"
        ));
    };
    if name.is_empty() {
        return Err(format!("`{text}`: the downstream's name is empty"));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("`{url}` is not an http:// or https:// URL"));
    }
    Ok((name.to_string(), url.to_string()))
}

pub(super) fn parse_threshold(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{text}` is not a percentage"))?;
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(format!("`{text}`: the threshold must be a percentage >= 0"))
    }
}

pub(super) fn parse_seeds(text: &str) -> Result<SeedRange, String> {
    SeedRange::parse(text)
}

/// `--seed N`: one seed, as `--seeds N` reads it (so `u64::MAX`, which has no one-seed
/// range, is refused here rather than crashing the sweep).
pub(super) fn parse_seed(text: &str) -> Result<u64, String> {
    if text.contains("..") {
        return Err(format!(
            "`{text}`: --seed takes one seed (--seeds takes a range)"
        ));
    }
    SeedRange::parse(text).map(|range| range.start())
}

pub(super) fn parse_bug(text: &str) -> Result<Bug, String> {
    text.parse::<Bug>().map_err(|e| e.to_string())
}
