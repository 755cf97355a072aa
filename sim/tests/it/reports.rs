//! The report directory end to end: every file is written, shard reports merge into
//! exactly the unsharded report, and `compare` gates on a baseline with exit codes 0 / 1 / 2.

use std::path::Path;
use std::process::Output;

use shipsim::many::sweep::{self, Progress, Shard, SweepOptions};
use shipsim::output::summary;
use shipsim::scenario::Scenario;
use shipsim_reports::model::Report;
use shipsim_system::bugs::{Bug, BugSet};

use crate::support::{repo, scratch, shipsim};

fn text(output: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn skeleton() -> Scenario {
    Scenario::load(&repo().join("scenarios/walking_skeleton.toml")).expect("the corpus is valid")
}

/// The report of `shard` (or the whole sweep) of seeds 1..10 with a planted bug, so that
/// seeds fail and violations, timelines and repro files are part of what must match.
fn sweep_report(shard: Option<Shard>, out: &Path) -> Report {
    let options = SweepOptions {
        target: shipsim::reference::target(),
        replay: shipsim::many::sweep::Replay::Cli,
        seeds: Some(shipsim::SeedRange::new(1, 10).unwrap()),
        jobs: 2,
        shard,
        bugs: BugSet::of([Bug::CarrierWithoutKey]),
        check_determinism: false,
        progress: Progress::Quiet,
    };
    let outcome = sweep::sweep(&[skeleton()], &options);
    let triaged = shipsim::many::triage::triage(&outcome, &options, false, |_, _| {});
    summary::build(&outcome, &triaged, &options, "1..10", out, 0.0).0
}

#[test]
fn merged_shards_equal_the_unsharded_report() {
    // Proves that merging the three shard reports of a sweep gives the unsharded report:
    // every histogram (byte for byte), percentile, count, seed and trace hash, fault,
    // oracle, budget and violation with its timeline; only the run block differs.
    let scratch = scratch();
    let out = scratch.path().join("merge-exact");
    let whole = sweep_report(None, &out);
    let shards: Vec<(String, Report)> = (1..=3)
        .map(|index| {
            let shard = Shard { index, count: 3 };
            (format!("shard {shard}"), sweep_report(Some(shard), &out))
        })
        .collect();
    assert!(
        shards.iter().all(|(_, r)| r.totals.seeds_run > 0),
        "every shard ran seeds"
    );
    let mut merged = shipsim_reports::merge::merge(&shards).expect("shards of one sweep merge");
    assert_eq!(merged.run.shard, None);
    for (ours, theirs) in merged.scenarios.iter().zip(&whole.scenarios) {
        assert_eq!(
            ours.histograms, theirs.histograms,
            "histograms of {}",
            ours.name
        );
        assert_eq!(ours.latency_ms, theirs.latency_ms);
        assert_eq!(ours.fault_window_latency_ms, theirs.fault_window_latency_ms);
        assert_eq!(ours.quiet_window_latency_ms, theirs.quiet_window_latency_ms);
        assert_eq!(ours.requests, theirs.requests);
        assert_eq!(ours.seeds, theirs.seeds);
    }
    merged.run = whole.run.clone();
    assert_eq!(merged, whole);
}

#[test]
fn run_writes_every_report_file() {
    // Proves a run's directory holds summary.json, index.html, junit.xml, summary.md and
    // one interval log per endpoint, and that a second run into it leaves no stale file.
    let scratch = scratch();
    let out = scratch.path().join("files");
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

#[test]
fn merge_and_compare_from_the_command_line() {
    // Proves the CI workflow: two shard runs merge into a report equal to the baseline of
    // the unsharded run (compare exits 0), a baseline with lower latency makes compare exit
    // 1 naming the regression, and bad input exits 2 naming the file.
    let scratch = scratch();
    let dir = |name: &str| {
        scratch
            .path()
            .join(format!("cli-{name}"))
            .display()
            .to_string()
    };
    let (base, one, two, merged) = (dir("base"), dir("shard1"), dir("shard2"), dir("merged"));
    let run = |out: &str, shard: Option<&str>| {
        let mut args = vec![
            "run",
            "scenarios/walking_skeleton.toml",
            "--seeds",
            "1..5",
            "--out",
            out,
            "-q",
        ];
        if let Some(shard) = shard {
            args.extend(["--shard", shard]);
        }
        let output = shipsim(&args);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    };
    run(&base, None);
    run(&one, Some("1/2"));
    run(&two, Some("2/2"));
    let summary = |dir: &str| format!("{dir}/summary.json");
    let output = shipsim(&["merge", &merged, &summary(&one), &summary(&two), "-q"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    for file in [
        "index.html",
        "junit.xml",
        "summary.md",
        "post-v1-orders.hlog",
    ] {
        assert!(
            Path::new(&merged).join(file).is_file(),
            "merge wrote {file}"
        );
    }

    let output = shipsim(&["compare", &summary(&base), &summary(&merged)]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        text(&output).contains("no regression against the baseline"),
        "{}",
        text(&output)
    );

    let mut faster: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(summary(&base)).unwrap()).unwrap();
    faster["scenarios"][0]["latency_ms"]["POST /v1/orders/{id}/shipments"]["p99"] = 1.into();
    let faster_path = scratch.path().join("cli-faster-baseline.json");
    std::fs::write(&faster_path, faster.to_string()).unwrap();
    let faster_text = faster_path.display().to_string();
    let output = shipsim(&[
        "compare",
        &faster_text,
        &summary(&merged),
        "--threshold",
        "10",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output)
            .contains("REGRESSION walking_skeleton: POST /v1/orders/{id}/shipments p99 1 ->"),
        "{}",
        text(&output)
    );

    let garbage = scratch.path().join("cli-garbage.json");
    std::fs::write(&garbage, "{ not json").unwrap();
    let garbage = garbage.display().to_string();
    let mut future = faster.clone();
    future["schema_version"] = 99.into();
    let future_path = scratch.path().join("cli-future.json");
    std::fs::write(&future_path, future.to_string()).unwrap();
    let future_path = future_path.display().to_string();
    let shard_one = summary(&one);
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["compare", "no/such/base.json", &faster_text],
            "no/such/base.json: cannot read".into(),
        ),
        (
            vec!["compare", &faster_text, &garbage],
            format!("{garbage}: not a shipsim summary.json"),
        ),
        (
            vec!["compare", &future_path, &faster_text],
            "schema_version 99 is not supported".into(),
        ),
        (
            vec!["compare", &faster_text, &faster_text, "--threshold=-5"],
            "must be a percentage >= 0".into(),
        ),
        (
            vec!["merge", &merged, &shard_one],
            "shard(s) 2 of 2 missing".into(),
        ),
        (
            vec!["merge", &merged, &shard_one, &shard_one],
            "given twice".into(),
        ),
    ];
    for (args, expected) in cases {
        let output = shipsim(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output));
        assert!(
            text(&output).contains(&expected),
            "{args:?}: {}",
            text(&output)
        );
    }
}
