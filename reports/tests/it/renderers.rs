//! Snapshots of every renderer on the fixed report, and the properties each file's readers
//! rely on: JSON round-trips, JUnit parses with a failure per failing scenario, interval
//! logs hold exactly the stored histograms.

use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use shipsim_reports::histogram::{HistogramKind, decode};
use shipsim_reports::{hlog, json, junit, markdown, text};

use crate::fixture::{self, ENDPOINTS};

#[test]
fn markdown_summary_snapshot() {
    // Proves the Markdown summary's exact text (verdict, table, failures, bug table).
    insta::assert_snapshot!(markdown::render(&fixture::report()).unwrap());
}

#[test]
fn junit_snapshot() {
    // Proves the JUnit document's exact text: one case per scenario and seed set, the
    // failing one carrying seeds, violations and replay commands.
    insta::assert_snapshot!(junit::render(&fixture::report()).unwrap());
}

#[test]
fn hlog_snapshot() {
    // Proves the interval log's exact text for one endpoint: header, legend, one
    // untagged and three tagged intervals per scenario.
    insta::assert_snapshot!(hlog::render(&fixture::report(), ENDPOINTS[1]).unwrap());
}

#[test]
fn html_snapshot() {
    // Proves the page's exact markup, so that any change to it is reviewed.
    insta::assert_snapshot!(shipsim_reports::html::render(&fixture::report()).unwrap());
}

#[test]
fn terminal_table_snapshot() {
    // Proves the terminal summary's exact text on the same report.
    insta::assert_snapshot!(text::render(&fixture::report()));
}

#[test]
fn json_round_trips_and_tolerates_missing_optional_fields() {
    // Proves summary.json reads back into an equal report, and that a v1 file written
    // before the optional fields existed (no `bugs`, no window split, no timeline kinds)
    // still reads, with those fields defaulted.
    let report = fixture::report();
    let text = json::render(&report).unwrap();
    assert_eq!(json::parse(&text).unwrap(), report);

    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value.as_object_mut().unwrap().remove("bugs");
    for scenario in value["scenarios"].as_array_mut().unwrap() {
        let scenario = scenario.as_object_mut().unwrap();
        for field in [
            "fault_window_latency_ms",
            "quiet_window_latency_ms",
            "duplicate_deliveries_absorbed",
            "in_flight_conflicts",
        ] {
            scenario.remove(field);
        }
        for violation in scenario["violations"].as_array_mut().unwrap() {
            for entry in violation["timeline"].as_array_mut().unwrap() {
                let entry = entry.as_object_mut().unwrap();
                entry.remove("op");
                entry.remove("until_us");
                entry.insert("kind".into(), "kind_from_the_future".into());
            }
        }
    }
    let old = json::parse(&value.to_string()).unwrap();
    assert!(old.bugs.is_empty());
    assert!(old.scenarios[1].fault_window_latency_ms.is_empty());
    let entry = &old.scenarios[1].violations[0].timeline[0];
    assert_eq!(entry.kind, shipsim_reports::model::TimelineKind::Other);
    assert!(shipsim_reports::html::render(&old).is_ok());
}

#[test]
fn json_of_another_schema_version_is_refused() {
    // Proves a reader never silently misreads a future schema: the version is checked.
    let text = json::render(&fixture::report()).unwrap().replacen(
        "\"schema_version\": 1",
        "\"schema_version\": 2",
        1,
    );
    let error = json::parse(&text).unwrap_err().to_string();
    assert!(
        error.contains("schema_version 2 is not supported"),
        "{error}"
    );
}

#[test]
fn hlog_intervals_hold_exactly_the_stored_histograms() {
    // Proves the interval log is readable by HdrHistogram's own parser and each interval
    // decodes to exactly the histogram the report stores, tags and timing as documented.
    let report = fixture::report();
    for endpoint in ENDPOINTS {
        let log = hlog::render(&report, endpoint).unwrap();
        let mut intervals = Vec::new();
        for entry in IntervalLogIterator::new(log.as_bytes()) {
            if let LogEntry::Interval(interval) = entry.expect("parses") {
                intervals.push((
                    interval.tag().map(|t| t.as_str().to_string()),
                    interval.start_timestamp(),
                    interval.encoded_histogram().to_string(),
                ));
            }
        }
        assert_eq!(intervals.len(), 4 * report.scenarios.len());
        let kinds = [
            (None, HistogramKind::E2e),
            (Some("fault_window"), HistogramKind::E2eFault),
            (Some("quiet_window"), HistogramKind::E2eQuiet),
            (Some("attempt"), HistogramKind::Attempt),
        ];
        let mut start_ms = 0;
        for (scenario, chunk) in report.scenarios.iter().zip(intervals.chunks(4)) {
            for ((tag, kind), (found_tag, start, encoded)) in kinds.iter().zip(chunk) {
                assert_eq!(found_tag.as_deref(), *tag);
                assert_eq!(start.as_millis() as u64, start_ms);
                let bytes =
                    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded)
                        .unwrap();
                let from_log: hdrhistogram::Histogram<u64> = Deserializer::new()
                    .deserialize(&mut bytes.as_slice())
                    .unwrap();
                let stored = decode(&scenario.histograms[&kind.key(endpoint)]).unwrap();
                assert_eq!(from_log, stored, "{} {tag:?}", scenario.name);
            }
            start_ms += scenario.seeds.iter().map(|s| s.sim_ms).sum::<u64>();
        }
    }
    let files = hlog::render_all(&report).unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.file_name.as_str()).collect();
    assert_eq!(
        names,
        ["post-v1-orders.hlog", "post-v1-orders-id-shipments.hlog"]
    );
}

#[test]
fn junit_parses_with_one_failure_per_failing_scenario() {
    // Proves the JUnit file is well-formed XML whose counts agree with its test cases (two
    // scenarios, two hunted bugs of which one escaped), and that the failing case's text
    // names its seeds and replay commands.
    let xml = junit::render(&fixture::report()).unwrap();
    let mut reader = quick_xml::reader::Reader::from_str(&xml);
    let (mut cases, mut failures) = (0, 0);
    loop {
        match reader.read_event().expect("well-formed") {
            quick_xml::events::Event::Eof => break,
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                match e.name().as_ref() {
                    "testcase" => cases += 1,
                    "failure" => failures += 1,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    assert_eq!((cases, failures), (4, 2));
    assert!(xml.contains(r#"tests="4" failures="2""#));
    assert!(xml.contains("planted bug new_key_per_attempt escaped every oracle in 4 seed(s)"));
    assert!(xml.contains("seed 2: 2 carrier labels"));
    assert!(
        xml.contains("replay: shipsim replay out/repro/lost &amp; &quot;found&quot;-seed3.toml")
    );
}
