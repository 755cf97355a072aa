//! The API adapter: how shipsim talks to a target's HTTP API without knowing its shapes.
//!
//! shipsim's workload creates and reads *resources* (orders, payments, shipments, ...). A
//! target describes its resource [`Kind`]s and implements [`Api`]: how to draw the body of a
//! new create, how to build the create and read requests, and what a success response says
//! about the resource ([`Seen`]). Everything else (keys, retries, double submits, key reuse,
//! faults, settling ambiguous operations, the oracles) is shipsim's.

use std::fmt;

use bytes::Bytes;
use rand_chacha::ChaCha8Rng;
use shipsim_system::transport::{HttpRequest, HttpResponse};

pub use shipsim_system::client::KeyPlacement;

/// One resource kind of a target's API: something the workload creates and reads.
///
/// ```
/// use shipsim::Kind;
/// let customer = Kind::new("customer", "POST /v1/customers").read_route("GET /v1/customers/{id}");
/// let payment = Kind::new("payment", "POST /v1/customers/{id}/payments")
///     .read_route("GET /v1/payments/{id}")
///     .parent("customer")
///     .spends()
///     .states(["pending", "succeeded"]);
/// assert_eq!(payment.name(), "payment");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kind {
    name: String,
    create_route: String,
    read_route: Option<String>,
    parent: Option<String>,
    spends: bool,
    key_in_body: bool,
    key_prefix: Option<String>,
    states: Vec<String>,
    weights: (u32, u32),
}

impl Kind {
    /// A kind called `name` (`order`, `payment`), created through `create_route`
    /// (`POST /v1/orders`: method and route template, the unit of latency histograms).
    #[must_use]
    pub fn new(name: impl Into<String>, create_route: impl Into<String>) -> Kind {
        Kind {
            name: name.into(),
            create_route: create_route.into(),
            read_route: None,
            parent: None,
            spends: false,
            key_in_body: false,
            key_prefix: None,
            states: Vec::new(),
            weights: (2, 1),
        }
    }

    /// The route that reads one back (`GET /v1/orders/{id}`). Without it the workload never
    /// reads this kind.
    #[must_use]
    pub fn read_route(mut self, route: impl Into<String>) -> Kind {
        self.read_route = Some(route.into());
        self
    }

    /// The kind a create of this one belongs to (a shipment is created on an order): the
    /// workload creates a parent first and passes its id to [`Api::create`].
    #[must_use]
    pub fn parent(mut self, parent: impl Into<String>) -> Kind {
        self.parent = Some(parent.into());
        self
    }

    /// Creating one spends something at a downstream (a label bought, a card charged). The
    /// workload's misuse (double submits, a key reused with another body) aims at these.
    #[must_use]
    pub fn spends(mut self) -> Kind {
        self.spends = true;
        self
    }

    /// The API also accepts the idempotency key in the body ([`KeyPlacement::Body`]); the
    /// workload then sends it there as often as the scenario's `key_in_body` says.
    #[must_use]
    pub fn key_in_body(mut self) -> Kind {
        self.key_in_body = true;
        self
    }

    /// Idempotency keys of this kind read `{prefix}-{slot}-{n}`; the default prefix is the
    /// kind's name.
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Kind {
        self.key_prefix = Some(prefix.into());
        self
    }

    /// The states a resource of this kind goes through, in the only order it may: the
    /// `state_machine` oracle fails a resource seen moving backwards. States of equal
    /// standing share an entry, separated by `|` (`"label_purchased|label_rejected"`).
    #[must_use]
    pub fn states<S: Into<String>>(mut self, states: impl IntoIterator<Item = S>) -> Kind {
        self.states = states.into_iter().map(Into::into).collect();
        self
    }

    /// The default weights of creating and reading this kind in a scenario's mix (2 and 1
    /// unless set), used when a scenario has no `mix`.
    #[must_use]
    pub fn weights(mut self, create: u32, read: u32) -> Kind {
        self.weights = (create, read);
        self
    }

    /// The kind's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Method and route template of the create.
    #[must_use]
    pub fn create_route(&self) -> &str {
        &self.create_route
    }

    /// Method and route template of the read, if the kind can be read.
    #[must_use]
    pub fn read_route_template(&self) -> Option<&str> {
        self.read_route.as_deref()
    }

    /// The parent kind, if any.
    #[must_use]
    pub fn parent_kind(&self) -> Option<&str> {
        self.parent.as_deref()
    }

    /// Whether creating one spends at a downstream.
    #[must_use]
    pub fn is_spending(&self) -> bool {
        self.spends
    }

    /// Whether the key may travel in the body.
    #[must_use]
    pub fn accepts_key_in_body(&self) -> bool {
        self.key_in_body
    }

    /// The prefix of this kind's idempotency keys.
    #[must_use]
    pub fn key_prefix_or_name(&self) -> &str {
        self.key_prefix.as_deref().unwrap_or(&self.name)
    }

    /// The forward order of states (empty: not tracked).
    #[must_use]
    pub fn state_order(&self) -> &[String] {
        &self.states
    }

    /// The rank of `state` in the forward order, if it is one of the declared states.
    #[must_use]
    pub fn rank(&self, state: &str) -> Option<usize> {
        self.states
            .iter()
            .position(|entry| entry.split('|').any(|s| s == state))
    }

    /// Default (create, read) weights.
    #[must_use]
    pub fn default_weights(&self) -> (u32, u32) {
        self.weights
    }
}

/// A merchant (an authenticated caller of the target's API). Idempotency keys are scoped to
/// it; its credential is what [`Api::create`] and [`Api::read`] put on the request.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Caller {
    /// Position among the scenario's callers.
    pub index: u32,
    /// Its id, `merchant-{index}`.
    pub id: String,
    /// Its API key, `sk_sim_merchant_{index}`.
    pub api_key: String,
}

impl Caller {
    /// Caller number `index`.
    #[must_use]
    pub fn new(index: u32) -> Caller {
        Caller {
            index,
            id: format!("merchant-{index}"),
            api_key: format!("sk_sim_merchant_{index}"),
        }
    }
}

/// What [`Api::body`] may draw from: the workload's seeded generator (draws are part of the
/// run: same seed, same bodies) and the position of the operation.
pub struct Draw<'a> {
    pub(crate) rng: &'a mut ChaCha8Rng,
    pub(crate) refuse_probability: f64,
    pub(crate) sequence: u32,
    pub(crate) slot: u32,
}

impl Draw<'_> {
    /// The workload's generator (`rand` 0.9's `Rng` methods draw from it; or use the
    /// methods below, which need no `rand` in your crate).
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        self.rng
    }

    /// A number in `low..=high`.
    pub fn number(&mut self, low: u64, high: u64) -> u64 {
        use rand::Rng;
        self.rng.random_range(low.min(high)..=high.max(low))
    }

    /// `true` with probability `p` (clamped to 0..=1).
    pub fn chance(&mut self, p: f64) -> bool {
        use rand::Rng;
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        self.rng.random_bool(p)
    }

    /// One of `choices`, or `None` when there are none.
    pub fn pick<'c, T>(&mut self, choices: &'c [T]) -> Option<&'c T> {
        use rand::seq::IndexedRandom;
        choices.choose(self.rng)
    }

    /// The scenario's chance that a create should be one the downstream refuses (a card
    /// that declines, an address the carrier does not serve): the `unserviceable` knob.
    #[must_use]
    pub fn refuse_probability(&self) -> f64 {
        self.refuse_probability
    }

    /// The operation's number within its client (0, 1, 2, ...).
    #[must_use]
    pub fn sequence(&self) -> u32 {
        self.sequence
    }

    /// The client's position among the clients of its caller.
    #[must_use]
    pub fn slot(&self) -> u32 {
        self.slot
    }
}

/// One create request to build.
#[derive(Clone, Copy, Debug)]
pub struct CreateCall<'a> {
    /// Who sends it.
    pub caller: &'a Caller,
    /// The idempotency key of this attempt.
    pub key: &'a str,
    /// Where the key goes.
    pub placement: KeyPlacement,
    /// The parent resource's id, for kinds with a parent.
    pub parent: Option<&'a str>,
    /// The body [`Api::body`] drew (or [`Api::vary`] changed), without the key.
    pub body: &'a str,
}

/// One read request to build.
#[derive(Clone, Copy, Debug)]
pub struct ReadCall<'a> {
    /// Who sends it.
    pub caller: &'a Caller,
    /// The resource's id.
    pub id: &'a str,
}

/// What a success response says about a resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Seen {
    /// The resource's id.
    pub id: String,
    /// Its parent's id, if the response says.
    pub parent: Option<String>,
    /// Its state, if the kind has states.
    pub state: Option<String>,
    /// Its reference at the downstream (the label, the charge), once it has one.
    pub downstream_ref: Option<String>,
}

/// A request the adapter could not build, or a response it could not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ApiError(pub String);

impl ApiError {
    /// An error saying `message`.
    #[must_use]
    pub fn new(message: impl fmt::Display) -> ApiError {
        ApiError(message.to_string())
    }
}

/// How a target's API marks the idempotency outcomes shipsim must tell apart. The defaults
/// follow the IETF Idempotency-Key draft and the large payment APIs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conventions {
    /// The header a replayed answer carries with the value `true` (`Idempotent-Replayed`).
    pub replayed_header: Option<String>,
    /// The status of "a request with this key is still in flight" (409).
    pub in_flight_status: u16,
    /// The error code of "this key was used with another request"
    /// (`idempotency_key_reused`); a target without codes can set the status instead.
    pub key_reused_code: Option<String>,
    /// The status of "this key was used with another request", when there is no code (422).
    pub key_reused_status: Option<u16>,
    /// The longest idempotency key the API accepts, in characters, when it documents one
    /// (the reference service: 255). With it, `[workload] keys_at_length_limit` sends keys
    /// exactly at the limit (which must be accepted like any key) and one past it (which must
    /// be refused with 400 before anything executes), and `stable_replays` judges both.
    pub key_len_max: Option<usize>,
}

impl Default for Conventions {
    fn default() -> Self {
        Conventions {
            replayed_header: Some("idempotent-replayed".to_string()),
            in_flight_status: 409,
            key_reused_code: Some("idempotency_key_reused".to_string()),
            key_reused_status: None,
            key_len_max: None,
        }
    }
}

impl Conventions {
    /// Whether a refusal with `status` and error `code` says the key was reused with
    /// another request.
    #[must_use]
    pub fn is_key_reused(&self, status: u16, code: Option<&str>) -> bool {
        match (&self.key_reused_code, code) {
            (Some(expected), Some(code)) if expected == code => true,
            _ => self.key_reused_status == Some(status),
        }
    }
}

/// How shipsim talks to a target's API. A few methods, all pure: the workload calls them to
/// build requests and read responses; nothing here performs I/O.
///
/// Requests carry a path-only URI (`/v1/orders`); shipsim points them at the target's host.
pub trait Api: Send + Sync + 'static {
    /// The resource kinds, parents before children. The order fixes the order of
    /// operations in reports and of the scenario's `mix`.
    fn kinds(&self) -> Vec<Kind>;

    /// The JSON body of a new create of `kind`, without the idempotency key. Draw whatever
    /// varies from `draw` (never from another source of randomness).
    fn body(&self, kind: &Kind, draw: &mut Draw<'_>) -> String;

    /// A body that differs from `body` in what the API would act on: the workload sends it
    /// under an earlier key to check that a reused key is refused, never applied.
    fn vary(&self, kind: &Kind, body: &str) -> String;

    /// The create request of `kind`.
    ///
    /// # Errors
    /// An [`ApiError`] when the call cannot be expressed (a bad body from [`Api::vary`]).
    fn create(&self, kind: &Kind, call: &CreateCall<'_>) -> Result<HttpRequest, ApiError>;

    /// The read request of `kind`.
    ///
    /// # Errors
    /// An [`ApiError`] when the call cannot be expressed.
    fn read(&self, kind: &Kind, call: &ReadCall<'_>) -> Result<HttpRequest, ApiError>;

    /// What a 2xx response to a create or read of `kind` says.
    ///
    /// # Errors
    /// An [`ApiError`] when the body is not the resource: the operation then fails as
    /// undecodable, which the oracles report.
    fn parse(&self, kind: &Kind, response: &HttpResponse) -> Result<Seen, ApiError>;

    /// How the API marks replays, in-flight keys and reused keys.
    fn conventions(&self) -> Conventions {
        Conventions::default()
    }
}

/// A JSON request with a path-only URI, for [`Api`] implementations.
///
/// # Errors
/// An [`ApiError`] when `method` or `path` is not valid HTTP.
pub fn json_request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<HttpRequest, ApiError> {
    let mut builder = http::Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body.into()).map_err(ApiError::new)
}
