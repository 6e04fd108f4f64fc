//! Inbound webhook cost per platform: signature verifications per second (the published
//! vectors) and verified payloads parsed into events per second.
//!
//! `cargo bench -p waddlebot --features twitch,slack,discord --bench webhooks`

use std::collections::HashMap;

use std::hint::black_box;
use std::time::{Duration, Instant, UNIX_EPOCH};
use waddlebot::platforms::irc::IrcMessage;

use ed25519_dalek::{Signer, SigningKey};
use waddlebot::platforms::discord::{DiscordVerifier, parse_interaction};
use waddlebot::platforms::slack::{SlackVerifier, SlashCommand, event_from_callback};
use waddlebot::platforms::twitch::{EventSubVerifier, events_from_notification};

fn headers(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn measure(name: &str, iterations: u32, mut f: impl FnMut()) {
    for _ in 0..iterations / 10 {
        f();
    }
    let started = Instant::now();
    for _ in 0..iterations {
        f();
    }
    let per_sec = f64::from(iterations) / started.elapsed().as_secs_f64();
    println!("{name:<48} {per_sec:>12.0} /s");
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let n = if benching { 100_000 } else { 100 };

    let twitch_body = r#"{"subscription":{"id":"ae2ff348-e102-16be-a3eb-6830c1bf38d2","status":"enabled","type":"channel.follow","version":"1","condition":{"broadcaster_user_id":"44429626"},"transport":{"method":"webhook","callback":"null"},"created_at":"2021-02-19T23:47:00.7621315Z"},"event":{"user_id":"28408015","user_login":"testFromUser","user_name":"testFromUser","broadcaster_user_id":"44429626","broadcaster_user_login":"44429626","broadcaster_user_name":"testBroadcaster"}}"#;
    let twitch_headers = headers(&[
        (
            "Twitch-Eventsub-Message-Timestamp",
            "2021-02-19T23:47:00.8091512Z",
        ),
        (
            "Twitch-Eventsub-Message-Signature",
            "sha256=d10f5bd9474b7ac7bd7105eb79c2d52768b4d0cd2a135982c3bf5a1d59a78823",
        ),
        ("Twitch-Eventsub-Message-Type", "notification"),
    ]);
    let sent = UNIX_EPOCH + Duration::from_secs(1_613_778_420);
    let verifier = EventSubVerifier::new("secretabcd").expect("secret");
    let mut i = 0_u64;
    // Each delivery needs a fresh id (repeats are refused), so the signature fails after the
    // first: this measures the HMAC check, which runs before anything else.
    measure("twitch: EventSub HMAC check", n, || {
        i += 1;
        let mut h = twitch_headers.clone();
        h.insert("Twitch-Eventsub-Message-Id".to_owned(), i.to_string());
        let _ = black_box(verifier.verify_at(&h, twitch_body.as_bytes(), sent));
    });
    let event: serde_json::Value =
        serde_json::from_str::<serde_json::Value>(twitch_body).expect("json")["event"].clone();
    measure("twitch: notification → events", n, || {
        black_box(events_from_notification("channel.follow", &event, "m").expect("mapped"));
    });

    let slack_body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let slack_headers = headers(&[
        ("X-Slack-Request-Timestamp", "1531420618"),
        (
            "X-Slack-Signature",
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        ),
    ]);
    let slack = SlackVerifier::new("8f742231b10e8888abcd99yyyzzz85a5");
    let slack_now = UNIX_EPOCH + Duration::from_secs(1_531_420_618);
    measure("slack: v0 signature check", n, || {
        slack
            .verify_at(&slack_headers, slack_body.as_bytes(), slack_now)
            .expect("verified");
    });
    measure("slack: slash command form → event", n, || {
        black_box(
            SlashCommand::from_form(slack_body.as_bytes())
                .expect("parsed")
                .to_event(),
        );
    });
    let message = serde_json::json!({"type": "message", "channel": "C1", "user": "U1",
                                     "text": "!hello there", "ts": "1355517523.000005"});
    measure("slack: message event → event", n, || {
        black_box(event_from_callback("T1", &message).expect("mapped"));
    });

    let key = SigningKey::from_bytes(&[42; 32]);
    let discord = DiscordVerifier::new(&hex::encode(key.verifying_key().to_bytes())).expect("key");
    let body = r#"{"id":"1","application_id":"2","type":2,"data":{"id":"3","name":"ping","type":1},"guild_id":"G","channel_id":"C","member":{"user":{"id":"U","username":"mason"},"permissions":"0"},"token":"T","version":1}"#;
    let now = std::time::SystemTime::now();
    let stamp = now
        .duration_since(UNIX_EPOCH)
        .expect("now")
        .as_secs()
        .to_string();
    let signature = hex::encode(key.sign(format!("{stamp}{body}").as_bytes()).to_bytes());
    let discord_headers = headers(&[
        ("X-Signature-Ed25519", signature.as_str()),
        ("X-Signature-Timestamp", stamp.as_str()),
    ]);
    measure("discord: Ed25519 signature check", n / 10, || {
        discord
            .verify_at(&discord_headers, body.as_bytes(), now)
            .expect("verified");
    });
    measure("discord: interaction → event", n, || {
        black_box(parse_interaction(body.as_bytes()).expect("parsed"));
    });

    // Twitch IRC: a real chat line (Twitch's documented example) parsed, then mapped.
    let line = "@badge-info=;badges=broadcaster/1;client-nonce=459e3142897c7a22b7d275178f2259e0;color=#0000FF;display-name=lovingt3s;emote-only=1;emotes=62835:0-10;first-msg=0;flags=;id=885196de-cb67-427a-baa8-82f9b0fcd05f;mod=0;room-id=713936733;subscriber=0;tmi-sent-ts=1643904084794;turbo=0;user-id=713936733;user-type= :lovingt3s!lovingt3s@lovingt3s.tmi.twitch.tv PRIVMSG #lovingt3s :bleedPurple";
    measure("twitch irc: chat line → IrcMessage", n, || {
        black_box(line.parse::<IrcMessage>().expect("parsed"));
    });
    let parsed: IrcMessage = line.parse().expect("parsed");
    measure("twitch irc: IrcMessage → event", n, || {
        black_box(waddlebot::platforms::irc::event_from_line(&parsed).expect("an event"));
    });
}
