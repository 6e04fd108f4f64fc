//! The admin API through the real server on loopback, with authentication on: custom commands
//! created, read, changed and deleted per community (and heard in chat at once), the checks a
//! community owner, a viewer and another community's owner meet, pagination, and bad input.

#[allow(dead_code)]
mod admin;
// Only the server half of the shared helpers is used here.
#[allow(dead_code)]
mod loopback;

use admin::{call, chat, start, token};
use serde_json::{Value, json};
use waddlebot_server::auth::Role;

#[tokio::test]
async fn a_community_owner_manages_commands_and_chat_hears_them_at_once() {
    let bot = start().await;
    let owner = token(Role::Owner, Some(1));
    let commands = format!("{}/communities/1/commands", bot.base);
    let (status, body) = call(
        reqwest::Method::POST,
        commands.clone(),
        &owner,
        Some(json!({"name": "!hello", "response": "Hi {user}!"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["name"], "hello");
    assert_eq!(chat(&bot, "!hello").await, ["Hi alice!"]);

    let one = format!("{commands}/hello");
    let (status, body) = call(
        reqwest::Method::PUT,
        one.clone(),
        &owner,
        Some(json!({"response": "Welcome, {user}."})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        chat(&bot, "!hello").await,
        ["Welcome, alice."],
        "no stale cache"
    );

    let viewer = token(Role::Viewer, Some(1));
    let (status, body) = call(reqwest::Method::GET, one.clone(), &viewer, None).await;
    assert_eq!(
        (status, body["data"]["response"].clone()),
        (200, json!("Welcome, {user}."))
    );
    let (status, _) = call(reqwest::Method::DELETE, one.clone(), &viewer, None).await;
    assert_eq!(status, 403, "a viewer reads but does not change");

    let (status, _) = call(reqwest::Method::DELETE, one.clone(), &owner, None).await;
    assert_eq!(status, 200);
    let (status, _) = call(reqwest::Method::DELETE, one, &owner, None).await;
    assert_eq!(status, 404);
    assert!(chat(&bot, "!hello").await[0].contains("Unknown command"));
}

#[tokio::test]
async fn another_communitys_owner_learns_nothing() {
    let bot = start().await;
    let owner_a = token(Role::Owner, Some(1));
    let owner_b = token(Role::Owner, Some(2));
    let commands = format!("{}/communities/1/commands", bot.base);
    call(
        reqwest::Method::POST,
        commands.clone(),
        &owner_a,
        Some(json!({"name": "secret", "response": "hush"})),
    )
    .await;
    for path in ["/secret", "/missing", ""] {
        let (status, body) = call(
            reqwest::Method::GET,
            format!("{commands}{path}"),
            &owner_b,
            None,
        )
        .await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(!body.to_string().contains("hush"));
    }
    let (status, _) = call(
        reqwest::Method::GET,
        format!("{}/communities/99/commands", bot.base),
        &owner_b,
        None,
    )
    .await;
    assert_eq!(
        status, 403,
        "whether community 99 exists is not told either"
    );

    let (_, mine) = call(
        reqwest::Method::GET,
        format!("{}/communities", bot.base),
        &owner_b,
        None,
    )
    .await;
    let items = mine["data"]["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{mine}");
    assert_eq!(
        (&items[0]["id"], &items[0]["name"]),
        (&json!(2), &json!("lake"))
    );
    let admin = token(Role::Admin, None);
    let (_, all) = call(
        reqwest::Method::GET,
        format!("{}/communities", bot.base),
        &admin,
        None,
    )
    .await;
    assert_eq!(all["data"]["items"].as_array().map(Vec::len), Some(2));
    let (status, _) = call(
        reqwest::Method::GET,
        format!("{}/communities/99/commands", bot.base),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 404, "an admin may learn it does not exist");
}

#[tokio::test]
async fn bad_input_is_refused_with_the_reason_and_lists_are_paged() {
    let bot = start().await;
    let owner = token(Role::Owner, Some(1));
    let commands = format!("{}/communities/1/commands", bot.base);
    let post = |body: Value| call(reqwest::Method::POST, commands.clone(), &owner, Some(body));
    let cases = [
        (json!({"name": "ping", "response": "x"}), 409, "built-in"),
        (
            json!({"name": "bad name!", "response": "x"}),
            400,
            "not a valid command name",
        ),
        (
            json!({"name": "oops", "response": "Hi {usr}"}),
            400,
            "template",
        ),
        (
            json!({"name": "oops", "response": "x", "extra": 1}),
            400,
            "extra",
        ),
    ];
    for (body, status, words) in cases {
        let (got, answer) = post(body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .is_some_and(|m| m.contains(words)),
            "{answer}"
        );
    }
    for name in ["a", "b", "c"] {
        assert_eq!(post(json!({"name": name, "response": "x"})).await.0, 201);
    }
    assert_eq!(post(json!({"name": "a", "response": "y"})).await.0, 409);
    let (status, page) = call(
        reqwest::Method::GET,
        format!("{commands}?limit=2&offset=1"),
        &owner,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = page["data"]["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["b", "c"]);
    assert_eq!(page["data"]["total"], 3);
    assert_eq!(
        page["data"]["pagination"],
        json!({"page": 1, "per_page": 2, "total": 3, "pages": 2})
    );
    // The original's clients page with page and per_page.
    let (status, second) = call(
        reqwest::Method::GET,
        format!("{commands}?page=2&per_page=2"),
        &owner,
        None,
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["data"]["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(second["data"]["items"][0]["name"], "c");
    assert_eq!(
        second["data"]["pagination"],
        json!({"page": 2, "per_page": 2, "total": 3, "pages": 2})
    );
    assert_eq!(second["data"]["offset"], 2);
    for query in [
        "limit=0",
        "limit=101",
        "offset=-1",
        "limit=ten",
        "page=0",
        "per_page=101",
        "page=2&limit=2",
        "per_page=2&offset=1",
    ] {
        let (status, _) = call(
            reqwest::Method::GET,
            format!("{commands}?{query}"),
            &owner,
            None,
        )
        .await;
        assert_eq!(status, 400, "{query}");
    }
    let (status, _) = call(
        reqwest::Method::GET,
        format!("{}/communities/abc/commands", bot.base),
        &owner,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let patch = reqwest::Client::new()
        .patch(format!("{commands}/a"))
        .bearer_auth(&owner)
        .send()
        .await
        .expect("answered");
    assert_eq!(patch.status(), 405);
    assert_eq!(patch.headers()["allow"], "GET, PUT, DELETE");
}

#[tokio::test]
async fn moderators_manage_aliases_checked_like_chat() {
    let bot = start().await;
    let moderator = token(Role::Moderator, Some(1));
    let aliases = format!("{}/communities/1/aliases", bot.base);
    let post = |body: Value| {
        call(
            reqwest::Method::POST,
            aliases.clone(),
            &moderator,
            Some(body),
        )
    };
    let (status, body) = post(json!({"name": "p", "target": "!ping"})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["target"], "!ping");
    assert_eq!(
        chat(&bot, "!p").await,
        ["Pong!"],
        "the alias runs in chat at once"
    );

    let (status, body) = post(json!({"name": "help", "target": "!ping"})).await;
    assert_eq!(status, 409, "a built-in cannot be shadowed: {body}");
    assert_eq!(post(json!({"name": "p", "target": "!help"})).await.0, 409);
    let viewer = token(Role::Viewer, Some(1));
    let (status, _) = call(
        reqwest::Method::POST,
        aliases.clone(),
        &viewer,
        Some(json!({"name": "q", "target": "!ping"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, list) = call(reqwest::Method::GET, aliases.clone(), &viewer, None).await;
    assert_eq!(status, 200);
    assert_eq!(list["data"]["items"][0]["name"], "p");

    let (status, _) = call(
        reqwest::Method::DELETE,
        format!("{aliases}/p"),
        &moderator,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        reqwest::Method::DELETE,
        format!("{aliases}/p"),
        &moderator,
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn every_change_is_in_the_audit_log_of_its_community() {
    let bot = start().await;
    let owner = token(Role::Owner, Some(1));
    let commands = format!("{}/communities/1/commands", bot.base);
    call(
        reqwest::Method::POST,
        commands.clone(),
        &owner,
        Some(json!({"name": "hello", "response": "Hi"})),
    )
    .await;
    call(
        reqwest::Method::PUT,
        format!("{commands}/hello"),
        &owner,
        Some(json!({"response": "Hello!"})),
    )
    .await;
    call(
        reqwest::Method::DELETE,
        format!("{commands}/hello"),
        &owner,
        None,
    )
    .await;

    let (status, log) = call(
        reqwest::Method::GET,
        format!("{}/communities/1/audit", bot.base),
        &owner,
        None,
    )
    .await;
    assert_eq!(status, 200, "{log}");
    let items = log["data"]["items"].as_array().expect("items");
    let actions: Vec<&str> = items.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(
        actions,
        ["command.delete", "command.update", "command.create"]
    );
    assert_eq!(
        items[1]["detail"],
        json!({"before": "Hi", "after": "Hello!"})
    );
    assert!(
        items[0]["actor"]
            .as_str()
            .is_some_and(|a| a.contains("tester"))
    );

    let moderator = token(Role::Moderator, Some(1));
    let (status, _) = call(
        reqwest::Method::GET,
        format!("{}/communities/1/audit", bot.base),
        &moderator,
        None,
    )
    .await;
    assert_eq!(status, 403, "the audit log is for community admins and up");
    let (status, _) = call(
        reqwest::Method::GET,
        format!("{}/communities/1/audit", bot.base),
        &token(Role::Owner, Some(2)),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, bot_wide) = call(
        reqwest::Method::GET,
        format!("{}/audit", bot.base),
        &token(Role::Admin, None),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        bot_wide["data"]["items"],
        json!([]),
        "no bot-wide change yet"
    );
}

/// The original's router read API: commands and entities behind the collector credential
/// (collectors are bot-wide: they read every community, as admins do).
#[tokio::test]
async fn the_router_read_api_lists_commands_and_entities() {
    let bot = start().await;
    let root = bot.base.trim_end_matches("/api/v1").to_owned();
    let owner = token(Role::Owner, Some(1));
    let collector = token(Role::Collector, None);
    let communities = format!("{}/communities/1", bot.base);
    let (status, _) = call(
        reqwest::Method::POST,
        format!("{communities}/commands"),
        &owner,
        Some(json!({"name": "hello", "response": "Hi {user}!"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = call(
        reqwest::Method::POST,
        format!("{communities}/aliases"),
        &owner,
        Some(json!({"name": "hi", "target": "!hello"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = call(
        reqwest::Method::PATCH,
        format!("{communities}/modules/quotes"),
        &owner,
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 200);

    let (status, listed) = call(
        reqwest::Method::GET,
        format!("{root}/router/commands?community=1&per_page=100"),
        &collector,
        None,
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    let items = listed["data"]["items"].as_array().expect("items").clone();
    let find = |name: &str, kind: &str| {
        items
            .iter()
            .find(|i| i["name"] == name && i["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} {name} in {listed}"))
            .clone()
    };
    assert_eq!(find("ping", "builtin")["enabled"], true);
    assert_eq!(
        find("quote", "builtin")["enabled"],
        false,
        "its module is off"
    );
    assert_eq!(find("quote", "builtin")["module"], "quotes");
    assert_eq!(find("hello", "custom")["response"], "Hi {user}!");
    assert_eq!(find("hi", "alias")["target"], "!hello");
    assert_eq!(find("rep", "builtin")["level"], "everyone");
    assert!(listed["data"]["pagination"]["total"].as_u64() > Some(10));

    let (_, off) = call(
        reqwest::Method::GET,
        format!("{root}/router/commands?community=1&enabled=false&module=quotes"),
        &collector,
        None,
    )
    .await;
    let names: Vec<&str> = off["data"]["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(names, ["quote"], "{off}");

    let (status, _) = call(
        reqwest::Method::GET,
        format!("{root}/router/commands"),
        &collector,
        None,
    )
    .await;
    assert_eq!(status, 400, "a bot-wide credential names the community");
    let (status, _) = call(
        reqwest::Method::GET,
        format!("{root}/router/commands?community=1"),
        &owner,
        None,
    )
    .await;
    assert_eq!(status, 403, "a community role is not a collector");

    let (status, entities) = call(
        reqwest::Method::GET,
        format!("{root}/router/entities"),
        &collector,
        None,
    )
    .await;
    assert_eq!(status, 200, "{entities}");
    assert_eq!(entities["data"]["items"][0]["channel_id"], "pond");
    assert_eq!(entities["data"]["items"][0]["community"], 1);
    let (_, none) = call(
        reqwest::Method::GET,
        format!("{root}/router/entities?community=2"),
        &collector,
        None,
    )
    .await;
    assert_eq!(
        none["data"]["total"], 0,
        "community 2 has no channel: {none}"
    );

    let (status, health) = call(
        reqwest::Method::GET,
        format!("{root}/router/health"),
        &collector,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(health["checks"]["store"], "ok");
}
