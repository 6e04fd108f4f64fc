//! Modules: what a command handler declares, what it is given, and what it returns.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::args::Args;
use crate::event::{Event, Sender};
use crate::id::{CommunityId, EntityId};
use crate::permission::PermissionLevel;
use crate::reply::Reply;
use crate::store::{Store, StoreError};

/// The declaration of one command: its name, help text and the rules for running it. `!help`,
/// `!commands` and the public command pages are generated from these, never written apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// The name without prefix, lower case (`ping`).
    pub name: String,
    /// Other names that run the same command.
    pub aliases: Vec<String>,
    /// One line saying what it does.
    pub description: String,
    /// How to call it, without the prefix (`command add <name> <response…>`).
    pub usage: String,
    /// The lowest level allowed to run it.
    pub min_level: PermissionLevel,
    /// How long one user waits between uses (zero = none).
    pub cooldown: Duration,
    /// How long anyone waits after any use in the community (zero = none).
    pub global_cooldown: Duration,
    /// Commands naming the same bucket share their cooldowns (`None` = the command's own).
    pub cooldown_bucket: Option<String>,
    /// The module it belongs to (`core`, `custom_commands`...).
    pub module: String,
}

impl CommandSpec {
    /// A command anyone may run, with no cooldown. The name is lower-cased and a leading `!`
    /// removed.
    pub fn new(name: impl Into<String>) -> Self {
        let name = normalize_command_name(&name.into());
        Self {
            usage: name.clone(),
            name,
            aliases: Vec::new(),
            description: String::new(),
            min_level: PermissionLevel::Everyone,
            cooldown: Duration::ZERO,
            global_cooldown: Duration::ZERO,
            cooldown_bucket: None,
            module: "core".to_owned(),
        }
    }

    /// Sets the description.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// Sets the usage line (without prefix).
    pub fn usage(mut self, text: impl Into<String>) -> Self {
        self.usage = text.into();
        self
    }

    /// Adds another name.
    pub fn alias(mut self, name: impl Into<String>) -> Self {
        self.aliases.push(normalize_command_name(&name.into()));
        self
    }

    /// Sets the minimum permission level.
    pub fn min_level(mut self, level: PermissionLevel) -> Self {
        self.min_level = level;
        self
    }

    /// Sets the per-user cooldown.
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Sets the community-wide cooldown.
    pub fn global_cooldown(mut self, cooldown: Duration) -> Self {
        self.global_cooldown = cooldown;
        self
    }

    /// Shares cooldowns with every command naming the same bucket.
    pub fn cooldown_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.cooldown_bucket = Some(bucket.into());
        self
    }

    /// Sets the module name.
    pub fn module(mut self, module: impl Into<String>) -> Self {
        self.module = module.into();
        self
    }

    /// Every name this command answers to, its own first.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

/// Lower-cases a command name and strips one leading `!`, `#` or `/`: users may write
/// `!hello` or `hello` alike.
pub fn normalize_command_name(name: &str) -> String {
    normalized(name).into_owned()
}

/// [`normalize_command_name`] without a copy when the name is already normal (the router
/// looks names up normalized, so the catalog's lookups on every command need none).
fn normalized(name: &str) -> std::borrow::Cow<'_, str> {
    let plain = !name.starts_with(['!', '#', '/'])
        && name
            .bytes()
            // `char::is_whitespace`, which `trim` uses, not `u8::is_ascii_whitespace`: the
            // latter leaves out the vertical tab, and a name ending in one was kept untrimmed.
            .all(|b| b.is_ascii() && !b.is_ascii_uppercase() && !char::from(b).is_whitespace());
    if plain {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(normalized_copy(name))
    }
}

/// The rule itself: trimmed, one prefix character dropped, lower case.
fn normalized_copy(name: &str) -> String {
    let trimmed = name.trim();
    trimmed
        .strip_prefix(['!', '#', '/'])
        .unwrap_or(trimmed)
        .to_lowercase()
}

/// The built-in commands of a router, by name and alias, and which of their modules are
/// optional (off in a community until it installs them).
#[derive(Debug, Clone, Default)]
pub struct CommandCatalog {
    specs: Vec<CommandSpec>,
    by_name: BTreeMap<String, usize>,
    optional: BTreeSet<String>,
}

/// Two specs claim one name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("command name '{name}' is declared twice (modules '{first}' and '{second}')")]
pub struct DuplicateCommand {
    /// The contested name.
    pub name: String,
    /// The module that declared it first.
    pub first: String,
    /// The module that declared it again.
    pub second: String,
}

impl CommandCatalog {
    /// Builds a catalog, refusing a name or alias declared twice.
    pub fn new(specs: Vec<CommandSpec>) -> Result<Self, DuplicateCommand> {
        let mut by_name = BTreeMap::new();
        for (index, spec) in specs.iter().enumerate() {
            for name in spec.names() {
                if let Some(&first) = by_name.get(name) {
                    let first: &CommandSpec = &specs[first];
                    return Err(DuplicateCommand {
                        name: name.to_owned(),
                        first: first.module.clone(),
                        second: spec.module.clone(),
                    });
                }
                by_name.insert(name.to_owned(), index);
            }
        }
        Ok(Self {
            specs,
            by_name,
            optional: BTreeSet::new(),
        })
    }

    /// Marks modules as optional: off in a community until it installs them (an enabled
    /// [`ModuleInstall`](crate::store::ModuleInstall)).
    #[must_use]
    pub fn with_optional_modules(mut self, modules: impl IntoIterator<Item = String>) -> Self {
        self.optional.extend(modules);
        self
    }

    /// Whether a module is off until a community installs it.
    pub fn is_optional(&self, module: &str) -> bool {
        self.optional.contains(module)
    }

    /// Whether a module is on in a community with this install record (`None`: none): as the
    /// record says, else on unless optional. The router's own `core` module is always on.
    pub fn module_on(&self, module: &str, install: Option<&crate::store::ModuleInstall>) -> bool {
        if module == "core" {
            return true;
        }
        install.map_or(!self.is_optional(module), |install| install.enabled)
    }

    /// [`module_on`](Self::module_on) with the community's install records as listed.
    pub fn module_on_among(&self, module: &str, installs: &[crate::store::ModuleInstall]) -> bool {
        self.module_on(module, installs.iter().find(|i| i.module == module))
    }

    /// The spec answering to `name` (or alias), and its position in [`specs`](Self::specs).
    pub fn find(&self, name: &str) -> Option<(usize, &CommandSpec)> {
        let index = *self.by_name.get(normalized(name).as_ref())?;
        Some((index, &self.specs[index]))
    }

    /// Every spec, in registration order.
    pub fn specs(&self) -> &[CommandSpec] {
        &self.specs
    }
}

/// Where a handler's extra replies go: straight to the platform the event came from.
#[async_trait]
pub trait ReplySink: Send + Sync {
    /// Delivers one reply now.
    async fn send(&self, reply: Reply) -> Result<(), crate::PlatformError>;

    /// Delivers to a place the event did not come from: a whisper to an account on another
    /// platform (identity verification codes), a message in another channel. The default
    /// cannot.
    async fn send_to(&self, outbound: crate::Outbound) -> Result<(), crate::PlatformError> {
        Err(crate::PlatformError::Unsupported(format!(
            "cannot deliver to {} from here",
            outbound.platform
        )))
    }
}

/// Everything a handler is given for one invocation. Cheap to clone.
#[derive(Clone)]
#[non_exhaustive]
pub struct Context {
    /// The community the event belongs to.
    pub community: CommunityId,
    /// The place it happened.
    pub entity: EntityId,
    /// The event itself.
    pub event: Arc<Event>,
    /// The canonical name of the command being run (without prefix).
    pub command: String,
    /// The prefix it was invoked with (`!` or `#`).
    pub prefix: String,
    /// The arguments after the command name.
    pub args: Args,
    /// Persistence, scoped by the handler to its community.
    pub store: Arc<dyn Store>,
    /// The router's built-in commands, for help and name checks.
    pub catalog: Arc<CommandCatalog>,
    /// Where [`send`](Self::send) delivers, when the router can deliver.
    pub sink: Option<Arc<dyn ReplySink>>,
    /// The clock the router runs on (tests move it); read it through [`now`](Self::now).
    pub clock: Arc<dyn crate::clock::Clock>,
}

impl Context {
    /// Assembles a context. The router does this; tests of a module can too.
    pub fn new(
        community: CommunityId,
        entity: EntityId,
        event: Arc<Event>,
        command: impl Into<String>,
        args: Args,
        store: Arc<dyn Store>,
        catalog: Arc<CommandCatalog>,
    ) -> Self {
        Self {
            community,
            entity,
            event,
            command: command.into(),
            prefix: "!".to_owned(),
            args,
            store,
            catalog,
            sink: None,
            clock: crate::clock::system_clock(),
        }
    }

    /// Reads time from `clock` (the router passes its own).
    pub fn with_clock(mut self, clock: Arc<dyn crate::clock::Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The current time on the router's clock: what modules use for "now" (reminders,
    /// timestamps), so tests on a manual clock see consistent times.
    pub fn now(&self) -> std::time::SystemTime {
        self.clock.now()
    }

    /// Lets [`send`](Self::send) deliver through `sink`.
    pub fn with_sink(mut self, sink: Arc<dyn ReplySink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Sends a reply now, before (or after) the handler returns: progress messages, several
    /// answers, an answer that comes later from a spawned task.
    pub async fn send(&self, reply: Reply) -> Result<(), CommandError> {
        let sink = self.sink.as_ref().ok_or_else(|| {
            CommandError::Internal("no platform to deliver extra replies to".into())
        })?;
        sink.send(reply)
            .await
            .map_err(|err| CommandError::Internal(Box::new(err)))
    }

    /// Delivers `outbound` through its platform, wherever the event came from (a whisper to an
    /// account on another platform, say). Fails when that platform is not registered.
    pub async fn send_to(&self, outbound: crate::Outbound) -> Result<(), crate::PlatformError> {
        match &self.sink {
            Some(sink) => sink.send_to(outbound).await,
            None => Err(crate::PlatformError::Unsupported(
                "no platform to deliver to".to_owned(),
            )),
        }
    }

    /// Sets the prefix shown in usage lines.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The caller.
    pub fn user(&self) -> &Sender {
        &self.event.user
    }

    /// The caller's permission level.
    pub fn level(&self) -> PermissionLevel {
        self.event.user.level
    }

    /// `Ok` when the caller has at least `needed`; else the [`CommandError::Forbidden`] the
    /// router turns into "You need to be … or higher". For sub-commands with their own level
    /// (`!quote add` for moderators while `!quote` is for everyone).
    pub fn require(&self, needed: PermissionLevel) -> Result<(), CommandError> {
        if self.level() < needed {
            return Err(CommandError::Forbidden { needed });
        }
        Ok(())
    }

    /// A [`CommandError::Usage`] for this command's usage line.
    pub fn usage_error(&self) -> CommandError {
        let usage = self
            .catalog
            .find(&self.command)
            .map_or_else(|| self.command.clone(), |(_, spec)| spec.usage.clone());
        CommandError::Usage(format!("{}{usage}", self.prefix))
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("community", &self.community)
            .field("entity", &self.entity)
            .field("command", &self.command)
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

/// Why a command did not succeed. The first three are the user's mistakes and become friendly
/// replies; the rest are internal failures, logged in full and shown as a short apology.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// Wrong arguments; the text is the usage line.
    #[error("usage: {0}")]
    Usage(String),
    /// A mistake the user can fix, said to them as written ("No quote #12.").
    #[error("{0}")]
    Invalid(String),
    /// The user's level is too low.
    #[error("requires {needed} or higher")]
    Forbidden {
        /// The level needed.
        needed: PermissionLevel,
    },
    /// The store failed.
    #[error("store error: {0}")]
    Store(#[from] StoreError),
    /// Anything else that went wrong inside.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl CommandError {
    /// A user-facing mistake with this message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    /// Whether this is the user's mistake (shown as is) rather than an internal failure.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Self::Usage(_) | Self::Invalid(_) | Self::Forbidden { .. }
        )
    }
}

/// What a handler may return: a reply, several, text, nothing, or a `Result` of those.
pub trait IntoReplies {
    /// Converts into the replies to deliver.
    fn into_replies(self) -> Result<Vec<Reply>, CommandError>;
}

impl IntoReplies for Reply {
    fn into_replies(self) -> Result<Vec<Reply>, CommandError> {
        Ok(vec![self])
    }
}

impl IntoReplies for Vec<Reply> {
    fn into_replies(self) -> Result<Vec<Reply>, CommandError> {
        Ok(self)
    }
}

impl IntoReplies for String {
    fn into_replies(self) -> Result<Vec<Reply>, CommandError> {
        Ok(vec![Reply::text(self)])
    }
}

impl IntoReplies for &'static str {
    fn into_replies(self) -> Result<Vec<Reply>, CommandError> {
        Ok(vec![Reply::text(self)])
    }
}

impl IntoReplies for () {
    fn into_replies(self) -> Result<Vec<Reply>, CommandError> {
        Ok(Vec::new())
    }
}

impl<T: IntoReplies> IntoReplies for Option<T> {
    fn into_replies(self) -> Result<Vec<Reply>, CommandError> {
        self.map_or_else(|| Ok(Vec::new()), IntoReplies::into_replies)
    }
}

impl<T: IntoReplies, E: Into<CommandError>> IntoReplies for Result<T, E> {
    fn into_replies(self) -> Result<Vec<Reply>, CommandError> {
        self.map_err(Into::into)?.into_replies()
    }
}

/// A module: it declares the commands it answers and handles each invocation.
///
/// Handlers never talk to a platform; they return [`Reply`] values and the router delivers them,
/// so every module works on every platform. For a one-function command, see [`command_fn`].
///
/// ```
/// use waddlebot::{async_trait, CommandError, CommandHandler, CommandSpec, Context, Reply};
///
/// struct Dice;
///
/// #[async_trait]
/// impl CommandHandler for Dice {
///     fn specs(&self) -> Vec<CommandSpec> {
///         vec![CommandSpec::new("roll").usage("roll <sides>").description("Roll a die")]
///     }
///
///     async fn handle(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
///         let sides: u32 = ctx.args.get(0).and_then(|s| s.parse().ok()).ok_or_else(|| ctx.usage_error())?;
///         Ok(vec![Reply::text(format!("{} rolls a d{sides}", ctx.user().name))])
///     }
/// }
///
/// assert_eq!(Dice.specs()[0].name, "roll");
/// ```
#[async_trait]
pub trait CommandHandler: Send + Sync {
    /// The commands this handler answers. Called once, when the router is built.
    fn specs(&self) -> Vec<CommandSpec>;

    /// Runs one invocation of one of [`specs`](Self::specs) (`ctx.command` says which).
    async fn handle(&self, ctx: Context) -> Result<Vec<Reply>, CommandError>;
}

/// A command handler made from one spec and one `async fn`: the common case needs no struct.
///
/// ```
/// use waddlebot::{command_fn, CommandHandler, CommandSpec, Context};
///
/// async fn hug(ctx: Context) -> String {
///     format!("{} hugs {}", ctx.user().name, ctx.args.get(0).unwrap_or("everyone"))
/// }
///
/// let handler = command_fn(CommandSpec::new("hug").description("Hug someone"), hug);
/// assert_eq!(handler.specs()[0].name, "hug");
/// ```
pub fn command_fn<F, Fut, R>(spec: CommandSpec, f: F) -> FnHandler<F>
where
    F: Fn(Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoReplies,
{
    FnHandler { spec, f }
}

/// The handler [`command_fn`] returns.
pub struct FnHandler<F> {
    spec: CommandSpec,
    f: F,
}

impl<F> std::fmt::Debug for FnHandler<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnHandler")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<F, Fut, R> CommandHandler for FnHandler<F>
where
    F: Fn(Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoReplies,
{
    fn specs(&self) -> Vec<CommandSpec> {
        vec![self.spec.clone()]
    }

    async fn handle(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        (self.f)(ctx).await.into_replies()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalize_command_name(" !Hello "), "hello");
        assert_eq!(normalize_command_name("#weather"), "weather");
        assert_eq!(
            normalize_command_name("0\u{b}"),
            "0",
            "a vertical tab is trimmed too"
        );
        assert_eq!(CommandSpec::new("!Ping").name, "ping");
    }

    proptest::proptest! {
        #[test]
        fn names_taken_as_they_are_are_what_the_rule_makes_of_them(name in "[ \t-\r!#/a-zA-Z0-9_\u{85}\u{e9}\u{c9}\u{3000}-]{0,8}") {
            proptest::prop_assert_eq!(normalized(&name).into_owned(), normalized_copy(&name));
        }
    }

    #[test]
    fn the_catalog_finds_a_name_however_it_is_typed() {
        let catalog =
            CommandCatalog::new(vec![CommandSpec::new("ping").alias("pong")]).expect("catalog");
        for typed in ["ping", "PING", " !Ping ", "pong", "#Pong"] {
            assert_eq!(catalog.find(typed).map(|(i, _)| i), Some(0), "{typed:?}");
        }
        assert!(catalog.find("pin").is_none());
    }

    #[test]
    fn a_catalog_refuses_a_name_declared_twice() {
        let err = CommandCatalog::new(vec![
            CommandSpec::new("ping").module("core"),
            CommandSpec::new("pong").alias("ping").module("games"),
        ])
        .unwrap_err();
        assert_eq!(err.name, "ping");
        assert_eq!(err.second, "games");
    }

    #[test]
    fn a_catalog_finds_by_alias() {
        let catalog =
            CommandCatalog::new(vec![CommandSpec::new("shoutout").alias("so")]).expect("unique");
        assert_eq!(
            catalog.find("!SO").map(|(_, s)| s.name.as_str()),
            Some("shoutout")
        );
        assert!(catalog.find("nope").is_none());
    }
}
