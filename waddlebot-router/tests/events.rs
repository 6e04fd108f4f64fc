//! Events that are not commands: fan-out to subscribed handlers, and slash/component routing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use waddlebot::store::{EntityKey, MemoryStore, ModuleInstall};
use waddlebot::{
    CommandError, Context, Event, EventKind, PlatformKind, Reply, Sender, Subscription, event_fn,
};
use waddlebot_router::Router;

fn event(kind: EventKind, text: &str) -> Event {
    Event::new(
        PlatformKind::Twitch,
        "pond",
        "pond",
        Sender::new("raider"),
        kind,
        text,
    )
}

fn texts(replies: &[Reply]) -> Vec<String> {
    replies.iter().map(Reply::to_plain_text).collect()
}

#[tokio::test]
async fn subscribers_answer_in_priority_order_and_failures_are_reported() {
    let router = Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .event_handler(event_fn(
            Subscription::new("late", &["raid"]).priority(200),
            |_ctx: Context| async { "second" },
        ))
        .event_handler(event_fn(
            Subscription::new("welcome", &["raid", "follow"]).priority(10),
            |ctx: Context| async move {
                match &ctx.event.kind {
                    EventKind::Raid { viewers } => {
                        format!("Welcome {} and {viewers} raiders!", ctx.user().name)
                    }
                    _ => format!("Thanks for the follow, {}!", ctx.user().name),
                }
            },
        ))
        .event_handler(event_fn(
            Subscription::new("broken", &["raid"]).priority(50),
            |_ctx: Context| async { Err::<String, _>(CommandError::Internal("db down".into())) },
        ))
        .event_handler(event_fn(
            Subscription::new("cheers", &["cheer"]),
            |_ctx: Context| async { "never for raids" },
        ))
        .build()
        .expect("valid wiring");
    let outcome = router
        .handle(event(EventKind::Raid { viewers: 42 }, ""))
        .await
        .expect("handled");
    assert!(outcome.processed);
    assert_eq!(
        texts(&outcome.replies),
        ["Welcome raider and 42 raiders!", "second"]
    );
    let modules: Vec<_> = outcome.handlers.iter().map(|h| h.module.as_str()).collect();
    assert_eq!(modules, ["welcome", "broken", "late"]);
    assert_eq!(outcome.handlers[1].error.as_deref(), Some("failed"));

    let follow = router
        .handle(event(EventKind::Follow, ""))
        .await
        .expect("handled");
    assert_eq!(texts(&follow.replies), ["Thanks for the follow, raider!"]);

    let nobody = router
        .handle(event(EventKind::StreamOffline, ""))
        .await
        .expect("handled");
    assert!(!nobody.processed);
    assert!(nobody.handlers.is_empty());
}

#[tokio::test]
async fn parallel_handlers_run_together_and_sequential_ones_alone() {
    static RUNNING: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);
    async fn tracked(_ctx: Context) -> &'static str {
        let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        PEAK.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(30)).await;
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        "done"
    }
    let parallel = Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .event_handler(event_fn(
            Subscription::new("a", &["cheer"]).parallel(),
            tracked,
        ))
        .event_handler(event_fn(
            Subscription::new("b", &["cheer"]).parallel(),
            tracked,
        ))
        .event_handler(event_fn(
            Subscription::new("c", &["cheer"]).parallel(),
            tracked,
        ))
        .build()
        .expect("valid wiring");
    let outcome = parallel
        .handle(event(EventKind::Cheer { bits: 100 }, ""))
        .await
        .expect("handled");
    assert_eq!(outcome.replies.len(), 3);
    assert_eq!(PEAK.swap(0, Ordering::SeqCst), 3);

    let sequential = Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .event_handler(event_fn(Subscription::new("a", &["cheer"]), tracked))
        .event_handler(event_fn(Subscription::new("b", &["cheer"]), tracked))
        .build()
        .expect("valid wiring");
    sequential
        .handle(event(EventKind::Cheer { bits: 100 }, ""))
        .await
        .expect("handled");
    assert_eq!(PEAK.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn plain_chat_reaches_chat_subscribers_but_commands_do_not() {
    let router = Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .event_handler(event_fn(
            Subscription::new("greeter", &["chat_message"]),
            |ctx: Context| async move {
                ctx.args
                    .iter()
                    .any(|w| w.eq_ignore_ascii_case("hi"))
                    .then(|| format!("Hello {}!", ctx.user().name))
            },
        ))
        .build()
        .expect("valid wiring");
    let hi = router
        .handle(Event::chat(
            PlatformKind::Twitch,
            "pond",
            "pond",
            "bob",
            "hi all",
        ))
        .await
        .expect("handled");
    assert_eq!(texts(&hi.replies), ["Hello bob!"]);
    let this = router
        .handle(Event::chat(
            PlatformKind::Twitch,
            "pond",
            "pond",
            "bob",
            "this is it",
        ))
        .await
        .expect("handled");
    assert!(this.replies.is_empty());
    let command = router
        .handle(Event::chat(
            PlatformKind::Twitch,
            "pond",
            "pond",
            "bob",
            "!ping hi",
        ))
        .await
        .expect("handled");
    assert_eq!(texts(&command.replies), ["Pong!"]);
}

#[tokio::test]
async fn a_component_interaction_goes_only_to_the_module_in_its_custom_id() {
    let router = Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .event_handler(event_fn(
            Subscription::new("inventory", &["component_interaction"]),
            |ctx: Context| async move {
                let EventKind::ComponentInteraction { custom_id, .. } = &ctx.event.kind else {
                    return String::new();
                };
                let id = waddlebot::ComponentId::parse(custom_id).expect("module:action:ctx");
                format!("{} {}", id.action, id.context)
            },
        ))
        .event_handler(event_fn(
            Subscription::new("polls", &["component_interaction"]),
            |_ctx: Context| async { "polls should not answer" },
        ))
        .build()
        .expect("valid wiring");
    let click = router
        .handle(event(
            EventKind::ComponentInteraction {
                custom_id: "inventory:buy:item:7".into(),
                values: vec![],
            },
            "",
        ))
        .await
        .expect("handled");
    assert_eq!(texts(&click.replies), ["buy item:7"]);
}

#[tokio::test]
async fn a_module_turned_off_hears_no_events() {
    let router = Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .event_handler(event_fn(
            Subscription::new("welcome", &["follow"]),
            |_ctx: Context| async { "welcome" },
        ))
        .build()
        .expect("valid wiring");
    let entity = router
        .store()
        .resolve_entity(&EntityKey {
            platform: PlatformKind::Twitch,
            server_id: "pond".into(),
            channel_id: "pond".into(),
        })
        .await
        .expect("resolved");
    router
        .store()
        .put_module_install(&ModuleInstall {
            community_id: entity.community_id,
            module: "welcome".into(),
            enabled: false,
            config: serde_json::json!({}),
            updated_by: "owner".into(),
            updated_at: SystemTime::now(),
        })
        .await
        .expect("saved");
    let outcome = router
        .handle(event(EventKind::Follow, ""))
        .await
        .expect("handled");
    assert!(outcome.replies.is_empty());
    assert!(!outcome.processed);
}

#[tokio::test]
async fn slacks_umbrella_slash_command_runs_the_sub_command() {
    let router = Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .build()
        .expect("valid wiring");
    let slash = |text: &str| {
        Event::new(
            PlatformKind::Slack,
            "T1",
            "C1",
            Sender::new("alice"),
            EventKind::SlashCommand {
                name: "waddlebot".into(),
            },
            text,
        )
    };
    let ping = router.handle(slash("ping")).await.expect("handled");
    assert_eq!(texts(&ping.replies), ["Pong!"]);
    assert_eq!(ping.command.as_deref(), Some("/ping"));
    let help = router.handle(slash("")).await.expect("handled");
    assert!(texts(&help.replies)[0].starts_with("Commands: "));
}

#[tokio::test]
async fn command_observers_hear_commands_after_they_ran_and_report_only_when_they_speak() {
    static HEARD: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let router = Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .event_handler(event_fn(
            Subscription::new("tally", &[waddlebot::COMMAND_USED]),
            |ctx: Context| async move {
                HEARD.lock().expect("lock").push(format!(
                    "{} {} {:?}",
                    ctx.event.kind.name(),
                    ctx.event.text,
                    ctx.level()
                ));
            },
        ))
        .event_handler(event_fn(
            Subscription::new("everything", &["*"]),
            |_ctx: Context| async { "every event but commands" },
        ))
        .event_handler(event_fn(
            Subscription::new("echo", &[waddlebot::COMMAND_USED]),
            |ctx: Context| async move { ctx.event.text.contains("loud").then_some("I heard that") },
        ))
        .build()
        .expect("valid wiring");
    // The raider is a moderator here: observers see the level the command ran at.
    let community = router
        .store()
        .resolve_entity(&EntityKey {
            platform: PlatformKind::Twitch,
            server_id: "pond".into(),
            channel_id: "pond".into(),
        })
        .await
        .expect("entity")
        .community_id;
    router
        .store()
        .put_role_grant(&waddlebot::store::RoleGrant {
            community_id: community,
            platform: PlatformKind::Twitch,
            user_id: "raider".into(),
            level: waddlebot::PermissionLevel::Moderator,
            granted_by: "owner".into(),
            granted_at: SystemTime::now(),
        })
        .await
        .expect("granted");
    let quiet = router
        .handle(event(EventKind::ChatMessage, "!ping"))
        .await
        .expect("handled");
    assert_eq!(texts(&quiet.replies)[0], "Pong!");
    assert_eq!(
        quiet.replies.len(),
        1,
        "`*` does not cover commands: {:?}",
        texts(&quiet.replies)
    );
    assert!(
        quiet.handlers.is_empty(),
        "observers that only looked are not reported: {:?}",
        quiet.handlers
    );
    assert_eq!(
        *HEARD.lock().expect("lock"),
        ["command_used !ping Moderator"],
        "the observer got the command as a command_used event, at the caller's level here"
    );

    let loud = router
        .handle(event(EventKind::ChatMessage, "!ping loud"))
        .await
        .expect("handled");
    assert_eq!(texts(&loud.replies), ["Pong!", "I heard that"]);
    let modules: Vec<_> = loud.handlers.iter().map(|h| h.module.as_str()).collect();
    assert_eq!(modules, ["echo"]);
}
