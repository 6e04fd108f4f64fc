//! The router's metrics, read back through a debugging recorder.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use waddlebot::store::{MemoryStore, RemoteKind, RemoteModule};
use waddlebot::{
    CommandError, CommandSpec, Context, Event, PermissionLevel, PlatformKind, command_fn,
};
use waddlebot_router::Router;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// (name, labels, value) of one recorded metric.
type Recorded = (String, Vec<(String, String)>, DebugValue);

fn counter(snapshot: &[Recorded], name: &str, label: (&str, &str)) -> u64 {
    snapshot
        .iter()
        .filter(|(n, labels, _)| {
            n == name && labels.iter().any(|(k, v)| k == label.0 && v == label.1)
        })
        .map(|(_, _, value)| match value {
            DebugValue::Counter(n) => *n,
            _ => 0,
        })
        .sum()
}

#[test]
fn commands_refusals_events_and_caches_are_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let router = Router::builder()
                .store(Arc::new(MemoryStore::new()))
                .allow_private_targets(true)
                .handler(command_fn(
                    CommandSpec::new("mod-only").min_level(PermissionLevel::Moderator),
                    |_ctx: Context| async { "ok" },
                ))
                .handler(command_fn(
                    CommandSpec::new("boom"),
                    |_ctx: Context| async {
                        Err::<String, _>(CommandError::Internal("kaboom".into()))
                    },
                ))
                .handler(command_fn(
                    CommandSpec::new("slow").cooldown(Duration::from_secs(60)),
                    |_ctx: Context| async { "ok" },
                ))
                .build()
                .expect("valid wiring");
            let mut community = None;
            for text in [
                "!ping",
                "!ping",
                "!nope",
                "!mod-only",
                "!boom",
                "!slow",
                "!slow",
                "hello",
            ] {
                let event = Event::chat(PlatformKind::Twitch, "pond", "pond", "alice", text);
                community = Some(router.handle(event).await.expect("handled").community_id);
            }
            let community = community.expect("a community");
            // Remote (`#`) commands count too: one answers, one says the input was wrong,
            // one is broken, one does not exist.
            let server = MockServer::start().await;
            for (route, answer) in [
                (
                    "/weather",
                    ResponseTemplate::new(200).set_body_json(serde_json::json!(
                        {"success": true, "response_type": "text", "message": "sunny"}
                    )),
                ),
                (
                    "/lookup",
                    ResponseTemplate::new(200).set_body_json(serde_json::json!(
                        {"success": false, "error": "no such city"}
                    )),
                ),
                ("/broken", ResponseTemplate::new(404)),
            ] {
                Mock::given(path(route))
                    .respond_with(answer)
                    .mount(&server)
                    .await;
            }
            for name in ["weather", "lookup", "broken"] {
                router
                    .register_remote_module(RemoteModule {
                        community_id: community,
                        name: name.into(),
                        url: format!("{}/{name}", server.uri()),
                        secret: "correct-horse-battery-staple".into(),
                        commands: vec![name.into()],
                        events: vec![],
                        timeout_ms: 1500,
                        kind: RemoteKind::Webhook,
                        enabled: true,
                        created_at: SystemTime::now(),
                    })
                    .await
                    .expect("registered");
            }
            for text in ["#weather", "#lookup", "#broken", "#nothere"] {
                let event = Event::chat(PlatformKind::Twitch, "pond", "pond", "alice", text);
                router.handle(event).await.expect("handled");
            }
        });
    });
    let snapshot: Vec<_> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            (key.name().to_owned(), labels, value)
        })
        .collect();
    let commands = "waddlebot_commands_total";
    assert_eq!(counter(&snapshot, commands, ("outcome", "ok")), 3 + 1);
    assert_eq!(counter(&snapshot, commands, ("outcome", "unknown")), 1 + 1);
    assert_eq!(counter(&snapshot, commands, ("outcome", "refused")), 2);
    assert_eq!(counter(&snapshot, commands, ("outcome", "user_error")), 1);
    assert_eq!(counter(&snapshot, commands, ("outcome", "failed")), 1 + 1);
    let refusals = "waddlebot_refusals_total";
    assert_eq!(counter(&snapshot, refusals, ("reason", "permission")), 1);
    assert_eq!(counter(&snapshot, refusals, ("reason", "cooldown")), 1);
    assert_eq!(
        counter(
            &snapshot,
            "waddlebot_handler_failures_total",
            ("module", "core")
        ),
        1
    );
    assert_eq!(
        counter(
            &snapshot,
            "waddlebot_events_total",
            ("kind", "chat_message")
        ),
        8 + 4
    );
    let cache = "waddlebot_cache_requests_total";
    assert!(counter(&snapshot, cache, ("result", "miss")) > 0);
    assert!(
        counter(&snapshot, cache, ("result", "hit")) >= 11,
        "the entity is cached after the first event"
    );
}
