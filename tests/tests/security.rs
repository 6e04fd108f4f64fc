//! The holes an outside probe found (issue 22), each tried again over HTTP against the real
//! server on loopback: every test here failed before its fix.

#[allow(dead_code)]
mod admin;
#[allow(dead_code)]
mod loopback;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use waddlebot::store::{MemoryStore, RemoteKind, RemoteModule};
use waddlebot::testing::ScriptedAi;
use waddlebot::{CommunityId, Store};
use waddlebot_router::{Router, RouterBuilder, RouterConfig};
use waddlebot_server::auth::{Authenticator, Role, issue_token, new_api_key};
use waddlebot_server::{AiApiPolicy, AppState, HttpPolicy};

/// A bot with communities 1 and 2, authentication on (HS256 tokens of `admin::settings`), the
/// standard modules, and what `tweak` changes; `http://127.0.0.1:<port>` in `base`.
struct Bot {
    base: String,
    store: Arc<dyn Store>,
    router: Arc<Router>,
    _server: loopback::Loopback,
}

async fn bot(
    policy: HttpPolicy,
    router: impl FnOnce(RouterBuilder) -> RouterBuilder,
    state: impl FnOnce(AppState) -> AppState,
) -> Bot {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    admin::seed(store.as_ref()).await;
    let standard = waddlebot_modules::standard_modules();
    let builder = Router::builder()
        .store(Arc::clone(&store))
        .modules(standard.commands, standard.events);
    let router = Arc::new(router(builder).build().expect("router"));
    let auth = Authenticator::new(Arc::clone(&store), Some(admin::settings())).expect("auth");
    let app = state(
        AppState::new(Arc::clone(&router), 1 << 20)
            .with_auth(auth)
            .with_http(policy),
    );
    let server = loopback::serve_on_loopback(app).await;
    Bot {
        base: format!("http://{}", server.addr),
        store,
        router,
        _server: server,
    }
}

async fn plain_bot() -> Bot {
    bot(HttpPolicy::default(), |b| b, |s| s).await
}

fn admin_token() -> String {
    admin::token(Role::Admin, None)
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn chat(user: &str, message: &str) -> Value {
    json!({"platform": "twitch", "server_id": "pond", "channel_id": "pond",
           "user_id": user, "username": user, "message": message})
}

/// The same, from a moderator.
fn moderator_chat(user: &str, message: &str) -> Value {
    let mut event = chat(user, message);
    event["metadata"] = json!({"is_mod": true});
    event
}

impl Bot {
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let response = request.send().await.expect("answered");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (
            status,
            headers,
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn event(&self, message: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        self.send(
            reqwest::Client::new()
                .post(format!("{}/router/events", self.base))
                .bearer_auth(admin_token())
                .json(&chat("alice", message)),
        )
        .await
    }

    async fn key(&self, role: Role, community: Option<i64>) -> (String, String) {
        let (key, record) =
            new_api_key("probe", role, community.map(CommunityId), None).expect("key");
        self.store.create_api_key(&record).await.expect("stored");
        (key, record.id)
    }

    /// Signs in to the portal with `credential`; answers the response (303 and a session
    /// cookie when it worked).
    async fn portal_sign_in(&self, credential: &str) -> reqwest::Response {
        let http = no_redirects();
        let form = http
            .get(format!("{}/portal/login", self.base))
            .send()
            .await
            .expect("answered");
        let login = cookie(&form, "wb_login").expect("sign-in cookie").0;
        let html = form.text().await.expect("html");
        let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
        let csrf = html[at..at + 64].to_owned();
        http.post(format!("{}/portal/login", self.base))
            .header("cookie", format!("wb_login={login}"))
            .form(&[("csrf", csrf), ("key", credential.to_owned())])
            .send()
            .await
            .expect("answered")
    }
}

/// A cookie a response sets: its value and the whole `Set-Cookie` line.
fn cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            let value = v[name.len() + 1..].split(';').next().unwrap_or("");
            (value.to_owned(), v.to_owned())
        })
}

// --- 1. portal sessions end with their credential ---

#[tokio::test]
async fn a_portal_session_ends_when_its_key_is_revoked() {
    let bot = plain_bot().await;
    let (key, id) = bot.key(Role::Owner, Some(1)).await;
    let signed_in = bot.portal_sign_in(&key).await;
    assert_eq!(signed_in.status(), 303);
    let session = cookie(&signed_in, "wb_portal").expect("a session").0;
    let dashboard = |session: String| {
        no_redirects()
            .get(format!("{}/portal/1", bot.base))
            .header("cookie", format!("wb_portal={session}"))
            .send()
    };
    assert_eq!(
        dashboard(session.clone()).await.expect("answered").status(),
        200
    );

    let (status, _, body) = bot
        .send(
            reqwest::Client::new()
                .delete(format!("{}/api/v1/communities/1/api-keys/{id}", bot.base))
                .bearer_auth(admin_token()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let after = dashboard(session).await.expect("answered");
    assert_eq!(after.status(), 303, "the session ended with its key");
    assert_eq!(after.headers()["location"], "/portal/login");
}

#[tokio::test]
async fn a_portal_session_made_with_a_token_lasts_no_longer_than_the_token() {
    let bot = plain_bot().await;
    let token = issue_token(
        &admin::settings(),
        "owner",
        Role::Owner,
        Some(CommunityId(1)),
        Duration::from_secs(90),
    )
    .expect("token");
    let signed_in = bot.portal_sign_in(&token).await;
    assert_eq!(signed_in.status(), 303);
    let (_, line) = cookie(&signed_in, "wb_portal").expect("a session");
    let max_age: u64 = line
        .split(';')
        .find_map(|part| part.trim().strip_prefix("Max-Age="))
        .and_then(|v| v.parse().ok())
        .expect("a Max-Age");
    assert!(max_age <= 90, "the session outlives the token: {line}");
}

// --- 2. redirects do not reach internal addresses ---

#[tokio::test]
async fn a_remote_module_redirecting_to_an_internal_address_is_not_followed() {
    use wiremock::matchers::any;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    // "Internal": on 127.0.0.1, which the egress check refuses.
    let internal = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "success": true, "response_type": "text", "message": "db password is hunter2"
        })))
        .mount(&internal)
        .await;
    // "Public": 127.0.0.2, which this bot treats as an allowed target.
    let listener = std::net::TcpListener::bind("127.0.0.2:0").expect("127.0.0.2 is loopback");
    let public = MockServer::builder().listener(listener).start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(307).insert_header("location", format!("{}/", internal.uri())),
        )
        .mount(&public)
        .await;
    let bot = bot(
        HttpPolicy::default(),
        |b| b.allow_targets(["127.0.0.2/32".parse().expect("network")]),
        |s| s,
    )
    .await;
    bot.router
        .register_remote_module(RemoteModule {
            community_id: CommunityId(1),
            name: "weather".into(),
            url: format!("{}/weather", public.uri()),
            secret: "correct-horse-battery-staple".into(),
            commands: vec!["weather".into()],
            events: vec![],
            timeout_ms: 1500,
            kind: RemoteKind::Webhook,
            enabled: true,
            created_at: SystemTime::now(),
        })
        .await
        .expect("an allowed target");
    let (status, _, body) = bot.event("#weather").await;
    assert_eq!(status, 200, "{body}");
    let replies = body["data"]["replies"].to_string();
    assert!(
        !replies.contains("hunter2"),
        "the internal answer leaked: {replies}"
    );
    assert!(
        internal
            .received_requests()
            .await
            .expect("recorded")
            .is_empty(),
        "the internal service was called"
    );
    assert!(
        !public
            .received_requests()
            .await
            .expect("recorded")
            .is_empty(),
        "the public one was"
    );
}

// --- 3. idle connections are closed, and connections are capped ---

/// Whether the server closes `stream` within `wait` (reading until end of file).
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

fn tight_connections() -> HttpPolicy {
    HttpPolicy {
        first_byte_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(600),
        max_connections: 4,
        ..HttpPolicy::default()
    }
}

#[tokio::test]
async fn silent_connections_are_closed_and_cannot_starve_health() {
    let bot = bot(tight_connections(), |b| b, |s| s).await;
    let addr = bot.base.trim_start_matches("http://").to_owned();
    let mut silent = Vec::new();
    for _ in 0..8 {
        silent.push(TcpStream::connect(&addr).await.expect("connected"));
    }
    // The cap is 4: /health waits for a slot, which the first-byte timeout frees.
    let health = tokio::time::timeout(
        Duration::from_secs(5),
        reqwest::get(format!("{}/health", bot.base)),
    )
    .await
    .expect("/health answered while silent connections were open")
    .expect("answered");
    assert_eq!(health.status(), 200);
    for stream in &mut silent {
        assert!(
            closed_within(stream, Duration::from_secs(3)).await,
            "a connection that sent nothing stayed open"
        );
    }
}

/// A connection to a bot with tight connection limits, after sending `opening`; whether the
/// server closed it within 3 s of going quiet.
async fn closed_after_going_quiet(opening: &[u8]) -> bool {
    let bot = bot(tight_connections(), |b| b, |s| s).await;
    let mut stream = TcpStream::connect(bot.base.trim_start_matches("http://"))
        .await
        .expect("connected");
    stream.write_all(opening).await.expect("sent");
    closed_within(&mut stream, Duration::from_secs(3)).await
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    // The answer arrives, then nothing more is asked.
    assert!(
        closed_after_going_quiet(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").await,
        "an idle keep-alive connection stayed open"
    );
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed() {
    // The HTTP/2 preface and an empty SETTINGS frame, then nothing.
    assert!(
        closed_after_going_quiet(
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"
        )
        .await,
        "an idle HTTP/2 connection stayed open"
    );
}

// --- 4. string rules are capped ---

#[tokio::test]
async fn a_community_cannot_add_rules_past_the_cap() {
    let bot = bot(
        HttpPolicy::default(),
        |b| {
            b.config(RouterConfig {
                max_rules_per_community: 3,
                ..RouterConfig::default()
            })
        },
        |s| s,
    )
    .await;
    let moderator = admin::token(Role::Moderator, Some(1));
    let mut last = (0, Value::Null);
    for n in 0..4 {
        let (status, _, body) = bot
            .send(
                reqwest::Client::new()
                    .post(format!("{}/api/v1/communities/1/rules", bot.base))
                    .bearer_auth(&moderator)
                    .json(
                        &json!({"pattern": format!("(spam{n})+"), "match_type": "regex",
                                  "action": {"type": "warn"}}),
                    ),
            )
            .await;
        if n < 3 {
            assert_eq!(status, 201, "{body}");
        }
        last = (status, body);
    }
    assert_eq!(last.0, 400, "{}", last.1);
    assert!(
        last.1["message"]
            .as_str()
            .is_some_and(|m| m.contains("most allowed is 3")),
        "{}",
        last.1
    );
    let (status, _, body) = bot.event("spam2spam2").await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["matched_rule"], json!(3), "{body}");
}

// --- 5. replies cannot be amplified ---

#[tokio::test]
async fn a_command_repeating_its_arguments_makes_a_bounded_reply() {
    let bot = plain_bot().await;
    let owner = admin::token(Role::Owner, Some(1));
    let (status, _, body) = bot
        .send(
            reqwest::Client::new()
                .post(format!("{}/api/v1/communities/1/commands", bot.base))
                .bearer_auth(&owner)
                .json(&json!({"name": "echo", "response": "{args}".repeat(83)})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    for (name, target) in [("d1", "!echo {args} {args}"), ("d2", "!d1 {args} {args}")] {
        let (status, _, body) = bot
            .send(
                reqwest::Client::new()
                    .post(format!("{}/api/v1/communities/1/aliases", bot.base))
                    .bearer_auth(&owner)
                    .json(&json!({"name": name, "target": target})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    // The longest message an event may carry (5,000 characters).
    let words = "word ".repeat(998);
    let (status, _, body) = bot.event(&format!("!echo {words}")).await;
    assert_eq!(status, 200);
    let reply = body["data"]["replies"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reply.len() <= waddlebot::template::MAX_RENDERED_BYTES,
        "{} bytes",
        reply.len()
    );
    let (status, _, body) = bot.event(&format!("!d2 {}", "word ".repeat(500))).await;
    assert_eq!(status, 200);
    let text = body["data"]["replies"].to_string();
    assert!(text.len() < 10_000, "{} bytes", text.len());

    let batch: Vec<Value> = (0..100)
        .map(|i| chat(&format!("viewer{i}"), &format!("!echo {words}")))
        .collect();
    let response = reqwest::Client::new()
        .post(format!("{}/router/events/batch", bot.base))
        .bearer_auth(admin_token())
        .json(&json!({"events": batch}))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.expect("body").len();
    assert!(
        bytes <= waddlebot_server::MAX_BATCH_ANSWER_BYTES + 64 * 1024,
        "{bytes} bytes"
    );
}

// --- 6. the admin rate limit counts the caller ---

#[tokio::test]
async fn the_admin_limit_counts_the_key_however_it_is_written() {
    let bot = bot(
        HttpPolicy {
            admin_rate_per_minute: 3,
            ..HttpPolicy::default()
        },
        |b| b,
        |s| s,
    )
    .await;
    let (key, _) = bot.key(Role::Owner, Some(1)).await;
    let url = format!("{}/api/v1/communities/1/commands", bot.base);
    let http = reqwest::Client::new();
    let written = [
        http.get(&url)
            .header("authorization", format!("Bearer {key}")),
        http.get(&url)
            .header("authorization", format!("bearer {key}")),
        http.get(&url)
            .header("authorization", format!("Bearer  {key}")),
        http.get(&url).header("x-api-key", &key),
    ];
    let mut statuses = Vec::new();
    for request in written {
        statuses.push(bot.send(request).await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    let (status, _, body) = bot
        .send(
            http.get(&url)
                .header("authorization", "Basic junk")
                .header("x-api-key", &key),
        )
        .await;
    assert_eq!(status, 400, "two credentials: {body}");
    let (status, _, _) = bot
        .send(
            http.get(&url)
                .header("authorization", format!("Bearer {key}"))
                .header("x-api-key", admin_token()),
        )
        .await;
    assert_eq!(status, 400);
}

// --- 7 and 9. the lock-out blocks credential attempts only, and logs no secrets ---

/// Log lines written while `f` runs on this thread (the server runs on this test's runtime).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures the log lines `filter` lets through while the guard lives.
fn capture(filter: &str) -> (Captured, tracing::subscriber::DefaultGuard) {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn a_locked_out_address_keeps_everything_but_guessing() {
    let (logs, _guard) = capture(
        "waddlebot=trace,waddlebot_server=trace,waddlebot_router=trace,waddlebot_modules=trace",
    );
    let bot = bot(
        HttpPolicy {
            failed_auth_per_minute: 2,
            ..HttpPolicy::default()
        },
        |b| b,
        |s| s,
    )
    .await;
    let (good, _) = bot.key(Role::Owner, Some(1)).await;
    let commands = format!("{}/api/v1/communities/1/commands", bot.base);
    let http = reqwest::Client::new();
    // Used once before the lock-out: the server knows it.
    assert_eq!(
        bot.send(http.get(&commands).bearer_auth(&good)).await.0,
        200
    );
    for _ in 0..2 {
        let wrong = format!("wbot_{}", "0".repeat(43));
        assert_eq!(
            bot.send(http.get(&commands).bearer_auth(&wrong)).await.0,
            401
        );
    }
    let guess = format!("wbot_{}", "1".repeat(43));
    let (status, headers, _) = bot.send(http.get(&commands).bearer_auth(&guess)).await;
    assert_eq!(status, 429, "guessing is locked out");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(
        bot.send(http.get(&commands).bearer_auth(&good)).await.0,
        200,
        "a known key still works"
    );
    let health = http
        .get(format!("{}/health", bot.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(health.status(), 200, "health stays open");
    let page = http
        .get(format!("{}/c/pond", bot.base))
        .send()
        .await
        .expect("answered");
    assert_ne!(page.status(), 429, "public pages stay open");
    let overlay_key = "ab".repeat(32);
    let overlay = http
        .get(format!("{}/overlay/{overlay_key}", bot.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(overlay.status(), 404, "overlay pages stay open");
    let login_token = "cd".repeat(32);
    let link = http
        .post(format!("{}/portal/login/{login_token}", bot.base))
        .form(&[("csrf", "x")])
        .send()
        .await
        .expect("answered");
    assert_eq!(link.status(), 429, "signing in is a credential attempt");
    let logs = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("text");
    assert!(logs.contains("locked_out"), "{logs}");
    for secret in [&overlay_key, &login_token, &good, &guess] {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret in the logs: {secret}\n{logs}"
        );
    }
}

#[tokio::test]
async fn the_client_address_comes_from_a_trusted_proxy_only() {
    let proxied = |trusted: bool| HttpPolicy {
        failed_auth_per_minute: 1,
        trusted_proxies: if trusted {
            vec!["127.0.0.1/32".parse().expect("network")]
        } else {
            Vec::new()
        },
        ..HttpPolicy::default()
    };
    for trusted in [true, false] {
        let bot = bot(proxied(trusted), |b| b, |s| s).await;
        let commands = format!("{}/api/v1/communities/1/commands", bot.base);
        let http = reqwest::Client::new();
        let wrong = format!("wbot_{}", "0".repeat(43));
        let from = |client: &str| {
            http.get(&commands)
                .bearer_auth(&wrong)
                .header("x-forwarded-for", format!("198.51.100.1, {client}"))
        };
        assert_eq!(bot.send(from("203.0.113.1")).await.0, 401);
        // Another client behind the same proxy is not locked out by the first.
        let other = bot.send(from("203.0.113.2")).await.0;
        assert_eq!(
            other,
            if trusted { 401 } else { 429 },
            "trusted proxy: {trusted}"
        );
    }
}

// --- 8. the AI API spends only what the operator allows ---

#[tokio::test]
async fn the_ai_api_offers_configured_models_clamps_tokens_and_keeps_a_budget() {
    let ai = Arc::new(ScriptedAi::new(["one", "two", "three", "four"]));
    let provider: Arc<dyn waddlebot::AiProvider> = Arc::clone(&ai) as _;
    let bot = bot(
        HttpPolicy::default(),
        |b| b,
        |s| {
            s.with_ai(Some(provider)).with_ai_api(AiApiPolicy {
                models: vec!["small".into()],
                max_tokens: 200,
                requests_per_minute: 2,
                tokens_per_minute: 100_000,
            })
        },
    )
    .await;
    let (viewer, _) = bot.key(Role::Viewer, Some(1)).await;
    let ask = |body: Value| {
        reqwest::Client::new()
            .post(format!("{}/api/v1/ai/chat/completions", bot.base))
            .bearer_auth(&viewer)
            .json(&body)
    };
    let hello = json!([{"role": "user", "content": "hello"}]);
    let (status, _, body) = bot
        .send(ask(
            json!({"model": "gpt-4-expensive", "max_tokens": 4096, "messages": hello}),
        ))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string().contains("small"),
        "the offered models are named: {body}"
    );
    let (status, _, body) = bot
        .send(ask(
            json!({"model": "small", "max_tokens": 4096, "messages": hello}),
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ai.requests()[0].max_tokens, Some(200), "clamped");
    let (status, _, _) = bot.send(ask(json!({"messages": hello}))).await;
    assert_eq!(status, 200);
    let (status, headers, body) = bot.send(ask(json!({"messages": hello}))).await;
    assert_eq!(status, 429, "{body}");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(
        ai.requests().len(),
        2,
        "the refused ones never reached the provider"
    );
}

// --- 10. smaller ones ---

#[tokio::test]
async fn a_command_named_with_an_underscore_can_be_changed_through_its_encoded_path() {
    let bot = plain_bot().await;
    let owner = admin::token(Role::Owner, Some(1));
    let (status, _, body) = bot
        .send(
            reqwest::Client::new()
                .post(format!("{}/api/v1/communities/1/commands", bot.base))
                .bearer_auth(&owner)
                .json(&json!({"name": "my_cmd", "response": "hi"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _, body) = bot
        .send(
            reqwest::Client::new()
                .delete(format!(
                    "{}/api/v1/communities/1/commands/my%5Fcmd",
                    bot.base
                ))
                .bearer_auth(&owner),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_store_outage_is_503_with_retry_after_and_no_internal_text() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("bot.db").display());
    let sqlite = waddlebot::store::SqliteStore::open(&url)
        .await
        .expect("store");
    let handle = sqlite.clone();
    let store: Arc<dyn Store> = Arc::new(sqlite);
    admin::seed(store.as_ref()).await;
    let (key, record) = new_api_key("collector", Role::Collector, None, None).expect("key");
    store.create_api_key(&record).await.expect("stored");
    let router = Arc::new(
        Router::builder()
            .store(Arc::clone(&store))
            .build()
            .expect("router"),
    );
    let auth = Authenticator::new(Arc::clone(&store), None).expect("auth");
    let server = loopback::serve_on_loopback(AppState::new(router, 1 << 20).with_auth(auth)).await;
    handle.close().await;
    let response = reqwest::Client::new()
        .post(format!("http://{}/router/events", server.addr))
        .bearer_auth(&key)
        .json(&chat("alice", "!ping"))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body = response.text().await.expect("body");
    assert!(
        !body.to_lowercase().contains("pool") && !body.contains("sqlite"),
        "internal text leaked: {body}"
    );
}

#[tokio::test]
async fn the_database_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("bot.db");
    let _store = waddlebot::store::SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("store");
    let mode = std::fs::metadata(&path)
        .expect("created")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

#[tokio::test]
async fn a_command_whose_write_fails_tells_the_collector_to_retry() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("bot.db").display());
    let sqlite = waddlebot::store::SqliteStore::open(&url)
        .await
        .expect("store");
    // Documents can be read but no longer written (a full disk, a read-only replica).
    sqlx::query(
        "CREATE TRIGGER no_writes BEFORE INSERT ON documents BEGIN SELECT RAISE(FAIL, 'disk I/O error'); END",
    )
    .execute(sqlite.pool())
    .await
    .expect("trigger");
    let store: Arc<dyn Store> = Arc::new(sqlite);
    admin::seed(store.as_ref()).await;
    let standard = waddlebot_modules::standard_modules();
    let router = Arc::new(
        Router::builder()
            .store(Arc::clone(&store))
            .modules(standard.commands, standard.events)
            .build()
            .expect("router"),
    );
    let server = loopback::serve_on_loopback(AppState::new(router, 1 << 20)).await;
    let post = |path: &str, body: Value| {
        reqwest::Client::new()
            .post(format!("http://{}{path}", server.addr))
            .json(&body)
            .send()
    };
    let single = post(
        "/router/events",
        moderator_chat("alice", "!quote add penguins rule"),
    )
    .await
    .expect("answered");
    assert_eq!(single.status(), 503, "the collector must retry");
    assert!(single.headers().contains_key("retry-after"));
    let body: Value = single.json().await.expect("json");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("send the event again")),
        "{body}"
    );
    let batch: Value = post(
        "/router/events/batch",
        json!({"events": [chat("alice", "!ping"), moderator_chat("bob", "!quote add penguins rule")]}),
    )
    .await
    .expect("answered")
    .json()
    .await
    .expect("json");
    assert_eq!(batch["data"]["results"][0]["status"], "success", "{batch}");
    assert_eq!(batch["data"]["results"][1]["status"], "error", "{batch}");
    assert_eq!(batch["data"]["results"][1]["retry"], true, "{batch}");
}

#[tokio::test]
async fn revoking_a_key_offers_to_revoke_the_keys_it_made() {
    let bot = plain_bot().await;
    let http = reqwest::Client::new();
    let mint = |by: String, name: &str, role: &str| {
        http.post(format!("{}/api/v1/api-keys", bot.base))
            .bearer_auth(by)
            .json(&json!({"name": name, "role": role}))
    };
    let made = |answer: (u16, reqwest::header::HeaderMap, Value)| {
        assert_eq!(answer.0, 201, "{}", answer.2);
        (
            answer.2["data"]["key"].as_str().expect("key").to_owned(),
            answer.2["data"]["id"].as_str().expect("id").to_owned(),
        )
    };
    let works = |key: String| {
        http.post(format!("{}/router/events", bot.base))
            .bearer_auth(key)
            .json(&chat("alice", "!ping"))
    };
    let revoke = |id: &str, query: &str| {
        http.delete(format!("{}/api/v1/api-keys/{id}{query}", bot.base))
            .bearer_auth(admin_token())
    };

    let (parent, parent_id) = made(bot.send(mint(admin_token(), "ops", "admin")).await);
    let (child, _) = made(bot.send(mint(parent.clone(), "feeder", "collector")).await);
    let (status, _, body) = bot.send(revoke(&parent_id, "")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        bot.send(works(child)).await.0,
        200,
        "a made key is its own credential"
    );

    let (parent, parent_id) = made(bot.send(mint(admin_token(), "ops2", "admin")).await);
    let (child, child_id) = made(bot.send(mint(parent.clone(), "feeder2", "collector")).await);
    let (grandchild, grandchild_id) = made(bot.send(mint(parent.clone(), "ops3", "admin")).await);
    let (great, great_id) = made(
        bot.send(mint(grandchild.clone(), "feeder3", "collector"))
            .await,
    );
    let (status, _, body) = bot.send(revoke(&parent_id, "?cascade=true")).await;
    assert_eq!(status, 200, "{body}");
    let mut also: Vec<String> = body["data"]["also_revoked"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    also.sort();
    let mut expected = vec![child_id, grandchild_id, great_id];
    expected.sort();
    assert_eq!(also, expected);
    for key in [child, grandchild, great] {
        assert_eq!(bot.send(works(key)).await.0, 401);
    }
}

#[tokio::test]
async fn a_late_overlay_item_the_overlay_refuses_is_the_modules_mistake() {
    let bot = plain_bot().await;
    let (status, _, outcome) = bot.event("!ping").await;
    assert_eq!(status, 200);
    let (status, _, body) = bot
        .send(
            reqwest::Client::new()
                .post(format!("{}/router/responses", bot.base))
                .bearer_auth(admin_token())
                .json(&json!({
                    "session_id": outcome["data"]["session_id"], "entity_id": outcome["data"]["entity_id"],
                    "module_name": "weather", "success": true, "response_action": "media",
                    "media_type": "image", "media_url": "javascript:alert(1)"
                })),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("http or https")),
        "{body}"
    );
}

#[tokio::test]
async fn a_body_must_be_an_object_and_whole_numbers_may_be_written_with_a_fraction() {
    let bot = plain_bot().await;
    let http = reqwest::Client::new();
    // serde reads a struct from an array: `[{}]` once turned AI off through the config route.
    let (status, _, body) = bot
        .send(
            http.put(format!("{}/api/v1/ai/config", bot.base))
                .bearer_auth(admin_token())
                .json(&json!([{}])),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["message"], "request body must be a JSON object");
    let (status, _, body) = bot
        .send(
            http.post(format!("{}/router/events", bot.base))
                .bearer_auth(admin_token())
                .json(&json!(["twitch", "pond", "pond", "1", "alice", "!ping"])),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (_, _, outcome) = bot.event("!ping").await;
    let entity = outcome["data"]["entity_id"].as_i64().expect("an entity");
    let (status, _, body) = bot
        .send(
            http.post(format!("{}/router/responses", bot.base))
                .bearer_auth(admin_token())
                .json(&json!({
                    "session_id": outcome["data"]["session_id"], "entity_id": entity as f64,
                    "module_name": "m", "success": true, "response_action": "ticker",
                    "ticker_text": "hello", "ticker_duration": 5.0
                })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_wave_of_refused_commands_writes_no_info_line_per_command() {
    let (logs, _guard) = capture("info");
    let bot = plain_bot().await;
    // `!command` needs a moderator: the router refuses every one of these.
    for _ in 0..20 {
        let (status, _, body) = bot.event("!command add spam eggs").await;
        assert_eq!(status, 200);
        assert!(
            body["data"]["replies"][0]["text"]
                .as_str()
                .is_some_and(|t| t.contains("moderator")),
            "{body}"
        );
    }
    let logs = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("text");
    assert_eq!(logs.matches("refused").count(), 0, "{logs}");
}
