//! # WaddleBot core
//!
//! The small heart of WaddleBot, a multi-platform community chat bot engine: the types every
//! part shares and the four traits you implement to extend it.
//!
//! | trait | what it is |
//! |---|---|
//! | [`Platform`] | one chat platform: its limits and how replies reach it |
//! | [`CommandHandler`] | a module: the commands it declares and how it answers them |
//! | [`AiProvider`] | a chat-completion client |
//! | [`Store`] | persistence: core records, JSON documents, counters |
//!
//! Events come in as [`Event`]s, handlers answer with [`Reply`]s, and the router
//! (`waddlebot-router`) decides and delivers. A plain `async fn` can be a command:
//!
//! ```
//! use waddlebot::{command_fn, CommandHandler, CommandSpec, Context, PermissionLevel};
//!
//! async fn lurk(ctx: Context) -> String {
//!     format!("{} is lurking. Enjoy!", ctx.user().shown_name())
//! }
//!
//! let handler = command_fn(
//!     CommandSpec::new("lurk").description("Announce you are lurking"),
//!     lurk,
//! );
//! assert_eq!(handler.specs()[0].min_level, PermissionLevel::Everyone);
//! ```
//!
//! ## Features
//!
//! | feature | adds |
//! |---|---|
//! | `sqlite` | [`store::SqliteStore`], the embedded default store (sqlx, bundled SQLite) |
//! | `test-util` | `testing` fakes and the store conformance suite |
//!
//! With no features the crate compiles serde, thiserror, async-trait and tracing and little else.

pub mod ai;
pub mod alias;
mod args;
pub mod clock;
mod command;
mod event;
mod event_handler;
mod id;
mod permission;
mod platform;
pub mod platforms;
mod reply;
pub mod reserved;
pub mod schedule;
pub mod store;
pub mod template;
#[cfg(feature = "test-util")]
pub mod testing;

pub use ai::{
    AiError, AiProvider, AiSlot, ChatChunk, ChatMessage, ChatRequest, ChatResponse, ChatStream,
    ModelInfo, Role, Usage,
};
pub use args::Args;
pub use async_trait::async_trait;
pub use command::{
    CommandCatalog, CommandError, CommandHandler, CommandSpec, Context, DuplicateCommand,
    FnHandler, IntoReplies, ReplySink, command_fn, normalize_command_name,
};
pub use event::{
    Badge, Event, EventKind, Gift, Metadata, ModerationAction, Sender, SubscriptionTier,
};
pub use event_handler::{
    COMMAND_USED, ComponentId, EventHandler, FnEventHandler, Mode, Subscription, event_fn,
};
pub use id::{CommunityId, EntityId, EventId, SessionId};
pub use permission::{PermissionLevel, UnknownPermissionLevel};
pub use platform::{
    ConsolePlatform, Outbound, Pacing, Platform, PlatformError, PlatformKind, PlatformLimits,
    Quota, UnknownPlatform,
};
pub use reply::{Embed, EmbedField, OverlayReply, Reply};
pub use store::{Store, StoreError};

/// The names most programs need: `use waddlebot::prelude::*;`.
pub mod prelude {
    pub use crate::{
        CommandError, CommandHandler, CommandSpec, Context, Event, EventHandler, EventKind,
        PermissionLevel, Platform, PlatformKind, Reply, Store, Subscription, async_trait,
        command_fn, event_fn,
    };
}
