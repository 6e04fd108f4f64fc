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

/// Slots a shard grows and drops at a time, and shards: what the store's bounds are made of.
const CHUNK: usize = 256;
const SHARDS: usize = 16;

/// Ids this store gives out, and ids in its shape it did not give out (a program's own): the
/// bounds hold for both.
fn id_kinds(store: &MemorySessions) -> [Box<dyn Fn(usize) -> SessionId + '_>; 2] {
    [
        Box::new(|_| store.new_id()),
        Box::new(|n| {
            SessionId(format!(
                "sess_{:016x}{n:016x}",
                (n as u64).wrapping_mul(0x9E37_79B9)
            ))
        }),
    ]
}

#[tokio::test]
async fn memory_sessions_drop_expired_chunks_instead_of_growing() {
    const WAVE: usize = SHARDS * CHUNK * 2;
    // Long enough for the second wave to be stored and read back while it lives (a debug
    // build is slow); the waits are a little longer.
    const TTL: Duration = Duration::from_millis(600);
    let store = MemorySessions::new(TTL);
    for (kind, id) in id_kinds(&store).iter().enumerate() {
        for n in 0..WAVE {
            store.put(&id(n), info()).await.expect("stored");
        }
        tokio::time::sleep(TTL + Duration::from_millis(100)).await;
        let second: Vec<SessionId> = (WAVE..2 * WAVE).map(id).collect();
        for id in &second {
            store.put(id, info()).await.expect("stored");
        }
        // Far below the capacity of a million: the expired chunks were dropped, all but the
        // one in each shard the second wave went on filling.
        let held = store.len();
        assert!(
            (WAVE..=WAVE + SHARDS * CHUNK).contains(&held),
            "ids of kind {kind}: {held} held"
        );
        for (n, id) in second.iter().enumerate() {
            assert!(
                store.get(id).await.expect("read").is_some(),
                "live ones kept: ids of kind {kind}, {n}"
            );
        }
        tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn memory_sessions_keep_the_newest_when_full() {
    let store = MemorySessions::with_capacity(Duration::from_secs(3600), 160);
    for (kind, id) in id_kinds(&store).iter().enumerate() {
        let ids: Vec<SessionId> = (0..1000).map(id).collect();
        for id in &ids {
            store.put(id, info()).await.expect("stored");
        }
        // A chunk is 10 slots here (the capacity's share of a shard): full, and at most a
        // chunk a shard more.
        let held = store.len();
        assert!(
            (160..=160 + SHARDS * 10).contains(&held),
            "ids of kind {kind}: {held} held"
        );
        assert_eq!(
            store.get(&ids[0]).await.expect("read"),
            None,
            "the oldest made room"
        );
        for id in &ids[1000 - 160..] {
            assert!(
                store.get(id).await.expect("read").is_some(),
                "the newest are kept"
            );
        }
    }

    // Ids in any other shape, as a program may choose, are kept too.
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
    // 2,500 a shard: each shard fills ten chunks and more, then drops its oldest as it goes.
    const CAPACITY: usize = SHARDS * 2_500;
    let store = MemorySessions::with_capacity(Duration::from_secs(3600), CAPACITY);
    let ids: Vec<SessionId> = (0..100_000).map(|_| store.new_id()).collect();
    for id in &ids {
        store.put(id, info()).await.expect("stored");
    }
    let held = store.len();
    assert!(
        (CAPACITY..=CAPACITY + SHARDS * CHUNK).contains(&held),
        "every shard full, and at most a chunk larger: {held}"
    );
    for id in &ids[..1_000] {
        assert_eq!(
            store.get(id).await.expect("read"),
            None,
            "old ones made room"
        );
    }
    for id in &ids[100_000 - CAPACITY..] {
        assert!(
            store.get(id).await.expect("read").is_some(),
            "new ones kept"
        );
    }
}

#[tokio::test]
async fn memory_sessions_keep_a_session_whose_slot_was_dropped_while_it_ran() {
    // One slot a shard: the chunk of an id given out early is dropped long before a slow
    // handler is done with its event.
    let store = MemorySessions::with_capacity(Duration::from_secs(3600), SHARDS);
    let slow = store.new_id();
    for _ in 0..1_000 {
        let id = store.new_id();
        store.put(&id, info()).await.expect("stored");
    }
    let info = info();
    store.put(&slow, info.clone()).await.expect("stored");
    assert_eq!(store.get(&slow).await.expect("read"), Some(info));
}

#[tokio::test]
async fn memory_sessions_find_only_their_own_ids() {
    let store = MemorySessions::new(Duration::from_secs(3600));
    let other = MemorySessions::new(Duration::from_secs(3600));
    let id = store.new_id();
    store.put(&id, info()).await.expect("stored");
    // An id the other store gave out (after a restart, say) names no session here, even with
    // sessions in every slot it could point at.
    let foreign = other.new_id();
    for _ in 0..10 {
        let id = store.new_id();
        store.put(&id, info()).await.expect("stored");
    }
    assert_eq!(store.get(&foreign).await.expect("read"), None);
    assert!(store.get(&id).await.expect("read").is_some());
    // Ids are not a count anyone can read: consecutive ones differ in more than the last digit.
    let (a, b) = (store.new_id(), store.new_id());
    assert_ne!(a.0[..20], b.0[..20]);
}

#[tokio::test]
async fn memory_sessions_keep_what_a_handled_event_came_from() {
    use std::sync::Arc;
    use waddlebot::Event;
    use waddlebot::store::{Entity, EntityKey};

    let store = MemorySessions::new(Duration::from_secs(3600));
    let entity = Arc::new(Entity {
        id: EntityId(7),
        community_id: CommunityId(3),
        key: EntityKey {
            platform: PlatformKind::Discord,
            server_id: "guild".into(),
            channel_id: "general".into(),
        },
        created_at: std::time::SystemTime::now(),
    });
    let event = |user: &str, event_id: &str, channel: &str| {
        let mut event = Event::chat(PlatformKind::Discord, "guild", channel, user, "!hello");
        event.id = EventId(event_id.to_owned());
        Arc::new(event)
    };
    let cases = [
        // The router's own event ids, platform ids of other shapes, and a user id longer
        // than what is kept inline.
        event("42", &EventId::random().0, "general"),
        event("42", &EventId::random().0.to_uppercase(), "general"),
        event("1234567890123456789", "1234567890123456789", "general"),
        event(
            "U0123ABCD",
            "8d3e4f5a-0000-4000-8000-123456789abc",
            "general",
        ),
        event(&"long-user-id-".repeat(4), "Ev0123", "general"),
        // An event from another place than its entity's key (not shared, kept whole).
        event("42", "e1", "elsewhere"),
    ];
    for event in cases {
        let id = store.new_id();
        let expected = SessionInfo::of(&entity, &event);
        store.put_event(&id, &entity, event).await.expect("stored");
        assert_eq!(store.get(&id).await.expect("read"), Some(expected));
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
    let id = store.new_id();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_sessions_keep_every_session_of_concurrent_events_apart() {
    const EVENTS: usize = 5_000;
    let store = std::sync::Arc::new(MemorySessions::new(Duration::from_secs(3600)));
    let tasks: Vec<_> = (0..4)
        .map(|task| {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move {
                let (mut all, mut waiting) = (Vec::new(), Vec::new());
                for n in 0..EVENTS {
                    // Ids given out, and now and then a program's own; kept a few at a time,
                    // newest first, while the other tasks do the same.
                    let id = if n % 10 == 0 {
                        SessionId(format!("task{task}-own{n}"))
                    } else {
                        store.new_id()
                    };
                    let mut info = info();
                    info.user_id = format!("{task}:{n}");
                    waiting.push((id, info));
                    if n % 3 == 0 || n == EVENTS - 1 {
                        while let Some((id, info)) = waiting.pop() {
                            store.put(&id, info.clone()).await.expect("stored");
                            all.push((id, info));
                        }
                        tokio::task::yield_now().await;
                    }
                }
                all
            })
        })
        .collect();
    let mut kept = Vec::new();
    for task in tasks {
        kept.extend(task.await.expect("task"));
    }
    assert_eq!(kept.len(), 4 * EVENTS);
    for (id, info) in &kept {
        assert_eq!(
            store.get(id).await.expect("read").as_ref(),
            Some(info),
            "{id}"
        );
    }
    assert_eq!(store.len(), 4 * EVENTS, "every session kept once");
}
