//! What each community's OBS overlay shows: the [`OverlayHub`].
//!
//! Every [`Reply::Overlay`](waddlebot::Reply::Overlay) a handler, a remote module or a late
//! reply produces lands here instead of on the chat platform. The hub keeps, per community,
//! what is on screen or waiting for its turn, and pushes each new item to every connected
//! overlay page (the server's `/overlay/<key>` pages subscribe).
//!
//! Sources behave as streamers expect:
//! - `ticker`, `media` and `alerts` are queues: an item starts when the one before it ends, at
//!   most [`MAX_QUEUE`] wait per source (more are dropped with a warning, as the original did);
//! - `general` and `now-playing` replace what was there (duration 0 = until replaced);
//! - `captions` show at once and are replayed for [`CAPTION_REPLAY`] to a page that connects.
//!
//! Ticker text is cut at [`MAX_TICKER_CHARS`]; general HTML is sanitised to the original's
//! allow-list ([`sanitize_html`]); media and cover-art URLs must be `http(s)`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;
use waddlebot::clock::Clock;
use waddlebot::{CommunityId, OverlayReply};

/// Most items waiting in one queued source (ticker, media, alerts) of one community.
pub const MAX_QUEUE: usize = 100;
/// Longest ticker text shown; longer text is cut with an ellipsis.
pub const MAX_TICKER_CHARS: usize = 200;
/// How far back captions are replayed to an overlay that connects.
pub const CAPTION_REPLAY: Duration = Duration::from_secs(5 * 60);
/// Seconds on screen when an item says 0 (for sources where 0 does not mean "until replaced").
const DEFAULT_SECS: [(&str, u32); 4] = [
    ("ticker", 10),
    ("media", 30),
    ("alerts", 6),
    ("captions", 8),
];
/// The players `media` items of type `clip` and `youtube` may embed (the overlay pages'
/// content policy allows these frames and no others).
pub const EMBED_HOSTS: [(&str, &str); 2] = [
    ("clip", "clips.twitch.tv"),
    ("youtube", "www.youtube-nocookie.com"),
];
/// Most captions kept per community.
const MAX_CAPTIONS: usize = 100;
/// Pushes buffered per community for a slow page before it is told to resynchronise.
pub const CHANNEL_CAPACITY: usize = 256;

/// One item on (or waiting for) a community's overlay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shown {
    /// Increasing per hub.
    pub id: u64,
    /// The source that shows it ([`OverlayReply::source`]).
    pub source: &'static str,
    /// When it goes on screen (Unix milliseconds, the hub's clock).
    pub starts_at_ms: u64,
    /// When it goes away; absent = until replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at_ms: Option<u64>,
    /// The content, normalised (cut, sanitised, defaults applied).
    pub item: OverlayReply,
}

/// Why an item was not shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OverlayError {
    /// The source's queue is full.
    #[error("the {0} queue is full ({MAX_QUEUE} items waiting); item dropped")]
    QueueFull(&'static str),
    /// The item cannot be shown (a media URL that is not http(s)...).
    #[error("{0}")]
    Invalid(String),
}

/// HTML for the `general` source, cut down to the original's allow-list: tags `b i u em strong
/// a p br span div ul ol li code pre blockquote`, attributes `a[href title rel]` and
/// `span/div/code[class]`, links `http`, `https` and `mailto` only. Scripts, styles, event
/// handlers and everything else are removed.
///
/// ```
/// use waddlebot_router::overlay::sanitize_html;
/// assert_eq!(
///     sanitize_html(r#"<b onclick="x()">hi</b><script>alert(1)</script>"#),
///     "<b>hi</b>"
/// );
/// ```
pub fn sanitize_html(html: &str) -> String {
    use std::collections::{HashMap, HashSet};
    let tags: HashSet<&str> = [
        "b",
        "i",
        "u",
        "em",
        "strong",
        "a",
        "p",
        "br",
        "span",
        "div",
        "ul",
        "ol",
        "li",
        "code",
        "pre",
        "blockquote",
    ]
    .into_iter()
    .collect();
    let class_only: HashSet<&str> = ["class"].into_iter().collect();
    let attributes: HashMap<&str, HashSet<&str>> = [
        ("a", ["href", "title"].into_iter().collect()),
        ("span", class_only.clone()),
        ("div", class_only.clone()),
        ("code", class_only),
    ]
    .into_iter()
    .collect();
    ammonia::Builder::new()
        .tags(tags)
        .tag_attributes(attributes)
        .generic_attributes(HashSet::new())
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer"))
        .url_relative(ammonia::UrlRelative::Deny)
        .clean(html)
        .to_string()
}

fn web_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// Checks an item the way showing it would (URLs, players' sites), without showing it: a
/// module's mistake is refused before anything is delivered.
pub fn check(item: &OverlayReply) -> Result<(), OverlayError> {
    normalise(item.clone()).map(drop)
}

/// The item as it will be shown: defaults for zero durations, ticker text cut, HTML sanitised,
/// URLs checked.
fn normalise(item: OverlayReply) -> Result<OverlayReply, OverlayError> {
    let source = item.source();
    let default = DEFAULT_SECS
        .iter()
        .find(|(name, _)| *name == source)
        .map(|(_, secs)| *secs);
    let secs = |given: u32| match (given, default) {
        (0, Some(default)) => default,
        (given, _) => given,
    };
    Ok(match item {
        OverlayReply::Ticker {
            text,
            duration_secs,
        } => {
            let text = text.trim();
            if text.is_empty() {
                return Err(OverlayError::Invalid("a ticker needs text".to_owned()));
            }
            let text = if text.chars().count() > MAX_TICKER_CHARS {
                let mut cut: String = text.chars().take(MAX_TICKER_CHARS - 1).collect();
                cut.push('…');
                cut
            } else {
                text.to_owned()
            };
            OverlayReply::Ticker {
                text,
                duration_secs: secs(duration_secs),
            }
        }
        OverlayReply::Media {
            media_type,
            url,
            duration_secs,
        } => {
            if !web_url(&url) {
                return Err(OverlayError::Invalid(format!(
                    "media URL must be http or https: {url}"
                )));
            }
            let media_type = match media_type.as_str() {
                "video" | "audio" => media_type,
                // Embedded players, only from their own sites.
                "clip" | "youtube" => {
                    let host = url::Url::parse(&url)
                        .ok()
                        .and_then(|u| u.host_str().map(str::to_owned))
                        .unwrap_or_default();
                    let allowed = EMBED_HOSTS
                        .iter()
                        .any(|(kind, embed)| *kind == media_type && *embed == host);
                    if !allowed {
                        return Err(OverlayError::Invalid(format!(
                            "a {media_type} plays from its own site, not {host}"
                        )));
                    }
                    media_type
                }
                _ => "image".to_owned(),
            };
            OverlayReply::Media {
                media_type,
                url,
                duration_secs: secs(duration_secs),
            }
        }
        OverlayReply::General {
            content,
            duration_secs,
        } => OverlayReply::General {
            content: sanitize_html(&content),
            duration_secs,
        },
        OverlayReply::Alert {
            kind,
            title,
            text,
            duration_secs,
        } => OverlayReply::Alert {
            kind,
            title,
            text,
            duration_secs: secs(duration_secs),
        },
        OverlayReply::Caption {
            username,
            text,
            translated,
            duration_secs,
        } => OverlayReply::Caption {
            username,
            text,
            translated,
            duration_secs: secs(duration_secs),
        },
        OverlayReply::NowPlaying {
            title,
            artist,
            image_url,
            duration_secs,
        } => OverlayReply::NowPlaying {
            title,
            artist,
            image_url: image_url.filter(|url| web_url(url)),
            duration_secs,
        },
        other => other,
    })
}

/// One community's overlay.
struct Stage {
    pushes: broadcast::Sender<Arc<Shown>>,
    items: Vec<Shown>,
}

impl Stage {
    fn new() -> Self {
        Self {
            pushes: broadcast::channel(CHANNEL_CAPACITY).0,
            items: Vec::new(),
        }
    }

    /// Forgets what has left the screen (captions stay for the replay window).
    fn prune(&mut self, now: u64) {
        let replay = u64::try_from(CAPTION_REPLAY.as_millis()).unwrap_or(u64::MAX);
        self.items.retain(|shown| {
            if shown.source == "captions" {
                shown.starts_at_ms.saturating_add(replay) > now
            } else {
                shown.ends_at_ms.is_none_or(|end| end > now)
            }
        });
    }
}

/// The communities' overlays. Shared by the router (which shows items) and the server's
/// overlay pages (which subscribe).
pub struct OverlayHub {
    clock: Arc<dyn Clock>,
    next_id: AtomicU64,
    stages: Mutex<HashMap<CommunityId, Stage>>,
}

impl std::fmt::Debug for OverlayHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OverlayHub").finish_non_exhaustive()
    }
}

/// What a page that subscribes gets: what is on screen or queued now, then every new item.
#[derive(Debug)]
pub struct Subscription {
    /// On screen or waiting, oldest first.
    pub on_screen: Vec<Shown>,
    /// The hub's clock at subscription (Unix milliseconds), so pages can correct their own.
    pub now_ms: u64,
    /// New items as they are shown. A page that falls [`CHANNEL_CAPACITY`] items behind gets
    /// `Lagged` and should subscribe again.
    pub pushes: broadcast::Receiver<Arc<Shown>>,
}

impl OverlayHub {
    /// A hub reading the time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            next_id: AtomicU64::new(1),
            stages: Mutex::new(HashMap::new()),
        }
    }

    fn stages(&self) -> std::sync::MutexGuard<'_, HashMap<CommunityId, Stage>> {
        self.stages.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The hub's clock (Unix milliseconds).
    pub fn now_ms(&self) -> u64 {
        self.clock.now_millis()
    }

    /// Puts an item on the community's overlay (or in its queue) and pushes it to every
    /// connected page.
    pub fn show(&self, community: CommunityId, item: OverlayReply) -> Result<Shown, OverlayError> {
        let item = normalise(item)?;
        let source = item.source();
        let millis = u64::from(item.duration_secs()) * 1000;
        let now = self.now_ms();
        let mut stages = self.stages();
        let stage = stages.entry(community).or_insert_with(Stage::new);
        stage.prune(now);
        let same = |shown: &&Shown| shown.source == source;
        let (starts_at_ms, ends_at_ms) = match source {
            "general" | "now-playing" => {
                stage.items.retain(|shown| shown.source != source);
                (now, (millis > 0).then(|| now + millis))
            }
            "captions" => {
                if stage.items.iter().filter(same).count() >= MAX_CAPTIONS
                    && let Some(oldest) = stage.items.iter().position(|s| s.source == source)
                {
                    stage.items.remove(oldest);
                }
                (now, Some(now + millis))
            }
            _ => {
                if stage.items.iter().filter(same).count() >= MAX_QUEUE {
                    tracing::warn!(community = community.0, source, "overlay queue full");
                    return Err(OverlayError::QueueFull(source));
                }
                let starts = stage
                    .items
                    .iter()
                    .filter(same)
                    .filter_map(|shown| shown.ends_at_ms)
                    .max()
                    .map_or(now, |last| last.max(now));
                (starts, Some(starts + millis))
            }
        };
        let shown = Shown {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            source,
            starts_at_ms,
            ends_at_ms,
            item,
        };
        stage.items.push(shown.clone());
        // No page connected is fine: it gets the item when it connects.
        let _ = stage.pushes.send(Arc::new(shown.clone()));
        metrics::counter!(crate::metrics_names::OVERLAY_ITEMS, "source" => source).increment(1);
        Ok(shown)
    }

    /// What the community's overlay shows or has queued now, oldest first.
    pub fn on_screen(&self, community: CommunityId) -> Vec<Shown> {
        let now = self.now_ms();
        let mut stages = self.stages();
        match stages.get_mut(&community) {
            Some(stage) => {
                stage.prune(now);
                stage.items.clone()
            }
            None => Vec::new(),
        }
    }

    /// Subscribes a page to the community's overlay.
    pub fn subscribe(&self, community: CommunityId) -> Subscription {
        let now = self.now_ms();
        let mut stages = self.stages();
        // Communities nobody watches and nothing is shown for are forgotten.
        stages.retain(|_, stage| {
            stage.prune(now);
            stage.pushes.receiver_count() > 0 || !stage.items.is_empty()
        });
        let stage = stages.entry(community).or_insert_with(Stage::new);
        Subscription {
            on_screen: stage.items.clone(),
            now_ms: now,
            pushes: stage.pushes.subscribe(),
        }
    }

    /// How many pages watch the community's overlay.
    pub fn watchers(&self, community: CommunityId) -> usize {
        self.stages()
            .get(&community)
            .map_or(0, |stage| stage.pushes.receiver_count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use waddlebot::clock::ManualClock;

    fn hub() -> (OverlayHub, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        (OverlayHub::new(clock.clone()), clock)
    }

    fn ticker(text: &str, secs: u32) -> OverlayReply {
        OverlayReply::Ticker {
            text: text.to_owned(),
            duration_secs: secs,
        }
    }

    const POND: CommunityId = CommunityId(1);

    #[test]
    fn tickers_queue_one_after_another_and_leave_when_done() {
        let (hub, clock) = hub();
        let first = hub.show(POND, ticker("one", 10)).expect("shown");
        let second = hub.show(POND, ticker("two", 0)).expect("shown");
        assert_eq!(second.starts_at_ms, first.ends_at_ms.expect("ends"));
        assert_eq!(second.ends_at_ms, Some(second.starts_at_ms + 10_000));
        clock.advance(Duration::from_secs(11));
        let left: Vec<_> = hub.on_screen(POND).into_iter().map(|s| s.id).collect();
        assert_eq!(left, [second.id]);
        clock.advance(Duration::from_secs(10));
        assert!(hub.on_screen(POND).is_empty());
    }

    #[test]
    fn a_full_queue_drops_the_newcomer_and_other_communities_are_unaffected() {
        let (hub, _) = hub();
        for n in 0..MAX_QUEUE {
            hub.show(POND, ticker(&format!("t{n}"), 10)).expect("room");
        }
        assert_eq!(
            hub.show(POND, ticker("late", 10)),
            Err(OverlayError::QueueFull("ticker"))
        );
        assert!(hub.show(CommunityId(2), ticker("elsewhere", 10)).is_ok());
    }

    #[test]
    fn long_ticker_text_is_cut_and_general_html_is_sanitised() {
        let (hub, _) = hub();
        let shown = hub.show(POND, ticker(&"w".repeat(500), 10)).expect("shown");
        let OverlayReply::Ticker { text, .. } = shown.item else {
            panic!("a ticker")
        };
        assert_eq!(text.chars().count(), MAX_TICKER_CHARS);
        let shown = hub
            .show(
                POND,
                OverlayReply::General {
                    content: r#"<a href="javascript:alert(1)">x</a><img src=x onerror=alert(1)><p class="big" style="color:red">ok</p>"#.to_owned(),
                    duration_secs: 0,
                },
            )
            .expect("shown");
        assert_eq!(shown.ends_at_ms, None, "0 = until replaced");
        let OverlayReply::General { content, .. } = shown.item else {
            panic!("general")
        };
        assert_eq!(content, r#"<a rel="noopener noreferrer">x</a><p>ok</p>"#);
    }

    #[test]
    fn general_replaces_and_media_must_be_a_web_url() {
        let (hub, _) = hub();
        let general = |content: &str| OverlayReply::General {
            content: content.to_owned(),
            duration_secs: 0,
        };
        hub.show(POND, general("old")).expect("shown");
        hub.show(POND, general("new")).expect("shown");
        let shown = hub.on_screen(POND);
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].item, general("new"));
        let media = OverlayReply::Media {
            media_type: "image".into(),
            url: "javascript:alert(1)".into(),
            duration_secs: 5,
        };
        assert!(matches!(
            hub.show(POND, media),
            Err(OverlayError::Invalid(_))
        ));
        let player = |media_type: &str, url: &str| OverlayReply::Media {
            media_type: media_type.into(),
            url: url.into(),
            duration_secs: 5,
        };
        assert!(
            hub.show(POND, player("clip", "https://clips.twitch.tv/embed?clip=A"))
                .is_ok()
        );
        assert!(
            matches!(
                hub.show(POND, player("clip", "https://evil.example/embed?clip=A")),
                Err(OverlayError::Invalid(_))
            ),
            "players only from their own site"
        );
        let shown = hub
            .show(POND, player("gif", "https://x.example/a.gif"))
            .expect("shown");
        assert_eq!(
            shown.item,
            player("image", "https://x.example/a.gif"),
            "unknown types are images"
        );
    }

    #[test]
    fn subscribers_get_what_is_on_screen_then_each_new_item() {
        let (hub, clock) = hub();
        hub.show(
            POND,
            OverlayReply::Caption {
                username: "pingu".into(),
                text: "noot".into(),
                translated: None,
                duration_secs: 5,
            },
        )
        .expect("shown");
        clock.advance(Duration::from_secs(60));
        let mut page = hub.subscribe(POND);
        assert_eq!(page.on_screen.len(), 1, "captions replay for five minutes");
        assert_eq!(hub.watchers(POND), 1);
        let shown = hub.show(POND, ticker("hello", 10)).expect("shown");
        assert_eq!(*page.pushes.try_recv().expect("pushed"), shown);
        clock.advance(CAPTION_REPLAY);
        assert!(
            hub.subscribe(POND)
                .on_screen
                .iter()
                .all(|s| s.source != "captions")
        );
    }
}
