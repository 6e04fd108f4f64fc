//! Custom commands and aliases: the same checks as `!command add` and `!alias add` in chat,
//! written through the router's cached store so chat sees a change at once.

use std::time::SystemTime;

use http::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use waddlebot::alias::AliasError;
use waddlebot::store::{Alias, CustomCommand};
use waddlebot_router::alias::CreateAliasError;

use super::{Call, bad_request, millis, not_found, store_failure, success};
use crate::app::{Failure, ResponseBody};

type Answer = Result<Response<ResponseBody>, Failure>;

fn command_json(command: &CustomCommand) -> Value {
    json!({
        "name": command.name,
        "response": command.response,
        "created_by": command.created_by,
        "created_at_ms": millis(command.created_at),
        "updated_at_ms": millis(command.updated_at),
    })
}

fn alias_json(alias: &Alias) -> Value {
    json!({
        "name": alias.name,
        "target": alias.target,
        "created_by": alias.created_by,
        "created_at_ms": millis(alias.created_at),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCommand {
    name: String,
    response: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangedCommand {
    response: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAlias {
    name: String,
    target: String,
}

/// A command name that cannot be used: 400 when it is malformed, 409 when a built-in command
/// has it (a well-formed request that conflicts with what the server runs, like a name another
/// custom command has).
fn name_refused(why: &waddlebot_modules::NameError, raw: &str) -> Failure {
    let message = why.explain(raw, "");
    match why {
        waddlebot_modules::NameError::BuiltIn => Failure(StatusCode::CONFLICT, message),
        _ => bad_request(message),
    }
}

/// An alias that cannot be made: 409 when its name is taken by a built-in or platform command,
/// or its target is the alias itself (the name clashes with what it would run), 400 when the
/// name or target is malformed.
fn alias_refused(why: &AliasError) -> Failure {
    match why {
        AliasError::BuiltIn(_) | AliasError::Reserved { .. } | AliasError::Cycle(_) => {
            Failure(StatusCode::CONFLICT, why.to_string())
        }
        _ => bad_request(why.to_string()),
    }
}

/// The path's command name, normalized as chat does.
fn name(call: &Call<'_>) -> String {
    waddlebot::normalize_command_name(&call.param("name"))
}

/// The community's command `name`, or 404.
async fn existing(call: &Call<'_>, name: &str) -> Result<CustomCommand, Failure> {
    call.store()
        .custom_command(call.id()?, name)
        .await
        .map_err(store_failure)?
        .ok_or_else(|| not_found(format!("command {name}")))
}

pub(super) async fn list(call: &Call<'_>) -> Answer {
    let commands = call
        .store()
        .list_custom_commands(call.id()?)
        .await
        .map_err(store_failure)?;
    call.list(commands.iter().map(command_json).collect(), &["q"])
}

pub(super) async fn create(call: &Call<'_>) -> Answer {
    let id = call.id()?;
    let new: NewCommand = call.body()?;
    let name = waddlebot_modules::check_command_name(&new.name, call.router().catalog())
        .map_err(|why| name_refused(&why, &new.name))?;
    waddlebot_modules::check_response(&new.response).map_err(bad_request)?;
    if call
        .store()
        .alias(id, &name)
        .await
        .map_err(store_failure)?
        .is_some()
    {
        return Err(Failure(
            StatusCode::CONFLICT,
            format!("{name} is an alias; remove the alias first"),
        ));
    }
    let now = SystemTime::now();
    let command = CustomCommand {
        community_id: id,
        name: name.clone(),
        response: new.response.trim().to_owned(),
        created_by: call.actor(),
        created_at: now,
        updated_at: now,
    };
    call.store()
        .create_custom_command(&command)
        .await
        .map_err(store_failure)?;
    call.audit(
        "command.create",
        &name,
        json!({"response": command.response}),
    )
    .await;
    Ok(success(StatusCode::CREATED, command_json(&command)))
}

pub(super) async fn get(call: &Call<'_>) -> Answer {
    let command = existing(call, &name(call)).await?;
    Ok(success(StatusCode::OK, command_json(&command)))
}

pub(super) async fn update(call: &Call<'_>) -> Answer {
    let id = call.id()?;
    let name = name(call);
    let changed: ChangedCommand = call.body()?;
    waddlebot_modules::check_response(&changed.response).map_err(bad_request)?;
    let response = changed.response.trim();
    // Held across read, write and audit, so each audit row's "before" is the previous "after".
    let _held = call
        .app
        .state()
        .write_locks
        .lock(format!("{}/commands/{name}", id.0))
        .await;
    let before = existing(call, &name).await?;
    call.store()
        .update_custom_command(id, &name, response)
        .await
        .map_err(store_failure)?;
    call.audit(
        "command.update",
        &name,
        json!({"before": before.response, "after": response}),
    )
    .await;
    let command = existing(call, &name).await?;
    Ok(success(StatusCode::OK, command_json(&command)))
}

pub(super) async fn delete(call: &Call<'_>) -> Answer {
    let name = name(call);
    let before = existing(call, &name).await?;
    if !call
        .store()
        .delete_custom_command(call.id()?, &name)
        .await
        .map_err(store_failure)?
    {
        return Err(not_found(format!("command {name}")));
    }
    call.audit("command.delete", &name, json!({"before": before.response}))
        .await;
    Ok(success(StatusCode::OK, json!({"deleted": name})))
}

pub(super) async fn list_aliases(call: &Call<'_>) -> Answer {
    let aliases = call
        .store()
        .list_aliases(call.id()?)
        .await
        .map_err(store_failure)?;
    call.list(aliases.iter().map(alias_json).collect(), &["q"])
}

pub(super) async fn create_alias(call: &Call<'_>) -> Answer {
    let new: NewAlias = call.body()?;
    let alias = call
        .router()
        .create_alias(call.id()?, &new.name, &new.target, &call.actor())
        .await
        .map_err(|err| match err {
            CreateAliasError::Invalid(why) => alias_refused(&why),
            CreateAliasError::Exists(name) => Failure(
                StatusCode::CONFLICT,
                format!("{name} is already an alias or a custom command"),
            ),
            // Well formed, but the community has no such command (yet): a conflict with what
            // exists, as a taken name is.
            unknown @ CreateAliasError::UnknownTarget(_) => {
                Failure(StatusCode::CONFLICT, unknown.to_string())
            }
            CreateAliasError::Store(err) => store_failure(err),
            other => Failure(StatusCode::SERVICE_UNAVAILABLE, other.to_string()),
        })?;
    call.audit("alias.create", &alias.name, json!({"target": alias.target}))
        .await;
    Ok(success(StatusCode::CREATED, alias_json(&alias)))
}

pub(super) async fn delete_alias(call: &Call<'_>) -> Answer {
    let name = name(call);
    if !call
        .store()
        .delete_alias(call.id()?, &name)
        .await
        .map_err(store_failure)?
    {
        return Err(not_found(format!("alias {name}")));
    }
    call.audit("alias.delete", &name, json!({})).await;
    Ok(success(StatusCode::OK, json!({"deleted": name})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_taken_by_a_built_in_is_a_conflict_and_a_malformed_one_a_bad_request() {
        let taken = name_refused(&waddlebot_modules::NameError::BuiltIn, "ping");
        assert_eq!(taken.0, StatusCode::CONFLICT);
        assert!(taken.1.contains("ping"), "{}", taken.1);
        let malformed = name_refused(&waddlebot_modules::NameError::Invalid, "bad name!");
        assert_eq!(malformed.0, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn an_alias_shadowing_a_built_in_or_platform_command_is_a_conflict() {
        assert_eq!(
            alias_refused(&AliasError::BuiltIn("help".into())).0,
            StatusCode::CONFLICT
        );
        let reserved = AliasError::Reserved {
            name: "ban".into(),
            platforms: "twitch".into(),
        };
        assert_eq!(alias_refused(&reserved).0, StatusCode::CONFLICT);
        let itself = AliasError::Cycle(vec!["p".into(), "p".into()]);
        assert_eq!(alias_refused(&itself).0, StatusCode::CONFLICT);
        assert_eq!(
            alias_refused(&AliasError::EmptyTarget).0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            alias_refused(&AliasError::BadName("a b".into())).0,
            StatusCode::BAD_REQUEST
        );
    }
}
