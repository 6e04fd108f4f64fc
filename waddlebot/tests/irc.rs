//! Twitch IRC: the line parser against lines captured from Twitch's documentation (each parses
//! and writes back byte for byte), property tests (no input panics; any message round-trips;
//! tag escaping is reversible), and the mapping of chat, USERNOTICE and CLEARCHAT lines.

use proptest::prelude::*;
use waddlebot::platforms::irc::{
    IrcError, IrcMessage, TwitchLine, escape_tag_value, twitch_line, unescape_tag_value,
};
use waddlebot::{EventKind, ModerationAction, PermissionLevel, SubscriptionTier};

const CHAT: &str = "@badge-info=;badges=broadcaster/1;client-nonce=459e3142897c7a22b7d275178f2259e0;color=#0000FF;display-name=lovingt3s;emote-only=1;emotes=62835:0-10;first-msg=0;flags=;id=885196de-cb67-427a-baa8-82f9b0fcd05f;mod=0;room-id=713936733;subscriber=0;tmi-sent-ts=1643904084794;turbo=0;user-id=713936733;user-type= :lovingt3s!lovingt3s@lovingt3s.tmi.twitch.tv PRIVMSG #lovingt3s :bleedPurple";
const REPLY: &str = "@badge-info=subscriber/8;badges=moderator/1,subscriber/6;color=;display-name=Mod_Person;emotes=;first-msg=0;flags=;id=b34ccfc7-4977-403a-8a94-33c6bac34fb8;mod=1;reply-parent-display-name=Streamer;reply-parent-msg-body=hello\\sthere;reply-parent-msg-id=6b13e51b-7ecb-43b5-ba5b-2bb5288df696;reply-parent-user-id=12345678;reply-parent-user-login=streamer;room-id=12345678;subscriber=1;tmi-sent-ts=1642696567751;turbo=0;user-id=98765432;user-type=mod :mod_person!mod_person@mod_person.tmi.twitch.tv PRIVMSG #streamer :@Streamer !uptime";
const ACTION: &str = "@badges=vip/1;display-name=Waver;id=aa11;room-id=12345678;user-id=555 :waver!waver@waver.tmi.twitch.tv PRIVMSG #streamer :\u{1}ACTION waves at everyone\u{1}";
const RESUB: &str = "@badge-info=;badges=staff/1,broadcaster/1,turbo/1;color=#008000;display-name=ronni;emotes=;id=db25007f-7a18-43eb-9379-80131e44d633;login=ronni;mod=0;msg-id=resub;msg-param-cumulative-months=6;msg-param-streak-months=2;msg-param-should-share-streak=1;msg-param-sub-plan=Prime;msg-param-sub-plan-name=Prime;room-id=12345678;subscriber=1;system-msg=ronni\\shas\\ssubscribed\\sfor\\s6\\smonths!;tmi-sent-ts=1507246572675;turbo=1;user-id=87654321;user-type=staff :tmi.twitch.tv USERNOTICE #dallas :Great stream -- keep it up!";
const GIFT: &str = "@badge-info=;badges=staff/1,premium/1;color=#0000FF;display-name=TWW2;emotes=;id=e9176cd8-5e22-4684-ad40-ce53c2561c5e;login=tww2;mod=0;msg-id=subgift;msg-param-months=1;msg-param-recipient-display-name=Mr_Woodchuck;msg-param-recipient-id=55554444;msg-param-recipient-name=mr_woodchuck;msg-param-sub-plan-name=House\\sof\\sNyoro~n;msg-param-sub-plan=1000;room-id=19571752;subscriber=0;system-msg=TWW2\\sgifted\\sa\\sTier\\s1\\ssub\\sto\\sMr_Woodchuck!;tmi-sent-ts=1521159445153;turbo=0;user-id=87654321;user-type=staff :tmi.twitch.tv USERNOTICE #forstycup";
const RAID: &str = "@badge-info=;badges=turbo/1;color=#9ACD32;display-name=TestChannel;emotes=;id=3d830f12-795c-447d-af3c-ea05e40fbddb;login=testchannel;mod=0;msg-id=raid;msg-param-displayName=TestChannel;msg-param-login=testchannel;msg-param-viewerCount=15;room-id=33332222;subscriber=0;system-msg=15\\sraiders\\sfrom\\sTestChannel\\shave\\sjoined\\n!;tmi-sent-ts=1507246572675;turbo=1;user-id=123456;user-type= :tmi.twitch.tv USERNOTICE #othertestchannel";
const TIMEOUT: &str = "@ban-duration=350;room-id=12345678;target-user-id=87654321;tmi-sent-ts=1642719320727 :tmi.twitch.tv CLEARCHAT #dallas :ronni";
const BAN: &str = "@room-id=12345678;target-user-id=87654321;tmi-sent-ts=1642715756806 :tmi.twitch.tv CLEARCHAT #dallas :ronni";
const CLEAR_ALL: &str =
    "@room-id=12345678;tmi-sent-ts=1642715695392 :tmi.twitch.tv CLEARCHAT #dallas";
const PING: &str = "PING :tmi.twitch.tv";
const RECONNECT: &str = ":tmi.twitch.tv RECONNECT";
const WELCOME: &str = ":tmi.twitch.tv 001 waddlebot :Welcome, GLHF!";
const JOIN: &str = ":waddlebot!waddlebot@waddlebot.tmi.twitch.tv JOIN #dallas";
const CAP_ACK: &str = ":tmi.twitch.tv CAP * ACK :twitch.tv/tags twitch.tv/commands";
const LOGIN_FAILED: &str = ":tmi.twitch.tv NOTICE * :Login authentication failed";

const CAPTURED: [&str; 15] = [
    CHAT,
    REPLY,
    ACTION,
    RESUB,
    GIFT,
    RAID,
    TIMEOUT,
    BAN,
    CLEAR_ALL,
    PING,
    RECONNECT,
    WELCOME,
    JOIN,
    CAP_ACK,
    LOGIN_FAILED,
];

fn parse(line: &str) -> IrcMessage {
    line.parse().unwrap_or_else(|err| panic!("{line}: {err}"))
}

fn event(line: &str) -> waddlebot::Event {
    match twitch_line(&parse(line)) {
        TwitchLine::Event(event) => *event,
        other => panic!("{line}: expected an event, got {other:?}"),
    }
}

#[test]
fn captured_lines_parse_and_write_back_exactly() {
    for line in CAPTURED {
        assert_eq!(parse(line).to_string(), line);
        assert_eq!(
            parse(&format!("{line}\r\n")),
            parse(line),
            "CRLF is not part of the line"
        );
    }
    let resub = parse(RESUB);
    assert_eq!(
        resub.tag("system-msg"),
        Some("ronni has subscribed for 6 months!")
    );
    assert_eq!(resub.prefix.as_deref(), Some("tmi.twitch.tv"));
    assert_eq!(resub.params, ["#dallas", "Great stream -- keep it up!"]);
    assert_eq!(
        parse(RAID).tag("system-msg"),
        Some("15 raiders from TestChannel have joined\n!")
    );
    assert_eq!(parse(JOIN).nick(), Some("waddlebot"));
    assert_eq!(parse(CHAT).tag("emotes"), Some("62835:0-10"));
    assert_eq!(parse(CHAT).tag("flags"), Some(""));
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    assert_eq!("".parse::<IrcMessage>(), Err(IrcError::Empty));
    assert_eq!("   ".parse::<IrcMessage>(), Err(IrcError::Empty));
    assert!(matches!(
        "@a=b".parse::<IrcMessage>(),
        Err(IrcError::NoCommand(_))
    ));
    assert!(matches!(
        ":prefix-only".parse::<IrcMessage>(),
        Err(IrcError::NoCommand(_))
    ));
    assert!(matches!(
        "PRIV-MSG #x :y".parse::<IrcMessage>(),
        Err(IrcError::BadCommand(_))
    ));
    assert_eq!(
        "PRIVMSG #x :a\rb".parse::<IrcMessage>(),
        Err(IrcError::ControlCharacter)
    );
}

#[test]
fn chat_lines_become_chat_events_with_badges_and_ids() {
    let chat = event(CHAT);
    assert_eq!(chat.kind, EventKind::ChatMessage);
    assert_eq!(chat.text, "bleedPurple");
    assert_eq!(chat.server_id, "713936733");
    assert_eq!(chat.channel_id, "713936733");
    assert_eq!(chat.user.id, "713936733");
    assert_eq!(chat.user.name, "lovingt3s");
    assert_eq!(chat.user.level, PermissionLevel::Broadcaster);
    assert_eq!(chat.id.0, "885196de-cb67-427a-baa8-82f9b0fcd05f");
    assert_eq!(chat.metadata["channel_name"], "lovingt3s");
    assert_eq!(
        chat.timestamp,
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_643_904_084_794)
    );

    let reply = event(REPLY);
    assert_eq!(reply.user.level, PermissionLevel::Moderator);
    assert_eq!(reply.user.display_name.as_deref(), Some("Mod_Person"));
    assert_eq!(reply.text, "@Streamer !uptime");
    assert_eq!(
        reply.metadata["reply_parent_message_id"],
        "6b13e51b-7ecb-43b5-ba5b-2bb5288df696"
    );

    let action = event(ACTION);
    assert_eq!(action.text, "waves at everyone", "/me is unwrapped");
    assert_eq!(action.user.level, PermissionLevel::Vip);
}

#[test]
fn usernotices_and_clearchat_become_channel_events() {
    let resub = event(RESUB);
    assert_eq!(
        resub.kind,
        EventKind::Subscription {
            tier: SubscriptionTier::Prime,
            months: 6,
            gift: None
        }
    );
    assert_eq!(resub.text, "Great stream -- keep it up!");
    assert_eq!(resub.user.id, "87654321");

    match event(GIFT).kind {
        EventKind::Subscription {
            tier: SubscriptionTier::Tier1,
            gift: Some(gift),
            ..
        } => assert_eq!((gift.count, gift.anonymous), (1, false)),
        other => panic!("{other:?}"),
    }
    assert_eq!(event(RAID).kind, EventKind::Raid { viewers: 15 });
    assert_eq!(event(RAID).user.name, "testchannel");

    assert_eq!(
        event(TIMEOUT).kind,
        EventKind::Moderation(ModerationAction::Timeout {
            user_id: "87654321".to_owned(),
            seconds: 350,
            reason: None
        })
    );
    assert_eq!(
        event(BAN).kind,
        EventKind::Moderation(ModerationAction::Ban {
            user_id: "87654321".to_owned(),
            reason: None
        })
    );
    assert_eq!(twitch_line(&parse(CLEAR_ALL)), TwitchLine::Other);
}

#[test]
fn connection_lines_are_recognised() {
    assert_eq!(
        twitch_line(&parse(PING)),
        TwitchLine::Ping(parse("PONG :tmi.twitch.tv"))
    );
    assert_eq!(
        parse("PONG :tmi.twitch.tv").to_string(),
        "PONG :tmi.twitch.tv"
    );
    assert_eq!(twitch_line(&parse(RECONNECT)), TwitchLine::Reconnect);
    assert_eq!(twitch_line(&parse(WELCOME)), TwitchLine::Welcome);
    assert!(matches!(
        twitch_line(&parse(LOGIN_FAILED)),
        TwitchLine::LoginFailed(_)
    ));
    assert_eq!(twitch_line(&parse(JOIN)), TwitchLine::Other);
}

/// Any message a program could build: tags with any printable value, an optional prefix, a
/// word or numeric command, middle parameters and a last one that may have spaces.
fn message() -> impl Strategy<Value = IrcMessage> {
    let tag = ("[a-z][a-z0-9/.-]{0,12}", "[ -~\r\n;\\\\é]{0,16}");
    let command = prop_oneof!["[A-Z]{1,10}", "[0-9]{3}"];
    let middle = "[!-9;-~][!-~]{0,10}";
    let last = "[ -~é]{0,30}";
    (
        prop::collection::vec(tag, 0..5),
        prop::option::of("[a-z][a-z0-9!@._-]{0,20}"),
        command,
        prop::collection::vec(middle, 0..4),
        prop::option::of(last),
        any::<bool>(),
    )
        .prop_map(|(tags, prefix, command, mut params, last, trailing)| {
            let mut needs_colon = false;
            if let Some(last) = last {
                needs_colon = last.is_empty() || last.contains(' ') || last.starts_with(':');
                params.push(last);
            }
            IrcMessage {
                tags,
                prefix,
                command,
                trailing: !params.is_empty() && (trailing || needs_colon),
                params,
            }
        })
}

proptest! {
    #[test]
    fn no_line_panics_the_parser(line in "\\PC{0,200}") {
        let _ = line.parse::<IrcMessage>();
    }

    #[test]
    fn any_message_round_trips(message in message()) {
        let line = message.to_string();
        prop_assert_eq!(line.parse::<IrcMessage>(), Ok(message), "line: {}", line);
    }

    #[test]
    fn tag_escaping_is_reversible(value in "[ -~\r\n;\\\\é]{0,40}") {
        let mut escaped = String::new();
        escape_tag_value(&value, &mut escaped);
        prop_assert!(!escaped.contains([' ', ';', '\r', '\n']));
        prop_assert_eq!(unescape_tag_value(&escaped), value);
    }
}
