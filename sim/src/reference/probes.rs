//! Probes of the reference service after the settle (`[service] probe_misuse`,
//! `probe_retention`): requests that cross a documented rule's boundary which the workload's
//! well-formed clients never send, each filed in the history with its raw answer and what
//! the ledger, the store and the service's own reports said around it. The oracle
//! `service_probes` judges them; this file only sends and records.
//!
//! They run in the quiesce hook, after the faults healed and the webhooks drained, as caller
//! 0, with keys prefixed `probe-` that no workload client uses.

use std::time::Duration;

use shipsim_system::api::{
    Address, CreateOrderRequest, CreateShipmentRequest, HEADER_API_KEY, HEADER_IDEMPOTENCY_KEY,
    HEADER_IDEMPOTENT_REPLAYED, HEADER_REQUEST_ID, LabelRequest, OrderItem, ServiceLevel,
};
use shipsim_system::carrier::CarrierLedger;
use shipsim_system::observe::SystemEvent;
use shipsim_system::transport::{HttpResponse, Transport};

use super::{ADMIN_KEY, CARRIER, CARRIER_API_KEY};
use crate::oracle::{
    DOCUMENTED_RETENTION_MS, DOCUMENTED_SWEEP_BATCH, DOCUMENTED_SWEEP_INTERVAL_MS, Probe,
    ProbeRule, id_of,
};
use crate::target::{Caller, QuiesceContext, SERVICE_HOST};

/// The longest a probe waits before replaying inside the retention (simulated ms): longer
/// than any retention a shorter-lived constant could pass for (a minute and a half), short
/// enough to simulate in a second or two.
pub const INSIDE_WAIT_MS_MAX: u64 = 100_000;

/// Margin kept from every boundary the probes aim at, ms (network hops, store round trips).
pub const MARGIN_MS: u64 = 2_000;

/// The past-retention probes run only when the wait (retention plus a sweep interval) is at
/// most this long (4 min): a day cannot be simulated in a test.
pub const PAST_WAIT_MS_MAX: u64 = 240_000;

/// Times a probe is sent again after a 429.
const RATE_LIMITED_RETRIES_MAX: u32 = 5;

/// Requests of the burst sent at once.
const BURST_CONCURRENCY: usize = 50;

/// Pages of 100 the exact-page probe reads, at most, to count the caller's events.
const FEED_PAGES_MAX: usize = 20;

/// How far into a second of the service's clock the tolerance probe is sent, ms: past the
/// turn of the second even under a drifting clock, and far enough from the next one that the
/// service reads its clock within the same second (a hop and a store round trip).
const BOUNDARY_INTO_SECOND_MS: u64 = 20;

/// A caller-sent request id the README accepts (letters, digits, `-`).
pub const VALID_REQUEST_ID: &str = "probe-0f3c.trace:1";

/// Caller-sent request ids the README does not accept: a space (length fine), and 129
/// characters that are each allowed (one past the 128-character limit).
pub fn invalid_request_ids() -> [String; 2] {
    ["probe request id".to_string(), "r".repeat(129)]
}

/// Whether the probes need the quiesce hook.
pub(super) fn wanted(scenario: &crate::scenario::Scenario) -> bool {
    scenario.service.probe_misuse || scenario.service.probe_retention
}

/// Runs the probes the scenario asks for.
pub(super) async fn run(context: &QuiesceContext) {
    let service = context.client(SERVICE_HOST);
    let carrier = context.client(CARRIER);
    // Under a key rotation the service holds the caller's new key from the start and
    // retires the old one later: the probes use the new key, as a caller past the rotation
    // does, so that a refusal they get is about what they probe, not a retired key (explore
    // seeds 146, 415, 430: the old key, retired before the probes ran, was answered 401).
    let mut caller = Caller::new(0);
    if context.scenario().credentials.is_some() {
        caller.api_key = crate::scenario::CredentialSettings::rotated_key(&caller.api_key);
    }
    let probe = Prober {
        context,
        service: &*service,
        carrier: &*carrier,
        caller,
    };
    if context.scenario().service.probe_misuse {
        probe.misuse().await;
    }
    if context.scenario().service.probe_retention {
        probe.retention().await;
    }
}

struct Prober<'a> {
    context: &'a QuiesceContext,
    service: &'a dyn Transport,
    /// The carrier: its router shares the service's request context and envelope, and its
    /// unknown routes are the framework's own 404s (it has no fallback of its own).
    carrier: &'a dyn Transport,
    caller: Caller,
}

/// The probes' destination, in `country`.
fn probe_address(country: &str) -> Address {
    Address {
        name: "Probe Customer".into(),
        line1: "1 Edge Street".into(),
        city: "Springfield".into(),
        postal_code: "12345".into(),
        country: country.into(),
    }
}

/// An order body, `reference` telling bodies apart.
fn order_body(reference: &str, key_in_body: Option<&str>) -> Vec<u8> {
    serde_json::to_vec(&CreateOrderRequest {
        reference: reference.to_string(),
        items: vec![OrderItem {
            sku: "SKU-100".into(),
            quantity: 1,
        }],
        ship_to: probe_address("DE"),
        idempotency_key: key_in_body.map(str::to_string),
    })
    .expect("API types serialise")
}

fn shipment_body() -> Vec<u8> {
    serde_json::to_vec(&CreateShipmentRequest {
        service_level: ServiceLevel::Ground,
        weight_grams: 1_200,
        idempotency_key: None,
    })
    .expect("API types serialise")
}

impl Prober<'_> {
    fn now_ms(&self) -> u64 {
        self.context.now_ms()
    }

    fn sales(&self) -> u64 {
        self.context
            .durables()
            .get::<CarrierLedger>(CARRIER, "ledger")
            .map_or(0, |ledger| ledger.sales().len() as u64)
    }

    /// The service's reports (its events) of a refused reuse of `key`.
    fn reuse_reports(&self, key: &str) -> u64 {
        self.context.system_events(|event| {
            matches!(event, SystemEvent::KeyReuseRejected { caller, key: k }
                if *caller == self.caller.id && k == key)
        })
    }

    /// Which of `keys` the store holds an idempotency record for (caller 0's).
    fn stored(&self, keys: &[&str]) -> Vec<String> {
        super::service_tables(self.context.durables(), |live, _| {
            live.idempotency
                .values()
                .filter(|r| {
                    r.scope.caller == self.caller.id && keys.contains(&r.scope.key.as_str())
                })
                .map(|r| r.scope.key.clone())
                .collect()
        })
        .unwrap_or_default()
    }

    /// Sends one request (5 s deadline each time), again after the `Retry-After` of a 429
    /// (a rate-limited scenario's limiter is not what the probes are about), up to
    /// [`RATE_LIMITED_RETRIES_MAX`] times; `None` when no answer came back.
    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Option<HttpResponse> {
        let mut answer = self
            .send_once(self.service, method, path, headers, body.clone())
            .await;
        for _ in 0..RATE_LIMITED_RETRIES_MAX {
            let Some(wait_s) = answer
                .as_ref()
                .filter(|a| a.status() == http::StatusCode::TOO_MANY_REQUESTS)
                .map(|a| {
                    a.headers()
                        .get(http::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .unwrap_or(1)
                })
            else {
                break;
            };
            tokio::time::sleep(Duration::from_secs(wait_s.clamp(1, 10))).await;
            answer = self
                .send_once(self.service, method, path, headers, body.clone())
                .await;
        }
        answer
    }

    async fn send_once(
        &self,
        host: &dyn Transport,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Option<HttpResponse> {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(format!("http://{SERVICE_HOST}{path}"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        if !body.is_empty() {
            builder = builder.header("content-type", "application/json");
        }
        let request = builder.body(bytes::Bytes::from(body)).ok()?;
        tokio::time::timeout(Duration::from_secs(5), host.send(request))
            .await
            .ok()?
            .ok()
    }

    /// Sends and files one probe; returns the answer.
    #[allow(clippy::too_many_arguments)]
    async fn probe(
        &self,
        rule: ProbeRule,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        reported_key: Option<&str>,
        first: Option<(u64, &str)>,
    ) -> Option<HttpResponse> {
        let (probe, answer) = self
            .exchange(rule, method, path, headers, body, reported_key, first)
            .await;
        self.context.file_probe(probe);
        answer
    }

    /// Sends one probe to the service and builds its record, unfiled.
    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &self,
        rule: ProbeRule,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        reported_key: Option<&str>,
        first: Option<(u64, &str)>,
    ) -> (Probe, Option<HttpResponse>) {
        let request_id_sent = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(HEADER_REQUEST_ID))
            .map(|(_, value)| (*value).to_string());
        let shown: Vec<String> = headers
            .iter()
            .filter(|(name, _)| *name != HEADER_API_KEY)
            .map(|(name, value)| format!("{name}: {value}"))
            .collect();
        let request = format!(
            "{method} {path} [{}] {}",
            shown.join(", "),
            String::from_utf8_lossy(&body)
        );
        let reported_before = reported_key.map_or(0, |k| self.reuse_reports(k));
        let sales_before = self.sales();
        let sent_at_ms = self.now_ms();
        let answer = self.send(method, path, headers, body).await;
        let header = |name: &str| {
            answer
                .as_ref()
                .and_then(|a| a.headers().get(name))
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let probe = Probe {
            rule: Some(rule),
            request,
            request_id_sent,
            sent_at_ms,
            status: answer.as_ref().map(|a| a.status().as_u16()),
            request_id: header(HEADER_REQUEST_ID),
            replayed: header(HEADER_IDEMPOTENT_REPLAYED).as_deref() == Some("true"),
            body: answer
                .as_ref()
                .map(|a| a.body().clone())
                .unwrap_or_default(),
            effects: (sales_before, self.sales()),
            reported: (
                reported_before,
                reported_key.map_or(0, |k| self.reuse_reports(k)),
            ),
            stored_keys: Vec::new(),
            since_first_ms: first.map_or(0, |(at, _)| sent_at_ms.saturating_sub(at)),
            first_id: first.map(|(_, id)| id.to_string()),
            scope: headers
                .iter()
                .find(|(name, _)| *name == HEADER_IDEMPOTENCY_KEY)
                .map(|(_, key)| (self.caller.id.clone(), (*key).to_string())),
            earlier: None,
            signature_skew_s: None,
        };
        (probe, answer)
    }

    /// A misbehaving-but-plausible caller: a typo'd route, its own request ids (one valid,
    /// two not), a header key and a body key that disagree, a key reused with another body.
    async fn misuse(&self) {
        let api_key = self.caller.api_key.clone();
        let auth = (HEADER_API_KEY, api_key.as_str());
        self.probe(
            ProbeRule::UnknownRoute,
            "GET",
            "/v1/shipmentz",
            &[auth],
            Vec::new(),
            None,
            None,
        )
        .await;
        self.carrier_unknown_route().await;
        self.probe(
            ProbeRule::RequestIdEchoed,
            "GET",
            "/v1/orders/ord_probe_missing",
            &[auth, (HEADER_REQUEST_ID, VALID_REQUEST_ID)],
            Vec::new(),
            None,
            None,
        )
        .await;
        for id in invalid_request_ids() {
            self.probe(
                ProbeRule::RequestIdReplaced,
                "GET",
                "/v1/orders/ord_probe_missing",
                &[auth, (HEADER_REQUEST_ID, id.as_str())],
                Vec::new(),
                None,
                None,
            )
            .await;
        }
        let (header_key, body_key) = ("probe-disagree-header", "probe-disagree-body");
        let (mut probe, _) = self
            .exchange(
                ProbeRule::KeysDisagree,
                "POST",
                "/v1/orders",
                &[auth, (HEADER_IDEMPOTENCY_KEY, header_key)],
                order_body("PO-probe-disagree", Some(body_key)),
                None,
                None,
            )
            .await;
        probe.stored_keys = self.stored(&[header_key, body_key]);
        self.context.file_probe(probe);
        let key = "probe-reuse";
        let reused_order = self
            .send(
                "POST",
                "/v1/orders",
                &[auth, (HEADER_IDEMPOTENCY_KEY, key)],
                order_body("PO-probe-reuse-1", None),
            )
            .await;
        self.probe(
            ProbeRule::KeyReuseReported,
            "POST",
            "/v1/orders",
            &[auth, (HEADER_IDEMPOTENCY_KEY, key)],
            order_body("PO-probe-reuse-2", None),
            Some(key),
            None,
        )
        .await;
        // Added after the probes above, so that their requests (and ids) stay as they were.
        self.carrier_wrong_keys().await;
        self.malformed_field(auth).await;
        self.refusal_replayed(auth).await;
        let order_id = reused_order.as_ref().and_then(|o| id_of(o.body()));
        self.store_read(order_id.as_deref()).await;
        let webhooks = self.context.scenario().webhooks;
        if webhooks.is_some_and(|w| w.outbound) {
            self.feed_pages(auth).await;
        }
        if webhooks.is_some_and(|w| w.tracking) {
            self.unknown_shipment_event().await;
            self.tracking_counted().await;
        }
        // Last, so that every request above keeps its place in the trace.
        self.probe(
            ProbeRule::MetricsExposed,
            "GET",
            "/metrics",
            &[],
            Vec::new(),
            None,
            None,
        )
        .await;
        // Added after /metrics (branch h31svc), so that every request above keeps its
        // place, and its id, in the trace.
        self.malformed_shipment(auth, order_id.as_deref()).await;
        if webhooks.is_some_and(|w| w.outbound) {
            self.feed_exact_page(auth).await;
        }
        if let Some(settings) = webhooks.filter(|w| w.tracking) {
            self.unknown_kind_event().await;
            self.tolerance_boundary_event(settings.tolerance_s).await;
        }
    }

    /// A shipment whose `weight_grams` is 0 (the README allows 1 to the parcel maximum),
    /// for the order the probes created: refused before execution, so nothing is stored
    /// under its key and no label is bought.
    async fn malformed_shipment(&self, auth: (&str, &str), order_id: Option<&str>) {
        let Some(order_id) = order_id else { return };
        let key = "probe-malformed-shipment";
        let body = serde_json::to_vec(&CreateShipmentRequest {
            service_level: ServiceLevel::Ground,
            weight_grams: 0,
            idempotency_key: None,
        })
        .expect("API types serialise");
        let (mut probe, _) = self
            .exchange(
                ProbeRule::MalformedShipmentRefused,
                "POST",
                &format!("/v1/orders/{order_id}/shipments"),
                &[auth, (HEADER_IDEMPOTENCY_KEY, key)],
                body,
                None,
                None,
            )
            .await;
        probe.stored_keys = self.stored(&[key]);
        self.context.file_probe(probe);
    }

    /// The caller's events feed counted in pages of 100, then its last page read again with
    /// a limit of exactly the events it held: nothing waits after it, so its `has_more`
    /// must be false (judged as a `FeedHasMore` page against the page after its cursor).
    async fn feed_exact_page(&self, auth: (&str, &str)) {
        let page_of = |answer: Option<HttpResponse>| {
            answer
                .filter(|a| a.status() == http::StatusCode::OK)
                .and_then(|a| serde_json::from_slice::<serde_json::Value>(a.body()).ok())
        };
        let feed_path = |after: Option<&str>, limit: usize| match after {
            Some(cursor) => format!("/v1/events?after={cursor}&limit={limit}"),
            None => format!("/v1/events?limit={limit}"),
        };
        let mut after: Option<String> = None;
        let mut last_page = None;
        for _ in 0..FEED_PAGES_MAX {
            let Some(page) = page_of(
                self.send(
                    "GET",
                    &feed_path(after.as_deref(), 100),
                    &[auth],
                    Vec::new(),
                )
                .await,
            ) else {
                return;
            };
            let held = page["events"].as_array().map_or(0, Vec::len);
            if page["has_more"].as_bool() != Some(true) {
                last_page = Some(held);
                break;
            }
            let Some(cursor) = page["next_cursor"].as_str() else {
                return;
            };
            after = Some(cursor.to_string());
        }
        let Some(held) = last_page.filter(|held| *held > 0) else {
            return;
        };
        let (mut probe, answer) = self
            .exchange(
                ProbeRule::FeedHasMore,
                "GET",
                &feed_path(after.as_deref(), held),
                &[auth],
                Vec::new(),
                None,
                None,
            )
            .await;
        let Some(cursor) =
            page_of(answer).and_then(|page| page["next_cursor"].as_str().map(str::to_string))
        else {
            return;
        };
        let next = self
            .send("GET", &feed_path(Some(&cursor), 100), &[auth], Vec::new())
            .await;
        probe.earlier = next.map(|a| (a.status().as_u16(), a.body().clone()));
        self.context.file_probe(probe);
    }

    /// A signed carrier event, `event`'s fields as given, signed at `signed_at_s` (unix).
    fn signed_event(event: &serde_json::Value, signed_at_s: u64) -> (Vec<u8>, String) {
        let body = serde_json::to_vec(event).expect("JSON serialises");
        let signature = shipsim_system::webhook::sign(
            super::deployment::CARRIER_WEBHOOK_SECRET,
            signed_at_s,
            &body,
        );
        (body, signature)
    }

    /// A correctly signed carrier event of a kind the service does not know.
    async fn unknown_kind_event(&self) {
        let now_unix_ms = crate::run::clock::EPOCH_UNIX_MS + self.now_ms();
        let (body, signature) = Self::signed_event(
            &serde_json::json!({
                "event_id": "trk_probe_unknown_kind",
                "kind": "customs_hold",
                "shipment_ref": "shp_probe_unknown_kind",
                "label_id": "lbl_probe_unknown_kind",
                "tracking_number": "TRK-PROBE-KIND",
                "occurred_at_ms": now_unix_ms,
            }),
            now_unix_ms / 1_000,
        );
        self.probe(
            ProbeRule::UnknownKindIgnored,
            "POST",
            "/v1/webhooks/carrier",
            &[(
                shipsim_system::webhook::HEADER_SIGNATURE,
                signature.as_str(),
            )],
            body,
            None,
            None,
        )
        .await;
    }

    /// A carrier event signed exactly `tolerance_s` before the service's clock: the probe
    /// reads the service's clock as the simulation sets it (the epoch, simulated time and
    /// the scenario's skews of the service), waits until that clock has just turned a
    /// second, and signs with that second less the tolerance. When the service's clock shows
    /// the same second once the answer is back, the service read exactly that gap.
    async fn tolerance_boundary_event(&self, tolerance_s: u64) {
        let clock =
            crate::run::clock::SimClock::for_host(SERVICE_HOST, &self.context.scenario().faults);
        let service_ms = |elapsed_ms: u64| clock.at(Duration::from_millis(elapsed_ms));
        let into_second_ms = service_ms(self.now_ms()) % 1_000;
        tokio::time::sleep(Duration::from_millis(
            1_000 - into_second_ms + BOUNDARY_INTO_SECOND_MS,
        ))
        .await;
        let sent_s = service_ms(self.now_ms()) / 1_000;
        let signed_at_s = sent_s.saturating_sub(tolerance_s);
        let (body, signature) = Self::signed_event(
            &serde_json::json!({
                "event_id": "trk_probe_tolerance_boundary",
                "kind": "picked_up",
                "shipment_ref": "shp_probe_tolerance_boundary",
                "label_id": "lbl_probe_tolerance_boundary",
                "tracking_number": "TRK-PROBE-TOLERANCE",
                "occurred_at_ms": signed_at_s * 1_000,
            }),
            signed_at_s,
        );
        let (mut probe, _) = self
            .exchange(
                ProbeRule::ToleranceBoundaryAccepted,
                "POST",
                "/v1/webhooks/carrier",
                &[(
                    shipsim_system::webhook::HEADER_SIGNATURE,
                    signature.as_str(),
                )],
                body,
                None,
                None,
            )
            .await;
        let answered_s = service_ms(self.now_ms()) / 1_000;
        probe.signature_skew_s = (answered_s == sent_s).then(|| sent_s - signed_at_s);
        self.context.file_probe(probe);
    }

    /// Files a probe of the carrier's own API.
    fn file_carrier(
        &self,
        rule: ProbeRule,
        request: String,
        sent_at_ms: u64,
        sales_before: u64,
        answer: Option<HttpResponse>,
        earlier: Option<(u16, bytes::Bytes)>,
    ) {
        self.context.file_probe(Probe {
            rule: Some(rule),
            request,
            sent_at_ms,
            status: answer.as_ref().map(|a| a.status().as_u16()),
            request_id: answer
                .as_ref()
                .and_then(|a| a.headers().get(HEADER_REQUEST_ID))
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: answer.map(|a| a.body().clone()).unwrap_or_default(),
            effects: (sales_before, self.sales()),
            earlier,
            ..Probe::default()
        });
    }

    /// A label bought from the carrier with a wrong key, then with none: nothing in the
    /// system sends either, so only a probe crosses the carrier's authentication.
    async fn carrier_wrong_keys(&self) {
        let body = serde_json::to_vec(&LabelRequest {
            shipment_ref: "shp_probe_wrong_key".into(),
            service_level: ServiceLevel::Ground,
            weight_grams: 1_200,
            ship_to: probe_address("DE"),
        })
        .expect("API types serialise");
        let wrong = format!("{CARRIER_API_KEY}x");
        for key in [Some(wrong.as_str()), None] {
            let mut headers = vec![(HEADER_IDEMPOTENCY_KEY, "probe-carrier-key")];
            if let Some(key) = key {
                headers.push((HEADER_API_KEY, key));
            }
            let sales = self.sales();
            let sent_at_ms = self.now_ms();
            let answer = self
                .send_once(self.carrier, "POST", "/v1/labels", &headers, body.clone())
                .await;
            let shown = if key.is_some() { "a wrong" } else { "no" };
            self.file_carrier(
                ProbeRule::CarrierKeyRefused,
                format!("POST {CARRIER}/v1/labels with {shown} API key"),
                sent_at_ms,
                sales,
                answer,
                None,
            );
        }
    }

    /// An order whose JSON parses but whose `items[0].quantity` is a string.
    async fn malformed_field(&self, auth: (&str, &str)) {
        let mut body: serde_json::Value =
            serde_json::from_slice(&order_body("PO-probe-malformed", None))
                .expect("an order body is JSON");
        body["items"][0]["quantity"] = serde_json::Value::from("one");
        self.probe(
            ProbeRule::MalformedFieldNamed,
            "POST",
            "/v1/orders",
            &[auth, (HEADER_IDEMPOTENCY_KEY, "probe-malformed")],
            serde_json::to_vec(&body).expect("JSON serialises"),
            None,
            None,
        )
        .await;
    }

    /// A shipment to a country the carrier does not serve, created and then replayed with
    /// its key: the refusal is stored, and the replay must be it.
    async fn refusal_replayed(&self, auth: (&str, &str)) {
        let order = self
            .send(
                "POST",
                "/v1/orders",
                &[auth, (HEADER_IDEMPOTENCY_KEY, "probe-refused-order")],
                serde_json::to_vec(&CreateOrderRequest {
                    reference: "PO-probe-refused".into(),
                    items: vec![OrderItem {
                        sku: "SKU-100".into(),
                        quantity: 1,
                    }],
                    ship_to: probe_address(super::UNSERVICEABLE_COUNTRY),
                    idempotency_key: None,
                })
                .expect("API types serialise"),
            )
            .await;
        let Some(order_id) = order.as_ref().and_then(|o| id_of(o.body())) else {
            return;
        };
        let path = format!("/v1/orders/{order_id}/shipments");
        let headers = [auth, (HEADER_IDEMPOTENCY_KEY, "probe-refused-shipment")];
        let Some(first) = self.send("POST", &path, &headers, shipment_body()).await else {
            return;
        };
        let (mut probe, _) = self
            .exchange(
                ProbeRule::RefusalReplayed,
                "POST",
                &path,
                &headers,
                shipment_body(),
                None,
                None,
            )
            .await;
        probe.earlier = Some((first.status().as_u16(), first.body().clone()));
        self.context.file_probe(probe);
    }

    /// The operator's store read: filed twice, for the order the probes created and for
    /// the parcels' outcomes.
    async fn store_read(&self, order_id: Option<&str>) {
        let (mut probe, _) = self
            .exchange(
                ProbeRule::StoreReadWhole,
                "GET",
                "/v1/admin/state",
                &[(shipsim_system::service::HEADER_ADMIN_KEY, ADMIN_KEY)],
                Vec::new(),
                None,
                None,
            )
            .await;
        probe.first_id = order_id.map(str::to_string);
        let mut outcomes = probe.clone();
        outcomes.rule = Some(ProbeRule::TrackingOutcomes);
        outcomes.first_id = None;
        self.context.file_probe(probe);
        self.context.file_probe(outcomes);
    }

    /// The caller's events feed read as a page of one, then the rest in pages of 100 (at
    /// most three pages): each page filed with the next one, which its `has_more` foretells.
    async fn feed_pages(&self, auth: (&str, &str)) {
        let mut path = "/v1/events?limit=1".to_string();
        let mut previous: Option<Probe> = None;
        for _ in 0..3 {
            let (probe, answer) = self
                .exchange(
                    ProbeRule::FeedHasMore,
                    "GET",
                    &path,
                    &[auth],
                    Vec::new(),
                    None,
                    None,
                )
                .await;
            let status = probe.status;
            if let Some(mut earlier) = previous.take() {
                earlier.earlier = status.map(|s| (s, probe.body.clone()));
                self.context.file_probe(earlier);
            }
            let Some(cursor) = answer
                .filter(|a| a.status() == http::StatusCode::OK)
                .and_then(|a| serde_json::from_slice::<serde_json::Value>(a.body()).ok())
                .and_then(|page| page["next_cursor"].as_str().map(str::to_string))
            else {
                return;
            };
            path = format!("/v1/events?after={cursor}&limit=100");
            previous = Some(probe);
        }
    }

    /// A correctly signed carrier event about a shipment the service never had.
    async fn unknown_shipment_event(&self) {
        let event = shipsim_system::api::TrackingEvent {
            event_id: "trk_probe_unknown_shipment".into(),
            kind: shipsim_system::api::TrackingKind::PickedUp,
            shipment_ref: "shp_probe_unknown".into(),
            label_id: "lbl_probe_unknown".into(),
            tracking_number: "TRK-PROBE".into(),
            occurred_at_ms: crate::run::clock::EPOCH_UNIX_MS + self.now_ms(),
        };
        let body = serde_json::to_vec(&event).expect("API types serialise");
        let signed_at_s = (crate::run::clock::EPOCH_UNIX_MS + self.now_ms()) / 1_000;
        let signature = shipsim_system::webhook::sign(
            super::deployment::CARRIER_WEBHOOK_SECRET,
            signed_at_s,
            &body,
        );
        self.probe(
            ProbeRule::UnknownShipmentIgnored,
            "POST",
            "/v1/webhooks/carrier",
            &[(
                shipsim_system::webhook::HEADER_SIGNATURE,
                signature.as_str(),
            )],
            body,
            None,
            None,
        )
        .await;
    }

    /// The carrier's operator counts of its tracking log, filed with the counts its ledger
    /// holds.
    async fn tracking_counted(&self) {
        let held = self
            .context
            .durables()
            .get::<CarrierLedger>(CARRIER, "ledger")
            .map(|ledger| {
                super::webhooks::delivery_counts(ledger.tracking().iter().map(|i| &i.delivery))
            });
        let Some((pending, delivered, dead_letter)) = held else {
            return;
        };
        let sales = self.sales();
        let sent_at_ms = self.now_ms();
        let answer = self
            .send_once(
                self.carrier,
                "GET",
                "/v1/admin/tracking",
                &[(shipsim_system::service::HEADER_ADMIN_KEY, ADMIN_KEY)],
                Vec::new(),
            )
            .await;
        let held = serde_json::json!({
            "pending": pending,
            "delivered": delivered,
            "dead_letter": dead_letter,
        });
        self.file_carrier(
            ProbeRule::TrackingCounted,
            format!("GET {CARRIER}/v1/admin/tracking"),
            sent_at_ms,
            sales,
            answer,
            Some((200, bytes::Bytes::from(held.to_string()))),
        );
    }

    /// The service's carrier client with a typo'd route: the carrier's router has no
    /// fallback, so the framework's own 404 must still come out in the envelope.
    async fn carrier_unknown_route(&self) {
        let (method, path) = ("GET", "/v1/labelz");
        let sales = self.sales();
        let sent_at_ms = self.now_ms();
        let answer = self
            .send_once(
                self.carrier,
                method,
                path,
                &[(HEADER_API_KEY, CARRIER_API_KEY)],
                Vec::new(),
            )
            .await;
        let request_id = answer
            .as_ref()
            .and_then(|a| a.headers().get(HEADER_REQUEST_ID))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.context.file_probe(Probe {
            rule: Some(ProbeRule::UnknownRoute),
            request: format!("{method} {CARRIER}{path}"),
            sent_at_ms,
            status: answer.as_ref().map(|a| a.status().as_u16()),
            request_id,
            body: answer.map(|a| a.body().clone()).unwrap_or_default(),
            effects: (sales, self.sales()),
            ..Probe::default()
        });
    }

    /// A shipment replayed just inside the retention; when the retention can be waited out,
    /// a burst of keys past one sweep's batch, the store read a sweep interval after they all
    /// expired, and the shipment's key reused.
    async fn retention(&self) {
        let scenario = self.context.scenario();
        let retention_ms = scenario
            .service
            .idempotency_retention_ms
            .unwrap_or(DOCUMENTED_RETENTION_MS);
        let api_key = self.caller.api_key.clone();
        let auth = (HEADER_API_KEY, api_key.as_str());
        let order = self
            .send(
                "POST",
                "/v1/orders",
                &[auth, (HEADER_IDEMPOTENCY_KEY, "probe-retention-order")],
                order_body("PO-probe-retention", None),
            )
            .await;
        let Some(order_id) = order.as_ref().and_then(|o| id_of(o.body())) else {
            return;
        };
        let path = format!("/v1/orders/{order_id}/shipments");
        let key = "probe-retention-shipment";
        let headers = [auth, (HEADER_IDEMPOTENCY_KEY, key)];
        let first = self
            .probe(
                ProbeRule::RetentionFirst,
                "POST",
                &path,
                &headers,
                shipment_body(),
                None,
                None,
            )
            .await;
        let first_at_ms = self.now_ms();
        let Some(first_id) = first.as_ref().and_then(|a| id_of(a.body())) else {
            return;
        };
        let past = retention_ms + DOCUMENTED_SWEEP_INTERVAL_MS + MARGIN_MS <= PAST_WAIT_MS_MAX
            && scenario.service.rate_limit.is_none();
        if past {
            self.burst(auth).await;
        }
        let last_created_ms = self.now_ms();
        // A retention shorter than twice the margin (the minimum is 1 s) replays at its
        // middle: the margin may not take the replay to the start, nor past the end.
        let inside_ms = retention_ms.min(INSIDE_WAIT_MS_MAX) - MARGIN_MS.min(retention_ms / 2);
        self.sleep_until(first_at_ms + inside_ms).await;
        self.probe(
            ProbeRule::ReplayInsideRetention,
            "POST",
            &path,
            &headers,
            shipment_body(),
            None,
            Some((first_at_ms, &first_id)),
        )
        .await;
        if !past {
            return;
        }
        self.sleep_until(last_created_ms + retention_ms + DOCUMENTED_SWEEP_INTERVAL_MS + MARGIN_MS)
            .await;
        self.probe(
            ProbeRule::ExpiredSwept,
            "GET",
            "/v1/admin/state",
            &[(shipsim_system::service::HEADER_ADMIN_KEY, ADMIN_KEY)],
            Vec::new(),
            None,
            Some((last_created_ms, &first_id)),
        )
        .await;
        self.probe(
            ProbeRule::ReusedAfterExpiry,
            "POST",
            &path,
            &headers,
            shipment_body(),
            None,
            Some((first_at_ms, &first_id)),
        )
        .await;
    }

    /// One more order than a sweep deletes per transaction (the scenario's batch, or the
    /// README's 1,000), sent [`BURST_CONCURRENCY`] at a time so they expire within a second
    /// of each other.
    async fn burst(&self, auth: (&str, &str)) {
        let batch = self
            .context
            .scenario()
            .service
            .idempotency_sweep_batch
            .and_then(|batch| usize::try_from(batch).ok())
            .unwrap_or(DOCUMENTED_SWEEP_BATCH);
        let keys: Vec<String> = (0..=batch).map(|i| format!("probe-burst-{i}")).collect();
        for chunk in keys.chunks(BURST_CONCURRENCY) {
            let sends = chunk.iter().map(|key| {
                let reference = format!("PO-{key}");
                async move {
                    self.send(
                        "POST",
                        "/v1/orders",
                        &[auth, (HEADER_IDEMPOTENCY_KEY, key.as_str())],
                        order_body(&reference, None),
                    )
                    .await
                }
            });
            join_all(sends.collect()).await;
        }
    }

    async fn sleep_until(&self, at_ms: u64) {
        let now = self.now_ms();
        if at_ms > now {
            tokio::time::sleep(Duration::from_millis(at_ms - now)).await;
        }
    }
}

/// Polls every future to completion, concurrently, on the calling task.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}
