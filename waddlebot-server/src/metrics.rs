//! The process's Prometheus recorder.

use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};

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
/// inside a tokio runtime.
pub fn install_metrics() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new().install_recorder()?;
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
