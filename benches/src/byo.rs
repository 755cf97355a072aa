//! A bring-your-own target for benchmarks: a small payments service written against plain
//! axum, keeping its records in shipsim's `Kv` and charging a `bank` downstream. The
//! harness runs it through `shipsim::Target`; the bare loop runs the same router and bank
//! on turmoil and hyper alone, so the two measure the harness's own overhead.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};
use shipsim::downstream::{DownstreamSpec, EffectRoute};
use shipsim::store::Kv;
use shipsim::{
    Api, ApiError, Boot, CreateCall, Draw, HttpRequest, HttpResponse, Kind, ReadCall, Seen, Target,
    json_request,
};
use shipsim_system::store::Durability;

/// What a payments service needs at each boot.
#[derive(Clone)]
pub struct Payments {
    /// Its records.
    pub kv: Kv,
    /// Its payment ids.
    pub ids: Arc<shipsim::IdGen>,
    /// The bank's base URL.
    pub bank_url: String,
    /// The bank.
    pub bank: Arc<dyn shipsim::Transport>,
}

async fn create(
    State(app): State<Payments>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(key), Some(merchant)) = (header("idempotency-key"), header("x-merchant")) else {
        return (StatusCode::BAD_REQUEST, "{}".into());
    };
    // Keys are the merchant's own: two merchants may use the same one.
    let scope = format!("key/{merchant}/{key}");
    let fresh = json!({"id": app.ids.next("pay"), "charge": null});
    let claimed: Value = app
        .kv
        .transact(Durability::Sync, |tx| {
            if let Some(existing) = tx.get_json::<Value>(&scope)? {
                return Ok::<_, shipsim::store::KvError>(existing);
            }
            tx.put_json(&scope, &fresh)?;
            Ok(fresh.clone())
        })
        .unwrap_or_default();
    let id = claimed["id"].as_str().unwrap_or_default().to_string();
    if let Some(charge) = claimed["charge"].as_str() {
        return (
            StatusCode::OK,
            json!({"id": id, "charge": charge}).to_string(),
        );
    }
    let request = http::Request::post(format!("{}/v1/charges", app.bank_url))
        .header("idempotency-key", format!("charge-{id}"))
        .body(Bytes::from(
            json!({"payment": id, "amount": 100, "body": String::from_utf8_lossy(&body)})
                .to_string(),
        ))
        .expect("a valid request");
    let charge = match tokio::time::timeout(Duration::from_secs(1), app.bank.send(request)).await {
        Ok(Ok(response)) if response.status().is_success() => {
            serde_json::from_slice::<Value>(response.body())
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_string))
        }
        _ => None,
    };
    let Some(charge) = charge else {
        return (StatusCode::BAD_GATEWAY, "{}".into());
    };
    let done = json!({"id": id, "charge": charge});
    let _ = app.kv.transact(Durability::Sync, |tx| {
        tx.put_json(&scope, &done)?;
        tx.put_json(&format!("payment/{id}"), &done)?;
        Ok::<_, shipsim::store::KvError>(())
    });
    (StatusCode::CREATED, done.to_string())
}

async fn read(State(app): State<Payments>, Path(id): Path<String>) -> (StatusCode, String) {
    match app.kv.get_json::<Value>(&format!("payment/{id}")) {
        Ok(Some(payment)) => (StatusCode::OK, payment.to_string()),
        _ => (StatusCode::NOT_FOUND, "{}".into()),
    }
}

/// The service's router.
pub fn router(app: Payments) -> axum::Router {
    axum::Router::new()
        .route("/v1/payments", post(create))
        .route("/v1/payments/{id}", get(read))
        .with_state(app)
}

/// The bank: one effect route, charges tied to their payment.
#[must_use]
pub fn bank() -> DownstreamSpec {
    DownstreamSpec::new("bank").effect(
        EffectRoute::post("/v1/charges", "charge")
            .id_prefix("ch_")
            .subject("/payment"),
    )
}

/// How shipsim talks to the payments service.
pub struct PaymentsApi;

impl Api for PaymentsApi {
    fn kinds(&self) -> Vec<Kind> {
        vec![
            Kind::new("payment", "POST /v1/payments")
                .read_route("GET /v1/payments/{id}")
                .spends(),
        ]
    }

    fn body(&self, _kind: &Kind, draw: &mut Draw<'_>) -> String {
        use rand::Rng;
        json!({"amount": draw.rng().random_range(100..10_000)}).to_string()
    }

    fn vary(&self, _kind: &Kind, body: &str) -> String {
        format!("{body} ")
    }

    fn create(&self, _kind: &Kind, call: &CreateCall<'_>) -> Result<HttpRequest, ApiError> {
        json_request(
            "POST",
            "/v1/payments",
            &[
                ("idempotency-key", call.key),
                ("x-merchant", &call.caller.id),
            ],
            call.body.to_string(),
        )
    }

    fn read(&self, _kind: &Kind, call: &ReadCall<'_>) -> Result<HttpRequest, ApiError> {
        json_request("GET", &format!("/v1/payments/{}", call.id), &[], "")
    }

    fn parse(&self, _kind: &Kind, response: &HttpResponse) -> Result<Seen, ApiError> {
        let body: Value = serde_json::from_slice(response.body()).map_err(ApiError::new)?;
        Ok(Seen {
            id: body["id"]
                .as_str()
                .ok_or_else(|| ApiError::new("no id"))?
                .to_string(),
            downstream_ref: body["charge"].as_str().map(str::to_string),
            ..Seen::default()
        })
    }
}

/// The payments service as a shipsim target.
#[must_use]
pub fn target() -> Target {
    Target::new("payments", |boot: &Boot| {
        let bank = boot.downstream("bank");
        router(Payments {
            kv: boot.kv("payments"),
            ids: Arc::new(boot.ids("payments")),
            bank_url: bank.base_url().to_string(),
            bank: bank.transport(),
        })
    })
    .api(PaymentsApi)
    .downstream(bank())
}

#[cfg(test)]
mod tests {
    use shipsim_system::bugs::BugSet;

    #[test]
    fn the_harness_drives_payments_through_to_the_bank() {
        // Proves the bench target measures real work: every payment the harness's clients
        // created was charged at the bank once (the ledger's effects), so a request the
        // service refuses (a header the adapter forgot) cannot pass for a fast run.
        let target = super::target();
        let topology = target.topology().unwrap();
        let scenario = shipsim::Scenario::parse_for(
            "byo.toml",
            "byo",
            "[hosts]\nclients = 2\ncallers = 2\n[workload]\noperations = 12\nthink_ms = [0, 30]\n",
            &topology,
        )
        .unwrap();
        let run = shipsim::run_seed(&target, &scenario, 1, &BugSet::none());
        assert!(run.passed(), "{:?}", run.violations);
        let created = run
            .history
            .workload()
            .filter(|op| op.kind.is_write())
            .filter(|op| matches!(op.outcome, shipsim::run::history::OpOutcome::Ok { .. }))
            .count();
        assert!(created > 0, "the workload created payments");
        assert_eq!(run.effects.len(), created, "{:?}", run.effects);
    }
}
