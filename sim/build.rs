//! Generates one `#[test]` per scenario file under `../scenarios`, so that `cargo test`
//! lists and filters scenarios by name and a new file needs no Rust.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dir = manifest.join("..").join("scenarios");
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut files = Vec::new();
    collect(&dir, &mut files);
    files.sort();
    // One test per file; subdirectories become nested modules, so that
    // `regressions/lost_label.toml` is the test `scenarios::regressions::lost_label`.
    let mut tree = Node::default();
    for file in &files {
        let relative = file.strip_prefix(&dir).expect("collected under dir");
        let mut parts: Vec<String> = relative
            .parent()
            .map(|p| {
                p.components()
                    .map(|c| identifier(&c.as_os_str().to_string_lossy()))
                    .collect()
            })
            .unwrap_or_default();
        let stem = identifier(
            &relative
                .with_extension("")
                .file_name()
                .expect("files have names")
                .to_string_lossy(),
        );
        let mut node = &mut tree;
        for part in parts.drain(..) {
            node = node.children.entry(part).or_default();
        }
        node.tests.push((
            stem,
            file.canonicalize()
                .expect("scenario file exists")
                .display()
                .to_string(),
        ));
    }
    let mut out = String::new();
    tree.render(&mut out, 0);
    let target = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("scenario_tests.rs");
    std::fs::write(&target, out).expect("OUT_DIR is writable");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            println!("cargo::rerun-if-changed={}", path.display());
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
}

#[derive(Default)]
struct Node {
    tests: Vec<(String, String)>,
    children: std::collections::BTreeMap<String, Node>,
}

impl Node {
    fn render(&self, out: &mut String, depth: usize) {
        let indent = "    ".repeat(depth);
        for (name, path) in &self.tests {
            let _ = writeln!(
                out,
                "{indent}#[test]\n{indent}fn {name}() {{\n{indent}    scenario_file_holds({path:?});\n{indent}}}\n"
            );
        }
        for (name, child) in &self.children {
            let _ = writeln!(
                out,
                "{indent}mod {name} {{\n{indent}    use super::scenario_file_holds;\n"
            );
            child.render(out, depth + 1);
            let _ = writeln!(out, "{indent}}}\n");
        }
    }
}

/// `lost-label` -> `lost_label`; keywords and leading digits get a prefix.
fn identifier(text: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) || is_keyword(&name) {
        name.insert_str(0, "scenario_");
    }
    name
}

fn is_keyword(name: &str) -> bool {
    [
        "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum",
        "extern", "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod",
        "move", "mut", "pub", "ref", "return", "self", "static", "struct", "super", "trait",
        "true", "type", "unsafe", "use", "where", "while", "yield",
    ]
    .contains(&name)
}
