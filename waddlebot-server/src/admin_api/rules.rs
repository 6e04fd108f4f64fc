//! String rules and remote modules: checked by the router exactly as it will run them.

use std::time::SystemTime;

use http::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use waddlebot::store::{MatchType, RemoteKind, RemoteModule, RuleAction, StringRule};
use waddlebot_router::remote::RemoteError;
use waddlebot_router::rules::RuleError;

use super::{Call, bad_request, millis, not_found, store_failure, success};
use crate::app::{Failure, ResponseBody};

type Answer = Result<Response<ResponseBody>, Failure>;

fn rule_json(rule: &StringRule) -> Value {
    json!({
        "id": rule.id,
        "pattern": rule.pattern,
        "match_type": rule.match_type,
        "case_sensitive": rule.case_sensitive,
        "priority": rule.priority,
        "action": rule.action,
        "enabled": rule.enabled,
        "match_count": rule.match_count,
        "last_matched_ms": rule.last_matched.map(millis),
        "created_by": rule.created_by,
        "created_at_ms": millis(rule.created_at),
    })
}

pub(super) async fn list(call: &Call<'_>) -> Answer {
    let rules = call
        .store()
        .list_rules(call.id()?)
        .await
        .map_err(store_failure)?;
    call.list(
        rules.iter().map(rule_json).collect(),
        &["enabled", "match_type"],
    )
}

const fn default_priority() -> i32 {
    100
}

const fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRule {
    pattern: String,
    match_type: MatchType,
    #[serde(default)]
    case_sensitive: bool,
    #[serde(default = "default_priority")]
    priority: i32,
    action: RuleAction,
    #[serde(default = "yes")]
    enabled: bool,
}

pub(super) async fn create(call: &Call<'_>) -> Answer {
    let new: NewRule = call.body()?;
    let rule = StringRule {
        id: 0,
        community_id: call.id()?,
        pattern: new.pattern,
        match_type: new.match_type,
        case_sensitive: new.case_sensitive,
        priority: new.priority,
        action: new.action,
        enabled: new.enabled,
        match_count: 0,
        last_matched: None,
        created_by: call.actor(),
        created_at: SystemTime::now(),
    };
    let rule = call
        .router()
        .create_rule(rule)
        .await
        .map_err(|err| match err {
            RuleError::Invalid(why) => bad_request(why),
            RuleError::Store(err) => store_failure(err),
            other => Failure(StatusCode::SERVICE_UNAVAILABLE, other.to_string()),
        })?;
    call.audit("rule.create", &rule.id.to_string(), rule_json(&rule))
        .await;
    Ok(success(StatusCode::CREATED, rule_json(&rule)))
}

pub(super) async fn delete(call: &Call<'_>) -> Answer {
    let id = call.id()?;
    let rule = call.param("rule");
    let rule = rule.as_ref();
    let missing = || not_found(format!("rule {rule}"));
    let number: i64 = rule.parse().map_err(|_| missing())?;
    let before = call
        .store()
        .list_rules(id)
        .await
        .map_err(store_failure)?
        .into_iter()
        .find(|r| r.id == number)
        .ok_or_else(missing)?;
    if !call
        .router()
        .delete_rule(id, number)
        .await
        .map_err(store_failure)?
    {
        return Err(missing());
    }
    call.audit("rule.delete", rule, json!({"before": rule_json(&before)}))
        .await;
    Ok(success(StatusCode::OK, json!({"deleted": number})))
}

/// A remote module as shown: never its signing secret, nor OpenWhisk credentials.
fn remote_json(call: &Call<'_>, module: &RemoteModule) -> Value {
    let kind = match &module.kind {
        RemoteKind::Webhook => json!({"type": "webhook"}),
        RemoteKind::OpenWhisk {
            namespace, action, ..
        } => json!({"type": "openwhisk", "namespace": namespace, "action": action}),
    };
    let health = call
        .router()
        .remote_module_health(module.community_id, &module.name)
        .unwrap_or_default();
    json!({
        "name": module.name,
        "url": module.url,
        "commands": module.commands,
        "events": module.events,
        "timeout_ms": module.timeout_ms,
        "kind": kind,
        "enabled": module.enabled,
        "created_at_ms": millis(module.created_at),
        "health": {
            "healthy": health.healthy(),
            "requests": health.requests,
            "failures": health.failures,
        },
    })
}

pub(super) async fn list_remote(call: &Call<'_>) -> Answer {
    let modules = call
        .store()
        .list_remote_modules(call.id()?)
        .await
        .map_err(store_failure)?;
    let items = modules.iter().map(|m| remote_json(call, m)).collect();
    call.list(items, &["q", "enabled"])
}

/// The shortest signing secret taken, in characters.
const MIN_SECRET_CHARS: usize = 16;

const fn default_timeout() -> u64 {
    5000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRemote {
    name: String,
    url: String,
    /// Generated (and shown once) when not given.
    secret: Option<String>,
    #[serde(default)]
    commands: Vec<String>,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
    #[serde(default)]
    kind: Option<RemoteKind>,
    #[serde(default = "yes")]
    enabled: bool,
}

/// `POST …/remote-modules`: registers a module; the answer shows its signing secret, this
/// once (generated when none was given).
pub(super) async fn register_remote(call: &Call<'_>) -> Answer {
    let new: NewRemote = call.body()?;
    let secret = match new.secret {
        // Counted in characters, as the document states it; the router's own check counts
        // bytes, which a shorter text of wide characters would pass.
        Some(secret) if secret.chars().count() < MIN_SECRET_CHARS => {
            return Err(bad_request(format!(
                "the signing secret must be at least {MIN_SECRET_CHARS} characters"
            )));
        }
        Some(secret) => secret,
        None => crate::auth::generate_secret()
            .map_err(|err| Failure(StatusCode::SERVICE_UNAVAILABLE, err))?,
    };
    let module = RemoteModule {
        community_id: call.id()?,
        name: new.name,
        url: new.url,
        secret,
        commands: new
            .commands
            .iter()
            .map(|c| waddlebot::normalize_command_name(c))
            .collect(),
        events: new.events,
        timeout_ms: new.timeout_ms,
        kind: new.kind.unwrap_or(RemoteKind::Webhook),
        enabled: new.enabled,
        created_at: SystemTime::now(),
    };
    answered_elsewhere(call, &module).await?;
    call.router()
        .register_remote_module(module.clone())
        .await
        .map_err(|err| match err {
            RemoteError::Invalid(why) => bad_request(why),
            RemoteError::Exists(name) => {
                Failure(StatusCode::CONFLICT, format!("remote module {name} exists"))
            }
            RemoteError::Store(err) => store_failure(err),
            other => Failure(StatusCode::SERVICE_UNAVAILABLE, other.to_string()),
        })?;
    let shown = remote_json(call, &module);
    call.audit("remote_module.create", &module.name, shown.clone())
        .await;
    let mut answer = shown;
    answer["secret"] = json!(module.secret);
    Ok(success(StatusCode::CREATED, answer))
}

/// 409 when another of the community's remote modules already answers one of `module`'s
/// commands: the registration is well formed but conflicts with what exists (the router
/// refuses it too, as an invalid registration).
async fn answered_elsewhere(call: &Call<'_>, module: &RemoteModule) -> Result<(), Failure> {
    let existing = call
        .store()
        .list_remote_modules(module.community_id)
        .await
        .map_err(store_failure)?;
    match clash(&existing, module) {
        Some((other, command)) => Err(Failure(
            StatusCode::CONFLICT,
            format!("remote module {other} already answers #{command}"),
        )),
        None => Ok(()),
    }
}

/// The other module, and the command, that `module` would take from it.
fn clash<'a>(existing: &'a [RemoteModule], module: &RemoteModule) -> Option<(&'a str, &'a str)> {
    existing
        .iter()
        .filter(|other| other.name != module.name)
        .find_map(|other| {
            other
                .commands
                .iter()
                .find(|c| module.commands.contains(c))
                .map(|c| (other.name.as_str(), c.as_str()))
        })
}

pub(super) async fn delete_remote(call: &Call<'_>) -> Answer {
    let name = call.param("name");
    let name = name.as_ref();
    if !call
        .router()
        .delete_remote_module(call.id()?, name)
        .await
        .map_err(store_failure)?
    {
        return Err(not_found(format!("remote module {name}")));
    }
    call.audit("remote_module.delete", name, json!({})).await;
    Ok(success(StatusCode::OK, json!({"deleted": name})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use waddlebot::CommunityId;

    fn module(name: &str, commands: &[&str]) -> RemoteModule {
        RemoteModule {
            community_id: CommunityId(1),
            name: name.to_owned(),
            url: "https://modules.example/weather".to_owned(),
            secret: "s".repeat(16),
            commands: commands.iter().map(|c| (*c).to_owned()).collect(),
            events: Vec::new(),
            timeout_ms: 5000,
            kind: RemoteKind::Webhook,
            enabled: true,
            created_at: SystemTime::now(),
        }
    }

    #[test]
    fn a_command_another_remote_module_answers_is_found_as_a_clash() {
        let existing = [
            module("weather", &["forecast", "rain"]),
            module("dice", &["roll"]),
        ];
        assert_eq!(
            clash(&existing, &module("storm", &["wind", "rain"])),
            Some(("weather", "rain"))
        );
        assert_eq!(clash(&existing, &module("storm", &["wind"])), None);
        // Registering a module again under its own name is the store's conflict, not a clash.
        assert_eq!(clash(&existing, &module("weather", &["rain"])), None);
    }
}
