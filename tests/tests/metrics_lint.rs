//! `GET /metrics` passes `promtool check metrics`: every metric family the router and the server
//! record has `# HELP` text and a name Prometheus' lint accepts (base unit in the name,
//! `_total` on counters).
//!
//! The server runs on loopback with the Prometheus recorder installed the way `waddlebot serve`
//! installs it (`install_metrics()` before the router is built), and requests make every family
//! appear. The recorder is process-global: this file is a test binary of its own with a single
//! test, so nothing else records into it.
//!
//! `promtool` comes with Debian's `prometheus` package. Without it the promtool half is skipped
//! with a note; `.ci/promtool.sh` installs it and CI sets `WADDLEBOT_PROMTOOL=required`, so CI
//! fails instead of skipping.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::sync::oneshot;
use waddlebot::schedule::{self, Scheduled};
use waddlebot::store::{RemoteKind, RemoteModule};
use waddlebot::{
    CommunityId, Outbound, Pacing, Platform, PlatformError, PlatformKind, Quota, async_trait,
};
use waddlebot_router::metrics_names;
use waddlebot_server::{
    AppState, Config, HTTP_REQUESTS, HTTP_SECONDS, OVERLAY_STREAMS, app, build_router,
    install_metrics, overlay_keys, serve,
};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

const WAIT: Duration = Duration::from_secs(10);

/// Every family the router and the server record. A metric added to the code belongs here too,
/// driven by the test below, so the lint sees it.
const FAMILIES: [&str; 16] = [
    metrics_names::EVENTS,
    metrics_names::EVENT_SECONDS,
    metrics_names::COMMANDS,
    metrics_names::REFUSALS,
    metrics_names::HANDLER_SECONDS,
    metrics_names::HANDLER_FAILURES,
    metrics_names::CACHE,
    metrics_names::RULE_MATCHES,
    metrics_names::REMOTE_CALLS,
    metrics_names::OUTBOUND_WAITS,
    metrics_names::OUTBOUND_RETRIES,
    metrics_names::SCHEDULED,
    metrics_names::OVERLAY_ITEMS,
    HTTP_REQUESTS,
    HTTP_SECONDS,
    OVERLAY_STREAMS,
];

/// A Twitch stand-in that lets one message out per 200 ms of its lane and answers the first
/// send with a 429, so the governor both waits and retries.
struct Paced {
    sent: Mutex<Vec<String>>,
    throttle_first: Mutex<bool>,
}

#[async_trait]
impl Platform for Paced {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Twitch
    }

    async fn pacing(&self, outbound: &Outbound) -> Pacing {
        Pacing {
            lane_quotas: vec![Quota::new(1, Duration::from_millis(200))],
            ..Pacing::unpaced(outbound.channel_id.clone())
        }
    }

    async fn send(&self, outbound: Outbound) -> Result<(), PlatformError> {
        if std::mem::take(&mut *self.throttle_first.lock().expect("not poisoned")) {
            return Err(PlatformError::RateLimited {
                retry_after: Duration::from_millis(10),
            });
        }
        self.sent
            .lock()
            .expect("not poisoned")
            .push(outbound.reply.to_plain_text());
        Ok(())
    }
}

/// `POST /router/events` with a Twitch message in channel `pond`; the answer's `data`.
async fn event(client: &reqwest::Client, base: &str, message_type: &str, text: &str) -> Value {
    let response = client
        .post(format!("{base}/router/events"))
        .json(&json!({
            "platform": "twitch", "server_id": "pond", "channel_id": "pond",
            "user_id": "id-alice", "username": "alice", "message": text,
            "message_type": message_type,
        }))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 200, "{text}");
    let body: Value = response.json().await.expect("json");
    body["data"].clone()
}

/// A message for the scheduler to deliver now in community 1's channel.
fn due_now(id: &str) -> Scheduled {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970");
    Scheduled {
        id: id.to_owned(),
        due_ms: u64::try_from(now.as_millis()).expect("in range"),
        community_id: CommunityId(1),
        platform: PlatformKind::Twitch,
        server_id: "pond".to_owned(),
        channel_id: "pond".to_owned(),
        user_id: "id-alice".to_owned(),
        module: "reminders".to_owned(),
        text: format!("reminder {id}"),
        repeat_secs: None,
        attempts: 0,
        claimed_until_ms: None,
    }
}

/// The `# TYPE` and `# HELP` lines' family names.
fn families<'a>(text: &'a str, comment: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|line| line.strip_prefix(comment))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect()
}

/// `promtool check metrics` on `text`: whether it passed and what it said, or `None` when it is
/// not installed (and not required).
fn promtool(text: &str) -> Option<(bool, String)> {
    let required = std::env::var("WADDLEBOT_PROMTOOL").is_ok_and(|v| v == "required");
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                !required,
                "WADDLEBOT_PROMTOOL=required but promtool is not installed (.ci/promtool.sh)"
            );
            eprintln!(
                "skipped the promtool check: install Debian's prometheus package (.ci/promtool.sh)"
            );
            return None;
        }
        Err(err) => panic!("cannot run promtool: {err}"),
    };
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(text.as_bytes())
        .expect("promtool reads the text");
    let output = child.wait_with_output().expect("promtool ends");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some((output.status.success(), said))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_has_help_and_passes_promtool() {
    // As `waddlebot serve` does: the recorder first, then the router (it registers its metrics
    // when it is built).
    let metrics = install_metrics().expect("the only recorder of this process");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        database_url: format!("sqlite://{}", dir.path().join("lint.db").display()),
        // The remote module below listens on loopback.
        allow_private_targets: true,
        ..Config::default()
    };
    let platform = Arc::new(Paced {
        sent: Mutex::new(Vec::new()),
        throttle_first: Mutex::new(true),
    });
    let router = build_router(&config, vec![platform.clone()])
        .await
        .expect("router");
    let router = Arc::new(router);
    let state = AppState::new(Arc::clone(&router), config.max_body_bytes).with_metrics(metrics);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bound");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app(state), async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();

    // Commands that answer, are refused (a viewer managing custom commands) and do not exist.
    let answered = event(&client, &base, "chatMessage", "!ping").await;
    let community = CommunityId(answered["community_id"].as_i64().expect("a community"));
    assert_eq!(community, CommunityId(1), "the first community");
    event(&client, &base, "chatMessage", "!command add hi hello").await;
    event(&client, &base, "chatMessage", "!nosuchcommand").await;

    // A remote command, answered by a module on loopback.
    let module = MockServer::start().await;
    Mock::given(path("/weather"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!(
            {"success": true, "response_type": "text", "message": "sunny"}
        )))
        .mount(&module)
        .await;
    router
        .register_remote_module(RemoteModule {
            community_id: community,
            name: "weather".into(),
            url: format!("{}/weather", module.uri()),
            secret: "correct-horse-battery-staple".into(),
            commands: vec!["weather".into()],
            events: vec![],
            timeout_ms: 1500,
            kind: RemoteKind::Webhook,
            enabled: true,
            created_at: SystemTime::now(),
        })
        .await
        .expect("registered");
    let remote = event(&client, &base, "chatMessage", "#weather").await;
    assert_eq!(remote["replies"][0]["text"], "sunny", "{remote}");

    // An overlay page connected (the stream gauge) and a follow on its alerts (an item).
    let key = overlay_keys::keys(router.store().as_ref(), community)
        .await
        .expect("keys")
        .current;
    let overlay = client
        .get(format!("{base}/overlay/{key}/events"))
        .send()
        .await
        .expect("answered");
    assert_eq!(overlay.status(), 200);
    event(&client, &base, "follow", "").await;

    // Two scheduled messages in one lane: the first meets a 429 and is retried, the second
    // waits for the lane's quota.
    for id in ["first", "second"] {
        schedule::schedule(router.store().as_ref(), &due_now(id))
            .await
            .expect("scheduled");
    }
    let scheduler = router.start_scheduler(Duration::from_millis(50));
    let delivered = async {
        while platform.sent.lock().expect("not poisoned").len() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, delivered)
        .await
        .expect("both scheduled messages delivered");
    scheduler.stop().await;

    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .expect("text");
    // The same numbers, summed up as the original's router read API did.
    let summary: Value = client
        .get(format!("{base}/router/metrics"))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    let data = &summary["data"];
    assert!(data["events"]["total"].as_f64() >= Some(1.0), "{summary}");
    assert!(data["commands"]["total"].as_f64() >= Some(1.0), "{summary}");
    assert!(data["latency_ms"]["p99"].is_number(), "{summary}");
    assert!(
        data["caches"].as_object().is_some_and(|c| !c.is_empty()),
        "{summary}"
    );
    assert_eq!(
        data["rate_limiter"]["per_user_and_command"]["max"], 60,
        "{summary}"
    );
    drop(overlay);
    let _ = stop.send(());
    server.await.expect("server stopped");

    let typed = families(&text, "# TYPE ");
    let helped = families(&text, "# HELP ");
    for family in FAMILIES {
        assert!(typed.contains(&family), "no {family} in\n{text}");
    }
    let without_help: Vec<&&str> = typed
        .iter()
        .filter(|family| !helped.contains(family))
        .collect();
    assert!(
        without_help.is_empty(),
        "no # HELP for {without_help:?} (describe them in waddlebot-server/src/metrics.rs)"
    );
    if let Some((passed, said)) = promtool(&text) {
        assert!(passed, "promtool check metrics:\n{said}\non\n{text}");
    }
}
