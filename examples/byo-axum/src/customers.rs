//! `POST /v1/customers` and `GET /v1/customers/{id}`. A customer, its key record and the
//! response to replay are written in one transaction: there is nothing to resume.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use crate::api::{CreateCustomer, CustomerView};
use crate::idempotency::{self, Claim};
use crate::model::{Customer, KeyRecord, KeyState};
use crate::problem::{FieldProblem, Problem, json_response};
use crate::repo::{Repository, Write};
use crate::{App, parse_body, replay};

/// Longest name, and longest email (RFC 5321's path limit).
const NAME_LEN_MAX: usize = 100;
const EMAIL_LEN_MAX: usize = 254;

fn validate(request: &CreateCustomer) -> Result<(), Problem> {
    let mut errors = Vec::new();
    let email = &request.email;
    if email.len() > EMAIL_LEN_MAX || !email.contains('@') {
        errors.push(FieldProblem {
            field: "email".into(),
            issue: format!("an address with `@`, at most {EMAIL_LEN_MAX} characters"),
        });
    }
    if request.name.trim().is_empty() || request.name.chars().count() > NAME_LEN_MAX {
        errors.push(FieldProblem {
            field: "name".into(),
            issue: format!("1 to {NAME_LEN_MAX} characters"),
        });
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Problem::invalid(errors))
    }
}

pub(crate) async fn create<R: Repository>(
    State(app): State<Arc<App<R>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let merchant = app.authenticate(&headers)?;
    let key = idempotency::key_from(&headers)?;
    let request: CreateCustomer = parse_body(&body)?;
    validate(&request)?;
    let now_ms = app.clock.now_ms();
    let scope = app.scope(&merchant, &key);
    let customer = Customer {
        id: app.ids.next("cus"),
        merchant: merchant.clone(),
        key: key.clone(),
        email: request.email.clone(),
        name: request.name.clone(),
        created_ms: now_ms,
    };
    let response = serde_json::to_string(&CustomerView::from(&customer)).expect("views serialise");
    let record = KeyRecord {
        scope: scope.clone(),
        merchant,
        key: key.clone(),
        fingerprint: idempotency::fingerprint("POST", "/v1/customers", &request),
        created_ms: now_ms,
        state: KeyState::Done {
            status: 201,
            body: response.clone(),
        },
    };
    let rows = vec![Write::Customer(customer)];
    let claim = app
        .claim(&scope, move |existing| {
            idempotency::decide_create(existing, record, rows)
        })
        .await?;
    match claim {
        Claim::Fresh => Ok(json_response(201, response)),
        Claim::Replay { status, body } => Ok(replay(status, body)),
        Claim::Reused => Err(Problem::key_reused(&key)),
        Claim::InFlight | Claim::Resume { .. } => Err(Problem::in_flight(&key)),
    }
}

pub(crate) async fn read<R: Repository>(
    State(app): State<Arc<App<R>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let merchant = app.authenticate(&headers)?;
    let customer = app
        .repo
        .customer(&id)
        .await?
        .filter(|c| c.merchant == merchant)
        .ok_or_else(|| Problem::not_found("customer", &id))?;
    let view = serde_json::to_string(&CustomerView::from(&customer)).expect("views serialise");
    Ok(json_response(200, view))
}
