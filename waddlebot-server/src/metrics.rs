//! The process's Prometheus recorder.

use std::time::Duration;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};
use waddlebot_router::metrics_names as router;

use crate::app::{HTTP_REQUESTS, HTTP_SECONDS};
use crate::web::OVERLAY_STREAMS;

/// How often histogram samples are folded into their summaries (the exporter's default
/// upkeep interval).
pub const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder for this process and keeps it tidy: every
/// [`METRICS_UPKEEP`] a task folds the histogram samples recorded since into their summaries.
/// Without that, each sample stays in memory until `/metrics` is scraped, so a server nobody
/// scrapes grows by every request it answers.
///
/// Install it before building the router: the router and the modules register their metrics
/// when they are built, and what registers before a recorder exists records nothing. Call it
/// inside a tokio runtime. Every metric gets its `# HELP` text and unit.
pub fn install_metrics() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new().install_recorder()?;
    describe();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(METRICS_UPKEEP);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// Gives every metric the router and the server record its help text and unit, on the
/// installed recorder. The Prometheus exporter writes the text as `# HELP`, which `promtool check
/// metrics` asks of every metric; the units stay metadata, since each name already ends in its
/// unit (`_seconds`, `_total`).
///
/// Every metric is here, once: a metric added without a line here has no `# HELP`, and the
/// lint test (`tests/tests/metrics_lint.rs`) fails.
fn describe() {
    describe_counter!(router::EVENTS, Unit::Count, "Events handled, by kind.");
    describe_histogram!(
        router::EVENT_SECONDS,
        Unit::Seconds,
        "Seconds to handle one event, from intake to outcome."
    );
    describe_counter!(
        router::COMMANDS,
        Unit::Count,
        "Commands, local and remote, by outcome (ok, unknown, refused, user_error, failed)."
    );
    describe_counter!(
        router::REFUSALS,
        Unit::Count,
        "Commands refused, by reason (permission, cooldown, rate_limit, module_disabled...)."
    );
    describe_histogram!(
        router::HANDLER_SECONDS,
        Unit::Seconds,
        "Seconds a command or event handler ran, by module."
    );
    describe_counter!(
        router::HANDLER_FAILURES,
        Unit::Count,
        "Handler failures (errors, panics, timeouts), by module."
    );
    describe_counter!(
        router::CACHE,
        Unit::Count,
        "Cache lookups, by cache and result (hit, miss)."
    );
    describe_counter!(router::RULE_MATCHES, Unit::Count, "String rule matches.");
    describe_counter!(
        router::REMOTE_CALLS,
        Unit::Count,
        "Remote module calls, by result (ok, timeout, unavailable, garbled, refused)."
    );
    describe_counter!(
        router::OUTBOUND_WAITS,
        Unit::Count,
        "Times an outbound message waited for room in its platform's quotas, by platform."
    );
    describe_counter!(
        router::OUTBOUND_RETRIES,
        Unit::Count,
        "Outbound messages tried again after the platform answered 429, by platform."
    );
    describe_counter!(
        router::SCHEDULED,
        Unit::Count,
        "Scheduled messages handled, by outcome (delivered, retried, given_up)."
    );
    describe_counter!(
        router::OVERLAY_ITEMS,
        Unit::Count,
        "Items put on community overlays, by source (ticker, media, alerts...)."
    );
    describe_counter!(
        router::WRITE_BEHIND_WRITES,
        Unit::Count,
        "Bookkeeping writes (who was seen, score changes) written behind the events, in batches."
    );
    describe_counter!(
        router::WRITE_BEHIND_FAILURES,
        Unit::Count,
        "Batches of bookkeeping the store refused; they wait and are tried again."
    );
    describe_counter!(
        HTTP_REQUESTS,
        Unit::Count,
        "HTTP requests answered, by method, route and status."
    );
    describe_histogram!(
        HTTP_SECONDS,
        Unit::Seconds,
        "Seconds to answer an HTTP request, by route."
    );
    describe_gauge!(
        OVERLAY_STREAMS,
        Unit::Count,
        "Overlay event streams open now (overlay pages connected)."
    );
}
