//! The summary printed to the terminal at the end of a run.

use std::fmt::Write;

use crate::model::{LiveReport, LiveState, ReceiverReport, Report, ScenarioReport};

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

/// Renders a live run: what ran against what, the counts and rate of the workload, each
/// endpoint's latency, the proxies and their faults, what could not be applied, where the
/// final state came from, one line per oracle, every violation with its evidence, and the
/// verdict line (`PASSED` or `FAILED`).
#[must_use]
pub fn live(report: &LiveReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "LIVE run of {} against {}: real network, real processes, no determinism guarantee",
        report.scenario, report.target
    );
    let _ = writeln!(
        out,
        "  workload seed {} (operations and fault decisions come from it; timing and interleaving do not); idempotency keys of this run: *-{}-*",
        report.seed, report.run_id
    );
    live_workload(&mut out, report);
    live_faults(&mut out, report);
    live_state(&mut out, report);
    live_verdicts(&mut out, report);
    let _ = writeln!(
        out,
        "{} (seed {}, {} ms)",
        if report.passed() { "PASSED" } else { "FAILED" },
        report.seed,
        report.total_ms
    );
    out
}

/// The workload's counts and rate, and each endpoint's latency.
fn live_workload(out: &mut String, report: &LiveReport) {
    let ops = &report.operations;
    let requests = &report.requests;
    let rate = requests.total as f64 / (report.workload_ms.max(1) as f64 / 1_000.0);
    let _ = writeln!(
        out,
        "  {} operations ({} ok, {} failed, {} ambiguous, {} resolved after heal) in {} ms; {} requests ({rate:.0}/s): {} 2xx, {} 4xx, {} 429, {} 5xx, {} timeouts, {} transport errors; {} retries, {} replays",
        ops.total,
        ops.ok,
        ops.failed,
        ops.ambiguous,
        ops.resolved_after_heal,
        report.workload_ms,
        requests.total,
        requests.s2xx,
        requests.s4xx,
        requests.s429,
        requests.s5xx,
        requests.timeouts,
        requests.transport_errors,
        report.retries,
        report.replays
    );
    for latency in &report.latency_ms {
        let _ = writeln!(
            out,
            "  {:<32} p50 {:>5} ms  p95 {:>5} ms  max {:>5} ms",
            latency.route, latency.p50, latency.p95, latency.max
        );
    }
}

/// The proxies and their rules, and the faults no proxy applied.
fn live_faults(out: &mut String, report: &LiveReport) {
    for proxy in &report.proxies {
        let _ = writeln!(
            out,
            "  proxy in front of {} ({}):",
            proxy.host, proxy.upstream
        );
        for rule in &proxy.rules {
            let _ = writeln!(
                out,
                "    fault #{} {} during {}: fired {}",
                rule.index, rule.describe, rule.window, rule.fired
            );
        }
    }
    if report.http_faults_unapplied {
        let _ = writeln!(
            out,
            "  no fault proxy found: the scenario's HTTP faults were not applied (use --proxy or `shipsim proxy`)"
        );
    }
    for fault in &report.faults_not_applied {
        let _ = writeln!(out, "  not applied in live mode: fault {fault}");
    }
}

/// Where the final state came from, what it held, and its duplicates.
fn live_state(out: &mut String, report: &LiveReport) {
    match &report.state {
        LiveState::Admin {
            orders,
            shipments,
            labels,
        }
        | LiveState::ApiReads {
            orders,
            shipments,
            labels,
        } => {
            let source = if matches!(report.state, LiveState::Admin { .. }) {
                "the service's whole store (admin endpoint)"
            } else {
                "public API reads (no admin key: a service that is not ours)"
            };
            let _ = writeln!(
                out,
                "  final state from {source}: {orders} orders, {shipments} shipments; carrier ledger {}",
                labels.map_or_else(|| "not read".to_string(), |s| format!("{s} labels"))
            );
            let _ = writeln!(
                out,
                "  duplicate resources {}, duplicate effects {}",
                report.duplicate_resources, report.duplicate_effects
            );
        }
        LiveState::ReadBack { reads, ledgers } => {
            let ledgers = if ledgers.is_empty() {
                "no downstream ledger read".to_string()
            } else {
                ledgers
                    .iter()
                    .map(|ledger| format!("`{}` {} effect(s)", ledger.name, ledger.effects))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                out,
                "  final state from {reads} read-back(s) of acknowledged resources through the API; downstream ledgers: {ledgers}"
            );
            let _ = writeln!(
                out,
                "  resources beyond the first per key {}, effects beyond the first per resource {}",
                report.duplicate_resources, report.duplicate_effects
            );
        }
    }
}

/// One line per oracle run or skipped, then every violation with its evidence.
fn live_verdicts(out: &mut String, report: &LiveReport) {
    for oracle in &report.oracles {
        let verdict = if oracle.violations == 0 {
            "held".to_string()
        } else {
            format!("{} violation(s)", oracle.violations)
        };
        match &oracle.caveat {
            Some(caveat) => {
                let _ = writeln!(
                    out,
                    "  oracle {:<20} {verdict} (partial: {caveat})",
                    oracle.name
                );
            }
            None => {
                let _ = writeln!(out, "  oracle {:<20} {verdict}", oracle.name);
            }
        }
    }
    for skipped in &report.oracles_skipped {
        let _ = writeln!(
            out,
            "  oracle {:<20} skipped: {}",
            skipped.name, skipped.reason
        );
    }
    for violation in &report.violations {
        let _ = writeln!(
            out,
            "VIOLATION [{}] seed {}: {}",
            violation.oracle, violation.seed, violation.message
        );
        for line in &violation.evidence {
            let _ = writeln!(out, "    {line}");
        }
        if !violation.operations.is_empty() {
            let ops: std::collections::BTreeSet<_> = violation.operations.iter().collect();
            let _ = writeln!(out, "    operations: {ops:?}");
        }
    }
}
