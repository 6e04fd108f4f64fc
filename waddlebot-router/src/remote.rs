//! Remote modules: `#commands` and event handlers that run on someone else's server, through
//! the original system's marketplace webhook contract (reference §3.12).
//!
//! The request is a JSON body signed with the module's secret
//! (`X-WaddleBot-Signature: sha256=<hex HMAC-SHA256 of the exact body>`). The module answers
//! `{"success": true, "response_type": "text", "message": "…", "overlay_data": {…}?}` or
//! `{"success": false, "error": "…"}`. A 429, a 5xx, a refused connection or a timeout is
//! retried with backoff while the module's deadline (default 5 s, at most 30 s) allows; the
//! user always gets a clear reply within it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::cache::CommunityView;
use crate::meters::CommandOutcome;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use waddlebot::store::{RemoteKind, RemoteModule};
use waddlebot::{CommunityId, Event, OverlayReply, Reply, SessionId};

/// The deadline when a module does not set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest deadline a module may set.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// Calls per invocation at most (the first and two retries).
pub const MAX_ATTEMPTS: u32 = 3;
/// Consecutive failures after which a module is reported unhealthy.
pub const UNHEALTHY_AFTER: u32 = 3;

type HmacSha256 = Hmac<Sha256>;

/// `sha256=<hex>` of the body under the secret: the `X-WaddleBot-Signature` header value.
///
/// ```
/// let signature = waddlebot_router::remote::sign("secret", b"{}");
/// assert!(signature.starts_with("sha256="));
/// assert_eq!(signature.len(), 7 + 64);
/// assert_eq!(signature, waddlebot_router::remote::sign("secret", b"{}"), "deterministic");
/// ```
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why a remote module registration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// The registration cannot work as written.
    #[error("invalid remote module: {0}")]
    Invalid(String),
    /// The community already has a module of that name.
    #[error("remote module '{0}' already exists")]
    Exists(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] waddlebot::StoreError),
}

/// Checks a registration: names, URL, deadline, secret, OpenWhisk auth.
pub fn validate(module: &RemoteModule) -> Result<(), RemoteError> {
    let invalid = |m: &str| Err(RemoteError::Invalid(m.to_owned()));
    let good_name = |name: &str| {
        !name.is_empty()
            && name.chars().count() <= 32
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    };
    if !good_name(&module.name) {
        return invalid("the name must be 1 to 32 letters, digits, '-' or '_'");
    }
    if module.commands.is_empty() && module.events.is_empty() {
        return invalid("a remote module needs at least one command or event kind");
    }
    if let Some(bad) = module.commands.iter().find(|c| !good_name(c)) {
        return Err(RemoteError::Invalid(format!(
            "'{bad}' is not a valid command name"
        )));
    }
    let url = reqwest::Url::parse(&module.url)
        .map_err(|err| RemoteError::Invalid(format!("bad URL: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return invalid("the URL must be http(s) with a host");
    }
    if module.timeout_ms == 0 || Duration::from_millis(module.timeout_ms) > MAX_TIMEOUT {
        return invalid("the timeout must be more than 0 and at most 30000 ms");
    }
    if module.secret.len() < 16 {
        return invalid("the signing secret must be at least 16 characters");
    }
    if let RemoteKind::OpenWhisk {
        auth,
        namespace,
        action,
    } = &module.kind
    {
        if !auth.contains(':') {
            return invalid("OpenWhisk auth must be 'user:password'");
        }
        if namespace.is_empty() || action.is_empty() {
            return invalid("OpenWhisk needs a namespace and an action");
        }
    }
    Ok(())
}

/// What triggered a call.
pub(crate) enum Trigger<'a> {
    Command { name: &'a str, args: &'a str },
    Event,
}

/// The request body of the contract.
pub(crate) fn payload(
    community: CommunityId,
    community_name: &str,
    trigger: Trigger<'_>,
    event: &Event,
    entity_id: waddlebot::EntityId,
    session: &SessionId,
    prefix: &str,
) -> serde_json::Value {
    let trigger = match trigger {
        Trigger::Command { name, args } => serde_json::json!({
            "type": "command",
            "command": format!("{prefix}{name}"),
            "context_text": args,
            "event_type": null,
            "event_data": null,
        }),
        Trigger::Event => serde_json::json!({
            "type": "event",
            "command": null,
            "context_text": null,
            "event_type": format!("{}.{}", event.platform, event.kind.name()),
            "event_data": event.kind,
        }),
    };
    serde_json::json!({
        "community": {
            "id": community.0,
            "name": community_name,
            "is_subscribed": true,
            "subscription_order_id": null,
            "seat_count": 0,
        },
        "trigger": trigger,
        "user": {
            "id": event.user.id,
            "username": event.user.name,
            "platform": event.platform.as_str(),
            "platform_user_id": event.user.id,
        },
        "entity": {
            "id": entity_id.0,
            "platform": event.platform.as_str(),
            "platform_entity_id": format!("{}:{}", event.server_id, event.channel_id),
        },
        "request_id": session.0,
        "timestamp": iso_now(),
    })
}

fn iso_now() -> String {
    time::OffsetDateTime::from(SystemTime::now())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The module's answer.
#[derive(Debug, Deserialize)]
struct Answer {
    success: bool,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    overlay_data: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<String>,
}

/// Why a call gave no answer the user can see; each has its own reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallFailure {
    TimedOut,
    Unavailable(String),
    Garbled(String),
    Refused(String),
}

impl CallFailure {
    pub(crate) fn text(&self, shown: &str) -> String {
        match self {
            Self::TimedOut => format!("{shown} did not answer in time. Try again later."),
            Self::Unavailable(_) | Self::Garbled(_) => {
                format!("{shown} is not available right now. Try again later.")
            }
            Self::Refused(message) => format!("{shown}: {message}"),
        }
    }
}

/// A module's recent record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Health {
    /// Calls made.
    pub requests: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Failures since the last success.
    pub consecutive_failures: u32,
}

impl Health {
    /// Healthy until [`UNHEALTHY_AFTER`] failures in a row; one success heals.
    pub fn healthy(&self) -> bool {
        self.consecutive_failures < UNHEALTHY_AFTER
    }
}

/// Calls remote modules and keeps their health.
pub(crate) struct RemoteCaller {
    http: reqwest::Client,
    /// Whether modules may live at private addresses ([`crate::egress`]).
    egress: crate::egress::Egress,
    health: Mutex<HashMap<(CommunityId, String), Health>>,
}

impl RemoteCaller {
    pub(crate) fn new(http: reqwest::Client, egress: crate::egress::Egress) -> Self {
        Self {
            http,
            egress,
            health: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn health(&self, community: CommunityId, name: &str) -> Option<Health> {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(community, name.to_owned()))
            .copied()
    }

    fn record(&self, module: &RemoteModule, ok: bool) {
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        let entry = health
            .entry((module.community_id, module.name.clone()))
            .or_default();
        entry.requests += 1;
        if ok {
            entry.consecutive_failures = 0;
        } else {
            entry.failures += 1;
            entry.consecutive_failures += 1;
            if entry.consecutive_failures == UNHEALTHY_AFTER {
                tracing::warn!(module = module.name, "remote module is now unhealthy");
            }
        }
    }

    /// Calls the module and turns its answer into replies.
    pub(crate) async fn call(
        &self,
        module: &RemoteModule,
        body: &serde_json::Value,
    ) -> Result<Vec<Reply>, CallFailure> {
        let result = self.call_with_retries(module, body).await;
        self.record(module, result.is_ok());
        let label = match &result {
            Ok(_) => "ok",
            Err(CallFailure::TimedOut) => "timeout",
            Err(CallFailure::Unavailable(_)) => "unavailable",
            Err(CallFailure::Garbled(_)) => "garbled",
            Err(CallFailure::Refused(_)) => "refused",
        };
        metrics::counter!(crate::metrics_names::REMOTE_CALLS, "result" => label).increment(1);
        if let Err(failure) = &result {
            tracing::warn!(module = module.name, ?failure, "remote module call failed");
        }
        result
    }

    async fn call_with_retries(
        &self,
        module: &RemoteModule,
        body: &serde_json::Value,
    ) -> Result<Vec<Reply>, CallFailure> {
        let bytes = serde_json::to_vec(body).map_err(|e| CallFailure::Garbled(e.to_string()))?;
        let signature = sign(&module.secret, &bytes);
        let (url, auth) = match &module.kind {
            RemoteKind::Webhook => (module.url.clone(), None),
            RemoteKind::OpenWhisk {
                namespace,
                action,
                auth,
            } => (
                format!(
                    "{}/api/v1/namespaces/{namespace}/actions/{action}?blocking=true&result=true",
                    module.url.trim_end_matches('/')
                ),
                auth.split_once(':'),
            ),
        };
        // Saved before the rule existed, or changed in the store directly: checked again here.
        self.egress
            .check_url(&url)
            .map_err(CallFailure::Unavailable)?;
        let deadline = Instant::now() + Duration::from_millis(module.timeout_ms).min(MAX_TIMEOUT);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(CallFailure::TimedOut);
            }
            let mut request = self
                .http
                .post(&url)
                .header("Content-Type", "application/json")
                .header("X-WaddleBot-Signature", &signature)
                .header(
                    "User-Agent",
                    concat!("WaddleBot-WebhookAdapter/", env!("CARGO_PKG_VERSION")),
                )
                .body(bytes.clone());
            if let Some((user, password)) = auth {
                request = request.basic_auth(user, Some(password));
            }
            let outcome = tokio::time::timeout(remaining, async {
                let response = request.send().await?;
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let text = response.text().await?;
                Ok::<_, reqwest::Error>((status, retry_after, text))
            })
            .await;
            let (retryable, failure, retry_after) = match outcome {
                Err(_elapsed) => return Err(CallFailure::TimedOut),
                Ok(Err(err)) => (true, CallFailure::Unavailable(err.to_string()), None),
                Ok(Ok((status, _, text))) if status.is_success() => return parse_answer(&text),
                Ok(Ok((status, retry_after, text))) => {
                    let failure = CallFailure::Unavailable(format!(
                        "HTTP {}: {}",
                        status.as_u16(),
                        text.chars().take(200).collect::<String>()
                    ));
                    let retryable = status.as_u16() == 429 || status.is_server_error();
                    (retryable, failure, retry_after)
                }
            };
            if !retryable || attempt >= MAX_ATTEMPTS {
                return Err(failure);
            }
            let backoff = retry_after.unwrap_or(Duration::from_millis(100 << (attempt - 1)));
            if Instant::now() + backoff >= deadline {
                return Err(failure);
            }
            tokio::time::sleep(backoff).await;
        }
    }
}

fn parse_answer(text: &str) -> Result<Vec<Reply>, CallFailure> {
    let answer: Answer = serde_json::from_str(text)
        .map_err(|err| CallFailure::Garbled(format!("not the module contract: {err}")))?;
    if !answer.success {
        return Err(CallFailure::Refused(
            answer.error.unwrap_or_else(|| "Unknown error".to_owned()),
        ));
    }
    let mut replies = Vec::new();
    if let Some(message) = answer.message.filter(|m| !m.trim().is_empty()) {
        replies.push(Reply::text(message));
    }
    if let Some(overlay) = answer.overlay_data.as_ref().and_then(overlay_reply) {
        replies.push(Reply::Overlay(overlay));
    }
    Ok(replies)
}

/// `overlay_data` in the original's `response_action` shapes: ticker, media or general.
fn overlay_reply(data: &serde_json::Value) -> Option<OverlayReply> {
    let secs = |key: &str, default: u32| {
        data.get(key)
            .and_then(serde_json::Value::as_u64)
            .map_or(default, |v| u32::try_from(v).unwrap_or(default))
    };
    let text = |key: &str| data.get(key).and_then(serde_json::Value::as_str);
    if let Some(ticker) = text("ticker_text") {
        return Some(OverlayReply::Ticker {
            text: ticker.to_owned(),
            duration_secs: secs("ticker_duration", 10),
        });
    }
    if let Some(url) = text("media_url") {
        return Some(OverlayReply::Media {
            media_type: text("media_type").unwrap_or("image").to_owned(),
            url: url.to_owned(),
            duration_secs: secs("duration", 30),
        });
    }
    text("content").map(|content| OverlayReply::General {
        content: content.to_owned(),
        duration_secs: secs("duration", 10),
    })
}

impl crate::Router {
    /// Registers a remote module for its community after checking it; its commands answer to
    /// the remote prefix (`#weather`) from the next message on.
    pub async fn register_remote_module(&self, module: RemoteModule) -> Result<(), RemoteError> {
        validate(&module)?;
        self.egress
            .check_url(&module.url)
            .map_err(RemoteError::Invalid)?;
        let community = module.community_id;
        let existing = self.remote_modules_of(community).await?;
        if let Some(clash) = existing.iter().find(|other| {
            other.name != module.name && other.commands.iter().any(|c| module.commands.contains(c))
        }) {
            return Err(RemoteError::Invalid(format!(
                "remote module '{}' already answers one of these commands",
                clash.name
            )));
        }
        match self.store().create_remote_module(&module).await {
            Ok(()) => Ok(()),
            Err(waddlebot::StoreError::Conflict(_)) => Err(RemoteError::Exists(module.name)),
            Err(err) => Err(err.into()),
        }
    }

    /// Removes a remote module; `false` if the community has none of that name.
    pub async fn delete_remote_module(
        &self,
        community: CommunityId,
        name: &str,
    ) -> Result<bool, waddlebot::StoreError> {
        self.store().delete_remote_module(community, name).await
    }

    /// A remote module's calls and failures so far in this process.
    pub fn remote_module_health(&self, community: CommunityId, name: &str) -> Option<Health> {
        self.remote.health(community, name)
    }

    pub(crate) async fn remote_modules_of(
        &self,
        community: CommunityId,
    ) -> Result<std::sync::Arc<Vec<RemoteModule>>, waddlebot::StoreError> {
        Ok(std::sync::Arc::clone(
            self.cached.view(community).await?.remote_modules(),
        ))
    }

    /// `#command`: find the remote module answering it, check the policy, call it.
    pub(crate) async fn run_remote_command(
        &self,
        event: std::sync::Arc<Event>,
        entity: &waddlebot::store::Entity,
        view: &CommunityView,
        invocation: crate::Invocation,
        session: &SessionId,
    ) -> Result<Vec<Reply>, crate::RouterError> {
        let community = entity.community_id;
        let shown = format!("{}{}", invocation.prefix, invocation.name);
        let modules = view.remote_modules();
        let Some(module) = modules
            .iter()
            .find(|m| m.enabled && m.commands.contains(&invocation.name))
        else {
            self.meters.command(CommandOutcome::Unknown);
            return Ok(vec![Reply::text(format!(
                "Unknown command: {shown}. No community module answers it."
            ))]);
        };
        let rules = crate::policy::CommandRules {
            name: &invocation.name,
            module: &module.name,
            min_level: waddlebot::PermissionLevel::Everyone,
            user_cooldown: Duration::ZERO,
            global_cooldown: Duration::ZERO,
            bucket: None,
        };
        if let Some(refusal) = self.policy().check(view, community, &event, rules).await {
            return Ok(vec![self.refuse(&refusal, &shown)]);
        }
        let body = payload(
            community,
            view.name(),
            Trigger::Command {
                name: &invocation.name,
                args: invocation.args.raw(),
            },
            &event,
            entity.id,
            session,
            &invocation.prefix,
        );
        Ok(match self.remote.call(module, &body).await {
            Ok(replies) => {
                self.meters.command(CommandOutcome::Ok);
                replies
            }
            Err(failure) => {
                self.meters.command(match failure {
                    CallFailure::Refused(_) => CommandOutcome::UserError,
                    _ => CommandOutcome::Failed,
                });
                vec![Reply::text(failure.text(&shown))]
            }
        })
    }

    /// The community's remote modules subscribed to this event, called together.
    pub(crate) async fn remote_event_replies(
        &self,
        event: &Event,
        entity: &waddlebot::store::Entity,
        view: &CommunityView,
        session: &SessionId,
    ) -> Result<Vec<(String, Result<Vec<Reply>, CallFailure>)>, waddlebot::StoreError> {
        let community = entity.community_id;
        let modules = view.remote_modules();
        let kind = event.kind.name();
        let mut subscribed = Vec::new();
        for module in modules
            .iter()
            .filter(|m| m.enabled && m.events.iter().any(|k| k == kind || k == "*"))
        {
            if self.policy().module_enabled(view, &module.name) {
                subscribed.push(module);
            }
        }
        if subscribed.is_empty() {
            return Ok(Vec::new());
        }
        let body = payload(
            community,
            view.name(),
            Trigger::Event,
            event,
            entity.id,
            session,
            "",
        );
        let calls = subscribed
            .iter()
            .map(|module| async { (module.name.clone(), self.remote.call(module, &body).await) });
        Ok(futures_util::future::join_all(calls).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_become_replies_or_say_what_is_wrong() {
        assert_eq!(
            parse_answer(r#"{"success":true,"response_type":"text","message":"Sunny, 21°C"}"#),
            Ok(vec![Reply::text("Sunny, 21°C")])
        );
        assert_eq!(
            parse_answer(r#"{"success":false,"error":"city not found"}"#),
            Err(CallFailure::Refused("city not found".into()))
        );
        assert_eq!(
            parse_answer(r#"{"success":false}"#),
            Err(CallFailure::Refused("Unknown error".into()))
        );
        assert!(matches!(
            parse_answer("<html>"),
            Err(CallFailure::Garbled(_))
        ));
        let overlay =
            parse_answer(r#"{"success":true,"overlay_data":{"ticker_text":"hi"}}"#).expect("valid");
        assert_eq!(
            overlay,
            [Reply::Overlay(OverlayReply::Ticker {
                text: "hi".into(),
                duration_secs: 10
            })]
        );
    }

    #[test]
    fn health_turns_after_three_failures_and_heals_on_success() {
        let mut health = Health::default();
        for _ in 0..2 {
            health.consecutive_failures += 1;
        }
        assert!(health.healthy());
        health.consecutive_failures += 1;
        assert!(!health.healthy());
    }
}
