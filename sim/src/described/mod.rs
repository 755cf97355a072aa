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
//! [`Description`] is the validated file; [`DescribedApi`] implements [`Api`] from it, so the
//! workload, the settler, the retrying client and the oracles run on it unchanged.
//!
//! Parsing follows the scenario files' pattern (STYLE.md 26): `raw.rs` mirrors the TOML
//! strictly with spans; validation here turns it into typed values, every problem a
//! [`ScenarioError`] with file, line, column, the offending line and a hint, numeric values
//! checked against their ranges where they are read.

mod body;
mod locate;
mod raw;
mod receiver;

pub use receiver::{ReceiverDescription, ReceiverSecret};

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use shipsim_system::downstream::DownstreamSpec;
use shipsim_system::transport::{HttpRequest, HttpResponse};
use toml::Spanned;

use self::body::{BodyTemplate, Step, VaryRule};
use self::raw::{RawAuth, RawDescription, RawDownstream, RawIdempotency, RawKind};
use crate::scenario::limits::{self, Limit};
use crate::scenario::{ScenarioError, Topology};
use crate::target::plan::KindTable;
use crate::target::{
    Api, ApiError, Caller, Conventions, CreateCall, Draw, KeyPlacement, Kind, ReadCall, Seen,
};

/// Most secrets an `[auth]` source may hold (one per merchant; scenarios have at most this
/// many callers).
pub const SECRETS_MAX: usize = crate::scenario::CLIENTS_MAX as usize;
/// Longest secret.
const SECRET_LEN_MAX: usize = 256;
/// Most states one kind declares.
const STATES_MAX: usize = 32;
/// Longest route (method, space, path).
const ROUTE_LEN_MAX: usize = 512;
/// Most downstreams one description names.
const DOWNSTREAMS_MAX: usize = 16;
/// Largest description or spec file read (1 MiB): these are hand-written files.
const FILE_BYTES_MAX: u64 = 1 << 20;

/// A route of the target: method and path template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// `POST`.
    pub method: http::Method,
    /// The path, with its placeholders as written.
    pub path: String,
    pieces: Vec<PathPiece>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PathPiece {
    Text(String),
    /// `{parent}` or `{id}`.
    Id,
}

impl Route {
    /// `METHOD /path` as written.
    #[must_use]
    pub fn label(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The path with `id` (percent-encoded) in its placeholder.
    fn fill(&self, id: Option<&str>) -> String {
        let mut path = String::with_capacity(self.path.len() + 16);
        for piece in &self.pieces {
            match piece {
                PathPiece::Text(text) => path.push_str(text),
                PathPiece::Id => path.push_str(&percent_encode(id.unwrap_or_default())),
            }
        }
        path
    }

    fn has_id(&self) -> bool {
        self.pieces.contains(&PathPiece::Id)
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Where the secrets of `[auth]` come from.
#[derive(Clone, PartialEq, Eq)]
pub enum Secrets {
    /// No secrets: `value` names the caller by its index only (a test deployment's keys).
    None,
    /// Read: one per merchant, merchant-0 first.
    Read {
        /// Where they came from, for messages (`environment variable SHOP_API_KEYS`).
        source: String,
        /// The secrets.
        secrets: Vec<String>,
    },
    /// Named but not read yet ([`Description::parse`] reads nothing).
    Unread,
}

// Secrets never reach logs or panic messages.
impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secrets::None => f.write_str("None"),
            Secrets::Unread => f.write_str("Unread"),
            Secrets::Read { source, secrets } => f
                .debug_struct("Read")
                .field("source", source)
                .field("count", &secrets.len())
                .finish(),
        }
    }
}

/// `[auth]`: how a merchant authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    /// The header (`Authorization`).
    pub header: http::HeaderName,
    /// Its value, with `{secret}` and `{caller}` (the merchant's index) to fill.
    pub value: String,
    /// `secrets_env`, if given.
    pub secrets_env: Option<String>,
    /// `secrets_file`, resolved against the description's directory, if given.
    pub secrets_file: Option<PathBuf>,
    /// The secrets.
    pub secrets: Secrets,
    /// `secrets_file` as written.
    secrets_file_written: Option<String>,
}

impl Auth {
    fn header_value(&self, caller: &Caller) -> String {
        self.value
            .replace("{secret}", &caller.api_key)
            .replace("{caller}", &caller.index.to_string())
    }
}

/// A downstream the target calls: a `shipsim downstream` spec, and where it is served.
#[derive(Clone, Debug, PartialEq)]
pub struct DownstreamRef {
    /// Its host name (the spec's name): scenario faults name it (`target = "carrier"`).
    pub name: String,
    /// The spec.
    pub spec: DownstreamSpec,
    /// The spec file, as resolved.
    pub spec_file: PathBuf,
    /// The spec file as written.
    spec_written: String,
    /// Where it is served (or a fault proxy in front of it); the command line may say
    /// instead.
    pub url: Option<String>,
}

/// Pointers into a success response.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pointers {
    id: String,
    parent: Option<String>,
    state: Option<String>,
    downstream_ref: Option<String>,
}

/// One kind, validated.
#[derive(Clone, Debug, PartialEq)]
struct DescribedKind {
    kind: Kind,
    create: Route,
    read: Option<Route>,
    key_header: Option<http::HeaderName>,
    key_field: Option<Vec<Step>>,
    body: BodyTemplate,
    vary: Option<(Vec<Step>, VaryRule)>,
    response: Pointers,
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
    fn to_table(&self) -> toml::Table {
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

    /// One create and one read of every kind, as shipsim would send them for `seed` (drawn
    /// bodies, key in each place the kind takes it, a reused key's varied body), checked:
    /// every request is valid HTTP with a JSON body, a varied body differs from the drawn
    /// one, and a response holding the kind's pointers reads back as what it holds. Secrets
    /// are shown as `<secret>`. `shipsim check --api` prints them.
    ///
    /// # Errors
    /// A sentence naming the kind when a request cannot be built or does not read back.
    pub fn samples(&self, seed: u64) -> Result<Vec<String>, String> {
        use rand::SeedableRng as _;
        let api = DescribedApi::new(self.clone());
        let caller = Caller {
            api_key: "<secret>".to_string(),
            ..Caller::new(0)
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut lines = Vec::new();
        for described in &self.kinds {
            let kind = &described.kind;
            let name = kind.name();
            let body = api.body(
                kind,
                &mut Draw {
                    rng: &mut rng,
                    refuse_probability: 0.5,
                    sequence: 0,
                    slot: 0,
                },
            );
            if kind.is_spending() && api.vary(kind, &body) == body {
                return Err(format!(
                    "kind `{name}`: `vary` left the body {body} unchanged"
                ));
            }
            let parent = kind.parent_kind().map(|p| format!("{p}_1"));
            let key = format!("{}-0-0", kind.key_prefix_or_name());
            for placement in [KeyPlacement::Header, KeyPlacement::Body] {
                let request = api
                    .create(
                        kind,
                        &CreateCall {
                            caller: &caller,
                            key: &key,
                            placement,
                            parent: parent.as_deref(),
                            body: &body,
                        },
                    )
                    .map_err(|e| format!("kind `{name}`: the create cannot be built: {e}"))?;
                serde_json::from_slice::<Value>(request.body())
                    .map_err(|e| format!("kind `{name}`: the create's body is not JSON: {e}"))?;
                if placement == KeyPlacement::Header || kind.accepts_key_in_body() {
                    lines.push(format!("create_{name}: {}", render_request(&request)));
                }
            }
            if let Some(_read) = &described.read {
                let request = api
                    .read(
                        kind,
                        &ReadCall {
                            caller: &caller,
                            id: &format!("{name}_1"),
                        },
                    )
                    .map_err(|e| format!("kind `{name}`: the read cannot be built: {e}"))?;
                lines.push(format!("get_{name}: {}", render_request(&request)));
            }
            let pointers = &described.response;
            let mut document = Value::Null;
            let mut expected = Seen {
                id: format!("{name}_1"),
                ..Seen::default()
            };
            let mut placed = |pointer: &str, value: &str| -> bool {
                let steps: Vec<Step> = body::pointer_steps(pointer)
                    .unwrap_or_default()
                    .into_iter()
                    .map(Step::Key)
                    .collect();
                if document.pointer(pointer).is_some() {
                    return false;
                }
                if document.is_null() {
                    document = Value::Object(serde_json::Map::new());
                }
                body::place(&mut document, &steps, Value::String(value.to_string())).is_ok()
                    && document.pointer(pointer) == Some(&Value::String(value.to_string()))
            };
            if !placed(&pointers.id, &expected.id) {
                continue;
            }
            if let Some(p) = &pointers.parent
                && placed(p, "parent_1")
            {
                expected.parent = Some("parent_1".into());
            }
            if let Some(p) = &pointers.state
                && placed(p, "state_1")
            {
                expected.state = Some("state_1".into());
            }
            if let Some(p) = &pointers.downstream_ref
                && placed(p, "ref_1")
            {
                expected.downstream_ref = Some("ref_1".into());
            }
            let response = http::Response::builder()
                .status(201)
                .body(Bytes::from(document.to_string()))
                .map_err(|e| format!("kind `{name}`: {e}"))?;
            let seen = api
                .parse(kind, &response)
                .map_err(|e| format!("kind `{name}`: {e}"))?;
            if seen != expected {
                return Err(format!(
                    "kind `{name}`: the response {document} reads as {seen:?}, not {expected:?}"
                ));
            }
        }
        Ok(lines)
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

/// Secrets as a source holds them (an environment variable's value or a file's text): lines
/// that start with `#` are comments, the rest hold secrets separated by commas, one per
/// merchant, merchant-0 first; each is 1 to 256 printable ASCII characters without spaces.
/// Live mode's credentials ([`crate::live::credentials`]) read theirs with it too.
///
/// # Errors
/// A sentence naming `source` (never a secret): none, too many, or one not printable.
pub(crate) fn secret_list(source: &str, text: &str) -> Result<Vec<String>, String> {
    let secrets: Vec<String> = text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if secrets.is_empty() {
        return Err(format!("{source} holds no secret"));
    }
    if secrets.len() > SECRETS_MAX {
        return Err(format!("{source} holds more than {SECRETS_MAX} secrets"));
    }
    for (index, secret) in secrets.iter().enumerate() {
        if !printable_secret(secret) {
            // The secret itself is never printed.
            return Err(format!(
                "{source}: secret number {} is not 1 to {SECRET_LEN_MAX} printable ASCII characters without spaces",
                index + 1
            ));
        }
    }
    Ok(secrets)
}

/// Whether `secret` is 1 to [`SECRET_LEN_MAX`] printable ASCII characters without spaces.
pub(crate) fn printable_secret(secret: &str) -> bool {
    !secret.is_empty()
        && secret.len() <= SECRET_LEN_MAX
        && secret.bytes().all(|b| b.is_ascii_graphic())
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
/// Mix weights, as scenario files take them.
const WEIGHT: Limit = Limit::int(0, limits::MIX_WEIGHT_MAX as i128);

fn validate(
    ctx: &Ctx<'_>,
    default_name: &str,
    base: &Path,
    raw: &RawDescription,
) -> Result<Description, ScenarioError> {
    let name = match &raw.name {
        Some(name) => {
            let text = name.get_ref();
            if !is_host_like(text) {
                return Err(ctx
                    .error(name, format!("`name` \"{text}\" is not a simple name"))
                    .with_hint("letters, digits, `-` and `_`, 1 to 64 characters"));
            }
            text.clone()
        }
        None => default_name.to_string(),
    };
    let ready = raw
        .ready
        .as_ref()
        .map(|text| {
            let route = route(ctx, text, None)?;
            if route.method != http::Method::GET && route.method != http::Method::HEAD {
                return Err(ctx
                    .error(text, "the readiness route must be a GET or HEAD")
                    .with_hint("e.g. ready = \"GET /healthz\""));
            }
            Ok(route)
        })
        .transpose()?;
    let auth = raw.auth.as_ref().map(|a| auth(ctx, base, a)).transpose()?;
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
    if raw.kind.len() > crate::target::plan::KINDS_MAX {
        return Err(ctx.error(
            &raw.kind[crate::target::plan::KINDS_MAX],
            format!(
                "a description has at most {} kinds",
                crate::target::plan::KINDS_MAX
            ),
        ));
    }
    let mut kinds: Vec<DescribedKind> = Vec::with_capacity(raw.kind.len());
    for (index, entry) in raw.kind.iter().enumerate() {
        let kind = kind(ctx, index, entry, &kinds)?;
        kinds.push(kind);
    }
    if raw.downstream.len() > DOWNSTREAMS_MAX {
        return Err(ctx.error(
            &raw.downstream[DOWNSTREAMS_MAX],
            format!("a description names at most {DOWNSTREAMS_MAX} downstreams"),
        ));
    }
    let mut downstreams: Vec<DownstreamRef> = Vec::with_capacity(raw.downstream.len());
    for entry in &raw.downstream {
        let downstream = downstream(ctx, base, entry.get_ref())?;
        if downstreams.iter().any(|d| d.name == downstream.name) {
            return Err(ctx.error(
                &entry.get_ref().spec,
                format!("two downstreams are named `{}`", downstream.name),
            ));
        }
        downstreams.push(downstream);
    }
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

fn is_host_like(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Parses `METHOD /path`. With `placeholder`, the path may hold one `{name}` standing for
/// that id (the parent's in a create, the resource's own in a read); without, none.
fn route(
    ctx: &Ctx<'_>,
    text: &Spanned<String>,
    placeholder: Option<&str>,
) -> Result<Route, ScenarioError> {
    let value = text.get_ref();
    let usage = "write the method and the path: \"POST /v1/orders\"";
    if value.len() > ROUTE_LEN_MAX {
        return Err(ctx.error(text, format!("a route is at most {ROUTE_LEN_MAX} bytes")));
    }
    let Some((method, path)) = value.split_once(' ') else {
        return Err(ctx
            .error(text, format!("`{value}` is not a route"))
            .with_hint(usage));
    };
    let method = match method {
        "GET" => http::Method::GET,
        "HEAD" => http::Method::HEAD,
        "POST" => http::Method::POST,
        "PUT" => http::Method::PUT,
        "PATCH" => http::Method::PATCH,
        "DELETE" => http::Method::DELETE,
        other => {
            return Err(ctx
                .error(text, format!("unknown method `{other}`"))
                .with_hint("GET, HEAD, POST, PUT, PATCH or DELETE, in capitals"));
        }
    };
    let path = path.trim();
    if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ctx
            .error(
                text,
                format!("`{path}` is not a path: it starts with `/` and has no spaces"),
            )
            .with_hint(usage));
    }
    let mut pieces = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(PathPiece::Text(rest[..open].to_string()));
        }
        let Some(close) = rest[open..].find('}') else {
            return Err(ctx.error(text, format!("`{{` without `}}` in `{path}`")));
        };
        let name = &rest[open + 1..open + close];
        let Some(meaning) = placeholder else {
            return Err(ctx
                .error(text, format!("`{path}` holds a placeholder `{{{name}}}`"))
                .with_hint(
                    "this route takes no id: a kind without a parent is created at a fixed path",
                ));
        };
        let named = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !named {
            return Err(ctx
                .error(
                    text,
                    format!("`{{{name}}}` in `{path}` is not a placeholder name"),
                )
                .with_hint(format!(
                    "one placeholder, like `{{id}}`, stands for {meaning}"
                )));
        }
        if pieces.contains(&PathPiece::Id) {
            return Err(ctx
                .error(text, format!("`{path}` holds two placeholders"))
                .with_hint(format!("one placeholder stands for {meaning}")));
        }
        pieces.push(PathPiece::Id);
        rest = &rest[open + close + 1..];
    }
    if rest.contains('}') {
        return Err(ctx.error(text, format!("`}}` without `{{` in `{path}`")));
    }
    if !rest.is_empty() {
        pieces.push(PathPiece::Text(rest.to_string()));
    }
    let check = path.replace(['{', '}'], "");
    if check.parse::<http::uri::PathAndQuery>().is_err() {
        return Err(ctx.error(text, format!("`{path}` is not a valid request path")));
    }
    Ok(Route {
        method,
        path: path.to_string(),
        pieces,
    })
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

fn auth(ctx: &Ctx<'_>, base: &Path, table: &Spanned<RawAuth>) -> Result<Auth, ScenarioError> {
    let raw = table.get_ref();
    let header = header_name(ctx, &raw.header)?;
    let value = raw
        .value
        .as_ref()
        .map_or_else(|| "{secret}".to_string(), |v| v.get_ref().clone());
    let value_span = raw.value.as_ref().map_or(raw.header.span(), Spanned::span);
    let mut rest = value.as_str();
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err(ctx.at(value_span, "`{` without `}` in `value`"));
        };
        let name = &rest[open + 1..open + close];
        if name != "secret" && name != "caller" {
            return Err(ctx
                .at(
                    value_span.clone(),
                    format!("unknown placeholder `{{{name}}}` in `value`"),
                )
                .with_hint(
                    "`{secret}` (the merchant's secret) and `{caller}` (its index: 0, 1, ...)",
                ));
        }
        rest = &rest[open + close + 1..];
    }
    let uses_secret = value.contains("{secret}");
    let probe = value.replace("{secret}", "s").replace("{caller}", "0");
    if http::HeaderValue::from_str(&probe).is_err() {
        return Err(ctx.at(value_span, "`value` is not a valid header value"));
    }
    let has_source = raw.secrets_env.is_some() || raw.secrets_file.is_some();
    if uses_secret && !has_source {
        return Err(ctx
            .error(table, "`value` uses `{secret}`, but `[auth]` says nowhere to read secrets from")
            .with_hint("secrets_env = \"MY_API_KEYS\" (comma-separated, merchant-0 first) or secrets_file = \"keys.txt\" (one per line); never on the command line"));
    }
    if !uses_secret && has_source {
        return Err(ctx
            .at(
                value_span,
                "`[auth]` names secrets, but `value` does not use `{secret}`",
            )
            .with_hint(
                "value = \"Bearer {secret}\", or leave `value` out to send the secret as it is",
            ));
    }
    if let Some(env) = &raw.secrets_env {
        env_name(ctx, env)?;
    }
    let secrets_file = raw.secrets_file.as_ref().map(|f| base.join(f.get_ref()));
    Ok(Auth {
        header,
        value,
        secrets_env: raw.secrets_env.as_ref().map(|e| e.get_ref().clone()),
        secrets_file,
        secrets: if has_source {
            Secrets::Unread
        } else {
            Secrets::None
        },
        secrets_file_written: raw.secrets_file.as_ref().map(|f| f.get_ref().clone()),
    })
}

/// The text of a secret source, where it came from (for messages) and where it is named.
struct SourceText {
    source: String,
    text: String,
    span: Range<usize>,
}

/// Reads a secret source: the environment variable `env` when it is set, else `file`
/// (named at `file_span`, called `noun` in messages); `None` when the variable is unset
/// and there is no file.
fn read_source(
    ctx: &Ctx<'_>,
    env: Option<&Spanned<String>>,
    file: Option<&Path>,
    file_span: Range<usize>,
    noun: &str,
) -> Result<Option<SourceText>, ScenarioError> {
    if let Some(env) = env
        && std::env::var_os(env.get_ref()).is_some()
    {
        let text = std::env::var(env.get_ref()).map_err(|_| {
            ctx.error(
                env,
                format!("environment variable {} is not UTF-8", env.get_ref()),
            )
        })?;
        return Ok(Some(SourceText {
            source: format!("environment variable {}", env.get_ref()),
            text,
            span: env.span(),
        }));
    }
    let Some(path) = file else {
        return Ok(None);
    };
    let text = read_text(path)
        .map_err(|e| ctx.at(file_span.clone(), format!("{noun} {}: {e}", path.display())))?;
    Ok(Some(SourceText {
        source: format!("{noun} {}", path.display()),
        text,
        span: file_span,
    }))
}

/// Checks that `env` names an environment variable.
fn env_name(ctx: &Ctx<'_>, env: &Spanned<String>) -> Result<(), ScenarioError> {
    let name = env.get_ref();
    let valid = !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(ctx
            .error(env, format!("`{name}` is not an environment variable name"))
            .with_hint("letters, digits and `_`, not starting with a digit"))
    }
}

/// Reads the secrets of `[auth]`: the environment variable when it is set, else the file.
fn read_secrets(ctx: &Ctx<'_>, auth: &Auth, raw: &RawAuth) -> Result<Secrets, ScenarioError> {
    let file_span = raw.secrets_file.as_ref().map_or(0..0, Spanned::span);
    let read = read_source(
        ctx,
        raw.secrets_env.as_ref(),
        auth.secrets_file.as_deref(),
        file_span,
        "secrets file",
    )?;
    let SourceText { source, text, span } = match (read, &raw.secrets_env) {
        (Some(read), _) => read,
        (None, Some(env)) => {
            return Err(ctx
                .error(env, format!("environment variable {} is not set", env.get_ref()))
                .with_hint(format!(
                    "export {}=SECRET_0,SECRET_1 (one per merchant, merchant-0 first), or add secrets_file",
                    env.get_ref()
                )));
        }
        (None, None) => return Ok(Secrets::None),
    };
    let secrets = secret_list(&source, &text).map_err(|e| ctx.at(span.clone(), e))?;
    for (index, secret) in secrets.iter().enumerate() {
        let value = auth.header_value(&Caller {
            api_key: secret.clone(),
            ..Caller::new(0)
        });
        if http::HeaderValue::from_str(&value).is_err() {
            // The secret itself is never printed.
            return Err(ctx.at(
                span,
                format!(
                    "{source}: secret number {} does not make a valid header value",
                    index + 1
                ),
            ));
        }
    }
    Ok(Secrets::Read { source, secrets })
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

fn kind(
    ctx: &Ctx<'_>,
    index: usize,
    entry: &Spanned<RawKind>,
    before: &[DescribedKind],
) -> Result<DescribedKind, ScenarioError> {
    let raw = entry.get_ref();
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
    let parent = match &raw.parent {
        None => None,
        Some(parent) => {
            if !before.iter().any(|k| k.kind.name() == parent.get_ref()) {
                return Err(ctx
                    .error(
                        parent,
                        format!("parent `{}` is not a kind declared above", parent.get_ref()),
                    )
                    .with_hint("declare a parent kind before its children"));
            }
            Some(parent.get_ref().clone())
        }
    };
    let create = route(
        ctx,
        &raw.create,
        parent.is_some().then_some("the parent's id"),
    )?;
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
    let body = match &raw.body {
        None => BodyTemplate::empty(),
        Some(table) => BodyTemplate::compile(table.get_ref()).map_err(|problem| {
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
        })?,
    };
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
    let key_field = match &raw.key_field {
        None => None,
        Some(text) => {
            let tokens = body::pointer_steps(text.get_ref()).map_err(|p| ctx.error(text, p))?;
            let steps = steps_in(&body, tokens);
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
            Some(steps)
        }
    };
    if key_header.is_none() && key_field.is_none() {
        return Err(ctx
            .error(entry, format!("kind `{name}` does not say where the idempotency key goes"))
            .with_hint("key_header = \"Idempotency-Key\", key_field = \"/idempotency_key\" (a JSON pointer into the body), or both"));
    }
    let spends = raw.spends.as_ref().is_some_and(|s| *s.get_ref());
    let vary = match &raw.vary {
        Some(text) => {
            let tokens = body::pointer_steps(text.get_ref()).map_err(|p| ctx.error(text, p))?;
            let steps = steps_in(&body, tokens);
            let node = body.node(&steps).ok_or_else(|| {
                ctx.error(
                    text,
                    format!("`vary` {} names no field of the body", text.get_ref()),
                )
            })?;
            let rule = VaryRule::of(node)
                .map_err(|p| ctx.error(text, format!("`vary` {}: {p}", text.get_ref())))?;
            Some((steps, rule))
        }
        None if spends => {
            return Err(ctx
                .error(entry, format!("kind `{name}` spends, but does not say which body field `vary` changes"))
                .with_hint("the workload reuses a key with another body to check it is refused: vary = \"/amount\""));
        }
        None => None,
    };
    let response = raw.response.get_ref();
    let pointers = Pointers {
        id: pointer(ctx, &response.id)?,
        parent: response
            .parent
            .as_ref()
            .map(|p| pointer(ctx, p))
            .transpose()?,
        state: response
            .state
            .as_ref()
            .map(|p| pointer(ctx, p))
            .transpose()?,
        downstream_ref: response
            .downstream_ref
            .as_ref()
            .map(|p| pointer(ctx, p))
            .transpose()?,
    };
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
    Ok(DescribedKind {
        kind,
        create,
        read,
        key_header,
        key_field,
        body,
        vary,
        response: pointers,
        written: WrittenKind {
            key_field: raw.key_field.as_ref().map(|f| f.get_ref().clone()),
            key_prefix: raw.key_prefix.as_ref().map(|p| p.get_ref().clone()),
            vary: raw.vary.as_ref().map(|v| v.get_ref().clone()),
            body: raw.body.as_ref().map(|b| b.get_ref().clone()),
        },
    })
}

fn downstream(
    ctx: &Ctx<'_>,
    base: &Path,
    raw: &RawDownstream,
) -> Result<DownstreamRef, ScenarioError> {
    let spec_file = base.join(raw.spec.get_ref());
    let spec = load_spec(&spec_file).map_err(|error| {
        ctx.error(
            &raw.spec,
            format!("downstream spec {} cannot be used", spec_file.display()),
        )
        .with_hint(error.to_string())
    })?;
    let name = spec.name.clone();
    let host_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with("client")
        && ![
            crate::run::hosts::SERVICE,
            crate::run::hosts::SETTLER,
            crate::run::hosts::DOWNSTREAMS,
        ]
        .contains(&name.as_str());
    if !host_ok {
        return Err(ctx
            .error(&raw.spec, format!("downstream `{name}` cannot be a host name"))
            .with_hint("a downstream's `name` is lowercase letters, digits and `-`, and not `service`, `settler`, `downstreams` or `client*`: scenario faults name it"));
    }
    let url = raw
        .url
        .as_ref()
        .map(|url| {
            let text = url.get_ref();
            let valid = (text.starts_with("http://") || text.starts_with("https://"))
                && text.parse::<http::Uri>().is_ok_and(|u| u.host().is_some());
            if valid {
                Ok(text.trim_end_matches('/').to_string())
            } else {
                Err(ctx
                    .error(url, format!("`{text}` is not an http:// or https:// URL"))
                    .with_hint("e.g. url = \"http://127.0.0.1:9100\""))
            }
        })
        .transpose()?;
    Ok(DownstreamRef {
        name,
        spec,
        spec_file,
        spec_written: raw.spec.get_ref().clone(),
        url,
    })
}

/// Reads and checks a downstream spec file (`shipsim downstream --spec`): the
/// [`DownstreamSpec`] as TOML, strict, every problem located, including those its
/// compilation finds.
///
/// # Errors
/// [`ScenarioError`] naming the file, and the line and column where there is one.
pub fn load_spec(path: &Path) -> Result<DownstreamSpec, ScenarioError> {
    let file = path.display().to_string();
    let source = read_text(path).map_err(|e| ScenarioError::whole_file(&file, e))?;
    parse_spec(&file, &source)
}

/// [`load_spec`] for text.
///
/// # Errors
/// As [`load_spec`].
pub fn parse_spec(file: &str, source: &str) -> Result<DownstreamSpec, ScenarioError> {
    let spec: DownstreamSpec = toml::from_str(source).map_err(|e| toml_error(file, source, &e))?;
    if let Err(error) = spec.compile() {
        let message = format!("{}: {}", error.field, error.problem);
        return Err(
            match locate::span_of(source, &locate::parse_field(&error.field)) {
                Some(span) => ScenarioError::at(file, source, span, message),
                None => ScenarioError::whole_file(file, message),
            },
        );
    }
    Ok(spec)
}

/// The [`Api`] of a described target.
#[derive(Clone)]
pub struct DescribedApi(Arc<Description>);

impl DescribedApi {
    /// The API `description` describes.
    #[must_use]
    pub fn new(description: Description) -> DescribedApi {
        DescribedApi(Arc::new(description))
    }

    /// The description.
    #[must_use]
    pub fn description(&self) -> &Description {
        &self.0
    }

    fn described(&self, kind: &Kind) -> Result<&DescribedKind, ApiError> {
        self.0
            .kinds
            .iter()
            .find(|k| k.kind.name() == kind.name())
            .ok_or_else(|| ApiError::new(format!("the description has no kind `{}`", kind.name())))
    }
}

impl fmt::Debug for DescribedApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DescribedApi").field(&self.0.name).finish()
    }
}

impl Api for DescribedApi {
    fn kinds(&self) -> Vec<Kind> {
        self.0.kinds()
    }

    fn body(&self, kind: &Kind, draw: &mut Draw<'_>) -> String {
        self.described(kind)
            .map(|k| k.body.draw(draw).to_string())
            .unwrap_or_else(|_| "{}".to_string())
    }

    fn vary(&self, kind: &Kind, body: &str) -> String {
        let Ok(described) = self.described(kind) else {
            return body.to_string();
        };
        let Some((steps, rule)) = &described.vary else {
            return body.to_string();
        };
        let Ok(mut document) = serde_json::from_str::<Value>(body) else {
            return body.to_string();
        };
        let Some(target) = value_at_mut(&mut document, steps) else {
            return body.to_string();
        };
        *target = rule.apply(target);
        document.to_string()
    }

    fn create(&self, kind: &Kind, call: &CreateCall<'_>) -> Result<HttpRequest, ApiError> {
        let described = self.described(kind)?;
        let mut document: Value = serde_json::from_str(call.body).map_err(ApiError::new)?;
        body::fill(&mut document, call.parent, &call.caller.id);
        let in_body = match (&described.key_header, &described.key_field) {
            (Some(_), Some(_)) => call.placement == KeyPlacement::Body,
            (None, Some(_)) => true,
            _ => false,
        };
        if in_body && let Some(steps) = &described.key_field {
            body::place(&mut document, steps, Value::String(call.key.to_string()))
                .map_err(ApiError::new)?;
        }
        if described.create.has_id() && call.parent.is_none() {
            return Err(ApiError::new(format!(
                "a {} is created on a parent",
                kind.name()
            )));
        }
        let path = described.create.fill(call.parent);
        let mut builder = http::Request::builder()
            .method(described.create.method.clone())
            .uri(path)
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(auth) = &self.0.auth {
            builder = builder.header(&auth.header, auth.header_value(call.caller));
        }
        if !in_body && let Some(header) = &described.key_header {
            builder = builder.header(header, call.key);
        }
        builder
            .body(Bytes::from(document.to_string()))
            .map_err(ApiError::new)
    }

    fn read(&self, kind: &Kind, call: &ReadCall<'_>) -> Result<HttpRequest, ApiError> {
        let described = self.described(kind)?;
        let route = described
            .read
            .as_ref()
            .ok_or_else(|| ApiError::new(format!("kind `{}` has no read route", kind.name())))?;
        let mut builder = http::Request::builder()
            .method(route.method.clone())
            .uri(route.fill(Some(call.id)));
        if let Some(auth) = &self.0.auth {
            builder = builder.header(&auth.header, auth.header_value(call.caller));
        }
        builder.body(Bytes::new()).map_err(ApiError::new)
    }

    fn parse(&self, kind: &Kind, response: &HttpResponse) -> Result<Seen, ApiError> {
        let described = self.described(kind)?;
        let document: Value = serde_json::from_slice(response.body())
            .map_err(|e| ApiError::new(format!("the {} response is not JSON: {e}", kind.name())))?;
        let pointers = &described.response;
        let text = |pointer: &str| -> Option<String> {
            match document.pointer(pointer)? {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            }
        };
        let id = text(&pointers.id)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                ApiError::new(format!(
                    "the {} response has no id at {}",
                    kind.name(),
                    pointers.id
                ))
            })?;
        Ok(Seen {
            id,
            parent: pointers.parent.as_deref().and_then(text),
            state: pointers.state.as_deref().and_then(text),
            downstream_ref: pointers.downstream_ref.as_deref().and_then(text),
        })
    }

    fn conventions(&self) -> Conventions {
        self.0.conventions.clone()
    }
}

/// A request on one line, for people: method, path, headers (secrets as given), body.
fn render_request(request: &HttpRequest) -> String {
    let mut line = format!("{} {}", request.method(), request.uri());
    for (name, value) in request.headers() {
        if name == http::header::CONTENT_TYPE {
            continue;
        }
        line.push_str(&format!(
            "  {name}: {}",
            value.to_str().unwrap_or("<binary>")
        ));
    }
    line.push_str("  ");
    line.push_str(&String::from_utf8_lossy(request.body()));
    line
}

fn value_at_mut<'a>(document: &'a mut Value, steps: &[Step]) -> Option<&'a mut Value> {
    let mut node = document;
    for step in steps {
        node = match (node, step) {
            (Value::Object(entries), Step::Key(key)) => entries.get_mut(key)?,
            (Value::Array(items), Step::Index(index)) => items.get_mut(*index)?,
            _ => return None,
        };
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn examples() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
    }

    const SHOP: &str = r#"
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

    fn parse(text: &str) -> Result<Description, ScenarioError> {
        Description::parse("shop.toml", text, Path::new("."))
    }

    #[test]
    fn a_description_drives_its_api() {
        // Proves a parsed description builds the requests its routes, key placement and auth
        // say, draws bodies from the seed, varies the named field, and reads ids, parents,
        // states and downstream references back out of responses at their pointers.
        let description = parse(SHOP).unwrap();
        assert_eq!(
            description.topology().operations,
            [
                "create_customer",
                "create_parcel",
                "get_customer",
                "get_parcel"
            ]
        );
        let api = DescribedApi::new(description);
        let kinds = api.kinds();
        let caller = Caller {
            api_key: "sk_secret".into(),
            ..Caller::new(1)
        };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut draw = Draw {
            rng: &mut rng,
            refuse_probability: 0.0,
            sequence: 0,
            slot: 0,
        };
        let body = api.body(&kinds[0], &mut draw);
        let request = api
            .create(
                &kinds[0],
                &CreateCall {
                    caller: &caller,
                    key: "customer-0-0",
                    placement: KeyPlacement::Header,
                    parent: None,
                    body: &body,
                },
            )
            .unwrap();
        assert_eq!(request.uri(), "/api/customers");
        assert_eq!(request.headers()["authorization"], "Bearer sk_secret");
        assert!(request.headers().get("idempotency-key").is_none());
        let sent: Value = serde_json::from_slice(request.body()).unwrap();
        assert_eq!(
            sent["request"]["key"], "customer-0-0",
            "only a key field: in the body"
        );

        let body = api.body(&kinds[1], &mut draw);
        let varied = api.vary(&kinds[1], &body);
        assert_ne!(body, varied);
        let request = api
            .create(
                &kinds[1],
                &CreateCall {
                    caller: &caller,
                    key: "parcel-0-1",
                    placement: KeyPlacement::Body,
                    parent: Some("cus 1/a"),
                    body: &body,
                },
            )
            .unwrap();
        assert_eq!(request.uri(), "/api/customers/cus%201%2Fa/parcels");
        assert_eq!(request.headers()["idempotency-key"], "parcel-0-1");
        let sent: Value = serde_json::from_slice(request.body()).unwrap();
        assert_eq!(sent["owner"], "merchant-1");
        assert!(sent["weight_g"].is_i64());

        let read = api
            .read(
                &kinds[1],
                &ReadCall {
                    caller: &caller,
                    id: "par_1",
                },
            )
            .unwrap();
        assert_eq!(read.uri(), "/api/parcels/par_1");
        let response = http::Response::builder()
            .status(201)
            .body(Bytes::from(
                r#"{"parcel":{"id":"par_1","customer":"cus_1","status":"labelled","label":{"id":"lbl_9"}}}"#,
            ))
            .unwrap();
        let seen = api.parse(&kinds[1], &response).unwrap();
        assert_eq!(seen.id, "par_1");
        assert_eq!(seen.parent.as_deref(), Some("cus_1"));
        assert_eq!(seen.state.as_deref(), Some("labelled"));
        assert_eq!(seen.downstream_ref.as_deref(), Some("lbl_9"));
        let bare = http::Response::builder()
            .status(201)
            .body(Bytes::from(r#"{"parcel":{}}"#))
            .unwrap();
        assert!(
            api.parse(&kinds[1], &bare)
                .unwrap_err()
                .0
                .contains("no id at /parcel/id")
        );
        assert_eq!(api.conventions().key_reused_status, Some(422));
    }

    #[test]
    fn samples_show_what_would_be_sent_and_round_trip() {
        // Proves `samples` builds a create (each key placement) and a read per kind with the
        // secret hidden, and that a description written back reads as the same one.
        let description = parse(SHOP).unwrap();
        let lines = description.samples(1).unwrap();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("create_parcel: POST /api/customers/customer_1/parcels")),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .all(|l| !l.contains("authorization") || l.contains("Bearer <secret>")),
            "{lines:#?}"
        );
        let back = parse(&description.to_toml()).unwrap();
        assert_eq!(back, description, "{}", description.to_toml());
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
    fn secrets_come_from_the_environment_or_a_file_and_are_never_shown() {
        // Proves `load` reads the secrets file (the variable being unset), gives each merchant
        // its own, refuses a scenario with more merchants than secrets, and that neither
        // errors nor Debug output show a secret; a missing variable without a file is a
        // located error naming the variable.
        let dir = std::env::temp_dir().join(format!("shipsim-described-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("keys.txt"), "# merchants 0, 1\nsk_zero\nsk_one\n").unwrap();
        let text = SHOP.replace(
            "secrets_env = \"SHIPSIM_TEST_UNSET_VARIABLE\"",
            "secrets_env = \"SHIPSIM_TEST_UNSET_VARIABLE\"\nsecrets_file = \"keys.txt\"",
        );
        std::fs::write(dir.join("shop.toml"), &text).unwrap();
        let description = Description::load(&dir.join("shop.toml")).unwrap();
        assert_eq!(description.caller(1).unwrap().api_key, "sk_one");
        let problem = description.caller(2).unwrap_err();
        assert!(problem.contains("holds 2 secret(s)"), "{problem}");
        assert!(!format!("{description:?}").contains("sk_zero"));
        std::fs::write(dir.join("bare.toml"), SHOP).unwrap();
        let error = Description::load(&dir.join("bare.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("SHIPSIM_TEST_UNSET_VARIABLE is not set"),
            "{error}"
        );
        assert!(
            error.contains(":8:"),
            "located at the secrets_env line: {error}"
        );
        std::fs::write(dir.join("keys.txt"), "sk zero\n").unwrap();
        let error = Description::load(&dir.join("shop.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("secret number 1"), "{error}");
        assert!(!error.contains("sk zero"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
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

    #[test]
    fn spec_files_are_located_even_for_what_compiling_finds() {
        // Proves a downstream spec's problems found after parsing (a bad template, a bad
        // status) are located at their line, not only serde's.
        let text = "name = \"bank\"\n\n[[effects]]\nmethod = \"POST\"\npath = \"/v1/charges\"\neffect = \"charge\"\nresponse = { id = \"{{nope}}\" }\n";
        let error = parse_spec("bank.toml", text).unwrap_err();
        assert_eq!(error.line, Some(7), "{error}");
        assert!(error.to_string().contains("effects[0].response"), "{error}");
        let text = "name = \"bank\"\nidempotency_header = \"bad header\"\n";
        let error = parse_spec("bank.toml", text).unwrap_err();
        assert_eq!(error.line, Some(2), "{error}");
        let error = parse_spec("bank.toml", "name = \"bank\"\neffect = []\n").unwrap_err();
        assert!(
            error.to_string().contains("did you mean `effects`?"),
            "{error}"
        );
    }
}
