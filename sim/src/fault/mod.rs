//! Faults: what the simulation injects, declared in scenario files.
//!
//! One file per fault kind, each with the same shape: `INFO` (name, family, parameters),
//! `parse` (from a `[[fault]]` table) and `describe`. This module holds the closed family
//! ([`FaultKind`]), the parts every fault shares ([`Window`], probability), and the dispatch.
//! The machinery that makes faults happen lives in `http_rules` and `layer` (HTTP faults,
//! inside server hosts, and in live mode's proxy) and `network` (network, process and time faults, driven between simulation steps).
//!
//! Adding a fault kind: one new file, one arm in [`FaultKind`], one entry in [`CATALOGUE`].

mod carrier_down;
mod clock_skew;
mod crash;
mod drop_response;
mod duplicate;
mod flap;
mod hold;
mod http_error;
pub(crate) mod http_rules;
mod latency;
pub(crate) mod layer;
pub(crate) mod network;
pub(crate) mod params;
mod partition;
mod partition_oneway;
mod rate_limit;
mod receiver_down;
mod reconnect_storm;
mod reset_mid_response;
mod slow_response;
pub(crate) mod webhook;
mod webhook_burst;
mod webhook_delay;
mod webhook_drop;
mod webhook_duplicate;
mod webhook_forge;
mod webhook_reorder;
mod webhook_replay;

use std::fmt;

use toml::Spanned;

pub use carrier_down::CarrierDown;
pub use clock_skew::ClockSkew;
pub use crash::{Crash, CrashTrigger};
pub use drop_response::DropResponse;
pub use duplicate::Duplicate;
pub use flap::Flap;
pub use hold::Hold;
pub use http_error::HttpError;
pub use latency::Latency;
pub use partition::Partition;
pub use partition_oneway::PartitionOneway;
pub use rate_limit::RateLimit;
pub use receiver_down::ReceiverDown;
pub use reconnect_storm::ReconnectStorm;
pub use reset_mid_response::ResetMidResponse;
pub use slow_response::SlowResponse;
pub use webhook::{Direction, WebhookEffect, WebhookRule};
pub use webhook_burst::WebhookBurst;
pub use webhook_delay::WebhookDelay;
pub use webhook_drop::WebhookDrop;
pub use webhook_duplicate::WebhookDuplicate;
pub use webhook_forge::WebhookForge;
pub use webhook_reorder::WebhookReorder;
pub use webhook_replay::WebhookReplay;

use self::params::Params;
use crate::hosts::HostSel;
use crate::scenario::limits::{DURATION_MS_MAX, Limit};
use crate::scenario::raw::RawFault;
use crate::scenario::{ScenarioError, error::closest};

/// Where a fault acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    /// Links between hosts.
    Network,
    /// HTTP exchanges, in front of a server host.
    Http,
    /// Host processes.
    Process,
    /// Host clocks.
    Time,
    /// Webhook deliveries between carrier, service and merchants.
    Webhook,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Network => "network",
            Family::Http => "http",
            Family::Process => "process",
            Family::Time => "time",
            Family::Webhook => "webhook",
        })
    }
}

/// A parameter a fault kind takes.
#[derive(Clone, Copy, Debug)]
pub struct ParamInfo {
    /// Key in the `[[fault]]` table.
    pub name: &'static str,
    /// Whether it must be given.
    pub required: bool,
    /// What it means.
    pub doc: &'static str,
    /// The values a numeric parameter takes (`None` for text), checked where it is read.
    pub limit: Option<Limit>,
}

impl ParamInfo {
    /// A numeric parameter taking `limit`.
    pub(crate) const fn numeric(
        name: &'static str,
        required: bool,
        doc: &'static str,
        limit: Limit,
    ) -> ParamInfo {
        ParamInfo {
            name,
            required,
            doc,
            limit: Some(limit),
        }
    }
}

/// What `shipsim list` says about a fault kind.
#[derive(Clone, Copy, Debug)]
pub struct KindInfo {
    /// `kind = "..."` value.
    pub name: &'static str,
    /// Where it acts.
    pub family: Family,
    /// One line.
    pub summary: &'static str,
    /// Its own parameters (the window keys `start_ms`, `end_ms`, `duration_ms` apply to all).
    pub params: &'static [ParamInfo],
}

/// Every fault kind, in the order `shipsim list` shows them.
pub const CATALOGUE: &[KindInfo] = &[
    Latency::INFO,
    Hold::INFO,
    Partition::INFO,
    PartitionOneway::INFO,
    Flap::INFO,
    ReconnectStorm::INFO,
    HttpError::INFO,
    RateLimit::INFO,
    SlowResponse::INFO,
    ResetMidResponse::INFO,
    DropResponse::INFO,
    Duplicate::INFO,
    Crash::INFO,
    CarrierDown::INFO,
    ClockSkew::INFO,
    WebhookDuplicate::INFO,
    WebhookReorder::INFO,
    WebhookDelay::INFO,
    WebhookDrop::INFO,
    ReceiverDown::INFO,
    WebhookBurst::INFO,
    WebhookReplay::INFO,
    WebhookForge::INFO,
];

/// The `probability` parameter, shared by the kinds that fire per event.
pub(crate) const PROBABILITY: ParamInfo = ParamInfo::numeric(
    "probability",
    false,
    "chance that the fault fires on each eligible event (default 1)",
    Limit::Probability,
);

/// `start_ms`: every kind takes it.
pub(crate) const START_MS: ParamInfo = ParamInfo::numeric(
    "start_ms",
    false,
    "window start, simulated ms from the start of the run (default 0)",
    Limit::duration_ms(0),
);
/// `end_ms`: every kind takes it (or `duration_ms`).
pub(crate) const END_MS: ParamInfo = ParamInfo::numeric(
    "end_ms",
    false,
    "window end, simulated ms, after `start_ms` (default: until the heal)",
    Limit::duration_ms(1),
);
/// `duration_ms`: every kind takes it (or `end_ms`).
pub(crate) const DURATION_MS: ParamInfo = ParamInfo::numeric(
    "duration_ms",
    false,
    "window length, ms; `start_ms + duration_ms` at most one simulated day",
    Limit::duration_ms(1),
);
/// `stream`: every kind takes it.
pub(crate) const STREAM: ParamInfo = ParamInfo::numeric(
    "stream",
    false,
    "the random stream of the fault's decisions, any u64 (default: its position in the file)",
    Limit::int(0, u64::MAX as i128),
);

/// The parameters every fault kind takes besides its own: the window and the stream.
pub const WINDOW_PARAMS: &[ParamInfo] = &[START_MS, END_MS, DURATION_MS, STREAM];

/// The `path_prefix` parameter of HTTP faults.
pub(crate) const PATH_PREFIX: ParamInfo = ParamInfo {
    name: "path_prefix",
    required: false,
    doc: "only requests whose path starts with this (default: every request)",
    limit: None,
};

/// When a fault is active, in simulated ms from the start of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// First active ms.
    pub start_ms: u64,
    /// First inactive ms; `None` means until the faults heal at the end of the workload.
    pub end_ms: Option<u64>,
}

impl Window {
    /// Whether `now_ms` is inside the window.
    #[must_use]
    pub fn contains(&self, now_ms: u64) -> bool {
        now_ms >= self.start_ms && self.end_ms.is_none_or(|end| now_ms < end)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.end_ms {
            Some(end) => write!(f, "{}..{} ms", self.start_ms, end),
            None => write!(f, "{} ms..heal", self.start_ms),
        }
    }
}

/// One fault of a scenario, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultSpec {
    /// Position among the file's `[[fault]]` tables, 0-based.
    pub index: usize,
    /// The fault's own random stream (its original position unless the file says
    /// `stream = N`): every random decision of this fault draws from it alone, so adding,
    /// removing or shrinking another fault never changes this one's choices.
    pub stream: u64,
    /// 1-based line of its table, for messages.
    pub line: usize,
    /// What it does.
    pub kind: FaultKind,
    /// When it is active.
    pub window: Window,
    /// Chance per eligible event, for kinds that fire per event; 1 otherwise.
    pub probability: f64,
}

impl FaultSpec {
    /// One line: kind, what, when, how often.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut text = format!(
            "{} {} during {}",
            self.kind.name(),
            self.kind.describe(),
            self.window
        );
        if self.probability < 1.0 {
            text.push_str(&format!(" with p={}", self.probability));
        }
        text
    }
}

/// The closed family of fault kinds.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// See [`Latency`].
    Latency(Latency),
    /// See [`Hold`].
    Hold(Hold),
    /// See [`Partition`].
    Partition(Partition),
    /// See [`PartitionOneway`].
    PartitionOneway(PartitionOneway),
    /// See [`Flap`].
    Flap(Flap),
    /// See [`ReconnectStorm`].
    ReconnectStorm(ReconnectStorm),
    /// See [`HttpError`].
    HttpError(HttpError),
    /// See [`RateLimit`].
    RateLimit(RateLimit),
    /// See [`SlowResponse`].
    SlowResponse(SlowResponse),
    /// See [`ResetMidResponse`].
    ResetMidResponse(ResetMidResponse),
    /// See [`DropResponse`].
    DropResponse(DropResponse),
    /// See [`Duplicate`].
    Duplicate(Duplicate),
    /// See [`Crash`].
    Crash(Crash),
    /// See [`CarrierDown`].
    CarrierDown(CarrierDown),
    /// See [`ClockSkew`].
    ClockSkew(ClockSkew),
    /// See [`WebhookDuplicate`].
    WebhookDuplicate(WebhookDuplicate),
    /// See [`WebhookReorder`].
    WebhookReorder(WebhookReorder),
    /// See [`WebhookDelay`].
    WebhookDelay(WebhookDelay),
    /// See [`WebhookDrop`].
    WebhookDrop(WebhookDrop),
    /// See [`ReceiverDown`].
    ReceiverDown(ReceiverDown),
    /// See [`WebhookBurst`].
    WebhookBurst(WebhookBurst),
    /// See [`WebhookReplay`].
    WebhookReplay(WebhookReplay),
    /// See [`WebhookForge`].
    WebhookForge(WebhookForge),
}

impl FaultKind {
    /// The kind's catalogue entry.
    #[must_use]
    pub fn info(&self) -> &'static KindInfo {
        match self {
            FaultKind::Latency(_) => &Latency::INFO,
            FaultKind::Hold(_) => &Hold::INFO,
            FaultKind::Partition(_) => &Partition::INFO,
            FaultKind::PartitionOneway(_) => &PartitionOneway::INFO,
            FaultKind::Flap(_) => &Flap::INFO,
            FaultKind::ReconnectStorm(_) => &ReconnectStorm::INFO,
            FaultKind::HttpError(_) => &HttpError::INFO,
            FaultKind::RateLimit(_) => &RateLimit::INFO,
            FaultKind::SlowResponse(_) => &SlowResponse::INFO,
            FaultKind::ResetMidResponse(_) => &ResetMidResponse::INFO,
            FaultKind::DropResponse(_) => &DropResponse::INFO,
            FaultKind::Duplicate(_) => &Duplicate::INFO,
            FaultKind::Crash(_) => &Crash::INFO,
            FaultKind::CarrierDown(_) => &CarrierDown::INFO,
            FaultKind::ClockSkew(_) => &ClockSkew::INFO,
            FaultKind::WebhookDuplicate(_) => &WebhookDuplicate::INFO,
            FaultKind::WebhookReorder(_) => &WebhookReorder::INFO,
            FaultKind::WebhookDelay(_) => &WebhookDelay::INFO,
            FaultKind::WebhookDrop(_) => &WebhookDrop::INFO,
            FaultKind::ReceiverDown(_) => &ReceiverDown::INFO,
            FaultKind::WebhookBurst(_) => &WebhookBurst::INFO,
            FaultKind::WebhookReplay(_) => &WebhookReplay::INFO,
            FaultKind::WebhookForge(_) => &WebhookForge::INFO,
        }
    }

    /// The `kind = "..."` name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.info().name
    }

    /// What it does, without kind and window.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            FaultKind::Latency(f) => f.describe(),
            FaultKind::Hold(f) => f.describe(),
            FaultKind::Partition(f) => f.describe(),
            FaultKind::PartitionOneway(f) => f.describe(),
            FaultKind::Flap(f) => f.describe(),
            FaultKind::ReconnectStorm(f) => f.describe(),
            FaultKind::HttpError(f) => f.describe(),
            FaultKind::RateLimit(f) => f.describe(),
            FaultKind::SlowResponse(f) => f.describe(),
            FaultKind::ResetMidResponse(f) => f.describe(),
            FaultKind::DropResponse(f) => f.describe(),
            FaultKind::Duplicate(f) => f.describe(),
            FaultKind::Crash(f) => f.describe(),
            FaultKind::CarrierDown(f) => f.describe(),
            FaultKind::ClockSkew(f) => f.describe(),
            FaultKind::WebhookDuplicate(f) => f.describe(),
            FaultKind::WebhookReorder(f) => f.describe(),
            FaultKind::WebhookDelay(f) => f.describe(),
            FaultKind::WebhookDrop(f) => f.describe(),
            FaultKind::ReceiverDown(f) => f.describe(),
            FaultKind::WebhookBurst(f) => f.describe(),
            FaultKind::WebhookReplay(f) => f.describe(),
            FaultKind::WebhookForge(f) => f.describe(),
        }
    }

    /// The rule of a webhook delivery fault.
    #[must_use]
    pub fn webhook_rule(&self) -> Option<&WebhookRule> {
        match self {
            FaultKind::WebhookDuplicate(f) => Some(&f.rule),
            FaultKind::WebhookReorder(f) => Some(&f.rule),
            FaultKind::WebhookDelay(f) => Some(&f.rule),
            FaultKind::WebhookDrop(f) => Some(&f.rule),
            FaultKind::WebhookReplay(f) => Some(&f.rule),
            FaultKind::WebhookForge(f) => Some(&f.rule),
            _ => None,
        }
    }

    /// The HTTP rule of an HTTP fault.
    #[must_use]
    pub fn http_rule(&self) -> Option<&http_rules::HttpRule> {
        match self {
            FaultKind::HttpError(f) => Some(&f.rule),
            FaultKind::RateLimit(f) => Some(&f.rule),
            FaultKind::SlowResponse(f) => Some(&f.rule),
            FaultKind::ResetMidResponse(f) => Some(&f.rule),
            FaultKind::DropResponse(f) => Some(&f.rule),
            FaultKind::Duplicate(f) => Some(&f.rule),
            _ => None,
        }
    }

    /// The kind's own parameters as TOML `(key, value)` pairs, for writing repro files.
    #[must_use]
    pub fn params_toml(&self) -> Vec<(&'static str, String)> {
        use crate::scenario::write_quote as q;
        let between =
            |a: &HostSel, b: &HostSel| format!("[{}, {}]", q(&a.to_string()), q(&b.to_string()));
        match self {
            FaultKind::Latency(f) => vec![
                ("between", between(&f.a, &f.b)),
                ("min_ms", f.min_ms.to_string()),
                ("max_ms", f.max_ms.to_string()),
            ],
            FaultKind::Hold(f) => vec![("between", between(&f.a, &f.b))],
            FaultKind::Partition(f) => vec![("between", between(&f.a, &f.b))],
            FaultKind::PartitionOneway(f) => vec![
                ("from", q(&f.from.to_string())),
                ("to", q(&f.to.to_string())),
            ],
            FaultKind::Flap(f) => vec![
                ("target", q(&f.target.to_string())),
                ("period_ms", f.period_ms.to_string()),
            ],
            FaultKind::ReconnectStorm(f) => vec![("target", q(&f.target.to_string()))],
            FaultKind::HttpError(f) => f.rule.params_toml(),
            FaultKind::RateLimit(f) => f.rule.params_toml(),
            FaultKind::SlowResponse(f) => f.rule.params_toml(),
            FaultKind::ResetMidResponse(f) => f.rule.params_toml(),
            FaultKind::DropResponse(f) => f.rule.params_toml(),
            FaultKind::Duplicate(f) => f.rule.params_toml(),
            FaultKind::Crash(f) => {
                let mut params = vec![
                    ("target", q(&f.target.to_string())),
                    ("restart_after_ms", f.restart_after_ms.to_string()),
                ];
                if let CrashTrigger::AtPoint { point, times } = f.trigger {
                    params.push(("point", q(point.name())));
                    params.push(("times", times.to_string()));
                }
                params
            }
            FaultKind::CarrierDown(_) => vec![],
            FaultKind::ClockSkew(f) => vec![
                ("target", q(&f.target.to_string())),
                ("offset_ms", f.offset_ms.to_string()),
                ("drift_ppm", f.drift_ppm.to_string()),
            ],
            FaultKind::WebhookDuplicate(f) => f.rule.params_toml(),
            FaultKind::WebhookReorder(f) => f.rule.params_toml(),
            FaultKind::WebhookDelay(f) => f.rule.params_toml(),
            FaultKind::WebhookDrop(f) => f.rule.params_toml(),
            FaultKind::WebhookReplay(f) => f.rule.params_toml(),
            FaultKind::WebhookForge(f) => f.rule.params_toml(),
            FaultKind::ReceiverDown(_) => vec![],
            FaultKind::WebhookBurst(f) => vec![("events", f.events.to_string())],
        }
    }

    /// Whether the kind fires per event and so takes `probability`.
    fn takes_probability(&self) -> bool {
        self.info().params.iter().any(|p| p.name == "probability")
    }
}

/// What parsing a fault needs to know about the rest of the scenario.
pub(crate) struct ParseContext<'a> {
    pub file: &'a str,
    pub source: &'a str,
    pub clients: u32,
    /// The target's server hosts besides `service`.
    pub hosts: &'a [String],
    pub webhooks: Option<crate::scenario::WebhookSettings>,
}

/// Validates one `[[fault]]` table.
pub(crate) fn parse(
    raw: &Spanned<RawFault>,
    index: usize,
    context: &ParseContext<'_>,
) -> Result<FaultSpec, ScenarioError> {
    let kind_name = raw.get_ref().kind.get_ref().as_str();
    let kind_span = raw.get_ref().kind.span();
    let Some(info) = CATALOGUE.iter().find(|k| k.name == kind_name) else {
        let names = CATALOGUE.iter().map(|k| k.name);
        let mut error = ScenarioError::at(
            context.file,
            context.source,
            kind_span,
            format!("unknown fault kind `{kind_name}`"),
        );
        error = match closest(kind_name, names) {
            Some(guess) => error.with_hint(format!(
                "did you mean `{guess}`? (`shipsim list --faults` lists them all)"
            )),
            None => error.with_hint("`shipsim list --faults` lists the fault kinds"),
        };
        return Err(error);
    };
    let mut params = Params::new(raw, info.name, info.params, context);
    let window = parse_window(&mut params)?;
    let stream = params
        .ranged(&STREAM, Params::u64)?
        .map_or(index as u64, |(stream, _)| stream);
    let kind = match info.name {
        "latency" => FaultKind::Latency(Latency::parse(&mut params)?),
        "hold" => FaultKind::Hold(Hold::parse(&mut params)?),
        "partition" => FaultKind::Partition(Partition::parse(&mut params)?),
        "partition_oneway" => FaultKind::PartitionOneway(PartitionOneway::parse(&mut params)?),
        "flap" => FaultKind::Flap(Flap::parse(&mut params)?),
        "reconnect_storm" => {
            FaultKind::ReconnectStorm(ReconnectStorm::parse(&mut params, &window)?)
        }
        "http_error" => FaultKind::HttpError(HttpError::parse(&mut params)?),
        "rate_limit" => FaultKind::RateLimit(RateLimit::parse(&mut params)?),
        "slow_response" => FaultKind::SlowResponse(SlowResponse::parse(&mut params)?),
        "reset_mid_response" => FaultKind::ResetMidResponse(ResetMidResponse::parse(&mut params)?),
        "drop_response" => FaultKind::DropResponse(DropResponse::parse(&mut params)?),
        "duplicate" => FaultKind::Duplicate(Duplicate::parse(&mut params)?),
        "crash" => FaultKind::Crash(Crash::parse(&mut params, &window)?),
        "carrier_down" => FaultKind::CarrierDown(CarrierDown::parse(&mut params)?),
        "clock_skew" => FaultKind::ClockSkew(ClockSkew::parse(&mut params)?),
        "webhook_duplicate" => FaultKind::WebhookDuplicate(WebhookDuplicate::parse(&mut params)?),
        "webhook_reorder" => FaultKind::WebhookReorder(WebhookReorder::parse(&mut params)?),
        "webhook_delay" => FaultKind::WebhookDelay(WebhookDelay::parse(&mut params)?),
        "webhook_drop" => FaultKind::WebhookDrop(WebhookDrop::parse(&mut params)?),
        "receiver_down" => FaultKind::ReceiverDown(ReceiverDown::parse(&mut params)?),
        "webhook_burst" => FaultKind::WebhookBurst(WebhookBurst::parse(&mut params)?),
        "webhook_replay" => FaultKind::WebhookReplay(WebhookReplay::parse(&mut params)?),
        "webhook_forge" => FaultKind::WebhookForge(WebhookForge::parse(&mut params)?),
        other => unreachable!("catalogue entry `{other}` has no parser"),
    };
    let probability = if kind.takes_probability() {
        parse_probability(&mut params)?
    } else {
        1.0
    };
    params.finish()?;
    let line = context.source[..raw.span().start.min(context.source.len())]
        .matches('\n')
        .count()
        + 1;
    Ok(FaultSpec {
        index,
        stream,
        line,
        kind,
        window,
        probability,
    })
}

fn parse_window(params: &mut Params<'_>) -> Result<Window, ScenarioError> {
    let start_ms = params.ranged(&START_MS, Params::u64)?.map_or(0, |(v, _)| v);
    let end = params.ranged(&END_MS, Params::u64)?;
    let duration = params.ranged(&DURATION_MS, Params::u64)?;
    let end_ms = match (end, duration) {
        (Some(_), Some((_, span))) => {
            return Err(params
                .error(span, "give `end_ms` or `duration_ms`, not both")
                .with_hint("`duration_ms` is `end_ms - start_ms`"));
        }
        (Some((end, span)), None) => {
            if end <= start_ms {
                return Err(params.error(
                    span,
                    format!("the window ends ({end} ms) before it starts ({start_ms} ms)"),
                ));
            }
            Some(end)
        }
        (None, Some((duration, span))) => {
            // Both at most one day (their limits): the sum cannot overflow.
            let end = start_ms
                .checked_add(duration)
                .expect("start_ms and duration_ms are at most DURATION_MS_MAX each");
            if end > DURATION_MS_MAX {
                return Err(params
                    .error(
                        span,
                        format!("the window ends at {end} ms, after one simulated day"),
                    )
                    .with_hint(format!(
                        "`start_ms + duration_ms` must be at most {DURATION_MS_MAX}"
                    )));
            }
            Some(end)
        }
        (None, None) => None,
    };
    Ok(Window { start_ms, end_ms })
}

fn parse_probability(params: &mut Params<'_>) -> Result<f64, ScenarioError> {
    Ok(params
        .ranged(&PROBABILITY, Params::f64)?
        .map_or(1.0, |(probability, _)| probability))
}

/// A target selector's display, for `describe`.
pub(crate) fn sides(a: &HostSel, b: &HostSel) -> String {
    format!("{a} <-> {b}")
}
