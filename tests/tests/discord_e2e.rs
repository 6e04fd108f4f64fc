//! A Discord conversation through the real server on loopback: signed interactions in, answers
//! in the HTTP response or, for slow commands, deferred and followed up on the interaction
//! webhook of a stand-in REST server.

mod common;
mod loopback;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::{Signer, SigningKey};
use loopback::{Loopback, bot_router, bot_router_on, received_json, serve_on_loopback};
use serde_json::{Value, json};
use waddlebot_server::AppState;
use waddlebot_server::platforms::PlatformSettings;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

struct Bot {
    server: Loopback,
    key: SigningKey,
}

async fn start(rest: &MockServer) -> Bot {
    start_on(rest, bot_router).await
}

async fn start_on(
    rest: &MockServer,
    router: impl FnOnce(
        Vec<std::sync::Arc<dyn waddlebot::Platform>>,
    ) -> std::sync::Arc<waddlebot_router::Router>,
) -> Bot {
    let key = SigningKey::from_bytes(&[42; 32]);
    let public = hex::encode(key.verifying_key().to_bytes());
    let settings = PlatformSettings::from_env(|name| match name {
        "DISCORD_PUBLIC_KEY" => Some(public.clone()),
        "DISCORD_BOT_TOKEN" => Some("bot-token".to_owned()),
        "DISCORD_APPLICATION_ID" => Some("app-1".to_owned()),
        "DISCORD_API_URL" => Some(rest.uri()),
        _ => None,
    })
    .expect("settings");
    let (platforms, webhooks) =
        waddlebot_server::platforms::build(&settings, &reqwest::Client::new());
    let server =
        serve_on_loopback(AppState::new(router(platforms), 1 << 20).with_webhooks(webhooks)).await;
    Bot { server, key }
}

async fn interact(bot: &Bot, body: &Value, key: &SigningKey) -> reqwest::Response {
    let body = body.to_string();
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("now")
        .as_secs()
        .to_string();
    let signature = key.sign(format!("{stamp}{body}").as_bytes());
    reqwest::Client::new()
        .post(format!(
            "http://{}/webhooks/discord/interactions",
            bot.server.addr
        ))
        .header("X-Signature-Ed25519", hex::encode(signature.to_bytes()))
        .header("X-Signature-Timestamp", stamp)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .expect("answered")
}

fn slash(name: &str, kind: u64) -> Value {
    json!({
        "id": "1100", "application_id": "app-1", "type": kind,
        "data": {"id": "1", "name": name, "type": 1,
                 "options": [{"type": 3, "name": "command", "value": "pi", "focused": true}]},
        "guild_id": "G1", "channel_id": "C1",
        "member": {"user": {"id": "U1", "username": "mason"}, "permissions": "0"},
        "token": "TOKEN-1", "version": 1
    })
}

#[tokio::test]
async fn pings_commands_and_autocomplete_are_answered_in_the_response() {
    let rest = MockServer::start().await;
    let bot = start(&rest).await;

    let pong = interact(&bot, &json!({"type": 1}), &bot.key).await;
    assert_eq!(pong.status(), 200);
    assert_eq!(
        pong.json::<Value>().await.expect("json"),
        json!({"type": 1})
    );

    let stranger = SigningKey::from_bytes(&[7; 32]);
    let forged = interact(&bot, &json!({"type": 1}), &stranger).await;
    assert_eq!(
        forged.status(),
        401,
        "Discord requires 401 for a bad signature"
    );

    let mut ping = slash("ping", 2);
    ping["data"]["options"] = json!([]);
    let answer = interact(&bot, &ping, &bot.key).await;
    assert_eq!(
        answer.json::<Value>().await.expect("json"),
        json!({"type": 4, "data": {"content": "Pong!"}})
    );

    let choices = interact(&bot, &slash("waddlebot", 4), &bot.key).await;
    let choices: Value = choices.json().await.expect("json");
    assert_eq!(choices["type"], 8);
    let names: Vec<&str> = choices["data"]["choices"]
        .as_array()
        .expect("choices")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(names.contains(&"ping"), "{names:?}");
    assert!(names.iter().all(|name| name.starts_with("pi")), "{names:?}");
}

#[tokio::test]
async fn a_slow_command_is_deferred_then_followed_up() {
    let rest = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path("/webhooks/app-1/TOKEN-1/messages/@original"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "M1"})))
        .mount(&rest)
        .await;
    let bot = start(&rest).await;
    let mut command = slash("slow", 2);
    command["data"]["options"] = json!([]);
    let answer = interact(&bot, &command, &bot.key).await;
    assert_eq!(
        answer.json::<Value>().await.expect("json"),
        json!({"type": 5})
    );
    let edits = received_json(
        &rest,
        "/webhooks/app-1/TOKEN-1/messages/@original",
        1,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        edits.first(),
        Some(&json!({"content": "Finally done."})),
        "the deferred answer came"
    );
}

#[tokio::test]
async fn without_settings_discord_is_off() {
    let settings = PlatformSettings::from_env(|_| None).expect("nothing configured");
    assert!(settings.discord.is_none());
    let bad_key = PlatformSettings::from_env(|name| match name {
        "DISCORD_PUBLIC_KEY" => Some("xyz".to_owned()),
        "DISCORD_BOT_TOKEN" | "DISCORD_APPLICATION_ID" => Some("x".to_owned()),
        _ => None,
    });
    assert!(
        bad_key
            .expect_err("refused")
            .to_string()
            .contains("DISCORD_PUBLIC_KEY")
    );
    let (_, webhooks) = waddlebot_server::platforms::build(&settings, &reqwest::Client::new());
    let off =
        serve_on_loopback(AppState::new(bot_router(Vec::new()), 1 << 20).with_webhooks(webhooks))
            .await;
    let answer = reqwest::Client::new()
        .post(format!("http://{}/webhooks/discord/interactions", off.addr))
        .body("{}")
        .send()
        .await
        .expect("answered");
    assert_eq!(answer.status(), 404);
}

/// Messages over the gateway: a `!ping` typed in a guild channel is answered through REST as
/// a reply to it.
#[tokio::test]
async fn a_prefix_command_over_the_gateway_is_answered_in_the_channel() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let rest = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/channels/C1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "out-1"})))
        .mount(&rest)
        .await;
    let gateway = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bound");
    let url = format!("ws://{}", gateway.local_addr().expect("address"));
    let key = SigningKey::from_bytes(&[42; 32]);
    let public = hex::encode(key.verifying_key().to_bytes());
    let settings = PlatformSettings::from_env(|name| match name {
        "DISCORD_PUBLIC_KEY" => Some(public.clone()),
        "DISCORD_BOT_TOKEN" => Some("bot-token".to_owned()),
        "DISCORD_APPLICATION_ID" => Some("app-1".to_owned()),
        "DISCORD_API_URL" => Some(rest.uri()),
        "DISCORD_GATEWAY" => Some("true".to_owned()),
        "DISCORD_GATEWAY_URL" => Some(url.clone()),
        _ => None,
    })
    .expect("settings");
    assert!(settings.summary()[2].contains("messages over the gateway"));
    let (platforms, webhooks) =
        waddlebot_server::platforms::build(&settings, &reqwest::Client::new());
    let _bot =
        serve_on_loopback(AppState::new(bot_router(platforms), 1 << 20).with_webhooks(webhooks))
            .await;

    let (tcp, _) = tokio::time::timeout(Duration::from_secs(10), gateway.accept())
        .await
        .expect("the bot connects")
        .expect("accepted");
    let mut ws = tokio_tungstenite::accept_async(tcp)
        .await
        .expect("handshake");
    let send = |payload: Value| Message::text(payload.to_string());
    ws.send(send(json!({"op": 10, "d": {"heartbeat_interval": 45000}})))
        .await
        .expect("sent");
    loop {
        let frame = ws.next().await.expect("open").expect("frame");
        if let Message::Text(text) = frame {
            let payload: Value = serde_json::from_str(&text).expect("json");
            if payload["op"] == 2 {
                break;
            }
        }
    }
    for payload in [
        json!({"op": 0, "s": 1, "t": "READY", "d": {"session_id": "s", "resume_gateway_url": url,
                                                    "user": {"id": "BOT", "username": "bot"}}}),
        json!({"op": 0, "s": 2, "t": "MESSAGE_CREATE", "d": {
            "id": "M1", "channel_id": "C1", "guild_id": "G1", "content": "!ping",
            "author": {"id": "U1", "username": "alice"}, "member": {"roles": []}}}),
    ] {
        ws.send(send(payload)).await.expect("sent");
    }

    let sent = received_json(&rest, "/channels/C1/messages", 1, Duration::from_secs(10)).await;
    let body = sent.first().expect("a reply reached Discord").clone();
    assert_eq!(
        body,
        json!({"content": "Pong!", "message_reference": {"message_id": "M1", "fail_if_not_exists": false}})
    );
}

/// The database goes away: the user still gets an answer in Discord's window, an apology only
/// they see, not a failed interaction.
#[tokio::test]
async fn when_the_store_fails_the_user_gets_an_apology() {
    let Some((store, scratch)) = common::fresh_pg().await else {
        eprintln!("skipped: WADDLEBOT_TEST_POSTGRES_URL is not set");
        return;
    };
    let rest = MockServer::start().await;
    let store: std::sync::Arc<dyn waddlebot::Store> = std::sync::Arc::new(store);
    let bot = start_on(&rest, |platforms| bot_router_on(store, platforms)).await;
    scratch.pull_the_plug().await;

    let mut ping = slash("ping", 2);
    ping["data"]["options"] = json!([]);
    let answer = interact(&bot, &ping, &bot.key).await;
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.expect("json");
    assert_eq!(body["type"], 4);
    assert_eq!(body["data"]["flags"], 64, "only the user sees it");
    assert!(
        body["data"]["content"]
            .as_str()
            .is_some_and(|text| text.starts_with("Sorry")),
        "{body}"
    );
}
