//! The summary printed to the terminal at the end of a run.

use std::fmt::Write;

use crate::model::{ReceiverReport, Report, ScenarioReport};

/// Violations printed in full per scenario; the rest are counted.
const VIOLATIONS_PRINTED_MAX: usize = 3;

/// Renders the summary table, the failures with their replay commands, and the totals.
#[must_use]
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let rows: Vec<Vec<String>> = report.scenarios.iter().map(row).collect();
    let header = [
        "scenario",
        "seeds",
        "failed",
        "ops",
        "ambig",
        "retries",
        "replays",
        "dup-res",
        "dup-eff",
        "create p50/p95/p99 ms",
        "result",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if index > 0 {
                text.push_str("  ");
            }
            if index == 0 || index + 1 == cells.len() {
                let _ = write!(text, "{cell:<width$}");
            } else {
                let _ = write!(text, "{cell:>width$}");
            }
        }
        text.trim_end().to_string()
    };
    let header: Vec<String> = header.iter().map(|h| (*h).to_string()).collect();
    let _ = writeln!(out, "{}", line(&header));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    let _ = writeln!(out, "{}", line(&rule));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row));
    }

    for scenario in report.scenarios.iter().filter(|s| !s.passed) {
        let _ = writeln!(
            out,
            "\nFAILED {} ({} of {} seeds)",
            scenario.name, scenario.seeds_failed, scenario.seeds_run
        );
        for violation in scenario.violations.iter().take(VIOLATIONS_PRINTED_MAX) {
            let _ = writeln!(
                out,
                "  [{}] seed {}: {}",
                violation.oracle, violation.seed, violation.message
            );
            for evidence in violation.evidence.iter().take(4) {
                let _ = writeln!(out, "      {evidence}");
            }
            if let Some(repro) = &violation.repro {
                let _ = writeln!(out, "      repro: {repro}");
            }
            let _ = writeln!(out, "      replay: {}", violation.replay_command);
        }
        let shown = scenario.violations.len().min(VIOLATIONS_PRINTED_MAX);
        let total: u64 = scenario.oracles.iter().map(|o| o.violations).sum();
        if total > shown as u64 {
            let _ = writeln!(
                out,
                "  ... and {} more violation(s), see summary.json",
                total - shown as u64
            );
        }
        if let Some(shrunk) = &scenario.shrunk {
            let _ = writeln!(
                out,
                "  shrunk seed {} ({}): {} -> {} operations, {} -> {} faults, in {} runs",
                shrunk.seed,
                shrunk.caught_by,
                shrunk.operations_before,
                shrunk.operations_after,
                shrunk.faults_before,
                shrunk.faults_after,
                shrunk.shrink_runs
            );
            let _ = writeln!(out, "      replay: {}", shrunk.violation.replay_command);
        }
    }

    let totals = &report.totals;
    let wall = &report.run.wall;
    let _ = writeln!(
        out,
        "\n{} scenario(s), {} seed run(s), {} failed, {} violation(s), {} duplicate resource(s), {} duplicate effect(s)",
        totals.scenarios,
        totals.seeds_run,
        totals.seeds_failed,
        totals.violations,
        totals.duplicate_shipments,
        totals.duplicate_labels
    );
    if !totals.moments.is_empty() {
        let reached: Vec<String> = totals
            .moments
            .iter()
            .map(|(name, count)| format!("{name} {count}"))
            .collect();
        let _ = writeln!(
            out,
            "{} dangerous moment(s) reached: {}",
            reached.len(),
            reached.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "{:.1} s wall, {:.1} seeds/s, simulated time {:.0}x faster than wall time ({} job(s)), peak RSS {:.0} MiB",
        wall.elapsed_ms as f64 / 1_000.0,
        wall.seeds_per_second,
        wall.sim_speedup,
        report.run.jobs,
        wall.peak_rss_mib
    );
    out
}

fn row(scenario: &ScenarioReport) -> Vec<String> {
    let latency = scenario.headline_latency().map_or_else(
        || "-".to_string(),
        |(_, l)| format!("{}/{}/{}", l.p50, l.p95, l.p99),
    );
    vec![
        scenario.name.clone(),
        scenario.seeds_run.to_string(),
        scenario.seeds_failed.to_string(),
        scenario.operations.total.to_string(),
        scenario.operations.ambiguous.to_string(),
        scenario.retries.to_string(),
        scenario.idempotent_replays.to_string(),
        scenario.duplicate_shipments.to_string(),
        scenario.duplicate_labels.to_string(),
        latency,
        match (scenario.passed, scenario.expected_to_fail) {
            (true, false) => "ok",
            (true, true) => "caught",
            (false, _) => "FAILED",
        }
        .to_string(),
    ]
}

/// Failures of one verdict printed in full; the rest are counted.
const RECEIVER_FAILURES_PRINTED_MAX: usize = 3;

/// Renders a webhook receiver's run: one line per verdict, each broken verdict's first
/// failures (`BROKEN [verdict] seed N`, the evidence, the command that runs it again), the
/// burst latency, what the run could not do, and the verdict line (`PASSED` or `FAILED`).
#[must_use]
pub fn receiver(report: &ReceiverReport) -> String {
    let mut out = String::new();
    let target = report
        .target
        .as_ref()
        .map_or_else(String::new, |t| format!(" at {t}"));
    let _ = writeln!(
        out,
        "receiver {} ({}{target}), seeds {}: {} run",
        report.receiver, report.mode, report.seeds, report.seeds_run
    );
    let width = report
        .verdicts
        .iter()
        .map(|v| v.name.len())
        .max()
        .unwrap_or(0)
        .max("verdict".len());
    let _ = writeln!(out, "  {:<width$}  result  failed seeds  first", "verdict");
    for verdict in &report.verdicts {
        let result = if verdict.seeds_failed == 0 {
            "held"
        } else {
            "BROKEN"
        };
        let first = verdict
            .first_seed
            .map_or_else(|| "-".to_string(), |s| s.to_string());
        let _ = writeln!(
            out,
            "  {:<width$}  {result:<6}  {:>12}  {first}",
            verdict.name, verdict.seeds_failed
        );
    }
    for verdict in &report.verdicts {
        let failures: Vec<_> = report
            .failures
            .iter()
            .filter(|f| f.verdict == verdict.name)
            .collect();
        for failure in failures.iter().take(RECEIVER_FAILURES_PRINTED_MAX) {
            let _ = writeln!(out, "BROKEN [{}] seed {}", failure.verdict, failure.seed);
            for line in failure.evidence.iter().take(4) {
                let _ = writeln!(out, "    {line}");
            }
            if failure.evidence.len() > 4 {
                let _ = writeln!(out, "    ... {} more", failure.evidence.len() - 4);
            }
            if let Some(repro) = &failure.repro {
                let _ = writeln!(out, "    repro: {repro}");
            }
            let _ = writeln!(out, "    replay: {}", failure.replay_command);
        }
        if failures.len() > RECEIVER_FAILURES_PRINTED_MAX {
            let _ = writeln!(
                out,
                "  ... and {} more seed(s) broke {}",
                failures.len() - RECEIVER_FAILURES_PRINTED_MAX,
                verdict.name
            );
        }
    }
    if let Some([p50, p95, p99, max, count]) = report.burst() {
        let _ = writeln!(
            out,
            "  burst latency ms: p50 {p50}, p95 {p95}, p99 {p99}, max {max} ({count} deliveries)"
        );
    }
    for note in &report.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    if let Some(problem) = &report.problem {
        let _ = writeln!(out, "PROBLEM {problem}");
    }
    let broken = report
        .verdicts
        .iter()
        .filter(|v| v.seeds_failed > 0)
        .count();
    if report.passed() {
        let _ = writeln!(
            out,
            "PASSED every verdict held on {} seed(s)",
            report.seeds_run
        );
    } else {
        let seeds: std::collections::BTreeSet<u64> =
            report.failures.iter().map(|f| f.seed).collect();
        let _ = writeln!(
            out,
            "FAILED {broken} verdict(s) broken on {} of {} seed(s)",
            seeds.len(),
            report.seeds_run
        );
    }
    out
}
