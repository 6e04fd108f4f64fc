//! Sessions: every processed event gets a session id (`sess_` + 32 hex) that later replies
//! quote. A session remembers where the event came from, for [`SESSION_TTL`] (an hour, the
//! original's `SESSION_TTL`), so a late answer reaches the right channel and only that one.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use compact_str::CompactString;
use quanta::Instant;
use serde::{Deserialize, Serialize};
use waddlebot::store::Entity;
use waddlebot::{CommunityId, EntityId, Event, EventId, PlatformKind, SessionId};

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
    pub fn of(entity: &Entity, event: &Event) -> Self {
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
    fn of_shared(entity: &Entity, event: Arc<Event>) -> Self {
        match Arc::try_unwrap(event) {
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
/// use waddlebot::{CommunityId, EntityId, EventId, PlatformKind};
/// use waddlebot_router::session::{MemorySessions, SessionInfo, SessionStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let sessions = MemorySessions::new(std::time::Duration::from_secs(60));
/// // Any id works; one the store gives out is found without an index.
/// let id = sessions.new_id();
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

    /// A new session id, for an event about to be handled. The default is
    /// [`SessionId::random`]; a store may give ids it finds its sessions by
    /// ([`MemorySessions`] does).
    fn new_id(&self) -> SessionId {
        SessionId::random()
    }

    /// Remembers the session of `event`, which the router handled in `entity`: what the router
    /// calls for every processed event. The default keeps [`SessionInfo::of`] the two through
    /// [`put`](Self::put) (taking the event's strings when nothing else holds it); a store may
    /// keep less ([`MemorySessions`] shares the entity with the router's cache).
    async fn put_event(
        &self,
        id: &SessionId,
        entity: &Arc<Entity>,
        event: Arc<Event>,
    ) -> Result<(), SessionError> {
        self.put(id, SessionInfo::of_shared(entity, event)).await
    }
}

/// Sessions in this process, found without an index: an id this store gave out
/// ([`new_id`](SessionStore::new_id)) carries the number of its slot. Sessions sit in a few
/// mutex-guarded shards, each a run of chunks of slots by number; a chunk is dropped whole
/// once everything in it has expired, or when the shard holds more than its share of the
/// capacity (a million in all by default, counted in ids given out: the router takes one
/// before it knows whether the event will keep a session), and the last one dropped is reused
/// for the next. So memory follows the sessions of one TTL (a bot seeing ten events a second
/// holds about 36,000), up to the capacity, and a steady stream of events reuses chunks
/// instead of touching fresh pages. A session is readable until its own expiry time.
///
/// An id this store gave out is `sess_` and 32 hex digits: its slot's number (mixed, so ids do
/// not count the events) and 64 random bits, compared on lookup. Any other id (a program's
/// own, or one given out before a restart) is kept in the next free slot and found through a
/// map by the whole id.
pub struct MemorySessions {
    ttl: Duration,
    /// Slots in a chunk.
    chunk: usize,
    /// Chunks a shard keeps at most.
    chunks: usize,
    /// The number the next slot gets.
    next: AtomicU64,
    /// Mixed into the numbers ids show.
    mask: u64,
    shards: Box<[Mutex<Ring>]>,
    /// Ids in another shape, or whose slot was gone when they were kept: their slot numbers.
    others: Mutex<Others>,
}

type Others = HashMap<Box<str>, u64, foldhash::fast::RandomState>;

/// Ids in another shape whose sessions a shard dropped, with their numbers in the shard.
type Dropped = Vec<(Box<str>, u64)>;

const SHARDS: usize = 16;
const CAPACITY: usize = 1_000_000;

/// An odd multiplier (the golden ratio's bits) and its inverse modulo 2^64.
const MIX: u64 = 0x9E37_79B9_7F4A_7C15;
const MIX_INVERSE: u64 = {
    // Newton's iteration: each step doubles the bits that are right (3 → 96).
    let mut inverse = MIX;
    let mut step = 0;
    while step < 5 {
        inverse = inverse.wrapping_mul(2u64.wrapping_sub(MIX.wrapping_mul(inverse)));
        step += 1;
    }
    inverse
};
const _: () = assert!(MIX.wrapping_mul(MIX_INVERSE) == 1);

/// Slots per chunk: a shard grows and drops this many at a time.
const CHUNK: usize = 256;

/// What a session's id must match besides its slot.
#[derive(PartialEq, Eq)]
enum Check {
    /// The random half of an id this store gave out.
    Half(u64),
    /// Any other id, whole.
    Whole(Box<str>),
}

struct Held {
    check: Check,
    expires: Instant,
    origin: Origin,
}

/// Where a session's event came from, in as few bytes as a router's session allows: a store
/// holding a million of them touches memory in proportion (80 bytes a slot, no allocation of
/// its own, against ~300 bytes and four strings for a whole [`SessionInfo`]).
enum Origin {
    /// An event the router handled: the entity (community, platform, server, channel) shared
    /// with the router's cache, the user's and the event's ids inline when they are short.
    Event {
        entity: Arc<Entity>,
        user_id: CompactString,
        event_id: EventKey,
    },
    /// A session given whole ([`SessionStore::put`]).
    Info(Box<SessionInfo>),
}

/// An event id: the router's own (32 lower-case hex digits) as its 16 bytes, any other as text.
enum EventKey {
    Simple(uuid::Uuid),
    Text(CompactString),
}

impl EventKey {
    fn new(id: &str) -> Self {
        let simple = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        match simple.then(|| uuid::Uuid::try_parse(id).ok()).flatten() {
            Some(bits) => Self::Simple(bits),
            None => Self::Text(id.into()),
        }
    }

    fn to_event_id(&self) -> EventId {
        EventId(match self {
            Self::Simple(bits) => bits.simple().to_string(),
            Self::Text(text) => text.to_string(),
        })
    }
}

impl Origin {
    fn info(&self) -> SessionInfo {
        match self {
            Self::Event {
                entity,
                user_id,
                event_id,
            } => SessionInfo {
                community_id: entity.community_id,
                entity_id: entity.id,
                platform: entity.key.platform.clone(),
                server_id: entity.key.server_id.clone(),
                channel_id: entity.key.channel_id.clone(),
                user_id: user_id.to_string(),
                event_id: event_id.to_event_id(),
            },
            Self::Info(info) => SessionInfo::clone(info),
        }
    }
}

struct Chunk {
    slots: Box<[Option<Held>]>,
    /// The latest expiry of the sessions in it.
    newest: Option<Instant>,
}

impl Chunk {
    fn new(size: usize) -> Self {
        Self {
            slots: (0..size).map(|_| None).collect(),
            newest: None,
        }
    }
}

/// One shard: chunks of slots by number, the first holding slot `first`.
#[derive(Default)]
struct Ring {
    first: u64,
    /// A position no session was kept in yet holds no chunk.
    chunks: VecDeque<Option<Chunk>>,
    /// The chunk dropped last, emptied, for the next one needed.
    spare: Option<Chunk>,
}

impl Ring {
    /// Keeps `held` in slot `number` (this shard's count), unless that slot is taken or its
    /// chunk was already dropped: then `held` comes back. Returns too the ids in another shape
    /// whose sessions were dropped to make room, with their numbers, for the caller to forget.
    fn put(
        &mut self,
        number: u64,
        held: Held,
        store: &MemorySessions,
        now: Instant,
    ) -> (Result<(), Held>, Dropped) {
        let mut dropped = Vec::new();
        let Some(offset) = number.checked_sub(self.first) else {
            return (Err(held), dropped);
        };
        let size = store.chunk as u64;
        let mut position = usize::try_from(offset / size).unwrap_or(usize::MAX);
        // Full: the oldest chunks make room (those beyond the ones held only move `first`).
        if position >= store.chunks {
            let excess = position - (store.chunks - 1);
            let present = excess.min(self.chunks.len());
            for _ in 0..present {
                self.drop_front(store.chunk, &mut dropped);
            }
            let rest = excess - present;
            self.first = self
                .first
                .saturating_add((rest as u64).saturating_mul(size));
            position = store.chunks - 1;
        }
        while self.chunks.len() <= position {
            self.chunks.push_back(None);
        }
        let spare = &mut self.spare;
        let chunk = self.chunks[position]
            .get_or_insert_with(|| spare.take().unwrap_or_else(|| Chunk::new(store.chunk)));
        let slot = &mut chunk.slots[(offset % size) as usize];
        if slot.is_some() {
            return (Err(held), dropped);
        }
        chunk.newest = chunk.newest.max(Some(held.expires));
        *slot = Some(held);
        // Chunks before the newest whose sessions have all expired (or that hold none).
        while self.chunks.len() > 1
            && self.chunks[0]
                .as_ref()
                .is_none_or(|chunk| chunk.newest.is_none_or(|newest| newest <= now))
        {
            self.drop_front(store.chunk, &mut dropped);
        }
        (Ok(()), dropped)
    }

    fn drop_front(&mut self, size: usize, dropped: &mut Dropped) {
        let first = self.first;
        self.first += size as u64;
        let Some(Some(mut chunk)) = self.chunks.pop_front() else {
            return;
        };
        for (n, slot) in chunk.slots.iter_mut().enumerate() {
            if let Some(Held {
                check: Check::Whole(id),
                ..
            }) = slot.take()
            {
                dropped.push((id, first + n as u64));
            }
        }
        chunk.newest = None;
        self.spare = Some(chunk);
    }

    fn get(&self, number: u64, size: usize) -> Option<&Held> {
        let offset = number.checked_sub(self.first)?;
        let position = usize::try_from(offset / size as u64).ok()?;
        self.chunks.get(position)?.as_ref()?.slots[(offset % size as u64) as usize].as_ref()
    }

    fn held(&self) -> usize {
        self.chunks
            .iter()
            .flatten()
            .map(|chunk| chunk.slots.iter().flatten().count())
            .sum()
    }
}

impl MemorySessions {
    /// Sessions living `ttl`, a million held at most.
    pub fn new(ttl: Duration) -> Self {
        Self::with_capacity(ttl, CAPACITY)
    }

    /// Sessions living `ttl`: at least the newest `capacity` are kept (while they live), and at
    /// most a chunk of 256 slots a shard more.
    pub fn with_capacity(ttl: Duration, capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        let chunk = CHUNK.min(per_shard);
        Self {
            // An instant plus a huge duration overflows (a panic).
            ttl: ttl.min(crate::cache::FOREVER),
            chunk,
            // One more than the capacity needs: the newest chunk is still filling.
            chunks: per_shard.div_ceil(chunk) + 1,
            next: AtomicU64::new(0),
            mask: rand::random(),
            shards: (0..SHARDS).map(|_| Default::default()).collect(),
            others: Mutex::default(),
        }
    }

    /// The shard of slot `number`, and the slot's number within it.
    fn shard(&self, number: u64) -> (std::sync::MutexGuard<'_, Ring>, u64) {
        let index = usize::try_from(number % SHARDS as u64).unwrap_or(0);
        // Every change below leaves a shard consistent: a poisoned one is still usable.
        let ring = self.shards[index]
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        (ring, number / SHARDS as u64)
    }

    fn others(&self) -> std::sync::MutexGuard<'_, Others> {
        self.others
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The number an id shows for slot `number`: mixed (an invertible multiply between two
    /// masks), so consecutive ids look unrelated and do not count the events. Not a secret:
    /// the random half is what makes an id unguessable.
    fn shown(&self, number: u64) -> u64 {
        (number ^ self.mask).wrapping_mul(MIX) ^ self.mask.rotate_left(32)
    }

    /// The slot number an id shows, undoing [`shown`](Self::shown).
    fn slot_of(&self, shown: u64) -> u64 {
        (shown ^ self.mask.rotate_left(32)).wrapping_mul(MIX_INVERSE) ^ self.mask
    }

    /// The slot number and random half of an id this store gave out.
    fn ours(&self, id: &SessionId) -> Option<(u64, u64)> {
        let bits = id.bits()?;
        let (high, low) = ((bits >> 64) as u64, bits as u64);
        let number = self.slot_of(high);
        (number < self.next.load(Ordering::Relaxed)).then_some((number, low))
    }

    fn keep(&self, id: &SessionId, mut origin: Origin) {
        let now = Instant::now();
        let expires = now + self.ttl;
        if let Some((number, random)) = self.ours(id) {
            let held = Held {
                check: Check::Half(random),
                expires,
                origin,
            };
            match self.put_at(number, held, now, None) {
                Ok(()) => return,
                // Its slot is gone (it was handled for longer than its chunk lived) or taken:
                // kept as any other id.
                Err(back) => origin = back.origin,
            }
        }
        let mut held = Held {
            check: Check::Whole(id.0.as_str().into()),
            expires,
            origin,
        };
        // A new slot. Another thread's newer session may have dropped its (empty) chunk
        // first: then the next one.
        loop {
            let number = self.next.fetch_add(1, Ordering::Relaxed);
            match self.put_at(number, held, now, Some(&id.0)) {
                Ok(()) => return,
                Err(back) => held = back,
            }
        }
    }

    /// Keeps `held` in slot `number`; an id in another shape (`other`) is entered in the map
    /// while the shard is locked, so the drop of its chunk, which takes that lock, comes after
    /// and takes it out again.
    fn put_at(
        &self,
        number: u64,
        held: Held,
        now: Instant,
        other: Option<&str>,
    ) -> Result<(), Held> {
        let (mut ring, local) = self.shard(number);
        let (kept, dropped) = ring.put(local, held, self, now);
        if let (Ok(()), Some(id)) = (&kept, other) {
            self.others().insert(id.into(), number);
        }
        drop(ring);
        if !dropped.is_empty() {
            let mut others = self.others();
            for (id, local) in dropped {
                let number = local * SHARDS as u64 + number % SHARDS as u64;
                if others.get(&id) == Some(&number) {
                    others.remove(&id);
                }
            }
        }
        kept
    }

    fn find(&self, id: &SessionId, now: Instant) -> Option<SessionInfo> {
        let live = |number: u64, matches: &dyn Fn(&Check) -> bool| {
            let (ring, local) = self.shard(number);
            ring.get(local, self.chunk)
                .filter(|held| matches(&held.check) && held.expires > now)
                .map(|held| held.origin.info())
        };
        if let Some((number, random)) = self.ours(id) {
            let found = live(number, &|check| *check == Check::Half(random));
            if found.is_some() {
                return found;
            }
        }
        let number = *self.others().get(id.0.as_str())?;
        live(
            number,
            &|check| matches!(check, Check::Whole(whole) if **whole == *id.0),
        )
    }

    /// How many sessions are held (live, or expired in a chunk not yet dropped).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                shard
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner())
                    .held()
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
    fn new_id(&self) -> SessionId {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        let random: u64 = rand::random();
        SessionId::from_bits(u128::from(self.shown(number)) << 64 | u128::from(random))
    }

    async fn put(&self, id: &SessionId, info: SessionInfo) -> Result<(), SessionError> {
        self.keep(id, Origin::Info(Box::new(info)));
        Ok(())
    }

    async fn get(&self, id: &SessionId) -> Result<Option<SessionInfo>, SessionError> {
        Ok(self.find(id, Instant::now()))
    }

    async fn put_event(
        &self,
        id: &SessionId,
        entity: &Arc<Entity>,
        event: Arc<Event>,
    ) -> Result<(), SessionError> {
        // The entity was found by the event's place, so its key is that place; checked all
        // the same, since sharing it is only right when they are equal.
        let place = &entity.key;
        let origin = if place.platform == event.platform
            && place.server_id == event.server_id
            && place.channel_id == event.channel_id
        {
            Origin::Event {
                entity: Arc::clone(entity),
                user_id: CompactString::from(event.user.id.as_str()),
                event_id: EventKey::new(&event.id.0),
            }
        } else {
            Origin::Info(Box::new(SessionInfo::of_shared(entity, event)))
        };
        self.keep(id, origin);
        Ok(())
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
#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What a million sessions cost: a slot is the whole of a session a router keeps (no
    /// allocation of its own while its user and event ids are short).
    #[test]
    fn a_slot_stays_small() {
        assert!(
            size_of::<Option<Held>>() <= 80,
            "{} bytes",
            size_of::<Option<Held>>()
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// An id given out for an event about to be handled.
        Mint,
        /// The session of one of the ids given out and not kept yet (by index, wrapping).
        Keep(usize),
        /// A program's own id.
        KeepOwn(u8),
        /// A lookup of any id seen so far (by index, wrapping).
        Get(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Mint),
            4 => any::<usize>().prop_map(Op::Keep),
            1 => any::<u8>().prop_map(Op::KeepOwn),
            2 => any::<usize>().prop_map(Op::Get),
        ]
    }

    fn info(n: usize) -> SessionInfo {
        SessionInfo {
            community_id: CommunityId(1),
            entity_id: EntityId(1),
            platform: PlatformKind::Twitch,
            server_id: "pond".into(),
            channel_id: "pond".into(),
            user_id: n.to_string(),
            event_id: EventId(n.to_string()),
        }
    }

    /// The memory store's futures are ready at once.
    fn now<T>(future: impl Future<Output = T>) -> T {
        futures_util::FutureExt::now_or_never(future).expect("never waits")
    }

    proptest! {
        /// A lookup never finds another id's session; and a session is found while fewer
        /// ids than the capacity were given out after its own (every step gives out at most
        /// one), whatever the order ids are given out and kept in, and whichever kind.
        #[test]
        fn sessions_are_found_while_within_capacity_and_never_mixed_up(
            ops in proptest::collection::vec(op(), 1..400),
            capacity in 16usize..80,
        ) {
            let store = MemorySessions::with_capacity(Duration::from_secs(3600), capacity);
            // Ids seen, the step each was given out or kept at (the older of the two counts),
            // and what was kept for it.
            let mut ids: Vec<(SessionId, usize, Option<SessionInfo>)> = Vec::new();
            let mut waiting: Vec<usize> = Vec::new();
            for (step, op) in ops.iter().enumerate() {
                match op {
                    Op::Mint => {
                        waiting.push(ids.len());
                        ids.push((store.new_id(), step, None));
                    }
                    Op::Keep(pick) if !waiting.is_empty() => {
                        let index = waiting.remove(pick % waiting.len());
                        let info = info(index);
                        now(store.put(&ids[index].0, info.clone())).expect("kept");
                        ids[index].2 = Some(info);
                    }
                    Op::KeepOwn(n) => {
                        let id = SessionId(format!("own-{n}"));
                        let index = ids.iter().position(|(seen, ..)| *seen == id);
                        let index = index.unwrap_or_else(|| {
                            ids.push((id.clone(), step, None));
                            ids.len() - 1
                        });
                        let info = info(1_000 + usize::from(*n));
                        now(store.put(&id, info.clone())).expect("kept");
                        ids[index] = (id, step, Some(info));
                    }
                    Op::Get(pick) if !ids.is_empty() => {
                        let (id, since, kept) = &ids[pick % ids.len()];
                        let found = now(store.get(id)).expect("read");
                        match (&found, kept) {
                            (Some(found), Some(kept)) => prop_assert_eq!(found, kept),
                            (Some(found), None) => {
                                prop_assert!(false, "{id} found {found:?} before it was kept")
                            }
                            (None, Some(_)) => prop_assert!(
                                step - since >= capacity,
                                "{id} lost after {} steps",
                                step - since
                            ),
                            (None, None) => {}
                        }
                    }
                    _ => {}
                }
            }
            // The map of other ids holds only ids whose sessions are still in their slots.
            for (id, &number) in store.others().iter() {
                let (ring, local) = store.shard(number);
                let held = ring.get(local, store.chunk);
                prop_assert!(
                    matches!(held, Some(Held { check: Check::Whole(whole), .. }) if whole == id),
                    "{id} is mapped to slot {number}, which does not hold it"
                );
            }
        }
    }
}
