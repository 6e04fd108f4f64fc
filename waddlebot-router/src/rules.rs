//! String-match rules: auto-replies and moderation on plain chat (the original v1 router's
//! "stringmatch"). Rules are checked by priority; the first match wins.
//!
//! Patterns are compiled once per community and cached; `*` matches every message. Regular
//! expressions use the `regex` crate (linear time, so a hostile pattern cannot stall the
//! router) and are refused at creation if they do not compile.

use std::sync::Arc;
use std::time::Duration;

use regex::{Regex, RegexBuilder};
use waddlebot::store::{MatchType, RuleAction, StringRule};
use waddlebot::{CommunityId, Event, ModerationAction, Reply, StoreError};

/// The warning sent when a `warn` rule has no message of its own (the original's text).
pub const DEFAULT_WARNING: &str =
    "Warning: Your message contains content that may violate community guidelines.";
/// The notice sent when a `block` rule has no message of its own (the original's text).
pub const DEFAULT_BLOCK_NOTICE: &str = "Your message has been blocked due to policy violations.";
/// Longest pattern accepted.
pub const MAX_PATTERN_LEN: usize = 500;
/// The most memory one rule's compiled regular expression may take; a pattern that needs
/// more (`(a|b){1000}{1000}`-style repetition) is refused when added.
pub const MAX_RULE_COMPILED_BYTES: usize = 256 * 1024;
/// The most memory the combined automaton of a community's rules may take; past it each
/// rule's own regex is used instead.
pub const MAX_SET_COMPILED_BYTES: usize = 4 * 1024 * 1024;
/// How long a rule webhook may take.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a rule was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// The rule cannot work as written.
    #[error("invalid rule: {0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

enum Matcher {
    All,
    /// Lower-cased unless the rule is case-sensitive.
    Exact(String),
    Contains(String),
    Regex(Regex),
}

/// A rule ready to test messages against.
pub(crate) struct CompiledRule {
    pub(crate) rule: StringRule,
    matcher: Matcher,
}

impl CompiledRule {
    pub(crate) fn compile(rule: StringRule) -> Result<Self, RuleError> {
        let pattern = rule.pattern.trim();
        if pattern.is_empty() || pattern.chars().count() > MAX_PATTERN_LEN {
            return Err(RuleError::Invalid(format!(
                "the pattern must be 1 to {MAX_PATTERN_LEN} characters"
            )));
        }
        let fold = |text: &str| {
            if rule.case_sensitive {
                text.to_owned()
            } else {
                text.to_lowercase()
            }
        };
        let regex = |source: &str| {
            RegexBuilder::new(source)
                .case_insensitive(!rule.case_sensitive)
                .size_limit(MAX_RULE_COMPILED_BYTES)
                .dfa_size_limit(MAX_RULE_COMPILED_BYTES)
                .build()
                .map_err(|err| {
                    RuleError::Invalid(format!("the regular expression does not compile: {err}"))
                })
        };
        let matcher = match rule.match_type {
            _ if pattern == "*" => Matcher::All,
            MatchType::Exact => Matcher::Exact(fold(pattern)),
            MatchType::Contains => Matcher::Contains(fold(pattern)),
            MatchType::Word => Matcher::Regex(regex(&format!(r"\b{}\b", regex::escape(pattern)))?),
            MatchType::Regex => Matcher::Regex(regex(pattern)?),
        };
        match &rule.action {
            RuleAction::Command { command } if !command.trim_start().starts_with(['!', '#']) => {
                return Err(RuleError::Invalid(
                    "a command action needs a command line such as !so {user}".to_owned(),
                ));
            }
            RuleAction::Webhook { url } => {
                let parsed = reqwest::Url::parse(url)
                    .map_err(|err| RuleError::Invalid(format!("bad webhook URL: {err}")))?;
                if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                    return Err(RuleError::Invalid(
                        "the webhook URL must be http(s) with a host".to_owned(),
                    ));
                }
            }
            _ => {}
        }
        Ok(Self { rule, matcher })
    }

    fn matches(&self, text: &str, lowered: &str) -> bool {
        let folded = if self.rule.case_sensitive {
            text
        } else {
            lowered
        };
        match &self.matcher {
            Matcher::All => true,
            Matcher::Exact(pattern) => folded.trim() == pattern,
            Matcher::Contains(pattern) => folded.contains(pattern.as_str()),
            Matcher::Regex(regex) => regex.is_match(text),
        }
    }
}

/// A community's enabled rules, compiled, by priority.
pub(crate) struct RuleSet {
    rules: Vec<CompiledRule>,
    /// The regular-expression rules (`word` and `regex`) again, as one automaton per case
    /// setting that tells which of them match in one pass over the text, instead of one pass
    /// per rule. Built with the same settings as each rule's own regex, so they agree.
    sets: [Option<regex::RegexSet>; 2],
    /// Per rule, its set (0: case-insensitive, 1: case-sensitive) and place in it.
    in_set: Vec<Option<(usize, usize)>>,
}

impl RuleSet {
    /// Compiles what the store holds: the first `max` rules by priority (more can only come
    /// from outside this router, a store written directly; they are ignored with a log line).
    /// A stored rule that no longer compiles is skipped with a log line rather than failing
    /// every message.
    pub(crate) fn compile(rules: &[StringRule], max: usize) -> Self {
        if rules.len() > max {
            tracing::warn!(
                community = rules[0].community_id.0,
                rules = rules.len(),
                max,
                "a community has more string rules than allowed; only the first are used"
            );
        }
        let rules: Vec<CompiledRule> = rules
            .iter()
            .take(max)
            .filter(|rule| rule.enabled)
            .cloned()
            .filter_map(|rule| {
                let id = rule.id;
                CompiledRule::compile(rule)
                    .map_err(|err| tracing::warn!(rule = id, error = %err, "skipping a rule"))
                    .ok()
            })
            .collect();
        let mut sources: [Vec<&str>; 2] = [Vec::new(), Vec::new()];
        let mut in_set = Vec::with_capacity(rules.len());
        for compiled in &rules {
            in_set.push(match &compiled.matcher {
                Matcher::Regex(regex) => {
                    let set = usize::from(compiled.rule.case_sensitive);
                    sources[set].push(regex.as_str());
                    Some((set, sources[set].len() - 1))
                }
                _ => None,
            });
        }
        let sets = [0, 1].map(|set| {
            // One regex alone is as fast as a set of one.
            if sources[set].len() < 2 {
                return None;
            }
            regex::RegexSetBuilder::new(&sources[set])
                .case_insensitive(set == 0)
                .size_limit(MAX_SET_COMPILED_BYTES)
                .dfa_size_limit(MAX_SET_COMPILED_BYTES)
                .build()
                // Too large together: each rule's own regex still works.
                .map_err(|err| tracing::debug!(error = %err, "rule patterns not combined"))
                .ok()
        });
        Self {
            rules,
            sets,
            in_set,
        }
    }

    /// The first rule matching `text`.
    pub(crate) fn first_match(&self, text: &str) -> Option<&StringRule> {
        if self.rules.is_empty() {
            return None;
        }
        let lowered = text.to_lowercase();
        // Each set runs once, when the first of its rules comes up.
        let mut matched: [Option<regex::SetMatches>; 2] = [None, None];
        self.rules
            .iter()
            .zip(&self.in_set)
            .find(|(compiled, slot)| {
                if let Some((set, index)) = slot
                    && let Some(regexes) = &self.sets[*set]
                {
                    return matched[*set]
                        .get_or_insert_with(|| regexes.matches(text))
                        .matched(*index);
                }
                compiled.matches(text, &lowered)
            })
            .map(|(compiled, _)| &compiled.rule)
    }
}

/// What a matched rule asks the router to do.
pub(crate) enum RuleEffect {
    /// Reply (and maybe moderate), then let event handlers run.
    Replies(Vec<Reply>),
    /// Reply and moderate; nothing else sees the message.
    Block(Vec<Reply>),
    /// Run this command line as the sender.
    Command(String),
    /// Nothing to say in chat (a webhook was sent).
    Silent,
}

/// The effect of a matched rule on this event.
pub(crate) fn effect(rule: &StringRule, event: &Event) -> RuleEffect {
    match &rule.action {
        RuleAction::Warn { message } => RuleEffect::Replies(vec![Reply::text(
            message
                .clone()
                .unwrap_or_else(|| DEFAULT_WARNING.to_owned()),
        )]),
        RuleAction::Block {
            message,
            timeout_secs,
        } => {
            let moderation = match timeout_secs {
                Some(seconds) => ModerationAction::Timeout {
                    user_id: event.user.id.clone(),
                    seconds: *seconds,
                    reason: Some(format!("string rule {}", rule.id)),
                },
                None => ModerationAction::DeleteMessage {
                    message_id: event.id.0.clone(),
                },
            };
            RuleEffect::Block(vec![
                Reply::Moderate(moderation),
                Reply::text(
                    message
                        .clone()
                        .unwrap_or_else(|| DEFAULT_BLOCK_NOTICE.to_owned()),
                ),
            ])
        }
        RuleAction::Command { command } => {
            let line = command.replace("{user}", event.user.shown_name());
            RuleEffect::Command(line)
        }
        RuleAction::Webhook { .. } => RuleEffect::Silent,
    }
}

/// POSTs a match to a rule's webhook, in the background: chat never waits for it.
pub(crate) fn send_webhook(
    tasks: &tokio_util::task::TaskTracker,
    client: &reqwest::Client,
    egress: &crate::egress::Egress,
    rule: &StringRule,
    community: CommunityId,
    event: &Event,
) {
    let RuleAction::Webhook { url } = &rule.action else {
        return;
    };
    if let Err(why) = egress.check_url(url) {
        tracing::warn!(rule = rule.id, reason = why, "rule webhook not called");
        return;
    }
    let timestamp = event
        .timestamp
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let body = serde_json::json!({
        "type": "string_match",
        "rule_id": rule.id,
        "pattern": rule.pattern,
        "match_type": rule.match_type.as_str(),
        "message_content": event.text,
        "user": {"id": event.user.id, "name": event.user.name},
        "context": {
            "platform": event.platform.as_str(),
            "server_id": event.server_id,
            "channel_id": event.channel_id,
            "community_id": community.0,
            "message_id": event.id.0,
            "timestamp": timestamp,
        },
    });
    let request = client
        .post(url.clone())
        .header("X-WaddleBot-Source", "string-matcher")
        .header("X-WaddleBot-Type", "string-match-webhook")
        .timeout(WEBHOOK_TIMEOUT)
        .json(&body);
    let rule_id = rule.id;
    tasks.spawn(async move {
        match request.send().await {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => {
                tracing::warn!(
                    rule = rule_id,
                    status = response.status().as_u16(),
                    "rule webhook refused"
                );
            }
            Err(err) => tracing::warn!(rule = rule_id, error = %err, "rule webhook failed"),
        }
    });
}

/// Shared, cheap to clone.
pub(crate) type SharedRules = Arc<RuleSet>;

/// A compiled rule set, made once by whoever asks first; the others wait for it.
type Compiling = Arc<tokio::sync::OnceCell<SharedRules>>;

/// Each community's compiled rules, with the list they were compiled from.
pub(crate) struct CompiledRules {
    cache: crate::cache::Bounded<CommunityId, (Arc<Vec<StringRule>>, Compiling)>,
    /// Taken only to start a compile (a list changed), so one change compiles once however
    /// many events arrive meanwhile; never across an await.
    starting: std::sync::Mutex<()>,
}

impl Default for CompiledRules {
    fn default() -> Self {
        Self {
            cache: crate::cache::bounded(10_000),
            starting: std::sync::Mutex::new(()),
        }
    }
}

impl CompiledRules {
    /// The compile of `source` for `community`: the one already started, or a new one.
    fn compiling(&self, community: CommunityId, source: &Arc<Vec<StringRule>>) -> Compiling {
        let current = |cache: &crate::cache::Bounded<_, (Arc<Vec<StringRule>>, Compiling)>| {
            cache
                .get(&community)
                .filter(|(from, _)| Arc::ptr_eq(from, source))
                .map(|(_, compiling)| compiling)
        };
        if let Some(compiling) = current(&self.cache) {
            return compiling;
        }
        let _starting = self.starting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(compiling) = current(&self.cache) {
            return compiling;
        }
        let compiling = Compiling::default();
        self.cache
            .insert(community, (Arc::clone(source), Arc::clone(&compiling)));
        compiling
    }
}

impl crate::Router {
    /// A community's compiled rules. A changed list is compiled once, on a blocking thread
    /// (not on the event path's worker), and events of that community wait for it.
    pub(crate) async fn rule_set(&self, community: CommunityId) -> Result<SharedRules, StoreError> {
        let source = self.cached.shared_rules(community).await?;
        let compiling = self.rules.compiling(community, &source);
        if let Some(compiled) = compiling.get() {
            return Ok(Arc::clone(compiled));
        }
        let max = self.config.max_rules_per_community;
        let compiled = compiling
            .get_or_init(|| async move {
                let compiled = tokio::task::spawn_blocking(move || RuleSet::compile(&source, max));
                Arc::new(compiled.await.unwrap_or_else(|err| {
                    tracing::error!(community = community.0, error = %err, "compiling string rules failed");
                    RuleSet::compile(&[], 0)
                }))
            })
            .await;
        Ok(Arc::clone(compiled))
    }

    /// Adds a string rule after checking it compiles (pattern, regex, action) and that the
    /// community has room for it ([`RouterConfig::max_rules_per_community`]); returns it with
    /// its id. The next message sees it.
    ///
    /// [`RouterConfig::max_rules_per_community`]: crate::RouterConfig::max_rules_per_community
    pub async fn create_rule(&self, rule: StringRule) -> Result<StringRule, RuleError> {
        CompiledRule::compile(rule.clone())?;
        let max = self.config.max_rules_per_community;
        let held = self.store.list_rules(rule.community_id).await?.len();
        if held >= max {
            return Err(RuleError::Invalid(format!(
                "this community has {held} string rules, the most allowed is {max}; remove one first"
            )));
        }
        if let RuleAction::Webhook { url } = &rule.action {
            self.egress.check_url(url).map_err(RuleError::Invalid)?;
        }
        Ok(self.store.create_rule(&rule).await?)
    }

    /// Removes a string rule; `false` if the community has none with that id. (Writing through
    /// [`store`](Self::store) works too: the next message sees the change either way.)
    pub async fn delete_rule(&self, community: CommunityId, id: i64) -> Result<bool, StoreError> {
        self.store.delete_rule(community, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn rule(pattern: &str, match_type: MatchType, case_sensitive: bool) -> StringRule {
        StringRule {
            id: 1,
            community_id: CommunityId(1),
            pattern: pattern.into(),
            match_type,
            case_sensitive,
            priority: 100,
            action: RuleAction::Warn { message: None },
            enabled: true,
            match_count: 0,
            last_matched: None,
            created_by: "mod".into(),
            created_at: SystemTime::now(),
        }
    }

    fn matches(pattern: &str, match_type: MatchType, case_sensitive: bool, text: &str) -> bool {
        RuleSet::compile(&[rule(pattern, match_type, case_sensitive)], 100)
            .first_match(text)
            .is_some()
    }

    #[test]
    fn each_match_type_compares_as_named() {
        assert!(matches("hello", MatchType::Exact, false, "  HELLO "));
        assert!(!matches("hello", MatchType::Exact, false, "hello there"));
        assert!(matches(
            "free",
            MatchType::Contains,
            false,
            "totally FREEbies"
        ));
        assert!(matches("hi", MatchType::Word, false, "oh HI there"));
        assert!(
            !matches("hi", MatchType::Word, false, "this is it"),
            "whole words only"
        );
        assert!(matches(
            r"\d{3}-\d{4}",
            MatchType::Regex,
            false,
            "call 555-1234"
        ));
        assert!(!matches("Hello", MatchType::Contains, true, "hello"));
        assert!(matches("*", MatchType::Exact, false, "anything at all"));
        assert!(
            matches("a.b", MatchType::Word, false, "see a.b now"),
            "word patterns are literal"
        );
        assert!(!matches("a.b", MatchType::Word, false, "see axb now"));
    }

    proptest::proptest! {
        #[test]
        fn combined_patterns_pick_the_same_rule_as_one_by_one(
            specs in proptest::collection::vec(
                (0usize..4, proptest::bool::ANY, "[a-cA-C .]{1,4}"),
                0..12,
            ),
            text in "[a-cA-C .!]{0,20}",
        ) {
            let types = [MatchType::Exact, MatchType::Contains, MatchType::Word, MatchType::Regex];
            let rules = specs
                .iter()
                .zip(1..)
                .map(|((kind, case_sensitive, pattern), id)| StringRule {
                    id,
                    ..rule(pattern, types[*kind], *case_sensitive)
                })
                .collect::<Vec<_>>();
            let set = RuleSet::compile(&rules, usize::MAX);
            let lowered = text.to_lowercase();
            let one_by_one = set
                .rules
                .iter()
                .find(|compiled| compiled.matches(&text, &lowered))
                .map(|compiled| compiled.rule.id);
            proptest::prop_assert_eq!(set.first_match(&text).map(|rule| rule.id), one_by_one);
        }
    }

    #[test]
    fn bad_rules_are_refused_with_the_reason() {
        let bad = CompiledRule::compile(rule("(unclosed", MatchType::Regex, false));
        assert!(matches!(bad, Err(RuleError::Invalid(m)) if m.contains("does not compile")));
        let mut webhook = rule("x", MatchType::Contains, false);
        webhook.action = RuleAction::Webhook {
            url: "ftp://host/x".into(),
        };
        assert!(CompiledRule::compile(webhook).is_err());
        let mut command = rule("x", MatchType::Contains, false);
        command.action = RuleAction::Command {
            command: "so {user}".into(),
        };
        assert!(CompiledRule::compile(command).is_err());
    }

    #[test]
    fn a_regex_that_compiles_too_large_is_refused_and_a_set_holds_only_the_first_rules() {
        // Short to type, megabytes to compile (Unicode word characters, repeated).
        let huge = CompiledRule::compile(rule(r"\w{500}\w{500}", MatchType::Regex, false));
        assert!(matches!(huge, Err(RuleError::Invalid(m)) if m.contains("does not compile")));
        let rules: Vec<StringRule> = (1..=5)
            .map(|id| StringRule {
                id,
                ..rule(&format!("spam{id}"), MatchType::Contains, false)
            })
            .collect();
        let set = RuleSet::compile(&rules, 3);
        assert_eq!(set.first_match("spam3").map(|r| r.id), Some(3));
        assert_eq!(set.first_match("spam4").map(|r| r.id), None, "past the cap");
    }
}
