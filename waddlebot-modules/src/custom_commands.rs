//! Custom text commands: moderators manage them in chat, everyone runs them.
//!
//! `!command add <name> <response…>`, `!command edit <name> <response…>`,
//! `!command remove <name>`, `!command show <name>`. Names may be given with or without the
//! prefix. Responses are templates (`Hi {user}!`, see [`waddlebot::template`]) and are checked
//! when saved, so a typo is reported to the moderator instead of reaching chat.

use std::time::SystemTime;

use async_trait::async_trait;
use waddlebot::store::{CUSTOM_COMMANDS_MODULE, CustomCommand};
use waddlebot::template::Template;
use waddlebot::{
    CommandError, CommandHandler, CommandSpec, Context, PermissionLevel, Reply, StoreError,
    normalize_command_name,
};

/// Longest command name accepted.
pub const MAX_NAME_LEN: usize = 32;
/// Longest response accepted: Discord's message limit, the largest of the platforms.
pub const MAX_RESPONSE_LEN: usize = 2000;

/// The `!command` module.
#[derive(Debug, Default, Clone, Copy)]
pub struct CustomCommands;

#[async_trait]
impl CommandHandler for CustomCommands {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("command")
                .usage("command add|edit|remove|show <name> [response…]")
                .description("Manage this community's custom text commands")
                .min_level(PermissionLevel::Moderator)
                .module(CUSTOM_COMMANDS_MODULE),
        ]
    }

    async fn handle(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        let sub = ctx.args.get(0).map(str::to_lowercase);
        let Some(raw_name) = ctx.args.get(1) else {
            return Err(ctx.usage_error());
        };
        let name = valid_name(&ctx, raw_name)?;
        let p = ctx.prefix.clone();
        let reply = match sub.as_deref() {
            Some("add" | "create" | "new") => {
                let response = valid_response(&ctx)?;
                if ctx.store.alias(ctx.community, &name).await?.is_some() {
                    return Err(CommandError::invalid(format!(
                        "{p}{name} is an alias. Remove the alias first to use the name for a command."
                    )));
                }
                let now = SystemTime::now();
                let created = ctx
                    .store
                    .create_custom_command(&CustomCommand {
                        community_id: ctx.community,
                        name: name.clone(),
                        response,
                        created_by: ctx.user().name.clone(),
                        created_at: now,
                        updated_at: now,
                    })
                    .await;
                match created {
                    Ok(()) => {
                        crate::audit(&ctx, None, "command.create", &name, serde_json::json!({}))
                            .await;
                        format!("Command {p}{name} added.")
                    }
                    Err(StoreError::Conflict(_)) => format!(
                        "{p}{name} already exists. Use {p}command edit {name} <response> to change it."
                    ),
                    Err(err) => return Err(err.into()),
                }
            }
            Some("edit" | "update" | "set") => {
                let response = valid_response(&ctx)?;
                match ctx
                    .store
                    .update_custom_command(ctx.community, &name, &response)
                    .await
                {
                    Ok(_) => {
                        crate::audit(&ctx, None, "command.update", &name, serde_json::json!({}))
                            .await;
                        format!("Command {p}{name} updated.")
                    }
                    Err(StoreError::NotFound(_)) => format!(
                        "There is no custom command {p}{name}. Use {p}command add {name} <response> to create it."
                    ),
                    Err(err) => return Err(err.into()),
                }
            }
            Some("remove" | "rm" | "delete" | "del") => {
                if ctx
                    .store
                    .delete_custom_command(ctx.community, &name)
                    .await?
                {
                    crate::audit(&ctx, None, "command.delete", &name, serde_json::json!({})).await;
                    format!("Command {p}{name} removed.")
                } else {
                    format!("There is no custom command {p}{name}.")
                }
            }
            Some("show" | "get") => match ctx.store.custom_command(ctx.community, &name).await? {
                Some(command) => format!("{p}{name} → {}", command.response),
                None => format!("There is no custom command {p}{name}."),
            },
            _ => return Err(ctx.usage_error()),
        };
        Ok(vec![Reply::text(reply)])
    }
}

/// Why a name cannot be a custom command's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    /// Too long, empty, or characters other than letters, digits, `-` and `_`.
    Invalid,
    /// A built-in command has it.
    BuiltIn,
}

impl NameError {
    /// The explanation, showing `name` with `prefix` (`!`, or nothing outside chat).
    pub fn explain(&self, raw: &str, prefix: &str) -> String {
        match self {
            Self::Invalid => format!(
                "'{raw}' is not a valid command name: use up to {MAX_NAME_LEN} letters, digits, '-' or '_'."
            ),
            Self::BuiltIn => format!(
                "{prefix}{} is a built-in command and cannot be replaced.",
                normalize_command_name(raw)
            ),
        }
    }
}

/// A command name as it will be stored (prefix removed, lower case), or why it cannot be one.
pub fn check_command_name(
    raw: &str,
    catalog: &waddlebot::CommandCatalog,
) -> Result<String, NameError> {
    let name = normalize_command_name(raw);
    if name.is_empty()
        || name.chars().count() > MAX_NAME_LEN
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err(NameError::Invalid);
    }
    if catalog.find(&name).is_some() {
        return Err(NameError::BuiltIn);
    }
    Ok(name)
}

/// Why a response cannot be saved: empty, too long, or a template error.
pub fn check_response(response: &str) -> Result<(), String> {
    if response.trim().is_empty() {
        return Err("The response is empty.".to_owned());
    }
    if response.chars().count() > MAX_RESPONSE_LEN {
        return Err(format!(
            "That response is too long: at most {MAX_RESPONSE_LEN} characters."
        ));
    }
    Template::parse(response)
        .map(|_| ())
        .map_err(|err| format!("That response has a template error: {err}."))
}

fn valid_name(ctx: &Context, raw: &str) -> Result<String, CommandError> {
    check_command_name(raw, &ctx.catalog)
        .map_err(|why| CommandError::invalid(why.explain(raw, &ctx.prefix)))
}

fn valid_response(ctx: &Context) -> Result<String, CommandError> {
    let response = ctx.args.rest_unquoted(2).trim();
    if response.is_empty() {
        return Err(ctx.usage_error());
    }
    check_response(response).map_err(CommandError::invalid)?;
    Ok(response.to_owned())
}
