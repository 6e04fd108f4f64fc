//! Reputation: a 300–850 score per person in each community (and one across communities),
//! starting at 600, moved by what people do.
//!
//! - Tiers: exceptional 800–850, very good 740–799, good 670–739, fair 580–669, poor 300–579.
//! - Weights per event kind ([`Scored`]), the original's defaults, changeable per community
//!   (module setting `weights`, e.g. `{"weights": {"follow": 2.5}}`, at most four decimals).
//!   Scores are kept in ten-thousandths of a point ([`UNITS`]), so `+0.01` per chat message
//!   adds up exactly (the original rounded every change away). Twitch tiers 1000/2000/3000
//!   count as tier 1/2/3.
//! - A score is `600 + the sum of all changes`, clamped to 300–850 when read: it never leaves
//!   its bounds and the same events in any order give the same score.
//! - Auto-ban (module setting `auto_ban`: `{"enabled": true, "threshold": 450}`): a change that
//!   takes someone to the threshold or below bans them through their platform, audited.
//! - `!rep [user]`, `!rep top [n]`, `!rep global [user]`, and for moderators
//!   `!rep set <user> <score> <reason>`. Every change a person sees is in their history (the last
//!   [`HISTORY`] changes: before, after, reason); manual ones are audited too.
//!
//! Scores are counters (`<community>:reputation`, bot-wide `reputation`) keyed by person
//! ([`person_of`](crate::person_of)), so linked accounts share one. Chat messages and command
//! use, the frequent tiny changes, are bookkeeping ([`Store::write_behind`]): the router's
//! store adds them up and writes them in batches behind the events (within 100 ms; what a
//! `kill -9` can lose is that window's small changes), and a score read counts them before
//! they are written. The rest are written at once.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use waddlebot::store::{Store, Write, community_namespace};
use waddlebot::{
    COMMAND_USED, CommandError, CommandHandler, CommandSpec, CommunityId, Context, EventHandler,
    EventKind, ModerationAction, PermissionLevel, PlatformKind, Reply, StoreError, Subscription,
    SubscriptionTier,
};

use crate::identity::person_of;
use crate::members;

/// The module name.
pub const REPUTATION_MODULE: &str = "reputation";
/// Units per point: scores and weights are whole ten-thousandths of a point.
pub const UNITS: i64 = 10_000;
/// The lowest score.
pub const MIN_SCORE: i64 = 300;
/// The highest score.
pub const MAX_SCORE: i64 = 850;
/// Where everyone starts.
pub const START_SCORE: i64 = 600;
/// The default auto-ban threshold.
pub const DEFAULT_AUTO_BAN_THRESHOLD: i64 = 450;
/// Changes kept in a person's history.
pub const HISTORY: usize = 20;

/// What moves a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scored {
    /// A chat message.
    ChatMessage,
    /// A command used.
    CommandUsage,
    /// A giveaway entry.
    GiveawayEntry,
    /// A follow.
    Follow,
    /// A tier 1 (or Prime) subscription.
    Subscription,
    /// A tier 2 subscription.
    SubscriptionTier2,
    /// A tier 3 subscription.
    SubscriptionTier3,
    /// Per gifted subscription.
    GiftSubscription,
    /// Per unit of currency donated.
    Donation,
    /// Per 100 bits.
    Cheer,
    /// A raid.
    Raid,
    /// A server boost.
    Boost,
    /// A warning.
    Warn,
    /// A timeout.
    Timeout,
    /// A kick.
    Kick,
    /// A ban.
    Ban,
}

impl Scored {
    /// Every kind.
    pub const ALL: [Scored; 16] = [
        Self::ChatMessage,
        Self::CommandUsage,
        Self::GiveawayEntry,
        Self::Follow,
        Self::Subscription,
        Self::SubscriptionTier2,
        Self::SubscriptionTier3,
        Self::GiftSubscription,
        Self::Donation,
        Self::Cheer,
        Self::Raid,
        Self::Boost,
        Self::Warn,
        Self::Timeout,
        Self::Kick,
        Self::Ban,
    ];

    /// Its setting name (`chat_message`, `subscription_tier2`...).
    pub fn name(self) -> &'static str {
        match self {
            Self::ChatMessage => "chat_message",
            Self::CommandUsage => "command_usage",
            Self::GiveawayEntry => "giveaway_entry",
            Self::Follow => "follow",
            Self::Subscription => "subscription",
            Self::SubscriptionTier2 => "subscription_tier2",
            Self::SubscriptionTier3 => "subscription_tier3",
            Self::GiftSubscription => "gift_subscription",
            Self::Donation => "donation",
            Self::Cheer => "cheer",
            Self::Raid => "raid",
            Self::Boost => "boost",
            Self::Warn => "warn",
            Self::Timeout => "timeout",
            Self::Kick => "kick",
            Self::Ban => "ban",
        }
    }

    /// The original's default, in [`UNITS`].
    pub fn default_weight(self) -> i64 {
        match self {
            Self::ChatMessage => 100,
            Self::CommandUsage => -1_000,
            Self::GiveawayEntry => -UNITS,
            Self::Follow => UNITS,
            Self::Subscription => 5 * UNITS,
            Self::SubscriptionTier2 => 10 * UNITS,
            Self::SubscriptionTier3 => 20 * UNITS,
            Self::GiftSubscription => 3 * UNITS,
            Self::Donation => UNITS,
            Self::Cheer => UNITS,
            Self::Raid => 2 * UNITS,
            Self::Boost => 5 * UNITS,
            Self::Warn => -25 * UNITS,
            Self::Timeout => -50 * UNITS,
            Self::Kick => -75 * UNITS,
            Self::Ban => -200 * UNITS,
        }
    }

    /// Frequent, tiny changes: added up in the process before they are written.
    fn batched(self) -> bool {
        matches!(self, Self::ChatMessage | Self::CommandUsage)
    }
}

/// Points as text (`0.01`, `-25`, `2.5`) to [`UNITS`]; at most four decimals.
///
/// ```
/// use waddlebot_modules::parse_points;
/// assert_eq!(parse_points("0.01"), Ok(100));
/// assert_eq!(parse_points("-2.5"), Ok(-25_000));
/// assert!(parse_points("0.00001").is_err());
/// ```
pub fn parse_points(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let bad = || format!("'{text}' is not a number of points with at most four decimals");
    if whole.is_empty() && fraction.is_empty()
        || fraction.len() > 4
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let fraction: i64 = format!("{fraction:0<4}").parse().map_err(|_| bad())?;
    let units = whole
        .checked_mul(UNITS)
        .and_then(|w| w.checked_add(fraction))
        .filter(|u| *u <= 1_000 * UNITS)
        .ok_or_else(|| format!("'{text}' is too large"))?;
    Ok(if negative { -units } else { units })
}

/// A community's weights, one per [`Scored`] kind in [`Scored::ALL`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weights([i64; Scored::ALL.len()]);

impl Default for Weights {
    fn default() -> Self {
        Self(Scored::ALL.map(Scored::default_weight))
    }
}

impl Weights {
    /// The weight of a kind, in [`UNITS`].
    pub fn of(&self, kind: Scored) -> i64 {
        self.0[kind as usize]
    }

    /// The defaults with the module setting's `weights` applied (numbers or numeric text).
    pub fn from_config(config: &serde_json::Value) -> Result<Self, String> {
        let mut weights = Self::default();
        let Some(given) = config.get("weights") else {
            return Ok(weights);
        };
        let given = given
            .as_object()
            .ok_or("weights must be an object of kind: points")?;
        for (name, value) in given {
            let kind = Scored::ALL
                .iter()
                .find(|k| k.name() == name)
                .ok_or_else(|| format!("unknown reputation event '{name}'"))?;
            let text = match value {
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::String(s) => s.clone(),
                _ => return Err(format!("the weight of {name} must be a number")),
            };
            weights.0[*kind as usize] = parse_points(&text)?;
        }
        Ok(weights)
    }
}

/// `units × numerator / denominator`, rounded half away from zero.
fn scaled(units: i64, numerator: i128, denominator: i128) -> i64 {
    let product = i128::from(units) * numerator;
    let rounded = if product >= 0 {
        (product + denominator / 2) / denominator
    } else {
        (product - denominator / 2) / denominator
    };
    i64::try_from(rounded).unwrap_or(if rounded > 0 { i64::MAX } else { i64::MIN })
}

/// Whose score an event moves (the acted-on user for moderation, else the author), what kind
/// of change it is and by how much ([`UNITS`]); `None` for events that do not count.
pub fn change_for(event: &waddlebot::Event, weights: &Weights) -> Option<(String, Scored, i64)> {
    let author = event.user.id.clone();
    let (who, kind, amount) = match &event.kind {
        EventKind::ChatMessage => (author, Scored::ChatMessage, weights.of(Scored::ChatMessage)),
        EventKind::Custom { name } => {
            let kind = match name.as_str() {
                COMMAND_USED => Scored::CommandUsage,
                "boost" | "server_boost" | "nitro_boost" => Scored::Boost,
                "giveaway" | "giveaway_entry" | "raffle" | "raffle_entry" => Scored::GiveawayEntry,
                _ => return None,
            };
            (author, kind, weights.of(kind))
        }
        EventKind::Follow => (author, Scored::Follow, weights.of(Scored::Follow)),
        EventKind::Subscription { tier, gift, .. } => match gift {
            Some(gift) => (
                author,
                Scored::GiftSubscription,
                scaled(
                    weights.of(Scored::GiftSubscription),
                    i128::from(gift.count.max(1)),
                    1,
                ),
            ),
            None => {
                let kind = match tier {
                    SubscriptionTier::Tier2 => Scored::SubscriptionTier2,
                    SubscriptionTier::Tier3 => Scored::SubscriptionTier3,
                    SubscriptionTier::Tier1 | SubscriptionTier::Prime => Scored::Subscription,
                };
                (author, kind, weights.of(kind))
            }
        },
        EventKind::Cheer { bits } => (
            author,
            Scored::Cheer,
            scaled(weights.of(Scored::Cheer), i128::from(*bits), 100),
        ),
        EventKind::Donation { amount, .. } if amount.is_finite() && *amount > 0.0 => {
            // In cents, so 12.34 is exact.
            let cents = (amount * 100.0).round().min(1e15) as i128;
            (
                author,
                Scored::Donation,
                scaled(weights.of(Scored::Donation), cents, 100),
            )
        }
        EventKind::Raid { .. } => (author, Scored::Raid, weights.of(Scored::Raid)),
        EventKind::Moderation(action) => match action {
            ModerationAction::Warn { user_id, .. } => {
                (user_id.clone(), Scored::Warn, weights.of(Scored::Warn))
            }
            ModerationAction::Timeout { user_id, .. } => (
                user_id.clone(),
                Scored::Timeout,
                weights.of(Scored::Timeout),
            ),
            ModerationAction::Kick { user_id, .. } => {
                (user_id.clone(), Scored::Kick, weights.of(Scored::Kick))
            }
            ModerationAction::Ban { user_id, .. } => {
                (user_id.clone(), Scored::Ban, weights.of(Scored::Ban))
            }
            _ => return None,
        },
        _ => return None,
    };
    (amount != 0 && !who.trim().is_empty()).then_some((who, kind, amount))
}

/// The score (in [`UNITS`]) for a sum of changes: `600 + sum`, clamped to 300–850.
///
/// ```
/// use waddlebot_modules::{UNITS, score_units};
/// assert_eq!(score_units(0), 600 * UNITS);
/// assert_eq!(score_units(-10_000 * UNITS), 300 * UNITS);
/// ```
pub fn score_units(sum: i64) -> i64 {
    (START_SCORE * UNITS)
        .saturating_add(sum)
        .clamp(MIN_SCORE * UNITS, MAX_SCORE * UNITS)
}

/// A score's tier.
pub fn tier(score_units: i64) -> &'static str {
    match score_units / UNITS {
        800.. => "exceptional",
        740..=799 => "very good",
        670..=739 => "good",
        580..=669 => "fair",
        _ => "poor",
    }
}

/// `612.35`.
pub fn shown(score_units: i64) -> String {
    format!(
        "{}.{:02}",
        score_units / UNITS,
        (score_units % UNITS).abs() / 100
    )
}

/// One change in a person's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// When (Unix milliseconds).
    pub at_ms: u64,
    /// Score before, in [`UNITS`].
    pub before: i64,
    /// Score after, in [`UNITS`].
    pub after: i64,
    /// Why (`twitch follow`, `set by alice: spamming`).
    pub reason: String,
}

fn scores(community: CommunityId) -> String {
    community_namespace(community, REPUTATION_MODULE)
}

fn history(community: CommunityId) -> String {
    community_namespace(community, "reputation_log")
}

/// The bot-wide (global) score namespace.
const GLOBAL: &str = "reputation";

/// How long an account's person is remembered (links made in this process are seen at once;
/// in another process, within this long).
const PERSON_TTL_MS: u64 = 60_000;
/// Accounts remembered at most (the memory is emptied when full).
const PEOPLE_REMEMBERED: usize = 100_000;

/// Accounts' persons, looked up recently: `platform → user id → (person, when, link
/// generation)`.
#[derive(Debug, Default)]
struct People(HashMap<PlatformKind, HashMap<String, (String, u64, u64)>>);

impl People {
    fn len(&self) -> usize {
        self.0.values().map(HashMap::len).sum()
    }
}

/// The reputation module: `!rep` (a [`CommandHandler`]) and the scoring of events (an
/// [`EventHandler`]); register one instance as both, since they share the changes not yet
/// written ([`standard_modules`](crate::standard_modules) does).
#[derive(Debug, Default)]
pub struct Reputation {
    people: Mutex<People>,
    links: Mutex<Links>,
}

/// Linked accounts most processes have so few of that all of them are kept in memory.
const LINKS_KEPT: usize = 100_000;

/// Every linked account and its person ([`links`](crate::identity::links)), when read, and
/// when, at which link generation; a raid of newcomers then costs no identity reads.
#[derive(Debug, Default)]
struct Links {
    /// `None`: not read yet, or too many to keep.
    known: Option<std::sync::Arc<HashMap<String, String>>>,
    at: u64,
    generation: u64,
    loading: bool,
}

impl Reputation {
    /// [`person_of`], remembered for a minute (or until this process links accounts).
    async fn person(
        &self,
        store: &dyn Store,
        platform: &PlatformKind,
        user_id: &str,
        now: u64,
    ) -> Result<String, StoreError> {
        let generation = crate::identity::generation();
        if let Some(person) = self.linked(store, platform, user_id, now, generation).await {
            return Ok(person);
        }
        {
            let people = self.people.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((person, at, seen)) = people.0.get(platform).and_then(|p| p.get(user_id))
                && *seen == generation
                && now.saturating_sub(*at) < PERSON_TTL_MS
            {
                return Ok(person.clone());
            }
        }
        let person = person_of(store, platform, user_id).await?;
        let mut people = self.people.lock().unwrap_or_else(|p| p.into_inner());
        if people.len() >= PEOPLE_REMEMBERED {
            people.0.clear();
        }
        people
            .0
            .entry(platform.clone())
            .or_default()
            .insert(user_id.to_owned(), (person.clone(), now, generation));
        Ok(person)
    }

    /// The account's person from the links kept in memory (read again after
    /// [`PERSON_TTL_MS`] or a link made here); `None` when they are not at hand (being read
    /// by another event, too many, or the store failed), and the caller reads the account.
    async fn linked(
        &self,
        store: &dyn Store,
        platform: &PlatformKind,
        user_id: &str,
        now: u64,
        generation: u64,
    ) -> Option<String> {
        let account = || crate::members::account_key(platform, user_id);
        {
            let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
            let fresh =
                links.generation == generation && now.saturating_sub(links.at) < PERSON_TTL_MS;
            if fresh && let Some(known) = &links.known {
                let account = account();
                return Some(known.get(&account).cloned().unwrap_or(account));
            }
            if links.loading || (fresh && links.known.is_none()) {
                return None;
            }
            links.loading = true;
        }
        // Another event reads them again if this one is dropped part-way.
        struct Loading<'a>(&'a Mutex<Links>);
        impl Drop for Loading<'_> {
            fn drop(&mut self) {
                self.0.lock().unwrap_or_else(|p| p.into_inner()).loading = false;
            }
        }
        let loading = Loading(&self.links);
        let read = crate::identity::links(store).await;
        drop(loading);
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        links.at = now;
        links.generation = generation;
        links.known = match read {
            Ok(known) if known.len() <= LINKS_KEPT => Some(std::sync::Arc::new(known)),
            Ok(_) => None,
            Err(err) => {
                tracing::warn!(error = %err, "linked accounts not read; reading them one by one");
                None
            }
        };
        let account = account();
        links
            .known
            .as_ref()
            .map(|known| known.get(&account).cloned().unwrap_or(account))
    }

    async fn apply(&self, ctx: &Context) -> Result<Vec<Reply>, CommandError> {
        let store = ctx.store.as_ref();
        let now = ctx.clock.now_millis();
        let config = settings(ctx).await?;
        let weights = Weights::from_config(&config).unwrap_or_else(|err| {
            tracing::warn!(community = ctx.community.0, error = %err, "reputation weights ignored");
            Weights::default()
        });
        let Some((who, kind, delta)) = change_for(&ctx.event, &weights) else {
            return Ok(Vec::new());
        };
        let platform = ctx.event.platform.clone();
        let person = self.person(store, &platform, &who, now).await?;
        if kind.batched() {
            store
                .write_behind(vec![
                    Write::increment(scores(ctx.community), person.clone(), delta),
                    Write::increment(GLOBAL, person, delta),
                ])
                .await?;
            return Ok(Vec::new());
        }
        let after = store
            .increment(&scores(ctx.community), &person, delta)
            .await?;
        let (before, after) = (score_units(after - delta), score_units(after));
        let reason = format!("{platform} {}", kind.name());
        // The global score and the history do not depend on each other: written together,
        // the event waits for one round trip to the store instead of two.
        let global = async {
            store
                .increment(GLOBAL, &person, delta)
                .await
                .map_err(CommandError::from)
        };
        let history = record(store, ctx.community, &person, before, after, &reason, now);
        futures_util::future::try_join(global, history).await?;
        let policy = AutoBan::from_config(&config);
        if policy.enabled && after <= policy.threshold * UNITS && before > policy.threshold * UNITS
        {
            let reason_text = format!(
                "reputation {} is at or below {}",
                shown(after),
                policy.threshold
            );
            crate::audit(
                ctx,
                Some("reputation"),
                "reputation.auto_ban",
                &person,
                serde_json::json!({"score": shown(after), "threshold": policy.threshold, "platform": platform, "user_id": who}),
            )
            .await;
            return Ok(vec![Reply::Moderate(ModerationAction::Ban {
                user_id: who,
                reason: Some(reason_text),
            })]);
        }
        Ok(Vec::new())
    }
}

/// The auto-ban policy of a community.
struct AutoBan {
    enabled: bool,
    threshold: i64,
}

impl AutoBan {
    fn from_config(config: &serde_json::Value) -> Self {
        let policy = &config["auto_ban"];
        Self {
            enabled: policy["enabled"].as_bool().unwrap_or(false),
            threshold: policy["threshold"]
                .as_i64()
                .filter(|t| (MIN_SCORE..=MAX_SCORE).contains(t))
                .unwrap_or(DEFAULT_AUTO_BAN_THRESHOLD),
        }
    }
}

async fn settings(ctx: &Context) -> Result<serde_json::Value, StoreError> {
    Ok(ctx
        .store
        .module_install(ctx.community, REPUTATION_MODULE)
        .await?
        .map(|install| install.config)
        .unwrap_or_default())
}

/// A person's history document.
#[derive(Debug, Default, Serialize, Deserialize)]
struct History {
    changes: Vec<Change>,
}

/// Adds a change to the person's history (the last [`HISTORY`]).
async fn record(
    store: &dyn Store,
    community: CommunityId,
    person: &str,
    before: i64,
    after: i64,
    reason: &str,
    now: u64,
) -> Result<(), CommandError> {
    crate::update_document(
        store,
        &history(community),
        person,
        "The reputation history is busy; try again.",
        |slot: &mut Option<History>| {
            let changes = &mut slot.get_or_insert_with(History::default).changes;
            changes.push(Change {
                at_ms: now,
                before,
                after,
                reason: reason.to_owned(),
            });
            let excess = changes.len().saturating_sub(HISTORY);
            changes.drain(..excess);
            Ok(())
        },
    )
    .await
    .map(drop)
}

/// A person's history, oldest first.
pub async fn history_of(
    store: &dyn Store,
    community: CommunityId,
    person: &str,
) -> Result<Vec<Change>, StoreError> {
    Ok(store
        .get_document(&history(community), person)
        .await?
        .and_then(|document| serde_json::from_value::<History>(document.value).ok())
        .map(|history| history.changes)
        .unwrap_or_default())
}

/// Scores (in [`UNITS`]) of a person in a community and across communities.
pub async fn score_of(
    store: &dyn Store,
    community: CommunityId,
    person: &str,
) -> Result<(i64, i64), StoreError> {
    Ok((
        score_units(store.counter(&scores(community), person).await?),
        score_units(store.counter(GLOBAL, person).await?),
    ))
}

#[async_trait]
impl CommandHandler for Reputation {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("rep")
                .alias("reputation")
                .usage("rep [user] | rep top [n] | rep global [user] | rep set <user> <score> <reason>")
                .description("Reputation scores (300–850) and the leaderboard")
                .module(REPUTATION_MODULE),
        ]
    }

    async fn handle(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        let store = ctx.store.as_ref();
        let sub = ctx.args.get(0).map(str::to_lowercase);
        let text = match sub.as_deref() {
            Some("top") => top(&ctx).await?,
            Some("set") => set(&ctx).await?,
            Some("global") => {
                let (name, person) = whose(&ctx, 1).await?;
                let (_, global) = score_of(store, ctx.community, &person).await?;
                format!(
                    "{name}: {} ({}) across communities.",
                    shown(global),
                    tier(global)
                )
            }
            _ => {
                let (name, person) = whose(&ctx, 0).await?;
                let (here, global) = score_of(store, ctx.community, &person).await?;
                format!(
                    "{name}: {} ({}) here, {} across communities.",
                    shown(here),
                    tier(here),
                    shown(global)
                )
            }
        };
        Ok(vec![Reply::text(text)])
    }
}

/// The person named by argument `index` (a member's name), or the caller.
async fn whose(ctx: &Context, index: usize) -> Result<(String, String), CommandError> {
    let store = ctx.store.as_ref();
    match ctx.args.get(index) {
        None => Ok((
            ctx.user().shown_name().to_owned(),
            person_of(store, &ctx.event.platform, &ctx.user().id).await?,
        )),
        Some(name) => {
            let member = members::named(store, ctx.community, name, &ctx.event.platform).await?;
            Ok((
                member.shown_name().to_owned(),
                person_of(store, &member.platform, &member.user_id).await?,
            ))
        }
    }
}

/// A name for a person key: a member of the community it belongs to, else the key.
async fn name_of(store: &dyn Store, community: CommunityId, person: &str) -> String {
    let accounts = match crate::identity::person(store, person).await {
        Ok(Some(person)) => person
            .accounts
            .into_iter()
            .map(|a| (a.platform, a.user_id))
            .collect(),
        _ => person
            .split_once(':')
            .and_then(|(platform, id)| {
                platform
                    .parse::<PlatformKind>()
                    .ok()
                    .map(|p| vec![(p, id.to_owned())])
            })
            .unwrap_or_default(),
    };
    for (platform, id) in accounts {
        if let Ok(Some(member)) = members::member(store, community, &platform, &id).await {
            return member.shown_name().to_owned();
        }
    }
    person.to_owned()
}

/// One place on a leaderboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leader {
    /// The person's key.
    pub person: String,
    /// Their name in the community.
    pub name: String,
    /// Their score, in [`UNITS`].
    pub score: i64,
}

/// The `n` best scores of a community, best first, with names.
pub async fn leaderboard(
    store: &dyn Store,
    community: CommunityId,
    n: usize,
) -> Result<Vec<Leader>, StoreError> {
    Ok(leaderboard_page(store, community, 0, n, n).await?.0)
}

/// `limit` places of the leaderboard after `offset`, and how many places there are among the
/// best `most` (the whole board is never read: `most` bounds what one call costs). Names are
/// looked up for the page only.
pub async fn leaderboard_page(
    store: &dyn Store,
    community: CommunityId,
    offset: usize,
    limit: usize,
    most: usize,
) -> Result<(Vec<Leader>, usize), StoreError> {
    let ranked = store.top_counters(&scores(community), most).await?;
    let total = ranked.len();
    let mut leaders = Vec::new();
    for (person, sum) in ranked.into_iter().skip(offset).take(limit) {
        leaders.push(Leader {
            name: name_of(store, community, &person).await,
            score: score_units(sum),
            person,
        });
    }
    Ok((leaders, total))
}

async fn top(ctx: &Context) -> Result<String, CommandError> {
    let n = match ctx.args.get(1) {
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=10).contains(n))
            .ok_or_else(|| CommandError::invalid("Show between 1 and 10."))?,
        None => 5,
    };
    let leaders = leaderboard(ctx.store.as_ref(), ctx.community, n).await?;
    if leaders.is_empty() {
        return Ok("Nobody has a reputation here yet.".to_owned());
    }
    let lines: Vec<String> = leaders
        .iter()
        .enumerate()
        .map(|(place, leader)| format!("{}. {} {}", place + 1, leader.name, shown(leader.score)))
        .collect();
    Ok(format!("Top reputation: {}", lines.join(" | ")))
}

async fn set(ctx: &Context) -> Result<String, CommandError> {
    ctx.require(PermissionLevel::Moderator)?;
    let (Some(_), Some(value)) = (ctx.args.get(1), ctx.args.get(2)) else {
        return Err(ctx.usage_error());
    };
    let reason = ctx.args.rest_unquoted(3).trim().to_owned();
    if reason.is_empty() {
        return Err(CommandError::invalid(
            "Say why: rep set <user> <score> <reason>.",
        ));
    }
    let target = parse_points(value)
        .ok()
        .filter(|units| (MIN_SCORE * UNITS..=MAX_SCORE * UNITS).contains(units))
        .ok_or_else(|| {
            CommandError::invalid(format!("A score is between {MIN_SCORE} and {MAX_SCORE}."))
        })?;
    let (name, person) = whose(ctx, 1).await?;
    let store = ctx.store.as_ref();
    let namespace = scores(ctx.community);
    let sum = store.counter(&namespace, &person).await?;
    let before = score_units(sum);
    let after = store
        .increment(&namespace, &person, target - START_SCORE * UNITS - sum)
        .await?;
    let after = score_units(after);
    let by = ctx.user().shown_name().to_owned();
    let reason = format!("set by {by}: {reason}");
    record(
        store,
        ctx.community,
        &person,
        before,
        after,
        &reason,
        ctx.clock.now_millis(),
    )
    .await?;
    crate::audit(
        ctx,
        Some(&format!("{}:{}", ctx.event.platform, ctx.user().id)),
        "reputation.set",
        &person,
        serde_json::json!({"before": shown(before), "after": shown(after), "reason": reason}),
    )
    .await;
    Ok(format!(
        "{name}'s reputation is now {} ({}), was {}.",
        shown(after),
        tier(after),
        shown(before)
    ))
}

#[async_trait]
impl EventHandler for Reputation {
    fn subscription(&self) -> Subscription {
        Subscription::new(REPUTATION_MODULE, &["*", COMMAND_USED]).parallel()
    }

    async fn on_event(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        self.apply(&ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use waddlebot::{Event, Gift};

    fn event(kind: EventKind) -> Event {
        let mut event = Event::chat(PlatformKind::Twitch, "pond", "pond", "alice", "");
        event.kind = kind;
        event
    }

    fn any_kind() -> impl Strategy<Value = EventKind> {
        prop_oneof![
            Just(EventKind::ChatMessage),
            Just(EventKind::Follow),
            (0u32..4, 1u32..30, proptest::option::of(0u32..60)).prop_map(|(tier, months, gift)| {
                EventKind::Subscription {
                    tier: [
                        SubscriptionTier::Tier1,
                        SubscriptionTier::Tier2,
                        SubscriptionTier::Tier3,
                        SubscriptionTier::Prime,
                    ][tier as usize],
                    months,
                    gift: gift.map(|count| Gift {
                        count,
                        anonymous: false,
                    }),
                }
            }),
            (0u64..100_000).prop_map(|bits| EventKind::Cheer { bits }),
            (0.0f64..10_000.0).prop_map(|amount| EventKind::Donation {
                amount,
                currency: "EUR".into()
            }),
            (0u64..1000).prop_map(|viewers| EventKind::Raid { viewers }),
            Just(EventKind::Moderation(ModerationAction::Ban {
                user_id: "alice".into(),
                reason: None
            })),
            Just(EventKind::Moderation(ModerationAction::Warn {
                user_id: "alice".into(),
                reason: None
            })),
            Just(EventKind::Custom {
                name: COMMAND_USED.into()
            }),
        ]
    }

    proptest! {
        /// Whatever happens, in whatever order, the score stays in 300–850 and ends the same.
        #[test]
        fn scores_stay_in_bounds_and_do_not_depend_on_order(
            kinds in proptest::collection::vec(any_kind(), 0..200),
            seed in any::<u64>(),
        ) {
            let weights = Weights::default();
            let changes: Vec<i64> = kinds
                .iter()
                .filter_map(|kind| change_for(&event(kind.clone()), &weights).map(|(_, _, d)| d))
                .collect();
            let mut sum = 0i64;
            for delta in &changes {
                sum += delta;
                let score = score_units(sum);
                prop_assert!((MIN_SCORE * UNITS..=MAX_SCORE * UNITS).contains(&score));
            }
            let mut shuffled = changes.clone();
            fastrand::Rng::with_seed(seed).shuffle(&mut shuffled);
            let other: i64 = shuffled.iter().sum();
            prop_assert_eq!(score_units(sum), score_units(other));
        }

        /// Weights written with up to four decimals are read exactly.
        #[test]
        fn points_with_four_decimals_are_exact(units in -10_000_000i64..10_000_000) {
            let text = format!(
                "{}{}.{:04}",
                if units < 0 { "-" } else { "" },
                units.abs() / UNITS,
                units.abs() % UNITS
            );
            prop_assert_eq!(parse_points(&text), Ok(units));
        }
    }

    #[test]
    fn twitch_tiers_and_amounts_are_scored_as_the_original_meant() {
        let weights = Weights::default();
        let sub = |tier| {
            change_for(
                &event(EventKind::Subscription {
                    tier,
                    months: 1,
                    gift: None,
                }),
                &weights,
            )
            .map(|(_, kind, delta)| (kind, delta))
        };
        assert_eq!(
            sub(SubscriptionTier::Tier2),
            Some((Scored::SubscriptionTier2, 10 * UNITS))
        );
        assert_eq!(
            sub(SubscriptionTier::Tier3),
            Some((Scored::SubscriptionTier3, 20 * UNITS))
        );
        assert_eq!(
            sub(SubscriptionTier::Prime),
            Some((Scored::Subscription, 5 * UNITS))
        );
        let donation = change_for(
            &event(EventKind::Donation {
                amount: 12.34,
                currency: "USD".into(),
            }),
            &weights,
        );
        assert_eq!(donation.map(|c| c.2), Some(123_400), "12.34 units, exactly");
        let ban = change_for(
            &event(EventKind::Moderation(ModerationAction::Ban {
                user_id: "bob".into(),
                reason: None,
            })),
            &weights,
        );
        assert_eq!(
            ban.map(|c| c.0),
            Some("bob".to_owned()),
            "the banned user, not the moderator"
        );
        assert_eq!(tier(score_units(200 * UNITS)), "exceptional");
        assert_eq!(tier(score_units(-21 * UNITS)), "poor");
        assert_eq!(shown(score_units(-UNITS / 100)), "599.99");
    }
}
