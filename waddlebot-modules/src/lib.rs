//! # WaddleBot modules
//!
//! The built-in modules, each a [`CommandHandler`] that works on every platform and keeps its
//! data in the [`Store`].
//!
//! | module | commands |
//! |---|---|
//! | [`CustomCommands`] | `!command add\|edit\|remove\|show` (moderators) |
//! | [`Aliases`] | `!alias add\|remove\|list` (managing: moderators) |
//! | [`Quotes`] | `!quote [id]`, `!quote add\|search\|delete\|up\|down` (adding and deleting: moderators) |
//! | [`Memories`] | `!memories add url\|note`, `list`, `get`, `search`, `delete` (adding and deleting: moderators) |
//! | [`Inventory`] | `!inventory add\|checkout\|checkin\|delete\|labels` (moderators), `list\|search\|status\|stats\|history` (everyone) |
//! | [`Labels`] | `!label add\|remove` (moderators), `!label list`: labels on users, items, events, commands, memories, optionally expiring |
//! | [`Calendar`] | `!event add\|list\|info\|join\|leave\|approve\|reject\|cancel\|edit\|repeat` (`!calendar`): events in the community's time zone, approval, RSVPs and waitlists, recurrence, reminders |
//! | [`Reminders`] | `!remind <text> in <5m\|2h\|1d\|3w> [daily\|weekly]`, `!remind list\|cancel` (delivered by the router's scheduler) |
//! | [`Reputation`] | `!rep [user]`, `!rep top [n]`, `!rep global [user]`, `!rep set <user> <score> <reason>` (moderators): 300–850 scores moved by events with exact fractional weights, auto-ban (also an event handler) |
//! | [`Identity`] | `!identity link <platform> <username>`, `!verify <CODE>`, `!identity unlink <platform>`: one person behind accounts on several platforms ([`person_of`]) |
//! | [`CommunityAdmin`] | `!community info\|members\|roles\|context`, `!role grant\|revoke`, `!module enable\|disable`, `!prefix` |
//! | [`Shoutouts`] | `!so <user>`, `!vso <user>`, `!so history`; automatic shoutouts on raids (needs a [`CreatorLookup`] such as [`Helix`]) |
//! | [`Music`] | `!sr`, `!queue`, `!np`, `!vote`, `!remove`, `!clear`, `!skip` (YouTube song requests), `!spotify …` (needs [`YouTube`] / [`Spotify`]) |
//! | [`Members`] | no commands: the directory of who a community has seen (an event handler) |
//! | [`Alerts`] | no commands: follows, subscriptions, raids, cheers and donations shown on the community's overlay (an [`EventHandler`] the embedder registers) |
//! | [`AiChat`] | `!ai` / `!ask`, and answers to greetings, questions, mentions and channel events (needs an AI provider; registered by the embedder with [`AiChat::listener`]) |
//!
//! [`standard_modules`] gives them all, command side and event side; [`standard_modules_with`]
//! with the outside [`Services`] some of them use.
//!
//! ```
//! let modules = waddlebot_modules::standard_modules();
//! assert!(modules.commands.iter().any(|m| m.specs().iter().any(|s| s.name == "command")));
//! ```

mod ai_chat;
mod alerts;
mod aliases;
mod calendar;
mod community;
mod custom_commands;
mod identity;
mod inventory;
mod labels;
pub mod members;
mod memories;
mod music;
mod quotes;
mod reminders;
mod reputation;
mod shoutout;

use std::sync::Arc;

pub use ai_chat::{
    AI_MODULE, AiChat, AiChatSettings, AiListener, DEFAULT_SYSTEM_PROMPT, NOT_CONFIGURED, Trigger,
    chat_trigger, clean_answer, fallback_reply,
};
pub use alerts::{ALERTS_MODULE, Alerts, DEFAULT_ALERT_SECS, alert_for};
pub use aliases::{ALIAS_MODULE, Aliases};
pub use calendar::{
    CALENDAR_MODULE, Calendar, CalendarEvent, EventStatus, MAX_EVENT_DESCRIPTION_LEN,
    MAX_LOCATION_LEN, MAX_OCCURRENCES, Rsvp, TITLE_LEN,
};
pub use community::{COMMUNITY_MODULE, CommunityAdmin};
pub use custom_commands::{
    CustomCommands, MAX_NAME_LEN, MAX_RESPONSE_LEN, NameError, check_command_name, check_response,
};
pub use identity::{
    CODE_ALPHABET, CODE_LEN, CODE_TTL, IDENTITY_MODULE, Identity, LINKABLE, LinkedAccount,
    MAX_ATTEMPTS, Person, RESEND_COOLDOWN, is_code, person, person_of,
};
pub use inventory::{
    INVENTORY_MODULE, Inventory, Item, MAX_ITEM_DESCRIPTION_LEN, MAX_ITEM_NAME_LEN, MAX_LABEL_LEN,
    MAX_LABELS_PER_ITEM, MAX_QUANTITY,
};
pub use labels::{
    EVENT_AUTOAPPROVE, LABEL_TYPES, LABELS_MODULE, Label, Labels, MAX_LABEL_NAME_LEN, has_label,
    label_limit, labels_of, target_key,
};
pub use members::{MEMBERS_MODULE, Member, Members, account_key};
pub use memories::{
    MAX_DESCRIPTION_LEN, MAX_NOTE_LEN, MAX_TAG_LEN, MAX_TAGS, MAX_TITLE_LEN, MAX_URL_LEN,
    MEMORIES_MODULE, Memories, Memory, MemoryKind,
};
pub use music::{
    MAX_QUEUE as MAX_SONG_QUEUE, MUSIC_MODULE, Music, MusicError, Playing, Queue, Request,
    SPOTIFY_NOT_CONFIGURED, SPOTIFY_SCOPES, Spotify, SpotifySettings, Video,
    YOUTUBE_NOT_CONFIGURED, YouTube, iso_duration_secs, video_id,
};
pub use quotes::{MAX_AUTHOR_LEN, MAX_QUOTE_LEN, QUOTES_MODULE, Quote, Quotes};
pub use reminders::{
    MAX_AHEAD, MAX_PER_USER, MAX_REMINDER_LEN, REMINDERS_MODULE, Reminders, parse_delay,
};
pub use reputation::{
    Change, DEFAULT_AUTO_BAN_THRESHOLD, HISTORY, Leader, MAX_SCORE, MIN_SCORE, REPUTATION_MODULE,
    Reputation, START_SCORE, Scored, UNITS, Weights, change_for, history_of, leaderboard,
    leaderboard_page, parse_points, score_of, score_units, shown as shown_score, tier,
};
pub use shoutout::{
    Clip, Creator, CreatorLookup, DEFAULT_COOLDOWN_MINUTES, Helix, LookupError,
    NOT_CONFIGURED as SHOUTOUT_NOT_CONFIGURED, SHOUTOUT_MODULE, ShoutoutRecord, Shoutouts,
    check_template, default_template, render as render_shoutout,
};
use waddlebot::store::Expect;
use waddlebot::{CommandError, CommandHandler, EventHandler, Store};

/// How many times [`update_document`] tries when other writers keep changing the document.
const UPDATE_ATTEMPTS: usize = 8;

/// Reads document `key` of `namespace` (`None` when there is none), lets `change` modify it
/// (create it by filling the `None`, or refuse with an error), and writes it back with
/// compare-and-set, trying again from a fresh read when another writer got there first.
/// Nothing is written when the document is still `None` afterwards. Answers the document as
/// written and what `change` answered; `busy` is the refusal when every attempt collided.
/// Records a change made from chat as the admin API records its own: an AAA `AUDIT` log line
/// and a row in the community's audit log, the actor named `<platform>:<user>` unless given.
/// A row that cannot be written is logged, not returned: the change itself was made.
pub(crate) async fn audit(
    ctx: &waddlebot::Context,
    actor: Option<&str>,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) {
    let actor = actor.map_or_else(
        || format!("{}:{}", ctx.event.platform, ctx.user().name),
        str::to_owned,
    );
    tracing::info!(
        category = "audit",
        actor = %actor,
        community = ctx.community.0,
        action,
        target,
        result = "success",
        "chat change"
    );
    let entry = waddlebot::store::AuditEntry {
        id: 0,
        community_id: Some(ctx.community),
        actor,
        action: action.to_owned(),
        target: target.to_owned(),
        detail,
        at: ctx.now(),
    };
    if let Err(err) = ctx.store.append_audit(&entry).await {
        tracing::error!(error = %err, action, "change not audited");
    }
}

pub(crate) async fn update_document<D, T>(
    store: &dyn Store,
    namespace: &str,
    key: &str,
    busy: &str,
    mut change: impl FnMut(&mut Option<D>) -> Result<T, CommandError>,
) -> Result<(Option<D>, T), CommandError>
where
    D: serde::Serialize + serde::de::DeserializeOwned,
{
    for _ in 0..UPDATE_ATTEMPTS {
        let existing = store.get_document(namespace, key).await?;
        let expect = existing
            .as_ref()
            .map_or(Expect::Absent, |d| Expect::Version(d.version));
        let mut document = existing
            .map(|d| serde_json::from_value::<D>(d.value))
            .transpose()
            .map_err(|err| {
                CommandError::Internal(format!("malformed record {namespace}/{key}: {err}").into())
            })?;
        let answer = change(&mut document)?;
        let Some(value) = &document else {
            return Ok((document, answer));
        };
        let value =
            serde_json::to_value(value).map_err(|err| CommandError::Internal(err.into()))?;
        match store.put_document(namespace, key, &value, expect).await {
            Ok(_) => return Ok((document, answer)),
            Err(waddlebot::StoreError::Conflict(_)) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(CommandError::invalid(busy.to_owned()))
}

/// Every record a module keeps in `namespace`, decoded, in key order; `what` names the record
/// in the error a malformed one gives.
pub(crate) async fn load_all<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    namespace: &str,
    what: &str,
) -> Result<Vec<T>, CommandError> {
    waddlebot::store::all_documents(store, namespace, "")
        .await?
        .into_iter()
        .map(|document| {
            serde_json::from_value(document.value)
                .map_err(|err| CommandError::Internal(format!("malformed {what}: {err}").into()))
        })
        .collect()
}

/// The outside services some modules use; each `None` makes its commands say what to
/// configure.
#[derive(Clone, Default)]
pub struct Services {
    /// Twitch creator lookups for shoutouts ([`Helix`]).
    pub creators: Option<Arc<dyn CreatorLookup>>,
    /// YouTube for song requests.
    pub youtube: Option<YouTube>,
    /// Spotify for the `!spotify` commands.
    pub spotify: Option<Arc<Spotify>>,
}

/// Checks a module's settings before they are saved, for the modules whose settings have
/// rules: `reputation` weights (known kinds, numbers with at most four decimals) and
/// `shoutout` templates (each must contain `{display_name}` and `{login}`). Other modules'
/// settings pass.
///
/// ```
/// use serde_json::json;
/// use waddlebot_modules::check_settings;
/// assert!(check_settings("reputation", &json!({"weights": {"follow": 2.5}})).is_ok());
/// assert!(check_settings("reputation", &json!({"weights": {"hugs": 1}})).is_err());
/// assert!(check_settings("shoutout", &json!({"templates": {"twitch": {"live": "Hi {login}"}}})).is_err());
/// ```
pub fn check_settings(module: &str, config: &serde_json::Value) -> Result<(), String> {
    match module {
        REPUTATION_MODULE => Weights::from_config(config).map(drop),
        SHOUTOUT_MODULE => {
            let Some(platforms) = config.get("templates") else {
                return Ok(());
            };
            let platforms = platforms
                .as_object()
                .ok_or("templates must be an object of platform: {live, offline}")?;
            for (platform, templates) in platforms {
                for which in ["live", "offline"] {
                    match &templates[which] {
                        serde_json::Value::Null => {}
                        serde_json::Value::String(template) => check_template(template)
                            .map_err(|reason| format!("templates.{platform}.{which}: {reason}"))?,
                        _ => return Err(format!("templates.{platform}.{which} must be text")),
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Modules that are only event handlers (no commands), by name: they can be switched on and off
/// like the others.
pub const EVENT_MODULES: [&str; 2] = [MEMBERS_MODULE, ALERTS_MODULE];

/// The built-in modules, command side and event side. Some are both (reputation): one
/// instance is in both lists.
pub struct StandardModules {
    /// Command handlers: register each with `RouterBuilder::handler_arc`.
    pub commands: Vec<Arc<dyn CommandHandler>>,
    /// Event handlers: register each with `RouterBuilder::event_handler_arc`.
    pub events: Vec<Arc<dyn EventHandler>>,
}

/// Every built-in module (AI chat aside, which needs a provider).
///
/// ```
/// let standard = waddlebot_modules::standard_modules();
/// assert!(standard.commands.iter().any(|m| m.specs().iter().any(|s| s.name == "rep")));
/// assert!(standard.events.iter().any(|h| h.subscription().module == "reputation"));
/// ```
pub fn standard_modules() -> StandardModules {
    standard_modules_with(Services::default())
}

/// [`standard_modules`] using these outside services.
pub fn standard_modules_with(services: Services) -> StandardModules {
    let reputation = Arc::new(Reputation::default());
    let shoutouts = Arc::new(Shoutouts::new(services.creators));
    StandardModules {
        commands: vec![
            Arc::new(CustomCommands),
            Arc::new(Aliases),
            Arc::new(Quotes),
            Arc::new(Memories),
            Arc::new(Inventory),
            Arc::new(Labels),
            Arc::new(Calendar),
            Arc::new(Reminders),
            Arc::new(Identity),
            Arc::new(CommunityAdmin),
            reputation.clone(),
            shoutouts.clone(),
            Arc::new(Music::new(services.youtube, services.spotify)),
        ],
        events: vec![
            Arc::new(Members::default()),
            Arc::new(Alerts),
            reputation,
            shoutouts,
        ],
    }
}
