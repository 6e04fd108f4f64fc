//! Who a community has seen: a directory of the accounts that spoke or acted in its channels,
//! so people can be named in commands (`!rep bob`, `!role grant bob vip`, `!so bob`) and
//! listed (`!community members`, leaderboards).
//!
//! [`Members`] is an event handler on every event kind (and on commands, through
//! [`COMMAND_USED`]); it records an account the first time it is seen and refreshes its
//! last-seen time at most every [`REFRESH`]. Kept as documents: `<community>:members`
//! (`<platform>:<user_id>` → [`Member`]) and `<community>:member_names`
//! (`<lower-case name>:<platform>` → the account), so they travel with an export.
//!
//! Recording is bookkeeping ([`Store::write_behind`]): a raid of new viewers costs no store
//! write on the events' path. The router's store writes it in batches within 100 ms and
//! shows it to reads before then; a `kill -9` can lose that window's newcomers.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use waddlebot::store::{Store, Write, community_namespace};
use waddlebot::{
    COMMAND_USED, CommandError, CommunityId, Context, EventHandler, PlatformKind, Reply,
    StoreError, Subscription,
};

/// The module name of the directory.
pub const MEMBERS_MODULE: &str = "members";
/// How often a member's last-seen time is written at most.
pub const REFRESH: Duration = Duration::from_secs(10 * 60);

/// An account a community has seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its platform.
    pub platform: PlatformKind,
    /// Its id there.
    pub user_id: String,
    /// Its user name.
    pub name: String,
    /// The name shown, when it differs.
    #[serde(default)]
    pub display_name: Option<String>,
    /// First seen (Unix milliseconds).
    pub first_seen_ms: u64,
    /// Last seen, within [`REFRESH`] (Unix milliseconds).
    pub last_seen_ms: u64,
}

impl Member {
    /// The display name if there is one, else the user name.
    pub fn shown_name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.name)
    }

    /// `<platform>:<user_id>`, the account's key everywhere.
    pub fn account(&self) -> String {
        account_key(&self.platform, &self.user_id)
    }
}

/// `<platform>:<user_id>`.
pub fn account_key(platform: &PlatformKind, user_id: &str) -> String {
    format!("{platform}:{user_id}")
}

fn members(community: CommunityId) -> String {
    community_namespace(community, "members")
}

fn names(community: CommunityId) -> String {
    community_namespace(community, "member_names")
}

fn decode(value: serde_json::Value) -> Result<Member, StoreError> {
    serde_json::from_value(value)
        .map_err(|err| StoreError::Backend(format!("malformed member: {err}").into()))
}

/// A member by account.
pub async fn member(
    store: &dyn Store,
    community: CommunityId,
    platform: &PlatformKind,
    user_id: &str,
) -> Result<Option<Member>, StoreError> {
    stored(store, community, &account_key(platform, user_id)).await
}

/// The member document under `account` (`platform:user id`).
async fn stored(
    store: &dyn Store,
    community: CommunityId,
    account: &str,
) -> Result<Option<Member>, StoreError> {
    store
        .get_document(&members(community), account)
        .await?
        .map(|document| decode(document.value))
        .transpose()
}

/// A member by name (`bob`, `@bob`), preferring an account on `platform`; case does not
/// matter. A name an account no longer uses (it was renamed where another process saw it) is
/// passed over.
pub async fn find(
    store: &dyn Store,
    community: CommunityId,
    name: &str,
    platform: &PlatformKind,
) -> Result<Option<Member>, StoreError> {
    let name = name.trim().trim_start_matches('@').to_lowercase();
    if name.is_empty() || name.contains(':') {
        return Ok(None);
    }
    let mut found =
        waddlebot::store::all_documents(store, &names(community), &format!("{name}:")).await?;
    let wanted = format!("{name}:{platform}");
    // The account on the caller's platform first.
    found.sort_by_key(|d| d.key != wanted);
    for entry in found {
        let Some(account) = entry.value["account"].as_str() else {
            continue;
        };
        if let Some(member) = stored(store, community, account).await?
            && member.name.to_lowercase() == name
        {
            return Ok(Some(member));
        }
    }
    Ok(None)
}

/// [`find`], or the refusal a command gives when nobody of that name has been seen.
pub async fn named(
    store: &dyn Store,
    community: CommunityId,
    name: &str,
    platform: &PlatformKind,
) -> Result<Member, CommandError> {
    find(store, community, name, platform)
        .await?
        .ok_or_else(|| {
            CommandError::invalid(format!(
                "I have not seen {} here.",
                name.trim_start_matches('@')
            ))
        })
}

/// Every member, by account key.
pub async fn all(store: &dyn Store, community: CommunityId) -> Result<Vec<Member>, StoreError> {
    waddlebot::store::all_documents(store, &members(community), "")
        .await?
        .into_iter()
        .map(|document| decode(document.value))
        .collect()
}

/// Records that the event's author was seen now (bookkeeping, written behind the event):
/// the member is created unless it exists, then its names and last-seen time are set, and its
/// name is indexed. `former` is a name this account was known by, whose index entry goes.
pub async fn seen(ctx: &Context, former: Option<&str>) -> Result<(), StoreError> {
    let user = ctx.user();
    if user.id.trim().is_empty() {
        return Ok(());
    }
    let now = ctx.clock.now_millis();
    let platform = &ctx.event.platform;
    let key = account_key(platform, &user.id);
    let member = Member {
        platform: platform.clone(),
        user_id: user.id.clone(),
        name: user.name.clone(),
        display_name: user.display_name.clone(),
        first_seen_ms: now,
        last_seen_ms: now,
    };
    let serde_json::Value::Object(mut fields) = serde_json::to_value(&member).unwrap_or_default()
    else {
        return Ok(());
    };
    let created = serde_json::Value::Object(fields.clone());
    // Everything but the first-seen time, which stays as first written.
    fields.remove("first_seen_ms");
    let mut writes = vec![
        Write::insert(members(ctx.community), key.clone(), created),
        Write::merge(members(ctx.community), key.clone(), fields),
        Write::put(
            names(ctx.community),
            format!("{}:{platform}", member.name.to_lowercase()),
            serde_json::json!({"account": key}),
        ),
    ];
    if let Some(former) = former.filter(|former| !former.eq_ignore_ascii_case(&member.name)) {
        writes.push(Write::delete(
            names(ctx.community),
            format!("{}:{platform}", former.to_lowercase()),
        ));
    }
    ctx.store.write_behind(writes).await
}

/// Accounts remembered as written recently, at most (the memory is emptied when full).
const REMEMBERED: usize = 100_000;

/// When an account was written, with the names written.
type Written = (u64, String, Option<String>);

/// Keeps the member directory. It remembers which accounts it recorded lately, so a busy
/// chat records an account at most once per [`REFRESH`] per process.
#[derive(Debug, Default)]
pub struct Members {
    /// `(community, platform) → user id → (written at, name, display name)`.
    recent: std::sync::Mutex<HashMap<(CommunityId, PlatformKind), HashMap<String, Written>>>,
}

#[async_trait]
impl EventHandler for Members {
    fn subscription(&self) -> Subscription {
        Subscription::new(MEMBERS_MODULE, &["*", COMMAND_USED])
            .priority(0)
            .parallel()
    }

    async fn on_event(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        let user = ctx.user();
        let place = (ctx.community, ctx.event.platform.clone());
        let now = ctx.clock.now_millis();
        let refresh = u64::try_from(REFRESH.as_millis()).unwrap_or(u64::MAX);
        let former = {
            let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            match recent.get(&place).and_then(|r| r.get(&user.id)) {
                Some((at, name, display))
                    if now.saturating_sub(*at) < refresh
                        && *name == user.name
                        && *display == user.display_name =>
                {
                    return Ok(Vec::new());
                }
                Some((_, name, _)) => Some(name.clone()),
                None => None,
            }
        };
        seen(&ctx, former.as_deref()).await?;
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.values().map(HashMap::len).sum::<usize>() >= REMEMBERED {
            recent.clear();
        }
        recent.entry(place).or_default().insert(
            user.id.clone(),
            (now, user.name.clone(), user.display_name.clone()),
        );
        Ok(Vec::new())
    }
}
