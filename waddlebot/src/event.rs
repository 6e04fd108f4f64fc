//! The normalised inbound event: every chat message and platform happening becomes one [`Event`].

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::id::EventId;
use crate::permission::PermissionLevel;
use crate::platform::PlatformKind;

/// Free-form platform data that has no typed home (yet). Kept at the edge, clearly named.
pub type Metadata = serde_json::Map<String, serde_json::Value>;

/// One thing that happened on a platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique per delivery source; duplicates are dropped by id.
    pub id: EventId,
    /// Where it came from.
    pub platform: PlatformKind,
    /// The server (Discord guild, Slack workspace); for Twitch the channel itself.
    pub server_id: String,
    /// The channel inside the server.
    pub channel_id: String,
    /// Who did it.
    pub user: Sender,
    /// What happened.
    pub kind: EventKind,
    /// The message text ("" for events without text).
    pub text: String,
    /// Anything else the platform said.
    #[serde(default)]
    pub metadata: Metadata,
    /// When it happened.
    pub timestamp: SystemTime,
}

impl Event {
    /// A chat message, the most common event. Other fields can be set on the returned value.
    ///
    /// ```
    /// use waddlebot::{Event, EventKind, PlatformKind};
    /// let event = Event::chat(PlatformKind::Console, "local", "console", "alice", "!ping");
    /// assert_eq!(event.kind, EventKind::ChatMessage);
    /// assert_eq!(event.user.name, "alice");
    /// ```
    pub fn chat(
        platform: PlatformKind,
        server_id: impl Into<String>,
        channel_id: impl Into<String>,
        user: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Self::new(
            platform,
            server_id,
            channel_id,
            Sender::new(user),
            EventKind::ChatMessage,
            text,
        )
    }

    /// Any event, with a random id and the current time.
    pub fn new(
        platform: PlatformKind,
        server_id: impl Into<String>,
        channel_id: impl Into<String>,
        user: Sender,
        kind: EventKind,
        text: impl Into<String>,
    ) -> Self {
        Self {
            id: EventId::random(),
            platform,
            server_id: server_id.into(),
            channel_id: channel_id.into(),
            user,
            kind,
            text: text.into(),
            metadata: Metadata::new(),
            timestamp: SystemTime::now(),
        }
    }

    /// The same event with the sender's permission level replaced.
    pub fn with_level(mut self, level: PermissionLevel) -> Self {
        self.user.level = level;
        self
    }
}

/// The user behind an event, as the platform knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    /// The platform's stable user id.
    pub id: String,
    /// The login / user name.
    pub name: String,
    /// The name shown in chat, if it differs.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Platform badges (`broadcaster`, `moderator`, `subscriber`...).
    #[serde(default)]
    pub badges: Vec<Badge>,
    /// The level the platform's badges and roles give this user.
    #[serde(default)]
    pub level: PermissionLevel,
}

impl Sender {
    /// A user whose id and name are the same, at level everyone.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            id: name.clone(),
            name,
            display_name: None,
            badges: Vec::new(),
            level: PermissionLevel::Everyone,
        }
    }

    /// The display name if there is one, else the user name.
    pub fn shown_name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.name)
    }
}

/// A platform badge such as Twitch's `subscriber/12`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Badge {
    /// Badge name (`subscriber`).
    pub name: String,
    /// Badge version (`12`), "" when the platform has none.
    #[serde(default)]
    pub version: String,
}

/// What kind of thing happened. New kinds are added as variants so the compiler finds every
/// place that has to handle them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A chat message (which may be a `!command`).
    ChatMessage,
    /// A platform slash command (`/waddlebot ping` on Slack, `/ping` on Discord).
    SlashCommand {
        /// The command name without `/` (for Slack's `/waddlebot <sub>`, the sub-command).
        name: String,
    },
    /// A button click, select or modal submit, routed by `custom_id` = `module:action:context`.
    ComponentInteraction {
        /// The component's custom id.
        custom_id: String,
        /// Selected values, if any.
        #[serde(default)]
        values: Vec<String>,
    },
    /// A new follower.
    Follow,
    /// A subscription, re-subscription or gift.
    Subscription {
        /// The tier.
        tier: SubscriptionTier,
        /// Cumulative months (1 for a new subscription).
        months: u32,
        /// Set when the subscription was gifted.
        gift: Option<Gift>,
    },
    /// An incoming raid.
    Raid {
        /// How many viewers came along.
        viewers: u64,
    },
    /// Bits cheered.
    Cheer {
        /// How many bits.
        bits: u64,
    },
    /// A donation or tip.
    Donation {
        /// The amount in the currency's main unit.
        amount: f64,
        /// ISO 4217 code, "" when unknown.
        currency: String,
    },
    /// Someone joined the server or channel.
    MemberJoin,
    /// Someone left the server or channel.
    MemberLeave,
    /// The stream went live.
    StreamOnline,
    /// The stream ended.
    StreamOffline,
    /// A moderator acted on a user.
    Moderation(ModerationAction),
    /// Anything else, by name (`boost`, `reaction`...).
    Custom {
        /// The platform's name for it.
        name: String,
    },
}

impl EventKind {
    /// The [`name`](Self::name) of every kind but [`Custom`](Self::Custom).
    pub const NAMES: &'static [&'static str] = &[
        "chat_message",
        "slash_command",
        "component_interaction",
        "follow",
        "subscription",
        "raid",
        "cheer",
        "donation",
        "member_join",
        "member_leave",
        "stream_online",
        "stream_offline",
        "moderation",
    ];

    /// A short stable name for logs and metrics (`chat_message`, `raid`...).
    pub fn name(&self) -> &str {
        match self {
            Self::ChatMessage => "chat_message",
            Self::SlashCommand { .. } => "slash_command",
            Self::ComponentInteraction { .. } => "component_interaction",
            Self::Follow => "follow",
            Self::Subscription { .. } => "subscription",
            Self::Raid { .. } => "raid",
            Self::Cheer { .. } => "cheer",
            Self::Donation { .. } => "donation",
            Self::MemberJoin => "member_join",
            Self::MemberLeave => "member_leave",
            Self::StreamOnline => "stream_online",
            Self::StreamOffline => "stream_offline",
            Self::Moderation(_) => "moderation",
            Self::Custom { name } => name,
        }
    }
}

/// Subscription tiers. Twitch sends `"1000"`, `"2000"`, `"3000"` and `"Prime"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionTier {
    /// Tier 1 (and the default when a platform does not say).
    #[default]
    Tier1,
    /// Tier 2.
    Tier2,
    /// Tier 3.
    Tier3,
    /// Twitch Prime / Turbo.
    Prime,
}

impl SubscriptionTier {
    /// Parses Twitch's tier strings (`1000`, `2000`, `3000`, `Prime`) and the plain `1`, `2`, `3`.
    pub fn from_platform(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "1000" | "1" | "tier1" => Some(Self::Tier1),
            "2000" | "2" | "tier2" => Some(Self::Tier2),
            "3000" | "3" | "tier3" => Some(Self::Tier3),
            "prime" => Some(Self::Prime),
            _ => None,
        }
    }
}

/// Details of a gifted subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gift {
    /// How many subscriptions were gifted in this event.
    pub count: u32,
    /// The gifter chose to stay anonymous.
    pub anonymous: bool,
}

/// A moderation action, inbound (a moderator did it) or outbound (the bot should do it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ModerationAction {
    /// A warning.
    Warn {
        /// The user warned.
        user_id: String,
        /// Why.
        reason: Option<String>,
    },
    /// A timeout.
    Timeout {
        /// The user timed out.
        user_id: String,
        /// For how long.
        seconds: u64,
        /// Why.
        reason: Option<String>,
    },
    /// A kick from the server.
    Kick {
        /// The user kicked.
        user_id: String,
        /// Why.
        reason: Option<String>,
    },
    /// A ban.
    Ban {
        /// The user banned.
        user_id: String,
        /// Why.
        reason: Option<String>,
    },
    /// A deleted message.
    DeleteMessage {
        /// The message's platform id.
        message_id: String,
    },
    /// A role given to a member (Discord roles).
    AddRole {
        /// The member.
        user_id: String,
        /// The role's platform id.
        role_id: String,
        /// Why.
        reason: Option<String>,
    },
    /// A role taken from a member.
    RemoveRole {
        /// The member.
        user_id: String,
        /// The role's platform id.
        role_id: String,
        /// Why.
        reason: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_but_custom_has_its_name_listed() {
        let kinds = [
            EventKind::ChatMessage,
            EventKind::SlashCommand {
                name: "ping".into(),
            },
            EventKind::ComponentInteraction {
                custom_id: "poll:vote:1".into(),
                values: Vec::new(),
            },
            EventKind::Follow,
            EventKind::Subscription {
                tier: SubscriptionTier::Tier1,
                months: 1,
                gift: None,
            },
            EventKind::Raid { viewers: 1 },
            EventKind::Cheer { bits: 1 },
            EventKind::Donation {
                amount: 1.0,
                currency: "USD".into(),
            },
            EventKind::MemberJoin,
            EventKind::MemberLeave,
            EventKind::StreamOnline,
            EventKind::StreamOffline,
            EventKind::Moderation(ModerationAction::Warn {
                user_id: "1".into(),
                reason: None,
            }),
        ];
        let names: Vec<&str> = kinds.iter().map(EventKind::name).collect();
        assert_eq!(names, EventKind::NAMES);
    }

    #[test]
    fn twitch_tier_strings_map_to_their_tier() {
        assert_eq!(
            SubscriptionTier::from_platform("1000"),
            Some(SubscriptionTier::Tier1)
        );
        assert_eq!(
            SubscriptionTier::from_platform("2000"),
            Some(SubscriptionTier::Tier2)
        );
        assert_eq!(
            SubscriptionTier::from_platform("3000"),
            Some(SubscriptionTier::Tier3)
        );
        assert_eq!(
            SubscriptionTier::from_platform("Prime"),
            Some(SubscriptionTier::Prime)
        );
        assert_eq!(SubscriptionTier::from_platform("4000"), None);
    }

    #[test]
    fn events_round_trip_through_json() {
        let mut event = Event::chat(PlatformKind::Twitch, "chan", "chan", "bob", "hi");
        event.kind = EventKind::Subscription {
            tier: SubscriptionTier::Tier2,
            months: 3,
            gift: Some(Gift {
                count: 5,
                anonymous: false,
            }),
        };
        let json = serde_json::to_string(&event).expect("serialises");
        let back: Event = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, event);
    }
}
