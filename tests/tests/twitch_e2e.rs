//! A Twitch conversation through the real server on loopback: a signed EventSub chat message
//! comes in, the router answers, and the reply goes out through Helix (a stand-in server built
//! from Helix's documented shapes).

mod loopback;

use std::sync::Arc;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use loopback::{Loopback, bot_router, received_json, serve_on_loopback};
use serde_json::{Value, json};
use waddlebot_server::platforms::PlatformSettings;
use waddlebot_server::{AppState, Config, TWITCH_REVOCATIONS, build_router};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "s3cret-for-eventsub";

struct Bot {
    server: Loopback,
    router: Arc<waddlebot_router::Router>,
    _dir: tempfile::TempDir,
}

async fn start(helix: &MockServer) -> Bot {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = |key: &str| match key {
        "EVENTSUB_SECRET" => Some(SECRET.to_owned()),
        "TWITCH_CLIENT_ID" => Some("client-1".to_owned()),
        "TWITCH_BOT_TOKEN" => Some("bot-token".to_owned()),
        "TWITCH_API_URL" => Some(helix.uri()),
        "DATABASE_URL" => Some(format!("sqlite://{}", dir.path().join("bot.db").display())),
        _ => None,
    };
    let config = Config::load(None, env).expect("config");
    assert!(config.platforms.twitch.is_some(), "Twitch is on");
    let (platforms, webhooks) =
        waddlebot_server::platforms::build(&config.platforms, &reqwest::Client::new());
    let router = Arc::new(build_router(&config, platforms).await.expect("router"));
    let state = AppState::new(Arc::clone(&router), config.max_body_bytes).with_webhooks(webhooks);
    Bot {
        server: serve_on_loopback(state).await,
        router,
        _dir: dir,
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formatted")
}

fn sign(id: &str, timestamp: &str, body: &str, secret: &str) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("any key length");
    mac.update(id.as_bytes());
    mac.update(timestamp.as_bytes());
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn deliver(bot: &Bot, id: &str, kind: &str, body: &str, secret: &str) -> reqwest::Response {
    let stamp = now_rfc3339();
    reqwest::Client::new()
        .post(format!(
            "http://{}/webhooks/twitch/eventsub",
            bot.server.addr
        ))
        .header("Twitch-Eventsub-Message-Id", id)
        .header("Twitch-Eventsub-Message-Timestamp", &stamp)
        .header(
            "Twitch-Eventsub-Message-Signature",
            sign(id, &stamp, body, secret),
        )
        .header("Twitch-Eventsub-Message-Type", kind)
        .header("Twitch-Eventsub-Subscription-Type", "channel.chat.message")
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("answered")
}

fn chat(text: &str, message_id: &str) -> String {
    json!({
        "subscription": {
            "id": "sub-1", "status": "enabled", "type": "channel.chat.message", "version": "1",
            "condition": {"broadcaster_user_id": "1971641", "user_id": "999"},
            "transport": {"method": "webhook", "callback": "https://example.com/webhooks/callback"},
            "created_at": "2023-11-06T18:11:47.492253549Z", "cost": 0
        },
        "event": {
            "broadcaster_user_id": "1971641", "broadcaster_user_login": "streamer",
            "broadcaster_user_name": "streamer",
            "chatter_user_id": "4145994", "chatter_user_login": "viewer32",
            "chatter_user_name": "viewer32",
            "message_id": message_id,
            "message": {"text": text, "fragments": [{"type": "text", "text": text}]},
            "color": "#00FF7F", "badges": [], "message_type": "text",
            "cheer": null, "reply": null, "channel_points_custom_reward_id": null
        }
    })
    .to_string()
}

async fn mock_helix(helix: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/helix/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "999", "login": "waddlebot"}]
        })))
        .mount(helix)
        .await;
    Mock::given(method("POST"))
        .and(path("/helix/chat/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"message_id": "out-1", "is_sent": true}]
        })))
        .mount(helix)
        .await;
}

/// The chat messages Helix received, waiting up to 5 s for `count` of them.
async fn sent_messages(helix: &MockServer, count: usize) -> Vec<Value> {
    received_json(helix, "/helix/chat/messages", count, Duration::from_secs(5)).await
}

#[tokio::test]
async fn a_signed_chat_command_is_answered_through_helix() {
    let helix = MockServer::start().await;
    mock_helix(&helix).await;
    let bot = start(&helix).await;

    let response = deliver(
        &bot,
        "msg-1",
        "notification",
        &chat("!ping", "chat-1"),
        SECRET,
    )
    .await;
    assert_eq!(response.status(), 204, "acknowledged at once");
    let sent = sent_messages(&helix, 1).await;
    assert_eq!(
        sent[0],
        json!({
            "broadcaster_id": "1971641", "sender_id": "999", "message": "Pong!",
            "reply_parent_message_id": "chat-1"
        })
    );

    // A redelivery of the same message is acknowledged and not answered twice.
    let again = deliver(
        &bot,
        "msg-1",
        "notification",
        &chat("!ping", "chat-1"),
        SECRET,
    )
    .await;
    assert_eq!(again.status(), 204);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sent_messages(&helix, 1).await.len(), 1);
}

#[tokio::test]
async fn forged_deliveries_are_refused_and_change_nothing() {
    let helix = MockServer::start().await;
    mock_helix(&helix).await;
    let bot = start(&helix).await;

    let forged = deliver(
        &bot,
        "msg-9",
        "notification",
        &chat("!ping", "chat-9"),
        "wrong-secret-xx",
    )
    .await;
    assert_eq!(forged.status(), 403);
    let unsigned = reqwest::Client::new()
        .post(format!(
            "http://{}/webhooks/twitch/eventsub",
            bot.server.addr
        ))
        .body(chat("!ping", "chat-9"))
        .send()
        .await
        .expect("answered");
    assert_eq!(unsigned.status(), 403);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        helix
            .received_requests()
            .await
            .expect("recorded")
            .iter()
            .all(|r| r.url.path() != "/helix/chat/messages"),
        "nothing was answered"
    );
    let communities = bot
        .router
        .store()
        .list_communities(&waddlebot::store::Page::first(10))
        .await
        .expect("listed");
    assert!(
        communities.is_empty(),
        "no community was created by a forgery"
    );

    // The same id, properly signed, is still accepted: the forgery left no trace.
    let genuine = deliver(
        &bot,
        "msg-9",
        "notification",
        &chat("!ping", "chat-9"),
        SECRET,
    )
    .await;
    assert_eq!(genuine.status(), 204);
    assert_eq!(sent_messages(&helix, 1).await.len(), 1);
}

#[tokio::test]
async fn challenges_are_echoed_and_revocations_recorded() {
    let helix = MockServer::start().await;
    let bot = start(&helix).await;
    let challenge = json!({
        "challenge": "pogchamp-kappa-360noscope-vohiyo",
        "subscription": {"id": "sub-2", "status": "webhook_callback_verification_pending",
                         "type": "channel.follow", "version": "2",
                         "condition": {"broadcaster_user_id": "1971641"},
                         "transport": {"method": "webhook", "callback": "https://example.com/cb"},
                         "created_at": "2019-11-16T10:11:12.634234626Z"}
    })
    .to_string();
    let answer = deliver(
        &bot,
        "v-1",
        "webhook_callback_verification",
        &challenge,
        SECRET,
    )
    .await;
    assert_eq!(answer.status(), 200);
    assert!(
        answer.headers()["content-type"]
            .to_str()
            .expect("text")
            .starts_with("text/plain")
    );
    assert_eq!(
        answer.text().await.expect("body"),
        "pogchamp-kappa-360noscope-vohiyo"
    );

    let revocation = json!({
        "subscription": {"id": "sub-2", "status": "authorization_revoked", "type": "channel.follow",
                         "version": "2", "condition": {"broadcaster_user_id": "1971641"},
                         "transport": {"method": "webhook", "callback": "https://example.com/cb"},
                         "created_at": "2019-11-16T10:11:12.634234626Z"}
    })
    .to_string();
    let answer = deliver(&bot, "r-1", "revocation", &revocation, SECRET).await;
    assert_eq!(answer.status(), 204);
    let recorded = bot
        .router
        .store()
        .get_document(TWITCH_REVOCATIONS, "channel.follow")
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(recorded.value["reason"], "authorization_revoked");

    let garbage = deliver(&bot, "g-1", "notification", "{\"nope\": 1}", SECRET).await;
    assert_eq!(garbage.status(), 400, "signed but not an EventSub payload");
}

#[tokio::test]
async fn without_secrets_the_route_says_twitch_is_off() {
    let settings = PlatformSettings::from_env(|_| None).expect("no platform is fine");
    assert!(settings.twitch.is_none());
    assert!(settings.summary()[0].starts_with("twitch: off"));
    let partial =
        PlatformSettings::from_env(|key| (key == "EVENTSUB_SECRET").then(|| SECRET.to_owned()))
            .expect_err("half a configuration is refused");
    assert!(
        partial
            .to_string()
            .contains("TWITCH_CLIENT_ID, TWITCH_BOT_TOKEN"),
        "{partial}"
    );

    let off = serve_on_loopback(AppState::new(bot_router(Vec::new()), 1 << 20)).await;
    let answer = reqwest::Client::new()
        .post(format!("http://{}/webhooks/twitch/eventsub", off.addr))
        .body("{}")
        .send()
        .await
        .expect("answered");
    assert_eq!(answer.status(), 404);
    let body: Value = answer.json().await.expect("json");
    assert_eq!(body["message"], "Twitch is not configured on this server");
}
