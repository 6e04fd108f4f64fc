//! Two routers on one database: a change made through one is seen by the other at once when
//! they share a Redis invalidation bus (and only when its cache entry expires otherwise).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use waddlebot::store::{CustomCommand, MemoryStore};
use waddlebot::{Event, PlatformKind, Store};
use waddlebot_router::Router;
use waddlebot_router::invalidation::RedisInvalidation;

fn hello() -> Event {
    Event::chat(PlatformKind::Twitch, "pond", "pond", "alice", "!hello")
}

async fn answer(router: &Router) -> String {
    router.handle(hello()).await.expect("handled").replies[0].to_plain_text()
}

async fn add_hello(router: &Router) {
    let community = router.handle(hello()).await.expect("handled").community_id;
    let now = SystemTime::now();
    router
        .store()
        .create_custom_command(&CustomCommand {
            community_id: community,
            name: "hello".into(),
            response: "Hi {user}".into(),
            created_by: "mod".into(),
            created_at: now,
            updated_at: now,
        })
        .await
        .expect("created");
}

#[tokio::test]
async fn a_shared_bus_makes_the_other_router_see_the_change() {
    let Ok(url) = std::env::var("WADDLEBOT_TEST_REDIS_URL") else {
        eprintln!("skipped: WADDLEBOT_TEST_REDIS_URL is not set");
        return;
    };
    let prefix = format!("waddlebot-test:{}:", uuid::Uuid::new_v4().simple());
    let database: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let router = || {
        Router::builder()
            .store(Arc::clone(&database))
            .invalidation(Arc::new(
                RedisInvalidation::new(&url, &prefix).expect("valid URL"),
            ))
            .build()
            .expect("valid wiring")
    };
    let (a, b) = (router(), router());
    assert!(
        answer(&a).await.starts_with("Unknown command"),
        "a caches the miss"
    );
    // Let both listeners subscribe before the change is published.
    tokio::time::sleep(Duration::from_millis(300)).await;
    add_hello(&b).await;
    let mut seen = String::new();
    for _ in 0..40 {
        seen = answer(&a).await;
        if seen == "Hi alice" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, "Hi alice");
}

#[tokio::test]
async fn without_a_bus_the_other_router_keeps_its_cached_answer() {
    let database: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let router = || {
        Router::builder()
            .store(Arc::clone(&database))
            .build()
            .expect("valid wiring")
    };
    let (a, b) = (router(), router());
    assert!(answer(&a).await.starts_with("Unknown command"));
    add_hello(&b).await;
    assert_eq!(answer(&b).await, "Hi alice", "the writer sees it at once");
    assert!(
        answer(&a).await.starts_with("Unknown command"),
        "the other process serves its cached miss until it expires"
    );
}
