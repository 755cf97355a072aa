//! The seam between the properties and the input formats they fuzz. A format says how to
//! check a text, how to run what was accepted for a moment, how to write it back, and what
//! its corpus is; the properties below hold for every format: scenario files
//! (`scenario.rs`) and target descriptions (`description.rs`), each with its own generators.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// How `check` refused an input.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// 1-based line, when the problem has a position.
    pub line: Option<usize>,
    /// 1-based column, when the problem has a position.
    pub column: Option<usize>,
    /// The offending line, when the problem has a position.
    pub snippet: Option<String>,
    /// Everything the user sees.
    pub rendered: String,
}

/// An input format shipsim reads from files.
pub trait InputFormat {
    /// What `check` made of an accepted input.
    type Accepted: std::fmt::Debug + PartialEq;

    /// Validates `text` as file `file` (what `shipsim check` does).
    ///
    /// # Errors
    /// The refusal, as the user would see it.
    fn check(file: &str, text: &str) -> Result<Self::Accepted, Refusal>;

    /// Reads and validates file `path` (the path `check` takes for bytes that are not text).
    ///
    /// # Errors
    /// As [`InputFormat::check`].
    fn load(path: &Path) -> Result<Self::Accepted, Refusal>;

    /// Runs an accepted input for a few seeds under a simulated-time limit; panics (failing
    /// the property) if the run panics or outlives the limit.
    fn run_briefly(accepted: &Self::Accepted);

    /// Writes an accepted input back as text, as repro files do.
    fn write_back(accepted: &Self::Accepted) -> String;

    /// Whether two accepted inputs are the same apart from where they were read from.
    fn same(a: &Self::Accepted, b: &Self::Accepted) -> bool;
}

/// Proptest's configuration: `PROPTEST_CASES` when set (the usual variable), else
/// `default_cases`; failures persist under `sim/tests/proptest-regressions/`, committed.
pub fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}

/// [`config`] for properties that run simulations: each shrinking step is a run, so
/// shrinking stops after 128 steps (a failure is reported within minutes, smaller than it
/// was found if not minimal).
pub fn config_runs(default_cases: u32) -> Config {
    Config {
        max_shrink_iters: 128,
        ..config(default_cases)
    }
}

/// `check` does not panic, and a refusal names the file, line and column and shows the
/// offending line. Returns what was accepted.
pub fn check_is_located<F: InputFormat>(text: &str) -> Result<Option<F::Accepted>, TestCaseError> {
    let file = "fuzz.toml";
    match F::check(file, text) {
        Ok(accepted) => Ok(Some(accepted)),
        Err(refusal) => {
            assert_located(file, text, &refusal)?;
            Ok(None)
        }
    }
}

/// [`check_is_located`] for raw bytes: text goes through `check`; anything else through the
/// file path, where it must be refused naming the file.
pub fn check_bytes_is_located<F: InputFormat>(
    bytes: &[u8],
    scratch: &Path,
) -> Result<Option<F::Accepted>, TestCaseError> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return check_is_located::<F>(text);
    }
    std::fs::write(scratch, bytes).expect("the scratch file is writable");
    let refusal = match F::load(scratch) {
        Ok(accepted) => {
            return Err(TestCaseError::fail(format!(
                "bytes that are not UTF-8 were accepted: {accepted:?}"
            )));
        }
        Err(refusal) => refusal,
    };
    let file = scratch.display().to_string();
    prop_assert!(
        refusal.rendered.starts_with(&format!("{file}: ")),
        "a refusal of an unreadable file must name it: {}",
        refusal.rendered
    );
    Ok(None)
}

fn assert_located(file: &str, text: &str, refusal: &Refusal) -> Result<(), TestCaseError> {
    let (Some(line), Some(column)) = (refusal.line, refusal.column) else {
        return Err(TestCaseError::fail(format!(
            "refusal without a position: {}",
            refusal.rendered
        )));
    };
    let prefix = format!("{file}:{line}:{column}: ");
    prop_assert!(
        refusal.rendered.starts_with(&prefix),
        "refusal does not start with {prefix:?}: {}",
        refusal.rendered
    );
    let lines = text.split('\n').count();
    prop_assert!(
        (1..=lines).contains(&line),
        "line {line} outside the {lines}-line text: {}",
        refusal.rendered
    );
    let snippet = refusal.snippet.as_deref().unwrap_or_default();
    let source_line = text.split('\n').nth(line - 1).unwrap_or_default();
    prop_assert_eq!(snippet, source_line.trim_end_matches('\r'));
    prop_assert!(
        column >= 1 && column <= snippet.chars().count() + 1,
        "column {column} outside its line: {}",
        refusal.rendered
    );
    Ok(())
}

/// Whatever `check` accepted runs for a few seeds and ends, and writes back to a text that
/// `check` reads as the same input.
pub fn accepted_runs_and_round_trips<F: InputFormat>(
    accepted: &F::Accepted,
) -> Result<(), TestCaseError> {
    let text = F::write_back(accepted);
    match F::check("written-back.toml", &text) {
        Ok(back) => prop_assert!(
            F::same(accepted, &back),
            "written back, it reads differently:\n{text}\n{accepted:?}\n{back:?}"
        ),
        Err(refusal) => {
            return Err(TestCaseError::fail(format!(
                "written back, it is refused: {}\n{text}",
                refusal.rendered
            )));
        }
    }
    F::run_briefly(accepted);
    Ok(())
}

thread_local! {
    /// Panics on this thread since it started, counted by [`count_panics`]'s hook.
    static PANICS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Runs `work` and returns how many panics happened on this thread meanwhile, caught or
/// not. A simulated host's tasks run on the thread that steps the simulation, and tokio
/// catches a task's panic and carries on: without the hook, a run that crashed a task
/// looks like a run that did not.
pub fn count_panics(work: impl FnOnce()) -> u64 {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|count| count.set(count.get() + 1));
            previous(info);
        }));
    });
    let before = PANICS.with(std::cell::Cell::get);
    work();
    PANICS.with(std::cell::Cell::get) - before
}

/// A scratch file for this property, apart from the other properties' (they run in
/// parallel threads).
pub fn scratch(name: &str) -> PathBuf {
    // One directory for every property of this process, made on first use.
    static DIR: std::sync::LazyLock<std::path::PathBuf> =
        std::sync::LazyLock::new(|| crate::support::scratch_kept("fuzz"));
    DIR.join(name)
}
