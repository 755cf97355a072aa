//! The command line's contract: exit codes 0 / 1 / 2 and clear messages for bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

fn shipsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shipsim"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("the shipsim binary runs")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn out_dir(name: &str) -> String {
    std::env::temp_dir()
        .join(format!("shipsim-cli-{name}"))
        .display()
        .to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn passing_run_exits_0_and_writes_summary() {
    // Proves a clean run exits 0 and writes summary.json with the contract's fields.
    let out = out_dir("pass");
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
    // Proves a violation exits 1, names the seed and writes a repro that `replay` runs.
    let out = out_dir("bug");
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
        &out_dir("bug-replay"),
    ]);
    assert_eq!(
        replay.status.code(),
        Some(1),
        "replay must reproduce the violation: {}",
        stderr(&replay)
    );
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
