//! Twitch chat over IRC through the real server: the server connects to a WebSocket IRC server
//! on loopback playing Twitch, a viewer's `!ping` goes through the router and the answer comes
//! back as a threaded PRIVMSG.

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
    let (platforms, webhooks) =
        waddlebot_server::platforms::build(&settings, &reqwest::Client::new());
    let bot =
        serve_on_loopback(AppState::new(bot_router(platforms), 1 << 20).with_webhooks(webhooks))
            .await;

    let (tcp, _) = tokio::time::timeout(WAIT, twitch.accept())
        .await
        .expect("the bot connects")
        .expect("accepted");
    let mut ws = tokio_tungstenite::accept_async(tcp)
        .await
        .expect("handshake");
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
