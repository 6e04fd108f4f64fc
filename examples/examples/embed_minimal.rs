//! Embedding WaddleBot in your own program: a router on SQLite with one custom command written as
//! a plain `async fn`, fed a few events, printing the replies.
//!
//! Run it with `cargo run -p examples --example embed_minimal`.

use std::sync::Arc;

use waddlebot::prelude::*;
use waddlebot::store::SqliteStore;
use waddlebot_router::Router;

/// `!hug [name]`: the whole command is one function.
async fn hug(ctx: Context) -> String {
    let target = ctx.args.get(0).unwrap_or("everyone");
    format!("{} hugs {target} 🐧", ctx.user().shown_name())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A throwaway database; a real bot would use a file it keeps, e.g. "sqlite://bot.db".
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("example.db").display());
    let store = SqliteStore::open(&url).await?;

    let router = Router::builder()
        .store(Arc::new(store))
        .handler(command_fn(
            CommandSpec::new("hug")
                .usage("hug [name]")
                .description("Hug someone"),
            hug,
        ))
        .handler(waddlebot_modules::CustomCommands)
        .build()?;

    let events = [
        ("alice", PermissionLevel::Everyone, "!hug pingu"),
        ("alice", PermissionLevel::Everyone, "!help hug"),
        (
            "modly",
            PermissionLevel::Moderator,
            "!command add hi Hello {user}!",
        ),
        ("bob", PermissionLevel::Everyone, "!hi"),
        ("bob", PermissionLevel::Everyone, "just chatting"),
    ];
    for (user, level, text) in events {
        let event =
            Event::chat(PlatformKind::Console, "example", "general", user, text).with_level(level);
        let outcome = router.handle(event).await?;
        println!("{user}: {text}");
        for reply in &outcome.replies {
            println!("  bot: {}", reply.to_plain_text());
        }
    }
    // Late replies and the bookkeeping gathered behind the events are written before exit.
    router.drain(std::time::Duration::from_secs(10)).await;
    Ok(())
}
