//! The README's "Production checklist" table: every checklist line of the requirement
//! documents (copied verbatim in `checklist/lines.txt`) has a row, and every row proves its
//! line with names that exist (files, oracles, test functions) or says why it is out of
//! scope.

use std::collections::BTreeSet;
use std::path::Path;

use shipsim::oracle::OracleKind;

const LINES: &str = include_str!("checklist/lines.txt");

/// The checklist lines, in order.
fn checklist_lines() -> Vec<&'static str> {
    LINES
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// The rows of the README's table between its markers: (line, proof).
fn table_rows(readme: &str) -> Vec<(String, String)> {
    let begin = readme
        .find("<!-- checklist:begin -->")
        .expect("the README has the checklist table's begin marker");
    let end = readme
        .find("<!-- checklist:end -->")
        .expect("the README has the checklist table's end marker");
    readme[begin..end]
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| checklist line"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            assert_eq!(cells.len(), 2, "a row has two cells: {l}");
            (cells[0].to_string(), cells[1].to_string())
        })
        .collect()
}

/// Every name in backticks in `text`.
fn references(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// Every `fn NAME(` in the repository's Rust sources outside `target/` and `vendor/`.
fn function_names(root: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !matches!(name.as_str(), "target" | "vendor" | ".git" | "node_modules") {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for piece in text.split("fn ").skip(1) {
                    let ident: String = piece
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !ident.is_empty() && piece[ident.len()..].starts_with('(') {
                        names.insert(ident);
                    }
                }
            }
        }
    }
    names
}

/// Why `reference` does not resolve, if it does not.
fn unresolved(root: &Path, functions: &BTreeSet<String>, reference: &str) -> Option<String> {
    // Literal values quoted in prose (header names, JSON fields, URLs): allowed only as
    // such, never as a proof on their own.
    if LITERALS.contains(&reference) {
        return None;
    }
    if reference.contains('/') || reference.ends_with(".md") || reference == "Cargo.lock" {
        return (!root.join(reference).exists()).then(|| format!("no file `{reference}`"));
    }
    if OracleKind::ALL.iter().any(|o| o.name() == reference) {
        return None;
    }
    if reference
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && functions.contains(reference)
    {
        return None;
    }
    Some(format!(
        "`{reference}` is neither a file, an oracle, a test function nor a known literal"
    ))
}

/// Names quoted as literals in the table, not proofs.
const LITERALS: &[&str] = &[
    "shipsim serve",
    "https://",
    "idempotency_key",
    "order_id",
    "/metrics",
    "summary.json",
    "dup-res",
    "dup-eff",
];

#[test]
fn every_checklist_line_has_a_proof_or_a_reason() {
    // Proves the README's production checklist is complete and its proofs are real: a line
    // missing, a proof naming a file, oracle or test that does not exist, or a row with
    // neither a proof nor an out-of-scope reason fails here.
    let root = crate::support::repo();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let rows = table_rows(&readme);
    let lines = checklist_lines();
    assert!(lines.len() >= 40, "the checklist fixture lost lines");
    let listed: Vec<&str> = rows.iter().map(|(line, _)| line.as_str()).collect();
    assert_eq!(
        listed, lines,
        "the README's checklist table must list every checklist line, in order"
    );
    let functions = function_names(&root);
    let mut problems = Vec::new();
    for (line, proof) in &rows {
        let refs = references(proof);
        let proofs = refs.iter().filter(|r| !LITERALS.contains(r)).count();
        if proofs == 0 && !proof.starts_with("Out of scope") {
            problems.push(format!("`{line}`: no proof and no out-of-scope reason"));
        }
        if proof.starts_with("Out of scope") && proof.len() < 40 {
            problems.push(format!("`{line}`: an out-of-scope row must say why"));
        }
        for reference in refs {
            if let Some(problem) = unresolved(&root, &functions, reference) {
                problems.push(format!("`{line}`: {problem}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checklist_check_bites() {
    // Proves the check above can fail: a proof naming a test that does not exist, and a row
    // with no proof, are both reported.
    let root = crate::support::repo();
    let functions = function_names(&root);
    assert!(functions.contains("every_checklist_line_has_a_proof_or_a_reason"));
    assert!(unresolved(&root, &functions, "a_test_nobody_wrote").is_some());
    assert!(unresolved(&root, &functions, "scenarios/no_such_scenario.toml").is_some());
    assert!(unresolved(&root, &functions, "exactly_once").is_none());
    assert!(unresolved(&root, &functions, "scenarios/walking_skeleton.toml").is_none());
    let rows = table_rows(
        "<!-- checklist:begin -->\n| checklist line | proof |\n|---|---|\n| A | nothing here |\n<!-- checklist:end -->",
    );
    assert_eq!(rows, vec![("A".to_string(), "nothing here".to_string())]);
    assert!(references(&rows[0].1).is_empty());
}
