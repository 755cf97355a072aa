//! The command line's contract: exit codes 0 / 1 / 2 and clear messages for bad input.

use std::path::PathBuf;
use std::process::Output;

use crate::support::{repo, scratch, shipsim};

/// `name` in the test's scratch directory, as an argument.
fn out_dir(scratch: &tempfile::TempDir, name: &str) -> String {
    scratch.path().join(name).display().to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn passing_run_exits_0_and_writes_summary() {
    // Proves a clean run exits 0 and writes summary.json with the contract's fields.
    let scratch = scratch();
    let out = out_dir(&scratch, "pass");
    let output = shipsim(&[
        "run",
        "scenarios/walking_skeleton.toml",
        "--seeds",
        "1..3",
        "--out",
        &out,
        "-q",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let summary = std::fs::read_to_string(PathBuf::from(&out).join("summary.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["totals"]["seeds_run"], 2);
    assert_eq!(json["totals"]["violations"], 0);
    let scenario = &json["scenarios"][0];
    for field in ["p50", "p95", "p99", "max"] {
        assert!(
            scenario["latency_ms"]["POST /v1/orders/{id}/shipments"][field].is_u64(),
            "{field}"
        );
    }
    assert!(scenario["requests"]["2xx"].as_u64().unwrap() > 0);
    assert_eq!(
        scenario["seeds"][0]["trace_hash"].as_str().unwrap().len(),
        16
    );
}

#[test]
fn planted_bug_exits_1_with_seed_and_repro() {
    // Proves a violation exits 1, names the seed and writes a repro that `replay` runs, plus
    // a shrunk minimal repro unless `--no-shrink`.
    let scratch = scratch();
    let out = out_dir(&scratch, "bug");
    let output = shipsim(&[
        "run",
        "scenarios/walking_skeleton.toml",
        "--seeds",
        "1..3",
        "--bug",
        "carrier_without_key",
        "--out",
        &out,
        "-q",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("[exactly_once] seed"), "{stdout}");
    let repro = PathBuf::from(&out).join("repro");
    let file = std::fs::read_dir(&repro)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let replay = shipsim(&[
        "replay",
        file.to_str().unwrap(),
        "--out",
        &out_dir(&scratch, "bug-replay"),
    ]);
    assert_eq!(
        replay.status.code(),
        Some(1),
        "replay must reproduce the violation: {}",
        stderr(&replay)
    );

    // The first failing seed was shrunk: fewer operations, still the same oracle, and its
    // repro replays exactly.
    let summary = std::fs::read_to_string(PathBuf::from(&out).join("summary.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&summary).unwrap();
    let shrunk = &json["scenarios"][0]["shrunk"];
    assert_eq!(shrunk["caught_by"], "exactly_once");
    assert!(
        shrunk["operations_after"].as_u64().unwrap()
            < shrunk["operations_before"].as_u64().unwrap()
    );
    let minimal = PathBuf::from(&out).join(shrunk["violation"]["repro"].as_str().unwrap());
    let replay = shipsim(&[
        "replay",
        minimal.to_str().unwrap(),
        "--out",
        &out_dir(&scratch, "bug-replay-min"),
    ]);
    let replay_out = String::from_utf8_lossy(&replay.stdout);
    assert!(replay_out.contains("replayed exactly"), "{replay_out}");
    assert_eq!(
        replay.status.code(),
        Some(1),
        "the minimal repro still fails"
    );

    // --no-shrink leaves it out.
    let out = out_dir(&scratch, "bug-no-shrink");
    let output = shipsim(&[
        "run",
        "scenarios/walking_skeleton.toml",
        "--seeds",
        "1..2",
        "--bug",
        "carrier_without_key",
        "--no-shrink",
        "--out",
        &out,
        "-q",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let summary = std::fs::read_to_string(PathBuf::from(&out).join("summary.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert!(json["scenarios"][0]["shrunk"].is_null());
}

#[test]
fn bad_input_exits_2_with_a_message() {
    // Proves each kind of bad input is refused with exit 2 and a message naming the problem.
    let cases: &[(&[&str], &str)] = &[
        (&["run", "no/such/file.toml"], "no such file or directory"),
        (
            &["run", "scenarios", "--seeds", "9..2"],
            "must be greater than the start",
        ),
        (
            &["run", "scenarios", "--seeds", "x"],
            "not a non-negative integer",
        ),
        (
            &["run", "scenarios", "--bug", "no_such_bug"],
            "unknown planted bug",
        ),
        (&["run", "scenarios", "--shard", "5/4"], "1 <= I <= N"),
        (
            &["run", "scenarios", "--jobs", "0"],
            "--jobs must be at least 1",
        ),
        (&["check"], "required"),
        (&["run", "--frobnicate"], "unexpected argument"),
    ];
    for (args, expected) in cases {
        let output = shipsim(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn list_prints_one_name_per_line_for_scripts() {
    // Proves the script-friendly list flags print bare names, and that they match the
    // catalogues (every fault kind, oracle and bug).
    let faults = shipsim(&["list", "--faults"]);
    let names: Vec<String> = String::from_utf8_lossy(&faults.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(names.len(), shipsim::fault::CATALOGUE.len());
    assert!(names.contains(&"partition".to_string()));
    let bugs = shipsim(&["list", "--bugs"]);
    assert_eq!(
        String::from_utf8_lossy(&bugs.stdout).lines().count(),
        shipsim_system::bugs::Bug::ALL.len()
    );
    let oracles = shipsim(&["list", "--oracles"]);
    assert!(
        String::from_utf8_lossy(&oracles.stdout)
            .lines()
            .any(|l| l == "exactly_once")
    );
    let scenarios = shipsim(&["list", "--scenarios"]);
    assert!(
        String::from_utf8_lossy(&scenarios.stdout)
            .lines()
            .any(|l| l == "walking_skeleton")
    );
}

#[test]
fn replay_refuses_a_trace_it_does_not_reproduce() {
    // Proves `replay` compares the trace hash a repro pins: the right hash replays exactly
    // (exit 1 only because the pinned bug is caught), a wrong one is reported as such.
    let scratch = scratch();
    let repro = repo().join("scenarios/regressions/carrier_without_key.toml");
    let good = shipsim(&[
        "replay",
        repro.to_str().unwrap(),
        "--out",
        &out_dir(&scratch, "replay-good"),
    ]);
    assert!(
        String::from_utf8_lossy(&good.stdout).contains("replayed exactly"),
        "{}",
        String::from_utf8_lossy(&good.stdout)
    );
    let text = std::fs::read_to_string(&repro).unwrap();
    let hash_line = text.lines().find(|l| l.starts_with("trace_hash")).unwrap();
    let tampered = scratch.path().join("tampered.toml");
    std::fs::write(
        &tampered,
        text.replace(hash_line, "trace_hash = \"0000000000000000\""),
    )
    .unwrap();
    let bad = shipsim(&[
        "replay",
        tampered.to_str().unwrap(),
        "--out",
        &out_dir(&scratch, "replay-bad"),
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("DID NOT REPLAY"));
}

#[test]
fn promote_copies_a_repro_into_the_regression_corpus() {
    // Proves `promote` writes a named regression that parses, keeps its pinned seed and
    // bugs (so it is an expected failure), and refuses to overwrite.
    let scratch = scratch();
    let dir = scratch.path().join("promoted");
    let repro = repo().join("scenarios/regressions/lazy_durability.toml");
    let args = [
        "promote",
        repro.to_str().unwrap(),
        "--name",
        "lost-ack",
        "--dir",
        dir.to_str().unwrap(),
    ];
    let first = shipsim(&args);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let promoted = shipsim::Scenario::load(&dir.join("lost-ack.toml")).unwrap();
    assert_eq!(promoted.name, "lost-ack");
    assert!(promoted.seed.is_some() && !promoted.bugs.is_empty());
    let again = shipsim(&args);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("exists"));
}

#[test]
fn hunt_writes_a_report_with_shrunk_repros_that_replay() {
    // Proves `hunt` exits 0 when the bug is caught, records the catch in summary.json
    // (oracle, operations before and after shrinking, repro path) and writes a repro that
    // `replay` reproduces exactly; and that a bug the given scenario cannot catch exits 1.
    let scratch = scratch();
    let out = out_dir(&scratch, "hunt");
    let output = shipsim(&[
        "hunt",
        "scenarios/walking_skeleton.toml",
        "--bug",
        "carrier_without_key",
        "--seeds-max",
        "5",
        "--out",
        &out,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let summary = std::fs::read_to_string(PathBuf::from(&out).join("summary.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&summary).unwrap();
    let bug = &json["bugs"][0];
    assert_eq!(bug["bug"], "carrier_without_key");
    assert_eq!(bug["caught_by"], "exactly_once");
    let before = bug["operations_before"].as_u64().unwrap();
    let after = bug["operations_after"].as_u64().unwrap();
    assert!(after >= 1 && after < before, "{before} -> {after}");
    let repro = PathBuf::from(&out).join(bug["repro"].as_str().unwrap());
    let replay = shipsim(&[
        "replay",
        repro.to_str().unwrap(),
        "--out",
        &out_dir(&scratch, "hunt-replay"),
    ]);
    let replay_out = String::from_utf8_lossy(&replay.stdout);
    assert!(replay_out.contains("replayed exactly"), "{replay_out}");
    assert_eq!(replay.status.code(), Some(1), "the repro still fails");
    let markdown = std::fs::read_to_string(PathBuf::from(&out).join("summary.md")).unwrap();
    assert!(
        markdown.contains("all 1 planted bug(s) caught"),
        "{markdown}"
    );

    // A webhook receiver bug cannot show in a scenario without webhooks: it escapes.
    let escaped = shipsim(&[
        "hunt",
        "scenarios/walking_skeleton.toml",
        "--bug",
        "receiver_skips_signature",
        "--seeds-max",
        "2",
        "--no-shrink",
        "--out",
        &out_dir(&scratch, "hunt-escaped"),
    ]);
    assert_eq!(escaped.status.code(), Some(1), "{}", stderr(&escaped));
    assert!(stderr(&escaped).contains("escaped: receiver_skips_signature"));
}
