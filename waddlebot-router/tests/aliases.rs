//! Aliases in the engine, as chat users meet them.

use std::time::SystemTime;

use waddlebot::store::{Alias, CustomCommand, community_namespace};
use waddlebot::{CommandSpec, CommunityId, Context, PermissionLevel, command_fn};
use waddlebot_router::Router;
use waddlebot_router::alias::{AliasError, CreateAliasError};
use waddlebot_router::testing::Transcript;

async fn echo(ctx: Context) -> String {
    format!("{}({})", ctx.command, ctx.args.to_vec().join("|"))
}

async fn setup() -> (Transcript, CommunityId) {
    let t = Transcript::new(
        Router::builder()
            .handler(command_fn(CommandSpec::new("shoutout"), echo))
            .handler(command_fn(
                CommandSpec::new("ban-hammer").min_level(PermissionLevel::Moderator),
                echo,
            )),
    )
    .expect("router");
    let community = t.community().await;
    (t, community)
}

async fn alias(t: &Transcript, community: CommunityId, name: &str, target: &str) {
    t.router()
        .create_alias(community, name, target, "mod")
        .await
        .expect("alias created");
}

#[tokio::test]
async fn an_alias_fills_arguments_or_appends_them() {
    let (t, c) = setup().await;
    alias(&t, c, "so", "!shoutout {arg1} by {user}").await;
    alias(&t, c, "yell", "shoutout loudly").await;
    t.play(
        r#"
        alice: !so @pingu extra
        < shoutout(@pingu|by|alice)
        alice: !so
        < shoutout(by|alice)
        alice: !yell "big news" now
        < shoutout(loudly|big news|now)
        "#,
    )
    .await;
}

#[tokio::test]
async fn aliases_chain_into_custom_commands_and_keep_the_targets_rules() {
    let (t, c) = setup().await;
    let now = SystemTime::now();
    t.router()
        .store()
        .create_custom_command(&CustomCommand {
            community_id: c,
            name: "hello".into(),
            response: "Hi {user}, {args}".into(),
            created_by: "mod".into(),
            created_at: now,
            updated_at: now,
        })
        .await
        .expect("created");
    alias(&t, c, "hi", "!hello").await;
    alias(&t, c, "yo", "!hi").await;
    alias(&t, c, "hammer", "!ban-hammer").await;
    t.play(
        "
        alice: !yo welcome
        < Hi alice, welcome
        alice: !hammer bob
        < You need to be moderator or higher to use !ban-hammer.
        mod@moderator: !hammer bob
        < ban-hammer(bob)
        ",
    )
    .await;
    let uses = t
        .router()
        .store()
        .counter(&community_namespace(c, "alias_uses"), "yo")
        .await
        .expect("read");
    assert_eq!(uses, 1);
}

/// An alias as the store holds it, unchecked: loops and dangling targets cannot be created
/// through the router, but a deleted target leaves one behind (and an imported dump may hold
/// any), so running them must still be safe.
async fn stored_alias(t: &Transcript, community: CommunityId, name: &str, target: &str) {
    t.router()
        .store()
        .create_alias(&Alias {
            community_id: community,
            name: name.into(),
            target: target.into(),
            created_by: "mod".into(),
            created_at: SystemTime::now(),
        })
        .await
        .expect("stored");
}

#[tokio::test]
async fn loops_and_deep_chains_are_refused_with_the_chain() {
    let (t, c) = setup().await;
    stored_alias(&t, c, "a", "!b").await;
    stored_alias(&t, c, "b", "!a").await;
    for (name, target) in [
        ("l1", "!l2"),
        ("l2", "!l3"),
        ("l3", "!l4"),
        ("l4", "!l5"),
        ("l5", "!l6"),
        ("l6", "!l7"),
        ("l7", "!shoutout"),
    ] {
        stored_alias(&t, c, name, target).await;
    }
    t.play(
        "
        alice: !a
        < Alias !a cannot run: alias loop: !a → !b → !a.
        alice: !l3 x
        < shoutout(x)
        alice: !l1
        < Alias !l1 cannot run: alias chain deeper than 5: !l1 → !l2 → !l3 → !l4 → !l5 → !l6.
        ",
    )
    .await;
}

#[tokio::test]
async fn creation_refuses_what_would_clash() {
    let (t, c) = setup().await;
    let router = t.router();
    assert!(matches!(
        router.create_alias(c, "ping", "!shoutout", "mod").await,
        Err(CreateAliasError::Invalid(AliasError::BuiltIn(_)))
    ));
    assert!(matches!(
        router.create_alias(c, "timeout", "!shoutout", "mod").await,
        Err(CreateAliasError::Invalid(AliasError::Reserved { .. }))
    ));
    alias(&t, c, "so", "!shoutout").await;
    assert!(matches!(
        router.create_alias(c, "so", "!other", "mod").await,
        Err(CreateAliasError::Exists(name)) if name == "so"
    ));
    let now = SystemTime::now();
    router
        .store()
        .create_custom_command(&CustomCommand {
            community_id: c,
            name: "hello".into(),
            response: "hi".into(),
            created_by: "mod".into(),
            created_at: now,
            updated_at: now,
        })
        .await
        .expect("created");
    assert!(matches!(
        router.create_alias(c, "hello", "!shoutout", "mod").await,
        Err(CreateAliasError::Exists(_))
    ));
    // The target must be a command the community has: built-in, custom, alias or remote.
    assert!(matches!(
        router.create_alias(c, "typo", "!shoutuot {arg1}", "mod").await,
        Err(CreateAliasError::UnknownTarget(target)) if target == "!shoutuot"
    ));
    assert!(matches!(
        router.create_alias(c, "wx", "#weather", "mod").await,
        Err(CreateAliasError::UnknownTarget(_))
    ));
    for (name, target) in [("h", "!Hello there"), ("s2", "!so"), ("p", "ping")] {
        alias(&t, c, name, target).await;
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

    /// However aliases point at each other, following them ends with one reply: the command's,
    /// or a loop / depth refusal.
    #[test]
    fn any_alias_graph_terminates_with_one_reply(targets in proptest::collection::vec(0usize..10, 1..8)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let (t, c) = setup().await;
            for (i, target) in targets.iter().enumerate() {
                // Targets 0..8 are aliases (some may not exist), 8 and 9 are real commands.
                let line = match target {
                    8 => "!shoutout".to_owned(),
                    9 => "!ping".to_owned(),
                    n => format!("!a{n} x"),
                };
                stored_alias(&t, c, &format!("a{i}"), &line).await;
            }
            let replies = t.say("alice", PermissionLevel::Everyone, "!a0").await;
            assert_eq!(replies.len(), 1, "{replies:?}");
        });
    }
}
