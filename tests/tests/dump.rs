//! Export and import move a community between backends without losing anything: a filled SQLite
//! store goes to PostgreSQL (or memory, when PostgreSQL is not configured) and back, and the
//! dumps on both sides hold the same data.

mod common;

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use waddlebot::store::dump::{self, Dump, DumpError, Progress};
use waddlebot::store::{
    Alias, CommandSettings, CustomCommand, EntityKey, Expect, MatchType, MemoryStore,
    ModuleInstall, RemoteKind, RemoteModule, RoleGrant, RuleAction, SqliteStore, Store, StringRule,
    community_namespace,
};
use waddlebot::{CommunityId, PermissionLevel, PlatformKind};

fn key(platform: PlatformKind, server: &str, channel: &str) -> EntityKey {
    EntityKey {
        platform,
        server_id: server.to_owned(),
        channel_id: channel.to_owned(),
    }
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(secs * 1000 + 123)
}

/// A community with one of everything a store keeps, plus a second community.
async fn fill(store: &dyn Store) -> CommunityId {
    let twitch = key(PlatformKind::Twitch, "pond", "pond");
    let c = store
        .resolve_entity(&twitch)
        .await
        .expect("entity")
        .community_id;
    store
        .assign_entity(&key(PlatformKind::Discord, "guild-1", "general"), c)
        .await
        .expect("second entity");
    store
        .create_custom_command(&CustomCommand {
            community_id: c,
            name: "hello".to_owned(),
            response: "Hi {user}, #{count}!".to_owned(),
            created_by: "mod".to_owned(),
            created_at: at(10),
            updated_at: at(20),
        })
        .await
        .expect("command");
    store
        .create_alias(&Alias {
            community_id: c,
            name: "hi".to_owned(),
            target: "!hello {args}".to_owned(),
            created_by: "mod".to_owned(),
            created_at: at(30),
        })
        .await
        .expect("alias");
    let rule = store
        .create_rule(&StringRule {
            id: 0,
            community_id: c,
            pattern: "sp[a4]m".to_owned(),
            match_type: MatchType::Regex,
            case_sensitive: true,
            priority: 7,
            action: RuleAction::Block {
                message: Some("no spam".to_owned()),
                timeout_secs: Some(60),
            },
            enabled: false,
            match_count: 0,
            last_matched: None,
            created_by: "mod".to_owned(),
            created_at: at(40),
        })
        .await
        .expect("rule");
    store
        .record_rule_match(c, rule.id, at(45))
        .await
        .expect("match");
    store
        .create_remote_module(&RemoteModule {
            community_id: c,
            name: "weather".to_owned(),
            url: "https://whisk.example/api".to_owned(),
            secret: "s3cret".to_owned(),
            commands: vec!["weather".to_owned()],
            events: vec!["raid".to_owned()],
            timeout_ms: 7000,
            kind: RemoteKind::OpenWhisk {
                namespace: "waddlebot".to_owned(),
                action: "weather".to_owned(),
                auth: "user:pass".to_owned(),
            },
            enabled: true,
            created_at: at(50),
        })
        .await
        .expect("remote");
    store
        .put_role_grant(&RoleGrant {
            community_id: c,
            platform: PlatformKind::Discord,
            user_id: "42".to_owned(),
            level: PermissionLevel::Moderator,
            granted_by: "owner".to_owned(),
            granted_at: at(60),
        })
        .await
        .expect("grant");
    store
        .put_module_install(&ModuleInstall {
            community_id: c,
            module: "core".to_owned(),
            enabled: true,
            config: json!({"prefixes": ["!", "?"], "nested": {"n": 1.5}}),
            updated_by: "owner".to_owned(),
            updated_at: at(70),
        })
        .await
        .expect("install");
    store
        .put_command_settings(&CommandSettings {
            global_cooldown_secs: Some(30),
            min_level: Some(PermissionLevel::Vip),
            cooldown_bucket: Some("greet".to_owned()),
            ..CommandSettings::new(c, "hello")
        })
        .await
        .expect("settings");
    for i in 0..1200 {
        store
            .put_document(
                &community_namespace(c, "quotes"),
                &format!("{i:05}"),
                &json!({"text": format!("quote {i}"), "by": "alice"}),
                Expect::Any,
            )
            .await
            .expect("document");
    }
    store
        .increment(&community_namespace(c, "command_uses"), "hello", 41)
        .await
        .expect("counter");
    store
        .increment(&community_namespace(c, "rep"), "bob", -3)
        .await
        .expect("negative counter");

    // A second community, and data of no community, that a one-community export leaves out.
    let other = store
        .resolve_entity(&key(PlatformKind::Slack, "T9", "C9"))
        .await
        .expect("other")
        .community_id;
    store
        .increment(&community_namespace(other, "rep"), "eve", 1)
        .await
        .expect("other counter");
    store
        .increment("global", "x", 1)
        .await
        .expect("global counter");
    c
}

/// A dump as JSON without what differs between stores by design: ids and the export time.
fn comparable(dump: &Dump) -> Value {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for id in ["id", "community_id", "exported_at"] {
                    map.remove(id);
                }
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(dump).expect("serializable");
    strip(&mut value);
    value
}

/// Exports everything from `from`, imports it into `to`, and checks the two hold the same.
async fn move_all(from: &dyn Store, to: &dyn Store) -> Dump {
    let exported = dump::export(from, None).await.expect("exported");
    let text = serde_json::to_vec(&exported).expect("serialized");
    let parsed = Dump::from_json(&text).expect("reads back");
    let mut seen = Vec::new();
    dump::import(to, &parsed, |p| seen.push(p))
        .await
        .expect("imported");
    assert_eq!(seen.len(), exported.records(), "one step per record");
    assert_eq!(
        seen.last(),
        Some(&Progress {
            done: exported.records(),
            total: exported.records()
        })
    );
    let reexported = dump::export(to, None).await.expect("exported again");
    assert_eq!(comparable(&reexported), comparable(&exported));
    reexported
}

async fn sqlite() -> SqliteStore {
    SqliteStore::open("sqlite::memory:").await.expect("opened")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_and_back_loses_nothing() {
    let source = sqlite().await;
    let c = fill(&source).await;
    let original = dump::export(&source, None).await.expect("exported");
    let pond = &original.communities[0];
    assert_eq!(pond.id, c);
    assert_eq!(pond.entities.len(), 2);
    assert_eq!(pond.documents.len(), 1200, "listings are paged through");
    assert_eq!(pond.rules[0].match_count, 1);
    assert_eq!(pond.counters.len(), 2);

    let (middle, _scratch): (Box<dyn Store>, _) = match common::fresh_pg().await {
        Some((store, scratch)) => (Box::new(store), Some(scratch)),
        None => {
            eprintln!("WADDLEBOT_TEST_POSTGRES_URL unset: going through the memory store instead");
            (Box::new(MemoryStore::new()), None)
        }
    };
    move_all(&source, middle.as_ref()).await;
    let back = sqlite().await;
    move_all(middle.as_ref(), &back).await;

    let moved = back
        .resolve_entity(&key(PlatformKind::Twitch, "pond", "pond"))
        .await
        .expect("found")
        .community_id;
    assert_eq!(
        back.counter(&community_namespace(moved, "command_uses"), "hello")
            .await
            .expect("read"),
        41
    );
    assert_eq!(
        back.counter("global", "x").await.expect("read"),
        0,
        "data of no community is not moved"
    );
}

#[tokio::test]
async fn one_community_can_be_exported_alone() {
    let source = MemoryStore::new();
    let c = fill(&source).await;
    let only = dump::export(&source, Some(c)).await.expect("exported");
    assert_eq!(only.communities.len(), 1);
    assert_eq!(only.communities[0].name, "twitch:pond");
    assert!(matches!(
        dump::export(&source, Some(CommunityId(404))).await,
        Err(waddlebot::store::StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn importing_over_existing_data_is_refused_before_writing() {
    let source = MemoryStore::new();
    fill(&source).await;
    let exported = dump::export(&source, None).await.expect("exported");

    // The second community already exists in the target: nothing of the first is written.
    let target = MemoryStore::new();
    target
        .resolve_entity(&key(PlatformKind::Slack, "T9", "C9"))
        .await
        .expect("made");
    let err = dump::import(&target, &exported, |_| {})
        .await
        .expect_err("refused");
    assert!(matches!(err, DumpError::Exists(_)), "{err}");
    assert!(err.to_string().contains("slack:T9"), "{err}");
    assert!(
        target
            .community_named("twitch:pond")
            .await
            .expect("read")
            .is_none()
    );

    // An entity already seen elsewhere is refused the same way.
    let target = MemoryStore::new();
    let c = target
        .create_community("elsewhere", at(1))
        .await
        .expect("made");
    target
        .assign_entity(&key(PlatformKind::Discord, "guild-1", "general"), c.id)
        .await
        .expect("made");
    let err = dump::import(&target, &exported, |_| {})
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("discord/guild-1/general"), "{err}");
    assert_eq!(
        target
            .list_communities(&waddlebot::store::Page::first(10))
            .await
            .expect("listed")
            .len(),
        1
    );
}

#[test]
fn malformed_dumps_are_refused_with_where_and_why() {
    let valid = json!({
        "format": "waddlebot-dump", "version": 1,
        "exported_at": {"secs_since_epoch": 1, "nanos_since_epoch": 0},
        "communities": [{
            "id": 1, "name": "pond",
            "created_at": {"secs_since_epoch": 1, "nanos_since_epoch": 0},
            "custom_commands": [{
                "community_id": 1, "name": "hi", "response": "Hi {user}", "created_by": "m",
                "created_at": {"secs_since_epoch": 1, "nanos_since_epoch": 0},
                "updated_at": {"secs_since_epoch": 1, "nanos_since_epoch": 0}
            }]
        }]
    });
    assert!(Dump::from_json(valid.to_string().as_bytes()).is_ok());

    let with = |edit: &dyn Fn(&mut Value)| {
        let mut value = valid.clone();
        edit(&mut value);
        Dump::from_json(value.to_string().as_bytes())
            .expect_err("refused")
            .to_string()
    };
    type Edit<'a> = &'a dyn Fn(&mut Value);
    let cases: [(Edit<'_>, &str); 6] = [
        (
            &|v| v["communities"][0]["custom_commands"][0]["response"] = json!(5),
            "communities[0].custom_commands[0].response",
        ),
        (&|v| v["format"] = json!("tarball"), "not a WaddleBot dump"),
        (
            &|v| v["version"] = json!(2),
            "newer than this WaddleBot reads",
        ),
        (
            &|v| v["communities"][0]["custom_commands"][0]["response"] = json!("Hi {nope}"),
            "custom command 'hi'",
        ),
        (
            &|v| {
                let community = v["communities"][0].clone();
                v["communities"]
                    .as_array_mut()
                    .expect("array")
                    .push(community);
            },
            "appears twice",
        ),
        (&|v| v["surprise"] = json!(true), "unknown field `surprise`"),
    ];
    for (edit, expected) in cases {
        let message = with(edit);
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    }
    let truncated = &valid.to_string()[..40];
    let message = Dump::from_json(truncated.as_bytes())
        .expect_err("refused")
        .to_string();
    assert!(message.contains("malformed"), "{message}");
}
