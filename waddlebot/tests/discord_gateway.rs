//! The Discord gateway against a loopback WebSocket server playing Discord: identify with
//! intents, heartbeats with the last sequence, guild messages as events with levels from roles,
//! bots ignored, op 7 → resume on the resume URL, a missed acknowledgement → resume, and a
//! fatal close code.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use waddlebot::PermissionLevel;
use waddlebot::platforms::discord::{
    DEFAULT_INTENTS, DiscordConfig, DiscordGateway, DiscordPlatform, GatewayConfig, GatewayStatus,
};

type Ws = WebSocketStream<TcpStream>;

const WAIT: Duration = Duration::from_secs(10);

// The handshake callback's error type is tungstenite's, not ours.
#[allow(clippy::result_large_err)]
async fn accept(listener: &TcpListener) -> (Ws, String) {
    let (tcp, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("the bot connects")
        .expect("accepted");
    let path = Arc::new(std::sync::Mutex::new(String::new()));
    let seen = Arc::clone(&path);
    let ws = tokio_tungstenite::accept_hdr_async(
        tcp,
        move |request: &tokio_tungstenite::tungstenite::handshake::server::Request, response| {
            *seen.lock().expect("not poisoned") = request.uri().to_string();
            Ok(response)
        },
    )
    .await
    .expect("handshake");
    let path = path.lock().expect("not poisoned").clone();
    (ws, path)
}

/// The next payload the bot sent.
async fn receive(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("the bot sends")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).expect("json");
        }
    }
}

/// The next payload with this op, answering heartbeats on the way.
async fn expect_op(ws: &mut Ws, op: u64) -> Value {
    loop {
        let payload = receive(ws).await;
        if payload["op"] == op {
            return payload;
        }
        if payload["op"] == 1 {
            push(ws, json!({"op": 11})).await;
        }
    }
}

async fn push(ws: &mut Ws, payload: Value) {
    ws.send(Message::text(payload.to_string()))
        .await
        .expect("sent");
}

fn dispatch(seq: u64, kind: &str, data: Value) -> Value {
    json!({"op": 0, "s": seq, "t": kind, "d": data})
}

fn message(id: &str, author: Value, roles: Value, content: &str) -> Value {
    json!({"id": id, "channel_id": "C1", "guild_id": "G1", "author": author,
           "member": {"roles": roles}, "content": content})
}

fn gateway(
    addr: std::net::SocketAddr,
) -> (
    DiscordGateway,
    tokio::sync::mpsc::Receiver<waddlebot::Event>,
) {
    let discord = Arc::new(DiscordPlatform::new(
        DiscordConfig {
            bot_token: "bot-token".to_owned(),
            application_id: "app-1".to_owned(),
            api_url: "http://127.0.0.1:9".to_owned(),
        },
        reqwest::Client::new(),
    ));
    DiscordGateway::spawn(
        discord,
        GatewayConfig {
            url: Some(format!("ws://{addr}")),
            ..GatewayConfig::default()
        },
    )
}

async fn next_event(
    events: &mut tokio::sync::mpsc::Receiver<waddlebot::Event>,
) -> waddlebot::Event {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event")
        .expect("open")
}

#[tokio::test]
async fn messages_flow_and_the_session_resumes_after_a_reconnect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let addr = listener.local_addr().expect("address");
    let (gateway, mut events) = gateway(addr);

    let (mut ws, path) = accept(&listener).await;
    assert_eq!(path, "/?v=10&encoding=json");
    push(&mut ws, json!({"op": 10, "d": {"heartbeat_interval": 300}})).await;
    let identify = expect_op(&mut ws, 2).await;
    assert_eq!(identify["d"]["token"], "bot-token");
    assert_eq!(identify["d"]["intents"], DEFAULT_INTENTS);
    push(
        &mut ws,
        dispatch(
            1,
            "READY",
            json!({"session_id": "sess-1", "resume_gateway_url": format!("ws://{addr}/resume"),
                                    "user": {"id": "BOT", "username": "waddlebot", "bot": true}}),
        ),
    )
    .await;
    assert_eq!(
        tokio::time::timeout(
            WAIT,
            gateway.wait_for(|s| matches!(s, GatewayStatus::Connected(_)))
        )
        .await
        .expect("ready"),
        GatewayStatus::Connected("sess-1".to_owned())
    );
    push(
        &mut ws,
        dispatch(
            2,
            "GUILD_CREATE",
            json!({"id": "G1", "owner_id": "OWNER", "roles": [
            {"id": "G1", "name": "@everyone", "permissions": "104324673"},
            {"id": "MODS", "name": "Mods", "permissions": "8192"}]}),
        ),
    )
    .await;
    let alice = json!({"id": "U1", "username": "alice", "global_name": "Alice"});
    push(
        &mut ws,
        dispatch(
            3,
            "MESSAGE_CREATE",
            message("M1", alice.clone(), json!([]), "!ping"),
        ),
    )
    .await;
    push(
        &mut ws,
        dispatch(
            4,
            "MESSAGE_CREATE",
            message(
                "M2",
                json!({"id": "B2", "username": "otherbot", "bot": true}),
                json!([]),
                "!ping",
            ),
        ),
    )
    .await;
    push(
        &mut ws,
        dispatch(
            5,
            "MESSAGE_CREATE",
            message(
                "M3",
                json!({"id": "U2", "username": "mo"}),
                json!(["MODS"]),
                "!ban x",
            ),
        ),
    )
    .await;
    push(
        &mut ws,
        dispatch(
            6,
            "MESSAGE_CREATE",
            message(
                "M4",
                json!({"id": "OWNER", "username": "owner"}),
                json!([]),
                "hello",
            ),
        ),
    )
    .await;

    let first = next_event(&mut events).await;
    assert_eq!((first.id.0.as_str(), first.text.as_str()), ("M1", "!ping"));
    assert_eq!(
        (first.server_id.as_str(), first.channel_id.as_str()),
        ("G1", "C1")
    );
    assert_eq!(first.user.display_name.as_deref(), Some("Alice"));
    assert_eq!(first.user.level, PermissionLevel::Everyone);
    let moderator = next_event(&mut events).await;
    assert_eq!(moderator.id.0, "M3", "the other bot's message was ignored");
    assert_eq!(moderator.user.level, PermissionLevel::Moderator);
    assert_eq!(
        next_event(&mut events).await.user.level,
        PermissionLevel::Broadcaster
    );

    // Heartbeats carry the last sequence number seen: once the bot has read all six
    // dispatches, its next heartbeat says 6 (one sent earlier, on a slow machine, says less).
    loop {
        let beat = expect_op(&mut ws, 1).await;
        push(&mut ws, json!({"op": 11})).await;
        let seq = beat["d"].as_u64().expect("a sequence number");
        assert!(seq <= 6, "{beat}");
        if seq == 6 {
            break;
        }
    }

    // Discord asks for a reconnect: the bot resumes on the resume URL.
    push(&mut ws, json!({"op": 7, "d": null})).await;
    let (mut resumed, path) = accept(&listener).await;
    assert_eq!(path, "/resume/?v=10&encoding=json");
    push(
        &mut resumed,
        json!({"op": 10, "d": {"heartbeat_interval": 300}}),
    )
    .await;
    let resume = expect_op(&mut resumed, 6).await;
    assert_eq!(
        resume["d"],
        json!({"token": "bot-token", "session_id": "sess-1", "seq": 6})
    );
    push(&mut resumed, dispatch(7, "RESUMED", json!({}))).await;
    push(
        &mut resumed,
        dispatch(
            8,
            "MESSAGE_CREATE",
            message("M5", alice, json!([]), "still here"),
        ),
    )
    .await;
    assert_eq!(next_event(&mut events).await.text, "still here");

    // No acknowledgement for a heartbeat: the connection is a zombie; resume again.
    let _unanswered = expect_op(&mut resumed, 1).await;
    let (mut third, path) = accept(&listener).await;
    assert_eq!(path, "/resume/?v=10&encoding=json");
    push(
        &mut third,
        json!({"op": 10, "d": {"heartbeat_interval": 300}}),
    )
    .await;
    assert_eq!(expect_op(&mut third, 6).await["d"]["seq"], 8);
}

#[tokio::test]
async fn a_bad_token_stops_the_gateway() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let (gateway, _events) = gateway(listener.local_addr().expect("address"));
    let (mut ws, _) = accept(&listener).await;
    push(
        &mut ws,
        json!({"op": 10, "d": {"heartbeat_interval": 45000}}),
    )
    .await;
    expect_op(&mut ws, 2).await;
    ws.close(Some(CloseFrame {
        code: CloseCode::Library(4004),
        reason: "Authentication failed.".into(),
    }))
    .await
    .expect("closed");
    let status = tokio::time::timeout(
        WAIT,
        gateway.wait_for(|s| matches!(s, GatewayStatus::Failed(_))),
    )
    .await
    .expect("the failure is reported");
    assert!(matches!(status, GatewayStatus::Failed(why) if why.contains("4004")));
}
