//! Communities, their entities (the channels whose chat they get), modules and role grants.

use std::time::SystemTime;

use http::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use waddlebot::store::{Community, EntityKey, ModuleInstall, Page, RoleGrant};
use waddlebot::{PermissionLevel, PlatformKind};

use super::{Call, bad_request, forbidden, millis, not_found, store_failure, success};
use crate::app::{Failure, ResponseBody};
use crate::auth::Role;

type Answer = Result<Response<ResponseBody>, Failure>;

/// Longest community name.
const MAX_NAME: usize = 100;

fn community_json(community: &Community) -> Value {
    json!({
        "id": community.id.0,
        "name": community.name,
        "created_at_ms": millis(community.created_at),
    })
}

/// Every record of an id-ordered listing, a page of the store's largest size at a time.
pub(super) async fn all<T, F, Fut>(mut page: F, id: impl Fn(&T) -> i64) -> Result<Vec<T>, Failure>
where
    F: FnMut(Page) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, waddlebot::StoreError>>,
{
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let batch = page(Page {
            after: after.take(),
            limit: Page::MAX_LIMIT,
        })
        .await
        .map_err(store_failure)?;
        let full = batch.len() == Page::MAX_LIMIT;
        after = batch.last().map(|last| id(last).to_string());
        out.extend(batch);
        if !full {
            return Ok(out);
        }
    }
}

/// `GET /api/v1/communities`: every community for a bot-wide credential (or without
/// authentication), only its own for a community credential.
pub(super) async fn list(call: &Call<'_>) -> Answer {
    let store = call.store();
    let communities = match call.principal.and_then(|p| p.community) {
        Some(own) => store
            .community(own)
            .await
            .map_err(store_failure)?
            .into_iter()
            .collect(),
        None => {
            all(
                |page| async move { store.list_communities(&page).await },
                |c| c.id.0,
            )
            .await?
        }
    };
    call.list(communities.iter().map(community_json).collect(), &["q"])
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCommunity {
    name: String,
}

/// `POST /api/v1/communities` (bot admins).
pub(super) async fn create(call: &Call<'_>) -> Answer {
    let new: NewCommunity = call.body()?;
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(bad_request(format!(
            "the name must be 1 to {MAX_NAME} characters, without control characters"
        )));
    }
    let community = call
        .store()
        .create_community(name, SystemTime::now())
        .await
        .map_err(|err| match err {
            waddlebot::StoreError::Conflict(_) => Failure(
                StatusCode::CONFLICT,
                format!("a community named {name} exists"),
            ),
            other => store_failure(other),
        })?;
    call.app
        .audit(
            call.principal,
            Some(community.id),
            "community.create",
            name,
            json!({}),
        )
        .await;
    Ok(success(StatusCode::CREATED, community_json(&community)))
}

pub(super) async fn get(call: &Call<'_>) -> Answer {
    let id = call.id()?;
    let community = call
        .store()
        .community(id)
        .await
        .map_err(store_failure)?
        .ok_or_else(|| not_found(format!("community {}", id.0)))?;
    Ok(success(StatusCode::OK, community_json(&community)))
}

pub(super) async fn list_entities(call: &Call<'_>) -> Answer {
    let id = call.id()?;
    let store = call.store();
    let entities = all(
        |page| async move { store.list_entities(&page).await },
        |e| e.id.0,
    )
    .await?;
    let items = entities
        .iter()
        .filter(|entity| entity.community_id == id)
        .map(|entity| {
            json!({
                "id": entity.id.0,
                "platform": entity.key.platform,
                "server_id": entity.key.server_id,
                "channel_id": entity.key.channel_id,
                "created_at_ms": millis(entity.created_at),
            })
        })
        .collect();
    call.list(items, &["platform", "server_id"])
}

/// A channel given to a community: `PUT …/entities`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewEntity {
    platform: String,
    server_id: String,
    channel_id: String,
}

impl NewEntity {
    /// The channel's key, when the platform is a built-in one and the ids are ids as the router
    /// API takes them (not blank, at most [`MAX_ID_CHARS`](crate::wire::MAX_ID_CHARS)): a
    /// channel no event can name would never get chat.
    fn check(self) -> Result<EntityKey, Failure> {
        let platform: PlatformKind = self
            .platform
            .parse()
            .map_err(|err: waddlebot::UnknownPlatform| bad_request(err.to_string()))?;
        for (field, value) in [
            ("server_id", &self.server_id),
            ("channel_id", &self.channel_id),
        ] {
            if value.trim().is_empty() || value.chars().count() > crate::wire::MAX_ID_CHARS {
                return Err(bad_request(format!(
                    "{field} must be 1 to {} characters, not blank",
                    crate::wire::MAX_ID_CHARS
                )));
            }
        }
        Ok(EntityKey {
            platform,
            server_id: self.server_id,
            channel_id: self.channel_id,
        })
    }
}

/// `PUT …/entities`: the channel's chat goes to this community from now on (bot admins: it may
/// take a channel from another community).
pub(super) async fn assign_entity(call: &Call<'_>) -> Answer {
    let id = call.id()?;
    let key = call.body::<NewEntity>()?.check()?;
    let before = call.store().entity(&key).await.map_err(store_failure)?;
    let entity = call
        .store()
        .assign_entity(&key, id)
        .await
        .map_err(store_failure)?;
    call.audit(
        "entity.assign",
        &format!("{}:{}:{}", key.platform, key.server_id, key.channel_id),
        json!({"before": before.map(|e| e.community_id.0), "after": id.0}),
    )
    .await;
    Ok(success(
        StatusCode::OK,
        json!({"id": entity.id.0, "community_id": entity.community_id.0}),
    ))
}

/// The modules the router knows, with this community's state of each, and any installed
/// module the router does not run (kept, shown as unknown).
pub(super) async fn list_modules(call: &Call<'_>) -> Answer {
    let installs = call
        .store()
        .list_module_installs(call.id()?)
        .await
        .map_err(store_failure)?;
    let mut items: Vec<Value> = call
        .router()
        .modules()
        .into_iter()
        .map(|module| {
            let install = installs.iter().find(|i| i.module == module.name);
            module_json(&module.name, Some(&module), install)
        })
        .collect();
    let known: Vec<String> = call
        .router()
        .modules()
        .into_iter()
        .map(|m| m.name)
        .collect();
    items.extend(
        installs
            .iter()
            .filter(|i| !known.contains(&i.module))
            .map(|i| module_json(&i.module, None, Some(i))),
    );
    call.list(items, &["q", "enabled"])
}

fn module_json(
    name: &str,
    known: Option<&waddlebot_router::ModuleInfo>,
    install: Option<&ModuleInstall>,
) -> Value {
    let enabled =
        name == "core" || install.map_or_else(|| known.is_some_and(|m| !m.optional), |i| i.enabled);
    json!({
        "name": name,
        "known": known.is_some(),
        "optional": known.is_none_or(|m| m.optional),
        "commands": known.map_or_else(Vec::new, |m| m.commands.clone()),
        "enabled": enabled,
        "installed": install.is_some(),
        "config": install.map_or_else(|| json!({}), |i| i.config.clone()),
        "updated_by": install.map(|i| i.updated_by.clone()),
        "updated_at_ms": install.map(|i| millis(i.updated_at)),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModuleChange {
    enabled: Option<bool>,
    /// A JSON merge patch (RFC 7396) on the module's settings: `null` removes a key.
    config: Option<Value>,
}

/// 409 for turning `core` off: a well-formed change the server's own state refuses (the core
/// module answers `!help` and the module switches themselves), like a name already taken.
fn core_stays_on(name: &str, enabled: Option<bool>) -> Result<(), Failure> {
    if name == "core" && enabled == Some(false) {
        return Err(Failure(
            StatusCode::CONFLICT,
            "the core module cannot be turned off (its settings can be changed)".to_owned(),
        ));
    }
    Ok(())
}

/// `PATCH …/modules/{name}`: install, turn on or off, change settings.
pub(super) async fn update_module(call: &Call<'_>) -> Answer {
    let id = call.id()?;
    let name = call.param("name").to_ascii_lowercase();
    let change: ModuleChange = call.body()?;
    if change.enabled.is_none() && change.config.is_none() {
        return Err(bad_request("give enabled, config or both"));
    }
    if change.config.as_ref().is_some_and(|c| !c.is_object()) {
        return Err(bad_request("config must be a JSON object (a merge patch)"));
    }
    core_stays_on(&name, change.enabled)?;
    let modules = call.router().modules();
    let known = modules.iter().find(|m| m.name == name);
    let _held = call
        .app
        .state()
        .write_locks
        .lock(format!("{}/modules/{name}", id.0))
        .await;
    let before = call
        .store()
        .module_install(id, &name)
        .await
        .map_err(store_failure)?;
    if known.is_none() && before.is_none() {
        let names: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
        return Err(not_found(format!(
            "module {name}; this server runs {}",
            names.join(", ")
        )));
    }
    let mut config = before
        .as_ref()
        .map_or_else(|| json!({}), |i| i.config.clone());
    if let Some(patch) = &change.config {
        json_patch::merge(&mut config, patch);
        waddlebot_modules::check_settings(&name, &config)
            .map_err(|reason| bad_request(format!("{name} settings: {reason}")))?;
    }
    let enabled = change.enabled.unwrap_or_else(|| {
        before
            .as_ref()
            .map_or_else(|| known.is_some_and(|m| !m.optional), |i| i.enabled)
    });
    let install = ModuleInstall {
        community_id: id,
        module: name.clone(),
        enabled,
        config,
        updated_by: call.actor(),
        updated_at: SystemTime::now(),
    };
    call.store()
        .put_module_install(&install)
        .await
        .map_err(store_failure)?;
    call.audit(
        "module.update",
        &name,
        json!({
            "before": before.as_ref().map(|i| json!({"enabled": i.enabled, "config": i.config})),
            "after": {"enabled": install.enabled, "config": install.config},
        }),
    )
    .await;
    Ok(success(
        StatusCode::OK,
        module_json(&name, known, Some(&install)),
    ))
}

fn grant_json(grant: &RoleGrant) -> Value {
    json!({
        "platform": grant.platform,
        "user_id": grant.user_id,
        "level": grant.level,
        "granted_by": grant.granted_by,
        "granted_at_ms": millis(grant.granted_at),
    })
}

/// `GET …/reputation`: the leaderboard, best first (`limit` places, default 50; the best
/// [`MAX_LEADERBOARD`] places at most).
pub(super) async fn reputation(call: &Call<'_>) -> Answer {
    let (limit, offset) = call.paging(&[])?;
    let (leaders, total) = waddlebot_modules::leaderboard_page(
        call.store().as_ref(),
        call.id()?,
        offset,
        limit,
        MAX_LEADERBOARD,
    )
    .await
    .map_err(store_failure)?;
    let items: Vec<Value> = leaders
        .iter()
        .map(|leader| {
            json!({
                "person": leader.person,
                "name": leader.name,
                "score": waddlebot_modules::shown_score(leader.score),
                "tier": waddlebot_modules::tier(leader.score),
            })
        })
        .collect();
    Ok(success(
        StatusCode::OK,
        super::paged(items, limit, offset, total),
    ))
}

/// The most places a leaderboard reads.
const MAX_LEADERBOARD: usize = 1000;

pub(super) async fn list_grants(call: &Call<'_>) -> Answer {
    let grants = call
        .store()
        .list_role_grants(call.id()?)
        .await
        .map_err(store_failure)?;
    call.list(
        grants.iter().map(grant_json).collect(),
        &["platform", "level"],
    )
}

/// The path's platform and user.
fn grantee(call: &Call<'_>) -> Result<(PlatformKind, String), Failure> {
    let platform = call
        .param("platform")
        .parse::<PlatformKind>()
        .map_err(|err| not_found(format!("platform: {err}")))?;
    Ok((platform, call.param("user").into_owned()))
}

/// Levels above moderator are given and taken only by the community's owner (or a bot admin):
/// a community admin cannot make someone a broadcaster or admin, nor demote one.
fn may_manage(call: &Call<'_>, level: PermissionLevel) -> Result<(), Failure> {
    if level > PermissionLevel::Moderator && call.role() < Role::Owner {
        return Err(forbidden(format!(
            "only the community's owner may grant or revoke {level}"
        )));
    }
    Ok(())
}

/// The path's grant, read under its write lock (held until the guard is dropped), after
/// checking the caller may change it.
async fn locked_grant(
    call: &Call<'_>,
    platform: &PlatformKind,
    user: &str,
) -> Result<(tokio::sync::OwnedMutexGuard<()>, Option<RoleGrant>), Failure> {
    let id = call.id()?;
    let held = call
        .app
        .state()
        .write_locks
        .lock(format!("{}/grants/{platform}/{user}", id.0))
        .await;
    let before = call
        .store()
        .role_grant(id, platform, user)
        .await
        .map_err(store_failure)?;
    if let Some(before) = &before {
        may_manage(call, before.level)?;
    }
    Ok((held, before))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewGrant {
    level: PermissionLevel,
}

/// `PUT …/grants/{platform}/{user}`: the user's level here (on top of their badges).
pub(super) async fn grant(call: &Call<'_>) -> Answer {
    let id = call.id()?;
    let (platform, user) = grantee(call)?;
    let new: NewGrant = call.body()?;
    may_manage(call, new.level)?;
    let (_held, before) = locked_grant(call, &platform, &user).await?;
    let grant = RoleGrant {
        community_id: id,
        platform,
        user_id: user,
        level: new.level,
        granted_by: call.actor(),
        granted_at: SystemTime::now(),
    };
    call.store()
        .put_role_grant(&grant)
        .await
        .map_err(store_failure)?;
    call.audit(
        "grant.put",
        &format!("{}:{}", grant.platform, grant.user_id),
        json!({"before": before.map(|g| g.level), "after": grant.level}),
    )
    .await;
    Ok(success(StatusCode::OK, grant_json(&grant)))
}

pub(super) async fn revoke(call: &Call<'_>) -> Answer {
    let id = call.id()?;
    let (platform, user) = grantee(call)?;
    let (_held, before) = locked_grant(call, &platform, &user).await?;
    let before = before.ok_or_else(|| not_found(format!("grant for {platform} user {user}")))?;
    call.store()
        .delete_role_grant(id, &platform, &user)
        .await
        .map_err(store_failure)?;
    call.audit(
        "grant.delete",
        &format!("{platform}:{user}"),
        json!({"before": before.level}),
    )
    .await;
    Ok(success(
        StatusCode::OK,
        json!({"deleted": {"platform": platform, "user_id": user}}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(platform: &str, server_id: &str, channel_id: &str) -> NewEntity {
        NewEntity {
            platform: platform.to_owned(),
            server_id: server_id.to_owned(),
            channel_id: channel_id.to_owned(),
        }
    }

    #[test]
    fn an_entity_on_an_unknown_platform_is_refused_instead_of_stored() {
        let refused = entity("myspace", "pond", "pond")
            .check()
            .expect_err("refused");
        assert_eq!(refused.0, StatusCode::BAD_REQUEST);
        assert!(refused.1.contains("myspace"), "{}", refused.1);
        let key = entity("twitch", "pond", "pond")
            .check()
            .map(|key| key.platform);
        assert!(matches!(key, Ok(PlatformKind::Twitch)));
    }

    #[test]
    fn entity_ids_are_refused_when_blank_or_longer_than_the_router_api_takes() {
        let long = "x".repeat(crate::wire::MAX_ID_CHARS + 1);
        for (server, channel) in [("  ", "pond"), ("pond", ""), (long.as_str(), "pond")] {
            let refused = entity("twitch", server, channel).check().err();
            assert_eq!(
                refused.map(|f| f.0),
                Some(StatusCode::BAD_REQUEST),
                "{server:?} {channel:?}"
            );
        }
        let longest = "x".repeat(crate::wire::MAX_ID_CHARS);
        assert!(entity("discord", &longest, "general").check().is_ok());
    }

    #[test]
    fn turning_core_off_is_a_conflict_and_changing_its_settings_is_not() {
        let refused = core_stays_on("core", Some(false)).expect_err("core stays on");
        assert_eq!(refused.0, StatusCode::CONFLICT);
        assert!(core_stays_on("core", None).is_ok());
        assert!(core_stays_on("core", Some(true)).is_ok());
        assert!(core_stays_on("quotes", Some(false)).is_ok());
    }

    #[test]
    fn unknown_fields_in_an_entity_are_refused() {
        let parsed = crate::app::parse_json::<NewEntity>(
            br#"{"platform":"twitch","server_id":"a","channel_id":"b","colour":"red"}"#,
        );
        assert!(parsed.err().is_some_and(|f| f.1.contains("colour")));
    }
}
