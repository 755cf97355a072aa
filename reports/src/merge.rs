//! Merging the reports of the shards of one sweep (`shipsim run --shard I/N`) into the
//! report of the whole sweep.
//!
//! Counts add; histograms are decoded, added and re-encoded, so percentiles are exact (not
//! averages of percentiles); seeds and violations are put back in seed order; judgements
//! over a whole scenario (fault coverage, latency budgets) are made again on the merged
//! data with the same code a run uses ([`crate::judge`]). The merged report equals the
//! report of the unsharded sweep except for the wall-clock block, `run.jobs`, and the
//! details only a run can produce (which failing seeds got a timeline and a repro file).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::histogram::{HistogramKind, decode, encode, summarize};
use crate::judge;
use crate::model::{
    BugDetection, FaultReport, LatencySummary, OperationCounts, OracleReport, Report,
    RequestCounts, RunInfo, SCHEMA_VERSION, ScenarioReport, Totals, VIOLATIONS_KEPT_MAX, WallClock,
};

/// Reports that cannot be merged into one honest report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// No report was given.
    #[error("no report to merge")]
    Empty,
    /// A report of another schema version.
    #[error("{source_name}: schema_version {found}, this build merges {SCHEMA_VERSION}")]
    Schema {
        /// Where the report came from.
        source_name: String,
        /// Its version.
        found: u32,
    },
    /// Reports of runs with different planted bugs.
    #[error(
        "{source_name} ran planted bugs [{found}] but {first} ran [{expected}]: merge only shards of one sweep"
    )]
    BugsDiffer {
        /// The odd report.
        source_name: String,
        /// Its bugs.
        found: String,
        /// The first report.
        first: String,
        /// The first report's bugs.
        expected: String,
    },
    /// Some reports are shards and some are not, or shards of different splits.
    #[error("{source_name} is {found} but {first} is {expected}: merge only shards of one sweep")]
    ShardsDiffer {
        /// The odd report.
        source_name: String,
        /// Its shard (`I/N` or `unsharded`).
        found: String,
        /// The first report.
        first: String,
        /// The first report's shard.
        expected: String,
    },
    /// The same shard twice.
    #[error("shard {shard} is given twice ({first} and {second})")]
    DuplicateShard {
        /// `I/N`.
        shard: String,
        /// One source.
        first: String,
        /// The other.
        second: String,
    },
    /// A shard of the split is missing: the merged report would silently lack its seeds.
    #[error("shard(s) {missing} of {count} missing: merge every shard of the sweep")]
    MissingShards {
        /// Missing indices, comma-separated.
        missing: String,
        /// N.
        count: u32,
    },
    /// A shard label that is not `I/N`.
    #[error("{source_name}: run.shard `{shard}` is not I/N")]
    BadShard {
        /// Where the report came from.
        source_name: String,
        /// The label.
        shard: String,
    },
    /// The same (scenario, seed) in two reports: it would be counted twice.
    #[error(
        "scenario `{scenario}` seed {seed} is in both {first} and {second}: reports to merge must cover disjoint seeds"
    )]
    OverlappingSeeds {
        /// Scenario.
        scenario: String,
        /// Seed.
        seed: u64,
        /// One source.
        first: String,
        /// The other.
        second: String,
    },
    /// A scenario whose definition differs between reports (another file, other faults).
    #[error("scenario `{scenario}` differs between {first} and {second}: {what}")]
    ScenarioDiffers {
        /// Scenario.
        scenario: String,
        /// One source.
        first: String,
        /// The other.
        second: String,
        /// What differs.
        what: String,
    },
    /// A stored histogram could not be read or written.
    #[error("{source_name}: scenario `{scenario}` histogram `{key}`: {reason}")]
    Histogram {
        /// Where the report came from.
        source_name: String,
        /// Scenario.
        scenario: String,
        /// Histogram key.
        key: String,
        /// Why.
        reason: String,
    },
}

/// Merges `inputs`, each a report with the name of where it came from (for messages).
///
/// # Errors
/// [`MergeError`] when the reports are not shards of one sweep: other schema, other
/// planted bugs, a shard missing or given twice, a seed in two reports, a scenario defined
/// differently, or an unreadable histogram.
pub fn merge(inputs: &[(String, Report)]) -> Result<Report, MergeError> {
    let (first_name, first) = inputs.first().ok_or(MergeError::Empty)?;
    for (name, report) in inputs {
        if report.schema_version != SCHEMA_VERSION {
            return Err(MergeError::Schema {
                source_name: name.clone(),
                found: report.schema_version,
            });
        }
        if report.run.bugs != first.run.bugs {
            return Err(MergeError::BugsDiffer {
                source_name: name.clone(),
                found: report.run.bugs.join(", "),
                first: first_name.clone(),
                expected: first.run.bugs.join(", "),
            });
        }
    }
    check_shards(inputs)?;
    check_disjoint(inputs)?;

    let mut order: Vec<&str> = Vec::new();
    let mut parts: BTreeMap<&str, Vec<(&str, &ScenarioReport)>> = BTreeMap::new();
    for (name, report) in inputs {
        for scenario in &report.scenarios {
            if !parts.contains_key(scenario.name.as_str()) {
                order.push(&scenario.name);
            }
            parts
                .entry(&scenario.name)
                .or_default()
                .push((name.as_str(), scenario));
        }
    }
    let mut scenarios = Vec::with_capacity(order.len());
    for name in order {
        scenarios.push(merge_scenario(&parts[name])?);
    }
    let totals = Totals::of(&scenarios);
    Ok(Report {
        schema_version: SCHEMA_VERSION,
        tool: first.tool.clone(),
        run: merge_run(inputs, &totals),
        totals,
        scenarios,
        bugs: merge_bugs(inputs),
    })
}

fn shard_label(report: &Report) -> String {
    report
        .run
        .shard
        .clone()
        .unwrap_or_else(|| "unsharded".to_string())
}

/// Shards must all be of one split, each once, none missing; or no report is a shard.
fn check_shards(inputs: &[(String, Report)]) -> Result<(), MergeError> {
    let (first_name, first) = &inputs[0];
    let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
    let mut count_expected = None;
    for (name, report) in inputs {
        if report.run.shard.is_some() != first.run.shard.is_some() {
            return Err(MergeError::ShardsDiffer {
                source_name: name.clone(),
                found: shard_label(report),
                first: first_name.clone(),
                expected: shard_label(first),
            });
        }
        let Some(label) = &report.run.shard else {
            continue;
        };
        let (index, count) = parse_shard(label).ok_or_else(|| MergeError::BadShard {
            source_name: name.clone(),
            shard: label.clone(),
        })?;
        if *count_expected.get_or_insert(count) != count {
            return Err(MergeError::ShardsDiffer {
                source_name: name.clone(),
                found: label.clone(),
                first: first_name.clone(),
                expected: shard_label(first),
            });
        }
        if let Some(previous) = seen.insert(index, name) {
            return Err(MergeError::DuplicateShard {
                shard: label.clone(),
                first: previous.to_string(),
                second: name.clone(),
            });
        }
    }
    if let Some(count) = count_expected {
        let missing: Vec<String> = (1..=count)
            .filter(|i| !seen.contains_key(i))
            .map(|i| i.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(MergeError::MissingShards {
                missing: missing.join(", "),
                count,
            });
        }
    }
    Ok(())
}

fn parse_shard(label: &str) -> Option<(u32, u32)> {
    let (index, count) = label.split_once('/')?;
    let index: u32 = index.trim().parse().ok()?;
    let count: u32 = count.trim().parse().ok()?;
    (index >= 1 && index <= count).then_some((index, count))
}

fn check_disjoint(inputs: &[(String, Report)]) -> Result<(), MergeError> {
    let mut owner: BTreeMap<(&str, u64), &str> = BTreeMap::new();
    for (name, report) in inputs {
        for scenario in &report.scenarios {
            for seed in &scenario.seeds {
                if let Some(previous) = owner.insert((&scenario.name, seed.seed), name) {
                    return Err(MergeError::OverlappingSeeds {
                        scenario: scenario.name.clone(),
                        seed: seed.seed,
                        first: previous.to_string(),
                        second: name.clone(),
                    });
                }
            }
        }
    }
    Ok(())
}

fn merge_run(inputs: &[(String, Report)], totals: &Totals) -> RunInfo {
    let first = &inputs[0].1.run;
    let mut labels: Vec<&str> = Vec::new();
    for (_, report) in inputs {
        if !labels.contains(&report.run.seeds.as_str()) {
            labels.push(&report.run.seeds);
        }
    }
    // Shards run side by side: the sweep took as long as its slowest shard, and its
    // simulation time was spent over the sum of the shards' busy time.
    let elapsed_ms = inputs
        .iter()
        .map(|(_, r)| r.run.wall.elapsed_ms)
        .max()
        .unwrap_or(0);
    let busy_s: f64 = inputs
        .iter()
        .filter(|(_, r)| r.run.wall.sim_speedup > 0.0)
        .map(|(_, r)| r.totals.sim_ms as f64 / 1_000.0 / r.run.wall.sim_speedup)
        .sum();
    let round2 = |value: f64| (value * 100.0).round() / 100.0;
    RunInfo {
        seeds: labels.join(", "),
        bugs: first.bugs.clone(),
        shard: None,
        check_determinism: inputs.iter().all(|(_, r)| r.run.check_determinism),
        jobs: inputs.iter().map(|(_, r)| r.run.jobs).max().unwrap_or(0),
        wall: WallClock {
            elapsed_ms,
            seeds_per_second: round2(
                totals.seeds_run as f64 / (elapsed_ms as f64 / 1_000.0).max(1e-9),
            ),
            sim_speedup: if busy_s > 0.0 {
                round2(totals.sim_ms as f64 / 1_000.0 / busy_s)
            } else {
                0.0
            },
            // Shards ran on different machines: the largest of them bounds each one.
            peak_rss_mib: inputs
                .iter()
                .map(|(_, r)| r.run.wall.peak_rss_mib)
                .fold(0.0, f64::max),
            // Shards split a scenario's seeds: its busy time is the sum of theirs.
            scenario_busy_ms: inputs.iter().fold(BTreeMap::new(), |mut sums, (_, r)| {
                for (name, ms) in &r.run.wall.scenario_busy_ms {
                    *sums.entry(name.clone()).or_insert(0) += ms;
                }
                sums
            }),
        },
    }
}

fn merge_bugs(inputs: &[(String, Report)]) -> Vec<BugDetection> {
    let mut merged: Vec<BugDetection> = Vec::new();
    for (_, report) in inputs {
        for bug in &report.bugs {
            match merged
                .iter_mut()
                .find(|b| b.bug == bug.bug && b.scenario == bug.scenario)
            {
                Some(entry) => {
                    let earlier = match (entry.seeds_to_detect, bug.seeds_to_detect) {
                        (Some(a), Some(b)) => b < a,
                        (None, Some(_)) => true,
                        _ => false,
                    };
                    let seeds_run = entry.seeds_run + bug.seeds_run;
                    if earlier {
                        // The earlier catch's details (oracle, shrunk repro) come with it.
                        *entry = bug.clone();
                    }
                    entry.seeds_run = seeds_run;
                }
                None => merged.push(bug.clone()),
            }
        }
    }
    merged
}

fn add_operations(into: &mut OperationCounts, from: &OperationCounts) {
    into.total += from.total;
    into.ok += from.ok;
    into.failed += from.failed;
    into.ambiguous += from.ambiguous;
    into.resolved_after_heal += from.resolved_after_heal;
}

fn add_requests(into: &mut RequestCounts, from: &RequestCounts) {
    into.total += from.total;
    into.s2xx += from.s2xx;
    into.s4xx += from.s4xx;
    into.s5xx += from.s5xx;
    into.s429 += from.s429;
    into.timeouts += from.timeouts;
    into.transport_errors += from.transport_errors;
}

/// Adds every part's histograms key by key.
fn merge_histograms(
    parts: &[(&str, &ScenarioReport)],
) -> Result<BTreeMap<String, Histogram<u64>>, MergeError> {
    let mut merged: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for (name, part) in parts {
        for (key, text) in &part.histograms {
            let error = |reason: String| MergeError::Histogram {
                source_name: (*name).to_string(),
                scenario: part.name.clone(),
                key: key.clone(),
                reason,
            };
            let histogram = decode(text).map_err(|e| error(e.to_string()))?;
            match merged.get_mut(key) {
                Some(sum) => sum
                    .add(&histogram)
                    .map_err(|e| error(format!("cannot add: {e:?}")))?,
                None => {
                    merged.insert(key.clone(), histogram);
                }
            }
        }
    }
    Ok(merged)
}

fn check_same_scenario(parts: &[(&str, &ScenarioReport)]) -> Result<(), MergeError> {
    let (first_name, first) = parts[0];
    let fault_shape = |s: &ScenarioReport| -> Vec<(u64, String, String)> {
        s.faults
            .iter()
            .map(|f| (f.index, f.kind.clone(), f.description.clone()))
            .collect()
    };
    for (name, part) in &parts[1..] {
        let what = if part.path != first.path {
            Some(format!("file {} vs {}", first.path, part.path))
        } else if fault_shape(part) != fault_shape(first) {
            Some("its faults differ".to_string())
        } else if part
            .budgets
            .iter()
            .map(|b| (&b.endpoint, &b.metric, b.limit_ms))
            .ne(first
                .budgets
                .iter()
                .map(|b| (&b.endpoint, &b.metric, b.limit_ms)))
        {
            Some("its latency budgets differ".to_string())
        } else {
            None
        };
        if let Some(what) = what {
            return Err(MergeError::ScenarioDiffers {
                scenario: first.name.clone(),
                first: first_name.to_string(),
                second: (*name).to_string(),
                what,
            });
        }
    }
    Ok(())
}

fn merge_scenario(parts: &[(&str, &ScenarioReport)]) -> Result<ScenarioReport, MergeError> {
    check_same_scenario(parts)?;
    let first = parts[0].1;
    let mut merged = ScenarioReport {
        name: first.name.clone(),
        path: first.path.clone(),
        description: first.description.clone(),
        passed: true,
        seeds_run: 0,
        seeds_failed: 0,
        operations: OperationCounts::default(),
        requests: RequestCounts::default(),
        retries: 0,
        idempotent_replays: 0,
        duplicate_shipments: 0,
        duplicate_labels: 0,
        duplicate_deliveries_absorbed: 0,
        in_flight_conflicts: 0,
        latency_ms: BTreeMap::new(),
        attempt_latency_ms: BTreeMap::new(),
        fault_window_latency_ms: BTreeMap::new(),
        quiet_window_latency_ms: BTreeMap::new(),
        histograms: BTreeMap::new(),
        faults: Vec::new(),
        oracles: Vec::new(),
        budgets: Vec::new(),
        violations: Vec::new(),
        seeds: Vec::new(),
        expected_to_fail: first.expected_to_fail,
        webhooks: None,
        // Each shard shrank its own first failure; the merged sweep's first is the lowest.
        shrunk: parts
            .iter()
            .filter_map(|(_, part)| part.shrunk.as_ref())
            .min_by_key(|shrunk| shrunk.seed)
            .cloned(),
        moments: merge_moments(parts),
    };
    for (_, part) in parts {
        if let Some(theirs) = &part.webhooks {
            let ours = merged.webhooks.get_or_insert_with(Default::default);
            ours.delivered += theirs.delivered;
            ours.attempts += theirs.attempts;
            ours.duplicates_absorbed += theirs.duplicates_absorbed;
            ours.rejected += theirs.rejected;
            ours.dead_lettered += theirs.dead_lettered;
        }
        merged.seeds_run += part.seeds_run;
        merged.seeds_failed += part.seeds_failed;
        add_operations(&mut merged.operations, &part.operations);
        add_requests(&mut merged.requests, &part.requests);
        merged.retries += part.retries;
        merged.idempotent_replays += part.idempotent_replays;
        merged.duplicate_shipments += part.duplicate_shipments;
        merged.duplicate_labels += part.duplicate_labels;
        merged.duplicate_deliveries_absorbed += part.duplicate_deliveries_absorbed;
        merged.in_flight_conflicts += part.in_flight_conflicts;
        merged.seeds.extend(part.seeds.iter().cloned());
    }
    merged.seeds.sort_by_key(|s| s.seed);

    let histograms = merge_histograms(parts)?;
    for (key, histogram) in &histograms {
        let Some((kind, endpoint)) = HistogramKind::parse_key(key) else {
            continue;
        };
        let summaries = match kind {
            HistogramKind::E2e => &mut merged.latency_ms,
            HistogramKind::Attempt => &mut merged.attempt_latency_ms,
            HistogramKind::E2eFault => &mut merged.fault_window_latency_ms,
            HistogramKind::E2eQuiet => &mut merged.quiet_window_latency_ms,
        };
        summaries.insert(endpoint.to_string(), summarize(histogram));
    }
    if let Some(webhooks) = merged.webhooks.as_mut() {
        for direction in ["inbound", "outbound"] {
            if let Some(histogram) = histograms.get(&format!("webhook {direction}")) {
                webhooks
                    .latency_ms
                    .insert(direction.to_string(), summarize(histogram));
            }
        }
    }
    for (key, histogram) in histograms {
        let text = encode(&histogram).map_err(|e| MergeError::Histogram {
            source_name: "merged report".to_string(),
            scenario: merged.name.clone(),
            key: key.clone(),
            reason: e.to_string(),
        })?;
        merged.histograms.insert(key, text);
    }

    merged.faults = merge_faults(parts);
    merged.oracles = merge_oracle_counts(parts);
    let mut per_seed: Vec<_> = parts
        .iter()
        .flat_map(|(_, part)| part.violations.iter())
        .filter(|v| !judge::is_scenario_wide(&v.oracle))
        .cloned()
        .collect();
    // Stable: a seed belongs to one part, so its violations keep their order.
    per_seed.sort_by_key(|v| v.seed);
    per_seed.truncate(VIOLATIONS_KEPT_MAX);
    merged.violations = per_seed;
    judge_scenario(&mut merged, &first.budgets);
    merged.passed = if merged.expected_to_fail {
        merged.seeds_failed == merged.seeds_run
    } else {
        merged.seeds_failed == 0 && merged.oracles.iter().all(|o| o.violations == 0)
    };
    Ok(merged)
}

/// Sums each moment's counts over the parts, by name, in the first part's order (moments
/// only another part knows come after).
fn merge_moments(parts: &[(&str, &ScenarioReport)]) -> Vec<crate::model::MomentReport> {
    let mut moments: Vec<crate::model::MomentReport> = Vec::new();
    for (_, part) in parts {
        for moment in &part.moments {
            match moments.iter_mut().find(|m| m.name == moment.name) {
                Some(sum) => {
                    sum.reached += moment.reached;
                    sum.seeds_reached += moment.seeds_reached;
                    sum.required |= moment.required;
                }
                None => moments.push(moment.clone()),
            }
        }
    }
    moments
}

fn merge_faults(parts: &[(&str, &ScenarioReport)]) -> Vec<FaultReport> {
    let mut faults = parts[0].1.faults.clone();
    for fault in &mut faults {
        fault.fired = 0;
        fault.seeds_fired = 0;
    }
    for (_, part) in parts {
        for (fault, other) in faults.iter_mut().zip(&part.faults) {
            fault.fired += other.fired;
            fault.seeds_fired += other.seeds_fired;
        }
    }
    faults
}

/// Sums per-seed oracle counts in first-seen order; the scenario-wide ones restart at 0
/// (kept only when the scenario declares them) to be judged again.
fn merge_oracle_counts(parts: &[(&str, &ScenarioReport)]) -> Vec<OracleReport> {
    let mut oracles: Vec<OracleReport> = Vec::new();
    for (_, part) in parts {
        for oracle in &part.oracles {
            let scenario_wide = judge::is_scenario_wide(&oracle.name);
            if oracle.name == judge::FAULT_COVERAGE || oracle.name == judge::REACHABILITY {
                continue;
            }
            let add = if scenario_wide { 0 } else { oracle.violations };
            match oracles.iter_mut().find(|o| o.name == oracle.name) {
                Some(entry) => entry.violations += add,
                None => oracles.push(OracleReport {
                    name: oracle.name.clone(),
                    violations: add,
                }),
            }
        }
    }
    oracles
}

/// Makes the whole-scenario judgements on merged data, exactly as a run does: fault
/// coverage first, then the budgets (observed values re-read from merged histograms).
fn judge_scenario(merged: &mut ScenarioReport, budgets: &[crate::model::BudgetReport]) {
    let first_seed = merged.seeds.first().map_or(0, |s| s.seed);
    let count = |oracles: &mut Vec<OracleReport>, name: &str| match oracles
        .iter_mut()
        .find(|o| o.name == name)
    {
        Some(entry) => entry.violations += 1,
        None => oracles.push(OracleReport {
            name: name.to_string(),
            violations: 1,
        }),
    };
    if merged.seeds_run > 0 {
        let never_fired: Vec<FaultReport> = merged
            .faults
            .iter()
            .filter(|f| f.fired == 0)
            .cloned()
            .collect();
        for fault in never_fired {
            count(&mut merged.oracles, judge::FAULT_COVERAGE);
            merged.violations.push(judge::fault_never_fired(
                &merged.path,
                &fault,
                merged.seeds_run,
                first_seed,
            ));
        }
        let unreached: Vec<crate::model::MomentReport> = merged
            .moments
            .iter()
            .filter(|m| m.required && m.reached == 0)
            .cloned()
            .collect();
        for moment in unreached {
            count(&mut merged.oracles, judge::REACHABILITY);
            merged.violations.push(judge::moment_never_reached(
                &merged.path,
                &moment,
                merged.seeds_run,
                first_seed,
            ));
        }
    }
    let declared = merged
        .oracles
        .iter()
        .any(|o| o.name == judge::LATENCY_BUDGET);
    let empty = LatencySummary::default();
    merged.budgets = budgets
        .iter()
        .map(|budget| {
            let summary = merged.latency_ms.get(&budget.endpoint).unwrap_or(&empty);
            let observed_ms = judge::budget_observed_ms(&budget.metric, summary);
            crate::model::BudgetReport {
                observed_ms,
                passed: observed_ms <= budget.limit_ms,
                ..budget.clone()
            }
        })
        .collect();
    for budget in merged.budgets.clone() {
        if !budget.passed && declared {
            let samples = merged
                .latency_ms
                .get(&budget.endpoint)
                .map_or(0, |l| l.count);
            count(&mut merged.oracles, judge::LATENCY_BUDGET);
            merged.violations.push(judge::budget_exceeded(
                &merged.path,
                &budget,
                samples,
                merged.seeds_run,
                first_seed,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_labels_parse_only_when_in_range() {
        // Proves only `I/N` with 1 <= I <= N is read as a shard.
        assert_eq!(parse_shard("2/4"), Some((2, 4)));
        assert_eq!(parse_shard("0/4"), None);
        assert_eq!(parse_shard("5/4"), None);
        assert_eq!(parse_shard("two/4"), None);
    }

    #[test]
    fn nothing_to_merge_is_an_error() {
        // Proves an empty input list is refused rather than producing an empty report.
        assert_eq!(merge(&[]), Err(MergeError::Empty));
    }

    #[test]
    fn bug_tables_combine_per_bug_and_scenario() {
        // Proves detection rows of the same (bug, scenario) add their seeds and keep the
        // quickest detection with its details, and that other rows are kept in first-seen order.
        let row = |bug: &str, detect: Option<u64>, run: u64| BugDetection {
            bug: bug.into(),
            scenario: "s".into(),
            seeds_to_detect: detect,
            seeds_run: run,
            ..BugDetection::default()
        };
        let report = |bugs: Vec<BugDetection>| Report {
            schema_version: SCHEMA_VERSION,
            tool: "t".into(),
            run: RunInfo {
                seeds: "1..3".into(),
                bugs: vec![],
                shard: None,
                check_determinism: false,
                jobs: 1,
                wall: WallClock::default(),
            },
            totals: Totals::default(),
            scenarios: vec![],
            bugs,
        };
        let inputs = vec![
            (
                "a".to_string(),
                report(vec![row("x", None, 5), row("y", Some(2), 5)]),
            ),
            ("b".to_string(), report(vec![row("x", Some(3), 5)])),
        ];
        assert_eq!(
            merge_bugs(&inputs),
            vec![row("x", Some(3), 10), row("y", Some(2), 5)]
        );
        // The quickest catch brings its oracle and repro; a later catch does not.
        let caught = |detect: u64, oracle: &str| BugDetection {
            caught_by: Some(oracle.into()),
            repro: Some(format!("repro/{oracle}.toml")),
            ..row("x", Some(detect), 5)
        };
        let inputs = vec![
            ("a".to_string(), report(vec![caught(3, "late")])),
            ("b".to_string(), report(vec![caught(1, "early")])),
            ("c".to_string(), report(vec![caught(2, "middle")])),
        ];
        let merged = merge_bugs(&inputs);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].seeds_to_detect, Some(1));
        assert_eq!(merged[0].seeds_run, 15);
        assert_eq!(merged[0].caught_by.as_deref(), Some("early"));
        assert_eq!(merged[0].repro.as_deref(), Some("repro/early.toml"));
    }
}
