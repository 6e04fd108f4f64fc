//! Community modules II as people meet them, through a real router: reputation (scores,
//! leaderboard, manual changes, auto-ban, weights, history and audit), identity linking across
//! two platforms (codes by whisper, wrong codes, expiry on a paused clock, resend cooldown,
//! the attempt limit, unlinking) with reputation following the person, and community
//! management from chat. Transcripts run on SQLite and, when configured, PostgreSQL.

mod common;

use std::sync::Arc;
use std::time::Duration;

use waddlebot::store::SqliteStore;
use waddlebot::testing::RecordingPlatform;
use waddlebot::{
    Event, EventKind, Gift, ModerationAction, PermissionLevel, PlatformKind, Reply, Store,
    SubscriptionTier,
};
use waddlebot_router::Router;
use waddlebot_router::testing::Transcript;

/// The standard modules on `store`, delivering to `platforms`.
fn builder(
    store: Arc<dyn Store>,
    platforms: &[Arc<RecordingPlatform>],
) -> waddlebot_router::RouterBuilder {
    let standard = waddlebot_modules::standard_modules();
    let mut builder = Router::builder()
        .store(store)
        .modules(standard.commands, standard.events);
    for platform in platforms {
        builder = builder.platform(platform.clone());
    }
    builder
}

/// The standard modules on a fresh in-memory SQLite store, delivering to `platforms`.
async fn sqlite_bot(platforms: &[Arc<RecordingPlatform>]) -> Transcript {
    let store = SqliteStore::open("sqlite::memory:").await.expect("sqlite");
    Transcript::new(builder(Arc::new(store), platforms)).expect("router")
}

/// An event of `kind` by `user` in the transcript's channel (Twitch `pond`).
async fn event(bot: &Transcript, user: &str, kind: EventKind) -> Vec<Reply> {
    let mut event = Event::chat(PlatformKind::Twitch, "pond", "pond", user, "");
    event.kind = kind;
    bot.router().handle(event).await.expect("handled").replies
}

const REPUTATION_SCRIPT: &str = r#"
    alice: hello pond
    alice: how is everyone
    alice: nice stream
    alice: !rep
    < alice: 600.03 (fair) here, 600.03 across communities.
    // The command itself cost 0.1.
    alice: !rep
    < alice: 599.93 (fair) here, 599.93 across communities.
    alice: !rep nobody
    < I have not seen nobody here.
    alice: !rep set alice 800 being nice
    < You need to be moderator or higher to use !rep.
    mod@moderator: !rep set alice 900 too much
    < A score is between 300 and 850.
    mod@moderator: !rep set alice 700
    < Say why: rep set <user> <score> <reason>.
    mod@moderator: !rep set alice 700 great moderator help
    // Refused commands are command use too.
    < alice's reputation is now 700.00 (good), was 599.63.
    alice: !rep top 0
    < Show between 1 and 10.
"#;

#[tokio::test]
async fn reputation_scores_people_and_moderators_can_set_them() {
    for (name, store, _scratch) in common::stores().await {
        println!("store: {name}");
        let bot = Transcript::new(builder(store, &[])).expect("router");
        bot.play(REPUTATION_SCRIPT).await;

        // Events: Twitch tiers count as their tier, gifts per gift, cheers per 100 bits.
        event(&bot, "bob", EventKind::Follow).await;
        event(
            &bot,
            "bob",
            EventKind::Subscription {
                tier: SubscriptionTier::Tier3,
                months: 1,
                gift: None,
            },
        )
        .await;
        event(&bot, "carol", EventKind::Cheer { bits: 250 }).await;
        event(
            &bot,
            "dave",
            EventKind::Subscription {
                tier: SubscriptionTier::Tier1,
                months: 1,
                gift: Some(Gift {
                    count: 5,
                    anonymous: false,
                }),
            },
        )
        .await;
        // People who only act by events are named by the directory too.
        bot.play(
            r#"
            bob: !rep
            < bob: 621.00 (fair) here, 621.00 across communities.
            carol: !rep
            < carol: 602.50 (fair) here, 602.50 across communities.
            dave: !rep top 3
            < Top reputation: 1. alice 699.90 | 2. bob 620.90 | 3. dave 615.00
            "#,
        )
        .await;
        let community = bot.community().await;
        let history =
            waddlebot_modules::history_of(bot.router().store().as_ref(), community, "twitch:alice")
                .await
                .expect("history");
        let last = history.last().expect("a change");
        assert_eq!((last.before, last.after), (5_996_300, 7_000_000));
        assert_eq!(last.reason, "set by mod: great moderator help");
        let audit = bot
            .router()
            .store()
            .list_audit(Some(community), 10, 0)
            .await
            .expect("audit");
        assert!(
            audit
                .iter()
                .any(|e| e.action == "reputation.set" && e.target == "twitch:alice")
        );
    }
}

#[tokio::test]
async fn a_hundred_messages_add_exactly_one_point_and_weights_are_configurable() {
    let bot = sqlite_bot(&[]).await;
    for n in 0..100 {
        bot.say("erin", PermissionLevel::Everyone, &format!("message {n}"))
            .await;
    }
    assert_eq!(
        bot.say("erin", PermissionLevel::Everyone, "!rep").await,
        ["erin: 601.00 (fair) here, 601.00 across communities."]
    );
    bot.configure(
        "reputation",
        serde_json::json!({"weights": {"follow": 2.5, "chat_message": "0.0001"}}),
    )
    .await;
    event(&bot, "erin", EventKind::Follow).await;
    assert_eq!(
        bot.say("erin", PermissionLevel::Everyone, "!rep").await,
        ["erin: 603.40 (fair) here, 603.40 across communities."],
        "601.00 - 0.1 for the last !rep + 2.5 for the follow"
    );
}

#[tokio::test]
async fn a_warning_that_takes_someone_to_the_threshold_bans_them_and_is_audited() {
    let bot = sqlite_bot(&[]).await;
    bot.say("frank", PermissionLevel::Everyone, "hi").await;
    let community = bot.community().await;
    let auto_ban =
        |enabled: bool| serde_json::json!({"auto_ban": {"enabled": enabled, "threshold": 590}});
    let warn = |user: &str| {
        EventKind::Moderation(ModerationAction::Warn {
            user_id: user.to_owned(),
            reason: None,
        })
    };
    bot.configure("reputation", auto_ban(false)).await;
    assert_eq!(
        event(&bot, "mod", warn("frank")).await,
        [],
        "policy off: no ban"
    );
    bot.say("gina", PermissionLevel::Everyone, "hi").await;
    bot.configure("reputation", auto_ban(true)).await;
    let replies = event(&bot, "mod", warn("gina")).await;
    assert!(
        matches!(&replies[..], [Reply::Moderate(ModerationAction::Ban { user_id, .. })] if user_id == "gina"),
        "{replies:?}"
    );
    let audit = bot
        .router()
        .store()
        .list_audit(Some(community), 10, 0)
        .await
        .expect("audit");
    assert!(
        audit
            .iter()
            .any(|e| e.action == "reputation.auto_ban" && e.target == "twitch:gina")
    );
    // Already below: another warning does not ban again.
    assert_eq!(event(&bot, "mod", warn("gina")).await, []);
}

/// The code in the last whisper `platform` was asked to send.
fn last_code(platform: &RecordingPlatform) -> String {
    let sent = platform.sent();
    let Reply::Whisper { text } = &sent.last().expect("a whisper").reply else {
        panic!("not a whisper: {sent:?}")
    };
    let at = text.find("verify ").expect("the instruction") + 7;
    text[at..at + 6].to_owned()
}

/// `user` (id `id`) says `text` on `platform`.
async fn say_on(
    router: &Router,
    platform: PlatformKind,
    id: &str,
    user: &str,
    text: &str,
) -> Vec<String> {
    let mut event = Event::chat(platform, "guild", "general", user, text);
    event.user.id = id.to_owned();
    router
        .handle(event)
        .await
        .expect("handled")
        .replies
        .iter()
        .map(Reply::to_plain_text)
        .collect()
}

#[tokio::test]
async fn accounts_link_across_platforms_with_a_whispered_code_and_share_a_reputation() {
    for (name, store, _scratch) in common::stores().await {
        println!("store: {name}");
        let twitch = Arc::new(RecordingPlatform::new(PlatformKind::Twitch));
        let discord = Arc::new(RecordingPlatform::new(PlatformKind::Discord));
        let bot =
            Transcript::new(builder(store, &[twitch.clone(), discord.clone()])).expect("router");
        let router = bot.router();
        let on_twitch = |user: &'static str, text: &'static str| {
            say_on(router, PlatformKind::Twitch, user, user, text)
        };
        let on_discord =
            |text: &'static str| say_on(router, PlatformKind::Discord, "D1", "alice_d", text);

        assert_eq!(
            on_twitch("alice", "!identity").await,
            ["No accounts linked yet. Link one with !identity link <platform> <username>."]
        );
        assert_eq!(
            on_twitch("alice", "!identity link twitch alice2").await,
            ["You are on twitch already: link an account on another platform."]
        );
        assert_eq!(
            on_twitch("alice", "!identity link myspace alice").await,
            ["I can link twitch, discord, slack accounts, not 'myspace'."]
        );
        assert_eq!(
            on_twitch("alice", "!identity link discord @Alice_D").await,
            ["I sent a code to alice_d on discord. Type !verify <code> there within 10 minutes."]
        );
        let whisper = discord.sent().last().expect("sent").clone();
        assert_eq!(whisper.user_id, "alice_d", "to the named account");
        let first = last_code(&discord);
        assert!(waddlebot_modules::is_code(&first), "{first}");

        // Asking again at once is refused; a minute later it sends a new code.
        assert_eq!(
            on_twitch("alice", "!identity link discord alice_d").await,
            ["A code was sent a moment ago; you can ask for a new one in 60 s."]
        );
        bot.clock().advance(Duration::from_secs(61));
        on_twitch("alice", "!identity link discord alice_d").await;
        let code = last_code(&discord);
        assert_ne!(code, first);

        assert_eq!(
            on_discord("!verify hello").await,
            ["That is not a code: codes are 6 letters and digits."]
        );
        let wrong = if first == code {
            "ZZZZZZ"
        } else {
            first.as_str()
        };
        let wrong_line: &'static str = Box::leak(format!("!verify {wrong}").into_boxed_str());
        assert_eq!(
            on_discord(wrong_line).await,
            ["Wrong code; 4 tries left."],
            "the old code stopped working"
        );
        let right: &'static str =
            Box::leak(format!("!verify {}", code.to_lowercase()).into_boxed_str());
        assert_eq!(
            on_discord(right).await,
            ["Linked: this discord account and twitch alice are one person now."]
        );
        assert_eq!(
            on_discord(right).await,
            [
                "No link is waiting for this account. Start one from your other account with identity link."
            ]
        );
        assert_eq!(
            on_twitch("alice", "!identity").await,
            ["Linked accounts: twitch alice, discord alice_d."]
        );
        let store = router.store().as_ref();
        assert_eq!(
            waddlebot_modules::person_of(store, &PlatformKind::Discord, "D1")
                .await
                .expect("read"),
            "twitch:alice"
        );

        // Reputation follows the person: a Discord follow shows in the Twitch `!rep`. Before
        // it: 600 − 0.1 for each of alice's seven commands on Twitch and the two `!verify`s
        // on Discord after the link (the ones before it were the Discord account's own).
        let mut follow = Event::chat(PlatformKind::Discord, "guild", "general", "alice_d", "");
        follow.user.id = "D1".into();
        follow.kind = EventKind::Follow;
        router.handle(follow).await.expect("handled");
        assert_eq!(
            on_twitch("alice", "!rep global").await,
            ["alice: 600.10 (fair) across communities."]
        );

        // Someone else cannot take the account; the last and the first account stay.
        assert_eq!(
            on_twitch("bob", "!identity link discord alice_d").await,
            ["discord alice_d is linked to someone else already."]
        );
        assert_eq!(
            on_twitch("alice", "!identity unlink twitch").await,
            ["Your twitch account is the one your links started from; unlink the others instead."]
        );
        assert_eq!(
            on_twitch("alice", "!identity unlink discord").await,
            ["Unlinked discord alice_d."]
        );
        assert_eq!(
            on_twitch("alice", "!identity unlink discord").await,
            ["No discord account is linked to you."]
        );
    }
}

#[tokio::test]
async fn codes_expire_and_five_wrong_ones_cancel_the_link() {
    let twitch = Arc::new(RecordingPlatform::new(PlatformKind::Twitch));
    let discord = Arc::new(RecordingPlatform::new(PlatformKind::Discord));
    let bot = sqlite_bot(&[twitch.clone(), discord.clone()]).await;
    let router = bot.router();
    say_on(
        router,
        PlatformKind::Twitch,
        "alice",
        "alice",
        "!identity link discord alice_d",
    )
    .await;
    let code = last_code(&discord);
    bot.clock()
        .advance(waddlebot_modules::CODE_TTL + Duration::from_secs(1));
    assert_eq!(
        say_on(
            router,
            PlatformKind::Discord,
            "D1",
            "alice_d",
            &format!("!verify {code}")
        )
        .await,
        ["That code has expired. Ask for a new one from your other account."]
    );

    say_on(
        router,
        PlatformKind::Twitch,
        "alice",
        "alice",
        "!identity link discord alice_d",
    )
    .await;
    let code = last_code(&discord);
    let wrong = if code == "AAAAAA" { "BBBBBB" } else { "AAAAAA" };
    for left in (1..=4).rev() {
        let plural = if left == 1 { "try" } else { "tries" };
        assert_eq!(
            say_on(
                router,
                PlatformKind::Discord,
                "D1",
                "alice_d",
                &format!("!verify {wrong}")
            )
            .await,
            [format!("Wrong code; {left} {plural} left.")]
        );
    }
    assert_eq!(
        say_on(
            router,
            PlatformKind::Discord,
            "D1",
            "alice_d",
            &format!("!verify {wrong}")
        )
        .await,
        ["Wrong code, 5 times: this link is cancelled. Start again from your other account."]
    );
    assert_eq!(
        say_on(
            router,
            PlatformKind::Discord,
            "D1",
            "alice_d",
            &format!("!verify {code}")
        )
        .await,
        [
            "No link is waiting for this account. Start one from your other account with identity link."
        ],
        "the right code no longer works either"
    );

    // A platform that is not connected: the code is not left waiting.
    let slack = say_on(
        router,
        PlatformKind::Twitch,
        "bob",
        "bob",
        "!identity link slack bob",
    )
    .await;
    assert!(
        slack[0].starts_with("I could not send the code to bob on slack"),
        "{slack:?}"
    );
}

const COMMUNITY_SCRIPT: &str = r#"
    alice: hi
    bob: hello
    alice: !community
    <~ members seen, 0 with a role, 0 modules switched off.
    alice: !community members 2
    <~ 2 members; lately:
    alice: !community roles
    < Nobody has been given a role here.
    alice: !role grant bob vip
    < You need to be moderator or higher to use !role.
    mod@moderator: !role grant bob moderator
    < You need to be broadcaster or higher to use !role.
    mod@moderator: !role grant nobody vip
    < I have not seen nobody here.
    mod@moderator: !role grant bob vip
    < bob is vip here now.
    alice: !community roles
    < Roles: bob (twitch): vip.
    boss@broadcaster: !role revoke bob moderator
    < bob is not moderator here.
    boss@broadcaster: !role revoke bob vip
    < bob is no longer vip here.
    mod@moderator: !module disable quotes
    < You need to be broadcaster or higher to use !module.
    boss@broadcaster: !module disable quotes
    < quotes is off here now.
    alice: !quote
    < The 'quotes' module is disabled for this community
    boss@broadcaster: !module disable community
    < community stays on: it is how modules are switched.
    boss@broadcaster: !module disable nothing
    < There is no module called nothing.
    boss@broadcaster: !module enable quotes
    < quotes is on here now.
    alice: !quote
    < No quotes yet. Add one with !quote add "text" [author].
    boss@broadcaster: !prefix abc
    < A prefix is 1 to 3 punctuation characters, not # or / (those are taken).
    boss@broadcaster: !prefix ?
    < Commands start with ? here now: try ?help.
    alice: ?ping
    < Pong!
    alice: !ping
    boss@broadcaster: ?prefix !
    < Commands start with ! here now: try !help.
    alice: !help rep
    <~ Usage: !rep [user]
"#;

#[tokio::test]
async fn communities_are_managed_from_chat() {
    for (name, store, _scratch) in common::stores().await {
        println!("store: {name}");
        let bot = Transcript::new(builder(store, &[])).expect("router");
        bot.play(COMMUNITY_SCRIPT).await;
        let community = bot.community().await;
        let audit = bot
            .router()
            .store()
            .list_audit(Some(community), 20, 0)
            .await
            .expect("audit");
        assert!(audit.iter().any(|e| e.action == "grant.put"));
        assert!(
            audit
                .iter()
                .any(|e| e.action == "module.update" && e.target == "quotes")
        );
    }
}

#[tokio::test]
async fn modules_are_listed_with_their_state_and_switched_off_ones_leave_the_lists() {
    let bot = sqlite_bot(&[]).await;
    let boss = PermissionLevel::Broadcaster;
    let everyone = PermissionLevel::Everyone;
    bot.say("boss", boss, "!module disable quotes").await;
    for typed in ["!module", "!module list"] {
        let listed = bot.say("boss", boss, typed).await.join("\n");
        let (on, off) = listed.split_once(" | off: ").expect("on and off");
        assert!(on.starts_with("Modules on: "), "{listed}");
        assert!(on.contains("reputation"), "{listed}");
        assert!(!on.contains("quotes"), "{listed}");
        assert!(off.contains("quotes"), "{listed}");
    }
    let commands = bot.say("alice", everyone, "!commands").await.join("\n");
    assert!(commands.contains("!ping"), "{commands}");
    assert!(
        !commands.contains("!quote"),
        "a switched-off module's commands are not offered: {commands}"
    );
    bot.say("boss", boss, "!module enable quotes").await;
    let commands = bot.say("alice", everyone, "!commands").await.join("\n");
    assert!(commands.contains("!quote"), "{commands}");
    let help = bot.say("alice", everyone, "!help quote").await.join("\n");
    assert!(
        help.contains("Usage: !quote [id] | !quote add \"text\" [author] | !quote search <words>"),
        "every form with its prefix: {help}"
    );
}

#[tokio::test]
async fn someone_in_two_communities_picks_the_one_community_answers_about() {
    let bot = sqlite_bot(&[]).await;
    bot.say("alice", PermissionLevel::Everyone, "hi pond").await;
    let bot = bot.on(PlatformKind::Twitch, "lake");
    bot.say("alice", PermissionLevel::Everyone, "hi lake").await;
    bot.play(
        r#"
        alice: !community context
        < Your community: twitch:lake. You are in: twitch:pond, twitch:lake.
        alice: !community context sea
        < You are not in a community called sea.
        alice: !community context twitch:pond
        < Your community is twitch:pond now.
        alice: !community info
        <~ twitch:pond (number 1)
        "#,
    )
    .await;
}
