//! Command lines, fuzzed: `--seeds`, `--shard`, `--jobs` and paths, from a grammar of the
//! values people write (and mistype), and from arbitrary text.
//!
//! Properties: the value parsers never panic, what they accept is in range and reads back
//! the same, what they refuse says why; the whole command line never panics the parser;
//! and the `shipsim` binary, run with such arguments, exits 0, 1 or 2 (2 with a message),
//! never with a panic.

use std::path::PathBuf;

use clap::Parser;
use proptest::prelude::*;
use shipsim::cli::Cli;
use shipsim::many::sweep::Shard;
use shipsim::scenario::SeedRange;

use super::format;

/// Numbers as people write them, and as they should not.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u64..30).prop_map(|n| n.to_string()),
        2 => prop::sample::select(vec![
            "18446744073709551615",
            "18446744073709551614",
            "18446744073709551616",
            "4294967295",
            "4294967296",
            "10000000",
            "10000001",
            "99999999999",
            "-1",
            "0x10",
            "1_000",
            " 3 ",
            "",
            "a",
            "1e3",
            "٣",
        ])
        .prop_map(str::to_string),
        1 => any::<u64>().prop_map(|n| n.to_string()),
    ]
}

/// `--seeds` values: `N`, `A..B`, `A..=B`, near misses, and anything.
fn seeds_text() -> impl Strategy<Value = String> {
    let separator = prop::sample::select(vec!["..", "..=", "...", ".", "..==", "-", "..<"]);
    prop_oneof![
        2 => number(),
        5 => (number(), separator, number()).prop_map(|(a, s, b)| format!("{a}{s}{b}")),
        1 => "\\PC{0,12}",
    ]
}

/// `--shard` values: `I/N`, near misses, and anything.
fn shard_text() -> impl Strategy<Value = String> {
    let separator = prop::sample::select(vec!["/", "//", "-", "of", " / "]);
    prop_oneof![
        5 => (number(), separator, number()).prop_map(|(a, s, b)| format!("{a}{s}{b}")),
        1 => number(),
        1 => "\\PC{0,12}",
    ]
}

proptest! {
    #![proptest_config(format::config(512))]

    /// `--seeds`: accepted ranges are non-empty, bounded, and read back the same; refusals
    /// quote the text.
    #[test]
    fn seed_ranges_are_accepted_in_range_or_refused_with_a_reason(text in seeds_text()) {
        match SeedRange::parse(&text) {
            Ok(range) => {
                prop_assert!(range.iter().next().is_some(), "an empty range was accepted");
                prop_assert!(range.len() <= shipsim::scenario::SEEDS_MAX);
                // The last seed exists: start + len - 1 does not overflow.
                prop_assert!(range.start().checked_add(range.len() - 1).is_some());
                prop_assert_eq!(SeedRange::parse(&range.to_string()), Ok(range));
            }
            Err(message) => prop_assert!(
                message.contains(text.trim()),
                "the refusal does not quote `{}`: {}", text, message
            ),
        }
    }

    /// `--shard`: accepted shards have 1 <= I <= N and read back the same; refusals quote
    /// the text.
    #[test]
    fn shards_are_accepted_in_range_or_refused_with_a_reason(text in shard_text()) {
        match Shard::parse(&text) {
            Ok(shard) => {
                prop_assert!(shard.index >= 1 && shard.index <= shard.count);
                prop_assert_eq!(Shard::parse(&shard.to_string()), Ok(shard));
            }
            Err(message) => prop_assert!(
                message.contains(&text),
                "the refusal does not quote `{}`: {}", text, message
            ),
        }
    }

    /// Whole command lines never panic the parser.
    #[test]
    fn command_lines_are_parsed_or_refused(args in command_line(PathKind::Any)) {
        let _ = Cli::try_parse_from(std::iter::once("shipsim".to_string()).chain(args));
    }
}

/// What a path argument points at.
#[derive(Clone, Copy, Debug)]
enum PathKind {
    /// Anything, including the corpus (only parsed, never run).
    Any,
    /// Nothing that would run for long.
    Cheap,
}

/// Path arguments: a small valid scenario, a broken one, a directory without scenarios,
/// missing files, odd names.
fn path(kind: PathKind) -> impl Strategy<Value = String> {
    let fixtures = fixtures();
    let mut paths = vec![
        fixtures.join("tiny.toml").display().to_string(),
        fixtures.join("broken.toml").display().to_string(),
        fixtures.join("empty-dir").display().to_string(),
        fixtures.join("not-a-scenario.txt").display().to_string(),
        "/no/such/file.toml".to_string(),
        String::new(),
        "-".to_string(),
        "é/ü.toml".to_string(),
        "scenarios/walking_skeleton.toml".to_string(),
    ];
    if matches!(kind, PathKind::Any) {
        paths.push("scenarios".to_string());
    }
    prop::sample::select(paths)
}

/// `--out` arguments: a fresh directory, a path under a regular file, odd names. (Not the
/// empty path: it would write a report into the repository.)
fn out_dir() -> impl Strategy<Value = String> {
    let fixtures = fixtures();
    prop_oneof![
        3 => Just(fixtures.join("out").display().to_string()),
        1 => prop::sample::select(vec![
            fixtures.join("tiny.toml").join("out").display().to_string(),
            fixtures.join("é out").display().to_string(),
        ]),
    ]
}

/// Mostly a value from `valid`, sometimes from `fuzzed`: a command line with one bad
/// argument among good ones tests more than one with every argument bad.
fn mostly(
    valid: &[&str],
    fuzzed: impl Strategy<Value = String> + 'static,
) -> BoxedStrategy<String> {
    let valid: Vec<String> = valid.iter().map(|v| (*v).to_string()).collect();
    prop_oneof![3 => prop::sample::select(valid), 1 => fuzzed].boxed()
}

/// A `run` or `check` command line.
fn command_line(kind: PathKind) -> impl Strategy<Value = Vec<String>> {
    let fixtures = fixtures();
    let tiny = fixtures.join("tiny.toml").display().to_string();
    let seeds = mostly(
        &[
            "1..3",
            "7",
            "0..=1",
            "18446744073709551614",
            "18446744073709551613..18446744073709551615",
        ],
        seeds_text(),
    );
    let shard = mostly(
        &["1/1", "2/3", "1/4294967295", "4294967295/4294967295"],
        shard_text(),
    );
    let jobs = mostly(&["1", "2", "3", "64"], number());
    let paths = prop_oneof![
        3 => Just(vec![tiny.clone()]),
        1 => prop::collection::vec(path(kind), 1..=2),
    ];
    // `--seeds` or `--seed` (they conflict), or neither.
    let which_seeds = prop_oneof![
        6 => seeds.prop_map(|s| Some(("--seeds", s))),
        3 => number().prop_map(|n| Some(("--seed", n))),
        1 => Just(None),
    ];
    let run = (
        paths,
        which_seeds,
        prop::option::weighted(0.5, shard),
        prop::option::weighted(0.5, jobs),
        out_dir(),
    )
        .prop_map(|(paths, seeds, shard, jobs, out)| {
            let mut args = vec!["run".to_string()];
            args.extend(paths);
            let (seeds_flag, seeds) =
                seeds.map_or(("--seeds", None), |(flag, value)| (flag, Some(value)));
            for (flag, value) in [(seeds_flag, seeds), ("--shard", shard), ("--jobs", jobs)] {
                if let Some(value) = value {
                    args.push(flag.to_string());
                    args.push(value);
                }
            }
            args.extend([
                "--out".to_string(),
                out,
                "--no-shrink".to_string(),
                "-q".to_string(),
            ]);
            args
        });
    let check = prop::collection::vec(path(kind), 0..=3).prop_map(|paths| {
        let mut args = vec!["check".to_string()];
        args.extend(paths);
        args
    });
    prop_oneof![3 => run, 1 => check]
}

/// Whether a run command line would run more than a few seeds: its `--seeds` parses to
/// more than three, or it leaves the tiny scenario's own 20.
fn runs_long(args: &[String]) -> bool {
    if args.first().map(String::as_str) != Some("run") {
        return false;
    }
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    match (value("--seeds"), value("--seed")) {
        (Some(seeds), _) => SeedRange::parse(seeds).is_ok_and(|r| r.len() > 3),
        (None, Some(_)) => false,
        (None, None) => true,
    }
}

/// A directory of fixtures for the command lines, created once per test process.
fn fixtures() -> PathBuf {
    let dir = format::scratch("cli");
    std::fs::create_dir_all(dir.join("empty-dir")).expect("the temp dir is writable");
    std::fs::write(dir.join("tiny.toml"), "[workload]\noperations = 2\n")
        .expect("the temp dir is writable");
    std::fs::write(dir.join("broken.toml"), "[workload]\noperations = 0\n")
        .expect("the temp dir is writable");
    std::fs::write(dir.join("not-a-scenario.txt"), "hello\n").expect("the temp dir is writable");
    dir
}

proptest! {
    #![proptest_config(format::config_runs(24))]

    /// The binary, run with fuzzed `run` and `check` command lines (a few seeds at most),
    /// exits 0, 1 or 2, never with a panic, and explains a 2.
    #[test]
    fn the_binary_exits_0_1_or_2_and_explains_a_2(
        args in command_line(PathKind::Cheap).prop_filter("runs too many seeds", |a| !runs_long(a))
    ) {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_shipsim"))
            .args(&args)
            .current_dir(crate::support::repo())
            .output()
            .expect("the shipsim binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        prop_assert!(!stderr.contains("panicked"), "{:?} panicked:\n{}", args, stderr);
        let code = output.status.code();
        prop_assert!(matches!(code, Some(0..=2)), "{:?} exited {:?}:\n{}", args, code, stderr);
        if code == Some(2) {
            prop_assert!(
                stderr.trim_start().starts_with("error"),
                "{:?} exited 2 without saying why:\n{}", args, stderr
            );
        }
    }
}
