//! `!alias add|remove|list`: a community's aliases, managed from chat. The router runs them
//! (with `{user}`, `{args}`, `{argN}` filled in, partial commands completed, loops refused);
//! this module makes, removes and lists them with the same checks as the admin API.

use async_trait::async_trait;
use waddlebot::alias::{CreateAliasError, create};
use waddlebot::store::community_namespace;
use waddlebot::{
    CommandError, CommandHandler, CommandSpec, Context, PermissionLevel, Reply,
    normalize_command_name,
};

/// The module name aliases belong to.
pub const ALIAS_MODULE: &str = "alias";

/// The alias module.
#[derive(Debug, Default)]
pub struct Aliases;

#[async_trait]
impl CommandHandler for Aliases {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("alias")
                .usage("alias add <name> <command…> | alias remove <name> | alias list")
                .description("Short names for commands: !alias add so2 !so {arg1}")
                .module(ALIAS_MODULE),
        ]
    }

    async fn handle(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        let p = ctx.prefix.clone();
        let sub = ctx.args.get(0).map(str::to_lowercase);
        let text = match sub.as_deref() {
            Some("add" | "set") => {
                ctx.require(PermissionLevel::Moderator)?;
                let (Some(name), target) = (ctx.args.get(1), ctx.args.rest(2).trim()) else {
                    return Err(ctx.usage_error());
                };
                if target.is_empty() {
                    return Err(ctx.usage_error());
                }
                match create(
                    ctx.store.as_ref(),
                    &ctx.catalog,
                    ctx.community,
                    name,
                    target,
                    &ctx.user().name,
                    ctx.now(),
                )
                .await
                {
                    Ok(alias) => {
                        crate::audit(
                            &ctx,
                            None,
                            "alias.create",
                            &alias.name,
                            serde_json::json!({"target": alias.target}),
                        )
                        .await;
                        format!("Alias {p}{} → {} added.", alias.name, alias.target)
                    }
                    Err(CreateAliasError::Exists(name)) => format!(
                        "Alias '{name}' already exists (or a custom command has that name). Use '{p}alias remove {name}' first."
                    ),
                    Err(CreateAliasError::Invalid(why)) => format!("{why}."),
                    Err(unknown @ CreateAliasError::UnknownTarget(_)) => format!("{unknown}."),
                    Err(CreateAliasError::Store(err)) => return Err(err.into()),
                    Err(other) => return Err(CommandError::Internal(Box::new(other))),
                }
            }
            Some("remove" | "rm" | "delete") => {
                ctx.require(PermissionLevel::Moderator)?;
                let Some(raw) = ctx.args.get(1) else {
                    return Err(ctx.usage_error());
                };
                let name = normalize_command_name(raw);
                if ctx.store.delete_alias(ctx.community, &name).await? {
                    crate::audit(&ctx, None, "alias.delete", &name, serde_json::json!({})).await;
                    format!("Alias {p}{name} removed.")
                } else {
                    format!("Alias '{name}' not found.")
                }
            }
            Some("list") => {
                let mut aliases = ctx.store.list_aliases(ctx.community).await?;
                if aliases.is_empty() {
                    "No aliases configured.".to_owned()
                } else {
                    aliases.sort_by(|a, b| a.name.cmp(&b.name));
                    let uses = community_namespace(ctx.community, "alias_uses");
                    let mut parts = Vec::with_capacity(aliases.len());
                    for alias in &aliases {
                        let count = ctx.store.counter(&uses, &alias.name).await?;
                        parts.push(format!("{p}{} → {} ({count}×)", alias.name, alias.target));
                    }
                    format!("Aliases: {}", parts.join(" | "))
                }
            }
            Some(other) => {
                format!("Unknown subcommand: {other}. Use: add, remove, list")
            }
            None => return Err(ctx.usage_error()),
        };
        Ok(vec![Reply::text(text)])
    }
}
