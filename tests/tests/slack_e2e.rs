//! A Slack conversation through the real server on loopback: signed Events API messages, slash
//! commands (answered at once, or later through `response_url` when slow) and interactivity,
//! with the Web API played by a stand-in server.

mod loopback;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use loopback::{Loopback, bot_router, received_json, serve_on_loopback};
use serde_json::{Value, json};
use waddlebot_server::AppState;
use waddlebot_server::platforms::PlatformSettings;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "slack-signing-secret";

async fn start(slack: &MockServer) -> Loopback {
    let settings = PlatformSettings::from_env(|key| match key {
        "SLACK_SIGNING_SECRET" => Some(SECRET.to_owned()),
        "SLACK_BOT_TOKEN" => Some("xoxb-1".to_owned()),
        "SLACK_API_URL" => Some(slack.uri()),
        _ => None,
    })
    .expect("settings");
    let (platforms, webhooks) =
        waddlebot_server::platforms::build(&settings, &reqwest::Client::new());
    serve_on_loopback(AppState::new(bot_router(platforms), 1 << 20).with_webhooks(webhooks)).await
}

fn signed(bot: &Loopback, route: &str, body: String, secret: &str) -> reqwest::RequestBuilder {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("now")
        .as_secs()
        .to_string();
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("any key length");
    mac.update(format!("v0:{stamp}:{body}").as_bytes());
    reqwest::Client::new()
        .post(format!("http://{}/webhooks/slack/{route}", bot.addr))
        .header("X-Slack-Request-Timestamp", stamp)
        .header(
            "X-Slack-Signature",
            format!("v0={}", hex::encode(mac.finalize().into_bytes())),
        )
        .body(body)
}

fn message_event(event_id: &str, text: &str) -> String {
    json!({
        "token": "x", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
        "event_id": event_id, "event_time": 1,
        "event": {"type": "message", "channel": "C1", "user": "U1", "text": text,
                  "ts": "1700000000.000100", "channel_type": "channel"}
    })
    .to_string()
}

async fn mock_web_api(slack: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "ts": "1.1"})))
        .mount(slack)
        .await;
    Mock::given(method("POST"))
        .and(path("/response"))
        .respond_with(ResponseTemplate::new(200))
        .mount(slack)
        .await;
}

#[tokio::test]
async fn a_chat_command_is_answered_in_the_channel_once() {
    let slack = MockServer::start().await;
    mock_web_api(&slack).await;
    let bot = start(&slack).await;

    let answer = signed(&bot, "events", message_event("Ev1", "!ping"), SECRET)
        .send()
        .await
        .expect("answered");
    assert_eq!(answer.status(), 200);
    let posted = received_json(&slack, "/chat.postMessage", 1, Duration::from_secs(5)).await;
    assert_eq!(posted, [json!({"channel": "C1", "text": "Pong!"})]);

    let retry = signed(&bot, "events", message_event("Ev1", "!ping"), SECRET)
        .header("X-Slack-Retry-Num", "1")
        .header("X-Slack-Retry-Reason", "http_timeout")
        .send()
        .await
        .expect("answered");
    assert_eq!(retry.status(), 200, "a retry is acknowledged");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        received_json(&slack, "/chat.postMessage", 2, Duration::ZERO)
            .await
            .len(),
        1,
        "and not answered twice"
    );

    let forged = signed(
        &bot,
        "events",
        message_event("Ev2", "!ping"),
        "not-the-secret",
    )
    .send()
    .await
    .expect("answered");
    assert_eq!(forged.status(), 403);

    let challenge =
        json!({"token": "t", "challenge": "abc123", "type": "url_verification"}).to_string();
    let answer = signed(&bot, "events", challenge, SECRET)
        .send()
        .await
        .expect("answered");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.expect("body"), "abc123");
}

fn slash(command: &str, text: &str, response_url: &str) -> String {
    format!(
        "token=x&team_id=T1&team_domain=pond&channel_id=C1&channel_name=general&user_id=U1&user_name=alice&command={}&text={}&response_url={}&trigger_id=1.2.3",
        command.replace('/', "%2F"),
        text.replace(' ', "+"),
        response_url.replace(':', "%3A").replace('/', "%2F"),
    )
}

#[tokio::test]
async fn slash_commands_answer_at_once_or_through_the_response_url() {
    let slack = MockServer::start().await;
    mock_web_api(&slack).await;
    let bot = start(&slack).await;
    let response_url = format!("{}/response", slack.uri());

    let answer = signed(
        &bot,
        "commands",
        slash("/waddlebot", "ping", &response_url),
        SECRET,
    )
    .header("Content-Type", "application/x-www-form-urlencoded")
    .send()
    .await
    .expect("answered");
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.json::<Value>().await.expect("json"),
        json!({"response_type": "in_channel", "text": "Pong!"})
    );

    let answer = signed(
        &bot,
        "commands",
        slash("/waddlebot", "slow", &response_url),
        SECRET,
    )
    .send()
    .await
    .expect("answered");
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.text().await.expect("body"),
        "",
        "acknowledged before the command finished"
    );
    assert!(
        received_json(&slack, "/response", 1, Duration::ZERO)
            .await
            .is_empty(),
        "the answer comes later"
    );
    let later = received_json(&slack, "/response", 1, Duration::from_secs(10)).await;
    assert_eq!(
        later,
        [json!({"response_type": "in_channel", "text": "Finally done."})]
    );
}

#[tokio::test]
async fn button_clicks_reach_the_module_named_in_the_action_id_and_slack_can_be_off() {
    let slack = MockServer::start().await;
    mock_web_api(&slack).await;
    let bot = start(&slack).await;
    let payload = json!({
        "type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U1", "username": "alice"},
        "channel": {"id": "C1"}, "actions": [{"action_id": "nobody:click:1", "value": "v"}]
    })
    .to_string();
    let body = format!(
        "payload={}",
        payload
            .bytes()
            .map(|b| format!("%{b:02X}"))
            .collect::<String>()
    );
    let answer = signed(&bot, "interactivity", body, SECRET)
        .send()
        .await
        .expect("answered");
    assert_eq!(
        answer.status(),
        200,
        "acknowledged even when no module takes it"
    );

    let settings = PlatformSettings::from_env(|_| None).expect("nothing configured");
    assert!(settings.slack.is_none());
    let (_, webhooks) = waddlebot_server::platforms::build(&settings, &reqwest::Client::new());
    let off =
        serve_on_loopback(AppState::new(bot_router(Vec::new()), 1 << 20).with_webhooks(webhooks))
            .await;
    for route in ["events", "commands", "interactivity"] {
        let answer = reqwest::Client::new()
            .post(format!("http://{}/webhooks/slack/{route}", off.addr))
            .body("{}")
            .send()
            .await
            .expect("answered");
        assert_eq!(answer.status(), 404, "{route}");
    }
}

/// Records when each request arrived.
#[derive(Clone, Default)]
struct Arrivals(std::sync::Arc<std::sync::Mutex<Vec<tokio::time::Instant>>>);

impl wiremock::Respond for Arrivals {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        self.0
            .lock()
            .expect("not poisoned")
            .push(tokio::time::Instant::now());
        ResponseTemplate::new(200).set_body_json(json!({"ok": true, "ts": "1.1"}))
    }
}

#[tokio::test]
async fn replies_to_one_channel_go_out_about_one_per_second() {
    let slack = MockServer::start().await;
    let arrivals = Arrivals::default();
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .respond_with(arrivals.clone())
        .mount(&slack)
        .await;
    let bot = start(&slack).await;

    for id in ["Ev10", "Ev11", "Ev12"] {
        let answer = signed(&bot, "events", message_event(id, "!ping"), SECRET)
            .send()
            .await
            .expect("answered");
        assert_eq!(answer.status(), 200, "acknowledged at once");
    }
    let posted = received_json(&slack, "/chat.postMessage", 3, Duration::from_secs(10)).await;
    assert_eq!(posted.len(), 3, "every reply is delivered, none dropped");
    let times = arrivals.0.lock().expect("not poisoned").clone();
    for pair in times.windows(2) {
        // One per second per channel, less the request's own transit.
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(800),
            "replies were paced: {:?}",
            pair[1] - pair[0]
        );
    }
}
