//! Faults: what the simulation injects, declared in scenario files.
//!
//! A fault is one file: its struct, and its `Fault` impl holding the catalogue entry
//! (`INFO`: name, family, parameters), `parse` (from a `[[fault]]` table), `describe`,
//! `params_toml` (writing it back) and `effect`. The effect says how it acts, by family as
//! the type system sees them (`Effect`): network, process and time faults implement
//! `driver::DriverEffect` in their file (started, ticked and ended between simulation
//! steps by `driver::NetDriver`); HTTP faults hand an `http_rules::HttpRule` to the
//! layer in front of server hosts (and live mode's proxy); webhook delivery faults hand a
//! [`WebhookRule`] to the webhook transports.
//!
//! Adding a fault kind: one new file implementing `Fault` (and `DriverEffect` when the
//! driver applies it), one line in the `faults!` list below. The list makes the closed
//! family [`FaultKind`], the [`CATALOGUE`] and the parser table together, so none of them
//! can miss a kind; the test `every_catalogued_fault_parses_describes_writes_back_and_fires`
//! (below) holds each kind to its example.

pub(crate) mod driver;
pub(crate) mod http_rules;
pub(crate) mod layer;
pub(crate) mod params;
pub(crate) mod webhook;

use std::fmt;

use toml::Spanned;

pub use crash::CrashTrigger;
pub use webhook::{Direction, WebhookEffect, WebhookRule};

use self::params::Params;
use crate::run::hosts::HostSel;
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

/// One kind of fault: its declaration, parsing, description, writing back and effect.
///
/// Implemented once per file of this folder and registered by one line of `faults!`.
pub(crate) trait Fault: Sized {
    /// Its catalogue entry: name, family, parameters.
    const INFO: KindInfo;

    /// A `[[fault]]` table body (without `kind`) using its parameters, which parses in
    /// the test scenario of `fault::tests` and fires in its first seed: the kind's proof
    /// that it parses, describes, writes back and acts.
    const EXAMPLE: &'static str;

    /// Reads its own parameters from a `[[fault]]` table whose window is `window`.
    ///
    /// # Errors
    /// A located [`ScenarioError`] for a parameter that is missing, mistyped or out of range.
    fn parse(params: &mut Params<'_>, window: &Window) -> Result<Self, ScenarioError>;

    /// What it does, without kind and window.
    fn describe(&self) -> String;

    /// Its own parameters as TOML `(key, value)` pairs, for writing repro files; parsing
    /// them gives the fault back.
    fn params_toml(&self) -> Vec<(&'static str, String)>;

    /// How it acts.
    fn effect(&self) -> Effect<'_>;
}

/// How a fault acts: the families as the machinery sees them.
pub(crate) enum Effect<'a> {
    /// Network, process and time faults (and the webhook burst): applied by the driver
    /// between simulation steps.
    Driver(&'a dyn driver::DriverEffect),
    /// HTTP faults: a rule applied to each exchange in front of a server host.
    Http(&'a http_rules::HttpRule),
    /// Webhook delivery faults: a rule applied to each delivery by the webhook transports.
    Webhook(&'a WebhookRule),
}

/// A kind's parser, as the catalogue's twin table holds it.
type ParseFn = fn(&mut Params<'_>, &Window) -> Result<FaultKind, ScenarioError>;

fn parse_as<F: Fault + Into<FaultKind>>(
    params: &mut Params<'_>,
    window: &Window,
) -> Result<FaultKind, ScenarioError> {
    F::parse(params, window).map(Into::into)
}

/// The `describe`, `params_toml` and `effect` of a fault that is one rule (`rule`: an
/// `HttpRule` for `Http`, a `WebhookRule` for `Webhook`): all three are the rule's.
macro_rules! rule_fault {
    ($family:ident) => {
        fn describe(&self) -> String {
            self.rule.describe()
        }

        fn params_toml(&self) -> Vec<(&'static str, String)> {
            self.rule.params_toml()
        }

        fn effect(&self) -> super::Effect<'_> {
            super::Effect::$family(&self.rule)
        }
    };
}

/// The registration list: each line a kind's struct and its file, in the order
/// `shipsim list` shows them (and `explore` draws from).
macro_rules! faults {
    ($($kind:ident in $file:ident,)*) => {
        $(mod $file;)*
        $(pub use $file::$kind;)*

        /// The closed family of fault kinds.
        #[derive(Clone, Debug, PartialEq)]
        pub enum FaultKind {
            $(
                #[doc = concat!("See [`", stringify!($kind), "`].")]
                $kind($kind),
            )*
        }

        $(
            impl From<$kind> for FaultKind {
                fn from(fault: $kind) -> Self {
                    FaultKind::$kind(fault)
                }
            }
        )*

        /// Every fault kind, in the order `shipsim list` shows them.
        pub const CATALOGUE: &[KindInfo] = &[$(<$kind as Fault>::INFO,)*];

        /// The parser of each [`CATALOGUE`] entry, at the same index.
        const PARSERS: &[ParseFn] = &[$(parse_as::<$kind>,)*];

        /// A working `[[fault]]` table body (without `kind`) for each [`CATALOGUE`]
        /// entry, at the same index: each parses, writes back and fires in a scenario
        /// with webhooks on (the test `every_catalogued_fault_parses_describes_writes_back_and_fires`).
        pub const EXAMPLES: &[&str] = &[$(<$kind as Fault>::EXAMPLE,)*];

        impl FaultKind {
            /// The kind's catalogue entry.
            #[must_use]
            pub fn info(&self) -> &'static KindInfo {
                match self {
                    $(FaultKind::$kind(_) => &<$kind as Fault>::INFO,)*
                }
            }

            /// What it does, without kind and window.
            #[must_use]
            pub fn describe(&self) -> String {
                match self {
                    $(FaultKind::$kind(fault) => fault.describe(),)*
                }
            }

            /// The kind's own parameters as TOML `(key, value)` pairs, for writing repro files.
            #[must_use]
            pub fn params_toml(&self) -> Vec<(&'static str, String)> {
                match self {
                    $(FaultKind::$kind(fault) => fault.params_toml(),)*
                }
            }

            /// How it acts.
            pub(crate) fn effect(&self) -> Effect<'_> {
                match self {
                    $(FaultKind::$kind(fault) => fault.effect(),)*
                }
            }
        }
    };
}

faults! {
    Latency in latency,
    Hold in hold,
    Partition in partition,
    PartitionOneway in partition_oneway,
    Flap in flap,
    ReconnectStorm in reconnect_storm,
    HttpError in http_error,
    RateLimit in rate_limit,
    SlowResponse in slow_response,
    ResetMidResponse in reset_mid_response,
    DropResponse in drop_response,
    Duplicate in duplicate,
    Crash in crash,
    CarrierDown in carrier_down,
    ClockSkew in clock_skew,
    WebhookDuplicate in webhook_duplicate,
    WebhookReorder in webhook_reorder,
    WebhookDelay in webhook_delay,
    WebhookDrop in webhook_drop,
    ReceiverDown in receiver_down,
    WebhookBurst in webhook_burst,
    WebhookReplay in webhook_replay,
    WebhookForge in webhook_forge,
}

const _: () = assert!(CATALOGUE.len() == PARSERS.len());

impl FaultKind {
    /// The `kind = "..."` name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.info().name
    }

    /// The rule of a webhook delivery fault.
    #[must_use]
    pub fn webhook_rule(&self) -> Option<&WebhookRule> {
        match self.effect() {
            Effect::Webhook(rule) => Some(rule),
            Effect::Driver(_) | Effect::Http(_) => None,
        }
    }

    /// The HTTP rule of an HTTP fault.
    #[must_use]
    pub fn http_rule(&self) -> Option<&http_rules::HttpRule> {
        match self.effect() {
            Effect::Http(rule) => Some(rule),
            Effect::Driver(_) | Effect::Webhook(_) => None,
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
    let Some(position) = CATALOGUE.iter().position(|k| k.name == kind_name) else {
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
    let info = &CATALOGUE[position];
    let mut params = Params::new(raw, info.name, info.params, context);
    let window = parse_window(&mut params)?;
    let stream = params
        .ranged(&STREAM, Params::u64)?
        .map_or(index as u64, |(stream, _)| stream);
    let kind = PARSERS[position](&mut params, &window)?;
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

/// A `between = [a, b]` value, for `params_toml`.
pub(crate) fn between_toml(a: &HostSel, b: &HostSel) -> String {
    use crate::scenario::write_quote as quote;
    format!("[{}, {}]", quote(&a.to_string()), quote(&b.to_string()))
}

#[cfg(test)]
mod tests {
    use super::{CATALOGUE, EXAMPLES};
    use crate::scenario::Scenario;
    use shipsim_system::bugs::BugSet;

    /// One scenario holding one fault, with every kind of traffic a fault may act on.
    fn scenario_with(kind: &str, example: &str) -> Scenario {
        let text = format!(
            r#"
[hosts]
clients = 2
callers = 2

[workload]
operations = 20
think_ms = [0, 20]

[webhooks]
tracking = true
outbound = true

[[fault]]
kind = "{kind}"
{example}
"#
        );
        Scenario::parse("fault-example.toml", kind, &text)
            .unwrap_or_else(|error| panic!("the example of `{kind}` parses: {error}"))
    }

    /// The registration list is the only list of kinds: this proves that each entry is
    /// whole, by its own example. Every catalogued kind parses from its example, describes
    /// itself, writes back to TOML that parses to the same fault, and fires in a run of the
    /// reference target (the driver, the HTTP layer, the webhook transports or a host
    /// observer records it firing).
    #[test]
    fn every_catalogued_fault_parses_describes_writes_back_and_fires() {
        assert_eq!(CATALOGUE.len(), EXAMPLES.len());
        let target = crate::reference::target();
        for (info, example) in CATALOGUE.iter().zip(EXAMPLES) {
            let scenario = scenario_with(info.name, example);
            let fault = &scenario.faults[0];
            assert_eq!(fault.kind.name(), info.name);
            assert!(
                fault.describe().starts_with(info.name),
                "`{}` describes itself: {}",
                info.name,
                fault.describe()
            );
            let written = scenario.to_toml();
            let again = Scenario::parse("written.toml", info.name, &written)
                .unwrap_or_else(|error| panic!("`{}` writes back:\n{written}\n{error}", info.name));
            let back = &again.faults[0];
            assert_eq!(
                (&back.kind, back.window, back.probability, back.stream),
                (&fault.kind, fault.window, fault.probability, fault.stream),
                "`{}` round-trips",
                info.name
            );
            assert_eq!(
                again.to_toml(),
                written,
                "`{}` writes back the same",
                info.name
            );
            let run = crate::run_seed(&target, &scenario, 1, &BugSet::none());
            assert!(
                run.fired.get(&0).is_some_and(|&times| times > 0),
                "`{}` fires in seed 1 (fired: {:?})",
                info.name,
                run.fired
            );
        }
    }
}
