//! Alias rules shared by the engine and the alias module: what makes a usable alias, and
//! creating one in a community's store.
//!
//! The router follows aliases when a message runs one (`waddlebot_router::alias`); the checks
//! made when one is created live here, so chat (`!alias add`), the admin API and embedders all
//! refuse the same things.

use std::fmt;
use std::time::SystemTime;

use crate::store::{Alias, Store};
use crate::template::{Template, TemplateError, Var};
use crate::{CommandCatalog, CommunityId, StoreError, normalize_command_name, reserved};

/// The longest chain of aliases followed for one message.
pub const MAX_DEPTH: usize = 5;
/// The longest command line one alias step may make; with [`MAX_DEPTH`] this bounds what a
/// chain of aliases can expand to (an alias doubling `{args}` at every step cannot grow a
/// message past it).
pub const MAX_EXPANSION_BYTES: usize = crate::template::MAX_RENDERED_BYTES;

/// Longest alias name.
pub const MAX_NAME_LEN: usize = 32;

/// Why an alias cannot be created or followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AliasError {
    /// The name has characters or a length that cannot be typed as a command.
    #[error(
        "'{0}' is not a valid alias name: use up to {MAX_NAME_LEN} letters, digits, '-' or '_'"
    )]
    BadName(String),
    /// The name is a built-in command.
    #[error("!{0} is a built-in command and cannot be an alias")]
    BuiltIn(String),
    /// The name is a platform's own command.
    #[error("!{name} is a platform command on {platforms} and cannot be an alias")]
    Reserved {
        /// The name.
        name: String,
        /// Where it is reserved.
        platforms: String,
    },
    /// The target is empty or not a command.
    #[error("an alias must point at a command, like !quote search {{args}}")]
    EmptyTarget,
    /// The target template is broken.
    #[error("the alias target has a template error: {0}")]
    Template(#[from] TemplateError),
    /// `{count}` has no meaning in an alias.
    #[error("{{count}} cannot be used in an alias")]
    CountInAlias,
    /// The command line an alias makes is longer than [`MAX_EXPANSION_BYTES`].
    #[error("the alias makes a command longer than {MAX_EXPANSION_BYTES} bytes")]
    TooLong,
    /// Following the alias comes back to where it started.
    #[error("alias loop: {}", Chain(.0))]
    Cycle(Vec<String>),
    /// More than [`MAX_DEPTH`] aliases in a row.
    #[error("alias chain deeper than {MAX_DEPTH}: {}", Chain(.0))]
    TooDeep(Vec<String>),
}

/// Displays `["a", "b"]` as `!a → !b`.
struct Chain<'a>(&'a [String]);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.0.iter().map(|n| format!("!{n}")).collect();
        f.write_str(&names.join(" → "))
    }
}

/// Why [`create`] refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateAliasError {
    /// The name or target is unusable.
    #[error(transparent)]
    Invalid(#[from] AliasError),
    /// The community already has an alias or custom command of that name.
    #[error("!{0} already exists")]
    Exists(String),
    /// The target names no command the community has (built-in, custom, alias or remote).
    #[error("{0} is not a command here: create it first, or check the spelling")]
    UnknownTarget(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks an alias before it is stored: a usable name that shadows neither a built-in nor a
/// platform command, and a target that is a valid command line. Returns the normalised name and
/// target (a target typed without a prefix gets `!`).
pub fn validate(
    name: &str,
    target: &str,
    catalog: &CommandCatalog,
) -> Result<(String, String), AliasError> {
    let name = normalize_command_name(name);
    if name.is_empty()
        || name.chars().count() > MAX_NAME_LEN
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err(AliasError::BadName(name));
    }
    if catalog.find(&name).is_some() {
        return Err(AliasError::BuiltIn(name));
    }
    let platforms = reserved::conflicting_platforms(&name);
    if !platforms.is_empty() {
        let platforms: Vec<String> = platforms.iter().map(ToString::to_string).collect();
        return Err(AliasError::Reserved {
            name,
            platforms: platforms.join(", "),
        });
    }
    let target = strip_quotes(target.trim());
    if target.is_empty() || target == "!" || target == "#" {
        return Err(AliasError::EmptyTarget);
    }
    let target = if target.starts_with(['!', '#']) {
        target.to_owned()
    } else {
        format!("!{target}")
    };
    if Template::parse(&target)?.uses(Var::Count) {
        return Err(AliasError::CountInAlias);
    }
    let first = target.split_whitespace().next().unwrap_or_default();
    if normalize_command_name(first) == name {
        return Err(AliasError::Cycle(vec![name.clone(), name]));
    }
    Ok((name, target))
}

/// Whether `typed` (`!name` or `#name`) is a command of the community: a built-in, a custom
/// command or another alias for `!`, a remote module's command for `#`.
async fn command_exists(
    store: &dyn Store,
    catalog: &CommandCatalog,
    community: CommunityId,
    typed: &str,
) -> Result<bool, StoreError> {
    let name = normalize_command_name(typed);
    if typed.starts_with('#') {
        return Ok(store
            .list_remote_modules(community)
            .await?
            .iter()
            .any(|module| module.commands.contains(&name)));
    }
    Ok(catalog.find(&name).is_some()
        || store.custom_command(community, &name).await?.is_some()
        || store.alias(community, &name).await?.is_some())
}

/// `"text"` or `'text'` → `text`, as the original's `!alias add` did.
fn strip_quotes(text: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = text
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            return inner;
        }
    }
    text
}

/// Creates an alias in `community` after [`validate`]: refused when the community has a custom
/// command or another alias of that name.
pub async fn create(
    store: &dyn Store,
    catalog: &CommandCatalog,
    community: CommunityId,
    name: &str,
    target: &str,
    created_by: &str,
    at: SystemTime,
) -> Result<Alias, CreateAliasError> {
    let (name, target) = validate(name, target, catalog)?;
    if store.custom_command(community, &name).await?.is_some()
        || store.alias(community, &name).await?.is_some()
    {
        return Err(CreateAliasError::Exists(name));
    }
    let first = target.split_whitespace().next().unwrap_or_default();
    // A target whose command is filled in when the alias runs (`!{arg1}`) is checked then.
    if !first.contains('{') && !command_exists(store, catalog, community, first).await? {
        return Err(CreateAliasError::UnknownTarget(first.to_owned()));
    }
    let alias = Alias {
        community_id: community,
        name,
        target,
        created_by: created_by.to_owned(),
        created_at: at,
    };
    match store.create_alias(&alias).await {
        Ok(()) => Ok(alias),
        Err(StoreError::Conflict(_)) => Err(CreateAliasError::Exists(alias.name)),
        Err(err) => Err(err.into()),
    }
}
