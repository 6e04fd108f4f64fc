//! Aliases, in the engine: `!so @pingu` runs `!shoutout pingu`.
//!
//! A target is a command line with `{user}`, `{touser}`, `{args}`/`{all_args}`, `{argN}`,
//! `{channel}`, `{platform}` and `{random A-B}` filled in (missing arguments become empty). A
//! target without argument variables is a partial command: the arguments typed after the alias
//! are appended (`!q` → `!quote search` makes `!q penguins` run `!quote search penguins`).
//! Aliases may point at aliases, at most [`MAX_DEPTH`] deep; a loop is refused with the chain.

use waddlebot::store::{Entity, community_namespace};

use crate::cache::CommunityView;
use waddlebot::template::{Template, Var, Vars};
use waddlebot::{Args, CommunityId, Event, StoreError};

use crate::parse::{Invocation, Prefixes};

pub use waddlebot::alias::{
    AliasError, CreateAliasError, MAX_DEPTH, MAX_EXPANSION_BYTES, MAX_NAME_LEN, validate,
};

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
    // One byte over the limit tells a line that was cut from one that fits exactly.
    let mut line = template.render_within(&vars, MAX_EXPANSION_BYTES + 1);
    let append = !template.uses(Var::Args) && !template.uses(Var::Arg(1)) && !args.is_empty();
    let appended = if append { 1 + args.raw().len() } else { 0 };
    if line.len() + appended > MAX_EXPANSION_BYTES {
        return Err(AliasError::TooLong);
    }
    if append {
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
    /// platform command, custom command or other alias, and a valid target
    /// ([`waddlebot::alias::create`], as `!alias add` does).
    pub async fn create_alias(
        &self,
        community: CommunityId,
        name: &str,
        target: &str,
        created_by: &str,
    ) -> Result<waddlebot::store::Alias, CreateAliasError> {
        waddlebot::alias::create(
            self.store.as_ref(),
            &self.catalog,
            community,
            name,
            target,
            created_by,
            self.clock.now(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use waddlebot::{CommandCatalog, CommandSpec};

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
