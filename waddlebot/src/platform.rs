//! Chat platforms: what they are called, what they can do, and how replies reach them.

use std::fmt;
use std::io::Write;
use std::str::FromStr;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::EventId;
use crate::reply::Reply;

/// Which platform an event came from or a reply goes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum PlatformKind {
    /// Twitch.
    Twitch,
    /// Discord.
    Discord,
    /// Slack.
    Slack,
    /// Kick.
    Kick,
    /// YouTube Live.
    Youtube,
    /// The local terminal (`waddlebot chat`, `waddlebot run`).
    Console,
    /// A platform an embedder plugged in, by its lower-case name.
    Custom(String),
}

impl PlatformKind {
    /// The built-in platforms, in the order error messages list them.
    pub const BUILT_IN: [PlatformKind; 6] = [
        Self::Twitch,
        Self::Discord,
        Self::Slack,
        Self::Kick,
        Self::Youtube,
        Self::Console,
    ];

    /// A platform that is not built in. The name is lower-cased.
    pub fn custom(name: impl Into<String>) -> Self {
        Self::Custom(name.into().to_ascii_lowercase())
    }

    /// The lower-case wire name (`twitch`, `discord`...).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Twitch => "twitch",
            Self::Discord => "discord",
            Self::Slack => "slack",
            Self::Kick => "kick",
            Self::Youtube => "youtube",
            Self::Console => "console",
            Self::Custom(name) => name,
        }
    }

    /// Parses a stored name: built-in names map to their variant, anything else is custom.
    /// Use [`FromStr`] for input from outside, which accepts only built-in names.
    pub fn from_stored(name: &str) -> Self {
        name.parse().unwrap_or_else(|_| Self::custom(name))
    }
}

impl fmt::Display for PlatformKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A platform name that is not one of the built-in platforms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown platform '{0}' (expected one of twitch, discord, slack, kick, youtube, console)")]
pub struct UnknownPlatform(pub String);

impl FromStr for PlatformKind {
    type Err = UnknownPlatform;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Self::BUILT_IN
            .into_iter()
            .find(|kind| kind.as_str() == lower)
            .ok_or_else(|| UnknownPlatform(s.to_owned()))
    }
}

impl Serialize for PlatformKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PlatformKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(Self::from_stored(&name))
    }
}

/// What a platform can do, so the router can adapt replies (split long text, fall back from
/// ephemeral to whisper, from embeds to text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformLimits {
    /// Longest message the platform accepts, in characters.
    pub max_message_len: usize,
    /// Private messages to a user.
    pub whispers: bool,
    /// Messages only one user sees.
    pub ephemeral: bool,
    /// Editing a sent message.
    pub edits: bool,
    /// Rich embeds.
    pub embeds: bool,
    /// How long the platform waits for an answer before the request fails (Discord and Slack:
    /// 3 s). Slower handlers are acknowledged first and answered later. `None`: no deadline.
    pub answer_window: Option<std::time::Duration>,
}

impl Default for PlatformLimits {
    /// Plain text only, Twitch's 500-character limit.
    fn default() -> Self {
        Self {
            max_message_len: 500,
            whispers: false,
            ephemeral: false,
            edits: false,
            embeds: false,
            answer_window: None,
        }
    }
}

/// At most `max` messages per sliding `per` window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Messages allowed per window (at least 1).
    pub max: u32,
    /// The window.
    pub per: std::time::Duration,
}

impl Quota {
    /// `max` per `per`.
    pub const fn new(max: u32, per: std::time::Duration) -> Self {
        Self { max, per }
    }
}

/// How fast the bot may post one outbound, as a platform tells the outbound governor
/// (`waddlebot_router::governor`). Outbounds in the same `lane` are delivered one at a time, in
/// order; the quotas are waited for, never exceeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pacing {
    /// Where the outbound queues: usually the channel, a separate lane for moderation so it
    /// never waits behind chat.
    pub lane: String,
    /// The lane's own budgets, all of which apply (Twitch chat: 20 per 30 s; Twitch whispers:
    /// 3 per second and 100 per minute; Slack: 1 per second).
    pub lane_quotas: Vec<Quota>,
    /// A budget shared by every lane of this platform (Discord: 50 per second).
    pub global_quota: Option<Quota>,
    /// The same text is not sent to the lane twice within this long (Twitch: 30 s); a repeat
    /// waits.
    pub distinct_within: Option<std::time::Duration>,
}

impl Pacing {
    /// No budget: the lane only keeps order.
    pub fn unpaced(lane: impl Into<String>) -> Self {
        Self {
            lane: lane.into(),
            lane_quotas: Vec::new(),
            global_quota: None,
            distinct_within: None,
        }
    }
}

/// A reply addressed to a place on a platform.
#[derive(Debug, Clone, PartialEq)]
pub struct Outbound {
    /// The platform to deliver on.
    pub platform: PlatformKind,
    /// The server (guild, workspace, Twitch channel).
    pub server_id: String,
    /// The channel.
    pub channel_id: String,
    /// The user the reply concerns (whisper target, ephemeral viewer).
    pub user_id: String,
    /// The event this answers, when there is one.
    pub in_reply_to: Option<EventId>,
    /// What to deliver.
    pub reply: Reply,
}

/// Why a platform could not deliver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    /// The platform asked us to slow down; try again after this long.
    #[error("rate limited by the platform; retry after {retry_after:?}")]
    RateLimited {
        /// How long to wait.
        retry_after: std::time::Duration,
    },
    /// The platform cannot do this (a whisper on a platform without whispers...).
    #[error("not supported by this platform: {0}")]
    Unsupported(String),
    /// The platform rejected the request (bad token, missing permission, unknown channel).
    #[error("rejected by the platform: {0}")]
    Rejected(String),
    /// Transport failure.
    #[error("platform unreachable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// One chat platform. Implement [`kind`](Platform::kind) and [`send`](Platform::send); override
/// [`limits`](Platform::limits) when the platform can do more than plain text.
///
/// ```
/// use std::sync::Mutex;
/// use waddlebot::{async_trait, Outbound, Platform, PlatformError, PlatformKind};
///
/// #[derive(Default)]
/// struct Pigeon { sent: Mutex<Vec<String>> }
///
/// #[async_trait]
/// impl Platform for Pigeon {
///     fn kind(&self) -> PlatformKind { PlatformKind::custom("pigeon") }
///     async fn send(&self, outbound: Outbound) -> Result<(), PlatformError> {
///         self.sent.lock().unwrap().push(outbound.reply.to_plain_text());
///         Ok(())
///     }
/// }
///
/// # tokio_test_block_on(async {
/// let pigeon = Pigeon::default();
/// pigeon.send(Outbound {
///     platform: pigeon.kind(),
///     server_id: "loft".into(),
///     channel_id: "roof".into(),
///     user_id: "alice".into(),
///     in_reply_to: None,
///     reply: waddlebot::Reply::text("coo"),
/// }).await.unwrap();
/// assert_eq!(pigeon.sent.lock().unwrap().as_slice(), ["coo"]);
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[async_trait]
pub trait Platform: Send + Sync {
    /// Which platform this is.
    fn kind(&self) -> PlatformKind;

    /// What the platform can do. Defaults to plain text of at most 500 characters.
    fn limits(&self) -> PlatformLimits {
        PlatformLimits::default()
    }

    /// How fast this outbound may go out. The default keeps one lane per channel, unpaced;
    /// the built-in adapters return their platform's published limits.
    async fn pacing(&self, outbound: &Outbound) -> Pacing {
        Pacing::unpaced(format!("{}:{}", outbound.server_id, outbound.channel_id))
    }

    /// Delivers one reply.
    async fn send(&self, outbound: Outbound) -> Result<(), PlatformError>;
}

/// The local terminal as a platform: every reply is written as one plain-text line.
pub struct ConsolePlatform {
    out: Mutex<Box<dyn Write + Send>>,
    prefix: String,
}

impl ConsolePlatform {
    /// Writes replies to standard output.
    pub fn stdout() -> Self {
        Self::new(Box::new(std::io::stdout()))
    }

    /// Writes replies to any writer.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
            prefix: String::new(),
        }
    }

    /// Starts every line with `prefix` (`"bot> "`).
    pub fn prefixed(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

impl fmt::Debug for ConsolePlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsolePlatform").finish_non_exhaustive()
    }
}

#[async_trait]
impl Platform for ConsolePlatform {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Console
    }

    fn limits(&self) -> PlatformLimits {
        PlatformLimits {
            max_message_len: usize::MAX,
            whispers: true,
            ephemeral: true,
            edits: false,
            embeds: false,
            answer_window: None,
        }
    }

    async fn send(&self, outbound: Outbound) -> Result<(), PlatformError> {
        let line = outbound.reply.to_plain_text();
        // A poisoned lock only means another send panicked mid-write; the writer is still usable.
        let mut out = self.out.lock().unwrap_or_else(|poison| poison.into_inner());
        writeln!(out, "{}{line}", self.prefix)
            .and_then(|()| out.flush())
            .map_err(|err| PlatformError::Unavailable(Box::new(err)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_built_in_names_parse_from_input() {
        assert_eq!("Twitch".parse::<PlatformKind>(), Ok(PlatformKind::Twitch));
        assert!("myspace".parse::<PlatformKind>().is_err());
        assert_eq!(
            PlatformKind::from_stored("matrix"),
            PlatformKind::custom("matrix")
        );
    }
}
