//! The server on a real loopback socket, driven over HTTP like a collector would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use waddlebot_server::{AppState, Config, app, build_router, serve};

struct Server {
    addr: SocketAddr,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            database_url: format!("sqlite://{}", dir.path().join("e2e.db").display()),
            ..Config::default()
        };
        tweak(&mut config);
        let router = build_router(&config, Vec::new()).await.expect("router");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bound");
        let addr = listener.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let app = app(AppState::new(Arc::new(router), config.max_body_bytes));
        let done = tokio::spawn(serve(listener, app, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            client: reqwest::Client::new(),
            stop: Some(stop),
            done: Some(done),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let response = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("answered");
        let status = response.status().as_u16();
        let json = response.json().await.expect("a JSON body");
        (status, json)
    }

    async fn event(&self, user: &str, level_flag: Option<&str>, message: &str) -> Value {
        let mut event = chat_event(user, message);
        if let Some(flag) = level_flag {
            event["metadata"] = json!({ flag: true });
        }
        let (status, body) = self.post("/router/events", event.to_string()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "success", "{body}");
        body["data"].clone()
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            done.await.expect("server task ended cleanly");
        }
    }
}

fn chat_event(user: &str, message: &str) -> Value {
    json!({
        "platform": "twitch",
        "server_id": "pond",
        "channel_id": "pond",
        "user_id": format!("id-{user}"),
        "username": user,
        "message": message,
    })
}

fn reply_texts(data: &Value) -> Vec<String> {
    data["replies"]
        .as_array()
        .expect("replies")
        .iter()
        .map(|r| r["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn an_event_gets_the_replies_a_session_and_ids() {
    let server = Server::start().await;
    let data = server.event("alice", None, "!ping").await;
    assert_eq!(reply_texts(&data), ["Pong!"]);
    assert_eq!(data["processed"], true);
    assert_eq!(data["command"], "!ping");
    let session = data["session_id"].as_str().expect("session id");
    assert!(
        session.starts_with("sess_") && session.len() == 37,
        "{session}"
    );
    assert!(data["community_id"].is_number());

    let plain = server.event("alice", None, "hello everyone").await;
    assert_eq!(plain["processed"], false);
    assert_eq!(reply_texts(&plain), Vec::<String>::new());
    server.stop().await;
}

#[tokio::test]
async fn a_moderator_creates_a_command_over_http_that_viewers_then_run() {
    let server = Server::start().await;
    let refused = server
        .event("alice", None, "!command add hello Hi {user}!")
        .await;
    assert!(reply_texts(&refused)[0].contains("moderator"));
    let added = server
        .event("modly", Some("is_mod"), "!command add !hello Hi {user}!")
        .await;
    assert_eq!(reply_texts(&added), ["Command !hello added."]);
    let hello = server.event("alice", None, "!hello").await;
    assert_eq!(reply_texts(&hello), ["Hi alice!"]);
    let unknown = server.event("alice", None, "!nope").await;
    assert!(reply_texts(&unknown)[0].starts_with("Unknown command: !nope"));
    server.stop().await;
}

#[tokio::test]
async fn a_batch_is_answered_in_input_order() {
    let server = Server::start().await;
    server
        .event("modly", Some("is_broadcaster"), "!command add echo {args}")
        .await;
    let events: Vec<Value> = (0..30)
        .map(|i| chat_event(&format!("user{i}"), &format!("!echo number {i}")))
        .collect();
    let (status, body) = server
        .post(
            "/router/events/batch",
            json!({ "events": events }).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["count"], 30);
    let results = body["data"]["results"].as_array().expect("results");
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result["status"], "success");
        assert_eq!(reply_texts(&result["data"]), [format!("number {i}")]);
    }
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_a_400_naming_the_problem() {
    let server = Server::start().await;
    let mut missing = chat_event("alice", "!ping");
    missing.as_object_mut().expect("object").remove("user_id");
    let mut unknown_platform = chat_event("alice", "!ping");
    unknown_platform["platform"] = json!("myspace");
    let one_event = chat_event("alice", "!ping");
    let cases: Vec<(&str, String, &str)> = vec![
        ("/router/events", "{not json".into(), "valid JSON"),
        ("/router/events", String::new(), "JSON object"),
        ("/router/events", "[1,2]".into(), "must be a JSON object"),
        ("/router/events", missing.to_string(), "user_id"),
        (
            "/router/events",
            unknown_platform.to_string(),
            "unknown platform 'myspace'",
        ),
        (
            "/router/events/batch",
            json!({"events": []}).to_string(),
            "got 0",
        ),
        (
            "/router/events/batch",
            json!({"events": vec![one_event.clone(); 101]}).to_string(),
            "got 101",
        ),
        (
            "/router/events/batch",
            json!({"events": [one_event.clone(), missing]}).to_string(),
            "events[1]",
        ),
        (
            "/router/events/batch",
            json!({"evnts": []}).to_string(),
            "evnts",
        ),
    ];
    for (path, body, needle) in cases {
        let (status, json) = server.post(path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body}: {json}");
        assert_eq!(json["status"], "error");
        let message = json["message"].as_str().expect("message");
        assert!(message.contains(needle), "{path} {body}: {message}");
    }
    server.stop().await;
}

#[tokio::test]
async fn an_oversize_body_gets_413_with_or_without_a_declared_length() {
    let server = Server::start_with(|config| config.max_body_bytes = 4096).await;
    let (status, json) = server.post("/router/events", "x".repeat(10_000)).await;
    assert_eq!(status, 413, "{json}");
    assert_eq!(json["status"], "error");

    // Chunked, so the server only finds out while reading.
    let mut stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connected");
    let chunk = "y".repeat(3000);
    let request = format!(
        "POST /router/events HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n\
         {len:x}\r\n{chunk}\r\n{len:x}\r\n{chunk}\r\n0\r\n\r\n",
        len = chunk.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut response = vec![0; 4096];
    let read = stream
        .read(&mut response)
        .await
        .expect("an answer, not a reset");
    let head = String::from_utf8_lossy(&response[..read]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    server.stop().await;
}

#[tokio::test]
async fn health_and_unknown_routes() {
    let server = Server::start().await;
    let health: Value = server
        .client
        .get(server.url("/health"))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "healthy");
    let healthz = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("answered");
    assert_eq!(healthz.status(), 200);

    let missing = server
        .client
        .get(server.url("/nowhere"))
        .send()
        .await
        .expect("answered");
    assert_eq!(missing.status(), 404);
    let wrong_method = server
        .client
        .get(server.url("/router/events"))
        .send()
        .await
        .expect("answered");
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["allow"], "POST");
    server.stop().await;
}

#[tokio::test]
async fn data_persists_across_a_server_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("restart.db");
    let url = format!("sqlite://{}", path.display());
    let first = Server::start_with(|c| c.database_url = url.clone()).await;
    first
        .event("modly", Some("is_mod"), "!command add bye See you {touser}")
        .await;
    first.stop().await;
    let second = Server::start_with(|c| c.database_url = url.clone()).await;
    let data = second.event("alice", None, "!bye @bob").await;
    assert_eq!(reply_texts(&data), ["See you bob"]);
    second.stop().await;
}

#[tokio::test]
async fn two_servers_sharing_redis_share_one_rate_limit() {
    let Ok(redis_url) = std::env::var("WADDLEBOT_TEST_REDIS_URL") else {
        eprintln!("skipped: WADDLEBOT_TEST_REDIS_URL is not set");
        return;
    };
    let prefix = format!("waddlebot-test:{}:", uuid::Uuid::new_v4().simple());
    let shared = |config: &mut Config| {
        config.redis_url = Some(redis_url.clone());
        config.redis_prefix = prefix.clone();
        config.router.policy.user_rate = waddlebot_router::policy::RateLimit::per_secs(3, 60);
    };
    let a = Server::start_with(shared).await;
    let b = Server::start_with(shared).await;
    let mut ran = 0;
    for i in 0..6 {
        let server = if i % 2 == 0 { &a } else { &b };
        let data = server.event("alice", None, "!ping").await;
        if reply_texts(&data) == ["Pong!"] {
            ran += 1;
        } else {
            assert!(
                reply_texts(&data)[0].starts_with("Rate limit exceeded"),
                "{data}"
            );
        }
    }
    assert_eq!(ran, 3, "one limit across both servers");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_module_answers_later_through_router_responses() {
    let twitch = Arc::new(waddlebot::testing::RecordingPlatform::new(
        waddlebot::PlatformKind::Twitch,
    ));
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        database_url: format!("sqlite://{}", dir.path().join("late.db").display()),
        ..Config::default()
    };
    let router = Arc::new(
        build_router(&config, vec![twitch.clone()])
            .await
            .expect("router"),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bound");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        app(AppState::new(Arc::clone(&router), config.max_body_bytes)),
        async {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        let request = client
            .post(format!("http://{addr}{path}"))
            .body(body.to_string());
        async move {
            let response = request.send().await.expect("answered");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("json"))
        }
    };
    let (_, event) = post("/router/events", chat_event("alice", "!ping")).await;
    let session = event["data"]["session_id"].clone();
    let entity = event["data"]["entity_id"].clone();

    let late = json!({
        "session_id": session, "entity_id": entity, "module_name": "ai",
        "success": true, "response_action": "chat", "chat_message": "Here is your answer"
    });
    let (status, body) = post("/router/responses", late.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["delivered"], 1);
    assert_eq!(twitch.sent_texts(), ["Here is your answer"]);

    let mut wrong_entity = late.clone();
    wrong_entity["entity_id"] = json!(9999);
    assert_eq!(post("/router/responses", wrong_entity).await.0, 403);
    let mut unknown = late.clone();
    unknown["session_id"] = json!("sess_00000000000000000000000000000000");
    assert_eq!(post("/router/responses", unknown).await.0, 404);
    let mut bad_action = late.clone();
    bad_action["response_action"] = json!("telepathy");
    let (status, body) = post("/router/responses", bad_action).await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("telepathy")),
        "{body}"
    );
    let mut ticker = late;
    ticker["response_action"] = json!("ticker");
    ticker["ticker_text"] = json!("Now live!");
    assert_eq!(post("/router/responses", ticker).await.0, 200);
    assert_eq!(
        twitch.sent_texts().len(),
        1,
        "overlay items do not go to the chat"
    );
    let shown = router.overlays().on_screen(waddlebot::CommunityId(1));
    assert_eq!(
        shown.iter().map(|s| &s.item).collect::<Vec<_>>(),
        [&waddlebot::OverlayReply::Ticker {
            text: "Now live!".into(),
            duration_secs: 10
        }],
        "on the community's overlay"
    );

    let _ = stop.send(());
    server.await.expect("stopped");
}

#[tokio::test]
async fn a_lost_database_gets_503_with_retry_after_and_the_server_recovers() {
    let Ok(base) = std::env::var("WADDLEBOT_TEST_POSTGRES_URL") else {
        eprintln!("skipped: WADDLEBOT_TEST_POSTGRES_URL is not set");
        return;
    };
    let name = format!("wbtest_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&base)
        .await
        .expect("PostgreSQL reachable");
    let sql = |statement: String| {
        let admin = admin.clone();
        async move {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&admin)
                .await
                .expect("admin statement");
        }
    };
    sql(format!("CREATE DATABASE {name}")).await;
    let url = match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("WADDLEBOT_TEST_POSTGRES_URL needs a database path"),
    };
    let server = Server::start_with(|config| config.database_url = url.clone()).await;
    let post_in = |channel: &str| {
        let mut event = chat_event("alice", "!ping");
        event["channel_id"] = json!(channel);
        event["server_id"] = json!(channel);
        server
            .client
            .post(server.url("/router/events"))
            .body(event.to_string())
            .send()
    };
    assert_eq!(post_in("one").await.expect("answered").status(), 200);

    sql(format!("DROP DATABASE {name} WITH (FORCE)")).await;
    let lost = post_in("two").await.expect("answered, not hung");
    assert_eq!(lost.status(), 503);
    assert_eq!(lost.headers()["retry-after"], "5");
    let body: Value = lost.json().await.expect("json");
    assert_eq!(body["status"], "error");

    sql(format!("CREATE DATABASE {name}")).await;
    waddlebot::store::PgStore::open(&url, None, &waddlebot::store::PgSettings::default())
        .await
        .expect("migrated again");
    let mut recovered = false;
    for attempt in 0..20 {
        let response = post_in(&format!("three-{attempt}"))
            .await
            .expect("answered");
        if response.status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(recovered, "the server recovered by itself");
    server.stop().await;
    sql(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
}

/// `/healthz` reports Redis (optional: the limits fall back to the process) and turns 503 only
/// when a required dependency is down.
#[tokio::test]
async fn healthz_reports_redis_and_fails_only_on_required_dependencies() {
    use std::sync::Arc;
    use waddlebot_server::{AppState, HealthCheck, Probe, redis_check};

    let start = |state: AppState| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bound");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(waddlebot_server::serve(
            listener,
            waddlebot_server::app(state),
            std::future::pending(),
        ));
        format!("http://{addr}/healthz")
    };
    let state = || {
        let router = waddlebot_router::Router::builder()
            .store(Arc::new(waddlebot::store::MemoryStore::new()))
            .build()
            .expect("router");
        AppState::new(Arc::new(router), 1 << 20)
    };
    let get = |url: String| async move {
        let response = reqwest::get(url).await.expect("answered");
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.expect("json"))
    };

    let dead =
        start(state().with_check(redis_check("redis://127.0.0.1:1/").expect("valid URL"))).await;
    let (status, body) = get(dead).await;
    assert_eq!(status, 200, "Redis is optional: {body}");
    assert_eq!(body["checks"]["redis"], "unavailable");

    if let Ok(url) = std::env::var("WADDLEBOT_TEST_REDIS_URL") {
        let live = start(state().with_check(redis_check(&url).expect("valid URL"))).await;
        assert_eq!(get(live).await.1["checks"]["redis"], "ok");
    }

    let failing: Probe = Arc::new(|| Box::pin(async { Err("down".to_owned()) }));
    let required = start(state().with_check(HealthCheck {
        name: "queue",
        required: true,
        probe: failing,
    }))
    .await;
    let (status, body) = get(required).await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], "degraded");
}
