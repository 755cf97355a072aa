//! Errors as RFC 9457 problem details (`application/problem+json`): a `type` URI naming the
//! problem, a `title`, the `status`, a `detail` sentence, and field `errors` on validation
//! failures. Every refusal of the API is one of the constructors below.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Where problem types live; a problem's `type` is this plus its slug.
pub const TYPE_BASE: &str = "https://payments.example/problems/";

/// One invalid field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    /// The field (`amount`, `Idempotency-Key`).
    pub field: String,
    /// What is wrong with it.
    pub issue: String,
}

/// A refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    errors: Vec<FieldProblem>,
    retry_after_s: Option<u32>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldProblem],
}

impl Problem {
    fn new(status: StatusCode, slug: &'static str, title: &'static str, detail: String) -> Self {
        Problem {
            status,
            slug,
            title,
            detail,
            errors: Vec::new(),
            retry_after_s: None,
        }
    }

    /// 401: no API key, or one nobody issued.
    #[must_use]
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Unauthenticated",
            "send your API key as `Authorization: Bearer <key>`".into(),
        )
    }

    /// 400: the request is invalid; `errors` says where.
    #[must_use]
    pub fn invalid(errors: Vec<FieldProblem>) -> Self {
        let mut problem = Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "Invalid request",
            "the request has invalid fields".into(),
        );
        problem.errors = errors;
        problem
    }

    /// 400 about one field.
    #[must_use]
    pub fn invalid_field(field: &str, issue: impl Into<String>) -> Self {
        Self::invalid(vec![FieldProblem {
            field: field.into(),
            issue: issue.into(),
        }])
    }

    /// 404: no such resource for this merchant (another merchant's looks the same).
    #[must_use]
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("no {what} `{id}`"),
        )
    }

    /// 404 for a path the API does not have.
    #[must_use]
    pub fn no_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "no-route",
            "Not found",
            "no such endpoint".into(),
        )
    }

    /// 405.
    #[must_use]
    pub fn wrong_method() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "wrong-method",
            "Method not allowed",
            "this endpoint does not take that method".into(),
        )
    }

    /// 422: the key was first used with another request.
    #[must_use]
    pub fn key_reused(key: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency key reused",
            format!("the key `{key}` was used with a different request"),
        )
    }

    /// 409 with `Retry-After`: the key's first request is still running.
    #[must_use]
    pub fn in_flight(key: &str) -> Self {
        let mut problem = Self::new(
            StatusCode::CONFLICT,
            "idempotency-request-in-progress",
            "Request in progress",
            format!("a request with the key `{key}` is still being processed; retry later"),
        );
        problem.retry_after_s = Some(1);
        problem
    }

    /// 402: the bank refused the charge. Stored and replayed like a success.
    #[must_use]
    pub fn payment_failed(code: &str) -> Self {
        Self::new(
            StatusCode::PAYMENT_REQUIRED,
            "payment-failed",
            "Payment failed",
            format!("the bank refused the charge: {code}"),
        )
    }

    /// 503 with `Retry-After`: the bank did not answer; the payment is kept and a retry
    /// with the same key resumes it.
    #[must_use]
    pub fn bank_unavailable() -> Self {
        let mut problem = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "bank-unavailable",
            "Bank unavailable",
            "the bank did not answer; retry with the same Idempotency-Key".into(),
        );
        problem.retry_after_s = Some(1);
        problem
    }

    /// 500: the store failed, or an invariant did.
    #[must_use]
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            detail.into(),
        )
    }

    /// The status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The body, as JSON text (what a stored outcome keeps).
    #[must_use]
    pub fn body(&self) -> String {
        serde_json::to_string(&Body {
            kind: format!("{TYPE_BASE}{}", self.slug),
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
            errors: &self.errors,
        })
        .expect("a problem serialises")
    }
}

impl From<crate::repo::RepoError> for Problem {
    fn from(error: crate::repo::RepoError) -> Self {
        Problem::internal(error.to_string())
    }
}

/// A JSON response: `application/json`, or `application/problem+json` for an error status.
#[must_use]
pub fn json_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if status.is_client_error() || status.is_server_error() {
        "application/problem+json"
    } else {
        "application/json"
    };
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = json_response(self.status.as_u16(), self.body());
        if let Some(seconds) = self.retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
