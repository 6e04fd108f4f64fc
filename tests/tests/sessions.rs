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
}

#[tokio::test]
async fn memory_sessions_reuse_expired_slots_instead_of_growing() {
    let store = MemorySessions::new(Duration::from_millis(50));
    // Ids in the router's shape, spread evenly over the store's shards.
    let id = |n: u64| SessionId(format!("sess_{:016x}{n:016x}", n.wrapping_mul(0x9E37_79B9)));
    for n in 0..2_000 {
        store.put(&id(n), info()).await.expect("stored");
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    for n in 2_000..4_000 {
        store.put(&id(n), info()).await.expect("stored");
    }
    // Far below the capacity of a million: the expired sessions made room.
    assert_eq!(
        store.len(),
        2_000,
        "the new sessions took the expired ones' slots"
    );
    for n in 2_000..4_000 {
        assert!(
            store.get(&id(n)).await.expect("read").is_some(),
            "live ones kept"
        );
    }
}

#[tokio::test]
async fn memory_sessions_keep_the_newest_when_full() {
    let store = MemorySessions::with_capacity(Duration::from_secs(3600), 160);
    let ids: Vec<SessionId> = (0..1000).map(|_| SessionId::random()).collect();
    for id in &ids {
        store.put(id, info()).await.expect("stored");
    }
    assert_eq!(store.len(), 160, "full, and no larger");
    assert_eq!(
        store.get(&ids[0]).await.expect("read"),
        None,
        "the oldest made room"
    );
    assert!(
        store.get(&ids[999]).await.expect("read").is_some(),
        "the newest is kept"
    );

    // Ids in another shape, as a program may choose, are kept too.
    let own = SessionId("my-own-id".to_owned());
    store.put(&own, info()).await.expect("stored");
    assert!(store.get(&own).await.expect("read").is_some());
    assert_eq!(
        store
            .get(&SessionId("my-own-i".to_owned()))
            .await
            .expect("read"),
        None
    );
}

#[tokio::test]
async fn memory_sessions_wrap_around_a_ring_of_several_chunks() {
    // 2,500 a shard: each ring grows over three chunks of slots, fills, and wraps around.
    let store = MemorySessions::with_capacity(Duration::from_secs(3600), 16 * 2_500);
    let ids: Vec<SessionId> = (0..100_000).map(|_| SessionId::random()).collect();
    for id in &ids {
        store.put(id, info()).await.expect("stored");
    }
    assert_eq!(store.len(), 40_000, "every shard full, and no larger");
    for id in &ids[..1_000] {
        assert_eq!(
            store.get(id).await.expect("read"),
            None,
            "old ones made room"
        );
    }
    for id in &ids[99_000..] {
        assert!(
            store.get(id).await.expect("read").is_some(),
            "new ones kept"
        );
    }
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

#[tokio::test]
async fn memory_sessions_tell_ids_of_near_shapes_apart() {
    let store = MemorySessions::new(Duration::from_secs(3600));
    let id = SessionId::random();
    store.put(&id, info()).await.expect("stored");
    let hex = &id.0["sess_".len()..];
    // The same bits written otherwise are other ids: none of them finds the session.
    let hyphenated = format!(
        "sess_{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    let signed = format!("sess_+{}", &hex[1..]);
    let other_half = format!("sess_{}{}", &hex[16..], &hex[..16]);
    for near in [hyphenated, signed, other_half, hex.to_owned()] {
        assert_eq!(
            store.get(&SessionId(near.clone())).await.expect("read"),
            None,
            "{near}"
        );
    }
    // A near shape stored as its own id is its own session.
    let own = SessionId(format!("sess_{}g", &hex[1..]));
    store.put(&own, info()).await.expect("stored");
    assert!(store.get(&own).await.expect("read").is_some());
    assert!(store.get(&id).await.expect("read").is_some());
}

#[tokio::test]
async fn memory_sessions_take_an_endless_ttl() {
    let store = MemorySessions::new(Duration::MAX);
    sessions_round_trip(&store).await;
}
