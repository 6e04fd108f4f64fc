//! Every refusal, as chat users meet it, played as transcripts.

use std::time::{Duration, SystemTime};

use waddlebot::store::{CommandSettings, ModuleInstall, RoleGrant};
use waddlebot::{CommandSpec, Context, PermissionLevel, PlatformKind, command_fn};
use waddlebot_router::policy::{PolicyConfig, RateLimit};
use waddlebot_router::testing::Transcript;
use waddlebot_router::{Router, RouterBuilder, RouterConfig};

async fn hug(ctx: Context) -> String {
    format!(
        "{} hugs {}",
        ctx.user().name,
        ctx.args.get(0).unwrap_or("everyone")
    )
}

fn hugs(spec: CommandSpec) -> RouterBuilder {
    Router::builder().handler(command_fn(spec, hug))
}

#[tokio::test]
async fn a_role_grant_raises_a_users_level_in_that_community() {
    let t = Transcript::new(hugs(
        CommandSpec::new("hug").min_level(PermissionLevel::Vip),
    ))
    .expect("router");
    t.play(
        "
        alice: !hug bob
        < You need to be vip or higher to use !hug.
        carol@vip: !hug bob
        < carol hugs bob
        ",
    )
    .await;
    let community = t.community().await;
    t.router()
        .store()
        .put_role_grant(&RoleGrant {
            community_id: community,
            platform: PlatformKind::Twitch,
            user_id: "alice".into(),
            level: PermissionLevel::Moderator,
            granted_by: "owner".into(),
            granted_at: SystemTime::now(),
        })
        .await
        .expect("granted");
    t.play(
        "
        alice: !hug bob
        < alice hugs bob
        ",
    )
    .await;
}

#[tokio::test]
async fn a_user_cooldown_says_the_seconds_remaining_and_is_per_user() {
    let t = Transcript::new(hugs(
        CommandSpec::new("hug").cooldown(Duration::from_secs(30)),
    ))
    .expect("router");
    t.play(
        "
        alice: !hug
        < alice hugs everyone
        alice: !hug
        < !hug is on cooldown. Try again in 30 seconds.
        ~ wait 12s
        alice: !hug
        < !hug is on cooldown. Try again in 18 seconds.
        bob: !hug
        < bob hugs everyone
        ~ wait 18s
        alice: !hug
        < alice hugs everyone
        ",
    )
    .await;
}

#[tokio::test]
async fn a_global_cooldown_holds_everyone_and_buckets_are_shared() {
    let t = Transcript::new(
        Router::builder()
            .handler(command_fn(
                CommandSpec::new("hi")
                    .global_cooldown(Duration::from_secs(10))
                    .cooldown_bucket("greetings"),
                hug,
            ))
            .handler(command_fn(
                CommandSpec::new("hello")
                    .global_cooldown(Duration::from_secs(10))
                    .cooldown_bucket("greetings"),
                hug,
            )),
    )
    .expect("router");
    t.play(
        "
        alice: !hi
        < alice hugs everyone
        bob: !hello
        < !hello is on cooldown. Try again in 10 seconds.
        ~ wait 10s
        bob: !hello
        < bob hugs everyone
        ",
    )
    .await;
}

#[tokio::test]
async fn a_community_override_replaces_the_commands_own_rules() {
    let t = Transcript::new(hugs(
        CommandSpec::new("hug").cooldown(Duration::from_secs(30)),
    ))
    .expect("router");
    let community = t.community().await;
    let store = t.router().store();
    store
        .put_command_settings(&CommandSettings {
            user_cooldown_secs: Some(5),
            min_level: Some(PermissionLevel::Subscriber),
            ..CommandSettings::new(community, "hug")
        })
        .await
        .expect("saved");
    t.play(
        "
        alice: !hug
        < You need to be subscriber or higher to use !hug.
        alice@subscriber: !hug
        < alice hugs everyone
        alice@subscriber: !hug
        < !hug is on cooldown. Try again in 5 seconds.
        ",
    )
    .await;
    store
        .put_command_settings(&CommandSettings {
            enabled: false,
            ..CommandSettings::new(community, "hug")
        })
        .await
        .expect("saved");
    t.play(
        "
        alice@admin: !hug
        < Command !hug is currently disabled
        ",
    )
    .await;
}

#[tokio::test]
async fn exempt_levels_skip_cooldowns_only_when_configured() {
    let spec = CommandSpec::new("hug").cooldown(Duration::from_secs(60));
    let config = RouterConfig {
        policy: PolicyConfig {
            cooldown_exempt: Some(PermissionLevel::Moderator),
            ..PolicyConfig::default()
        },
        ..RouterConfig::default()
    };
    let t = Transcript::new(hugs(spec.clone()).config(config)).expect("router");
    t.play(
        "
        mod@moderator: !hug
        < mod hugs everyone
        mod@moderator: !hug
        < mod hugs everyone
        alice: !hug
        < alice hugs everyone
        alice: !hug
        <~ on cooldown
        ",
    )
    .await;
    let by_default = Transcript::new(hugs(spec)).expect("router");
    by_default
        .play(
            "
            mod@broadcaster: !hug
            < mod hugs everyone
            mod@broadcaster: !hug
            <~ on cooldown
            ",
        )
        .await;
}

#[tokio::test]
async fn sixty_five_uses_in_a_minute_run_sixty_times() {
    let t = Transcript::new(hugs(CommandSpec::new("hug"))).expect("router");
    let mut ran = 0;
    let mut refused = Vec::new();
    for _ in 0..65 {
        let replies = t.say("alice", PermissionLevel::Everyone, "!hug").await;
        if replies == ["alice hugs everyone"] {
            ran += 1;
        } else {
            refused.extend(replies);
        }
        t.clock().advance(Duration::from_millis(900));
    }
    assert_eq!(ran, 60);
    assert_eq!(refused.len(), 5);
    assert!(
        refused[0].starts_with("Rate limit exceeded for !hug. Try again in"),
        "{}",
        refused[0]
    );
}

#[tokio::test]
async fn a_community_rate_limit_covers_everyone_together() {
    let config = RouterConfig {
        policy: PolicyConfig {
            community_rate: Some(RateLimit::per_secs(3, 60)),
            ..PolicyConfig::default()
        },
        ..RouterConfig::default()
    };
    let t = Transcript::new(hugs(CommandSpec::new("hug")).config(config)).expect("router");
    t.play(
        "
        a: !hug
        < a hugs everyone
        b: !ping
        < Pong!
        c: !hug
        < c hugs everyone
        d: !hug
        < Rate limit exceeded for !hug. Try again in 60 seconds.
        ",
    )
    .await;
}

#[tokio::test]
async fn modules_can_be_turned_off_and_optional_ones_on() {
    let t = Transcript::new(
        Router::builder()
            .handler(command_fn(
                CommandSpec::new("hug")
                    .module("hugs")
                    .min_level(PermissionLevel::Vip),
                hug,
            ))
            .optional_handler(command_fn(
                CommandSpec::new("weather").module("weather"),
                |_ctx: Context| async { "Sunny" },
            )),
    )
    .expect("router");
    t.play(
        "
        alice@vip: !hug
        < alice hugs everyone
        alice: !weather
        < The 'weather' module is disabled for this community
        ",
    )
    .await;
    let community = t.community().await;
    let install = |module: &str, enabled| ModuleInstall {
        community_id: community,
        module: module.into(),
        enabled,
        config: serde_json::json!({}),
        updated_by: "owner".into(),
        updated_at: SystemTime::now(),
    };
    let store = t.router().store();
    store
        .put_module_install(&install("hugs", false))
        .await
        .expect("saved");
    store
        .put_module_install(&install("weather", true))
        .await
        .expect("saved");
    // The module check comes first: a viewer learns the module is off, not that they lack rank.
    t.play(
        "
        alice: !hug
        < The 'hugs' module is disabled for this community
        alice: !weather
        < Sunny
        alice: !ping
        < Pong!
        ",
    )
    .await;
}

#[tokio::test]
async fn help_tells_the_level_aliases_and_cooldowns_of_a_command() {
    let t = Transcript::new(hugs(
        CommandSpec::new("hug")
            .usage("hug [user]")
            .description("Hug someone")
            .alias("cuddle")
            .min_level(PermissionLevel::Vip)
            .cooldown(Duration::from_secs(30))
            .global_cooldown(Duration::from_secs(5)),
    ))
    .expect("router");
    t.play(
        "
        alice: !help hug
        < !hug — Hug someone. Usage: !hug [user]. For vip and above. Aliases: !cuddle. Cooldown: 30 s per person, 5 s for everyone.
        ",
    )
    .await;
}
