//! `summary.md`: a short GitHub-flavoured Markdown summary for a PR comment or a CI job
//! summary (`cat summary.md >> "$GITHUB_STEP_SUMMARY"`): the verdict, one table row per
//! scenario, the first failures with their replay commands, and the planted-bug table
//! when the report has one.

use std::fmt::Write as _;

use crate::RenderError;
use crate::markup::escape_markdown_cell;
use crate::model::{ReceiverReport, Report, ScenarioReport};

/// Endpoint whose latency the table shows: creating a shipment is what the harness exists
/// to check.
/// Failures listed before the rest are counted: a PR comment should stay short.
const FAILURES_LISTED_MAX: usize = 10;

/// Renders the summary.
///
/// # Errors
/// Never today; the `Result` keeps the renderers' signatures alike.
pub fn render(report: &Report) -> Result<String, RenderError> {
    let totals = &report.totals;
    let mut out = String::new();
    if report.is_hunt() {
        hunt_headline(&mut out, report);
    } else if totals.scenarios_failed == 0 {
        let _ = writeln!(
            out,
            "## shipsim: ✅ all oracles held ({} scenario(s), {} seed(s))\n",
            totals.scenarios, totals.seeds_run
        );
    } else {
        let _ = writeln!(
            out,
            "## shipsim: ❌ {} of {} scenario(s) failed ({} violation(s) in {} of {} seed(s))\n",
            totals.scenarios_failed,
            totals.scenarios,
            totals.violations,
            totals.seeds_failed,
            totals.seeds_run
        );
    }
    if !report.is_hunt() {
        let bugs = if report.run.bugs.is_empty() {
            "none".to_string()
        } else {
            report.run.bugs.join(", ")
        };
        let _ = writeln!(
            out,
            "Seeds `{}` · planted bugs: {} · {} duplicate resource(s), {} duplicate effect(s) · {} duplicate deliveries absorbed\n",
            report.run.seeds,
            escape_markdown_cell(&bugs),
            totals.duplicate_shipments,
            totals.duplicate_labels,
            totals.duplicate_deliveries_absorbed
        );
        out.push_str("| scenario | result | failed seeds | violations | ops | ambiguous | retries | replays | dup. absorbed | 2xx / 4xx / 429 / 5xx | create p50 / p95 / p99 ms | create p99 fault / quiet ms |\n");
        out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        for scenario in &report.scenarios {
            row(&mut out, scenario);
        }
    }
    failures(&mut out, report);
    if !report.totals.moments.is_empty() {
        out.push_str(
            "\n### Dangerous moments reached\n\n| moment | times | required by |\n|---|--:|---|\n",
        );
        for (name, count) in &report.totals.moments {
            let required: Vec<&str> = report
                .scenarios
                .iter()
                .filter(|s| s.moments.iter().any(|m| m.required && &m.name == name))
                .map(|s| s.name.as_str())
                .collect();
            let _ = writeln!(
                out,
                "| `{name}` | {count} | {} |",
                escape_markdown_cell(&required.join(", "))
            );
        }
    }
    if !report.bugs.is_empty() {
        out.push_str("\n### Planted bugs\n\n| bug | scenario | seeds to detect | seeds run | caught by | operations (shrunk) | repro |\n|---|---|--:|--:|---|--:|---|\n");
        for bug in &report.bugs {
            let shrunk = match (bug.operations_before, bug.operations_after) {
                (Some(before), Some(after)) => format!("{before} → {after}"),
                (Some(before), None) => before.to_string(),
                _ => "-".to_string(),
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {shrunk} | {} |",
                bug.bug,
                escape_markdown_cell(&bug.scenario),
                bug.seeds_to_detect
                    .map_or_else(|| "not detected".to_string(), |n| n.to_string()),
                bug.seeds_run,
                escape_markdown_cell(bug.caught_by.as_deref().unwrap_or("-")),
                escape_markdown_cell(bug.repro.as_deref().unwrap_or("-"))
            );
        }
    }
    Ok(out)
}

fn hunt_headline(out: &mut String, report: &Report) {
    let escaped = report.bugs_escaped();
    if escaped == 0 {
        let _ = writeln!(
            out,
            "## shipsim hunt: ✅ all {} planted bug(s) caught (seeds `{}`)\n",
            report.bugs.len(),
            report.run.seeds
        );
    } else {
        let _ = writeln!(
            out,
            "## shipsim hunt: ❌ {escaped} of {} planted bug(s) escaped (seeds `{}`)\n",
            report.bugs.len(),
            report.run.seeds
        );
    }
}

fn row(out: &mut String, s: &ScenarioReport) {
    let violations: u64 = s.oracles.iter().map(|o| o.violations).sum();
    let endpoint = s.headline_latency().map(|(route, _)| route.to_string());
    let headline = |map: &std::collections::BTreeMap<String, crate::model::LatencySummary>| {
        endpoint
            .as_ref()
            .and_then(|route| map.get(route))
            .filter(|l| l.count > 0)
            .cloned()
    };
    let latency = headline(&s.latency_ms).map_or_else(
        || "-".to_string(),
        |l| format!("{} / {} / {}", l.p50, l.p95, l.p99),
    );
    let split = |summary: Option<crate::model::LatencySummary>| {
        summary.map_or_else(|| "-".to_string(), |l| l.p99.to_string())
    };
    let r = &s.requests;
    let _ = writeln!(
        out,
        "| {} | {} | {} / {} | {violations} | {} | {} | {} | {} | {} | {} / {} / {} / {} | {latency} | {} / {} |",
        escape_markdown_cell(&s.name),
        if s.passed { "✅ pass" } else { "❌ FAIL" },
        s.seeds_failed,
        s.seeds_run,
        s.operations.total,
        s.operations.ambiguous,
        s.retries,
        s.idempotent_replays,
        s.duplicate_deliveries_absorbed,
        r.s2xx,
        r.s4xx,
        r.s429,
        r.s5xx,
        split(headline(&s.fault_window_latency_ms)),
        split(headline(&s.quiet_window_latency_ms))
    );
}

fn failures(out: &mut String, report: &Report) {
    let all: Vec<(&ScenarioReport, &crate::model::ViolationReport)> = report
        .scenarios
        .iter()
        .flat_map(|s| s.violations.iter().map(move |v| (s, v)))
        .collect();
    if all.is_empty() {
        return;
    }
    let shrunk: Vec<&ScenarioReport> = report
        .scenarios
        .iter()
        .filter(|s| s.shrunk.is_some())
        .collect();
    if !shrunk.is_empty() {
        out.push_str("\n### Minimal repros\n\n");
        for scenario in shrunk {
            let Some(case) = &scenario.shrunk else {
                continue;
            };
            let _ = writeln!(
                out,
                "- **{}** `{}` seed {}: {} → {} operations, {} → {} faults  \n  replay: `{}`",
                escape_markdown_cell(&scenario.name),
                case.caught_by,
                case.seed,
                case.operations_before,
                case.operations_after,
                case.faults_before,
                case.faults_after,
                case.violation.replay_command.replace('`', "'")
            );
        }
    }
    out.push_str("\n### Failures\n\n");
    for (scenario, violation) in all.iter().take(FAILURES_LISTED_MAX) {
        let _ = writeln!(
            out,
            "- **{}** `{}` seed {}: {}  \n  replay: `{}`",
            escape_markdown_cell(&scenario.name),
            violation.oracle,
            violation.seed,
            escape_markdown_cell(&violation.message),
            violation.replay_command.replace('`', "'")
        );
    }
    let listed = all.len().min(FAILURES_LISTED_MAX) as u64;
    if report.totals.violations > listed {
        let _ = writeln!(
            out,
            "- … and {} more: see `index.html` or `summary.json`",
            report.totals.violations - listed
        );
    }
}

/// Renders a webhook receiver's run: the verdict, one table row per verdict, and the first
/// failures with the commands that run them again.
#[must_use]
pub fn receiver(report: &ReceiverReport) -> String {
    let mut out = String::new();
    let target = report.target.as_ref().map_or_else(String::new, |t| {
        format!(" at `{}`", escape_markdown_cell(t))
    });
    if report.passed() {
        let _ = writeln!(
            out,
            "## shipsim receiver `{}`: ✅ every verdict held ({} seed(s), {})\n",
            escape_markdown_cell(&report.receiver),
            report.seeds_run,
            report.mode
        );
    } else {
        let _ = writeln!(
            out,
            "## shipsim receiver `{}`: ❌ {} failure(s) in {} seed(s) ({})\n",
            escape_markdown_cell(&report.receiver),
            report.failures.len(),
            report.seeds_run,
            report.mode
        );
    }
    let _ = writeln!(out, "Seeds `{}`{target}\n", report.seeds);
    out.push_str("| verdict | result | failed seeds | first seed | what it demands |\n");
    out.push_str("|---|---|--:|--:|---|\n");
    for verdict in &report.verdicts {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} |",
            verdict.name,
            if verdict.seeds_failed == 0 {
                "✅ held"
            } else {
                "❌ broken"
            },
            verdict.seeds_failed,
            verdict
                .first_seed
                .map_or_else(|| "-".to_string(), |s| s.to_string()),
            escape_markdown_cell(&verdict.description)
        );
    }
    if let Some([p50, p95, p99, max, count]) = report.burst() {
        let _ = writeln!(
            out,
            "\nBurst latency: p50 {p50} ms, p95 {p95} ms, p99 {p99} ms, max {max} ms over {count} deliveries."
        );
    }
    for note in &report.notes {
        let _ = writeln!(out, "\n_{}_", escape_markdown_cell(note));
    }
    if let Some(problem) = &report.problem {
        let _ = writeln!(out, "\n**Problem:** {}", escape_markdown_cell(problem));
    }
    if !report.failures.is_empty() {
        out.push_str("\n### Failures\n\n");
        for failure in report.failures.iter().take(FAILURES_LISTED_MAX) {
            let _ = writeln!(
                out,
                "- `{}` on seed {}: {}\n  `{}`",
                failure.verdict,
                failure.seed,
                escape_markdown_cell(failure.evidence.first().map_or("", String::as_str)),
                failure.replay_command.replace('`', "'")
            );
        }
        if report.failures.len() > FAILURES_LISTED_MAX {
            let _ = writeln!(
                out,
                "- ... and {} more",
                report.failures.len() - FAILURES_LISTED_MAX
            );
        }
    }
    out
}
