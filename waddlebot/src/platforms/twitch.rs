//! Twitch: EventSub webhooks in, Helix out.
//!
//! Entities are keyed by the broadcaster's user id (`server_id` = `channel_id`), which survives
//! renames; the login is in the event's `channel_name` metadata, which `{channel}` shows.
//!
//! ```
//! use std::collections::HashMap;
//! use waddlebot::platforms::twitch::{EventSubMessage, EventSubVerifier};
//!
//! // The Twitch CLI's published test vector.
//! let verifier = EventSubVerifier::new("secretabcd").unwrap();
//! let body = r#"{"subscription":{"id":"ae2ff348-e102-16be-a3eb-6830c1bf38d2","status":"enabled","type":"channel.follow","version":"1","condition":{"broadcaster_user_id":"44429626"},"transport":{"method":"webhook","callback":"null"},"created_at":"2021-02-19T23:47:00.7621315Z"},"event":{"user_id":"28408015","user_login":"testFromUser","user_name":"testFromUser","broadcaster_user_id":"44429626","broadcaster_user_login":"44429626","broadcaster_user_name":"testBroadcaster"}}"#;
//! let headers: HashMap<String, String> = [
//!     ("Twitch-Eventsub-Message-Id", "ae2ff348-e102-16be-a3eb-6830c1bf38d2"),
//!     ("Twitch-Eventsub-Message-Timestamp", "2021-02-19T23:47:00.8091512Z"),
//!     ("Twitch-Eventsub-Message-Type", "notification"),
//!     ("Twitch-Eventsub-Message-Signature",
//!      "sha256=d10f5bd9474b7ac7bd7105eb79c2d52768b4d0cd2a135982c3bf5a1d59a78823"),
//! ].into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
//! // Verified as of the moment it was sent (a live server checks against the clock).
//! let sent = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_613_778_420);
//! match verifier.verify_at(&headers, body.as_bytes(), sent).unwrap() {
//!     EventSubMessage::Notification { events, .. } => assert_eq!(events[0].user.name, "testFromUser"),
//!     other => panic!("{other:?}"),
//! }
//! ```

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use super::{Headers, SeenIds, WebhookError, verify_hmac_sha256};
use crate::event::{Badge, Event, EventKind, Gift, ModerationAction, Sender, SubscriptionTier};
use crate::id::EventId;
use crate::permission::PermissionLevel;
use crate::platform::{
    Outbound, Pacing, Platform, PlatformError, PlatformKind, PlatformLimits, Quota,
};
use crate::reply::Reply;

/// Messages older than this are refused (Twitch's replay guidance).
pub const MAX_MESSAGE_AGE: Duration = Duration::from_secs(600);
/// Twitch's chat message limit, in characters.
pub const MAX_MESSAGE_LEN: usize = 500;
/// Where Helix lives unless `TWITCH_API_URL` says otherwise.
pub const DEFAULT_API_URL: &str = "https://api.twitch.tv";

const ID: &str = "Twitch-Eventsub-Message-Id";
const TIMESTAMP: &str = "Twitch-Eventsub-Message-Timestamp";
const SIGNATURE: &str = "Twitch-Eventsub-Message-Signature";
const TYPE: &str = "Twitch-Eventsub-Message-Type";

/// Prefix of the ids of events that are not chat messages: Helix takes only chat message ids as
/// reply parents.
pub(crate) const NON_CHAT_ID_PREFIX: &str = "eventsub-";

/// A verified EventSub delivery.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventSubMessage {
    /// Twitch checks the callback: answer 200 with `challenge` as `text/plain`.
    Verification {
        /// The text to echo.
        challenge: String,
    },
    /// Something happened. `events` is empty for subscription types WaddleBot does not map.
    Notification {
        /// The subscription type (`channel.follow`...).
        subscription_type: String,
        /// The events it became.
        events: Vec<Event>,
    },
    /// Twitch ended a subscription.
    Revocation {
        /// The subscription type.
        subscription_type: String,
        /// Why (`authorization_revoked`, `user_removed`, `notification_failures_exceeded`...).
        reason: String,
    },
}

/// Why an EventSub secret cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("EVENTSUB_SECRET must be 10 to 100 ASCII characters (Twitch's rule), got {0} characters")]
pub struct BadSecret(pub usize);

/// Verifies EventSub webhook deliveries: signature first, then the 10-minute window, then the
/// message id (a repeat is refused). Nothing is remembered from a delivery that fails a check.
#[derive(Debug)]
pub struct EventSubVerifier {
    secret: String,
    seen: SeenIds,
}

impl EventSubVerifier {
    /// A verifier for the secret given when subscribing.
    pub fn new(secret: impl Into<String>) -> Result<Self, BadSecret> {
        let secret = secret.into();
        if !(10..=100).contains(&secret.len()) || !secret.is_ascii() {
            return Err(BadSecret(secret.chars().count()));
        }
        Ok(Self {
            secret,
            seen: SeenIds::new(MAX_MESSAGE_AGE, 100_000),
        })
    }

    /// Verifies and parses a delivery received now.
    pub fn verify(
        &self,
        headers: &impl Headers,
        body: &[u8],
    ) -> Result<EventSubMessage, WebhookError> {
        self.verify_at(headers, body, SystemTime::now())
    }

    /// [`verify`](Self::verify) against a given clock.
    pub fn verify_at(
        &self,
        headers: &impl Headers,
        body: &[u8],
        now: SystemTime,
    ) -> Result<EventSubMessage, WebhookError> {
        let header = |name| {
            headers
                .header(name)
                .ok_or(WebhookError::MissingHeader(name))
        };
        let id = header(ID)?;
        let timestamp = header(TIMESTAMP)?;
        let signature = header(SIGNATURE)?;
        verify_hmac_sha256(
            self.secret.as_bytes(),
            &[id.as_bytes(), timestamp.as_bytes(), body],
            signature,
            "sha256=",
        )?;
        let sent =
            time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
                .map_err(|_| WebhookError::Stale)?;
        let sent = SystemTime::from(sent);
        let age = now.duration_since(sent).unwrap_or_default();
        let ahead = sent.duration_since(now).unwrap_or_default();
        if age > MAX_MESSAGE_AGE || ahead > MAX_MESSAGE_AGE {
            return Err(WebhookError::Stale);
        }
        let kind = header(TYPE)?;
        let parsed = parse_message(kind, body, id)?;
        if !self.seen.first_time(id) {
            return Err(WebhookError::Replayed(id.to_owned()));
        }
        Ok(parsed)
    }
}

#[derive(Deserialize)]
struct Envelope {
    subscription: Subscription,
    #[serde(default)]
    event: Option<Value>,
    #[serde(default)]
    challenge: Option<String>,
}

#[derive(Deserialize)]
struct Subscription {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    status: String,
}

fn parse_message(
    kind: &str,
    body: &[u8],
    message_id: &str,
) -> Result<EventSubMessage, WebhookError> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|err| WebhookError::Malformed(err.to_string()))?;
    match kind {
        "webhook_callback_verification" => Ok(EventSubMessage::Verification {
            challenge: envelope.challenge.ok_or_else(|| {
                WebhookError::Malformed("a verification without a challenge".to_owned())
            })?,
        }),
        "revocation" => Ok(EventSubMessage::Revocation {
            subscription_type: envelope.subscription.kind,
            reason: envelope.subscription.status,
        }),
        "notification" => {
            let event = envelope.event.ok_or_else(|| {
                WebhookError::Malformed("a notification without an event".to_owned())
            })?;
            let events = events_from_notification(&envelope.subscription.kind, &event, message_id)
                .map_err(WebhookError::Malformed)?;
            Ok(EventSubMessage::Notification {
                subscription_type: envelope.subscription.kind,
                events,
            })
        }
        other => Err(WebhookError::Malformed(format!(
            "unknown message type '{other}'"
        ))),
    }
}

/// Reads a string field; a missing or null one is an error naming it.
fn text<'a>(event: &'a Value, field: &str) -> Result<&'a str, String> {
    event
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("event.{field} is missing"))
}

fn opt_text<'a>(event: &'a Value, field: &str) -> Option<&'a str> {
    event.get(field).and_then(Value::as_str)
}

fn number(event: &Value, field: &str) -> Result<u64, String> {
    event
        .get(field)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("event.{field} is missing or not a number"))
}

/// The user named by `<prefix>user_id`, `<prefix>user_login`, `<prefix>user_name`.
fn user(event: &Value, prefix: &str) -> Result<Sender, String> {
    let id = text(event, &format!("{prefix}user_id"))?;
    let login = text(event, &format!("{prefix}user_login"))?;
    let mut sender = Sender::new(login);
    sender.id = id.to_owned();
    sender.display_name = opt_text(event, &format!("{prefix}user_name"))
        .filter(|name| *name != login)
        .map(str::to_owned);
    Ok(sender)
}

/// An anonymous gifter or cheerer.
fn anonymous() -> Sender {
    let mut sender = Sender::new("anonymous");
    sender.display_name = Some("Anonymous".to_owned());
    sender
}

/// The permission level Twitch chat badges give.
pub fn level_from_badges(badges: &[Badge]) -> PermissionLevel {
    badges
        .iter()
        .map(|badge| match badge.name.as_str() {
            "broadcaster" => PermissionLevel::Broadcaster,
            "moderator" | "lead_moderator" => PermissionLevel::Moderator,
            "vip" => PermissionLevel::Vip,
            "subscriber" | "founder" => PermissionLevel::Subscriber,
            _ => PermissionLevel::Everyone,
        })
        .max()
        .unwrap_or(PermissionLevel::Everyone)
}

/// Turns one notification's `event` object into WaddleBot events.
pub fn events_from_notification(
    subscription_type: &str,
    event: &Value,
    message_id: &str,
) -> Result<Vec<Event>, String> {
    let (channel_key, channel_prefix) = match subscription_type {
        "channel.raid" => ("to_broadcaster_user_id", "to_broadcaster_user_login"),
        _ => ("broadcaster_user_id", "broadcaster_user_login"),
    };
    let channel = text(event, channel_key)?.to_owned();
    let make = |user: Sender, kind: EventKind, body: &str| {
        let mut made = Event::new(
            PlatformKind::Twitch,
            channel.clone(),
            channel.clone(),
            user,
            kind,
            body,
        );
        made.id = EventId(format!("{NON_CHAT_ID_PREFIX}{message_id}"));
        if let Some(login) = opt_text(event, channel_prefix) {
            made.metadata
                .insert("channel_name".to_owned(), Value::from(login));
        }
        made.metadata.insert(
            "twitch_subscription_type".to_owned(),
            Value::from(subscription_type),
        );
        made
    };
    let tier = |field: &str| {
        opt_text(event, field)
            .and_then(SubscriptionTier::from_platform)
            .unwrap_or_default()
    };
    let made = match subscription_type {
        "channel.chat.message" => {
            let mut sender = user(event, "chatter_")?;
            sender.badges = event
                .get("badges")
                .and_then(Value::as_array)
                .map(|badges| {
                    badges
                        .iter()
                        .filter_map(|b| {
                            Some(Badge {
                                name: b.get("set_id")?.as_str()?.to_owned(),
                                version: opt_text(b, "id").unwrap_or_default().to_owned(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            sender.level = level_from_badges(&sender.badges);
            let body = event
                .get("message")
                .and_then(|m| m.get("text"))
                .and_then(Value::as_str)
                .ok_or("event.message.text is missing")?;
            let mut chat = make(sender, EventKind::ChatMessage, body);
            chat.id = EventId(text(event, "message_id")?.to_owned());
            if let Some(parent) = event
                .get("reply")
                .and_then(|r| opt_text(r, "parent_message_id"))
            {
                chat.metadata
                    .insert("reply_parent_message_id".to_owned(), Value::from(parent));
            }
            chat
        }
        "channel.follow" => make(user(event, "")?, EventKind::Follow, ""),
        "channel.subscribe" => {
            if event.get("is_gift").and_then(Value::as_bool) == Some(true) {
                // The gifter's own event (channel.subscription.gift) carries the gift.
                return Ok(Vec::new());
            }
            make(
                user(event, "")?,
                EventKind::Subscription {
                    tier: tier("tier"),
                    months: 1,
                    gift: None,
                },
                "",
            )
        }
        "channel.subscription.message" => make(
            user(event, "")?,
            EventKind::Subscription {
                tier: tier("tier"),
                months: u32::try_from(number(event, "cumulative_months")?).unwrap_or(u32::MAX),
                gift: None,
            },
            event
                .get("message")
                .and_then(|m| opt_text(m, "text"))
                .unwrap_or_default(),
        ),
        "channel.subscription.gift" => {
            let anonymous_gift = event.get("is_anonymous").and_then(Value::as_bool) == Some(true);
            let gifter = if anonymous_gift {
                anonymous()
            } else {
                user(event, "")?
            };
            make(
                gifter,
                EventKind::Subscription {
                    tier: tier("tier"),
                    months: 1,
                    gift: Some(Gift {
                        count: u32::try_from(number(event, "total")?).unwrap_or(u32::MAX),
                        anonymous: anonymous_gift,
                    }),
                },
                "",
            )
        }
        "channel.cheer" => {
            let cheerer = if event.get("is_anonymous").and_then(Value::as_bool) == Some(true) {
                anonymous()
            } else {
                user(event, "")?
            };
            make(
                cheerer,
                EventKind::Cheer {
                    bits: number(event, "bits")?,
                },
                opt_text(event, "message").unwrap_or_default(),
            )
        }
        "channel.raid" => make(
            user(event, "from_broadcaster_")?,
            EventKind::Raid {
                viewers: number(event, "viewers")?,
            },
            "",
        ),
        "stream.online" => make(user(event, "broadcaster_")?, EventKind::StreamOnline, ""),
        "stream.offline" => make(user(event, "broadcaster_")?, EventKind::StreamOffline, ""),
        "channel.ban" => {
            let target = text(event, "user_id")?.to_owned();
            let reason = opt_text(event, "reason")
                .filter(|r| !r.is_empty())
                .map(str::to_owned);
            let action = match event.get("is_permanent").and_then(Value::as_bool) {
                Some(false) => {
                    let seconds = match (opt_text(event, "banned_at"), opt_text(event, "ends_at")) {
                        (Some(start), Some(end)) => seconds_between(start, end).unwrap_or(0),
                        _ => 0,
                    };
                    ModerationAction::Timeout {
                        user_id: target,
                        seconds,
                        reason,
                    }
                }
                _ => ModerationAction::Ban {
                    user_id: target,
                    reason,
                },
            };
            make(
                user(event, "moderator_")?,
                EventKind::Moderation(action),
                "",
            )
        }
        _ => return Ok(Vec::new()),
    };
    Ok(vec![made])
}

fn seconds_between(start: &str, end: &str) -> Option<u64> {
    let parse =
        |t| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok();
    let span = parse(end)? - parse(start)?;
    u64::try_from(span.whole_seconds()).ok()
}

mod auth;
#[cfg(feature = "twitch-ws")]
mod eventsub_ws;
mod subscriptions;

#[cfg(feature = "twitch-ws")]
pub use eventsub_ws::{DEFAULT_EVENTSUB_WS_URL, EventSubSocket, EventSubSocketStatus};

pub use auth::{AppToken, DEFAULT_AUTH_URL, UserToken};
pub use subscriptions::{
    EventSubApi, EventSubSubscription, SyncReport, Wanted, channel_subscriptions,
};

/// How the Twitch adapter reaches Helix.
#[derive(Clone, PartialEq, Eq)]
pub struct TwitchConfig {
    /// The application's client id (`TWITCH_CLIENT_ID`).
    pub client_id: String,
    /// The application's client secret (`TWITCH_CLIENT_SECRET`); with a refresh token, the
    /// bot token is renewed when it expires.
    pub client_secret: Option<String>,
    /// The bot account's user access token (`TWITCH_BOT_TOKEN`, with or without `oauth:`),
    /// with `user:write:chat`, `user:manage:whispers` and `moderator:manage:*` scopes as needed.
    pub bot_token: String,
    /// The bot token's refresh token (`TWITCH_BOT_REFRESH_TOKEN`).
    pub refresh_token: Option<String>,
    /// Helix's base URL (`TWITCH_API_URL`), default [`DEFAULT_API_URL`].
    pub api_url: String,
    /// The OAuth server (`TWITCH_AUTH_URL`), default [`DEFAULT_AUTH_URL`].
    pub auth_url: String,
}

impl TwitchConfig {
    /// Helix and OAuth at their public addresses, no refresh.
    pub fn new(client_id: impl Into<String>, bot_token: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: None,
            bot_token: bot_token.into(),
            refresh_token: None,
            api_url: DEFAULT_API_URL.to_owned(),
            auth_url: DEFAULT_AUTH_URL.to_owned(),
        }
    }
}

impl std::fmt::Debug for TwitchConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwitchConfig")
            .field("client_id", &self.client_id)
            .field("api_url", &self.api_url)
            .field("auth_url", &self.auth_url)
            .field("refreshable", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

/// Twitch as a [`Platform`]: chat messages, whispers and moderation through Helix.
#[derive(Debug)]
pub struct TwitchPlatform {
    config: TwitchConfig,
    token: UserToken,
    http: reqwest::Client,
    bot_user_id: tokio::sync::OnceCell<String>,
    /// The channels the bot moderates, and when they were looked up.
    moderated: tokio::sync::Mutex<Option<(std::time::Instant, HashSet<String>)>>,
}

/// Chat messages per 30 s in a channel where the bot is an ordinary chatter.
pub const CHAT_QUOTA: Quota = Quota::new(20, Duration::from_secs(30));
/// Chat messages per 30 s in a channel the bot moderates or owns.
pub const ELEVATED_CHAT_QUOTA: Quota = Quota::new(100, Duration::from_secs(30));
/// Twitch drops a message identical to one sent within this long.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(30);
/// Whispers: 3 per second and 100 per minute.
pub const WHISPER_QUOTAS: [Quota; 2] = [
    Quota::new(3, Duration::from_secs(1)),
    Quota::new(100, Duration::from_secs(60)),
];
/// How long the list of channels the bot moderates is trusted.
const MODERATED_TTL: Duration = Duration::from_secs(600);

impl TwitchPlatform {
    /// The adapter. The bot's user id is looked up on first send.
    pub fn new(config: TwitchConfig, http: reqwest::Client) -> Self {
        let token = match (&config.refresh_token, &config.client_secret) {
            (Some(refresh), Some(secret)) => UserToken::refreshable(
                &config.bot_token,
                refresh,
                &config.client_id,
                secret,
                &config.auth_url,
                http.clone(),
            ),
            _ => UserToken::fixed(&config.bot_token),
        };
        Self {
            config: TwitchConfig {
                api_url: config.api_url.trim_end_matches('/').to_owned(),
                ..config
            },
            token,
            http,
            bot_user_id: tokio::sync::OnceCell::new(),
            moderated: tokio::sync::Mutex::new(None),
        }
    }

    /// Whether the bot owns or moderates `broadcaster`'s channel, which raises its chat quota.
    /// The moderated channels come from `GET /helix/moderation/channels` (scope
    /// `user:read:moderated_channels`), looked up every ten minutes; when that fails the bot
    /// counts as an ordinary chatter, which is always safe.
    pub async fn is_elevated_in(&self, broadcaster: &str) -> bool {
        let Ok(bot) = self.bot_user_id().await else {
            return false;
        };
        if bot == broadcaster {
            return true;
        }
        let mut cache = self.moderated.lock().await;
        let fresh = cache
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < MODERATED_TTL);
        if !fresh {
            let channels = self.moderated_channels(bot).await.unwrap_or_else(|err| {
                tracing::warn!(error = %err, "cannot list the channels the bot moderates; pacing chat as an ordinary chatter");
                HashSet::new()
            });
            *cache = Some((std::time::Instant::now(), channels));
        }
        cache
            .as_ref()
            .is_some_and(|(_, channels)| channels.contains(broadcaster))
    }

    /// Every channel the bot moderates, following Helix's pagination.
    async fn moderated_channels(&self, bot: &str) -> Result<HashSet<String>, PlatformError> {
        let items = all_pages(|cursor| {
            let mut query = vec![("user_id", bot.to_owned()), ("first", "100".to_owned())];
            if let Some(after) = cursor {
                query.push(("after", after));
            }
            self.helix(
                self.request(reqwest::Method::GET, "moderation/channels")
                    .query(&query),
            )
        })
        .await?;
        Ok(items
            .iter()
            .filter_map(|channel| channel.get("broadcaster_id").and_then(Value::as_str))
            .map(str::to_owned)
            .collect())
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/helix/{path}", self.config.api_url))
            .header("Client-Id", &self.config.client_id)
    }

    /// Sends a Helix request with the bot's token; when Helix answers 401 and the token can be
    /// refreshed, refreshes it and sends the request once more.
    async fn helix(&self, request: reqwest::RequestBuilder) -> Result<Value, PlatformError> {
        let token = self.token.get().await;
        let again = request.try_clone();
        let response = request
            .bearer_auth(&token)
            .send()
            .await
            .map_err(|err| PlatformError::Unavailable(err.into()))?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED
            && let Some(again) = again
            && let Some(fresh) = self.token.refresh(&token).await
        {
            return super::send_json(again.bearer_auth(fresh?)).await;
        }
        super::answer_json(response).await
    }

    /// A channel's user id: digits are taken as an id already, a login is looked up
    /// (`GET /helix/users?login=`).
    pub async fn user_id(&self, channel: &str) -> Result<String, PlatformError> {
        let channel = channel.trim().trim_start_matches('#');
        if !channel.is_empty() && channel.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(channel.to_owned());
        }
        let body = self
            .helix(
                self.request(reqwest::Method::GET, "users")
                    .query(&[("login", channel)]),
            )
            .await?;
        body.pointer("/data/0/id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| PlatformError::Rejected(format!("no Twitch user is called {channel}")))
    }

    /// The bot account's user id (`GET /helix/users` with its own token), looked up once.
    pub async fn bot_user_id(&self) -> Result<&str, PlatformError> {
        self.bot_user_id
            .get_or_try_init(|| async {
                let body = self
                    .helix(self.request(reqwest::Method::GET, "users"))
                    .await?;
                body.pointer("/data/0/id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        PlatformError::Rejected("Helix /users did not name the bot account".into())
                    })
            })
            .await
            .map(String::as_str)
    }

    async fn chat(&self, outbound: &Outbound, text: &str) -> Result<(), PlatformError> {
        let sender = self.bot_user_id().await?;
        for part in super::split_message(text, MAX_MESSAGE_LEN) {
            let mut body = serde_json::json!({
                "broadcaster_id": outbound.server_id,
                "sender_id": sender,
                "message": part,
            });
            if let Some(parent) = outbound
                .in_reply_to
                .as_ref()
                .filter(|id| !id.0.starts_with(NON_CHAT_ID_PREFIX))
            {
                body["reply_parent_message_id"] = Value::from(parent.0.as_str());
            }
            let answer = self
                .helix(
                    self.request(reqwest::Method::POST, "chat/messages")
                        .json(&body),
                )
                .await?;
            if answer.pointer("/data/0/is_sent").and_then(Value::as_bool) == Some(false) {
                let reason = answer
                    .pointer("/data/0/drop_reason/message")
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given");
                return Err(PlatformError::Rejected(format!(
                    "Twitch dropped the message: {reason}"
                )));
            }
        }
        Ok(())
    }

    async fn whisper(&self, outbound: &Outbound, text: &str) -> Result<(), PlatformError> {
        let sender = self.bot_user_id().await?;
        // A login (an identity verification code sent to `!identity link twitch <login>`)
        // is looked up; digits are an id already.
        let recipient = self.user_id(&outbound.user_id).await?;
        let request = self
            .request(reqwest::Method::POST, "whispers")
            .query(&[("from_user_id", sender), ("to_user_id", recipient.as_str())])
            .json(&serde_json::json!({ "message": text }));
        self.helix(request).await.map(|_| ())
    }

    /// An embed as a chat announcement (highlighted, in the embed's colour where Twitch has
    /// it); where the bot may not announce (not a moderator), a plain chat message instead.
    async fn announce(
        &self,
        outbound: &Outbound,
        embed: &crate::reply::Embed,
    ) -> Result<(), PlatformError> {
        let moderator = self.bot_user_id().await?;
        let text: String = embed.to_text().chars().take(MAX_MESSAGE_LEN).collect();
        let request = self
            .request(reqwest::Method::POST, "chat/announcements")
            .query(&[
                ("broadcaster_id", outbound.server_id.as_str()),
                ("moderator_id", moderator),
            ])
            .json(&serde_json::json!({
                "message": text,
                "color": announcement_color(embed.color),
            }));
        match self.helix(request).await {
            Err(PlatformError::Rejected(why)) => {
                tracing::debug!(reason = %why, "announcement refused; sending the embed as chat");
                self.chat(outbound, &embed.to_text()).await
            }
            other => other.map(|_| ()),
        }
    }

    async fn moderate(
        &self,
        outbound: &Outbound,
        action: &ModerationAction,
    ) -> Result<(), PlatformError> {
        let moderator = self.bot_user_id().await?;
        let on_channel = [
            ("broadcaster_id", outbound.server_id.as_str()),
            ("moderator_id", moderator),
        ];
        let ban = |user_id: &str, duration: Option<u64>, reason: &Option<String>| {
            let mut data = serde_json::json!({ "user_id": user_id });
            if let Some(seconds) = duration {
                // Helix accepts 1 second to 2 weeks.
                data["duration"] = Value::from(seconds.clamp(1, 1_209_600));
            }
            if let Some(reason) = reason {
                data["reason"] = Value::from(reason.as_str());
            }
            self.request(reqwest::Method::POST, "moderation/bans")
                .query(&on_channel)
                .json(&serde_json::json!({ "data": data }))
        };
        let request = match action {
            ModerationAction::Timeout {
                user_id,
                seconds,
                reason,
            } => ban(user_id, Some(*seconds), reason),
            ModerationAction::Ban { user_id, reason } => ban(user_id, None, reason),
            ModerationAction::DeleteMessage { message_id } => self
                .request(reqwest::Method::DELETE, "moderation/chat")
                .query(&on_channel)
                .query(&[("message_id", message_id)]),
            ModerationAction::Warn { user_id, reason } => self
                .request(reqwest::Method::POST, "moderation/warnings")
                .query(&on_channel)
                .json(&serde_json::json!({
                    "data": { "user_id": user_id, "reason": reason.as_deref().unwrap_or("Warned by WaddleBot") }
                })),
            ModerationAction::Kick { .. } => {
                return Err(PlatformError::Unsupported(
                    "Twitch has no kick; use a timeout".to_owned(),
                ));
            }
            other => {
                return Err(PlatformError::Unsupported(format!(
                    "Twitch chat cannot carry out {other:?}"
                )));
            }
        };
        self.helix(request).await.map(|_| ())
    }
}

/// Every item of a paginated Helix list: `page(cursor)` fetches one page (`None` for the first);
/// the `data` arrays are joined until a page names no further cursor (at most 50 pages, far
/// more than any bot's lists).
pub(crate) async fn all_pages<F, Fut>(mut page: F) -> Result<Vec<Value>, PlatformError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Value, PlatformError>>,
{
    let mut items = Vec::new();
    let mut cursor = None;
    for _ in 0..50 {
        let answer = page(cursor.take()).await?;
        if let Some(Value::Array(data)) = answer.get("data") {
            items.extend(data.iter().cloned());
        }
        cursor = answer
            .pointer("/pagination/cursor")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    Ok(items)
}

/// The announcement colour nearest an embed colour (`primary` when it has none).
fn announcement_color(color: Option<u32>) -> &'static str {
    let Some(rgb) = color else { return "primary" };
    let (r, g, b) = ((rgb >> 16) & 0xff, (rgb >> 8) & 0xff, rgb & 0xff);
    let named: [(&str, (u32, u32, u32)); 4] = [
        ("blue", (0x00, 0x7a, 0xff)),
        ("green", (0x00, 0xc8, 0x53)),
        ("orange", (0xff, 0x8c, 0x00)),
        ("purple", (0x91, 0x46, 0xff)),
    ];
    named
        .iter()
        .min_by_key(|(_, (nr, ng, nb))| {
            nr.abs_diff(r).pow(2) + ng.abs_diff(g).pow(2) + nb.abs_diff(b).pow(2)
        })
        .map_or("primary", |(name, _)| name)
}

#[async_trait]
impl Platform for TwitchPlatform {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Twitch
    }

    fn limits(&self) -> PlatformLimits {
        PlatformLimits {
            max_message_len: MAX_MESSAGE_LEN,
            whispers: true,
            ..PlatformLimits::default()
        }
    }

    async fn pacing(&self, outbound: &Outbound) -> Pacing {
        let channel = &outbound.server_id;
        match &outbound.reply {
            Reply::Moderate(_) => Pacing::unpaced(format!("moderation:{channel}")),
            Reply::Whisper { .. } | Reply::Ephemeral { .. } => Pacing {
                lane_quotas: WHISPER_QUOTAS.to_vec(),
                ..Pacing::unpaced("whispers")
            },
            _ => {
                let quota = if self.is_elevated_in(channel).await {
                    ELEVATED_CHAT_QUOTA
                } else {
                    CHAT_QUOTA
                };
                Pacing {
                    lane_quotas: vec![quota],
                    distinct_within: Some(DUPLICATE_WINDOW),
                    ..Pacing::unpaced(format!("chat:{channel}"))
                }
            }
        }
    }

    async fn send(&self, outbound: Outbound) -> Result<(), PlatformError> {
        match &outbound.reply {
            Reply::Text { text } => self.chat(&outbound, text).await,
            Reply::Embed(embed) => self.announce(&outbound, embed).await,
            // Twitch has no ephemeral messages: a whisper is the private equivalent.
            Reply::Whisper { text } | Reply::Ephemeral { text } => {
                self.whisper(&outbound, text).await
            }
            Reply::Moderate(action) => self.moderate(&outbound, action).await,
            other => Err(PlatformError::Unsupported(format!(
                "Twitch chat cannot show {other:?}"
            ))),
        }
    }
}
