//! The Slack adapter: signing-secret verification (Slack's worked example and every failure),
//! Events API, slash command and interactivity payloads of the documented shapes, and the Web
//! API through a stand-in server.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use waddlebot::platforms::WebhookError;
use waddlebot::platforms::slack::{
    SlackConfig, SlackEvents, SlackPlatform, SlackVerifier, SlashCommand, interaction_event,
};
use waddlebot::{EventId, EventKind, Outbound, Platform, PlatformError, PlatformKind, Reply};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const EXAMPLE_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
const EXAMPLE_TIME: &str = "1531420618";
const EXAMPLE_SIGNATURE: &str =
    "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn headers(timestamp: &str, signature: &str) -> HashMap<String, String> {
    [
        ("X-Slack-Request-Timestamp", timestamp),
        ("X-Slack-Signature", signature),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn sign(timestamp: &str, body: &str) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes())
        .expect("any key length");
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

#[test]
fn the_worked_example_verifies_and_every_failure_is_refused() {
    let verifier = SlackVerifier::new(SECRET);
    let now = at(1_531_420_618);
    let good = headers(EXAMPLE_TIME, EXAMPLE_SIGNATURE);
    assert_eq!(
        verifier.verify_at(&good, EXAMPLE_BODY.as_bytes(), now),
        Ok(())
    );

    let tampered = EXAMPLE_BODY.replace("roadrunner", "coyote");
    assert_eq!(
        verifier.verify_at(&good, tampered.as_bytes(), now),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        SlackVerifier::new("another-secret").verify_at(&good, EXAMPLE_BODY.as_bytes(), now),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        verifier.verify_at(
            &headers(EXAMPLE_TIME, "v1=abc"),
            EXAMPLE_BODY.as_bytes(),
            now
        ),
        Err(WebhookError::BadSignature)
    );
    // The signature is right, but the request is six minutes old (or ahead).
    for offset in [-360_i64, 360] {
        let later = at(1_531_420_618_u64.saturating_add_signed(offset));
        assert_eq!(
            verifier.verify_at(&good, EXAMPLE_BODY.as_bytes(), later),
            Err(WebhookError::Stale)
        );
    }
    assert!(
        verifier
            .verify_at(&good, EXAMPLE_BODY.as_bytes(), at(1_531_420_618 + 299))
            .is_ok()
    );
    for missing in ["X-Slack-Request-Timestamp", "X-Slack-Signature"] {
        let mut partial = good.clone();
        partial.remove(missing);
        assert!(matches!(
            verifier.verify_at(&partial, EXAMPLE_BODY.as_bytes(), now),
            Err(WebhookError::MissingHeader(_))
        ));
    }

    let command = SlashCommand::from_form(EXAMPLE_BODY.as_bytes()).expect("a slash command");
    assert_eq!(command.command, "/webhook-collect");
    let event = command.to_event();
    assert_eq!(
        event.kind,
        EventKind::SlashCommand {
            name: "webhook-collect".to_owned()
        }
    );
    assert_eq!(
        (event.server_id.as_str(), event.channel_id.as_str()),
        ("T1DC2JH3J", "G8PSS9T3V")
    );
    assert_eq!(
        (event.user.id.as_str(), event.user.name.as_str()),
        ("U2CERLKJA", "roadrunner")
    );
    assert!(
        event.metadata["response_url"]
            .as_str()
            .expect("kept")
            .starts_with("https://hooks.slack.com/commands/")
    );
}

fn callback(event_id: &str, event: Value) -> String {
    json!({
        "token": "XXYYZZ", "team_id": "T123ABC456", "api_app_id": "A123ABC456",
        "event": event, "type": "event_callback", "event_id": event_id, "event_time": 1_515_449_522
    })
    .to_string()
}

fn events(verifier: &SlackVerifier, body: &str) -> Result<Vec<waddlebot::Event>, WebhookError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        .to_string();
    match verifier.events(&headers(&now, &sign(&now, body)), body.as_bytes())? {
        SlackEvents::Callback { events } => Ok(events),
        other => panic!("{other:?}"),
    }
}

#[test]
fn events_api_payloads_become_events_and_retries_are_dropped() {
    let verifier = SlackVerifier::new(SECRET);
    let message = json!({
        "type": "message", "channel": "C123ABC456", "user": "U123ABC456",
        "text": "!hello there", "ts": "1355517523.000005", "event_ts": "1355517523.000005",
        "channel_type": "channel"
    });
    let got = events(&verifier, &callback("Ev1", message.clone())).expect("verified");
    assert_eq!(got[0].kind, EventKind::ChatMessage);
    assert_eq!(got[0].text, "!hello there");
    assert_eq!(got[0].id, EventId("1355517523.000005".to_owned()));
    assert_eq!(
        (got[0].server_id.as_str(), got[0].channel_id.as_str()),
        ("T123ABC456", "C123ABC456")
    );

    assert_eq!(
        events(&verifier, &callback("Ev1", message)),
        Err(WebhookError::Replayed("Ev1".to_owned())),
        "Slack's retry of the same event is dropped"
    );

    let threaded = json!({
        "type": "message", "channel": "C1", "user": "U1", "text": "!ping",
        "ts": "1355517524.000001", "thread_ts": "1355517523.000005"
    });
    let got = events(&verifier, &callback("Ev2", threaded)).expect("verified");
    assert_eq!(got[0].id, EventId("thread:1355517523.000005".to_owned()));

    let mention = json!({
        "type": "app_mention", "user": "U061F7AUR", "text": "<@U0LAN0Z89> !ping",
        "ts": "1515449522.000016", "channel": "C123ABC456", "event_ts": "1515449522000016"
    });
    let got = events(&verifier, &callback("Ev3", mention)).expect("verified");
    assert_eq!(got[0].text, "!ping", "the mention is stripped");

    for (id, ignored) in [
        (
            "Ev4",
            json!({"type": "message", "subtype": "bot_message", "bot_id": "B1", "text": "beep", "channel": "C1", "ts": "1.2"}),
        ),
        (
            "Ev5",
            json!({"type": "message", "subtype": "message_changed", "channel": "C1", "ts": "1.3"}),
        ),
        (
            "Ev6",
            json!({"type": "message", "user": "U1", "bot_id": "B2", "text": "hi", "channel": "C1", "ts": "1.4"}),
        ),
        ("Ev7", json!({"type": "team_join", "user": {"id": "U1"}})),
    ] {
        assert!(
            events(&verifier, &callback(id, ignored))
                .expect("verified")
                .is_empty(),
            "{id}"
        );
    }

    let joined = json!({"type": "member_joined_channel", "user": "W06GH7XHN", "channel": "C0698JE0H", "channel_type": "C", "team": "T024BE7LD"});
    assert_eq!(
        events(&verifier, &callback("Ev8", joined)).expect("verified")[0].kind,
        EventKind::MemberJoin
    );
    let reaction = json!({
        "type": "reaction_added", "user": "U123ABC456", "reaction": "thumbsup",
        "item_user": "U222222222", "item": {"type": "message", "channel": "C123ABC456", "ts": "1360782400.498405"},
        "event_ts": "1360782804.083113"
    });
    let got = events(&verifier, &callback("Ev9", reaction)).expect("verified");
    assert_eq!(
        got[0].kind,
        EventKind::Custom {
            name: "reaction".to_owned()
        }
    );
    assert_eq!(got[0].text, "thumbsup");

    let challenge = json!({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}).to_string();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("now")
        .as_secs()
        .to_string();
    assert_eq!(
        verifier.events(
            &headers(&now, &sign(&now, &challenge)),
            challenge.as_bytes()
        ),
        Ok(SlackEvents::UrlVerification {
            challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P".to_owned()
        })
    );
    let forged = callback(
        "Ev10",
        json!({"type": "message", "user": "U1", "text": "!ping", "channel": "C1", "ts": "1.5"}),
    );
    assert_eq!(
        verifier.events(&headers(&now, "v0=00"), forged.as_bytes()),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        events(&verifier, &forged)
            .expect("a forgery left no trace")
            .len(),
        1
    );
}

#[test]
fn block_actions_become_component_interactions() {
    let payload = json!({
        "type": "block_actions",
        "team": {"id": "T9TK3CUKW", "domain": "example"},
        "user": {"id": "UA8RXUSPL", "username": "jtorrance", "team_id": "T9TK3CUKW"},
        "api_app_id": "AABA1ABCD",
        "channel": {"id": "CBR2V3XEX", "name": "review-updates"},
        "response_url": "https://hooks.slack.com/actions/AABA1ABCD/1232321423432/D09sSasdasdAS9091209",
        "actions": [{"action_id": "quotes:vote:42", "block_id": "b1", "value": "up", "type": "button", "action_ts": "1548426417.840180"}]
    });
    let body = format!("payload={}", urlencode(&payload.to_string()));
    let event = interaction_event(body.as_bytes())
        .expect("parsed")
        .expect("an event");
    assert_eq!(
        event.kind,
        EventKind::ComponentInteraction {
            custom_id: "quotes:vote:42".to_owned(),
            values: vec!["up".to_owned()]
        }
    );
    assert_eq!(event.channel_id, "CBR2V3XEX");
    assert_eq!(event.user.name, "jtorrance");
    assert!(interaction_event(b"payload=%7Bnot").is_err());
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn outbound(reply: Reply, in_reply_to: Option<&str>) -> Outbound {
    Outbound {
        platform: PlatformKind::Slack,
        server_id: "T1".to_owned(),
        channel_id: "C1".to_owned(),
        user_id: "U1".to_owned(),
        in_reply_to: in_reply_to.map(|id| EventId(id.to_owned())),
        reply,
    }
}

fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"ok": true, "channel": "C1", "ts": "1.1"}))
}

#[tokio::test]
async fn the_web_api_gets_messages_threads_ephemerals_and_dms() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .and(header("Authorization", "Bearer xoxb-test"))
        .and(body_json(
            json!({"channel": "C1", "text": "Pong!", "thread_ts": "1355517523.000005"}),
        ))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .and(body_json(json!({"channel": "C1", "text": "top level"})))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .and(body_json(json!({"channel": "U1", "text": "just you"})))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/chat.postEphemeral"))
        .and(body_json(
            json!({"channel": "C1", "user": "U1", "text": "only you"}),
        ))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    let slack = SlackPlatform::new(
        SlackConfig {
            bot_token: "xoxb-test".to_owned(),
            api_url: server.uri(),
        },
        reqwest::Client::new(),
    );
    slack
        .send(outbound(
            Reply::text("Pong!"),
            Some("thread:1355517523.000005"),
        ))
        .await
        .expect("in the thread");
    slack
        .send(outbound(
            Reply::text("top level"),
            Some("1355517523.000005"),
        ))
        .await
        .expect("in the channel");
    slack
        .send(outbound(Reply::whisper("just you"), None))
        .await
        .expect("a DM");
    slack
        .send(outbound(Reply::ephemeral("only you"), None))
        .await
        .expect("ephemeral");
}

#[tokio::test]
async fn slack_errors_and_rate_limits_are_reported() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .and(body_json(json!({"channel": "C1", "text": "nope"})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"ok": false, "error": "not_in_channel"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .and(body_json(json!({"channel": "C1", "text": "busy"})))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "30"))
        .mount(&server)
        .await;
    let slack = SlackPlatform::new(
        SlackConfig {
            bot_token: "xoxb-test".to_owned(),
            api_url: server.uri(),
        },
        reqwest::Client::new(),
    );
    match slack.send(outbound(Reply::text("nope"), None)).await {
        Err(PlatformError::Rejected(why)) => assert!(why.contains("not_in_channel"), "{why}"),
        other => panic!("{other:?}"),
    }
    match slack.send(outbound(Reply::text("busy"), None)).await {
        Err(PlatformError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Duration::from_secs(30))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn posts_are_paced_one_per_second_per_channel() {
    use waddlebot::platforms::slack::{CHANNEL_QUOTA, SlackConfig, SlackPlatform};
    let slack = SlackPlatform::new(
        SlackConfig {
            bot_token: "xoxb-test".to_owned(),
            api_url: "http://127.0.0.1:9".to_owned(),
        },
        reqwest::Client::new(),
    );
    let pacing = |reply| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(slack.pacing(&outbound(reply, None)))
    };
    let post = pacing(Reply::text("hi"));
    assert_eq!(post.lane, "post:C1");
    assert_eq!(post.lane_quotas, [CHANNEL_QUOTA]);
    assert_eq!(pacing(Reply::whisper("psst")).lane, "post:U1");
    assert!(
        pacing(Reply::ephemeral("only you")).lane_quotas.is_empty(),
        "ephemeral messages are not chat.postMessage"
    );
}
