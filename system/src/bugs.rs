//! Planted bugs: realistic integration mistakes that can be switched on at run time to prove
//! that the oracles catch them.
//!
//! With an empty [`BugSet`] the service, carrier client and merchant client are correct. Each
//! bug is modelled on a way real integrations fail; its doc says what the broken code does
//! and which oracle should catch it.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// One planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Bug {
    /// Service: looks the idempotency key up in one transaction and inserts it in another,
    /// with store I/O in between, so two concurrent requests with one key both miss and both
    /// create a shipment. Caught by `exactly_once`.
    CheckThenInsertRace,
    /// Service: writes the idempotency record only after the carrier call returns, so a retry
    /// that arrives while the first attempt waits on the carrier starts a second shipment.
    /// Caught by `exactly_once`.
    KeyStoredAfterCarrier,
    /// Service: keeps idempotency records in process memory, so a crash forgets them and a
    /// retry after the restart creates a second shipment. Caught by `exactly_once`.
    IdempotencyInMemory,
    /// Service: buys labels without sending the carrier an idempotency key, so a retried
    /// carrier call after a lost response buys a second label. Caught by `exactly_once`.
    CarrierWithoutKey,
    /// Service: marks the idempotency record completed (with the response) in its own
    /// commit before the shipment row is updated, so a crash between the two leaves a stored
    /// response whose shipment never got its label. Caught by `acknowledged_writes`.
    ResponseBeforeCommit,
    /// Service: treats keys as global instead of per caller, so one merchant's key replays
    /// another merchant's shipment. Caught by `stable_replays`.
    KeysNotScopedPerCaller,
    /// Service: fingerprints requests without their body, so the same key with a different
    /// body replays the first outcome instead of being rejected. Caught by `stable_replays`.
    FingerprintIgnoresBody,
    /// Service: its in-flight lock does not record which process holds it, so after a crash
    /// the dead request's lock still looks live and every retry gets 409 until the lease
    /// expires: the key is stuck. Caught by `ambiguity_resolved`.
    LockSurvivesCrash,
    /// Service: acknowledges writes before they are durable (commits are flushed lazily), so
    /// a crash loses acknowledged shipments. Caught by `acknowledged_writes`.
    LazyDurability,
    /// Client: generates a fresh idempotency key for every attempt, so a retry after a
    /// timeout creates a second shipment. Caught by `exactly_once`.
    ClientNewKeyPerAttempt,
    /// Client: ignores `Retry-After` and retries on its own backoff. Caught by
    /// `client_discipline`.
    ClientIgnoresRetryAfter,
    /// Client: retries 4xx responses (other than 429) as if they were transient. Caught by
    /// `client_discipline`.
    ClientRetries4xx,
    /// Client: has no retry budget and no circuit breaker, so an outage turns every client
    /// into a retry storm. Caught by `client_discipline`.
    ClientRetryStorm,
    /// Client: takes a token of its own rate limiter for first attempts only, so retries
    /// (after 429s and 5xx, when the server is least able to take them) go out faster than
    /// the limit it was configured with. Caught by `client_discipline`.
    ClientRetriesBypassLimiter,
    /// Client: reads nothing of the server's `X-RateLimit-Remaining`/`Reset`, so after a
    /// response said the caller's allowance is spent it keeps sending before the reset, to
    /// be refused with 429 (its adaptive limiter is adaptive in name only). Caught by
    /// `client_discipline`.
    ClientIgnoresAdvertisedBudget,
    /// Service: a key rotation replaces the old API key instead of adding the new one, so
    /// the old key is refused as soon as the new one is issued, not when it is retired:
    /// requests and retries clients sent with the old key before moving over get 401.
    /// Caught by `credentials_honoured`.
    RotationDropsOldKeyEarly,
    /// Service: a webhook secret rotation signs with the new secret only from the rotation
    /// time, with no overlap signed under both, so a merchant that has not switched yet
    /// refuses its deliveries. Caught by `credentials_honoured`.
    WebhookSignsWithNewSecretOnly,
    /// Service: applies a carrier event and records its id in a later transaction, so two
    /// deliveries of one event that overlap both take effect. Caught by `webhook_once`.
    WebhookDedupeAfterEffect,
    /// Merchant receiver: never deduplicates, so every redelivery repeats the side effect.
    /// Caught by `webhook_once`.
    ReceiverSkipsDedupe,
    /// Merchant receiver: performs the side effect, then records the event id after a
    /// store round trip, so overlapping deliveries both act. Caught by `webhook_once`.
    ReceiverDedupeAfterEffect,
    /// Merchant receiver: does not check signatures or timestamps, so forged events are
    /// acted on. Caught by `webhook_once`.
    ReceiverSkipsSignature,
    /// Service: the events feed hands out the cursor of the event after the last one it
    /// returned, and reads `after` as exclusive, so the first of the caller's events on the
    /// next page is skipped (an off-by-one between inclusive and exclusive cursors). A
    /// merchant catching up after an outage never applies it. Caught by `webhook_once`.
    FeedCursorSkipsBoundary,
    /// Merchant receiver: remembers the events it applied from webhooks and from the
    /// events feed in two separate sets, so an event that arrives both ways (delivered,
    /// then read again while catching up) is applied twice. Caught by `webhook_once`.
    ReceiverDedupesFeedApart,
}

impl Bug {
    /// Every planted bug, in catalogue order.
    pub const ALL: &'static [Bug] = &[
        Bug::CheckThenInsertRace,
        Bug::KeyStoredAfterCarrier,
        Bug::IdempotencyInMemory,
        Bug::CarrierWithoutKey,
        Bug::ResponseBeforeCommit,
        Bug::KeysNotScopedPerCaller,
        Bug::FingerprintIgnoresBody,
        Bug::LockSurvivesCrash,
        Bug::LazyDurability,
        Bug::ClientNewKeyPerAttempt,
        Bug::ClientIgnoresRetryAfter,
        Bug::ClientRetries4xx,
        Bug::ClientRetryStorm,
        Bug::ClientRetriesBypassLimiter,
        Bug::ClientIgnoresAdvertisedBudget,
        Bug::RotationDropsOldKeyEarly,
        Bug::WebhookSignsWithNewSecretOnly,
        Bug::WebhookDedupeAfterEffect,
        Bug::ReceiverSkipsDedupe,
        Bug::ReceiverDedupeAfterEffect,
        Bug::ReceiverSkipsSignature,
        Bug::FeedCursorSkipsBoundary,
        Bug::ReceiverDedupesFeedApart,
    ];

    /// The name used on the command line and in repro files.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Bug::CheckThenInsertRace => "check_then_insert_race",
            Bug::KeyStoredAfterCarrier => "key_stored_after_carrier",
            Bug::IdempotencyInMemory => "idempotency_in_memory",
            Bug::CarrierWithoutKey => "carrier_without_key",
            Bug::ResponseBeforeCommit => "response_before_commit",
            Bug::KeysNotScopedPerCaller => "keys_not_scoped_per_caller",
            Bug::FingerprintIgnoresBody => "fingerprint_ignores_body",
            Bug::LockSurvivesCrash => "lock_survives_crash",
            Bug::LazyDurability => "lazy_durability",
            Bug::ClientNewKeyPerAttempt => "client_new_key_per_attempt",
            Bug::ClientIgnoresRetryAfter => "client_ignores_retry_after",
            Bug::ClientRetries4xx => "client_retries_4xx",
            Bug::ClientRetryStorm => "client_retry_storm",
            Bug::ClientRetriesBypassLimiter => "client_retries_bypass_limiter",
            Bug::ClientIgnoresAdvertisedBudget => "client_ignores_advertised_budget",
            Bug::RotationDropsOldKeyEarly => "rotation_drops_old_key_early",
            Bug::WebhookSignsWithNewSecretOnly => "webhook_signs_with_new_secret_only",
            Bug::WebhookDedupeAfterEffect => "webhook_dedupe_after_effect",
            Bug::ReceiverSkipsDedupe => "receiver_skips_dedupe",
            Bug::ReceiverDedupeAfterEffect => "receiver_dedupe_after_effect",
            Bug::ReceiverSkipsSignature => "receiver_skips_signature",
            Bug::FeedCursorSkipsBoundary => "feed_cursor_skips_boundary",
            Bug::ReceiverDedupesFeedApart => "receiver_dedupes_feed_apart",
        }
    }

    /// One line saying what the bug does.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Bug::CheckThenInsertRace => {
                "idempotency key checked and inserted in separate transactions"
            }
            Bug::KeyStoredAfterCarrier => "idempotency record written only after the carrier call",
            Bug::IdempotencyInMemory => "idempotency records kept in process memory only",
            Bug::CarrierWithoutKey => "carrier called without its own idempotency key",
            Bug::ResponseBeforeCommit => "response stored before the side effect commits",
            Bug::KeysNotScopedPerCaller => "idempotency keys shared across callers",
            Bug::FingerprintIgnoresBody => "request fingerprint ignores the body",
            Bug::LockSurvivesCrash => {
                "in-flight lock outlives a crash: keys stuck until the lease ends"
            }
            Bug::LazyDurability => "writes acknowledged before they are durable",
            Bug::ClientNewKeyPerAttempt => "client generates a new idempotency key per attempt",
            Bug::ClientIgnoresRetryAfter => "client ignores Retry-After",
            Bug::ClientRetries4xx => "client retries non-retryable 4xx responses",
            Bug::ClientRetryStorm => "client has no retry budget and no circuit breaker",
            Bug::ClientRetriesBypassLimiter => "client's retries bypass its own rate limiter",
            Bug::ClientIgnoresAdvertisedBudget => {
                "client ignores the server's X-RateLimit-Remaining/Reset"
            }
            Bug::RotationDropsOldKeyEarly => {
                "key rotation refuses the old API key as soon as the new one is issued"
            }
            Bug::WebhookSignsWithNewSecretOnly => {
                "webhook secret rotation signs with the new secret only, no overlap"
            }
            Bug::WebhookDedupeAfterEffect => "service records a carrier event id after applying it",
            Bug::ReceiverSkipsDedupe => "merchant receiver does not deduplicate webhook events",
            Bug::ReceiverDedupeAfterEffect => {
                "merchant receiver deduplicates after the side effect"
            }
            Bug::ReceiverSkipsSignature => "merchant receiver does not check webhook signatures",
            Bug::FeedCursorSkipsBoundary => {
                "events feed's next cursor skips the first event of the next page"
            }
            Bug::ReceiverDedupesFeedApart => {
                "merchant receiver deduplicates webhook and feed deliveries apart"
            }
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A bug name that is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown planted bug `{0}` (see `shipsim list --bugs`)")]
pub struct UnknownBug(pub String);

impl FromStr for Bug {
    type Err = UnknownBug;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Bug::ALL
            .iter()
            .copied()
            .find(|bug| bug.name() == text)
            .ok_or_else(|| UnknownBug(text.to_string()))
    }
}

/// The planted bugs switched on for a run. Empty means correct behaviour.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BugSet(BTreeSet<Bug>);

impl BugSet {
    /// No bugs: the correct system.
    #[must_use]
    pub fn none() -> Self {
        BugSet(BTreeSet::new())
    }

    /// A set holding the given bugs.
    #[must_use]
    pub fn of(bugs: impl IntoIterator<Item = Bug>) -> Self {
        BugSet(bugs.into_iter().collect())
    }

    /// Whether `bug` is switched on.
    #[must_use]
    pub fn has(&self, bug: Bug) -> bool {
        self.0.contains(&bug)
    }

    /// Whether no bug is switched on.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bugs, in catalogue order.
    pub fn iter(&self) -> impl Iterator<Item = Bug> + '_ {
        self.0.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        // Proves every catalogue entry parses back from its own name and names are unique.
        let mut names = BTreeSet::new();
        for bug in Bug::ALL {
            assert_eq!(bug.name().parse::<Bug>(), Ok(*bug));
            assert!(names.insert(bug.name()), "duplicate name {}", bug.name());
        }
        assert!("no_such_bug".parse::<Bug>().is_err());
    }
}
