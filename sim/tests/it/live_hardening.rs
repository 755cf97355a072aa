//! Live mode, hardened after a black-box audit: ids unique across processes and restored
//! databases, and hyper's own rejections in the error envelope. Real `shipsim serve` and
//! `carrier` processes on loopback; each is killed when its handle drops.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use shipsim::live::demo::ChildServer;

use crate::live_fixture::{ANY_PORT, create_order, create_shipment, scratch, spawn};

/// A carrier on `carrier.db`.
fn carrier(dir: &Path) -> ChildServer {
    spawn(dir, "carrier", ANY_PORT, "carrier.db", &[])
}

/// A service on `db`, calling the carrier at `carrier_url`.
fn serve(dir: &Path, db: &str, carrier_url: &str) -> ChildServer {
    spawn(dir, "serve", ANY_PORT, db, &["--carrier-url", carrier_url])
}

/// Creates one order and one shipment as merchant-0, both under fixed keys and bodies (so
/// only the service's ids can tell two services apart); returns (order id, shipment).
async fn order_and_shipment(service_url: &str) -> (String, serde_json::Value) {
    let http = reqwest::Client::new();
    let order_id = create_order(&http, service_url, "order-1").await;
    let shipment = create_shipment(&http, service_url, &order_id, "ship-1", 500).await;
    assert_eq!(shipment.status(), 201, "the label is bought");
    (order_id, shipment.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_on_fresh_databases_sharing_a_carrier_never_share_an_id_or_a_label() {
    // Proves live ids are unique across processes: two services started on fresh
    // databases (no --seed) and one carrier give different order and shipment ids, so
    // different carrier keys, so each shipment gets its own label. With ids from a default
    // seed both issued the same ids and the carrier sold one label for two parcels.
    let dir = scratch("hardening-fresh");
    let carrier = carrier(&dir);
    let first = serve(&dir, "a.db", &carrier.url);
    let second = serve(&dir, "b.db", &carrier.url);
    let (order_a, shipment_a) = order_and_shipment(&first.url).await;
    let (order_b, shipment_b) = order_and_shipment(&second.url).await;
    assert_ne!(order_a, order_b);
    assert_ne!(shipment_a["id"], shipment_b["id"]);
    assert_ne!(
        shipment_a["label_id"], shipment_b["label_id"],
        "one label per parcel"
    );
    let id = shipment_a["id"].as_str().unwrap();
    assert_eq!(id.len(), "shp_".len() + 32, "128 random bits: {id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restored_from_a_backup_issues_new_ids() {
    // Proves a restore cannot make the service reissue ids: a copy of the database taken
    // before a shipment, started again, issues a different shipment id (and buys its own
    // label) than the original did after the copy. Ids from the seed and the boot counter
    // repeated exactly, since the copy carries the same boot counter.
    let dir = scratch("hardening-restore");
    let carrier = carrier(&dir);
    let mut original = serve(&dir, "live.db", &carrier.url);
    original.kill();
    for suffix in ["", "-wal", "-shm"] {
        let from = dir.join(format!("live.db{suffix}"));
        if from.exists() {
            std::fs::copy(&from, dir.join(format!("backup.db{suffix}"))).unwrap();
        }
    }
    let original = serve(&dir, "live.db", &carrier.url);
    let (_, after_backup) = order_and_shipment(&original.url).await;
    drop(original);
    let restored = serve(&dir, "backup.db", &carrier.url);
    let (_, after_restore) = order_and_shipment(&restored.url).await;
    assert_ne!(after_backup["id"], after_restore["id"]);
    assert_ne!(after_backup["label_id"], after_restore["label_id"]);
}

/// Sends `request` as raw bytes and reads the whole answer (the server closes after it).
fn raw_exchange(url: &str, request: &[u8]) -> String {
    let address = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).to_string()
}

#[test]
fn requests_hyper_cannot_parse_get_the_envelope_and_a_request_id() {
    // Proves the rejections hyper makes before the router sees a request (a header value
    // with a control byte, a malformed request line) carry the documented envelope and an
    // X-Request-Id, like every other error; they were bare 400s with no body.
    let dir = scratch("hardening-framing");
    let service = serve(&dir, "service.db", "http://127.0.0.1:9");
    for request in [
        &b"GET /v1/orders/x HTTP/1.1\r\nHost: x\r\nX-API-Key: sk_sim_merchant_0\r\nX-Note: a\x01b\r\n\r\n"[..],
        b"GET /v1/orders/x HTTP/1.1\r\nHost: x\r\nX-Note: a\x7fb\r\n\r\n",
        b"BAD REQUEST LINE\r\n\r\n",
    ] {
        let answer = raw_exchange(&service.url, request);
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
        assert!(head.starts_with("HTTP/1.1 400"), "{answer}");
        let lower = head.to_ascii_lowercase();
        assert!(lower.contains("content-type: application/json"), "{head}");
        let request_id = lower
            .lines()
            .find_map(|l| l.strip_prefix("x-request-id: "))
            .expect("an X-Request-Id")
            .to_string();
        let envelope: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(envelope["error"]["code"], "malformed_request");
        assert_eq!(envelope["error"]["request_id"], request_id.as_str());
    }
    // A well-formed request on the same server is untouched.
    let answer = raw_exchange(
        &service.url,
        b"GET /v1/orders/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("\"unauthenticated\""), "{answer}");
}
