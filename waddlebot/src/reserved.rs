//! Command names the platforms use themselves (`/ban`, `/me`...): a community command or alias
//! with one of these names would clash with the platform's own, so they are refused.
//! Lists from the original system (reference §3.5).

use crate::platform::PlatformKind;

const TWITCH: &[&str] = &[
    "ban",
    "unban",
    "timeout",
    "untimeout",
    "slow",
    "slowoff",
    "followers",
    "followersoff",
    "subscribers",
    "subscribersoff",
    "clear",
    "uniquechat",
    "uniquechatoff",
    "emoteonly",
    "emoteonlyoff",
    "commercial",
    "host",
    "unhost",
    "raid",
    "unraid",
    "marker",
    "mod",
    "unmod",
    "vip",
    "unvip",
    "block",
    "unblock",
    "color",
    "disconnect",
    "help",
    "me",
    "mods",
    "vips",
    "vote",
    "w",
];
const DISCORD: &[&str] = &[
    "ban", "kick", "timeout", "mute", "unmute", "deafen", "undeafen", "move", "nick", "role",
    "slowmode", "purge", "lock", "unlock",
];
const SLACK: &[&str] = &[
    "archive",
    "call",
    "collapse",
    "dnd",
    "expand",
    "feed",
    "invite",
    "invite_people",
    "kick",
    "leave",
    "me",
    "msg",
    "mute",
    "open",
    "prefs",
    "remind",
    "remove",
    "rename",
    "search",
    "shrug",
    "shortcuts",
    "star",
    "status",
    "topic",
    "who",
];
const YOUTUBE: &[&str] = &[
    "ban",
    "unban",
    "slow",
    "slowoff",
    "membersonly",
    "membersonlyoff",
];
const KICK: &[&str] = &[
    "ban",
    "unban",
    "timeout",
    "untimeout",
    "slow",
    "slowoff",
    "clear",
    "mod",
    "unmod",
    "vip",
    "unvip",
];

/// The platforms on which `name` (without prefix, any case) is a native command.
///
/// ```
/// use waddlebot::PlatformKind;
/// use waddlebot::reserved::conflicting_platforms;
/// assert_eq!(conflicting_platforms("/me"), [PlatformKind::Twitch, PlatformKind::Slack]);
/// assert!(conflicting_platforms("hello").is_empty());
/// ```
pub fn conflicting_platforms(name: &str) -> Vec<PlatformKind> {
    let name = crate::normalize_command_name(name);
    [
        (PlatformKind::Twitch, TWITCH),
        (PlatformKind::Discord, DISCORD),
        (PlatformKind::Slack, SLACK),
        (PlatformKind::Youtube, YOUTUBE),
        (PlatformKind::Kick, KICK),
    ]
    .into_iter()
    .filter(|(_, names)| names.contains(&name.as_str()))
    .map(|(platform, _)| platform)
    .collect()
}

/// Whether `name` is a native command on any platform.
pub fn is_reserved(name: &str) -> bool {
    !conflicting_platforms(name).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ban_clashes_on_four_platforms() {
        assert_eq!(
            conflicting_platforms("!BAN"),
            [
                PlatformKind::Twitch,
                PlatformKind::Discord,
                PlatformKind::Youtube,
                PlatformKind::Kick
            ]
        );
        assert!(!is_reserved("quote"));
    }
}
