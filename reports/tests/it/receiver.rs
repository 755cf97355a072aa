//! A webhook receiver's verdicts rendered: the terminal text, `summary.md` and the HTML page.

use std::collections::BTreeMap;

use shipsim_reports::model::{ReceiverFailureReport, ReceiverReport, ReceiverVerdictReport};
use shipsim_reports::{html, markdown, text};

/// A live run of 20 seeds: effect_once held, forged_refused broke on seeds 3 and 7 (with a
/// `<` in its evidence, which every renderer must escape), a burst measured, a note.
fn report() -> ReceiverReport {
    let verdict = |name: &str, seeds: &[u64]| ReceiverVerdictReport {
        name: name.into(),
        description: format!("what {name} demands"),
        seeds_failed: seeds.len() as u64,
        first_seed: seeds.first().copied(),
    };
    let failure = |seed: u64| ReceiverFailureReport {
        verdict: "forged_refused".into(),
        seed,
        evidence: vec![format!(
            "forged delivery of event evt_{seed} sent at 41 ms was acknowledged with 200 <ok>"
        )],
        repro: None,
        replay_command: format!(
            "shipsim live-receiver receiver.toml --target http://127.0.0.1:9 --seeds {seed}..{}",
            seed + 1
        ),
    };
    ReceiverReport {
        receiver: "python-tracking".into(),
        mode: "live".into(),
        target: Some("http://127.0.0.1:9".into()),
        seeds: "0..20".into(),
        seeds_run: 20,
        verdicts: vec![
            verdict("effect_once", &[]),
            verdict("forged_refused", &[3, 7]),
        ],
        failures: vec![failure(3), failure(7)],
        latency_ms_burst: Some(BTreeMap::from([
            ("p50".to_string(), 4),
            ("p95".to_string(), 9),
            ("p99".to_string(), 12),
            ("max".to_string(), 15),
            ("count".to_string(), 80),
        ])),
        notes: vec!["3 down windows were not applied".into()],
        problem: None,
    }
}

#[test]
fn every_renderer_shows_each_verdict_and_each_failure() {
    // Proves the three renderers show every verdict with its result, the broken one's
    // seeds, the failures' evidence and replay commands, the burst latency and the notes;
    // and that a passing report says it passed.
    let report = report();
    let text = text::receiver(&report);
    assert!(text.contains("effect_once     held"), "{text}");
    assert!(text.contains("forged_refused  BROKEN"), "{text}");
    assert!(text.contains("BROKEN [forged_refused] seed 3\n"), "{text}");
    assert!(
        text.contains(
            "replay: shipsim live-receiver receiver.toml --target http://127.0.0.1:9 --seeds 7..8"
        ),
        "{text}"
    );
    assert!(
        text.contains("burst latency ms: p50 4, p95 9, p99 12, max 15 (80 deliveries)"),
        "{text}"
    );
    assert!(text.contains("note: 3 down windows"), "{text}");
    assert!(
        text.ends_with("FAILED 1 verdict(s) broken on 2 of 20 seed(s)\n"),
        "{text}"
    );
    let markdown = markdown::receiver(&report);
    assert!(
        markdown.contains("| `forged_refused` | ❌ broken | 2 | 3 |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| `effect_once` | ✅ held | 0 | - |"),
        "{markdown}"
    );
    assert!(markdown.contains("&lt;ok&gt;"), "{markdown}");
    let page = html::receiver(&report);
    assert!(page.contains("<td class=\"fail\">BROKEN</td>"), "{page}");
    assert!(page.contains("<td class=\"pass\">held</td>"), "{page}");
    assert!(page.contains("200 &lt;ok&gt;"), "{page}");
    assert_eq!(page.matches("class=\"violation\"").count(), 2);
    let mut passing = report.clone();
    passing.failures.clear();
    passing.verdicts[1] = ReceiverVerdictReport {
        seeds_failed: 0,
        first_seed: None,
        ..passing.verdicts[1].clone()
    };
    assert!(text::receiver(&passing).ends_with("PASSED every verdict held on 20 seed(s)\n"));
    assert!(markdown::receiver(&passing).contains("✅ every verdict held"));
    assert!(html::receiver(&passing).contains("badge pass"));
}

#[test]
fn the_receiver_page_is_well_formed_and_self_contained() {
    // Proves the receiver's page parses as XML with one `<html>` root and loads nothing.
    let page = html::receiver(&report());
    let elements = super::html::parse(&page);
    assert_eq!(elements[0].name, "html");
    assert!(!page.contains("<script"));
    assert!(!page.contains("src=\""));
}

#[test]
fn the_receiver_summary_json_lists_every_verdict_and_failure() {
    // Proves `json::receiver` writes the receiver, the seeds run, every verdict's name in
    // order, each failure's verdict, seed, evidence and repro, and the burst latency, and
    // nothing of the report's presentation (descriptions, replay commands, notes).
    let text = shipsim_reports::json::receiver(&report()).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["receiver"], "python-tracking");
    assert_eq!(value["seeds_run"], 20);
    assert_eq!(
        value["verdicts"],
        serde_json::json!(["effect_once", "forged_refused"])
    );
    assert_eq!(value["failures"][1]["seed"], 7);
    assert_eq!(value["failures"][1]["verdict"], "forged_refused");
    assert_eq!(value["failures"][1]["repro"], serde_json::Value::Null);
    assert_eq!(value["latency_ms_burst"]["p95"], 9);
    let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "failures",
            "latency_ms_burst",
            "receiver",
            "seeds_run",
            "verdicts"
        ]
    );
    assert!(!text.contains("replay"), "{text}");
}
