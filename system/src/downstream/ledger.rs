//! The downstream's record of every effect it made: the ground truth of exactly-once.
//!
//! The ledger outlives the downstream's host (a third party never loses its own records):
//! the simulation makes one, hands a clone to every boot, and reads it when judging. It also
//! holds the idempotency index, so a request is decided and, if new, recorded under one lock:
//! two requests with one key can never both make an effect, and the downstream never has a
//! request "in flight" that a concurrent duplicate could race.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most effects one ledger records (a million). A run makes at most thousands; a ledger this
/// full is a runaway loop, and further effects are refused with 507 `ledger_full` (counted in
/// [`LedgerCounters::ledger_full`]) rather than grown without bound.
pub const LEDGER_EFFECTS_MAX: usize = 1_000_000;

/// How many fresh ids the downstream draws before giving up on one that collides with an
/// earlier effect's. Ids are 64 random bits plus a counter, so a second draw is already a
/// one-in-2^64 event; the bound only keeps the loop finite.
const ID_DRAWS_MAX: usize = 8;

/// One effect the downstream made (a charge, a label, a transfer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effect {
    /// Position in the ledger, from 1, in the order effects were made.
    pub seq: u64,
    /// The effect's name (`charge`).
    pub effect: String,
    /// The route that made it, as method and path template (`POST /v1/charges`).
    pub route: String,
    /// The request's concrete path (`/v1/accounts/acct_1/charges`).
    pub path: String,
    /// The id the downstream gave it.
    pub id: String,
    /// The idempotency key the request carried. On a route that honours keys this is the
    /// key the effect is stored under; on a route that ignores them it is only what was sent.
    pub key: Option<String>,
    /// Who asked: the auth principal, or `anonymous` without auth.
    pub principal: String,
    /// The request body (JSON; null for an empty body).
    pub request: Value,
    /// The status answered, and replayed to a repeat of the request.
    pub status: u16,
    /// The response body answered, and replayed.
    pub response: Value,
    /// When, by the downstream's clock (Unix ms).
    pub at_ms: u64,
    /// Which boot of the downstream's host made it (0 for the first).
    pub boot: u64,
}

/// Counts of requests that made no effect, by reason, and of effects made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerCounters {
    /// Effects made.
    pub effects: u64,
    /// Requests answered from an earlier effect (same principal, key and request).
    pub replays: u64,
    /// Requests refused with 422 because their key was used before with another request.
    pub keys_reused: u64,
    /// Requests refused by a refusal rule (a declined charge).
    pub refusals: u64,
    /// Requests to a route that honours keys that carried none (a new effect on a route
    /// where the key is optional, a 400 where it is required).
    pub requests_without_key: u64,
    /// Requests refused for missing or unknown credentials.
    pub unauthenticated: u64,
    /// Requests refused as malformed (bad JSON, too large, invalid key, missing field).
    pub invalid: u64,
    /// Requests refused because the ledger was full ([`LEDGER_EFFECTS_MAX`]).
    pub ledger_full: u64,
}

/// The whole ledger, as the admin route returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerSnapshot {
    /// Every effect, in `seq` order.
    pub effects: Vec<Effect>,
    /// The counters.
    pub counters: LedgerCounters,
}

/// A counter a request can move without making an effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Counter {
    RequestWithoutKey,
    Unauthenticated,
    Invalid,
}

/// An effect request, decided by [`DownstreamLedger::settle`].
#[derive(Clone, Debug)]
pub(crate) struct Attempt<'a> {
    pub effect: &'a str,
    pub route: &'a str,
    pub path: &'a str,
    pub principal: &'a str,
    /// The key the request carried.
    pub key: Option<&'a str>,
    /// Whether the route dedupes on the key.
    pub honour_key: bool,
    pub fingerprint: &'a str,
    pub request: &'a Value,
    /// The refusal rule the request meets, if any (its index among the route's rules).
    pub refusal: Option<usize>,
    pub at_ms: u64,
    pub boot: u64,
}

/// How an effect request was settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A new effect, now in the ledger.
    New(Effect),
    /// The key was used before with this request: the effect made then.
    Replay(Effect),
    /// The key was used before with another request.
    KeyReused,
    /// Refusal rule number `.0` of the route applies.
    Refused(usize),
    /// The ledger is full.
    Full,
    /// No id could be drawn that no earlier effect has.
    IdsExhausted,
}

#[derive(Debug)]
struct State {
    /// See [`LEDGER_EFFECTS_MAX`]; lower in tests.
    effects_max: usize,
    effects: Vec<Effect>,
    /// Effect id -> index into `effects`.
    by_id: BTreeMap<String, usize>,
    /// (principal, key) -> (request fingerprint, index into `effects`), for routes that
    /// honour keys.
    by_key: BTreeMap<(String, String), (String, usize)>,
    counters: LedgerCounters,
}

/// Every effect a simulated downstream made, with its idempotency index and counters.
///
/// Cheap to clone: clones share one ledger. See the module docs of
/// [`crate::downstream`].
#[derive(Clone, Debug)]
pub struct DownstreamLedger {
    state: Arc<Mutex<State>>,
}

impl Default for DownstreamLedger {
    fn default() -> Self {
        Self::with_effects_max(LEDGER_EFFECTS_MAX)
    }
}

impl DownstreamLedger {
    /// An empty ledger.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty ledger that holds at most `effects_max` effects (tests of the limit).
    pub(crate) fn with_effects_max(effects_max: usize) -> Self {
        DownstreamLedger {
            state: Arc::new(Mutex::new(State {
                effects_max,
                effects: Vec::new(),
                by_id: BTreeMap::new(),
                by_key: BTreeMap::new(),
                counters: LedgerCounters::default(),
            })),
        }
    }

    /// The state. A panic while the lock was held cannot have left it half-changed (every
    /// change is made after all checks, by pushes and inserts that do not fail), so a
    /// poisoned lock is taken over rather than propagated.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every effect, in the order made.
    #[must_use]
    pub fn effects(&self) -> Vec<Effect> {
        self.lock().effects.clone()
    }

    /// The effect with this id.
    #[must_use]
    pub fn effect(&self, id: &str) -> Option<Effect> {
        let state = self.lock();
        state
            .by_id
            .get(id)
            .map(|index| state.effects[*index].clone())
    }

    /// How many effects were made.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().effects.len()
    }

    /// Whether no effect was made.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The counters.
    #[must_use]
    pub fn counters(&self) -> LedgerCounters {
        self.lock().counters
    }

    /// Effects and counters, read together.
    #[must_use]
    pub fn snapshot(&self) -> LedgerSnapshot {
        let state = self.lock();
        LedgerSnapshot {
            effects: state.effects.clone(),
            counters: state.counters,
        }
    }

    /// Moves a counter of a request that made no effect.
    pub(crate) fn count(&self, counter: Counter) {
        let mut state = self.lock();
        let counters = &mut state.counters;
        match counter {
            Counter::RequestWithoutKey => counters.requests_without_key += 1,
            Counter::Unauthenticated => counters.unauthenticated += 1,
            Counter::Invalid => counters.invalid += 1,
        }
    }

    /// Decides an effect request and, if it makes a new effect, records it, atomically.
    ///
    /// Order: a key seen before (for this principal) replays or is refused as reused; then a
    /// refusal rule refuses; then a new effect gets an id from `next_id` and a response from
    /// `respond(id, seq)`. A refusal is not stored against the key: the rules are a pure
    /// function of the request, so a repeat is refused again.
    ///
    /// # Errors
    /// What `respond` returns; then nothing was recorded.
    pub(crate) fn settle<E>(
        &self,
        attempt: Attempt<'_>,
        mut next_id: impl FnMut() -> String,
        respond: impl FnOnce(&str, u64) -> Result<(u16, Value), E>,
    ) -> Result<Outcome, E> {
        let mut state = self.lock();
        let scope = match (attempt.honour_key, attempt.key) {
            (true, Some(key)) => Some((attempt.principal.to_string(), key.to_string())),
            _ => None,
        };
        if let Some(scope) = &scope
            && let Some((fingerprint, index)) = state.by_key.get(scope)
        {
            if fingerprint.as_str() != attempt.fingerprint {
                state.counters.keys_reused += 1;
                return Ok(Outcome::KeyReused);
            }
            let effect = state.effects[*index].clone();
            state.counters.replays += 1;
            return Ok(Outcome::Replay(effect));
        }
        if let Some(rule) = attempt.refusal {
            state.counters.refusals += 1;
            return Ok(Outcome::Refused(rule));
        }
        if state.effects.len() >= state.effects_max {
            state.counters.ledger_full += 1;
            return Ok(Outcome::Full);
        }
        let Some(id) = (0..ID_DRAWS_MAX)
            .map(|_| next_id())
            .find(|id| !state.by_id.contains_key(id))
        else {
            return Ok(Outcome::IdsExhausted);
        };
        let seq = state.effects.len() as u64 + 1;
        let (status, response) = respond(&id, seq)?;
        let effect = Effect {
            seq,
            effect: attempt.effect.to_string(),
            route: attempt.route.to_string(),
            path: attempt.path.to_string(),
            id: id.clone(),
            key: attempt.key.map(str::to_string),
            principal: attempt.principal.to_string(),
            request: attempt.request.clone(),
            status,
            response,
            at_ms: attempt.at_ms,
            boot: attempt.boot,
        };
        let index = state.effects.len();
        if let Some(scope) = scope {
            state
                .by_key
                .insert(scope, (attempt.fingerprint.to_string(), index));
        }
        state.by_id.insert(id, index);
        state.effects.push(effect.clone());
        state.counters.effects += 1;
        Ok(Outcome::New(effect))
    }
}
