//! Request-body templates of a target description: JSON written as a TOML table, whose
//! strings may hold placeholders the workload fills from its seeded generator.
//!
//! | placeholder                     | value                                                   |
//! |---------------------------------|---------------------------------------------------------|
//! | `{{int LOW..=HIGH}}`            | an integer drawn uniformly from the range               |
//! | `{{choice A\|B\|C}}`            | one of the options, drawn uniformly                     |
//! | `{{choice A\|B refused X}}`     | `X` as often as the scenario's `unserviceable` says, else an option |
//! | `{{hex N}}`                     | N lower-case hex digits                                 |
//! | `{{digits N}}`                  | N decimal digits, as a string (postal codes, phone numbers) |
//! | `{{seq}}`                       | the operation's number within its client (0, 1, ...)    |
//! | `{{slot}}`                      | the client's position among its merchant's clients      |
//! | `{{parent}}`                    | the parent resource's id (kinds with a parent)          |
//! | `{{caller}}`                    | the merchant's id (`merchant-0`)                        |
//!
//! A string that is exactly one placeholder takes the placeholder's JSON type (`"{{int
//! 1..=5}}"` is a number); a string with text around placeholders stays a string. Draws
//! happen in the template's order (keys sorted), so a seed always draws the same body.
//! `{{parent}}` and `{{caller}}` are only known when the request is built: the drawn body
//! (what the history records) keeps them as written, and the create fills them.

use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Map, Value};

use crate::target::Draw;

/// Most placeholders in one body template.
pub(crate) const PLACEHOLDERS_MAX: usize = 64;
/// Deepest nesting of objects and arrays in one body template.
pub(crate) const DEPTH_MAX: usize = 16;
/// Most options of one `choice`.
pub(crate) const CHOICES_MAX: usize = 64;
/// Longest `hex` draw.
pub(crate) const HEX_LEN_MAX: usize = 64;
/// Largest magnitude of an `int` bound: 2^53, the largest integer every JSON reader holds
/// exactly (a JavaScript number).
pub(crate) const INT_ABS_MAX: i64 = 1 << 53;

/// One step into a JSON document: an object key or an array index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

/// A template that cannot be compiled: where, what, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TemplateProblem {
    /// Path from the body's root to the offending value.
    pub at: Vec<Step>,
    pub message: String,
    pub hint: Option<String>,
}

/// A placeholder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Int {
        low: i64,
        high: i64,
    },
    Choice {
        options: Vec<String>,
        refused: Option<String>,
    },
    Hex {
        len: usize,
    },
    Digits {
        len: usize,
    },
    Seq,
    Position,
    Parent,
    Caller,
}

/// Text of a string, or a placeholder in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    Slot(Slot),
}

/// A compiled template node.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    /// A value without placeholders.
    Literal(Value),
    /// A string that is exactly one placeholder: the placeholder's type.
    Whole(Slot),
    /// A string with text and placeholders.
    Text(Vec<Piece>),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

/// The literal markers the drawn body keeps for what only the create knows.
const PARENT_MARK: &str = "{{parent}}";
const CALLER_MARK: &str = "{{caller}}";

/// A compiled body template.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BodyTemplate {
    root: Node,
    uses_parent: bool,
}

impl BodyTemplate {
    /// Compiles a TOML table into a template.
    pub(crate) fn compile(table: &toml::Table) -> Result<BodyTemplate, TemplateProblem> {
        let mut counter = Counter::default();
        let root = compile_table(table, &mut Vec::new(), &mut counter)?;
        Ok(BodyTemplate {
            root,
            uses_parent: counter.parent,
        })
    }

    /// The empty object, for kinds without a body.
    pub(crate) fn empty() -> BodyTemplate {
        BodyTemplate {
            root: Node::Object(Vec::new()),
            uses_parent: false,
        }
    }

    /// Whether `{{parent}}` appears.
    pub(crate) fn uses_parent(&self) -> bool {
        self.uses_parent
    }

    /// The node at `path`, if the template has one there.
    pub(crate) fn node(&self, path: &[Step]) -> Option<&Node> {
        let mut node = &self.root;
        for step in path {
            node = match (node, step) {
                (Node::Object(entries), Step::Key(key)) => {
                    &entries.iter().find(|(k, _)| k == key)?.1
                }
                (Node::Array(items), Step::Index(index)) => items.get(*index)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// Whether the value at `path` could be placed: every step before the last goes through
    /// an object, or leaves the template (objects are then created).
    pub(crate) fn placeable(&self, path: &[Step]) -> bool {
        let mut node = Some(&self.root);
        for step in path {
            node = match (node, step) {
                (None, Step::Key(_)) => None,
                (Some(Node::Object(entries)), Step::Key(key)) => {
                    entries.iter().find(|(k, _)| k == key).map(|(_, n)| n)
                }
                _ => return false,
            };
        }
        true
    }

    /// Draws a body: every placeholder but `{{parent}}` and `{{caller}}` filled.
    pub(crate) fn draw(&self, draw: &mut Draw<'_>) -> Value {
        draw_node(&self.root, draw)
    }
}

#[derive(Default)]
struct Counter {
    placeholders: usize,
    parent: bool,
}

fn problem(at: &[Step], message: impl Into<String>) -> TemplateProblem {
    TemplateProblem {
        at: at.to_vec(),
        message: message.into(),
        hint: None,
    }
}

fn compile_table(
    table: &toml::Table,
    at: &mut Vec<Step>,
    counter: &mut Counter,
) -> Result<Node, TemplateProblem> {
    let mut entries = Vec::with_capacity(table.len());
    for (key, value) in table {
        at.push(Step::Key(key.clone()));
        entries.push((key.clone(), compile_value(value, at, counter)?));
        at.pop();
    }
    Ok(Node::Object(entries))
}

fn compile_value(
    value: &toml::Value,
    at: &mut Vec<Step>,
    counter: &mut Counter,
) -> Result<Node, TemplateProblem> {
    if at.len() > DEPTH_MAX {
        return Err(problem(
            at,
            format!("the body nests deeper than {DEPTH_MAX} levels"),
        ));
    }
    match value {
        toml::Value::String(text) => compile_string(text, at, counter),
        toml::Value::Integer(n) => Ok(Node::Literal(Value::from(*n))),
        toml::Value::Float(x) => serde_json::Number::from_f64(*x)
            .map(|n| Node::Literal(Value::Number(n)))
            .ok_or_else(|| problem(at, format!("{x} is not a JSON number"))),
        toml::Value::Boolean(b) => Ok(Node::Literal(Value::Bool(*b))),
        toml::Value::Datetime(d) => Err(TemplateProblem {
            hint: Some(format!("quote it: \"{d}\"")),
            ..problem(at, "a TOML date is not JSON")
        }),
        toml::Value::Array(items) => {
            let mut nodes = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                at.push(Step::Index(index));
                nodes.push(compile_value(item, at, counter)?);
                at.pop();
            }
            Ok(Node::Array(nodes))
        }
        toml::Value::Table(table) => compile_table(table, at, counter),
    }
}

const PLACEHOLDER_HINT: &str = "placeholders: {{int LOW..=HIGH}}, {{choice A|B|C}}, {{choice A|B refused X}}, {{hex N}}, {{digits N}}, {{seq}}, {{slot}}, {{parent}}, {{caller}}";

fn compile_string(text: &str, at: &[Step], counter: &mut Counter) -> Result<Node, TemplateProblem> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_string()));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(TemplateProblem {
                hint: Some(PLACEHOLDER_HINT.to_string()),
                ..problem(at, format!("`{{{{` without `}}}}` in \"{text}\""))
            });
        };
        let slot = parse_slot(after[..close].trim()).map_err(|message| TemplateProblem {
            hint: Some(PLACEHOLDER_HINT.to_string()),
            ..problem(at, message)
        })?;
        counter.placeholders += 1;
        if counter.placeholders > PLACEHOLDERS_MAX {
            return Err(problem(
                at,
                format!("a body holds at most {PLACEHOLDERS_MAX} placeholders"),
            ));
        }
        counter.parent |= slot == Slot::Parent;
        pieces.push(Piece::Slot(slot));
        rest = &after[close + 2..];
    }
    if rest.contains("}}") {
        return Err(problem(at, format!("`}}}}` without `{{{{` in \"{text}\"")));
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Ok(match pieces.as_slice() {
        [] => Node::Literal(Value::String(String::new())),
        [Piece::Text(text)] => Node::Literal(Value::String(text.clone())),
        [Piece::Slot(slot)] => Node::Whole(slot.clone()),
        _ => Node::Text(pieces),
    })
}

/// Parses the inside of `{{...}}`.
fn parse_slot(inside: &str) -> Result<Slot, String> {
    let (word, argument) = inside
        .split_once(char::is_whitespace)
        .map_or((inside, ""), |(w, a)| (w, a.trim()));
    let bare = |slot: Slot| {
        if argument.is_empty() {
            Ok(slot)
        } else {
            Err(format!("`{{{{{word}}}}}` takes no argument"))
        }
    };
    match word {
        "int" => parse_int(argument),
        "choice" => parse_choice(argument),
        "hex" | "digits" => {
            let len: usize = argument.parse().map_err(|_| {
                format!("`{word}` takes a length, 1..={HEX_LEN_MAX}: `{{{{{word} 8}}}}`")
            })?;
            if !(1..=HEX_LEN_MAX).contains(&len) {
                return Err(format!("`{word} {len}` is outside 1..={HEX_LEN_MAX}"));
            }
            Ok(if word == "hex" {
                Slot::Hex { len }
            } else {
                Slot::Digits { len }
            })
        }
        "seq" => bare(Slot::Seq),
        "slot" => bare(Slot::Position),
        "parent" => bare(Slot::Parent),
        "caller" => bare(Slot::Caller),
        "" => Err("empty placeholder `{{}}`".to_string()),
        other => Err(format!("unknown placeholder `{other}`")),
    }
}

fn parse_int(argument: &str) -> Result<Slot, String> {
    let usage = "`int` takes an inclusive range: `{{int 100..=20000}}`";
    let (low, high) = argument
        .split_once("..=")
        .ok_or_else(|| usage.to_string())?;
    let bound = |text: &str| -> Result<i64, String> {
        let value: i64 = text
            .trim()
            .parse()
            .map_err(|_| format!("`{}` is not an integer; {usage}", text.trim()))?;
        if value.unsigned_abs() > INT_ABS_MAX.unsigned_abs() {
            return Err(format!(
                "`{value}` is outside -{INT_ABS_MAX}..={INT_ABS_MAX} (integers JSON readers hold exactly)"
            ));
        }
        Ok(value)
    };
    let (low, high) = (bound(low)?, bound(high)?);
    if high < low {
        return Err(format!("`int {low}..={high}` ends before it starts"));
    }
    Ok(Slot::Int { low, high })
}

fn parse_choice(argument: &str) -> Result<Slot, String> {
    let (list, refused) = match argument.split_once(" refused ") {
        Some((list, refused)) => (list, Some(refused.trim().to_string())),
        None => (argument, None),
    };
    let options: Vec<String> = list.split('|').map(|o| o.trim().to_string()).collect();
    if options.iter().any(String::is_empty) || options.is_empty() {
        return Err("`choice` takes options separated by `|`: `{{choice DE|FR|NL}}`".to_string());
    }
    if options.len() > CHOICES_MAX {
        return Err(format!("a `choice` has at most {CHOICES_MAX} options"));
    }
    if refused.as_deref().is_some_and(str::is_empty) {
        return Err("`refused` takes the value the downstream refuses: `refused AQ`".to_string());
    }
    Ok(Slot::Choice { options, refused })
}

fn draw_slot(slot: &Slot, draw: &mut Draw<'_>) -> Value {
    match slot {
        Slot::Int { low, high } => Value::from(draw.rng().random_range(*low..=*high)),
        Slot::Choice { options, refused } => {
            let refuse = refused.is_some() && {
                let p = draw.refuse_probability();
                draw.rng().random_bool(p)
            };
            let chosen = match refused {
                Some(value) if refuse => value.clone(),
                _ => options
                    .choose(draw.rng())
                    .cloned()
                    .expect("a choice has options"),
            };
            Value::String(chosen)
        }
        Slot::Hex { len } | Slot::Digits { len } => {
            let radix = if matches!(slot, Slot::Hex { .. }) {
                16
            } else {
                10
            };
            let rng = draw.rng();
            let text: String = (0..*len)
                .map(|_| char::from_digit(rng.random_range(0..radix), radix).expect("a digit"))
                .collect();
            Value::String(text)
        }
        Slot::Seq => Value::from(draw.sequence()),
        Slot::Position => Value::from(draw.slot()),
        Slot::Parent => Value::String(PARENT_MARK.to_string()),
        Slot::Caller => Value::String(CALLER_MARK.to_string()),
    }
}

fn draw_node(node: &Node, draw: &mut Draw<'_>) -> Value {
    match node {
        Node::Literal(value) => value.clone(),
        Node::Whole(slot) => draw_slot(slot, draw),
        Node::Text(pieces) => {
            let mut text = String::new();
            for piece in pieces {
                match piece {
                    Piece::Text(t) => text.push_str(t),
                    Piece::Slot(slot) => match draw_slot(slot, draw) {
                        Value::String(s) => text.push_str(&s),
                        other => text.push_str(&other.to_string()),
                    },
                }
            }
            Value::String(text)
        }
        Node::Array(items) => Value::Array(items.iter().map(|n| draw_node(n, draw)).collect()),
        Node::Object(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, n)| (k.clone(), draw_node(n, draw)))
                .collect::<Map<String, Value>>(),
        ),
    }
}

/// Fills what only the create knows: the parent's id and the caller's id.
pub(crate) fn fill(value: &mut Value, parent: Option<&str>, caller: &str) {
    match value {
        Value::String(text) if text.contains("{{") => {
            let filled = text
                .replace(PARENT_MARK, parent.unwrap_or_default())
                .replace(CALLER_MARK, caller);
            *text = filled;
        }
        Value::Array(items) => items.iter_mut().for_each(|v| fill(v, parent, caller)),
        Value::Object(entries) => entries.values_mut().for_each(|v| fill(v, parent, caller)),
        _ => {}
    }
}

/// Puts `value` at `path` in `document`, creating objects on the way.
///
/// # Errors
/// A sentence when a step goes through something that is not an object.
pub(crate) fn place(document: &mut Value, path: &[Step], value: Value) -> Result<(), String> {
    let Some((last, before)) = path.split_last() else {
        *document = value;
        return Ok(());
    };
    let mut node = document;
    for step in before {
        let Step::Key(key) = step else {
            return Err("the key field goes through an array".to_string());
        };
        let Value::Object(entries) = node else {
            return Err(format!(
                "the key field goes through `{key}`, which is not an object"
            ));
        };
        node = entries
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    match (node, last) {
        (Value::Object(entries), Step::Key(key)) => {
            entries.insert(key.clone(), value);
            Ok(())
        }
        _ => Err("the key field's parent is not an object".to_string()),
    }
}

/// Parses a JSON pointer (RFC 6901) into steps; numeric steps are array indices only where
/// `is_array` says the template has an array.
///
/// # Errors
/// A sentence when the text is not a pointer.
pub(crate) fn pointer_steps(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Err("an empty pointer names the whole document; name a field, like `/id`".into());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!(
            "`{pointer}` is not a JSON pointer: it starts with `/`, like `/id`"
        ));
    };
    let mut steps = Vec::new();
    for token in rest.split('/') {
        let mut step = String::with_capacity(token.len());
        let mut chars = token.chars();
        while let Some(c) = chars.next() {
            if c == '~' {
                match chars.next() {
                    Some('0') => step.push('~'),
                    Some('1') => step.push('/'),
                    _ => {
                        return Err(format!(
                            "`{pointer}`: `~` must be followed by 0 (for `~`) or 1 (for `/`)"
                        ));
                    }
                }
            } else {
                step.push(c);
            }
        }
        steps.push(step);
    }
    Ok(steps)
}

/// How [`vary`] changes the field it is pointed at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum VaryRule {
    /// An integer drawn from a range: one step inside the range.
    IntStep { low: i64, high: i64 },
    /// A choice: the next option.
    NextChoice(Vec<String>),
    /// A number written as is: one more.
    NumberStep,
    /// A string: a suffix.
    Append,
}

impl VaryRule {
    /// How to vary `node`.
    ///
    /// # Errors
    /// A sentence when the node cannot be varied into another valid value.
    pub(crate) fn of(node: &Node) -> Result<VaryRule, String> {
        match node {
            Node::Whole(Slot::Int { low, high }) if low < high => Ok(VaryRule::IntStep {
                low: *low,
                high: *high,
            }),
            Node::Whole(Slot::Int { .. }) => {
                Err("the field takes one value only: give its `int` a wider range".into())
            }
            Node::Whole(Slot::Choice { options, .. }) if options.len() > 1 => {
                Ok(VaryRule::NextChoice(options.clone()))
            }
            Node::Whole(Slot::Choice { .. }) => {
                Err("the field's `choice` has one option: give it two".into())
            }
            Node::Whole(Slot::Parent | Slot::Caller) => {
                Err("the field holds the parent's or caller's id, which a request must keep".into())
            }
            Node::Literal(Value::Number(_)) | Node::Whole(Slot::Seq | Slot::Position) => {
                Ok(VaryRule::NumberStep)
            }
            Node::Literal(Value::String(_))
            | Node::Text(_)
            | Node::Whole(Slot::Hex { .. } | Slot::Digits { .. }) => Ok(VaryRule::Append),
            _ => Err("name a number or a string field".into()),
        }
    }

    /// `value` changed by the rule (unchanged when it is not of the expected type).
    pub(crate) fn apply(&self, value: &Value) -> Value {
        match (self, value) {
            (VaryRule::IntStep { low, high }, Value::Number(n)) => match n.as_i64() {
                Some(n) if n < *high => Value::from(n + 1),
                Some(n) if n > *low => Value::from(n - 1),
                _ => value.clone(),
            },
            (VaryRule::NextChoice(options), Value::String(s)) => {
                let next = options
                    .iter()
                    .position(|o| o == s)
                    .map_or(0, |i| (i + 1) % options.len());
                Value::String(options[next].clone())
            }
            (VaryRule::NumberStep, Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Value::from(i.saturating_add(1)),
                (None, Some(x)) => serde_json::Number::from_f64(x + 1.0)
                    .map_or_else(|| value.clone(), Value::Number),
                _ => value.clone(),
            },
            (VaryRule::Append, Value::String(s)) => Value::String(format!("{s}-2")),
            _ => value.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    fn drawn(template: &BodyTemplate, seed: u64, refuse: f64) -> Value {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut draw = Draw {
            rng: &mut rng,
            refuse_probability: refuse,
            sequence: 7,
            slot: 1,
        };
        template.draw(&mut draw)
    }

    #[test]
    fn placeholders_draw_typed_values_and_keep_text() {
        // Proves a whole-string placeholder takes its JSON type, text around placeholders
        // stays a string, the same seed draws the same body, and `{{parent}}` is kept for
        // the create to fill.
        let template = BodyTemplate::compile(&table(
            r#"
            weight = "{{int 5..=5}}"
            label = "PO-{{slot}}-{{seq}}"
            country = "{{choice DE refused AQ}}"
            tag = "{{hex 6}}"
            zip = "{{digits 5}}"
            owner = "{{parent}}"
            nested = { list = [1, "{{seq}}", true] }
            "#,
        ))
        .unwrap();
        assert!(template.uses_parent());
        let body = drawn(&template, 1, 0.0);
        assert_eq!(body["weight"], 5);
        assert_eq!(body["label"], "PO-1-7");
        assert_eq!(body["country"], "DE");
        assert_eq!(body["tag"].as_str().unwrap().len(), 6);
        assert!(
            body["zip"]
                .as_str()
                .unwrap()
                .bytes()
                .all(|b| b.is_ascii_digit())
        );
        assert_eq!(body["owner"], "{{parent}}");
        assert_eq!(body["nested"]["list"], serde_json::json!([1, 7, true]));
        assert_eq!(body, drawn(&template, 1, 0.0));
        assert_eq!(drawn(&template, 1, 1.0)["country"], "AQ");
        let mut filled = body.clone();
        fill(&mut filled, Some("cus_1"), "merchant-0");
        assert_eq!(filled["owner"], "cus_1");
    }

    #[test]
    fn bad_placeholders_are_refused_with_their_place() {
        // Proves each malformed placeholder is a problem naming the field it is in.
        for (text, expected) in [
            ("x = \"{{int 5..=1}}\"", "ends before it starts"),
            ("x = \"{{int 1..5}}\"", "inclusive range"),
            ("x = \"{{rand}}\"", "unknown placeholder `rand`"),
            ("x = \"{{seq\"", "without `}}`"),
            ("x = \"a}}\"", "without `{{`"),
            ("x = \"{{hex 0}}\"", "outside 1..=64"),
            ("x = \"{{choice a||b}}\"", "separated by `|`"),
            ("x = \"{{seq 3}}\"", "takes no argument"),
            ("x = { y = [\"{{int 1..=99999999999999999}}\"] }", "outside"),
            // Found by the fuzzing: the most negative integer has no absolute value.
            ("x = \"{{int -9223372036854775808..=0}}\"", "outside"),
        ] {
            let error = BodyTemplate::compile(&table(text)).unwrap_err();
            assert!(error.message.contains(expected), "{text}: {error:?}");
            assert_eq!(error.at.first(), Some(&Step::Key("x".into())), "{text}");
        }
    }

    #[test]
    fn vary_changes_the_field_inside_its_range() {
        // Proves the varied value differs from the drawn one and stays a valid value.
        let step = VaryRule::IntStep { low: 1, high: 3 };
        assert_eq!(step.apply(&Value::from(3)), Value::from(2));
        assert_eq!(step.apply(&Value::from(1)), Value::from(2));
        let next = VaryRule::NextChoice(vec!["a".into(), "b".into()]);
        assert_eq!(next.apply(&Value::from("b")), Value::from("a"));
        assert_eq!(
            VaryRule::Append.apply(&Value::from("x")),
            Value::from("x-2")
        );
        assert!(VaryRule::of(&Node::Whole(Slot::Int { low: 2, high: 2 })).is_err());
        assert!(VaryRule::of(&Node::Whole(Slot::Parent)).is_err());
    }

    #[test]
    fn the_key_is_placed_creating_objects() {
        // Proves a key field deep in the body is created, and a step through a non-object
        // is refused.
        let mut body = serde_json::json!({"a": 1});
        place(
            &mut body,
            &[Step::Key("meta".into()), Step::Key("key".into())],
            "k-1".into(),
        )
        .unwrap();
        assert_eq!(body["meta"]["key"], "k-1");
        assert!(
            place(
                &mut body,
                &[Step::Key("a".into()), Step::Key("b".into())],
                1.into()
            )
            .is_err()
        );
    }

    #[test]
    fn pointers_unescape() {
        // Proves RFC 6901 escapes and refusals.
        assert_eq!(pointer_steps("/a~1b/c~0").unwrap(), ["a/b", "c~"]);
        assert!(pointer_steps("a").is_err());
        assert!(pointer_steps("").is_err());
        assert!(pointer_steps("/a~2").is_err());
    }
}
