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

/// `GET /router/metrics`: the original's JSON summary of what `/metrics` exposes, read from the
/// same recorder's text: uptime, events by kind, commands by outcome, refusals by reason,
/// errors, event latency percentiles, cache hit rates and the rate limiter's settings and
/// refusals.
pub(crate) fn summary(
    exposition: &str,
    uptime: std::time::Duration,
    policy: &waddlebot_router::policy::PolicyConfig,
) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let samples = parse_exposition(exposition);
    let by = |metric: &str, label: &str| -> (f64, Map<String, Value>) {
        let mut total = 0.0;
        let mut split = Map::new();
        for (name, labels, value) in &samples {
            if name != metric {
                continue;
            }
            total += value;
            if let Some((_, key)) = labels.iter().find(|(k, _)| k == label) {
                let entry = split.entry(key.clone()).or_insert(json!(0.0));
                *entry = json!(entry.as_f64().unwrap_or(0.0) + value);
            }
        }
        (total, split)
    };
    let sum = |metric: &str| {
        samples
            .iter()
            .filter(|(n, _, _)| n == metric)
            .map(|s| s.2)
            .sum::<f64>()
    };
    let (events, events_by_kind) = by("waddlebot_events_total", "kind");
    let (commands, commands_by_outcome) = by("waddlebot_commands_total", "outcome");
    let (refusals, refusals_by_reason) = by("waddlebot_refusals_total", "reason");
    let remote_failed: f64 = samples
        .iter()
        .filter(|(n, labels, _)| {
            n == "waddlebot_remote_calls_total"
                && labels.iter().any(|(k, v)| k == "result" && v != "ok")
        })
        .map(|s| s.2)
        .sum();
    let mut latency = Map::new();
    for (name, labels, value) in &samples {
        if name != "waddlebot_event_duration_seconds" {
            continue;
        }
        if let Some((_, q)) = labels.iter().find(|(k, _)| k == "quantile") {
            let key = match q.as_str() {
                "0" => "min",
                "0.5" => "p50",
                "0.9" => "p90",
                "0.95" => "p95",
                "0.99" => "p99",
                "0.999" => "p999",
                "1" => "max",
                _ => continue,
            };
            latency.insert(key.to_owned(), json!(value * 1000.0));
        }
    }
    let mut caches = Map::new();
    for (name, labels, value) in &samples {
        if name != "waddlebot_cache_requests_total" {
            continue;
        }
        let label = |k: &str| {
            labels
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        if let (Some(cache), Some(result)) = (label("cache"), label("result")) {
            let entry = caches
                .entry(cache)
                .or_insert(json!({"hits": 0.0, "misses": 0.0}));
            let field = if result == "hit" { "hits" } else { "misses" };
            entry[field] = json!(entry[field].as_f64().unwrap_or(0.0) + value);
        }
    }
    for entry in caches.values_mut() {
        let (hits, misses) = (
            entry["hits"].as_f64().unwrap_or(0.0),
            entry["misses"].as_f64().unwrap_or(0.0),
        );
        entry["hit_rate"] = if hits + misses > 0.0 {
            json!(hits / (hits + misses))
        } else {
            Value::Null
        };
    }
    let limit = |rate: &waddlebot_router::policy::RateLimit| json!({"max": rate.max, "window_secs": rate.window.as_secs()});
    json!({
        "uptime_secs": uptime.as_secs(),
        "events": {"total": events, "by_kind": events_by_kind},
        "commands": {"total": commands, "by_outcome": commands_by_outcome},
        "refusals": {"total": refusals, "by_reason": refusals_by_reason},
        "errors": {
            "handler_failures": sum("waddlebot_handler_failures_total"),
            "remote_call_failures": remote_failed,
            "write_behind_failures": sum("waddlebot_write_behind_failures_total"),
        },
        "latency_ms": latency,
        "caches": caches,
        "rate_limiter": {
            "per_user_and_command": limit(&policy.user_rate),
            "per_community": policy.community_rate.as_ref().map(limit),
            "refused": refusals_by_reason.get("rate_limit").cloned().unwrap_or(json!(0.0)),
            "unavailable": refusals_by_reason.get("limiter_unavailable").cloned().unwrap_or(json!(0.0)),
        },
    })
}

/// One sample of the Prometheus text format: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// The samples of a Prometheus text exposition (what the recorder renders): comment lines are
/// skipped, label values unescaped, unreadable lines left out.
fn parse_exposition(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(parse_sample)
        .collect()
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (series, value) = line.trim().rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let Some((name, rest)) = series.split_once('{') else {
        return Some((series.to_owned(), Vec::new(), value));
    };
    let body = rest.strip_suffix('}')?;
    let mut labels = Vec::new();
    let mut chars = body.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('"') {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.push((key.trim_start_matches(',').to_owned(), value));
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    Some((name.to_owned(), labels, value))
}

#[cfg(test)]
mod summary_tests {
    use super::*;

    #[test]
    fn the_summary_reads_the_exposition() {
        let text = r#"# TYPE waddlebot_events_total counter
waddlebot_events_total{kind="chat_message"} 7
waddlebot_events_total{kind="follow"} 1
waddlebot_commands_total{outcome="ok"} 3
waddlebot_refusals_total{reason="rate_limit"} 2
waddlebot_refusals_total{reason="cooldown"} 1
waddlebot_remote_calls_total{result="ok"} 4
waddlebot_remote_calls_total{result="timeout"} 1
waddlebot_cache_requests_total{cache="community",result="hit"} 9
waddlebot_cache_requests_total{cache="community",result="miss"} 1
waddlebot_event_duration_seconds{quantile="0.5"} 0.002
waddlebot_event_duration_seconds{quantile="0.99"} 0.01
waddlebot_event_duration_seconds_sum 0.5
waddlebot_odd{note="a \"quoted\", comma"} 1
"#;
        let policy = waddlebot_router::policy::PolicyConfig::default();
        let summary = summary(text, std::time::Duration::from_secs(5), &policy);
        assert_eq!(summary["uptime_secs"], 5);
        assert_eq!(summary["events"]["total"], 8.0);
        assert_eq!(summary["events"]["by_kind"]["chat_message"], 7.0);
        assert_eq!(summary["refusals"]["by_reason"]["cooldown"], 1.0);
        assert_eq!(summary["rate_limiter"]["refused"], 2.0);
        assert_eq!(summary["errors"]["remote_call_failures"], 1.0);
        assert_eq!(summary["latency_ms"]["p50"], 2.0);
        assert_eq!(summary["latency_ms"]["p99"], 10.0);
        assert_eq!(summary["caches"]["community"]["hit_rate"], 0.9);
        let odd =
            parse_sample(r#"waddlebot_odd{note="a \"quoted\", comma",b="2"} 1"#).expect("parsed");
        assert_eq!(
            odd.1,
            [
                ("note".to_owned(), "a \"quoted\", comma".to_owned()),
                ("b".to_owned(), "2".to_owned())
            ]
        );
    }
}
