//! Discord: HTTP interactions in (Ed25519-signed), REST out.
//!
//! Entities are keyed by guild id (`server_id`; a DM's channel id stands in for a guild) and
//! channel id. An interaction's event carries `interaction_token` and `application_id` metadata,
//! which the server uses to answer within Discord's 3 seconds or defer and follow up.

mod commands;
#[cfg(feature = "discord-gateway")]
mod gateway;

pub use commands::{CommandScope, CommandSync, application_commands};
#[cfg(feature = "discord-gateway")]
pub use gateway::{DEFAULT_INTENTS, DiscordGateway, GatewayConfig, GatewayStatus};

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::Value;

use super::{Headers, WebhookError};
use crate::event::{Event, EventKind, ModerationAction, Sender};
use crate::id::EventId;
use crate::permission::PermissionLevel;
use crate::platform::{
    Outbound, Pacing, Platform, PlatformError, PlatformKind, PlatformLimits, Quota,
};
use crate::reply::Reply;

/// Discord's message limit, in characters.
pub const MAX_MESSAGE_LEN: usize = 2000;
/// Where the REST API lives unless `DISCORD_API_URL` says otherwise.
pub const DEFAULT_API_URL: &str = "https://discord.com/api/v10";
/// Interactions older (or newer) than this are refused. Discord sets no window; five minutes
/// is ours, generous for clock skew and tight for replays.
pub const MAX_INTERACTION_AGE: Duration = Duration::from_secs(300);
/// The ephemeral message flag.
pub const EPHEMERAL: u64 = 1 << 6;

const SIGNATURE: &str = "X-Signature-Ed25519";
const TIMESTAMP: &str = "X-Signature-Timestamp";

/// Why a public key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DISCORD_PUBLIC_KEY must be 64 hex characters (the application's Ed25519 public key)")]
pub struct BadPublicKey;

/// Verifies interactions with the application's public key.
#[derive(Debug, Clone)]
pub struct DiscordVerifier {
    key: VerifyingKey,
}

impl DiscordVerifier {
    /// A verifier for the hex public key from the developer portal (`DISCORD_PUBLIC_KEY`).
    pub fn new(public_key_hex: &str) -> Result<Self, BadPublicKey> {
        let bytes: [u8; 32] = hex::decode(public_key_hex.trim())
            .map_err(|_| BadPublicKey)?
            .try_into()
            .map_err(|_| BadPublicKey)?;
        Ok(Self {
            key: VerifyingKey::from_bytes(&bytes).map_err(|_| BadPublicKey)?,
        })
    }

    /// Checks a request received now: the signature over timestamp ‖ body, then the window.
    pub fn verify(&self, headers: &impl Headers, body: &[u8]) -> Result<(), WebhookError> {
        self.verify_at(headers, body, SystemTime::now())
    }

    /// [`verify`](Self::verify) against a given clock.
    pub fn verify_at(
        &self,
        headers: &impl Headers,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), WebhookError> {
        let signature = headers
            .header(SIGNATURE)
            .ok_or(WebhookError::MissingHeader(SIGNATURE))?;
        let timestamp = headers
            .header(TIMESTAMP)
            .ok_or(WebhookError::MissingHeader(TIMESTAMP))?;
        let mut message = Vec::with_capacity(timestamp.len() + body.len());
        message.extend_from_slice(timestamp.as_bytes());
        message.extend_from_slice(body);
        verify_ed25519(&self.key, &message, signature)?;
        super::check_unix_window(timestamp, now, MAX_INTERACTION_AGE)
    }
}

/// Verifies a hex Ed25519 signature of `message` (strict verification: no malleable or
/// small-order forms).
pub fn verify_ed25519(
    key: &VerifyingKey,
    message: &[u8],
    signature_hex: &str,
) -> Result<(), WebhookError> {
    let bytes: [u8; 64] = super::decode_hex(signature_hex)?
        .try_into()
        .map_err(|_| WebhookError::BadSignature)?;
    key.verify_strict(message, &Signature::from_bytes(&bytes))
        .map_err(|_| WebhookError::BadSignature)
}

/// A verified interaction.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Interaction {
    /// Discord checks the endpoint: answer `{"type": 1}`.
    Ping,
    /// A slash command, component or modal submit, as an event.
    Event(Box<Event>),
    /// Autocomplete: answer with choices for what is typed so far.
    Autocomplete {
        /// The command being typed.
        command: String,
        /// The focused option's current text.
        typed: String,
    },
}

/// Parses a verified interaction body.
pub fn parse_interaction(body: &[u8]) -> Result<Interaction, WebhookError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|err| WebhookError::Malformed(err.to_string()))?;
    let kind = value
        .get("type")
        .and_then(Value::as_u64)
        .ok_or_else(|| WebhookError::Malformed("type is missing".into()))?;
    let data = value.get("data").cloned().unwrap_or(Value::Null);
    let str_at = |v: &Value, path: &str| v.pointer(path).and_then(Value::as_str).map(str::to_owned);
    let event_kind = match kind {
        1 => return Ok(Interaction::Ping),
        2 => EventKind::SlashCommand {
            name: str_at(&data, "/name").unwrap_or_default(),
        },
        3 => EventKind::ComponentInteraction {
            custom_id: str_at(&data, "/custom_id").unwrap_or_default(),
            values: data
                .get("values")
                .and_then(Value::as_array)
                .map(|values| {
                    values
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        },
        4 => {
            let typed = focused_option(&data).unwrap_or_default();
            return Ok(Interaction::Autocomplete {
                command: str_at(&data, "/name").unwrap_or_default(),
                typed,
            });
        }
        5 => EventKind::ComponentInteraction {
            custom_id: str_at(&data, "/custom_id").unwrap_or_default(),
            values: modal_values(&data),
        },
        other => {
            return Err(WebhookError::Malformed(format!(
                "unknown interaction type {other}"
            )));
        }
    };
    let id =
        str_at(&value, "/id").ok_or_else(|| WebhookError::Malformed("id is missing".into()))?;
    let token = str_at(&value, "/token")
        .ok_or_else(|| WebhookError::Malformed("token is missing".into()))?;
    let channel = str_at(&value, "/channel_id")
        .or_else(|| str_at(&value, "/channel/id"))
        .ok_or_else(|| WebhookError::Malformed("channel_id is missing".into()))?;
    let guild = str_at(&value, "/guild_id").unwrap_or_else(|| channel.clone());
    let user = value
        .pointer("/member/user")
        .or_else(|| value.get("user"))
        .ok_or_else(|| WebhookError::Malformed("the user is missing".into()))?;
    let mut sender = Sender::new(str_at(user, "/username").unwrap_or_default());
    sender.id = str_at(user, "/id").unwrap_or_default();
    sender.display_name = str_at(user, "/global_name")
        .or_else(|| str_at(&value, "/member/nick"))
        .filter(|name| *name != sender.name);
    sender.level = level_from_permissions(str_at(&value, "/member/permissions").as_deref());
    let text = match &event_kind {
        EventKind::SlashCommand { .. } => options_text(&data),
        _ => String::new(),
    };
    let mut event = Event::new(
        PlatformKind::Discord,
        guild,
        channel,
        sender,
        event_kind,
        text,
    );
    event.id = EventId(id);
    event
        .metadata
        .insert("interaction_token".to_owned(), Value::from(token));
    if let Some(application) = str_at(&value, "/application_id") {
        event
            .metadata
            .insert("application_id".to_owned(), Value::from(application));
    }
    Ok(Interaction::Event(Box::new(event)))
}

/// The command line the options spell: sub-command names, then each value in order.
fn options_text(data: &Value) -> String {
    fn walk(options: &Value, out: &mut Vec<String>) {
        for option in options.as_array().into_iter().flatten() {
            match option.get("value") {
                // `args` (from registered commands) is a command line already.
                Some(Value::String(text))
                    if option.get("name").and_then(Value::as_str) == Some("args") =>
                {
                    out.push(text.clone());
                }
                Some(Value::String(text)) => out.push(quote(text)),
                Some(other) => out.push(other.to_string()),
                None => {
                    // A sub-command (group): its name, then its own options.
                    if let Some(name) = option.get("name").and_then(Value::as_str) {
                        out.push(name.to_owned());
                    }
                    if let Some(nested) = option.get("options") {
                        walk(nested, out);
                    }
                }
            }
        }
    }
    let mut parts = Vec::new();
    if let Some(options) = data.get("options") {
        walk(options, &mut parts);
    }
    parts.join(" ")
}

/// A string option with spaces stays one argument.
fn quote(text: &str) -> String {
    if text.contains(char::is_whitespace) && !text.contains('"') {
        format!("\"{text}\"")
    } else {
        text.to_owned()
    }
}

fn focused_option(data: &Value) -> Option<String> {
    fn find(options: &Value) -> Option<String> {
        options.as_array()?.iter().find_map(|option| {
            if option.get("focused").and_then(Value::as_bool) == Some(true) {
                return option
                    .get("value")
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
            }
            find(option.get("options")?)
        })
    }
    find(data.get("options")?)
}

fn modal_values(data: &Value) -> Vec<String> {
    let mut values = Vec::new();
    for row in data
        .get("components")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for component in row
            .get("components")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(value) = component.get("value").and_then(Value::as_str) {
                values.push(value.to_owned());
            }
        }
    }
    values
}

/// The level a member's guild permissions give: administrators and server managers are
/// broadcasters, members who can moderate (timeout, kick, ban, manage messages) moderators.
pub fn level_from_permissions(permissions: Option<&str>) -> PermissionLevel {
    let bits: u64 = permissions.and_then(|p| p.parse().ok()).unwrap_or(0);
    const ADMINISTRATOR: u64 = 1 << 3;
    const MANAGE_GUILD: u64 = 1 << 5;
    const KICK_MEMBERS: u64 = 1 << 1;
    const BAN_MEMBERS: u64 = 1 << 2;
    const MANAGE_MESSAGES: u64 = 1 << 13;
    const MODERATE_MEMBERS: u64 = 1 << 40;
    if bits & (ADMINISTRATOR | MANAGE_GUILD) != 0 {
        PermissionLevel::Broadcaster
    } else if bits & (KICK_MEMBERS | BAN_MEMBERS | MANAGE_MESSAGES | MODERATE_MEMBERS) != 0 {
        PermissionLevel::Moderator
    } else {
        PermissionLevel::Everyone
    }
}

/// The immediate answer to an interaction whose replies are ready: type 4 with the text
/// replies in one message (ephemeral when every reply is meant for the user alone).
pub fn interaction_response(replies: &[Reply]) -> Value {
    let (content, ephemeral) = message_parts(replies);
    let mut data = serde_json::json!({ "content": content });
    if ephemeral {
        data["flags"] = Value::from(EPHEMERAL);
    }
    serde_json::json!({ "type": 4, "data": data })
}

/// The text of replies for one message, and whether it is for the user alone.
pub fn message_parts(replies: &[Reply]) -> (String, bool) {
    let texts: Vec<String> = replies.iter().filter_map(super::reply_text).collect();
    let ephemeral = !replies.is_empty()
        && replies
            .iter()
            .all(|reply| matches!(reply, Reply::Ephemeral { .. } | Reply::Whisper { .. }));
    let mut content = texts.join("\n");
    if content.chars().count() > MAX_MESSAGE_LEN {
        content = content
            .chars()
            .take(MAX_MESSAGE_LEN - 1)
            .collect::<String>()
            + "…";
    }
    if content.is_empty() {
        content = "Done.".to_owned();
    }
    (content, ephemeral)
}

/// How the Discord adapter reaches the REST API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscordConfig {
    /// The bot token (`DISCORD_BOT_TOKEN`).
    pub bot_token: String,
    /// The application id (`DISCORD_APPLICATION_ID`).
    pub application_id: String,
    /// The REST base URL (`DISCORD_API_URL`), default [`DEFAULT_API_URL`].
    pub api_url: String,
}

/// Discord as a [`Platform`]: messages (split at 2000 characters, as replies to the message
/// that asked), DMs, deletes, timeouts, kicks and bans, and interaction follow-ups.
#[derive(Debug)]
pub struct DiscordPlatform {
    config: DiscordConfig,
    http: reqwest::Client,
    /// Routes whose rate-limit bucket is empty, and when it refills (learnt from the
    /// `X-RateLimit-Remaining` and `X-RateLimit-Reset-After` headers).
    exhausted: std::sync::Mutex<HashMap<String, tokio::time::Instant>>,
}

/// Requests per second across every route (Discord's global limit for a bot).
pub const GLOBAL_QUOTA: Quota = Quota::new(50, Duration::from_secs(1));

impl DiscordPlatform {
    /// The adapter.
    pub fn new(config: DiscordConfig, http: reqwest::Client) -> Self {
        Self {
            config: DiscordConfig {
                api_url: config.api_url.trim_end_matches('/').to_owned(),
                ..config
            },
            http,
            exhausted: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Sends a request on `route` (its rate-limit bucket: the path with its major parameter,
    /// `messages:<channel>`): waits first if that bucket was left empty, and learns from the
    /// answer's headers when it will be empty next.
    async fn call(
        &self,
        route: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Value, PlatformError> {
        let refill = self
            .exhausted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(route)
            .copied();
        if let Some(at) = refill.filter(|at| *at > tokio::time::Instant::now()) {
            tracing::debug!(
                route,
                "Discord rate-limit bucket empty; waiting for it to refill"
            );
            tokio::time::sleep_until(at).await;
        }
        super::send_json_observed(request, |headers| self.learn(route, headers)).await
    }

    fn learn(&self, route: &str, headers: &reqwest::header::HeaderMap) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        let now = tokio::time::Instant::now();
        let mut exhausted = self.exhausted.lock().unwrap_or_else(|p| p.into_inner());
        exhausted.retain(|_, at| *at > now);
        match (
            number("x-ratelimit-remaining"),
            number("x-ratelimit-reset-after"),
        ) {
            (Some(remaining), Some(after)) if remaining < 1.0 => {
                let after = Duration::from_secs_f64(after.clamp(0.0, 3600.0));
                exhausted.insert(route.to_owned(), now + after);
            }
            _ => {
                exhausted.remove(route);
            }
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.config.api_url))
            .header("Authorization", format!("Bot {}", self.config.bot_token))
            .header(
                "User-Agent",
                concat!(
                    "DiscordBot (https://example.invalid/waddlebot, ",
                    env!("CARGO_PKG_VERSION"),
                    ")"
                ),
            )
    }

    async fn create_message(
        &self,
        channel: &str,
        reply_to: Option<&EventId>,
        text: &str,
    ) -> Result<(), PlatformError> {
        for part in super::split_message(text, MAX_MESSAGE_LEN) {
            let mut body = serde_json::json!({ "content": part });
            if let Some(id) = reply_to {
                body["message_reference"] =
                    serde_json::json!({ "message_id": id.0, "fail_if_not_exists": false });
            }
            self.call(
                &format!("messages:{channel}"),
                self.request(
                    reqwest::Method::POST,
                    &format!("/channels/{channel}/messages"),
                )
                .json(&body),
            )
            .await?;
        }
        Ok(())
    }

    async fn dm(&self, user: &str, text: &str) -> Result<(), PlatformError> {
        let channel = self
            .call(
                "dm",
                self.request(reqwest::Method::POST, "/users/@me/channels")
                    .json(&serde_json::json!({ "recipient_id": user })),
            )
            .await?;
        let channel = channel
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| PlatformError::Rejected("Discord opened no DM channel".to_owned()))?;
        self.create_message(channel, None, text).await
    }

    /// Edits the deferred answer of an interaction (`PATCH …/messages/@original`), valid for
    /// 15 minutes after the interaction.
    pub async fn follow_up(
        &self,
        interaction_token: &str,
        replies: &[Reply],
    ) -> Result<(), PlatformError> {
        let (content, _) = message_parts(replies);
        super::send_json(
            self.request(
                reqwest::Method::PATCH,
                &format!(
                    "/webhooks/{}/{interaction_token}/messages/@original",
                    self.config.application_id
                ),
            )
            .json(&serde_json::json!({ "content": content })),
        )
        .await
        .map(|_| ())
    }

    async fn moderate(
        &self,
        outbound: &Outbound,
        action: &ModerationAction,
    ) -> Result<(), PlatformError> {
        let guild = &outbound.server_id;
        let (route, request) = match action {
            ModerationAction::Timeout {
                user_id, seconds, ..
            } => {
                let until = SystemTime::now() + Duration::from_secs((*seconds).min(28 * 24 * 3600));
                let until = time::OffsetDateTime::from(until)
                    .format(&time::format_description::well_known::Rfc3339)
                    .map_err(|err| PlatformError::Rejected(err.to_string()))?;
                (
                    format!("member-edit:{guild}"),
                    self.request(
                        reqwest::Method::PATCH,
                        &format!("/guilds/{guild}/members/{user_id}"),
                    )
                    .json(&serde_json::json!({ "communication_disabled_until": until })),
                )
            }
            ModerationAction::Kick { user_id, .. } => (
                format!("member-kick:{guild}"),
                self.request(
                    reqwest::Method::DELETE,
                    &format!("/guilds/{guild}/members/{user_id}"),
                ),
            ),
            ModerationAction::Ban { user_id, .. } => (
                format!("ban:{guild}"),
                self.request(
                    reqwest::Method::PUT,
                    &format!("/guilds/{guild}/bans/{user_id}"),
                )
                .json(&serde_json::json!({})),
            ),
            ModerationAction::DeleteMessage { message_id } => (
                format!("message-delete:{}", outbound.channel_id),
                self.request(
                    reqwest::Method::DELETE,
                    &format!("/channels/{}/messages/{message_id}", outbound.channel_id),
                ),
            ),
            ModerationAction::AddRole {
                user_id, role_id, ..
            }
            | ModerationAction::RemoveRole {
                user_id, role_id, ..
            } => {
                let method = if matches!(action, ModerationAction::AddRole { .. }) {
                    reqwest::Method::PUT
                } else {
                    reqwest::Method::DELETE
                };
                (
                    format!("member-role:{guild}"),
                    self.request(
                        method,
                        &format!("/guilds/{guild}/members/{user_id}/roles/{role_id}"),
                    ),
                )
            }
            ModerationAction::Warn { user_id, reason } => {
                let text = format!(
                    "You have been warned{}",
                    reason
                        .as_deref()
                        .map_or_else(String::new, |r| format!(": {r}"))
                );
                return self.dm(user_id, &text).await;
            }
        };
        let request = match action {
            ModerationAction::Timeout {
                reason: Some(reason),
                ..
            }
            | ModerationAction::Kick {
                reason: Some(reason),
                ..
            }
            | ModerationAction::Ban {
                reason: Some(reason),
                ..
            }
            | ModerationAction::AddRole {
                reason: Some(reason),
                ..
            }
            | ModerationAction::RemoveRole {
                reason: Some(reason),
                ..
            } => request.header("X-Audit-Log-Reason", reason.as_str()),
            _ => request,
        };
        self.call(&route, request).await.map(|_| ())
    }
}

#[async_trait]
impl Platform for DiscordPlatform {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Discord
    }

    fn limits(&self) -> PlatformLimits {
        PlatformLimits {
            max_message_len: MAX_MESSAGE_LEN,
            whispers: true,
            ephemeral: true,
            edits: true,
            embeds: true,
            answer_window: Some(Duration::from_secs(3)),
        }
    }

    async fn pacing(&self, outbound: &Outbound) -> Pacing {
        let lane = match &outbound.reply {
            Reply::Moderate(_) => format!("moderation:{}", outbound.server_id),
            Reply::Whisper { .. } | Reply::Ephemeral { .. } => format!("dm:{}", outbound.user_id),
            _ => format!("channel:{}", outbound.channel_id),
        };
        // Per-route limits are not published: they are learnt from each answer's headers.
        Pacing {
            global_quota: Some(GLOBAL_QUOTA),
            ..Pacing::unpaced(lane)
        }
    }

    async fn send(&self, outbound: Outbound) -> Result<(), PlatformError> {
        // A reference to something that is not a message (an interaction id) is dropped by
        // Discord (`fail_if_not_exists: false`), so every reply may carry one.
        let reply_to = outbound.in_reply_to.as_ref();
        match &outbound.reply {
            Reply::Text { text } => {
                self.create_message(&outbound.channel_id, reply_to, text)
                    .await
            }
            Reply::Embed(embed) => {
                let body = serde_json::json!({ "embeds": [{
                    "title": embed.title,
                    "description": embed.description,
                    "color": embed.color,
                    "fields": embed.fields.iter().map(|f| serde_json::json!({
                        "name": f.name, "value": f.value, "inline": f.inline
                    })).collect::<Vec<_>>(),
                }]});
                self.call(
                    &format!("messages:{}", outbound.channel_id),
                    self.request(
                        reqwest::Method::POST,
                        &format!("/channels/{}/messages", outbound.channel_id),
                    )
                    .json(&body),
                )
                .await
                .map(|_| ())
            }
            // Outside an interaction an ephemeral message cannot be made: a DM is as private.
            Reply::Whisper { text } | Reply::Ephemeral { text } => {
                self.dm(&outbound.user_id, text).await
            }
            Reply::Moderate(action) => self.moderate(&outbound, action).await,
            other => Err(PlatformError::Unsupported(format!(
                "Discord cannot show {other:?}"
            ))),
        }
    }
}
