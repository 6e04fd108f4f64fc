//! `router.handle` for a custom text command with one template variable, warm caches, on the
//! embedded SQLite store. Prints events per second and latency percentiles.
//!
//! `cargo bench -p waddlebot-router` (set `BENCH_EVENTS` to change the sample size).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use hdrhistogram::Histogram;
use waddlebot::store::{CustomCommand, EntityKey, MemoryStore, SqliteStore};
use waddlebot::{Event, PlatformKind, Store};
use waddlebot_router::policy::PolicyConfig;
use waddlebot_router::{Router, RouterConfig};

async fn setup(store: Arc<dyn Store>, response: &str) -> Router {
    let key = EntityKey {
        platform: PlatformKind::Twitch,
        server_id: "bench".into(),
        channel_id: "bench".into(),
    };
    let entity = store.resolve_entity(&key).await.expect("entity");
    let now = SystemTime::now();
    store
        .create_custom_command(&CustomCommand {
            community_id: entity.community_id,
            name: "hello".into(),
            response: response.into(),
            created_by: "bench".into(),
            created_at: now,
            updated_at: now,
        })
        .await
        .expect("command");
    // Every event is a different viewer and the community limit is off, so the limiter is
    // consulted on every event but never refuses: the figures are for commands that run.
    let config = RouterConfig {
        policy: PolicyConfig {
            community_rate: None,
            ..PolicyConfig::default()
        },
        ..RouterConfig::default()
    };
    Router::builder()
        .store(store)
        .config(config)
        .build()
        .expect("router")
}

async fn measure(name: &str, router: &Router, events: u64) {
    let make = |i: u64| {
        Event::chat(
            PlatformKind::Twitch,
            "bench",
            "bench",
            format!("viewer{i}"),
            "!hello",
        )
    };
    // Warm the entity and command caches and the connection pool.
    for i in 0..200 {
        router.handle(make(u64::MAX - i)).await.expect("handled");
    }
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    let started = Instant::now();
    for i in 0..events {
        let t = Instant::now();
        let outcome = router.handle(make(i)).await.expect("handled");
        let nanos = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
        latencies.record(nanos.max(1)).expect("in range");
        assert!(
            matches!(&outcome.replies[..], [waddlebot::Reply::Text { text }] if text.starts_with("Hi ")),
            "the command ran: {:?}",
            outcome.replies
        );
    }
    let elapsed = started.elapsed();
    let us = |q: f64| latencies.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{name:<30} {events:>7} events  {:>9.0} events/s  p50 {:>7.1} µs  p99 {:>7.1} µs  max {:>8.1} µs",
        events as f64 / elapsed.as_secs_f64(),
        us(0.50),
        us(0.99),
        latencies.max() as f64 / 1000.0,
    );
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep that quick.
    let benching = std::env::args().any(|a| a == "--bench");
    let events: u64 = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { 20_000 } else { 200 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.expect("sqlite"));
        println!("router.handle, custom command `!hello` → \"Hi {{user}}, welcome to the pond!\", warm caches");
        let greeting = "Hi {user}, welcome to the pond!";
        measure("SQLite file (WAL)", &setup(sqlite, greeting).await, events).await;
        let memory = Arc::new(MemoryStore::new());
        measure("in-memory store", &setup(memory, greeting).await, events).await;

        // With {count}, every use is also a counter write: this measures that write.
        let url = format!("sqlite://{}", dir.path().join("bench-count.db").display());
        let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.expect("sqlite"));
        let counting = "Hi {user}, you are visitor {count}";
        println!("and with a counter: \"{counting}\"");
        measure("SQLite file (WAL), {count}", &setup(sqlite, counting).await, events).await;
    });
}
