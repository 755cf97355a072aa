//! The documented ranges are exactly what the parser enforces: both ends of every numeric
//! field and fault parameter are accepted, one past each end is refused at the value with
//! the range in the message, and `scenarios/README.md` states every range.

use shipsim::fault::{CATALOGUE, EXAMPLES, ParamInfo, WINDOW_PARAMS};
use shipsim::scenario::Scenario;
use shipsim::scenario::limits::{FIELDS, Field, Limit, Shape};

/// A valid fault table of `kind` (after its `kind` line): the kind's own example, which
/// its file declares and `fault::tests` proves parses and fires.
fn fault_template(kind: &str) -> &'static str {
    let index = CATALOGUE
        .iter()
        .position(|k| k.name == kind)
        .unwrap_or_else(|| panic!("`{kind}` is catalogued"));
    EXAMPLES[index]
}

/// A scenario with one fault of `kind` whose parameter `name` is `value` (other parameters
/// adjusted so that only `name` decides whether it parses).
fn fault_scenario(kind: &str, name: &str, value: &str) -> String {
    // A window key under test replaces the example's window: `end_ms` and `duration_ms`
    // exclude each other.
    let window = WINDOW_PARAMS.iter().any(|p| p.name == name);
    let mut lines: Vec<String> = fault_template(kind)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with(&format!("{name} =")))
        .filter(|line| {
            !(window
                && ["start_ms =", "end_ms =", "duration_ms ="]
                    .iter()
                    .any(|key| line.starts_with(key)))
        })
        .map(str::to_string)
        .collect();
    match (kind, name) {
        ("latency", "min_ms") => lines.retain(|l| !l.starts_with("max_ms")),
        ("latency", "max_ms") => lines.retain(|l| !l.starts_with("min_ms")),
        _ => {}
    }
    match (kind, name) {
        ("latency", "min_ms") => lines.push("max_ms = 60000".into()),
        ("latency", "max_ms") => lines.push("min_ms = 0".into()),
        ("crash", "times") => lines.push("point = \"shipment_claimed\"".into()),
        _ => {}
    }
    lines.push(format!("{name} = {value}"));
    format!(
        "[webhooks]\n\n[[fault]]\nkind = \"{kind}\"\n{}\n",
        lines.join("\n")
    )
}

/// A scenario whose field `field` is `value` (other keys adjusted likewise).
fn field_scenario(field: &Field, value: &str) -> String {
    let line = match field.shape {
        Shape::Scalar => format!("{} = {value}", field.key),
        Shape::Pair => format!("{} = [{value}, {value}]", field.key),
    };
    let context: &[&str] = match (field.table, field.key) {
        ("hosts", "callers") => &["clients = 1000"],
        ("client", "timeout_ms") => &["deadline_ms = 86400000"],
        ("client", "deadline_ms") => &["timeout_ms = 1"],
        ("client", "backoff_ms_base") => &["backoff_ms_max = 60000"],
        ("client", "backoff_ms_max") => &["backoff_ms_base = 0"],
        ("service", "carrier_timeout_ms") => {
            &["carrier_deadline_ms = 86399999", "lock_lease_ms = 86400000"]
        }
        ("service", "carrier_deadline_ms") => {
            &["carrier_timeout_ms = 1", "lock_lease_ms = 86400000"]
        }
        ("service", "lock_lease_ms") => &["carrier_timeout_ms = 1", "carrier_deadline_ms = 1"],
        ("client.rate_limit", "burst") => &["per_second = 1"],
        ("client.rate_limit", "per_second") => &["burst = 1"],
        ("service.rate_limit", "burst") => &["per_second = 1"],
        ("service.rate_limit", "per_second") => &["burst = 1"],
        ("webhooks.poll_events", "every_ms") => &["limit = 1"],
        ("webhooks.poll_events", "limit") => &["every_ms = 1"],
        ("workload.mix", key) if key != "create_order" => &["create_order = 1"],
        ("workload.mix", _) => &["get_order = 1"],
        _ => &[],
    };
    let body = context
        .iter()
        .map(|l| (*l).to_string())
        .chain([line])
        .collect::<Vec<_>>()
        .join("\n");
    match field.table {
        "" => format!("{body}\n"),
        "budgets.ENDPOINT" => format!("[budgets.\"POST /v1/orders\"]\n{body}\n"),
        table => format!("[{table}]\n{body}\n"),
    }
}

/// The ends of `limit` and one past each, as TOML text.
fn edges(limit: &Limit) -> ([String; 2], [String; 2]) {
    match *limit {
        Limit::Int { min, max } => (
            [min.to_string(), max.to_string()],
            [(min - 1).to_string(), (max + 1).to_string()],
        ),
        Limit::Probability => (
            ["0.0".to_string(), "1.0".to_string()],
            ["-0.5".to_string(), "1.5".to_string()],
        ),
    }
}

/// Asserts that `make(value)` parses for both ends of `limit`, and is refused on the line
/// of `key` with the range stated for one past each end.
fn assert_edges(what: &str, key: &str, make: impl Fn(&str) -> String, limit: &Limit) {
    let (inside, outside) = edges(limit);
    for value in &inside {
        let text = make(value);
        if let Err(error) = Scenario::parse("edge.toml", "edge", &text) {
            panic!("{what} = {value} is inside {limit} but refused:\n{error}\n---\n{text}");
        }
    }
    for value in &outside {
        let text = make(value);
        let line = text
            .lines()
            .position(|l| l.starts_with(&format!("{key} = ")))
            .expect("the key is in the text")
            + 1;
        match Scenario::parse("edge.toml", "edge", &text) {
            Ok(_) => panic!("{what} = {value} is outside {limit} but accepted:\n{text}"),
            Err(error) => {
                let rendered = error.to_string();
                assert_eq!(
                    error.line,
                    Some(line),
                    "{what} = {value}: {rendered}\n---\n{text}"
                );
                assert!(
                    rendered.contains(&limit.to_string()),
                    "{what} = {value}: the refusal does not state {limit}:\n{rendered}"
                );
            }
        }
    }
}

#[test]
fn every_table_field_accepts_its_range_and_refuses_one_past_it() {
    // Proves, for each numeric field of FIELDS, that both ends of its range parse and one
    // past each end is refused on the value's line with the range stated (whether our
    // validation or serde's type check refuses it).
    for field in FIELDS {
        let what = format!("[{}] {}", field.table, field.key);
        assert_edges(
            &what,
            field.key,
            |value| field_scenario(field, value),
            &field.limit,
        );
    }
}

#[test]
fn every_fault_parameter_accepts_its_range_and_refuses_one_past_it() {
    // Proves the same for every numeric parameter of every fault kind, and for the window
    // and stream parameters every kind takes (on `partition`).
    let numeric = |params: &'static [ParamInfo]| {
        params
            .iter()
            .filter_map(|p| p.limit.map(|limit| (p.name, limit)))
            .collect::<Vec<_>>()
    };
    for kind in CATALOGUE {
        for (name, limit) in numeric(kind.params) {
            let what = format!("fault `{}` {name}", kind.name);
            assert_edges(
                &what,
                name,
                |value| fault_scenario(kind.name, name, value),
                &limit,
            );
        }
    }
    for (name, limit) in numeric(WINDOW_PARAMS) {
        let what = format!("fault window {name}");
        assert_edges(
            &what,
            name,
            |value| fault_scenario("partition", name, value),
            &limit,
        );
    }
}

#[test]
fn the_format_reference_states_every_range() {
    // Proves scenarios/README.md documents each numeric field's and parameter's range:
    // for fields and window parameters a line naming the key and the range; for a kind's
    // parameters, its row of the fault tables naming both.
    let readme = std::fs::read_to_string(crate::support::scenarios_dir().join("README.md"))
        .expect("scenarios/README.md exists");
    let documented = |key: &str, limit: &Limit| {
        readme
            .lines()
            .any(|line| line.contains(key) && line.contains(&limit.to_string()))
    };
    let mut missing = Vec::new();
    for field in FIELDS {
        if !documented(field.key, &field.limit) {
            missing.push(format!("[{}] {}: {}", field.table, field.key, field.limit));
        }
    }
    for param in WINDOW_PARAMS {
        let limit = param.limit.expect("window parameters are numeric");
        if !documented(param.name, &limit) {
            missing.push(format!("fault {}: {limit}", param.name));
        }
    }
    for kind in CATALOGUE {
        let row_start = format!("| `{}` |", kind.name);
        let row = readme.lines().find(|line| line.starts_with(&row_start));
        for param in kind.params {
            let Some(limit) = param.limit else { continue };
            // `probability` is shared by most kinds and stated once, above the tables.
            let stated = if param.name == "probability" {
                documented("`probability`", &limit)
            } else {
                row.is_some_and(|row| {
                    row.contains(&format!("`{}`", param.name)) && row.contains(&limit.to_string())
                })
            };
            if !stated {
                missing.push(format!("fault `{}` {}: {limit}", kind.name, param.name));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "scenarios/README.md does not state these ranges:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn an_enormous_scenario_is_accepted_and_says_what_it_costs() {
    // Proves the example, 65,535 operations in a webhook scenario (within the
    // limits), passes `check`, which states its cost up front.
    let dir = super::format::scratch("heavy");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("heavy.toml");
    std::fs::write(
        &file,
        "[workload]\noperations = 65535\n[webhooks]\n[[fault]]\nkind = \"webhook_reorder\"\nmax_ms = 86400000\n",
    )
    .unwrap();
    let output = crate::support::shipsim(&["check", &file.display().to_string()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("heavy: 65,535 operations per seed, 3,276x the default scenario's work"),
        "{stdout}"
    );
}
