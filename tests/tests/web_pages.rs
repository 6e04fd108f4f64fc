//! The web pages over real HTTP: overlay pages and their event stream, the public command page
//! and the portal's sign-in, CSRF and authorization. (The same pages in a real browser:
//! `browser.rs`.)

#[allow(dead_code)]
mod admin;
#[allow(dead_code)]
mod loopback;
mod web;

use std::time::{Duration, Instant};

use reqwest::redirect::Policy;
use serde_json::json;
use waddlebot_server::auth::Role;
use web::{Stream, start};

const WAIT: Duration = Duration::from_secs(5);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn an_overlay_opens_with_its_key_and_nothing_tells_which_keys_exist() {
    let bot = start().await;
    let key = bot.overlay_key(1).await;
    let page = reqwest::get(format!("{}/overlay/{key}", bot.base))
        .await
        .expect("answered");
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("text")
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.expect("html");
    for source in waddlebot::OverlayReply::SOURCES {
        assert!(
            html.contains(&format!("id=\"{source}\"")),
            "{source} in {html}"
        );
    }
    let alone = reqwest::get(format!("{}/overlay/{key}/alerts", bot.base))
        .await
        .expect("answered")
        .text()
        .await
        .expect("html");
    assert!(alone.contains("id=\"alerts\"") && !alone.contains("id=\"ticker\""));

    let missing = reqwest::get(format!("{}/overlay/{}", bot.base, "ab".repeat(32)))
        .await
        .expect("answered");
    assert_eq!(missing.status(), 404);
    let missing = missing.text().await.expect("html");
    let malformed = reqwest::get(format!("{}/overlay/not-a-key", bot.base))
        .await
        .expect("answered");
    assert_eq!(malformed.status(), 404);
    assert_eq!(
        malformed.text().await.expect("html"),
        missing,
        "one 404 page"
    );
    let stream = reqwest::get(format!("{}/overlay/{}/events", bot.base, "cd".repeat(32)))
        .await
        .expect("answered");
    assert_eq!(stream.status(), 404);
    let unknown_source = reqwest::get(format!("{}/overlay/{key}/fireworks", bot.base))
        .await
        .expect("answered");
    assert_eq!(unknown_source.status(), 404);
}

#[tokio::test]
async fn events_and_replies_reach_a_connected_overlay_and_a_late_one_gets_what_is_on_screen() {
    let bot = start().await;
    let key = bot.overlay_key(1).await;
    let url = format!("{}/overlay/{key}/events", bot.base);
    let mut page = Stream::open(&url).await;
    let state = page.next(WAIT).await.expect("state");
    assert_eq!(state.event, "state");
    assert_eq!(state.data["items"], json!([]));

    let started = Instant::now();
    let outcome = bot.event("follow", "pingu", "").await;
    let shown = page.next(WAIT).await.expect("pushed");
    let latency = started.elapsed();
    assert_eq!(shown.event, "show");
    assert_eq!(shown.data["item"]["source"], "alerts");
    assert_eq!(shown.data["item"]["item"]["title"], "pingu followed!");
    assert_eq!(
        outcome["data"]["replies"],
        json!([]),
        "overlay items are not sent to the chat"
    );
    println!("follow → overlay push over loopback: {latency:?}");

    // A chat command's overlay reply goes on the ticker; three in a row queue up.
    for n in 1..=3 {
        bot.event("chatMessage", "alice", &format!("!showticker news {n}"))
            .await;
    }
    let mut tickers = Vec::new();
    for _ in 0..3 {
        tickers.push(page.next(WAIT).await.expect("pushed").data["item"].clone());
    }
    assert_eq!(tickers[0]["item"]["text"], "news 1");
    assert_eq!(
        tickers[1]["starts_at_ms"], tickers[0]["ends_at_ms"],
        "the second ticker waits for the first"
    );

    // A remote module's late answer for the overlay (`POST /router/responses`) arrives too.
    let ping = bot.event("chatMessage", "alice", "!ping").await;
    let late = reqwest::Client::new()
        .post(format!("{}/router/responses", bot.base))
        .bearer_auth(&bot.admin)
        .json(&json!({
            "session_id": ping["data"]["session_id"], "entity_id": ping["data"]["entity_id"],
            "module_name": "weather", "response_action": "general",
            "content": "<p>Sunny <script>alert(1)</script></p>", "duration": 0,
        }))
        .send()
        .await
        .expect("answered");
    assert_eq!(late.status(), 200, "{:?}", late.text().await);
    let general = page.next(WAIT).await.expect("pushed").data["item"].clone();
    assert_eq!(general["source"], "general");
    assert_eq!(general["item"]["content"], "<p>Sunny </p>", "sanitised");

    // A page that connects now gets the alert and the tickers still on screen or queued.
    let mut late = Stream::open(&url).await;
    let state = late.next(WAIT).await.expect("state");
    let sources: Vec<&str> = state.data["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["source"].as_str().expect("source"))
        .collect();
    assert_eq!(sources, ["alerts", "ticker", "ticker", "ticker", "general"]);

    // Closed pages are forgotten: their streams end and stop counting as watchers.
    assert_eq!(bot.router.overlays().watchers(waddlebot::CommunityId(1)), 2);
    drop(late);
    let started = Instant::now();
    while bot.router.overlays().watchers(waddlebot::CommunityId(1)) > 1 {
        assert!(started.elapsed() < WAIT, "a closed page still counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Another community's events do not reach this overlay.
    let lake_key = bot.overlay_key(2).await;
    assert_ne!(lake_key, key);
    bot.router
        .overlays()
        .show(
            waddlebot::CommunityId(2),
            waddlebot::OverlayReply::Ticker {
                text: "lake news".into(),
                duration_secs: 5,
            },
        )
        .expect("shown");
    assert!(
        page.next(Duration::from_millis(300)).await.is_none(),
        "nothing from community 2"
    );
}

#[tokio::test]
async fn a_rotated_key_keeps_its_overlay_until_the_grace_ends_then_the_stream_is_closed() {
    let bot = start().await;
    let old = bot.overlay_key(1).await;
    let mut page = Stream::open(&format!("{}/overlay/{old}/events", bot.base)).await;
    assert_eq!(page.next(WAIT).await.expect("state").event, "state");
    let new = bot.rotate(2).await;
    assert_ne!(new, old);
    bot.event("raid", "pingu", "").await;
    let shown = page
        .next(WAIT)
        .await
        .expect("still pushed in the grace period");
    assert_eq!(shown.data["item"]["item"]["text"], "with 0 viewers");
    let revoked = page.next(WAIT).await.expect("told");
    assert_eq!(revoked.event, "revoked");
    assert!(page.next(WAIT).await.is_none(), "the stream ends");
    let status = reqwest::get(format!("{}/overlay/{old}", bot.base))
        .await
        .expect("answered")
        .status();
    assert_eq!(status, 404, "the old key is gone");
    let status = reqwest::get(format!("{}/overlay/{new}", bot.base))
        .await
        .expect("answered")
        .status();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_command_page_lists_enabled_commands_with_custom_responses_and_no_remote_urls() {
    let bot = start().await;
    let admin = &bot.admin;
    let http = reqwest::Client::new();
    let api = |path: &str| format!("{}/api/v1/communities/1{path}", bot.base);
    let created = http
        .post(api("/commands"))
        .bearer_auth(admin)
        .json(&json!({"name": "discord", "response": "Join us <b>at</b> example.org"}))
        .send()
        .await
        .expect("answered");
    assert_eq!(created.status(), 201);
    http.post(api("/aliases"))
        .bearer_auth(admin)
        .json(&json!({"name": "dc", "target": "discord"}))
        .send()
        .await
        .expect("answered");
    let patched = http
        .patch(api("/modules/inventory"))
        .bearer_auth(admin)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .expect("answered");
    assert_eq!(patched.status(), 200);
    let remote = http
        .post(api("/remote-modules"))
        .bearer_auth(admin)
        .json(
            &json!({"name": "weather", "url": "https://weather.example.com/hook",
                      "secret": "a-secret-of-some-length", "commands": ["weather"]}),
        )
        .send()
        .await
        .expect("answered");
    assert_eq!(remote.status(), 201, "{:?}", remote.text().await);

    for address in ["/c/pond/commands", "/c/1/commands"] {
        let page = reqwest::get(format!("{}{address}", bot.base))
            .await
            .expect("answered");
        assert_eq!(page.status(), 200);
        let html = page.text().await.expect("html");
        assert!(html.contains("!quote"), "built-in modules listed");
        assert!(html.contains("!discord"), "custom command listed");
        assert!(
            html.contains("Join us &lt;b&gt;at&lt;/b&gt; example.org"),
            "its response, escaped"
        );
        assert!(html.contains("!dc"), "its alias");
        assert!(html.contains("#weather"), "remote command listed");
        assert!(!html.contains("weather.example.com"), "never the URL");
        assert!(!html.contains("!inventory"), "switched-off module hidden");
        assert!(html.contains("moderator and above"), "levels shown");
    }
    let lake = reqwest::get(format!("{}/c/lake/commands", bot.base))
        .await
        .expect("answered")
        .text()
        .await
        .expect("html");
    assert!(!lake.contains("!discord"), "each community its own page");
    let missing = reqwest::get(format!("{}/c/nowhere/commands", bot.base))
        .await
        .expect("answered");
    assert_eq!(missing.status(), 404);
}

/// The value of a `Set-Cookie` named `name` in a response.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            let value = v[name.len() + 1..].split(';').next().unwrap_or("");
            (value.to_owned(), v.to_owned())
        })
}

/// The hidden `csrf` field of a page.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..at + 64].to_owned()
}

/// Signs in through a login link; answers the session cookie.
async fn sign_in_with_link(base: &str, link: &str) -> String {
    let http = client();
    let page = http
        .get(format!("{base}{link}"))
        .send()
        .await
        .expect("answered");
    assert_eq!(page.status(), 200);
    let (login, _) = set_cookie(&page, "wb_login").expect("sign-in cookie");
    let html = page.text().await.expect("html");
    assert!(html.contains("Sign in"), "{html}");
    let signed = http
        .post(format!("{base}{link}"))
        .header("cookie", format!("wb_login={login}"))
        .form(&[("csrf", csrf_of(&html))])
        .send()
        .await
        .expect("answered");
    assert_eq!(signed.status(), 303);
    assert_eq!(signed.headers()["location"], "/portal/1");
    let (session, header) = set_cookie(&signed, "wb_portal").expect("session cookie");
    assert!(
        header.contains("HttpOnly") && header.contains("SameSite=Strict"),
        "{header}"
    );
    session
}

#[tokio::test]
async fn a_login_link_works_once_and_forms_need_the_session_csrf_token() {
    let bot = start().await;
    let link = bot.login_link("ada", Role::Owner).await;
    let http = client();

    // Without the sign-in cookie's token, the link is not used up.
    let refused = http
        .post(format!("{}{link}", bot.base))
        .form(&[("csrf", "x".repeat(64))])
        .send()
        .await
        .expect("answered");
    assert_eq!(refused.status(), 403);

    let session = sign_in_with_link(&bot.base, &link).await;
    let again = http
        .get(format!("{}{link}", bot.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(again.status(), 404, "single use");

    let cookie = format!("wb_portal={session}");
    let dashboard = http
        .get(format!("{}/portal/1", bot.base))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answered");
    assert_eq!(dashboard.status(), 200);
    let html = dashboard.text().await.expect("html");
    assert!(html.contains("pond") && html.contains("ada"), "{html}");
    let csrf = csrf_of(&html);

    // A form without the token changes nothing.
    let forged = http
        .post(format!("{}/portal/1/commands", bot.base))
        .header("cookie", &cookie)
        .form(&[("action", "add"), ("name", "hi"), ("response", "Hi!")])
        .send()
        .await
        .expect("answered");
    assert_eq!(forged.status(), 403);
    let added = http
        .post(format!("{}/portal/1/commands", bot.base))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "add"),
            ("name", "hi"),
            ("response", "Hi {user}!"),
        ])
        .send()
        .await
        .expect("answered");
    assert_eq!(added.status(), 303);
    assert_eq!(
        added.headers()["location"],
        "/portal/1/commands?done=command-added"
    );
    let answer = bot.event("chatMessage", "pingu", "!hi").await;
    assert_eq!(answer["data"]["replies"][0]["text"], "Hi pingu!");
    let audit = bot
        .store
        .list_audit(Some(waddlebot::CommunityId(1)), 10, 0)
        .await
        .expect("audit");
    assert!(
        audit
            .iter()
            .any(|e| e.action == "command.create" && e.actor.contains("ada")),
        "audited as the portal user: {audit:?}"
    );

    // The same validation as chat: a bad name is refused with the reason, on the page.
    let bad = http
        .post(format!("{}/portal/1/commands", bot.base))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "add"),
            ("name", "ping"),
            ("response", "x"),
        ])
        .send()
        .await
        .expect("answered");
    assert_eq!(bad.status(), 409, "a built-in has the name");
    assert!(bad.text().await.expect("html").contains("class=\"error\""));

    // Signing out ends the session.
    let out = http
        .post(format!("{}/portal/logout", bot.base))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("answered");
    assert_eq!(out.status(), 303);
    let after = http
        .get(format!("{}/portal/1", bot.base))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answered");
    assert_eq!(after.status(), 303);
    assert_eq!(after.headers()["location"], "/portal/login");
}

#[tokio::test]
async fn a_moderator_sees_less_than_an_owner_and_nobody_crosses_communities() {
    let bot = start().await;
    let moderator =
        sign_in_with_link(&bot.base, &bot.login_link("mo", Role::Moderator).await).await;
    let cookie = format!("wb_portal={moderator}");
    let http = client();
    let get = |path: &str| {
        http.get(format!("{}{path}", bot.base))
            .header("cookie", &cookie)
            .send()
    };
    let dashboard = get("/portal/1").await.expect("answered");
    assert_eq!(dashboard.status(), 200);
    let html = dashboard.text().await.expect("html");
    assert!(html.contains("href=\"/portal/1/aliases\""));
    assert!(
        !html.contains("href=\"/portal/1/audit\""),
        "no owner pages in the menu"
    );
    for owner_page in ["/portal/1/audit", "/portal/1/overlay"] {
        assert_eq!(
            get(owner_page).await.expect("answered").status(),
            403,
            "{owner_page}"
        );
    }
    let commands = get("/portal/1/commands").await.expect("answered");
    assert_eq!(commands.status(), 200);
    assert!(
        !commands.text().await.expect("html").contains("Add command"),
        "moderators read commands but do not edit them"
    );
    assert_eq!(
        get("/portal/2").await.expect("answered").status(),
        403,
        "community 2"
    );

    let owner = sign_in_with_link(&bot.base, &bot.login_link("ada", Role::Owner).await).await;
    let page = http
        .get(format!("{}/portal/1/overlay", bot.base))
        .header("cookie", format!("wb_portal={owner}"))
        .send()
        .await
        .expect("answered");
    assert_eq!(page.status(), 200);
    let key = bot.overlay_key(1).await;
    assert!(
        page.text().await.expect("html").contains(&key),
        "overlay URLs shown"
    );

    // The reputation leaderboard, readable by moderators.
    bot.event("subscription", "pingu", "").await;
    let board = get("/portal/1/reputation").await.expect("answered");
    assert_eq!(board.status(), 200);
    let html = board.text().await.expect("html");
    assert!(
        html.contains("pingu") && html.contains("605.00") && html.contains("fair"),
        "{html}"
    );
}

#[tokio::test]
async fn an_api_key_signs_in_and_a_wrong_one_is_refused() {
    let bot = start().await;
    let (key, record) = waddlebot_server::auth::new_api_key(
        "owner-key",
        Role::Owner,
        Some(waddlebot::CommunityId(1)),
        None,
    )
    .expect("key");
    bot.store.create_api_key(&record).await.expect("stored");
    let http = client();
    let form = http
        .get(format!("{}/portal/login", bot.base))
        .send()
        .await
        .expect("answered");
    let (login, _) = set_cookie(&form, "wb_login").expect("sign-in cookie");
    let csrf = csrf_of(&form.text().await.expect("html"));
    let attempt = |key: String| {
        http.post(format!("{}/portal/login", bot.base))
            .header("cookie", format!("wb_login={login}"))
            .form(&[("csrf", csrf.clone()), ("key", key)])
            .send()
    };
    let wrong = attempt(format!("wbot_{}", "0".repeat(43)))
        .await
        .expect("answered");
    assert_eq!(wrong.status(), 401);
    assert!(set_cookie(&wrong, "wb_portal").is_none());
    let right = attempt(key).await.expect("answered");
    assert_eq!(right.status(), 303);
    assert_eq!(right.headers()["location"], "/portal/1");
    assert!(set_cookie(&right, "wb_portal").is_some());
}

#[tokio::test]
async fn module_settings_with_rules_are_checked_when_saved() {
    let bot = start().await;
    let patch = |module: &str, config: serde_json::Value| {
        reqwest::Client::new()
            .patch(format!(
                "{}/api/v1/communities/1/modules/{module}",
                bot.base
            ))
            .bearer_auth(&bot.admin)
            .json(&json!({ "config": config }))
            .send()
    };
    let bad = patch(
        "shoutout",
        json!({"templates": {"twitch": {"live": "Watch {display_name}!"}}}),
    )
    .await
    .expect("answered");
    assert_eq!(bad.status(), 400);
    let message = bad.json::<serde_json::Value>().await.expect("json")["message"].clone();
    assert_eq!(
        message,
        "shoutout settings: templates.twitch.live: a shoutout template must contain {display_name} and {login}"
    );
    let good = patch(
        "shoutout",
        json!({"templates": {"twitch": {"live": "Watch {display_name} at twitch.tv/{login}!"}}}),
    )
    .await
    .expect("answered");
    assert_eq!(good.status(), 200);
    let weights = patch("reputation", json!({"weights": {"follow": "0.00001"}}))
        .await
        .expect("answered");
    assert_eq!(weights.status(), 400, "more than four decimals");
}
