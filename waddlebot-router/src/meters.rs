//! Metric handles, registered once when the router is built. A `metrics::counter!` call builds
//! its key (allocating the labels) and looks it up in the recorder's registry every time; at
//! tens of thousands of events a second, with a dozen metrics per event, that was a visible
//! part of an event's cost. Label values outside the registered set (a custom event kind, a
//! remote module) still go through the macros.
//!
//! Handles belong to the recorder that was installed when they were made: a program installs
//! its recorder before building the router (see [`metrics_names`](crate::metrics_names)).

use std::collections::HashMap;

use metrics::{Counter, Histogram};

use crate::metrics_names;

/// Counters of one metric with one label, a handle per known label value.
pub(crate) struct Labeled {
    name: &'static str,
    label: &'static str,
    counters: Box<[(&'static str, Counter)]>,
}

impl Labeled {
    fn new(name: &'static str, label: &'static str, values: &[&'static str]) -> Self {
        Self {
            name,
            label,
            counters: values
                .iter()
                .map(|value| (*value, metrics::counter!(name, label => *value)))
                .collect(),
        }
    }

    /// Adds one to the counter of `value`.
    pub(crate) fn increment(&self, value: &str) {
        match self.counters.iter().find(|(known, _)| *known == value) {
            Some((_, counter)) => counter.increment(1),
            None => metrics::counter!(self.name, self.label => value.to_owned()).increment(1),
        }
    }
}

/// A handler's duration histogram and failure counter.
struct HandlerMeters {
    seconds: Histogram,
    failures: Counter,
}

impl HandlerMeters {
    fn new(module: &str) -> Self {
        Self {
            seconds: metrics::histogram!(metrics_names::HANDLER_SECONDS, "module" => module.to_owned()),
            failures: metrics::counter!(metrics_names::HANDLER_FAILURES, "module" => module.to_owned()),
        }
    }
}

/// How a command ended, the `outcome` label of [`metrics_names::COMMANDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommandOutcome {
    /// It ran and answered.
    Ok,
    /// No command (local or remote) has that name.
    Unknown,
    /// A check refused it (permission, cooldown, rate limit, switched off).
    Refused,
    /// The handler (or remote module) said the input was wrong.
    UserError,
    /// The handler failed, or the remote module could not be reached or made no sense.
    Failed,
}

impl CommandOutcome {
    /// Every outcome, in label order.
    const ALL: [Self; 5] = [
        Self::Ok,
        Self::Unknown,
        Self::Refused,
        Self::UserError,
        Self::Failed,
    ];

    /// The metric label.
    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Unknown => "unknown",
            Self::Refused => "refused",
            Self::UserError => "user_error",
            Self::Failed => "failed",
        }
    }
}

/// The router's metrics.
pub(crate) struct Meters {
    pub(crate) events: Labeled,
    pub(crate) event_seconds: Histogram,
    /// By [`CommandOutcome`], in its order.
    commands: [Counter; 5],
    pub(crate) refusals: Labeled,
    pub(crate) rule_matches: Counter,
    /// By module: every local module known when the router was built.
    handlers: HashMap<Box<str>, HandlerMeters, foldhash::fast::RandomState>,
}

impl Meters {
    /// Registers the router's metrics, with a handler's pair for each of `modules`.
    pub(crate) fn new<'a>(modules: impl IntoIterator<Item = &'a str>) -> Self {
        let mut handlers = HashMap::default();
        for module in modules {
            handlers
                .entry(module.into())
                .or_insert_with(|| HandlerMeters::new(module));
        }
        Self {
            events: Labeled::new(metrics_names::EVENTS, "kind", waddlebot::EventKind::NAMES),
            event_seconds: metrics::histogram!(metrics_names::EVENT_SECONDS),
            commands: CommandOutcome::ALL.map(
                |outcome| metrics::counter!(metrics_names::COMMANDS, "outcome" => outcome.label()),
            ),
            refusals: Labeled::new(
                metrics_names::REFUSALS,
                "reason",
                crate::policy::Refusal::REASONS,
            ),
            rule_matches: metrics::counter!(metrics_names::RULE_MATCHES),
            handlers,
        }
    }

    /// Counts a command that ended so.
    pub(crate) fn command(&self, outcome: CommandOutcome) {
        self.commands[outcome as usize].increment(1);
    }

    /// Records that a handler of `module` ran for `seconds`, and whether it failed.
    pub(crate) fn handler_ran(&self, module: &str, seconds: f64, failed: bool) {
        let registered_now;
        let meters = match self.handlers.get(module) {
            Some(meters) => meters,
            None => {
                registered_now = HandlerMeters::new(module);
                &registered_now
            }
        };
        meters.seconds.record(seconds);
        if failed {
            meters.failures.increment(1);
        }
    }
}

/// Hits and misses of one cache.
pub(crate) struct Lookups {
    hits: Counter,
    misses: Counter,
}

impl Lookups {
    pub(crate) fn new(cache: &'static str) -> Self {
        Self {
            hits: metrics::counter!(metrics_names::CACHE, "cache" => cache, "result" => "hit"),
            misses: metrics::counter!(metrics_names::CACHE, "cache" => cache, "result" => "miss"),
        }
    }

    pub(crate) fn hit(&self) {
        self.hits.increment(1);
    }

    pub(crate) fn miss(&self) {
        self.misses.increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_outcomes_are_listed_in_their_own_order() {
        for (index, outcome) in CommandOutcome::ALL.into_iter().enumerate() {
            assert_eq!(outcome as usize, index, "{outcome:?}");
        }
        let labels = CommandOutcome::ALL.map(CommandOutcome::label);
        assert_eq!(labels, ["ok", "unknown", "refused", "user_error", "failed"]);
    }
}
