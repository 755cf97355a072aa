//! Running a target from a test: [`Target::run`] sweeps its scenarios over its seeds,
//! shrinks each failure to a small repro file, writes the report, and returns an
//! [`Outcome`] whose [`Outcome::assert_ok`] fails the test with everything needed to
//! replay the failure.
//!
//! A failing case replays by running the same test again with `SHIPSIM_REPLAY` pointing
//! at its repro file: [`Target::run`] then runs that file's pinned seed only, and checks
//! that its trace hash is the one recorded.

use std::path::{Path, PathBuf};

use shipsim_reports::model::Report;
use shipsim_system::bugs::BugSet;

use super::Target;
use crate::many::sweep::{self, Progress, Replay, SweepOptions};
use crate::scenario::{Scenario, SeedRange, Topology};

/// The environment variable that makes [`Target::run`] replay one repro file.
pub const REPLAY_ENV: &str = "SHIPSIM_REPLAY";

/// Where a target's scenarios come from.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    /// A scenario file, or a directory of them (searched recursively, in name order).
    Path(PathBuf),
    /// shipsim's built-in, target-neutral corpus ([`crate::corpus`]).
    Builtin,
    /// Scenario text given in code.
    Text { name: String, toml: String },
}

/// How a target is run: which scenarios, seeds, workers, where the report goes.
#[derive(Clone, Debug, Default)]
pub(crate) struct RunConfig {
    pub sources: Vec<Source>,
    pub seeds: Option<(u64, u64)>,
    pub jobs: Option<usize>,
    pub out: Option<PathBuf>,
    pub no_shrink: bool,
    pub check_determinism: bool,
    pub bugs: BugSet,
}

impl Target {
    /// Runs the scenario file at `path`, or every `*.toml` under the directory `path` (a
    /// relative path is relative to the working directory: a crate's root under
    /// `cargo test`). May be called more than once.
    #[must_use]
    pub fn scenarios(mut self, path: impl AsRef<Path>) -> Target {
        self.run
            .sources
            .push(Source::Path(path.as_ref().to_path_buf()));
        self
    }

    /// Runs shipsim's built-in, target-neutral corpus: faults on `service`, on every other
    /// host of the target (`downstreams`) and on the clients, with the target's default
    /// workload.
    #[must_use]
    pub fn builtin_scenarios(mut self) -> Target {
        self.run.sources.push(Source::Builtin);
        self
    }

    /// Runs one scenario given as TOML text (the scenario file format), called `name`.
    #[must_use]
    pub fn scenario_toml(mut self, name: impl Into<String>, toml: impl Into<String>) -> Target {
        self.run.sources.push(Source::Text {
            name: name.into(),
            toml: toml.into(),
        });
        self
    }

    /// Runs seeds `seeds` (end exclusive) of every scenario, instead of each scenario's
    /// own `[run] seeds`.
    #[must_use]
    pub fn seeds(mut self, seeds: std::ops::Range<u64>) -> Target {
        self.run.seeds = Some((seeds.start, seeds.end));
        self
    }

    /// Worker threads (default: the machine's cores). The report does not depend on it.
    #[must_use]
    pub fn jobs(mut self, jobs: usize) -> Target {
        self.run.jobs = Some(jobs);
        self
    }

    /// Where the report and repro files go (default `target/shipsim/{name}/{test}/`, under
    /// `CARGO_TARGET_DIR` when it is set; `{test}` is the running test's name, so tests of
    /// one target run in parallel without overwriting each other's reports).
    #[must_use]
    pub fn out_dir(mut self, dir: impl AsRef<Path>) -> Target {
        self.run.out = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Switches on planted bugs of shipsim's own components: the reference system's, and
    /// the client shipsim drives every target with (`client_ignores_retry_after`, ...), to
    /// see an oracle bite. `shipsim list --bugs` lists them.
    #[must_use]
    pub fn planted_bugs(
        mut self,
        bugs: impl IntoIterator<Item = shipsim_system::bugs::Bug>,
    ) -> Target {
        self.run.bugs = BugSet::of(bugs);
        self
    }

    /// Does not shrink failures (faster when a test only needs the verdict).
    #[must_use]
    pub fn no_shrink(mut self) -> Target {
        self.run.no_shrink = true;
        self
    }

    /// Runs every seed twice and fails a seed whose two traces differ: proves the target
    /// is deterministic in the simulation (no wall clock, no unseeded randomness).
    #[must_use]
    pub fn check_determinism(mut self) -> Target {
        self.run.check_determinism = true;
        self
    }

    /// Runs the scenarios, or, when `SHIPSIM_REPLAY` names a repro file, replays that
    /// file's seed. Never panics: a problem with the target or the scenario files is an
    /// [`Outcome`] whose [`Outcome::assert_ok`] says what it is.
    #[must_use]
    pub fn run(self) -> Outcome {
        match std::env::var_os(REPLAY_ENV) {
            Some(file) if !file.is_empty() => self.replay(PathBuf::from(file)),
            _ => self.try_run().unwrap_or_else(Outcome::failed_to_start),
        }
    }

    /// [`Target::run`], with problems before any run as an `Err`.
    ///
    /// # Errors
    /// A [`RunError`] when the target is invalid, a scenario file cannot be read or is
    /// invalid (with its line and column), or the seed range is empty.
    pub fn try_run(self) -> Result<Outcome, RunError> {
        let topology = self.topology().map_err(|e| RunError(e.to_string()))?;
        let scenarios = self.load(&topology)?;
        let seeds = match self.run.seeds {
            None => None,
            Some((start, end)) => {
                Some(SeedRange::new(start, end).map_err(|e| RunError(format!("seeds: {e}")))?)
            }
        };
        let label = seeds.map_or_else(|| "scenario defaults".to_string(), |s| s.to_string());
        Ok(self.sweep(&scenarios, seeds, &label, self.run.check_determinism))
    }

    /// Replays the repro file at `path`: its pinned seed, with its trace hash checked.
    #[must_use]
    pub fn replay(self, path: impl AsRef<Path>) -> Outcome {
        let path = path.as_ref();
        let result = (|| {
            let topology = self.topology().map_err(|e| RunError(e.to_string()))?;
            let scenario =
                Scenario::load_for(path, &topology).map_err(|e| RunError(e.to_string()))?;
            let seed = scenario.seed.ok_or_else(|| {
                RunError(format!(
                    "{}: not a repro file: it pins no `seed`",
                    path.display()
                ))
            })?;
            let expected = scenario.trace_hash;
            // A replay reproduces; it never shrinks (that would rewrite the repro it reads).
            let mut replaying = self.clone();
            replaying.run.no_shrink = true;
            let mut outcome = replaying.sweep(
                std::slice::from_ref(&scenario),
                Some(SeedRange::single(seed)),
                &seed.to_string(),
                true,
            );
            outcome.replay = true;
            let replayed = outcome
                .report
                .as_ref()
                .and_then(|r| r.scenarios.first())
                .and_then(|s| s.seeds.first())
                .map(|s| s.trace_hash.clone());
            if let (Some(expected), Some(replayed)) = (expected, replayed) {
                let expected = format!("{expected:016x}");
                if expected != replayed {
                    outcome.problem = Some(format!(
                        "{} did not replay: it expects trace {expected}, this build produced {replayed} (the target or shipsim changed since the file was written)",
                        path.display()
                    ));
                }
            }
            Ok(outcome)
        })();
        result.unwrap_or_else(Outcome::failed_to_start)
    }

    fn load(&self, topology: &Topology) -> Result<Vec<Scenario>, RunError> {
        if self.run.sources.is_empty() {
            return Err(RunError(format!(
                "target `{}` has no scenarios: call `.scenarios(\"tests/chaos\")` or `.builtin_scenarios()`",
                self.name
            )));
        }
        let mut scenarios = Vec::new();
        let mut errors = Vec::new();
        for source in &self.run.sources {
            match source {
                Source::Path(path) => {
                    let files = crate::cli::scenario_files(std::slice::from_ref(path))
                        .map_err(|e| RunError(format!("{e:#}")))?;
                    for file in files {
                        match Scenario::load_for(&file, topology) {
                            Ok(scenario) => scenarios.push(scenario),
                            Err(error) => errors.push(error.to_string()),
                        }
                    }
                }
                Source::Builtin => {
                    for (name, needs_hosts, toml) in crate::corpus::FILES {
                        if *needs_hosts && topology.hosts.is_empty() {
                            continue;
                        }
                        match Scenario::parse_for(
                            &format!("builtin:{name}.toml"),
                            name,
                            toml,
                            topology,
                        ) {
                            Ok(scenario) => scenarios.push(scenario),
                            Err(error) => errors.push(error.to_string()),
                        }
                    }
                }
                Source::Text { name, toml } => {
                    match Scenario::parse_for(&format!("{name}.toml"), name, toml, topology) {
                        Ok(scenario) => scenarios.push(scenario),
                        Err(error) => errors.push(error.to_string()),
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(RunError(format!(
                "{} invalid scenario(s):\n{}",
                errors.len(),
                errors.join("\n")
            )));
        }
        let mut names = std::collections::BTreeMap::new();
        for scenario in &scenarios {
            if let Some(previous) = names.insert(scenario.name.clone(), scenario.path.clone()) {
                return Err(RunError(format!(
                    "two scenarios are named `{}`: {previous} and {} (reports and repro files use the name)",
                    scenario.name, scenario.path
                )));
            }
        }
        Ok(scenarios)
    }

    fn out(&self) -> PathBuf {
        self.run.out.clone().unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| PathBuf::from("target"), PathBuf::from);
            target
                .join("shipsim")
                .join(crate::output::summary::file_safe(&self.name))
        })
    }

    fn sweep(
        &self,
        scenarios: &[Scenario],
        seeds: Option<SeedRange>,
        label: &str,
        check_determinism: bool,
    ) -> Outcome {
        let out = self.out();
        let options = SweepOptions {
            target: self.clone(),
            seeds,
            jobs: self
                .run
                .jobs
                .unwrap_or_else(crate::cli::default_jobs)
                .max(1),
            shard: None,
            bugs: self.run.bugs.clone(),
            check_determinism,
            progress: Progress::Quiet,
            replay: Replay::Test(test_command()),
        };
        let outcome = sweep::sweep(scenarios, &options);
        let triaged =
            crate::many::triage::triage(&outcome, &options, !self.run.no_shrink, |_, _| {});
        let (report, repros) = crate::output::summary::build(
            &outcome,
            &triaged,
            &options,
            label,
            &out,
            crate::output::wall::peak_rss_mib().unwrap_or(0.0),
        );
        let problem = crate::output::summary::write(&out, &report, &repros)
            .err()
            .map(|e| format!("could not write the report to {}: {e:#}", out.display()));
        let text = shipsim_reports::text::render(&report);
        Outcome {
            report: Some(report),
            text,
            out,
            problem,
            replay: false,
        }
    }
}

/// The command that runs the current test again: `cargo test --test {binary} {test}`,
/// from the test binary's name and the test thread's name (libtest names each test's
/// thread after it).
fn test_command() -> String {
    let binary = std::env::args()
        .next()
        .and_then(|exe| {
            Path::new(&exe)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .map(|stem| match stem.rsplit_once('-') {
            Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_string(),
            _ => stem,
        });
    let test = std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .map(str::to_string);
    let mut command = String::from("cargo test");
    if let Some(binary) = binary {
        command.push_str(&format!(" --test {binary}"));
    }
    if let Some(test) = test {
        command.push_str(&format!(" {test} -- --exact"));
    }
    command
}

/// Something stopped a run before any seed ran: an invalid target, a bad scenario file
/// (the message names its line and column), an empty seed range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RunError(pub String);

/// What a run found.
#[derive(Clone, Debug)]
pub struct Outcome {
    report: Option<Report>,
    text: String,
    out: PathBuf,
    /// A problem that is not a violation: the run could not start, the report could not be
    /// written, a replay did not reproduce its trace.
    problem: Option<String>,
    /// A replay: any violation fails it, even in a file that pins planted bugs (which a
    /// sweep counts as a regression caught).
    replay: bool,
}

impl Outcome {
    fn failed_to_start(error: RunError) -> Outcome {
        Outcome {
            report: None,
            text: String::new(),
            out: PathBuf::new(),
            problem: Some(error.0),
            replay: false,
        }
    }

    /// Whether every oracle held on every seed, and nothing went wrong around the run.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.problem.is_none()
            && self.report.as_ref().is_some_and(|r| {
                if self.replay {
                    r.scenarios.iter().all(|s| s.seeds_failed == 0)
                } else {
                    r.totals.scenarios_failed == 0
                }
            })
    }

    /// The report model (what `summary.json` holds); `None` when the run could not start.
    #[must_use]
    pub fn report(&self) -> Option<&Report> {
        self.report.as_ref()
    }

    /// The summary as the terminal shows it: a table per scenario, then every failure with
    /// its oracle, seed, evidence, repro file and replay command.
    #[must_use]
    pub fn summary(&self) -> &str {
        &self.text
    }

    /// The report directory (`index.html`, `summary.json`, `junit.xml`, `repro/`).
    #[must_use]
    pub fn out_dir(&self) -> &Path {
        &self.out
    }

    /// The problem that is not a violation, if any.
    #[must_use]
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    /// Fails the calling test unless the run passed, printing every violation with its
    /// seed, evidence, shrunk repro file and the command that replays it.
    ///
    /// # Panics
    /// When the run did not pass: that is its purpose.
    #[track_caller]
    pub fn assert_ok(&self) {
        if let Some(problem) = &self.problem {
            panic!("shipsim: {problem}\n{}", self.text);
        }
        if let Some(report) = self.report.as_ref().filter(|_| !self.passed()) {
            panic!(
                "shipsim found violations ({} of {} seed run(s) failed); report: {}\n{}",
                report.totals.seeds_failed,
                report.totals.seeds_run,
                self.out.join("index.html").display(),
                self.text
            );
        }
    }
}
