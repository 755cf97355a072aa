//! What a user writes to describe the third-party API their service calls: plain Rust with
//! a builder, and the same types deserialised (strictly: unknown fields are errors) from a
//! file. [`DownstreamSpec::compile`] checks everything once, so a spec that compiles can be
//! served at every boot without a failure or a panic.

use std::collections::BTreeSet;
use std::fmt;

use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::path::PathTemplate;
use super::template::{Template, TemplateError, check_pointer};
use crate::api::{HEADER_ADMIN_KEY, IDEMPOTENCY_KEY_LEN_MAX};

/// The idempotency-key header a downstream reads unless told otherwise (IETF httpapi draft).
pub const IDEMPOTENCY_HEADER_DEFAULT: &str = "Idempotency-Key";
/// The principal of every request to a downstream without auth.
pub const PRINCIPAL_ANONYMOUS: &str = "anonymous";
/// Most routes (effect and read together) one downstream serves.
pub const ROUTES_MAX: usize = 64;
/// Most refusal rules on one route.
pub const REFUSALS_MAX: usize = 32;
/// Most credentials one downstream accepts.
pub const CREDENTIALS_MAX: usize = 256;
/// Longest name (of a downstream, an effect, a principal, a refusal code).
const NAME_LEN_MAX: usize = 64;
/// Longest id prefix (`ch_`, `pi_`).
const ID_PREFIX_LEN_MAX: usize = 32;
/// Longest secret or admin key.
const SECRET_LEN_MAX: usize = 256;
/// Longest refusal message.
const MESSAGE_LEN_MAX: usize = 200;

/// A simulated third-party API: its name, how callers authenticate, which header carries
/// idempotency keys, and its routes.
///
/// ```
/// use serde_json::json;
/// use shipsim_system::downstream::{AuthSpec, DownstreamSpec, EffectRoute, ReadRoute};
///
/// let bank = DownstreamSpec::new("bank")
///     .auth(AuthSpec::header("Authorization").credential("Bearer sk_test_shop", "shop"))
///     .effect(
///         EffectRoute::post("/v1/charges", "charge")
///             .id_prefix("ch_")
///             .key_required()
///             .require("/amount")
///             .refuse_when("/source", json!("tok_declined"), 402, "card_declined")
///             .respond(201, json!({"id": "{{id}}", "amount": "{{body/amount}}", "created": "{{now_s}}"})),
///     )
///     .read(ReadRoute::get("/v1/charges/{id}", "charge"));
/// assert!(bank.compile().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownstreamSpec {
    /// The downstream's name (`bank`), used in its ids' stream, events and errors.
    pub name: String,
    /// The header that carries idempotency keys ([`IDEMPOTENCY_HEADER_DEFAULT`] unless set).
    #[serde(default = "idempotency_header_default")]
    pub idempotency_header: String,
    /// How callers authenticate; `None` lets everyone in as [`PRINCIPAL_ANONYMOUS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,
    /// The key (`X-Admin-Key`) of the admin route `GET /__shipsim/ledger`; `None` leaves it
    /// open (the downstream is a test double, served on a loopback or simulated network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_key: Option<String>,
    /// Routes that make effects.
    #[serde(default)]
    pub effects: Vec<EffectRoute>,
    /// Routes that read an effect back by id.
    #[serde(default)]
    pub reads: Vec<ReadRoute>,
}

fn idempotency_header_default() -> String {
    IDEMPOTENCY_HEADER_DEFAULT.to_string()
}

/// Authentication by a header holding one of a set of secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSpec {
    /// The header (`Authorization`, `X-API-Key`).
    pub header: String,
    /// The accepted secrets, each naming the principal it authenticates.
    pub credentials: Vec<Credential>,
}

/// One accepted secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// The whole header value (`Bearer sk_test_shop`), compared in constant time.
    pub secret: String,
    /// Who presents it (`shop`): idempotency keys and reads are scoped to it.
    pub principal: String,
}

// Secrets never reach logs or panic messages.
impl fmt::Debug for AuthSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthSpec")
            .field("header", &self.header)
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("secret", &"<redacted>")
            .field("principal", &self.principal)
            .finish()
    }
}

/// An HTTP method a route answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
}

impl HttpMethod {
    /// The method as `http` knows it.
    #[must_use]
    pub fn as_http(self) -> Method {
        match self {
            HttpMethod::Get => Method::GET,
            HttpMethod::Post => Method::POST,
            HttpMethod::Put => Method::PUT,
            HttpMethod::Patch => Method::PATCH,
            HttpMethod::Delete => Method::DELETE,
        }
    }
}

/// What an effect route does with an idempotency key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPolicy {
    /// A request without a key is refused with 400 `idempotency_key_missing`.
    Required,
    /// A request without a key makes a new effect every time (as Stripe and most payment
    /// APIs): exactly the mistake a service that forgets its key makes.
    #[default]
    Optional,
    /// Keys are not honoured: every request makes a new effect (as many carriers). The key
    /// sent is still recorded on the effect, so an oracle can see repeats.
    Ignored,
}

/// A route that makes an effect (`POST /v1/charges` makes a `charge`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EffectRoute {
    /// The method.
    pub method: HttpMethod,
    /// The path template, axum syntax (`/v1/accounts/{account}/charges`).
    pub path: String,
    /// The effect's name (`charge`); read routes name it to find its effects.
    pub effect: String,
    /// Prefix of the effect's ids, used verbatim (`ch_`); the effect's name and `_` if unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_prefix: Option<String>,
    /// What the route does with an idempotency key.
    #[serde(default)]
    pub key: KeyPolicy,
    /// The status of a new effect's response (2xx); 201 if unset.
    #[serde(default = "status_created")]
    pub status: u16,
    /// The response template (see [`crate::downstream`]); `{"id": "{{id}}"}` if unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
    /// JSON pointers into the request body that must hold a non-null value, or the request
    /// is refused with 400 `validation_failed` naming each missing one.
    #[serde(default)]
    pub require: Vec<String>,
    /// Rules that refuse a request without an effect, checked in order.
    #[serde(default)]
    pub refusals: Vec<Refusal>,
    /// A JSON pointer into the request body naming the caller's own resource the effect is
    /// for (`/metadata/payment_id`, a shipment reference): an audit matches each effect to
    /// the resource that paid for it by this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

fn status_created() -> u16 {
    201
}

fn status_ok() -> u16 {
    200
}

fn id_param_default() -> String {
    "id".to_string()
}

/// A rule that refuses an effect request whose body holds a value at a pointer (a declined
/// card, an unserviceable country). The refusal is answered in the error envelope, makes no
/// effect and is not stored against the request's key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    /// JSON pointer into the request body (`/source`).
    pub pointer: String,
    /// The value that is refused (`"tok_declined"`).
    pub equals: Value,
    /// The status (4xx: 402 for a declined payment, 422 for an unserviceable request).
    pub status: u16,
    /// The error code (`card_declined`): lower-case letters, digits and `_`.
    pub code: String,
    /// The error message; one naming the pointer and value if unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Refusal {
    /// Refuses requests whose body at `pointer` equals `equals`, with `status` and `code`.
    #[must_use]
    pub fn new(pointer: &str, equals: impl Into<Value>, status: u16, code: &str) -> Self {
        Refusal {
            pointer: pointer.to_string(),
            equals: equals.into(),
            status,
            code: code.to_string(),
            message: None,
        }
    }

    /// Sets the error message.
    #[must_use]
    pub fn message(mut self, message: &str) -> Self {
        self.message = Some(message.to_string());
        self
    }
}

/// A route that reads an effect back by the id in its path (`GET /v1/charges/{id}`).
/// Callers see only their own effects; any other id is a 404.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadRoute {
    /// The method.
    pub method: HttpMethod,
    /// The path template, axum syntax; it must hold the id parameter.
    pub path: String,
    /// The name of the effect it reads (an effect route must make it).
    pub effect: String,
    /// The path parameter holding the id; `id` if unset.
    #[serde(default = "id_param_default")]
    pub id_param: String,
    /// The status of the response (2xx); 200 if unset.
    #[serde(default = "status_ok")]
    pub status: u16,
    /// The response template, filled from the effect (its request body, key, id), this
    /// request's path parameters and the clock now; the effect's own response if unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
}

impl DownstreamSpec {
    /// A downstream called `name` with no routes, no auth, no admin key and the default
    /// idempotency header.
    #[must_use]
    pub fn new(name: &str) -> Self {
        DownstreamSpec {
            name: name.to_string(),
            idempotency_header: idempotency_header_default(),
            auth: None,
            admin_key: None,
            effects: Vec::new(),
            reads: Vec::new(),
        }
    }

    /// Reads idempotency keys from `header` instead.
    #[must_use]
    pub fn idempotency_header(mut self, header: &str) -> Self {
        self.idempotency_header = header.to_string();
        self
    }

    /// Requires callers to authenticate.
    #[must_use]
    pub fn auth(mut self, auth: AuthSpec) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Guards the admin route with `key` (sent as `X-Admin-Key`).
    #[must_use]
    pub fn admin_key(mut self, key: &str) -> Self {
        self.admin_key = Some(key.to_string());
        self
    }

    /// Adds a route that makes effects.
    #[must_use]
    pub fn effect(mut self, route: EffectRoute) -> Self {
        self.effects.push(route);
        self
    }

    /// Adds a route that reads effects back.
    #[must_use]
    pub fn read(mut self, route: ReadRoute) -> Self {
        self.reads.push(route);
        self
    }

    /// Checks the whole spec and compiles its templates.
    ///
    /// # Errors
    /// The first problem found, as a [`SpecError`] naming the field (`effects[0].path`).
    pub fn compile(&self) -> Result<super::Downstream, SpecError> {
        compile(self).map(super::Downstream::from_compiled)
    }
}

impl AuthSpec {
    /// Authentication by `header`, with no credentials yet.
    #[must_use]
    pub fn header(header: &str) -> Self {
        AuthSpec {
            header: header.to_string(),
            credentials: Vec::new(),
        }
    }

    /// Accepts `secret` as the whole header value, authenticating `principal`.
    #[must_use]
    pub fn credential(mut self, secret: &str, principal: &str) -> Self {
        self.credentials.push(Credential {
            secret: secret.to_string(),
            principal: principal.to_string(),
        });
        self
    }
}

impl EffectRoute {
    /// A route `method path` that makes `effect`s: key optional, 201 with
    /// `{"id": "{{id}}"}`, ids prefixed with the effect's name and `_`.
    #[must_use]
    pub fn new(method: HttpMethod, path: &str, effect: &str) -> Self {
        EffectRoute {
            method,
            path: path.to_string(),
            effect: effect.to_string(),
            id_prefix: None,
            key: KeyPolicy::Optional,
            status: status_created(),
            response: None,
            require: Vec::new(),
            refusals: Vec::new(),
            subject: None,
        }
    }

    /// [`EffectRoute::new`] for `POST`.
    #[must_use]
    pub fn post(path: &str, effect: &str) -> Self {
        Self::new(HttpMethod::Post, path, effect)
    }

    /// Prefixes ids with `prefix`, verbatim.
    #[must_use]
    pub fn id_prefix(mut self, prefix: &str) -> Self {
        self.id_prefix = Some(prefix.to_string());
        self
    }

    /// Refuses requests without an idempotency key.
    #[must_use]
    pub fn key_required(mut self) -> Self {
        self.key = KeyPolicy::Required;
        self
    }

    /// Makes a new effect for every request without a key (the default).
    #[must_use]
    pub fn key_optional(mut self) -> Self {
        self.key = KeyPolicy::Optional;
        self
    }

    /// Honours no key: every request makes a new effect.
    #[must_use]
    pub fn key_ignored(mut self) -> Self {
        self.key = KeyPolicy::Ignored;
        self
    }

    /// Answers a new effect with `status` and the template `response`.
    #[must_use]
    pub fn respond(mut self, status: u16, response: Value) -> Self {
        self.status = status;
        self.response = Some(response);
        self
    }

    /// Names where the request body says which of the caller's resources the effect is for
    /// (a JSON pointer, `/metadata/payment_id`).
    #[must_use]
    pub fn subject(mut self, pointer: &str) -> Self {
        self.subject = Some(pointer.to_string());
        self
    }

    /// Requires a non-null value at `pointer` in the request body.
    #[must_use]
    pub fn require(mut self, pointer: &str) -> Self {
        self.require.push(pointer.to_string());
        self
    }

    /// Refuses requests whose body at `pointer` equals `equals`, with `status` and `code`.
    #[must_use]
    pub fn refuse_when(
        self,
        pointer: &str,
        equals: impl Into<Value>,
        status: u16,
        code: &str,
    ) -> Self {
        self.refuse(Refusal::new(pointer, equals, status, code))
    }

    /// Adds a refusal rule.
    #[must_use]
    pub fn refuse(mut self, refusal: Refusal) -> Self {
        self.refusals.push(refusal);
        self
    }
}

impl ReadRoute {
    /// A route `method path` that reads `effect`s by the `{id}` path parameter, answering
    /// 200 with the effect's own response.
    #[must_use]
    pub fn new(method: HttpMethod, path: &str, effect: &str) -> Self {
        ReadRoute {
            method,
            path: path.to_string(),
            effect: effect.to_string(),
            id_param: id_param_default(),
            status: status_ok(),
            response: None,
        }
    }

    /// [`ReadRoute::new`] for `GET`.
    #[must_use]
    pub fn get(path: &str, effect: &str) -> Self {
        Self::new(HttpMethod::Get, path, effect)
    }

    /// Takes the id from the path parameter `name`.
    #[must_use]
    pub fn id_param(mut self, name: &str) -> Self {
        self.id_param = name.to_string();
        self
    }

    /// Answers with `status` and the template `response`.
    #[must_use]
    pub fn respond(mut self, status: u16, response: Value) -> Self {
        self.status = status;
        self.response = Some(response);
        self
    }
}

/// A downstream spec that cannot be served, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("downstream `{downstream}`: {field}: {problem}")]
pub struct SpecError {
    /// The downstream's name.
    pub downstream: String,
    /// The offending field (`effects[0].response/data/id`: a JSON pointer follows a
    /// template).
    pub field: String,
    /// What is wrong, and how to fix it where that is not obvious.
    pub problem: String,
}

/// A validated effect route.
#[derive(Debug)]
pub(crate) struct CompiledEffect {
    pub method: Method,
    /// `POST /v1/charges`.
    pub label: String,
    pub effect: String,
    pub id_prefix: String,
    pub key: KeyPolicy,
    pub status: StatusCode,
    pub response: Template,
    pub require: Vec<String>,
    pub refusals: Vec<CompiledRefusal>,
}

/// A validated refusal rule.
#[derive(Debug)]
pub(crate) struct CompiledRefusal {
    pub pointer: String,
    pub equals: Value,
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

/// A validated read route.
#[derive(Debug)]
pub(crate) struct CompiledRead {
    pub method: Method,
    pub effect: String,
    pub id_param: String,
    pub status: StatusCode,
    pub response: Option<Template>,
}

/// A credential as the downstream keeps it: the secret's digest, so comparisons take the
/// same time whatever the presented value.
pub(crate) struct CompiledCredential {
    pub digest: [u8; 32],
    pub principal: String,
}

/// Validated authentication.
pub(crate) struct CompiledAuth {
    pub header: HeaderName,
    pub credentials: Vec<CompiledCredential>,
}

/// A validated spec: everything the router needs, checked.
pub(crate) struct Compiled {
    pub spec: DownstreamSpec,
    pub key_header: HeaderName,
    pub auth: Option<CompiledAuth>,
    /// (path template, effect route).
    pub effects: Vec<(String, CompiledEffect)>,
    /// (path template, read route).
    pub reads: Vec<(String, CompiledRead)>,
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compiled")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

/// SHA-256 of `bytes`.
pub(crate) fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Collects the first problem, naming the downstream.
struct Checker<'a> {
    downstream: &'a str,
}

impl Checker<'_> {
    fn fail<T>(
        &self,
        field: impl Into<String>,
        problem: impl Into<String>,
    ) -> Result<T, SpecError> {
        Err(SpecError {
            downstream: self.downstream.to_string(),
            field: field.into(),
            problem: problem.into(),
        })
    }

    fn check(&self, ok: bool, field: &str, problem: impl Into<String>) -> Result<(), SpecError> {
        if ok {
            Ok(())
        } else {
            self.fail(field, problem)
        }
    }

    fn name(&self, field: &str, value: &str) -> Result<(), SpecError> {
        let ok = !value.is_empty()
            && value.len() <= NAME_LEN_MAX
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        self.check(
            ok,
            field,
            format!("`{value}` must be 1 to {NAME_LEN_MAX} letters, digits, `_` or `-`"),
        )
    }

    fn header(&self, field: &str, value: &str) -> Result<HeaderName, SpecError> {
        HeaderName::from_bytes(value.as_bytes())
            .or_else(|_| self.fail(field, format!("`{value}` is not a valid HTTP header name")))
    }

    fn secret(&self, field: &str, value: &str) -> Result<(), SpecError> {
        let ok = !value.is_empty()
            && value.len() <= SECRET_LEN_MAX
            && HeaderValue::from_str(value).is_ok()
            && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        self.check(
            ok,
            field,
            format!("must be 1 to {SECRET_LEN_MAX} printable ASCII characters"),
        )
    }

    fn pointer(&self, field: &str, value: &str) -> Result<(), SpecError> {
        check_pointer(value).or_else(|problem| self.fail(field, problem))
    }

    fn status(
        &self,
        field: &str,
        value: u16,
        range: std::ops::RangeInclusive<u16>,
    ) -> Result<StatusCode, SpecError> {
        let ok = range.contains(&value);
        let status = StatusCode::from_u16(value).ok().filter(|_| ok);
        match status {
            Some(status) => Ok(status),
            None => self.fail(
                field,
                format!(
                    "{value} is not a status in {}..={}",
                    range.start(),
                    range.end()
                ),
            ),
        }
    }

    fn template(
        &self,
        field: &str,
        source: &Value,
        params: &[String],
    ) -> Result<Template, SpecError> {
        Template::compile(source, params)
            .or_else(|TemplateError { at, problem }| self.fail(format!("{field}{at}"), problem))
    }
}

/// Checks `spec` and compiles it.
fn compile(spec: &DownstreamSpec) -> Result<Compiled, SpecError> {
    let c = Checker {
        downstream: &spec.name,
    };
    c.name("name", &spec.name)?;
    let key_header = c.header("idempotency_header", &spec.idempotency_header)?;
    let auth = match &spec.auth {
        None => None,
        Some(auth) => Some(compile_auth(&c, auth, &key_header)?),
    };
    if let Some(key) = &spec.admin_key {
        c.secret("admin_key", key)?;
    }
    c.check(
        spec.effects.len() + spec.reads.len() <= ROUTES_MAX,
        "effects",
        format!("a downstream serves at most {ROUTES_MAX} routes"),
    )?;
    let mut routed: Vec<(String, HttpMethod, PathTemplate)> = Vec::new();
    let mut effects = Vec::with_capacity(spec.effects.len());
    for (index, route) in spec.effects.iter().enumerate() {
        let field = format!("effects[{index}]");
        let path = route_path(&c, &field, route.method, &route.path, &routed)?;
        effects.push((
            route.path.clone(),
            compile_effect(&c, &field, route, &path)?,
        ));
        routed.push((field, route.method, path));
    }
    let made: BTreeSet<&str> = spec.effects.iter().map(|r| r.effect.as_str()).collect();
    let mut reads = Vec::with_capacity(spec.reads.len());
    for (index, route) in spec.reads.iter().enumerate() {
        let field = format!("reads[{index}]");
        let path = route_path(&c, &field, route.method, &route.path, &routed)?;
        c.check(
            made.contains(route.effect.as_str()),
            &format!("{field}.effect"),
            format!("no effect route makes `{}`", route.effect),
        )?;
        let params = path.params();
        c.check(
            params.contains(&route.id_param),
            &format!("{field}.id_param"),
            format!(
                "the path `{}` has no parameter `{{{}}}`",
                route.path, route.id_param
            ),
        )?;
        let status = c.status(&format!("{field}.status"), route.status, 200..=299)?;
        let response = match &route.response {
            None => None,
            Some(source) => Some(c.template(&format!("{field}.response"), source, &params)?),
        };
        reads.push((
            route.path.clone(),
            CompiledRead {
                method: route.method.as_http(),
                effect: route.effect.clone(),
                id_param: route.id_param.clone(),
                status,
                response,
            },
        ));
        routed.push((field, route.method, path));
    }
    Ok(Compiled {
        spec: spec.clone(),
        key_header,
        auth,
        effects,
        reads,
    })
}

fn compile_auth(
    c: &Checker<'_>,
    auth: &AuthSpec,
    key_header: &HeaderName,
) -> Result<CompiledAuth, SpecError> {
    let header = c.header("auth.header", &auth.header)?;
    c.check(
        header != *key_header && header.as_str() != HEADER_ADMIN_KEY,
        "auth.header",
        "must differ from the idempotency header and from X-Admin-Key",
    )?;
    c.check(
        !auth.credentials.is_empty() && auth.credentials.len() <= CREDENTIALS_MAX,
        "auth.credentials",
        format!("list 1 to {CREDENTIALS_MAX} credentials"),
    )?;
    let mut credentials = Vec::with_capacity(auth.credentials.len());
    let mut seen = BTreeSet::new();
    for (index, credential) in auth.credentials.iter().enumerate() {
        let field = format!("auth.credentials[{index}]");
        c.secret(&format!("{field}.secret"), &credential.secret)?;
        c.name(&format!("{field}.principal"), &credential.principal)?;
        c.check(
            seen.insert(credential.secret.as_str()),
            &format!("{field}.secret"),
            "is listed twice",
        )?;
        credentials.push(CompiledCredential {
            digest: digest(credential.secret.as_bytes()),
            principal: credential.principal.clone(),
        });
    }
    Ok(CompiledAuth {
        header,
        credentials,
    })
}

/// Parses a route's path and checks it against the routes before it.
fn route_path(
    c: &Checker<'_>,
    field: &str,
    method: HttpMethod,
    text: &str,
    routed: &[(String, HttpMethod, PathTemplate)],
) -> Result<PathTemplate, SpecError> {
    let path =
        PathTemplate::parse(text).or_else(|problem| c.fail(format!("{field}.path"), problem))?;
    for (other_field, other_method, other_path) in routed {
        if *other_path == path && *other_method == method {
            return c.fail(
                format!("{field}.path"),
                format!("{method:?} {text} is also {other_field}"),
            );
        }
        if let Some(problem) = path.conflict(other_path) {
            return c.fail(
                format!("{field}.path"),
                format!("{problem} ({other_field})"),
            );
        }
    }
    Ok(path)
}

fn compile_effect(
    c: &Checker<'_>,
    field: &str,
    route: &EffectRoute,
    path: &PathTemplate,
) -> Result<CompiledEffect, SpecError> {
    c.name(&format!("{field}.effect"), &route.effect)?;
    let id_prefix = route
        .id_prefix
        .clone()
        .unwrap_or_else(|| format!("{}_", route.effect));
    c.check(
        id_prefix.len() <= ID_PREFIX_LEN_MAX && id_prefix.bytes().all(|b| b.is_ascii_graphic()),
        &format!("{field}.id_prefix"),
        format!("`{id_prefix}` must be at most {ID_PREFIX_LEN_MAX} printable ASCII characters without spaces"),
    )?;
    let status = c.status(&format!("{field}.status"), route.status, 200..=299)?;
    let source = route
        .response
        .clone()
        .unwrap_or_else(|| json!({"id": "{{id}}"}));
    let response = c.template(&format!("{field}.response"), &source, &path.params())?;
    if let Some(pointer) = &route.subject {
        c.pointer(&format!("{field}.subject"), pointer)?;
    }
    for (index, pointer) in route.require.iter().enumerate() {
        c.pointer(&format!("{field}.require[{index}]"), pointer)?;
    }
    c.check(
        route.refusals.len() <= REFUSALS_MAX,
        &format!("{field}.refusals"),
        format!("a route has at most {REFUSALS_MAX} refusal rules"),
    )?;
    let mut refusals = Vec::with_capacity(route.refusals.len());
    for (index, rule) in route.refusals.iter().enumerate() {
        let at = format!("{field}.refusals[{index}]");
        c.pointer(&format!("{at}.pointer"), &rule.pointer)?;
        let status = c.status(&format!("{at}.status"), rule.status, 400..=499)?;
        let code_ok = !rule.code.is_empty()
            && rule.code.len() <= NAME_LEN_MAX
            && rule
                .code
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
        c.check(
            code_ok,
            &format!("{at}.code"),
            format!(
                "`{}` must be 1 to {NAME_LEN_MAX} lower-case letters, digits or `_`",
                rule.code
            ),
        )?;
        let message = rule.message.clone().unwrap_or_else(|| {
            format!(
                "refused: the request's `{}` is {}",
                rule.pointer, rule.equals
            )
        });
        c.check(
            message.chars().count() <= MESSAGE_LEN_MAX,
            &format!("{at}.message"),
            format!("must be at most {MESSAGE_LEN_MAX} characters"),
        )?;
        refusals.push(CompiledRefusal {
            pointer: rule.pointer.clone(),
            equals: rule.equals.clone(),
            status,
            code: rule.code.clone(),
            message,
        });
    }
    Ok(CompiledEffect {
        method: route.method.as_http(),
        label: format!("{} {}", route.method.as_http(), route.path),
        effect: route.effect.clone(),
        id_prefix,
        key: route.key,
        status,
        response,
        require: route.require.clone(),
        refusals,
    })
}

/// The longest idempotency key a downstream accepts.
pub(crate) const KEY_LEN_MAX: usize = IDEMPOTENCY_KEY_LEN_MAX;
