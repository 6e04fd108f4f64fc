//! Platform adapters, each behind its feature: `twitch`, `slack`, `discord`.
//!
//! An adapter does three things:
//! - verifies an inbound webhook (signature over the raw body, timestamp window, replayed ids)
//!   before it reads a single field of the body;
//! - turns a verified payload into [`Event`](crate::Event)s;
//! - implements [`Platform`](crate::Platform) against the platform's REST API, whose base URL
//!   can be pointed elsewhere (staging, a test double).
//!
//! The server only passes bytes and headers through; nothing here knows about HTTP serving.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[cfg(feature = "discord")]
pub mod discord;
#[cfg(feature = "twitch")]
pub mod irc;
#[cfg(feature = "slack")]
pub mod slack;
#[cfg(any(feature = "twitch-ws", feature = "discord-gateway"))]
mod socket;
#[cfg(feature = "twitch")]
pub mod twitch;

/// Why an inbound webhook was refused. Every variant is decided before the body is parsed,
/// except [`WebhookError::Malformed`], which is decided after the signature checked out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// A required header is missing or not text.
    #[error("missing or unreadable header {0}")]
    MissingHeader(&'static str),
    /// The signature does not match the body.
    #[error("the signature does not match")]
    BadSignature,
    /// The timestamp is outside the accepted window.
    #[error("the message timestamp is outside the accepted window")]
    Stale,
    /// This message id was delivered before.
    #[error("message {0} was already received")]
    Replayed(String),
    /// Signed correctly, but not a payload we understand.
    #[error("malformed payload: {0}")]
    Malformed(String),
}

/// Request headers, looked up case-insensitively: `http::HeaderMap` (what hyper and reqwest
/// give) or a plain map.
pub trait Headers {
    /// The header's value as text, if present.
    fn header(&self, name: &str) -> Option<&str>;
}

#[cfg(any(feature = "twitch", feature = "slack", feature = "discord"))]
impl Headers for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|value| value.to_str().ok())
    }
}

impl Headers for HashMap<String, String> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Remembers message ids for a while, so a redelivered or replayed message is noticed. Bounded:
/// the oldest ids are forgotten first.
#[derive(Debug)]
pub struct SeenIds {
    keep: Duration,
    capacity: usize,
    inner: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    ids: HashMap<String, Instant>,
    /// The same ids, oldest first.
    order: VecDeque<(Instant, String)>,
}

impl SeenIds {
    /// Ids remembered for `keep`, at most `capacity` of them.
    pub fn new(keep: Duration, capacity: usize) -> Self {
        Self {
            keep,
            capacity,
            inner: Mutex::new(Seen::default()),
        }
    }

    /// Records `id`; `false` if it was seen within the window already.
    pub fn first_time(&self, id: &str) -> bool {
        let now = Instant::now();
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let Seen { ids, order } = &mut *guard;
        while let Some((at, _)) = order.front() {
            if now.duration_since(*at) < self.keep {
                break;
            }
            if let Some((_, old)) = order.pop_front() {
                ids.remove(&old);
            }
        }
        if ids.contains_key(id) {
            return false;
        }
        if order.len() >= self.capacity
            && let Some((_, old)) = order.pop_front()
        {
            ids.remove(&old);
        }
        ids.insert(id.to_owned(), now);
        order.push_back((now, id.to_owned()));
        true
    }
}

/// Decodes a hex signature (with its scheme prefix already removed).
#[cfg(any(feature = "twitch", feature = "slack", feature = "discord"))]
fn decode_hex(text: &str) -> Result<Vec<u8>, WebhookError> {
    hex::decode(text.trim()).map_err(|_| WebhookError::BadSignature)
}

/// Checks `expected` (hex, after `prefix`) is the HMAC-SHA256 of `parts` under `secret`, in
/// constant time.
#[cfg(any(feature = "twitch", feature = "slack"))]
fn verify_hmac_sha256(
    secret: &[u8],
    parts: &[&[u8]],
    header: &str,
    prefix: &str,
) -> Result<(), WebhookError> {
    use hmac::{KeyInit, Mac};
    let signature = header
        .strip_prefix(prefix)
        .ok_or(WebhookError::BadSignature)?;
    let signature = decode_hex(signature)?;
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret)
        .map_err(|_| WebhookError::BadSignature)?;
    for part in parts {
        mac.update(part);
    }
    // `verify_slice` compares in constant time.
    mac.verify_slice(&signature)
        .map_err(|_| WebhookError::BadSignature)
}

/// Sends a REST request: a success gives its JSON body (`null` when empty), anything else the
/// matching [`PlatformError`](crate::PlatformError).
#[cfg(any(feature = "twitch", feature = "slack", feature = "discord"))]
async fn send_json(
    request: reqwest::RequestBuilder,
) -> Result<serde_json::Value, crate::PlatformError> {
    send_json_observed(request, |_| {}).await
}

/// [`send_json`], showing the answer's headers (rate-limit headers...) to `observe` first,
/// whatever the status.
#[cfg(any(feature = "twitch", feature = "slack", feature = "discord"))]
async fn send_json_observed(
    request: reqwest::RequestBuilder,
    observe: impl FnOnce(&reqwest::header::HeaderMap),
) -> Result<serde_json::Value, crate::PlatformError> {
    let response = request
        .send()
        .await
        .map_err(|err| crate::PlatformError::Unavailable(err.into()))?;
    observe(response.headers());
    answer_json(response).await
}

/// A REST answer's JSON body (`null` when empty), or the matching error.
#[cfg(any(feature = "twitch", feature = "slack", feature = "discord"))]
async fn answer_json(
    response: reqwest::Response,
) -> Result<serde_json::Value, crate::PlatformError> {
    if !response.status().is_success() {
        return Err(http_error(response).await);
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|err| crate::PlatformError::Unavailable(err.into()))?;
    Ok(serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

/// Refuses a Unix-seconds timestamp further than `window` from `now` (either way).
#[cfg(any(feature = "slack", feature = "discord"))]
fn check_unix_window(
    timestamp: &str,
    now: std::time::SystemTime,
    window: Duration,
) -> Result<(), WebhookError> {
    let sent: u64 = timestamp.trim().parse().map_err(|_| WebhookError::Stale)?;
    let now = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if now.abs_diff(sent) > window.as_secs() {
        return Err(WebhookError::Stale);
    }
    Ok(())
}

/// A REST error answer as a [`PlatformError`](crate::PlatformError): 429 with its wait, 4xx
/// rejected with the body's message, 5xx unavailable.
#[cfg(any(feature = "twitch", feature = "slack", feature = "discord"))]
async fn http_error(response: reqwest::Response) -> crate::PlatformError {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok());
    let body = response.text().await.unwrap_or_default();
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        // Discord puts the wait (seconds, fractional) in the body too.
        let from_body = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("retry_after").and_then(serde_json::Value::as_f64));
        let secs = retry_after.or(from_body).unwrap_or(1.0).clamp(0.0, 3600.0);
        return crate::PlatformError::RateLimited {
            retry_after: Duration::from_secs_f64(secs),
        };
    }
    let message = format!(
        "HTTP {status}: {}",
        body.chars().take(300).collect::<String>()
    );
    if status.is_server_error() {
        crate::PlatformError::Unavailable(message.into())
    } else {
        crate::PlatformError::Rejected(message)
    }
}

/// The words of a reply as a platform message shows them: the text of text, whisper and
/// ephemeral replies (undecorated: the platform marks them private itself), an embed as text;
/// `None` for replies that are not messages (overlay, moderation).
pub fn reply_text(reply: &crate::Reply) -> Option<String> {
    match reply {
        crate::Reply::Text { text }
        | crate::Reply::Whisper { text }
        | crate::Reply::Ephemeral { text } => Some(text.clone()),
        crate::Reply::Embed(embed) => Some(embed.to_text()),
        _ => None,
    }
}

/// Splits text into parts of at most `max` characters, at whitespace where it can (a word longer
/// than `max` is cut). Never returns an empty list for non-empty text.
///
/// ```
/// use waddlebot::platforms::split_message;
/// assert_eq!(split_message("one two three", 7), ["one two", "three"]);
/// assert_eq!(split_message("abcdefgh", 3), ["abc", "def", "gh"]);
/// ```
pub fn split_message(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    for word in text.split_whitespace() {
        let mut word = word;
        let mut word_len = word.chars().count();
        if current_len > 0 && current_len + 1 + word_len <= max {
            current.push(' ');
            current.push_str(word);
            current_len += 1 + word_len;
            continue;
        }
        if current_len > 0 {
            parts.push(std::mem::take(&mut current));
        }
        while word_len > max {
            let cut = word.char_indices().nth(max).map_or(word.len(), |(i, _)| i);
            parts.push(word[..cut].to_owned());
            word = &word[cut..];
            word_len -= max;
        }
        current.push_str(word);
        current_len = word_len;
    }
    if current_len > 0 || parts.is_empty() && !text.trim().is_empty() {
        parts.push(current);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn split_parts_fit_and_keep_every_word(text in "[a-zé ]{0,300}", max in 1_usize..40) {
            let parts = split_message(&text, max);
            for part in &parts {
                proptest::prop_assert!(part.chars().count() <= max);
                proptest::prop_assert!(!part.is_empty());
            }
            let joined: String = parts.concat();
            let original: String = text.split_whitespace().collect();
            proptest::prop_assert_eq!(joined.replace(' ', ""), original);
        }
    }

    #[test]
    fn seen_ids_notice_repeats_and_forget_the_oldest_beyond_capacity() {
        let seen = SeenIds::new(Duration::from_secs(600), 2);
        assert!(seen.first_time("a"));
        assert!(!seen.first_time("a"), "a repeat is noticed");
        assert!(seen.first_time("b"));
        assert!(seen.first_time("c"), "c pushes a out");
        assert!(seen.first_time("a"), "a was forgotten");
        assert!(!seen.first_time("c"));
    }

    #[test]
    fn header_maps_are_case_insensitive() {
        let headers: HashMap<String, String> =
            [("Twitch-Eventsub-Message-Id".to_owned(), "x".to_owned())].into();
        assert_eq!(headers.header("twitch-eventsub-message-id"), Some("x"));
        assert_eq!(headers.header("other"), None);
    }
}
