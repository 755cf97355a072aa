//! A generic simulated third-party API (a bank, a payment provider, a carrier) that counts
//! the effects it makes: the ground truth of exactly-once for a user's own service.
//!
//! The reference carrier ([`crate::carrier`]) is one specific downstream; this is the one a
//! user configures for *their* service with a [`DownstreamSpec`]: effect routes (`POST
//! /v1/charges` makes a `charge`), read routes (`GET /v1/charges/{id}`), how callers
//! authenticate, which header carries idempotency keys. [`DownstreamSpec::compile`] checks it
//! once; [`Downstream::router`] serves it at every boot of its host.
//!
//! # Behaviour
//!
//! - **Effects.** A request to an effect route is checked in this order: credentials (401),
//!   body size (413) and JSON (400 `malformed_json`; an empty body is `null`), idempotency key
//!   (400 when invalid, or missing on a [`KeyPolicy::Required`] route), required fields (400
//!   `validation_failed`). Then, under one lock on the [`DownstreamLedger`]: a key this
//!   principal used before with the same request (method, path and body, key order
//!   ignored) replays the stored status and body with `Idempotent-Replayed: true` and makes no
//!   effect; with another request it is refused with 422 `idempotency_key_reused`; a request
//!   meeting a [`Refusal`] rule is refused with the rule's status and code and makes no effect
//!   (nor is it stored against its key: a repeat is refused again); anything else makes a new
//!   effect with a fresh id, answered with the route's status and response template.
//! - **Keys** are scoped to the principal, across routes (the fingerprint includes the
//!   path, so one key on two routes is a reuse). A route may require keys, make a new effect
//!   for every request without one (the default, as Stripe; exactly the mistake shipsim must
//!   catch), or ignore them ([`KeyPolicy`]).
//! - **Reads** return an effect by the id in the path, only to the principal that made it
//!   (anyone else gets the same 404 as for an unknown id).
//! - **Auth** is optional: a header whose whole value must be one of the configured secrets
//!   (compared as SHA-256 digests in constant time). Without auth everyone is
//!   [`PRINCIPAL_ANONYMOUS`].
//! - **Admin.** `GET /__shipsim/ledger` returns the [`LedgerSnapshot`] as JSON, to whoever
//!   presents the admin key in `X-Admin-Key` (to anyone when none is configured). Live mode
//!   reads the ledger through it.
//! - **Errors** all use the service's envelope (`{"error": {code, message, details,
//!   request_id}}`) and every response carries `X-Request-Id`.
//! - **Determinism.** Time comes from the [`Clock`] seam; effect and request ids from ChaCha
//!   streams derived from the downstream's seed and its host's boot number, so a restarted
//!   host never reuses an id. The ledger is ordered (`Vec` and `BTreeMap`), and outlives the
//!   host: a third party never loses its records.
//! - **Bounds.** Request bodies up to [`REQUEST_BYTES_MAX`], rendered responses up to
//!   [`RESPONSE_BYTES_MAX`], keys up to 255 characters, templates and routes by the limits in
//!   the spec, the ledger up to [`LEDGER_EFFECTS_MAX`] effects.
//!
//! # Response templates
//!
//! A response template is a JSON value whose strings may hold placeholders:
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
//! A string that is exactly one placeholder becomes that value with its JSON type
//! (`"{{body/amount}}"` stays a number). A string with text around its placeholders stays a
//! string: text values go in as they are, null and absent values as nothing, other values as
//! compact JSON. Object keys are literal. Substituted values are never expanded again. A
//! pointer that finds nothing gives null; `require` the field to refuse such requests
//! instead. Every `{{` must open a known placeholder: anything else is a [`SpecError`] at
//! compile time, never a failure per request. A read route's template is filled from the
//! effect it reads (its id, key, principal and request body), its own path parameters and the
//! clock now.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//!
//! use serde_json::json;
//! use shipsim_system::clock::FixedClock;
//! use shipsim_system::downstream::{DownstreamDeps, DownstreamLedger, DownstreamSpec, EffectRoute};
//! use shipsim_system::observe::NoopObserver;
//! use shipsim_system::seed::Seed;
//!
//! let bank = DownstreamSpec::new("bank")
//!     .effect(
//!         EffectRoute::post("/v1/charges", "charge")
//!             .id_prefix("ch_")
//!             .respond(201, json!({"id": "{{id}}", "amount": "{{body/amount}}"})),
//!     )
//!     .compile()
//!     .expect("the spec is valid");
//! // The simulation keeps one ledger for the whole run and builds a router at every boot.
//! let ledger = DownstreamLedger::new();
//! let router = bank.router(DownstreamDeps {
//!     clock: Arc::new(FixedClock(1_700_000_000_000)),
//!     ledger: ledger.clone(),
//!     observer: Arc::new(NoopObserver),
//!     seed: Seed(7).derive("bank"),
//!     boot: 0,
//! });
//! # drop(router);
//! assert!(ledger.is_empty());
//! ```

mod ledger;
mod path;
mod spec;
mod template;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, RawPathParamsRejection};
use axum::extract::{RawPathParams, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, get};
use serde_json::Value;

pub use ledger::{DownstreamLedger, Effect, LEDGER_EFFECTS_MAX, LedgerCounters, LedgerSnapshot};
pub use spec::{
    AuthSpec, CREDENTIALS_MAX, Credential, DownstreamSpec, EffectRoute, HttpMethod,
    IDEMPOTENCY_HEADER_DEFAULT, KeyPolicy, PRINCIPAL_ANONYMOUS, REFUSALS_MAX, ROUTES_MAX,
    ReadRoute, Refusal, SpecError,
};

use self::ledger::{Attempt, Counter, Outcome};
use self::spec::{Compiled, CompiledEffect, CompiledRead, KEY_LEN_MAX, digest};
use self::template::{Context, Template};
use crate::api::FieldError;
use crate::clock::Clock;
use crate::observe::{Observer, SystemEvent};
use crate::seed::{IdGen, Seed};
use crate::service::ApiError;

/// Largest request body a downstream accepts (64 KiB, as the reference service).
pub const REQUEST_BYTES_MAX: usize = 64 * 1024;
/// Largest response body a template may render (1 MiB); a bigger one is a 500 and makes no
/// effect. Templates hold at most 64 placeholders, so only `{{body}}` repeated many times
/// gets near it.
pub const RESPONSE_BYTES_MAX: usize = 1024 * 1024;
/// The admin route that returns the ledger.
pub const ADMIN_LEDGER_PATH: &str = "/__shipsim/ledger";

/// A validated downstream, ready to be served at every boot of its host. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Downstream {
    compiled: Arc<Compiled>,
}

/// What a downstream is given by whoever runs it, at each boot.
#[derive(Clone)]
pub struct DownstreamDeps {
    /// Time of day.
    pub clock: Arc<dyn Clock>,
    /// The effects record, owned outside the host so it survives crashes.
    pub ledger: DownstreamLedger,
    /// Where system events go.
    pub observer: Arc<dyn Observer>,
    /// The downstream's component seed (derived from the run's seed by the downstream's
    /// name); ids derive from it and the boot number.
    pub seed: Seed,
    /// How many times the downstream's host has started before (0 for the first boot).
    pub boot: u64,
}

/// One boot of a downstream: what its handlers share.
struct Running {
    compiled: Arc<Compiled>,
    deps: DownstreamDeps,
    /// Effect ids.
    ids: IdGen,
}

impl Downstream {
    fn from_compiled(compiled: Compiled) -> Self {
        Downstream {
            compiled: Arc::new(compiled),
        }
    }

    /// The spec it was compiled from.
    #[must_use]
    pub fn spec(&self) -> &DownstreamSpec {
        &self.compiled.spec
    }

    /// Its name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.compiled.spec.name
    }

    /// The router of one boot of the downstream's host.
    pub fn router(&self, deps: DownstreamDeps) -> Router {
        let boot_seed = deps.seed.derive_index("boot", deps.boot);
        let request_ids = Arc::new(IdGen::new(boot_seed.derive("request-ids")));
        let running = Arc::new(Running {
            compiled: self.compiled.clone(),
            ids: IdGen::new(boot_seed.derive("ids")),
            deps,
        });
        // One method router per path: axum merges methods of one path only through it.
        let mut by_path: BTreeMap<&str, MethodRouter<Arc<Running>>> = BTreeMap::new();
        for (index, (path, route)) in self.compiled.effects.iter().enumerate() {
            let handler = move |State(running): State<Arc<Running>>,
                                params: Result<RawPathParams, RawPathParamsRejection>,
                                uri: Uri,
                                headers: HeaderMap,
                                body: Result<Bytes, BytesRejection>| async move {
                effect(&running, index, params, &uri, &headers, body)
            };
            let methods = by_path.remove(path.as_str()).unwrap_or_default();
            by_path.insert(path, methods.on(filter(&route.method), handler));
        }
        for (index, (path, route)) in self.compiled.reads.iter().enumerate() {
            let handler = move |State(running): State<Arc<Running>>,
                                params: Result<RawPathParams, RawPathParamsRejection>,
                                headers: HeaderMap| async move {
                read(&running, index, params, &headers)
            };
            let methods = by_path.remove(path.as_str()).unwrap_or_default();
            by_path.insert(path, methods.on(filter(&route.method), handler));
        }
        let mut router = Router::new().route(ADMIN_LEDGER_PATH, get(admin_ledger));
        for (path, methods) in by_path {
            router = router.route(path, methods);
        }
        router
            .fallback(crate::service::no_route)
            .method_not_allowed_fallback(crate::service::wrong_method)
            .layer(axum::middleware::from_fn_with_state(
                request_ids,
                crate::service::request_context_layer,
            ))
            .layer(axum::extract::DefaultBodyLimit::max(REQUEST_BYTES_MAX))
            .with_state(running)
    }
}

fn filter(method: &axum::http::Method) -> MethodFilter {
    // Routes only take the five methods of `HttpMethod`, which all have filters.
    MethodFilter::try_from(method.clone()).expect("HttpMethod maps to a method filter")
}

impl Running {
    /// The principal presenting `headers`' credentials.
    fn authenticate(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        let Some(auth) = &self.compiled.auth else {
            return Ok(PRINCIPAL_ANONYMOUS.to_string());
        };
        let presented = headers
            .get(&auth.header)
            .map(|value| digest(value.as_bytes()));
        let Some(presented) = presented else {
            self.deps.ledger.count(Counter::Unauthenticated);
            return Err(ApiError::unauthenticated(&format!(
                "send your credentials in the {} header",
                self.compiled
                    .spec
                    .auth
                    .as_ref()
                    .map_or("", |a| a.header.as_str())
            )));
        };
        // Every credential is compared, each in constant time, so the time taken says
        // nothing about how close a guess was.
        let mut principal = None;
        for credential in &auth.credentials {
            let equal = credential
                .digest
                .iter()
                .zip(&presented)
                .fold(0u8, |difference, (a, b)| difference | (a ^ b))
                == 0;
            if equal && principal.is_none() {
                principal = Some(credential.principal.clone());
            }
        }
        principal.ok_or_else(|| {
            self.deps.ledger.count(Counter::Unauthenticated);
            ApiError::unauthenticated("unknown credentials")
        })
    }

    /// An invalid request: counted, then refused.
    fn invalid(&self, error: ApiError) -> ApiError {
        self.deps.ledger.count(Counter::Invalid);
        error
    }
}

/// Path parameters as a map; a route without parameters has none.
fn params_map(
    params: Result<RawPathParams, RawPathParamsRejection>,
) -> Result<BTreeMap<String, String>, ApiError> {
    match params {
        Ok(params) => Ok(params
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()),
        Err(RawPathParamsRejection::MissingPathParams(_)) => Ok(BTreeMap::new()),
        Err(_) => Err(ApiError::validation(vec![FieldError {
            field: "path".into(),
            issue: "path parameters must be UTF-8 once percent-decoded".into(),
        }])),
    }
}

/// Handles a request to effect route `index`.
fn effect(
    running: &Running,
    index: usize,
    params: Result<RawPathParams, RawPathParamsRejection>,
    uri: &Uri,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let compiled = &running.compiled;
    let route = &compiled.effects[index].1;
    let ledger = &running.deps.ledger;
    let principal = running.authenticate(headers)?;
    let body = body.map_err(|_| running.invalid(ApiError::too_large(REQUEST_BYTES_MAX)))?;
    let request = parse_body(&body).map_err(|e| running.invalid(e))?;
    let key = request_key(running, route, headers)?;
    check_required(&request, &route.require).map_err(|e| running.invalid(e))?;
    let refusal = route
        .refusals
        .iter()
        .position(|rule| request.pointer(&rule.pointer) == Some(&rule.equals));
    let path = params_map(params).map_err(|e| running.invalid(e))?;
    let mut canonical = Vec::with_capacity(body.len());
    canonical_json(&request, &mut canonical);
    let fingerprint = crate::service::fingerprint_of(route.method.as_str(), uri.path(), &canonical);
    let now_ms = running.deps.clock.now_ms();
    let outcome = ledger.settle(
        Attempt {
            effect: &route.effect,
            route: &route.label,
            path: uri.path(),
            principal: &principal,
            key: key.as_deref(),
            honour_key: route.key != KeyPolicy::Ignored,
            fingerprint: &fingerprint,
            request: &request,
            refusal,
            at_ms: now_ms,
            boot: running.deps.boot,
        },
        || running.ids.next_raw(&route.id_prefix),
        |id, seq| {
            let context = Context {
                id,
                effect: &route.effect,
                key: key.as_deref(),
                principal: &principal,
                seq,
                now_ms,
                body: &request,
                path: &path,
            };
            render(&route.response, &context).map(|body| (route.status.as_u16(), body))
        },
    )?;
    Ok(answer(running, route, outcome, key.as_deref()))
}

/// The idempotency key of a request to `route`, counting a missing one.
///
/// # Errors
/// 400 for an invalid key, or for a missing one where the route requires it.
fn request_key(
    running: &Running,
    route: &CompiledEffect,
    headers: &HeaderMap,
) -> Result<Option<String>, ApiError> {
    let header = running.compiled.spec.idempotency_header.as_str();
    let key = match headers.get(&running.compiled.key_header) {
        None => None,
        Some(value) => match (check_key(value, header), route.key) {
            (Ok(key), _) => Some(key),
            // A route that ignores keys does not refuse a bad one; it records none.
            (Err(_), KeyPolicy::Ignored) => None,
            (Err(error), _) => return Err(running.invalid(error)),
        },
    };
    if key.is_none() && route.key != KeyPolicy::Ignored {
        running.deps.ledger.count(Counter::RequestWithoutKey);
        if route.key == KeyPolicy::Required {
            return Err(key_missing(header));
        }
    }
    Ok(key)
}

/// The response to a settled effect request, reported to the observer.
fn answer(
    running: &Running,
    route: &CompiledEffect,
    outcome: Outcome,
    key: Option<&str>,
) -> Response {
    let downstream = running.compiled.spec.name.clone();
    let observer = &running.deps.observer;
    match outcome {
        Outcome::New(effect) => {
            observer.record(SystemEvent::DownstreamEffect {
                downstream,
                effect: effect.effect.clone(),
                id: effect.id.clone(),
                key: effect.key.clone(),
            });
            json_response(effect.status, &effect.response, false)
        }
        Outcome::Replay(effect) => {
            observer.record(SystemEvent::DownstreamReplayed {
                downstream,
                id: effect.id.clone(),
                key: key.unwrap_or_default().to_string(),
            });
            json_response(effect.status, &effect.response, true)
        }
        Outcome::KeyReused => {
            observer.record(SystemEvent::DownstreamRefused {
                downstream,
                effect: route.effect.clone(),
                code: "idempotency_key_reused".into(),
            });
            ApiError::key_reused().into_response()
        }
        Outcome::Refused(index) => {
            let rule = &route.refusals[index];
            observer.record(SystemEvent::DownstreamRefused {
                downstream,
                effect: route.effect.clone(),
                code: rule.code.clone(),
            });
            let mut error =
                ApiError::with_code(rule.status, rule.code.clone(), rule.message.clone());
            error.details = vec![FieldError {
                field: rule.pointer.clone(),
                issue: format!("is {}", rule.equals),
            }];
            error.into_response()
        }
        Outcome::Full => ApiError::with_code(
            StatusCode::INSUFFICIENT_STORAGE,
            "ledger_full",
            format!("the downstream's ledger holds its limit of {LEDGER_EFFECTS_MAX} effects"),
        )
        .into_response(),
        Outcome::IdsExhausted => {
            ApiError::internal("no fresh effect id could be drawn").into_response()
        }
    }
}

/// Handles a request to read route `index`.
fn read(
    running: &Running,
    index: usize,
    params: Result<RawPathParams, RawPathParamsRejection>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let route: &CompiledRead = &running.compiled.reads[index].1;
    let principal = running.authenticate(headers)?;
    let path = params_map(params)?;
    let id = path.get(&route.id_param).map_or("", String::as_str);
    let effect = running
        .deps
        .ledger
        .effect(id)
        .filter(|effect| effect.effect == route.effect && effect.principal == principal)
        .ok_or_else(|| ApiError::not_found(&route.effect, id))?;
    let body = match &route.response {
        None => effect.response,
        Some(template) => {
            let context = Context {
                id: &effect.id,
                effect: &effect.effect,
                key: effect.key.as_deref(),
                principal: &effect.principal,
                seq: effect.seq,
                now_ms: running.deps.clock.now_ms(),
                body: &effect.request,
                path: &path,
            };
            render(template, &context)?
        }
    };
    Ok(json_response(route.status.as_u16(), &body, false))
}

/// `GET /__shipsim/ledger`: the whole ledger.
async fn admin_ledger(
    State(running): State<Arc<Running>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(key) = &running.compiled.spec.admin_key {
        crate::service::check_admin_key(Some(key), &headers)?;
    }
    Ok(axum::Json(running.deps.ledger.snapshot()).into_response())
}

/// Renders a template, refusing a response larger than [`RESPONSE_BYTES_MAX`].
fn render(template: &Template, context: &Context<'_>) -> Result<Value, ApiError> {
    let body = template.render(context);
    let size = serde_json::to_vec(&body).map_or(usize::MAX, |bytes| bytes.len());
    if size > RESPONSE_BYTES_MAX {
        return Err(ApiError::internal(format!(
            "the response template rendered {size} bytes, more than the {RESPONSE_BYTES_MAX} allowed"
        )));
    }
    Ok(body)
}

fn json_response(status: u16, body: &Value, replayed: bool) -> Response {
    crate::service::json_response(status, body.to_string(), replayed)
}

/// The request body as JSON; an empty body is `null`.
fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|error| {
        ApiError::malformed(
            "body".into(),
            format!("{error} (line {}, column {})", error.line(), error.column()),
        )
    })
}

/// An idempotency key, checked as the reference service checks its own: 1 to 255 printable
/// ASCII characters without spaces.
fn check_key(value: &HeaderValue, header: &str) -> Result<String, ApiError> {
    let Ok(key) = value.to_str() else {
        return Err(ApiError::validation(vec![FieldError {
            field: header.to_string(),
            issue: "must be printable ASCII without spaces".into(),
        }]));
    };
    let issue = if key.is_empty() {
        "must not be empty".to_string()
    } else if key.len() > KEY_LEN_MAX {
        format!("must be at most {KEY_LEN_MAX} characters")
    } else if !key.bytes().all(|b| b.is_ascii_graphic()) {
        "must be printable ASCII without spaces".to_string()
    } else {
        return Ok(key.to_string());
    };
    Err(ApiError::validation(vec![FieldError {
        field: header.to_string(),
        issue,
    }]))
}

fn key_missing(header: &str) -> ApiError {
    let mut error = ApiError::with_code(
        StatusCode::BAD_REQUEST,
        "idempotency_key_missing",
        format!("this endpoint requires an {header} header"),
    );
    error.details = vec![FieldError {
        field: header.to_string(),
        issue: "required".into(),
    }];
    error
}

/// Refuses a request missing any required field, naming every one.
fn check_required(request: &Value, required: &[String]) -> Result<(), ApiError> {
    let missing: Vec<FieldError> = required
        .iter()
        .filter(|pointer| request.pointer(pointer).is_none_or(Value::is_null))
        .map(|pointer| FieldError {
            field: pointer.clone(),
            issue: "required".into(),
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(missing))
    }
}

/// `value` as JSON text with object keys sorted, so a fingerprint does not depend on key
/// order (nor on whether serde_json keeps insertion order in the user's build). Recursion
/// is bounded by serde_json's parse depth limit (128), as values come from parsed bodies.
fn canonical_json(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        Value::Object(fields) => {
            let mut names: Vec<&String> = fields.keys().collect();
            names.sort();
            out.push(b'{');
            for (index, name) in names.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::from(name.as_str()).to_string().as_bytes());
                out.push(b':');
                canonical_json(&fields[name], out);
            }
            out.push(b'}');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, Request};
    use http_body_util::BodyExt;
    use proptest::prelude::*;
    use serde_json::json;
    use tower::ServiceExt;

    use super::*;
    use crate::api::HEADER_IDEMPOTENT_REPLAYED;
    use crate::clock::FixedClock;
    use crate::observe::NoopObserver;
    use axum::body::Body;

    const NOW_MS: u64 = 1_700_000_123_456;
    const SECRET_SHOP: &str = "Bearer sk_test_shop";
    const SECRET_OTHER: &str = "Bearer sk_test_other";

    /// A bank with one charge route (key optional unless the test says otherwise), a
    /// refusal for declined cards, a read route, and auth for two principals.
    fn bank() -> DownstreamSpec {
        DownstreamSpec::new("bank")
            .auth(
                AuthSpec::header("Authorization")
                    .credential(SECRET_SHOP, "shop")
                    .credential(SECRET_OTHER, "other"),
            )
            .admin_key("admin-secret")
            .effect(
                EffectRoute::post("/v1/charges", "charge")
                    .id_prefix("ch_")
                    .require("/amount")
                    .refuse_when("/source", json!("tok_declined"), 402, "card_declined")
                    .respond(
                        201,
                        json!({
                            "id": "{{id}}", "object": "{{effect}}", "amount": "{{body/amount}}",
                            "created": "{{now_s}}", "idempotency_key": "{{key}}",
                            "description": "charge {{seq}} for {{principal}}"
                        }),
                    ),
            )
            .effect(
                EffectRoute::post("/v1/accounts/{account}/transfers", "transfer")
                    .key_required()
                    .respond(200, json!({"id": "{{id}}", "account": "{{path.account}}"})),
            )
            .read(ReadRoute::get("/v1/charges/{id}", "charge"))
            .read(
                ReadRoute::get("/v1/accounts/{account}/transfers/{id}", "transfer").respond(
                    200,
                    json!({"id": "{{id}}", "asked_for": "{{path.account}}", "read_at": "{{now_ms}}"}),
                ),
            )
    }

    struct Host {
        router: Router,
        ledger: DownstreamLedger,
    }

    fn boot(spec: &DownstreamSpec, ledger: &DownstreamLedger, seed: u64, boot: u64) -> Host {
        let router = spec.compile().unwrap().router(DownstreamDeps {
            clock: Arc::new(FixedClock(NOW_MS)),
            ledger: ledger.clone(),
            observer: Arc::new(NoopObserver),
            seed: Seed(seed).derive(&spec.name),
            boot,
        });
        Host {
            router,
            ledger: ledger.clone(),
        }
    }

    fn host(spec: &DownstreamSpec) -> Host {
        boot(spec, &DownstreamLedger::new(), 1, 0)
    }

    #[derive(Debug)]
    struct Reply {
        status: u16,
        headers: HeaderMap,
        json: Value,
    }

    impl Reply {
        fn code(&self) -> &str {
            self.json["error"]["code"].as_str().unwrap_or("")
        }

        fn replayed(&self) -> bool {
            self.headers.get(HEADER_IDEMPOTENT_REPLAYED).is_some()
        }
    }

    impl Host {
        async fn send(&self, request: Request<Body>) -> Reply {
            let response = self.router.clone().oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Reply {
                status,
                headers,
                json,
            }
        }

        async fn call(
            &self,
            method: Method,
            path: &str,
            secret: Option<&str>,
            key: Option<&str>,
            body: &str,
        ) -> Reply {
            let mut request = Request::builder().method(method).uri(path);
            if let Some(secret) = secret {
                request = request.header("authorization", secret);
            }
            if let Some(key) = key {
                request = request.header("idempotency-key", key);
            }
            self.send(request.body(Body::from(body.to_string())).unwrap())
                .await
        }

        async fn post(&self, path: &str, key: Option<&str>, body: &str) -> Reply {
            self.call(Method::POST, path, Some(SECRET_SHOP), key, body)
                .await
        }

        async fn get(&self, path: &str, secret: &str) -> Reply {
            self.call(Method::GET, path, Some(secret), None, "").await
        }
    }

    #[tokio::test]
    async fn a_new_request_makes_one_effect_answered_from_the_template() {
        // Proves a keyed request makes exactly one effect, answered with the route's status
        // and its template filled from the id, body, key, clock, sequence and principal, and
        // recorded in the ledger with everything the oracles need.
        let bank = host(&bank());
        let reply = bank
            .post(
                "/v1/charges",
                Some("k-1"),
                r#"{"amount": 1250, "source": "tok_ok"}"#,
            )
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        assert!(!reply.replayed());
        assert!(reply.headers.contains_key("x-request-id"));
        let id = reply.json["id"].as_str().unwrap().to_string();
        assert!(id.starts_with("ch_") && id.len() > 3, "{id}");
        assert_eq!(
            reply.json,
            json!({
                "id": id, "object": "charge", "amount": 1250, "created": NOW_MS / 1000,
                "idempotency_key": "k-1", "description": "charge 1 for shop"
            })
        );
        let effects = bank.ledger.effects();
        assert_eq!(effects.len(), 1);
        let effect = &effects[0];
        assert_eq!(
            (
                effect.seq,
                effect.effect.as_str(),
                effect.route.as_str(),
                effect.path.as_str()
            ),
            (1, "charge", "POST /v1/charges", "/v1/charges")
        );
        assert_eq!(effect.id, id);
        assert_eq!(effect.key.as_deref(), Some("k-1"));
        assert_eq!(effect.principal, "shop");
        assert_eq!(effect.request, json!({"amount": 1250, "source": "tok_ok"}));
        assert_eq!((effect.status, effect.at_ms, effect.boot), (201, NOW_MS, 0));
        assert_eq!(effect.response, reply.json);
        assert_eq!(bank.ledger.counters().effects, 1);
    }

    #[tokio::test]
    async fn the_same_key_and_request_replays_without_a_new_effect() {
        // Proves a repeat with the same key and the same body (keys in another order, other
        // whitespace) replays the first answer byte for byte, marked, with no new effect.
        let bank = host(&bank());
        let first = bank
            .post(
                "/v1/charges",
                Some("k-1"),
                r#"{"amount": 1250, "source": "tok_ok"}"#,
            )
            .await;
        let again = bank
            .post(
                "/v1/charges",
                Some("k-1"),
                r#"{ "source":"tok_ok","amount":1250 }"#,
            )
            .await;
        assert_eq!(again.status, first.status);
        assert_eq!(again.json, first.json, "same id, same body");
        assert!(again.replayed());
        assert_eq!(
            again.headers.get(HEADER_IDEMPOTENT_REPLAYED).unwrap(),
            "true"
        );
        assert_eq!(bank.ledger.len(), 1);
        let counters = bank.ledger.counters();
        assert_eq!((counters.effects, counters.replays), (1, 1));
    }

    #[tokio::test]
    async fn the_same_key_with_another_request_is_refused() {
        // Proves a key reused with a different body, or on a different route, is a 422 in
        // the error envelope and makes no effect, while the first effect stays replayable.
        let bank = host(&bank());
        let body = r#"{"amount": 1250}"#;
        assert_eq!(
            bank.post("/v1/charges", Some("k-1"), body).await.status,
            201
        );
        let other = bank
            .post("/v1/charges", Some("k-1"), r#"{"amount": 999}"#)
            .await;
        assert_eq!(other.status, 422, "{other:?}");
        assert_eq!(other.code(), "idempotency_key_reused");
        assert!(other.json["error"]["request_id"].is_string());
        let elsewhere = bank
            .post("/v1/accounts/a1/transfers", Some("k-1"), body)
            .await;
        assert_eq!(elsewhere.code(), "idempotency_key_reused");
        assert!(bank.post("/v1/charges", Some("k-1"), body).await.replayed());
        assert_eq!(bank.ledger.len(), 1);
        assert_eq!(bank.ledger.counters().keys_reused, 2);
    }

    #[tokio::test]
    async fn without_a_key_an_optional_route_makes_an_effect_every_time() {
        // Proves the mistake shipsim must catch is reproduced faithfully: the same request
        // without a key, sent twice, makes two effects with different ids, and both are
        // counted as requests without a key.
        let bank = host(&bank());
        let body = r#"{"amount": 1250}"#;
        let first = bank.post("/v1/charges", None, body).await;
        let second = bank.post("/v1/charges", None, body).await;
        assert_eq!((first.status, second.status), (201, 201));
        assert_ne!(first.json["id"], second.json["id"]);
        assert!(!second.replayed());
        assert_eq!(first.json["idempotency_key"], Value::Null);
        assert_eq!(bank.ledger.len(), 2);
        assert_eq!(bank.ledger.counters().requests_without_key, 2);
        assert!(bank.ledger.effects().iter().all(|e| e.key.is_none()));
    }

    #[tokio::test]
    async fn without_a_key_a_required_route_refuses() {
        // Proves a route that requires keys answers a keyless request with 400
        // `idempotency_key_missing` naming the header, and makes no effect.
        let bank = host(&bank());
        let reply = bank.post("/v1/accounts/a1/transfers", None, "{}").await;
        assert_eq!(reply.status, 400, "{reply:?}");
        assert_eq!(reply.code(), "idempotency_key_missing");
        assert_eq!(
            reply.json["error"]["details"][0]["field"],
            "Idempotency-Key"
        );
        assert!(bank.ledger.is_empty());
        assert_eq!(bank.ledger.counters().requests_without_key, 1);
    }

    #[tokio::test]
    async fn a_refusal_rule_refuses_without_an_effect_and_without_storing_the_key() {
        // Proves a request meeting a refusal rule gets the rule's status and code in the
        // envelope and makes no effect; the same request is refused again, and a corrected
        // request under the same key is a new effect (refusals are not stored).
        let bank = host(&bank());
        let declined = r#"{"amount": 1250, "source": "tok_declined"}"#;
        let reply = bank.post("/v1/charges", Some("k-1"), declined).await;
        assert_eq!(reply.status, 402, "{reply:?}");
        assert_eq!(reply.code(), "card_declined");
        assert_eq!(reply.json["error"]["details"][0]["field"], "/source");
        assert_eq!(
            bank.post("/v1/charges", Some("k-1"), declined).await.status,
            402
        );
        assert!(bank.ledger.is_empty());
        let fixed = r#"{"amount": 1250, "source": "tok_ok"}"#;
        assert_eq!(
            bank.post("/v1/charges", Some("k-1"), fixed).await.status,
            201
        );
        assert_eq!(bank.ledger.len(), 1);
        assert_eq!(bank.ledger.counters().refusals, 2);
    }

    #[tokio::test]
    async fn auth_refuses_missing_and_unknown_secrets_and_scopes_keys() {
        // Proves auth: no header and a wrong secret (even one differing only in its last
        // character) are 401s in the envelope with no effect; the same key from two
        // principals makes two effects, each recorded under its principal.
        let bank = host(&bank());
        let body = r#"{"amount": 1}"#;
        let none = bank
            .call(Method::POST, "/v1/charges", None, Some("k"), body)
            .await;
        assert_eq!((none.status, none.code()), (401, "unauthenticated"));
        let wrong = bank
            .call(
                Method::POST,
                "/v1/charges",
                Some("Bearer sk_test_shoq"),
                Some("k"),
                body,
            )
            .await;
        assert_eq!((wrong.status, wrong.code()), (401, "unauthenticated"));
        assert!(bank.ledger.is_empty());
        assert_eq!(bank.ledger.counters().unauthenticated, 2);
        let shop = bank
            .call(
                Method::POST,
                "/v1/charges",
                Some(SECRET_SHOP),
                Some("k"),
                body,
            )
            .await;
        let other = bank
            .call(
                Method::POST,
                "/v1/charges",
                Some(SECRET_OTHER),
                Some("k"),
                body,
            )
            .await;
        assert_eq!((shop.status, other.status), (201, 201));
        assert_ne!(shop.json["id"], other.json["id"]);
        let principals: Vec<String> = bank
            .ledger
            .effects()
            .into_iter()
            .map(|e| e.principal)
            .collect();
        assert_eq!(principals, vec!["shop", "other"]);
    }

    #[tokio::test]
    async fn a_read_route_returns_only_the_callers_own_effects() {
        // Proves a read route returns the effect's stored response to its principal, and the
        // same 404 for another principal's effect, an unknown id, and an effect of another
        // kind; a read template is filled from the effect and the read's own path.
        let bank = host(&bank());
        let created = bank
            .post("/v1/charges", Some("k-1"), r#"{"amount": 1250}"#)
            .await;
        let id = created.json["id"].as_str().unwrap();
        let read = bank.get(&format!("/v1/charges/{id}"), SECRET_SHOP).await;
        assert_eq!((read.status, &read.json), (200, &created.json));
        assert!(!read.replayed());
        let foreign = bank.get(&format!("/v1/charges/{id}"), SECRET_OTHER).await;
        assert_eq!((foreign.status, foreign.code()), (404, "not_found"));
        let unknown = bank.get("/v1/charges/ch_nope", SECRET_SHOP).await;
        assert_eq!((unknown.status, unknown.code()), (404, "not_found"));
        let transfer = bank
            .post("/v1/accounts/acct_9/transfers", Some("k-2"), "{}")
            .await;
        assert_eq!(transfer.json["account"], "acct_9");
        let tid = transfer.json["id"].as_str().unwrap();
        assert!(tid.starts_with("transfer_"), "{tid}");
        let wrong_kind = bank.get(&format!("/v1/charges/{tid}"), SECRET_SHOP).await;
        assert_eq!(wrong_kind.status, 404);
        let templated = bank
            .get(
                &format!("/v1/accounts/acct_other/transfers/{tid}"),
                SECRET_SHOP,
            )
            .await;
        assert_eq!(
            templated.json,
            json!({"id": tid, "asked_for": "acct_other", "read_at": NOW_MS})
        );
    }

    #[tokio::test]
    async fn malformed_requests_are_refused_in_the_envelope_without_an_effect() {
        // Proves bad input never makes an effect: malformed JSON (with its position), a
        // missing required field (named), an over-long or non-printable key, and a body over
        // the limit are each refused with the right status and code, and counted.
        let bank = host(&bank());
        let bad_json = bank.post("/v1/charges", Some("k"), r#"{"amount": "#).await;
        assert_eq!((bad_json.status, bad_json.code()), (400, "malformed_json"));
        let issue = bad_json.json["error"]["details"][0]["issue"]
            .as_str()
            .unwrap();
        assert!(issue.contains("line 1"), "{issue}");
        let missing = bank
            .post("/v1/charges", Some("k"), r#"{"amount": null}"#)
            .await;
        assert_eq!((missing.status, missing.code()), (400, "validation_failed"));
        assert_eq!(missing.json["error"]["details"][0]["field"], "/amount");
        let long_key = "k".repeat(KEY_LEN_MAX + 1);
        let long = bank
            .post("/v1/charges", Some(&long_key), r#"{"amount": 1}"#)
            .await;
        assert_eq!((long.status, long.code()), (400, "validation_failed"));
        let spaced = bank
            .post("/v1/charges", Some("a key"), r#"{"amount": 1}"#)
            .await;
        assert_eq!(spaced.status, 400);
        let huge = format!(
            r#"{{"amount": 1, "pad": "{}"}}"#,
            "x".repeat(REQUEST_BYTES_MAX)
        );
        let too_large = bank.post("/v1/charges", Some("k"), &huge).await;
        assert_eq!(
            (too_large.status, too_large.code()),
            (413, "payload_too_large")
        );
        assert!(bank.ledger.is_empty());
        assert_eq!(bank.ledger.counters().invalid, 5);
    }

    #[tokio::test]
    async fn unknown_routes_and_methods_get_the_envelope() {
        // Proves the fallbacks answer in the envelope: 404 for an unknown path, 405 for a
        // known path with a method it does not take.
        let bank = host(&bank());
        let unknown = bank.post("/v1/refunds", None, "{}").await;
        assert_eq!((unknown.status, unknown.code()), (404, "route_not_found"));
        let method = bank
            .call(Method::DELETE, "/v1/charges", Some(SECRET_SHOP), None, "")
            .await;
        assert_eq!((method.status, method.code()), (405, "method_not_allowed"));
    }

    #[tokio::test]
    async fn ids_differ_across_boots_and_repeat_for_the_same_boot() {
        // Proves ids derive from the seed and the boot number: a restarted host (boot 1)
        // sharing the ledger gives ids the first boot did not, while the same seed and boot
        // on a fresh ledger give the same ids again (determinism).
        let spec = bank();
        let ledger = DownstreamLedger::new();
        let body = r#"{"amount": 1}"#;
        let first = boot(&spec, &ledger, 5, 0)
            .post("/v1/charges", None, body)
            .await;
        let restarted = boot(&spec, &ledger, 5, 1);
        let second = restarted.post("/v1/charges", None, body).await;
        assert_ne!(first.json["id"], second.json["id"]);
        let effects = ledger.effects();
        assert_eq!(
            effects.iter().map(|e| (e.seq, e.boot)).collect::<Vec<_>>(),
            vec![(1, 0), (2, 1)]
        );
        let again = boot(&spec, &DownstreamLedger::new(), 5, 0)
            .post("/v1/charges", None, body)
            .await;
        assert_eq!(again.json["id"], first.json["id"]);
        let other_seed = boot(&spec, &DownstreamLedger::new(), 6, 0)
            .post("/v1/charges", None, body)
            .await;
        assert_ne!(other_seed.json["id"], first.json["id"]);
    }

    #[tokio::test]
    async fn the_ledger_lists_effects_in_order_and_the_admin_route_serves_it() {
        // Proves the ledger keeps effects in the order made, numbered from 1, with counters,
        // and that the admin route returns exactly that snapshot to the admin key only.
        let bank = host(&bank());
        for (key, amount) in [("a", 3), ("b", 1), ("c", 2)] {
            bank.post(
                "/v1/charges",
                Some(key),
                &format!(r#"{{"amount": {amount}}}"#),
            )
            .await;
        }
        bank.post("/v1/charges", Some("a"), r#"{"amount": 3}"#)
            .await;
        let effects = bank.ledger.effects();
        let order: Vec<(u64, Option<&str>)> =
            effects.iter().map(|e| (e.seq, e.key.as_deref())).collect();
        assert_eq!(order, vec![(1, Some("a")), (2, Some("b")), (3, Some("c"))]);
        let refused = bank.get(ADMIN_LEDGER_PATH, SECRET_SHOP).await;
        assert_eq!(refused.status, 401);
        let request = Request::get(ADMIN_LEDGER_PATH)
            .header("x-admin-key", "admin-secret")
            .body(Body::empty())
            .unwrap();
        let admin = bank.send(request).await;
        assert_eq!(admin.status, 200);
        let snapshot: LedgerSnapshot = serde_json::from_value(admin.json).unwrap();
        assert_eq!(snapshot, bank.ledger.snapshot());
        assert_eq!(snapshot.counters.replays, 1);
        let open = host(&DownstreamSpec::new("open").effect(EffectRoute::post("/x", "x")));
        assert_eq!(open.get(ADMIN_LEDGER_PATH, "").await.status, 200);
    }

    #[tokio::test]
    async fn an_ignored_key_makes_an_effect_every_time_but_is_recorded() {
        // Proves a route that ignores keys makes a new effect for each repeat of a keyed
        // request, records the key sent on each, and neither refuses a bad key nor counts
        // keyless requests (the API has no keys to forget).
        let spec = DownstreamSpec::new("carrier")
            .effect(EffectRoute::post("/labels", "label").key_ignored());
        let carrier = host(&spec);
        let plain = |key| carrier.call(Method::POST, "/labels", None, key, "{}");
        assert_eq!(plain(Some("k")).await.status, 201);
        assert_eq!(plain(Some("k")).await.status, 201);
        assert_eq!(plain(Some("bad key")).await.status, 201);
        assert_eq!(plain(None).await.status, 201);
        let keys: Vec<Option<String>> = carrier
            .ledger
            .effects()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(keys, vec![Some("k".into()), Some("k".into()), None, None]);
        assert_eq!(carrier.ledger.counters().requests_without_key, 0);
        assert_eq!(carrier.ledger.counters().replays, 0);
    }

    #[tokio::test]
    async fn the_idempotency_header_is_configurable() {
        // Proves a downstream reads keys from the header it is told to, and only from it.
        let spec = DownstreamSpec::new("psp")
            .idempotency_header("X-Request-Key")
            .effect(EffectRoute::post("/pay", "payment").key_required());
        let psp = host(&spec);
        let keyed = Request::post("/pay")
            .header("x-request-key", "k")
            .body(Body::from("{}"))
            .unwrap();
        assert_eq!(psp.send(keyed).await.status, 201);
        let standard = psp.call(Method::POST, "/pay", None, Some("k"), "{}").await;
        assert_eq!(standard.status, 400);
        assert_eq!(
            standard.json["error"]["details"][0]["field"],
            "X-Request-Key"
        );
    }

    #[tokio::test]
    async fn a_full_ledger_and_an_oversized_response_refuse_without_an_effect() {
        // Proves the bounds are reported outcomes: a full ledger answers 507 `ledger_full`
        // and counts it; a template rendering past the response limit answers 500; neither
        // records an effect.
        let spec = DownstreamSpec::new("tiny").effect(
            EffectRoute::post("/echo", "echo")
                .respond(201, Value::Array(vec![json!("{{body}}"); 64])),
        );
        let tiny = boot(&spec, &DownstreamLedger::with_effects_max(1), 1, 0);
        assert_eq!(tiny.post("/echo", None, "{}").await.status, 201);
        let full = tiny.post("/echo", None, "{}").await;
        assert_eq!((full.status, full.code()), (507, "ledger_full"));
        assert_eq!(tiny.ledger.counters().ledger_full, 1);
        let roomy = host(&spec);
        let big = format!(r#""{}""#, "x".repeat(60 * 1024));
        let oversized = roomy.post("/echo", None, &big).await;
        assert_eq!((oversized.status, oversized.code()), (500, "internal"));
        assert!(roomy.ledger.is_empty());
    }

    #[test]
    fn an_id_generator_that_only_repeats_itself_is_refused_not_looped() {
        // Proves the id draw is bounded: a generator that keeps returning a taken id ends in
        // `IdsExhausted` after a few draws instead of looping, and records nothing.
        let ledger = DownstreamLedger::new();
        let attempt = |key: &'static str| Attempt {
            effect: "e",
            route: "POST /e",
            path: "/e",
            principal: "p",
            key: Some(key),
            honour_key: true,
            fingerprint: key,
            request: &Value::Null,
            refusal: None,
            at_ms: 0,
            boot: 0,
        };
        let respond = |_: &str, _: u64| Ok::<_, ()>((201, Value::Null));
        let mut draws = 0;
        let first = ledger.settle(attempt("a"), || "same".into(), respond);
        assert!(matches!(first, Ok(Outcome::New(_))));
        let second = ledger.settle(
            attempt("b"),
            || {
                draws += 1;
                "same".into()
            },
            respond,
        );
        assert_eq!(second, Ok(Outcome::IdsExhausted));
        assert_eq!(draws, 8);
        assert_eq!(ledger.len(), 1);
    }

    #[test]
    fn invalid_specs_are_refused_naming_the_field() {
        // Proves compile-time validation: each kind of mistake is a SpecError naming the
        // field and the problem, before anything is served.
        let base =
            || DownstreamSpec::new("bank").effect(EffectRoute::post("/v1/charges", "charge"));
        let cases = [
            (DownstreamSpec::new("b a n k"), "name", "letters"),
            (
                base().idempotency_header("Bad Header"),
                "idempotency_header",
                "header name",
            ),
            (
                base().effect(EffectRoute::post("/v1/charges", "again")),
                "effects[1].path",
                "also effects[0]",
            ),
            (
                base()
                    .effect(EffectRoute::post("/v1/{a}", "a"))
                    .effect(EffectRoute::post("/v1/{b}/x", "b")),
                "effects[2].path",
                "name them the same",
            ),
            (
                base().effect(EffectRoute::post("v1", "a")),
                "effects[1].path",
                "start with",
            ),
            (
                base().read(ReadRoute::get("/v1/refunds/{id}", "refund")),
                "reads[0].effect",
                "no effect route",
            ),
            (
                base().read(ReadRoute::get("/v1/charges/{charge}", "charge")),
                "reads[0].id_param",
                "no parameter",
            ),
            (
                base().effect(EffectRoute::post("/x", "x").respond(404, json!({}))),
                "effects[1].status",
                "200..=299",
            ),
            (
                base()
                    .effect(EffectRoute::post("/x", "x").respond(201, json!({"a": ["{{nope}}"]}))),
                "effects[1].response/a/0",
                "not a placeholder",
            ),
            (
                base().effect(EffectRoute::post("/x", "x").require("amount")),
                "effects[1].require[0]",
                "JSON pointer",
            ),
            (
                base().effect(EffectRoute::post("/x", "x").refuse_when("/a", 1, 500, "boom")),
                "effects[1].refusals[0].status",
                "400..=499",
            ),
            (
                base().effect(EffectRoute::post("/x", "x").refuse_when(
                    "/a",
                    1,
                    402,
                    "Card-Declined",
                )),
                "effects[1].refusals[0].code",
                "lower-case",
            ),
            (
                base().effect(EffectRoute::post("/x", "x").id_prefix("c h")),
                "effects[1].id_prefix",
                "printable",
            ),
            (
                base().auth(AuthSpec::header("Authorization")),
                "auth.credentials",
                "1 to",
            ),
            (
                base().auth(AuthSpec::header("Idempotency-Key").credential("s", "p")),
                "auth.header",
                "differ",
            ),
            (
                base().auth(
                    AuthSpec::header("Authorization")
                        .credential("s", "p")
                        .credential("s", "q"),
                ),
                "auth.credentials[1].secret",
                "twice",
            ),
            (
                base().auth(AuthSpec::header("Authorization").credential("s\n", "p")),
                "auth.credentials[0].secret",
                "printable",
            ),
            (base().admin_key(""), "admin_key", "printable"),
        ];
        for (spec, field, problem) in cases {
            let error = spec.compile().unwrap_err();
            assert_eq!(error.field, field, "{error}");
            assert!(error.problem.contains(problem), "{error}");
            assert_eq!(error.downstream, spec.name);
        }
        let many = (0..=ROUTES_MAX).fold(DownstreamSpec::new("many"), |spec, i| {
            spec.effect(EffectRoute::post(&format!("/r{i}"), "r"))
        });
        assert_eq!(many.compile().unwrap_err().field, "effects");
    }

    #[test]
    fn a_spec_deserialises_strictly_and_round_trips() {
        // Proves the file form: a spec deserialises with every default a builder gives,
        // unknown fields are errors, and serialising then deserialising gives the spec back.
        let text = json!({
            "name": "bank",
            "auth": {"header": "Authorization", "credentials": [{"secret": "s", "principal": "shop"}]},
            "effects": [{
                "method": "POST", "path": "/v1/charges", "effect": "charge", "id_prefix": "ch_",
                "key": "required", "response": {"id": "{{id}}"},
                "refusals": [{"pointer": "/source", "equals": "tok_declined", "status": 402, "code": "card_declined"}]
            }],
            "reads": [{"method": "GET", "path": "/v1/charges/{id}", "effect": "charge"}]
        });
        let spec: DownstreamSpec = serde_json::from_value(text).unwrap();
        let built = DownstreamSpec::new("bank")
            .auth(AuthSpec::header("Authorization").credential("s", "shop"))
            .effect(
                EffectRoute::post("/v1/charges", "charge")
                    .id_prefix("ch_")
                    .key_required()
                    .respond(201, json!({"id": "{{id}}"}))
                    .refuse_when("/source", "tok_declined", 402, "card_declined"),
            )
            .read(ReadRoute::get("/v1/charges/{id}", "charge"));
        assert_eq!(spec, built);
        assert!(spec.compile().is_ok());
        let round: DownstreamSpec =
            serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
        assert_eq!(round, spec);
        let unknown = serde_json::from_value::<DownstreamSpec>(json!({"name": "b", "routes": []}));
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown field `routes`")
        );
        let nested = serde_json::from_value::<DownstreamSpec>(json!({
            "name": "b", "effects": [{"method": "POST", "path": "/x", "effect": "x", "statuss": 201}]
        }));
        assert!(
            nested
                .unwrap_err()
                .to_string()
                .contains("unknown field `statuss`")
        );
        assert!(
            !format!("{spec:?}").contains("\"s\""),
            "secrets stay out of Debug"
        );
    }

    fn segment() -> impl Strategy<Value = String> {
        // Mostly shapes that compile, so the property is exercised; some that do not, so
        // validation is too.
        prop_oneof![
            4 => Just("v1".to_string()),
            4 => Just("x".to_string()),
            4 => Just("{id}".to_string()),
            4 => Just("{a}".to_string()),
            4 => Just("{b}".to_string()),
            1 => Just("{*r}".to_string()),
            1 => Just(String::new()),
            1 => Just("__shipsim".to_string()),
        ]
    }

    fn path() -> impl Strategy<Value = String> {
        prop::collection::vec(segment(), 0..4)
            .prop_map(|segments| format!("/{}", segments.join("/")))
    }

    proptest! {
        #[test]
        fn every_spec_that_compiles_builds_a_router(
            routes in prop::collection::vec((path(), prop::bool::weighted(0.3), 0..5_usize), 1..6)
        ) {
            // Proves validation is strict enough for axum: whatever mix of paths, methods
            // and parameter names a spec holds, if it compiles, building its router does
            // not panic.
            let methods = [HttpMethod::Get, HttpMethod::Post, HttpMethod::Put, HttpMethod::Patch, HttpMethod::Delete];
            let mut spec = DownstreamSpec::new("p");
            for (path, is_read, method) in &routes {
                spec = if *is_read {
                    // Reads take the id from the path's first parameter, if it has one.
                    let param = path.split('/').find_map(|s| s.strip_prefix('{')?.strip_suffix('}'));
                    spec.read(ReadRoute::new(methods[*method], path, "e").id_param(param.unwrap_or("id")))
                } else {
                    spec.effect(EffectRoute::new(methods[*method], path, "e"))
                };
            }
            if let Ok(downstream) = spec.compile() {
                let _router = downstream.router(DownstreamDeps {
                    clock: Arc::new(FixedClock(0)),
                    ledger: DownstreamLedger::new(),
                    observer: Arc::new(NoopObserver),
                    seed: Seed(0),
                    boot: 0,
                });
            }
        }
    }
}
