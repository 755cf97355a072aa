//! Webhook faults: injected into a webhook sender's transport, so they act on deliveries
//! the way a flaky network, a retrying proxy or an attacker would. `inbound` is the
//! carrier's tracking sender (carrier -> service), `outbound` the service's outbox sender
//! (service -> merchant receiver).
//!
//! As with HTTP faults, every eligible rule draws from its own stream on every delivery;
//! the first that fires acts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use shipsim_system::seed::Seed;
use shipsim_system::transport::{BoxFuture, HttpRequest, HttpResponse, Transport, TransportError};

use super::params::Params;
use super::{FaultSpec, ParamInfo, Window};
use crate::reach::{Injection, InjectionKind};
use crate::run::state::Shared;
use crate::scenario::ScenarioError;
use crate::scenario::write_quote as quote;

/// Which webhook traffic a fault acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Carrier tracking events to the service.
    Inbound,
    /// Service events to the merchants' receiver.
    Outbound,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// What a webhook fault does to a delivery it fires on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookEffect {
    /// Send it `copies` times at once.
    Duplicate {
        /// Deliveries.
        copies: u32,
    },
    /// Hold it for a random time up to `max_delay_ms` first, so later events overtake it.
    Reorder {
        /// Longest hold, ms.
        max_delay_ms: u64,
    },
    /// Deliver it, then hold the answer `delay_ms` (past the sender's timeout: a retry of a
    /// delivered event).
    Delay {
        /// Hold, ms.
        delay_ms: u64,
    },
    /// Lose it before it arrives, or (`after`) lose the answer after it was processed.
    Drop {
        /// Whether the receiver processed it.
        after: bool,
    },
    /// Deliver it, then send the same signed bytes again `after_ms` later (past the
    /// tolerance window, a captured delivery replayed).
    Replay {
        /// Delay of the replay, ms.
        after_ms: u64,
    },
    /// Deliver it, and also a forgery: a new event id under the old signature.
    Forge,
}

/// A webhook fault: which traffic and what it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookRule {
    /// Which sender's deliveries.
    pub direction: Direction,
    /// What it does.
    pub effect: WebhookEffect,
}

impl WebhookRule {
    /// The `direction` parameter.
    pub(crate) const DIRECTION: ParamInfo = ParamInfo {
        name: "direction",
        required: false,
        doc: "\"outbound\" (service -> merchant, default) or \"inbound\" (carrier -> service)",
        limit: None,
    };

    /// Reads `direction`, checking the scenario has that webhook traffic.
    pub(crate) fn parse_direction(params: &mut Params<'_>) -> Result<Direction, ScenarioError> {
        let (direction, span) = match params.text("direction") {
            None => (Direction::Outbound, None),
            Some((text, span)) => match text.as_str() {
                "outbound" => (Direction::Outbound, Some(span)),
                "inbound" => (Direction::Inbound, Some(span)),
                other => {
                    return Err(params.error(
                        span,
                        format!("`direction` is \"inbound\" or \"outbound\", not \"{other}\""),
                    ));
                }
            },
        };
        let enabled = params.webhooks().is_some_and(|w| match direction {
            Direction::Inbound => w.tracking,
            Direction::Outbound => w.outbound,
        });
        if !enabled {
            let message = format!(
                "a {} webhook fault needs {} webhooks",
                direction.name(),
                direction.name()
            );
            let hint = match direction {
                Direction::Inbound => "add `[webhooks]` with `tracking = true`",
                Direction::Outbound => "add `[webhooks]` with `outbound = true`",
            };
            return Err(match span {
                Some(span) => params.error(span, message),
                None => params.whole(message),
            }
            .with_hint(hint));
        }
        Ok(direction)
    }

    /// What it does, in words.
    #[must_use]
    pub fn describe(&self) -> String {
        let what = match self.effect {
            WebhookEffect::Duplicate { copies } => format!("delivered {copies}x"),
            WebhookEffect::Reorder { max_delay_ms } => {
                format!("held up to {max_delay_ms} ms (reordered)")
            }
            WebhookEffect::Delay { delay_ms } => format!("answer held {delay_ms} ms"),
            WebhookEffect::Drop { after: false } => "lost before arrival".to_string(),
            WebhookEffect::Drop { after: true } => "answer lost after processing".to_string(),
            WebhookEffect::Replay { after_ms } => format!("replayed {after_ms} ms later"),
            WebhookEffect::Forge => "forged copy sent".to_string(),
        };
        format!("{} webhooks {what}", self.direction.name())
    }

    /// Parameters as TOML, for repro files.
    pub(crate) fn params_toml(&self) -> Vec<(&'static str, String)> {
        let mut params = vec![("direction", quote(self.direction.name()))];
        match self.effect {
            WebhookEffect::Duplicate { copies } => params.push(("copies", copies.to_string())),
            WebhookEffect::Reorder { max_delay_ms } => {
                params.push(("max_ms", max_delay_ms.to_string()))
            }
            WebhookEffect::Delay { delay_ms } => params.push(("delay_ms", delay_ms.to_string())),
            WebhookEffect::Drop { after } => {
                params.push(("when", quote(if after { "after" } else { "before" })))
            }
            WebhookEffect::Replay { after_ms } => params.push(("after_ms", after_ms.to_string())),
            WebhookEffect::Forge => {}
        }
        params
    }
}

struct Rule {
    index: usize,
    window: Window,
    probability: f64,
    effect: WebhookEffect,
    rng: Mutex<ChaCha8Rng>,
}

/// A sender's transport with the webhook faults of its direction.
pub(crate) struct WebhookFaults {
    inner: Arc<dyn Transport>,
    host: String,
    /// The receiving host's clock, to judge how old an injected delivery's signature was
    /// when it was sent (the receiver's view of time, skew included).
    receiver_clock: crate::run::clock::SimClock,
    /// The host the deliveries go to (`host` is the one sending them).
    receiver: String,
    rules: Vec<Rule>,
    shared: Shared,
    forge_rng: Mutex<ChaCha8Rng>,
}

impl WebhookFaults {
    /// Wraps `inner`, the transport of the sender on `host` that carries `direction`.
    pub(crate) fn new(
        inner: Arc<dyn Transport>,
        host: &str,
        receiver: &str,
        direction: Direction,
        faults: &[FaultSpec],
        seed: Seed,
        shared: Shared,
    ) -> Self {
        let rules = faults
            .iter()
            .filter_map(|spec| {
                let rule = spec.kind.webhook_rule()?;
                (rule.direction == direction).then(|| Rule {
                    index: spec.index,
                    window: spec.window,
                    probability: spec.probability,
                    effect: rule.effect,
                    rng: Mutex::new(seed.derive_index("webhook-rule", spec.stream).rng()),
                })
            })
            .collect();
        WebhookFaults {
            inner,
            host: host.to_string(),
            receiver_clock: crate::run::clock::SimClock::for_host(receiver, faults),
            receiver: receiver.to_string(),
            rules,
            shared,
            forge_rng: Mutex::new(seed.derive("forge").rng()),
        }
    }

    fn decide(&self) -> Option<(usize, WebhookEffect, u64)> {
        if self.rules.is_empty() || self.shared.healed() {
            return None;
        }
        let now_ms = self.shared.now_us() / 1_000;
        let mut chosen = None;
        for rule in &self.rules {
            if !rule.window.contains(now_ms) {
                continue;
            }
            let (fires, extra) = {
                let mut rng = rule.rng.lock().expect("webhook rule rng lock poisoned");
                let fires = rng.random::<f64>() < rule.probability;
                // A second draw for effects that need one, taken every time so the stream
                // does not depend on which effect fired.
                (fires, rng.random::<u64>())
            };
            if fires && chosen.is_none() {
                chosen = Some((rule.index, rule.effect, extra));
            }
        }
        chosen
    }

    fn forged(&self, request: &HttpRequest) -> Option<HttpRequest> {
        let mut body: serde_json::Value = serde_json::from_slice(request.body()).ok()?;
        let suffix: u64 = self
            .forge_rng
            .lock()
            .expect("forge rng lock poisoned")
            .random();
        let forged_id = format!("forged-{suffix:016x}");
        body.as_object_mut()?.insert(
            "event_id".into(),
            serde_json::Value::String(forged_id.clone()),
        );
        self.shared.lock().forged.insert(forged_id);
        let bytes = serde_json::to_vec(&body).ok()?;
        let mut forged = http::Request::builder()
            .method(request.method())
            .uri(request.uri());
        for (name, value) in request.headers() {
            forged = forged.header(name, value);
        }
        forged.body(bytes::Bytes::from(bytes)).ok()
    }
}

impl WebhookFaults {
    /// Sends `request` on its own after `after_ms`, its answer unheard by the sender, and
    /// files the answer as fault `fault`'s injection of `kind` (each injected attack gets
    /// its own verdict: the oracles read these, not only the effects). The settler waits
    /// for every injection to be answered before the run is judged.
    fn inject(&self, request: HttpRequest, after_ms: u64, fault: usize, kind: InjectionKind) {
        self.shared.lock().injections_in_flight += 1;
        let inner = self.inner.clone();
        let shared = self.shared.clone();
        let receiver = self.receiver.clone();
        let clock = self.receiver_clock.clone();
        tokio::spawn(async move {
            if after_ms > 0 {
                tokio::time::sleep(Duration::from_millis(after_ms)).await;
            }
            // How far the signature's time is from the receiver's, as the raw header and
            // the receiver's clock say.
            let age_s = request
                .headers()
                .get(shipsim_system::webhook::HEADER_SIGNATURE)
                .and_then(|v| v.to_str().ok())
                .and_then(crate::reach::signed_at_s)
                .map(|signed_at_s| {
                    use shipsim_system::clock::Clock as _;
                    // Either way: a receiver whose clock is behind sees a timestamp from
                    // its future, and refuses it past the tolerance just the same.
                    (clock.now_ms() / 1_000).abs_diff(signed_at_s)
                });
            // Bounded: a partitioned receiver must not keep the run waiting forever.
            let answer = tokio::time::timeout(Duration::from_secs(10), inner.send(request)).await;
            let status = match answer {
                Ok(Ok(response)) => Some(response.status().as_u16()),
                _ => None,
            };
            let mut state = shared.lock();
            state.injections.push(Injection {
                fault,
                kind,
                receiver,
                age_s,
                status,
            });
            state.injections_in_flight -= 1;
        });
    }
}

fn copy(request: &HttpRequest) -> HttpRequest {
    let mut builder = http::Request::builder()
        .method(request.method())
        .uri(request.uri());
    for (name, value) in request.headers() {
        builder = builder.header(name, value);
    }
    builder
        .body(request.body().clone())
        .expect("a copy of a valid request is valid")
}

impl Transport for WebhookFaults {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            let Some((index, effect, extra)) = self.decide() else {
                return self.inner.send(request).await;
            };
            self.shared
                .fired(&self.host, index, format!("webhook {effect:?}"));
            match effect {
                WebhookEffect::Duplicate { copies } => {
                    for _ in 1..copies {
                        self.inject(copy(&request), 0, index, InjectionKind::Copy);
                    }
                    self.inner.send(request).await
                }
                WebhookEffect::Reorder { max_delay_ms } => {
                    // A hold of 0..=max_delay_ms. `max_ms` is at most one simulated day (its
                    // limit), so `max_delay_ms + 1` neither overflows nor wraps to a zero
                    // divisor (the crash an unchecked u64::MAX once caused).
                    let holds = max_delay_ms
                        .checked_add(1)
                        .expect("max_ms is at most DURATION_MS_MAX (checked at parse time)");
                    tokio::time::sleep(Duration::from_millis(extra % holds)).await;
                    self.inner.send(request).await
                }
                WebhookEffect::Delay { delay_ms } => {
                    let response = self.inner.send(request).await;
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    response
                }
                WebhookEffect::Drop { after: false } => {
                    Err(TransportError::Connect("webhook dropped by shipsim".into()))
                }
                WebhookEffect::Drop { after: true } => {
                    let _processed = self.inner.send(request).await;
                    Err(TransportError::Io("webhook answer lost by shipsim".into()))
                }
                WebhookEffect::Replay { after_ms } => {
                    self.inject(copy(&request), after_ms, index, InjectionKind::Replay);
                    self.inner.send(request).await
                }
                WebhookEffect::Forge => {
                    if let Some(forged) = self.forged(&request) {
                        self.inject(forged, 0, index, InjectionKind::Forgery);
                    }
                    self.inner.send(request).await
                }
            }
        })
    }
}
