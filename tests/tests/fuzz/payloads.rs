//! Platform payloads (Twitch EventSub, Slack events, slash commands and interactivity, Discord
//! interactions) through the adapters' public parsers, and dumps imported into a memory store.
//!
//! Signatures are not what is fuzzed here: EventSub deliveries are signed with the test secret
//! (its parser is only reachable through the verifier), Slack and Discord bodies go to the parse
//! step that runs after verification.

use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{KeyInit, Mac};
use waddlebot::platforms::WebhookError;
use waddlebot::platforms::discord::{Interaction, parse_interaction};
use waddlebot::platforms::slack::{SlackVerifier, SlashCommand, interaction_event};
use waddlebot::platforms::twitch::{EventSubMessage, EventSubVerifier};
use waddlebot::store::MemoryStore;
use waddlebot::store::dump::{self, Dump};

use crate::kit::{
    ITERATIONS, Target, head_and_body, mutate_body, mutate_form, mutate_json, runtime,
};

const SECRET: &str = "fuzz-secret-0123";

const EVENTSUB_WORDS: &[&str] = &[
    "notification",
    "revocation",
    "webhook_callback_verification",
    "channel.follow",
    "channel.subscribe",
    "channel.subscription.gift",
    "channel.subscription.message",
    "channel.cheer",
    "channel.raid",
    "channel.ban",
    "channel.chat.message",
    "stream.online",
    "stream.offline",
    "subscription",
    "event",
    "challenge",
    "type",
    "status",
    "broadcaster_user_id",
    "broadcaster_user_login",
    "to_broadcaster_user_id",
    "to_broadcaster_user_login",
    "from_broadcaster_user_id",
    "from_broadcaster_user_login",
    "user_id",
    "user_login",
    "user_name",
    "chatter_user_id",
    "chatter_user_login",
    "moderator_user_id",
    "tier",
    "1000",
    "3000",
    "Prime",
    "total",
    "cumulative_months",
    "is_anonymous",
    "is_gift",
    "is_permanent",
    "bits",
    "viewers",
    "message",
    "text",
    "badges",
    "set_id",
    "reply",
    "parent_message_id",
    "message_id",
    "ends_at",
    "banned_at",
    "reason",
    "2023-07-15T17:16:03.17106713Z",
];

#[test]
fn eventsub() {
    let target = Target::new("eventsub");
    let verifier = EventSubVerifier::new(SECRET).expect("a valid secret");
    let deliveries = AtomicU64::new(0);
    bolero::check!(name = target.name())
        .with_iterations(ITERATIONS / 2)
        .for_each(|input: &[u8]| {
            let mutate = mutate_body(EVENTSUB_WORDS, mutate_json(EVENTSUB_WORDS));
            target.run(input, mutate, |bytes| {
                // `<message type>\n<body>`, signed now under a message id never used before.
                let (kind, body) = head_and_body(bytes);
                let id = format!("fuzz-{}", deliveries.fetch_add(1, Ordering::Relaxed));
                let now = std::time::SystemTime::now();
                let timestamp = time::OffsetDateTime::from(now)
                    .format(&time::format_description::well_known::Rfc3339)
                    .expect("now formats");
                let mut mac =
                    <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes())
                        .expect("any key length");
                mac.update(id.as_bytes());
                mac.update(timestamp.as_bytes());
                mac.update(body);
                let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                let Ok(kind) = http::HeaderValue::from_str(&kind) else {
                    return;
                };
                let mut headers = http::HeaderMap::new();
                headers.insert("Twitch-Eventsub-Message-Id", id.parse().expect("ascii"));
                headers.insert(
                    "Twitch-Eventsub-Message-Timestamp",
                    timestamp.parse().expect("ascii"),
                );
                headers.insert(
                    "Twitch-Eventsub-Message-Signature",
                    signature.parse().expect("hex"),
                );
                headers.insert("Twitch-Eventsub-Message-Type", kind);
                match verifier.verify_at(&headers, body, now) {
                    Ok(EventSubMessage::Notification { events, .. }) => {
                        for event in events {
                            assert_eq!(event.platform, waddlebot::PlatformKind::Twitch);
                        }
                    }
                    Ok(_) | Err(WebhookError::Malformed(_) | WebhookError::MissingHeader(_)) => {}
                    Err(other) => panic!("a signed, fresh, new delivery refused: {other}"),
                }
            });
        });
}

const SLACK_WORDS: &[&str] = &[
    "type",
    "url_verification",
    "event_callback",
    "challenge",
    "event_id",
    "team_id",
    "event",
    "message",
    "app_mention",
    "member_joined_channel",
    "reaction_added",
    "channel",
    "user",
    "text",
    "ts",
    "thread_ts",
    "bot_id",
    "subtype",
    "item",
    "reaction",
    "<@U1>",
    "<@",
    ">",
    "!ping",
    "payload",
    "block_actions",
    "view_submission",
    "actions",
    "action_id",
    "value",
    "selected_option",
    "view",
    "callback_id",
    "private_metadata",
    "response_url",
    "team",
    "id",
    "username",
    "team_id",
    "channel_id",
    "user_id",
    "user_name",
    "command",
    "/waddlebot",
    "trigger_id",
    "quotes:vote:1",
    "",
];

#[test]
fn slack_events() {
    let target = Target::new("slack_events");
    let verifier = SlackVerifier::new(SECRET);
    bolero::check!(name = target.name())
        .with_iterations(ITERATIONS)
        .for_each(|input: &[u8]| {
            target.run(input, mutate_json(SLACK_WORDS), |body| {
                let _ = verifier.parse_events(body);
            });
        });
}

#[test]
fn slack_commands() {
    let target = Target::new("slack_commands");
    bolero::check!(name = target.name())
        .with_iterations(ITERATIONS)
        .for_each(|input: &[u8]| {
            target.run(input, mutate_form(SLACK_WORDS), |body| {
                if let Ok(command) = SlashCommand::from_form(body) {
                    let event = command.to_event();
                    assert_eq!(event.text, command.text);
                }
            });
        });
}

#[test]
fn slack_interactivity() {
    let target = Target::new("slack_interactivity");
    bolero::check!(name = target.name())
        .with_iterations(ITERATIONS)
        .for_each(|input: &[u8]| {
            target.run(input, mutate_form(SLACK_WORDS), |body| {
                let _ = interaction_event(body);
            });
        });
}

const DISCORD_WORDS: &[&str] = &[
    "type",
    "data",
    "name",
    "options",
    "value",
    "focused",
    "custom_id",
    "values",
    "components",
    "id",
    "token",
    "channel_id",
    "channel",
    "guild_id",
    "member",
    "user",
    "username",
    "global_name",
    "nick",
    "permissions",
    "application_id",
    "args",
    "8",
    "32",
    "8192",
    "1099511627776",
    "18446744073709551616",
    "-1",
    "waddlebot",
    "quote",
];

#[test]
fn discord_interactions() {
    let target = Target::new("discord_interactions");
    bolero::check!(name = target.name())
        .with_iterations(ITERATIONS)
        .for_each(|input: &[u8]| {
            target.run(input, mutate_json(DISCORD_WORDS), |body| {
                if let Ok(Interaction::Event(event)) = parse_interaction(body) {
                    assert_eq!(event.platform, waddlebot::PlatformKind::Discord);
                }
            });
        });
}

const DUMP_WORDS: &[&str] = &[
    "format",
    "waddlebot-dump",
    "version",
    "exported_at",
    "communities",
    "id",
    "name",
    "created_at",
    "entities",
    "custom_commands",
    "aliases",
    "rules",
    "remote_modules",
    "role_grants",
    "module_installs",
    "command_settings",
    "documents",
    "counters",
    "namespace",
    "key",
    "value",
    "platform",
    "server_id",
    "channel_id",
    "response",
    "target",
    "pattern",
    "match_type",
    "regex",
    "contains",
    "exact",
    "action",
    "priority",
    "url",
    "timeout_ms",
    "level",
    "enabled",
    "config",
    "secs_since_epoch",
    "nanos_since_epoch",
    "community:1:quotes",
    "{user}",
    "{random 1-2}",
    "(a+)+$",
    "[",
    "http://127.0.0.1:9/",
];

#[test]
fn dump_import() {
    let target = Target::new("dump_import");
    let rt = std::panic::AssertUnwindSafe(runtime());
    bolero::check!(name = target.name())
        .with_iterations(ITERATIONS / 2)
        .for_each(|input: &[u8]| {
            target.run(input, mutate_json(DUMP_WORDS), |bytes| {
                let Ok(parsed) = Dump::from_json(bytes) else {
                    return;
                };
                rt.block_on(async {
                    let store = MemoryStore::new();
                    if dump::import(&store, &parsed, |_| {}).await.is_ok() {
                        // What went in comes back out, record for record.
                        let back = dump::export(&store, None).await.expect("export");
                        assert_eq!(back.records(), parsed.records());
                    }
                });
            });
        });
}
