//! Target descriptions: any HTTP service, in any language, described in a TOML file that
//! `shipsim live --api FILE` reads (format reference: `examples/README.md`).
//!
//! A description says what shipsim needs to drive the service's API and judge it: its
//! resource kinds (create and read routes, where the idempotency key goes, a request body
//! template the workload fills from its seeded generator, where a response holds the id,
//! state, parent and downstream reference), how merchants authenticate (a header whose
//! secrets come from the environment or a file, never from the command line), how the API
//! marks replays, in-flight keys and reused keys, an optional readiness route, and the
//! simulated third parties it calls (`shipsim downstream` specs), whose ledgers are the
//! ground truth of exactly-once.
//!
//! [`Description`] is the validated file; [`DescribedApi`] implements
//! [`Api`](crate::target::Api) from it, so the workload, the settler, the retrying client and
//! the oracles run on it unchanged.
//!
//! Parsing follows the scenario files' pattern (STYLE.md 26): `raw.rs` mirrors the TOML
//! strictly with spans; validation here turns it into typed values, every problem a
//! [`ScenarioError`] with file, line, column, the offending line and a hint, numeric values
//! checked against their ranges where they are read.

mod api;
mod auth;
mod body;
mod downstream;
mod kind;
mod locate;
mod raw;
mod receiver;
mod route;

pub use api::DescribedApi;
pub use auth::{Auth, SECRETS_MAX, Secrets};
pub(crate) use auth::{printable_secret, secret_list};
pub use downstream::{DownstreamRef, load_spec, parse_spec};
pub use receiver::{ReceiverDescription, ReceiverSecret};
pub use route::Route;

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use toml::Spanned;

use self::auth::{SourceText, env_name, read_secrets, read_source};
use self::kind::{DescribedKind, kind};
use self::raw::{RawDescription, RawIdempotency, RawKind};
use self::route::route;
use crate::scenario::limits::{self, Limit};
use crate::scenario::{ScenarioError, Topology};
use crate::target::plan::KindTable;
use crate::target::{Caller, Conventions, Kind};

/// Largest description or spec file read (1 MiB): these are hand-written files.
const FILE_BYTES_MAX: u64 = 1 << 20;

/// A validated target description.
#[derive(Clone, Debug, PartialEq)]
pub struct Description {
    /// The target's name.
    pub name: String,
    /// The file it was read from.
    pub file: String,
    /// A route that answers 2xx when the target and its dependencies are ready.
    pub ready: Option<Route>,
    /// How merchants authenticate, if they do.
    pub auth: Option<Auth>,
    /// How the API marks idempotency outcomes.
    pub conventions: Conventions,
    /// The third parties it calls.
    pub downstreams: Vec<DownstreamRef>,
    /// The webhook receiver it runs, if the description has a `[receiver]`
    /// (`shipsim live-receiver`).
    pub receiver: Option<ReceiverDescription>,
    kinds: Vec<DescribedKind>,
}

impl Description {
    /// Reads and validates a description file, and reads its secrets.
    ///
    /// # Errors
    /// [`ScenarioError`] naming the file, and the line and column where there is one.
    pub fn load(path: &Path) -> Result<Description, ScenarioError> {
        let file = path.display().to_string();
        let source = read_text(path).map_err(|e| ScenarioError::whole_file(&file, e))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let stem = path.file_stem().map_or_else(
            || "target".to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        let ctx = Ctx {
            file: &file,
            source: &source,
        };
        let raw: RawDescription =
            toml::from_str(&source).map_err(|e| toml_error(&file, &source, &e))?;
        let mut description = validate(&ctx, &stem, base, &raw)?;
        if let (Some(auth), Some(raw_auth)) = (&mut description.auth, &raw.auth) {
            auth.secrets = read_secrets(&ctx, auth, raw_auth.get_ref())?;
        }
        if let (Some(described), Some(raw_receiver)) = (&mut description.receiver, &raw.receiver) {
            described.secret = receiver::read_secret(&ctx, described, raw_receiver.get_ref())?;
        }
        Ok(description)
    }

    /// Validates description text (file `file`, whose relative paths resolve against
    /// `base`). Reads the downstream spec files it names, but no secrets.
    ///
    /// # Errors
    /// [`ScenarioError`] with line and column.
    pub fn parse(file: &str, source: &str, base: &Path) -> Result<Description, ScenarioError> {
        let ctx = Ctx { file, source };
        let raw: RawDescription =
            toml::from_str(source).map_err(|e| toml_error(file, source, &e))?;
        validate(&ctx, "target", base, &raw)
    }

    /// The description written back as TOML, canonically: [`Description::parse`] reads it
    /// as the same description (relative paths resolve against the same directory).
    ///
    /// # Panics
    /// Never: every value written is a TOML value.
    #[must_use]
    pub fn to_toml(&self) -> String {
        use toml::Value as V;
        let text = |s: &str| V::String(s.to_string());
        let mut root = toml::Table::new();
        root.insert("name".into(), text(&self.name));
        if let Some(ready) = &self.ready {
            root.insert("ready".into(), text(&ready.label()));
        }
        if let Some(auth) = &self.auth {
            let mut table = toml::Table::new();
            table.insert("header".into(), text(auth.header.as_str()));
            table.insert("value".into(), text(&auth.value));
            if let Some(env) = &auth.secrets_env {
                table.insert("secrets_env".into(), text(env));
            }
            if let Some(file) = &auth.secrets_file_written {
                table.insert("secrets_file".into(), text(file));
            }
            root.insert("auth".into(), V::Table(table));
        }
        let conventions = &self.conventions;
        let mut idempotency = toml::Table::new();
        if let Some(header) = &conventions.replayed_header {
            idempotency.insert("replayed_header".into(), text(header));
        }
        idempotency.insert(
            "in_flight_status".into(),
            V::Integer(i64::from(conventions.in_flight_status)),
        );
        if let Some(status) = conventions.key_reused_status {
            idempotency.insert("key_reused_status".into(), V::Integer(i64::from(status)));
        }
        if let Some(code) = &conventions.key_reused_code {
            idempotency.insert("key_reused_code".into(), text(code));
        }
        root.insert("idempotency".into(), V::Table(idempotency));
        let kinds = self.kinds.iter().map(|k| V::Table(k.to_table())).collect();
        root.insert("kind".into(), V::Array(kinds));
        if let Some(receiver) = &self.receiver {
            root.insert("receiver".into(), V::Table(receiver.to_table()));
        }
        if !self.downstreams.is_empty() {
            let downstreams = self
                .downstreams
                .iter()
                .map(|d| {
                    let mut table = toml::Table::new();
                    table.insert("spec".into(), text(&d.spec_written));
                    if let Some(url) = &d.url {
                        table.insert("url".into(), text(url));
                    }
                    V::Table(table)
                })
                .collect();
            root.insert("downstream".into(), V::Array(downstreams));
        }
        toml::to_string(&root).expect("a table of TOML values serialises")
    }

    /// The kinds, in declaration order.
    #[must_use]
    pub fn kinds(&self) -> Vec<Kind> {
        self.kinds.iter().map(|k| k.kind.clone()).collect()
    }

    /// What scenario files may name for this target.
    #[must_use]
    pub fn topology(&self) -> Topology {
        if self.kinds.is_empty() {
            // A receiver-only description: no operations for a scenario to name.
            return Topology {
                operations: Vec::new(),
                routes: Vec::new(),
                hosts: self.downstreams.iter().map(|d| d.name.clone()).collect(),
            };
        }
        let table = KindTable::of(&DescribedApi(Arc::new(self.clone())))
            .expect("a validated description's kinds are valid");
        Topology {
            operations: table.names(),
            routes: table
                .endpoints()
                .iter()
                .map(|e| e.route().to_string())
                .collect(),
            hosts: self.downstreams.iter().map(|d| d.name.clone()).collect(),
        }
    }

    /// Merchant `index` with its secret, when the description's source holds one for it.
    ///
    /// # Errors
    /// A sentence naming the source when it holds fewer secrets.
    pub fn caller(&self, index: u32) -> Result<Caller, String> {
        let mut caller = Caller::new(index);
        match self.auth.as_ref().map(|a| &a.secrets) {
            None | Some(Secrets::None) => {}
            Some(Secrets::Unread) => {
                return Err("the description's secrets were not read".to_string());
            }
            Some(Secrets::Read { source, secrets }) => {
                let secret = secrets.get(index as usize).ok_or_else(|| {
                    format!(
                        "{source} holds {} secret(s), but merchant-{index} needs one: give one per merchant of the scenario, merchant-0 first",
                        secrets.len()
                    )
                })?;
                caller.api_key.clone_from(secret);
            }
        }
        Ok(caller)
    }
}

pub(crate) fn read_text(path: &Path) -> Result<String, String> {
    let metadata = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if metadata.len() > FILE_BYTES_MAX {
        return Err(format!(
            "is {} bytes; a description or spec file holds at most {FILE_BYTES_MAX}",
            metadata.len()
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))
}

/// A TOML syntax or type error, located, with the unknown-key hint scenario files give.
pub(crate) fn toml_error(file: &str, source: &str, error: &toml::de::Error) -> ScenarioError {
    let message = error.message().trim().to_string();
    let span = error.span().unwrap_or(0..0);
    let located = ScenarioError::at(file, source, span, message.clone());
    match crate::scenario::unknown_field_hint(&message) {
        Some(hint) => located.with_hint(hint),
        None => located,
    }
}

struct Ctx<'a> {
    file: &'a str,
    source: &'a str,
}

impl Ctx<'_> {
    fn at(&self, span: Range<usize>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::at(self.file, self.source, span, message)
    }

    fn error<T>(&self, value: &Spanned<T>, message: impl Into<String>) -> ScenarioError {
        self.at(value.span(), message)
    }

    fn int<T: limits::Number>(
        &self,
        key: &str,
        limit: &Limit,
        note: &str,
        value: &Spanned<T>,
    ) -> Result<T, ScenarioError> {
        limits::check(
            self.file,
            self.source,
            key,
            limit,
            note,
            *value.get_ref(),
            value.span(),
        )
    }
}

/// A status an API answers an idempotency outcome with: a 4xx.
const STATUS_4XX: Limit = Limit::int(400, 499);

/// The description `raw` holds, validated; `default_name` names it when it does not.
fn validate(
    ctx: &Ctx<'_>,
    default_name: &str,
    base: &Path,
    raw: &RawDescription,
) -> Result<Description, ScenarioError> {
    let name = match &raw.name {
        Some(name) => description_name(ctx, name)?,
        None => default_name.to_string(),
    };
    let ready = raw
        .ready
        .as_ref()
        .map(|text| ready(ctx, text))
        .transpose()?;
    let auth = raw
        .auth
        .as_ref()
        .map(|a| auth::auth(ctx, base, a))
        .transpose()?;
    let conventions = conventions(ctx, raw.idempotency.as_ref())?;
    let receiver = raw
        .receiver
        .as_ref()
        .map(|r| receiver::receiver(ctx, base, r))
        .transpose()?;
    if raw.kind.is_empty() && receiver.is_none() {
        return Err(ScenarioError::at(ctx.file, ctx.source, 0..0, "the description has no `[[kind]]` and no `[receiver]`")
            .with_hint("describe at least one resource kind (name, create route, key_header or key_field, response.id), or a webhook receiver"));
    }
    let kinds = kinds(ctx, &raw.kind)?;
    let downstreams = downstream::downstreams(ctx, base, &raw.downstream)?;
    Ok(Description {
        name,
        file: ctx.file.to_string(),
        ready,
        auth,
        conventions,
        downstreams,
        receiver,
        kinds,
    })
}

/// `name`: a simple name.
fn description_name(ctx: &Ctx<'_>, name: &Spanned<String>) -> Result<String, ScenarioError> {
    let text = name.get_ref();
    if !is_host_like(text) {
        return Err(ctx
            .error(name, format!("`name` \"{text}\" is not a simple name"))
            .with_hint("letters, digits, `-` and `_`, 1 to 64 characters"));
    }
    Ok(text.clone())
}

/// `ready`: a GET or HEAD route without placeholders.
fn ready(ctx: &Ctx<'_>, text: &Spanned<String>) -> Result<Route, ScenarioError> {
    let route = route(ctx, text, None)?;
    if route.method != http::Method::GET && route.method != http::Method::HEAD {
        return Err(ctx
            .error(text, "the readiness route must be a GET or HEAD")
            .with_hint("e.g. ready = \"GET /healthz\""));
    }
    Ok(route)
}

/// Every `[[kind]]`, in order, each validated against those above it.
fn kinds(ctx: &Ctx<'_>, raw: &[Spanned<RawKind>]) -> Result<Vec<DescribedKind>, ScenarioError> {
    if raw.len() > crate::target::plan::KINDS_MAX {
        return Err(ctx.error(
            &raw[crate::target::plan::KINDS_MAX],
            format!(
                "a description has at most {} kinds",
                crate::target::plan::KINDS_MAX
            ),
        ));
    }
    let mut kinds: Vec<DescribedKind> = Vec::with_capacity(raw.len());
    for (index, entry) in raw.iter().enumerate() {
        let kind = kind(ctx, index, entry, &kinds)?;
        kinds.push(kind);
    }
    Ok(kinds)
}

fn is_host_like(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn header_name(ctx: &Ctx<'_>, text: &Spanned<String>) -> Result<http::HeaderName, ScenarioError> {
    http::HeaderName::from_bytes(text.get_ref().as_bytes()).map_err(|_| {
        ctx.error(
            text,
            format!("`{}` is not an HTTP header name", text.get_ref()),
        )
        .with_hint("letters, digits and `-`, like `Idempotency-Key`")
    })
}

fn conventions(
    ctx: &Ctx<'_>,
    raw: Option<&Spanned<RawIdempotency>>,
) -> Result<Conventions, ScenarioError> {
    let Some(table) = raw else {
        return Ok(Conventions::default());
    };
    let raw = table.get_ref();
    let replayed_header = raw
        .replayed_header
        .as_ref()
        .map(|h| header_name(ctx, h).map(|name| name.as_str().to_string()))
        .transpose()?;
    let status_note = "an HTTP status, 4xx";
    let in_flight_status = raw
        .in_flight_status
        .as_ref()
        .map(|s| ctx.int("in_flight_status", &STATUS_4XX, status_note, s))
        .transpose()?
        .unwrap_or(409);
    let key_reused_status = raw
        .key_reused_status
        .as_ref()
        .map(|s| ctx.int("key_reused_status", &STATUS_4XX, status_note, s))
        .transpose()?;
    let key_reused_code = match &raw.key_reused_code {
        Some(code) if code.get_ref().is_empty() || code.get_ref().len() > 64 => {
            return Err(ctx.error(code, "`key_reused_code` is 1 to 64 characters"));
        }
        Some(code) => Some(code.get_ref().clone()),
        None => None,
    };
    if key_reused_status.is_none() && key_reused_code.is_none() {
        return Err(ctx
            .error(table, "`[idempotency]` says nothing about a key reused with another request")
            .with_hint("key_reused_status = 422, or key_reused_code = \"...\" (the `error.code` of an error body)"));
    }
    if key_reused_status == Some(in_flight_status) {
        return Err(ctx
            .error(table, format!("one status, {in_flight_status}, cannot mean both a key in flight and a key reused"))
            .with_hint("the IETF draft uses 409 for in flight and 422 for reused"));
    }
    Ok(Conventions {
        replayed_header,
        in_flight_status,
        key_reused_code,
        key_reused_status,
        key_len_max: None,
    })
}

fn pointer(ctx: &Ctx<'_>, text: &Spanned<String>) -> Result<String, ScenarioError> {
    body::pointer_steps(text.get_ref())
        .map(|_| text.get_ref().clone())
        .map_err(|problem| ctx.error(text, problem))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn examples() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
    }

    pub(super) const SHOP: &str = r#"
name = "shop"
ready = "GET /healthz"

[auth]
header = "Authorization"
value = "Bearer {secret}"
secrets_env = "SHIPSIM_TEST_UNSET_VARIABLE"

[idempotency]
replayed_header = "Idempotent-Replayed"
in_flight_status = 409
key_reused_status = 422

[[kind]]
name = "customer"
create = "POST /api/customers"
read = "GET /api/customers/{id}"
key_field = "/request/key"
response = { id = "/customer/id" }
body = { name = "Ada {{int 1..=9}}" }

[[kind]]
name = "parcel"
parent = "customer"
create = "POST /api/customers/{customer}/parcels"
read = "GET /api/parcels/{id}"
key_header = "Idempotency-Key"
spends = true
vary = "/weight_g"
states = ["pending", "labelled|refused"]
response = { id = "/parcel/id", parent = "/parcel/customer", state = "/parcel/status", downstream_ref = "/parcel/label/id" }
body = { weight_g = "{{int 100..=20000}}", owner = "{{caller}}" }
"#;

    pub(super) fn parse(text: &str) -> Result<Description, ScenarioError> {
        Description::parse("shop.toml", text, Path::new("."))
    }

    #[test]
    fn mistakes_are_refused_where_they_are_written() {
        // Proves each kind of mistake in a description is a located error naming the line
        // it is on, with the message a user needs.
        let cases: &[(&str, &str, &str)] = &[
            (
                "create = \"POST /api/customers\"",
                "create = \"FETCH /api/customers\"",
                "unknown method `FETCH`",
            ),
            (
                "read = \"GET /api/customers/{id}\"",
                "read = \"GET /api/customers\"",
                "does not say where the id goes",
            ),
            (
                "key_field = \"/request/key\"",
                "key_field = \"request/key\"",
                "starts with `/`",
            ),
            (
                "in_flight_status = 409",
                "in_flight_status = 200",
                "outside 400..=499",
            ),
            (
                "key_reused_status = 422",
                "key_reused_status = 409",
                "cannot mean both",
            ),
            (
                "vary = \"/weight_g\"",
                "vary = \"/weight\"",
                "names no field of the body",
            ),
            (
                "parent = \"customer\"",
                "parent = \"order\"",
                "not a kind declared above",
            ),
            (
                "\"{{int 100..=20000}}\"",
                "\"{{int 100..20000}}\"",
                "inclusive range",
            ),
            (
                "value = \"Bearer {secret}\"",
                "value = \"Bearer {token}\"",
                "unknown placeholder `{token}`",
            ),
            (
                "header = \"Authorization\"",
                "header = \"Author ization\"",
                "not an HTTP header name",
            ),
            (
                "name = \"parcel\"",
                "name = \"par-cel\"",
                "letters, digits and `_`",
            ),
            (
                "states = [\"pending\", \"labelled|refused\"]",
                "states = [\"pending\", \"labelled|\"]",
                "an empty state",
            ),
            (
                "ready = \"GET /healthz\"",
                "ready = \"POST /healthz\"",
                "GET or HEAD",
            ),
            (
                "spends = true",
                "spends = true\ncolour = 1",
                "unknown field `colour`",
            ),
        ];
        for (from, to, expected) in cases {
            assert!(SHOP.contains(from), "{from}");
            let text = SHOP.replacen(from, to, 1);
            let error = parse(&text).unwrap_err();
            let line = error.line.expect("located");
            let source_line = text.lines().nth(line - 1).unwrap();
            let rendered = error.to_string();
            assert!(rendered.contains(expected), "{to}: {rendered}");
            assert!(
                rendered.starts_with(&format!("shop.toml:{line}:")),
                "{rendered}"
            );
            assert_eq!(error.snippet.as_deref(), Some(source_line), "{rendered}");
        }
    }

    #[test]
    fn the_shipped_descriptions_are_valid() {
        // Proves the reference service's description and its carrier spec parse, and that
        // the reference's operations keep their names and routes.
        let description = Description::load(&examples().join("reference/target.toml")).unwrap();
        let topology = description.topology();
        let reference = Topology::reference();
        assert_eq!(topology.operations, reference.operations);
        assert_eq!(topology.routes, reference.routes);
        assert_eq!(topology.hosts, ["carrier"]);
        let spec = load_spec(&examples().join("reference/carrier.toml")).unwrap();
        assert_eq!(spec.name, "carrier");
    }
}
