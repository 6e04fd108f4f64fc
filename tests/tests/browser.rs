//! The web pages in a real browser: headless Chromium driven through ChromeDriver (WebDriver,
//! with fantoccini), against the real server on loopback.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them and sets
//! `WADDLEBOT_BROWSER_TESTS=required`, so CI fails rather than skips without them). Screenshots
//! of the overlay and the portal dashboard are saved under `target/screenshots/` for review.

#[allow(dead_code)]
mod admin;
#[allow(dead_code)]
mod loopback;
mod web;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use waddlebot_server::auth::Role;

const WAIT: Duration = Duration::from_secs(10);

/// A headless Chromium session. ChromeDriver runs in a process group of its own, and the whole
/// group (ChromeDriver and the browsers it started) is killed when this is dropped, even when a
/// test fails half-way.
struct Browser {
    client: Client,
    driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(pid) = self.driver.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
    }
}

/// Starts ChromeDriver and a headless Chromium, or `None` (with a note) when they are not
/// installed and not required.
async fn browser() -> Option<Browser> {
    let required = std::env::var("WADDLEBOT_BROWSER_TESTS").is_ok_and(|v| v == "required");
    let installed = ["/usr/bin/chromedriver", "/usr/bin/chromium"]
        .iter()
        .all(|path| std::path::Path::new(path).exists());
    if !installed {
        assert!(
            !required,
            "WADDLEBOT_BROWSER_TESTS=required but chromium/chromedriver are not installed"
        );
        eprintln!("skipped: install chromium and chromium-driver to run the browser tests");
        return None;
    }
    let port = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        socket.local_addr().expect("address").port()
    };
    let driver = tokio::process::Command::new("/usr/bin/chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::tempdir().expect("profile dir");
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1920,1080",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let client = loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => break client,
            // ChromeDriver is still starting.
            Err(_) if started.elapsed() < WAIT => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => panic!("no browser session: {err}"),
        }
    };
    Some(Browser {
        client,
        driver,
        _profile: profile,
    })
}

/// Saves a screenshot under `target/screenshots/<name>.png`.
async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).expect("screenshot written");
    println!("screenshot: {}", path.display());
}

/// Waits until the page's `<body data-connected>` says `state`.
async fn connected(client: &Client, state: &str) {
    let css = format!("body[data-connected=\"{state}\"]");
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&css))
        .await
        .unwrap_or_else(|err| panic!("never {state}: {err}"));
}

/// Waits until nothing matches `css`.
async fn gone(client: &Client, css: &str) {
    let started = Instant::now();
    while !client
        .find_all(Locator::Css(css))
        .await
        .expect("searched")
        .is_empty()
    {
        assert!(started.elapsed() < WAIT, "{css} never went away");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The visible text of the first element matching `css`, waiting for it to show (an alert
/// fades in: until it is visible, WebDriver reads no text).
async fn text_of(client: &Client, css: &str) -> String {
    let started = Instant::now();
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await {
            match element.text().await {
                Ok(text) if !text.is_empty() => return text,
                // Not visible yet, or replaced while reading.
                Ok(_) | Err(_) => {}
            }
        }
        assert!(started.elapsed() < WAIT, "{css} never showed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Opens a fresh sign-in link for `user` as `role` in community 1, uses it, and lands on the
/// dashboard.
async fn sign_in(client: &Client, bot: &web::WebBot, user: &str, role: Role) {
    let link = bot.login_link(user, role).await;
    client
        .goto(&format!("{}{link}", bot.base))
        .await
        .expect("opened");
    client
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("a sign-in button")
        .click()
        .await
        .expect("clicked");
    // The click returns before the next page is there: wait for it.
    let started = Instant::now();
    while text_of(client, "main h1").await != "Dashboard" {
        assert!(started.elapsed() < WAIT, "never reached the dashboard");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Alerts stay `secs` on screen in community 1.
async fn alert_seconds(bot: &web::WebBot, secs: u64) {
    let status = reqwest::Client::new()
        .patch(format!("{}/api/v1/communities/1/modules/alerts", bot.base))
        .bearer_auth(&bot.admin)
        .json(&json!({"config": {"duration_secs": secs}}))
        .send()
        .await
        .expect("answered")
        .status();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_alert_appears_on_the_overlay_goes_away_and_the_page_survives_a_restart() {
    let Some(browser) = browser().await else {
        return;
    };
    let client = &browser.client;
    let mut bot = web::start().await;
    alert_seconds(&bot, 2).await;
    let key = bot.overlay_key(1).await;
    client
        .goto(&format!("{}/overlay/{key}", bot.base))
        .await
        .expect("opened");
    connected(client, "true").await;

    let sent = Instant::now();
    bot.event("follow", "pingu", "").await;
    let title = text_of(client, "#alerts .item .alert-title").await;
    let seen = sent.elapsed();
    assert_eq!(title, "pingu followed!");
    println!("follow event → alert on screen in the browser: {seen:?}");
    bot.event("chatMessage", "alice", "!showticker Stream starts at 8 pm")
        .await;
    assert_eq!(
        text_of(client, "#ticker .ticker-text").await,
        "Stream starts at 8 pm"
    );
    screenshot(client, "overlay").await;
    gone(client, "#alerts .item").await;

    // The server goes away and comes back: the page reconnects by itself.
    bot.restart(Duration::from_millis(500)).await;
    connected(client, "true").await;
    bot.event("raid", "gunter", "").await;
    assert_eq!(
        text_of(client, "#alerts .item .alert-title").await,
        "gunter is raiding!"
    );
}

#[tokio::test]
async fn a_rotated_key_keeps_the_old_page_working_until_the_grace_period_ends() {
    let Some(browser) = browser().await else {
        return;
    };
    let client = &browser.client;
    let bot = web::start().await;
    let old = bot.overlay_key(1).await;
    client
        .goto(&format!("{}/overlay/{old}/alerts", bot.base))
        .await
        .expect("opened");
    connected(client, "true").await;
    let new = bot.rotate(3).await;
    bot.event("follow", "pingu", "").await;
    assert_eq!(
        text_of(client, "#alerts .item .alert-title").await,
        "pingu followed!",
        "the old URL works in the grace period"
    );
    connected(client, "revoked").await;
    bot.event("follow", "gunter", "").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let titles = client
        .find_all(Locator::Css(".alert-title"))
        .await
        .expect("searched");
    for title in titles {
        assert_ne!(title.text().await.expect("text"), "gunter followed!");
    }
    client.refresh().await.expect("reloaded");
    assert_eq!(text_of(client, "h1").await, "Not found");
    client
        .goto(&format!("{}/overlay/{new}/alerts", bot.base))
        .await
        .expect("opened");
    connected(client, "true").await;
}

#[tokio::test]
async fn an_owner_signs_in_with_a_link_adds_a_command_and_the_bot_answers_it() {
    let Some(browser) = browser().await else {
        return;
    };
    let client = &browser.client;
    let bot = web::start().await;
    sign_in(client, &bot, "ada", Role::Owner).await;
    screenshot(client, "portal-dashboard").await;

    client
        .find(Locator::LinkText("Commands"))
        .await
        .expect("a Commands link")
        .click()
        .await
        .expect("clicked");
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id("new-name"))
        .await
        .expect("the form")
        .send_keys("hello")
        .await
        .expect("typed");
    client
        .find(Locator::Id("new-response"))
        .await
        .expect("response field")
        .send_keys("Hello {user}, welcome to the pond!")
        .await
        .expect("typed");
    client
        .find(Locator::XPath("//button[text()='Add command']"))
        .await
        .expect("the add button")
        .click()
        .await
        .expect("clicked");
    assert_eq!(text_of(client, ".notice").await, "Command added.");
    assert!(
        client
            .source()
            .await
            .expect("html")
            .contains("Hello {user}, welcome to the pond!")
    );

    let answer = bot.event("chatMessage", "pingu", "!hello").await;
    assert_eq!(
        answer["data"]["replies"][0]["text"],
        "Hello pingu, welcome to the pond!"
    );

    // Keyboard only: the skip link is the first thing Tab reaches.
    client
        .find(Locator::Css("body"))
        .await
        .expect("body")
        .send_keys("\u{e004}")
        .await
        .expect("tabbed");
    let focused = client
        .execute("return document.activeElement.textContent", vec![])
        .await
        .expect("focus");
    assert_eq!(focused, json!("Skip to content"));
}

#[tokio::test]
async fn a_moderator_cannot_open_owner_pages() {
    let Some(browser) = browser().await else {
        return;
    };
    let client = &browser.client;
    let bot = web::start().await;
    sign_in(client, &bot, "mo", Role::Moderator).await;
    let menu = text_of(client, "nav").await;
    assert!(menu.contains("Aliases"), "{menu}");
    assert!(
        !menu.contains("Audit log") && !menu.contains("Overlay"),
        "{menu}"
    );
    for page in ["audit", "overlay"] {
        client
            .goto(&format!("{}/portal/1/{page}", bot.base))
            .await
            .expect("opened");
        assert_eq!(text_of(client, "h1").await, "Not for your role", "{page}");
    }
    // A phone-width screen: nothing wider than the window.
    client.set_window_size(390, 844).await.expect("resized");
    client
        .goto(&format!("{}/portal/1/aliases", bot.base))
        .await
        .expect("opened");
    let overflow = client
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth",
            vec![],
        )
        .await
        .expect("measured");
    assert_eq!(overflow, json!(true), "no sideways scrolling on a phone");
}
