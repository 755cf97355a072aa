//! [`DescribedApi`]: the [`Api`] a description describes (requests built from its routes,
//! key placement, auth and body template; responses read at its pointers), and
//! [`Description::samples`], what it would send, checked.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use shipsim_system::transport::{HttpRequest, HttpResponse};

use super::Description;
use super::body::{self, Step};
use super::kind::DescribedKind;
use crate::target::{
    Api, ApiError, Caller, Conventions, CreateCall, Draw, KeyPlacement, Kind, ReadCall, Seen,
};

/// The [`Api`] of a described target.
#[derive(Clone)]
pub struct DescribedApi(pub(super) Arc<Description>);

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

impl Description {
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
            lines.extend(sample_requests(&api, described, &caller, &mut rng)?);
            check_response(&api, described)?;
        }
        Ok(lines)
    }
}

/// One create of `described` per key placement it takes and one read, as lines; checks
/// that the create's body is JSON and that `vary` changes a spending kind's body.
fn sample_requests(
    api: &DescribedApi,
    described: &DescribedKind,
    caller: &Caller,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    let kind = &described.kind;
    let name = kind.name();
    let body = api.body(
        kind,
        &mut Draw {
            rng,
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
                    caller,
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
                    caller,
                    id: &format!("{name}_1"),
                },
            )
            .map_err(|e| format!("kind `{name}`: the read cannot be built: {e}"))?;
        lines.push(format!("get_{name}: {}", render_request(&request)));
    }
    Ok(lines)
}

/// Checks that a response holding `described`'s pointers (each where it can be placed)
/// reads back as what it holds.
fn check_response(api: &DescribedApi, described: &DescribedKind) -> Result<(), String> {
    let kind = &described.kind;
    let name = kind.name();
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
        return Ok(());
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
    Ok(())
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

    use super::super::tests::{SHOP, parse};
    use super::*;

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
}
