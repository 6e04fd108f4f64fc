//! The router's decisions, as a chat user or an embedder would notice them.

use std::sync::Arc;
use std::time::Duration;

use waddlebot::store::MemoryStore;
use waddlebot::testing::RecordingPlatform;
use waddlebot::{
    CommandError, CommandSpec, Context, Event, EventKind, PermissionLevel, PlatformKind, Reply,
    Sender, command_fn,
};
use waddlebot_router::{BuildError, Dispatched, Router, RouterConfig, RouterError};

fn chat(text: &str) -> Event {
    Event::chat(PlatformKind::Discord, "guild", "general", "alice", text)
}

fn texts(replies: &[Reply]) -> Vec<String> {
    replies.iter().map(Reply::to_plain_text).collect()
}

async fn echo(ctx: Context) -> String {
    format!("{}:{}", ctx.command, ctx.args.to_vec().join("|"))
}

fn router_with(handler: impl waddlebot::CommandHandler + 'static) -> Router {
    Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .handler(handler)
        .build()
        .expect("valid wiring")
}

#[tokio::test]
async fn a_plain_async_fn_answers_its_command_and_aliases() {
    let router = router_with(command_fn(CommandSpec::new("echo").alias("say"), echo));
    let outcome = router
        .handle(chat(r#"!say hello "big world""#))
        .await
        .expect("handled");
    assert_eq!(texts(&outcome.replies), ["echo:hello|big world"]);
    assert_eq!(outcome.command.as_deref(), Some("!say"));
    assert!(outcome.processed);
}

#[tokio::test]
async fn the_local_prefix_runs_local_commands_and_chat_is_left_alone() {
    let router = router_with(command_fn(CommandSpec::new("echo"), echo));
    let hash = router.handle(chat("#echo x")).await.expect("handled");
    assert_eq!(
        texts(&hash.replies),
        ["Unknown command: #echo. No community module answers it."],
        "# is for remote modules"
    );
    let plain = router.handle(chat("echo x")).await.expect("handled");
    assert!(!plain.processed);
    assert!(plain.replies.is_empty());
}

#[tokio::test]
async fn prefixes_are_configurable() {
    let router = Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .handler(command_fn(CommandSpec::new("echo"), echo))
        .config(RouterConfig {
            prefixes: vec!["?".into(), "!".into()],
            ..RouterConfig::default()
        })
        .build()
        .expect("valid wiring");
    let outcome = router.handle(chat("?echo a")).await.expect("handled");
    assert_eq!(texts(&outcome.replies), ["echo:a"]);
    let clash = Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .config(RouterConfig {
            prefixes: vec!["#".into()],
            ..RouterConfig::default()
        })
        .build();
    assert!(matches!(clash, Err(BuildError::InvalidConfig(_))));
}

#[tokio::test]
async fn slash_commands_run_the_same_command() {
    let router = router_with(command_fn(CommandSpec::new("echo"), echo));
    let event = Event::new(
        PlatformKind::Slack,
        "T1",
        "C1",
        Sender::new("alice"),
        EventKind::SlashCommand {
            name: "echo".into(),
        },
        "from slack",
    );
    let outcome = router.handle(event).await.expect("handled");
    assert_eq!(texts(&outcome.replies), ["echo:from|slack"]);
    assert_eq!(outcome.command.as_deref(), Some("/echo"));
}

#[tokio::test]
async fn platform_events_are_not_commands() {
    let router = router_with(command_fn(CommandSpec::new("echo"), echo));
    let raid = Event::new(
        PlatformKind::Twitch,
        "pond",
        "pond",
        Sender::new("raider"),
        EventKind::Raid { viewers: 40 },
        "!echo not a command",
    );
    let outcome = router.handle(raid).await.expect("handled");
    assert!(!outcome.processed);
}

#[tokio::test]
async fn the_permission_refusal_names_the_level_needed() {
    let router = router_with(command_fn(
        CommandSpec::new("nuke").min_level(PermissionLevel::Broadcaster),
        |_ctx: Context| async { "boom" },
    ));
    let refused = router
        .handle(chat("!nuke").with_level(PermissionLevel::Moderator))
        .await
        .expect("handled");
    assert_eq!(
        texts(&refused.replies),
        ["You need to be broadcaster or higher to use !nuke."]
    );
    let allowed = router
        .handle(chat("!nuke").with_level(PermissionLevel::Admin))
        .await
        .expect("handled");
    assert_eq!(texts(&allowed.replies), ["boom"]);
}

#[tokio::test]
async fn user_errors_are_replies_and_internal_errors_are_an_apology() {
    let router = Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .handler(command_fn(
            CommandSpec::new("roll").usage("roll <sides>"),
            |ctx: Context| async move { Err::<String, _>(ctx.usage_error()) },
        ))
        .handler(command_fn(
            CommandSpec::new("quote"),
            |_ctx: Context| async { Err::<String, _>(CommandError::invalid("No quote #12.")) },
        ))
        .handler(command_fn(
            CommandSpec::new("broken"),
            |_ctx: Context| async {
                Err::<String, _>(CommandError::Internal("db password is hunter2".into()))
            },
        ))
        .build()
        .expect("valid wiring");
    let roll = router.handle(chat("!roll")).await.expect("handled");
    assert_eq!(texts(&roll.replies), ["Usage: !roll <sides>"]);
    let quote = router.handle(chat("!quote 12")).await.expect("handled");
    assert_eq!(texts(&quote.replies), ["No quote #12."]);
    let broken = router.handle(chat("!broken")).await.expect("handled");
    let text = &texts(&broken.replies)[0];
    assert!(text.contains("!broken failed"), "{text}");
    assert!(
        !text.contains("hunter2"),
        "internals never reach chat: {text}"
    );
}

#[tokio::test]
async fn a_panicking_handler_does_not_take_the_router_down() {
    let router = router_with(command_fn(
        CommandSpec::new("oops"),
        |ctx: Context| async move {
            let index: usize = 7;
            ctx.args.to_vec()[index].clone()
        },
    ));
    let outcome = router.handle(chat("!oops")).await.expect("handled");
    assert!(texts(&outcome.replies)[0].contains("!oops failed"));
    let again = router.handle(chat("!ping")).await.expect("still works");
    assert_eq!(texts(&again.replies), ["Pong!"]);
}

#[tokio::test(start_paused = true)]
async fn a_slow_handler_is_cut_off_at_the_deadline() {
    let router = Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .handler(command_fn(
            CommandSpec::new("slow"),
            |_ctx: Context| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "too late"
            },
        ))
        .config(RouterConfig {
            handler_timeout: Duration::from_secs(5),
            ..RouterConfig::default()
        })
        .build()
        .expect("valid wiring");
    let outcome = router.handle(chat("!slow")).await.expect("handled");
    assert!(texts(&outcome.replies)[0].contains("!slow failed"));
}

#[test]
fn wiring_mistakes_fail_at_build_time() {
    let duplicate = Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .handler(command_fn(CommandSpec::new("ping"), echo))
        .build();
    assert!(matches!(duplicate, Err(BuildError::DuplicateCommand(d)) if d.name == "ping"));
    let no_store = Router::builder().build();
    assert!(matches!(no_store, Err(BuildError::MissingStore)));
    let twice = Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .platform(Arc::new(RecordingPlatform::new(PlatformKind::Twitch)))
        .platform(Arc::new(RecordingPlatform::new(PlatformKind::Twitch)))
        .build();
    assert!(matches!(twice, Err(BuildError::DuplicatePlatform(_))));
}

#[tokio::test]
async fn dispatch_delivers_through_the_events_platform_and_reports_refusals() {
    let discord = Arc::new(RecordingPlatform::new(PlatformKind::Discord));
    let router = Arc::new(
        Router::builder()
            .store(Arc::new(MemoryStore::new()))
            .handler(command_fn(CommandSpec::new("two"), |_ctx: Context| async {
                vec![Reply::text("one"), Reply::whisper("two")]
            }))
            .platform(discord.clone())
            .build()
            .expect("valid wiring"),
    );
    let delivered = |d| match d {
        Dispatched::Delivered(delivery) => delivery,
        other => panic!("expected a delivery, got {other:?}"),
    };
    let delivery = delivered(router.dispatch(chat("!two")).await.expect("dispatched"));
    assert!(delivery.failed.is_empty());
    assert_eq!(discord.sent_texts(), ["one", "(whisper) two"]);
    let sent = discord.sent();
    assert_eq!(sent[0].channel_id, "general");
    assert_eq!(sent[0].user_id, "alice");
    assert_eq!(
        sent[0].in_reply_to.as_ref(),
        Some(&delivery.outcome.event_id)
    );

    // One 429: the governor waits the Retry-After and delivers.
    discord.rate_limit_next(1, Duration::from_millis(10));
    let delivery = delivered(router.dispatch(chat("!ping")).await.expect("dispatched"));
    assert!(delivery.failed.is_empty());
    assert_eq!(
        discord.sent_texts().last().map(String::as_str),
        Some("Pong!")
    );

    // More 429s than the governor retries: reported, not dropped silently.
    discord.rate_limit_next(4, Duration::from_millis(10));
    let delivery = delivered(router.dispatch(chat("!ping")).await.expect("dispatched"));
    assert_eq!(
        delivery.failed.len(),
        1,
        "a refused reply is reported, not dropped"
    );

    let twitch = Event::chat(PlatformKind::Twitch, "pond", "pond", "bob", "!ping");
    assert!(matches!(
        router.dispatch(twitch).await,
        Err(RouterError::NoPlatform(PlatformKind::Twitch))
    ));
}

#[tokio::test]
async fn a_new_place_gets_its_own_community_and_a_guild_shares_one() {
    let router = router_with(command_fn(CommandSpec::new("echo"), echo));
    let general = router.handle(chat("hi")).await.expect("handled");
    let random = router
        .handle(Event::chat(
            PlatformKind::Discord,
            "guild",
            "random",
            "bob",
            "hi",
        ))
        .await
        .expect("handled");
    let other = router
        .handle(Event::chat(
            PlatformKind::Discord,
            "other-guild",
            "general",
            "bob",
            "hi",
        ))
        .await
        .expect("handled");
    assert_eq!(general.community_id, random.community_id);
    assert_ne!(general.entity_id, random.entity_id);
    assert_ne!(general.community_id, other.community_id);
}

#[tokio::test]
async fn writes_through_the_router_store_are_seen_at_once_despite_the_cache() {
    let router = router_with(command_fn(CommandSpec::new("echo"), echo));
    let before = router.handle(chat("!hello")).await.expect("handled");
    assert!(texts(&before.replies)[0].starts_with("Unknown command"));
    let now = std::time::SystemTime::now();
    router
        .store()
        .create_custom_command(&waddlebot::store::CustomCommand {
            community_id: before.community_id,
            name: "hello".into(),
            response: "Hi {user}".into(),
            created_by: "test".into(),
            created_at: now,
            updated_at: now,
        })
        .await
        .expect("created");
    let after = router.handle(chat("!hello")).await.expect("handled");
    assert_eq!(texts(&after.replies), ["Hi alice"]);
    router
        .store()
        .update_custom_command(before.community_id, "hello", "Bye {user}")
        .await
        .expect("updated");
    let edited = router.handle(chat("!hello")).await.expect("handled");
    assert_eq!(texts(&edited.replies), ["Bye alice"]);
}

#[tokio::test]
async fn a_batch_runs_at_most_max_concurrent_at_once_and_keeps_order() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static RUNNING: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);
    let router = Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .handler(command_fn(
            CommandSpec::new("slow"),
            |ctx: Context| async move {
                let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
                PEAK.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                RUNNING.fetch_sub(1, Ordering::SeqCst);
                if ctx.args.get(0) == Some("3") {
                    return Err(CommandError::Internal("boom".into()));
                }
                Ok(format!("done {}", ctx.args.raw()))
            },
        ))
        .config(RouterConfig {
            max_concurrent: 3,
            ..RouterConfig::default()
        })
        .build()
        .expect("valid wiring");
    let events = (0..10).map(|i| chat(&format!("!slow {i}"))).collect();
    let results = router.handle_batch(events).await;
    assert!(
        PEAK.load(Ordering::SeqCst) <= 3,
        "peak {}",
        PEAK.load(Ordering::SeqCst)
    );
    assert!(
        PEAK.load(Ordering::SeqCst) >= 2,
        "events did run concurrently"
    );
    for (i, result) in results.iter().enumerate() {
        let text = texts(&result.as_ref().expect("handled").replies).remove(0);
        if i == 3 {
            assert!(text.contains("failed"), "{text}");
        } else {
            assert_eq!(text, format!("done {i}"));
        }
    }
}

#[tokio::test]
async fn a_community_can_choose_its_own_prefixes() {
    let router = router_with(command_fn(CommandSpec::new("echo"), echo));
    let first = router.handle(chat("!echo a")).await.expect("handled");
    router
        .store()
        .put_module_install(&waddlebot::store::ModuleInstall {
            community_id: first.community_id,
            module: "core".into(),
            enabled: true,
            config: serde_json::json!({"prefix": "?", "remote_prefix": "$"}),
            updated_by: "owner".into(),
            updated_at: std::time::SystemTime::now(),
        })
        .await
        .expect("saved");
    let question = router.handle(chat("?echo b")).await.expect("handled");
    assert_eq!(texts(&question.replies), ["echo:b"]);
    let bang = router.handle(chat("!echo c")).await.expect("handled");
    assert!(!bang.processed, "! is no longer a prefix here");
    let dollar = router.handle(chat("$weather")).await.expect("handled");
    assert!(
        texts(&dollar.replies)[0].contains("No community module answers it"),
        "{:?}",
        dollar
    );
    let elsewhere = router
        .handle(Event::chat(
            PlatformKind::Discord,
            "other",
            "general",
            "bob",
            "!echo d",
        ))
        .await
        .expect("handled");
    assert_eq!(
        texts(&elsewhere.replies),
        ["echo:d"],
        "other communities keep the default"
    );
}
