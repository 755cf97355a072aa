//! `index.html` is one well-formed, self-contained file with a plot for every endpoint.

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use shipsim_reports::html;

use crate::fixture::{self, ENDPOINTS};

/// One element of a parsed page: its name and attributes (values unescaped).
pub(crate) struct Element {
    pub(crate) name: String,
    attributes: Vec<(String, String)>,
}

impl Element {
    fn of(start: &BytesStart<'_>) -> Element {
        let mut attributes = Vec::new();
        for attribute in start.attributes() {
            let attribute = attribute.expect("well-formed, unique attribute");
            attributes.push((
                attribute.key.as_ref().to_string(),
                attribute
                    .normalized_value(XmlVersion::Implicit1_0)
                    .expect("valid escapes")
                    .into_owned(),
            ));
        }
        Element {
            name: start.name().as_ref().to_string(),
            attributes,
        }
    }

    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Every element of `xml` in document order, asserting well-formedness on the way: tags
/// balanced and properly nested, one root, attributes quoted and unique, only XML's own
/// entity references, valid escapes.
pub(crate) fn parse(xml: &str) -> Vec<Element> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut open: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut out = Vec::new();
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("not well-formed at byte {}: {e}", reader.error_position()));
        match event {
            Event::Eof => break,
            Event::Start(start) => {
                roots += usize::from(open.is_empty());
                let element = Element::of(&start);
                open.push(element.name.clone());
                out.push(element);
            }
            Event::Empty(start) => {
                roots += usize::from(open.is_empty());
                out.push(Element::of(&start));
            }
            Event::End(end) => {
                let name = end.name().as_ref().to_string();
                assert_eq!(
                    open.pop().as_deref(),
                    Some(name.as_str()),
                    "mismatched </{name}>"
                );
            }
            Event::GeneralRef(reference) => {
                let name = reference.as_ref().to_string();
                assert!(
                    ["amp", "lt", "gt", "quot", "apos"].contains(&name.as_str())
                        || name.starts_with('#'),
                    "entity &{name}; is not one of XML's"
                );
            }
            _ => {}
        }
    }
    assert!(open.is_empty(), "unclosed elements at the end: {open:?}");
    assert_eq!(roots, 1, "one root element");
    out
}

#[test]
fn page_is_well_formed_xml() {
    // Proves the page parses as XML from doctype to end (so browsers and XML tools read it
    // alike), with one `<html>` root and an inline SVG per chart.
    let page = html::render(&fixture::report()).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>\n"));
    let elements = parse(&page);
    assert_eq!(elements[0].name, "html");
    assert!(elements.iter().filter(|e| e.name == "svg").count() > 10);
}

#[test]
fn every_endpoint_of_every_scenario_has_a_percentile_plot_and_a_histogram() {
    // Proves each (scenario, endpoint) pair gets both charts, found by their data
    // attributes, and that each percentile plot draws curves (not the "no samples" frame).
    let report = fixture::report();
    let page = html::render(&report).unwrap();
    let elements = parse(&page);
    for plot in ["percentiles", "histogram"] {
        for endpoint in ENDPOINTS {
            let found = elements
                .iter()
                .filter(|e| {
                    e.name == "svg"
                        && e.attribute("data-plot") == Some(plot)
                        && e.attribute("data-endpoint") == Some(endpoint)
                })
                .count();
            assert_eq!(found, report.scenarios.len(), "{plot} plots of {endpoint}");
        }
    }
    let curves = elements.iter().filter(|e| e.name == "polyline").count();
    // Three series (all, fault window, quiet window) per percentile plot.
    assert_eq!(curves, 3 * ENDPOINTS.len() * report.scenarios.len());
}

#[test]
fn text_from_the_report_is_escaped() {
    // Proves names, descriptions and messages full of markup characters appear escaped,
    // never as markup: the raw strings are absent and their unescaped text survives parsing.
    let page = html::render(&fixture::report()).unwrap();
    assert!(!page.contains("walking <skeleton>"));
    assert!(page.contains("walking &lt;skeleton&gt;"));
    assert!(page.contains("lost &amp; &quot;found&quot;"));
    assert!(page.contains("&lt;in front of&gt;"));
    parse(&page);
}

#[test]
fn page_is_self_contained() {
    // Proves the page loads nothing: no script, no external style sheet, image, font or
    // frame, no URL other than the XML namespaces of the root and the inline SVGs.
    let page = html::render(&fixture::report()).unwrap();
    for forbidden in [
        "<script", "<link", "<img", "<iframe", "src=", "url(", "@import",
    ] {
        assert!(!page.contains(forbidden), "page contains {forbidden}");
    }
    let urls = page.matches("http://").count() + page.matches("https://").count();
    let namespaces = page.matches("xmlns=\"http://www.w3.org/").count();
    assert_eq!(urls, namespaces, "only namespace URLs");
}

#[test]
fn failing_seed_gets_a_timeline_with_its_operation_faults_and_crash() {
    // Proves each failing seed's violation is drawn as a timeline, and so is the scenario's
    // minimal repro: a row for the involved operation with its two attempts, the partition
    // window shaded, the crash marked.
    let page = html::render(&fixture::report()).unwrap();
    let elements = parse(&page);
    let timelines = elements
        .iter()
        .filter(|e| e.name == "svg" && e.attribute("data-plot") == Some("timeline"))
        .count();
    assert_eq!(
        timelines, 3,
        "one per violation of the failing scenario, one for its minimal repro"
    );
    let class_count = |class: &str| {
        elements
            .iter()
            .filter(|e| {
                e.attribute("class")
                    .is_some_and(|c| c.split(' ').any(|p| p == class))
            })
            .count()
    };
    assert_eq!(class_count("attempt"), 6);
    assert_eq!(class_count("fault-band"), 3);
    assert_eq!(class_count("mark-crash"), 3);
    assert_eq!(class_count("involved"), 3);
    assert!(page.contains("<h3>Minimal repro</h3>"));
}

#[test]
fn identical_reports_render_identically() {
    // Proves rendering is a pure function: two renders of equal reports are byte-equal.
    assert_eq!(
        html::render(&fixture::report()).unwrap(),
        html::render(&fixture::report()).unwrap()
    );
}

#[test]
fn caught_planted_bugs_have_their_own_section_and_no_red() {
    // Proves a regression proof (a scenario pinning a planted bug, expected to fail, and
    // failing every seed) is shown as a caught bug: listed in its own overview table and its
    // own section after the system's scenarios, its oracle "caught the bug" and its seeds
    // "caught" in green, never "pass" beside "1 / 1 failed" or a red "VIOLATED", and the
    // overview says its totals leave it out.
    let mut report = fixture::report();
    let mut proof = fixture::scenario("carrier_without_key_caught", &[7], &[7]);
    proof.expected_to_fail = true;
    proof.passed = true;
    proof.shrunk = None;
    report.scenarios.push(proof);
    report.totals = shipsim_reports::model::Totals::of(&report.scenarios);
    let page = html::render(&report).unwrap();
    parse(&page);
    let section_at = page
        .find("id=\"regressions\"")
        .expect("a section of its own");
    let proof_at = page
        .find("id=\"s2-carrier-without-key-caught\"")
        .expect("the proof's section");
    assert!(
        proof_at > section_at,
        "the proof sits in the regressions section"
    );
    let system_at = page.find("id=\"s0-").expect("the system's first scenario");
    assert!(system_at < section_at, "system scenarios come first");
    let proof_section = &page[proof_at..];
    let proof_section = &proof_section[..proof_section.find("</section>").unwrap()];
    assert!(proof_section.contains("CAUGHT"));
    assert!(proof_section.contains("caught the bug"));
    assert!(!proof_section.contains("VIOLATED"), "{proof_section}");
    assert!(!proof_section.contains(">FAIL<"), "{proof_section}");
    assert!(proof_section.contains("<td class=\"pass\">caught</td>"));
    let overview = &page[page.find("id=\"overview\"").unwrap()..];
    let overview = &overview[..overview.find("</section>").unwrap()];
    assert!(overview.contains("leave out the 1 regression scenario(s)"));
    let system_table = &overview[..overview.find("<h3>Caught planted bugs</h3>").unwrap()];
    assert!(
        !system_table.contains("carrier_without_key_caught"),
        "not among the system's scenarios"
    );
    assert!(overview.contains("<td class=\"pass\">caught</td><td>1 / 1</td>"));
}
