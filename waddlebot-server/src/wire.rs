//! The router API's event JSON, as the original system's collectors send it (reference §2.4),
//! and its conversion into an [`Event`].
//!
//! Accepted keys: `platform`, `server_id`, `channel_id`, `user_id`, `username` (required),
//! `display_name`, `message` (may be ""), `message_type` (default `chatMessage`), `metadata`,
//! `event_id`, `entity_id`, `command`, `timestamp`. Any other key is refused, so a misspelt
//! field is reported instead of silently ignored. `entity_id` and `command` are accepted for
//! compatibility but the router derives both itself; a numeric `timestamp` (Unix seconds) is
//! used as the event time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use waddlebot::{
    Badge, Event, EventId, EventKind, Gift, Metadata, ModerationAction, PermissionLevel,
    PlatformKind, Sender, SubscriptionTier,
};

/// Longest accepted message, in characters (the original's limit).
pub const MAX_MESSAGE_CHARS: usize = 5000;
/// Longest accepted id or name, in characters.
pub const MAX_ID_CHARS: usize = 255;
/// Most events in one batch.
pub const MAX_BATCH: usize = 100;

/// One inbound event as JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundEvent {
    platform: String,
    server_id: String,
    channel_id: String,
    user_id: String,
    username: String,
    #[serde(default)]
    display_name: Option<String>,
    message: String,
    #[serde(default)]
    message_type: Option<String>,
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    #[allow(dead_code)] // accepted for compatibility; the router resolves entities itself
    entity_id: Option<serde_json::Value>,
    #[serde(default)]
    #[allow(dead_code)] // accepted for compatibility; the router parses the message itself
    command: Option<String>,
    #[serde(default)]
    timestamp: Option<serde_json::Value>,
}

/// A batch: `{"events": [...]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundBatch {
    /// The events, 1 to 100.
    pub events: Vec<InboundEvent>,
}

/// The message types the router API accepts.
pub const MESSAGE_TYPES: &[&str] = &[
    "chatMessage",
    "slashCommand",
    "interaction",
    "button_click",
    "select_menu",
    "modal_submit",
    "mention",
    "app_mention",
    "shortcut",
    "follow",
    "subscription",
    "resub",
    "gift_subscription",
    "subgift",
    "raid",
    "host",
    "cheer",
    "donation",
    "boost",
    "member_join",
    "channel_join",
    "voice_join",
    "member_leave",
    "voice_leave",
    "voice_time",
    "stream_online",
    "stream_offline",
    "ban",
    "kick",
    "timeout",
    "warn",
    "reaction",
    "file_share",
];

fn check_id(field: &str, value: &str) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(format!("{field} must not be empty or blank"));
    }
    if trimmed.chars().count() > MAX_ID_CHARS {
        return Err(format!("{field} is longer than {MAX_ID_CHARS} characters"));
    }
    Ok(trimmed.to_owned())
}

fn meta_str<'a>(metadata: &'a Metadata, key: &str) -> Option<&'a str> {
    metadata.get(key).and_then(serde_json::Value::as_str)
}

fn meta_u64(metadata: &Metadata, key: &str) -> Option<u64> {
    match metadata.get(key)? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn meta_bool(metadata: &Metadata, key: &str) -> bool {
    match metadata.get(key) {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => matches!(s.as_str(), "true" | "1"),
        Some(serde_json::Value::Number(n)) => n.as_u64() == Some(1),
        _ => false,
    }
}

fn tier(metadata: &Metadata) -> SubscriptionTier {
    let raw = match metadata.get("tier") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    SubscriptionTier::from_platform(&raw).unwrap_or_default()
}

fn months(metadata: &Metadata) -> u32 {
    ["cumulative_months", "months"]
        .iter()
        .find_map(|key| meta_u64(metadata, key))
        .map_or(1, |m| u32::try_from(m).unwrap_or(u32::MAX))
}

fn moderation(kind: &str, metadata: &Metadata, user_id: &str) -> ModerationAction {
    let target = meta_str(metadata, "target_user_id")
        .unwrap_or(user_id)
        .to_owned();
    let reason = meta_str(metadata, "reason").map(str::to_owned);
    match kind {
        "ban" => ModerationAction::Ban {
            user_id: target,
            reason,
        },
        "kick" => ModerationAction::Kick {
            user_id: target,
            reason,
        },
        "timeout" => ModerationAction::Timeout {
            user_id: target,
            seconds: ["duration_seconds", "duration"]
                .iter()
                .find_map(|key| meta_u64(metadata, key))
                .unwrap_or(600),
            reason,
        },
        _ => ModerationAction::Warn {
            user_id: target,
            reason,
        },
    }
}

fn kind(message_type: &str, metadata: &Metadata, user_id: &str) -> Result<EventKind, String> {
    Ok(match message_type {
        "chatMessage" => EventKind::ChatMessage,
        "slashCommand" => EventKind::SlashCommand {
            // Discord sends `command_name`; Slack's `/waddlebot <sub>` sends `subcommand`.
            name: meta_str(metadata, "command_name")
                .or_else(|| meta_str(metadata, "subcommand"))
                .unwrap_or_default()
                .to_owned(),
        },
        "interaction" | "button_click" | "select_menu" | "modal_submit" | "mention"
        | "app_mention" | "shortcut" => EventKind::ComponentInteraction {
            custom_id: meta_str(metadata, "custom_id")
                .or_else(|| meta_str(metadata, "action_id"))
                .or_else(|| meta_str(metadata, "callback_id"))
                .unwrap_or_default()
                .to_owned(),
            values: metadata
                .get("values")
                .and_then(serde_json::Value::as_array)
                .map(|values| {
                    values
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        },
        "follow" => EventKind::Follow,
        "subscription" | "resub" => EventKind::Subscription {
            tier: tier(metadata),
            months: months(metadata),
            gift: meta_bool(metadata, "is_gift").then_some(Gift {
                count: 1,
                anonymous: meta_bool(metadata, "is_anonymous"),
            }),
        },
        "gift_subscription" | "subgift" => EventKind::Subscription {
            tier: tier(metadata),
            months: 1,
            gift: Some(Gift {
                count: meta_u64(metadata, "total")
                    .map_or(1, |n| u32::try_from(n).unwrap_or(u32::MAX)),
                anonymous: meta_bool(metadata, "is_anonymous"),
            }),
        },
        "raid" | "host" => EventKind::Raid {
            viewers: meta_u64(metadata, "viewers").unwrap_or(0),
        },
        "cheer" => EventKind::Cheer {
            bits: meta_u64(metadata, "bits").unwrap_or(0),
        },
        "donation" => EventKind::Donation {
            amount: metadata
                .get("amount")
                .and_then(|v| v.as_f64().or_else(|| v.as_str()?.trim().parse().ok()))
                .unwrap_or(0.0),
            currency: meta_str(metadata, "currency")
                .unwrap_or_default()
                .to_owned(),
        },
        "member_join" | "channel_join" | "voice_join" => EventKind::MemberJoin,
        "member_leave" | "voice_leave" => EventKind::MemberLeave,
        "stream_online" => EventKind::StreamOnline,
        "stream_offline" => EventKind::StreamOffline,
        "ban" | "kick" | "timeout" | "warn" => {
            EventKind::Moderation(moderation(message_type, metadata, user_id))
        }
        "boost" | "voice_time" | "reaction" | "file_share" => EventKind::Custom {
            name: message_type.to_owned(),
        },
        other => {
            return Err(format!(
                "unknown message_type '{other}' (expected one of {})",
                MESSAGE_TYPES.join(", ")
            ));
        }
    })
}

/// Badges from `metadata.badges` (`{"subscriber": "12"}`) and the Twitch collector's flags.
fn sender_level(metadata: &Metadata, badges: &[Badge]) -> PermissionLevel {
    let flags = [
        ("is_broadcaster", PermissionLevel::Broadcaster),
        ("is_mod", PermissionLevel::Moderator),
        ("is_moderator", PermissionLevel::Moderator),
        ("is_vip", PermissionLevel::Vip),
        ("is_subscriber", PermissionLevel::Subscriber),
    ];
    let from_flags = flags
        .iter()
        .filter(|(key, _)| meta_bool(metadata, key))
        .map(|(_, level)| *level)
        .max()
        .unwrap_or_default();
    from_flags.max(PermissionLevel::from_badges(
        badges.iter().map(|b| b.name.as_str()),
    ))
}

fn badges(metadata: &Metadata) -> Vec<Badge> {
    match metadata.get("badges") {
        Some(serde_json::Value::Object(map)) => map
            .iter()
            .map(|(name, version)| Badge {
                name: name.clone(),
                version: version
                    .as_str()
                    .map_or_else(|| version.to_string(), str::to_owned),
            })
            .collect(),
        _ => Vec::new(),
    }
}

impl InboundEvent {
    /// Checks every field and builds the event, or says what is wrong.
    pub fn into_event(self) -> Result<Event, String> {
        let platform: PlatformKind = self.platform.parse().map_err(|err| format!("{err}"))?;
        let server_id = check_id("server_id", &self.server_id)?;
        let channel_id = check_id("channel_id", &self.channel_id)?;
        let user_id = check_id("user_id", &self.user_id)?;
        let username = check_id("username", &self.username)?;
        let display_name = match self.display_name {
            Some(name) if !name.trim().is_empty() => Some(check_id("display_name", &name)?),
            _ => None,
        };
        if self.message.chars().count() > MAX_MESSAGE_CHARS {
            return Err(format!(
                "message is longer than {MAX_MESSAGE_CHARS} characters"
            ));
        }
        let metadata = self.metadata.unwrap_or_default();
        let message_type = self.message_type.as_deref().unwrap_or("chatMessage");
        let kind = kind(message_type, &metadata, &user_id)?;
        let badges = badges(&metadata);
        let level = sender_level(&metadata, &badges);
        let id = match self.event_id {
            Some(id) => EventId(check_id("event_id", &id)?),
            None => meta_str(&metadata, "message_id")
                .filter(|id| !id.trim().is_empty())
                .map_or_else(EventId::random, |id| EventId(id.to_owned())),
        };
        let timestamp = self
            .timestamp
            .as_ref()
            .and_then(serde_json::Value::as_f64)
            .filter(|secs| secs.is_finite() && *secs >= 0.0 && *secs < 1.0e11)
            .map_or_else(SystemTime::now, |secs| {
                UNIX_EPOCH + Duration::from_secs_f64(secs)
            });
        Ok(Event {
            id,
            platform,
            server_id,
            channel_id,
            user: Sender {
                id: user_id,
                name: username,
                display_name,
                badges,
                level,
            },
            kind,
            text: self.message,
            metadata,
            timestamp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<Event, String> {
        serde_json::from_value::<InboundEvent>(json)
            .map_err(|e| e.to_string())?
            .into_event()
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "platform": "twitch", "server_id": "pond", "channel_id": "pond",
            "user_id": "42", "username": "alice", "message": "!ping"
        })
    }

    #[test]
    fn a_chat_message_with_twitch_flags_gets_its_level() {
        let mut json = base();
        json["metadata"] = serde_json::json!({"is_mod": true, "badges": {"subscriber": "12"}});
        let event = parse(json).expect("valid");
        assert_eq!(event.kind, EventKind::ChatMessage);
        assert_eq!(event.user.level, PermissionLevel::Moderator);
        assert_eq!(event.user.badges[0].version, "12");
    }

    #[test]
    fn eventsub_shapes_become_typed_kinds() {
        let mut json = base();
        json["message"] = "".into();
        json["message_type"] = "subscription".into();
        json["metadata"] = serde_json::json!({"tier": "3000", "is_gift": true});
        assert_eq!(
            parse(json.clone()).expect("valid").kind,
            EventKind::Subscription {
                tier: SubscriptionTier::Tier3,
                months: 1,
                gift: Some(Gift {
                    count: 1,
                    anonymous: false
                })
            }
        );
        json["message_type"] = "raid".into();
        json["metadata"] = serde_json::json!({"viewers": 250});
        assert_eq!(
            parse(json).expect("valid").kind,
            EventKind::Raid { viewers: 250 }
        );
    }

    #[test]
    fn slack_subcommands_are_slash_commands() {
        let mut json = base();
        json["platform"] = "slack".into();
        json["message_type"] = "slashCommand".into();
        json["message"] = "hello there".into();
        json["metadata"] = serde_json::json!({"command": "/waddlebot", "subcommand": "ping"});
        assert_eq!(
            parse(json).expect("valid").kind,
            EventKind::SlashCommand {
                name: "ping".into()
            }
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let mut json = base();
        json["platform"] = "myspace".into();
        assert!(
            parse(json)
                .unwrap_err()
                .contains("unknown platform 'myspace'")
        );
        let mut json = base();
        json["channel_id"] = "   ".into();
        assert!(parse(json).unwrap_err().contains("channel_id"));
        let mut json = base();
        json["message"] = "x".repeat(5001).into();
        assert!(parse(json).unwrap_err().contains("5000"));
        let mut json = base();
        json["message_type"] = "telepathy".into();
        assert!(parse(json).unwrap_err().contains("telepathy"));
        let mut json = base();
        json["colour"] = "red".into();
        assert!(parse(json).unwrap_err().contains("colour"));
    }
}

/// An asynchronous module answer: `POST /router/responses` (the original v1 shape).
#[derive(Debug, Clone, Deserialize)]
pub struct LateResponse {
    /// The session of the event answered.
    pub session_id: String,
    /// The entity of that event (checked against the session).
    pub entity_id: i64,
    /// Who answers.
    pub module_name: String,
    /// Whether the module succeeded; a failure is recorded, nothing is delivered.
    #[serde(default = "yes")]
    pub success: bool,
    /// `chat`, `media`, `ticker`, `general` (or `form`, not supported yet).
    pub response_action: String,
    #[serde(default)]
    chat_message: Option<String>,
    #[serde(default)]
    response_data: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    media_url: Option<String>,
    #[serde(default)]
    ticker_text: Option<String>,
    #[serde(default)]
    ticker_duration: Option<u32>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    duration: Option<u32>,
    /// The module's own error text, when `success` is false.
    #[serde(default)]
    pub error_message: Option<String>,
}

fn yes() -> bool {
    true
}

/// Longest ticker text shown (the original's `MAX_TICKER_LENGTH`): the overlay's limit.
pub use waddlebot_router::overlay::MAX_TICKER_CHARS;

impl LateResponse {
    /// The reply to deliver, or what is wrong with the request.
    pub fn reply(&self) -> Result<waddlebot::Reply, String> {
        use waddlebot::{OverlayReply, Reply};
        let data_text = |key: &str| {
            self.response_data
                .as_ref()
                .and_then(|d| d.get(key))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        let required = |value: Option<String>, field: &str| {
            value
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| format!("response_action '{}' needs {field}", self.response_action))
        };
        Ok(match self.response_action.as_str() {
            "chat" => Reply::text(required(
                self.chat_message.clone().or_else(|| data_text("message")),
                "chat_message",
            )?),
            "ticker" => {
                let text = required(self.ticker_text.clone(), "ticker_text")?;
                if text.chars().count() > MAX_TICKER_CHARS {
                    return Err(format!(
                        "ticker_text is longer than {MAX_TICKER_CHARS} characters"
                    ));
                }
                Reply::Overlay(OverlayReply::Ticker {
                    text,
                    duration_secs: self.ticker_duration.unwrap_or(10),
                })
            }
            "media" => Reply::Overlay(OverlayReply::Media {
                media_type: self
                    .media_type
                    .clone()
                    .unwrap_or_else(|| "image".to_owned()),
                url: required(self.media_url.clone(), "media_url")?,
                duration_secs: self.duration.unwrap_or(30),
            }),
            "general" => Reply::Overlay(OverlayReply::General {
                content: required(self.content.clone(), "content")?,
                duration_secs: self.duration.unwrap_or(10),
            }),
            "form" => return Err("response_action 'form' is not supported yet".to_owned()),
            other => {
                return Err(format!(
                    "unknown response_action '{other}' (expected chat, media, ticker, general or form)"
                ));
            }
        })
    }
}
