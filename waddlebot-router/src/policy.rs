//! The checks between "this is a command" and "run it", in their fixed order: module enabled →
//! command enabled → permission level → cooldowns → rate limits. Each refusal is a reply that
//! says what to do about it.

use std::sync::Arc;
use std::time::Duration;

use waddlebot::store::CommandSettings;
use waddlebot::{CommunityId, Event, PermissionLevel};

use crate::cache::CommunityView;
use crate::limit::{Limit, RateLimiter, Verdict};

/// `max` uses per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Uses allowed per window.
    pub max: u32,
    /// The sliding window.
    pub window: Duration,
}

impl RateLimit {
    /// `max` per `secs` seconds.
    pub const fn per_secs(max: u32, secs: u64) -> Self {
        Self {
            max,
            window: Duration::from_secs(secs),
        }
    }
}

/// Limits and exemptions, router-wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Per user and command (`ROUTER_DEFAULT_RATE_LIMIT`, default 60 per 60 s).
    pub user_rate: RateLimit,
    /// Per community, all commands together (default 1200 per 60 s); `None` for no limit.
    pub community_rate: Option<RateLimit>,
    /// Users at or above this level skip cooldowns; `None` (the default) exempts nobody.
    pub cooldown_exempt: Option<PermissionLevel>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            user_rate: RateLimit::per_secs(60, 60),
            community_rate: Some(RateLimit::per_secs(1200, 60)),
            cooldown_exempt: None,
        }
    }
}

/// Why a command was not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The command's module is off in this community.
    ModuleDisabled(String),
    /// The command is off in this community.
    CommandDisabled,
    /// The caller's level is too low.
    Forbidden(PermissionLevel),
    /// A cooldown is running.
    Cooldown(Duration),
    /// A rate limit is full.
    RateLimited(Duration),
    /// The limiter could not be asked; refusing is safer than running unlimited.
    LimiterUnavailable,
}

impl Refusal {
    /// Every [`reason`](Self::reason).
    pub const REASONS: &'static [&'static str] = &[
        "module_disabled",
        "command_disabled",
        "permission",
        "cooldown",
        "rate_limit",
        "limiter_unavailable",
    ];

    /// A short stable name, for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ModuleDisabled(_) => "module_disabled",
            Self::CommandDisabled => "command_disabled",
            Self::Forbidden(_) => "permission",
            Self::Cooldown(_) => "cooldown",
            Self::RateLimited(_) => "rate_limit",
            Self::LimiterUnavailable => "limiter_unavailable",
        }
    }

    /// What the user reads. `shown` is the command as typed (`!hello`).
    pub fn text(&self, shown: &str) -> String {
        match self {
            Self::ModuleDisabled(module) => {
                format!("The '{module}' module is disabled for this community")
            }
            Self::CommandDisabled => format!("Command {shown} is currently disabled"),
            Self::Forbidden(needed) => {
                format!("You need to be {needed} or higher to use {shown}.")
            }
            Self::Cooldown(left) => {
                format!("{shown} is on cooldown. Try again in {}.", seconds(*left))
            }
            Self::RateLimited(left) => format!(
                "Rate limit exceeded for {shown}. Try again in {}.",
                seconds(*left)
            ),
            Self::LimiterUnavailable => {
                format!("{shown} cannot run right now. Try again in a moment.")
            }
        }
    }
}

/// Whole seconds, rounded up: "1 second" for anything under one.
fn seconds(duration: Duration) -> String {
    let secs = duration.as_millis().div_ceil(1000).max(1);
    if secs == 1 {
        "1 second".to_owned()
    } else {
        format!("{secs} seconds")
    }
}

/// What the router knows about the command being checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CommandRules<'a> {
    /// Canonical name, without prefix.
    pub(crate) name: &'a str,
    /// Its module (`core` is always on).
    pub(crate) module: &'a str,
    pub(crate) min_level: PermissionLevel,
    pub(crate) user_cooldown: Duration,
    pub(crate) global_cooldown: Duration,
    pub(crate) bucket: Option<&'a str>,
}

impl<'a> CommandRules<'a> {
    /// The command's own rules with a community's overrides applied.
    fn with(mut self, settings: Option<&'a CommandSettings>) -> Self {
        if let Some(settings) = settings {
            self.min_level = settings.min_level.unwrap_or(self.min_level);
            if let Some(secs) = settings.user_cooldown_secs {
                self.user_cooldown = Duration::from_secs(secs);
            }
            if let Some(secs) = settings.global_cooldown_secs {
                self.global_cooldown = Duration::from_secs(secs);
            }
            if let Some(bucket) = &settings.cooldown_bucket {
                self.bucket = Some(bucket);
            }
        }
        self
    }
}

/// Applies the checks. Shared by every event; holds no per-event state.
pub(crate) struct Policy {
    pub(crate) config: PolicyConfig,
    pub(crate) limiter: Arc<dyn RateLimiter>,
    /// The router's commands, which know the modules that are off until installed.
    pub(crate) catalog: Arc<waddlebot::CommandCatalog>,
}

impl Policy {
    /// The caller's level in this community: the higher of their platform badges and any
    /// level granted to them here.
    pub(crate) fn effective_level(&self, view: &CommunityView, event: &Event) -> PermissionLevel {
        view.grant(&event.platform, &event.user.id)
            .map_or(event.user.level, |grant| grant.level.max(event.user.level))
    }

    /// Whether a module is on in a community: its install record, else on for modules added as
    /// core and off for optional ones. The router's own `core` module is always on.
    pub(crate) fn module_enabled(&self, view: &CommunityView, module: &str) -> bool {
        self.catalog.module_on(module, view.install(module))
    }

    /// Runs every check; `None` means go ahead (and the use has been counted).
    pub(crate) async fn check(
        &self,
        view: &CommunityView,
        community: CommunityId,
        event: &Event,
        rules: CommandRules<'_>,
    ) -> Option<Refusal> {
        if !self.module_enabled(view, rules.module) {
            return Some(Refusal::ModuleDisabled(rules.module.to_owned()));
        }
        let settings = view.settings(rules.name);
        if settings.is_some_and(|s| !s.enabled) {
            return Some(Refusal::CommandDisabled);
        }
        let rules = rules.with(settings);
        if event.user.level < rules.min_level {
            return Some(Refusal::Forbidden(rules.min_level));
        }
        let limits = self.limits(community, event, &rules);
        let verdict = match self.limiter.acquire(&limits.limits).await {
            Ok(verdict) => verdict,
            Err(err) => {
                tracing::error!(category = "system", error = %err, "rate limiter failed");
                return Some(Refusal::LimiterUnavailable);
            }
        };
        match verdict {
            Verdict::Allowed => None,
            Verdict::Refused { index, retry_after } if index < limits.cooldowns => {
                Some(Refusal::Cooldown(retry_after))
            }
            Verdict::Refused { retry_after, .. } => Some(Refusal::RateLimited(retry_after)),
        }
    }

    fn limits(&self, community: CommunityId, event: &Event, rules: &CommandRules<'_>) -> Limits {
        let mut limits = Vec::with_capacity(4);
        // Keys are joined from their parts (`concat`, one allocation): `format!` cost more
        // than the copying on a path every command takes.
        let mut number = itoa::Buffer::new();
        let community = number.format(community.0);
        let (platform, user) = (event.platform.as_str(), event.user.id.as_str());
        let exempt = self
            .config
            .cooldown_exempt
            .is_some_and(|level| event.user.level >= level);
        if !exempt {
            let bucket = rules.bucket.unwrap_or(rules.name);
            if !rules.user_cooldown.is_zero() {
                limits.push(Limit {
                    key: ["cd:", community, ":", bucket, ":", platform, ":", user].concat(),
                    max: 1,
                    window: rules.user_cooldown,
                });
            }
            if !rules.global_cooldown.is_zero() {
                limits.push(Limit {
                    key: ["cd:", community, ":", bucket].concat(),
                    max: 1,
                    window: rules.global_cooldown,
                });
            }
        }
        let cooldowns = limits.len();
        let rate = self.config.user_rate;
        limits.push(Limit {
            key: ["rl:", community, ":", rules.name, ":", platform, ":", user].concat(),
            max: rate.max,
            window: rate.window,
        });
        if let Some(rate) = self.config.community_rate {
            limits.push(Limit {
                key: ["rl:", community].concat(),
                max: rate.max,
                window: rate.window,
            });
        }
        Limits { limits, cooldowns }
    }
}

struct Limits {
    limits: Vec<Limit>,
    /// The first `cooldowns` limits are cooldowns; the rest are rate limits.
    cooldowns: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_reason_is_listed() {
        let refusals = [
            Refusal::ModuleDisabled("quotes".into()),
            Refusal::CommandDisabled,
            Refusal::Forbidden(PermissionLevel::Vip),
            Refusal::Cooldown(Duration::from_secs(1)),
            Refusal::RateLimited(Duration::from_secs(1)),
            Refusal::LimiterUnavailable,
        ];
        let reasons: Vec<&str> = refusals.iter().map(Refusal::reason).collect();
        assert_eq!(reasons, Refusal::REASONS);
    }

    /// The keys are what Redis holds (and what routers sharing one Redis must agree on).
    #[test]
    fn limiter_keys_name_community_command_platform_and_user() {
        let policy = Policy {
            config: PolicyConfig::default(),
            limiter: Arc::new(crate::limit::MemoryLimiter::new()),
            catalog: Arc::default(),
        };
        let event = Event::chat(
            waddlebot::PlatformKind::Twitch,
            "pond",
            "pond",
            "alice",
            "!hello",
        );
        let rules = CommandRules {
            name: "hello",
            module: "core",
            min_level: PermissionLevel::Everyone,
            user_cooldown: Duration::from_secs(5),
            global_cooldown: Duration::from_secs(2),
            bucket: None,
        };
        let keys = |rules: &CommandRules<'_>| {
            let limits = policy.limits(CommunityId(-42), &event, rules);
            let keys: Vec<String> = limits.limits.into_iter().map(|l| l.key).collect();
            (keys, limits.cooldowns)
        };
        assert_eq!(
            keys(&rules),
            (
                vec![
                    "cd:-42:hello:twitch:alice".to_owned(),
                    "cd:-42:hello".to_owned(),
                    "rl:-42:hello:twitch:alice".to_owned(),
                    "rl:-42".to_owned(),
                ],
                2
            )
        );
        let shared = CommandRules {
            bucket: Some("games"),
            ..rules
        };
        assert_eq!(
            keys(&shared).0[..2],
            ["cd:-42:games:twitch:alice", "cd:-42:games"]
        );
    }

    #[test]
    fn remaining_time_is_rounded_up_to_whole_seconds() {
        assert_eq!(seconds(Duration::from_millis(1)), "1 second");
        assert_eq!(seconds(Duration::from_millis(1001)), "2 seconds");
        assert_eq!(seconds(Duration::from_secs(20)), "20 seconds");
    }

    #[test]
    fn refusals_read_like_the_original() {
        assert_eq!(
            Refusal::ModuleDisabled("quotes".into()).text("!quote"),
            "The 'quotes' module is disabled for this community"
        );
        assert_eq!(
            Refusal::CommandDisabled.text("!hello"),
            "Command !hello is currently disabled"
        );
        assert_eq!(
            Refusal::Cooldown(Duration::from_millis(12_300)).text("!hello"),
            "!hello is on cooldown. Try again in 13 seconds."
        );
    }
}
