//! The events feed, `GET /v1/events?after=CURSOR&limit=N`: the caller's outbound webhook
//! events, read back from the outbox in commit order, so a merchant whose receiver missed
//! deliveries (down past the sender's retry horizon, events dead-lettered) catches up by
//! polling (seed 000, "Subscribe to Events via Polling").
//!
//! The feed is the outbox itself, not a second table: an event is in the feed exactly
//! when its webhook is queued, committed in the transaction of the change it announces,
//! and its body is the webhook's body (same id). A caller sees only its own events.
//!
//! The cursor is opaque to clients (`evc_` and 16 hex digits: the outbox sequence number of
//! the last event seen). Sequence numbers are given out inside the committing transaction,
//! one writer at a time, so no event ever appears behind a cursor already handed out. The
//! service never prunes its outbox: every cursor it gave stays valid, and the feed has no
//! "expired cursor" answer to give. A service that prunes must answer a cursor older than
//! its oldest kept event with 410 and that event's cursor, never silently skip.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use utoipa::openapi::Required;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};

use super::context::Caller;
use super::error::ApiError;
use super::{Service, openapi};
use crate::api::{EventsPage, FieldError};
use crate::bugs::Bug;

/// Events per page when the request names no `limit`.
pub const EVENTS_LIMIT_DEFAULT: usize = 50;

/// Most events per page (100, as Stripe's list endpoints): a page stays a few tens of KiB.
pub const EVENTS_LIMIT_MAX: usize = 100;

const CURSOR_PREFIX: &str = "evc_";
const CURSOR_HEX_DIGITS: usize = 16;

/// The cursor of the event with outbox sequence number `seq`.
#[must_use]
pub fn cursor_of(seq: u64) -> String {
    format!("{CURSOR_PREFIX}{seq:0width$x}", width = CURSOR_HEX_DIGITS)
}

/// The sequence number a cursor stands for.
///
/// # Errors
/// What is wrong with it, for the 400's field detail.
pub fn seq_of(cursor: &str) -> Result<u64, String> {
    let shape = || {
        format!(
            "`{CURSOR_PREFIX}` and {CURSOR_HEX_DIGITS} lowercase hex digits, as `next_cursor` gives it"
        )
    };
    let Some(hex) = cursor.strip_prefix(CURSOR_PREFIX) else {
        return Err(format!("not a cursor: expected {}", shape()));
    };
    if hex.len() != CURSOR_HEX_DIGITS
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!("not a cursor: expected {}", shape()));
    }
    let seq = u64::from_str_radix(hex, 16).map_err(|e| format!("not a cursor: {e}"))?;
    // Stores keep sequence numbers as signed 64-bit integers.
    if i64::try_from(seq).is_err() {
        return Err("not a cursor this service gave: out of range".to_string());
    }
    Ok(seq)
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
struct FeedQuery {
    after_seq: u64,
    limit: usize,
}

fn field(name: &str, issue: impl Into<String>) -> FieldError {
    FieldError {
        field: name.to_string(),
        issue: issue.into(),
    }
}

/// Reads `after` and `limit` strictly: every problem is a field detail, all of them at
/// once; an unknown or repeated parameter is one too, so a misspelt `afer` is not silently
/// read as "from the beginning".
fn parse_query(query: Option<&str>) -> Result<FeedQuery, Vec<FieldError>> {
    let mut after = None;
    let mut limit = None;
    let mut problems = Vec::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match name {
            "after" => &mut after,
            "limit" => &mut limit,
            other => {
                problems.push(field(
                    other,
                    "unknown parameter: the feed takes `after` and `limit`",
                ));
                continue;
            }
        };
        if slot.is_some() {
            problems.push(field(name, "given more than once"));
            continue;
        }
        *slot = Some(value);
    }
    let after_seq = match after {
        // An empty `after=` is not "from the beginning": only an absent one is (the
        // OpenAPI pattern says so too; schemathesis found the two disagreeing).
        None => Some(0),
        Some(cursor) => seq_of(cursor)
            .map_err(|issue| problems.push(field("after", issue)))
            .ok(),
    };
    let range = format!("an integer from 1 to {EVENTS_LIMIT_MAX}");
    let limit = match limit {
        None => Some(EVENTS_LIMIT_DEFAULT),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=EVENTS_LIMIT_MAX).contains(&n) => Some(n),
            Ok(n) => {
                problems.push(field("limit", format!("{n} is out of range: {range}")));
                None
            }
            Err(_) => {
                problems.push(field("limit", format!("`{text}` is not {range}")));
                None
            }
        },
    };
    match (after_seq, limit) {
        (Some(after_seq), Some(limit)) if problems.is_empty() => Ok(FeedQuery { after_seq, limit }),
        _ => Err(problems),
    }
}

/// The query [`parse_query`] reads, for the OpenAPI document (built from the same
/// constants, so the contract cannot allow what the parser refuses).
struct FeedParams;

impl utoipa::IntoParams for FeedParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let query = |name: &str, description: String, schema: ObjectBuilder| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(schema))
                .build()
        };
        vec![
            query(
                "after",
                "A `next_cursor` from an earlier page; absent starts at the caller's first event"
                    .to_string(),
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(format!(
                        "^{CURSOR_PREFIX}[0-9a-f]{{{CURSOR_HEX_DIGITS}}}$"
                    ))),
            ),
            query(
                "limit",
                format!("Events per page (default {EVENTS_LIMIT_DEFAULT})"),
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(EVENTS_LIMIT_MAX as u64)),
            ),
        ]
    }
}

/// `GET /v1/events`.
#[utoipa::path(
    get,
    path = "/v1/events",
    operation_id = "listEvents",
    summary = "The caller's webhook events after a cursor, in commit order (reconcile missed webhooks)",
    description = "The events the caller's webhook endpoint is sent, read back from the same outbox: same `event_id`, same body, in the order the service committed them. Poll with the last `next_cursor`; apply each event id once, whether it came by webhook, by this feed, or both. Events are kept for good, so a cursor never expires.",
    params(FeedParams),
    responses(
        (status = 200, description = "A page of the caller's events", body = EventsPage),
        (status = 400, description = "`validation_failed`: `after` is not a cursor this service gives, `limit` is out of range, or a parameter is unknown or repeated; the details name each"),
        (status = 503, description = openapi::UNAVAILABLE),
    ),
)]
pub(crate) async fn list(
    State(service): State<Arc<Service>>,
    Extension(Caller(caller)): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let FeedQuery { after_seq, limit } =
        parse_query(query.as_deref()).map_err(ApiError::validation)?;
    // One more than asked, to know whether another page waits.
    let records = service
        .transact(move |tx| Ok(tx.outbox_after(&caller, after_seq, limit + 1)))
        .await?;
    service.store_round_trip().await;
    let has_more = records.len() > limit;
    let page: Vec<_> = records.into_iter().take(limit).collect();
    let next_seq = page.last().map_or(after_seq, |record| {
        // The planted bug hands out the cursor of the event after the last one returned,
        // and reads `after` as exclusive: the first event of the next page is skipped.
        if service.config.bugs.has(Bug::FeedCursorSkipsBoundary) {
            record.seq + 1
        } else {
            record.seq
        }
    });
    let page = EventsPage {
        events: page.into_iter().map(|record| record.event).collect(),
        next_cursor: cursor_of(next_seq),
        has_more,
    };
    Ok(Json(page).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_sort_as_their_sequence() {
        // Proves a cursor stands for its sequence number and back, and that cursors compare
        // like the numbers (fixed width), so a log sorted by cursor is in commit order.
        for seq in [0, 1, 15, 16, 4_096, i64::MAX as u64] {
            assert_eq!(seq_of(&cursor_of(seq)), Ok(seq));
        }
        assert!(cursor_of(9) < cursor_of(10) && cursor_of(255) < cursor_of(256));
    }

    #[test]
    fn bad_cursors_and_limits_are_field_errors_never_defaults() {
        // Proves each malformed parameter is refused with its own field detail (all of them
        // at once), and that an absent `after` starts at the beginning with the default
        // page size.
        assert_eq!(
            parse_query(None),
            Ok(FeedQuery {
                after_seq: 0,
                limit: EVENTS_LIMIT_DEFAULT
            })
        );
        assert_eq!(
            parse_query(Some("after=evc_000000000000002a&limit=100")),
            Ok(FeedQuery {
                after_seq: 42,
                limit: 100
            })
        );
        let fields = |query: &str| -> Vec<String> {
            parse_query(Some(query))
                .unwrap_err()
                .into_iter()
                .map(|f| f.field)
                .collect()
        };
        for bad in [
            "after=",
            "after=42",
            "after=evc_2a",
            "after=evc_000000000000002A",
            "after=evc_ffffffffffffffff",
            "after=evc_00000000000000zz",
        ] {
            assert_eq!(fields(bad), ["after"], "{bad}");
        }
        for bad in ["limit=0", "limit=101", "limit=-1", "limit=ten", "limit="] {
            assert_eq!(fields(bad), ["limit"], "{bad}");
        }
        assert_eq!(fields("afer=evc_0000000000000001"), ["afer"]);
        assert_eq!(fields("limit=1&limit=2"), ["limit"]);
        assert_eq!(fields("after=x&limit=0"), ["after", "limit"]);
    }
}
