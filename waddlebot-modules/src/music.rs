//! Music: a YouTube song-request queue per community, and Spotify control.
//!
//! **Song requests** (YouTube Data API v3, `YOUTUBE_API_KEY`): `!sr <search words | YouTube
//! link>` adds a song (at most `max_duration_secs`, default 600; at most `per_user_limit`
//! waiting per person, default 3; at most [`MAX_QUEUE`] in all); `!queue [page]`, `!np`,
//! `!vote <position> up|down` (one vote per person, changeable; the queue plays the best voted
//! first, ties in request order), `!remove <position>` (your own, or any for moderators),
//! `!clear` and `!skip` (moderators). The song playing is on the community's overlay: the
//! video in the `media` source, a `now-playing` card and a ticker line. When a song's time is
//! up, the next one starts with the next music command (or `!skip`).
//!
//! **Spotify** (Web API, `SPOTIFY_CLIENT_ID` / `SPOTIFY_CLIENT_SECRET`): the broadcaster links
//! their account once with `!spotify connect` (an authorisation link; the server's
//! `/oauth/spotify/callback` finishes it); then `!spotify search <words>`, `!spotify play
//! <number | spotify:track:…>` (adds to the player's queue), `!spotify current`, `skip`,
//! `pause`, `resume`, `devices`. Tokens are refreshed before they expire (and when Spotify
//! refuses one); anyone asking before the link gets the link (the broadcaster) or is told to
//! ask for it.
//!
//! Without the keys, the commands say exactly what to configure.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use waddlebot::store::{Expect, Store, community_namespace};
use waddlebot::{
    CommandError, CommandHandler, CommandSpec, CommunityId, Context, OverlayReply, PermissionLevel,
    Reply, StoreError,
};

/// The module name.
pub const MUSIC_MODULE: &str = "music";
/// Most songs waiting in a community's queue.
pub const MAX_QUEUE: usize = 50;
/// Songs per `!queue` page.
const PAGE: usize = 5;
/// Refresh a Spotify token this long before it expires.
const REFRESH_EARLY_MS: u64 = 300_000;
/// How long a `!spotify connect` link works.
const STATE_TTL_MS: u64 = 600_000;
/// Bot-wide namespace of pending Spotify authorisations.
const STATES: &str = "spotify_states";

/// What the song-request commands say without a YouTube key.
pub const YOUTUBE_NOT_CONFIGURED: &str =
    "Song requests search YouTube: set YOUTUBE_API_KEY (a YouTube Data API v3 key).";
/// What the Spotify commands say without Spotify credentials.
pub const SPOTIFY_NOT_CONFIGURED: &str = "Spotify needs an app: set SPOTIFY_CLIENT_ID, SPOTIFY_CLIENT_SECRET and SPOTIFY_REDIRECT_URL (this server's /oauth/spotify/callback).";

/// Why a music service call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MusicError {
    /// The service refused (bad key, no permission, nothing playing where it needs it...).
    #[error("{0}")]
    Refused(String),
    /// The service could not be reached or answered something unreadable.
    #[error("unreachable: {0}")]
    Unavailable(String),
}

async fn answer(response: reqwest::Response) -> Result<Option<Value>, MusicError> {
    let status = response.status();
    if status == reqwest::StatusCode::NO_CONTENT {
        return Ok(None);
    }
    let text = response
        .text()
        .await
        .map_err(|err| MusicError::Unavailable(err.to_string()))?;
    if !status.is_success() {
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .or_else(|| v.pointer("/error_description"))
                    .or_else(|| v.pointer("/error"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| status.to_string());
        return Err(MusicError::Refused(message));
    }
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|err| MusicError::Unavailable(format!("unreadable answer: {err}")))
}

// --- YouTube ---

/// A YouTube video.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Video {
    /// The 11-character id.
    pub id: String,
    /// Title.
    pub title: String,
    /// The channel.
    pub channel: String,
    /// Length in seconds.
    pub duration_secs: u32,
    /// A thumbnail.
    pub thumbnail: Option<String>,
}

/// The YouTube Data API v3 (`search` and `videos`).
#[derive(Debug, Clone)]
pub struct YouTube {
    api_key: String,
    api_url: String,
    http: reqwest::Client,
}

/// `PT1H2M3S` in seconds.
pub fn iso_duration_secs(text: &str) -> Option<u32> {
    let rest = text.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((days, time)) => (days, time),
        None => (rest, ""),
    };
    let mut total: u64 = 0;
    let days = days.strip_suffix('D').unwrap_or(days);
    if !days.is_empty() {
        total += days.parse::<u64>().ok()? * 86_400;
    }
    let mut number = String::new();
    for c in time.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().ok()?;
        number.clear();
        total += n * match c {
            'H' => 3600,
            'M' => 60,
            'S' => 1,
            _ => return None,
        };
    }
    u32::try_from(total).ok()
}

/// The video id in a YouTube link (`watch?v=`, `youtu.be/`, `shorts/`, `music.youtube.com`),
/// or a bare id.
pub fn video_id(text: &str) -> Option<String> {
    let valid = |id: &str| {
        id.len() == 11
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if valid(text) {
        return Some(text.to_owned());
    }
    let url = url::Url::parse(text).ok()?;
    let host = url.host_str()?.trim_start_matches("www.");
    let id = match host {
        "youtu.be" => url.path().trim_start_matches('/').to_owned(),
        "youtube.com" | "music.youtube.com" | "m.youtube.com" => {
            if let Some(short) = url.path().strip_prefix("/shorts/") {
                short.to_owned()
            } else {
                url.query_pairs()
                    .find(|(k, _)| k == "v")
                    .map(|(_, v)| v.into_owned())?
            }
        }
        _ => return None,
    };
    valid(&id).then_some(id)
}

impl YouTube {
    /// The API at `api_url` (`https://www.googleapis.com/youtube/v3`) with `api_key`.
    pub fn new(api_key: &str, api_url: &str, http: reqwest::Client) -> Self {
        Self {
            api_key: api_key.to_owned(),
            api_url: api_url.trim_end_matches('/').to_owned(),
            http,
        }
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, MusicError> {
        let response = self
            .http
            .get(format!("{}/{path}", self.api_url))
            .query(query)
            .query(&[("key", self.api_key.as_str())])
            .send()
            .await
            .map_err(|err| MusicError::Unavailable(err.to_string()))?;
        answer(response)
            .await?
            .ok_or_else(|| MusicError::Unavailable("empty answer".into()))
    }

    /// Videos by id, with their lengths.
    pub async fn videos(&self, ids: &[String]) -> Result<Vec<Video>, MusicError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let joined = ids.join(",");
        let found = self
            .get(
                "videos",
                &[("part", "snippet,contentDetails"), ("id", &joined)],
            )
            .await?;
        Ok(found["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| {
                Some(Video {
                    id: item["id"].as_str()?.to_owned(),
                    title: item.pointer("/snippet/title")?.as_str()?.to_owned(),
                    channel: item
                        .pointer("/snippet/channelTitle")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    duration_secs: item
                        .pointer("/contentDetails/duration")
                        .and_then(Value::as_str)
                        .and_then(iso_duration_secs)?,
                    thumbnail: item
                        .pointer("/snippet/thumbnails/medium/url")
                        .or_else(|| item.pointer("/snippet/thumbnails/default/url"))
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                })
            })
            .collect())
    }

    /// The best music matches for `words` (category 10), with their lengths.
    pub async fn search(&self, words: &str) -> Result<Vec<Video>, MusicError> {
        let found = self
            .get(
                "search",
                &[
                    ("part", "snippet"),
                    ("type", "video"),
                    ("videoCategoryId", "10"),
                    ("maxResults", "5"),
                    ("q", words),
                ],
            )
            .await?;
        let ids: Vec<String> = found["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item.pointer("/id/videoId").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        let mut videos = self.videos(&ids).await?;
        // Keep the search's order.
        videos.sort_by_key(|v| ids.iter().position(|id| *id == v.id));
        Ok(videos)
    }
}

// --- the queue ---

/// A song waiting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The video.
    pub video: Video,
    /// Who asked.
    pub requested_by: String,
    /// When (Unix milliseconds).
    pub requested_at_ms: u64,
    /// Votes by person (+1 / −1).
    #[serde(default)]
    pub votes: HashMap<String, i8>,
}

impl Request {
    /// Ups minus downs.
    pub fn score(&self) -> i64 {
        self.votes.values().map(|v| i64::from(*v)).sum()
    }
}

/// The song playing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Playing {
    /// The request.
    pub request: Request,
    /// When it started (Unix milliseconds).
    pub started_at_ms: u64,
}

/// A community's song queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queue {
    /// The song playing, if any.
    pub current: Option<Playing>,
    /// Waiting, in play order (best voted first, then oldest).
    pub waiting: Vec<Request>,
}

impl Queue {
    fn sort(&mut self) {
        self.waiting.sort_by(|a, b| {
            b.score()
                .cmp(&a.score())
                .then(a.requested_at_ms.cmp(&b.requested_at_ms))
        });
    }

    /// Whether the current song's time is up (or nothing plays).
    fn idle(&self, now: u64) -> bool {
        self.current.as_ref().is_none_or(|playing| {
            now >= playing.started_at_ms + u64::from(playing.request.video.duration_secs) * 1000
        })
    }

    /// Starts the next song when nothing plays; answers it when one started.
    fn advance(&mut self, now: u64, force: bool) -> Option<Playing> {
        if !force && !self.idle(now) {
            return None;
        }
        self.current = None;
        if self.waiting.is_empty() {
            return None;
        }
        let next = self.waiting.remove(0);
        let playing = Playing {
            request: next,
            started_at_ms: now,
        };
        self.current = Some(playing.clone());
        Some(playing)
    }
}

/// What the overlay shows for a song that starts.
fn on_overlay(playing: &Playing) -> Vec<Reply> {
    let video = &playing.request.video;
    vec![
        Reply::Overlay(OverlayReply::Media {
            media_type: "youtube".to_owned(),
            url: format!(
                "https://www.youtube-nocookie.com/embed/{}?autoplay=1",
                video.id
            ),
            duration_secs: video.duration_secs,
        }),
        Reply::Overlay(OverlayReply::NowPlaying {
            title: video.title.clone(),
            artist: video.channel.clone(),
            image_url: video.thumbnail.clone(),
            duration_secs: video.duration_secs,
        }),
        Reply::Overlay(OverlayReply::Ticker {
            text: format!(
                "🎵 Now playing: {} (requested by {})",
                video.title, playing.request.requested_by
            ),
            duration_secs: 10,
        }),
    ]
}

fn minutes_seconds(secs: u32) -> String {
    format!("{}:{:02}", secs / 60, secs % 60)
}

fn music_namespace(community: CommunityId) -> String {
    community_namespace(community, MUSIC_MODULE)
}

/// Changes the community's queue with compare-and-set, so concurrent requests lose nothing.
/// `change` answers the replies.
async fn with_queue<T>(
    store: &dyn Store,
    community: CommunityId,
    mut change: impl FnMut(&mut Queue) -> Result<T, CommandError>,
) -> Result<T, CommandError> {
    crate::update_document(
        store,
        &music_namespace(community),
        "queue",
        "The queue is busy; try again.",
        |slot: &mut Option<Queue>| change(slot.get_or_insert_with(Queue::default)),
    )
    .await
    .map(|(_, answer)| answer)
}

// --- Spotify ---

/// A Spotify app's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpotifySettings {
    /// `SPOTIFY_CLIENT_ID`.
    pub client_id: String,
    /// `SPOTIFY_CLIENT_SECRET`.
    pub client_secret: String,
    /// Where Spotify sends the broadcaster back (`SPOTIFY_REDIRECT_URL`, this server's
    /// `/oauth/spotify/callback`).
    pub redirect_url: String,
    /// The Web API (`SPOTIFY_API_URL`, default `https://api.spotify.com/v1`).
    pub api_url: String,
    /// The accounts service (`SPOTIFY_ACCOUNTS_URL`, default `https://accounts.spotify.com`).
    pub accounts_url: String,
}

/// Scopes the bot asks for.
pub const SPOTIFY_SCOPES: &str =
    "user-read-playback-state user-modify-playback-state user-read-currently-playing";

/// A community's Spotify tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Tokens {
    access_token: String,
    refresh_token: String,
    expires_at_ms: u64,
}

/// The Spotify Web API for the communities that linked an account.
#[derive(Debug, Clone)]
pub struct Spotify {
    settings: SpotifySettings,
    http: reqwest::Client,
}

impl Spotify {
    /// Spotify with these settings.
    pub fn new(settings: SpotifySettings, http: reqwest::Client) -> Self {
        let settings = SpotifySettings {
            api_url: settings.api_url.trim_end_matches('/').to_owned(),
            accounts_url: settings.accounts_url.trim_end_matches('/').to_owned(),
            ..settings
        };
        Self { settings, http }
    }

    /// A link the broadcaster opens to give the bot their player; `state` ties the answer to
    /// the community.
    pub fn authorize_url(&self, state: &str) -> String {
        let mut url = url::Url::parse(&format!("{}/authorize", self.settings.accounts_url))
            .unwrap_or_else(|_| {
                url::Url::parse("https://accounts.spotify.com/authorize").expect("a URL")
            });
        url.query_pairs_mut()
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", &self.settings.redirect_url)
            .append_pair("scope", SPOTIFY_SCOPES)
            .append_pair("state", state);
        url.into()
    }

    async fn token_request(&self, form: &[(&str, &str)], now: u64) -> Result<Tokens, MusicError> {
        let response = self
            .http
            .post(format!("{}/api/token", self.settings.accounts_url))
            .basic_auth(&self.settings.client_id, Some(&self.settings.client_secret))
            .form(form)
            .send()
            .await
            .map_err(|err| MusicError::Unavailable(err.to_string()))?;
        let body = answer(response)
            .await?
            .ok_or_else(|| MusicError::Unavailable("empty token answer".into()))?;
        let access = body["access_token"]
            .as_str()
            .ok_or_else(|| MusicError::Unavailable("no access_token".into()))?;
        Ok(Tokens {
            access_token: access.to_owned(),
            // A refresh may not send a new refresh token: the caller keeps the old one.
            refresh_token: body["refresh_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            expires_at_ms: now + body["expires_in"].as_u64().unwrap_or(3600) * 1000,
        })
    }

    fn tokens_key() -> &'static str {
        "spotify_tokens"
    }

    async fn tokens(
        &self,
        store: &dyn Store,
        community: CommunityId,
    ) -> Result<Option<Tokens>, StoreError> {
        Ok(store
            .get_document(&music_namespace(community), Self::tokens_key())
            .await?
            .and_then(|d| serde_json::from_value(d.value).ok()))
    }

    async fn save(
        &self,
        store: &dyn Store,
        community: CommunityId,
        tokens: &Tokens,
    ) -> Result<(), StoreError> {
        store
            .put_document(
                &music_namespace(community),
                Self::tokens_key(),
                &serde_json::to_value(tokens).unwrap_or_default(),
                Expect::Any,
            )
            .await
            .map(drop)
    }

    async fn refreshed(
        &self,
        store: &dyn Store,
        community: CommunityId,
        old: &Tokens,
        now: u64,
    ) -> Result<Tokens, CommandError> {
        let mut fresh = self
            .token_request(
                &[("grant_type", "refresh_token"), ("refresh_token", &old.refresh_token)],
                now,
            )
            .await
            .map_err(|err| CommandError::invalid(format!("Spotify would not renew the link ({err}); the broadcaster should run spotify connect again.")))?;
        if fresh.refresh_token.is_empty() {
            fresh.refresh_token.clone_from(&old.refresh_token);
        }
        self.save(store, community, &fresh).await?;
        Ok(fresh)
    }

    /// A Web API call for the community, refreshing its token first when it is about to
    /// expire, and once more when Spotify refuses it.
    async fn call(
        &self,
        ctx: &Context,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<Value>, CommandError> {
        let store = ctx.store.as_ref();
        let now = ctx.clock.now_millis();
        let Some(mut tokens) = self.tokens(store, ctx.community).await? else {
            return Err(self.not_linked(ctx).await?);
        };
        if now + REFRESH_EARLY_MS >= tokens.expires_at_ms {
            tokens = self.refreshed(store, ctx.community, &tokens, now).await?;
        }
        let mut retried = false;
        loop {
            let mut request = self
                .http
                .request(method.clone(), format!("{}/{path}", self.settings.api_url))
                .query(query)
                .bearer_auth(&tokens.access_token);
            if method != reqwest::Method::GET {
                request = request.header(reqwest::header::CONTENT_LENGTH, "0");
            }
            let response = request
                .send()
                .await
                .map_err(|err| CommandError::invalid(format!("Spotify is unreachable ({err}).")))?;
            if response.status() == reqwest::StatusCode::UNAUTHORIZED && !retried {
                retried = true;
                tokens = self.refreshed(store, ctx.community, &tokens, now).await?;
                continue;
            }
            return answer(response)
                .await
                .map_err(|err| CommandError::invalid(format!("Spotify: {err}.")));
        }
    }

    /// The refusal for a community without a linked account: the link for the broadcaster.
    async fn not_linked(&self, ctx: &Context) -> Result<CommandError, StoreError> {
        if ctx.level() < PermissionLevel::Broadcaster {
            return Ok(CommandError::invalid(
                "Spotify is not linked here yet: the broadcaster can link it with spotify connect.",
            ));
        }
        Ok(CommandError::invalid(format!(
            "Link Spotify here: {}",
            self.connect_link(ctx).await?
        )))
    }

    async fn connect_link(&self, ctx: &Context) -> Result<String, StoreError> {
        // Unguessable, so nobody can slip their own Spotify account into the community.
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)
            .map_err(|err| StoreError::Backend(format!("no randomness available: {err}").into()))?;
        let state = hex::encode(bytes);
        ctx.store
            .put_document(
                STATES,
                &state,
                &serde_json::json!({
                    "community": ctx.community.0,
                    "expires_at_ms": ctx.clock.now_millis() + STATE_TTL_MS,
                }),
                Expect::Absent,
            )
            .await?;
        Ok(self.authorize_url(&state))
    }

    /// Finishes `!spotify connect`: trades Spotify's `code` for tokens and keeps them for the
    /// community `state` was made for. Answers that community.
    pub async fn complete(
        &self,
        store: &dyn Store,
        state: &str,
        code: &str,
        now: u64,
    ) -> Result<CommunityId, String> {
        let pending = store
            .get_document(STATES, state)
            .await
            .map_err(|err| err.to_string())?
            .ok_or("this link was already used or is not ours")?;
        // Used once, by whoever deletes it.
        if !store
            .delete_document(STATES, state)
            .await
            .map_err(|e| e.to_string())?
        {
            return Err("this link was already used".to_owned());
        }
        if pending.value["expires_at_ms"].as_u64().unwrap_or(0) <= now {
            return Err("this link has expired; run spotify connect again".to_owned());
        }
        let community = CommunityId(
            pending.value["community"]
                .as_i64()
                .ok_or("malformed state")?,
        );
        let tokens = self
            .token_request(
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", &self.settings.redirect_url),
                ],
                now,
            )
            .await
            .map_err(|err| format!("Spotify refused: {err}"))?;
        self.save(store, community, &tokens)
            .await
            .map_err(|e| e.to_string())?;
        Ok(community)
    }
}

fn artists(track: &Value) -> String {
    track["artists"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["name"].as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn track_line(track: &Value) -> String {
    format!(
        "{} - {} ({})",
        track["name"].as_str().unwrap_or("?"),
        artists(track),
        minutes_seconds(
            u32::try_from(track["duration_ms"].as_u64().unwrap_or(0) / 1000).unwrap_or(0)
        )
    )
}

/// The music module.
#[derive(Debug, Clone, Default)]
pub struct Music {
    youtube: Option<YouTube>,
    spotify: Option<Arc<Spotify>>,
}

impl Music {
    /// Song requests through `youtube`, Spotify through `spotify`; either may be missing.
    pub fn new(youtube: Option<YouTube>, spotify: Option<Arc<Spotify>>) -> Self {
        Self { youtube, spotify }
    }

    fn settings(config: &Value) -> (u32, usize) {
        (
            config["max_duration_secs"]
                .as_u64()
                .and_then(|s| u32::try_from(s).ok())
                .filter(|s| (30..=3 * 3600).contains(s))
                .unwrap_or(600),
            config["per_user_limit"]
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| (1..=MAX_QUEUE).contains(n))
                .unwrap_or(3),
        )
    }

    async fn request(&self, ctx: &Context) -> Result<Vec<Reply>, CommandError> {
        let youtube = self
            .youtube
            .as_ref()
            .ok_or_else(|| CommandError::invalid(YOUTUBE_NOT_CONFIGURED))?;
        let words = ctx.args.rest_unquoted(0).trim().to_owned();
        if words.is_empty() {
            return Err(ctx.usage_error());
        }
        let config = ctx
            .store
            .module_install(ctx.community, MUSIC_MODULE)
            .await?
            .map(|i| i.config)
            .unwrap_or_default();
        let (max_secs, per_user) = Self::settings(&config);
        let found = match video_id(&words) {
            Some(id) => youtube.videos(&[id]).await,
            None => youtube.search(&words).await,
        }
        .map_err(|err| CommandError::invalid(format!("YouTube: {err}.")))?;
        let Some(video) = found.into_iter().next() else {
            return Err(CommandError::invalid(format!(
                "Nothing found for \"{words}\"."
            )));
        };
        if video.duration_secs > max_secs {
            return Err(CommandError::invalid(format!(
                "\"{}\" is {} long; songs here are at most {}.",
                video.title,
                minutes_seconds(video.duration_secs),
                minutes_seconds(max_secs)
            )));
        }
        let who = ctx.user().shown_name().to_owned();
        let now = ctx.clock.now_millis();
        with_queue(ctx.store.as_ref(), ctx.community, |queue| {
            let mine = queue
                .waiting
                .iter()
                .filter(|r| r.requested_by == who)
                .count();
            if mine >= per_user {
                return Err(CommandError::invalid(format!(
                    "You have {mine} songs waiting already (at most {per_user})."
                )));
            }
            if queue.waiting.len() >= MAX_QUEUE {
                return Err(CommandError::invalid(format!(
                    "The queue is full ({MAX_QUEUE} songs)."
                )));
            }
            if queue.waiting.iter().any(|r| r.video.id == video.id)
                || queue
                    .current
                    .as_ref()
                    .is_some_and(|p| p.request.video.id == video.id && !queue.idle(now))
            {
                return Err(CommandError::invalid(format!(
                    "\"{}\" is in the queue already.",
                    video.title
                )));
            }
            queue.waiting.push(Request {
                video: video.clone(),
                requested_by: who.clone(),
                requested_at_ms: now,
                votes: HashMap::new(),
            });
            queue.sort();
            let position = queue
                .waiting
                .iter()
                .position(|r| r.video.id == video.id)
                .unwrap_or(0)
                + 1;
            let started = queue.advance(now, false);
            let mut replies = Vec::new();
            match &started {
                Some(playing) => {
                    replies.push(Reply::text(format!(
                        "Now playing \"{}\" ({}), requested by {who}.",
                        playing.request.video.title,
                        minutes_seconds(playing.request.video.duration_secs)
                    )));
                    replies.extend(on_overlay(playing));
                }
                None => replies.push(Reply::text(format!(
                    "Added \"{}\" ({}) at position {position}.",
                    video.title,
                    minutes_seconds(video.duration_secs)
                ))),
            }
            Ok(replies)
        })
        .await
    }

    async fn queue_command(&self, ctx: &Context) -> Result<Vec<Reply>, CommandError> {
        let now = ctx.clock.now_millis();
        let command = ctx.command.as_str();
        let who = ctx.user().shown_name().to_owned();
        let moderator = ctx.level() >= PermissionLevel::Moderator;
        let page = ctx
            .args
            .get(0)
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let position = ctx
            .args
            .get(0)
            .and_then(|p| p.trim_start_matches('#').parse::<usize>().ok());
        let direction = ctx.args.get(1).map(str::to_lowercase);
        if matches!(command, "clear" | "skip") {
            ctx.require(PermissionLevel::Moderator)?;
        }
        with_queue(ctx.store.as_ref(), ctx.community, |queue| {
            let mut replies = Vec::new();
            if let Some(playing) = queue.advance(now, command == "skip") {
                replies.extend(on_overlay(&playing));
                if command == "skip" {
                    replies.insert(
                        0,
                        Reply::text(format!(
                            "Skipped. Now playing \"{}\".",
                            playing.request.video.title
                        )),
                    );
                    return Ok(replies);
                }
            } else if command == "skip" {
                return Ok(vec![Reply::text("Skipped. The queue is empty.")]);
            }
            let pick = |queue: &Queue| -> Result<usize, CommandError> {
                position
                    .filter(|p| (1..=queue.waiting.len()).contains(p))
                    .map(|p| p - 1)
                    .ok_or_else(|| {
                        CommandError::invalid(format!(
                            "Give a position from 1 to {}.",
                            queue.waiting.len().max(1)
                        ))
                    })
            };
            let text = match command {
                "np" | "nowplaying" => match &queue.current {
                    Some(p) => format!(
                        "Now playing \"{}\" by {}, requested by {}.",
                        p.request.video.title, p.request.video.channel, p.request.requested_by
                    ),
                    None => "Nothing is playing.".to_owned(),
                },
                "vote" => {
                    let index = pick(queue)?;
                    let value = match direction.as_deref() {
                        Some("up" | "+") => 1,
                        Some("down" | "-") => -1,
                        _ => {
                            return Err(CommandError::invalid(
                                "Vote up or down: vote <position> up|down.",
                            ));
                        }
                    };
                    let request = &mut queue.waiting[index];
                    request.votes.insert(who.clone(), value);
                    let title = request.video.title.clone();
                    let score = request.score();
                    queue.sort();
                    format!(
                        "Voted {} \"{title}\" (score {score:+}).",
                        if value > 0 { "up" } else { "down" }
                    )
                }
                "remove" => {
                    let index = pick(queue)?;
                    if queue.waiting[index].requested_by != who && !moderator {
                        return Err(CommandError::invalid(
                            "You can remove only your own requests.",
                        ));
                    }
                    let gone = queue.waiting.remove(index);
                    format!("Removed \"{}\".", gone.video.title)
                }
                "clear" => {
                    let n = queue.waiting.len();
                    queue.waiting.clear();
                    format!(
                        "Cleared {n} song{} from the queue.",
                        if n == 1 { "" } else { "s" }
                    )
                }
                _ => {
                    if queue.waiting.is_empty() {
                        "The queue is empty. Request a song with sr <song>.".to_owned()
                    } else {
                        let pages = queue.waiting.len().div_ceil(PAGE);
                        let page = page.min(pages);
                        let lines: Vec<String> = queue
                            .waiting
                            .iter()
                            .enumerate()
                            .skip((page - 1) * PAGE)
                            .take(PAGE)
                            .map(|(i, r)| {
                                format!(
                                    "{}. {} ({:+}, {})",
                                    i + 1,
                                    r.video.title,
                                    r.score(),
                                    r.requested_by
                                )
                            })
                            .collect();
                        format!("Queue ({page}/{pages}): {}", lines.join(" | "))
                    }
                }
            };
            replies.insert(0, Reply::text(text));
            Ok(replies)
        })
        .await
    }

    async fn spotify(&self, ctx: &Context) -> Result<Vec<Reply>, CommandError> {
        let spotify = self
            .spotify
            .as_ref()
            .ok_or_else(|| CommandError::invalid(SPOTIFY_NOT_CONFIGURED))?;
        let sub = ctx.args.get(0).map(str::to_lowercase);
        let get = reqwest::Method::GET;
        let text = match sub.as_deref() {
            Some("connect" | "link") => {
                ctx.require(PermissionLevel::Broadcaster)?;
                format!("Link Spotify here: {}", spotify.connect_link(ctx).await?)
            }
            Some("search") => {
                let words = ctx.args.rest_unquoted(1).trim().to_owned();
                if words.is_empty() {
                    return Err(ctx.usage_error());
                }
                let found = spotify
                    .call(
                        ctx,
                        get,
                        "search",
                        &[("q", &words), ("type", "track"), ("limit", "5")],
                    )
                    .await?
                    .unwrap_or_default();
                let tracks: Vec<Value> = found
                    .pointer("/tracks/items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if tracks.is_empty() {
                    return Ok(vec![Reply::text(format!(
                        "Nothing on Spotify for \"{words}\"."
                    ))]);
                }
                // Remembered per person for `spotify play <number>`.
                let uris: Vec<&str> = tracks.iter().filter_map(|t| t["uri"].as_str()).collect();
                ctx.store
                    .put_document(
                        &music_namespace(ctx.community),
                        &format!("search:{}:{}", ctx.event.platform, ctx.user().id),
                        &serde_json::json!({"uris": uris}),
                        Expect::Any,
                    )
                    .await?;
                let lines: Vec<String> = tracks
                    .iter()
                    .enumerate()
                    .map(|(i, t)| format!("{}. {}", i + 1, track_line(t)))
                    .collect();
                lines.join(" | ")
            }
            Some("play" | "queue" | "add") => {
                let Some(which) = ctx.args.get(1) else {
                    return Err(ctx.usage_error());
                };
                let uri = if let Ok(n) = which.parse::<usize>() {
                    let saved = ctx
                        .store
                        .get_document(
                            &music_namespace(ctx.community),
                            &format!("search:{}:{}", ctx.event.platform, ctx.user().id),
                        )
                        .await?;
                    saved
                        .and_then(|d| d.value["uris"].get(n.wrapping_sub(1)).and_then(Value::as_str).map(str::to_owned))
                        .ok_or_else(|| CommandError::invalid("Search first (spotify search <words>), then play a number from it."))?
                } else if which.starts_with("spotify:track:") {
                    which.to_owned()
                } else {
                    return Err(CommandError::invalid(
                        "Play a number from your last search or a spotify:track: URI.",
                    ));
                };
                spotify
                    .call(
                        ctx,
                        reqwest::Method::POST,
                        "me/player/queue",
                        &[("uri", &uri)],
                    )
                    .await?;
                "Added to the Spotify queue.".to_owned()
            }
            Some("current" | "nowplaying" | "np") | None => {
                let now = spotify
                    .call(ctx, get, "me/player/currently-playing", &[])
                    .await?;
                match now.filter(|n| n["item"].is_object()) {
                    Some(now) => {
                        let track = &now["item"];
                        let title = track["name"].as_str().unwrap_or("?").to_owned();
                        let by = artists(track);
                        let image = track
                            .pointer("/album/images/0/url")
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                        let state = if now["is_playing"].as_bool() == Some(true) {
                            "Now playing"
                        } else {
                            "Paused"
                        };
                        return Ok(vec![
                            Reply::text(format!("{state} on Spotify: {}", track_line(track))),
                            Reply::Overlay(OverlayReply::NowPlaying {
                                title: title.clone(),
                                artist: by.clone(),
                                image_url: image,
                                duration_secs: 30,
                            }),
                            Reply::Overlay(OverlayReply::Ticker {
                                text: format!("🎵 Now playing on Spotify: {title} by {by}"),
                                duration_secs: 10,
                            }),
                        ]);
                    }
                    None => "Nothing is playing on Spotify.".to_owned(),
                }
            }
            Some("skip" | "next") => {
                ctx.require(PermissionLevel::Moderator)?;
                spotify
                    .call(ctx, reqwest::Method::POST, "me/player/next", &[])
                    .await?;
                "Skipped.".to_owned()
            }
            Some("pause") => {
                ctx.require(PermissionLevel::Moderator)?;
                spotify
                    .call(ctx, reqwest::Method::PUT, "me/player/pause", &[])
                    .await?;
                "Paused.".to_owned()
            }
            Some("resume" | "unpause") => {
                ctx.require(PermissionLevel::Moderator)?;
                spotify
                    .call(ctx, reqwest::Method::PUT, "me/player/play", &[])
                    .await?;
                "Playing again.".to_owned()
            }
            Some("devices") => {
                let found = spotify
                    .call(ctx, get, "me/player/devices", &[])
                    .await?
                    .unwrap_or_default();
                let devices: Vec<String> = found["devices"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| {
                        format!(
                            "{}{}",
                            d["name"].as_str().unwrap_or("?"),
                            if d["is_active"].as_bool() == Some(true) {
                                " (active)"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect();
                if devices.is_empty() {
                    "No Spotify devices are open.".to_owned()
                } else {
                    format!("Spotify devices: {}.", devices.join(", "))
                }
            }
            Some(_) => return Err(ctx.usage_error()),
        };
        Ok(vec![Reply::text(text)])
    }
}

#[async_trait]
impl CommandHandler for Music {
    fn specs(&self) -> Vec<CommandSpec> {
        let spec = |name: &str, usage: &str, description: &str| {
            CommandSpec::new(name)
                .usage(usage)
                .description(description)
                .module(MUSIC_MODULE)
        };
        vec![
            spec("sr", "sr <song or YouTube link>", "Request a song").alias("songrequest"),
            spec("queue", "queue [page]", "The song requests waiting").alias("songs"),
            spec("np", "np", "The song playing").alias("nowplaying"),
            spec("vote", "vote <position> up|down", "Vote a song request up or down"),
            spec("remove", "remove <position>", "Remove your song request (moderators: any)"),
            spec("clear", "clear", "Empty the song queue").min_level(PermissionLevel::Moderator),
            spec("skip", "skip", "Play the next song request").min_level(PermissionLevel::Moderator),
            spec(
                "spotify",
                "spotify [current] | spotify search <words> | spotify play <n|uri> | spotify skip|pause|resume|devices | spotify connect",
                "Spotify: what plays, search, queue, control",
            )
            .alias("spot"),
        ]
    }

    async fn handle(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        match ctx.command.as_str() {
            "sr" => self.request(&ctx).await,
            "spotify" => self.spotify(&ctx).await,
            _ => {
                if self.youtube.is_none() {
                    return Err(CommandError::invalid(YOUTUBE_NOT_CONFIGURED));
                }
                self.queue_command(&ctx).await
            }
        }
    }
}
