//! The report directory end to end: every file is written, and nothing stale stays.

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

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("shipsim-reports-{name}"))
}

fn text(output: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn run_writes_every_report_file() {
    // Proves a run's directory holds summary.json, index.html, junit.xml, summary.md and
    // one interval log per endpoint, and that a second run into it leaves no stale file.
    let out = temp("files");
    let out_text = out.display().to_string();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("stale-endpoint.hlog"), "old").unwrap();
    let output = shipsim(&[
        "run",
        "scenarios/walking_skeleton.toml",
        "--seeds",
        "1..3",
        "--out",
        &out_text,
        "-q",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    for file in ["summary.json", "index.html", "junit.xml", "summary.md"] {
        let contents = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(!contents.is_empty(), "{file} is empty");
    }
    let mut logs: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".hlog"))
        .collect();
    logs.sort();
    assert_eq!(
        logs,
        [
            "get-v1-orders-id.hlog",
            "get-v1-shipments-id.hlog",
            "post-v1-orders-id-shipments.hlog",
            "post-v1-orders.hlog"
        ]
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let scenario = &summary["scenarios"][0];
    let endpoint = "POST /v1/orders/{id}/shipments";
    let all = scenario["latency_ms"][endpoint]["count"].as_u64().unwrap();
    let fault = scenario["fault_window_latency_ms"][endpoint]["count"]
        .as_u64()
        .unwrap();
    let quiet = scenario["quiet_window_latency_ms"][endpoint]["count"]
        .as_u64()
        .unwrap();
    assert_eq!(fault + quiet, all, "the windows partition the operations");
    assert!(
        fault > 0 && quiet > 0,
        "this scenario has both kinds of window"
    );
    assert!(scenario["duplicate_deliveries_absorbed"].as_u64().unwrap() > 0);
}
