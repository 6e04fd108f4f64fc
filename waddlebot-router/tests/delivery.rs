//! Delivery: extra replies through the context, deferral past a platform's answer window, and
//! late replies to a live session.

use std::sync::Arc;
use std::time::Duration;

use waddlebot::store::MemoryStore;
use waddlebot::testing::RecordingPlatform;
use waddlebot::{
    CommandSpec, Context, EntityId, Event, PlatformKind, PlatformLimits, Reply, SessionId,
    command_fn,
};
use waddlebot_router::{Dispatched, LateReplyError, Router};

fn chat(text: &str) -> Event {
    Event::chat(PlatformKind::Discord, "guild", "general", "alice", text)
}

/// A Discord-like platform (3 s answer window) and a router whose `!think` takes 10 s.
fn thinking_bot() -> (Arc<RecordingPlatform>, Arc<Router>) {
    let discord = Arc::new(RecordingPlatform::new(PlatformKind::Discord).with_limits(
        PlatformLimits {
            answer_window: Some(Duration::from_secs(3)),
            ..PlatformLimits::default()
        },
    ));
    let router = Arc::new(
        Router::builder()
            .store(Arc::new(MemoryStore::new()))
            .handler(command_fn(
                CommandSpec::new("think"),
                |_ctx: Context| async {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    "42"
                },
            ))
            .platform(discord.clone())
            .build()
            .expect("valid wiring"),
    );
    (discord, router)
}

#[tokio::test(start_paused = true)]
async fn a_slow_handler_is_deferred_and_its_reply_follows() {
    let (discord, router) = thinking_bot();
    let fast = router.dispatch(chat("!ping")).await.expect("dispatched");
    assert!(matches!(fast, Dispatched::Delivered(_)));
    assert_eq!(discord.sent_texts(), ["Pong!"]);

    let slow = router.dispatch(chat("!think")).await.expect("dispatched");
    assert!(matches!(slow, Dispatched::Deferred { .. }), "{slow:?}");
    assert_eq!(
        discord.sent_texts(),
        ["Pong!"],
        "nothing yet when the window closes"
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(discord.sent_texts(), ["Pong!", "42"], "the reply followed");
}

/// A shutdown drains: replies still being produced after the answer window are delivered
/// before `drain` returns, and a drain that runs out of time says so.
#[tokio::test(start_paused = true)]
async fn drain_waits_for_replies_that_follow_the_window() {
    let (discord, router) = thinking_bot();
    let slow = router.dispatch(chat("!think")).await.expect("dispatched");
    assert!(matches!(slow, Dispatched::Deferred { .. }), "{slow:?}");
    assert!(
        !router.drain(Duration::from_secs(1)).await,
        "one second is not enough for the rest of ten"
    );
    assert!(discord.sent_texts().is_empty());
    assert!(router.drain(Duration::from_secs(30)).await);
    assert_eq!(
        discord.sent_texts(),
        ["42"],
        "delivered before drain returned"
    );
}

#[tokio::test]
async fn a_handler_can_send_progress_before_its_answer() {
    let discord = Arc::new(RecordingPlatform::new(PlatformKind::Discord));
    let router = Arc::new(
        Router::builder()
            .store(Arc::new(MemoryStore::new()))
            .handler(command_fn(
                CommandSpec::new("search"),
                |ctx: Context| async move {
                    ctx.send(Reply::text("Searching…")).await?;
                    ctx.send(Reply::whisper("(just for you)")).await?;
                    Ok::<_, waddlebot::CommandError>("Found 3 results")
                },
            ))
            .platform(discord.clone())
            .build()
            .expect("valid wiring"),
    );
    router
        .dispatch(chat("!search penguins"))
        .await
        .expect("dispatched");
    assert_eq!(
        discord.sent_texts(),
        ["Searching…", "(whisper) (just for you)", "Found 3 results"]
    );
}

#[tokio::test]
async fn late_replies_need_a_live_session_of_the_same_entity() {
    let discord = Arc::new(RecordingPlatform::new(PlatformKind::Discord));
    let router = Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .platform(discord.clone())
        .build()
        .expect("valid wiring");
    let outcome = router.handle(chat("!ping")).await.expect("handled");
    let late = [Reply::text("and one more thing")];
    let failed = router
        .late_reply(&outcome.session_id, outcome.entity_id, &late)
        .await
        .expect("delivered");
    assert!(failed.is_empty());
    assert_eq!(discord.sent_texts(), ["and one more thing"]);
    assert_eq!(discord.sent()[0].channel_id, "general");

    assert!(matches!(
        router
            .late_reply(&outcome.session_id, EntityId(999), &late)
            .await,
        Err(LateReplyError::WrongEntity(_))
    ));
    assert!(matches!(
        router
            .late_reply(&SessionId::random(), outcome.entity_id, &late)
            .await,
        Err(LateReplyError::UnknownSession(_))
    ));
    let chatter = router.handle(chat("just chatting")).await.expect("handled");
    assert!(
        matches!(
            router
                .late_reply(&chatter.session_id, chatter.entity_id, &late)
                .await,
            Err(LateReplyError::UnknownSession(_))
        ),
        "unprocessed chatter keeps no session"
    );
}
