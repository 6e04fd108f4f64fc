//! What handlers answer with. Handlers return [`Reply`] values; the router delivers them.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::event::ModerationAction;

/// One thing the bot says or does in answer to an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reply {
    /// Text in the channel the event came from.
    Text {
        /// The message.
        text: String,
    },
    /// A private message (whisper, DM) to the user who triggered the event.
    Whisper {
        /// The message.
        text: String,
    },
    /// A message only the triggering user sees (Discord and Slack); text-only platforms fall back
    /// to a whisper.
    Ephemeral {
        /// The message.
        text: String,
    },
    /// A rich message (Discord embed, Slack blocks); text-only platforms get [`Embed::to_text`].
    Embed(Embed),
    /// Something for the community's OBS overlay.
    Overlay(OverlayReply),
    /// A moderation action against a user.
    Moderate(ModerationAction),
}

impl Reply {
    /// A text reply in the originating channel.
    ///
    /// ```
    /// use waddlebot::Reply;
    /// assert_eq!(Reply::text("pong").to_plain_text(), "pong");
    /// ```
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text { text: text.into() }
    }

    /// A whisper / DM to the triggering user.
    pub fn whisper(text: impl Into<String>) -> Self {
        Self::Whisper { text: text.into() }
    }

    /// A reply only the triggering user sees.
    pub fn ephemeral(text: impl Into<String>) -> Self {
        Self::Ephemeral { text: text.into() }
    }

    /// How the reply reads on a platform that can only show plain text (the console, logs).
    pub fn to_plain_text(&self) -> String {
        match self {
            Self::Text { text } => text.clone(),
            Self::Whisper { text } => format!("(whisper) {text}"),
            Self::Ephemeral { text } => format!("(only you) {text}"),
            Self::Embed(embed) => embed.to_text(),
            Self::Overlay(overlay) => format!("[overlay] {}", overlay.describe()),
            Self::Moderate(action) => format!("[moderation] {action:?}"),
        }
    }
}

/// A rich message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Embed {
    /// Title line.
    pub title: String,
    /// Body text.
    #[serde(default)]
    pub description: String,
    /// Name/value fields.
    #[serde(default)]
    pub fields: Vec<EmbedField>,
    /// Accent colour, `0xRRGGBB`.
    #[serde(default)]
    pub color: Option<u32>,
}

/// One name/value pair of an [`Embed`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedField {
    /// Field name.
    pub name: String,
    /// Field value.
    pub value: String,
    /// Shown beside the previous field where the platform can.
    #[serde(default)]
    pub inline: bool,
}

impl Embed {
    /// The embed as plain text: title, description, then `name: value` lines.
    pub fn to_text(&self) -> String {
        let mut out = self.title.clone();
        if !self.description.is_empty() {
            if !out.is_empty() {
                out.push_str(" — ");
            }
            out.push_str(&self.description);
        }
        for field in &self.fields {
            let _ = write!(out, " | {}: {}", field.name, field.value);
        }
        out
    }
}

/// Content for the OBS overlay (the original's `response_action` media / ticker / general).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OverlayReply {
    /// A scrolling ticker line.
    Ticker {
        /// The text (at most 200 characters are shown).
        text: String,
        /// Seconds on screen.
        duration_secs: u32,
    },
    /// An image, video or sound.
    Media {
        /// `image`, `video` or `audio`.
        media_type: String,
        /// Where to load it from.
        url: String,
        /// Seconds on screen.
        duration_secs: u32,
    },
    /// HTML content (sanitised to a small allow-list before it is shown).
    General {
        /// The HTML.
        content: String,
        /// Seconds on screen, 0 = until replaced.
        duration_secs: u32,
    },
    /// A stream alert: a follow, subscription, raid, cheer...
    Alert {
        /// The event kind name (`follow`, `subscription`, `raid`...), for styling.
        kind: String,
        /// The headline (`pingu followed!`).
        title: String,
        /// A second line, may be empty.
        #[serde(default)]
        text: String,
        /// Seconds on screen.
        duration_secs: u32,
    },
    /// A line of captions (speech to text, translation).
    Caption {
        /// Who spoke.
        username: String,
        /// What was said.
        text: String,
        /// The translation, when there is one.
        #[serde(default)]
        translated: Option<String>,
        /// Seconds on screen.
        duration_secs: u32,
    },
    /// The song playing now.
    NowPlaying {
        /// Track title.
        title: String,
        /// Artist(s).
        #[serde(default)]
        artist: String,
        /// Cover art.
        #[serde(default)]
        image_url: Option<String>,
        /// Seconds on screen, 0 = until replaced.
        duration_secs: u32,
    },
}

impl OverlayReply {
    /// Every overlay source, as [`source`](Self::source) names them.
    pub const SOURCES: [&'static str; 6] = [
        "ticker",
        "media",
        "general",
        "alerts",
        "captions",
        "now-playing",
    ];

    /// The overlay source that shows it: `ticker`, `media`, `general`, `alerts`, `captions` or
    /// `now-playing` (also the path of its page, `/overlay/<key>/<source>`).
    ///
    /// ```
    /// use waddlebot::OverlayReply;
    /// let ticker = OverlayReply::Ticker { text: "Hi".into(), duration_secs: 10 };
    /// assert_eq!(ticker.source(), "ticker");
    /// ```
    pub fn source(&self) -> &'static str {
        match self {
            Self::Ticker { .. } => "ticker",
            Self::Media { .. } => "media",
            Self::General { .. } => "general",
            Self::Alert { .. } => "alerts",
            Self::Caption { .. } => "captions",
            Self::NowPlaying { .. } => "now-playing",
        }
    }

    /// Seconds on screen (0 = until replaced).
    pub fn duration_secs(&self) -> u32 {
        match self {
            Self::Ticker { duration_secs, .. }
            | Self::Media { duration_secs, .. }
            | Self::General { duration_secs, .. }
            | Self::Alert { duration_secs, .. }
            | Self::Caption { duration_secs, .. }
            | Self::NowPlaying { duration_secs, .. } => *duration_secs,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Ticker { text, .. } => format!("ticker: {text}"),
            Self::Media {
                media_type, url, ..
            } => format!("{media_type}: {url}"),
            Self::General { content, .. } => format!("html: {content}"),
            Self::Alert { title, text, .. } if text.is_empty() => format!("alert: {title}"),
            Self::Alert { title, text, .. } => format!("alert: {title} — {text}"),
            Self::Caption { username, text, .. } => format!("caption: {username}: {text}"),
            Self::NowPlaying { title, artist, .. } => format!("now playing: {title} — {artist}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_overlay_item_names_a_listed_source() {
        let items = [
            OverlayReply::Ticker {
                text: String::new(),
                duration_secs: 0,
            },
            OverlayReply::Media {
                media_type: String::new(),
                url: String::new(),
                duration_secs: 0,
            },
            OverlayReply::General {
                content: String::new(),
                duration_secs: 0,
            },
            OverlayReply::Alert {
                kind: String::new(),
                title: String::new(),
                text: String::new(),
                duration_secs: 0,
            },
            OverlayReply::Caption {
                username: String::new(),
                text: String::new(),
                translated: None,
                duration_secs: 0,
            },
            OverlayReply::NowPlaying {
                title: String::new(),
                artist: String::new(),
                image_url: None,
                duration_secs: 0,
            },
        ];
        let named: Vec<&str> = items.iter().map(OverlayReply::source).collect();
        assert_eq!(named, OverlayReply::SOURCES);
    }

    #[test]
    fn replies_serialise_with_a_type_tag() {
        let json = serde_json::to_value(Reply::text("hi")).expect("serialises");
        assert_eq!(json, serde_json::json!({"type": "text", "text": "hi"}));
    }

    #[test]
    fn embeds_read_as_text_on_text_platforms() {
        let embed = Embed {
            title: "Quote #3".into(),
            description: "Waddle on".into(),
            fields: vec![EmbedField {
                name: "by".into(),
                value: "pingu".into(),
                inline: false,
            }],
            color: None,
        };
        assert_eq!(embed.to_text(), "Quote #3 — Waddle on | by: pingu");
    }
}
