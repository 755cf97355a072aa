//! Scenario files, fuzzed: generated with a valid structure and values at and just outside
//! every range (from the parser's own limits and fault catalogue), and mutated from the
//! corpus the way a new user edits a file (extreme numbers, flipped bytes, deleted,
//! duplicated and swapped lines, truncation).
//!
//! Properties: `check` never panics; what it refuses has a located message; what it
//! accepts writes back to the same scenario and runs for two seeds without a panic, ending
//! within its simulated-time limit.

use std::path::Path;

use proptest::prelude::*;
use shipsim::fault::{CATALOGUE, FaultKind, WINDOW_PARAMS};
use shipsim::scenario::limits::{FIELDS, Field, Limit, Shape};
use shipsim::scenario::{Scenario, ScenarioError};
use shipsim_system::bugs::BugSet;
use shipsim_system::observe::Checkpoint;

use super::format::{self, InputFormat, Refusal};
use super::values::{self, Reach};

/// Scenario files as an [`InputFormat`].
pub struct ScenarioFormat;

/// The simulated-time limit a fuzzed scenario's workload runs under: 20 s, whatever the
/// file asks (up to a day). The property is that runs end, not that they finish the work.
const RUN_TIME_LIMIT_MS: u64 = 20_000;
/// Operations per client a fuzzed scenario runs, at most.
const RUN_OPERATIONS_MAX: u32 = 4;
/// Events per webhook burst a fuzzed scenario runs, at most.
const RUN_BURST_EVENTS_MAX: u32 = 40;
/// Clients a scenario may declare to be run by the property (more are checked, not run:
/// a thousand client hosts cost seconds per seed in a debug build).
const RUN_CLIENTS_MAX: u32 = 20;
/// The runner's settle phase may add ten simulated minutes after the workload, plus a tick.
const SETTLE_MS_BOUND: u64 = 600_000 + 100;

impl From<ScenarioError> for Refusal {
    fn from(error: ScenarioError) -> Self {
        Refusal {
            line: error.line,
            column: error.column,
            snippet: error.snippet.clone(),
            rendered: error.to_string(),
        }
    }
}

impl InputFormat for ScenarioFormat {
    type Accepted = Scenario;

    fn check(file: &str, text: &str) -> Result<Scenario, Refusal> {
        Ok(Scenario::parse(file, "fuzz", text)?)
    }

    fn load(path: &Path) -> Result<Scenario, Refusal> {
        Ok(Scenario::load(path)?)
    }

    fn run_briefly(scenario: &Scenario) {
        let scenario = bounded_for_run(scenario);
        let first = scenario.seed.unwrap_or_else(|| scenario.seeds.start());
        let seeds = if scenario.seed.is_some() || scenario.seeds.len() == 1 {
            vec![first]
        } else {
            vec![first, first + 1]
        };
        for seed in seeds {
            let bugs = scenario.bugs_with(&BugSet::none());
            let mut ran = None;
            let panics = format::count_panics(|| {
                ran = Some(shipsim::run_seed(
                    &shipsim::reference::target(),
                    &scenario,
                    seed,
                    &bugs,
                ))
            });
            let run = ran.expect("the run returned");
            assert_eq!(
                panics, 0,
                "seed {seed} panicked inside the simulation (see the message above)"
            );
            assert!(
                run.sim_ms <= scenario.run.time_limit_ms + SETTLE_MS_BOUND,
                "seed {seed} ran {} ms of simulated time, past its limit of {} ms (+ settle)",
                run.sim_ms,
                scenario.run.time_limit_ms
            );
        }
    }

    fn write_back(scenario: &Scenario) -> String {
        scenario.to_toml()
    }

    fn same(a: &Scenario, b: &Scenario) -> bool {
        let mut b = b.clone();
        b.path.clone_from(&a.path);
        b.name.clone_from(&a.name);
        for (x, y) in b.faults.iter_mut().zip(&a.faults) {
            x.line = y.line;
        }
        *a == b
    }
}

/// `scenario` made cheap enough to run in a test: its workload under
/// [`RUN_TIME_LIMIT_MS`], at most [`RUN_OPERATIONS_MAX`] operations per client and
/// [`RUN_BURST_EVENTS_MAX`] events per burst. Every other value (durations, windows,
/// probabilities, counts that feed arithmetic) is run as written.
pub fn bounded_for_run(scenario: &Scenario) -> Scenario {
    let mut scenario = scenario.clone();
    scenario.run.time_limit_ms = scenario.run.time_limit_ms.min(RUN_TIME_LIMIT_MS);
    scenario.workload.operations = scenario.workload.operations.min(RUN_OPERATIONS_MAX);
    for spec in &mut scenario.faults {
        if let FaultKind::WebhookBurst(burst) = &mut spec.kind {
            burst.events = burst.events.min(RUN_BURST_EVENTS_MAX);
        }
    }
    scenario
}

/// Whether the property runs `scenario` (see [`RUN_CLIENTS_MAX`]).
pub fn runnable(scenario: &Scenario) -> bool {
    scenario.hosts.clients <= RUN_CLIENTS_MAX
}

// ---------------------------------------------------------------------------------------
// Structured generation.

/// Keys of a table that are not numbers, with the values to draw.
fn text_keys(table: &str) -> &'static [(&'static str, &'static [&'static str])] {
    match table {
        "run" => &[(
            "seeds",
            &[
                "\"1..3\"",
                "\"0..=0\"",
                "\"7\"",
                "\"18446744073709551614\"",
                "\"18446744073709551615\"",
                "\"3..3\"",
                "\"0..10000001\"",
                "\"a..b\"",
                "\"18446744073709551614..=18446744073709551614\"",
            ],
        )],
        "client" => &[
            ("breaker", &["true", "false"]),
            ("retry_budget", &["true", "false"]),
        ],
        "client.rate_limit" => &[("adaptive", &["true", "false"])],
        "webhooks" => &[
            ("tracking", &["true", "false"]),
            ("outbound", &["true", "false"]),
        ],
        _ => &[],
    }
}

/// The values a text fault parameter is drawn from: mostly valid ones, some not.
fn text_param_values(name: &str) -> Vec<String> {
    let hosts = [
        "service",
        "carrier",
        "receiver",
        "clients",
        "client-*",
        "client-0",
        "client-1",
        "client-3",
        "client-999",
        "client-4294967295",
        "database",
    ];
    let quoted = |values: &[&str]| values.iter().map(|v| format!("\"{v}\"")).collect();
    match name {
        "target" | "from" | "to" => quoted(&hosts),
        "between" => {
            let mut pairs = Vec::new();
            for a in ["clients", "service", "carrier", "receiver", "client-0"] {
                for b in ["service", "carrier", "receiver", "client-1", "clients"] {
                    pairs.push(format!("[\"{a}\", \"{b}\"]"));
                }
            }
            pairs
        }
        "when" => quoted(&["before", "after", "during"]),
        "direction" => quoted(&["outbound", "inbound", "sideways"]),
        "retry_after_form" => quoted(&["seconds", "date", "fortnights"]),
        "path_prefix" => quoted(&["/v1/orders", "/v1/", "", "/nothing", "/v1/é"]),
        "point" => {
            let mut points: Vec<String> = Checkpoint::ALL
                .iter()
                .map(|p| format!("\"{}\"", p.name()))
                .collect();
            points.push("\"nowhere\"".to_string());
            points
        }
        other => panic!("no values for the text parameter `{other}`: add them here"),
    }
}

/// `key = value` for a numeric field.
fn field_line(field: &Field, reach: Reach) -> BoxedStrategy<String> {
    let key = field.key;
    let value = match field.shape {
        Shape::Scalar => values::toml_value(field.limit, reach),
        Shape::Pair => values::toml_pair(field.limit, reach),
    };
    value.prop_map(move |v| format!("{key} = {v}")).boxed()
}

/// The lines of one table: every field present with probability 2/5 (required ones always).
fn table_lines(table: &'static str, reach: Reach, clients_max: i128) -> BoxedStrategy<Vec<String>> {
    let mut lines: Vec<BoxedStrategy<Option<String>>> = Vec::new();
    for field in FIELDS.iter().filter(|f| f.table == table) {
        let field = if field.key == "clients" || field.key == "callers" {
            // The runnable profile keeps host counts small; the checked one does not.
            let Limit::Int { min, max } = field.limit else {
                unreachable!("host counts are integers")
            };
            Field {
                limit: Limit::int(min, max.min(clients_max)),
                ..*field
            }
        } else {
            *field
        };
        let line = field_line(&field, reach);
        lines.push(if field.required {
            line.prop_map(Some).boxed()
        } else {
            prop::option::weighted(0.4, line).boxed()
        });
    }
    for (key, choices) in text_keys(table) {
        let choices: Vec<String> = choices.iter().map(|c| format!("{key} = {c}")).collect();
        lines.push(prop::option::weighted(0.3, prop::sample::select(choices)).boxed());
    }
    lines
        .prop_map(|lines| lines.into_iter().flatten().collect())
        .boxed()
}

/// One `[[fault]]` table of any kind of the catalogue, its own parameters and the window's
/// drawn as for tables; with [`Reach::Anywhere`], sometimes a parameter of another kind.
fn fault_table(reach: Reach) -> BoxedStrategy<String> {
    (0..CATALOGUE.len())
        .prop_flat_map(move |index| {
            let kind = &CATALOGUE[index];
            let mut params: Vec<BoxedStrategy<Option<String>>> = Vec::new();
            for param in kind.params.iter().chain(WINDOW_PARAMS) {
                let name = param.name;
                let value = match param.limit {
                    Some(limit) => values::toml_value(limit, reach),
                    None => prop::sample::select(text_param_values(name)).boxed(),
                };
                let line = value.prop_map(move |v| format!("{name} = {v}"));
                params.push(if param.required {
                    line.prop_map(Some).boxed()
                } else {
                    prop::option::weighted(0.4, line).boxed()
                });
            }
            if reach == Reach::Anywhere {
                params.push(prop::option::weighted(0.1, Just("status = 503".to_string())).boxed());
            }
            let header = format!("[[fault]]\nkind = \"{}\"", kind.name);
            params.prop_map(move |lines| {
                let mut text = header.clone();
                for line in lines.into_iter().flatten() {
                    text.push('\n');
                    text.push_str(&line);
                }
                text
            })
        })
        .boxed()
}

/// A whole scenario text: top-level keys, then each table with probability 1/2, faults,
/// budgets. `clients_max` bounds the host counts drawn.
pub fn structured(reach: Reach, clients_max: i128) -> BoxedStrategy<String> {
    let table = |name: &'static str| {
        prop::option::weighted(0.5, table_lines(name, reach, clients_max)).boxed()
    };
    let budget_endpoint = prop::sample::select(vec![
        "POST /v1/orders",
        "POST /v1/orders/{id}/shipments",
        "GET /v1/shipments/{id}",
    ]);
    (
        table_lines("", reach, clients_max),
        (
            table("run"),
            table("hosts"),
            table("workload"),
            table("workload.mix"),
        ),
        (
            table("client"),
            table("client.rate_limit"),
            table("service"),
            table("service.rate_limit"),
        ),
        prop::option::weighted(0.6, table_lines("webhooks", reach, clients_max)),
        prop::collection::vec(fault_table(reach), 0..=3),
        prop::option::weighted(
            0.2,
            (
                budget_endpoint,
                table_lines("budgets.ENDPOINT", reach, clients_max),
            ),
        ),
    )
        .prop_map(
            |(
                top,
                (run, hosts, workload, mix),
                (client, client_rate_limit, service, rate_limit),
                webhooks,
                faults,
                budget,
            )| {
                let mut text = String::new();
                for line in top {
                    text.push_str(&line);
                    text.push('\n');
                }
                let tables = [
                    ("run", run),
                    ("hosts", hosts),
                    ("workload", workload),
                    ("workload.mix", mix),
                    ("client", client),
                    ("client.rate_limit", client_rate_limit),
                    ("service", service),
                    ("service.rate_limit", rate_limit),
                    ("webhooks", webhooks),
                ];
                for (name, lines) in tables {
                    if let Some(lines) = lines {
                        text.push_str(&format!("\n[{name}]\n"));
                        for line in lines {
                            text.push_str(&line);
                            text.push('\n');
                        }
                    }
                }
                for fault in faults {
                    text.push('\n');
                    text.push_str(&fault);
                    text.push('\n');
                }
                if let Some((endpoint, lines)) = budget {
                    text.push_str(&format!("\n[budgets.\"{endpoint}\"]\n"));
                    for line in lines {
                        text.push_str(&line);
                        text.push('\n');
                    }
                }
                text
            },
        )
        .boxed()
}

// ---------------------------------------------------------------------------------------
// Mutation of the corpus.

/// Every file of the corpus, as bytes.
pub fn corpus() -> Vec<(String, Vec<u8>)> {
    let files = shipsim::cli::scenario_files(&[crate::support::scenarios_dir()])
        .expect("the corpus is readable");
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("corpus files are readable");
            (path.display().to_string(), bytes)
        })
        .collect()
}

/// One edit of a file.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Replace the `nth` number (modulo their count) with `with`.
    Number { nth: usize, with: String },
    /// Overwrite the byte at `at` (modulo the length).
    Byte { at: usize, byte: u8 },
    /// Delete line `at` (modulo the line count).
    DeleteLine { at: usize },
    /// Duplicate line `at`.
    DuplicateLine { at: usize },
    /// Swap lines `a` and `b`.
    SwapLines { a: usize, b: usize },
    /// Cut the file at byte `at`.
    Truncate { at: usize },
    /// Insert `line` before line `at`.
    InsertLine { at: usize, line: String },
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    let extreme = prop_oneof![
        prop::sample::select(vec![
            "0",
            "-1",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "4294967296",
            "1e309",
            "nan",
            "-inf",
            "0.5",
            "\"\"",
        ])
        .prop_map(str::to_string),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
    ];
    let line = prop_oneof![
        Just("[[fault]]".to_string()),
        Just("[webhooks]".to_string()),
        Just("kind = \"crash\"".to_string()),
        Just("target = \"receiver\"".to_string()),
        Just("max_ms = 18446744073709551615".to_string()),
        Just("seed = 18446744073709551615".to_string()),
        Just("operations = 100000".to_string()),
        Just("[hosts]".to_string()),
        Just("clients = 1000".to_string()),
        Just("é = \"\u{0}\"".to_string()),
    ];
    prop_oneof![
        4 => (any::<usize>(), extreme).prop_map(|(nth, with)| Mutation::Number { nth, with }),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Byte { at, byte }),
        1 => any::<usize>().prop_map(|at| Mutation::DeleteLine { at }),
        1 => any::<usize>().prop_map(|at| Mutation::DuplicateLine { at }),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        1 => any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        1 => (any::<usize>(), line).prop_map(|(at, line)| Mutation::InsertLine { at, line }),
    ]
}

/// Applies `mutation` to `bytes`.
pub fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let lines = |bytes: &[u8]| -> Vec<Vec<u8>> {
        bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect()
    };
    match mutation {
        Mutation::Number { nth, with } => {
            let numbers = number_spans(bytes);
            if numbers.is_empty() {
                return;
            }
            let (start, end) = numbers[nth % numbers.len()];
            bytes.splice(start..end, with.bytes());
        }
        Mutation::Byte { at, byte } => {
            if !bytes.is_empty() {
                let at = at % bytes.len();
                bytes[at] = *byte;
            }
        }
        Mutation::Truncate { at } => {
            let at = at % (bytes.len() + 1);
            bytes.truncate(at);
        }
        Mutation::DeleteLine { at } | Mutation::DuplicateLine { at } => {
            let mut all = lines(bytes);
            let at = at % all.len();
            if matches!(mutation, Mutation::DeleteLine { .. }) {
                all.remove(at);
            } else {
                let copy = all[at].clone();
                all.insert(at, copy);
            }
            *bytes = all.join(&b'\n');
        }
        Mutation::SwapLines { a, b } => {
            let mut all = lines(bytes);
            let count = all.len();
            all.swap(a % count, b % count);
            *bytes = all.join(&b'\n');
        }
        Mutation::InsertLine { at, line } => {
            let mut all = lines(bytes);
            let at = at % (all.len() + 1);
            all.insert(at, line.as_bytes().to_vec());
            *bytes = all.join(&b'\n');
        }
    }
}

/// Byte ranges of the numbers in `bytes` (runs of digits, with a leading `-`).
fn number_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index].is_ascii_digit() {
            let start = if index > 0 && bytes[index - 1] == b'-' {
                index - 1
            } else {
                index
            };
            let mut end = index;
            while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'.') {
                end += 1;
            }
            spans.push((start, end));
            index = end;
        } else {
            index += 1;
        }
    }
    spans
}

/// A corpus file with one to three mutations: (file, mutations, resulting bytes).
pub fn mutated_corpus() -> BoxedStrategy<(String, Vec<Mutation>, Vec<u8>)> {
    let corpus = corpus();
    (0..corpus.len(), prop::collection::vec(mutation(), 1..=3))
        .prop_map(move |(index, mutations)| {
            let (name, original) = &corpus[index];
            let mut bytes = original.clone();
            for mutation in &mutations {
                apply(&mut bytes, mutation);
            }
            (name.clone(), mutations, bytes)
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------
// Corpus files with their values redrawn.

/// A number in a corpus file and the limit of the key it belongs to.
#[derive(Clone, Debug)]
struct Slot {
    /// Byte range of the number.
    span: (usize, usize),
    /// What the key takes.
    limit: Limit,
}

/// The limit of `key` in `table` (`"fault"` tables by `kind`).
fn limit_of(table: &str, kind: Option<&str>, key: &str) -> Option<Limit> {
    if table == "fault" {
        let kind = CATALOGUE.iter().find(|k| Some(k.name) == kind)?;
        return kind
            .params
            .iter()
            .chain(WINDOW_PARAMS)
            .find(|p| p.name == key)
            .and_then(|p| p.limit);
    }
    FIELDS
        .iter()
        .find(|f| f.table == table && f.key == key)
        .map(|f| f.limit)
}

/// Every number of `text` whose key has a limit: `key = N`, `key = [N, M]`,
/// `key = { k = N, ... }` (the inline table's keys looked up in `table.key`, or in
/// `budgets.ENDPOINT` for budgets).
fn slots(text: &str) -> Vec<Slot> {
    // Fault tables are found by their `kind` line, which may come after other parameters:
    // the kind of every line is resolved per `[[fault]]` block first.
    let mut kinds = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            kinds.push(current.take());
            current = None;
        }
        if let Some(rest) = trimmed.strip_prefix("kind") {
            let value = rest.trim_start().trim_start_matches('=').trim();
            current = Some(value.trim_matches('"').to_string());
        }
    }
    kinds.push(current);
    let mut block = 0;
    let mut table = String::new();
    let mut slots = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            block += 1;
            table = if trimmed.starts_with("[[fault]]") {
                "fault".to_string()
            } else {
                trimmed.trim_matches(|c| c == '[' || c == ']').to_string()
            };
        } else if let Some((key, value)) = line.split_once('=') {
            let key = key.trim().trim_matches('"');
            let value_start = offset + line.find('=').map_or(0, |i| i + 1);
            let kind = kinds.get(block).cloned().flatten();
            if value.trim_start().starts_with('{') {
                // An inline table: `key = { inner = N, ... }`.
                let inner_table = if table == "budgets" {
                    "budgets.ENDPOINT".to_string()
                } else {
                    format!("{table}.{key}")
                };
                let mut cursor = value_start;
                for part in value.split(',') {
                    if let Some((inner_key, _)) = part.split_once('=') {
                        let inner_key = inner_key.trim().trim_start_matches('{').trim();
                        if let Some(limit) = limit_of(&inner_table, None, inner_key) {
                            let part_at = cursor + part.find('=').map_or(0, |i| i + 1);
                            for (start, end) in
                                number_spans(&text.as_bytes()[part_at..cursor + part.len()])
                            {
                                slots.push(Slot {
                                    span: (part_at + start, part_at + end),
                                    limit,
                                });
                            }
                        }
                    }
                    cursor += part.len() + 1;
                }
            } else if let Some(limit) = limit_of(&table, kind.as_deref(), key) {
                let end = offset + line.len();
                for (start, stop) in number_spans(&text.as_bytes()[value_start..end]) {
                    slots.push(Slot {
                        span: (value_start + start, value_start + stop),
                        limit,
                    });
                }
            }
        }
        offset += line.len();
    }
    slots
}

/// A corpus file with one to three of its numbers redrawn from their keys' ranges (at the
/// ends of each range more often than not): the structure of a real scenario, values
/// anywhere the schema allows (or, with [`Reach::Anywhere`], just outside). One edited
/// number is how a user finds a crash (issue 25's `max_ms`).
pub fn corpus_with_values(reach: Reach) -> BoxedStrategy<(String, String)> {
    let corpus: Vec<(String, String, Vec<Slot>)> = corpus()
        .into_iter()
        .map(|(name, bytes)| {
            let text = String::from_utf8(bytes).expect("corpus files are UTF-8");
            let slots = slots(&text);
            (name, text, slots)
        })
        .filter(|(_, _, slots)| !slots.is_empty())
        .collect();
    (
        0..corpus.len(),
        prop::collection::vec(any::<prop::sample::Index>(), 1..=3),
    )
        .prop_flat_map(move |(index, picks)| {
            let (name, text, slots) = corpus[index].clone();
            let mut chosen: Vec<Slot> = picks
                .iter()
                .map(|pick| slots[pick.index(slots.len())].clone())
                .collect();
            chosen.sort_by_key(|slot| slot.span.0);
            chosen.dedup_by_key(|slot| slot.span.0);
            let draws: Vec<BoxedStrategy<String>> = chosen
                .iter()
                .map(|slot| values::toml_value(slot.limit, reach))
                .collect();
            draws.prop_map(move |draws| {
                let mut out = text.clone();
                // Back to front, so earlier spans stay valid.
                for (slot, value) in chosen.iter().zip(draws).rev() {
                    out.replace_range(slot.span.0..slot.span.1, &value);
                }
                (name.clone(), out)
            })
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------
// The properties.

proptest! {
    #![proptest_config(format::config(256))]

    /// Generated scenarios, values anywhere: `check` never panics, refusals are located,
    /// and whatever is accepted writes back to the same scenario.
    #[test]
    fn generated_scenarios_are_accepted_or_refused_with_a_position(
        text in structured(Reach::Anywhere, 1_000)
    ) {
        if let Some(scenario) = format::check_is_located::<ScenarioFormat>(&text)? {
            let back = ScenarioFormat::check("back.toml", &scenario.to_toml());
            prop_assert!(back.is_ok(), "written back, refused: {:?}", back.err());
        }
    }

    /// Corpus files with their numbers redrawn, in and out of range: `check` never panics
    /// and refusals are located.
    #[test]
    fn corpus_files_with_values_redrawn_are_accepted_or_refused_with_a_position(
        (name, text) in corpus_with_values(Reach::Anywhere)
    ) {
        let _ = &name;
        format::check_is_located::<ScenarioFormat>(&text)?;
    }

    /// Mutated corpus files: `check` never panics and refusals are located (files that are
    /// no longer UTF-8 are refused naming the file).
    #[test]
    fn mutated_corpus_files_are_accepted_or_refused_with_a_position(
        (name, mutations, bytes) in mutated_corpus()
    ) {
        let _ = (&name, &mutations);
        let scratch = format::scratch("mutated.toml");
        format::check_bytes_is_located::<ScenarioFormat>(&bytes, &scratch)?;
    }

    /// Arbitrary text: `check` never panics and refusals are located.
    #[test]
    fn arbitrary_text_is_refused_with_a_position(text in "\\PC{0,120}") {
        format::check_is_located::<ScenarioFormat>(&text)?;
    }
}

proptest! {
    #![proptest_config(format::config_runs(64))]

    /// Whatever `check` accepts, generated with values inside every range or mutated from
    /// the corpus, writes back to the same scenario and runs two seeds without a panic,
    /// ending within its simulated-time limit.
    #[test]
    fn accepted_scenarios_run_and_end(
        scenario in prop_oneof![
            2 => corpus_with_values(Reach::Inside)
                .prop_map(|(name, text)| (name, text.into_bytes())),
            1 => structured(Reach::Inside, 4).prop_map(|text| (String::new(), text.into_bytes())),
            1 => mutated_corpus().prop_map(|(name, _, bytes)| (name, bytes)),
        ]
        .prop_filter_map("refused or too many client hosts to run", |(_, bytes)| {
            let text = String::from_utf8(bytes).ok()?;
            let scenario = Scenario::parse("fuzz.toml", "fuzz", &text).ok()?;
            runnable(&scenario).then_some(scenario)
        })
    ) {
        format::accepted_runs_and_round_trips::<ScenarioFormat>(&scenario)?;
    }
}
