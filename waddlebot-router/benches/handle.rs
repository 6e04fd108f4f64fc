//! `router.handle` throughput and latency, one core (a current-thread runtime), warm caches:
//!
//! (a) a custom text command with a template variable, in-memory limiter;
//! (b) a plain chat message checked against 50 string rules (none match);
//! (c) an alias that expands to that custom command;
//! plus plain chat with no handler and with two silent event handlers (what fan-out costs),
//! (a) on the SQLite store, and a `{count}` command (one SQLite write per use).
//!
//! `cargo bench -p waddlebot-router` (`BENCH_EVENTS` changes the sample size, `BENCH_ONLY=a`
//! runs only the rows named `(a)`).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use hdrhistogram::Histogram;
use waddlebot::store::{
    CustomCommand, EntityKey, MatchType, MemoryStore, RuleAction, SqliteStore, StringRule,
};
use waddlebot::{CommunityId, Event, PlatformKind, Store, Subscription};
use waddlebot_router::policy::{PolicyConfig, RateLimit};
use waddlebot_router::{Router, RouterConfig};

// The allocator the `waddlebot` binary ships with, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const VIEWERS: u64 = 500;

async fn setup(store: Arc<dyn Store>, response: &str) -> (Router, CommunityId) {
    setup_with(store, response, 0).await
}

/// Counts the events its handlers saw, so the bench can check they ran.
static OBSERVED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `observers` event handlers that look at every event and say nothing, as the member
/// directory and reputation do with chat.
async fn setup_with(
    store: Arc<dyn Store>,
    response: &str,
    observers: usize,
) -> (Router, CommunityId) {
    let key = EntityKey {
        platform: PlatformKind::Twitch,
        server_id: "bench".into(),
        channel_id: "bench".into(),
    };
    let community = store
        .resolve_entity(&key)
        .await
        .expect("entity")
        .community_id;
    let now = SystemTime::now();
    store
        .create_custom_command(&CustomCommand {
            community_id: community,
            name: "hello".into(),
            response: response.into(),
            created_by: "bench".into(),
            created_at: now,
            updated_at: now,
        })
        .await
        .expect("command");
    // The limiter is consulted on every command but never refuses: the figures are for commands
    // that run. 500 viewers repeat, as in a real chat.
    let config = RouterConfig {
        policy: PolicyConfig {
            user_rate: RateLimit::per_secs(1_000_000, 60),
            community_rate: None,
            ..PolicyConfig::default()
        },
        ..RouterConfig::default()
    };
    let mut builder = Router::builder().store(store).config(config);
    for n in 0..observers {
        builder = builder.event_handler(waddlebot::event_fn(
            Subscription::new(format!("observer{n}"), &["*"]).parallel(),
            |_ctx| async {
                OBSERVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            },
        ));
    }
    let router = builder.build().expect("router");
    (router, community)
}

/// Whether a row runs: `BENCH_ONLY=a` runs the rows whose name starts with `(a)`, `BENCH_ONLY=a,c`
/// those of (a) and (c) (for profiling one row); unset, every row runs.
fn wanted(name: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| {
        only.split(',')
            .any(|row| name.starts_with(&format!("({})", row.trim())))
    })
}

async fn measure(name: &str, router: &Router, events: u64, text: &str) {
    if !wanted(name) {
        return;
    }
    // The viewers' names exist before the run, as a platform's parser would have them: the
    // figures are the router's, not the bench's formatting.
    let viewers: Vec<String> = (0..VIEWERS).map(|n| format!("viewer{n}")).collect();
    let make = |i: u64| {
        let viewer = &viewers[usize::try_from(i % VIEWERS).expect("small")];
        Event::chat(
            PlatformKind::Twitch,
            "bench",
            "bench",
            viewer.as_str(),
            text,
        )
    };
    for i in 0..1_000 {
        router.handle(make(i)).await.expect("handled");
    }
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    let started = Instant::now();
    for i in 0..events {
        // Each event's latency on the TSC clock (a read costs ~9 ns here, std's ~21 ns); the
        // throughput on std's, over the whole run.
        let t = quanta::Instant::now();
        let outcome = router.handle(make(i)).await.expect("handled");
        let took = quanta::Instant::now().saturating_duration_since(t);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        latencies.record(nanos.max(1)).expect("in range");
        std::hint::black_box(outcome);
    }
    let elapsed = started.elapsed();
    let us = |q: f64| latencies.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{name:<44} {events:>7} events {:>9.0} events/s  p50 {:>7.1} µs  p99 {:>7.1} µs",
        events as f64 / elapsed.as_secs_f64(),
        us(0.50),
        us(0.99),
    );
}

async fn check(router: &Router, text: &str, expect: &str) {
    let outcome = router
        .handle(Event::chat(
            PlatformKind::Twitch,
            "bench",
            "bench",
            "viewer1",
            text,
        ))
        .await
        .expect("handled");
    let got: Vec<String> = outcome.replies.iter().map(|r| r.to_plain_text()).collect();
    assert_eq!(got, [expect], "bench setup for {text}");
}

fn rules(community: CommunityId) -> Vec<StringRule> {
    (0..50)
        .map(|i| {
            let (pattern, match_type) = match i % 5 {
                0 | 1 => (format!("forbidden phrase {i}"), MatchType::Contains),
                2 | 3 => (format!("badword{i}"), MatchType::Word),
                _ => (format!(r"(?:buy|cheap)\s+thing{i}\b"), MatchType::Regex),
            };
            StringRule {
                id: 0,
                community_id: community,
                pattern,
                match_type,
                case_sensitive: false,
                priority: i,
                action: RuleAction::Warn { message: None },
                enabled: true,
                match_count: 0,
                last_matched: None,
                created_by: "bench".into(),
                created_at: SystemTime::now(),
            }
        })
        .collect()
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: keep that quick.
    let benching = std::env::args().any(|a| a == "--bench");
    let events: u64 = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { 200_000 } else { 200 });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let greeting = "Hi {user}, welcome to the pond!";
        println!("router.handle on one core, warm caches, {VIEWERS} viewers repeating");

        let (router, community) = setup(Arc::new(MemoryStore::new()), greeting).await;
        check(&router, "!hello", "Hi viewer1, welcome to the pond!").await;
        measure(
            "(a) custom command, in-memory store",
            &router,
            events,
            "!hello",
        )
        .await;

        for rule in rules(community) {
            router.create_rule(rule).await.expect("rule");
        }
        check(
            &router,
            "buy thing4 now",
            "Warning: Your message contains content that may violate community guidelines.",
        )
        .await;
        let plain = "just chatting about the stream today, what a game";
        measure(
            "(b) plain chat against 50 string rules",
            &router,
            events,
            plain,
        )
        .await;

        router
            .create_alias(community, "hi", "!hello", "bench")
            .await
            .expect("alias");
        check(&router, "!hi", "Hi viewer1, welcome to the pond!").await;
        measure("(c) alias to the custom command", &router, events, "!hi").await;

        // What event handlers cost the router: plain chat without rules, with no handler and
        // with two that only look (the member directory and reputation do that on every
        // message).
        let (router, _) = setup(Arc::new(MemoryStore::new()), greeting).await;
        measure(
            "(d) plain chat, no rules, no handlers",
            &router,
            events,
            plain,
        )
        .await;
        let (router, _) = setup_with(Arc::new(MemoryStore::new()), greeting, 2).await;
        let before = OBSERVED.load(std::sync::atomic::Ordering::Relaxed);
        measure(
            "(e) the same, two silent event handlers",
            &router,
            events,
            plain,
        )
        .await;
        let seen = OBSERVED.load(std::sync::atomic::Ordering::Relaxed) - before;
        if wanted("(e)") {
            assert!(seen >= 2 * events, "both handlers saw every event ({seen})");
        }

        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.expect("sqlite"));
        let (router, _) = setup(sqlite, greeting).await;
        measure(
            "(a) custom command, SQLite store",
            &router,
            events,
            "!hello",
        )
        .await;

        let url = format!("sqlite://{}", dir.path().join("count.db").display());
        let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.expect("sqlite"));
        let (router, _) = setup(sqlite, "Hi {user}, visitor number {count}").await;
        measure(
            "(f) {count} command, SQLite (a write per use)",
            &router,
            events.min(5_000),
            "!hello",
        )
        .await;
    });
}
