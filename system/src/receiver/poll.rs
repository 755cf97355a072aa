//! The merchant's events poller: every `every_ms` it reads the service's events feed
//! (`GET /v1/events?after=CURSOR&limit=N`) for each merchant from the cursor it last
//! finished, and applies each event through the receiver's ledger, under the same dedupe as
//! webhooks. A merchant whose receiver was down past the sender's retry horizon (its events
//! dead-lettered at the service) catches up this way without an operator's redelivery.
//!
//! The cursor is kept in the [`ReceiverLedger`] beside the effects, and moved only after
//! the page's events were applied: a crash in between reads the page again, and the dedupe
//! absorbs what was applied (at least once in, exactly once in effect). Events of a page are
//! applied in the feed's order, which is the service's commit order, so a shipment's record
//! only moves forward.
//!
//! Time comes from tokio's timers (the simulated clock in the simulation), the network from
//! a [`Transport`]; nothing here reads the wall clock or draws randomness, so a simulated
//! run of the poller is deterministic.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{ReceiverDeps, ReceiverLedger, Via};
use crate::api::{EventsPage, HEADER_API_KEY};
use crate::bugs::{Bug, BugSet};
use crate::transport::Transport;

/// Pages one merchant's catch-up may read in one poll: a bound, so that one merchant with a
/// long backlog cannot starve the others (the rest is read at the next poll).
pub const PAGES_PER_POLL_MAX: u32 = 100;

/// How the poller reads the feed.
#[derive(Clone, Debug)]
pub struct PollConfig {
    /// The service, no trailing slash (`http://service:80`).
    pub service_base_url: String,
    /// Each merchant (caller id) and the API key it reads its feed with.
    pub api_keys: BTreeMap<String, String>,
    /// Time between polls, ms.
    pub every_ms: u64,
    /// Events per page.
    pub limit: u32,
    /// Deadline of one page request, ms: a partition can hold a request forever.
    pub timeout_ms: u64,
    /// Planted receiver bugs; empty for the correct receiver.
    pub bugs: BugSet,
}

/// Why a page could not be read; the poller tries again at the next poll.
#[derive(Debug, thiserror::Error)]
enum PageError {
    #[error("no answer within {0} ms")]
    Timeout(u64),
    #[error("transport: {0}")]
    Transport(String),
    #[error("status {0}")]
    Status(u16),
    #[error("not an events page: {0}")]
    Body(String),
}

/// Polls the feed for every merchant until the host dies.
pub async fn run_poller(config: PollConfig, deps: ReceiverDeps, transport: Arc<dyn Transport>) {
    let apart = config.bugs.has(Bug::ReceiverDedupesFeedApart);
    loop {
        tokio::time::sleep(Duration::from_millis(config.every_ms)).await;
        for (caller, api_key) in &config.api_keys {
            catch_up(&config, &deps, &*transport, caller, api_key, apart).await;
        }
    }
}

/// Reads `caller`'s pages from its cursor until the feed says none is waiting (bounded by
/// [`PAGES_PER_POLL_MAX`]) or a page cannot be read.
async fn catch_up(
    config: &PollConfig,
    deps: &ReceiverDeps,
    transport: &dyn Transport,
    caller: &str,
    api_key: &str,
    apart: bool,
) {
    let ledger: &ReceiverLedger = &deps.ledger;
    for _page in 0..PAGES_PER_POLL_MAX {
        let cursor = ledger.cursor(caller);
        let page = match fetch(config, transport, api_key, cursor.as_deref()).await {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(caller, %error, "events feed unreadable; retrying at the next poll");
                return;
            }
        };
        for event in &page.events {
            let at_ms = deps.clock.now_ms();
            ledger.mark_and_act(caller, event, at_ms, Via::Feed, apart);
        }
        ledger.set_cursor(caller, page.next_cursor);
        if !page.has_more {
            return;
        }
    }
}

async fn fetch(
    config: &PollConfig,
    transport: &dyn Transport,
    api_key: &str,
    cursor: Option<&str>,
) -> Result<EventsPage, PageError> {
    let after = cursor.map(|c| format!("&after={c}")).unwrap_or_default();
    let uri = format!(
        "{}/v1/events?limit={}{after}",
        config.service_base_url, config.limit
    );
    let request = http::Request::get(uri)
        .header(HEADER_API_KEY, api_key)
        .body(Bytes::new())
        .map_err(|e| PageError::Transport(e.to_string()))?;
    let response = tokio::time::timeout(
        Duration::from_millis(config.timeout_ms),
        transport.send(request),
    )
    .await
    .map_err(|_| PageError::Timeout(config.timeout_ms))?
    .map_err(|e| PageError::Transport(e.to_string()))?;
    if !response.status().is_success() {
        return Err(PageError::Status(response.status().as_u16()));
    }
    serde_json::from_slice(response.body()).map_err(|e| PageError::Body(e.to_string()))
}
