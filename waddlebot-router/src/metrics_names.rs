//! The metrics the router emits, through the `metrics` facade: the embedding program picks the
//! exporter (the reference server serves Prometheus text). Names here, once, so dashboards and
//! code agree. The reference server gives each its `# HELP` text and unit
//! (`waddlebot-server/src/metrics.rs`): a new name needs a line there, and a name ends in its
//! base unit (`_seconds`, `_bytes`), counters in `_total`, as `promtool check metrics` asks.
//!
//! The router registers its metrics when it is built (handles, so an event does not look its
//! metrics up again): install the recorder first, or the router records nothing.

/// Events handled, by `kind` (`chat_message`, `follow`...).
pub const EVENTS: &str = "waddlebot_events_total";
/// Seconds to handle one event, from intake to outcome.
pub const EVENT_SECONDS: &str = "waddlebot_event_duration_seconds";
/// Commands, local and remote, by `outcome`: `ok`, `unknown`, `refused`, `user_error` (the
/// handler or remote module said the input was wrong), `failed`.
pub const COMMANDS: &str = "waddlebot_commands_total";
/// Refusals, by `reason` (`permission`, `cooldown`, `rate_limit`, `module_disabled`...).
pub const REFUSALS: &str = "waddlebot_refusals_total";
/// Seconds a handler ran, by `module`.
pub const HANDLER_SECONDS: &str = "waddlebot_handler_duration_seconds";
/// Handler failures (errors, panics, timeouts), by `module`.
pub const HANDLER_FAILURES: &str = "waddlebot_handler_failures_total";
/// Cache lookups, by `cache` and `result` (`hit`, `miss`).
pub const CACHE: &str = "waddlebot_cache_requests_total";
/// String rule matches.
pub const RULE_MATCHES: &str = "waddlebot_rule_matches_total";
/// Remote module calls, by `result` (`ok`, `timeout`, `unavailable`, `garbled`, `refused`).
pub const REMOTE_CALLS: &str = "waddlebot_remote_calls_total";
/// Times an outbound message waited for room in its platform's quotas, by `platform`.
pub const OUTBOUND_WAITS: &str = "waddlebot_outbound_waits_total";
/// Outbound messages tried again after the platform answered 429, by `platform`.
pub const OUTBOUND_RETRIES: &str = "waddlebot_outbound_retries_total";
/// Scheduled messages handled, by `outcome` (`delivered`, `retried`, `given_up`).
pub const SCHEDULED: &str = "waddlebot_scheduled_total";
/// Items put on community overlays, by `source` (`ticker`, `media`, `alerts`...).
pub const OVERLAY_ITEMS: &str = "waddlebot_overlay_items_total";
/// Bookkeeping writes (who was seen, score changes) written behind the events, in batches.
pub const WRITE_BEHIND_WRITES: &str = "waddlebot_write_behind_writes_total";
/// Batches of bookkeeping the store refused (they wait and are tried again).
pub const WRITE_BEHIND_FAILURES: &str = "waddlebot_write_behind_failures_total";
