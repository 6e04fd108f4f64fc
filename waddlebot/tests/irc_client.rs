//! The Twitch IRC connection against a WebSocket IRC server on loopback that plays Twitch: the
//! login sequence, JOINs, chat in as events, PING/PONG, replies out with their parent, the bot's
//! moderator status raising its quota, RECONNECT, silence, and a refused login.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use waddlebot::platforms::irc::{IrcConfig, IrcStatus, JoinPacer, TwitchIrc};
use waddlebot::platforms::twitch::{CHAT_QUOTA, ELEVATED_CHAT_QUOTA};
use waddlebot::{EventKind, Outbound, Platform, PlatformError, PlatformKind, Reply};

type Ws = WebSocketStream<TcpStream>;

const WAIT: Duration = Duration::from_secs(5);

async fn twitch_double() -> (TcpListener, IrcConfig) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let mut config = IrcConfig::new(
        "WaddleBot",
        "oauth:token-abc",
        vec!["#Pond".to_owned(), "lake".to_owned()],
    );
    config.url = format!("ws://{}", listener.local_addr().expect("address"));
    (listener, config)
}

async fn accept(listener: &TcpListener) -> Ws {
    let (tcp, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("the bot connects")
        .expect("accepted");
    tokio_tungstenite::accept_async(tcp)
        .await
        .expect("handshake")
}

/// The next line the bot wrote.
async fn line(ws: &mut Ws) -> String {
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

async fn say(ws: &mut Ws, line: &str) {
    ws.send(Message::text(format!("{line}\r\n")))
        .await
        .expect("sent");
}

/// Expects the login, welcomes the bot and expects its JOINs.
async fn log_in(ws: &mut Ws) {
    assert_eq!(line(ws).await, "CAP REQ :twitch.tv/tags twitch.tv/commands");
    assert_eq!(line(ws).await, "PASS oauth:token-abc");
    assert_eq!(line(ws).await, "NICK waddlebot");
    say(ws, ":tmi.twitch.tv 001 waddlebot :Welcome, GLHF!").await;
    assert_eq!(line(ws).await, "JOIN #pond");
    assert_eq!(line(ws).await, "JOIN #lake");
}

fn reply_to(server_id: &str, reply: Reply, parent: Option<&waddlebot::EventId>) -> Outbound {
    Outbound {
        platform: PlatformKind::Twitch,
        server_id: server_id.to_owned(),
        channel_id: server_id.to_owned(),
        user_id: "42".to_owned(),
        in_reply_to: parent.cloned(),
        reply,
    }
}

#[tokio::test]
async fn a_conversation_over_irc_survives_a_reconnect() {
    let (listener, config) = twitch_double().await;
    let (irc, mut events) = TwitchIrc::spawn(config);
    let mut ws = accept(&listener).await;
    log_in(&mut ws).await;
    assert_eq!(
        irc.wait_for(|s| *s == IrcStatus::Connected).await,
        IrcStatus::Connected
    );

    // Twitch tells the bot the room id and that it moderates #pond.
    say(
        &mut ws,
        "@emote-only=0;room-id=111 :tmi.twitch.tv ROOMSTATE #pond",
    )
    .await;
    say(
        &mut ws,
        "@badge-info=;badges=moderator/1;color=;display-name=WaddleBot;emote-sets=0;mod=1;subscriber=0;user-type=mod :tmi.twitch.tv USERSTATE #pond",
    )
    .await;
    say(
        &mut ws,
        "@badges=subscriber/12;display-name=Alice;id=msg-1;room-id=111;tmi-sent-ts=1700000000000;user-id=42 :alice!alice@alice.tmi.twitch.tv PRIVMSG #pond :!ping",
    )
    .await;
    let event = tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event")
        .expect("open");
    assert_eq!(event.kind, EventKind::ChatMessage);
    assert_eq!(event.text, "!ping");
    assert_eq!(event.server_id, "111");
    assert_eq!(event.user.name, "alice");

    say(&mut ws, "PING :tmi.twitch.tv").await;
    assert_eq!(line(&mut ws).await, "PONG :tmi.twitch.tv");

    let answer = reply_to("111", Reply::text("Pong!"), Some(&event.id));
    assert_eq!(
        irc.pacing(&answer).await.lane_quotas,
        [ELEVATED_CHAT_QUOTA],
        "the bot moderates #pond"
    );
    irc.send(answer).await.expect("queued");
    assert_eq!(
        line(&mut ws).await,
        "@reply-parent-msg-id=msg-1 PRIVMSG #pond :Pong!"
    );
    let elsewhere = reply_to("lake", Reply::text("hello lake"), None);
    assert_eq!(irc.pacing(&elsewhere).await.lane_quotas, [CHAT_QUOTA]);
    irc.send(elsewhere).await.expect("queued");
    assert_eq!(line(&mut ws).await, "PRIVMSG #lake :hello lake");
    assert!(matches!(
        irc.send(reply_to("999", Reply::text("?"), None)).await,
        Err(PlatformError::Rejected(_))
    ));
    assert!(matches!(
        irc.send(reply_to("111", Reply::whisper("psst"), None))
            .await,
        Err(PlatformError::Unsupported(_))
    ));

    // Twitch restarts its edge: the bot connects again, logs in and joins again.
    say(&mut ws, ":tmi.twitch.tv RECONNECT").await;
    let mut second = accept(&listener).await;
    log_in(&mut second).await;
    irc.send(reply_to("111", Reply::text("still here"), None))
        .await
        .expect("queued");
    assert_eq!(line(&mut second).await, "PRIVMSG #pond :still here");
}

#[tokio::test]
async fn silence_beyond_the_keepalive_means_a_new_connection() {
    let (listener, mut config) = twitch_double().await;
    config.keepalive = Duration::from_millis(300);
    let (_irc, _events) = TwitchIrc::spawn(config);
    let mut first = accept(&listener).await;
    log_in(&mut first).await;
    // Say nothing more: the bot gives up on this socket and connects again.
    let mut second = accept(&listener).await;
    assert_eq!(
        line(&mut second).await,
        "CAP REQ :twitch.tv/tags twitch.tv/commands"
    );
}

#[tokio::test]
async fn a_refused_login_stops_the_connection() {
    let (listener, config) = twitch_double().await;
    let (irc, _events) = TwitchIrc::spawn(config);
    let mut ws = accept(&listener).await;
    assert_eq!(
        line(&mut ws).await,
        "CAP REQ :twitch.tv/tags twitch.tv/commands"
    );
    say(
        &mut ws,
        ":tmi.twitch.tv NOTICE * :Login authentication failed",
    )
    .await;
    let status = tokio::time::timeout(
        WAIT,
        irc.wait_for(|s| matches!(s, IrcStatus::LoginFailed(_))),
    )
    .await
    .expect("the failure is reported");
    assert_eq!(
        status,
        IrcStatus::LoginFailed("Login authentication failed".to_owned())
    );
}

#[tokio::test]
async fn joins_are_paced_twenty_per_ten_seconds() {
    let start = tokio::time::Instant::now();
    let mut pacer = JoinPacer::twitch();
    for _ in 0..20 {
        assert_eq!(pacer.try_join(start), None);
    }
    assert_eq!(
        pacer.try_join(start + Duration::from_secs(4)),
        Some(Duration::from_secs(6)),
        "the 21st waits for the first to leave the window"
    );
    assert_eq!(pacer.try_join(start + Duration::from_secs(10)), None);
}
