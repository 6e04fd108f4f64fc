//! Twitch chat over IRC: the IRCv3 line format (tags, prefix, command, parameters) and the
//! mapping of Twitch's chat lines to events. An alternative to EventSub + Helix for bots that
//! prefer one socket; [`IrcMessage`] knows nothing Twitch-specific and round-trips any line it
//! parses.
//!
//! ```
//! use waddlebot::platforms::irc::IrcMessage;
//!
//! let line = "@badges=moderator/1;display-name=Alice;user-id=42 :alice!alice@alice.tmi.twitch.tv PRIVMSG #pond :hello\\sthere";
//! let message: IrcMessage = line.parse().unwrap();
//! assert_eq!(message.command, "PRIVMSG");
//! assert_eq!(message.tag("display-name"), Some("Alice"));
//! assert_eq!(message.params, ["#pond", "hello\\sthere"]);
//! assert_eq!(message.to_string(), line);
//! ```

use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;

use super::twitch::{NON_CHAT_ID_PREFIX, level_from_badges};
use crate::event::{Badge, Event, EventKind, Gift, ModerationAction, Sender, SubscriptionTier};
use crate::id::EventId;
use crate::platform::PlatformKind;

/// One IRC line, without its CRLF.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IrcMessage {
    /// IRCv3 tags in the order they came, values unescaped (`\s` → space, `\:` → `;`...).
    pub tags: Vec<(String, String)>,
    /// Where the line came from (`nick!user@host` or a server name), without the `:`.
    pub prefix: Option<String>,
    /// The command (`PRIVMSG`, `PING`, `001`...).
    pub command: String,
    /// The parameters; the last may contain spaces.
    pub params: Vec<String>,
    /// Whether the last parameter was written after ` :` (needed to write the line back exactly;
    /// a last parameter that is empty, has a space or starts with `:` is always written so).
    pub trailing: bool,
}

/// A line that is not IRC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IrcError {
    /// Nothing but whitespace.
    #[error("empty IRC line")]
    Empty,
    /// Tags or a prefix with no command after them.
    #[error("IRC line without a command: {0:?}")]
    NoCommand(String),
    /// A command that is neither letters nor a three-digit number.
    #[error("invalid IRC command {0:?}")]
    BadCommand(String),
    /// A CR, LF or NUL inside the line.
    #[error("IRC line contains CR, LF or NUL")]
    ControlCharacter,
}

impl IrcMessage {
    /// A line with this command and parameters (the last written as trailing).
    pub fn new(
        command: impl Into<String>,
        params: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            command: command.into(),
            params: params.into_iter().map(Into::into).collect(),
            trailing: true,
            ..Self::default()
        }
    }

    /// Adds a tag.
    #[must_use]
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// A tag's (unescaped) value; an empty value is `Some("")`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The nick of `nick!user@host`, or the whole prefix when it is a server.
    pub fn nick(&self) -> Option<&str> {
        let prefix = self.prefix.as_deref()?;
        Some(prefix.split(['!', '@']).next().unwrap_or(prefix))
    }

    /// Parameter `index`, if there.
    pub fn param(&self, index: usize) -> Option<&str> {
        self.params.get(index).map(String::as_str)
    }
}

/// Reverses IRCv3 tag-value escaping. An unknown escape keeps the character; a lone trailing
/// backslash is dropped (both as the specification says).
pub fn unescape_tag_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// IRCv3 tag-value escaping.
pub fn escape_tag_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            ';' => out.push_str("\\:"),
            ' ' => out.push_str("\\s"),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
}

impl FromStr for IrcMessage {
    type Err = IrcError;

    fn from_str(line: &str) -> Result<Self, Self::Err> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.contains(['\r', '\n', '\0']) {
            return Err(IrcError::ControlCharacter);
        }
        let mut rest = line.trim_start_matches(' ');
        if rest.is_empty() {
            return Err(IrcError::Empty);
        }
        let mut message = Self::default();
        if let Some(tagged) = rest.strip_prefix('@') {
            let (tags, after) = tagged
                .split_once(' ')
                .ok_or_else(|| IrcError::NoCommand(line.to_owned()))?;
            message.tags = tags
                .split(';')
                .filter(|tag| !tag.is_empty())
                .map(|tag| match tag.split_once('=') {
                    Some((key, value)) => (key.to_owned(), unescape_tag_value(value)),
                    None => (tag.to_owned(), String::new()),
                })
                .collect();
            rest = after.trim_start_matches(' ');
        }
        if let Some(prefixed) = rest.strip_prefix(':') {
            let (prefix, after) = prefixed
                .split_once(' ')
                .ok_or_else(|| IrcError::NoCommand(line.to_owned()))?;
            message.prefix = Some(prefix.to_owned());
            rest = after.trim_start_matches(' ');
        }
        let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
        if command.is_empty() {
            return Err(IrcError::NoCommand(line.to_owned()));
        }
        let numeric = command.len() == 3 && command.bytes().all(|b| b.is_ascii_digit());
        if !numeric && !command.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(IrcError::BadCommand(command.to_owned()));
        }
        message.command = command.to_owned();
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.is_empty() {
                break;
            }
            if let Some(trailing) = rest.strip_prefix(':') {
                message.params.push(trailing.to_owned());
                message.trailing = true;
                break;
            }
            let (param, after) = rest.split_once(' ').unwrap_or((rest, ""));
            message.params.push(param.to_owned());
            rest = after;
        }
        Ok(message)
    }
}

impl fmt::Display for IrcMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = String::new();
        if !self.tags.is_empty() {
            line.push('@');
            for (i, (key, value)) in self.tags.iter().enumerate() {
                if i > 0 {
                    line.push(';');
                }
                line.push_str(key);
                line.push('=');
                escape_tag_value(value, &mut line);
            }
            line.push(' ');
        }
        if let Some(prefix) = &self.prefix {
            let _ = write!(line, ":{prefix} ");
        }
        line.push_str(&self.command);
        if let Some((last, middle)) = self.params.split_last() {
            for param in middle {
                let _ = write!(line, " {param}");
            }
            let needs_colon =
                self.trailing || last.is_empty() || last.contains(' ') || last.starts_with(':');
            line.push(' ');
            if needs_colon {
                line.push(':');
            }
            line.push_str(last);
        }
        f.write_str(&line)
    }
}

/// What a Twitch IRC line means for the bot.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TwitchLine {
    /// Chat or a channel event for the router.
    Event(Box<Event>),
    /// `PING`: answer with this `PONG` at once.
    Ping(IrcMessage),
    /// `RECONNECT`: Twitch is about to drop the connection; connect again.
    Reconnect,
    /// `001`: logged in.
    Welcome,
    /// `NOTICE` saying the login failed.
    LoginFailed(String),
    /// Anything else (`JOIN` echoes, `ROOMSTATE`, `USERSTATE`, capabilities...).
    Other,
}

/// Reads one line from Twitch: chat messages (`PRIVMSG`), subscriptions, gifts and raids
/// (`USERNOTICE`), bans and timeouts (`CLEARCHAT`), and the connection's own lines.
pub fn twitch_line(message: &IrcMessage) -> TwitchLine {
    match message.command.as_str() {
        "PING" => TwitchLine::Ping(IrcMessage::new("PONG", message.params.clone())),
        "RECONNECT" => TwitchLine::Reconnect,
        "001" => TwitchLine::Welcome,
        "NOTICE"
            if message.param(1).is_some_and(|text| {
                text.contains("Login authentication failed")
                    || text.contains("Improperly formatted auth")
            }) =>
        {
            TwitchLine::LoginFailed(message.param(1).unwrap_or_default().to_owned())
        }
        "PRIVMSG" | "USERNOTICE" | "CLEARCHAT" => event_from_line(message)
            .map_or(TwitchLine::Other, |event| {
                TwitchLine::Event(Box::new(event))
            }),
        _ => TwitchLine::Other,
    }
}

/// The chatter a line is about, from its tags.
fn sender(message: &IrcMessage) -> Sender {
    let login = message
        .tag("login")
        .filter(|login| !login.is_empty())
        .or_else(|| message.nick())
        .unwrap_or("unknown");
    let mut sender = Sender::new(login);
    if let Some(id) = message.tag("user-id").filter(|id| !id.is_empty()) {
        sender.id = id.to_owned();
    }
    sender.display_name = message
        .tag("display-name")
        .filter(|name| !name.is_empty() && *name != login)
        .map(str::to_owned);
    sender.badges = message
        .tag("badges")
        .unwrap_or_default()
        .split(',')
        .filter(|badge| !badge.is_empty())
        .map(|badge| {
            let (name, version) = badge.split_once('/').unwrap_or((badge, ""));
            Badge {
                name: name.to_owned(),
                version: version.to_owned(),
            }
        })
        .collect();
    sender.level = level_from_badges(&sender.badges);
    sender
}

/// Twitch names anonymous gifters `AnAnonymousGifter`.
fn anonymous_gifter(message: &IrcMessage) -> bool {
    message
        .tag("login")
        .is_some_and(|login| login.eq_ignore_ascii_case("ananonymousgifter"))
}

fn number(message: &IrcMessage, tag: &str) -> Option<u64> {
    message.tag(tag)?.parse().ok()
}

/// A Twitch chat, `USERNOTICE` or `CLEARCHAT` line as an event, keyed like EventSub's: server
/// and channel are the broadcaster's user id (`room-id`), the login is `channel_name` metadata.
pub fn event_from_line(message: &IrcMessage) -> Option<Event> {
    let room = message
        .tag("room-id")
        .filter(|id| !id.is_empty())?
        .to_owned();
    let channel_login = message.param(0)?.trim_start_matches('#').to_owned();
    let make = |user: Sender, kind: EventKind, text: &str| {
        let mut event = Event::new(
            PlatformKind::Twitch,
            room.clone(),
            room.clone(),
            user,
            kind,
            text,
        );
        event.metadata.insert(
            "channel_name".to_owned(),
            Value::from(channel_login.as_str()),
        );
        if let Some(sent) = number(message, "tmi-sent-ts") {
            event.timestamp = UNIX_EPOCH + Duration::from_millis(sent);
        }
        event
    };
    let tier = || {
        message
            .tag("msg-param-sub-plan")
            .and_then(SubscriptionTier::from_platform)
            .unwrap_or_default()
    };
    let notice_id = |event: &mut Event| {
        if let Some(id) = message.tag("id") {
            event.id = EventId(format!("{NON_CHAT_ID_PREFIX}{id}"));
        }
    };
    match message.command.as_str() {
        "PRIVMSG" => {
            let raw = message.param(1)?;
            // `/me` arrives as CTCP ACTION.
            let text = raw
                .strip_prefix("\u{1}ACTION ")
                .map_or(raw, |action| action.trim_end_matches('\u{1}'));
            let mut event = make(sender(message), EventKind::ChatMessage, text);
            if let Some(id) = message.tag("id") {
                event.id = EventId(id.to_owned());
            }
            if let Some(parent) = message.tag("reply-parent-msg-id") {
                event
                    .metadata
                    .insert("reply_parent_message_id".to_owned(), Value::from(parent));
            }
            Some(event)
        }
        "USERNOTICE" => {
            let text = message.param(1).unwrap_or_default();
            let months = || {
                number(message, "msg-param-cumulative-months")
                    .and_then(|m| u32::try_from(m).ok())
                    .unwrap_or(1)
            };
            let kind = match message.tag("msg-id")? {
                "sub" => EventKind::Subscription {
                    tier: tier(),
                    months: 1,
                    gift: None,
                },
                "resub" => EventKind::Subscription {
                    tier: tier(),
                    months: months(),
                    gift: None,
                },
                "submysterygift" => EventKind::Subscription {
                    tier: tier(),
                    months: 1,
                    gift: Some(Gift {
                        count: number(message, "msg-param-mass-gift-count")
                            .and_then(|n| u32::try_from(n).ok())
                            .unwrap_or(1),
                        anonymous: anonymous_gifter(message),
                    }),
                },
                // A gift inside a mystery gift repeats what `submysterygift` announced.
                "subgift" if message.tag("msg-param-community-gift-id").is_some() => return None,
                "subgift" => EventKind::Subscription {
                    tier: tier(),
                    months: 1,
                    gift: Some(Gift {
                        count: 1,
                        anonymous: anonymous_gifter(message),
                    }),
                },
                "raid" => EventKind::Raid {
                    viewers: number(message, "msg-param-viewerCount").unwrap_or(0),
                },
                _ => return None,
            };
            let mut event = make(sender(message), kind, text);
            notice_id(&mut event);
            Some(event)
        }
        "CLEARCHAT" => {
            // Without a target the whole chat was cleared: not a moderation of anyone.
            let target = message.tag("target-user-id")?.to_owned();
            let action = match number(message, "ban-duration") {
                Some(seconds) => ModerationAction::Timeout {
                    user_id: target,
                    seconds,
                    reason: None,
                },
                None => ModerationAction::Ban {
                    user_id: target,
                    reason: None,
                },
            };
            // IRC does not say which moderator acted: the channel stands for them.
            let mut channel = Sender::new(channel_login.as_str());
            channel.id.clone_from(&room);
            let mut event = make(channel, EventKind::Moderation(action), "");
            notice_id(&mut event);
            Some(event)
        }
        _ => None,
    }
}

#[cfg(feature = "twitch-ws")]
mod client;
#[cfg(feature = "twitch-ws")]
pub use client::{DEFAULT_IRC_URL, IrcConfig, IrcStatus, JoinPacer, TwitchIrc};
