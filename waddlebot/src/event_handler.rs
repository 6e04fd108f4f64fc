//! Handlers for platform events and plain chat: follows, subscriptions, raids, greetings...
//! They subscribe to event kinds; the router fans each event out to its subscribers.

use std::future::Future;

use async_trait::async_trait;

use crate::command::{CommandError, Context, IntoReplies};
use crate::reply::Reply;

/// The kind name of the notice event handlers get after a command ran (when they subscribe to
/// it by name): the event is the command's message, with this kind
/// ([`EventKind::Custom`](crate::EventKind::Custom)). Reputation counts command use this way.
pub const COMMAND_USED: &str = "command_used";

/// How a handler runs beside the others subscribed to the same event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// One after another, in priority order (the default).
    #[default]
    Sequential,
    /// Together with the neighbouring parallel handlers.
    Parallel,
}

/// What an [`EventHandler`] listens to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The module it belongs to (switched on and off per community with it).
    pub module: String,
    /// Event kind names ([`EventKind::name`](crate::EventKind::name): `chat_message`,
    /// `follow`, `subscription`, `raid`, `cheer`, `member_join`, `stream_online`...), or `*`.
    pub kinds: Vec<String>,
    /// Lower runs first; default 100.
    pub priority: i32,
    /// Sequential or parallel.
    pub mode: Mode,
}

impl Subscription {
    /// A sequential subscription at priority 100.
    pub fn new(module: impl Into<String>, kinds: &[&str]) -> Self {
        Self {
            module: module.into(),
            kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
            priority: 100,
            mode: Mode::Sequential,
        }
    }

    /// Sets the priority (lower first).
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Runs beside other parallel handlers.
    pub fn parallel(mut self) -> Self {
        self.mode = Mode::Parallel;
        self
    }

    /// Whether this subscription covers an event kind name. `*` covers every kind but
    /// [`COMMAND_USED`], which a handler must name.
    pub fn covers(&self, kind: &str) -> bool {
        self.kinds
            .iter()
            .any(|k| k == kind || (k == "*" && kind != COMMAND_USED))
    }
}

/// A handler of events that are not commands.
///
/// ```
/// use waddlebot::{async_trait, CommandError, Context, EventHandler, Reply, Subscription};
///
/// struct Welcome;
///
/// #[async_trait]
/// impl EventHandler for Welcome {
///     fn subscription(&self) -> Subscription {
///         Subscription::new("welcome", &["follow", "raid"])
///     }
///     async fn on_event(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
///         Ok(vec![Reply::text(format!("Welcome, {}!", ctx.user().shown_name()))])
///     }
/// }
///
/// assert!(Welcome.subscription().covers("raid"));
/// assert!(!Welcome.subscription().covers("cheer"));
/// ```
#[async_trait]
pub trait EventHandler: Send + Sync {
    /// What it listens to. Called once, when the router is built.
    fn subscription(&self) -> Subscription;

    /// Handles one event (`ctx.command` is the event kind name, `ctx.args` the event text).
    async fn on_event(&self, ctx: Context) -> Result<Vec<Reply>, CommandError>;
}

/// An event handler made from one subscription and one `async fn`.
pub fn event_fn<F, Fut, R>(subscription: Subscription, f: F) -> FnEventHandler<F>
where
    F: Fn(Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoReplies,
{
    FnEventHandler { subscription, f }
}

/// The handler [`event_fn`] returns.
pub struct FnEventHandler<F> {
    subscription: Subscription,
    f: F,
}

impl<F> std::fmt::Debug for FnEventHandler<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnEventHandler")
            .field("subscription", &self.subscription)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<F, Fut, R> EventHandler for FnEventHandler<F>
where
    F: Fn(Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoReplies,
{
    fn subscription(&self) -> Subscription {
        self.subscription.clone()
    }

    async fn on_event(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        (self.f)(ctx).await.into_replies()
    }
}

/// A component's `custom_id`, `module:action:context` (the context may hold more `:`).
///
/// ```
/// use waddlebot::ComponentId;
/// let id = ComponentId::parse("inventory:buy:item:123").unwrap();
/// assert_eq!((id.module, id.action, id.context), ("inventory", "buy", "item:123"));
/// assert!(ComponentId::parse("nocolon").is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComponentId<'a> {
    /// The module that owns the component.
    pub module: &'a str,
    /// What it does.
    pub action: &'a str,
    /// Anything else ("" when absent).
    pub context: &'a str,
}

impl<'a> ComponentId<'a> {
    /// Splits a custom id; `None` unless it has at least `module:action`.
    pub fn parse(custom_id: &'a str) -> Option<Self> {
        let mut parts = custom_id.splitn(3, ':');
        let module = parts.next().filter(|m| !m.is_empty())?;
        let action = parts.next().filter(|a| !a.is_empty())?;
        Some(Self {
            module,
            action,
            context: parts.next().unwrap_or(""),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_covers_every_kind_but_command_use_which_is_asked_for_by_name() {
        let everything = Subscription::new("log", &["*"]);
        assert!(everything.covers("follow") && everything.covers("chat_message"));
        assert!(!everything.covers(COMMAND_USED));
        assert!(Subscription::new("rep", &["*", COMMAND_USED]).covers(COMMAND_USED));
    }
}
