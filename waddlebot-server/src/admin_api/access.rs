//! Who may get in: API keys (of a community, or bot-wide), overlay keys, and the audit log of
//! what they did.

use std::time::{Duration, SystemTime};

use http::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use waddlebot::CommunityId;
use waddlebot::store::ApiKey;

use super::{Call, bad_request, forbidden, millis, not_found, store_failure, success};
use crate::app::{Failure, ResponseBody};
use crate::auth::Role;
use crate::overlay_keys;

type Answer = Result<Response<ResponseBody>, Failure>;

/// Longest key name.
const MAX_KEY_NAME: usize = 64;
/// Longest key lifetime, in days.
const MAX_KEY_DAYS: u64 = 3650;
/// How many audit entries a filtered listing reads at most.
const MAX_AUDIT_SCAN: usize = 10_000;

fn overlay_json(keys: &overlay_keys::OverlayKeys) -> Value {
    let base = format!("/overlay/{}", keys.current);
    let sources: serde_json::Map<String, Value> = waddlebot::OverlayReply::SOURCES
        .iter()
        .map(|source| ((*source).to_owned(), json!(format!("{base}/{source}"))))
        .collect();
    json!({
        "key": keys.current,
        "url": base,
        "sources": sources,
        "created_at_ms": keys.created_at_ms,
        "previous_key_valid_until_ms": keys.previous_until_ms,
    })
}

pub(super) async fn overlay(call: &Call<'_>) -> Answer {
    let keys = overlay_keys::keys(call.store().as_ref(), call.id()?)
        .await
        .map_err(store_failure)?;
    Ok(success(StatusCode::OK, overlay_json(&keys)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rotation {
    /// How long the replaced key keeps working (default ten minutes, at most a day).
    grace_secs: Option<u64>,
}

/// `POST …/overlay/rotate`: a new key; the old one keeps working for the grace period.
pub(super) async fn rotate_overlay(call: &Call<'_>) -> Answer {
    let rotation: Rotation = call.body_or_default()?;
    let grace = rotation
        .grace_secs
        .map_or(overlay_keys::DEFAULT_GRACE, Duration::from_secs);
    if grace > Duration::from_secs(86_400) {
        return Err(bad_request("grace_secs must be at most 86400"));
    }
    let keys = overlay_keys::rotate(call.store().as_ref(), call.id()?, grace)
        .await
        .map_err(store_failure)?;
    call.app
        .state()
        .overlay_rotations
        .send_modify(|rotations| *rotations += 1);
    call.audit(
        "overlay.rotate",
        "overlay key",
        json!({"grace_secs": grace.as_secs()}),
    )
    .await;
    Ok(success(StatusCode::OK, overlay_json(&keys)))
}

fn key_json(key: &ApiKey) -> Value {
    json!({
        "id": key.id,
        "name": key.name,
        "role": key.role,
        "community_id": key.community_id.map(|c| c.0),
        "created_at_ms": millis(key.created_at),
        "expires_at_ms": key.expires_at.map(millis),
        "last_used_at_ms": key.last_used_at.map(millis),
        "revoked_at_ms": key.revoked_at.map(millis),
        "revoked": key.revoked_at.is_some(),
    })
}

/// `GET …/api-keys`: a community's keys, or every key (`/api/v1/api-keys`).
pub(super) async fn list_keys(call: &Call<'_>) -> Answer {
    let keys = call
        .store()
        .list_api_keys(call.community)
        .await
        .map_err(store_failure)?;
    call.list(
        keys.iter().map(key_json).collect(),
        &["q", "role", "revoked"],
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    role: Role,
    /// Bot-wide route only: the community a community role is for.
    community_id: Option<i64>,
    expires_in_days: Option<u64>,
}

/// A community credential hands out at most its own role, and only community roles.
fn may_hand_out(call: &Call<'_>, role: Role) -> Result<(), Failure> {
    let caller = call.role();
    if caller != Role::Admin && (role > caller || !role.is_community_role()) {
        return Err(forbidden(format!(
            "a {caller} may not create or revoke a {role} key"
        )));
    }
    Ok(())
}

/// `POST …/api-keys`: a new key, shown in the answer this once.
pub(super) async fn create_key(call: &Call<'_>) -> Answer {
    let new: NewKey = call.body()?;
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > MAX_KEY_NAME || name.chars().any(char::is_control)
    {
        return Err(bad_request(format!(
            "the name must be 1 to {MAX_KEY_NAME} characters, without control characters"
        )));
    }
    let community = match (call.community, new.community_id) {
        (Some(_), Some(_)) => {
            return Err(bad_request(
                "community_id is taken from the path here; leave it out",
            ));
        }
        (Some(id), None) => {
            if !new.role.is_community_role() {
                return Err(bad_request(format!(
                    "a community's key is viewer, moderator, community_admin or owner, not {}",
                    new.role
                )));
            }
            Some(id)
        }
        (None, Some(id)) => {
            let id = CommunityId(id);
            call.app.known_community(id).await?;
            Some(id)
        }
        (None, None) => None,
    };
    may_hand_out(call, new.role)?;
    let ttl = match new.expires_in_days {
        Some(days) if !(1..=MAX_KEY_DAYS).contains(&days) => {
            return Err(bad_request(format!(
                "expires_in_days must be from 1 to {MAX_KEY_DAYS}"
            )));
        }
        days => days.map(|d| Duration::from_secs(d * 86_400)),
    };
    let (key, record) =
        crate::auth::new_api_key(name, new.role, community, ttl).map_err(bad_request)?;
    call.store()
        .create_api_key(&record)
        .await
        .map_err(store_failure)?;
    call.app
        .audit(
            call.principal,
            community,
            "api_key.create",
            &record.id,
            json!({"name": record.name, "role": record.role}),
        )
        .await;
    let mut answer = key_json(&record);
    answer["key"] = json!(key);
    Ok(success(StatusCode::CREATED, answer))
}

/// `DELETE …/api-keys/{key}`: revokes a key (a community's route only reaches its own keys).
pub(super) async fn revoke_key(call: &Call<'_>) -> Answer {
    let id = call.param("key");
    let id = id.as_ref();
    let record = call
        .store()
        .api_key(id)
        .await
        .map_err(store_failure)?
        .filter(|key| call.community.is_none() || key.community_id == call.community)
        .ok_or_else(|| not_found(format!("API key {id}")))?;
    if let Ok(role) = record.role.parse::<Role>() {
        may_hand_out(call, role)?;
    }
    if record.revoked_at.is_some() {
        return Err(Failure(
            StatusCode::CONFLICT,
            format!("API key {id} is already revoked"),
        ));
    }
    revoke(call, &record).await?;
    // `?cascade=true`: the keys this key made (and those made in turn) go with it, as far as
    // the caller may revoke them; without it they stay valid, being credentials of their own.
    let cascade = call
        .query
        .iter()
        .any(|(key, value)| key == "cascade" && value == "true");
    if !cascade {
        return Ok(success(StatusCode::OK, json!({"revoked": id})));
    }
    let mut also = Vec::new();
    let mut kept = Vec::new();
    for child in crate::auth::keys_made_by(call.store().as_ref(), id)
        .await
        .map_err(store_failure)?
    {
        let Some(key) = call.store().api_key(&child).await.map_err(store_failure)? else {
            continue;
        };
        let allowed = (call.community.is_none() || key.community_id == call.community)
            && key
                .role
                .parse::<Role>()
                .is_ok_and(|role| may_hand_out(call, role).is_ok());
        if key.revoked_at.is_some() {
            continue;
        }
        if allowed {
            revoke(call, &key).await?;
            also.push(child);
        } else {
            kept.push(child);
        }
    }
    Ok(success(
        StatusCode::OK,
        json!({"revoked": id, "also_revoked": also, "not_revoked": kept}),
    ))
}

/// Revokes `key`, stops trusting it at once and audits it.
async fn revoke(call: &Call<'_>, key: &waddlebot::store::ApiKey) -> Result<(), Failure> {
    call.store()
        .revoke_api_key(&key.id, SystemTime::now())
        .await
        .map_err(store_failure)?;
    if let Some(auth) = &call.app.state().auth {
        auth.forget(&key.id);
    }
    call.app
        .audit(
            call.principal,
            key.community_id,
            "api_key.revoke",
            &key.id,
            json!({"name": key.name, "role": key.role}),
        )
        .await;
    Ok(())
}

/// A page of a community's (or the bot-wide) audit log, newest first; `action` (a prefix,
/// `command.`) and `actor` filter it.
pub(super) async fn audit_page(call: &Call<'_>) -> Answer {
    let (limit, offset) = call.paging(&["action", "actor"])?;
    let filter = |name: &str| {
        call.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let (action, actor) = (filter("action"), filter("actor"));
    let store = call.store();
    let (entries, total) = if action.is_none() && actor.is_none() {
        let page = store
            .list_audit(call.community, limit, offset)
            .await
            .map_err(store_failure)?;
        let total = store
            .count_audit(call.community)
            .await
            .map_err(store_failure)?;
        (page, total)
    } else {
        // Filtered: the matches among the newest MAX_AUDIT_SCAN entries, all counted.
        let mut matching = Vec::new();
        let mut scanned = 0;
        while scanned < MAX_AUDIT_SCAN {
            let batch = store
                .list_audit(call.community, 100, scanned)
                .await
                .map_err(store_failure)?;
            scanned += batch.len();
            let done = batch.len() < 100;
            matching.extend(batch.into_iter().filter(|e| {
                action.is_none_or(|a| e.action.starts_with(a)) && actor.is_none_or(|a| e.actor == a)
            }));
            if done {
                break;
            }
        }
        let total = matching.len();
        (
            matching.into_iter().skip(offset).take(limit).collect(),
            total,
        )
    };
    let items: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "id": e.id, "actor": e.actor, "action": e.action, "target": e.target,
                "community_id": e.community_id.map(|c| c.0), "detail": e.detail,
                "at_ms": millis(e.at),
            })
        })
        .collect();
    Ok(success(
        StatusCode::OK,
        super::paged(items, limit, offset, total),
    ))
}
