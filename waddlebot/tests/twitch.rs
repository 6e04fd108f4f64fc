//! The Twitch adapter: EventSub verification against the published vector and every failure
//! case, the mapping of each subscription type (payloads in the documented shapes), and Helix
//! through a stand-in server.
#![cfg(feature = "twitch")]

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use waddlebot::platforms::WebhookError;
use waddlebot::platforms::twitch::{
    EventSubMessage, EventSubVerifier, TwitchConfig, TwitchPlatform, events_from_notification,
};
use waddlebot::{
    EventId, EventKind, Gift, ModerationAction, Outbound, PermissionLevel, Platform, PlatformError,
    PlatformKind, Reply, SubscriptionTier,
};
use wiremock::matchers::{
    body_json, body_partial_json, body_string_contains, header, method, path, query_param,
};
use wiremock::{Mock, MockServer, ResponseTemplate};

const VECTOR_BODY: &str = r#"{"subscription":{"id":"ae2ff348-e102-16be-a3eb-6830c1bf38d2","status":"enabled","type":"channel.follow","version":"1","condition":{"broadcaster_user_id":"44429626"},"transport":{"method":"webhook","callback":"null"},"created_at":"2021-02-19T23:47:00.7621315Z"},"event":{"user_id":"28408015","user_login":"testFromUser","user_name":"testFromUser","broadcaster_user_id":"44429626","broadcaster_user_login":"44429626","broadcaster_user_name":"testBroadcaster"}}"#;
const VECTOR_ID: &str = "ae2ff348-e102-16be-a3eb-6830c1bf38d2";
const VECTOR_TIME: &str = "2021-02-19T23:47:00.8091512Z";
const VECTOR_SIGNATURE: &str =
    "sha256=d10f5bd9474b7ac7bd7105eb79c2d52768b4d0cd2a135982c3bf5a1d59a78823";
const SECRET: &str = "secretabcd";

/// 2021-02-19T23:47:00Z, when the vector was made.
fn vector_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_613_778_420)
}

fn headers(id: &str, timestamp: &str, signature: &str, kind: &str) -> HashMap<String, String> {
    [
        ("Twitch-Eventsub-Message-Id", id),
        ("Twitch-Eventsub-Message-Timestamp", timestamp),
        ("Twitch-Eventsub-Message-Signature", signature),
        ("Twitch-Eventsub-Message-Type", kind),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn sign(secret: &str, id: &str, timestamp: &str, body: &str) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("any key length");
    mac.update(id.as_bytes());
    mac.update(timestamp.as_bytes());
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[test]
fn the_published_vector_verifies_and_maps_to_a_follow() {
    let verifier = EventSubVerifier::new(SECRET).expect("valid secret");
    let message = verifier
        .verify_at(
            &headers(VECTOR_ID, VECTOR_TIME, VECTOR_SIGNATURE, "notification"),
            VECTOR_BODY.as_bytes(),
            vector_now(),
        )
        .expect("verified");
    let EventSubMessage::Notification {
        subscription_type,
        events,
    } = message
    else {
        panic!("a notification");
    };
    assert_eq!(subscription_type, "channel.follow");
    let follow = &events[0];
    assert_eq!(follow.kind, EventKind::Follow);
    assert_eq!(
        (follow.user.id.as_str(), follow.user.name.as_str()),
        ("28408015", "testFromUser")
    );
    assert_eq!(follow.server_id, "44429626");
    assert_eq!(follow.platform, PlatformKind::Twitch);
}

#[test]
fn every_failure_is_refused_without_a_trace() {
    let verifier = EventSubVerifier::new(SECRET).expect("valid secret");
    let check = |headers: HashMap<String, String>, body: &str| {
        verifier.verify_at(&headers, body.as_bytes(), vector_now())
    };
    let good = || headers(VECTOR_ID, VECTOR_TIME, VECTOR_SIGNATURE, "notification");

    let tampered = VECTOR_BODY.replace("testFromUser", "testFromUsex");
    assert_eq!(check(good(), &tampered), Err(WebhookError::BadSignature));

    let wrong_secret = sign("secretabce", VECTOR_ID, VECTOR_TIME, VECTOR_BODY);
    assert_eq!(
        check(
            headers(VECTOR_ID, VECTOR_TIME, &wrong_secret, "notification"),
            VECTOR_BODY
        ),
        Err(WebhookError::BadSignature)
    );

    let uppercase = VECTOR_SIGNATURE.replace("sha256=", "SHA256=");
    assert_eq!(
        check(
            headers(VECTOR_ID, VECTOR_TIME, &uppercase, "notification"),
            VECTOR_BODY
        ),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        check(
            headers(VECTOR_ID, VECTOR_TIME, "sha256=zz", "notification"),
            VECTOR_BODY
        ),
        Err(WebhookError::BadSignature)
    );

    for missing in [
        "Twitch-Eventsub-Message-Id",
        "Twitch-Eventsub-Message-Timestamp",
        "Twitch-Eventsub-Message-Signature",
    ] {
        let mut partial = good();
        partial.remove(missing);
        assert!(
            matches!(
                check(partial, VECTOR_BODY),
                Err(WebhookError::MissingHeader(_))
            ),
            "{missing}"
        );
    }

    // Correctly signed but eleven minutes old (or ahead).
    for offset in [-660_i64, 660] {
        let when = time::OffsetDateTime::from(vector_now()) + time::Duration::seconds(offset);
        let stamp = when
            .format(&time::format_description::well_known::Rfc3339)
            .expect("formatted");
        let signature = sign(SECRET, "stale-id", &stamp, VECTOR_BODY);
        assert_eq!(
            check(
                headers("stale-id", &stamp, &signature, "notification"),
                VECTOR_BODY
            ),
            Err(WebhookError::Stale)
        );
    }

    // None of those left a trace: the genuine delivery still goes through once, then is a replay.
    assert!(check(good(), VECTOR_BODY).is_ok());
    assert_eq!(
        check(good(), VECTOR_BODY),
        Err(WebhookError::Replayed(VECTOR_ID.to_owned()))
    );
}

#[test]
fn verification_and_revocation_messages_are_recognised() {
    let verifier = EventSubVerifier::new(SECRET).expect("valid secret");
    let stamp = VECTOR_TIME;
    let challenge = r#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"id":"f1c2a387","status":"webhook_callback_verification_pending","type":"channel.follow","version":"2","condition":{"broadcaster_user_id":"12826","moderator_user_id":"12826"},"transport":{"method":"webhook","callback":"https://example.com/webhooks/callback"},"created_at":"2019-11-16T10:11:12.634234626Z","cost":1}}"#;
    let signature = sign(SECRET, "v-1", stamp, challenge);
    assert_eq!(
        verifier.verify_at(
            &headers("v-1", stamp, &signature, "webhook_callback_verification"),
            challenge.as_bytes(),
            vector_now()
        ),
        Ok(EventSubMessage::Verification {
            challenge: "pogchamp-kappa-360noscope-vohiyo".to_owned()
        })
    );
    let revoked = r#"{"subscription":{"id":"f1c2a387","status":"authorization_revoked","type":"channel.follow","version":"2","condition":{"broadcaster_user_id":"12826"},"transport":{"method":"webhook","callback":"https://example.com/webhooks/callback"},"created_at":"2019-11-16T10:11:12.634234626Z","cost":1}}"#;
    let signature = sign(SECRET, "r-1", stamp, revoked);
    assert_eq!(
        verifier.verify_at(
            &headers("r-1", stamp, &signature, "revocation"),
            revoked.as_bytes(),
            vector_now()
        ),
        Ok(EventSubMessage::Revocation {
            subscription_type: "channel.follow".to_owned(),
            reason: "authorization_revoked".to_owned()
        })
    );
    let garbage = "{not json";
    let signature = sign(SECRET, "g-1", stamp, garbage);
    assert!(matches!(
        verifier.verify_at(
            &headers("g-1", stamp, &signature, "notification"),
            garbage.as_bytes(),
            vector_now()
        ),
        Err(WebhookError::Malformed(_))
    ));
}

#[test]
fn short_or_long_secrets_are_refused() {
    assert!(EventSubVerifier::new("short").is_err());
    assert!(EventSubVerifier::new("x".repeat(101)).is_err());
    assert!(EventSubVerifier::new("x".repeat(10)).is_ok());
}

fn broadcaster() -> Value {
    json!({
        "broadcaster_user_id": "1337",
        "broadcaster_user_login": "cool_user",
        "broadcaster_user_name": "Cool_User"
    })
}

fn with_broadcaster(fields: Value) -> Value {
    let mut event = broadcaster();
    for (key, value) in fields.as_object().expect("object") {
        event[key] = value.clone();
    }
    event
}

fn one(kind: &str, event: Value) -> waddlebot::Event {
    let mut events = events_from_notification(kind, &event, "msg-1").expect("mapped");
    assert_eq!(events.len(), 1, "{kind}");
    events.remove(0)
}

#[test]
fn chat_messages_carry_text_badges_level_and_their_message_id() {
    let chat = one(
        "channel.chat.message",
        with_broadcaster(json!({
            "chatter_user_id": "4145994",
            "chatter_user_login": "viptest",
            "chatter_user_name": "VIPTest",
            "message_id": "cc106a89-1814-919d-454c-f4f2f970aae7",
            "message": {"text": "!hello there", "fragments": [{"type": "text", "text": "!hello there"}]},
            "color": "#00FF7F",
            "badges": [
                {"set_id": "vip", "id": "1", "info": ""},
                {"set_id": "subscriber", "id": "12", "info": "16"}
            ],
            "message_type": "text",
            "cheer": null,
            "reply": null,
            "channel_points_custom_reward_id": null
        })),
    );
    assert_eq!(chat.kind, EventKind::ChatMessage);
    assert_eq!(chat.text, "!hello there");
    assert_eq!(
        chat.id,
        EventId("cc106a89-1814-919d-454c-f4f2f970aae7".to_owned())
    );
    assert_eq!(chat.user.level, PermissionLevel::Vip);
    assert_eq!(chat.user.shown_name(), "VIPTest");
    assert_eq!(chat.user.badges.len(), 2);
    assert_eq!(chat.metadata["channel_name"], "cool_user");
    assert_eq!(
        (chat.server_id.as_str(), chat.channel_id.as_str()),
        ("1337", "1337")
    );

    let levels = [
        ("broadcaster", PermissionLevel::Broadcaster),
        ("moderator", PermissionLevel::Moderator),
        ("subscriber", PermissionLevel::Subscriber),
        ("premium", PermissionLevel::Everyone),
    ];
    for (badge, level) in levels {
        let chat = one(
            "channel.chat.message",
            with_broadcaster(json!({
                "chatter_user_id": "1", "chatter_user_login": "a", "chatter_user_name": "a",
                "message_id": "m", "message": {"text": "hi"},
                "badges": [{"set_id": badge, "id": "1", "info": ""}]
            })),
        );
        assert_eq!(chat.user.level, level, "{badge}");
    }
}

#[test]
fn every_mapped_subscription_type_becomes_its_event() {
    let user = json!({"user_id": "1234", "user_login": "cool_user", "user_name": "Cool_User"});
    let merged = |extra: Value| {
        let mut event = with_broadcaster(user.clone());
        for (key, value) in extra.as_object().expect("object") {
            event[key] = value.clone();
        }
        event
    };

    let follow = one(
        "channel.follow",
        merged(json!({"followed_at": "2020-07-15T18:16:11.17106713Z"})),
    );
    assert_eq!(follow.kind, EventKind::Follow);
    assert_eq!(follow.id, EventId("eventsub-msg-1".to_owned()));

    let sub = one(
        "channel.subscribe",
        merged(json!({"tier": "2000", "is_gift": false})),
    );
    assert_eq!(
        sub.kind,
        EventKind::Subscription {
            tier: SubscriptionTier::Tier2,
            months: 1,
            gift: None
        }
    );
    assert!(
        events_from_notification(
            "channel.subscribe",
            &merged(json!({"tier": "1000", "is_gift": true})),
            "m"
        )
        .expect("mapped")
        .is_empty(),
        "a gifted sub is counted once, on the gifter's event"
    );

    let resub = one(
        "channel.subscription.message",
        merged(json!({
            "tier": "3000", "message": {"text": "Love the stream! FevziGG", "emotes": []},
            "cumulative_months": 15, "streak_months": 1, "duration_months": 6
        })),
    );
    assert_eq!(
        resub.kind,
        EventKind::Subscription {
            tier: SubscriptionTier::Tier3,
            months: 15,
            gift: None
        }
    );
    assert_eq!(resub.text, "Love the stream! FevziGG");

    let gift = one(
        "channel.subscription.gift",
        merged(json!({"total": 2, "tier": "1000", "cumulative_total": 284, "is_anonymous": false})),
    );
    assert_eq!(
        gift.kind,
        EventKind::Subscription {
            tier: SubscriptionTier::Tier1,
            months: 1,
            gift: Some(Gift {
                count: 2,
                anonymous: false
            })
        }
    );
    let anonymous_gift = one(
        "channel.subscription.gift",
        with_broadcaster(json!({
            "user_id": null, "user_login": null, "user_name": null,
            "total": 5, "tier": "1000", "cumulative_total": null, "is_anonymous": true
        })),
    );
    assert_eq!(anonymous_gift.user.name, "anonymous");

    let cheer = one(
        "channel.cheer",
        merged(json!({"is_anonymous": false, "message": "pogchamp", "bits": 1000})),
    );
    assert_eq!(cheer.kind, EventKind::Cheer { bits: 1000 });
    assert_eq!(cheer.text, "pogchamp");

    let raid = one(
        "channel.raid",
        json!({
            "from_broadcaster_user_id": "1234", "from_broadcaster_user_login": "cool_user",
            "from_broadcaster_user_name": "Cool_User",
            "to_broadcaster_user_id": "1337", "to_broadcaster_user_login": "cooler_user",
            "to_broadcaster_user_name": "Cooler_User", "viewers": 9001
        }),
    );
    assert_eq!(raid.kind, EventKind::Raid { viewers: 9001 });
    assert_eq!(
        raid.server_id, "1337",
        "the raided channel is where it happens"
    );
    assert_eq!(raid.user.name, "cool_user");

    let online = one(
        "stream.online",
        with_broadcaster(
            json!({"id": "9001", "type": "live", "started_at": "2020-10-11T10:11:12.123Z"}),
        ),
    );
    assert_eq!(online.kind, EventKind::StreamOnline);
    let offline = one("stream.offline", broadcaster());
    assert_eq!(offline.kind, EventKind::StreamOffline);

    let ban = merged(json!({
        "moderator_user_id": "1339", "moderator_user_login": "mod_user", "moderator_user_name": "Mod_User",
        "reason": "Offensive language", "banned_at": "2020-07-15T18:15:11.17106713Z",
        "ends_at": "2020-07-15T18:16:11.17106713Z", "is_permanent": false
    }));
    let timeout = one("channel.ban", ban.clone());
    assert_eq!(
        timeout.kind,
        EventKind::Moderation(ModerationAction::Timeout {
            user_id: "1234".to_owned(),
            seconds: 60,
            reason: Some("Offensive language".to_owned())
        })
    );
    assert_eq!(timeout.user.name, "mod_user", "the moderator acted");
    let mut permanent = ban;
    permanent["is_permanent"] = json!(true);
    permanent["ends_at"] = Value::Null;
    assert!(matches!(
        one("channel.ban", permanent).kind,
        EventKind::Moderation(ModerationAction::Ban { .. })
    ));

    assert!(
        events_from_notification("channel.update", &broadcaster(), "m")
            .expect("known shape")
            .is_empty(),
        "unmapped types are acknowledged, not errors"
    );
    assert!(events_from_notification("channel.follow", &json!({}), "m").is_err());
}

fn platform(server: &MockServer) -> TwitchPlatform {
    TwitchPlatform::new(
        TwitchConfig {
            api_url: server.uri(),
            ..TwitchConfig::new("client-123", "oauth:token-abc")
        },
        reqwest::Client::new(),
    )
}

async fn mock_bot_user(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/helix/users"))
        .and(header("Authorization", "Bearer token-abc"))
        .and(header("Client-Id", "client-123"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "999", "login": "waddlebot", "display_name": "WaddleBot"}]
        })))
        .expect(1)
        .mount(server)
        .await;
}

fn outbound(reply: Reply, in_reply_to: Option<&str>) -> Outbound {
    Outbound {
        platform: PlatformKind::Twitch,
        server_id: "1337".to_owned(),
        channel_id: "1337".to_owned(),
        user_id: "1234".to_owned(),
        in_reply_to: in_reply_to.map(|id| EventId(id.to_owned())),
        reply,
    }
}

#[tokio::test]
async fn a_whisper_to_a_login_looks_the_user_up_first() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/helix/users"))
        .and(query_param("login", "pingu"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "4321", "login": "pingu", "display_name": "Pingu"}]
        })))
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    mock_bot_user(&server).await;
    Mock::given(method("POST"))
        .and(path("/helix/whispers"))
        .and(query_param("from_user_id", "999"))
        .and(query_param("to_user_id", "4321"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let twitch = platform(&server);
    let mut to_login = outbound(Reply::whisper("your code"), None);
    to_login.user_id = "pingu".to_owned();
    twitch.send(to_login).await.expect("whispered");
    let mut nobody = outbound(Reply::whisper("your code"), None);
    nobody.user_id = "nobody_here".to_owned();
    Mock::given(method("GET"))
        .and(path("/helix/users"))
        .and(query_param("login", "nobody_here"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .with_priority(1)
        .mount(&server)
        .await;
    let refused = twitch.send(nobody).await.expect_err("no such user");
    assert!(
        refused
            .to_string()
            .contains("no Twitch user is called nobody_here"),
        "{refused}"
    );
}

#[tokio::test]
async fn helix_gets_chat_replies_whispers_and_moderation() {
    let server = MockServer::start().await;
    mock_bot_user(&server).await;
    Mock::given(method("POST"))
        .and(path("/helix/chat/messages"))
        .and(body_json(json!({
            "broadcaster_id": "1337", "sender_id": "999", "message": "Hi there!",
            "reply_parent_message_id": "abc-123"
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"message_id": "m1", "is_sent": true}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/helix/whispers"))
        .and(query_param("from_user_id", "999"))
        .and(query_param("to_user_id", "1234"))
        .and(body_json(json!({"message": "psst"})))
        .respond_with(ResponseTemplate::new(204))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/helix/moderation/bans"))
        .and(query_param("broadcaster_id", "1337"))
        .and(query_param("moderator_id", "999"))
        .and(body_json(
            json!({"data": {"user_id": "1234", "duration": 600, "reason": "spam"}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/helix/moderation/chat"))
        .and(query_param("message_id", "abc-123"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;

    let twitch = platform(&server);
    twitch
        .send(outbound(Reply::text("Hi there!"), Some("abc-123")))
        .await
        .expect("sent");
    twitch
        .send(outbound(Reply::whisper("psst"), None))
        .await
        .expect("whispered");
    twitch
        .send(outbound(Reply::ephemeral("psst"), None))
        .await
        .expect("ephemeral falls back to a whisper");
    twitch
        .send(outbound(
            Reply::Moderate(ModerationAction::Timeout {
                user_id: "1234".to_owned(),
                seconds: 600,
                reason: Some("spam".to_owned()),
            }),
            None,
        ))
        .await
        .expect("timed out");
    twitch
        .send(outbound(
            Reply::Moderate(ModerationAction::DeleteMessage {
                message_id: "abc-123".to_owned(),
            }),
            None,
        ))
        .await
        .expect("deleted");
    assert!(matches!(
        twitch
            .send(outbound(
                Reply::Moderate(ModerationAction::Kick {
                    user_id: "1".to_owned(),
                    reason: None
                }),
                None
            ))
            .await,
        Err(PlatformError::Unsupported(_))
    ));
}

#[tokio::test]
async fn long_replies_are_split_and_non_chat_events_get_no_reply_parent() {
    let server = MockServer::start().await;
    mock_bot_user(&server).await;
    Mock::given(method("POST"))
        .and(path("/helix/chat/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"message_id": "m", "is_sent": true}]
        })))
        .expect(2)
        .mount(&server)
        .await;
    let long = "word ".repeat(150);
    platform(&server)
        .send(outbound(Reply::text(long.trim()), Some("eventsub-123")))
        .await
        .expect("sent in two parts");
    let requests = server.received_requests().await.expect("recorded");
    let messages: Vec<Value> = requests
        .iter()
        .filter(|r| r.url.path() == "/helix/chat/messages")
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .collect();
    assert_eq!(messages.len(), 2);
    for message in &messages {
        assert!(message["message"].as_str().expect("text").chars().count() <= 500);
        assert!(message.get("reply_parent_message_id").is_none());
    }
}

#[tokio::test]
async fn rate_limits_and_dropped_messages_are_reported() {
    let server = MockServer::start().await;
    mock_bot_user(&server).await;
    Mock::given(method("POST"))
        .and(path("/helix/chat/messages"))
        .and(body_json(
            json!({"broadcaster_id": "1337", "sender_id": "999", "message": "slow"}),
        ))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "3")
                .set_body_json(json!({"error": "Too Many Requests", "status": 429})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/helix/chat/messages"))
        .and(body_json(json!({"broadcaster_id": "1337", "sender_id": "999", "message": "blocked"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"message_id": "", "is_sent": false,
                      "drop_reason": {"code": "msg_duplicate", "message": "Your message is identical to the previous one"}}]
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/helix/whispers"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"message": "Missing scope: user:manage:whispers"})),
        )
        .mount(&server)
        .await;

    let twitch = platform(&server);
    match twitch.send(outbound(Reply::text("slow"), None)).await {
        Err(PlatformError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Duration::from_secs(3));
        }
        other => panic!("{other:?}"),
    }
    match twitch.send(outbound(Reply::text("blocked"), None)).await {
        Err(PlatformError::Rejected(why)) => assert!(why.contains("identical"), "{why}"),
        other => panic!("{other:?}"),
    }
    match twitch.send(outbound(Reply::whisper("x"), None)).await {
        Err(PlatformError::Rejected(why)) => assert!(why.contains("user:manage:whispers"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn chat_is_paced_faster_where_the_bot_moderates_or_owns_the_channel() {
    use waddlebot::platforms::twitch::{CHAT_QUOTA, DUPLICATE_WINDOW, ELEVATED_CHAT_QUOTA};
    let server = MockServer::start().await;
    mock_bot_user(&server).await;
    // Two pages of moderated channels, fetched once and then trusted.
    Mock::given(method("GET"))
        .and(path("/helix/moderation/channels"))
        .and(query_param("user_id", "999"))
        .and(query_param("after", "page2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"broadcaster_id": "4242", "broadcaster_login": "other"}],
            "pagination": {}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/helix/moderation/channels"))
        .and(query_param("user_id", "999"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"broadcaster_id": "1337", "broadcaster_login": "streamer"}],
            "pagination": {"cursor": "page2"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let twitch = platform(&server);

    let moderated = twitch.pacing(&outbound(Reply::text("hi"), None)).await;
    assert_eq!(moderated.lane, "chat:1337");
    assert_eq!(moderated.lane_quotas, [ELEVATED_CHAT_QUOTA]);
    assert_eq!(moderated.distinct_within, Some(DUPLICATE_WINDOW));

    let mut elsewhere = outbound(Reply::text("hi"), None);
    elsewhere.server_id = "5555".to_owned();
    assert_eq!(twitch.pacing(&elsewhere).await.lane_quotas, [CHAT_QUOTA]);
    elsewhere.server_id = "4242".to_owned();
    assert_eq!(
        twitch.pacing(&elsewhere).await.lane_quotas,
        [ELEVATED_CHAT_QUOTA],
        "the second page counts"
    );
    elsewhere.server_id = "999".to_owned();
    assert_eq!(
        twitch.pacing(&elsewhere).await.lane_quotas,
        [ELEVATED_CHAT_QUOTA],
        "the bot's own channel"
    );

    let whisper = twitch.pacing(&outbound(Reply::whisper("psst"), None)).await;
    assert_eq!(whisper.lane, "whispers");
    assert_eq!(
        whisper.lane_quotas.len(),
        2,
        "3 per second and 100 per minute"
    );
    let ban = twitch
        .pacing(&outbound(
            Reply::Moderate(ModerationAction::Ban {
                user_id: "1".to_owned(),
                reason: None,
            }),
            None,
        ))
        .await;
    assert_eq!(ban.lane, "moderation:1337");
    assert!(
        ban.lane_quotas.is_empty(),
        "moderation never queues behind chat"
    );
}

#[tokio::test]
async fn without_the_moderated_channels_scope_chat_is_paced_as_an_ordinary_chatter() {
    use waddlebot::platforms::twitch::CHAT_QUOTA;
    let server = MockServer::start().await;
    mock_bot_user(&server).await;
    Mock::given(method("GET"))
        .and(path("/helix/moderation/channels"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": "Unauthorized", "status": 401, "message": "Missing scope: user:read:moderated_channels"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let twitch = platform(&server);
    for _ in 0..3 {
        let pacing = twitch.pacing(&outbound(Reply::text("hi"), None)).await;
        assert_eq!(pacing.lane_quotas, [CHAT_QUOTA]);
    }
}

#[tokio::test]
async fn an_expired_bot_token_is_refreshed_once_and_the_message_sent() {
    let helix = MockServer::start().await;
    let oauth = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=refresh-1"))
        .and(body_string_contains("client_secret=shh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "fresh-token", "refresh_token": "refresh-2",
            "scope": ["user:write:chat"], "token_type": "bearer"
        })))
        .expect(1)
        .mount(&oauth)
        .await;
    Mock::given(method("GET"))
        .and(path("/helix/users"))
        .and(header("Authorization", "Bearer stale-token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": "Unauthorized", "status": 401, "message": "Invalid OAuth token"
        })))
        .expect(1)
        .mount(&helix)
        .await;
    Mock::given(method("GET"))
        .and(path("/helix/users"))
        .and(header("Authorization", "Bearer fresh-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "999"}]})))
        .expect(1)
        .mount(&helix)
        .await;
    Mock::given(method("POST"))
        .and(path("/helix/chat/messages"))
        .and(header("Authorization", "Bearer fresh-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"message_id": "m", "is_sent": true}]
        })))
        .expect(1)
        .mount(&helix)
        .await;
    let twitch = TwitchPlatform::new(
        TwitchConfig {
            api_url: helix.uri(),
            auth_url: oauth.uri(),
            client_secret: Some("shh".to_owned()),
            refresh_token: Some("refresh-1".to_owned()),
            ..TwitchConfig::new("client-123", "stale-token")
        },
        reqwest::Client::new(),
    );
    twitch
        .send(outbound(Reply::text("hello"), None))
        .await
        .expect("sent with the refreshed token");
}

#[tokio::test]
async fn without_a_refresh_token_a_401_is_reported() {
    let helix = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/helix/users"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Invalid OAuth token"})),
        )
        .mount(&helix)
        .await;
    let twitch = platform(&helix);
    match twitch.send(outbound(Reply::text("hello"), None)).await {
        Err(PlatformError::Rejected(why)) => assert!(why.contains("401"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn embeds_become_announcements_or_chat_where_the_bot_may_not_announce() {
    let server = MockServer::start().await;
    mock_bot_user(&server).await;
    Mock::given(method("POST"))
        .and(path("/helix/chat/announcements"))
        .and(query_param("broadcaster_id", "1337"))
        .and(query_param("moderator_id", "999"))
        .and(body_json(
            json!({"message": "Stream starts soon — at 8", "color": "purple"}),
        ))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/helix/chat/announcements"))
        .and(query_param("broadcaster_id", "4242"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "error": "Forbidden", "status": 403, "message": "user is not a moderator"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/helix/chat/messages"))
        .and(body_partial_json(json!({"broadcaster_id": "4242"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"message_id": "m", "is_sent": true}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let twitch = platform(&server);
    let embed = waddlebot::Embed {
        title: "Stream starts soon".to_owned(),
        description: "at 8".to_owned(),
        color: Some(0x9146ff),
        ..waddlebot::Embed::default()
    };
    twitch
        .send(outbound(Reply::Embed(embed.clone()), None))
        .await
        .expect("announced");
    let mut elsewhere = outbound(Reply::Embed(embed), None);
    elsewhere.server_id = "4242".to_owned();
    twitch.send(elsewhere).await.expect("sent as chat instead");
}

fn subscription(
    id: &str,
    kind: &str,
    version: &str,
    status: &str,
    condition: Value,
    callback: &str,
) -> Value {
    json!({
        "id": id, "status": status, "type": kind, "version": version, "condition": condition,
        "created_at": "2026-01-01T00:00:00Z", "cost": 0,
        "transport": {"method": "webhook", "callback": callback}
    })
}

#[tokio::test]
async fn subscriptions_are_synced_idempotently_with_the_app_token() {
    use waddlebot::platforms::twitch::{AppToken, EventSubApi};
    const CALLBACK: &str = "https://bot.example/webhooks/twitch/eventsub";
    let helix = MockServer::start().await;
    let oauth = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(body_string_contains("grant_type=client_credentials"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "app-token", "expires_in": 5000000, "token_type": "bearer"
        })))
        .expect(1)
        .mount(&oauth)
        .await;
    // Page 1: follow is alive; page 2: stream.online died, and an unrelated one.
    Mock::given(method("GET"))
        .and(path("/helix/eventsub/subscriptions"))
        .and(query_param("after", "next"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [
                subscription("dead-1", "stream.online", "1", "notification_failures_exceeded",
                             json!({"broadcaster_user_id": "1337"}), CALLBACK),
                subscription("other", "stream.online", "1", "enabled",
                             json!({"broadcaster_user_id": "5555"}), CALLBACK),
            ],
            "total": 3, "pagination": {}
        })))
        .mount(&helix)
        .await;
    Mock::given(method("GET"))
        .and(path("/helix/eventsub/subscriptions"))
        .and(header("Authorization", "Bearer app-token"))
        .and(header("Client-Id", "client-123"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [subscription("alive-1", "channel.follow", "2", "enabled",
                json!({"broadcaster_user_id": "1337", "moderator_user_id": "999"}), CALLBACK)],
            "total": 3, "pagination": {"cursor": "next"}
        })))
        .mount(&helix)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/helix/eventsub/subscriptions"))
        .and(query_param("id", "dead-1"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&helix)
        .await;
    Mock::given(method("POST"))
        .and(path("/helix/eventsub/subscriptions"))
        .and(body_partial_json(json!({"type": "channel.chat.message"})))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "error": "Forbidden", "status": 403,
            "message": "subscription missing proper authorization"
        })))
        .mount(&helix)
        .await;
    Mock::given(method("POST"))
        .and(path("/helix/eventsub/subscriptions"))
        .and(body_partial_json(json!({
            "transport": {"method": "webhook", "callback": CALLBACK, "secret": "eventsub-secret"}
        })))
        .respond_with(|request: &wiremock::Request| {
            let body: Value = serde_json::from_slice(&request.body).expect("json");
            ResponseTemplate::new(202).set_body_json(json!({
                "data": [{
                    "id": format!("new-{}", body["type"].as_str().unwrap_or("?")),
                    "status": "webhook_callback_verification_pending",
                    "type": body["type"], "version": body["version"], "condition": body["condition"],
                    "transport": body["transport"], "created_at": "2026-01-01T00:00:00Z", "cost": 1
                }],
                "total": 1, "total_cost": 1, "max_total_cost": 10000
            }))
        })
        .expect(8)
        .mount(&helix)
        .await;
    let http = reqwest::Client::new();
    let api = EventSubApi::new(
        AppToken::new("client-123", "shh", oauth.uri(), http.clone()),
        &helix.uri(),
        CALLBACK,
        "eventsub-secret",
        http,
    );
    let report = api.sync_channel("1337", "999").await.expect("synced");
    assert_eq!(report.kept, ["channel.follow"]);
    assert_eq!(report.replaced, ["stream.online"]);
    assert_eq!(report.created.len(), 7, "{report:?}");
    assert!(report.created.contains(&"channel.raid".to_owned()));
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].0, "channel.chat.message");
    assert!(
        report.refused[0].1.contains("authorization"),
        "{:?}",
        report.refused
    );

    // Run again once everything is alive: nothing is created or deleted.
    helix.reset().await;
    let alive: Vec<Value> = waddlebot::platforms::twitch::channel_subscriptions("1337", "999")
        .into_iter()
        .enumerate()
        .map(|(i, w)| {
            subscription(
                &format!("s{i}"),
                w.kind,
                w.version,
                "enabled",
                w.condition,
                CALLBACK,
            )
        })
        .collect();
    Mock::given(method("GET"))
        .and(path("/helix/eventsub/subscriptions"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": alive, "pagination": {}})),
        )
        .mount(&helix)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&helix)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&helix)
        .await;
    let again = api.sync_channel("1337", "999").await.expect("synced");
    assert_eq!(again.kept.len(), 10);
    assert!(again.created.is_empty() && again.replaced.is_empty() && again.refused.is_empty());
}
