//! The original's router read API: `GET /router/commands` and `GET /router/entities`, behind
//! the collector (or admin) credential. Collectors and admins are bot-wide and read every
//! community; should a credential limited to a community reach these routes, it reads that
//! community only (checked here, not only by the route table).

use std::collections::HashMap;

use serde_json::{Value, json};
use waddlebot::CommunityId;
use waddlebot::store::{CUSTOM_COMMANDS_MODULE, CommandSettings};

use http::Response;

use super::community::all;
use super::{Call, bad_request, forbidden, millis, not_found, store_failure};
use crate::app::{Failure, ResponseBody};

type Answer = Result<Response<ResponseBody>, Failure>;

/// The community a read is about: the caller's own when it is limited to one (a different
/// `community` is 403), else the `community` parameter (`None` when absent).
fn scope(call: &Call<'_>) -> Result<Option<CommunityId>, Failure> {
    let asked = match call.query_value("community") {
        Some(raw) => {
            Some(CommunityId(raw.parse().map_err(|_| {
                bad_request("community must be a community's number")
            })?))
        }
        None => None,
    };
    match (call.principal.and_then(|p| p.community), asked) {
        (Some(own), Some(asked)) if own != asked => Err(forbidden(format!(
            "this credential reads community {} only",
            own.0
        ))),
        (Some(own), _) => Ok(Some(own)),
        (None, asked) => Ok(asked),
    }
}

/// `GET /router/commands?community=ID`: every command the community can run (built-in,
/// custom, aliases, remote modules' `#` commands) with its module, level, cooldowns and
/// whether it is on; filters `module`, `q`, `enabled`.
pub(super) async fn commands(call: &Call<'_>) -> Answer {
    let community = scope(call)?
        .ok_or_else(|| bad_request("give the community: /router/commands?community=ID"))?;
    let store = call.store();
    store
        .community(community)
        .await
        .map_err(store_failure)?
        .ok_or_else(|| not_found(format!("community {}", community.0)))?;
    let installs = store
        .list_module_installs(community)
        .await
        .map_err(store_failure)?;
    let settings: HashMap<String, CommandSettings> = store
        .list_command_settings(community)
        .await
        .map_err(store_failure)?
        .into_iter()
        .map(|s| (s.command.clone(), s))
        .collect();
    let catalog = call.router().catalog();
    let module_on = |module: &str| catalog.module_on_among(module, &installs);
    let mut items = Vec::new();
    for spec in catalog.specs() {
        let own = settings.get(&spec.name);
        items.push(json!({
            "name": spec.name,
            "kind": "builtin",
            "community": community.0,
            "module": spec.module,
            "description": spec.description,
            "usage": spec.usage,
            "aliases": spec.aliases,
            "level": own.and_then(|s| s.min_level).unwrap_or(spec.min_level),
            "user_cooldown_secs": own.and_then(|s| s.user_cooldown_secs).unwrap_or(spec.cooldown.as_secs()),
            "global_cooldown_secs": own.and_then(|s| s.global_cooldown_secs).unwrap_or(spec.global_cooldown.as_secs()),
            "enabled": module_on(&spec.module) && own.is_none_or(|s| s.enabled),
        }));
    }
    let custom_on = module_on(CUSTOM_COMMANDS_MODULE);
    for command in store
        .list_custom_commands(community)
        .await
        .map_err(store_failure)?
    {
        let own = settings.get(&command.name);
        items.push(json!({
            "name": command.name,
            "kind": "custom",
            "community": community.0,
            "module": CUSTOM_COMMANDS_MODULE,
            "response": command.response,
            "level": own.and_then(|s| s.min_level).unwrap_or(waddlebot::PermissionLevel::Everyone),
            "user_cooldown_secs": own.and_then(|s| s.user_cooldown_secs).unwrap_or(0),
            "global_cooldown_secs": own.and_then(|s| s.global_cooldown_secs).unwrap_or(0),
            "enabled": custom_on && own.is_none_or(|s| s.enabled),
        }));
    }
    for alias in store.list_aliases(community).await.map_err(store_failure)? {
        items.push(json!({
            "name": alias.name,
            "kind": "alias",
            "community": community.0,
            "module": "aliases",
            "target": alias.target,
            "enabled": true,
        }));
    }
    for module in store
        .list_remote_modules(community)
        .await
        .map_err(store_failure)?
    {
        for command in &module.commands {
            items.push(json!({
                "name": command,
                "kind": "remote",
                "community": community.0,
                "module": module.name,
                "level": waddlebot::PermissionLevel::Everyone,
                "enabled": module.enabled && module_on(&module.name),
            }));
        }
    }
    call.list(items, &["community", "module", "q", "enabled"])
}

/// `GET /router/entities`: the channels of every community (bot-wide credentials) or of the
/// caller's; filters `platform`, `community`.
pub(super) async fn entities(call: &Call<'_>) -> Answer {
    // A credential limited to a community sees that one (asking for another is refused);
    // `community=` is otherwise a filter like `platform=`.
    scope(call)?;
    let only = call.principal.and_then(|p| p.community);
    let store = call.store();
    let entities = all(
        |page| async move { store.list_entities(&page).await },
        |e| e.id.0,
    )
    .await?;
    let items: Vec<Value> = entities
        .iter()
        .filter(|entity| only.is_none_or(|own| entity.community_id == own))
        .map(|entity| {
            json!({
                "id": entity.id.0,
                "community": entity.community_id.0,
                "platform": entity.key.platform,
                "server_id": entity.key.server_id,
                "channel_id": entity.key.channel_id,
                "created_at_ms": millis(entity.created_at),
            })
        })
        .collect();
    call.list(items, &["platform", "community"])
}
