//! Slack: the Events API, slash commands and interactivity in, the Web API out.
//!
//! Entities are keyed by team id (`server_id`) and channel id. A message in a thread gets the
//! id `thread:<thread_ts>`, so replies to it go into that thread; other messages are answered
//! in the channel.
//!
//! ```
//! use std::collections::HashMap;
//! use waddlebot::platforms::slack::SlackVerifier;
//!
//! // Slack's worked example.
//! let verifier = SlackVerifier::new("8f742231b10e8888abcd99yyyzzz85a5");
//! let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
//! let headers: HashMap<String, String> = [
//!     ("X-Slack-Request-Timestamp", "1531420618"),
//!     ("X-Slack-Signature", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"),
//! ].into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
//! let sent = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_531_420_618);
//! assert!(verifier.verify_at(&headers, body.as_bytes(), sent).is_ok());
//! ```

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use super::{Headers, SeenIds, WebhookError, verify_hmac_sha256};
use crate::event::{Event, EventKind, ModerationAction, Sender};
use crate::id::EventId;
use crate::platform::{
    Outbound, Pacing, Platform, PlatformError, PlatformKind, PlatformLimits, Quota,
};
use crate::reply::Reply;

/// Requests older (or newer) than this are refused, as Slack's Bolt does.
pub const MAX_REQUEST_AGE: Duration = Duration::from_secs(300);
/// `chat.postMessage`: about one message per second per channel, short bursts tolerated.
pub const CHANNEL_QUOTA: Quota = Quota::new(1, Duration::from_secs(1));
/// Slack's practical message limit (it truncates beyond 40,000; 4,000 reads well).
pub const MAX_MESSAGE_LEN: usize = 4000;
/// Where the Web API lives unless `SLACK_API_URL` says otherwise.
pub const DEFAULT_API_URL: &str = "https://slack.com/api";

const TIMESTAMP: &str = "X-Slack-Request-Timestamp";
const SIGNATURE: &str = "X-Slack-Signature";
const THREAD_PREFIX: &str = "thread:";

/// Verifies requests signed with the app's signing secret (`v0`), for all three endpoints.
#[derive(Debug)]
pub struct SlackVerifier {
    secret: String,
    seen: SeenIds,
}

impl SlackVerifier {
    /// A verifier for the app's signing secret (`SLACK_SIGNING_SECRET`).
    pub fn new(secret: impl Into<String>) -> Self {
        Self {
            secret: secret.into(),
            // Slack retries for up to about an hour and a half: remember event ids that long.
            seen: SeenIds::new(Duration::from_secs(2 * 3600), 100_000),
        }
    }

    /// Checks a request received now: signature, then the 5-minute window.
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
        let timestamp = headers
            .header(TIMESTAMP)
            .ok_or(WebhookError::MissingHeader(TIMESTAMP))?;
        let signature = headers
            .header(SIGNATURE)
            .ok_or(WebhookError::MissingHeader(SIGNATURE))?;
        verify_hmac_sha256(
            self.secret.as_bytes(),
            &[b"v0:", timestamp.as_bytes(), b":", body],
            signature,
            "v0=",
        )?;
        super::check_unix_window(timestamp, now, MAX_REQUEST_AGE)
    }

    /// Verifies and parses an Events API request.
    pub fn events(&self, headers: &impl Headers, body: &[u8]) -> Result<SlackEvents, WebhookError> {
        self.verify(headers, body)?;
        self.parse_events(body)
    }

    /// Parses a verified Events API body, refusing an `event_id` seen before (Slack's retries).
    pub fn parse_events(&self, body: &[u8]) -> Result<SlackEvents, WebhookError> {
        let envelope: Value =
            serde_json::from_slice(body).map_err(|err| WebhookError::Malformed(err.to_string()))?;
        match envelope.get("type").and_then(Value::as_str) {
            Some("url_verification") => Ok(SlackEvents::UrlVerification {
                challenge: str_field(&envelope, "challenge")?.to_owned(),
            }),
            Some("event_callback") => {
                let event_id = str_field(&envelope, "event_id")?;
                let team = str_field(&envelope, "team_id")?;
                let inner = envelope.get("event").ok_or_else(|| {
                    WebhookError::Malformed("event_callback without event".into())
                })?;
                let events = event_from_callback(team, inner)
                    .map_err(WebhookError::Malformed)?
                    .into_iter()
                    .collect();
                if !self.seen.first_time(event_id) {
                    return Err(WebhookError::Replayed(event_id.to_owned()));
                }
                Ok(SlackEvents::Callback { events })
            }
            other => Err(WebhookError::Malformed(format!(
                "unknown request type {other:?}"
            ))),
        }
    }
}

fn str_field<'a>(value: &'a Value, field: &str) -> Result<&'a str, WebhookError> {
    value
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| WebhookError::Malformed(format!("{field} is missing")))
}

/// A verified Events API request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SlackEvents {
    /// Slack checks the URL: answer 200 with `challenge`.
    UrlVerification {
        /// The text to echo.
        challenge: String,
    },
    /// An event; empty when it is one WaddleBot ignores (bot messages, edits, other types).
    Callback {
        /// What it became.
        events: Vec<Event>,
    },
}

fn sender(user: &str) -> Sender {
    Sender::new(user)
}

/// Turns one `event_callback` inner event into a WaddleBot event, or `None` when it is ignored:
/// bot messages and message subtypes (edits, joins, bot_message...) never become events.
pub fn event_from_callback(team: &str, event: &Value) -> Result<Option<Event>, String> {
    let text_field = |field: &str| event.get(field).and_then(Value::as_str);
    let kind = text_field("type").ok_or("event.type is missing")?;
    let channel = || text_field("channel").ok_or_else(|| "event.channel is missing".to_owned());
    let user = || text_field("user").ok_or_else(|| "event.user is missing".to_owned());
    let made = match kind {
        "message" | "app_mention" => {
            if event.get("bot_id").is_some() || event.get("subtype").is_some() {
                return Ok(None);
            }
            let mut text = text_field("text").unwrap_or_default().trim().to_owned();
            if kind == "app_mention" {
                text = strip_leading_mention(&text).to_owned();
            }
            let mut message = Event::new(
                PlatformKind::Slack,
                team,
                channel()?,
                sender(user()?),
                EventKind::ChatMessage,
                text,
            );
            if let Some(ts) = text_field("ts") {
                message.id = match text_field("thread_ts") {
                    Some(thread) => EventId(format!("{THREAD_PREFIX}{thread}")),
                    None => EventId(ts.to_owned()),
                };
                message.metadata.insert("ts".to_owned(), Value::from(ts));
            }
            message
        }
        "member_joined_channel" => Event::new(
            PlatformKind::Slack,
            team,
            channel()?,
            sender(user()?),
            EventKind::MemberJoin,
            "",
        ),
        "reaction_added" => {
            let item = event.get("item").ok_or("event.item is missing")?;
            let channel = item
                .get("channel")
                .and_then(Value::as_str)
                .ok_or("event.item.channel is missing")?;
            let mut reaction = Event::new(
                PlatformKind::Slack,
                team,
                channel,
                sender(user()?),
                EventKind::Custom {
                    name: "reaction".to_owned(),
                },
                text_field("reaction").unwrap_or_default(),
            );
            reaction.metadata.insert(
                "reaction".to_owned(),
                Value::from(text_field("reaction").unwrap_or_default()),
            );
            reaction
        }
        _ => return Ok(None),
    };
    Ok(Some(made))
}

/// `<@U123> !ping` → `!ping`.
fn strip_leading_mention(text: &str) -> &str {
    match text
        .strip_prefix("<@")
        .and_then(|rest| rest.split_once('>'))
    {
        Some((_, rest)) => rest.trim_start(),
        None => text,
    }
}

/// A slash command request (`application/x-www-form-urlencoded`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SlashCommand {
    /// The workspace.
    pub team_id: String,
    /// The channel it was typed in.
    pub channel_id: String,
    /// Who typed it.
    pub user_id: String,
    /// Their name (deprecated by Slack, still sent).
    #[serde(default)]
    pub user_name: String,
    /// The command, with `/`.
    pub command: String,
    /// What followed it.
    #[serde(default)]
    pub text: String,
    /// Where later replies go (up to 5 times in 30 minutes).
    #[serde(default)]
    pub response_url: String,
    /// For opening modals.
    #[serde(default)]
    pub trigger_id: String,
}

impl SlashCommand {
    /// Parses a verified form body.
    pub fn from_form(body: &[u8]) -> Result<Self, WebhookError> {
        serde_urlencoded::from_bytes(body).map_err(|err| WebhookError::Malformed(err.to_string()))
    }

    /// The event: `/waddlebot ping x` runs `ping x` (the router maps the umbrella command);
    /// `/ping x` runs `ping x`.
    pub fn to_event(&self) -> Event {
        let mut user = Sender::new(if self.user_name.is_empty() {
            &self.user_id
        } else {
            &self.user_name
        });
        user.id.clone_from(&self.user_id);
        let mut event = Event::new(
            PlatformKind::Slack,
            self.team_id.clone(),
            self.channel_id.clone(),
            user,
            EventKind::SlashCommand {
                name: self.command.trim_start_matches('/').to_owned(),
            },
            self.text.clone(),
        );
        event.metadata.insert(
            "response_url".to_owned(),
            Value::from(self.response_url.as_str()),
        );
        event
    }
}

/// Parses a verified interactivity request (`payload=<json>`): block actions and view
/// submissions become component interactions routed by `action_id` / `callback_id`.
pub fn interaction_event(body: &[u8]) -> Result<Option<Event>, WebhookError> {
    #[derive(Deserialize)]
    struct Form {
        payload: String,
    }
    let form: Form = serde_urlencoded::from_bytes(body)
        .map_err(|err| WebhookError::Malformed(err.to_string()))?;
    let payload: Value = serde_json::from_str(&form.payload)
        .map_err(|err| WebhookError::Malformed(err.to_string()))?;
    let field = |path: &str| payload.pointer(path).and_then(Value::as_str);
    let team =
        field("/team/id").ok_or_else(|| WebhookError::Malformed("team.id is missing".into()))?;
    let user_id =
        field("/user/id").ok_or_else(|| WebhookError::Malformed("user.id is missing".into()))?;
    let mut user = Sender::new(field("/user/username").unwrap_or(user_id));
    user.id = user_id.to_owned();
    let (custom_id, values, channel) = match field("/type") {
        Some("block_actions") => {
            let action = payload
                .pointer("/actions/0")
                .ok_or_else(|| WebhookError::Malformed("actions is empty".into()))?;
            let id = action
                .get("action_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let mut values: Vec<String> = Vec::new();
            if let Some(value) = action.get("value").and_then(Value::as_str) {
                values.push(value.to_owned());
            }
            if let Some(selected) = action
                .pointer("/selected_option/value")
                .and_then(Value::as_str)
            {
                values.push(selected.to_owned());
            }
            (
                id,
                values,
                field("/channel/id").unwrap_or_default().to_owned(),
            )
        }
        Some("view_submission") => (
            field("/view/callback_id").unwrap_or_default().to_owned(),
            Vec::new(),
            field("/view/private_metadata")
                .unwrap_or_default()
                .to_owned(),
        ),
        _ => return Ok(None),
    };
    let mut event = Event::new(
        PlatformKind::Slack,
        team,
        channel,
        user,
        EventKind::ComponentInteraction { custom_id, values },
        "",
    );
    if let Some(url) = field("/response_url") {
        event
            .metadata
            .insert("response_url".to_owned(), Value::from(url));
    }
    Ok(Some(event))
}

/// How the Slack adapter reaches the Web API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackConfig {
    /// The bot token (`SLACK_BOT_TOKEN`, `xoxb-…`), scopes `chat:write` (and `im:write` for DMs).
    pub bot_token: String,
    /// The Web API base URL (`SLACK_API_URL`), default [`DEFAULT_API_URL`].
    pub api_url: String,
}

/// Slack as a [`Platform`]: `chat.postMessage` (in the thread of a threaded message),
/// `chat.postEphemeral`, DMs, `chat.delete`.
#[derive(Debug)]
pub struct SlackPlatform {
    config: SlackConfig,
    http: reqwest::Client,
}

impl SlackPlatform {
    /// The adapter.
    pub fn new(config: SlackConfig, http: reqwest::Client) -> Self {
        Self {
            config: SlackConfig {
                api_url: config.api_url.trim_end_matches('/').to_owned(),
                ..config
            },
            http,
        }
    }

    /// Calls a Web API method; Slack answers errors as `200 {"ok": false}`, so `ok` is checked.
    async fn call(&self, api_method: &str, body: &Value) -> Result<Value, PlatformError> {
        let answer = super::send_json(
            self.http
                .post(format!("{}/{api_method}", self.config.api_url))
                .bearer_auth(&self.config.bot_token)
                .json(body),
        )
        .await?;
        if answer.get("ok").and_then(Value::as_bool) != Some(true) {
            let error = answer
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown_error");
            return Err(if error == "ratelimited" {
                PlatformError::RateLimited {
                    retry_after: Duration::from_secs(1),
                }
            } else {
                PlatformError::Rejected(format!("Slack {api_method}: {error}"))
            });
        }
        Ok(answer)
    }

    async fn post(
        &self,
        outbound: &Outbound,
        channel: &str,
        text: &str,
    ) -> Result<(), PlatformError> {
        for part in super::split_message(text, MAX_MESSAGE_LEN) {
            let mut body = serde_json::json!({ "channel": channel, "text": part });
            if let Some(thread) = outbound
                .in_reply_to
                .as_ref()
                .and_then(|id| id.0.strip_prefix(THREAD_PREFIX))
            {
                body["thread_ts"] = Value::from(thread);
            }
            self.call("chat.postMessage", &body).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Platform for SlackPlatform {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Slack
    }

    fn limits(&self) -> PlatformLimits {
        PlatformLimits {
            max_message_len: MAX_MESSAGE_LEN,
            whispers: true,
            ephemeral: true,
            edits: true,
            embeds: false,
            answer_window: Some(Duration::from_secs(3)),
        }
    }

    async fn pacing(&self, outbound: &Outbound) -> Pacing {
        let to = match &outbound.reply {
            // `chat.postEphemeral` and `chat.delete` are per-workspace tiers, not per channel.
            Reply::Ephemeral { .. } | Reply::Moderate(_) => {
                return Pacing::unpaced(format!("other:{}", outbound.channel_id));
            }
            Reply::Whisper { .. } => &outbound.user_id,
            _ => &outbound.channel_id,
        };
        Pacing {
            lane_quotas: vec![CHANNEL_QUOTA],
            ..Pacing::unpaced(format!("post:{to}"))
        }
    }

    async fn send(&self, outbound: Outbound) -> Result<(), PlatformError> {
        match &outbound.reply {
            Reply::Text { text } => self.post(&outbound, &outbound.channel_id, text).await,
            Reply::Embed(embed) => {
                self.post(&outbound, &outbound.channel_id, &embed.to_text())
                    .await
            }
            // A bot may post to a user id: Slack opens the DM.
            Reply::Whisper { text } => self.post(&outbound, &outbound.user_id, text).await,
            Reply::Ephemeral { text } => self
                .call(
                    "chat.postEphemeral",
                    &serde_json::json!({
                        "channel": outbound.channel_id, "user": outbound.user_id, "text": text
                    }),
                )
                .await
                .map(|_| ()),
            Reply::Moderate(ModerationAction::DeleteMessage { message_id }) => self
                .call(
                    "chat.delete",
                    &serde_json::json!({ "channel": outbound.channel_id, "ts": message_id }),
                )
                .await
                .map(|_| ()),
            other => Err(PlatformError::Unsupported(format!(
                "Slack cannot carry out {other:?}"
            ))),
        }
    }
}
