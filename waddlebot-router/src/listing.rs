//! A community's commands as people see them: [`Router::listed_commands`], the data behind the
//! public command page (`/c/<community>/commands`). Built from the same
//! [`CommandSpec`](waddlebot::CommandSpec)s as `!help`, with the community's prefixes, settings,
//! custom commands, aliases and remote modules.

use serde::Serialize;
use waddlebot::{CommunityId, PermissionLevel};

use crate::{Router, RouterError};

/// One command a community can use.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ListedCommand {
    /// As typed, with the community's prefix (`!quote`, `#weather`).
    pub shown: String,
    /// Usage with the prefix (`!quote [id]`).
    pub usage: String,
    /// What it does.
    pub description: String,
    /// Other names, with the prefix (the spec's aliases and the community's aliases to it).
    pub aliases: Vec<String>,
    /// Who may run it here.
    pub min_level: PermissionLevel,
    /// The module that answers (`custom_commands` for custom text commands, the remote
    /// module's name for remote ones).
    pub module: String,
    /// A custom command's response text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// Seconds between two uses by one person, when there is a cooldown.
    pub cooldown_secs: u64,
}

impl Router {
    /// The commands enabled in a community, sorted by name: built-in modules that are on and
    /// commands not switched off, then custom commands and remote module commands. Remote
    /// module URLs and secrets are never part of it.
    pub async fn listed_commands(
        &self,
        community: CommunityId,
    ) -> Result<Vec<ListedCommand>, RouterError> {
        let view = self.cached.view(community).await?;
        let prefixes = self.prefixes_for(&view).clone();
        let local = prefixes
            .local
            .iter()
            .find(|p| !p.is_empty())
            .cloned()
            .unwrap_or_else(|| "!".to_owned());
        let aliases = self.store.list_aliases(community).await?;
        let aliases_of = |name: &str, own: &[String]| {
            let mut names: Vec<String> = own.iter().map(|a| format!("{local}{a}")).collect();
            names.extend(
                aliases
                    .iter()
                    .filter(|alias| {
                        // Targets are kept with their prefix (`!discord`).
                        alias
                            .target
                            .split_whitespace()
                            .next()
                            .map(|first| first.trim_start_matches(['!', '#']))
                            == Some(name)
                    })
                    .map(|alias| format!("{local}{}", alias.name)),
            );
            names
        };
        let mut listed = Vec::new();
        for spec in self.catalog.specs() {
            let settings = view.settings(&spec.name);
            if !self.policy.module_enabled(&view, &spec.module)
                || settings.is_some_and(|s| !s.enabled)
            {
                continue;
            }
            listed.push(ListedCommand {
                shown: format!("{local}{}", spec.name),
                usage: format!("{local}{}", spec.usage),
                description: spec.description.clone(),
                aliases: aliases_of(&spec.name, &spec.aliases),
                min_level: settings.and_then(|s| s.min_level).unwrap_or(spec.min_level),
                module: spec.module.clone(),
                response: None,
                cooldown_secs: settings
                    .and_then(|s| s.user_cooldown_secs)
                    .unwrap_or(spec.cooldown.as_secs()),
            });
        }
        if self
            .policy
            .module_enabled(&view, waddlebot::store::CUSTOM_COMMANDS_MODULE)
        {
            for command in self.store.list_custom_commands(community).await? {
                let settings = view.settings(&command.name);
                if settings.is_some_and(|s| !s.enabled) {
                    continue;
                }
                listed.push(ListedCommand {
                    shown: format!("{local}{}", command.name),
                    usage: format!("{local}{}", command.name),
                    description: String::new(),
                    aliases: aliases_of(&command.name, &[]),
                    min_level: settings
                        .and_then(|s| s.min_level)
                        .unwrap_or(PermissionLevel::Everyone),
                    module: waddlebot::store::CUSTOM_COMMANDS_MODULE.to_owned(),
                    response: Some(command.response),
                    cooldown_secs: settings.and_then(|s| s.user_cooldown_secs).unwrap_or(0),
                });
            }
        }
        for module in view.remote_modules().iter() {
            if !module.enabled {
                continue;
            }
            for name in &module.commands {
                listed.push(ListedCommand {
                    shown: format!("{}{name}", prefixes.remote),
                    usage: format!("{}{name}", prefixes.remote),
                    description: String::new(),
                    aliases: Vec::new(),
                    min_level: PermissionLevel::Everyone,
                    module: module.name.clone(),
                    response: None,
                    cooldown_secs: 0,
                });
            }
        }
        listed.sort_by(|a, b| a.shown.cmp(&b.shown));
        Ok(listed)
    }
}
