//! `[receiver]`: a webhook receiver in any language, described for `shipsim live-receiver`:
//! where its events are posted and what they look like, how they are signed (the secret
//! from the environment or a file, never the command line), and how to read back what it
//! did to a resource. Validated into a [`ReceiverDescription`], every problem located.

use std::fmt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::Value;
use toml::Spanned;

use super::raw::{RawReadBack, RawReceiver, RawSigning};
use super::{Ctx, Route, SourceText, env_name, header_name, read_source, route};
use crate::receiver::{BODY_DEFAULT, Events, Observed, Signing};
use crate::scenario::ScenarioError;
use shipsim_system::transport::{HttpRequest, HttpResponse};

/// The signing schemes a description may name, as written.
const SCHEMES: [&str; 3] = ["standard_webhooks", "stripe", "hmac_body"];

/// Longest signing secret read.
const SECRET_LEN_MAX: usize = 512;

/// Where the signing secret came from, and the secret (never printed).
#[derive(Clone, PartialEq, Eq)]
pub enum ReceiverSecret {
    /// Named but not read yet ([`super::Description::parse`] reads nothing).
    Unread,
    /// Read.
    Read {
        /// Where it came from, for messages (`environment variable SHOP_WEBHOOK_SECRET`).
        source: String,
        /// The secret.
        secret: String,
    },
}

// The secret never reaches logs or panic messages.
impl fmt::Debug for ReceiverSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReceiverSecret::Unread => f.write_str("Unread"),
            ReceiverSecret::Read { source, .. } => {
                f.debug_struct("Read").field("source", source).finish()
            }
        }
    }
}

/// A validated `[receiver]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceiverDescription {
    /// Where events are posted (`POST /webhooks`).
    pub events: Route,
    /// The event body template ([`BODY_DEFAULT`] unless written).
    pub body: String,
    /// Event types by sequence, if written.
    pub types: Option<Vec<String>>,
    /// `standard_webhooks`, `stripe` or `hmac_body`.
    pub scheme: String,
    /// The signature header (`stripe` and `hmac_body`).
    pub header: Option<http::HeaderName>,
    /// `secret_env`, if given.
    pub secret_env: Option<String>,
    /// `secret_file`, resolved against the description's directory, if given.
    pub secret_file: Option<PathBuf>,
    secret_file_written: Option<String>,
    /// The secret.
    pub secret: ReceiverSecret,
    /// The read-back request, `{resource}` in its path.
    pub read_back: Route,
    /// JSON pointer to the resource's sequence in a read-back answer.
    pub sequence: String,
    /// JSON pointer to the ids of the events applied to it.
    pub applied: String,
}

impl ReceiverDescription {
    /// The events' path and body template.
    #[must_use]
    pub fn event_shape(&self) -> Events {
        let events = Events::new(self.events.path.clone(), self.body.clone());
        match &self.types {
            Some(types) => events.types(types.clone()),
            None => events,
        }
    }

    /// How deliveries are signed, with the secret read.
    ///
    /// # Errors
    /// A sentence when the secret was not read.
    pub fn signing(&self) -> Result<Signing, String> {
        let ReceiverSecret::Read { secret, .. } = &self.secret else {
            return Err("the receiver's signing secret was not read".into());
        };
        let secret = secret.clone();
        let header = || {
            self.header
                .as_ref()
                .map_or_else(String::new, |h| h.as_str().to_string())
        };
        Ok(match self.scheme.as_str() {
            "standard_webhooks" => Signing::StandardWebhooks { secret },
            "stripe" => Signing::Stripe {
                header: header(),
                secret,
            },
            _ => Signing::HmacBody {
                header: header(),
                secret,
            },
        })
    }

    /// The read-back request for `resource` (a path-only URI).
    ///
    /// # Panics
    /// Never: the route was validated and the resource is percent-encoded.
    #[must_use]
    pub fn read_request(&self, resource: &str) -> HttpRequest {
        http::Request::builder()
            .method(self.read_back.method.clone())
            .uri(self.read_back.fill(Some(resource)))
            .body(Bytes::new())
            .expect("a validated route with an encoded id is a valid request")
    }

    /// What a read-back answer says: 404 is a resource the receiver never heard of; a 2xx
    /// holds the sequence (a number, or null) and the applied event ids (an array of
    /// strings) at the description's pointers.
    ///
    /// # Errors
    /// A sentence naming the status or the pointer that did not hold what it should.
    pub fn parse_read(&self, response: &HttpResponse) -> Result<Observed, String> {
        if response.status() == http::StatusCode::NOT_FOUND {
            return Ok(Observed::default());
        }
        if !response.status().is_success() {
            return Err(format!(
                "the read-back answered {}, not 2xx or 404",
                response.status()
            ));
        }
        let document: Value = serde_json::from_slice(response.body())
            .map_err(|e| format!("the read-back's answer is not JSON: {e}"))?;
        let sequence = match document.pointer(&self.sequence) {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.as_u64().ok_or_else(|| {
                format!(
                    "`sequence` {} holds {value}, not a whole number",
                    self.sequence
                )
            })?),
        };
        let applied = match document.pointer(&self.applied) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(ids)) => ids
                .iter()
                .map(|id| match id {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(format!(
                        "`applied` {} holds {other}, not an event id string",
                        self.applied
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(format!(
                    "`applied` {} holds {other}, not an array of event ids",
                    self.applied
                ));
            }
        };
        Ok(Observed { sequence, applied })
    }

    pub(super) fn to_table(&self) -> toml::Table {
        use toml::Value as V;
        let text = |s: &str| V::String(s.to_string());
        let mut table = toml::Table::new();
        table.insert("events".into(), text(&self.events.label()));
        table.insert("body".into(), text(&self.body));
        if let Some(types) = &self.types {
            table.insert(
                "types".into(),
                V::Array(types.iter().map(|t| text(t)).collect()),
            );
        }
        let mut signing = toml::Table::new();
        signing.insert("scheme".into(), text(&self.scheme));
        if let Some(header) = &self.header {
            signing.insert("header".into(), text(header.as_str()));
        }
        if let Some(env) = &self.secret_env {
            signing.insert("secret_env".into(), text(env));
        }
        if let Some(file) = &self.secret_file_written {
            signing.insert("secret_file".into(), text(file));
        }
        table.insert("signing".into(), V::Table(signing));
        let mut read_back = toml::Table::new();
        read_back.insert("request".into(), text(&self.read_back.label()));
        read_back.insert("sequence".into(), text(&self.sequence));
        read_back.insert("applied".into(), text(&self.applied));
        table.insert("read_back".into(), V::Table(read_back));
        table
    }
}

/// Validates `[receiver]`.
pub(super) fn receiver(
    ctx: &Ctx<'_>,
    base: &Path,
    table: &Spanned<RawReceiver>,
) -> Result<ReceiverDescription, ScenarioError> {
    let raw = table.get_ref();
    let events = route(ctx, &raw.events, None)?;
    if events.method != http::Method::POST {
        return Err(ctx
            .error(&raw.events, "webhook events are POSTed")
            .with_hint("events = \"POST /webhooks\""));
    }
    let body = raw
        .body
        .as_ref()
        .map_or_else(|| BODY_DEFAULT.to_string(), |b| b.get_ref().clone());
    let types: Option<Vec<String>> = match &raw.types {
        None => None,
        Some(list) if list.get_ref().is_empty() => {
            return Err(ctx.error(list, "`types` is empty").with_hint(
                "the event types by sequence: [\"shipment.created\", \"shipment.delivered\"]",
            ));
        }
        Some(list) => Some(list.get_ref().iter().map(|t| t.get_ref().clone()).collect()),
    };
    let shape = Events::new(events.path.clone(), body.clone());
    let shape = match &types {
        Some(types) => shape.types(types.clone()),
        None => shape,
    };
    if let Err(problem) = shape.check() {
        let span = raw.body.as_ref().map_or(raw.events.span(), Spanned::span);
        return Err(ctx.at(span, problem).with_hint(
            "placeholders: {id}, {type}, {timestamp}, {resource}, {sequence}; {id}, {resource} and {sequence} are required",
        ));
    }
    let signing = signing(ctx, table, raw.signing.as_ref())?;
    let read_back = read_back(ctx, table, raw.read_back.as_ref())?;
    let secret_file = signing.secret_file.as_ref().map(|f| base.join(f.get_ref()));
    Ok(ReceiverDescription {
        events,
        body,
        types,
        scheme: signing.scheme.get_ref().clone(),
        header: signing
            .header
            .as_ref()
            .map(|h| header_name(ctx, h))
            .transpose()?,
        secret_env: signing.secret_env.as_ref().map(|e| e.get_ref().clone()),
        secret_file,
        secret_file_written: signing.secret_file.as_ref().map(|f| f.get_ref().clone()),
        secret: ReceiverSecret::Unread,
        read_back: read_back.0,
        sequence: read_back.1,
        applied: read_back.2,
    })
}

fn signing<'a>(
    ctx: &Ctx<'_>,
    table: &Spanned<RawReceiver>,
    raw: Option<&'a Spanned<RawSigning>>,
) -> Result<&'a RawSigning, ScenarioError> {
    let Some(signing) = raw else {
        return Err(ctx
            .error(table, "`[receiver]` says nothing about how events are signed")
            .with_hint("[receiver.signing] scheme = \"standard_webhooks\", secret_env = \"MY_WEBHOOK_SECRET\""));
    };
    let raw = signing.get_ref();
    let scheme = raw.scheme.get_ref().as_str();
    if !SCHEMES.contains(&scheme) {
        return Err(ctx
            .error(&raw.scheme, format!("unknown signing scheme `{scheme}`"))
            .with_hint("standard_webhooks, stripe (`t=,v1=` in `header`) or hmac_body (hex HMAC of the body in `header`)"));
    }
    match (scheme, &raw.header) {
        ("standard_webhooks", Some(header)) => {
            return Err(ctx
                .error(header, "Standard Webhooks names its own headers")
                .with_hint("leave `header` out: webhook-id, webhook-timestamp and webhook-signature are sent"));
        }
        ("stripe" | "hmac_body", None) => {
            return Err(ctx
                .error(
                    signing,
                    format!("scheme `{scheme}` needs the signature's `header`"),
                )
                .with_hint("header = \"Stripe-Signature\", say"));
        }
        _ => {}
    }
    if raw.secret_env.is_none() && raw.secret_file.is_none() {
        return Err(ctx
            .error(signing, "`[receiver.signing]` says nowhere to read the secret from")
            .with_hint("secret_env = \"MY_WEBHOOK_SECRET\" or secret_file = \"webhook-secret.txt\"; never on the command line"));
    }
    if let Some(env) = &raw.secret_env {
        env_name(ctx, env)?;
    }
    Ok(raw)
}

fn read_back(
    ctx: &Ctx<'_>,
    table: &Spanned<RawReceiver>,
    raw: Option<&Spanned<RawReadBack>>,
) -> Result<(Route, String, String), ScenarioError> {
    let Some(read_back) = raw else {
        return Err(ctx
            .error(table, "`[receiver]` says nothing about how to see what the receiver did")
            .with_hint("[receiver.read_back] request = \"GET /tracking/{resource}\", sequence = \"/sequence\", applied = \"/applied\""));
    };
    let raw = read_back.get_ref();
    let request = route(ctx, &raw.request, Some("the resource"))?;
    if request.method != http::Method::GET || !request.has_id() {
        return Err(ctx
            .error(
                &raw.request,
                "the read-back is a GET with the resource in its path",
            )
            .with_hint("request = \"GET /tracking/{resource}\""));
    }
    let sequence = super::pointer(ctx, &raw.sequence)?;
    let applied = super::pointer(ctx, &raw.applied)?;
    Ok((request, sequence, applied))
}

/// Reads the signing secret: the environment variable when it is set, else the file (its
/// first line that is neither empty nor a `#` comment).
pub(super) fn read_secret(
    ctx: &Ctx<'_>,
    described: &ReceiverDescription,
    raw: &RawReceiver,
) -> Result<ReceiverSecret, ScenarioError> {
    let Some(signing) = raw.signing.as_ref().map(Spanned::get_ref) else {
        return Ok(ReceiverSecret::Unread);
    };
    let file_span = signing.secret_file.as_ref().map_or(0..0, Spanned::span);
    let read = read_source(
        ctx,
        signing.secret_env.as_ref(),
        described.secret_file.as_deref(),
        file_span,
        "secret file",
    )?;
    let SourceText { source, text, span } = match (read, &signing.secret_env) {
        (Some(read), _) => read,
        (None, Some(env)) => {
            return Err(ctx
                .error(env, format!("environment variable {} is not set", env.get_ref()))
                .with_hint(format!(
                    "export {}=whsec_... (the secret the receiver verifies with), or add secret_file",
                    env.get_ref()
                )));
        }
        (None, None) => return Ok(ReceiverSecret::Unread),
    };
    let secret = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .unwrap_or_default()
        .to_string();
    if secret.is_empty() {
        return Err(ctx.at(span, format!("{source} holds no secret")));
    }
    if secret.len() > SECRET_LEN_MAX || !secret.bytes().all(|b| b.is_ascii_graphic()) {
        // The secret itself is never printed.
        return Err(ctx.at(
            span,
            format!("{source}: the secret is not 1 to {SECRET_LEN_MAX} printable ASCII characters without spaces"),
        ));
    }
    let read = ReceiverSecret::Read { source, secret };
    let probe = ReceiverDescription {
        secret: read.clone(),
        ..described.clone()
    };
    if let Err(problem) = probe.signing().and_then(|s| s.key().map(|_| ())) {
        return Err(ctx.at(span, problem));
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::super::Description;
    use super::*;

    /// The example's receiver.toml, as a user writes it.
    const TRACKING: &str = include_str!("../../../examples/python-shipping/receiver.toml");

    fn parse(text: &str) -> Result<Description, ScenarioError> {
        Description::parse("receiver.toml", text, Path::new("."))
    }

    fn answer(status: u16, body: &str) -> HttpResponse {
        http::Response::builder()
            .status(status)
            .body(Bytes::from(body.to_string()))
            .unwrap()
    }

    #[test]
    fn a_receiver_description_builds_events_and_reads_back() {
        // Proves a receiver-only description (no `[[kind]]`) parses into the events' shape,
        // the scheme and the read-back; that it writes back as itself; that a read-back
        // request carries the resource; and that answers read as what they say (404 an
        // unknown resource, nulls nothing, a wrong type a sentence naming the pointer).
        let description = parse(TRACKING).unwrap();
        assert!(description.kinds().is_empty());
        let receiver = description.receiver.clone().unwrap();
        assert_eq!(receiver.events.label(), "POST /webhooks/carrier");
        assert_eq!(receiver.scheme, "standard_webhooks");
        assert_eq!(receiver.secret, ReceiverSecret::Unread);
        assert!(receiver.signing().is_err(), "no secret read by `parse`");
        receiver.event_shape().check().unwrap();
        assert_eq!(parse(&description.to_toml()).unwrap(), description);
        assert_eq!(
            receiver.read_request("run_s1_res 0").uri().to_string(),
            "/tracking/run_s1_res%200"
        );
        assert_eq!(
            receiver.parse_read(&answer(404, "")).unwrap(),
            Observed::default()
        );
        let seen = receiver
            .parse_read(&answer(
                200,
                r#"{"sequence":3,"applied":["evt_1","evt_2","evt_1"]}"#,
            ))
            .unwrap();
        assert_eq!(seen.sequence, Some(3));
        assert_eq!(seen.applied, ["evt_1", "evt_2", "evt_1"]);
        let empty = receiver
            .parse_read(&answer(200, r#"{"sequence":null}"#))
            .unwrap();
        assert_eq!(empty, Observed::default());
        let wrong = receiver
            .parse_read(&answer(200, r#"{"sequence":"3","applied":[]}"#))
            .unwrap_err();
        assert!(wrong.contains("`sequence` /sequence"), "{wrong}");
        let error = receiver.parse_read(&answer(500, "")).unwrap_err();
        assert!(error.contains("500"), "{error}");
    }

    #[test]
    fn receiver_mistakes_are_refused_where_they_are_written() {
        // Proves each mistake in a `[receiver]` table is a located error on the line it is
        // on, with the message a user needs.
        let cases: &[(&str, &str, &str)] = &[
            (
                "events = \"POST /webhooks/carrier\"",
                "events = \"GET /webhooks/carrier\"",
                "webhook events are POSTed",
            ),
            (
                "\"tracking_number\":\"{resource}\"",
                "\"tracking_number\":\"{resourse}\"",
                "unknown placeholder `{resourse}`",
            ),
            (
                "\"sequence\":{sequence}}}",
                "\"sequence\":3}}",
                "has no `{sequence}`",
            ),
            (
                "scheme = \"standard_webhooks\"",
                "scheme = \"svix\"",
                "unknown signing scheme `svix`",
            ),
            (
                "scheme = \"standard_webhooks\"",
                "scheme = \"stripe\"",
                "needs the signature's `header`",
            ),
            (
                "scheme = \"standard_webhooks\"",
                "scheme = \"standard_webhooks\"\nheader = \"X-Sig\"",
                "names its own headers",
            ),
            (
                "secret_env = \"TRACKING_WEBHOOK_SECRET\"",
                "secret_env = \"TRACKING-SECRET\"",
                "not an environment variable name",
            ),
            (
                "secret_env = \"TRACKING_WEBHOOK_SECRET\"\nsecret_file = \"webhook-secret.txt\"",
                "",
                "nowhere to read the secret from",
            ),
            (
                "request = \"GET /tracking/{resource}\"",
                "request = \"GET /tracking\"",
                "the resource in its path",
            ),
            (
                "applied = \"/applied\"",
                "applied = \"applied\"",
                "starts with `/`",
            ),
            (
                "sequence = \"/sequence\"",
                "sequence = \"/sequence\"\nsecret = \"whsec_x\"",
                "unknown field `secret`",
            ),
            (
                "types = [",
                "types = []\nold_types = [",
                "unknown field `old_types`",
            ),
        ];
        for (from, to, expected) in cases {
            assert!(TRACKING.contains(from), "{from}");
            let text = TRACKING.replacen(from, to, 1);
            let error = parse(&text).unwrap_err();
            let line = error.line.expect("located");
            let rendered = error.to_string();
            assert!(rendered.contains(expected), "{to}: {rendered}");
            assert!(
                rendered.starts_with(&format!("receiver.toml:{line}:")),
                "{rendered}"
            );
        }
        let types_line = TRACKING
            .lines()
            .find(|l| l.starts_with("types = ["))
            .unwrap();
        let error = parse(&TRACKING.replacen(types_line, "types = []", 1)).unwrap_err();
        assert!(error.to_string().contains("`types` is empty"), "{error}");
    }

    #[test]
    fn the_secret_comes_from_the_environment_or_a_file_and_is_never_shown() {
        // Proves `load` reads the signing secret from the file when the variable is unset,
        // that the secret never appears in Debug output, that a secret that is not
        // `whsec_` + base64 is a located error that does not print it, and that a variable
        // named without a file must be set.
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        let env = format!("SHIPSIM_TEST_UNSET_{}", std::process::id());
        let text = TRACKING
            .replace("TRACKING_WEBHOOK_SECRET", &env)
            .replace("webhook-secret.txt", "secret.txt");
        std::fs::write(dir.join("receiver.toml"), &text).unwrap();
        std::fs::write(dir.join("secret.txt"), "# dev\nwhsec_c2VjcmV0\n").unwrap();
        let loaded = Description::load(&dir.join("receiver.toml")).unwrap();
        let receiver = loaded.receiver.unwrap();
        assert_eq!(
            receiver.signing().unwrap(),
            Signing::standard_webhooks("whsec_c2VjcmV0")
        );
        assert!(!format!("{receiver:?}").contains("c2VjcmV0"));
        std::fs::write(dir.join("secret.txt"), "whsec_not*base64\n").unwrap();
        let error = Description::load(&dir.join("receiver.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("whsec_") && !error.contains("not*base64"),
            "{error}"
        );
        let no_file = text.replace("secret_file = \"secret.txt\"\n", "");
        std::fs::write(dir.join("receiver.toml"), no_file).unwrap();
        let error = Description::load(&dir.join("receiver.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains(&format!("{env} is not set")), "{error}");
    }
}
