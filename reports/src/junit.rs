//! `junit.xml`: one test case per (scenario, seed set), in the JUnit XML dialect CI test
//! reporters read (Jenkins, GitLab, GitHub test-report actions). A failing case carries one
//! `<failure>` whose text lists every violation kept in the report with its seed, evidence
//! and replay command.
//!
//! The document is valid under the Jenkins/Surefire JUnit schema (xunit-plugin's
//! `junit-10.xsd`), the strictest one CI tools agree on: a `<testcase>` takes only `name`,
//! `classname`, `time` and `group`, so each scenario's file goes into the suite's
//! `<properties>` as `scenario.<name>.file`; every test case has a `time` (the wall time
//! spent simulating its seeds, from `run.wall`), and the suite says how many were
//! `skipped` (none: a scenario either runs or is refused before the run starts).

use std::fmt::Write as _;

use crate::RenderError;
use crate::markup::{escape, seed_set};
use crate::model::{BugDetection, Report, ScenarioReport};

/// Seed ranges written in a test case's name before the rest are counted.
const SEED_RANGES_NAMED_MAX: usize = 4;

/// Evidence lines written per violation in a failure's text.
const EVIDENCE_LINES_MAX: usize = 6;

/// Renders the JUnit XML document.
///
/// # Errors
/// Never today; the `Result` keeps the renderers' signatures alike.
pub fn render(report: &Report) -> Result<String, RenderError> {
    let tests = report.scenarios.len() + report.bugs.len();
    let failures = report.scenarios.iter().filter(|s| !s.passed).count() + report.bugs_escaped();
    let time_s = report.run.wall.elapsed_ms as f64 / 1_000.0;
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"shipsim\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{time_s:.3}\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"shipsim\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{time_s:.3}\">"
    );
    out.push_str("    <properties>\n");
    let bugs = report.run.bugs.join(",");
    let files = report
        .scenarios
        .iter()
        .map(|s| (format!("scenario.{}.file", s.name), s.path.as_str()));
    let run = [
        ("tool", report.tool.as_str()),
        ("seeds", report.run.seeds.as_str()),
        ("bugs", bugs.as_str()),
        ("shard", report.run.shard.as_deref().unwrap_or("")),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value));
    for (name, value) in run.chain(files) {
        let _ = writeln!(
            out,
            "      <property name=\"{}\" value=\"{}\"/>",
            escape(&name),
            escape(value)
        );
    }
    out.push_str("    </properties>\n");
    for scenario in &report.scenarios {
        let busy_ms = report
            .run
            .wall
            .scenario_busy_ms
            .get(&scenario.name)
            .copied()
            .unwrap_or(0);
        test_case(&mut out, scenario, busy_ms);
    }
    for bug in &report.bugs {
        bug_case(&mut out, bug);
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    Ok(out)
}

/// A hunted planted bug is a test that passes when some seed caught it.
fn bug_case(out: &mut String, bug: &BugDetection) {
    // A hunt does not time each bug apart: its wall time is the suite's.
    let _ = write!(
        out,
        "    <testcase classname=\"shipsim.hunt\" name=\"{} [{}]\" time=\"0.000\"",
        escape(&bug.bug),
        escape(&bug.scenario)
    );
    match bug.seeds_to_detect {
        Some(seeds) => {
            let _ = writeln!(
                out,
                "><system-out>caught by {} after {seeds} seed(s){}</system-out></testcase>",
                escape(bug.caught_by.as_deref().unwrap_or("an oracle")),
                bug.repro
                    .as_deref()
                    .map_or_else(String::new, |r| format!("; repro: {}", escape(r)))
            );
        }
        None => {
            let _ = writeln!(
                out,
                ">\n      <failure type=\"escaped\" message=\"planted bug {} escaped every oracle in {} seed(s)\"/>\n    </testcase>",
                escape(&bug.bug),
                bug.seeds_run
            );
        }
    }
}

fn test_case(out: &mut String, s: &ScenarioReport, busy_ms: u64) {
    let seeds: Vec<u64> = s.seeds.iter().map(|seed| seed.seed).collect();
    let name = format!(
        "{} [seeds {}]",
        s.name,
        seed_set(&seeds, SEED_RANGES_NAMED_MAX)
    );
    let _ = write!(
        out,
        "    <testcase classname=\"shipsim.{}\" name=\"{}\" time=\"{:.3}\"",
        escape(&s.name),
        escape(&name),
        busy_ms as f64 / 1_000.0
    );
    if s.passed {
        out.push_str("/>\n");
        return;
    }
    out.push_str(">\n");
    let violated: Vec<&str> = s
        .oracles
        .iter()
        .filter(|o| o.violations > 0)
        .map(|o| o.name.as_str())
        .collect();
    let total: u64 = s.oracles.iter().map(|o| o.violations).sum();
    let message = s.violations.first().map_or_else(
        || format!("{total} violation(s)"),
        |first| {
            format!(
                "{total} violation(s) in {} of {} seed(s); first: [{}] seed {}: {}",
                s.seeds_failed, s.seeds_run, first.oracle, first.seed, first.message
            )
        },
    );
    let mut text = String::new();
    for violation in &s.violations {
        let _ = writeln!(
            text,
            "[{}] seed {}: {}",
            violation.oracle, violation.seed, violation.message
        );
        for line in violation.evidence.iter().take(EVIDENCE_LINES_MAX) {
            let _ = writeln!(text, "    {line}");
        }
        if let Some(repro) = &violation.repro {
            let _ = writeln!(text, "    repro: {repro}");
        }
        let _ = writeln!(text, "    replay: {}", violation.replay_command);
    }
    let shown = s.violations.len() as u64;
    if total > shown {
        let _ = writeln!(
            text,
            "... and {} more violation(s), see summary.json",
            total - shown
        );
    }
    let _ = writeln!(
        out,
        "      <failure type=\"{}\" message=\"{}\">{}</failure>",
        escape(&violated.join(",")),
        escape(&message),
        escape(&text)
    );
    out.push_str("    </testcase>\n");
}
