//! Broken scenario files get precise errors: file, line, column, what is wrong, and a hint.
//! Nothing runs.

use shipsim::scenario::Scenario;

/// Parses `source` and returns the error; fails the test if it parses.
fn error_of(source: &str) -> shipsim::ScenarioError {
    match Scenario::parse("broken.toml", "broken", source) {
        Ok(_) => panic!("expected an error for:\n{source}"),
        Err(error) => error,
    }
}

/// Asserts the error is at `line`:`column` and its message (or hint) contains `needle`.
fn assert_error(source: &str, line: usize, column: usize, needle: &str) {
    let error = error_of(source);
    let text = error.to_string();
    assert_eq!(
        (error.line, error.column),
        (Some(line), Some(column)),
        "{text}"
    );
    assert!(text.contains(needle), "expected `{needle}` in:\n{text}");
    assert!(
        text.starts_with(&format!("broken.toml:{line}:{column}:")),
        "{text}"
    );
}

#[test]
fn unknown_keys_are_refused_with_a_suggestion() {
    // Proves typos in any table are caught at the key, with a did-you-mean hint.
    assert_error(
        "[workload]\noperatons = 5\n",
        2,
        1,
        "did you mean `operations`?",
    );
    assert_error(
        "[[fault]]\nkind = \"partition\"\nbetween = [\"clients\", \"service\"]\nprobabilty = 0.5\n",
        4,
        1,
        "did you mean `probability`?",
    );
    assert_error(
        "[run]\ntick_ms = 1\noracles = [\"exactly_once\"]\n",
        3,
        1,
        "top-level keys must come before",
    );
}

#[test]
fn wrong_types_are_refused() {
    // Proves a value of the wrong type is refused where it stands.
    assert_error("[hosts]\nclients = \"two\"\n", 2, 11, "invalid type");
    assert_error("[hosts]\nclients = -3\n", 2, 11, "invalid value");
}

#[test]
fn impossible_values_are_refused() {
    // Proves semantic checks point at the offending value: windows, probabilities, hosts,
    // ranges, counts.
    let fault = |body: &str| format!("[hosts]\nclients = 2\ncallers = 2\n\n[[fault]]\n{body}");
    assert_error(
        &fault(
            "kind = \"partition\"\nbetween = [\"clients\", \"service\"]\nstart_ms = 500\nend_ms = 100\n",
        ),
        9,
        10,
        "ends (100 ms) before it starts (500 ms)",
    );
    assert_error(
        &fault("kind = \"http_error\"\ntarget = \"service\"\nprobability = 1.5\n"),
        8,
        15,
        "outside 0..=1",
    );
    assert_error(
        &fault("kind = \"partition\"\nbetween = [\"client-5\", \"service\"]\n"),
        7,
        11,
        "client-0` .. `client-1",
    );
    assert_error(
        &fault("kind = \"http_error\"\ntarget = \"clients\"\n"),
        7,
        10,
        "must be a server",
    );
    assert_error(
        &fault("kind = \"partiton\"\nbetween = [\"clients\", \"service\"]\n"),
        6,
        8,
        "did you mean `partition`?",
    );
    assert_error(
        &fault("kind = \"partition\"\nbetween = [\"clients\", \"service\"]\nstatus = 503\n"),
        8,
        10,
        "does not apply to fault kind `partition`",
    );
    assert_error(
        &fault("kind = \"slow_response\"\ntarget = \"service\"\n"),
        5,
        1,
        "needs `delay_ms`",
    );
    assert_error(
        &fault("kind = \"http_error\"\ntarget = \"service\"\nstatus = 404\n"),
        8,
        10,
        "not a 5xx",
    );
    assert_error(
        &fault("kind = \"crash\"\ntarget = \"service\"\npoint = \"label_sold\"\n"),
        8,
        9,
        "not reached on the service",
    );
    assert_error(
        "[workload]\nthink_ms = [50, 10]\n",
        2,
        12,
        "ends before it starts",
    );
    assert_error(
        "[hosts]\nclients = 1\ncallers = 3\n",
        3,
        11,
        "3 callers but only 1 client",
    );
    assert_error("[run]\nseeds = \"10..2\"\n", 2, 9, "greater than the start");
    assert_error(
        "oracles = [\"exactly_one\"]\n",
        1,
        12,
        "did you mean `exactly_once`?",
    );
    assert_error(
        "[budgets]\n\"POST /v1/order\" = { p95_ms_max = 10 }\n",
        2,
        1,
        "unknown endpoint",
    );
    assert_error(
        "[client]\ntimeout_ms = 5000\ndeadline_ms = 1000\n",
        3,
        15,
        "deadline_ms (1000) must be at least",
    );
}

#[test]
fn malformed_toml_gives_position() {
    // Proves a syntax error is reported at its line and column.
    let error = error_of("[run]\ntick_ms = = 3\n");
    assert_eq!(error.line, Some(2), "{error}");
}

#[test]
fn missing_file_names_the_file() {
    // Proves an unreadable file is an error naming it, not a panic.
    let error = Scenario::load(std::path::Path::new("/no/such/scenario.toml")).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("/no/such/scenario.toml: cannot read"),
        "{error}"
    );
}

#[test]
fn canonical_form_round_trips() {
    // Proves `to_toml` writes a scenario that parses back to the same scenario, for every
    // file of the corpus (repro files depend on it).
    let dir = crate::support::scenarios_dir();
    for scenario in shipsim::cli::load_scenarios(&[dir]).unwrap() {
        let text = scenario.to_toml();
        let mut back =
            Scenario::parse("roundtrip.toml", "x", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        back.path.clone_from(&scenario.path);
        for (a, b) in back.faults.iter_mut().zip(&scenario.faults) {
            a.line = b.line;
        }
        assert_eq!(back, scenario, "round trip changed {}", scenario.name);
    }
}

#[test]
fn poll_events_is_strict_and_needs_outbound_webhooks() {
    // Proves the events poller's settings are checked where they stand: each value against
    // its range, both keys required, no unknown key, and no poller without outbound
    // webhooks (there would be no feed to read); a valid table parses and writes back.
    assert_error(
        "[webhooks]\npoll_events = { every_ms = 0, limit = 3 }\n",
        2,
        28,
        "`every_ms` 0 is outside 1..=86400000",
    );
    assert_error(
        "[webhooks]\npoll_events = { every_ms = 400, limit = 101 }\n",
        2,
        41,
        "`limit` 101 is outside 1..=100",
    );
    assert_error(
        "[webhooks]\npoll_events = { every_ms = 400 }\n",
        2,
        15,
        "missing field `limit`",
    );
    assert_error(
        "[webhooks]\npoll_events = { every_ms = 400, limit = 3, jitter = 1 }\n",
        2,
        44,
        "unknown field `jitter`",
    );
    assert_error(
        "[webhooks]\noutbound = false\npoll_events = { every_ms = 400, limit = 3 }\n",
        3,
        15,
        "`poll_events` needs outbound webhooks",
    );
    let scenario = Scenario::parse(
        "ok.toml",
        "ok",
        "[webhooks]\npoll_events = { every_ms = 400, limit = 3 }\n",
    )
    .unwrap();
    let poll = scenario.webhooks.unwrap().poll_events.unwrap();
    assert_eq!((poll.every_ms, poll.limit), (400, 3));
    let back = Scenario::parse("back.toml", "back", &scenario.to_toml()).unwrap();
    assert_eq!(back.webhooks, scenario.webhooks);
}

#[test]
fn the_misuse_knobs_are_checked_and_write_back() {
    // Proves the two misuse knobs of the mutation-testing round are checked where they
    // stand (a probability outside 0..=1; operator probes without an outbox to probe) and
    // survive a write and a read back.
    assert_error(
        "[workload]\nkeys_at_length_limit = 1.5\n",
        2,
        24,
        "`keys_at_length_limit` 1.5 is outside",
    );
    assert_error(
        "[webhooks]\noutbound = false\nprobe_operator = true\n",
        3,
        18,
        "`probe_operator` probes the outbox's operator routes",
    );
    let scenario = Scenario::parse(
        "ok.toml",
        "ok",
        "[workload]\nkeys_at_length_limit = 0.25\n[webhooks]\nprobe_operator = true\n",
    )
    .unwrap();
    assert_eq!(scenario.workload.keys_at_length_limit, 0.25);
    assert!(scenario.webhooks.unwrap().probe_operator);
    let back = Scenario::parse("back.toml", "back", &scenario.to_toml()).unwrap();
    assert_eq!(back.workload, scenario.workload);
    assert_eq!(back.webhooks, scenario.webhooks);
}

#[test]
fn the_service_probe_knobs_are_checked_and_write_back() {
    // Proves the retention knob is checked where it stands (under a second cannot be a
    // retention the probes time against) and that the probe knobs survive a write and a
    // read back.
    assert_error(
        "[service]\nidempotency_retention_ms = 10\n",
        2,
        28,
        "`idempotency_retention_ms` 10 is outside",
    );
    let scenario = Scenario::parse(
        "ok.toml",
        "ok",
        "[service]\nidempotency_retention_ms = 20000\nprobe_misuse = true\nprobe_retention = true\n",
    )
    .unwrap();
    assert_eq!(scenario.service.idempotency_retention_ms, Some(20_000));
    assert!(scenario.service.probe_misuse && scenario.service.probe_retention);
    let back = Scenario::parse("back.toml", "back", &scenario.to_toml()).unwrap();
    assert_eq!(back.service, scenario.service);
}
