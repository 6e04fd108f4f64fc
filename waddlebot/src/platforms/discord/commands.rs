//! Application command registration: the bot's [`CommandSpec`]s as Discord slash commands,
//! synced globally or to one guild, idempotently (nothing is written when Discord already has
//! exactly these commands).

use serde_json::{Value, json};

use super::DiscordPlatform;
use crate::command::CommandSpec;
use crate::permission::PermissionLevel;
use crate::platform::PlatformError;

/// Discord allows 100 slash commands per scope; one is the umbrella command.
const MAX_COMMANDS: usize = 100;
/// `MANAGE_MESSAGES`: what Discord members need to see moderator commands.
const MODERATOR_PERMISSIONS: &str = "8192";
/// `MANAGE_GUILD`: what they need to see broadcaster and admin commands.
const OWNER_PERMISSIONS: &str = "32";

/// Where commands are registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandScope {
    /// Every guild the bot is in (Discord may take a while to show changes).
    Global,
    /// One guild (changes show at once; for testing).
    Guild(String),
}

/// What [`DiscordPlatform::sync_commands`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandSync {
    /// Discord already had exactly these commands.
    Unchanged(usize),
    /// The commands were replaced with these many.
    Updated(usize),
}

fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c == '-' || c == '_' || c.is_lowercase() || c.is_numeric())
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    text.chars().take(max - 1).collect::<String>() + "…"
}

/// The slash commands for these specs: `/<name> [args]` for each command Discord can name,
/// hidden by default from members below the command's level, plus the umbrella
/// `/waddlebot <command> [args]` (command names autocompleted) that reaches every command,
/// including those beyond Discord's 100.
pub fn application_commands(specs: &[CommandSpec], umbrella: &str) -> Vec<Value> {
    let mut commands = vec![json!({
        "type": 1,
        "name": umbrella,
        "description": "Run any bot command",
        "options": [
            {"type": 3, "name": "command", "description": "The command", "required": true, "autocomplete": true},
            {"type": 3, "name": "args", "description": "Its arguments", "required": false},
        ],
    })];
    for spec in specs {
        if commands.len() >= MAX_COMMANDS {
            break;
        }
        if !valid_name(&spec.name) || spec.name == umbrella {
            continue;
        }
        let description = if spec.description.trim().is_empty() {
            format!("!{}", spec.usage)
        } else {
            spec.description.clone()
        };
        let mut command = json!({
            "type": 1,
            "name": spec.name,
            "description": clip(&description, 100),
        });
        let takes_arguments = spec.usage.trim() != spec.name;
        if takes_arguments {
            command["options"] = json!([{
                "type": 3, "name": "args", "description": clip(&spec.usage, 100), "required": false
            }]);
        }
        let permissions = match spec.min_level {
            PermissionLevel::Broadcaster | PermissionLevel::Admin => Some(OWNER_PERMISSIONS),
            PermissionLevel::Moderator => Some(MODERATOR_PERMISSIONS),
            _ => None,
        };
        if let Some(bits) = permissions {
            command["default_member_permissions"] = Value::from(bits);
        }
        commands.push(command);
    }
    commands
}

/// The fields we set, from a command as we send it or as Discord returns it (with its ids,
/// versions and defaults), sorted by name, so the two compare.
fn comparable(commands: &[Value]) -> Vec<Value> {
    let option = |o: &Value| {
        json!({
            "type": o.get("type"),
            "name": o.get("name"),
            "description": o.get("description"),
            "required": o.get("required").and_then(Value::as_bool).unwrap_or(false),
            "autocomplete": o.get("autocomplete").and_then(Value::as_bool).unwrap_or(false),
        })
    };
    let mut out: Vec<Value> = commands
        .iter()
        .map(|c| {
            json!({
                "type": c.get("type").and_then(Value::as_u64).unwrap_or(1),
                "name": c.get("name"),
                "description": c.get("description"),
                "options": c.get("options").and_then(Value::as_array).map(|o| o.iter().map(option).collect::<Vec<_>>()).unwrap_or_default(),
                "default_member_permissions": c.get("default_member_permissions").cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    out
}

impl DiscordPlatform {
    fn commands_path(&self, scope: &CommandScope) -> String {
        match scope {
            CommandScope::Global => {
                format!("/applications/{}/commands", self.config.application_id)
            }
            CommandScope::Guild(guild) => format!(
                "/applications/{}/guilds/{guild}/commands",
                self.config.application_id
            ),
        }
    }

    /// Makes the scope's slash commands `commands` (from [`application_commands`]): reads
    /// what Discord has, and overwrites it in one request only when it differs.
    pub async fn sync_commands(
        &self,
        scope: &CommandScope,
        commands: &[Value],
    ) -> Result<CommandSync, PlatformError> {
        let path = self.commands_path(scope);
        let current = self
            .call("commands", self.request(reqwest::Method::GET, &path))
            .await?;
        let current = current.as_array().cloned().unwrap_or_default();
        if comparable(&current) == comparable(commands) {
            return Ok(CommandSync::Unchanged(commands.len()));
        }
        self.call(
            "commands",
            self.request(reqwest::Method::PUT, &path).json(commands),
        )
        .await?;
        Ok(CommandSync::Updated(commands.len()))
    }
}
