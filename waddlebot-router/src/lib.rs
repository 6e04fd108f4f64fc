//! # WaddleBot router
//!
//! The engine: an [`Event`](waddlebot::Event) comes in, the router resolves the community it
//! belongs to (creating it on first sight), recognises a command (`!` or `#` prefix with quoted
//! arguments, or a platform slash command), finds its handler — a built-in module or the
//! community's custom text command — checks the caller's permission level, runs it with a
//! deadline, and returns the replies.
//!
//! ```
//! use std::sync::Arc;
//! use waddlebot::prelude::*;
//! use waddlebot::store::MemoryStore;
//! use waddlebot_router::Router;
//!
//! async fn hug(ctx: Context) -> String {
//!     format!("{} hugs {}", ctx.user().name, ctx.args.get(0).unwrap_or("everyone"))
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let router = Router::builder()
//!     .store(Arc::new(MemoryStore::new()))
//!     .handler(command_fn(CommandSpec::new("hug"), hug))
//!     .build()
//!     .unwrap();
//! let event = Event::chat(PlatformKind::Console, "local", "console", "alice", "!hug bob");
//! let outcome = router.handle(event).await.unwrap();
//! assert_eq!(outcome.replies, [Reply::text("alice hugs bob")]);
//! # });
//! ```
//!
//! Built in: `!ping`, `!help [command]` and `!commands`, generated from the registered
//! [`CommandSpec`](waddlebot::CommandSpec)s.

pub mod alias;
mod builder;
mod builtin;
pub mod cache;
mod delivery;
pub mod egress;
pub mod fanout;
pub mod governor;
pub mod invalidation;
pub mod limit;
pub mod listing;
mod meters;
pub mod metrics_names;
pub mod overlay;
mod parse;
pub mod policy;
pub mod remote;
mod router;
pub mod rules;
pub mod scheduler;
pub mod session;
pub mod write_behind;

pub use builtin::Builtins;
pub use delivery::{Delivery, Dispatched, LateReplyError};
pub use parse::{Invocation, Prefixes, command_line};
pub use router::{
    BuildError, ModuleInfo, Outcome, Router, RouterBuilder, RouterConfig, RouterError,
    UMBRELLA_SLASH_COMMAND,
};
#[cfg(feature = "test-util")]
pub mod testing;
