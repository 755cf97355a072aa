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
use crate::api::{ErrorBody, ErrorEnvelope, HEADER_API_KEY, HEADER_REQUEST_ID};
use crate::seed::IdGen;

/// The id of the request being served (`req_...`), also sent as `X-Request-Id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The authenticated caller (merchant id) of the request being served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller(pub String);

/// Outermost middleware: gives the request an id, and renders any [`ApiError`] into the
/// envelope with that id.
pub(crate) async fn request_context(
    State(ids): State<Arc<IdGen>>,
    mut request: Request,
    next: Next,
) -> Response {
    let request_id = ids.next("req");
    request
        .extensions_mut()
        .insert(RequestId(request_id.clone()));
    let mut response = next.run(request).await;
    if let Some(PendingError(error)) = response.extensions_mut().remove::<PendingError>() {
        response = render_envelope(response, error, &request_id);
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(HEADER_REQUEST_ID, value);
    }
    response
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

/// Authenticates the caller by `X-API-Key` and records it in the request's extensions.
pub(crate) async fn authenticate(
    State(service): State<Arc<Service>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(presented) = request.headers().get(HEADER_API_KEY) else {
        return ApiError::unauthenticated("send your API key in the X-API-Key header")
            .into_response();
    };
    let caller = presented
        .to_str()
        .ok()
        .and_then(|key| service.config.api_keys.get(key))
        .cloned();
    let Some(caller) = caller else {
        return ApiError::unauthenticated("unknown API key").into_response();
    };
    tracing::Span::current().record("caller", caller.as_str());
    request.extensions_mut().insert(Caller(caller));
    next.run(request).await
}

/// Fallback for paths no route matches.
pub(crate) async fn no_route(request: Request) -> ApiError {
    ApiError::no_route(request.method().as_str(), request.uri().path())
}

/// Fallback for a known path with a method it does not take.
pub(crate) async fn wrong_method() -> ApiError {
    ApiError::method_not_allowed()
}
