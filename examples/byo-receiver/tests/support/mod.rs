//! The receiver as a shipsim [`Receiver`]: its router built at every boot from shipsim's
//! seams (clock, a database kept across crashes, a seeded database round trip), signed with
//! Standard Webhooks, read back through its own `GET /shipments/{id}`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use byo_receiver::{Clock, Config, Db, Deps, Mistake, RoundTrip};
use shipsim::{Boot, Events, Observed, Receiver, Signing};

/// The secret the receiver and shipsim's sender share.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The carrier's event body, as the receiver expects it.
pub const BODY: &str = r#"{"id":"{id}","type":"{type}","timestamp":{timestamp},"data":{"resource":"{resource}","sequence":{sequence}}}"#;

/// The receiver's database, kept by shipsim across the host's crashes. Every write is one
/// committed transaction under the lock, so a crash loses nothing acknowledged.
struct DurableDb(Arc<Mutex<Db>>);

impl shipsim::Durable for DurableDb {
    fn crash(&self) -> u64 {
        0
    }
}

struct SimClock(Arc<dyn shipsim::Clock>);

impl Clock for SimClock {
    fn now_ms(&self) -> u64 {
        self.0.now_ms()
    }
}

/// A database round trip of 1 to 5 ms of simulated time, drawn from the boot's seed.
struct SimRoundTrip(Mutex<Box<dyn rand::RngCore + Send>>);

impl RoundTrip for SimRoundTrip {
    fn wait(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let ms = 1 + rand::RngCore::next_u64(&mut *self.0.lock().expect("round trip lock")) % 5;
        Box::pin(tokio::time::sleep(Duration::from_millis(ms)))
    }
}

/// The receiver making `mistake` (or none), as a shipsim receiver called `name`.
pub fn receiver(name: &str, mistake: Option<Mistake>) -> Receiver {
    let config = Config {
        secret: SECRET.to_string(),
        mistake,
    };
    Receiver::new(
        name,
        Signing::standard_webhooks(SECRET),
        move |boot: &Boot| {
            let db = boot.durable("db", || DurableDb(Arc::new(Mutex::new(Db::default()))));
            let deps = Deps {
                clock: Arc::new(SimClock(boot.clock())),
                db: db.0.clone(),
                round_trip: Arc::new(SimRoundTrip(Mutex::new(Box::new(
                    boot.rng("db-round-trip"),
                )))),
            };
            byo_receiver::router(&config, deps).expect("the test secret is valid")
        },
    )
    .events(Events::new("/webhooks", BODY).types([
        "shipment.created",
        "shipment.picked_up",
        "shipment.in_transit",
        "shipment.delivered",
    ]))
    .read_back(read_request, read_parse)
}

fn read_request(shipment: &str) -> shipsim::HttpRequest {
    http::Request::get(format!("/shipments/{shipment}"))
        .body(bytes::Bytes::new())
        .expect("a valid request")
}

fn read_parse(response: &shipsim::HttpResponse) -> Result<Observed, String> {
    if response.status() == 404 {
        return Ok(Observed::default());
    }
    if response.status() != 200 {
        return Err(format!("GET /shipments answered {}", response.status()));
    }
    let body: serde_json::Value =
        serde_json::from_slice(response.body()).map_err(|e| format!("shipment body: {e}"))?;
    let applied = body["applied"]
        .as_array()
        .ok_or("shipment body has no `applied`")?
        .iter()
        .filter_map(|id| id.as_str().map(str::to_string))
        .collect();
    Ok(Observed {
        sequence: body["sequence"].as_u64(),
        applied,
    })
}
