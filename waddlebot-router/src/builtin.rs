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

/// `!commands`: what this user may run, built-in then custom; commands of modules switched off
/// here, and commands switched off themselves, are left out.
async fn list(ctx: &Context, with_hint: bool) -> Result<Vec<Reply>, CommandError> {
    let p = &ctx.prefix;
    let installs = ctx.store.list_module_installs(ctx.community).await?;
    let on = |module: &str| ctx.catalog.module_on_among(module, &installs);
    let switched_off: std::collections::HashSet<String> = ctx
        .store
        .list_command_settings(ctx.community)
        .await?
        .into_iter()
        .filter(|settings| !settings.enabled)
        .map(|settings| settings.command)
        .collect();
    let mut builtin: Vec<String> = ctx
        .catalog
        .specs()
        .iter()
        .filter(|spec| {
            spec.min_level <= ctx.level() && on(&spec.module) && !switched_off.contains(&spec.name)
        })
        .map(|spec| format!("{p}{}", spec.name))
        .collect();
    builtin.sort();
    let custom: Vec<String> = if on(waddlebot::store::CUSTOM_COMMANDS_MODULE) {
        ctx.store
            .list_custom_commands(ctx.community)
            .await?
            .into_iter()
            .filter(|command| !switched_off.contains(&command.name))
            .map(|command| format!("{p}{}", command.name))
            .collect()
    } else {
        Vec::new()
    };
    let mut text = format!("Commands: {}", builtin.join(", "));
    if !custom.is_empty() {
        text.push_str(&format!(" | Custom: {}", custom.join(", ")));
    }
    if with_hint {
        text.push_str(&format!(" | Type {p}help <command> for details."));
    }
    Ok(vec![Reply::text(text)])
}

/// A spec's usage as forms to type, each with the prefix and the command's name: `quote [id] |
/// quote add …` and `inventory add … | checkout …` alike give `!quote [id]`, `!quote add …`,
/// `!inventory checkout …`. Forms are split at ` | ` outside brackets (`[a | b]` is one form).
fn usage_forms(prefix: &str, spec: &CommandSpec) -> Vec<String> {
    let mut forms = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    let usage = spec.usage.as_str();
    for (at, c) in usage.char_indices() {
        match c {
            '[' | '(' | '<' => depth += 1,
            ']' | ')' | '>' => depth = depth.saturating_sub(1),
            '|' if depth == 0 && usage[..at].ends_with(' ') && usage[at + 1..].starts_with(' ') => {
                forms.push(usage[start..at].trim());
                start = at + 1;
            }
            _ => {}
        }
    }
    forms.push(usage[start..].trim());
    forms
        .into_iter()
        .filter(|form| !form.is_empty())
        .map(|form| {
            let named = form
                .split_whitespace()
                .next()
                .is_some_and(|first| spec.names().any(|name| name == first));
            if named {
                format!("{prefix}{form}")
            } else {
                format!("{prefix}{} {form}", spec.name)
            }
        })
        .collect()
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
        text.push_str(&format!(" Usage: {}.", usage_forms(p, spec).join(" | ")));
        if spec.min_level > PermissionLevel::Everyone {
            text.push_str(&format!(" For {} and above.", spec.min_level));
        }
        if !spec.aliases.is_empty() {
            let aliases: Vec<String> = spec.aliases.iter().map(|a| format!("{p}{a}")).collect();
            text.push_str(&format!(" Aliases: {}.", aliases.join(", ")));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_usage_form_gets_the_prefix_and_the_name() {
        let quote = CommandSpec::new("quote")
            .usage("quote [id] | quote add \"text\" [author] | quote up|down <id>");
        assert_eq!(
            usage_forms("?", &quote),
            [
                "?quote [id]",
                "?quote add \"text\" [author]",
                "?quote up|down <id>"
            ]
        );
        let inventory = CommandSpec::new("inventory")
            .alias("inv")
            .usage("inventory add <name> | checkout <item> <user> [n] | inv stats");
        assert_eq!(
            usage_forms("!", &inventory),
            [
                "!inventory add <name>",
                "!inventory checkout <item> <user> [n]",
                "!inv stats"
            ]
        );
        let identity =
            CommandSpec::new("identity").usage("identity [link <platform> | unlink <platform>]");
        assert_eq!(
            usage_forms("!", &identity),
            ["!identity [link <platform> | unlink <platform>]"],
            "a choice in brackets is one form"
        );
    }
}
