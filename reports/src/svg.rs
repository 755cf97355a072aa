//! Inline SVG charts for the HTML report: percentile distributions on a log axis, latency
//! histograms, request status bars and failing-seed timelines.
//!
//! Each function returns one `<svg>` element: XML-well-formed, no script, every text
//! escaped, coordinates with one decimal, so that equal inputs give byte-equal output.
//! Colours come from CSS classes the page defines (`s-all`, `s-fault`, `s-quiet`, ...).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::markup::{duration_us, escape, percent};
use crate::model::{RequestCounts, TimelineEntry, TimelineKind, ViolationReport};

/// One line (or bar series) of a latency chart.
pub(crate) struct Series<'a> {
    /// Legend text.
    pub label: &'a str,
    /// CSS class giving its colour.
    pub class: &'static str,
    /// Its samples, ms.
    pub histogram: &'a Histogram<u64>,
}

/// Size of a latency chart, CSS px.
const CHART_WIDTH_PX: f64 = 520.0;
const CHART_HEIGHT_PX: f64 = 270.0;
/// Room around a chart's plotting area for axes and legend, CSS px.
const MARGIN_LEFT_PX: f64 = 62.0;
const MARGIN_RIGHT_PX: f64 = 16.0;
const MARGIN_TOP_PX: f64 = 30.0;
const MARGIN_BOTTOM_PX: f64 = 44.0;

/// Points sampled along a percentile curve: enough for a smooth step shape at this width.
const QUANTILE_POINTS: usize = 64;
/// The percentile axis runs from p50 to p99.9, in "nines": `-log10(1 - q)`.
const NINES_MIN: f64 = std::f64::consts::LOG10_2;
const NINES_MAX: f64 = 3.0;
/// Percentiles marked with a dot and named on the axis.
const MARKED_QUANTILES: [(f64, &str); 5] = [
    (0.5, "p50"),
    (0.9, "p90"),
    (0.95, "p95"),
    (0.99, "p99"),
    (0.999, "p99.9"),
];

fn nines(quantile: f64) -> f64 {
    -(1.0 - quantile).log10()
}

/// Plot area as (left, top, width, height).
fn plot_area() -> (f64, f64, f64, f64) {
    (
        MARGIN_LEFT_PX,
        MARGIN_TOP_PX,
        CHART_WIDTH_PX - MARGIN_LEFT_PX - MARGIN_RIGHT_PX,
        CHART_HEIGHT_PX - MARGIN_TOP_PX - MARGIN_BOTTOM_PX,
    )
}

fn open_svg(out: &mut String, plot: &str, endpoint: &str, width: f64, height: f64, title: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-plot="{plot}" data-endpoint="{}" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" role="img"><title>{}</title>"#,
        escape(endpoint),
        escape(title)
    );
}

fn no_samples(out: &mut String) {
    let (left, top, width, height) = plot_area();
    let _ = write!(
        out,
        r#"<rect class="frame" x="{left:.1}" y="{top:.1}" width="{width:.1}" height="{height:.1}"/><text class="empty" x="{:.1}" y="{:.1}" text-anchor="middle">no samples</text></svg>"#,
        left + width / 2.0,
        top + height / 2.0
    );
}

/// The legend: a swatch and label per series, right-aligned above the plot.
fn legend(out: &mut String, series: &[Series<'_>]) {
    let mut x = MARGIN_LEFT_PX;
    for s in series {
        let text = format!("{} (n={})", s.label, s.histogram.len());
        let _ = write!(
            out,
            r#"<rect class="swatch {}" x="{x:.1}" y="10" width="12" height="8"/><text class="legend" x="{:.1}" y="18">{}</text>"#,
            s.class,
            x + 16.0,
            escape(&text)
        );
        x += 28.0 + text.chars().count() as f64 * 6.2;
    }
}

/// Ticks of a log axis between `low` and `high` (powers of ten apart): decades, and 2 and
/// 5 within them when the axis spans two decades or fewer.
fn log_ticks(low: f64, high: f64) -> Vec<f64> {
    let decades = (high / low).log10().round() as i32;
    let steps: &[f64] = if decades <= 2 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let mut ticks = Vec::new();
    let mut decade = low;
    while decade <= high * 1.000_001 {
        for step in steps {
            let tick = decade * step;
            if tick <= high * 1.000_001 {
                ticks.push(tick);
            }
        }
        decade *= 10.0;
    }
    ticks
}

/// A latency in ms for an axis label: `5`, `250`, `1.5k`, `20k`.
fn ms_label(value_ms: f64) -> String {
    if value_ms >= 1_000.0 {
        let thousands = value_ms / 1_000.0;
        if (thousands - thousands.round()).abs() < 1e-9 {
            format!("{thousands:.0}k")
        } else {
            format!("{thousands:.1}k")
        }
    } else {
        format!("{value_ms:.0}")
    }
}

/// The percentile distribution of each series, p50 to p99.9 on a log axis (in "nines",
/// as HdrHistogram's own plots draw it), latency on a log axis.
pub(crate) fn percentile_plot(endpoint: &str, series: &[Series<'_>]) -> String {
    let mut out = String::new();
    open_svg(
        &mut out,
        "percentiles",
        endpoint,
        CHART_WIDTH_PX,
        CHART_HEIGHT_PX,
        &format!("{endpoint}: latency by percentile"),
    );
    let drawn: Vec<&Series<'_>> = series.iter().filter(|s| !s.histogram.is_empty()).collect();
    if drawn.is_empty() {
        no_samples(&mut out);
        return out;
    }
    let curves: Vec<Vec<(f64, f64)>> = drawn
        .iter()
        .map(|s| {
            (0..QUANTILE_POINTS)
                .map(|i| {
                    let x = NINES_MIN
                        + (NINES_MAX - NINES_MIN) * i as f64 / (QUANTILE_POINTS - 1) as f64;
                    let quantile = 1.0 - 10f64.powf(-x);
                    (x, s.histogram.value_at_quantile(quantile).max(1) as f64)
                })
                .collect()
        })
        .collect();
    let value_min = curves
        .iter()
        .flatten()
        .map(|p| p.1)
        .fold(f64::MAX, f64::min);
    let value_max = curves.iter().flatten().map(|p| p.1).fold(1.0, f64::max);
    let low = 10f64.powf(value_min.log10().floor());
    let mut high = 10f64.powf(value_max.log10().ceil());
    if high <= low {
        high = low * 10.0;
    }
    let (left, top, width, height) = plot_area();
    let x_of = |x: f64| left + (x - NINES_MIN) / (NINES_MAX - NINES_MIN) * width;
    let y_of =
        |v: f64| top + height - (v.log10() - low.log10()) / (high.log10() - low.log10()) * height;

    let _ = write!(
        out,
        r#"<rect class="frame" x="{left:.1}" y="{top:.1}" width="{width:.1}" height="{height:.1}"/>"#
    );
    for tick in log_ticks(low, high) {
        let y = y_of(tick);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{left:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            left + width,
            left - 6.0,
            y + 4.0,
            ms_label(tick)
        );
    }
    for (quantile, name) in MARKED_QUANTILES {
        let x = x_of(nines(quantile));
        let _ = write!(
            out,
            r#"<line class="grid" x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{name}</text>"#,
            top + height,
            top + height + 16.0
        );
    }
    let _ = write!(
        out,
        r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">percentile (log scale)</text><text class="axis" transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">ms (log scale)</text>"#,
        left + width / 2.0,
        CHART_HEIGHT_PX - 6.0,
        top + height / 2.0
    );
    for (s, curve) in drawn.iter().zip(&curves) {
        let points: Vec<String> = curve
            .iter()
            .map(|&(x, v)| format!("{:.1},{:.1}", x_of(x), y_of(v)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="curve {}" points="{}"/>"#,
            s.class,
            points.join(" ")
        );
        for (quantile, name) in MARKED_QUANTILES {
            let value = s.histogram.value_at_quantile(quantile).max(1);
            let _ = write!(
                out,
                r#"<circle class="dot {}" cx="{:.1}" cy="{:.1}" r="3"><title>{} {name}: {value} ms</title></circle>"#,
                s.class,
                x_of(nines(quantile)),
                y_of(value as f64),
                escape(s.label)
            );
        }
    }
    let shown: Vec<Series<'_>> = drawn
        .iter()
        .map(|s| Series {
            label: s.label,
            class: s.class,
            histogram: s.histogram,
        })
        .collect();
    legend(&mut out, &shown);
    out.push_str("</svg>");
    out
}

/// Bucket edges of a latency histogram chart, ms: 1, 2, 5, 10, 20, 50, ... up to the
/// first edge above `value_max`.
fn bucket_edges(value_max: u64) -> Vec<u64> {
    let mut edges = Vec::new();
    let mut decade: u64 = 1;
    'outer: loop {
        for step in [1, 2, 5] {
            let edge = decade.saturating_mul(step);
            edges.push(edge);
            if edge > value_max {
                break 'outer;
            }
        }
        decade = decade.saturating_mul(10);
    }
    edges
}

/// Share of each series' samples per latency bucket (1-2-5 edges), side by side, so that
/// the shapes of populations of different sizes (fault windows vs quiet windows) compare.
pub(crate) fn histogram_plot(endpoint: &str, series: &[Series<'_>]) -> String {
    let mut out = String::new();
    open_svg(
        &mut out,
        "histogram",
        endpoint,
        CHART_WIDTH_PX,
        CHART_HEIGHT_PX,
        &format!("{endpoint}: latency histogram"),
    );
    let drawn: Vec<&Series<'_>> = series.iter().filter(|s| !s.histogram.is_empty()).collect();
    if drawn.is_empty() {
        no_samples(&mut out);
        return out;
    }
    let value_max = drawn.iter().map(|s| s.histogram.max()).max().unwrap_or(1);
    let value_min = drawn.iter().map(|s| s.histogram.min()).min().unwrap_or(1);
    let edges = bucket_edges(value_max);
    // Buckets [edges[i], edges[i + 1]); drop leading empty ones so the chart starts near
    // the smallest sample.
    let first = edges
        .iter()
        .rposition(|&e| e <= value_min.max(1))
        .unwrap_or(0);
    let buckets: Vec<(u64, u64)> = edges.windows(2).skip(first).map(|w| (w[0], w[1])).collect();
    let shares: Vec<Vec<u64>> = drawn
        .iter()
        .map(|s| {
            let mut counts = vec![0u64; buckets.len()];
            for value in s.histogram.iter_recorded() {
                let v = value.value_iterated_to();
                let index = buckets
                    .iter()
                    .position(|&(_, upper)| v < upper)
                    .unwrap_or(buckets.len() - 1);
                counts[index] += value.count_at_value();
            }
            counts
        })
        .collect();
    let share_max = drawn
        .iter()
        .zip(&shares)
        .flat_map(|(s, counts)| counts.iter().map(|&c| percent(c, s.histogram.len())))
        .fold(0.0, f64::max);
    let step = [5.0, 10.0, 20.0, 25.0, 50.0]
        .into_iter()
        .find(|step| share_max / step <= 5.0)
        .unwrap_or(50.0);
    let axis_max = ((share_max / step).ceil() * step).clamp(step, 100.0);
    let (left, top, width, height) = plot_area();
    let y_of = |share: f64| top + height - share / axis_max * height;
    let _ = write!(
        out,
        r#"<rect class="frame" x="{left:.1}" y="{top:.1}" width="{width:.1}" height="{height:.1}"/>"#
    );
    let mut tick = 0.0;
    while tick <= axis_max + 1e-9 {
        let y = y_of(tick);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{left:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{tick:.0}%</text>"#,
            left + width,
            left - 6.0,
            y + 4.0
        );
        tick += step;
    }
    let group = width / buckets.len() as f64;
    let bar = group * 0.8 / drawn.len() as f64;
    for (index, &(lower, upper)) in buckets.iter().enumerate() {
        let x = left + group * index as f64;
        let _ = write!(
            out,
            r#"<text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            top + height + 16.0,
            ms_label(lower as f64)
        );
        for (position, (s, counts)) in drawn.iter().zip(&shares).enumerate() {
            let share = percent(counts[index], s.histogram.len());
            let y = y_of(share);
            let _ = write!(
                out,
                r#"<rect class="bar {}" x="{:.1}" y="{y:.1}" width="{bar:.1}" height="{:.1}"><title>{}: {share}% of {} in [{lower}, {upper}) ms</title></rect>"#,
                s.class,
                x + group * 0.1 + bar * position as f64,
                top + height - y,
                escape(s.label),
                s.histogram.len()
            );
        }
    }
    let _ = write!(
        out,
        r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">ms, bucket lower edge (1-2-5 buckets)</text><text class="axis" transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">share of operations</text>"#,
        left + width / 2.0,
        CHART_HEIGHT_PX - 6.0,
        top + height / 2.0
    );
    let shown: Vec<Series<'_>> = drawn
        .iter()
        .map(|s| Series {
            label: s.label,
            class: s.class,
            histogram: s.histogram,
        })
        .collect();
    legend(&mut out, &shown);
    out.push_str("</svg>");
    out
}

/// The classes, labels and counts of a status bar's segments, in drawing order.
pub(crate) fn status_segments(requests: &RequestCounts) -> [(&'static str, &'static str, u64); 6] {
    [
        ("st-2xx", "2xx", requests.s2xx),
        ("st-4xx", "4xx", requests.s4xx),
        ("st-429", "429", requests.s429),
        ("st-5xx", "5xx", requests.s5xx),
        ("st-timeout", "timeout", requests.timeouts),
        ("st-transport", "transport error", requests.transport_errors),
    ]
}

/// Width of a status bar, CSS px.
const STATUS_WIDTH_PX: f64 = 720.0;

/// One horizontal bar split by request outcome.
pub(crate) fn status_bar(scenario: &str, requests: &RequestCounts) -> String {
    let mut out = String::new();
    open_svg(
        &mut out,
        "status",
        scenario,
        STATUS_WIDTH_PX,
        24.0,
        &format!("{scenario}: requests by status"),
    );
    let total: u64 = status_segments(requests).iter().map(|s| s.2).sum();
    if total == 0 {
        out.push_str(r#"<rect class="frame" x="0" y="2" width="720" height="20"/></svg>"#);
        return out;
    }
    let mut x = 0.0;
    for (class, label, count) in status_segments(requests) {
        if count == 0 {
            continue;
        }
        let width = count as f64 / total as f64 * STATUS_WIDTH_PX;
        let _ = write!(
            out,
            r#"<rect class="{class}" x="{x:.1}" y="2" width="{width:.1}" height="20"><title>{label}: {count} ({}%)</title></rect>"#,
            percent(count, total)
        );
        x += width;
    }
    out.push_str("</svg>");
    out
}

/// Layout of a timeline, CSS px.
const TIMELINE_WIDTH_PX: f64 = 960.0;
const TIMELINE_LABELS_PX: f64 = 170.0;
const TIMELINE_ROW_PX: f64 = 22.0;
const TIMELINE_TOP_PX: f64 = 8.0;
const TIMELINE_AXIS_PX: f64 = 44.0;

/// One row of a timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Row {
    /// An operation's row.
    Op(u64),
    /// Fault instants.
    Faults,
    /// Events on a host that are not an operation's.
    Host(String),
}

fn row_of(entry: &TimelineEntry) -> Row {
    match (entry.op, entry.kind) {
        (Some(op), _) => Row::Op(op),
        (None, TimelineKind::FaultFired | TimelineKind::FaultEnded) => Row::Faults,
        (None, _) => Row::Host(entry.host.clone()),
    }
}

/// A CSS class for an attempt or an operation outcome, read from the text after `-> `.
fn outcome_class(what: &str) -> &'static str {
    let outcome = what.split_once("-> ").map_or("", |(_, rest)| rest);
    if outcome.starts_with("ok") || outcome.starts_with('2') {
        "o-ok"
    } else if outcome.starts_with("429") || outcome.starts_with("409") {
        "o-wait"
    } else if outcome.starts_with("rejected") || outcome.starts_with('4') {
        "o-rejected"
    } else {
        "o-error"
    }
}

/// A nice tick step (1-2-5 × 10^k µs) giving at most 8 ticks over `span_us`.
fn time_step_us(span_us: u64) -> u64 {
    let mut decade: u64 = 1;
    loop {
        for step in [1, 2, 5] {
            let candidate = decade.saturating_mul(step);
            if span_us / candidate <= 8 {
                return candidate;
            }
        }
        decade = decade.saturating_mul(10);
    }
}

/// A swimlane of a violation's story: one row per operation (its span, each attempt as a
/// segment coloured by outcome), a row of fault instants, one row per host for crashes,
/// restarts and system events; fault windows are shaded across every row. Empty when the
/// violation has no timeline.
pub(crate) fn timeline(violation: &ViolationReport) -> String {
    let entries = &violation.timeline;
    if entries.is_empty() {
        return String::new();
    }
    let layout = TimelineLayout::of(entries);
    let mut out = String::new();
    open_svg(
        &mut out,
        "timeline",
        &violation.oracle,
        TIMELINE_WIDTH_PX,
        layout.rows_bottom() + TIMELINE_AXIS_PX,
        &format!("seed {}: {}", violation.seed, violation.message),
    );
    // Fault windows first, so that everything else is drawn over them.
    fault_bands(&mut out, &layout, entries);
    row_labels(&mut out, &layout, violation);
    op_spans(&mut out, &layout, entries);
    for entry in entries {
        mark(&mut out, &layout, entry);
    }
    time_axis(&mut out, &layout);
    out.push_str("</svg>");
    out
}

/// Where things go on a timeline: its rows and its time axis.
struct TimelineLayout {
    rows: Vec<Row>,
    start_us: u64,
    end_us: u64,
}

impl TimelineLayout {
    /// Rows in order of first appearance, and a time axis covering every entry but the
    /// heal: the heal is drawn as a line across the rows, and since it can come long after
    /// the operations' story, it does not stretch the axis.
    fn of(entries: &[TimelineEntry]) -> TimelineLayout {
        let story: Vec<&TimelineEntry> = entries
            .iter()
            .filter(|e| e.kind != TimelineKind::Healed)
            .collect();
        let story = if story.is_empty() {
            entries.iter().collect()
        } else {
            story
        };
        let mut rows: Vec<Row> = Vec::new();
        for entry in &story {
            let row = row_of(entry);
            if !rows.contains(&row) {
                rows.push(row);
            }
        }
        let start_us = story.iter().map(|e| e.at_us).min().unwrap_or(0);
        let end_us = story
            .iter()
            .map(|e| ends_us(e))
            .max()
            .unwrap_or(start_us)
            .max(start_us + 1_000);
        TimelineLayout {
            rows,
            start_us,
            end_us,
        }
    }

    fn span_us(&self) -> u64 {
        self.end_us - self.start_us
    }

    /// x of a time, clamped into the axis.
    fn x(&self, at_us: u64) -> f64 {
        let plot_width = TIMELINE_WIDTH_PX - TIMELINE_LABELS_PX - 24.0;
        let offset_us = at_us.clamp(self.start_us, self.end_us) - self.start_us;
        TIMELINE_LABELS_PX + offset_us as f64 / self.span_us() as f64 * plot_width
    }

    /// Top of a row (the first row for one the layout does not have).
    fn y(&self, row: &Row) -> f64 {
        let index = self.rows.iter().position(|r| r == row).unwrap_or(0);
        TIMELINE_TOP_PX + TIMELINE_ROW_PX * index as f64
    }

    fn rows_bottom(&self) -> f64 {
        TIMELINE_TOP_PX + TIMELINE_ROW_PX * self.rows.len() as f64
    }

    /// `at_us` as `+12.5 ms` from the start of the axis.
    fn offset(&self, at_us: u64) -> String {
        duration_us(at_us.saturating_sub(self.start_us))
    }
}

/// When an entry ends: its `until_us` for things that last, else its instant.
fn ends_us(entry: &TimelineEntry) -> u64 {
    entry.until_us.unwrap_or(entry.at_us).max(entry.at_us)
}

/// A shaded band across every row for each fault window (fired to ended).
fn fault_bands(out: &mut String, layout: &TimelineLayout, entries: &[TimelineEntry]) {
    let mut open: BTreeMap<u64, u64> = BTreeMap::new();
    for entry in entries {
        match (entry.kind, entry.fault) {
            (TimelineKind::FaultFired, Some(fault)) => {
                open.entry(fault).or_insert(entry.at_us);
            }
            (TimelineKind::FaultEnded, Some(fault)) => {
                if let Some(from_us) = open.remove(&fault) {
                    let _ = write!(
                        out,
                        r#"<rect class="fault-band" x="{:.1}" y="{TIMELINE_TOP_PX:.1}" width="{:.1}" height="{:.1}"><title>fault #{fault} active {} to {}</title></rect>"#,
                        layout.x(from_us),
                        (layout.x(entry.at_us) - layout.x(from_us)).max(1.0),
                        layout.rows_bottom() - TIMELINE_TOP_PX,
                        layout.offset(from_us),
                        layout.offset(entry.at_us)
                    );
                }
            }
            _ => {}
        }
    }
}

/// Each row's label and rule; the rows of the violation's own operations stand out.
fn row_labels(out: &mut String, layout: &TimelineLayout, violation: &ViolationReport) {
    for row in &layout.rows {
        let y = layout.y(row);
        let label = match row {
            Row::Op(op) => {
                let client = violation
                    .timeline
                    .iter()
                    .find(|e| e.op == Some(*op))
                    .map_or("", |e| e.host.as_str());
                format!("op {op} ({client})")
            }
            Row::Faults => "faults".to_string(),
            Row::Host(host) => host.clone(),
        };
        let class = if matches!(row, Row::Op(op) if violation.operations.contains(op)) {
            "row-label involved"
        } else {
            "row-label"
        };
        let _ = write!(
            out,
            r#"<line class="row-rule" x1="0" y1="{:.1}" x2="{TIMELINE_WIDTH_PX:.0}" y2="{:.1}"/><text class="{class}" x="4" y="{:.1}">{}</text>"#,
            y + TIMELINE_ROW_PX,
            y + TIMELINE_ROW_PX,
            y + 15.0,
            escape(&label)
        );
    }
}

/// A thin bar per operation from its first to its last entry.
fn op_spans(out: &mut String, layout: &TimelineLayout, entries: &[TimelineEntry]) {
    for row in &layout.rows {
        let Row::Op(op) = row else { continue };
        let of_op = entries.iter().filter(|e| e.op == Some(*op));
        let from_us = of_op
            .clone()
            .map(|e| e.at_us)
            .min()
            .unwrap_or(layout.start_us);
        let to_us = of_op.map(ends_us).max().unwrap_or(from_us);
        let _ = write!(
            out,
            r#"<rect class="op-span" x="{:.1}" y="{:.1}" width="{:.1}" height="4"/>"#,
            layout.x(from_us),
            layout.y(row) + 9.0,
            (layout.x(to_us) - layout.x(from_us)).max(1.0)
        );
    }
}

/// One entry's mark, with its text as a tooltip.
fn mark(out: &mut String, layout: &TimelineLayout, entry: &TimelineEntry) {
    let y = layout.y(&row_of(entry));
    let x = layout.x(entry.at_us);
    let title = escape(&format!(
        "+{} {}: {}",
        layout.offset(entry.at_us),
        entry.host,
        entry.what
    ));
    let bottom = layout.rows_bottom();
    let _ = match entry.kind {
        TimelineKind::Attempt => write!(
            out,
            r#"<rect class="attempt {}" x="{x:.1}" y="{:.1}" width="{:.1}" height="12"><title>{title}</title></rect>"#,
            outcome_class(&entry.what),
            y + 5.0,
            (layout.x(ends_us(entry)) - x).max(2.0)
        ),
        TimelineKind::OpInvoked => write!(
            out,
            r#"<path class="mark-invoke" d="M{x:.1} {:.1} l7 6 l-7 6 z"><title>{title}</title></path>"#,
            y + 5.0
        ),
        TimelineKind::OpCompleted => write!(
            out,
            r#"<circle class="mark-done {}" cx="{x:.1}" cy="{:.1}" r="5"><title>{title}</title></circle>"#,
            outcome_class(&entry.what),
            y + 11.0
        ),
        TimelineKind::FaultFired => write!(
            out,
            r#"<path class="mark-fault" d="M{x:.1} {:.1} l5 10 l-10 0 z"><title>{title}</title></path>"#,
            y + 6.0
        ),
        TimelineKind::FaultEnded => write!(
            out,
            r#"<path class="mark-fault-end" d="M{x:.1} {:.1} l5 10 l-10 0 z"><title>{title}</title></path>"#,
            y + 6.0
        ),
        TimelineKind::Crash => write!(
            out,
            r#"<path class="mark-crash" d="M{:.1} {:.1} l10 10 m0 -10 l-10 10"><title>{title}</title></path>"#,
            x - 5.0,
            y + 6.0
        ),
        TimelineKind::Healed if entry.at_us > layout.end_us => write!(
            out,
            r#"<text class="tick heal-later" x="{TIMELINE_WIDTH_PX:.0}" y="{:.1}" text-anchor="end">heal at +{} →<title>{title}</title></text>"#,
            bottom + 34.0,
            layout.offset(entry.at_us)
        ),
        TimelineKind::Healed => write!(
            out,
            r#"<line class="mark-heal" x1="{x:.1}" y1="{TIMELINE_TOP_PX:.1}" x2="{x:.1}" y2="{bottom:.1}"><title>{title}</title></line>"#
        ),
        _ => write!(
            out,
            r#"<path class="mark-event" d="M{x:.1} {:.1} l5 5 l-5 5 l-5 -5 z"><title>{title}</title></path>"#,
            y + 6.0
        ),
    };
}

/// The label of the timeline tick at `tick_us` on an axis stepping `step_us`: every tick of
/// one axis in one unit, the largest in which the step is a whole number (a step of 500 µs
/// reads `+0 µs, +500 µs, +1000 µs`, not `+0 µs, +500 µs, +1.0 ms`).
fn axis_label(tick_us: u64, step_us: u64) -> String {
    if step_us.is_multiple_of(1_000_000) {
        format!("+{} s", tick_us / 1_000_000)
    } else if step_us.is_multiple_of(1_000) {
        format!("+{} ms", tick_us / 1_000)
    } else {
        format!("+{tick_us} µs")
    }
}

/// Grid lines and `+time` labels at a round step, all in one unit.
fn time_axis(out: &mut String, layout: &TimelineLayout) {
    let bottom = layout.rows_bottom();
    let step_us = time_step_us(layout.span_us());
    let mut tick_us = 0;
    while tick_us <= layout.span_us() {
        let x = layout.x(layout.start_us + tick_us);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{x:.1}" y1="{TIMELINE_TOP_PX:.1}" x2="{x:.1}" y2="{bottom:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            bottom + 16.0,
            axis_label(tick_us, step_us)
        );
        tick_us += step_us;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::{new_latency_histogram, record_clamped};

    #[test]
    fn log_ticks_use_1_2_5_on_short_axes_and_decades_on_long_ones() {
        // Proves the latency axis gets readable ticks: 1-2-5 within two decades, decades
        // beyond.
        assert_eq!(
            log_ticks(1.0, 100.0),
            vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
        );
        assert_eq!(
            log_ticks(1.0, 10_000.0),
            vec![1.0, 10.0, 100.0, 1_000.0, 10_000.0]
        );
    }

    #[test]
    fn bucket_edges_cover_the_largest_sample() {
        // Proves the histogram buckets follow 1-2-5 and end above the largest sample, so
        // no sample falls outside the chart.
        assert_eq!(bucket_edges(1), vec![1, 2]);
        assert_eq!(bucket_edges(30), vec![1, 2, 5, 10, 20, 50]);
        assert_eq!(*bucket_edges(3_600_000).last().unwrap(), 5_000_000);
    }

    #[test]
    fn percentile_plot_marks_every_named_percentile_of_every_series() {
        // Proves a plot of two non-empty series draws one curve and five marked
        // percentiles each, and that an all-empty plot says so instead of drawing nothing.
        let mut quick = new_latency_histogram();
        let mut slow = new_latency_histogram();
        for value in 1..=1_000 {
            record_clamped(&mut quick, value % 50 + 1);
            record_clamped(&mut slow, value * 7);
        }
        let series = [
            Series {
                label: "quiet window",
                class: "s-quiet",
                histogram: &quick,
            },
            Series {
                label: "fault window",
                class: "s-fault",
                histogram: &slow,
            },
        ];
        let svg = percentile_plot("GET /x", &series);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 10);
        assert!(svg.contains(r#"data-endpoint="GET /x""#));
        let empty = new_latency_histogram();
        let none = percentile_plot(
            "GET /y",
            &[Series {
                label: "all",
                class: "s-all",
                histogram: &empty,
            }],
        );
        assert!(none.contains("no samples"));
        assert!(none.ends_with("</svg>"));
    }

    #[test]
    fn time_steps_give_few_round_ticks() {
        // Proves the timeline axis picks a 1-2-5 step with at most eight ticks.
        assert_eq!(time_step_us(1_000), 200);
        assert_eq!(time_step_us(7_000_000), 1_000_000);
        assert_eq!(time_step_us(0), 1);
    }

    #[test]
    fn a_timeline_axis_speaks_one_unit() {
        // Proves every tick of one axis is labelled in the same unit, the largest in which
        // the step is whole, from the first tick (+0) on: the axis of the old renderer went
        // "+0 µs, +200.0 ms, ..." and mixed units.
        for (span_us, unit) in [
            (1_000, " µs"),
            (3_000, " µs"),
            (8_000, " ms"),
            (1_400_000, " ms"),
            (7_000_000, " s"),
            (90_000_000, " s"),
        ] {
            let step = time_step_us(span_us);
            let labels: Vec<String> = (0..=span_us / step)
                .map(|i| axis_label(i * step, step))
                .collect();
            assert!(
                labels
                    .iter()
                    .all(|l| l.ends_with(unit) && l.starts_with('+')),
                "{span_us} µs: {labels:?}"
            );
            assert_eq!(labels[0], format!("+0{unit}"));
        }
        assert_eq!(axis_label(1_500_000, 500_000), "+1500 ms");
        assert_eq!(axis_label(2_000_000, 1_000_000), "+2 s");
    }
}
