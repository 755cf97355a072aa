//! The service's one error type and the envelope every non-2xx response carries.
//!
//! Handlers and middleware return [`ApiError`]. Its `IntoResponse` sets the status and leaves
//! the error in a response extension; the outermost middleware ([`super::context`]) renders
//! it into `{ "error": { code, message, details, request_id } }` once the request id is known,
//! so no error path can forget the id or the envelope.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::api::FieldError;
use crate::store::StoreError;

/// An error the service reports to its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code. Owned only where a user configures it (a simulated
    /// downstream's refusal codes); the service's own codes are static.
    pub code: Cow<'static, str>,
    /// A sentence for people.
    pub message: String,
    /// Field-level details of validation errors.
    pub details: Vec<FieldError>,
    /// Seconds to send as `Retry-After`, for 429 and 503.
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::with_code(status, code, message)
    }

    /// An error with any status and code, for components whose codes are configured rather
    /// than fixed (a simulated downstream's refusal rules).
    #[must_use]
    pub fn with_code(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            details: Vec::new(),
            retry_after_s: None,
        }
    }

    /// 400 `validation_failed` with field details.
    #[must_use]
    pub fn validation(details: Vec<FieldError>) -> Self {
        let mut error = ApiError::new(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "the request is invalid; see details",
        );
        error.details = details;
        error
    }

    /// 400 `malformed_json`: the body is not the JSON the endpoint takes.
    #[must_use]
    pub fn malformed(field: String, issue: String) -> Self {
        let mut error = ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the request body is not valid JSON for this endpoint; see details",
        );
        error.details = vec![FieldError { field, issue }];
        error
    }

    /// 400 `idempotency_key_missing`.
    #[must_use]
    pub fn key_missing() -> Self {
        let mut error = ApiError::new(
            StatusCode::BAD_REQUEST,
            "idempotency_key_missing",
            "writes require an Idempotency-Key header or an idempotency_key body field",
        );
        error.details = vec![FieldError {
            field: "Idempotency-Key".into(),
            issue: "required".into(),
        }];
        error
    }

    /// 401: no or unknown API key.
    #[must_use]
    pub fn unauthenticated(message: &str) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 403: the operator's endpoints are switched off (no admin key configured), so no key
    /// would be accepted.
    #[must_use]
    pub fn admin_disabled() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "the admin endpoints are disabled: no admin key is configured (start the server with --admin-key to enable them)",
        )
    }

    /// 404 for a resource the caller cannot see.
    #[must_use]
    pub fn not_found(what: &str, id: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no {what} with id `{id}`"),
        )
    }

    /// 404 for an unknown route.
    #[must_use]
    pub fn no_route(method: &str, path: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            format!("no endpoint {method} {path}"),
        )
    }

    /// 405 for a known path with the wrong method.
    #[must_use]
    pub fn method_not_allowed() -> Self {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not take that method",
        )
    }

    /// 409: a request with the same key is still executing (IETF draft, section 2.7).
    #[must_use]
    pub fn in_flight() -> Self {
        let mut error = ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_request_in_progress",
            "a request with this idempotency key is still being processed; retry later",
        );
        error.retry_after_s = Some(1);
        error
    }

    /// 422: the key was used before with a different request (IETF draft, section 2.7).
    #[must_use]
    pub fn key_reused() -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this idempotency key was used with a different request",
        )
    }

    /// 413: body larger than the limit.
    #[must_use]
    pub fn too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request bodies are limited to {limit} bytes"),
        )
    }

    /// 415: the body is not declared as JSON.
    #[must_use]
    pub fn unsupported_media_type() -> Self {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        )
    }

    /// 429: the caller exceeded its rate limit.
    #[must_use]
    pub fn rate_limited(retry_after_s: u64) -> Self {
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; retry after the time in Retry-After",
        );
        error.retry_after_s = Some(retry_after_s);
        error
    }

    /// 422: the carrier refused to sell a label (stored and replayed like a success).
    #[must_use]
    pub fn carrier_rejected(reason: &str) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "carrier_rejected",
            format!("the carrier refused the label: {reason}"),
        )
    }

    /// 503: the carrier is unreachable; the operation can be retried with the same key.
    #[must_use]
    pub fn carrier_unavailable(reason: &str) -> Self {
        let mut error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "carrier_unavailable",
            format!("the carrier could not be reached ({reason}); retry with the same key"),
        );
        error.retry_after_s = Some(1);
        error
    }

    /// 400: a webhook whose signature or timestamp does not check out.
    #[must_use]
    pub fn bad_signature(error: &crate::webhook::SignatureError) -> Self {
        let code = match error {
            crate::webhook::SignatureError::OutsideTolerance { .. } => "timestamp_out_of_tolerance",
            _ => "invalid_signature",
        };
        ApiError::new(StatusCode::BAD_REQUEST, code, error.to_string())
    }

    /// A rejection the HTTP framework made before a handler ran (axum's extractors and
    /// layers, hyper's parser), with its status and its text as the message.
    #[must_use]
    pub fn framework(status: StatusCode, message: String) -> Self {
        ApiError::new(status, framework_code(status), message)
    }

    /// 500: a bug or a store failure.
    #[must_use]
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

/// The envelope code of a framework rejection with `status`.
#[must_use]
pub fn framework_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        404 => "route_not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        411 => "length_required",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        422 => "unprocessable_entity",
        431 => "headers_too_large",
        500..=599 => "internal",
        _ => "bad_request",
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let mut api = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            error.to_string(),
        );
        api.retry_after_s = Some(1);
        api
    }
}

/// The error waiting in a response's extensions for the envelope renderer.
#[derive(Clone, Debug)]
pub(crate) struct PendingError(pub ApiError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        if let Some(seconds) = self.retry_after_s {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(PendingError(self));
        response
    }
}
