//! The payments service as a shipsim [`Target`]: its router built at every boot from
//! shipsim's seams, plugged into the service's own ([`seams`]), its repository over
//! shipsim's durable `Kv` ([`store`]), its API described to shipsim ([`api`]), and its bank
//! simulated by a [`DownstreamSpec`] whose ledger of charges the oracles audit.

pub mod api;
pub mod seams;
pub mod store;

use std::collections::BTreeMap;
use std::sync::Arc;

use byo_axum::{BankConfig, BankPolicy, Config, Deps, Ids, Mistake};
use serde_json::json;
use shipsim::downstream::{AuthSpec, DownstreamSpec, EffectRoute, ReadRoute};
use shipsim::{Boot, Target};

/// The bank's host name: scenario files fault it as `bank`.
pub const BANK: &str = "bank";
/// What the service sends the bank in `Authorization`.
pub const BANK_AUTHORIZATION: &str = "Bearer bk_test_payments";
/// The card token the bank declines (the scenario's `unserviceable` knob draws it).
pub const DECLINED_SOURCE: &str = "tok_chargeDeclined";
/// The name of the service's durable store on its host.
pub const STORE: &str = "payments";

/// The bank: `POST /v1/charges` makes a `charge`, honours `Idempotency-Key` (and makes a
/// new charge for every request without one, as real payment APIs do), declines
/// [`DECLINED_SOURCE`], and ties each charge to the payment named in its metadata.
pub fn bank() -> DownstreamSpec {
    DownstreamSpec::new(BANK)
        .auth(AuthSpec::header("Authorization").credential(BANK_AUTHORIZATION, "payments"))
        .effect(
            EffectRoute::post("/v1/charges", "charge")
                .id_prefix("ch_")
                .require("/amount")
                .require("/currency")
                .require("/source")
                .require("/metadata/payment_id")
                .refuse_when("/source", DECLINED_SOURCE, 402, "card_declined")
                .subject("/metadata/payment_id")
                .respond(
                    201,
                    json!({
                        "id": "{{id}}",
                        "object": "charge",
                        "amount": "{{body/amount}}",
                        "currency": "{{body/currency}}",
                        "status": "succeeded",
                        "created": "{{now_s}}"
                    }),
                ),
        )
        .read(ReadRoute::get("/v1/charges/{id}", "charge"))
}

/// The service making `mistake` (or none), as a shipsim target called `name`.
pub fn target(name: &str, mistake: Option<Mistake>) -> Target {
    let ids = |boot: &Boot| -> Arc<dyn Ids> { Arc::new(seams::SimIds(boot.ids("payments"))) };
    Target::new(name, move |boot: &Boot| service(boot, mistake, ids(boot)))
        .api(api::PaymentsApi)
        .downstream(bank())
        .inventory(store::inventory)
}

/// The correct service drawing its ids from the operating system's randomness, as a
/// service that bypassed its seams would: not deterministic.
pub fn target_with_os_ids(name: &str) -> Target {
    Target::new(name, |boot: &Boot| {
        service(boot, None, Arc::new(seams::OsIds::default()))
    })
    .api(api::PaymentsApi)
    .downstream(bank())
    .inventory(store::inventory)
}

/// One boot of the service: its configuration (the merchants shipsim drives, the bank's
/// simulated address) and its seams, from shipsim's.
fn service(boot: &Boot, mistake: Option<Mistake>, ids: Arc<dyn Ids>) -> axum::Router {
    let merchants: BTreeMap<String, String> = boot
        .callers()
        .iter()
        .map(|caller| (caller.api_key.clone(), caller.id.clone()))
        .collect();
    let bank = boot.downstream(BANK);
    let mut config = Config::new(
        merchants,
        BankConfig {
            base_url: bank.base_url().to_string(),
            authorization: BANK_AUTHORIZATION.to_string(),
            policy: BankPolicy::DEFAULT,
        },
    );
    config.mistake = mistake;
    let repo = store::KvRepository::new(
        boot.kv(STORE),
        config.synchronous_commit(),
        boot.rng("store-latency"),
    );
    byo_axum::router(
        config,
        Deps {
            repo,
            clock: Arc::new(seams::SimClock(boot.clock())),
            ids,
            http: Arc::new(seams::SimHttp(bank.transport())),
        },
    )
}
