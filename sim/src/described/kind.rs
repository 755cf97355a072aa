//! `[[kind]]`: one resource kind of a described API, validated (routes, key placement,
//! body template, the field `vary` changes, response pointers), and written back.

use toml::Spanned;

use super::body::{self, BodyTemplate, Step, VaryRule};
use super::raw::{RawKind, RawResponse};
use super::route::Route;
use super::{Ctx, header_name, locate, pointer, route};
use crate::scenario::ScenarioError;
use crate::scenario::limits::{self, Limit};
use crate::target::Kind;

/// Most states one kind declares.
const STATES_MAX: usize = 32;

/// Mix weights, as scenario files take them.
const WEIGHT: Limit = Limit::int(0, limits::MIX_WEIGHT_MAX as i128);

/// Pointers into a success response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Pointers {
    pub(super) id: String,
    pub(super) parent: Option<String>,
    pub(super) state: Option<String>,
    pub(super) downstream_ref: Option<String>,
}

/// One kind, validated.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct DescribedKind {
    pub(super) kind: Kind,
    pub(super) create: Route,
    pub(super) read: Option<Route>,
    pub(super) key_header: Option<http::HeaderName>,
    pub(super) key_field: Option<Vec<Step>>,
    pub(super) body: BodyTemplate,
    pub(super) vary: Option<(Vec<Step>, VaryRule)>,
    pub(super) response: Pointers,
    /// What was written, for [`Description::to_toml`].
    written: WrittenKind,
}

/// The parts of a kind as written that its validated form does not keep verbatim.
#[derive(Clone, Debug, PartialEq)]
struct WrittenKind {
    key_field: Option<String>,
    key_prefix: Option<String>,
    vary: Option<String>,
    body: Option<toml::Table>,
}

impl DescribedKind {
    pub(super) fn to_table(&self) -> toml::Table {
        use toml::Value as V;
        let text = |s: &str| V::String(s.to_string());
        let kind = &self.kind;
        let mut table = toml::Table::new();
        table.insert("name".into(), text(kind.name()));
        table.insert("create".into(), text(&self.create.label()));
        if let Some(read) = &self.read {
            table.insert("read".into(), text(&read.label()));
        }
        if let Some(parent) = kind.parent_kind() {
            table.insert("parent".into(), text(parent));
        }
        if kind.is_spending() {
            table.insert("spends".into(), V::Boolean(true));
        }
        if let Some(header) = &self.key_header {
            table.insert("key_header".into(), text(header.as_str()));
        }
        let written = &self.written;
        for (key, value) in [
            ("key_field", &written.key_field),
            ("key_prefix", &written.key_prefix),
            ("vary", &written.vary),
        ] {
            if let Some(value) = value {
                table.insert(key.into(), text(value));
            }
        }
        if let Some(body) = &written.body {
            table.insert("body".into(), V::Table(body.clone()));
        }
        if !kind.state_order().is_empty() {
            let states = kind.state_order().iter().map(|s| text(s)).collect();
            table.insert("states".into(), V::Array(states));
        }
        let (create, read) = kind.default_weights();
        table.insert(
            "weights".into(),
            V::Array(vec![
                V::Integer(i64::from(create)),
                V::Integer(i64::from(read)),
            ]),
        );
        let pointers = &self.response;
        let mut response = toml::Table::new();
        response.insert("id".into(), text(&pointers.id));
        for (key, value) in [
            ("parent", &pointers.parent),
            ("state", &pointers.state),
            ("downstream_ref", &pointers.downstream_ref),
        ] {
            if let Some(value) = value {
                response.insert(key.into(), text(value));
            }
        }
        table.insert("response".into(), V::Table(response));
        table
    }
}

fn steps_in(template: &BodyTemplate, tokens: Vec<String>) -> Vec<Step> {
    let mut steps = Vec::with_capacity(tokens.len());
    for token in tokens {
        let is_array = matches!(template.node(&steps), Some(body::Node::Array(_)));
        steps.push(match token.parse::<usize>() {
            Ok(index) if is_array => Step::Index(index),
            _ => Step::Key(token),
        });
    }
    steps
}

/// Validates kind number `index` of the description; `before` holds the kinds declared
/// above it. Checks run in the order the fields are read, so the first problem is reported.
pub(super) fn kind(
    ctx: &Ctx<'_>,
    index: usize,
    entry: &Spanned<RawKind>,
    before: &[DescribedKind],
) -> Result<DescribedKind, ScenarioError> {
    let raw = entry.get_ref();
    let name = kind_name(ctx, raw, before)?;
    let parent = parent(ctx, raw, before)?;
    let (create, read) = routes(ctx, raw, parent.is_some())?;
    let body = body_template(ctx, index, raw, name)?;
    if let Some(parent) = &parent
        && !create.has_id()
        && !body.uses_parent()
    {
        return Err(ctx
            .error(&raw.create, format!("kind `{name}` belongs to `{parent}`, but its create sends the parent's id nowhere"))
            .with_hint("put a placeholder in the create path (`/v1/orders/{id}/shipments`), or \"{{parent}}\" in the body"));
    }
    let key_header = raw
        .key_header
        .as_ref()
        .map(|h| header_name(ctx, h))
        .transpose()?;
    let key_field = raw
        .key_field
        .as_ref()
        .map(|text| key_field(ctx, &body, text))
        .transpose()?;
    if key_header.is_none() && key_field.is_none() {
        return Err(ctx
            .error(entry, format!("kind `{name}` does not say where the idempotency key goes"))
            .with_hint("key_header = \"Idempotency-Key\", key_field = \"/idempotency_key\" (a JSON pointer into the body), or both"));
    }
    let spends = raw.spends.as_ref().is_some_and(|s| *s.get_ref());
    let vary = match &raw.vary {
        Some(text) => Some(vary(ctx, &body, text)?),
        None if spends => {
            return Err(ctx
                .error(entry, format!("kind `{name}` spends, but does not say which body field `vary` changes"))
                .with_hint("the workload reuses a key with another body to check it is refused: vary = \"/amount\""));
        }
        None => None,
    };
    let response = pointers(ctx, raw.response.get_ref())?;
    let mut kind = Kind::new(name.clone(), create.label());
    if let Some(read) = &read {
        kind = kind.read_route(read.label());
    }
    if let Some(parent) = &parent {
        kind = kind.parent(parent.clone());
    }
    if spends {
        kind = kind.spends();
    }
    if key_header.is_some() && key_field.is_some() {
        kind = kind.key_in_body();
    }
    let kind = options(ctx, raw, kind)?;
    Ok(DescribedKind {
        kind,
        create,
        read,
        key_header,
        key_field,
        body,
        vary,
        response,
        written: WrittenKind {
            key_field: raw.key_field.as_ref().map(|f| f.get_ref().clone()),
            key_prefix: raw.key_prefix.as_ref().map(|p| p.get_ref().clone()),
            vary: raw.vary.as_ref().map(|v| v.get_ref().clone()),
            body: raw.body.as_ref().map(|b| b.get_ref().clone()),
        },
    })
}

/// The kind's name: letters, digits and `_`, and not one declared above.
fn kind_name<'a>(
    ctx: &Ctx<'_>,
    raw: &'a RawKind,
    before: &[DescribedKind],
) -> Result<&'a String, ScenarioError> {
    let name = raw.name.get_ref();
    if name.is_empty()
        || name.len() > 64
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(ctx
            .error(
                &raw.name,
                format!("kind name \"{name}\" is not letters, digits and `_`"),
            )
            .with_hint(format!("it names operations such as `create_{name}`")));
    }
    if before.iter().any(|k| k.kind.name() == name) {
        return Err(ctx.error(&raw.name, format!("kind `{name}` is declared twice")));
    }
    Ok(name)
}

/// The kind's parent, if it has one: a kind declared above.
fn parent(
    ctx: &Ctx<'_>,
    raw: &RawKind,
    before: &[DescribedKind],
) -> Result<Option<String>, ScenarioError> {
    let Some(parent) = &raw.parent else {
        return Ok(None);
    };
    if !before.iter().any(|k| k.kind.name() == parent.get_ref()) {
        return Err(ctx
            .error(
                parent,
                format!("parent `{}` is not a kind declared above", parent.get_ref()),
            )
            .with_hint("declare a parent kind before its children"));
    }
    Ok(Some(parent.get_ref().clone()))
}

/// The create route (its placeholder, if any, the parent's id) and the read route (a GET
/// with the resource's id in its path).
fn routes(
    ctx: &Ctx<'_>,
    raw: &RawKind,
    has_parent: bool,
) -> Result<(Route, Option<Route>), ScenarioError> {
    let create = route(ctx, &raw.create, has_parent.then_some("the parent's id"))?;
    if create.method == http::Method::GET || create.method == http::Method::HEAD {
        return Err(ctx.error(&raw.create, "a create route cannot be a GET or HEAD"));
    }
    let read = raw
        .read
        .as_ref()
        .map(|r| route(ctx, r, Some("the resource's id")))
        .transpose()?;
    if let (Some(route), Some(text)) = (&read, &raw.read) {
        if !route.has_id() {
            return Err(ctx
                .error(text, "the read route does not say where the id goes")
                .with_hint("e.g. read = \"GET /v1/orders/{id}\""));
        }
        if route.method != http::Method::GET {
            return Err(ctx.error(text, "a read route is a GET"));
        }
    }
    Ok((create, read))
}

/// The body template, a problem in it located at its line in the file.
fn body_template(
    ctx: &Ctx<'_>,
    index: usize,
    raw: &RawKind,
    name: &str,
) -> Result<BodyTemplate, ScenarioError> {
    let Some(table) = &raw.body else {
        return Ok(BodyTemplate::empty());
    };
    BodyTemplate::compile(table.get_ref()).map_err(|problem| {
        let mut path = vec![
            locate::PathStep::Key("kind".into()),
            locate::PathStep::Index(index),
            locate::PathStep::Key("body".into()),
        ];
        path.extend(problem.at.iter().map(|step| match step {
            Step::Key(key) => locate::PathStep::Key(key.clone()),
            Step::Index(i) => locate::PathStep::Index(*i),
        }));
        let span = locate::span_of(ctx.source, &path).unwrap_or_else(|| table.span());
        let error = ctx.at(span, format!("kind `{name}`, body: {}", problem.message));
        match problem.hint {
            Some(hint) => error.with_hint(hint),
            None => error,
        }
    })
}

/// `key_field`: where in the body the key goes, a place the body leaves free.
fn key_field(
    ctx: &Ctx<'_>,
    body: &BodyTemplate,
    text: &Spanned<String>,
) -> Result<Vec<Step>, ScenarioError> {
    let tokens = body::pointer_steps(text.get_ref()).map_err(|p| ctx.error(text, p))?;
    let steps = steps_in(body, tokens);
    if body.node(&steps).is_some() {
        return Err(ctx
            .error(
                text,
                format!("`key_field` {} is also in the body", text.get_ref()),
            )
            .with_hint("leave it out of `body`: shipsim puts the key there"));
    }
    if !body.placeable(&steps) {
        return Err(ctx.error(
            text,
            format!(
                "`key_field` {} goes through a value that is not an object",
                text.get_ref()
            ),
        ));
    }
    Ok(steps)
}

/// `vary`: the body field a reused key's second request changes, and how.
fn vary(
    ctx: &Ctx<'_>,
    body: &BodyTemplate,
    text: &Spanned<String>,
) -> Result<(Vec<Step>, VaryRule), ScenarioError> {
    let tokens = body::pointer_steps(text.get_ref()).map_err(|p| ctx.error(text, p))?;
    let steps = steps_in(body, tokens);
    let node = body.node(&steps).ok_or_else(|| {
        ctx.error(
            text,
            format!("`vary` {} names no field of the body", text.get_ref()),
        )
    })?;
    let rule = VaryRule::of(node)
        .map_err(|p| ctx.error(text, format!("`vary` {}: {p}", text.get_ref())))?;
    Ok((steps, rule))
}

/// Where a success response holds the id, parent, state and downstream reference.
fn pointers(ctx: &Ctx<'_>, response: &RawResponse) -> Result<Pointers, ScenarioError> {
    let optional =
        |text: &Option<Spanned<String>>| text.as_ref().map(|p| pointer(ctx, p)).transpose();
    Ok(Pointers {
        id: pointer(ctx, &response.id)?,
        parent: optional(&response.parent)?,
        state: optional(&response.state)?,
        downstream_ref: optional(&response.downstream_ref)?,
    })
}

/// The optional settings of `kind`: its key prefix, states and default weights.
fn options(ctx: &Ctx<'_>, raw: &RawKind, mut kind: Kind) -> Result<Kind, ScenarioError> {
    if let Some(prefix) = &raw.key_prefix {
        let text = prefix.get_ref();
        let valid = !text.is_empty()
            && text.len() <= 32
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(ctx.error(
                prefix,
                "`key_prefix` is 1 to 32 letters, digits, `-` or `_`",
            ));
        }
        kind = kind.key_prefix(text.clone());
    }
    if let Some(states) = &raw.states {
        if states.get_ref().len() > STATES_MAX {
            return Err(ctx.error(states, format!("a kind has at most {STATES_MAX} states")));
        }
        for state in states.get_ref() {
            let text = state.get_ref();
            if text.is_empty() || text.split('|').any(str::is_empty) {
                return Err(ctx
                    .error(state, "an empty state")
                    .with_hint("states of equal standing share an entry: \"paid|refused\""));
            }
        }
        kind = kind.states(states.get_ref().iter().map(|s| s.get_ref().clone()));
    }
    if let Some(weights) = &raw.weights {
        let [create_weight, read_weight] = *weights.get_ref();
        for weight in [create_weight, read_weight] {
            limits::check(
                ctx.file,
                ctx.source,
                "weights",
                &WEIGHT,
                "relative weights of [create, read] when a scenario has no `mix`",
                weight,
                weights.span(),
            )?;
        }
        kind = kind.weights(create_weight, read_weight);
    }
    Ok(kind)
}
