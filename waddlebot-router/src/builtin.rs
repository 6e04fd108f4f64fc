//! The commands every router has: `!ping`, `!help [command]`, `!commands`. Help text is
//! generated from the same [`CommandSpec`]s the router dispatches on, plus the community's
//! custom commands.

use async_trait::async_trait;
use waddlebot::{
    CommandError, CommandHandler, CommandSpec, Context, PermissionLevel, Reply,
    normalize_command_name,
};

/// The built-in commands.
#[derive(Debug, Default)]
pub struct Builtins;

#[async_trait]
impl CommandHandler for Builtins {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("ping").description("Check that the bot is alive"),
            CommandSpec::new("help")
                .usage("help [command]")
                .description("List commands, or explain one"),
            CommandSpec::new("commands").description("List the commands you can use"),
        ]
    }

    async fn handle(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        match ctx.command.as_str() {
            "ping" => Ok(vec![Reply::text("Pong!")]),
            "help" => match ctx.args.get(0) {
                Some(name) => explain(&ctx, name).await,
                None => list(&ctx, true).await,
            },
            _ => list(&ctx, false).await,
        }
    }
}

/// `!commands`: what this user may run, built-in then custom.
async fn list(ctx: &Context, with_hint: bool) -> Result<Vec<Reply>, CommandError> {
    let p = &ctx.prefix;
    let mut builtin: Vec<String> = ctx
        .catalog
        .specs()
        .iter()
        .filter(|spec| spec.min_level <= ctx.level())
        .map(|spec| format!("{p}{}", spec.name))
        .collect();
    builtin.sort();
    let custom: Vec<String> = ctx
        .store
        .list_custom_commands(ctx.community)
        .await?
        .into_iter()
        .map(|command| format!("{p}{}", command.name))
        .collect();
    let mut text = format!("Commands: {}", builtin.join(", "));
    if !custom.is_empty() {
        text.push_str(&format!(" | Custom: {}", custom.join(", ")));
    }
    if with_hint {
        text.push_str(&format!(" | Type {p}help <command> for details."));
    }
    Ok(vec![Reply::text(text)])
}

/// `!help <command>`: one command's description, usage, level and aliases.
async fn explain(ctx: &Context, name: &str) -> Result<Vec<Reply>, CommandError> {
    let p = &ctx.prefix;
    let name = normalize_command_name(name);
    if let Some((_, spec)) = ctx.catalog.find(&name) {
        let mut text = format!("{p}{}", spec.name);
        if !spec.description.is_empty() {
            text.push_str(&format!(" — {}.", spec.description));
        }
        text.push_str(&format!(" Usage: {p}{}", spec.usage));
        if spec.min_level > PermissionLevel::Everyone {
            text.push_str(&format!(" ({} and above)", spec.min_level));
        }
        if !spec.aliases.is_empty() {
            let aliases: Vec<String> = spec.aliases.iter().map(|a| format!("{p}{a}")).collect();
            text.push_str(&format!(" Also: {}", aliases.join(", ")));
        }
        let cooldowns: Vec<String> = [
            (spec.cooldown, "per person"),
            (spec.global_cooldown, "for everyone"),
        ]
        .iter()
        .filter(|(cooldown, _)| !cooldown.is_zero())
        .map(|(cooldown, whom)| format!("{} s {whom}", cooldown.as_secs().max(1)))
        .collect();
        if !cooldowns.is_empty() {
            text.push_str(&format!(" Cooldown: {}.", cooldowns.join(", ")));
        }
        return Ok(vec![Reply::text(text)]);
    }
    if let Some(command) = ctx.store.custom_command(ctx.community, &name).await? {
        return Ok(vec![Reply::text(format!(
            "{p}{} — custom command. Responds: {}",
            command.name, command.response
        ))]);
    }
    Err(CommandError::invalid(format!(
        "There is no command {p}{name}. Type {p}commands to see them all."
    )))
}
