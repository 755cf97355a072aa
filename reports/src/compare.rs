//! Comparing a report with a baseline (`shipsim compare BASE.json NEW.json`), to gate CI on
//! a checked-in `summary.json`.
//!
//! A *regression* fails the gate: an oracle that found more violations than in the
//! baseline, an end-to-end p95 or p99 that grew beyond the threshold, or a planted bug the
//! baseline caught and the new run did not. Everything else worth knowing (scenarios
//! without a counterpart, other seed sets, improvements past the threshold) is a *note*.

use std::fmt::Write as _;

use crate::model::{LatencySummary, Report, ScenarioReport};

/// What counts as a latency regression.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CompareOptions {
    /// Growth of p95 or p99 over the baseline that fails the gate, percent.
    pub threshold_percent: f64,
    /// Growth below this many ms never fails the gate, whatever the percentage (tiny
    /// latencies move by whole milliseconds).
    pub delta_ms_min: u64,
}

/// The percentiles compared, by name.
const METRICS: [&str; 2] = ["p95", "p99"];

fn metric(summary: &LatencySummary, name: &str) -> u64 {
    match name {
        "p95" => summary.p95,
        _ => summary.p99,
    }
}

/// One reason the new report is worse than the baseline.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Regression {
    /// An oracle found more violations than in the baseline.
    NewViolations {
        /// Scenario.
        scenario: String,
        /// Oracle.
        oracle: String,
        /// Violations in the baseline.
        base: u64,
        /// Violations now.
        new: u64,
        /// The first violation of that oracle kept in the new report, as one line with
        /// its replay command.
        example: Option<String>,
    },
    /// A latency percentile grew past the threshold.
    Latency {
        /// Scenario.
        scenario: String,
        /// Endpoint.
        endpoint: String,
        /// `p95` or `p99`.
        metric: &'static str,
        /// Baseline, ms.
        base_ms: u64,
        /// Now, ms.
        new_ms: u64,
    },
    /// A planted bug the baseline's hunt caught went undetected.
    BugMissed {
        /// Bug.
        bug: String,
        /// Scenario.
        scenario: String,
        /// Seeds the baseline needed.
        base_seeds: u64,
    },
}

/// The outcome of a comparison.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    /// What fails the gate.
    pub regressions: Vec<Regression>,
    /// What is worth knowing but does not fail it.
    pub notes: Vec<String>,
}

impl Comparison {
    /// Whether the gate fails.
    #[must_use]
    pub fn regressed(&self) -> bool {
        !self.regressions.is_empty()
    }
}

fn change_percent(base: u64, new: u64) -> f64 {
    if base == 0 {
        return f64::INFINITY;
    }
    (new as f64 - base as f64) / base as f64 * 100.0
}

/// Compares `new` with `base`.
#[must_use]
pub fn compare(base: &Report, new: &Report, options: &CompareOptions) -> Comparison {
    let mut result = Comparison::default();
    if base.run.seeds != new.run.seeds {
        result.notes.push(format!(
            "seed sets differ (baseline `{}`, new `{}`): latency compares different samples",
            base.run.seeds, new.run.seeds
        ));
    }
    if base.run.bugs != new.run.bugs {
        result.notes.push(format!(
            "planted bugs differ (baseline [{}], new [{}])",
            base.run.bugs.join(", "),
            new.run.bugs.join(", ")
        ));
    }
    for scenario in &new.scenarios {
        match base.scenarios.iter().find(|s| s.name == scenario.name) {
            Some(baseline) => compare_scenario(baseline, scenario, options, &mut result),
            None => {
                result.notes.push(format!(
                    "{}: not in the baseline; only its violations are judged",
                    scenario.name
                ));
                violations(None, scenario, &mut result);
            }
        }
    }
    for scenario in &base.scenarios {
        if !new.scenarios.iter().any(|s| s.name == scenario.name) {
            result.notes.push(format!(
                "{}: in the baseline but not in the new report",
                scenario.name
            ));
        }
    }
    for bug in &base.bugs {
        let Some(base_seeds) = bug.seeds_to_detect else {
            continue;
        };
        let now = new
            .bugs
            .iter()
            .find(|b| b.bug == bug.bug && b.scenario == bug.scenario);
        match now {
            Some(now) if now.seeds_to_detect.is_none() => {
                result.regressions.push(Regression::BugMissed {
                    bug: bug.bug.clone(),
                    scenario: bug.scenario.clone(),
                    base_seeds,
                });
            }
            Some(now) => {
                if let Some(seeds) = now.seeds_to_detect.filter(|&n| n > base_seeds) {
                    result.notes.push(format!(
                        "bug {} in {}: detected after {seeds} seed(s), baseline {base_seeds}",
                        bug.bug, bug.scenario
                    ));
                }
            }
            None => {}
        }
    }
    result
}

fn violations(base: Option<&ScenarioReport>, new: &ScenarioReport, result: &mut Comparison) {
    for oracle in &new.oracles {
        let before = base
            .and_then(|b| b.oracles.iter().find(|o| o.name == oracle.name))
            .map_or(0, |o| o.violations);
        if oracle.violations > before {
            let example = new
                .violations
                .iter()
                .find(|v| v.oracle == oracle.name)
                .map(|v| format!("seed {}: {} ({})", v.seed, v.message, v.replay_command));
            result.regressions.push(Regression::NewViolations {
                scenario: new.name.clone(),
                oracle: oracle.name.clone(),
                base: before,
                new: oracle.violations,
                example,
            });
        }
    }
}

fn compare_scenario(
    base: &ScenarioReport,
    new: &ScenarioReport,
    options: &CompareOptions,
    result: &mut Comparison,
) {
    violations(Some(base), new, result);
    if base.seeds_run != new.seeds_run {
        result.notes.push(format!(
            "{}: {} seed(s) in the baseline, {} now",
            new.name, base.seeds_run, new.seeds_run
        ));
    }
    for (endpoint, now) in &new.latency_ms {
        let Some(before) = base.latency_ms.get(endpoint) else {
            continue;
        };
        if before.count == 0 || now.count == 0 {
            continue;
        }
        for name in METRICS {
            let (base_ms, new_ms) = (metric(before, name), metric(now, name));
            let change = change_percent(base_ms, new_ms);
            if new_ms > base_ms
                && new_ms - base_ms >= options.delta_ms_min
                && change > options.threshold_percent
            {
                result.regressions.push(Regression::Latency {
                    scenario: new.name.clone(),
                    endpoint: endpoint.clone(),
                    metric: name,
                    base_ms,
                    new_ms,
                });
            } else if base_ms > new_ms
                && base_ms - new_ms >= options.delta_ms_min
                && -change > options.threshold_percent
            {
                result.notes.push(format!(
                    "{}: {endpoint} {name} improved {base_ms} -> {new_ms} ms ({change:+.1}%): consider refreshing the baseline",
                    new.name
                ));
            }
        }
    }
}

/// The comparison as text for the terminal: regressions, notes, verdict. `base_name` and
/// `new_name` say which files were compared.
#[must_use]
pub fn render(
    comparison: &Comparison,
    base_name: &str,
    new_name: &str,
    options: &CompareOptions,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "compare {new_name} against baseline {base_name} (latency threshold {}% on p95/p99, ignoring changes under {} ms)",
        options.threshold_percent, options.delta_ms_min
    );
    for regression in &comparison.regressions {
        match regression {
            Regression::NewViolations {
                scenario,
                oracle,
                base,
                new,
                example,
            } => {
                let _ = writeln!(
                    out,
                    "REGRESSION {scenario}: {oracle} found {new} violation(s), baseline {base}"
                );
                if let Some(example) = example {
                    let _ = writeln!(out, "    {example}");
                }
            }
            Regression::Latency {
                scenario,
                endpoint,
                metric,
                base_ms,
                new_ms,
            } => {
                let _ = writeln!(
                    out,
                    "REGRESSION {scenario}: {endpoint} {metric} {base_ms} -> {new_ms} ms ({:+.1}%)",
                    change_percent(*base_ms, *new_ms)
                );
            }
            Regression::BugMissed {
                bug,
                scenario,
                base_seeds,
            } => {
                let _ = writeln!(
                    out,
                    "REGRESSION bug {bug} in {scenario}: no longer detected (baseline caught it in {base_seeds} seed(s))"
                );
            }
        }
    }
    for note in &comparison.notes {
        let _ = writeln!(out, "note: {note}");
    }
    if comparison.regressed() {
        let _ = writeln!(
            out,
            "{} regression(s) against the baseline",
            comparison.regressions.len()
        );
    } else {
        let _ = writeln!(out, "no regression against the baseline");
    }
    out
}
