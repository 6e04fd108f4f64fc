//! The AI chat module as chat users meet it, on recorded model answers
//! (`tests/fixtures/ai_chat.jsonl`, replayed; `WADDLEBOT_RECORD_AI=1` records it again from the
//! scripted answers below), plus canned replies on failure, budgets, and AI switched off.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use waddlebot::testing::ScriptedAi;
use waddlebot::{AiProvider, Event, EventKind, PlatformKind, Sender};
use waddlebot_ai::RecordReplay;
use waddlebot_modules::{AiChat, AiChatSettings, NOT_CONFIGURED};
use waddlebot_router::Router;
use waddlebot_router::testing::Transcript;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ai_chat.jsonl")
}

/// The recorded answers, or (recording) the scripted model that produced them.
fn recorded_model() -> Arc<dyn AiProvider> {
    if std::env::var("WADDLEBOT_RECORD_AI").is_ok() {
        let _ = std::fs::remove_file(fixture());
        let model = ScriptedAi::new([
            "**Penguins** are flightless seabirds that *waddle*.",
            "\"Hi bob, welcome in!\"",
            "It is a cozy building game!",
            "Thanks for the follow, Dana, welcome!",
        ]);
        return Arc::new(RecordReplay::record(Arc::new(model), fixture()).expect("recording"));
    }
    Arc::new(RecordReplay::replay(fixture()).expect("the recording is in tests/fixtures"))
}

fn bot(provider: Option<Arc<dyn AiProvider>>, settings: AiChatSettings) -> Transcript {
    let ai = AiChat::new(provider, settings);
    Transcript::new(
        Router::builder()
            .handler(ai.clone())
            .event_handler(ai.listener()),
    )
    .expect("router")
}

#[tokio::test]
async fn questions_greetings_and_events_are_answered_from_the_recording() {
    let transcript = bot(Some(recorded_model()), AiChatSettings::default());
    transcript
        .play(
            r#"
            alice: !ai what is a penguin
            < 🤖 Penguins are flightless seabirds that waddle.
            bob: hi everyone
            < 🤖 Hi bob, welcome in!
            // Substrings are not greetings any more.
            carol: this is fine
            dave: what game is this?
            < 🤖 It is a cozy building game!
            "#,
        )
        .await;

    let mut follower = Sender::new("dana");
    follower.display_name = Some("Dana".to_owned());
    let follow = Event::new(
        PlatformKind::Twitch,
        "pond",
        "pond",
        follower,
        EventKind::Follow,
        "",
    );
    let outcome = transcript.router().handle(follow).await.expect("handled");
    let replies: Vec<String> = outcome.replies.iter().map(|r| r.to_plain_text()).collect();
    assert_eq!(replies, ["🤖 Thanks for the follow, Dana, welcome!"]);
}

#[tokio::test]
async fn a_failing_model_gets_the_canned_reply_for_the_trigger() {
    let down = Arc::new(
        ScriptedAi::default()
            .then_fail("connection refused")
            .then_fail("connection refused"),
    );
    bot(Some(down), AiChatSettings::default())
        .play(
            r#"
            alice: !ai anyone there
            < 🤖 I'm having trouble processing that right now. Please try again!
            bob: hello
            < 🤖 Hello! 👋
            "#,
        )
        .await;
}

#[tokio::test]
async fn without_a_provider_the_command_says_what_to_configure_and_chat_stays_quiet() {
    bot(None, AiChatSettings::default())
        .play(&format!(
            "alice: !ai hello?\n< {NOT_CONFIGURED}\nbob: hi there?\n~ wait 10s\nalice: !ask\n<~ Usage"
        ))
        .await;
}

#[tokio::test]
async fn over_the_channel_budget_the_command_says_so_and_chat_is_silent() {
    let model = Arc::new(ScriptedAi::new(["First answer."]));
    let settings = AiChatSettings {
        channel_per_minute: 1,
        user_cooldown: Duration::ZERO,
        ..AiChatSettings::default()
    };
    bot(Some(model.clone()), settings)
        .play(
            r#"
            alice: !ai one
            < 🤖 First answer.
            bob: !ai two
            < The AI is busy right now; try again in a minute.
            carol: anyone?
            "#,
        )
        .await;
    assert_eq!(
        model.requests().len(),
        1,
        "over budget, the model is not asked"
    );
}

#[tokio::test]
async fn the_prompt_carries_the_system_prompt_platform_and_recent_chat() {
    let model = Arc::new(ScriptedAi::new(["Sure."]));
    let transcript = bot(Some(model.clone()), AiChatSettings::default());
    transcript
        .play(
            r#"
            alice: we are building a castle today
            bob: nice, with a moat
            carol: !ai what are we building
            < 🤖 Sure.
            "#,
        )
        .await;
    let request = &model.requests()[0];
    let text: Vec<&str> = request
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    assert!(
        text[0].contains("streaming community") && text[0].contains("Platform: twitch"),
        "{text:?}"
    );
    assert!(
        text[1].contains("alice: we are building a castle today"),
        "{text:?}"
    );
    assert!(text[1].contains("bob: nice, with a moat"), "{text:?}");
    assert!(
        text[2].contains("carol asks: what are we building"),
        "{text:?}"
    );
}

#[tokio::test]
async fn a_community_sets_its_own_prompt_and_turns_chat_and_events_off() {
    let model = Arc::new(ScriptedAi::new(["Noot noot."]));
    let transcript = bot(Some(model.clone()), AiChatSettings::default());
    let community = transcript.community().await;
    transcript
        .router()
        .store()
        .put_module_install(&waddlebot::store::ModuleInstall {
            community_id: community,
            module: "ai".to_owned(),
            enabled: true,
            config: serde_json::json!({
                "system_prompt": "You are a penguin.",
                "respond_to_chat": false,
                "event_types": ["raid"],
            }),
            updated_by: "owner".to_owned(),
            updated_at: std::time::SystemTime::now(),
        })
        .await
        .expect("installed");
    transcript
        .play(
            r#"
            // Chat triggers are off here: a greeting and a question get no answer.
            bob: hi everyone
            carol: anyone there?
            alice: !ai hello
            < 🤖 Noot noot.
            "#,
        )
        .await;
    let follow = Event::new(
        PlatformKind::Twitch,
        "pond",
        "pond",
        Sender::new("dana"),
        EventKind::Follow,
        "",
    );
    let outcome = transcript.router().handle(follow).await.expect("handled");
    assert!(
        outcome.replies.is_empty(),
        "follows are not in this community's event types"
    );
    let requests = model.requests();
    assert_eq!(requests.len(), 1, "only !ai asked the model");
    assert!(
        requests[0].messages[0]
            .content
            .starts_with("You are a penguin.")
    );
}
