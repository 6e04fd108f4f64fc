//! Sessions: every processed event gets a session id (`sess_` + 32 hex) that later replies
//! quote. A session remembers where the event came from, for [`SESSION_TTL`] (an hour, the
//! original's `SESSION_TTL`), so a late answer reaches the right channel and only that one.

use std::sync::Mutex;
use std::time::{Duration, Instant};

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

    /// [`of`](Self::of) an event the router is done with: its strings are taken rather than
    /// copied when nothing else holds it.
    pub(crate) fn of_shared(
        entity: &waddlebot::store::Entity,
        event: std::sync::Arc<waddlebot::Event>,
    ) -> Self {
        match std::sync::Arc::try_unwrap(event) {
            Ok(event) => Self {
                community_id: entity.community_id,
                entity_id: entity.id,
                platform: event.platform,
                server_id: event.server_id,
                channel_id: event.channel_id,
                user_id: event.user.id,
                event_id: event.id,
            },
            Err(shared) => Self::of(entity, &shared),
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

/// Sessions in this process: a few mutex-guarded shards, each a ring of sessions with an
/// index by id. A new session takes the slot of the oldest once that one has expired, or a
/// new slot while there are fewer than the capacity (a million in all by default), or else
/// replaces the oldest; a session is readable until its own expiry time. So memory follows
/// the sessions of one TTL (a bot seeing ten events a second holds about 36,000), up to the
/// capacity. A ring grows a chunk of slots at a time, without moving the sessions it holds;
/// it keeps its memory, so a steady stream of events reuses slots instead of churning
/// through fresh pages.
///
/// An id in the router's shape (`sess_` and 32 hex digits, random) is kept as two numbers: 64
/// of its bits are the index key as they are (no hashing of text, no copy of the id), the
/// other 64 are compared on lookup. Any other id a program chooses is keyed by its hash and
/// compared whole.
pub struct MemorySessions {
    ttl: Duration,
    per_shard: usize,
    shards: Box<[Mutex<Ring>]>,
}

const SHARDS: usize = 16;
const CAPACITY: usize = 1_000_000;

/// What else an entry's id must match besides its key.
#[derive(PartialEq, Eq)]
enum Check {
    /// The other half of a random id.
    Half(u64),
    /// An id in another shape, whole.
    Whole(Box<str>),
}

struct Held {
    key: u64,
    check: Check,
    expires: Instant,
    info: SessionInfo,
}

/// Slots per chunk of a ring: a ring grows a chunk at a time, so growing never copies the
/// sessions it holds (a doubling vector would copy them all, and touch twice the memory).
const CHUNK: usize = 1024;

#[derive(Default)]
struct Ring {
    /// The slots, in chunks of [`CHUNK`] allocated whole; only the last is partly filled.
    chunks: Vec<Vec<Held>>,
    /// How many slots are in use.
    len: usize,
    /// The slot written longest ago: the next to be reused.
    next: usize,
    /// Key → slot.
    index: std::collections::HashMap<u64, usize, std::hash::BuildHasherDefault<KeyHasher>>,
}

impl Ring {
    /// Keeps `held` in the slot written longest ago once that one has expired (or the ring is
    /// at `capacity`), else in a new slot. So a ring grows to the sessions of one TTL (or to
    /// its capacity) and then cycles: a quiet bot keeps an hour of sessions, not a million.
    fn put(&mut self, held: Held, capacity: usize, now: Instant) {
        let key = held.key;
        let reuse = self.len > 0
            && (self.len >= capacity
                || self
                    .slot_mut(self.next)
                    .is_some_and(|oldest| oldest.expires <= now));
        let slot = if reuse {
            let slot = self.next;
            let Some(taken) = self.slot_mut(slot) else {
                return;
            };
            let old = std::mem::replace(taken, held);
            if self.index.get(&old.key) == Some(&slot) {
                self.index.remove(&old.key);
            }
            self.next = (slot + 1) % self.len;
            slot
        } else {
            // A new slot at the end; the oldest stays where it is.
            let slot = self.len;
            if slot.is_multiple_of(CHUNK) {
                self.chunks.push(Vec::with_capacity(CHUNK.min(capacity)));
            }
            // Within the chunk's capacity: never reallocates.
            self.chunks[slot / CHUNK].push(held);
            self.len += 1;
            slot
        };
        self.index.insert(key, slot);
    }

    fn slot_mut(&mut self, slot: usize) -> Option<&mut Held> {
        self.chunks.get_mut(slot / CHUNK)?.get_mut(slot % CHUNK)
    }

    fn get(&self, key: u64) -> Option<&Held> {
        let slot = *self.index.get(&key)?;
        self.chunks.get(slot / CHUNK)?.get(slot % CHUNK)
    }
}

/// Keys are random bits already: one multiplication spreads them over the table.
#[derive(Default, Clone, Copy)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The map key of an id and what else it must match. Ids come from the router or the
/// program embedding it (a client only looks them up), so keying other shapes by a fast
/// hash opens no flooding attack.
fn key(id: &SessionId) -> (u64, Check) {
    let random =
        id.0.strip_prefix("sess_")
            // 32 hex digits (uuid's parser checks each; the length rules out its other forms).
            .filter(|hex| hex.len() == 32)
            .and_then(|hex| uuid::Uuid::try_parse(hex).ok())
            .map(|bits| {
                let (high, low) = bits.as_u64_pair();
                (low, Check::Half(high))
            });
    random.unwrap_or_else(|| {
        use std::hash::BuildHasher;
        static SEED: std::sync::LazyLock<foldhash::fast::RandomState> =
            std::sync::LazyLock::new(Default::default);
        (SEED.hash_one(&id.0), Check::Whole(id.0.as_str().into()))
    })
}

impl MemorySessions {
    /// Sessions living `ttl`, at most a million held.
    pub fn new(ttl: Duration) -> Self {
        Self::with_capacity(ttl, CAPACITY)
    }

    /// Sessions living `ttl`, about `capacity` held at most (the oldest make room).
    pub fn with_capacity(ttl: Duration, capacity: usize) -> Self {
        Self {
            // An instant plus a huge duration overflows (a panic).
            ttl: ttl.min(crate::cache::FOREVER),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            shards: (0..SHARDS).map(|_| Default::default()).collect(),
        }
    }

    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, Ring> {
        // The key's low bits (random in both kinds of key) pick the shard.
        let index = usize::try_from(key % SHARDS as u64).unwrap_or(0);
        // Every change below is one map operation: a poisoned shard is still consistent.
        self.shards[index]
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// How many sessions are held (live or expired but not yet replaced).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let shard = shard.lock().unwrap_or_else(|poison| poison.into_inner());
                shard.index.len()
            })
            .sum()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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
        let (key, check) = key(id);
        let now = Instant::now();
        let held = Held {
            key,
            check,
            expires: now + self.ttl,
            info,
        };
        self.shard(key).put(held, self.per_shard, now);
        Ok(())
    }

    async fn get(&self, id: &SessionId) -> Result<Option<SessionInfo>, SessionError> {
        let now = Instant::now();
        let (key, check) = key(id);
        Ok(self
            .shard(key)
            .get(key)
            .filter(|held| held.check == check && held.expires > now)
            .map(|held| held.info.clone()))
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
                // Redis refuses an expiry beyond what its milliseconds can hold.
                ttl: ttl.min(crate::cache::FOREVER),
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
