//! Every input the fuzzing (or the issue) found that `check` accepted and `run` then crashed
//! on, as a named test: `check` now refuses it where it stands, with the range in the hint,
//! and the nearest value it accepts runs without a panic (inside the simulation's tasks
//! included) and ends.

use shipsim::scenario::Scenario;

use super::format::InputFormat;
use super::scenario::ScenarioFormat;

/// The corpus file `name` with `from` replaced by `to` (once).
fn corpus_edit(name: &str, from: &str, to: &str) -> String {
    let path = crate::support::scenarios_dir().join(name);
    let text = std::fs::read_to_string(&path).expect("the corpus file exists");
    assert!(text.contains(from), "{name} no longer contains `{from}`");
    text.replacen(from, to, 1)
}

/// Asserts `text` is refused on line `line` and that the message or hint says `needle`.
fn assert_refused(text: &str, line: usize, needle: &str) {
    let error = match Scenario::parse("case.toml", "case", text) {
        Ok(_) => panic!("accepted, but it crashed `run` before the fix:\n{text}"),
        Err(error) => error,
    };
    let rendered = error.to_string();
    assert_eq!(error.line, Some(line), "{rendered}");
    assert!(
        rendered.contains(needle),
        "expected `{needle}` in:\n{rendered}"
    );
}

/// Asserts `text` is accepted and runs two seeds without a panic, ending.
fn assert_runs(text: &str) {
    let scenario = Scenario::parse("case.toml", "case", text).unwrap_or_else(|e| panic!("{e}"));
    ScenarioFormat::run_briefly(&scenario);
}

#[test]
fn webhook_reorder_max_ms_of_u64_max_is_refused() {
    // Issue 25's case, found again by `accepted_scenarios_run_and_end`: `max_ms =
    // 18446744073709551615` passed `check`, then every seed panicked at `max_ms + 1` (an
    // overflow in debug builds, a remainder by zero in release). The largest `max_ms`
    // allowed now runs.
    let text = corpus_edit(
        "webhook_reorder.toml",
        "max_ms = 800",
        "max_ms = 18446744073709551615",
    );
    let line = text
        .lines()
        .position(|l| l.starts_with("max_ms = 18446744073709551615"))
        .expect("edited line")
        + 1;
    assert_refused(&text, line, "`max_ms` takes 1..=86400000");
    assert_runs(&corpus_edit(
        "webhook_reorder.toml",
        "max_ms = 800",
        "max_ms = 86400000",
    ));
}

#[test]
fn pinned_seed_of_u64_max_is_refused() {
    // `seed = 18446744073709551615` passed `check`; `run` and `replay` then panicked making
    // its one-seed range (`seed + 1` does not exist). The largest seed allowed runs.
    assert_refused(
        "seed = 18446744073709551615\n",
        1,
        "`seed` takes 0..=18446744073709551614",
    );
    assert_runs("seed = 18446744073709551614\n[workload]\noperations = 2\n");
}

#[test]
fn run_dash_dash_seed_of_u64_max_is_refused() {
    // `shipsim run --seed 18446744073709551615` panicked the same way; it is now a usage
    // error (exit 2) that says which seeds exist.
    let dir = super::format::scratch("seed-flag");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tiny.toml");
    std::fs::write(&file, "[workload]\noperations = 2\n").unwrap();
    let out = dir.join("out").display().to_string();
    let file = file.display().to_string();
    let output = crate::support::shipsim(&[
        "run",
        &file,
        "--seed",
        "18446744073709551615",
        "--out",
        &out,
        "-q",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("seeds go up to 18446744073709551614"),
        "{stderr}"
    );
    let output = crate::support::shipsim(&[
        "run",
        &file,
        "--seed",
        "18446744073709551614",
        "--out",
        &out,
        "-q",
        "--no-shrink",
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn mix_weights_whose_sum_overflows_are_refused() {
    // `mix = { create_order = 4294967295, create_shipment = 4294967295 }` panicked `check`
    // itself in debug builds (the sum of the weights overflowed u32; release builds wrapped
    // it, skewing the mix or calling it empty). The largest weights allowed run.
    assert_refused(
        "[workload]\nmix = { create_order = 4294967295, create_shipment = 4294967295 }\n",
        2,
        "`create_order` takes 0..=1000000",
    );
    assert_runs(
        "[workload]\noperations = 2\nmix = { create_order = 1000000, create_shipment = 1000000, get_order = 1000000, get_shipment = 1000000 }\n",
    );
}

#[test]
fn clock_skew_offset_of_i64_min_is_refused() {
    // `offset_ms = -9223372036854775808` panicked `check` in debug builds (`abs()` of
    // i64::MIN) and passed it in release builds (the wrapped `abs()` is negative). The
    // largest skew allowed runs.
    let fault = |offset: &str| {
        format!(
            "[workload]\noperations = 2\n[[fault]]\nkind = \"clock_skew\"\ntarget = \"service\"\noffset_ms = {offset}\n"
        )
    };
    assert_refused(
        &fault("-9223372036854775808"),
        6,
        "`offset_ms` takes -86400000..=86400000",
    );
    assert_runs(&fault("-86400000"));
}

#[test]
fn webhook_tolerance_of_u64_max_is_refused() {
    // `tolerance_s = 18446744073709551615` with a `webhook_replay` fault panicked `check` in
    // debug builds (the default replay delay, `tolerance_s * 1000 + 1000`, overflowed). The
    // largest tolerance allowed runs, and its default replay delay writes back.
    let scenario = |tolerance: &str| {
        format!(
            "[workload]\noperations = 2\n[webhooks]\ntolerance_s = {tolerance}\n[[fault]]\nkind = \"webhook_replay\"\n"
        )
    };
    assert_refused(
        &scenario("18446744073709551615"),
        4,
        "`tolerance_s` takes 1..=3600",
    );
    assert_runs(&scenario("3600"));
}

#[test]
fn receiver_named_without_outbound_webhooks_is_refused() {
    // A fault naming `receiver` in a scenario without outbound webhooks (so without a
    // receiver host) passed `check`; `run` then panicked inside turmoil (`partition`: no
    // link to the host; `crash`: no such host). With outbound webhooks, both run.
    let partition = "[[fault]]\nkind = \"partition\"\nbetween = [\"receiver\", \"service\"]\n";
    let crash = "[[fault]]\nkind = \"crash\"\ntarget = \"receiver\"\n";
    for fault in [partition, crash] {
        let text = format!("[workload]\noperations = 2\n{fault}");
        assert_refused(&text, 5, "host `receiver` does not exist");
        assert_runs(&format!("[workload]\noperations = 2\n[webhooks]\n{fault}"));
    }
}

#[test]
fn client_timeout_of_u64_max_is_refused() {
    // `[client] timeout_ms` and `deadline_ms` of 18446744073709551615 passed `check`; the
    // `client_discipline` oracle then panicked converting the timeout to microseconds.
    // The longest timeout allowed runs.
    let client = |ms: &str| {
        format!("[workload]\noperations = 2\n[client]\ntimeout_ms = {ms}\ndeadline_ms = {ms}\n")
    };
    assert_refused(
        &client("18446744073709551615"),
        4,
        "`timeout_ms` takes 1..=86400000",
    );
    assert_runs(&client("86400000"));
}

#[test]
fn breaker_cooldown_of_u64_max_is_refused() {
    // `breaker_cooldown_ms = 18446744073709551615` passed `check`; the client's circuit
    // breaker then panicked computing when to close (`now + cooldown`), inside a simulated
    // task. The longest cooldown allowed runs.
    let client = |ms: &str| {
        format!(
            "[workload]\noperations = 2\n[client]\nbreaker_failures = 1\nbreaker_cooldown_ms = {ms}\n"
        )
    };
    assert_refused(
        &client("18446744073709551615"),
        5,
        "`breaker_cooldown_ms` takes 1..=86400000",
    );
    assert_runs(&client("86400000"));
}

#[test]
fn crash_restart_after_u64_max_is_refused() {
    // A crash after the start of the run with `restart_after_ms = 18446744073709551615`
    // passed `check`; the driver then panicked scheduling the restart (`now + after`). The
    // longest downtime allowed runs.
    let crash = |ms: &str| {
        format!(
            "[workload]\noperations = 20\n[[fault]]\nkind = \"crash\"\ntarget = \"service\"\nstart_ms = 100\nend_ms = 101\nrestart_after_ms = {ms}\n"
        )
    };
    assert_refused(
        &crash("18446744073709551615"),
        8,
        "`restart_after_ms` takes 0..=86400000",
    );
    assert_runs(&crash("86400000"));
}

#[test]
fn a_description_whose_int_placeholder_starts_at_i64_min_is_refused() {
    // Found by the description fuzzing: `{{int -9223372036854775808..=0}}` in a body
    // template panicked while checking the bound's magnitude; it is now refused where it
    // stands, with the range JSON readers hold exactly.
    use super::description::DescriptionFormat;
    let path = crate::support::repo().join("examples/python-shipping/target.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let from = "weight_g = \"{{int 100..=30000}}\"";
    assert!(text.contains(from));
    let text = text.replacen(from, "weight_g = \"{{int -9223372036854775808..=0}}\"", 1);
    let refusal = DescriptionFormat::check("case.toml", &text).unwrap_err();
    assert!(
        refusal
            .rendered
            .contains("is outside -9007199254740992..=9007199254740992"),
        "{}",
        refusal.rendered
    );
    let line = text
        .lines()
        .position(|l| l.contains("-9223372036854775808"))
        .unwrap()
        + 1;
    assert_eq!(refusal.line, Some(line), "{}", refusal.rendered);
}
