//! `POST /v1/customers/{id}/payments` (the money path) and `GET /v1/payments/{id}`.
//!
//! A payment is made in three steps, each atomic:
//!
//! 1. **claim**: the key record (pending, held by this request) and the payment row
//!    (`pending`), in one transaction;
//! 2. **charge**: the bank is called under `charge-{payment id}`, so however often this
//!    step runs for a payment, the bank charges once;
//! 3. **complete**: the payment's outcome and the response to replay, in one transaction.
//!
//! A crash after 1 or 2 leaves a claim held by a dead process; the next request with the
//! key takes it over and runs 2 and 3 again for the same payment. If the bank does not
//! answer, the claim is released and the client told 503 `Retry-After: 1`: a retry resumes.
//! The steps run in a task of their own, so a client hanging up cannot cancel them half-way.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use crate::api::{AMOUNT_MAX, CreatePayment, DESCRIPTION_LEN_MAX, PaymentView};
use crate::bank::{BankError, ChargeRequest, charge_key};
use crate::config::Mistake;
use crate::idempotency::{self, Claim};
use crate::model::{Customer, KeyRecord, KeyState, Payment, PaymentStatus};
use crate::problem::{FieldProblem, Problem, json_response};
use crate::repo::{Repository, Write};
use crate::{App, parse_body, replay};

/// The longest card token.
const SOURCE_LEN_MAX: usize = 64;

fn validate(request: &CreatePayment) -> Result<(), Problem> {
    let mut errors = Vec::new();
    let mut bad = |field: &str, issue: String| {
        errors.push(FieldProblem {
            field: field.into(),
            issue,
        });
    };
    if !(1..=AMOUNT_MAX).contains(&request.amount) {
        bad("amount", format!("1 to {AMOUNT_MAX} minor units"));
    }
    let currency = &request.currency;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        bad("currency", "three lower-case letters (ISO 4217)".into());
    }
    if request.source.is_empty() || request.source.len() > SOURCE_LEN_MAX {
        bad("source", format!("1 to {SOURCE_LEN_MAX} characters"));
    }
    if request
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > DESCRIPTION_LEN_MAX)
    {
        bad(
            "description",
            format!("at most {DESCRIPTION_LEN_MAX} characters"),
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Problem::invalid(errors))
    }
}

/// What a payment create asks for, once authenticated and validated.
struct Order {
    merchant: String,
    key: String,
    customer: Customer,
    request: CreatePayment,
    fingerprint: String,
}

pub(crate) async fn create<R: Repository>(
    State(app): State<Arc<App<R>>>,
    Path(customer_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let merchant = app.authenticate(&headers)?;
    let key = idempotency::key_from(&headers)?;
    let request: CreatePayment = parse_body(&body)?;
    validate(&request)?;
    // Refusals before execution starts store nothing: fixing the request and retrying with
    // the same key works.
    let customer = app
        .repo
        .customer(&customer_id)
        .await?
        .filter(|c| c.merchant == merchant)
        .ok_or_else(|| Problem::not_found("customer", &customer_id))?;
    let path = format!("/v1/customers/{customer_id}/payments");
    let order = Order {
        fingerprint: idempotency::fingerprint("POST", &path, &request),
        merchant,
        key,
        customer,
        request,
    };
    let task = tokio::spawn(async move { app.pay(order).await });
    task.await
        .unwrap_or_else(|error| Err(Problem::internal(format!("payment task failed: {error}"))))
}

pub(crate) async fn read<R: Repository>(
    State(app): State<Arc<App<R>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let merchant = app.authenticate(&headers)?;
    let payment = app
        .repo
        .payment(&id)
        .await?
        .filter(|p| p.merchant == merchant)
        .ok_or_else(|| Problem::not_found("payment", &id))?;
    Ok(json_response(200, view(&payment)))
}

fn view(payment: &Payment) -> String {
    serde_json::to_string(&PaymentView::from(payment)).expect("views serialise")
}

impl<R: Repository> App<R> {
    async fn pay(&self, order: Order) -> Result<Response, Problem> {
        if self.config.makes(Mistake::RecordAfterCharge) {
            return self.pay_then_record(order).await;
        }
        let now_ms = self.clock.now_ms();
        let scope = self.scope(&order.merchant, &order.key);
        let payment = self.new_payment(&order, now_ms);
        let lock = self.lock_policy(now_ms);
        let record = KeyRecord {
            scope: scope.clone(),
            merchant: order.merchant.clone(),
            key: order.key.clone(),
            fingerprint: order.fingerprint.clone(),
            created_ms: now_ms,
            state: KeyState::Pending {
                payment: payment.id.clone(),
                owner: Some(lock.me.clone()),
            },
        };
        let claimed = payment.clone();
        let claim = self
            .claim(&scope, move |existing| {
                idempotency::decide_payment(existing, record, claimed, &lock)
            })
            .await?;
        let payment = match claim {
            Claim::Fresh => payment,
            Claim::Resume { payment: id } => self
                .repo
                .payment(&id)
                .await?
                .ok_or_else(|| Problem::internal(format!("claimed payment {id} is missing")))?,
            Claim::Replay { status, body } => return Ok(replay(status, body)),
            Claim::InFlight => return Err(Problem::in_flight(&order.key)),
            Claim::Reused => return Err(Problem::key_reused(&order.key)),
        };
        self.charge_and_complete(payment, &scope).await
    }

    fn new_payment(&self, order: &Order, now_ms: u64) -> Payment {
        Payment {
            id: self.ids.next("pay"),
            merchant: order.merchant.clone(),
            customer: order.customer.id.clone(),
            key: order.key.clone(),
            amount: order.request.amount,
            currency: order.request.currency.clone(),
            source: order.request.source.clone(),
            description: order.request.description.clone(),
            status: PaymentStatus::Pending,
            charge: None,
            failure_code: None,
            created_ms: now_ms,
        }
    }

    /// Steps 2 and 3 for a payment this request holds the claim of.
    async fn charge_and_complete(
        &self,
        payment: Payment,
        scope: &str,
    ) -> Result<Response, Problem> {
        let charged = self
            .bank
            .charge(&ChargeRequest::of(&payment), &charge_key(&payment))
            .await;
        let Some((payment, status, body)) = outcome(payment, charged) else {
            // Unknown: give the claim back so a retry resumes this payment.
            self.repo
                .with_key(scope, |existing| match existing {
                    Some(mut record) => {
                        if let KeyState::Pending { owner, .. } = &mut record.state {
                            *owner = None;
                        }
                        (vec![Write::Key(record)], ())
                    }
                    None => (Vec::new(), ()),
                })
                .await?;
            return Err(Problem::bank_unavailable());
        };
        let stored = KeyState::Done {
            status,
            body: body.clone(),
        };
        self.repo
            .with_key(scope, move |existing| {
                let writes = match existing {
                    Some(mut record) => {
                        record.state = stored;
                        vec![Write::Payment(payment), Write::Key(record)]
                    }
                    None => vec![Write::Payment(payment)],
                };
                (writes, ())
            })
            .await?;
        Ok(json_response(status, body))
    }

    /// The `record_after_charge` mistake: nothing is stored before the bank is called.
    async fn pay_then_record(&self, order: Order) -> Result<Response, Problem> {
        let now_ms = self.clock.now_ms();
        let scope = self.scope(&order.merchant, &order.key);
        if let Some(stored) = self.repo.key(&scope).await? {
            return match stored.state {
                _ if stored.fingerprint != order.fingerprint => {
                    Err(Problem::key_reused(&order.key))
                }
                KeyState::Done { status, body } => Ok(replay(status, body)),
                KeyState::Pending { .. } => Err(Problem::in_flight(&order.key)),
            };
        }
        let payment = self.new_payment(&order, now_ms);
        let charged = self
            .bank
            .charge(&ChargeRequest::of(&payment), &charge_key(&payment))
            .await;
        let Some((payment, status, body)) = outcome(payment, charged) else {
            return Err(Problem::bank_unavailable());
        };
        let record = KeyRecord {
            scope,
            merchant: order.merchant,
            key: order.key,
            fingerprint: order.fingerprint,
            created_ms: now_ms,
            state: KeyState::Done {
                status,
                body: body.clone(),
            },
        };
        self.repo
            .write(vec![Write::Payment(payment), Write::Key(record)])
            .await?;
        Ok(json_response(status, body))
    }
}

/// The finished payment and the response to store and send, or `None` when the bank's
/// answer is unknown.
fn outcome(
    mut payment: Payment,
    charged: Result<crate::bank::Charge, BankError>,
) -> Option<(Payment, u16, String)> {
    match charged {
        Ok(charge) => {
            payment.status = PaymentStatus::Succeeded;
            payment.charge = Some(charge.id);
            let body = view(&payment);
            Some((payment, 201, body))
        }
        Err(BankError::Declined { code }) => {
            let problem = Problem::payment_failed(&code);
            payment.status = PaymentStatus::Failed;
            payment.failure_code = Some(code);
            Some((payment, problem.status().as_u16(), problem.body()))
        }
        Err(BankError::Refused { status, .. }) => {
            let code = format!("bank_refused_{status}");
            let problem = Problem::payment_failed(&code);
            payment.status = PaymentStatus::Failed;
            payment.failure_code = Some(code);
            Some((payment, problem.status().as_u16(), problem.body()))
        }
        Err(BankError::Unavailable { .. }) => None,
    }
}
