//! Who a community has seen: a directory of the accounts that spoke or acted in its channels,
//! so people can be named in commands (`!rep bob`, `!role grant bob vip`, `!so bob`) and
//! listed (`!community members`, leaderboards).
//!
//! [`Members`] is an event handler on every event kind (and on commands, through
//! [`COMMAND_USED`]); it writes an account the first time it is seen and refreshes its
//! last-seen time at most every [`REFRESH`]. Kept as documents: `<community>:members`
//! (`<platform>:<user_id>` → [`Member`]) and `<community>:member_names`
//! (`<lower-case name>:<platform>` → the account), so they travel with an export.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use waddlebot::store::{Expect, Store, community_namespace};
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
/// matter.
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
    let found =
        waddlebot::store::all_documents(store, &names(community), &format!("{name}:")).await?;
    let wanted = format!("{name}:{platform}");
    let pick = found
        .iter()
        .find(|d| d.key == wanted)
        .or_else(|| found.first());
    let Some(account) = pick.and_then(|d| d.value["account"].as_str().map(str::to_owned)) else {
        return Ok(None);
    };
    stored(store, community, &account).await
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

/// Notes that the event's author was seen now.
pub async fn seen(ctx: &Context) -> Result<(), StoreError> {
    let user = ctx.user();
    if user.id.trim().is_empty() {
        return Ok(());
    }
    let store = ctx.store.as_ref();
    let now = ctx.clock.now_millis();
    let key = account_key(&ctx.event.platform, &user.id);
    let existing = store.get_document(&members(ctx.community), &key).await?;
    let refresh = u64::try_from(REFRESH.as_millis()).unwrap_or(u64::MAX);
    let (first_seen_ms, version, old_name) = match &existing {
        Some(document) => {
            let old = decode(document.value.clone())?;
            let fresh = now.saturating_sub(old.last_seen_ms) < refresh
                && old.name == user.name
                && old.display_name == user.display_name;
            if fresh {
                return Ok(());
            }
            (old.first_seen_ms, Some(document.version), Some(old.name))
        }
        None => (now, None, None),
    };
    let member = Member {
        platform: ctx.event.platform.clone(),
        user_id: user.id.clone(),
        name: user.name.clone(),
        display_name: user.display_name.clone(),
        first_seen_ms,
        last_seen_ms: now,
    };
    let value = serde_json::to_value(&member).unwrap_or_default();
    let expect = version.map_or(Expect::Absent, Expect::Version);
    match store
        .put_document(&members(ctx.community), &key, &value, expect)
        .await
    {
        // Someone else wrote it at the same moment: theirs is as good.
        Ok(_) | Err(StoreError::Conflict(_)) => {}
        Err(err) => return Err(err),
    }
    if old_name.as_deref() != Some(member.name.as_str()) {
        if let Some(old) = old_name {
            store
                .delete_document(
                    &names(ctx.community),
                    &format!("{}:{}", old.to_lowercase(), member.platform),
                )
                .await?;
        }
        store
            .put_document(
                &names(ctx.community),
                &format!("{}:{}", member.name.to_lowercase(), member.platform),
                &serde_json::json!({"account": key}),
                Expect::Any,
            )
            .await?;
    }
    Ok(())
}

/// Accounts remembered as written recently, at most (the memory is emptied when full).
const REMEMBERED: usize = 100_000;

/// When an account was written, with the names written.
type Written = (u64, String, Option<String>);

/// Keeps the member directory. It remembers which accounts it wrote lately, so a busy chat
/// costs no store reads: an account is read and written at most once per [`REFRESH`] per
/// process.
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
        {
            let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, name, display)) = recent.get(&place).and_then(|r| r.get(&user.id))
                && now.saturating_sub(*at) < refresh
                && *name == user.name
                && *display == user.display_name
            {
                return Ok(Vec::new());
            }
        }
        seen(&ctx).await?;
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
