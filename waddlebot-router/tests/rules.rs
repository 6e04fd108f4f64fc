//! String-match rules on plain chat, every action.

use std::time::{Duration, SystemTime};

use waddlebot::store::{MatchType, RuleAction, StringRule};
use waddlebot::{
    CommandSpec, CommunityId, Context, ModerationAction, PlatformKind, Reply, Subscription,
    command_fn, event_fn,
};
use waddlebot_router::Router;
use waddlebot_router::rules::RuleError;
use waddlebot_router::testing::Transcript;

async fn setup() -> (Transcript, CommunityId) {
    // Webhook stand-ins listen on loopback: private addresses, allowed here.
    let t = Transcript::new(
        Router::builder()
            .allow_private_targets(true)
            .handler(command_fn(
                CommandSpec::new("so"),
                |ctx: Context| async move {
                    format!("Go follow {}!", ctx.args.get(0).unwrap_or("nobody"))
                },
            ))
            .event_handler(event_fn(
                Subscription::new("listener", &["chat_message"]),
                |_ctx: Context| async { "(handler heard it)" },
            )),
    )
    .expect("router");
    let community = t.community().await;
    (t, community)
}

fn rule(
    community: CommunityId,
    pattern: &str,
    match_type: MatchType,
    priority: i32,
    action: RuleAction,
) -> StringRule {
    StringRule {
        id: 0,
        community_id: community,
        pattern: pattern.into(),
        match_type,
        case_sensitive: false,
        priority,
        action,
        enabled: true,
        match_count: 0,
        last_matched: None,
        created_by: "mod".into(),
        created_at: SystemTime::now(),
    }
}

#[tokio::test]
async fn warn_and_command_rules_reply_and_let_handlers_run() {
    let (t, c) = setup().await;
    let router = t.router();
    router
        .create_rule(rule(
            c,
            "heck",
            MatchType::Word,
            10,
            RuleAction::Warn { message: None },
        ))
        .await
        .expect("created");
    router
        .create_rule(rule(
            c,
            "who should i follow",
            MatchType::Contains,
            20,
            RuleAction::Command {
                command: "!so {user}".into(),
            },
        ))
        .await
        .expect("created");
    t.play(
        "
        alice: what the HECK
        < Warning: Your message contains content that may violate community guidelines.
        < (handler heard it)
        alice: checking things
        < (handler heard it)
        bob: so who should I follow today?
        < Go follow bob!
        < (handler heard it)
        bob: !so carol
        < Go follow carol!
        ",
    )
    .await;
    let counts: Vec<i64> = router
        .store()
        .list_rules(c)
        .await
        .expect("listed")
        .iter()
        .map(|r| r.match_count)
        .collect();
    assert_eq!(counts, [1, 1]);
}

#[tokio::test]
async fn block_rules_moderate_and_stop_the_message() {
    let (t, c) = setup().await;
    let router = t.router();
    router
        .create_rule(rule(
            c,
            r"buy (cheap )?followers",
            MatchType::Regex,
            1,
            RuleAction::Block {
                message: None,
                timeout_secs: Some(600),
            },
        ))
        .await
        .expect("created");
    router
        .create_rule(rule(
            c,
            "spoiler",
            MatchType::Contains,
            2,
            RuleAction::Block {
                message: Some("No spoilers!".into()),
                timeout_secs: None,
            },
        ))
        .await
        .expect("created");
    let replies = |text: &str| {
        let event = waddlebot::Event::chat(PlatformKind::Twitch, "pond", "pond", "spammer", text);
        async move { router.handle(event).await.expect("handled") }
    };
    let spam = replies("Buy cheap followers at example.com").await;
    assert_eq!(
        spam.replies,
        [
            Reply::Moderate(ModerationAction::Timeout {
                user_id: "spammer".into(),
                seconds: 600,
                reason: Some(format!(
                    "string rule {}",
                    spam.matched_rule.expect("matched")
                )),
            }),
            Reply::text("Your message has been blocked due to policy violations."),
        ],
        "no handler reply after a block"
    );
    let spoiler = replies("SPOILER: the penguin did it").await;
    assert!(matches!(
        &spoiler.replies[0],
        Reply::Moderate(ModerationAction::DeleteMessage { .. })
    ));
    assert_eq!(spoiler.replies[1], Reply::text("No spoilers!"));
}

#[tokio::test]
async fn the_first_rule_by_priority_wins_and_deleting_takes_effect_at_once() {
    let (t, c) = setup().await;
    let router = t.router();
    let late = router
        .create_rule(rule(
            c,
            "*",
            MatchType::Exact,
            100,
            RuleAction::Warn {
                message: Some("catch-all".into()),
            },
        ))
        .await
        .expect("created");
    let early = router
        .create_rule(rule(
            c,
            "hello",
            MatchType::Exact,
            1,
            RuleAction::Warn {
                message: Some("exact hello".into()),
            },
        ))
        .await
        .expect("created");
    t.play(
        "
        a: hello
        < exact hello
        < (handler heard it)
        a: anything
        < catch-all
        < (handler heard it)
        ",
    )
    .await;
    assert!(router.delete_rule(c, early.id).await.expect("deleted"));
    assert!(router.delete_rule(c, late.id).await.expect("deleted"));
    t.play(
        "
        a: hello
        < (handler heard it)
        ",
    )
    .await;
}

#[tokio::test]
async fn broken_rules_are_refused_at_creation() {
    let (t, c) = setup().await;
    let err = t
        .router()
        .create_rule(rule(
            c,
            "([a-z]",
            MatchType::Regex,
            1,
            RuleAction::Warn { message: None },
        ))
        .await
        .expect_err("does not compile");
    assert!(
        matches!(err, RuleError::Invalid(ref m) if m.contains("does not compile")),
        "{err}"
    );
    assert!(
        t.router()
            .store()
            .list_rules(c)
            .await
            .expect("listed")
            .is_empty()
    );
}

#[tokio::test]
async fn webhook_rules_post_the_match() {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::header(
            "X-WaddleBot-Source",
            "string-matcher",
        ))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let (t, c) = setup().await;
    let created = t
        .router()
        .create_rule(rule(
            c,
            "giveaway",
            MatchType::Word,
            1,
            RuleAction::Webhook {
                url: format!("{}/hook", server.uri()),
            },
        ))
        .await
        .expect("created");
    t.play(
        "
        alice: is the giveaway live?
        < (handler heard it)
        ",
    )
    .await;
    let mut received = Vec::new();
    for _ in 0..50 {
        received = server.received_requests().await.unwrap_or_default();
        if !received.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let body: serde_json::Value = received
        .first()
        .expect("the webhook was called")
        .body_json()
        .expect("json");
    assert_eq!(body["type"], "string_match");
    assert_eq!(body["rule_id"], created.id);
    assert_eq!(body["message_content"], "is the giveaway live?");
    assert_eq!(body["user"]["name"], "alice");
    assert_eq!(body["context"]["platform"], "twitch");
}

#[tokio::test]
async fn a_rule_written_straight_to_the_store_is_seen_by_the_next_message() {
    let (t, c) = setup().await;
    t.play(
        "
        a: ahoy
        < (handler heard it)
        ",
    )
    .await;
    t.router()
        .store()
        .create_rule(&rule(
            c,
            "ahoy",
            MatchType::Word,
            1,
            RuleAction::Warn {
                message: Some("Arr".into()),
            },
        ))
        .await
        .expect("created");
    t.play(
        "
        a: ahoy
        < Arr
        < (handler heard it)
        ",
    )
    .await;
}
