//! The community modules (aliases, quotes, reminders) as chat users meet them: a transcript
//! per module through a real router, on SQLite and, when `WADDLEBOT_TEST_POSTGRES_URL` is set,
//! on PostgreSQL; and the reminder scheduler on a paused clock, across a restart.

mod common;

use std::sync::Arc;
use std::time::Duration;

use waddlebot::clock::ManualClock;
use waddlebot::store::SqliteStore;
use waddlebot::testing::RecordingPlatform;
use waddlebot::{Event, PermissionLevel, PlatformKind, Store};
use waddlebot_modules::{
    Aliases, Calendar, CustomCommands, Inventory, Labels, Memories, Quotes, Reminders,
};
use waddlebot_router::Router;
use waddlebot_router::testing::Transcript;

fn bot(store: Arc<dyn Store>) -> Transcript {
    Transcript::new(
        Router::builder()
            .store(store)
            .handler(CustomCommands)
            .handler(Aliases)
            .handler(Quotes)
            .handler(Memories)
            .handler(Inventory)
            .handler(Labels)
            .handler(Calendar)
            .handler(Reminders),
    )
    .expect("router")
}

const ALIAS_SCRIPT: &str = r#"
    alice: !alias list
    < No aliases configured.
    alice: !alias add p !ping
    < You need to be moderator or higher to use !alias.
    mod@moderator: !alias
    <~ Usage: !alias add <name>
    mod@moderator: !alias add p
    <~ Usage: !alias add <name>
    mod@moderator: !alias add p !ping
    < Alias !p → !ping added.
    alice: !p
    < Pong!
    mod@moderator: !alias add p !help
    < Alias 'p' already exists (or a custom command has that name). Use '!alias remove p' first.
    mod@moderator: !alias add help !ping
    <~ built-in command
    mod@moderator: !alias add bad! !ping
    <~ not a valid alias name
    mod@moderator: !alias add pp "!ping"
    < Alias !pp → !ping added.
    mod@moderator: !alias add q !quote search
    < Alias !q → !quote search added.
    mod@moderator: !quote add "Penguins waddle" Pingu
    < Quote #1 added.
    alice: !q waddle
    < #1: "Penguins waddle" — Pingu (score +0)
    mod@moderator: !alias add loop1 !loop2
    < !loop2 is not a command here: create it first, or check the spelling.
    mod@moderator: !alias add loop2 !ping
    < Alias !loop2 → !ping added.
    mod@moderator: !alias add loop1 !loop2
    < Alias !loop1 → !loop2 added.
    mod@moderator: !alias remove loop2
    < Alias !loop2 removed.
    mod@moderator: !alias add loop2 !loop1
    < Alias !loop2 → !loop1 added.
    alice: !loop1
    <~ alias loop: !loop1 → !loop2 → !loop1
    alice: !alias list
    < Aliases: !loop1 → !loop2 (1×) | !loop2 → !loop1 (0×) | !p → !ping (1×) | !pp → !ping (0×) | !q → !quote search (1×)
    mod@moderator: !alias remove p
    < Alias !p removed.
    mod@moderator: !alias rm p
    < Alias 'p' not found.
    mod@moderator: !alias frob x
    < Unknown subcommand: frob. Use: add, remove, list
    alice: !p
    <~ Unknown command
"#;

#[tokio::test]
async fn the_alias_transcript() {
    for (name, store, _scratch) in common::stores().await {
        eprintln!("store: {name}");
        let bot = bot(store);
        bot.play(ALIAS_SCRIPT).await;
        // Changes made from chat are audited as the admin API's are.
        let community = bot.community().await;
        let audit = bot
            .router()
            .store()
            .list_audit(Some(community), 100, 0)
            .await
            .expect("audit");
        let made: Vec<(&str, &str, &str)> = audit
            .iter()
            .rev()
            .map(|e| (e.actor.as_str(), e.action.as_str(), e.target.as_str()))
            .filter(|(_, action, _)| action.starts_with("alias."))
            .collect();
        assert_eq!(
            made[..3],
            [
                ("twitch:mod", "alias.create", "p"),
                ("twitch:mod", "alias.create", "pp"),
                ("twitch:mod", "alias.create", "q"),
            ],
            "{made:?}"
        );
        assert!(
            made.contains(&("twitch:mod", "alias.delete", "p")),
            "{made:?}"
        );
    }
}

const QUOTE_SCRIPT: &str = r#"
    alice: !quote
    < No quotes yet. Add one with !quote add "text" [author].
    alice: !quote add "I like fish"
    < You need to be moderator or higher to use !quote.
    mod@moderator: !quote add
    <~ Usage: !quote
    mod@moderator: !quote add "I like fish" Pingu
    < Quote #1 added.
    mod@moderator: !quote add "Noot noot"
    < Quote #2 added.
    alice: !quote 1
    < #1: "I like fish" — Pingu (score +0)
    alice: !quote #2
    < #2: "Noot noot" (score +0)
    alice: !quote 9
    < No quote #9.
    alice: !quote search FISH
    < #1: "I like fish" — Pingu (score +0)
    alice: !quote search pingu
    < #1: "I like fish" — Pingu (score +0)
    alice: !quote search walrus
    < No quote matches "walrus".
    alice: !quote search
    <~ Usage: !quote
    alice: !quote up 1
    < Voted up #1: score +1.
    alice: !quote up 1
    < You already voted up #1 (score +1).
    bob: !quote down 1
    < Voted down #1: score +0.
    alice: !quote down 1
    < Voted down #1: score -2.
    alice: !quote up 9
    < No quote #9.
    alice: !quote up
    <~ Usage: !quote
    alice: !quote delete 1
    < You need to be moderator or higher to use !quote.
    mod@moderator: !quote delete 1
    < Quote #1 deleted.
    mod@moderator: !quote delete 1
    < No quote #1.
    alice: !quote
    < #2: "Noot noot" (score +0)
    alice: !quote what is this
    <~ Usage: !quote
"#;

#[tokio::test]
async fn the_quote_transcript() {
    for (name, store, _scratch) in common::stores().await {
        eprintln!("store: {name}");
        let transcript = bot(store);
        transcript.play(QUOTE_SCRIPT).await;
        let long = format!("!quote add \"{}\"", "a".repeat(501));
        let replies = transcript
            .say("mod", PermissionLevel::Moderator, &long)
            .await;
        assert_eq!(replies, ["That quote is too long: at most 500 characters."]);
    }
}

const MEMORIES_SCRIPT: &str = r#"
    alice: !memories list
    < No memories yet.
    alice: !memories add url "Docs" https://docs.example
    < You need to be moderator or higher to use !memories.
    mod@moderator: !memories add url "Docs"
    <~ Usage: !memories add url
    mod@moderator: !memories add url "Docs" ftp://files.example
    < 'ftp://files.example' is not a web address: use one starting with http:// or https://.
    mod@moderator: !memories add url "Docs" docs.example
    < 'docs.example' is not a web address: use one starting with http:// or https://.
    mod@moderator: !memories add url "Pond wiki" https://pond.example/wiki the penguin wiki
    < Bookmark #1 added: Pond wiki
    mod@moderator: !memories add note "Schedule" "Streams on Tuesdays" #Schedule plans schedule
    < Note #2 added: Schedule
    mod@moderator: !memories add note "Tags" "Too many" a b c d e f
    < A note can have at most 5 tags.
    mod@moderator: !memories add song "x" y
    <~ Usage: !memories add url
    alice: !memories list
    < #1 🔗 Pond wiki | #2 📝 Schedule
    alice: !memories list note
    < #2 📝 Schedule
    alice: !memories list videos
    <~ Usage: !memories
    alice: !memory get 1
    < #1 Pond wiki: https://pond.example/wiki — the penguin wiki (visited 1×)
    bob: !memories get #1
    < #1 Pond wiki: https://pond.example/wiki — the penguin wiki (visited 2×)
    alice: !memories get 2
    < #2 Schedule: Streams on Tuesdays [tags: schedule, plans]
    alice: !memories get 7
    < No memory #7.
    alice: !memories get
    <~ Usage: !memories
    alice: !memories search PLANS
    < #2 📝 Schedule
    alice: !memories search penguin wiki
    < #1 🔗 Pond wiki
    alice: !memories search walrus
    < No memory matches "walrus".
    alice: !memories delete 1
    < You need to be moderator or higher to use !memories.
    mod@moderator: !memories delete 1
    < Memory #1 deleted.
    mod@moderator: !memories delete 1
    < No memory #1.
    alice: !memories list url
    < No memories yet.
"#;

#[tokio::test]
async fn the_memories_transcript() {
    for (name, store, _scratch) in common::stores().await {
        eprintln!("store: {name}");
        let transcript = bot(store);
        transcript.play(MEMORIES_SCRIPT).await;
        let long = format!("!memories add note \"T\" \"{}\"", "n".repeat(1001));
        assert_eq!(
            transcript
                .say("mod", PermissionLevel::Moderator, &long)
                .await,
            ["That note is too long: at most 1000 characters."]
        );
    }
}

const INVENTORY_SCRIPT: &str = r#"
    alice: !inventory list
    < No items.
    alice: !inventory add mic "USB microphone"
    < You need to be moderator or higher to use !inventory.
    mod@moderator: !inventory add
    <~ Usage: !inventory add <name>
    mod@moderator: !inventory add mic
    <~ Usage: !inventory add <name>
    mod@moderator: !inventory add "big mic" "too many words"
    < Item names are 1 to 50 letters, digits, '-' or '_'.
    mod@moderator: !inventory add mic "USB microphone" audio gear
    < Added mic.
    mod@moderator: !inventory add MIC "Another one"
    < Item 'MIC' already exists.
    mod@moderator: !inventory add cable "XLR cable" audio audio
    < Duplicate label: audio.
    mod@moderator: !inventory add cable "XLR cable" a b c d e f
    < Maximum 5 labels allowed per item.
    mod@moderator: !inventory add cable "XLR cable" audio qty:3
    < Added cable ×3.
    mod@moderator: !inventory add lamp "Ring light" qty:0
    < The quantity must be a whole number from 1 to 10000.
    mod@moderator: !inventory checkout mic @Bob
    < mic checked out to bob.
    mod@moderator: !inventory checkout mic carol
    < mic is already checked out (by bob).
    mod@moderator: !inventory checkout drum carol
    < Item 'drum' not found.
    mod@moderator: !inventory checkout cable carol 2
    < 2 of cable checked out to carol; 1 left.
    mod@moderator: !inventory checkout cable dave 2
    < Only 1 of cable available.
    mod@moderator: !inventory checkout cable dave
    < 1 of cable checked out to dave; 0 left.
    alice: !inventory status cable
    < cable: XLR cable — 0 of 3 available (out: carol ×2, dave ×1) [labels: audio]
    alice: !inventory list checkedout
    < cable (0/3 available) | mic (out: bob)
    alice: !inventory list available
    < No items.
    alice: !inventory list lost
    <~ Usage: !inventory
    mod@moderator: !inventory checkin cable
    < Several people have cable: carol ×2, dave ×1. Say whose: checkin cable <user>.
    mod@moderator: !inventory checkin cable carol 3
    < carol has only 2 of cable.
    mod@moderator: !inventory checkin cable carol 1
    < 1 of cable checked in from carol; 1 available.
    mod@moderator: !inventory checkin cable erin
    < erin has no cable.
    mod@moderator: !inventory checkin mic
    < mic checked in.
    mod@moderator: !inventory checkin mic
    < mic is not checked out.
    mod@moderator: !inventory delete cable
    < cable is checked out by carol ×1, dave ×1; check it in first.
    mod@moderator: !inventory labels mic add streaming
    < mic labels: audio, gear, streaming
    mod@moderator: !inventory labels mic add gear
    < Duplicate label: gear.
    mod@moderator: !inventory labels mic drop gear
    < Invalid action: use add or remove.
    mod@moderator: !inventory labels mic remove video
    < mic has no label video.
    alice: !inventory search STREAMING
    < mic (available)
    alice: !inventory search xlr
    < cable (1/3 available)
    alice: !inventory search tuba
    < No item matches "tuba".
    alice: !inventory stats
    < Inventory: 2 items (4 units); checked out: 2 units of 1 items; available: 2 units.
    alice: !inventory history mic
    < mic: label add streaming by mod | checkin 1 from bob by mod | checkout 1 to bob by mod | add quantity 1 by mod
    mod@moderator: !inventory delete mic
    < Deleted mic.
    alice: !inventory status mic
    < Item 'mic' not found.
    alice: !inv frobnicate
    <~ Usage: !inventory
"#;

#[tokio::test]
async fn the_inventory_transcript() {
    for (name, store, _scratch) in common::stores().await {
        eprintln!("store: {name}");
        bot(store).play(INVENTORY_SCRIPT).await;
    }
}

const LABEL_SCRIPT: &str = r#"
    alice: !label list user @bob
    < user bob has no labels.
    alice: !label add user bob vip-guest
    < You need to be moderator or higher to use !label.
    mod@moderator: !label add
    <~ Usage: !label add <type>
    mod@moderator: !label add user bob
    <~ Usage: !label add <type>
    mod@moderator: !label add planet mars red
    < Unknown label type 'planet': use user, item, event, command, memory, alias, module, community.
    mod@moderator: !label add user @Bob event-autoapprove
    < Labelled user bob event-autoapprove.
    mod@moderator: !label add user bob event-autoapprove
    < That user already has the label event-autoapprove.
    mod@moderator: !label add user bob bad!label
    < Label names are 1 to 50 letters, digits, '-' or '_'.
    mod@moderator: !label add user bob guest for 2h
    < Labelled user bob guest for 2h.
    mod@moderator: !label add user bob trial for ever
    < 'ever' is not a time: use a number and a unit, like 10m or 2h.
    mod@moderator: !label add user bob trial in 2h
    <~ Usage: !label
    alice: !label list user bob
    < user bob: event-autoapprove, guest
    ~ wait 3h
    alice: !labels list user bob
    < user bob: event-autoapprove
    mod@moderator: !label add user bob a
    < Labelled user bob a.
    mod@moderator: !label add user bob b
    < Labelled user bob b.
    mod@moderator: !label add user bob c
    < Labelled user bob c.
    mod@moderator: !label add user bob d
    < Labelled user bob d.
    mod@moderator: !label add user bob e
    < user can have maximum 5 labels.
    mod@moderator: !label add item mic a
    < Labelled item mic a.
    mod@moderator: !label remove user bob a
    < Removed a from user bob.
    mod@moderator: !label remove user bob a
    < user bob has no label a.
    mod@moderator: !label frob user bob a
    <~ Usage: !label
"#;

#[tokio::test]
async fn the_label_transcript() {
    for (name, store, _scratch) in common::stores().await {
        eprintln!("store: {name}");
        let transcript = bot(store);
        transcript.play(LABEL_SCRIPT).await;
        // Other modules read labels; users are named per platform.
        let community = transcript.community().await;
        let now = transcript.router().clock().now();
        let store = transcript.router().store().as_ref();
        let bob = waddlebot_modules::target_key("user", &PlatformKind::Twitch, "@BOB");
        assert!(
            waddlebot_modules::has_label(store, community, &bob, "event-autoapprove", now)
                .await
                .expect("read")
        );
        let discord_bob = waddlebot_modules::target_key("user", &PlatformKind::Discord, "bob");
        assert!(
            !waddlebot_modules::has_label(store, community, &discord_bob, "event-autoapprove", now)
                .await
                .expect("read")
        );
    }
}

const CALENDAR_SCRIPT: &str = r#"
    alice: !event list
    < No upcoming events.
    alice: !event add "Movie night" "2026-01-10 20:00"
    < You need to be moderator or higher to use !event.
    mod@moderator: !event add "Movie night"
    <~ Usage: !event add
    mod@moderator: !event add "Mo" "2026-01-10 20:00"
    < The title must be 3 to 255 characters.
    mod@moderator: !event add "Movie night" "10.01.2026 20:00"
    < '10.01.2026 20:00' is not a date and time: use YYYY-MM-DD HH:MM (24-hour), like 2026-12-24 18:30.
    mod@moderator: !event add "Movie night" "2025-12-31 20:00"
    < 2025-12-31 20:00 Europe/Berlin is in the past.
    mod@moderator: !event add "Movie night" "2026-01-10 20:00" "We watch Happy Feet" "Discord stage" 0
    < The most attendees must be a whole number from 1.
    mod@moderator: !event add "Movie night" "2026-01-10 20:00" "We watch Happy Feet" "Discord stage" 2
    < Event #1 submitted for approval: Movie night, 2026-01-10 20:00 Europe/Berlin.
    alice: !event list pending
    < You need to be moderator or higher to use !event.
    mod@moderator: !event list pending
    < #1 Movie night (2026-01-10 20:00 Europe/Berlin)
    alice: !event join 1
    < Event #1 is not open for answers.
    mod@moderator: !event approve 1
    < You need to be broadcaster or higher to use !event.
    owner@broadcaster: !event approve 1
    < Event #1 approved: Movie night.
    owner@broadcaster: !event approve 1
    < Event #1 is not pending.
    owner@broadcaster: !event add "Game night" "2026-01-05 19:00"
    < Event #2 added: Game night, 2026-01-05 19:00 Europe/Berlin.
    alice: !event list
    < #2 Game night (2026-01-05 19:00 Europe/Berlin) | #1 Movie night (2026-01-10 20:00 Europe/Berlin)
    alice: !event join 1
    < You're going to #1 Movie night (1 going).
    bob: !event join 1
    < You're going to #1 Movie night (2 going).
    carol: !event join 1
    < #1 is full; you are number 1 on the waitlist.
    dave: !event join 1 maybe
    < Noted: maybe for #1 Movie night.
    erin: !event join 1 sure
    <~ Usage: !event
    alice: !event leave 1
    < You left #1 Movie night. @carol moves up from the waitlist and is going.
    alice: !event leave 1
    < You are not on event #1.
    alice: !calendar info 1
    < #1 Movie night (approved): 2026-01-10 20:00 Europe/Berlin at Discord stage — We watch Happy Feet; going 2/2.
    alice: !event info 9
    < No event #9.
    alice: !event cancel 1
    < You may not cancel event #1.
    mod@moderator: !event cancel 1
    < Event #1 cancelled: Movie night.
    mod@moderator: !event cancel 1
    < Event #1 is already cancelled.
    mod@moderator: !event add "Stream planning" "2026-01-07 18:00"
    < Event #3 submitted for approval: Stream planning, 2026-01-07 18:00 Europe/Berlin.
    owner@broadcaster: !event reject 3 Not this week
    < Event #3 rejected: Not this week
    mod@moderator: !event list rejected
    < #3 Stream planning (2026-01-07 18:00 Europe/Berlin)
    owner@broadcaster: !event repeat 2 weekly until 2026-01-31
    < Event #2 repeats weekly until 2026-01-31: 3 more (#4, #5, #6).
    owner@broadcaster: !event repeat 2 hourly until 2026-01-31
    <~ Usage: !event
    owner@broadcaster: !event repeat 2 monthly until 2028-01-01
    < Events repeat at most a year ahead.
    owner@broadcaster: !event repeat 2 daily until 31/01/2026
    < '31/01/2026' is not a date: use YYYY-MM-DD.
    owner@broadcaster: !event edit 2 time 2026-01-05 20:00
    < Event #2 updated: Game night, 2026-01-05 20:00 Europe/Berlin.
    owner@broadcaster: !event edit 2 time 2025-01-05 20:00
    < 2025-01-05 20:00 Europe/Berlin is in the past.
    mod@moderator: !event edit 2 title Board games
    < You may not edit event #2.
    owner@broadcaster: !label add user mod event-autoapprove
    < Labelled user mod event-autoapprove.
    mod@moderator: !event add "Quiz" "2026-01-08 18:00"
    < Event #7 added: Quiz, 2026-01-08 18:00 Europe/Berlin.
    ~ wait 200h
    alice: !event list
    < #4 Game night (2026-01-12 19:00 Europe/Berlin) | #5 Game night (2026-01-19 19:00 Europe/Berlin) | #6 Game night (2026-01-26 19:00 Europe/Berlin)
"#;

#[tokio::test]
async fn the_calendar_transcript() {
    for (name, store, _scratch) in common::stores().await {
        eprintln!("store: {name}");
        let transcript = bot(Arc::clone(&store));
        let community = transcript.community().await;
        transcript
            .configure("calendar", serde_json::json!({"timezone": "Europe/Berlin"}))
            .await;
        transcript.play(CALENDAR_SCRIPT).await;
        // Approved events have their reminders scheduled; the cancelled one's are gone.
        let reminders = waddlebot::schedule::list(store.as_ref(), community, "calendar")
            .await
            .expect("read");
        let ids: Vec<String> = reminders.iter().map(|r| r.id.clone()).collect();
        let c = community.0;
        assert!(
            !ids.iter().any(|id| id.starts_with(&format!("cal-{c}-1-"))),
            "{ids:?}"
        );
        assert!(
            !ids.iter().any(|id| id.starts_with(&format!("cal-{c}-3-"))),
            "{ids:?}"
        );
        let game_hour = reminders
            .iter()
            .find(|r| r.id == format!("cal-{c}-2-1h"))
            .expect("the 1-hour reminder of #2");
        // 2026-01-05 20:00 in Berlin is 19:00 UTC; an hour before is 18:00 UTC.
        assert_eq!(game_hour.due_ms, 1_767_636_000_000);
        assert_eq!(
            game_hour.text,
            "📅 Reminder: Game night (#2) starts in 1 hour, at 2026-01-05 20:00 Europe/Berlin."
        );
        assert_eq!(
            ids.len(),
            5 * 3,
            "#2, #4, #5, #6 and #7, three each: {ids:?}"
        );
    }
}

const REMINDER_SCRIPT: &str = r#"
    alice: !remind
    <~ Usage: !remind <text> in
    alice: !remind stretch
    <~ Usage: !remind <text> in
    alice: !remind stretch in 10
    < Time string must end with a unit (m/h/d/w), like 10m or 2h.
    alice: !remind stretch in tenm
    < 'tenm' is not a time: use a number and a unit, like 10m or 2h.
    alice: !remind stretch in 0m
    < The time must be at least 1m.
    alice: !remind stretch in 60w
    < Reminders can be set at most 52 weeks ahead.
    alice: !remind in 5m
    <~ Usage: !remind <text> in
    alice: !remind list
    < No reminders pending.
    alice: !remind stretch in 2h
    < Okay @alice, I'll remind you in 2h: stretch (#1)
    alice: !remind "drink water" in 30m daily
    < Okay @alice, I'll remind you in 30m (daily): drink water (#2)
    bob: !remind feed the cat in 1d
    < Okay @bob, I'll remind you in 1d: feed the cat (#3)
    alice: !remind list
    < Reminders: #2 in 30m: drink water | #1 in 2h: stretch
    ~ wait 10m
    alice: !remind list
    < Reminders: #2 in 20m: drink water | #1 in 1h 50m: stretch
    alice: !remind cancel 3
    < Reminder #3 is not yours.
    alice: !remind cancel 9
    < No reminder #9.
    alice: !remind cancel x
    <~ Usage: !remind
    alice: !remind cancel #1
    < Reminder #1 cancelled.
    mod@moderator: !remind list
    < Reminders: #2 in 20m: drink water | #3 in 23h 50m: feed the cat
    mod@moderator: !remind cancel 3
    < Reminder #3 cancelled.
"#;

#[tokio::test]
async fn the_reminder_transcript() {
    for (name, store, _scratch) in common::stores().await {
        eprintln!("store: {name}");
        let transcript = bot(store);
        transcript.play(REMINDER_SCRIPT).await;
        let long = format!("!remind {} in 5m", "a".repeat(301));
        assert_eq!(
            transcript
                .say("alice", PermissionLevel::Everyone, &long)
                .await,
            ["That reminder is too long: at most 300 characters."]
        );
    }
}

/// A bot on `store` whose router reads `clock` and delivers to `twitch`.
fn scheduled_bot(
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    twitch: Arc<RecordingPlatform>,
) -> Arc<Router> {
    Arc::new(
        Router::builder()
            .store(store)
            .clock(clock)
            .platform(twitch)
            .handler(Reminders)
            .build()
            .expect("router"),
    )
}

async fn say(router: &Router, user: &str, text: &str) -> Vec<String> {
    let event = Event::chat(PlatformKind::Twitch, "pond", "pond", user, text);
    router
        .handle(event)
        .await
        .expect("handled")
        .replies
        .iter()
        .map(|r| r.to_plain_text())
        .collect()
}

/// The scheduler checks every 10 ms of real time; the bot's clock moves only when the test
/// says. So "not yet" is checked by letting the scheduler run many rounds.
const POLL: Duration = Duration::from_millis(10);

async fn rounds() {
    tokio::time::sleep(POLL * 20).await;
}

/// Waits (up to 10 s) until `twitch` has sent `count` messages.
async fn delivered(twitch: &RecordingPlatform, count: usize) -> Vec<String> {
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while twitch.sent_texts().len() < count {
            tokio::time::sleep(POLL).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "{count} deliveries expected, got {:?}",
        twitch.sent_texts()
    );
    twitch.sent_texts()
}

#[tokio::test]
async fn reminders_arrive_on_time_repeat_and_survive_a_restart_once() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("bot.db").display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.expect("opened"));
    let clock = Arc::new(ManualClock::new());
    let twitch = Arc::new(RecordingPlatform::new(PlatformKind::Twitch));
    let router = scheduled_bot(Arc::clone(&store), Arc::clone(&clock), Arc::clone(&twitch));
    let scheduler = router.start_scheduler(POLL);

    say(&router, "alice", "!remind stretch in 5m").await;
    say(&router, "alice", "!remind drink water in 10m daily").await;
    clock.advance(Duration::from_secs(4 * 60 + 59));
    rounds().await;
    assert!(twitch.sent_texts().is_empty(), "nothing before its time");
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        delivered(&twitch, 1).await,
        ["⏰ @alice, reminder: stretch"]
    );
    let sent = twitch.sent();
    assert_eq!(
        (sent[0].server_id.as_str(), sent[0].channel_id.as_str()),
        ("pond", "pond"),
        "to the channel it was asked in"
    );

    clock.advance(Duration::from_secs(5 * 60));
    let texts = delivered(&twitch, 2).await;
    assert_eq!(texts[1], "⏰ @alice, reminder (daily): drink water");
    rounds().await;
    assert_eq!(twitch.sent_texts().len(), 2, "each once");

    // The process stops; a day and an hour pass; a new one starts on the same database.
    scheduler.stop().await;
    drop(router);
    clock.advance(Duration::from_secs(25 * 3600));
    let twitch = Arc::new(RecordingPlatform::new(PlatformKind::Twitch));
    let router = scheduled_bot(Arc::clone(&store), Arc::clone(&clock), Arc::clone(&twitch));
    let scheduler = router.start_scheduler(POLL);
    assert_eq!(
        delivered(&twitch, 1).await,
        ["⏰ @alice, reminder (daily): drink water"],
        "the missed daily reminder is delivered at start"
    );
    clock.advance(Duration::from_secs(3600));
    rounds().await;
    assert_eq!(
        twitch.sent_texts().len(),
        1,
        "once, and not again before its next day"
    );
    let listed = say(&router, "alice", "!remind list").await;
    assert_eq!(listed, ["Reminders: #2 in 22h: drink water"]);
    scheduler.stop().await;
}

#[tokio::test]
async fn a_refused_reminder_is_tried_again_and_then_given_up() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open("sqlite::memory:").await.expect("db"));
    let clock = Arc::new(ManualClock::new());
    let twitch = Arc::new(RecordingPlatform::new(PlatformKind::Twitch));
    let router = scheduled_bot(Arc::clone(&store), Arc::clone(&clock), Arc::clone(&twitch));
    // Asked on Discord, where this process has no platform to deliver with.
    let event = Event::chat(
        PlatformKind::Discord,
        "guild",
        "general",
        "alice",
        "!remind ping in 1m",
    );
    router.handle(event).await.expect("handled");
    let scheduler = router.start_scheduler(POLL);
    let pending = || async {
        waddlebot::schedule::due(store.as_ref(), u64::MAX, 10)
            .await
            .expect("read")
    };
    for attempt in 1..waddlebot_router::scheduler::MAX_ATTEMPTS {
        clock.advance(Duration::from_secs(61));
        rounds().await;
        let left = pending().await;
        assert_eq!(left.len(), 1, "kept for another try");
        assert_eq!(left[0].attempts, attempt);
    }
    clock.advance(Duration::from_secs(61));
    rounds().await;
    assert!(
        pending().await.is_empty(),
        "given up after the last attempt"
    );
    assert!(twitch.sent_texts().is_empty());
    scheduler.stop().await;
}
