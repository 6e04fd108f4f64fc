//! EventSub over WebSocket against a loopback WebSocket server playing Twitch and a Helix
//! stand-in: subscribing after the welcome, notifications (a repeat dropped), the
//! `session_reconnect` handoff (old socket read until the new welcome, no new subscriptions),
//! and a silent socket replaced (subscriptions made again).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use waddlebot::EventKind;
use waddlebot::platforms::twitch::{
    EventSubSocket, EventSubSocketStatus, TwitchConfig, TwitchPlatform,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

type Ws = WebSocketStream<TcpStream>;

const WAIT: Duration = Duration::from_secs(10);

async fn accept(listener: &TcpListener) -> Ws {
    let (tcp, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("the bot connects")
        .expect("accepted");
    tokio_tungstenite::accept_async(tcp)
        .await
        .expect("handshake")
}

async fn push(ws: &mut Ws, message: Value) {
    ws.send(Message::text(message.to_string()))
        .await
        .expect("sent");
}

fn welcome(session: &str, keepalive: u64) -> Value {
    json!({
        "metadata": {"message_id": format!("welcome-{session}"), "message_type": "session_welcome",
                     "message_timestamp": "2026-11-26T10:00:00.000000000Z"},
        "payload": {"session": {"id": session, "status": "connected", "connected_at": "2026-11-26T10:00:00Z",
                                "keepalive_timeout_seconds": keepalive, "reconnect_url": null}}
    })
}

fn follow(message_id: &str, follower: &str) -> Value {
    json!({
        "metadata": {"message_id": message_id, "message_type": "notification",
                     "message_timestamp": "2026-11-26T10:00:01Z",
                     "subscription_type": "channel.follow", "subscription_version": "2"},
        "payload": {
            "subscription": {"id": "sub-1", "type": "channel.follow", "version": "2", "status": "enabled",
                             "cost": 0, "condition": {"broadcaster_user_id": "1337", "moderator_user_id": "999"},
                             "transport": {"method": "websocket", "session_id": "S1"},
                             "created_at": "2026-11-26T10:00:00Z"},
            "event": {"user_id": format!("id-{follower}"), "user_login": follower, "user_name": follower,
                      "broadcaster_user_id": "1337", "broadcaster_user_login": "pond",
                      "broadcaster_user_name": "Pond", "followed_at": "2026-11-26T10:00:01Z"}
        }
    })
}

async fn helix() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/helix/users"))
        .and(wiremock::matchers::query_param("login", "pond"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "1337"}]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/helix/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "999"}]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/helix/eventsub/subscriptions"))
        .respond_with(|request: &wiremock::Request| {
            let body: Value = serde_json::from_slice(&request.body).expect("json");
            ResponseTemplate::new(202).set_body_json(json!({"data": [{
                "id": "new", "status": "enabled", "type": body["type"], "version": body["version"],
                "condition": body["condition"], "transport": body["transport"]
            }]}))
        })
        .mount(&server)
        .await;
    server
}

/// The session ids of the subscriptions Helix was asked for.
async fn subscribed(helix: &MockServer) -> Vec<String> {
    helix
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).expect("json");
            assert_eq!(body["transport"]["method"], "websocket");
            body["transport"]["session_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

async fn next(events: &mut tokio::sync::mpsc::Receiver<waddlebot::Event>) -> waddlebot::Event {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event")
        .expect("open")
}

fn twitch(helix: &MockServer) -> Arc<TwitchPlatform> {
    Arc::new(TwitchPlatform::new(
        TwitchConfig {
            api_url: helix.uri(),
            ..TwitchConfig::new("client-123", "bot-token")
        },
        reqwest::Client::new(),
    ))
}

#[tokio::test]
async fn notifications_flow_and_a_reconnect_hands_the_session_over() {
    let helix = helix().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let addr = listener.local_addr().expect("address");
    let (socket, mut events) = EventSubSocket::spawn(
        twitch(&helix),
        format!("ws://{addr}/ws"),
        vec!["pond".to_owned()],
    );

    let mut first = accept(&listener).await;
    push(&mut first, welcome("S1", 10)).await;
    let status = tokio::time::timeout(
        WAIT,
        socket.wait_for(|s| matches!(s, EventSubSocketStatus::Connected(_))),
    )
    .await
    .expect("connected");
    assert_eq!(status, EventSubSocketStatus::Connected("S1".to_owned()));
    let sessions = subscribed(&helix).await;
    assert_eq!(sessions.len(), 10, "every mapped type");
    assert!(sessions.iter().all(|s| s == "S1"));

    push(&mut first, follow("n-1", "alice")).await;
    push(&mut first, follow("n-1", "alice")).await;
    push(&mut first, follow("n-2", "bob")).await;
    let alice = next(&mut events).await;
    assert_eq!(
        (alice.kind.clone(), alice.user.name.as_str()),
        (EventKind::Follow, "alice")
    );
    assert_eq!(alice.server_id, "1337");
    assert_eq!(
        next(&mut events).await.user.name,
        "bob",
        "the repeat was dropped"
    );

    // Twitch moves the session: the old socket is still read until the new welcome.
    push(
        &mut first,
        json!({
            "metadata": {"message_id": "r-1", "message_type": "session_reconnect",
                         "message_timestamp": "2026-11-26T10:00:02Z"},
            "payload": {"session": {"id": "S1", "status": "reconnecting", "keepalive_timeout_seconds": null,
                                    "reconnect_url": format!("ws://{addr}/reconnect"),
                                    "connected_at": "2026-11-26T10:00:00Z"}}
        }),
    )
    .await;
    let mut second = accept(&listener).await;
    push(&mut first, follow("n-3", "carol")).await;
    assert_eq!(
        next(&mut events).await.user.name,
        "carol",
        "the old socket still delivers"
    );
    push(&mut second, welcome("S1", 10)).await;
    push(&mut second, follow("n-4", "dave")).await;
    assert_eq!(next(&mut events).await.user.name, "dave");
    let closed = tokio::time::timeout(WAIT, first.next())
        .await
        .expect("the old socket is closed");
    assert!(
        matches!(closed, Some(Ok(Message::Close(_))) | None),
        "{closed:?}"
    );
    assert_eq!(
        subscribed(&helix).await.len(),
        10,
        "subscriptions moved with the session"
    );
}

#[tokio::test]
async fn a_silent_socket_is_replaced_and_subscribed_again() {
    let helix = helix().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let addr = listener.local_addr().expect("address");
    let (_socket, _events) = EventSubSocket::spawn(
        twitch(&helix),
        format!("ws://{addr}/ws"),
        vec!["1337".to_owned()],
    );

    let mut first = accept(&listener).await;
    push(&mut first, welcome("S1", 1)).await;
    // No keepalive follows: the bot gives up on S1 and starts a new session.
    let mut second = accept(&listener).await;
    push(&mut second, welcome("S2", 10)).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let sessions = subscribed(&helix).await;
        if sessions.iter().filter(|s| *s == "S2").count() == 10 {
            assert_eq!(sessions.iter().filter(|s| *s == "S1").count(), 10);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{sessions:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
