//! The response template language of a simulated downstream.
//!
//! A template is a JSON value. Strings anywhere in it (not object keys) may hold
//! placeholders, `{{name}}` (spaces inside the braces are allowed):
//!
//! | placeholder          | value                                                             |
//! |----------------------|-------------------------------------------------------------------|
//! | `{{id}}`             | the effect's id (`ch_3f9a...`)                                    |
//! | `{{effect}}`         | the effect's name (`charge`)                                      |
//! | `{{key}}`            | the idempotency key the request carried, or null                  |
//! | `{{principal}}`      | who made the effect (the auth principal, or `anonymous`)          |
//! | `{{seq}}`            | the effect's ledger sequence number, from 1                       |
//! | `{{now_ms}}`         | the downstream's clock, Unix milliseconds                         |
//! | `{{now_s}}`          | the downstream's clock, Unix seconds (Stripe's `created`)         |
//! | `{{body}}`           | the effect's request body, whole                                  |
//! | `{{body/a/0/b}}`     | the request body at a JSON pointer (RFC 6901, `~0` `~`, `~1` `/`) |
//! | `{{path.name}}`      | the path parameter `{name}` of the route answering                |
//! | `{{open}}`           | a literal `{{`                                                    |
//!
//! A string that is exactly one placeholder becomes that value with its JSON type: `"{{seq}}"`
//! is a number, `"{{body/items}}"` an array, `"{{key}}"` a string or null. A string with text
//! around its placeholders stays a string: text values go in as they are, null and absent
//! values as nothing, numbers, booleans, arrays and objects as compact JSON.
//! A pointer into the body that finds nothing gives null (a route that needs the field says
//! so with `require`, and a request without it is refused before any effect).
//!
//! Substituted values are never expanded again, so a request body holding `{{id}}` comes
//! back as written, and rendering is one pass over the template: no recursion beyond the
//! template's own depth, which compiling bounds, and no loops. Any `{{` that does not open a
//! known placeholder is an error when the template is compiled, never at request time.

use std::collections::BTreeMap;

use serde_json::Value;

/// Deepest nesting of arrays and objects in a template.
pub(crate) const TEMPLATE_DEPTH_MAX: usize = 32;
/// Most values (strings, numbers, arrays, objects, ...) in a template.
pub(crate) const TEMPLATE_NODES_MAX: usize = 4_096;
/// Most placeholders in a template. With request bodies capped at 64 KiB this caps a
/// rendering at 4 MiB before the response limit refuses it.
pub(crate) const TEMPLATE_PLACEHOLDERS_MAX: usize = 64;

/// Something a placeholder stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Placeholder {
    Id,
    Effect,
    Key,
    Principal,
    Seq,
    NowMs,
    NowS,
    /// The request body at this JSON pointer (`""` for the whole body).
    Body(String),
    /// The path parameter of this name.
    Path(String),
    Open,
}

/// A piece of a string with placeholders among text.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Slot(Placeholder),
}

/// A compiled template node.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    /// A value without placeholders, copied as it is.
    Literal(Value),
    /// A string that is exactly one placeholder: replaced by the value, type kept.
    Whole(Placeholder),
    /// A string with placeholders among text.
    Text(Vec<Piece>),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

/// A compiled response template. See the module docs for the language.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template {
    root: Node,
}

/// Where in a template a problem is (a JSON pointer into it) and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TemplateError {
    /// JSON pointer to the offending value, `""` for the root.
    pub at: String,
    /// What is wrong.
    pub problem: String,
}

/// What placeholders are filled from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Context<'a> {
    pub id: &'a str,
    pub effect: &'a str,
    pub key: Option<&'a str>,
    pub principal: &'a str,
    pub seq: u64,
    pub now_ms: u64,
    pub body: &'a Value,
    pub path: &'a BTreeMap<String, String>,
}

/// Running totals while compiling, to enforce the limits.
struct Budget<'a> {
    nodes: usize,
    placeholders: usize,
    path_params: &'a [String],
}

impl Template {
    /// Compiles `source`. `path_params` are the parameters of the route's path, the only
    /// names `{{path.name}}` may use.
    ///
    /// # Errors
    /// [`TemplateError`] for an unknown or malformed placeholder, a pointer that is not
    /// RFC 6901, or a template past the depth, size or placeholder limits.
    pub(crate) fn compile(
        source: &Value,
        path_params: &[String],
    ) -> Result<Template, TemplateError> {
        let mut budget = Budget {
            nodes: 0,
            placeholders: 0,
            path_params,
        };
        let mut at = String::new();
        let root = compile_node(source, 0, &mut at, &mut budget)?;
        Ok(Template { root })
    }

    /// The template filled from `context`.
    pub(crate) fn render(&self, context: &Context<'_>) -> Value {
        render_node(&self.root, context)
    }
}

fn compile_node(
    value: &Value,
    depth: usize,
    at: &mut String,
    budget: &mut Budget<'_>,
) -> Result<Node, TemplateError> {
    budget.nodes += 1;
    if budget.nodes > TEMPLATE_NODES_MAX {
        return Err(error(
            at,
            format!("has more than {TEMPLATE_NODES_MAX} values"),
        ));
    }
    if depth > TEMPLATE_DEPTH_MAX {
        return Err(error(
            at,
            format!("nests arrays and objects deeper than {TEMPLATE_DEPTH_MAX}"),
        ));
    }
    let node = match value {
        Value::String(text) => compile_string(text, at, budget)?,
        Value::Array(items) => {
            let mut nodes = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                let mark = at.len();
                at.push('/');
                at.push_str(&index.to_string());
                nodes.push(compile_node(item, depth + 1, at, budget)?);
                at.truncate(mark);
            }
            Node::Array(nodes)
        }
        Value::Object(fields) => {
            let mut nodes = Vec::with_capacity(fields.len());
            for (name, item) in fields {
                let mark = at.len();
                at.push('/');
                at.push_str(&name.replace('~', "~0").replace('/', "~1"));
                nodes.push((name.clone(), compile_node(item, depth + 1, at, budget)?));
                at.truncate(mark);
            }
            Node::Object(nodes)
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Node::Literal(value.clone()),
    };
    Ok(node)
}

fn compile_string(text: &str, at: &str, budget: &mut Budget<'_>) -> Result<Node, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_string()));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(error(
                at,
                format!("`{text}` opens a placeholder with `{{{{` and never closes it"),
            ));
        };
        let placeholder = parse_placeholder(after[..close].trim(), budget.path_params)
            .map_err(|problem| error(at, problem))?;
        budget.placeholders += 1;
        if budget.placeholders > TEMPLATE_PLACEHOLDERS_MAX {
            return Err(error(
                at,
                format!("has more than {TEMPLATE_PLACEHOLDERS_MAX} placeholders"),
            ));
        }
        pieces.push(Piece::Slot(placeholder));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Ok(match pieces.as_slice() {
        [] | [Piece::Text(_)] => Node::Literal(Value::String(text.to_string())),
        [Piece::Slot(placeholder)] => Node::Whole(placeholder.clone()),
        _ => Node::Text(pieces),
    })
}

fn parse_placeholder(name: &str, path_params: &[String]) -> Result<Placeholder, String> {
    let placeholder = match name {
        "id" => Placeholder::Id,
        "effect" => Placeholder::Effect,
        "key" => Placeholder::Key,
        "principal" => Placeholder::Principal,
        "seq" => Placeholder::Seq,
        "now_ms" => Placeholder::NowMs,
        "now_s" => Placeholder::NowS,
        "open" => Placeholder::Open,
        "body" => Placeholder::Body(String::new()),
        _ => {
            if let Some(pointer) = name.strip_prefix("body") {
                check_pointer(pointer).map_err(|problem| format!("`{{{{{name}}}}}`: {problem}"))?;
                Placeholder::Body(pointer.to_string())
            } else if let Some(param) = name.strip_prefix("path.") {
                if !path_params.iter().any(|p| p == param) {
                    return Err(format!(
                        "`{{{{{name}}}}}`: the route's path has no parameter `{{{param}}}` \
                         (it has: {})",
                        list_or_none(path_params)
                    ));
                }
                Placeholder::Path(param.to_string())
            } else {
                return Err(format!(
                    "`{{{{{name}}}}}` is not a placeholder; known: id, effect, key, principal, \
                     seq, now_ms, now_s, body, body/<pointer>, path.<param>, open"
                ));
            }
        }
    };
    Ok(placeholder)
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names
            .iter()
            .map(|n| format!("`{{{n}}}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Checks that `pointer` is an RFC 6901 JSON pointer: empty, or `/`-separated tokens in
/// which `~` only starts `~0` or `~1`.
///
/// # Errors
/// A sentence saying what is wrong.
pub(crate) fn check_pointer(pointer: &str) -> Result<(), String> {
    if pointer.is_empty() {
        return Ok(());
    }
    if !pointer.starts_with('/') {
        return Err(format!(
            "`{pointer}` is not a JSON pointer: it must start with `/`"
        ));
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!(
                "`{pointer}` is not a JSON pointer: `~` must be followed by 0 or 1"
            ));
        }
    }
    Ok(())
}

fn error(at: &str, problem: String) -> TemplateError {
    TemplateError {
        at: at.to_string(),
        problem,
    }
}

fn render_node(node: &Node, context: &Context<'_>) -> Value {
    match node {
        Node::Literal(value) => value.clone(),
        Node::Whole(placeholder) => resolve(placeholder, context),
        Node::Text(pieces) => {
            let mut text = String::new();
            for piece in pieces {
                match piece {
                    Piece::Text(literal) => text.push_str(literal),
                    Piece::Slot(placeholder) => match resolve(placeholder, context) {
                        Value::String(value) => text.push_str(&value),
                        Value::Null => {}
                        other => text.push_str(&other.to_string()),
                    },
                }
            }
            Value::String(text)
        }
        Node::Array(items) => Value::Array(items.iter().map(|n| render_node(n, context)).collect()),
        Node::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, n)| (name.clone(), render_node(n, context)))
                .collect(),
        ),
    }
}

fn resolve(placeholder: &Placeholder, context: &Context<'_>) -> Value {
    match placeholder {
        Placeholder::Id => Value::from(context.id),
        Placeholder::Effect => Value::from(context.effect),
        Placeholder::Key => context.key.map_or(Value::Null, Value::from),
        Placeholder::Principal => Value::from(context.principal),
        Placeholder::Seq => Value::from(context.seq),
        Placeholder::NowMs => Value::from(context.now_ms),
        Placeholder::NowS => Value::from(context.now_ms / 1_000),
        Placeholder::Body(pointer) => context
            .body
            .pointer(pointer)
            .cloned()
            .unwrap_or(Value::Null),
        Placeholder::Path(name) => context
            .path
            .get(name)
            .map_or(Value::Null, |v| Value::from(v.as_str())),
        Placeholder::Open => Value::from("{{"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn render(source: Value, body: Value) -> Value {
        let path = BTreeMap::from([("account".to_string(), "acct_1".to_string())]);
        let context = Context {
            id: "ch_1",
            effect: "charge",
            key: Some("k-1"),
            principal: "merchant",
            seq: 7,
            now_ms: 1_700_000_123_456,
            body: &body,
            path: &path,
        };
        Template::compile(&source, &["account".to_string()])
            .unwrap()
            .render(&context)
    }

    fn compile_error(source: Value) -> TemplateError {
        Template::compile(&source, &[]).unwrap_err()
    }

    #[test]
    fn whole_placeholders_keep_their_json_type() {
        // Proves a string that is exactly one placeholder becomes the value itself: numbers
        // stay numbers, arrays stay arrays, a missing body field is null, and every built-in
        // placeholder resolves.
        let out = render(
            json!({
                "id": "{{id}}", "object": "{{effect}}", "key": "{{ key }}", "who": "{{principal}}",
                "seq": "{{seq}}", "ms": "{{now_ms}}", "s": "{{now_s}}", "amount": "{{body/amount}}",
                "items": "{{body/items}}", "missing": "{{body/nope}}", "account": "{{path.account}}",
                "all": "{{body}}", "open": "{{open}}", "flag": true, "n": 3
            }),
            json!({"amount": 1250, "items": [1, 2]}),
        );
        assert_eq!(
            out,
            json!({
                "id": "ch_1", "object": "charge", "key": "k-1", "who": "merchant", "seq": 7,
                "ms": 1_700_000_123_456_u64, "s": 1_700_000_123_u64, "amount": 1250,
                "items": [1, 2], "missing": null, "account": "acct_1",
                "all": {"amount": 1250, "items": [1, 2]}, "open": "{{", "flag": true, "n": 3
            })
        );
    }

    #[test]
    fn text_placeholders_interpolate_by_type() {
        // Proves interpolation inside text: strings go in raw, null and missing as nothing,
        // numbers and arrays as compact JSON, `{{open}}` as literal braces, and a lone `}}`
        // or `{` is plain text.
        let out = render(
            json!([
                "ref-{{id}}-{{body/amount}}",
                "[{{body/nope}}]",
                "{{body/items}}!",
                "{{open}}id}} and }} and {x}",
                "{{body/a~1b}}/{{body/c~0d}}"
            ]),
            json!({"amount": 12.5, "items": [1, "x"], "a/b": "slash", "c~d": "tilde"}),
        );
        assert_eq!(
            out,
            json!([
                "ref-ch_1-12.5",
                "[]",
                "[1,\"x\"]!",
                "{{id}} and }} and {x}",
                "slash/tilde"
            ])
        );
    }

    #[test]
    fn substituted_values_are_not_expanded_again() {
        // Proves rendering is one pass: a request body carrying placeholder text comes back
        // verbatim, so a caller cannot make the template recurse.
        let out = render(
            json!({"echo": "{{body/note}}", "inline": "x{{body/note}}x"}),
            json!({"note": "{{id}}{{body}}"}),
        );
        assert_eq!(
            out,
            json!({"echo": "{{id}}{{body}}", "inline": "x{{id}}{{body}}x"})
        );
    }

    #[test]
    fn object_keys_are_literal() {
        // Proves placeholders are only read in string values, never in object keys.
        assert_eq!(
            render(json!({"{{id}}": 1}), json!(null)),
            json!({"{{id}}": 1})
        );
    }

    #[test]
    fn bad_placeholders_are_refused_at_compile_time_with_their_location() {
        // Proves every malformed placeholder is a compile error that names where it is (a
        // JSON pointer into the template) and what is wrong, so nothing fails per request.
        let cases = [
            (json!({"a": {"b": "{{nope}}"}}), "/a/b", "not a placeholder"),
            (json!(["x", "{{id"]), "/1", "never closes"),
            (
                json!({"a/b": "{{body/a~2}}"}),
                "/a~1b",
                "`~` must be followed",
            ),
            (json!("{{bodyx}}"), "", "must start with `/`"),
            (json!("{{path.id}}"), "", "no parameter `{id}`"),
            (json!("{{}}"), "", "not a placeholder"),
        ];
        for (source, at, problem) in cases {
            let error = compile_error(source.clone());
            assert_eq!(error.at, at, "{source}: {error:?}");
            assert!(error.problem.contains(problem), "{source}: {error:?}");
        }
    }

    #[test]
    fn templates_past_their_limits_are_refused() {
        // Proves the depth, size and placeholder limits hold, so neither compiling nor
        // rendering can recurse or grow without bound.
        let mut deep = json!(1);
        for _ in 0..=TEMPLATE_DEPTH_MAX {
            deep = json!([deep]);
        }
        assert!(compile_error(deep).problem.contains("deeper"));
        let wide = Value::Array(vec![json!(0); TEMPLATE_NODES_MAX]);
        assert!(compile_error(wide).problem.contains("values"));
        let many = Value::Array(vec![json!("{{id}}"); TEMPLATE_PLACEHOLDERS_MAX + 1]);
        assert!(compile_error(many).problem.contains("placeholders"));
        let just = Value::Array(vec![json!("{{id}}"); TEMPLATE_PLACEHOLDERS_MAX]);
        assert!(Template::compile(&just, &[]).is_ok());
    }
}
