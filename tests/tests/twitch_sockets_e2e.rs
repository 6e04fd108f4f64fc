//! Twitch's socket transports through the real server. IRC: the server connects to a WebSocket
//! IRC server on loopback playing Twitch, a viewer's `!ping` goes through the router and the
//! answer comes back as a threaded PRIVMSG. EventSub over WebSocket: the server subscribes
//! after the welcome, a chat notification goes through the router and the answer goes out
//! through a Helix stand-in.

mod loopback;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use loopback::{bot_router, serve_on_loopback};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use waddlebot_server::AppState;
use waddlebot_server::platforms::PlatformSettings;

const WAIT: Duration = Duration::from_secs(10);

async fn next_line(ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> String {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("the bot writes")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = frame {
            return text.trim_end().to_owned();
        }
    }
}

/// The server with the platforms `settings` turn on, and the socket it opens to `twitch`.
async fn bot_connected_to(
    settings: &PlatformSettings,
    twitch: &TcpListener,
) -> (
    loopback::Loopback,
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
) {
    let (platforms, webhooks) =
        waddlebot_server::platforms::build(settings, &reqwest::Client::new());
    let bot =
        serve_on_loopback(AppState::new(bot_router(platforms), 1 << 20).with_webhooks(webhooks))
            .await;
    let (tcp, _) = tokio::time::timeout(WAIT, twitch.accept())
        .await
        .expect("the bot connects")
        .expect("accepted");
    let ws = tokio_tungstenite::accept_async(tcp)
        .await
        .expect("handshake");
    (bot, ws)
}

#[tokio::test]
async fn a_viewer_is_answered_over_irc() {
    let twitch = TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let url = format!("ws://{}", twitch.local_addr().expect("address"));
    let settings = PlatformSettings::from_env(|key| match key {
        "TWITCH_CHANNELS" => Some("Pond".to_owned()),
        "TWITCH_BOT_NICK" => Some("waddlebot".to_owned()),
        "TWITCH_BOT_TOKEN" => Some("token-abc".to_owned()),
        "TWITCH_IRC_URL" => Some(url.clone()),
        _ => None,
    })
    .expect("settings");
    assert_eq!(settings.summary()[0], "twitch: on (chat over IRC in #pond)");
    let (bot, mut ws) = bot_connected_to(&settings, &twitch).await;
    let mut login = Vec::new();
    for _ in 0..3 {
        login.push(next_line(&mut ws).await);
    }
    assert_eq!(
        login,
        [
            "CAP REQ :twitch.tv/tags twitch.tv/commands",
            "PASS oauth:token-abc",
            "NICK waddlebot"
        ]
    );
    ws.send(Message::text(
        ":tmi.twitch.tv 001 waddlebot :Welcome, GLHF!\r\n",
    ))
    .await
    .expect("sent");
    assert_eq!(next_line(&mut ws).await, "JOIN #pond");
    ws.send(Message::text(
        "@badges=;display-name=Alice;id=m-77;room-id=111;user-id=42 :alice!alice@alice.tmi.twitch.tv PRIVMSG #pond :!ping\r\n",
    ))
    .await
    .expect("sent");
    assert_eq!(
        next_line(&mut ws).await,
        "@reply-parent-msg-id=m-77 PRIVMSG #pond :Pong!"
    );
    let health = reqwest::get(format!("http://{}/health", bot.addr))
        .await
        .expect("answered");
    assert_eq!(
        health.status(),
        200,
        "HTTP serving goes on beside the socket"
    );
}

/// With `TWITCH_CLIENT_ID` as well, replies go through Helix, and the IRC connection stays the
/// intake: it used to close right after login (the server dropped its write handle, which ended
/// the connection), silently and for good, and the bot heard no chat.
#[tokio::test]
async fn with_helix_configured_irc_still_hears_chat_and_replies_go_through_helix() {
    use serde_json::json;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let helix = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/helix/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "999"}]})))
        .mount(&helix)
        .await;
    Mock::given(method("POST"))
        .and(path("/helix/chat/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"message_id": "out-1", "is_sent": true}]
        })))
        .mount(&helix)
        .await;
    let twitch = TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let url = format!("ws://{}", twitch.local_addr().expect("address"));
    let settings = PlatformSettings::from_env(|key| match key {
        "TWITCH_CHANNELS" => Some("pond".to_owned()),
        "TWITCH_BOT_NICK" => Some("waddlebot".to_owned()),
        "TWITCH_BOT_TOKEN" => Some("token-abc".to_owned()),
        "TWITCH_CLIENT_ID" => Some("client-123".to_owned()),
        "TWITCH_API_URL" => Some(helix.uri()),
        "TWITCH_IRC_URL" => Some(url.clone()),
        _ => None,
    })
    .expect("settings");
    assert_eq!(
        settings.summary()[0],
        "twitch: on (chat over IRC in #pond; replies through Helix)"
    );
    let (_bot, mut ws) = bot_connected_to(&settings, &twitch).await;
    for _ in 0..3 {
        next_line(&mut ws).await;
    }
    ws.send(Message::text(
        ":tmi.twitch.tv 001 waddlebot :Welcome, GLHF!\r\n",
    ))
    .await
    .expect("sent");
    assert_eq!(next_line(&mut ws).await, "JOIN #pond");
    // Still open after login and the join: a PING is answered.
    ws.send(Message::text("PING :tmi.twitch.tv\r\n"))
        .await
        .expect("sent");
    assert_eq!(next_line(&mut ws).await, "PONG :tmi.twitch.tv");
    ws.send(Message::text(
        "@badges=;display-name=Alice;id=m-77;room-id=111;user-id=42 :alice!alice@alice.tmi.twitch.tv PRIVMSG #pond :!ping\r\n",
    ))
    .await
    .expect("sent");
    let sent = loopback::received_json(&helix, "/helix/chat/messages", 1, WAIT)
        .await
        .first()
        .expect("the reply reached Helix")
        .clone();
    assert_eq!(
        sent,
        json!({"broadcaster_id": "111", "sender_id": "999", "message": "Pong!",
               "reply_parent_message_id": "m-77"})
    );
    // Nothing went out over IRC but the keepalive: the next line is the answer to a PING.
    ws.send(Message::text("PING :again\r\n"))
        .await
        .expect("sent");
    assert_eq!(next_line(&mut ws).await, "PONG :again");
}

#[test]
fn irc_settings_need_the_nick_and_token_and_plain_logins() {
    let missing =
        PlatformSettings::from_env(|key| (key == "TWITCH_CHANNELS").then(|| "pond".to_owned()))
            .expect_err("channels alone are not enough");
    assert!(
        missing
            .to_string()
            .contains("TWITCH_BOT_NICK, TWITCH_BOT_TOKEN"),
        "{missing}"
    );
    let bad = PlatformSettings::from_env(|key| match key {
        "TWITCH_CHANNELS" => Some("pond, bad channel!".to_owned()),
        "TWITCH_BOT_NICK" | "TWITCH_BOT_TOKEN" => Some("x".to_owned()),
        _ => None,
    })
    .expect_err("not a login");
    assert!(bad.to_string().contains("TWITCH_CHANNELS"), "{bad}");
    let helix_only =
        PlatformSettings::from_env(|key| (key == "TWITCH_BOT_TOKEN").then(|| "x".to_owned()));
    assert!(
        helix_only.is_err(),
        "a bot token alone is half a Helix configuration, not IRC"
    );
}

#[tokio::test]
async fn a_viewer_is_answered_over_eventsub_websocket_and_helix() {
    use serde_json::json;
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let helix = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/helix/users"))
        .and(query_param("login", "pond"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "1337"}]})))
        .mount(&helix)
        .await;
    Mock::given(method("GET"))
        .and(path("/helix/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "999"}]})))
        .mount(&helix)
        .await;
    Mock::given(method("POST"))
        .and(path("/helix/eventsub/subscriptions"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"data": []})))
        .mount(&helix)
        .await;
    Mock::given(method("POST"))
        .and(path("/helix/chat/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"message_id": "out-1", "is_sent": true}]
        })))
        .mount(&helix)
        .await;

    let twitch = TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let url = format!("ws://{}/ws", twitch.local_addr().expect("address"));
    let settings = PlatformSettings::from_env(|key| match key {
        "TWITCH_CLIENT_ID" => Some("client-123".to_owned()),
        "TWITCH_BOT_TOKEN" => Some("token-abc".to_owned()),
        "TWITCH_API_URL" => Some(helix.uri()),
        "TWITCH_CHANNELS" => Some("pond".to_owned()),
        "TWITCH_EVENTSUB_WEBSOCKET" => Some("true".to_owned()),
        "TWITCH_EVENTSUB_WS_URL" => Some(url.clone()),
        _ => None,
    })
    .expect("settings");
    assert_eq!(
        settings.summary()[0],
        "twitch: on (EventSub over WebSocket for pond; replies through Helix)"
    );
    let (_bot, mut ws) = bot_connected_to(&settings, &twitch).await;
    let welcome = json!({
        "metadata": {"message_id": "w", "message_type": "session_welcome", "message_timestamp": "2026-11-26T10:00:00Z"},
        "payload": {"session": {"id": "S1", "status": "connected", "keepalive_timeout_seconds": 10,
                                "reconnect_url": null, "connected_at": "2026-11-26T10:00:00Z"}}
    });
    ws.send(Message::text(welcome.to_string()))
        .await
        .expect("sent");
    let chat = json!({
        "metadata": {"message_id": "n-1", "message_type": "notification", "message_timestamp": "2026-11-26T10:00:01Z",
                     "subscription_type": "channel.chat.message", "subscription_version": "1"},
        "payload": {"subscription": {"id": "s", "type": "channel.chat.message", "version": "1"},
                    "event": {"broadcaster_user_id": "1337", "broadcaster_user_login": "pond",
                              "broadcaster_user_name": "Pond", "chatter_user_id": "42",
                              "chatter_user_login": "alice", "chatter_user_name": "Alice",
                              "message_id": "m-1", "message": {"text": "!ping", "fragments": []},
                              "message_type": "text", "badges": [], "color": ""}}
    });
    ws.send(Message::text(chat.to_string()))
        .await
        .expect("sent");

    let sent = loopback::received_json(&helix, "/helix/chat/messages", 1, WAIT)
        .await
        .first()
        .expect("a reply reached Helix")
        .clone();
    assert_eq!(
        sent,
        json!({"broadcaster_id": "1337", "sender_id": "999", "message": "Pong!",
               "reply_parent_message_id": "m-1"})
    );
    let subscriptions = helix
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|r| r.url.path() == "/helix/eventsub/subscriptions")
        .count();
    assert_eq!(
        subscriptions, 10,
        "subscribed to every mapped type after the welcome"
    );
}

#[test]
fn eventsub_websocket_settings_are_checked() {
    let no_channels = PlatformSettings::from_env(|key| match key {
        "TWITCH_CLIENT_ID" | "TWITCH_BOT_TOKEN" => Some("x".to_owned()),
        "TWITCH_EVENTSUB_WEBSOCKET" => Some("true".to_owned()),
        _ => None,
    })
    .expect_err("channels are needed");
    assert!(
        no_channels.to_string().contains("TWITCH_CHANNELS"),
        "{no_channels}"
    );
    let both = PlatformSettings::from_env(|key| match key {
        "TWITCH_CLIENT_ID" | "TWITCH_BOT_TOKEN" | "TWITCH_BOT_NICK" => Some("x".to_owned()),
        "TWITCH_CHANNELS" => Some("pond".to_owned()),
        "TWITCH_EVENTSUB_WEBSOCKET" => Some("yes".to_owned()),
        _ => None,
    })
    .expect_err("one chat intake");
    assert!(both.to_string().contains("not both"), "{both}");
    let typo = PlatformSettings::from_env(|key| match key {
        "TWITCH_EVENTSUB_WEBSOCKET" => Some("ture".to_owned()),
        _ => None,
    })
    .expect_err("not a flag");
    assert!(typo.to_string().contains("true or false"), "{typo}");
}
