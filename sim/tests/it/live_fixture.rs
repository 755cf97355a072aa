//! What the live-mode tests share: the binary, a scratch directory per test, `shipsim
//! serve` and `carrier` processes on loopback (each killed when its handle drops), a live
//! run's options and its rendering, and the reference API's calls a test makes by hand.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use shipsim::live::demo::{self, ChildServer, DemoOptions};
use shipsim::live::driver::{self, LiveOptions, LiveRun};
use shipsim::scenario::Scenario;
use shipsim_system::bugs::BugSet;

/// The admin key the tests' servers are started with.
pub(crate) const ADMIN_KEY: &str = "sk_admin_test";

/// Where a server listens when the test needs no particular port.
pub(crate) const ANY_PORT: &str = "127.0.0.1:0";

/// The `shipsim` binary under test.
pub(crate) fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_shipsim"))
}

/// A fresh directory for one test's databases and logs.
pub(crate) fn scratch(name: &str) -> PathBuf {
    crate::support::scratch_kept(&format!("it-live-{name}"))
}

/// A scenario file of the corpus.
pub(crate) fn corpus_file(name: &str) -> PathBuf {
    crate::support::scenarios_dir().join(name)
}

/// `shipsim <command> --listen <listen> --db <dir/db> <args>`, logging to `<db stem>.log`
/// in `dir`; returns once it listens.
pub(crate) fn spawn(
    dir: &Path,
    command: &str,
    listen: &str,
    db: &str,
    args: &[&str],
) -> ChildServer {
    let db = dir.join(db);
    let log = dir.join(format!("{}.log", db.file_stem().unwrap().to_string_lossy()));
    let mut argv = vec![command, "--listen", listen, "--db", db.to_str().unwrap()];
    argv.extend_from_slice(args);
    ChildServer::spawn(exe(), &argv, &log).unwrap()
}

/// A carrier on `carrier.db`, with the admin key.
pub(crate) fn carrier(dir: &Path) -> ChildServer {
    spawn(
        dir,
        "carrier",
        ANY_PORT,
        "carrier.db",
        &["--admin-key", ADMIN_KEY],
    )
}

/// The service on `service.db`, listening on `listen`, calling the carrier at `carrier_url`,
/// with the admin key and `extra` arguments.
pub(crate) fn serve(dir: &Path, listen: &str, carrier_url: &str, extra: &[&str]) -> ChildServer {
    let mut args = vec!["--carrier-url", carrier_url, "--admin-key", ADMIN_KEY];
    args.extend_from_slice(extra);
    spawn(dir, "serve", listen, "service.db", &args)
}

/// A live run of `scenario` against `target` with the admin key, auditing the carrier at
/// `carrier_url`, the simulation's merchant keys, no planted bug, and no start-up wait.
pub(crate) fn options(
    scenario: Scenario,
    target: &str,
    carrier_url: &str,
    seed: u64,
) -> LiveOptions {
    LiveOptions {
        scenario,
        target: target.to_string(),
        carrier_url: Some(carrier_url.to_string()),
        proxy: false,
        seed,
        admin_key: Some(ADMIN_KEY.to_string()),
        carrier_admin_key: None,
        bugs: BugSet::none(),
        api_keys: Vec::new(),
        described: None,
        downstream_urls: Vec::new(),
        run_id: LiveOptions::fresh_run_id(),
        start_wait: std::time::Duration::ZERO,
    }
}

/// The terminal summary of `run`, as `shipsim live` prints it.
pub(crate) fn verdict(run: &LiveRun, scenario: &Scenario, target: &str) -> String {
    shipsim_reports::text::live(&run.report(scenario, target))
}

/// `shipsim demo`'s stack (carrier, service and a fault proxy in front of each) on the
/// scenario file `path` with `seed` and the service's planted `bugs`, and a live run of it
/// through the proxies with the demo's admin key. Returns the run and its summary; the
/// stack is stopped before returning.
pub(crate) async fn demo_run(
    path: &Path,
    seed: u64,
    bugs: &[&str],
    dir: PathBuf,
) -> (LiveRun, String) {
    let scenario = Scenario::load(path).unwrap();
    let stack = demo::start(
        exe(),
        &DemoOptions {
            scenario: path.to_path_buf(),
            seed,
            bugs: bugs.iter().map(|b| b.to_string()).collect(),
            dir,
        },
    )
    .unwrap();
    let mut options = options(
        scenario.clone(),
        &stack.service_proxy.url,
        &stack.carrier_proxy.url,
        seed,
    );
    options.admin_key = Some(demo::DEMO_ADMIN_KEY.to_string());
    let run = driver::run(options).await.unwrap();
    let text = verdict(&run, &scenario, &stack.service_proxy.url);
    (run, text)
}

/// Creates an order as merchant-0 under idempotency key `key`; returns its id.
pub(crate) async fn create_order(http: &reqwest::Client, service_url: &str, key: &str) -> String {
    let order: serde_json::Value = http
        .post(format!("{service_url}/v1/orders"))
        .header("x-api-key", "sk_sim_merchant_0")
        .header("idempotency-key", key)
        .json(&serde_json::json!({
            "reference": format!("PO-{key}"),
            "items": [{ "sku": "SKU-1", "quantity": 1 }],
            "ship_to": { "name": "A", "line1": "B", "city": "C", "postal_code": "12345", "country": "DE" }
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    order["id"].as_str().unwrap().to_string()
}

/// Creates a ground shipment of `weight_grams` on `order_id` as merchant-0 under
/// idempotency key `key`; returns the answer as it came.
pub(crate) async fn create_shipment(
    http: &reqwest::Client,
    service_url: &str,
    order_id: &str,
    key: &str,
    weight_grams: u32,
) -> reqwest::Response {
    http.post(format!("{service_url}/v1/orders/{order_id}/shipments"))
        .header("x-api-key", "sk_sim_merchant_0")
        .header("idempotency-key", key)
        .json(&serde_json::json!({ "service_level": "ground", "weight_grams": weight_grams }))
        .send()
        .await
        .unwrap()
}

/// GETs an admin endpoint's JSON with the admin key.
pub(crate) async fn admin_json(url: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(url)
        .header("x-admin-key", ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Deliveries a webhook endpoint kept: each one's signature header (empty when absent) and
/// body, in arrival order.
pub(crate) type Deliveries = Arc<Mutex<Vec<(String, axum::body::Bytes)>>>;

/// A merchant's webhook endpoint on loopback at `/hooks`: a delivery `accept` approves
/// (given its signature header and body) is answered 200 and kept; any other is answered
/// 400. Returns its URL and what it kept.
pub(crate) async fn webhook_endpoint(
    accept: impl Fn(Option<&str>, &[u8]) -> bool + Clone + Send + Sync + 'static,
) -> (String, Deliveries) {
    let received: Deliveries = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    let handler = move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
        let store = store.clone();
        let accept = accept.clone();
        async move {
            let signature = headers
                .get(shipsim_system::webhook::HEADER_SIGNATURE)
                .and_then(|v| v.to_str().ok());
            if !accept(signature, &body) {
                return axum::http::StatusCode::BAD_REQUEST;
            }
            let signature = signature.unwrap_or_default().to_string();
            store.lock().unwrap().push((signature, body));
            axum::http::StatusCode::OK
        }
    };
    let router = axum::Router::new().route("/hooks", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind(ANY_PORT).await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, received)
}
