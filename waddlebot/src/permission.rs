//! Permission levels for commands, lowest to highest.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a user may run. Levels are ordered: a user may run every command whose minimum level is
/// at or below their own.
///
/// ```
/// use waddlebot::PermissionLevel;
/// assert!(PermissionLevel::Moderator > PermissionLevel::Vip);
/// assert_eq!("mod".parse::<PermissionLevel>().unwrap(), PermissionLevel::Moderator);
/// assert_eq!("owner".parse::<PermissionLevel>().unwrap(), PermissionLevel::Broadcaster);
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum PermissionLevel {
    /// Anyone in chat.
    #[default]
    Everyone,
    /// A follower (Twitch) or member (Discord, Slack) of the community.
    Follower,
    /// A paying subscriber.
    Subscriber,
    /// A VIP.
    Vip,
    /// A moderator.
    Moderator,
    /// The broadcaster or server owner.
    Broadcaster,
    /// A WaddleBot administrator.
    Admin,
}

impl PermissionLevel {
    /// Every level, lowest first.
    pub const ALL: [PermissionLevel; 7] = [
        Self::Everyone,
        Self::Follower,
        Self::Subscriber,
        Self::Vip,
        Self::Moderator,
        Self::Broadcaster,
        Self::Admin,
    ];

    /// The canonical lower-case name, as used in configuration and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Everyone => "everyone",
            Self::Follower => "follower",
            Self::Subscriber => "subscriber",
            Self::Vip => "vip",
            Self::Moderator => "moderator",
            Self::Broadcaster => "broadcaster",
            Self::Admin => "admin",
        }
    }

    /// The highest level granted by a set of platform badge names (Twitch's `broadcaster`,
    /// `moderator`, `vip`, `subscriber`, `founder`; unknown badges grant nothing).
    pub fn from_badges<'a>(badges: impl IntoIterator<Item = &'a str>) -> Self {
        badges
            .into_iter()
            .map(|badge| match badge {
                "broadcaster" | "owner" => Self::Broadcaster,
                "moderator" | "mod" | "staff" | "admin" | "global_mod" => Self::Moderator,
                "vip" => Self::Vip,
                "subscriber" | "founder" => Self::Subscriber,
                _ => Self::Everyone,
            })
            .max()
            .unwrap_or_default()
    }
}

impl fmt::Display for PermissionLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no permission level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown permission level '{0}' (expected everyone, follower, subscriber, vip, moderator, broadcaster or admin)"
)]
pub struct UnknownPermissionLevel(pub String);

impl FromStr for PermissionLevel {
    type Err = UnknownPermissionLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "everyone" | "all" | "viewer" | "user" => Self::Everyone,
            "follower" | "member" => Self::Follower,
            "subscriber" | "sub" => Self::Subscriber,
            "vip" => Self::Vip,
            "moderator" | "mod" => Self::Moderator,
            "broadcaster" | "owner" | "streamer" => Self::Broadcaster,
            "admin" => Self::Admin,
            _ => return Err(UnknownPermissionLevel(s.to_owned())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badges_grant_their_highest_level() {
        assert_eq!(
            PermissionLevel::from_badges(["subscriber", "vip"]),
            PermissionLevel::Vip
        );
        assert_eq!(
            PermissionLevel::from_badges(["premium", "glhf-pledge"]),
            PermissionLevel::Everyone
        );
        assert_eq!(
            PermissionLevel::from_badges(["broadcaster", "subscriber"]),
            PermissionLevel::Broadcaster
        );
    }

    #[test]
    fn names_round_trip() {
        for level in PermissionLevel::ALL {
            assert_eq!(level.as_str().parse::<PermissionLevel>(), Ok(level));
        }
        assert!("wizard".parse::<PermissionLevel>().is_err());
    }
}
