//! Aliases, in the engine: `!so @pingu` runs `!shoutout pingu`.
//!
//! A target is a command line with `{user}`, `{touser}`, `{args}`/`{all_args}`, `{argN}`,
//! `{channel}`, `{platform}` and `{random A-B}` filled in (missing arguments become empty). A
//! target without argument variables is a partial command: the arguments typed after the alias
//! are appended (`!q` → `!quote search` makes `!q penguins` run `!quote search penguins`).
//! Aliases may point at aliases, at most [`MAX_DEPTH`] deep; a loop is refused with the chain.

use std::fmt;

use waddlebot::store::{Entity, community_namespace};

use crate::cache::CommunityView;
use waddlebot::template::{Template, TemplateError, Var, Vars};
use waddlebot::{
    Args, CommandCatalog, CommunityId, Event, StoreError, normalize_command_name, reserved,
};

use crate::parse::{Invocation, Prefixes};

/// The longest chain of aliases followed for one message.
pub const MAX_DEPTH: usize = 5;

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

/// Why [`Router::create_alias`](crate::Router::create_alias) refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateAliasError {
    /// The name or target is unusable.
    #[error(transparent)]
    Invalid(#[from] AliasError),
    /// The community already has an alias or custom command of that name.
    #[error("!{0} already exists")]
    Exists(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] waddlebot::StoreError),
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

/// The command line an alias runs for these arguments.
pub fn expand(
    target: &str,
    user: &str,
    channel: &str,
    platform: &str,
    args: &Args,
) -> Result<String, AliasError> {
    let template = Template::parse(target)?;
    let values = args.to_vec();
    let vars = Vars {
        user,
        args: &values,
        args_text: args.raw(),
        channel,
        platform,
        count: 0,
    };
    let mut line = template.render(&vars);
    if !template.uses(Var::Args) && !template.uses(Var::Arg(1)) && !args.is_empty() {
        line.push(' ');
        line.push_str(args.raw());
    }
    Ok(line)
}

impl crate::Router {
    /// Follows aliases from the typed command to a command that is not an alias.
    pub(crate) async fn follow_aliases(
        &self,
        event: &Event,
        entity: &Entity,
        view: &CommunityView,
        invocation: Invocation,
    ) -> Result<Result<Invocation, AliasError>, StoreError> {
        if invocation.remote {
            return Ok(Ok(invocation));
        }
        let community = entity.community_id;
        let mut chain = vec![invocation.name.clone()];
        let mut current = invocation;
        loop {
            if self.catalog.find(&current.name).is_some() {
                return Ok(Ok(current));
            }
            let Some(alias) = view.alias(&current.name) else {
                return Ok(Ok(current));
            };
            if chain.len() > MAX_DEPTH {
                return Ok(Err(AliasError::TooDeep(chain)));
            }
            if chain.len() == 1 {
                self.store
                    .increment(
                        &community_namespace(community, "alias_uses"),
                        &alias.name,
                        1,
                    )
                    .await?;
            }
            let line = match expand(
                &alias.target,
                event.user.shown_name(),
                &event.channel_id,
                event.platform.as_str(),
                &current.args,
            ) {
                Ok(line) => line,
                Err(err) => return Ok(Err(err)),
            };
            let Some(next) = Prefixes::canonical().parse(&line) else {
                return Ok(Err(AliasError::EmptyTarget));
            };
            let looped = chain.contains(&next.name);
            chain.push(next.name.clone());
            if looped {
                return Ok(Err(AliasError::Cycle(chain)));
            }
            current = next;
        }
    }

    /// Creates an alias in a community after checking it: a usable name shadowing no built-in,
    /// platform command, custom command or other alias, and a valid target.
    pub async fn create_alias(
        &self,
        community: CommunityId,
        name: &str,
        target: &str,
        created_by: &str,
    ) -> Result<waddlebot::store::Alias, CreateAliasError> {
        let (name, target) = validate(name, target, &self.catalog)?;
        if self.store.custom_command(community, &name).await?.is_some() {
            return Err(CreateAliasError::Exists(name));
        }
        let alias = waddlebot::store::Alias {
            community_id: community,
            name,
            target,
            created_by: created_by.to_owned(),
            created_at: self.clock.now(),
        };
        match self.store.create_alias(&alias).await {
            Ok(()) => Ok(alias),
            Err(StoreError::Conflict(_)) => Err(CreateAliasError::Exists(alias.name)),
            Err(err) => Err(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use waddlebot::CommandSpec;

    fn catalog() -> CommandCatalog {
        CommandCatalog::new(vec![CommandSpec::new("ping"), CommandSpec::new("quote")])
            .expect("unique")
    }

    #[test]
    fn targets_get_arguments_filled_or_appended() {
        let args = Args::parse("@pingu is great");
        assert_eq!(
            expand("!shoutout {arg1}", "alice", "c", "twitch", &args).expect("valid"),
            "!shoutout @pingu"
        );
        assert_eq!(
            expand("!quote search", "alice", "c", "twitch", &args).expect("valid"),
            "!quote search @pingu is great"
        );
        assert_eq!(
            expand("!say {user}: {args} {arg9}", "alice", "c", "twitch", &args).expect("valid"),
            "!say alice: @pingu is great "
        );
        assert_eq!(
            expand("!quote random", "alice", "c", "twitch", &Args::parse("")).expect("valid"),
            "!quote random"
        );
    }

    #[test]
    fn names_that_clash_are_refused() {
        let catalog = catalog();
        assert_eq!(
            validate("!ping", "!quote", &catalog),
            Err(AliasError::BuiltIn("ping".into()))
        );
        assert!(matches!(
            validate("ban", "!quote", &catalog),
            Err(AliasError::Reserved { .. })
        ));
        assert!(matches!(
            validate("a b", "!quote", &catalog),
            Err(AliasError::BadName(_))
        ));
        assert_eq!(validate("q", "", &catalog), Err(AliasError::EmptyTarget));
        assert_eq!(
            validate("q", "!q more", &catalog),
            Err(AliasError::Cycle(vec!["q".into(), "q".into()]))
        );
        assert_eq!(
            validate("q", "!x {count}", &catalog),
            Err(AliasError::CountInAlias)
        );
        assert!(matches!(
            validate("q", "!x {nope}", &catalog),
            Err(AliasError::Template(_))
        ));
    }

    #[test]
    fn targets_are_normalised() {
        assert_eq!(
            validate("!Q", "'quote search'", &catalog()),
            Ok(("q".into(), "!quote search".into()))
        );
    }

    #[test]
    fn chains_read_as_arrows() {
        let err = AliasError::Cycle(vec!["a".into(), "b".into(), "a".into()]);
        assert_eq!(err.to_string(), "alias loop: !a → !b → !a");
    }

    proptest::proptest! {
        #[test]
        fn expansion_never_panics_and_stays_bounded(target in "!\\PC{0,30}", args in "\\PC{0,40}") {
            if let Ok(line) = expand(&target, "user", "chan", "twitch", &Args::parse(&args)) {
                // The template may repeat {args}, but each repeat is bounded by the input.
                proptest::prop_assert!(line.len() <= (target.len() + 1) * (args.len() + 16) + 64);
            }
        }
    }
}
