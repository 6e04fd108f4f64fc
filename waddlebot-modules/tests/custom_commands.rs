//! The custom commands module, driven through a real router as chat users would.

use std::sync::Arc;

use waddlebot::store::MemoryStore;
use waddlebot::{Event, PermissionLevel, PlatformKind};
use waddlebot_modules::CustomCommands;
use waddlebot_router::Router;

struct Chat {
    router: Router,
}

impl Chat {
    fn new() -> Self {
        let router = Router::builder()
            .store(Arc::new(MemoryStore::new()))
            .handler(CustomCommands)
            .build()
            .expect("valid wiring");
        Self { router }
    }

    async fn say(&self, user: &str, level: PermissionLevel, text: &str) -> Vec<String> {
        let event = Event::chat(PlatformKind::Twitch, "pond", "pond", user, text).with_level(level);
        self.router
            .handle(event)
            .await
            .expect("handled")
            .replies
            .iter()
            .map(|r| r.to_plain_text())
            .collect()
    }

    async fn said(&self, user: &str, level: PermissionLevel, text: &str) -> String {
        let replies = self.say(user, level, text).await;
        assert_eq!(replies.len(), 1, "one reply to {text:?}: {replies:?}");
        replies.into_iter().next().unwrap_or_default()
    }
}

const MOD: PermissionLevel = PermissionLevel::Moderator;
const VIEWER: PermissionLevel = PermissionLevel::Everyone;

#[tokio::test]
async fn a_moderator_adds_a_command_that_everyone_can_run() {
    let chat = Chat::new();
    assert_eq!(
        chat.said("modly", MOD, "!command add !hello Hi {user}!")
            .await,
        "Command !hello added."
    );
    assert_eq!(chat.said("alice", VIEWER, "!hello").await, "Hi alice!");
    assert_eq!(chat.said("bob", VIEWER, "!HELLO").await, "Hi bob!");
    chat.said("modly", MOD, "!command edit hello Hello {user}!")
        .await;
    chat.said("modly", MOD, "!command remove hello").await;
    // Each change is in the community's audit log, by who made it, as admin API changes are.
    let audit = chat
        .router
        .store()
        .list_audit(Some(waddlebot::CommunityId(1)), 10, 0)
        .await
        .expect("audit");
    let changes: Vec<(&str, &str, &str)> = audit
        .iter()
        .rev()
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.target.as_str()))
        .collect();
    assert_eq!(
        changes,
        [
            ("twitch:modly", "command.create", "hello"),
            ("twitch:modly", "command.update", "hello"),
            ("twitch:modly", "command.delete", "hello"),
        ]
    );
}

#[tokio::test]
async fn names_work_with_or_without_the_prefix() {
    let chat = Chat::new();
    chat.said("modly", MOD, "!command add so Go follow {touser}!")
        .await;
    assert_eq!(
        chat.said("alice", VIEWER, "!so @pingu").await,
        "Go follow pingu!"
    );
    assert_eq!(
        chat.said("modly", MOD, "!command show !so").await,
        "!so → Go follow {touser}!"
    );
}

#[tokio::test]
async fn viewers_cannot_manage_commands() {
    let chat = Chat::new();
    let reply = chat.said("alice", VIEWER, "!command add hi hello").await;
    assert!(reply.contains("moderator"), "{reply}");
    assert!(
        chat.said("alice", VIEWER, "!hi")
            .await
            .contains("Unknown command")
    );
}

#[tokio::test]
async fn a_template_error_is_refused_naming_the_variable() {
    let chat = Chat::new();
    let reply = chat.said("modly", MOD, "!command add hi Hi {usr}").await;
    assert!(reply.contains("{usr}"), "{reply}");
    assert!(
        chat.said("alice", VIEWER, "!hi")
            .await
            .contains("Unknown command")
    );
    let reply = chat.said("modly", MOD, "!command add hi Hi {user").await;
    assert!(reply.contains("never closed"), "{reply}");
}

#[tokio::test]
async fn adding_twice_edit_and_remove_say_what_happened() {
    let chat = Chat::new();
    chat.said("modly", MOD, "!command add hi one").await;
    let reply = chat.said("modly", MOD, "!command add hi two").await;
    assert!(reply.contains("already exists"), "{reply}");
    assert!(reply.contains("!command edit hi"), "{reply}");
    assert_eq!(chat.said("alice", VIEWER, "!hi").await, "one");

    assert_eq!(
        chat.said("modly", MOD, "!command edit hi two {count}")
            .await,
        "Command !hi updated."
    );
    // {count} counts the runs that show it: the run before the edit did not.
    assert_eq!(chat.said("alice", VIEWER, "!hi").await, "two 1");
    assert_eq!(chat.said("alice", VIEWER, "!hi").await, "two 2");

    let reply = chat.said("modly", MOD, "!command edit nope x").await;
    assert!(reply.contains("no custom command !nope"), "{reply}");

    assert_eq!(
        chat.said("modly", MOD, "!command remove !hi").await,
        "Command !hi removed."
    );
    assert!(
        chat.said("alice", VIEWER, "!hi")
            .await
            .contains("Unknown command")
    );
    assert_eq!(
        chat.said("modly", MOD, "!command remove hi").await,
        "There is no custom command !hi."
    );
}

#[tokio::test]
async fn built_in_names_and_bad_names_are_refused() {
    let chat = Chat::new();
    let reply = chat.said("modly", MOD, "!command add ping pong").await;
    assert!(reply.contains("built-in"), "{reply}");
    let reply = chat.said("modly", MOD, "!command add he/llo x").await;
    assert!(reply.contains("not a valid command name"), "{reply}");
}

#[tokio::test]
async fn missing_arguments_get_the_usage_line() {
    let chat = Chat::new();
    for text in [
        "!command",
        "!command add",
        "!command add hi",
        "!command frob hi x",
    ] {
        let reply = chat.said("modly", MOD, text).await;
        assert!(
            reply.starts_with("Usage: !command add|edit"),
            "{text}: {reply}"
        );
    }
}

#[tokio::test]
async fn a_quoted_response_loses_its_quotes_and_spacing_is_kept() {
    let chat = Chat::new();
    chat.said("modly", MOD, r#"!command add quoted "Hello   there""#)
        .await;
    assert_eq!(chat.said("alice", VIEWER, "!quoted").await, "Hello   there");
    chat.said("modly", MOD, "!command add echo You said: {args}")
        .await;
    assert_eq!(
        chat.said("alice", VIEWER, r#"!echo it's "fine""#).await,
        r#"You said: it's "fine""#
    );
}

#[tokio::test]
async fn commands_belong_to_their_community() {
    let chat = Chat::new();
    chat.said("modly", MOD, "!command add hi hello").await;
    let elsewhere = Event::chat(PlatformKind::Twitch, "other", "other", "alice", "!hi");
    let outcome = chat.router.handle(elsewhere).await.expect("handled");
    assert!(
        outcome.replies[0]
            .to_plain_text()
            .contains("Unknown command")
    );
}

#[tokio::test]
async fn help_lists_and_explains_custom_commands() {
    let chat = Chat::new();
    chat.said("modly", MOD, "!command add hi Hi {user}").await;
    let list = chat.said("alice", VIEWER, "!commands").await;
    assert!(list.contains("Custom: !hi"), "{list}");
    assert!(
        !list.contains("!command,"),
        "viewers do not see moderator commands: {list}"
    );
    let list = chat.said("modly", MOD, "!commands").await;
    assert!(list.contains("!command"), "{list}");
    assert_eq!(
        chat.said("alice", VIEWER, "!help hi").await,
        "!hi — custom command. Responds: Hi {user}"
    );
    let help = chat.said("alice", VIEWER, "!help command").await;
    assert!(help.contains("For moderator and above."), "{help}");
}

#[tokio::test]
async fn turning_the_module_off_silences_management_and_the_commands() {
    let chat = Chat::new();
    chat.said("modly", MOD, "!command add hi hello").await;
    let community = chat
        .router
        .handle(Event::chat(
            PlatformKind::Twitch,
            "pond",
            "pond",
            "x",
            "hey",
        ))
        .await
        .expect("handled")
        .community_id;
    chat.router
        .store()
        .put_module_install(&waddlebot::store::ModuleInstall {
            community_id: community,
            module: waddlebot::store::CUSTOM_COMMANDS_MODULE.into(),
            enabled: false,
            config: serde_json::json!({}),
            updated_by: "owner".into(),
            updated_at: std::time::SystemTime::now(),
        })
        .await
        .expect("saved");
    let off = "The 'custom_commands' module is disabled for this community";
    assert_eq!(chat.said("alice", VIEWER, "!hi").await, off);
    assert_eq!(chat.said("modly", MOD, "!command add yo x").await, off);
}
