//! The Discord adapter: Ed25519 (RFC 8032 vectors, Discord-style timestamp ‖ body signing and
//! every failure), interaction payloads of the documented shapes, and REST through a stand-in.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde_json::{Value, json};
use waddlebot::platforms::WebhookError;
use waddlebot::platforms::discord::{
    DiscordConfig, DiscordPlatform, DiscordVerifier, Interaction, interaction_response,
    level_from_permissions, parse_interaction, verify_ed25519,
};
use waddlebot::{
    EventId, EventKind, ModerationAction, Outbound, PermissionLevel, Platform, PlatformError,
    PlatformKind, Reply,
};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).expect("hex")
}

#[test]
fn rfc_8032_vectors_verify_and_tampering_does_not() {
    // RFC 8032 §7.1, TEST 1 to 3: (public key, message, signature).
    let vectors = [
        (
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
    ];
    for (key, message, signature) in vectors {
        let key_bytes: [u8; 32] = unhex(key).try_into().expect("32 bytes");
        let key = VerifyingKey::from_bytes(&key_bytes).expect("a key");
        let message = unhex(message);
        assert_eq!(verify_ed25519(&key, &message, signature), Ok(()));
        let mut tampered = message.clone();
        tampered.push(0);
        assert_eq!(
            verify_ed25519(&key, &tampered, signature),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_ed25519(&key, &message, &signature[..64]),
            Err(WebhookError::BadSignature),
            "a short signature"
        );
    }
}

/// The application's key pair (TEST 1's secret key) and a way to sign like Discord does.
fn app_key() -> SigningKey {
    SigningKey::from_bytes(
        &unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .try_into()
            .expect("32 bytes"),
    )
}

fn signed_headers(key: &SigningKey, timestamp: &str, body: &str) -> HashMap<String, String> {
    let signature = key.sign(format!("{timestamp}{body}").as_bytes());
    [
        (
            "X-Signature-Ed25519".to_owned(),
            hex::encode(signature.to_bytes()),
        ),
        ("X-Signature-Timestamp".to_owned(), timestamp.to_owned()),
    ]
    .into()
}

#[test]
fn interactions_are_verified_with_the_public_key() {
    let key = app_key();
    let verifier = DiscordVerifier::new(&hex::encode(key.verifying_key().to_bytes())).expect("key");
    let now = SystemTime::now();
    let stamp = now
        .duration_since(UNIX_EPOCH)
        .expect("now")
        .as_secs()
        .to_string();
    let body = r#"{"type":1}"#;
    let good = signed_headers(&key, &stamp, body);
    assert_eq!(verifier.verify_at(&good, body.as_bytes(), now), Ok(()));
    assert_eq!(
        verifier.verify_at(&good, br#"{"type":2}"#, now),
        Err(WebhookError::BadSignature)
    );
    let stranger = SigningKey::from_bytes(&[7; 32]);
    assert_eq!(
        verifier.verify_at(
            &signed_headers(&stranger, &stamp, body),
            body.as_bytes(),
            now
        ),
        Err(WebhookError::BadSignature)
    );
    // The timestamp is signed too: changing it breaks the signature; an old signed one is stale.
    let mut moved = good.clone();
    moved.insert("X-Signature-Timestamp".to_owned(), "1".to_owned());
    assert_eq!(
        verifier.verify_at(&moved, body.as_bytes(), now),
        Err(WebhookError::BadSignature)
    );
    let old = signed_headers(&key, "1600000000", body);
    assert_eq!(
        verifier.verify_at(&old, body.as_bytes(), now),
        Err(WebhookError::Stale)
    );
    for missing in ["X-Signature-Ed25519", "X-Signature-Timestamp"] {
        let mut partial = good.clone();
        partial.remove(missing);
        assert!(matches!(
            verifier.verify_at(&partial, body.as_bytes(), now),
            Err(WebhookError::MissingHeader(_))
        ));
    }
    let mut garbage = good;
    garbage.insert("X-Signature-Ed25519".to_owned(), "not hex".to_owned());
    assert_eq!(
        verifier.verify_at(&garbage, body.as_bytes(), now),
        Err(WebhookError::BadSignature)
    );
    assert!(DiscordVerifier::new("abcd").is_err());
    assert_eq!(parse_interaction(body.as_bytes()), Ok(Interaction::Ping));
}

fn command(data: Value, permissions: &str) -> Value {
    json!({
        "id": "1100000000000000001", "application_id": "775799577604522054", "type": 2,
        "data": data, "guild_id": "290926798626357250", "channel_id": "645027906669510667",
        "member": {
            "user": {"id": "53908232506183680", "username": "mason", "global_name": "Mason", "discriminator": "0"},
            "roles": [], "permissions": permissions, "nick": null
        },
        "token": "A_UNIQUE_TOKEN", "version": 1, "locale": "en-US"
    })
}

fn event(value: &Value) -> waddlebot::Event {
    match parse_interaction(value.to_string().as_bytes()).expect("parsed") {
        Interaction::Event(event) => *event,
        other => panic!("{other:?}"),
    }
}

#[test]
fn slash_commands_components_and_modals_become_events() {
    let slash = event(&command(
        json!({"id": "771825006014889984", "name": "quote", "type": 1,
               "options": [{"type": 1, "name": "add", "options": [
                   {"type": 3, "name": "text", "value": "waddle waddle"},
                   {"type": 4, "name": "weight", "value": 3}]}]}),
        "2147483647",
    ));
    assert_eq!(
        slash.kind,
        EventKind::SlashCommand {
            name: "quote".to_owned()
        }
    );
    assert_eq!(slash.text, r#"add "waddle waddle" 3"#);
    // The `args` option of a registered command is a command line of its own.
    let registered = event(&command(
        json!({"id": "1", "name": "waddlebot", "type": 1, "options": [
            {"type": 3, "name": "command", "value": "quote"},
            {"type": 3, "name": "args", "value": "add waddle waddle"}]}),
        "0",
    ));
    assert_eq!(registered.text, "quote add waddle waddle");
    assert_eq!(slash.id, EventId("1100000000000000001".to_owned()));
    assert_eq!(
        (slash.server_id.as_str(), slash.channel_id.as_str()),
        ("290926798626357250", "645027906669510667")
    );
    assert_eq!(slash.user.id, "53908232506183680");
    assert_eq!(slash.user.shown_name(), "Mason");
    assert_eq!(slash.user.level, PermissionLevel::Broadcaster);
    assert_eq!(slash.metadata["interaction_token"], "A_UNIQUE_TOKEN");
    assert_eq!(slash.platform, PlatformKind::Discord);

    let mut click = command(
        json!({"custom_id": "quotes:vote:42", "component_type": 2}),
        "0",
    );
    click["type"] = json!(3);
    let click = event(&click);
    assert_eq!(
        click.kind,
        EventKind::ComponentInteraction {
            custom_id: "quotes:vote:42".to_owned(),
            values: vec![]
        }
    );
    assert_eq!(click.user.level, PermissionLevel::Everyone);

    let mut select = command(
        json!({"custom_id": "roles:pick:1", "component_type": 3, "values": ["a", "b"]}),
        "0",
    );
    select["type"] = json!(3);
    assert_eq!(
        event(&select).kind,
        EventKind::ComponentInteraction {
            custom_id: "roles:pick:1".to_owned(),
            values: vec!["a".to_owned(), "b".to_owned()]
        }
    );

    let mut modal = command(
        json!({"custom_id": "calendar:create:0", "components": [
            {"type": 1, "components": [{"type": 4, "custom_id": "title", "value": "Movie night"}]}]}),
        "0",
    );
    modal["type"] = json!(5);
    assert_eq!(
        event(&modal).kind,
        EventKind::ComponentInteraction {
            custom_id: "calendar:create:0".to_owned(),
            values: vec!["Movie night".to_owned()]
        }
    );

    let mut autocomplete = command(
        json!({"name": "waddlebot", "options": [{"type": 3, "name": "command", "value": "pi", "focused": true}]}),
        "0",
    );
    autocomplete["type"] = json!(4);
    assert_eq!(
        parse_interaction(autocomplete.to_string().as_bytes()),
        Ok(Interaction::Autocomplete {
            command: "waddlebot".to_owned(),
            typed: "pi".to_owned()
        })
    );

    assert!(matches!(
        parse_interaction(b"{\"type\": 99}"),
        Err(WebhookError::Malformed(_))
    ));
    assert!(matches!(
        parse_interaction(b"nope"),
        Err(WebhookError::Malformed(_))
    ));

    assert_eq!(
        level_from_permissions(Some("8")),
        PermissionLevel::Broadcaster
    );
    assert_eq!(
        level_from_permissions(Some(&(1_u64 << 40).to_string())),
        PermissionLevel::Moderator
    );
    assert_eq!(
        level_from_permissions(Some("1024")),
        PermissionLevel::Everyone
    );
    assert_eq!(level_from_permissions(None), PermissionLevel::Everyone);
}

#[test]
fn ready_replies_answer_the_interaction_ephemeral_when_private() {
    assert_eq!(
        interaction_response(&[Reply::text("Pong!")]),
        json!({"type": 4, "data": {"content": "Pong!"}})
    );
    assert_eq!(
        interaction_response(&[Reply::ephemeral("only you")]),
        json!({"type": 4, "data": {"content": "only you", "flags": 64}})
    );
    let long = interaction_response(&[Reply::text("x".repeat(3000))]);
    assert_eq!(
        long["data"]["content"]
            .as_str()
            .expect("text")
            .chars()
            .count(),
        2000
    );
}

fn platform(server: &MockServer) -> DiscordPlatform {
    DiscordPlatform::new(
        DiscordConfig {
            bot_token: "bot-token".to_owned(),
            application_id: "775799577604522054".to_owned(),
            api_url: server.uri(),
        },
        reqwest::Client::new(),
    )
}

fn outbound(reply: Reply) -> Outbound {
    Outbound {
        platform: PlatformKind::Discord,
        server_id: "G1".to_owned(),
        channel_id: "C1".to_owned(),
        user_id: "U1".to_owned(),
        in_reply_to: Some(EventId("M1".to_owned())),
        reply,
    }
}

#[tokio::test]
async fn rest_gets_messages_dms_moderation_and_follow_ups() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/channels/C1/messages"))
        .and(header("Authorization", "Bot bot-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "M2"})))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/users/@me/channels"))
        .and(body_json(json!({"recipient_id": "U1"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "DM1", "type": 1})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/channels/DM1/messages"))
        .and(body_json(json!({"content": "psst"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "M3"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/guilds/G1/members/U9"))
        .and(header("X-Audit-Log-Reason", "spam"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(
            "/webhooks/775799577604522054/A_UNIQUE_TOKEN/messages/@original",
        ))
        .and(body_json(json!({"content": "Finally."})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "M4"})))
        .expect(1)
        .mount(&server)
        .await;

    let discord = platform(&server);
    let long = "word ".repeat(500);
    discord
        .send(outbound(Reply::text(long.trim())))
        .await
        .expect("sent in two parts");
    discord
        .send(outbound(Reply::whisper("psst")))
        .await
        .expect("a DM");
    discord
        .send(outbound(Reply::Moderate(ModerationAction::Timeout {
            user_id: "U9".to_owned(),
            seconds: 60,
            reason: Some("spam".to_owned()),
        })))
        .await
        .expect("timed out");
    discord
        .follow_up("A_UNIQUE_TOKEN", &[Reply::text("Finally.")])
        .await
        .expect("followed up");

    let requests = server.received_requests().await.expect("recorded");
    let first: Value = requests
        .iter()
        .find(|r| r.url.path() == "/channels/C1/messages")
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .expect("a message");
    assert_eq!(first["message_reference"]["message_id"], "M1");
    assert!(first["content"].as_str().expect("text").chars().count() <= 2000);
    let timeout: Value = requests
        .iter()
        .find(|r| r.url.path() == "/guilds/G1/members/U9")
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .expect("a timeout");
    assert!(
        timeout["communication_disabled_until"]
            .as_str()
            .expect("a time")
            .ends_with('Z')
    );
}

#[tokio::test]
async fn rate_limits_use_the_wait_discord_gives() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/channels/C1/messages"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("X-RateLimit-Scope", "user")
                .set_body_json(json!({"message": "You are being rate limited.", "retry_after": 1.5, "global": false})),
        )
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/channels/C1/messages/M7"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"message": "Missing Permissions", "code": 50013})),
        )
        .mount(&server)
        .await;
    let discord = platform(&server);
    match discord.send(outbound(Reply::text("hi"))).await {
        Err(PlatformError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Duration::from_millis(1500))
        }
        other => panic!("{other:?}"),
    }
    match discord
        .send(outbound(Reply::Moderate(ModerationAction::DeleteMessage {
            message_id: "M7".to_owned(),
        })))
        .await
    {
        Err(PlatformError::Rejected(why)) => assert!(why.contains("Missing Permissions"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_emptied_route_bucket_is_waited_for_before_the_next_request() {
    let server = MockServer::start().await;
    // Discord says the channel's message bucket is empty for the next second.
    Mock::given(method("POST"))
        .and(path("/channels/C1/messages"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("X-RateLimit-Limit", "5")
                .insert_header("X-RateLimit-Remaining", "0")
                .insert_header("X-RateLimit-Reset-After", "1.0")
                .insert_header("X-RateLimit-Bucket", "abcd1234")
                .set_body_json(json!({"id": "M1"})),
        )
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/channels/C2/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "M2"})))
        .mount(&server)
        .await;
    let discord = platform(&server);
    let first = tokio::time::Instant::now();
    discord
        .send(outbound(Reply::text("one")))
        .await
        .expect("sent");

    let other_channel = tokio::time::Instant::now();
    let mut elsewhere = outbound(Reply::text("elsewhere"));
    elsewhere.channel_id = "C2".to_owned();
    discord.send(elsewhere).await.expect("sent");
    assert!(
        other_channel.elapsed() < Duration::from_secs(1),
        "another channel's bucket is not empty, so it does not wait"
    );

    discord
        .send(outbound(Reply::text("two")))
        .await
        .expect("sent");
    assert!(
        first.elapsed() >= Duration::from_secs(1),
        "the second message waited for the bucket to refill"
    );
}

#[tokio::test]
async fn every_discord_outbound_counts_against_the_global_quota() {
    use waddlebot::platforms::discord::GLOBAL_QUOTA;
    let server = MockServer::start().await;
    let discord = platform(&server);
    let text = discord.pacing(&outbound(Reply::text("hi"))).await;
    assert_eq!(text.lane, "channel:C1");
    assert_eq!(text.global_quota, Some(GLOBAL_QUOTA));
    let dm = discord.pacing(&outbound(Reply::whisper("psst"))).await;
    assert!(dm.lane.starts_with("dm:"), "{}", dm.lane);
    let ban = discord
        .pacing(&outbound(Reply::Moderate(ModerationAction::Ban {
            user_id: "U1".to_owned(),
            reason: None,
        })))
        .await;
    assert!(ban.lane.starts_with("moderation:"), "{}", ban.lane);
    assert_eq!(ban.global_quota, Some(GLOBAL_QUOTA));
}

#[test]
fn command_specs_become_slash_commands() {
    use waddlebot::platforms::discord::application_commands;
    use waddlebot::{CommandSpec, PermissionLevel};
    let specs = vec![
        CommandSpec::new("ping").description("Check the bot is alive"),
        CommandSpec::new("quote")
            .description("Quotes")
            .usage("quote [add <text>|<id>]"),
        CommandSpec::new("ban")
            .usage("ban <user>")
            .min_level(PermissionLevel::Moderator),
        CommandSpec::new("Not Valid!"),
    ];
    let commands = application_commands(&specs, "waddlebot");
    let names: Vec<&str> = commands.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(
        names,
        ["waddlebot", "ping", "quote", "ban"],
        "invalid names are skipped"
    );
    assert_eq!(commands[0]["options"][0]["autocomplete"], true);
    assert!(
        commands[1].get("options").is_none(),
        "ping takes no arguments"
    );
    assert_eq!(
        commands[2]["options"][0]["description"],
        "quote [add <text>|<id>]"
    );
    assert_eq!(
        commands[3]["description"], "!ban <user>",
        "the usage stands in for a description"
    );
    assert_eq!(commands[3]["default_member_permissions"], "8192");

    let many: Vec<CommandSpec> = (0..150)
        .map(|i| CommandSpec::new(format!("c{i}")))
        .collect();
    assert_eq!(
        application_commands(&many, "waddlebot").len(),
        100,
        "Discord's limit"
    );
}

#[tokio::test]
async fn commands_are_written_only_when_discord_has_different_ones() {
    use waddlebot::CommandSpec;
    use waddlebot::platforms::discord::{CommandScope, CommandSync, application_commands};
    let server = MockServer::start().await;
    let commands = application_commands(
        &[CommandSpec::new("ping").description("Check the bot is alive")],
        "waddlebot",
    );
    // The guild already has them, as Discord returns them (ids, versions, defaults added).
    let mut stored: Vec<Value> = commands.clone();
    for (i, command) in stored.iter_mut().enumerate() {
        command["id"] = json!(format!("{i}"));
        command["application_id"] = json!("app-1");
        command["version"] = json!("1");
        command["nsfw"] = json!(false);
    }
    Mock::given(method("GET"))
        .and(path("/applications/775799577604522054/guilds/G9/commands"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&stored))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/applications/775799577604522054/commands"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": "1", "type": 1, "name": "old", "description": "gone", "version": "1"}
        ])))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/applications/775799577604522054/commands"))
        .and(body_json(&commands))
        .respond_with(ResponseTemplate::new(200).set_body_json(&stored))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/applications/775799577604522054/guilds/G9/commands"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let discord = platform(&server);
    assert_eq!(
        discord
            .sync_commands(&CommandScope::Guild("G9".to_owned()), &commands)
            .await
            .expect("synced"),
        CommandSync::Unchanged(2)
    );
    assert_eq!(
        discord
            .sync_commands(&CommandScope::Global, &commands)
            .await
            .expect("synced"),
        CommandSync::Updated(2)
    );
}

#[tokio::test]
async fn roles_are_given_and_taken_with_the_reason_in_the_audit_log() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/guilds/G1/members/U7/roles/R-vip"))
        .and(header("X-Audit-Log-Reason", "top chatter"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/guilds/G1/members/U7/roles/R-vip"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let discord = platform(&server);
    discord
        .send(outbound(Reply::Moderate(ModerationAction::AddRole {
            user_id: "U7".to_owned(),
            role_id: "R-vip".to_owned(),
            reason: Some("top chatter".to_owned()),
        })))
        .await
        .expect("given");
    discord
        .send(outbound(Reply::Moderate(ModerationAction::RemoveRole {
            user_id: "U7".to_owned(),
            role_id: "R-vip".to_owned(),
            reason: None,
        })))
        .await
        .expect("taken");
}
