//! The HTTP application in-process (`hyper::service::Service::call`, no socket): the router API's
//! event JSON, batches and late module answers, the admin API's bodies, and the portal's cookies and forms.
//!
//! Every application runs with authentication off (as `serve --dev` does) and the admin rate
//! limits off, so each input reaches its parser; the standard modules are loaded so fuzzed chat
//! reaches the commands. No answer may be a 5xx: a `MemoryStore` never fails, so a 5xx here is a
//! bug (or a panic turned into one).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::service::Service;
use serde_json::Value;
use waddlebot::store::{EntityKey, MemoryStore};
use waddlebot::{CommunityId, PlatformKind, Store};
use waddlebot_router::Router;
use waddlebot_server::auth::Role;
use waddlebot_server::wire::{InboundBatch, InboundEvent, LateResponse};
use waddlebot_server::{App, AppState, HttpPolicy, app};

use crate::kit::{
    Entropy, HTTP_ITERATIONS, Target, head_and_body, mutate_body, mutate_form, mutate_json, runtime,
};

/// The bot: the standard modules over a memory store holding community 1 `pond` (owning the
/// Twitch channel `pond`) and community 2 `lake`.
struct Bot {
    app: App,
    store: Arc<dyn Store>,
    rt: tokio::runtime::Runtime,
}

impl Bot {
    fn new() -> Self {
        let rt = runtime();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let router = rt.block_on(async {
            store
                .create_community("pond", SystemTime::now())
                .await
                .expect("pond");
            store
                .create_community("lake", SystemTime::now())
                .await
                .expect("lake");
            let pond = EntityKey {
                platform: PlatformKind::Twitch,
                server_id: "pond".to_owned(),
                channel_id: "pond".to_owned(),
            };
            store
                .assign_entity(&pond, CommunityId(1))
                .await
                .expect("assigned");
            let standard = waddlebot_modules::standard_modules();
            Router::builder()
                .store(Arc::clone(&store))
                .modules(standard.commands, standard.events)
                .build()
                .expect("router")
        });
        let policy = HttpPolicy {
            admin_rate_per_minute: 0,
            failed_auth_per_minute: 0,
            ..HttpPolicy::default()
        };
        // Built inside the runtime: the state starts tasks of its own.
        let app =
            rt.block_on(async { app(AppState::new(Arc::new(router), 1 << 20).with_http(policy)) });
        Self { app, store, rt }
    }

    /// One request; `None` when the fuzzed method or path is not a valid request line at all
    /// (hyper would have refused it before the application).
    fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(header::HeaderName, &str)],
        body: &[u8],
    ) -> Option<(StatusCode, HeaderMap, Bytes)> {
        let mut request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).ok()?)
            .uri(path);
        for (name, value) in headers {
            request = request.header(name, http::HeaderValue::from_str(value).ok()?);
        }
        let request = request.body(Full::new(Bytes::copy_from_slice(body))).ok()?;
        self.rt.block_on(async {
            let response = self.app.call(request).await.expect("infallible");
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await.expect("infallible").to_bytes();
            Some((parts.status, parts.headers, bytes))
        })
    }
}

/// The router API and the admin API answer JSON in the `{"status": ...}` envelope, never a 5xx.
fn assert_api_answer(
    route: &str,
    body: &[u8],
    (status, _, answer): &(StatusCode, HeaderMap, Bytes),
) {
    assert!(
        !status.is_server_error(),
        "{route} answered {status} to {:?}: {}",
        String::from_utf8_lossy(body),
        String::from_utf8_lossy(answer)
    );
    let json: Value = serde_json::from_slice(answer)
        .unwrap_or_else(|err| panic!("{route} answered {status} without JSON ({err}): {answer:?}"));
    assert!(
        json.get("status").is_some() || json.get("error").is_some(),
        "{route}: {json}"
    );
}

const EVENT_WORDS: &[&str] = &[
    "platform",
    "server_id",
    "channel_id",
    "user_id",
    "username",
    "display_name",
    "message",
    "message_type",
    "metadata",
    "event_id",
    "entity_id",
    "command",
    "timestamp",
    "events",
    "twitch",
    "discord",
    "slack",
    "console",
    "pond",
    "chatMessage",
    "slashCommand",
    "interaction",
    "button_click",
    "select_menu",
    "modal_submit",
    "follow",
    "subscription",
    "resub",
    "gift_subscription",
    "subgift",
    "raid",
    "cheer",
    "donation",
    "boost",
    "member_join",
    "stream_online",
    "ban",
    "kick",
    "timeout",
    "warn",
    "reaction",
    "tier",
    "months",
    "cumulative_months",
    "amount",
    "viewers",
    "bits",
    "is_anonymous",
    "is_broadcaster",
    "is_moderator",
    "target_user_id",
    "duration",
    "reason",
    "badges",
    "custom_id",
    "values",
    // Chat commands and the words of their arguments (`prefix` and `module disable` are left
    // out: one of them would turn the community's commands off for every later input).
    "!ping",
    "!help",
    "!quote",
    "!remind",
    "!inventory",
    "!label",
    "!rep",
    "!command",
    "!alias",
    "!role",
    "!community",
    "!identity",
    "!verify",
    "!so",
    "!vso",
    "!ai",
    "!event",
    "!memories",
    " add ",
    " remove ",
    " edit ",
    " show ",
    " list",
    " cancel ",
    " set ",
    " top ",
    " global ",
    " checkout ",
    " checkin ",
    " search ",
    " status ",
    " history ",
    " grant ",
    " revoke ",
    " link ",
    " unlink ",
    " members ",
    " in ",
    " for ",
    " daily",
    " weekly",
    "5m",
    "2h",
    "1d",
    "3w",
    "0m",
    "99999999999w",
    "18446744073709551616",
    "-1",
    "qty:",
    "qty:999999999999",
    "qty:-3",
    "@",
    "\"",
    "{user}",
    "{random 1-9}",
    "é",
    "🦆",
];

#[test]
fn router_events() {
    let target = Target::new("router_events");
    let bot = AssertUnwindSafe(Bot::new());
    bolero::check!(name = target.name())
        .with_iterations(HTTP_ITERATIONS)
        .for_each(|input: &[u8]| {
            target.run(input, mutate_json(EVENT_WORDS), |body| {
                // The wire types alone, as a collector's JSON becomes an event.
                if let Ok(event) = serde_json::from_slice::<InboundEvent>(body) {
                    let _ = event.into_event();
                }
                if let Some(answer) = bot.call("POST", "/router/events", &[], body) {
                    assert_api_answer("/router/events", body, &answer);
                }
            });
        });
}

#[test]
fn router_batches() {
    let target = Target::new("router_batches");
    let bot = AssertUnwindSafe(Bot::new());
    bolero::check!(name = target.name())
        .with_iterations(HTTP_ITERATIONS / 2)
        .for_each(|input: &[u8]| {
            target.run(input, mutate_json(EVENT_WORDS), |body| {
                if let Ok(batch) = serde_json::from_slice::<InboundBatch>(body) {
                    for event in batch.events {
                        let _ = event.into_event();
                    }
                }
                if let Some(answer) = bot.call("POST", "/router/events/batch", &[], body) {
                    assert_api_answer("/router/events/batch", body, &answer);
                }
            });
        });
}

const RESPONSE_WORDS: &[&str] = &[
    "session_id",
    "entity_id",
    "module_name",
    "success",
    "response_action",
    "chat_message",
    "response_data",
    "media_type",
    "media_url",
    "ticker_text",
    "ticker_duration",
    "content",
    "duration",
    "error_message",
    "chat",
    "media",
    "ticker",
    "general",
    "form",
    "message",
    "image",
    "video",
    "audio",
    "https://example.com/a.gif",
    "javascript:alert(1)",
    "sess_fuzz",
];

/// A module's late answer (`POST /router/responses`) to a live session: the seeds name the
/// session `sess_fuzz`, which is replaced by one the bot really opened for a `!ping`.
#[test]
fn router_responses() {
    let target = Target::new("router_responses");
    let bot = AssertUnwindSafe(Bot::new());
    let ping = br#"{"platform":"twitch","server_id":"pond","channel_id":"pond","user_id":"1","username":"alice","message":"!ping"}"#;
    let (status, _, answer) = bot
        .call("POST", "/router/events", &[], ping)
        .expect("a request");
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_slice(&answer).expect("json");
    let session = answer["data"]["session_id"]
        .as_str()
        .expect("a session")
        .to_owned();
    bolero::check!(name = target.name())
        .with_iterations(HTTP_ITERATIONS)
        .for_each(|input: &[u8]| {
            target.run(input, mutate_json(RESPONSE_WORDS), |body| {
                let body = String::from_utf8_lossy(body).replace("sess_fuzz", &session);
                if let Ok(response) = serde_json::from_str::<LateResponse>(&body) {
                    let _ = response.reply();
                }
                let Some(answer) = bot.call("POST", "/router/responses", &[], body.as_bytes())
                else {
                    return;
                };
                assert_api_answer("/router/responses", body.as_bytes(), &answer);
            });
        });
}

/// The admin routes that take a body; a seed's first line picks one (`PUT /api/v1/...`), and
/// random input that names none gets one chosen by its bytes.
const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/communities/1/commands"),
    ("PUT", "/api/v1/communities/1/commands/hello"),
    ("POST", "/api/v1/communities/1/aliases"),
    ("POST", "/api/v1/communities/1/rules"),
    ("POST", "/api/v1/communities/1/remote-modules"),
    ("PATCH", "/api/v1/communities/1/modules/quotes"),
    ("PATCH", "/api/v1/communities/1/modules/reminders"),
    ("PATCH", "/api/v1/communities/1/modules/ai"),
    ("POST", "/api/v1/communities/1/api-keys"),
    ("POST", "/api/v1/api-keys"),
    ("PUT", "/api/v1/ai/config"),
    ("POST", "/api/v1/communities"),
    ("PUT", "/api/v1/communities/1/entities"),
    ("PUT", "/api/v1/communities/1/grants/twitch/alice"),
    ("POST", "/api/v1/communities/1/overlay/rotate"),
];

const ADMIN_WORDS: &[&str] = &[
    "name",
    "response",
    "target",
    "pattern",
    "match_type",
    "regex",
    "contains",
    "exact",
    "word",
    "case_sensitive",
    "priority",
    "action",
    "block",
    "warn",
    "timeout",
    "timeout_secs",
    "message",
    "enabled",
    "url",
    "timeout_ms",
    "kind",
    "http",
    "config",
    "role",
    "owner",
    "viewer",
    "admin",
    "collector",
    "expires_in_secs",
    "community_id",
    "settings",
    "AI_PROVIDER",
    "ollama",
    "openai",
    "OLLAMA_HOST",
    "AI_MODEL",
    "platform",
    "server_id",
    "channel_id",
    "level",
    "moderator",
    "broadcaster",
    "grace_secs",
    "!hello",
    "hello",
    "{user}",
    "{random 1-9}",
    "(a+)+$",
    "[",
    "http://127.0.0.1:9/",
    "timezone",
    "Europe/Berlin",
    "Mars/Olympus",
];

#[test]
fn admin_api() {
    let target = Target::new("admin_api");
    let bot = AssertUnwindSafe(Bot::new());
    bolero::check!(name = target.name())
        .with_iterations(HTTP_ITERATIONS)
        .for_each(|input: &[u8]| {
            let mutate = mutate_body(ADMIN_WORDS, mutate_json(ADMIN_WORDS));
            target.run(input, mutate, |bytes| {
                let (line, body) = head_and_body(bytes);
                let (method, path) = match line.split_once(' ') {
                    Some((method, path)) if path.starts_with("/api/v1/") => (method, path),
                    _ => *Entropy::new(bytes).pick(ADMIN_ROUTES),
                };
                let json = [(header::CONTENT_TYPE, "application/json")];
                if let Some(answer) = bot.call(method, path, &json, body) {
                    assert_api_answer(path, body, &answer);
                }
            });
        });
}

/// The sign-in form's CSRF token, also sent as the `wb_login` cookie (64 hex digits).
const LOGIN_CSRF: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

const PORTAL_WORDS: &[&str] = &[
    "wb_login",
    "wb_portal",
    "csrf",
    "key",
    "action",
    "name",
    "response",
    "target",
    "add",
    "update",
    "delete",
    "enable",
    "disable",
    "config",
    "grant",
    "revoke",
    "rotate",
    "platform",
    "user",
    "level",
    "grace_secs",
    "twitch",
    "moderator",
    "quotes",
    "=",
    ";",
    "; ",
    "\"",
    "%",
    "wbk_",
    "Bearer ",
    "{\"timezone\":\"UTC\"}",
    "{user}",
    LOGIN_CSRF,
];

/// A cookie value from `Set-Cookie` headers.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
}

#[test]
fn portal_login() {
    let target = Target::new("portal_login");
    let bot = AssertUnwindSafe(Bot::new());
    bolero::check!(name = target.name())
        .with_iterations(HTTP_ITERATIONS)
        .for_each(|input: &[u8]| {
            let mutate = mutate_body(PORTAL_WORDS, mutate_form(PORTAL_WORDS));
            target.run(input, mutate, |bytes| {
                // `<Cookie header>\n<form body>`
                let (cookie, form) = head_and_body(bytes);
                let headers = [
                    (header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
                    (header::COOKIE, cookie.as_str()),
                ];
                let Some((status, headers, page)) =
                    bot.call("POST", "/portal/login", &headers, form)
                else {
                    return;
                };
                assert!(
                    !status.is_server_error(),
                    "{status}: {}",
                    String::from_utf8_lossy(&page)
                );
                // No key exists, so nothing typed into the form signs anyone in.
                let session = set_cookie(&headers, "wb_portal").unwrap_or_default();
                assert!(
                    session.is_empty(),
                    "signed in by {:?}",
                    String::from_utf8_lossy(bytes)
                );
            });
        });
}

/// Signs in through a one-time link as community 1's owner; the session cookie and the
/// session's CSRF token.
fn sign_in(bot: &Bot) -> (String, String) {
    let token = bot.rt.block_on(async {
        waddlebot_server::create_login_link(
            bot.store.as_ref(),
            CommunityId(1),
            "fuzzer",
            Role::Owner,
        )
        .await
        .expect("a link")
    });
    let cookie = format!("wb_login={LOGIN_CSRF}");
    let form_type = (header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    let (status, headers, _) = bot
        .call(
            "POST",
            &format!("/portal/login/{token}"),
            &[form_type.clone(), (header::COOKIE, &cookie)],
            format!("csrf={LOGIN_CSRF}").as_bytes(),
        )
        .expect("a request");
    assert!(status.is_redirection(), "signed in: {status}");
    let session = set_cookie(&headers, "wb_portal").expect("a session cookie");
    let cookie = format!("wb_portal={session}");
    let (status, _, page) = bot
        .call(
            "GET",
            "/portal/1/commands",
            &[(header::COOKIE, &cookie)],
            b"",
        )
        .expect("a request");
    assert_eq!(status, 200);
    let page = String::from_utf8_lossy(&page);
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page's CSRF token")
        .to_owned();
    (cookie, csrf)
}

#[test]
fn portal_forms() {
    let target = Target::new("portal_forms");
    let bot = AssertUnwindSafe(Bot::new());
    let (cookie, csrf) = sign_in(&bot);
    bolero::check!(name = target.name())
        .with_iterations(HTTP_ITERATIONS)
        .for_each(|input: &[u8]| {
            let mutate = mutate_body(PORTAL_WORDS, mutate_form(PORTAL_WORDS));
            target.run(input, mutate, |bytes| {
                // `<portal path>\n<form body>`, sent with the session's CSRF token first (later
                // `csrf` fields are ignored), so the fuzzed form reaches the action behind it.
                // Signing out would end the session the other inputs need.
                let (path, form) = head_and_body(bytes);
                let path = if path.starts_with("/portal/") && !path.contains("logout") {
                    path
                } else {
                    "/portal/1/commands".to_owned()
                };
                let mut body = format!("csrf={csrf}&").into_bytes();
                body.extend_from_slice(form);
                let headers = [
                    (header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
                    (header::COOKIE, cookie.as_str()),
                ];
                let Some((status, _, page)) = bot.call("POST", &path, &headers, &body) else {
                    return;
                };
                assert!(
                    !status.is_server_error(),
                    "{path} answered {status} to {:?}: {}",
                    String::from_utf8_lossy(form),
                    String::from_utf8_lossy(&page)
                );
            });
        });
}
