//! Per-request context: the request id, the authenticated caller, and rendering of the error
//! envelope. These run as middleware around every route.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Service;
use super::error::{ApiError, PendingError};
use crate::api::{ErrorBody, ErrorEnvelope, HEADER_API_KEY, HEADER_REQUEST_ID, REQUEST_ID_LEN_MAX};
use crate::bugs::Bug;
use crate::seed::IdGen;

/// The id of the request being served (`req_...`), also sent as `X-Request-Id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The authenticated caller (merchant id) of the request being served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller(pub String);

/// Whether `id`, sent by the caller in `X-Request-Id`, is used as the request's id: 1 to
/// [`REQUEST_ID_LEN_MAX`] characters, each an ASCII letter or digit or one of `-_.:/+=@`
/// (a UUID, a ULID, a `req_...` id, a trace id all fit; nothing that could break a log line
/// or a header does).
#[must_use]
pub fn is_valid_request_id(id: &str) -> bool {
    (1..=REQUEST_ID_LEN_MAX).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b))
}

/// Outermost middleware of a downstream's router: gives the request an id (the caller's
/// `X-Request-Id` when it sent a valid one, else a fresh one), and renders any error into
/// the envelope with that id: the service's own [`ApiError`]s, and the rejections axum's
/// extractors and layers make before a handler runs (a body over the limit, ...), which
/// come out as plain text.
pub(crate) async fn request_context(
    State(ids): State<Arc<IdGen>>,
    request: Request,
    next: Next,
) -> Response {
    with_request_id(&ids, request, |request| next.run(request)).await
}

/// Outermost middleware of the service: [`request_context`], and within it the request's
/// span, log line and metrics ([`super::metrics::observe`]). One layer, not two: every
/// request pays for each `from_fn` layer it passes.
pub(crate) async fn served(
    State(service): State<Arc<Service>>,
    request: Request,
    next: Next,
) -> Response {
    with_request_id(&service.ids, request, |request| {
        super::metrics::observe(&service, request, next)
    })
    .await
}

/// Gives the request its id, serves it with `serve`, then renders any error into the
/// envelope with that id and sends the id back in `X-Request-Id`.
async fn with_request_id<F, Fut>(ids: &IdGen, mut request: Request, serve: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let supplied = request
        .headers()
        .get(HEADER_REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_valid_request_id(id))
        .map(str::to_string);
    let request_id = supplied.unwrap_or_else(|| ids.next("req"));
    request
        .extensions_mut()
        .insert(RequestId(request_id.clone()));
    let mut response = serve(request).await;
    if let Some(PendingError(error)) = response.extensions_mut().remove::<PendingError>() {
        response = render_envelope(response, error, &request_id);
    } else if is_bare_rejection(&response) {
        let error = framework_rejection(&mut response).await;
        response = render_envelope(response, error, &request_id);
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(HEADER_REQUEST_ID, value);
    }
    response
}

/// An error response that is not in the envelope: one the framework made (axum's
/// rejections are plain text), never one of ours.
fn is_bare_rejection(response: &Response) -> bool {
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    (response.status().is_client_error() || response.status().is_server_error()) && !is_json
}

/// Longest framework rejection text carried into the envelope's message.
const REJECTION_TEXT_BYTES_MAX: usize = 1_024;

/// The [`ApiError`] standing for a framework's rejection, its text as the message; the
/// response keeps its status (and headers), the body is replaced by the envelope.
async fn framework_rejection(response: &mut Response) -> ApiError {
    let status = response.status();
    let body = std::mem::take(response.body_mut());
    if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::too_large(super::validate::REQUEST_BYTES_MAX);
    }
    let text = axum::body::to_bytes(body, REJECTION_TEXT_BYTES_MAX)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    ApiError::framework(status, message)
}

fn render_envelope(response: Response, error: ApiError, request_id: &str) -> Response {
    let envelope = ErrorEnvelope {
        error: ErrorBody {
            code: error.code.to_string(),
            message: error.message,
            details: error.details,
            request_id: request_id.to_string(),
        },
    };
    let (mut parts, _empty) = response.into_parts();
    parts.headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = serde_json::to_vec(&envelope).expect("envelope serialises");
    Response::from_parts(parts, Body::from(body))
}

/// The merchant routes' middleware: authenticates the caller by `X-API-Key`, records it in
/// the request's extensions, then applies the caller's rate limit
/// ([`super::rate_limit::limit`]).
pub(crate) async fn authenticate(
    State(service): State<Arc<Service>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(presented) = request.headers().get(HEADER_API_KEY) else {
        return ApiError::unauthenticated("send your API key in the X-API-Key header")
            .into_response();
    };
    // Compared with every configured key in constant time: a map lookup on the secret
    // would leak, through its timing, how much of a guessed key was right.
    let found = service.api_keys.find(presented.as_bytes()).cloned();
    let Some((caller, retirement)) = found else {
        return ApiError::unauthenticated("unknown API key").into_response();
    };
    if let Some(retirement) = retirement {
        // The planted bug retires the old key as soon as its replacement is issued, as a
        // deploy that swaps the key instead of adding the new one does: requests clients
        // sent before they moved over (and their retries) are refused.
        let retired_at_ms = if service.config.bugs.has(Bug::RotationDropsOldKeyEarly) {
            retirement.replaced_at_ms
        } else {
            retirement.retired_at_ms
        };
        if service.clock.now_ms() >= retired_at_ms {
            return ApiError::unauthenticated("API key retired by a rotation").into_response();
        }
    }
    tracing::Span::current().record("caller", caller.as_str());
    request.extensions_mut().insert(Caller(caller.clone()));
    super::rate_limit::limit(&service, &caller, request, next).await
}

/// Fallback for paths no route matches.
pub(crate) async fn no_route(request: Request) -> ApiError {
    ApiError::no_route(request.method().as_str(), request.uri().path())
}

/// Fallback for a known path with a method it does not take.
pub(crate) async fn wrong_method() -> ApiError {
    ApiError::method_not_allowed()
}
