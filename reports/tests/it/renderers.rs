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

/// What the Jenkins/Surefire JUnit schema (xunit-plugin's `junit-10.xsd`) allows of one
/// element: the attributes it may carry, those it must, and the elements it may contain.
struct JunitElement {
    name: &'static str,
    required: &'static [&'static str],
    optional: &'static [&'static str],
    children: &'static [&'static str],
}

const JUNIT_SCHEMA: &[JunitElement] = &[
    JunitElement {
        name: "testsuites",
        required: &[],
        optional: &["name", "time", "tests", "failures", "errors"],
        children: &["testsuite"],
    },
    JunitElement {
        name: "testsuite",
        required: &["name", "tests", "failures", "errors"],
        optional: &[
            "group",
            "time",
            "skipped",
            "timestamp",
            "hostname",
            "id",
            "package",
            "file",
            "log",
            "url",
        ],
        children: &[
            "testsuite",
            "properties",
            "testcase",
            "system-out",
            "system-err",
        ],
    },
    JunitElement {
        name: "properties",
        required: &[],
        optional: &[],
        children: &["property"],
    },
    JunitElement {
        name: "property",
        required: &["name", "value"],
        optional: &[],
        children: &[],
    },
    JunitElement {
        name: "testcase",
        required: &["name"],
        optional: &["time", "classname", "group"],
        children: &[
            "skipped",
            "error",
            "failure",
            "rerunFailure",
            "rerunError",
            "flakyFailure",
            "flakyError",
            "system-out",
            "system-err",
        ],
    },
    JunitElement {
        name: "failure",
        required: &[],
        optional: &["type", "message"],
        children: &[],
    },
    JunitElement {
        name: "error",
        required: &[],
        optional: &["type", "message"],
        children: &[],
    },
    JunitElement {
        name: "skipped",
        required: &[],
        optional: &["type", "message"],
        children: &[],
    },
    JunitElement {
        name: "system-out",
        required: &[],
        optional: &[],
        children: &[],
    },
    JunitElement {
        name: "system-err",
        required: &[],
        optional: &[],
        children: &[],
    },
];

/// Every way `xml` breaks [`JUNIT_SCHEMA`]: unknown elements, misplaced children, unknown
/// or missing attributes, and `time` values outside the schema's number pattern.
fn junit_schema_errors(xml: &str) -> Vec<String> {
    use quick_xml::events::{BytesStart, Event};
    let mut errors = Vec::new();
    let mut open: Vec<String> = Vec::new();
    let mut reader = quick_xml::reader::Reader::from_str(xml);
    let check = |e: &BytesStart<'_>, parent: Option<&String>, errors: &mut Vec<String>| {
        let name = e.name().as_ref().to_string();
        let Some(rule) = JUNIT_SCHEMA.iter().find(|r| r.name == name) else {
            errors.push(format!("element <{name}> is not in the schema"));
            return name;
        };
        match parent {
            None if name != "testsuites" && name != "testsuite" => {
                errors.push(format!("<{name}> cannot be the root"));
            }
            Some(parent) => {
                let parent_rule = JUNIT_SCHEMA.iter().find(|r| r.name == parent.as_str());
                if parent_rule.is_some_and(|p| !p.children.contains(&name.as_str())) {
                    errors.push(format!("<{parent}> cannot contain <{name}>"));
                }
            }
            None => {}
        }
        let mut seen = Vec::new();
        for attribute in e.attributes() {
            let attribute = attribute.expect("well-formed attribute");
            let key = attribute.key.as_ref().to_string();
            if !rule.required.contains(&key.as_str()) && !rule.optional.contains(&key.as_str()) {
                errors.push(format!("<{name}> does not take attribute `{key}`"));
            }
            let value = attribute.value.to_string();
            let (whole, fraction) = value.split_once('.').unwrap_or((&value, ""));
            if key == "time"
                && !(whole.bytes().all(|b| b.is_ascii_digit())
                    && fraction.bytes().all(|b| b.is_ascii_digit()))
            {
                errors.push(format!("<{name} time=\"{value}\"> is not a number"));
            }
            seen.push(key);
        }
        for required in rule.required {
            if !seen.iter().any(|k| k == required) {
                errors.push(format!("<{name}> lacks attribute `{required}`"));
            }
        }
        name
    };
    loop {
        match reader.read_event().expect("well-formed") {
            Event::Eof => break,
            Event::Start(e) => {
                let name = check(&e, open.last(), &mut errors);
                open.push(name);
            }
            Event::Empty(e) => {
                check(&e, open.last(), &mut errors);
            }
            Event::End(_) => {
                open.pop();
            }
            _ => {}
        }
    }
    errors
}

#[test]
fn junit_follows_the_jenkins_surefire_schema() {
    // Proves junit.xml is valid under the strict Jenkins/Surefire schema: no `file`
    // attribute on test cases (the scenario's file is a suite property instead), a `time`
    // on every test case taken from the run's wall clock, and `skipped` on the suite. The
    // checker is shown to bite on a document with the old `testcase@file`.
    let xml = junit::render(&fixture::report()).unwrap();
    assert_eq!(junit_schema_errors(&xml), Vec::<String>::new(), "{xml}");
    assert!(xml.contains(r#"<property name="scenario.walking &lt;skeleton&gt;.file" value="scenarios/walking &lt;skeleton&gt;.toml"/>"#));
    assert!(xml.contains(r#"name="walking &lt;skeleton&gt; [seeds 1..=4]" time="0.412""#));
    assert!(xml.contains(r#"skipped="0""#));
    let cases = xml.matches("<testcase ").count();
    assert_eq!(cases, 4);
    assert_eq!(
        xml.split("<testcase ")
            .skip(1)
            .filter(|case| case.split('>').next().unwrap().contains(" time=\""))
            .count(),
        cases,
        "every test case has a time"
    );
    let old = r#"<testsuites><testsuite name="s" tests="1" failures="0" errors="0"><testcase name="c" file="x.toml"/></testsuite></testsuites>"#;
    assert_eq!(
        junit_schema_errors(old),
        vec!["<testcase> does not take attribute `file`".to_string()]
    );
}
