//! Shoutouts: `!so <user>` / `!shoutout <user>` tell chat about another creator, `!vso <user>`
//! plays one of their recent clips on the community's overlay, and raids (optionally a listed
//! creator's first message) get a shoutout by themselves.
//!
//! The creator is looked up on Twitch through Helix ([`Helix`]: user, channel, live stream,
//! clips; an app token from `TWITCH_CLIENT_ID` + `TWITCH_CLIENT_SECRET`). The text comes from a
//! template per platform, live or offline; a community's own template (module setting
//! `templates.<platform>.<live|offline>`) must contain `{display_name}` and `{login}`. Variables:
//! `{display_name} {login} {game_name} {title} {viewer_count} {description}
//! {broadcaster_type} {url}`.
//!
//! Settings (module `shoutout`): `permission` (`admin_only | mod | vip | subscriber |
//! everyone`, default `mod`), `cooldown_minutes` (per target, default 60), `auto_raid`
//! (default true), `auto_first_message` with `creators` (logins), `clip_seconds` (default 30).
//! Every shoutout is kept in the history (`!so history`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use waddlebot::store::{Expect, community_namespace};
use waddlebot::{
    CommandError, CommandHandler, CommandSpec, CommunityId, Context, EventHandler, EventKind,
    OverlayReply, PermissionLevel, PlatformKind, Reply, StoreError, Subscription,
};

/// The module name.
pub const SHOUTOUT_MODULE: &str = "shoutout";
/// Minutes before the same creator can be shouted out again, unless the community says.
pub const DEFAULT_COOLDOWN_MINUTES: u64 = 60;
/// Entries of the history shown by `!so history`.
const SHOWN_HISTORY: usize = 5;
/// What the commands say when Twitch is not configured.
pub const NOT_CONFIGURED: &str =
    "Shoutouts look creators up on Twitch: set TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET.";

/// A creator as Helix describes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Creator {
    /// Twitch user id.
    pub id: String,
    /// Login (lower case).
    pub login: String,
    /// Display name.
    pub display_name: String,
    /// Channel description.
    pub description: String,
    /// `partner`, `affiliate` or empty.
    pub broadcaster_type: String,
    /// The game of the live stream, else the channel's last game.
    pub game_name: String,
    /// The stream's or the channel's title.
    pub title: String,
    /// Whether they are live.
    pub live: bool,
    /// Viewers now (0 offline).
    pub viewer_count: u64,
}

/// A clip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clip {
    /// Clip id.
    pub id: String,
    /// Its page.
    pub url: String,
    /// Its embeddable player.
    pub embed_url: String,
    /// Title.
    pub title: String,
    /// Length in whole seconds.
    pub duration_secs: u32,
}

/// Why a lookup failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// Twitch refused (bad credentials, rate limit...).
    #[error("Twitch refused: {0}")]
    Refused(String),
    /// Twitch could not be reached, or answered something unreadable.
    #[error("Twitch is unreachable: {0}")]
    Unavailable(String),
}

/// Looks creators up (Helix in production, anything in tests).
#[async_trait]
pub trait CreatorLookup: Send + Sync {
    /// The creator with this login, `None` when there is none.
    async fn creator(&self, login: &str) -> Result<Option<Creator>, LookupError>;
    /// Recent clips of a broadcaster (the last week, most viewed first).
    async fn recent_clips(&self, broadcaster_id: &str) -> Result<Vec<Clip>, LookupError>;
}

/// Helix: `GET /users`, `/channels`, `/streams` and `/clips` with an app token.
pub struct Helix {
    http: reqwest::Client,
    api_url: String,
    token: waddlebot::platforms::twitch::AppToken,
}

impl std::fmt::Debug for Helix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Helix")
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

impl Helix {
    /// Helix under `api_url` (`https://api.twitch.tv`, as `TWITCH_API_URL`), tokens from
    /// `auth_url` (`https://id.twitch.tv`, as `TWITCH_AUTH_URL`).
    pub fn new(
        client_id: &str,
        client_secret: &str,
        api_url: &str,
        auth_url: &str,
        http: reqwest::Client,
    ) -> Self {
        Self {
            token: waddlebot::platforms::twitch::AppToken::new(
                client_id,
                client_secret,
                auth_url,
                http.clone(),
            ),
            http,
            api_url: api_url.trim_end_matches('/').to_owned(),
        }
    }

    /// `GET <api>/<path>?<query>`, with the token renewed once if Helix refuses it.
    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, LookupError> {
        let mut retried = false;
        loop {
            let token = self
                .token
                .get()
                .await
                .map_err(|err| LookupError::Refused(err.to_string()))?;
            let response = self
                .http
                .get(format!("{}/helix/{path}", self.api_url))
                .query(query)
                .header("Client-Id", self.token.client_id())
                .bearer_auth(&token)
                .send()
                .await
                .map_err(|err| LookupError::Unavailable(err.to_string()))?;
            let status = response.status();
            if status == reqwest::StatusCode::UNAUTHORIZED && !retried {
                self.token.invalidate(&token).await;
                retried = true;
                continue;
            }
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                return Err(LookupError::Refused(format!("{status}: {body}")));
            }
            return response
                .json()
                .await
                .map_err(|err| LookupError::Unavailable(err.to_string()));
        }
    }
}

fn text_at(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

#[async_trait]
impl CreatorLookup for Helix {
    async fn creator(&self, login: &str) -> Result<Option<Creator>, LookupError> {
        let users = self.get("users", &[("login", login)]).await?;
        let Some(user) = users.pointer("/data/0") else {
            return Ok(None);
        };
        let id = text_at(user, "/id");
        let channel = self.get("channels", &[("broadcaster_id", &id)]).await?;
        let stream = self.get("streams", &[("user_id", &id)]).await?;
        let live = stream.pointer("/data/0").filter(|s| s["type"] == "live");
        Ok(Some(Creator {
            login: text_at(user, "/login"),
            display_name: text_at(user, "/display_name"),
            description: text_at(user, "/description"),
            broadcaster_type: text_at(user, "/broadcaster_type"),
            game_name: live.map_or_else(
                || text_at(&channel, "/data/0/game_name"),
                |s| text_at(s, "/game_name"),
            ),
            title: live.map_or_else(
                || text_at(&channel, "/data/0/title"),
                |s| text_at(s, "/title"),
            ),
            live: live.is_some(),
            viewer_count: live.and_then(|s| s["viewer_count"].as_u64()).unwrap_or(0),
            id,
        }))
    }

    async fn recent_clips(&self, broadcaster_id: &str) -> Result<Vec<Clip>, LookupError> {
        let week_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(7 * 24);
        let since = week_ago.to_string();
        let clips = self
            .get(
                "clips",
                &[
                    ("broadcaster_id", broadcaster_id),
                    ("started_at", &since),
                    ("first", "20"),
                ],
            )
            .await?;
        Ok(clips["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|clip| Clip {
                id: text_at(clip, "/id"),
                url: text_at(clip, "/url"),
                embed_url: text_at(clip, "/embed_url"),
                title: text_at(clip, "/title"),
                duration_secs: clip["duration"]
                    .as_f64()
                    .map_or(30, |d| d.ceil().clamp(1.0, 300.0) as u32),
            })
            .filter(|clip| !clip.embed_url.is_empty())
            .collect())
    }
}

/// The built-in template for a platform, live or not.
pub fn default_template(platform: &PlatformKind, live: bool) -> &'static str {
    match (platform, live) {
        (PlatformKind::Discord, true) => {
            "**Shoutout** to {display_name}! Live now: {title} ({game_name}, {viewer_count} watching) <{url}>"
        }
        (PlatformKind::Discord, false) => {
            "**Shoutout** to {display_name}! Last seen playing {game_name}: <{url}>"
        }
        (PlatformKind::Slack, true) => {
            "*Shoutout* to {display_name}! Live now: {title} ({game_name}) <{url}|twitch.tv/{login}>"
        }
        (PlatformKind::Slack, false) => {
            "*Shoutout* to {display_name}! Last seen playing {game_name}: <{url}|twitch.tv/{login}>"
        }
        (_, true) => {
            "Go check out {display_name}, live now with {viewer_count} viewers: {title} [{game_name}] → {url}"
        }
        (_, false) => "Go check out {display_name}! They were last playing {game_name} → {url}",
    }
}

/// Whether a community's own template can be used: it must name the creator.
pub fn check_template(template: &str) -> Result<(), String> {
    if template.contains("{display_name}") && template.contains("{login}") {
        Ok(())
    } else {
        Err("a shoutout template must contain {display_name} and {login}".to_owned())
    }
}

/// The template filled in.
pub fn render(template: &str, creator: &Creator) -> String {
    let url = format!("https://twitch.tv/{}", creator.login);
    let game = if creator.game_name.is_empty() {
        "something"
    } else {
        &creator.game_name
    };
    [
        ("{display_name}", creator.display_name.as_str()),
        ("{login}", creator.login.as_str()),
        ("{game_name}", game),
        ("{title}", creator.title.as_str()),
        ("{viewer_count}", &creator.viewer_count.to_string()),
        ("{description}", creator.description.as_str()),
        ("{broadcaster_type}", creator.broadcaster_type.as_str()),
        ("{url}", &url),
    ]
    .iter()
    .fold(template.to_owned(), |text, (name, value)| {
        text.replace(name, value)
    })
}

/// A community's shoutout settings.
#[derive(Debug, Clone)]
struct Settings {
    permission: PermissionLevel,
    cooldown: Duration,
    auto_raid: bool,
    auto_first_message: bool,
    creators: Vec<String>,
    clip_seconds: u32,
    config: Value,
}

impl Settings {
    fn from_config(config: Value) -> Self {
        let permission = match config["permission"].as_str().unwrap_or("mod") {
            "everyone" => PermissionLevel::Everyone,
            "subscriber" => PermissionLevel::Subscriber,
            "vip" => PermissionLevel::Vip,
            "admin_only" => PermissionLevel::Broadcaster,
            _ => PermissionLevel::Moderator,
        };
        Self {
            permission,
            cooldown: Duration::from_secs(
                config["cooldown_minutes"]
                    .as_u64()
                    .unwrap_or(DEFAULT_COOLDOWN_MINUTES)
                    .min(24 * 60)
                    * 60,
            ),
            auto_raid: config["auto_raid"].as_bool().unwrap_or(true),
            auto_first_message: config["auto_first_message"].as_bool().unwrap_or(false),
            creators: config["creators"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_lowercase)
                .collect(),
            clip_seconds: config["clip_seconds"]
                .as_u64()
                .and_then(|s| u32::try_from(s).ok())
                .filter(|s| (5..=120).contains(s))
                .unwrap_or(30),
            config,
        }
    }

    /// The community's template for a platform, when it has a usable one.
    fn template(&self, platform: &PlatformKind, live: bool) -> String {
        let which = if live { "live" } else { "offline" };
        self.config["templates"][platform.to_string()][which]
            .as_str()
            .filter(|t| check_template(t).is_ok())
            .map_or_else(
                || default_template(platform, live).to_owned(),
                str::to_owned,
            )
    }
}

/// One shoutout in the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShoutoutRecord {
    /// Who was shouted out.
    pub login: String,
    /// Who asked (`raid` for automatic ones).
    pub by: String,
    /// `text`, `video`, `raid` or `first_message`.
    pub kind: String,
    /// When (Unix milliseconds).
    pub at_ms: u64,
}

fn history(community: CommunityId) -> String {
    community_namespace(community, "shoutouts")
}

fn cooldowns(community: CommunityId) -> String {
    community_namespace(community, "shoutout_cooldowns")
}

/// The shoutout module (commands and automatic shoutouts; register one instance as both).
#[derive(Clone, Default)]
pub struct Shoutouts {
    lookup: Option<Arc<dyn CreatorLookup>>,
}

impl std::fmt::Debug for Shoutouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shoutouts")
            .field("configured", &self.lookup.is_some())
            .finish()
    }
}

impl Shoutouts {
    /// Shoutouts looking creators up through `lookup`; `None` answers [`NOT_CONFIGURED`].
    pub fn new(lookup: Option<Arc<dyn CreatorLookup>>) -> Self {
        Self { lookup }
    }

    async fn settings(ctx: &Context) -> Result<Settings, StoreError> {
        Ok(Settings::from_config(
            ctx.store
                .module_install(ctx.community, SHOUTOUT_MODULE)
                .await?
                .map(|install| install.config)
                .unwrap_or_default(),
        ))
    }

    /// Takes the target's cooldown, or says how long it still runs.
    async fn claim(
        ctx: &Context,
        settings: &Settings,
        login: &str,
    ) -> Result<Result<(), u64>, StoreError> {
        let now = ctx.clock.now_millis();
        let cooldown = u64::try_from(settings.cooldown.as_millis()).unwrap_or(u64::MAX);
        let store = ctx.store.as_ref();
        let existing = store.get_document(&cooldowns(ctx.community), login).await?;
        let expect = match &existing {
            Some(document) => {
                let last = document.value["at_ms"].as_u64().unwrap_or(0);
                if now < last + cooldown {
                    return Ok(Err(last + cooldown - now));
                }
                Expect::Version(document.version)
            }
            None => Expect::Absent,
        };
        match store
            .put_document(
                &cooldowns(ctx.community),
                login,
                &serde_json::json!({"at_ms": now}),
                expect,
            )
            .await
        {
            Ok(_) => Ok(Ok(())),
            // Someone shouted them out at the same moment.
            Err(StoreError::Conflict(_)) => Ok(Err(cooldown)),
            Err(err) => Err(err),
        }
    }

    async fn remember(ctx: &Context, login: &str, by: &str, kind: &str) -> Result<(), StoreError> {
        let now = ctx.clock.now_millis();
        let record = ShoutoutRecord {
            login: login.to_owned(),
            by: by.to_owned(),
            kind: kind.to_owned(),
            at_ms: now,
        };
        // Numbered, so shoutouts in the same millisecond keep their order.
        let number = ctx
            .store
            .increment(&history(ctx.community), "count", 1)
            .await?;
        ctx.store
            .put_document(
                &history(ctx.community),
                &format!("{number:012}"),
                &serde_json::to_value(&record).unwrap_or_default(),
                Expect::Any,
            )
            .await
            .map(drop)
    }

    /// The creator a login names, looked up (with the lookup, for more questions).
    async fn creator(&self, login: &str) -> Result<(&dyn CreatorLookup, Creator), CommandError> {
        let lookup = self
            .lookup
            .as_deref()
            .ok_or_else(|| CommandError::invalid(NOT_CONFIGURED))?;
        let login = login.trim().trim_start_matches('@').to_lowercase();
        if login.is_empty()
            || login.len() > 25
            || !login
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(CommandError::invalid("That is not a Twitch user name."));
        }
        let creator = lookup
            .creator(&login)
            .await
            .map_err(|err| CommandError::invalid(format!("I could not look {login} up: {err}.")))?
            .ok_or_else(|| CommandError::invalid(format!("User '{login}' not found on Twitch.")))?;
        Ok((lookup, creator))
    }

    /// A shoutout of `login`: the text, or why not.
    async fn shoutout(
        &self,
        ctx: &Context,
        settings: &Settings,
        login: &str,
        by: &str,
        kind: &str,
    ) -> Result<Vec<Reply>, CommandError> {
        let (_, creator) = self.creator(login).await?;
        if let Err(wait) = Self::claim(ctx, settings, &creator.login).await? {
            return Err(CommandError::invalid(format!(
                "{} had a shoutout recently; again in {} min.",
                creator.display_name,
                wait.div_ceil(60_000)
            )));
        }
        Self::remember(ctx, &creator.login, by, kind).await?;
        let template = settings.template(&ctx.event.platform, creator.live);
        Ok(vec![Reply::text(render(&template, &creator))])
    }

    async fn video(
        &self,
        ctx: &Context,
        settings: &Settings,
        login: &str,
    ) -> Result<Vec<Reply>, CommandError> {
        let (lookup, creator) = self.creator(login).await?;
        let clips = lookup
            .recent_clips(&creator.id)
            .await
            .map_err(|err| CommandError::invalid(format!("I could not find clips: {err}.")))?;
        if clips.is_empty() {
            return Err(CommandError::invalid(format!(
                "{} has no clips from the last week.",
                creator.display_name
            )));
        }
        let clip = &clips[fastrand::usize(..clips.len())];
        Self::remember(ctx, &creator.login, &ctx.user().name, "video").await?;
        Ok(vec![
            Reply::Overlay(OverlayReply::Media {
                media_type: "clip".to_owned(),
                url: clip.embed_url.clone(),
                duration_secs: clip.duration_secs.min(settings.clip_seconds),
            }),
            Reply::text(format!(
                "Playing \"{}\" by {} on the overlay → https://twitch.tv/{}",
                clip.title, creator.display_name, creator.login
            )),
        ])
    }
}

#[async_trait]
impl CommandHandler for Shoutouts {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("so")
                .alias("shoutout")
                .usage("so <user> | so history")
                .description("Tell chat about another creator")
                .module(SHOUTOUT_MODULE),
            CommandSpec::new("vso")
                .usage("vso <user>")
                .description("Play a recent clip of another creator on the overlay")
                .module(SHOUTOUT_MODULE),
        ]
    }

    async fn handle(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        let settings = Self::settings(&ctx).await?;
        if ctx
            .args
            .get(0)
            .is_some_and(|a| a.eq_ignore_ascii_case("history"))
        {
            let mut entries =
                waddlebot::store::all_documents(ctx.store.as_ref(), &history(ctx.community), "")
                    .await?;
            if entries.is_empty() {
                return Ok(vec![Reply::text("No shoutouts yet.")]);
            }
            entries.reverse();
            let shown: Vec<String> = entries
                .iter()
                .take(SHOWN_HISTORY)
                .filter_map(|d| serde_json::from_value::<ShoutoutRecord>(d.value.clone()).ok())
                .map(|r| format!("{} ({}, by {})", r.login, r.kind, r.by))
                .collect();
            return Ok(vec![Reply::text(format!(
                "Latest shoutouts: {}.",
                shown.join(", ")
            ))]);
        }
        if ctx.level() < settings.permission {
            return Err(CommandError::invalid(format!(
                "Shoutouts here are for {} and above.",
                settings.permission
            )));
        }
        let Some(login) = ctx.args.get(0) else {
            return Err(ctx.usage_error());
        };
        if ctx.command == "vso" {
            return self.video(&ctx, &settings, login).await;
        }
        self.shoutout(&ctx, &settings, login, &ctx.user().name, "text")
            .await
    }
}

#[async_trait]
impl EventHandler for Shoutouts {
    fn subscription(&self) -> Subscription {
        Subscription::new(SHOUTOUT_MODULE, &["raid", "chat_message"])
    }

    async fn on_event(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        if self.lookup.is_none() {
            return Ok(Vec::new());
        }
        let settings = Self::settings(&ctx).await?;
        let login = ctx.user().name.to_lowercase();
        let kind = match &ctx.event.kind {
            EventKind::Raid { .. } if settings.auto_raid => "raid",
            EventKind::ChatMessage
                if settings.auto_first_message && settings.creators.contains(&login) =>
            {
                "first_message"
            }
            _ => return Ok(Vec::new()),
        };
        // Automatic shoutouts skip the permission check; a cooldown still applies (so a
        // creator's later messages, or a second raid, do not repeat it).
        match self.shoutout(&ctx, &settings, &login, kind, kind).await {
            Ok(replies) => Ok(replies),
            Err(err) if err.is_user_error() => {
                tracing::debug!(%login, error = %err, "no automatic shoutout");
                Ok(Vec::new())
            }
            Err(err) => Err(err),
        }
    }
}
