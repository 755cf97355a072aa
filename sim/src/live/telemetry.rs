//! Structured logs for live mode's servers: one JSON object per line on stderr, with the
//! fields of the current request span (`request_id`, `caller`, `idempotency_key`,
//! `order_id`, `shipment_id`, `event_id`) beside the event's own, so an incident is found by
//! grepping for any of them. `SHIPSIM_LOG` filters (`info` by default, `debug`,
//! `shipsim_system=debug,warn`, ...).

use tracing_subscriber::EnvFilter;

/// The environment variable holding the log filter.
pub const LOG_FILTER_VAR: &str = "SHIPSIM_LOG";

/// Installs the JSON-lines subscriber for this process. Calling it twice keeps the first.
pub fn init_json_logs() {
    let filter = EnvFilter::try_from_env(LOG_FILTER_VAR).unwrap_or_else(|_| EnvFilter::new("info"));
    let _already_installed = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
