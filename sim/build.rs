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
    let mut out = String::new();
    for file in &files {
        let relative = file.strip_prefix(&dir).expect("collected under dir");
        let name = test_name(relative);
        let path = file.canonicalize().expect("scenario file exists");
        let _ = writeln!(
            out,
            "#[test]\nfn {name}() {{\n    scenario_file_holds({:?});\n}}\n",
            path.display().to_string()
        );
    }
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

/// `regressions/lost-label.toml` -> `regressions__lost_label`.
fn test_name(relative: &Path) -> String {
    let text = relative.with_extension("").display().to_string();
    let mut name: String = text
        .replace(['/', '\\'], "__")
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
