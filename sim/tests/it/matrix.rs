//! The rule-by-rule matrix of `scenarios/README.md`: every documented rule of the service,
//! the client and the webhooks names the scenario whose workload crosses its boundary, the
//! dangerous moment that crossing is (which the scenario requires with `reach = [...]`, so
//! a sweep that never crosses it fails), and the oracle that judges it.

use std::collections::BTreeMap;

use shipsim::Scenario;
use shipsim::oracle::OracleKind;
use shipsim::reach::Moment;

/// Every rule the README, the seeds' conventions and the design document state, by the id
/// the matrix uses. A rule added here without a row, or a row without a scenario, a moment
/// or an oracle, fails the test.
const RULES: &[&str] = &[
    "idem.replay",
    "idem.in_flight",
    "idem.concurrent",
    "idem.reuse",
    "idem.scope",
    "idem.key_in_body",
    "idem.key_length",
    "idem.key_too_long",
    "idem.refusal_stored",
    "idem.durable_replay",
    "idem.downstream_key",
    "idem.keys_disagree",
    "idem.reuse_reported",
    "idem.retention_inside",
    "idem.retention_default",
    "idem.retention_expired",
    "idem.retention_swept",
    "crash.after_claim",
    "crash.after_label",
    "crash.resume",
    "client.retry_after",
    "client.retry_after_date",
    "service.rate_limit_headers",
    "service.rate_limit_refill",
    "service.unknown_route",
    "service.request_id",
    "carrier.auth",
    "service.malformed_field",
    "idem.refusal_replayed",
    "service.admin_state",
    "webhook.feed_has_more",
    "webhook.unknown_shipment",
    "carrier.tracking_counts",
    "service.metrics",
    "carrier.exception_rate",
    "service.malformed_shipment",
    "webhook.unknown_kind",
    "webhook.tolerance_boundary",
    "webhook.feed_exact_page",
    "client.no_retry_4xx",
    "client.breaker",
    "client.retry_budget",
    "client.rate_limit",
    "service.admin_key",
    "client.ambiguity",
    "client.ambiguity_5xx",
    "client.ambiguity_definite",
    "webhook.dedupe",
    "webhook.order",
    "webhook.sequence",
    "webhook.tolerance_inside",
    "webhook.tolerance_outside",
    "webhook.forgery",
    "webhook.redelivery",
    "webhook.redelivery_inbound",
    "webhook.feed_recovery",
    "webhook.retry_schedule",
    "webhook.tracking_wake",
];

struct Row {
    scenario: String,
    moment: String,
    oracles: Vec<String>,
}

/// The backticked names of a cell.
fn names(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The rows of the `## Rule matrix` table, by rule id.
fn matrix() -> BTreeMap<String, Row> {
    let text = std::fs::read_to_string(crate::support::scenarios_dir().join("README.md"))
        .expect("scenarios/README.md");
    let section = text
        .split("\n## Rule matrix")
        .nth(1)
        .expect("scenarios/README.md has a `## Rule matrix` section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut rows = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(
            cells.len(),
            5,
            "rule, rule text, scenario, moment, oracles: {line}"
        );
        let id = names(cells[0]).pop().expect("a rule id");
        let one = |cell: &str| names(cell).into_iter().next().unwrap_or_default();
        let row = Row {
            scenario: one(cells[2]),
            moment: one(cells[3]),
            oracles: names(cells[4]),
        };
        assert!(rows.insert(id.clone(), row).is_none(), "rule {id} twice");
    }
    rows
}

#[test]
fn every_rule_has_a_scenario_a_moment_and_an_oracle() {
    // Proves the matrix has a row for every rule and no row for an unknown one; that each
    // row's scenario exists and requires the row's moment (so its sweep fails when the
    // boundary is never crossed); and that each named oracle exists and judges that
    // scenario.
    let rows = matrix();
    let documented: Vec<&str> = rows.keys().map(String::as_str).collect();
    let missing: Vec<&&str> = RULES.iter().filter(|r| !rows.contains_key(**r)).collect();
    assert!(missing.is_empty(), "rules without a row: {missing:?}");
    let unknown: Vec<&&str> = documented.iter().filter(|r| !RULES.contains(r)).collect();
    assert!(unknown.is_empty(), "rows for no known rule: {unknown:?}");
    let mut problems = Vec::new();
    for (id, row) in &rows {
        let path = crate::support::scenarios_dir().join(format!("{}.toml", row.scenario));
        let Ok(text) = std::fs::read_to_string(&path) else {
            problems.push(format!("{id}: no scenario file {}", path.display()));
            continue;
        };
        let scenario = Scenario::parse(&path.display().to_string(), &row.scenario, &text)
            .unwrap_or_else(|e| panic!("{e}"));
        match row.moment.parse::<Moment>() {
            Ok(moment) if scenario.reach.contains(&moment) => {}
            Ok(moment) => problems.push(format!(
                "{id}: {} does not require `{moment}` (reach = [...])",
                row.scenario
            )),
            Err(e) => problems.push(format!("{id}: {e}")),
        }
        if row.oracles.is_empty() {
            problems.push(format!("{id}: no oracle"));
        }
        for name in &row.oracles {
            match name.parse::<OracleKind>() {
                Ok(oracle) if scenario.oracles.contains(&oracle) => {}
                Ok(oracle) => {
                    problems.push(format!("{id}: {} does not run {oracle}", row.scenario))
                }
                Err(e) => problems.push(format!("{id}: {e}")),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_row_with_an_empty_cell_is_caught() {
    // Proves the parser the test above relies on sees an empty cell as an empty name, so a
    // row with no scenario, moment or oracle cannot pass as covered.
    assert!(names("—").is_empty());
    assert_eq!(names("`a`, `b`"), vec!["a", "b"]);
}
