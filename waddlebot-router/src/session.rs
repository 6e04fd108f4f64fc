//! Sessions: every processed event gets a session id (`sess_` + 32 hex) that later replies
//! quote. A session remembers where the event came from, for [`SESSION_TTL`] (an hour, the
//! original's `SESSION_TTL`), so a late answer reaches the right channel and only that one.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use waddlebot::{CommunityId, EntityId, EventId, PlatformKind, SessionId};

/// How long a session lives by default.
pub const SESSION_TTL: Duration = Duration::from_secs(3600);

/// Where an event came from, kept for late replies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The community.
    pub community_id: CommunityId,
    /// The entity the event happened in.
    pub entity_id: EntityId,
    /// Its platform.
    pub platform: PlatformKind,
    /// Its server.
    pub server_id: String,
    /// Its channel.
    pub channel_id: String,
    /// The user who triggered it.
    pub user_id: String,
    /// The event.
    pub event_id: EventId,
}

impl SessionInfo {
    /// Where `event`, which happened in `entity`, came from.
    pub fn of(entity: &waddlebot::store::Entity, event: &waddlebot::Event) -> Self {
        Self {
            community_id: entity.community_id,
            entity_id: entity.id,
            platform: event.platform.clone(),
            server_id: event.server_id.clone(),
            channel_id: event.channel_id.clone(),
            user_id: event.user.id.clone(),
            event_id: event.id.clone(),
        }
    }
}

/// The session store failed.
#[derive(Debug, thiserror::Error)]
#[error("session store unavailable: {0}")]
pub struct SessionError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Where sessions live: in this process, or in Redis so any process can take a late reply.
///
/// ```
/// use waddlebot::{CommunityId, EntityId, EventId, PlatformKind, SessionId};
/// use waddlebot_router::session::{MemorySessions, SessionInfo, SessionStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let sessions = MemorySessions::new(std::time::Duration::from_secs(60));
/// let id = SessionId::random();
/// let info = SessionInfo {
///     community_id: CommunityId(1), entity_id: EntityId(1), platform: PlatformKind::Twitch,
///     server_id: "pond".into(), channel_id: "pond".into(), user_id: "42".into(),
///     event_id: EventId::random(),
/// };
/// sessions.put(&id, info.clone()).await.unwrap();
/// assert_eq!(sessions.get(&id).await.unwrap(), Some(info));
/// # });
/// ```
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Remembers a session for the store's TTL.
    async fn put(&self, id: &SessionId, info: SessionInfo) -> Result<(), SessionError>;

    /// A live session, or `None` once it expired.
    async fn get(&self, id: &SessionId) -> Result<Option<SessionInfo>, SessionError>;
}

/// Sessions in this process: a few mutex-guarded shards, each with two generations of entries.
/// A session is readable until its own expiry time; a shard's older generation is dropped
/// whole once a TTL has passed (or the shard is full), so memory stays bounded without a
/// per-entry timer and a write is one hash insert.
pub struct MemorySessions {
    ttl: Duration,
    per_shard: usize,
    shards: Box<[std::sync::Mutex<Generations>]>,
}

const SHARDS: usize = 16;
const CAPACITY: usize = 1_000_000;

/// Session ids are random, made by the router or the program embedding it (a client only looks
/// ids up), so the map can use a fast hasher without opening a flooding attack.
type SessionMap = std::collections::HashMap<
    String,
    (std::time::Instant, Arc<SessionInfo>),
    foldhash::fast::RandomState,
>;

#[derive(Default)]
struct Generations {
    current: SessionMap,
    previous: SessionMap,
    rotated_at: Option<std::time::Instant>,
}

impl MemorySessions {
    /// Sessions living `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            per_shard: CAPACITY / SHARDS,
            shards: (0..SHARDS).map(|_| Default::default()).collect(),
        }
    }

    fn shard(&self, id: &SessionId) -> std::sync::MutexGuard<'_, Generations> {
        let index = shard_index(&id.0, self.shards.len());
        // Every change below is one map operation: a poisoned shard is still consistent.
        self.shards[index]
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// How many sessions are held (live or not yet dropped).
    pub fn len(&self) -> usize {
        (0..self.shards.len())
            .map(|i| {
                let shard = self.shards[i]
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner());
                shard.current.len() + shard.previous.len()
            })
            .sum()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Session ids end in random hex: their last bytes spread them over the shards.
fn shard_index(id: &str, shards: usize) -> usize {
    let tail = id.as_bytes().iter().rev().take(4);
    tail.fold(0_usize, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(usize::from(*b))
    }) % shards
}

impl std::fmt::Debug for MemorySessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySessions")
            .field("held", &self.len())
            .finish()
    }
}

#[async_trait]
impl SessionStore for MemorySessions {
    async fn put(&self, id: &SessionId, info: SessionInfo) -> Result<(), SessionError> {
        let now = std::time::Instant::now();
        let mut shard = self.shard(id);
        let rotated_at = *shard.rotated_at.get_or_insert(now);
        if now.duration_since(rotated_at) >= self.ttl || shard.current.len() >= self.per_shard {
            // Everything in `previous` is older than a TTL by now, or the shard is full. The
            // new generation starts as large as the last one grew, so it does not grow (and
            // copy itself) again on the way.
            let capacity = shard.current.len();
            shard.previous = std::mem::replace(
                &mut shard.current,
                SessionMap::with_capacity_and_hasher(capacity, Default::default()),
            );
            shard.rotated_at = Some(now);
        }
        shard
            .current
            .insert(id.0.clone(), (now + self.ttl, Arc::new(info)));
        Ok(())
    }

    async fn get(&self, id: &SessionId) -> Result<Option<SessionInfo>, SessionError> {
        let now = std::time::Instant::now();
        let shard = self.shard(id);
        Ok(shard
            .current
            .get(&id.0)
            .or_else(|| shard.previous.get(&id.0))
            .filter(|(expires, _)| *expires > now)
            .map(|(_, info)| (**info).clone()))
    }
}

#[cfg(feature = "redis")]
pub use redis_sessions::RedisSessions;

#[cfg(feature = "redis")]
mod redis_sessions {
    use std::time::Duration;

    use async_trait::async_trait;
    use redis::AsyncCommands;
    use redis::aio::{ConnectionManager, ConnectionManagerConfig};
    use waddlebot::SessionId;

    use super::{SessionError, SessionInfo, SessionStore};

    /// Sessions in Redis: `SET <prefix><id> <json> EX <ttl>`, readable by every process.
    pub struct RedisSessions {
        connection: ConnectionManager,
        prefix: String,
        ttl: Duration,
    }

    impl std::fmt::Debug for RedisSessions {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RedisSessions")
                .field("prefix", &self.prefix)
                .finish_non_exhaustive()
        }
    }

    fn error(err: impl std::error::Error + Send + Sync + 'static) -> SessionError {
        SessionError(Box::new(err))
    }

    impl RedisSessions {
        /// Sessions in the Redis at `url`, keys `<prefix><session id>`, living `ttl`.
        pub fn new(url: &str, prefix: &str, ttl: Duration) -> Result<Self, SessionError> {
            let client = redis::Client::open(url).map_err(error)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_millis(500)))
                .set_response_timeout(Some(Duration::from_millis(500)))
                .set_number_of_retries(1);
            let connection =
                ConnectionManager::new_lazy_with_config(client, config).map_err(error)?;
            Ok(Self {
                connection,
                prefix: prefix.to_owned(),
                ttl,
            })
        }
    }

    #[async_trait]
    impl SessionStore for RedisSessions {
        async fn put(&self, id: &SessionId, info: SessionInfo) -> Result<(), SessionError> {
            let json = serde_json::to_string(&info).map_err(error)?;
            let mut connection = self.connection.clone();
            connection
                .set_ex::<_, _, ()>(
                    format!("{}{}", self.prefix, id.0),
                    json,
                    self.ttl.as_secs().max(1),
                )
                .await
                .map_err(error)
        }

        async fn get(&self, id: &SessionId) -> Result<Option<SessionInfo>, SessionError> {
            let mut connection = self.connection.clone();
            let json: Option<String> = connection
                .get(format!("{}{}", self.prefix, id.0))
                .await
                .map_err(error)?;
            json.map(|text| serde_json::from_str(&text).map_err(error))
                .transpose()
        }
    }
}
