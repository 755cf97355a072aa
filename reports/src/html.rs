//! `index.html`: the report a person opens. One self-contained file: inline CSS and SVG,
//! no script, no network. The markup is XHTML-compatible (every element closed, every
//! attribute quoted, every text escaped), so XML tools can check it.
//!
//! Per scenario it shows pass/fail per oracle and budget, requests by status, retries,
//! replays and absorbed duplicates, latency per endpoint (percentile curves from p50 to
//! p99.9 on a log axis and histograms, fault windows against quiet windows), the faults,
//! a timeline of every failing seed's violations, and the seeds with their trace hashes.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::RenderError;
use crate::histogram::{HistogramKind, decode};
use crate::judge;
use crate::markup::{duration_us, escape, percent, seed_set, slug};
use crate::model::{
    BugDetection, LatencySummary, ReceiverReport, Report, ScenarioReport, TimelineKind,
    ViolationReport,
};
use crate::svg::{self, Series};

/// Seed ranges listed in a scenario heading before the rest are counted.
const SEED_RANGES_SHOWN_MAX: usize = 8;

/// Violations per scenario drawn with their timeline (an SVG and a text table of up to
/// 200 entries each, ~100 KB): enough to see the pattern, small enough to open quickly.
const TIMELINES_PER_SCENARIO_MAX: usize = 6;

/// Timelines drawn in the whole page, for the same reason: a sweep where every scenario
/// fails must still give a page a browser opens in a second.
const TIMELINES_MAX: usize = 40;

/// Rows of a scenario's seed table (failing seeds first); summary.json has every seed.
const SEED_ROWS_MAX: usize = 200;

/// The page's style sheet. Colours: green passes, red fails, orange is "under a fault",
/// blue is "quiet".
const STYLE: &str = r#"
:root { --pass: #2b8a3e; --fail: #c92a2a; --fault: #e8590c; --quiet: #1971c2; --all: #495057; --muted: #868e96; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #212529; margin: 0; background: #f8f9fa; }
header, main, footer { max-width: 1240px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 20px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 0 0 4px; }
h3 { font-size: 16px; margin: 20px 0 8px; border-bottom: 1px solid #dee2e6; padding-bottom: 4px; }
h4 { font-size: 14px; margin: 12px 0 4px; font-family: ui-monospace, Menlo, Consolas, monospace; }
section { background: #fff; border: 1px solid #dee2e6; border-radius: 6px; padding: 16px 20px; margin: 16px 0; }
.meta, .muted { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; font-weight: 600; vertical-align: middle; }
.badge.pass { background: var(--pass); }
.badge.fail { background: var(--fail); }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { border: 1px solid #dee2e6; border-radius: 6px; padding: 8px 12px; min-width: 130px; background: #fff; }
.card b { display: block; font-size: 20px; }
.card.bad b { color: var(--fail); }
table { border-collapse: collapse; margin: 6px 0; }
th, td { padding: 3px 8px; border-bottom: 1px solid #e9ecef; text-align: right; white-space: nowrap; }
th { background: #f1f3f5; font-weight: 600; white-space: normal; vertical-align: bottom; }
.scroll { overflow-x: auto; }
th:first-child, td:first-child, td.text, th.text { text-align: left; }
td.text { white-space: normal; }
td.pass { color: var(--pass); font-weight: 600; }
td.fail { color: var(--fail); font-weight: 600; }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px; }
pre { background: #f1f3f5; padding: 6px 10px; border-radius: 4px; overflow-x: auto; }
.endpoints { display: flex; flex-wrap: wrap; gap: 8px 24px; }
.endpoint { flex: 1 1 540px; }
.charts { display: flex; flex-wrap: wrap; gap: 4px; }
.legend-html span { display: inline-block; margin-right: 14px; }
.legend-html i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: baseline; }
.violation { border-left: 4px solid var(--fail); padding: 4px 12px; margin: 10px 0; }
.violation .oracle { font-weight: 600; color: var(--fail); }
details > summary { cursor: pointer; }
svg.chart { background: #fff; display: block; }
svg .frame { fill: none; stroke: #ced4da; }
svg .grid { stroke: #e9ecef; stroke-width: 1; }
svg .tick, svg .legend, svg .empty, svg .axis, svg .row-label { font: 11px system-ui, sans-serif; fill: #495057; }
svg .axis { fill: var(--muted); }
svg .row-label.involved { font-weight: 700; fill: var(--fail); }
svg .row-rule { stroke: #f1f3f5; }
svg .curve { fill: none; stroke-width: 2; }
svg .curve.s-all { stroke: var(--all); stroke-dasharray: 5 3; }
svg .curve.s-fault { stroke: var(--fault); }
svg .curve.s-quiet { stroke: var(--quiet); }
svg .curve.s-attempt { stroke: #862e9c; stroke-dasharray: 2 2; }
svg .dot.s-all, svg .bar.s-all, svg .swatch.s-all, .legend-html i.s-all { fill: var(--all); background: var(--all); }
svg .dot.s-fault, svg .bar.s-fault, svg .swatch.s-fault, .legend-html i.s-fault { fill: var(--fault); background: var(--fault); }
svg .dot.s-quiet, svg .bar.s-quiet, svg .swatch.s-quiet, .legend-html i.s-quiet { fill: var(--quiet); background: var(--quiet); }
svg .dot.s-attempt, svg .swatch.s-attempt { fill: #862e9c; }
.st-2xx { fill: #37b24d; background: #37b24d; }
.st-4xx { fill: #f59f00; background: #f59f00; }
.st-429 { fill: #7048e8; background: #7048e8; }
.st-5xx { fill: #e03131; background: #e03131; }
.st-timeout { fill: #868e96; background: #868e96; }
.st-transport { fill: #343a40; background: #343a40; }
svg .fault-band { fill: var(--fault); opacity: 0.12; }
svg .op-span { fill: #ced4da; }
svg .attempt { stroke: #fff; stroke-width: 0.5; }
svg .o-ok { fill: #37b24d; }
svg .o-wait { fill: #7048e8; }
svg .o-rejected { fill: #f59f00; }
svg .o-error { fill: #e03131; }
svg .mark-invoke { fill: #495057; }
svg .mark-done { stroke: #212529; stroke-width: 1; }
svg .mark-fault { fill: var(--fault); }
svg .mark-fault-end { fill: none; stroke: var(--fault); }
svg .mark-crash { stroke: var(--fail); stroke-width: 2.5; fill: none; }
svg .mark-heal { stroke: var(--pass); stroke-width: 2; stroke-dasharray: 4 3; }
svg .mark-event { fill: #1098ad; }
footer { color: var(--muted); padding-bottom: 30px; }
"#;

/// Renders the whole page.
///
/// # Errors
/// [`RenderError::Histogram`] if a stored histogram cannot be decoded.
pub fn render(report: &Report) -> Result<String, RenderError> {
    let mut out = String::with_capacity(64 * 1024);
    let passed = report.passed();
    let verdict = if passed { "PASS" } else { "FAIL" };
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" lang="en">
<head>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
<title>shipsim report: {verdict}</title>
<style>{STYLE}</style>
</head>
<body>
"#
    );
    header(&mut out, report);
    out.push_str("<main>\n");
    if !report.is_hunt() {
        overview(&mut out, report);
    }
    if !report.bugs.is_empty() {
        bugs(&mut out, &report.bugs);
    }
    let mut timelines_left = TIMELINES_MAX;
    let (proofs, system): (Vec<_>, Vec<_>) = report
        .scenarios
        .iter()
        .enumerate()
        .partition(|(_, s)| s.expected_to_fail);
    for (index, scenario) in system {
        scenario_section(&mut out, index, scenario, &mut timelines_left)?;
    }
    if !proofs.is_empty() {
        out.push_str("<div id=\"regressions\"><h2>Caught planted bugs</h2><p class=\"muted\">Regression scenarios that switch on a planted bug: each must fail every seed, proving the oracles still catch that bug. Their violations are the planted bug's, not the system's, and the overview's totals leave them out.</p>\n");
        for (index, scenario) in proofs {
            scenario_section(&mut out, index, scenario, &mut timelines_left)?;
        }
        out.push_str("</div>\n");
    }
    out.push_str("</main>\n");
    let _ = write!(
        out,
        "<footer><p>Written by {} (summary.json schema {}). Everything on this page is identical for identical seeds except the wall-clock line at the top. Latencies are simulated milliseconds.</p></footer>\n</body>\n</html>\n",
        escape(&report.tool),
        report.schema_version
    );
    Ok(out)
}

fn badge(passed: bool) -> &'static str {
    if passed {
        r#"<span class="badge pass">PASS</span>"#
    } else {
        r#"<span class="badge fail">FAIL</span>"#
    }
}

/// A scenario's badge: a regression proof passes by being caught.
fn scenario_badge(s: &ScenarioReport) -> &'static str {
    match (s.expected_to_fail, s.passed) {
        (false, passed) => badge(passed),
        (true, true) => r#"<span class="badge pass">CAUGHT</span>"#,
        (true, false) => r#"<span class="badge fail">ESCAPED</span>"#,
    }
}

/// The class and word of a scenario's result cell.
fn verdict(s: &ScenarioReport) -> (&'static str, &'static str) {
    match (s.expected_to_fail, s.passed) {
        (false, true) => ("pass", "pass"),
        (false, false) => ("fail", "FAIL"),
        (true, true) => ("pass", "caught"),
        (true, false) => ("fail", "ESCAPED"),
    }
}

fn header(out: &mut String, report: &Report) {
    let run = &report.run;
    let bugs = if run.bugs.is_empty() {
        "none".to_string()
    } else {
        run.bugs.join(", ")
    };
    let _ = writeln!(
        out,
        "<header><h1>shipsim report {}</h1><p class=\"meta\">seeds <code>{}</code> · planted bugs: {} · shard: {} · determinism check: {} · {} job(s)</p><p class=\"meta\">wall clock: {:.1} s, {:.1} seeds/s, simulated time {:.0}x faster than wall time</p></header>",
        badge(report.passed()),
        escape(&run.seeds),
        escape(&bugs),
        escape(run.shard.as_deref().unwrap_or("none (whole sweep)")),
        if run.check_determinism { "on" } else { "off" },
        run.jobs,
        run.wall.elapsed_ms as f64 / 1_000.0,
        run.wall.seeds_per_second,
        run.wall.sim_speedup
    );
}

fn card(out: &mut String, label: &str, value: u64, bad_when_nonzero: bool) {
    let class = if bad_when_nonzero && value > 0 {
        "card bad"
    } else {
        "card"
    };
    let _ = write!(
        out,
        "<div class=\"{class}\"><b>{value}</b>{}</div>",
        escape(label)
    );
}

fn overview(out: &mut String, report: &Report) {
    let totals = &report.totals;
    out.push_str("<section id=\"overview\"><h2>Overview</h2><div class=\"cards\">");
    card(out, "scenarios", totals.scenarios, false);
    card(out, "scenarios failed", totals.scenarios_failed, true);
    card(out, "seeds run", totals.seeds_run, false);
    card(out, "seeds failed", totals.seeds_failed, true);
    card(out, "violations", totals.violations, true);
    card(out, "duplicate shipments", totals.duplicate_shipments, true);
    card(out, "duplicate labels", totals.duplicate_labels, true);
    card(out, "operations", totals.operations, false);
    card(
        out,
        "ambiguous operations",
        totals.ambiguous_operations,
        false,
    );
    card(
        out,
        "duplicate deliveries absorbed",
        totals.duplicate_deliveries_absorbed,
        false,
    );
    let proofs: Vec<(usize, &ScenarioReport)> = report
        .scenarios
        .iter()
        .enumerate()
        .filter(|(_, s)| s.expected_to_fail)
        .collect();
    out.push_str("</div>\n");
    if !proofs.is_empty() {
        let _ = write!(
            out,
            "<p class=\"muted\">These totals leave out the {} regression scenario(s) that prove planted bugs are caught (<a href=\"#regressions\">below</a>): their violations are expected.</p>",
            proofs.len()
        );
    }
    out.push_str("<div class=\"scroll\"><table><thead><tr><th>scenario</th><th>result</th><th>failed seeds</th><th>violations</th><th>ops</th><th>ambig.</th><th>requests: 2xx / 4xx / 429 / 5xx / timeout / transport</th><th>retries</th><th>replays</th><th>absorbed</th><th>dup. ship / label</th></tr></thead><tbody>");
    for (index, s) in report.scenarios.iter().enumerate() {
        if s.expected_to_fail {
            continue;
        }
        let violations: u64 = s.oracles.iter().map(|o| o.violations).sum();
        let r = &s.requests;
        let (class, word) = verdict(s);
        let _ = write!(
            out,
            "<tr><td><a href=\"#{}\">{}</a></td><td class=\"{class}\">{word}</td><td>{} / {}</td><td>{violations}</td><td>{}</td><td>{}</td><td>{}: {} / {} / {} / {} / {} / {}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td></tr>",
            scenario_id(index, s),
            escape(&s.name),
            s.seeds_failed,
            s.seeds_run,
            s.operations.total,
            s.operations.ambiguous,
            r.total,
            r.s2xx,
            r.s4xx,
            r.s429,
            r.s5xx,
            r.timeouts,
            r.transport_errors,
            s.retries,
            s.idempotent_replays,
            s.duplicate_deliveries_absorbed,
            s.duplicate_shipments,
            s.duplicate_labels
        );
    }
    out.push_str("</tbody></table></div>");
    if !proofs.is_empty() {
        out.push_str("<h3>Caught planted bugs</h3><table><thead><tr><th>regression scenario</th><th>result</th><th>seeds that caught it</th><th class=\"text\">caught by</th></tr></thead><tbody>");
        for (index, s) in proofs {
            let (class, word) = verdict(s);
            let caught_by: Vec<&str> = s
                .oracles
                .iter()
                .filter(|o| o.violations > 0)
                .map(|o| o.name.as_str())
                .collect();
            let _ = write!(
                out,
                "<tr><td><a href=\"#{}\">{}</a></td><td class=\"{class}\">{word}</td><td>{} / {}</td><td class=\"text\">{}</td></tr>",
                scenario_id(index, s),
                escape(&s.name),
                s.seeds_failed,
                s.seeds_run,
                if caught_by.is_empty() {
                    "-".to_string()
                } else {
                    escape(&caught_by.join(", "))
                }
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</section>\n");
}

fn bugs(out: &mut String, bugs: &[BugDetection]) {
    out.push_str("<section id=\"bugs\"><h2>Planted bugs: seeds to detect</h2><table><thead><tr><th>bug</th><th class=\"text\">scenario</th><th>seeds to detect</th><th>seeds run</th><th class=\"text\">caught by</th><th>operations (shrunk)</th><th class=\"text\">repro</th></tr></thead><tbody>");
    for bug in bugs {
        let (class, detected) = bug.seeds_to_detect.map_or_else(
            || ("fail", "not detected".to_string()),
            |n| ("pass", n.to_string()),
        );
        let shrunk = match (bug.operations_before, bug.operations_after) {
            (Some(before), Some(after)) => format!("{before} &#8594; {after}"),
            (Some(before), None) => before.to_string(),
            _ => "-".to_string(),
        };
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td class=\"text\">{}</td><td class=\"{class}\">{detected}</td><td>{}</td><td class=\"text\">{}</td><td>{shrunk}</td><td class=\"text\">{}</td></tr>",
            escape(&bug.bug),
            escape(&bug.scenario),
            bug.seeds_run,
            escape(bug.caught_by.as_deref().unwrap_or("-")),
            bug.repro.as_deref().map_or_else(
                || "-".to_string(),
                |path| format!("<a href=\"{0}\"><code>{0}</code></a>", escape(path))
            )
        );
    }
    out.push_str("</tbody></table></section>\n");
}

fn scenario_id(index: usize, scenario: &ScenarioReport) -> String {
    format!("s{index}-{}", slug(&scenario.name))
}

fn scenario_section(
    out: &mut String,
    index: usize,
    s: &ScenarioReport,
    timelines_left: &mut usize,
) -> Result<(), RenderError> {
    let seeds: Vec<u64> = s.seeds.iter().map(|seed| seed.seed).collect();
    let _ = writeln!(
        out,
        "<section class=\"scenario\" id=\"{}\"><h2>{} {}</h2><p class=\"muted\">{} · <code>{}</code> · seeds <code>{}</code></p>",
        scenario_id(index, s),
        escape(&s.name),
        scenario_badge(s),
        escape(&s.description),
        escape(&s.path),
        escape(&seed_set(&seeds, SEED_RANGES_SHOWN_MAX))
    );
    oracles(out, s);
    requests(out, s);
    latency(out, s)?;
    faults(out, s);
    moments(out, s);
    shrunk(out, s);
    failures(out, s, timelines_left);
    seed_table(out, s);
    out.push_str("</section>\n");
    Ok(())
}

fn oracles(out: &mut String, s: &ScenarioReport) {
    out.push_str("<h3>Oracles</h3><table><thead><tr><th>oracle</th><th>result</th><th>violations</th></tr></thead><tbody>");
    for oracle in &s.oracles {
        // In a regression proof a violation is the planted bug being caught.
        let (class, word) = match (oracle.violations == 0, s.expected_to_fail) {
            (true, _) => ("pass", "held"),
            (false, false) => ("fail", "VIOLATED"),
            (false, true) => ("pass", "caught the bug"),
        };
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td class=\"{class}\">{word}</td><td>{}</td></tr>",
            escape(&oracle.name),
            oracle.violations
        );
    }
    out.push_str("</tbody></table>");
    if !s.budgets.is_empty() {
        out.push_str("<table><thead><tr><th>budget</th><th>metric</th><th>limit ms</th><th>observed ms</th><th>result</th></tr></thead><tbody>");
        for budget in &s.budgets {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                escape(&budget.endpoint),
                escape(&budget.metric),
                budget.limit_ms,
                budget.observed_ms,
                if budget.passed { "pass" } else { "fail" },
                if budget.passed { "within" } else { "OVER" }
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push('\n');
}

fn requests(out: &mut String, s: &ScenarioReport) {
    out.push_str("<h3>Requests</h3>");
    out.push_str(&svg::status_bar(&s.name, &s.requests));
    out.push_str("<p class=\"legend-html\">");
    for (class, label, count) in svg::status_segments(&s.requests) {
        let _ = write!(
            out,
            "<span><i class=\"{class}\"></i>{label}: {count} ({}%)</span>",
            percent(count, s.requests.total)
        );
    }
    out.push_str("</p>");
    let o = &s.operations;
    let _ = writeln!(
        out,
        "<div class=\"scroll\"><table><thead><tr><th>attempts</th><th>retries</th><th>idempotent replays</th><th>duplicate deliveries absorbed</th><th>of which 409 in flight</th><th>operations</th><th>ok</th><th>refused</th><th>ambiguous</th><th>resolved after heal</th><th>dup. shipments</th><th>dup. labels</th></tr></thead><tbody><tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></tbody></table></div>",
        s.requests.total,
        s.retries,
        s.idempotent_replays,
        s.duplicate_deliveries_absorbed,
        s.in_flight_conflicts,
        o.total,
        o.ok,
        o.failed,
        o.ambiguous,
        o.resolved_after_heal,
        s.duplicate_shipments,
        s.duplicate_labels
    );
}

/// A scenario's stored histogram of `kind` for `endpoint`, if it has one.
fn stored(
    s: &ScenarioReport,
    kind: HistogramKind,
    endpoint: &str,
) -> Result<Option<Histogram<u64>>, RenderError> {
    s.histograms
        .get(&kind.key(endpoint))
        .map(|text| {
            decode(text).map_err(|e| {
                RenderError::Histogram(format!("{} `{}`: {e}", s.name, kind.key(endpoint)))
            })
        })
        .transpose()
}

fn latency(out: &mut String, s: &ScenarioReport) -> Result<(), RenderError> {
    out.push_str("<h3>Latency per endpoint</h3><p class=\"muted\">End to end (all attempts and waits), simulated ms. <b>Fault window</b>: operations whose span overlapped an active fault; <b>quiet window</b>: the rest. Curves run from p50 to p99.9 on a log axis; histograms compare the share of each population per bucket.</p><div class=\"endpoints\">\n");
    for (endpoint, all) in &s.latency_ms {
        let e2e = stored(s, HistogramKind::E2e, endpoint)?;
        let fault = stored(s, HistogramKind::E2eFault, endpoint)?;
        let quiet = stored(s, HistogramKind::E2eQuiet, endpoint)?;
        let mut series = Vec::new();
        if let Some(histogram) = &e2e {
            series.push(Series {
                label: "all",
                class: "s-all",
                histogram,
            });
        }
        if let Some(histogram) = &fault {
            series.push(Series {
                label: "fault window",
                class: "s-fault",
                histogram,
            });
        }
        if let Some(histogram) = &quiet {
            series.push(Series {
                label: "quiet window",
                class: "s-quiet",
                histogram,
            });
        }
        // The histogram compares the two windows when the report has them; older reports
        // have only the whole population.
        let split: Vec<Series<'_>> = series
            .iter()
            .filter(|x| x.class != "s-all" || (fault.is_none() && quiet.is_none()))
            .map(|x| Series {
                label: x.label,
                class: x.class,
                histogram: x.histogram,
            })
            .collect();
        let _ = write!(
            out,
            "<div class=\"endpoint\"><h4>{}</h4><div class=\"charts\">{}{}</div>",
            escape(endpoint),
            svg::percentile_plot(endpoint, &series),
            svg::histogram_plot(endpoint, &split)
        );
        out.push_str("<table><thead><tr><th>population</th><th>count</th><th>p50</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th><th>mean</th></tr></thead><tbody>");
        summary_row(out, "all", Some(all));
        summary_row(out, "fault window", s.fault_window_latency_ms.get(endpoint));
        summary_row(out, "quiet window", s.quiet_window_latency_ms.get(endpoint));
        summary_row(out, "single attempt", s.attempt_latency_ms.get(endpoint));
        out.push_str("</tbody></table></div>\n");
    }
    out.push_str("</div>\n");
    Ok(())
}

fn summary_row(out: &mut String, label: &str, summary: Option<&LatencySummary>) {
    let Some(l) = summary else { return };
    let _ = write!(
        out,
        "<tr><td>{label}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td></tr>",
        l.count, l.p50, l.p95, l.p99, l.p999, l.max, l.mean
    );
}

fn faults(out: &mut String, s: &ScenarioReport) {
    if s.faults.is_empty() {
        return;
    }
    out.push_str("<h3>Faults</h3><table><thead><tr><th>#</th><th class=\"text\">kind</th><th class=\"text\">what</th><th>fired</th><th>seeds fired</th></tr></thead><tbody>");
    for fault in &s.faults {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"text\"><code>{}</code></td><td class=\"text\">{}</td><td>{}</td><td>{} / {}</td></tr>",
            fault.index,
            escape(&fault.kind),
            escape(&fault.description),
            fault.fired,
            fault.seeds_fired,
            s.seeds_run
        );
    }
    out.push_str("</tbody></table>\n");
}

/// The dangerous moments the seeds reached (and the required ones, reached or not): what
/// the run actually tried, next to what it judged.
fn moments(out: &mut String, s: &ScenarioReport) {
    let shown: Vec<_> = s
        .moments
        .iter()
        .filter(|m| m.reached > 0 || m.required)
        .collect();
    if shown.is_empty() {
        return;
    }
    out.push_str("<h3>Dangerous moments reached</h3><table><thead><tr><th class=\"text\">moment</th><th>reached</th><th>seeds reached</th><th class=\"text\">required</th></tr></thead><tbody>");
    for moment in shown {
        let required = match (moment.required, moment.reached > 0) {
            (false, _) => "",
            (true, true) => "required: reached",
            (true, false) => "required: NEVER REACHED",
        };
        let _ = write!(
            out,
            "<tr><td class=\"text\"><code>{}</code></td><td>{}</td><td>{} / {}</td><td class=\"text\">{}</td></tr>",
            escape(&moment.name),
            moment.reached,
            moment.seeds_reached,
            s.seeds_run,
            required
        );
    }
    out.push_str("</tbody></table>\n");
}

/// The minimal repro of the first failure, its timeline always drawn: the smallest story
/// that shows the bug is what an engineer reads first.
fn shrunk(out: &mut String, s: &ScenarioReport) {
    let Some(shrunk) = &s.shrunk else { return };
    let _ = writeln!(
        out,
        "<h3>Minimal repro</h3><p class=\"muted\">seed {} shrunk to seed {} while <b>{}</b> still fails: {} &#8594; {} operations, {} &#8594; {} faults, in {} simulation runs. <a href=\"{}\"><code>{}</code></a></p>",
        shrunk.seed,
        shrunk.shrunk_seed,
        escape(&shrunk.caught_by),
        shrunk.operations_before,
        shrunk.operations_after,
        shrunk.faults_before,
        shrunk.faults_after,
        shrunk.shrink_runs,
        escape(shrunk.violation.repro.as_deref().unwrap_or("")),
        escape(shrunk.violation.repro.as_deref().unwrap_or("")),
    );
    violation_block(out, &shrunk.violation, true);
}

fn failures(out: &mut String, s: &ScenarioReport, timelines_left: &mut usize) {
    if s.violations.is_empty() {
        return;
    }
    let total: u64 = s.oracles.iter().map(|o| o.violations).sum();
    let heading = if s.expected_to_fail {
        "Violations: the planted bug, caught"
    } else {
        "Violations"
    };
    let _ = writeln!(
        out,
        "<h3>{heading}</h3><p class=\"muted\">{} of {total} shown in full, the first {TIMELINES_PER_SCENARIO_MAX} with a timeline: one row per operation (attempts coloured by outcome: green 2xx, purple 409/429, amber other 4xx, red errors and timeouts), fault windows shaded orange, ▲ a fault firing, ◆ a service or carrier event, ✕ a crash, dashed green the heal. Hover for details.</p>",
        s.violations.len()
    );
    let (wide, per_seed): (Vec<&ViolationReport>, Vec<&ViolationReport>) = s
        .violations
        .iter()
        .partition(|v| judge::is_scenario_wide(&v.oracle));
    let mut seeds: Vec<u64> = per_seed.iter().map(|v| v.seed).collect();
    seeds.dedup();
    let mut drawn = 0;
    for seed in seeds {
        let of_seed: Vec<&&ViolationReport> = per_seed.iter().filter(|v| v.seed == seed).collect();
        let _ = write!(
            out,
            "<details open=\"open\"><summary><b>seed {seed}</b>: {} violation(s)</summary>",
            of_seed.len()
        );
        for violation in of_seed {
            let draw = !violation.timeline.is_empty()
                && drawn < TIMELINES_PER_SCENARIO_MAX
                && *timelines_left > 0;
            if draw {
                drawn += 1;
                *timelines_left -= 1;
            }
            violation_block(out, violation, draw);
        }
        out.push_str("</details>\n");
    }
    if !wide.is_empty() {
        out.push_str("<h4>Over all seeds</h4>");
        for violation in wide {
            violation_block(out, violation, false);
        }
    }
}

/// One violation; with its timeline drawn when `draw_timeline`.
fn violation_block(out: &mut String, v: &ViolationReport, draw_timeline: bool) {
    let _ = write!(
        out,
        "<div class=\"violation\"><p><span class=\"oracle\">[{}]</span> seed {}: {}</p>",
        escape(&v.oracle),
        v.seed,
        escape(&v.message)
    );
    if !v.evidence.is_empty() {
        out.push_str("<ul>");
        for line in &v.evidence {
            let _ = write!(out, "<li><code>{}</code></li>", escape(line));
        }
        out.push_str("</ul>");
    }
    if !v.faults_active.is_empty() {
        let _ = write!(
            out,
            "<p class=\"muted\">faults that fired meanwhile: {}</p>",
            escape(&v.faults_active.join("; "))
        );
    }
    let _ = write!(out, "<pre>{}</pre>", escape(&v.replay_command));
    if !v.timeline.is_empty() && !draw_timeline {
        let _ = write!(
            out,
            "<p class=\"muted\">Timeline of {} entries not drawn (the page draws the first {TIMELINES_PER_SCENARIO_MAX} per scenario); it is in summary.json, and the replay command shows it.</p>",
            v.timeline.len()
        );
    } else if v.timeline.is_empty() {
        if v.operations.is_empty() {
            out.push_str(
                "<p class=\"muted\">No timeline: this violation involves no operation.</p>",
            );
        } else {
            out.push_str("<p class=\"muted\">No timeline kept for this seed (only the first failing seeds are re-run for one); replay it to see the story.</p>");
        }
    } else {
        out.push_str(&svg::timeline(v));
        let _ = write!(
            out,
            "<details><summary>timeline as text ({} entries)</summary><table><thead><tr><th>+time</th><th class=\"text\">host</th><th class=\"text\">kind</th><th class=\"text\">what</th></tr></thead><tbody>",
            v.timeline.len()
        );
        let start_us = v.timeline.iter().map(|e| e.at_us).min().unwrap_or(0);
        for entry in &v.timeline {
            let _ = write!(
                out,
                "<tr><td>+{}</td><td class=\"text\">{}</td><td class=\"text\">{}</td><td class=\"text\"><code>{}</code></td></tr>",
                duration_us(entry.at_us - start_us),
                escape(&entry.host),
                kind_name(entry.kind),
                escape(&entry.what)
            );
        }
        out.push_str("</tbody></table></details>");
    }
    out.push_str("</div>\n");
}

fn kind_name(kind: TimelineKind) -> &'static str {
    match kind {
        TimelineKind::OpInvoked => "invoked",
        TimelineKind::OpCompleted => "completed",
        TimelineKind::Attempt => "attempt",
        TimelineKind::FaultFired => "fault",
        TimelineKind::FaultEnded => "fault ended",
        TimelineKind::Crash => "crash",
        TimelineKind::Restart => "restart",
        TimelineKind::Healed => "heal",
        TimelineKind::System => "system",
        TimelineKind::Other => "other",
    }
}

fn seed_table(out: &mut String, s: &ScenarioReport) {
    let _ = write!(
        out,
        "<details><summary>Seeds ({} run, {} failed)</summary><table><thead><tr><th>seed</th><th>result</th><th>violations</th><th>operations</th><th>simulated ms</th><th class=\"text\">trace hash</th></tr></thead><tbody>",
        s.seeds_run, s.seeds_failed
    );
    // Failing seeds first: they are the ones someone will look up.
    let rows = s
        .seeds
        .iter()
        .filter(|seed| !seed.passed)
        .chain(s.seeds.iter().filter(|seed| seed.passed))
        .take(SEED_ROWS_MAX);
    for seed in rows {
        let (class, word) = match (seed.passed, s.expected_to_fail) {
            (true, false) => ("pass", "pass"),
            (false, false) => ("fail", "FAIL"),
            (false, true) => ("pass", "caught"),
            (true, true) => ("fail", "ESCAPED"),
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"{class}\">{word}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"text\"><code>{}</code></td></tr>",
            seed.seed,
            seed.violations,
            seed.operations,
            seed.sim_ms,
            escape(&seed.trace_hash)
        );
    }
    out.push_str("</tbody></table>");
    if s.seeds.len() > SEED_ROWS_MAX {
        let _ = write!(
            out,
            "<p class=\"muted\">{} more seed(s) in summary.json.</p>",
            s.seeds.len() - SEED_ROWS_MAX
        );
    }
    out.push_str("</details>\n");
}

/// Failures of a receiver's run shown in full; the rest are counted.
const RECEIVER_FAILURES_SHOWN_MAX: usize = 50;

/// Renders a webhook receiver's run as one self-contained page (the same style sheet as a
/// scenario report): the verdict, a table of the seven verdicts (held or broken, on how
/// many seeds, the first), the burst latency, what the run could not do, and every failure
/// with its evidence and the command that runs it again.
#[must_use]
pub fn receiver(report: &ReceiverReport) -> String {
    let mut out = String::new();
    let title = format!("shipsim receiver {}", report.receiver);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><title>{}</title><style>{STYLE}</style></head><body>\n<header><h1>{} {}</h1>",
        escape(&title),
        escape(&title),
        badge(report.passed())
    );
    let target = report.target.as_ref().map_or_else(String::new, |t| {
        format!(" · target <code>{}</code>", escape(t))
    });
    let _ = writeln!(
        out,
        "<p class=\"meta\">{} · seeds <code>{}</code> ({} run){target}</p></header>\n<main>",
        escape(&report.mode),
        escape(&report.seeds),
        report.seeds_run
    );
    out.push_str("<section><h2>Verdicts</h2><table><tr><th>verdict</th><th>result</th><th>failed seeds</th><th>first seed</th><th class=\"text\">what it demands</th></tr>\n");
    for verdict in &report.verdicts {
        let (class, result) = if verdict.seeds_failed == 0 {
            ("pass", "held")
        } else {
            ("fail", "BROKEN")
        };
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td class=\"{class}\">{result}</td><td>{}</td><td>{}</td><td class=\"text\">{}</td></tr>",
            escape(&verdict.name),
            verdict.seeds_failed,
            verdict
                .first_seed
                .map_or_else(|| "-".to_string(), |s| s.to_string()),
            escape(&verdict.description)
        );
    }
    out.push_str("</table>\n");
    if let Some(burst) = report.burst() {
        out.push_str("<h3>Latency under a burst (ms)</h3><table><tr>");
        for key in ["p50", "p95", "p99", "max", "count"] {
            let _ = write!(out, "<th>{key}</th>");
        }
        out.push_str("</tr><tr>");
        for value in burst {
            let _ = write!(out, "<td>{value}</td>");
        }
        out.push_str("</tr></table>\n");
    }
    for note in &report.notes {
        let _ = writeln!(out, "<p class=\"muted\">{}</p>", escape(note));
    }
    if let Some(problem) = &report.problem {
        let _ = writeln!(
            out,
            "<p class=\"violation\"><span class=\"oracle\">problem</span> {}</p>",
            escape(problem)
        );
    }
    out.push_str("</section>\n");
    if !report.failures.is_empty() {
        out.push_str("<section><h2>Failures</h2>\n");
        for failure in report.failures.iter().take(RECEIVER_FAILURES_SHOWN_MAX) {
            let _ = writeln!(
                out,
                "<div class=\"violation\"><span class=\"oracle\">{}</span> seed {}",
                escape(&failure.verdict),
                failure.seed
            );
            out.push_str("<pre>");
            for line in &failure.evidence {
                let _ = writeln!(out, "{}", escape(line));
            }
            out.push_str("</pre>");
            if let Some(repro) = &failure.repro {
                let _ = write!(out, "<p>repro: <code>{}</code></p>", escape(repro));
            }
            let _ = writeln!(
                out,
                "<p>replay: <code>{}</code></p></div>",
                escape(&failure.replay_command)
            );
        }
        if report.failures.len() > RECEIVER_FAILURES_SHOWN_MAX {
            let _ = writeln!(
                out,
                "<p class=\"muted\">... and {} more, in summary.json</p>",
                report.failures.len() - RECEIVER_FAILURES_SHOWN_MAX
            );
        }
        out.push_str("</section>\n");
    }
    out.push_str("</main></body></html>\n");
    out
}
