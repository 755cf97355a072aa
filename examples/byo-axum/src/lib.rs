//! A small payments service: merchants create customers and charge them, and the service
//! charges the card at its bank, exactly once per payment, whatever fails.
//!
//! ```text
//! POST /v1/customers                  Idempotency-Key required   201 customer
//! GET  /v1/customers/{id}                                        200 customer
//! POST /v1/customers/{id}/payments    Idempotency-Key required   201 payment | 402 declined
//! GET  /v1/payments/{id}                                         200 payment
//! ```
//!
//! Every request carries `Authorization: Bearer <api key>`; keys, customers and payments
//! are the merchant's own. Errors are RFC 9457 problem details.
//!
//! The service takes the outside world through seams of its own ([`seams`]: a clock, an id
//! source, an HTTP client for the bank; [`repo::Repository`]: its storage), so the binary
//! runs it on real sockets and a test harness runs it in a simulation, unchanged.
//!
//! The money path (`POST .../payments`, in `payments.rs`): claim the key and the payment row
//! in one transaction, call the bank under a key derived from the payment, then store the
//! outcome and the response in one transaction. A crash between the steps leaves a claim a
//! later request with the key resumes, under the same bank key, so the bank charges once.

pub mod api;
pub mod bank;
pub mod config;
mod customers;
pub mod idempotency;
pub mod model;
mod payments;
pub mod problem;
pub mod repo;
pub mod seams;

use std::sync::Arc;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{get, post};

pub use bank::{BankClient, BankPolicy};
pub use config::{BankConfig, Config, Mistake};
pub use repo::{MemoryRepository, RepoError, Repository, Write};
pub use seams::{BoxFuture, Clock, HttpClient, HttpError, Ids};

use crate::idempotency::LockPolicy;
use crate::model::Owner;
use crate::problem::Problem;

/// What the service is built from, besides its [`Config`].
pub struct Deps<R> {
    /// Where rows live.
    pub repo: R,
    /// The time of day.
    pub clock: Arc<dyn Clock>,
    /// Where ids come from.
    pub ids: Arc<dyn Ids>,
    /// How the bank is reached.
    pub http: Arc<dyn HttpClient>,
}

/// One running process of the service: what its handlers share.
pub(crate) struct App<R> {
    config: Config,
    repo: R,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn Ids>,
    bank: BankClient,
    /// This process's id: a claim held under another id is a dead process's.
    instance: String,
}

/// The service's routes, for one process: build it again after a restart.
pub fn router<R: Repository>(config: Config, deps: Deps<R>) -> Router {
    let bank = BankClient::new(
        deps.http,
        &config.bank.base_url,
        &config.bank.authorization,
        config.bank.policy,
        !config.makes(Mistake::BankWithoutKey),
    );
    let app = Arc::new(App {
        instance: deps.ids.next("inst"),
        config,
        repo: deps.repo,
        clock: deps.clock,
        ids: deps.ids,
        bank,
    });
    Router::new()
        .route("/v1/customers", post(customers::create::<R>))
        .route("/v1/customers/{id}", get(customers::read::<R>))
        .route("/v1/customers/{id}/payments", post(payments::create::<R>))
        .route("/v1/payments/{id}", get(payments::read::<R>))
        .fallback(|| async { Problem::no_route() })
        .method_not_allowed_fallback(|| async { Problem::wrong_method() })
        .with_state(app)
}

impl<R: Repository> App<R> {
    /// The merchant whose API key `headers` carry.
    fn authenticate(&self, headers: &HeaderMap) -> Result<String, Problem> {
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|key| self.config.merchants.get(key))
            .cloned()
            .ok_or_else(Problem::unauthenticated)
    }

    /// Where `merchant`'s `key` is recorded.
    fn scope(&self, merchant: &str, key: &str) -> String {
        idempotency::scope(merchant, key, self.config.makes(Mistake::GlobalKeys))
    }

    /// How this request may take over a held key, now.
    fn lock_policy(&self, now_ms: u64) -> LockPolicy {
        let stuck = self.config.makes(Mistake::StuckLock);
        LockPolicy {
            me: Owner {
                instance: self.instance.clone(),
                since_ms: now_ms,
            },
            lease_ms: (!stuck).then_some(self.config.lock_lease_ms),
            take_over_other_instances: !stuck,
        }
    }

    /// Reads `scope`'s record and applies `decide`: in one transaction, or, in the
    /// `check_then_insert` mistake, in two.
    async fn claim<F>(&self, scope: &str, decide: F) -> Result<idempotency::Claim, Problem>
    where
        F: FnOnce(Option<model::KeyRecord>) -> (Vec<Write>, idempotency::Claim) + Send + 'static,
    {
        if self.config.makes(Mistake::CheckThenInsert) {
            // The mistake: the lookup and the insert are separate transactions, with an
            // await between them; another request with this key can look it up meanwhile.
            let existing = self.repo.key(scope).await?;
            let (writes, claim) = decide(existing);
            self.repo.write(writes).await?;
            return Ok(claim);
        }
        Ok(self.repo.with_key(scope, decide).await?)
    }
}

/// A stored response, replayed.
fn replay(status: u16, body: String) -> axum::response::Response {
    let mut response = problem::json_response(status, body);
    response.headers_mut().insert(
        idempotency::REPLAYED_HEADER,
        axum::http::HeaderValue::from_static("true"),
    );
    response
}

/// A request body as `T`, or a 400 saying where it is wrong.
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(body).map_err(|error| Problem::invalid_field("body", error.to_string()))
}
