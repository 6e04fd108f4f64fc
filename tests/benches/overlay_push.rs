//! Overlay push latency: a follow event posted to `POST /router/events` until the alert arrives
//! on connected overlay pages' event streams (`/overlay/<key>/events`), on the real server
//! (the standard bot on SQLite, authentication on) over loopback. Prints p50, p99 and max for
//! 1 and for `BENCH_WATCHERS` (default 50) connected pages (issue goal: pushed within 100 ms).
//!
//! Each row uses a fresh community: alerts queue one after another (at most 100 waiting), so a
//! row sends at most 100 follows.
//!
//! `cargo bench -p tests --bench overlay_push` (`BENCH_EVENTS` per row, default and at most
//! 100).

use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;
use waddlebot::Store;
use waddlebot_server::auth::{Authenticator, Role, new_api_key};
use waddlebot_server::{AppState, Config, app, build_router, serve};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Reads a page's stream until the next `show` event, and gives the page back.
async fn next_show(mut page: reqwest::Response) -> reqwest::Response {
    let mut buffer = String::new();
    while !buffer.contains("event: show") {
        let chunk = page.chunk().await.expect("read").expect("open");
        buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
    }
    page
}

/// Sends `events` follows to channel `channel` (a community of its own) with `watchers` pages
/// connected, and prints the latencies.
async fn row(
    base: &str,
    store: &dyn Store,
    collector: &str,
    channel: &str,
    watchers: usize,
    events: usize,
) {
    let http = reqwest::Client::new();
    let post = |message_type: &str, user: String, message: &str| {
        http.post(format!("{base}/router/events"))
            .bearer_auth(collector)
            .json(&serde_json::json!({
                "platform": "twitch", "server_id": channel, "channel_id": channel,
                "user_id": user, "username": user, "message": message,
                "message_type": message_type,
            }))
            .send()
    };
    // First sight of the channel makes its community.
    let first = post("chatMessage", "first".to_owned(), "!ping")
        .await
        .expect("posted")
        .json::<serde_json::Value>()
        .await
        .expect("json");
    let community =
        waddlebot::CommunityId(first["data"]["community_id"].as_i64().expect("community"));
    let key = waddlebot_server::overlay_keys::keys(store, community)
        .await
        .expect("key")
        .current;
    let mut pages = Vec::new();
    for _ in 0..watchers {
        let mut response = http
            .get(format!("{base}/overlay/{key}/events"))
            .send()
            .await
            .expect("stream");
        // The `state` event.
        response.chunk().await.expect("read");
        pages.push(response);
    }
    let mut histogram = Histogram::<u64>::new(3).expect("histogram");
    for n in 0..events {
        let readers: Vec<_> = pages
            .drain(..)
            .map(|page| tokio::spawn(next_show(page)))
            .collect();
        let started = Instant::now();
        let status = post("follow", format!("viewer{n}"), "")
            .await
            .expect("posted")
            .status();
        assert_eq!(status, 200);
        for reader in readers {
            pages.push(reader.await.expect("read"));
        }
        histogram
            .record(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX))
            .expect("recorded");
    }
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{watchers:>3} page(s) connected, {events} follows: event posted → alert on every page p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(0.5),
        ms(0.99),
        histogram.max() as f64 / 1000.0
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config {
            database_url: format!("sqlite://{}", dir.path().join("bench.db").display()),
            ..Config::default()
        };
        let router = Arc::new(build_router(&config, Vec::new()).await.expect("router"));
        let store: Arc<dyn Store> = Arc::clone(router.store());
        let (collector, record) = new_api_key("bench", Role::Admin, None, None).expect("api key");
        store.create_api_key(&record).await.expect("stored");
        let auth = Authenticator::new(Arc::clone(&store), None).expect("auth");
        let state = AppState::new(Arc::clone(&router), 1 << 20).with_auth(auth);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bound");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(serve(listener, app(state), std::future::pending()));
        let events = usize::try_from(setting("BENCH_EVENTS", 100))
            .unwrap_or(100)
            .min(100);
        let watchers = usize::try_from(setting("BENCH_WATCHERS", 50)).unwrap_or(50);
        row(&base, store.as_ref(), &collector, "pond", 1, events).await;
        row(&base, store.as_ref(), &collector, "lake", watchers, events).await;
    });
}
