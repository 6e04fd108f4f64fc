//! Session stores, in memory and on Redis (when `WADDLEBOT_TEST_REDIS_URL` is set).

use std::time::Duration;

use waddlebot::{CommunityId, EntityId, EventId, PlatformKind, SessionId};
use waddlebot_router::session::{MemorySessions, RedisSessions, SessionInfo, SessionStore};

fn info() -> SessionInfo {
    SessionInfo {
        community_id: CommunityId(3),
        entity_id: EntityId(7),
        platform: PlatformKind::Slack,
        server_id: "T1".into(),
        channel_id: "C1".into(),
        user_id: "U1".into(),
        event_id: EventId::random(),
    }
}

async fn sessions_round_trip(store: &dyn SessionStore) -> SessionId {
    let id = SessionId::random();
    let info = info();
    store.put(&id, info.clone()).await.expect("stored");
    assert_eq!(store.get(&id).await.expect("read"), Some(info));
    assert_eq!(store.get(&SessionId::random()).await.expect("read"), None);
    id
}

#[tokio::test]
async fn memory_sessions_round_trip_and_expire() {
    // The store reads the real clock; a 50 ms TTL keeps the waits short.
    let store = MemorySessions::new(Duration::from_millis(50));
    let id = sessions_round_trip(&store).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(store.get(&id).await.expect("read"), None, "expired");

    // Expired sessions are dropped as new ones arrive: three rounds of 400, a TTL apart, leave
    // the last two rounds held (the middle one expired, dropped at the next rotation).
    let store = MemorySessions::new(Duration::from_millis(50));
    for _ in 0..3 {
        for _ in 0..400 {
            store
                .put(&SessionId::random(), info())
                .await
                .expect("stored");
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert_eq!(store.len(), 800, "the first round is gone");
}

#[tokio::test]
async fn redis_sessions_round_trip_with_their_ttl_set() {
    let Ok(url) = std::env::var("WADDLEBOT_TEST_REDIS_URL") else {
        eprintln!("skipped: WADDLEBOT_TEST_REDIS_URL is not set");
        return;
    };
    let prefix = format!("waddlebot-test:{}:session:", uuid::Uuid::new_v4().simple());
    let store = RedisSessions::new(&url, &prefix, Duration::from_secs(3600)).expect("valid URL");
    let id = sessions_round_trip(&store).await;
    // Expiry is Redis's job; check it was asked to do it.
    let client = redis::Client::open(url.as_str()).expect("valid URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connected");
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{prefix}{}", id.0))
        .query_async(&mut connection)
        .await
        .expect("ttl");
    assert!((3500..=3600).contains(&ttl), "ttl {ttl}");
}
