//! Rate limits and cooldowns: one [`RateLimiter`] trait, sliding windows, several limits
//! checked and recorded atomically in one call.
//!
//! A cooldown is a limit of one use per window; a rate limit is N per window. The router asks
//! for every limit that applies to a command at once (user cooldown, global cooldown, user
//! rate, community rate): either all have room and each records the use, or nothing is recorded
//! and the answer says which limit refused and how long until it frees up. With Redis that is
//! one round trip and one Lua script, so processes sharing Redis share the limits exactly.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use waddlebot::clock::{Clock, SystemClock};

/// One limit: at most `max` uses per sliding `window`, counted under `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// What is counted (`cd:1:hello:42`).
    pub key: String,
    /// Uses allowed per window (at least 1).
    pub max: u32,
    /// The window.
    pub window: Duration,
}

/// The answer to [`RateLimiter::acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every limit had room; one use was recorded against each.
    Allowed,
    /// Limit number `index` (in the order given) is full; nothing was recorded.
    Refused {
        /// Which limit.
        index: usize,
        /// How long until it has room again.
        retry_after: Duration,
    },
}

/// The limiter's backend failed (Redis unreachable...).
#[derive(Debug, thiserror::Error)]
#[error("rate limiter unavailable: {0}")]
pub struct LimiterError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Sliding-window limits.
///
/// ```
/// use std::time::Duration;
/// use waddlebot_router::limit::{Limit, MemoryLimiter, RateLimiter, Verdict};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let limiter = MemoryLimiter::new();
/// let cooldown = [Limit { key: "cd:hello".into(), max: 1, window: Duration::from_secs(30) }];
/// assert_eq!(limiter.acquire(&cooldown).await.unwrap(), Verdict::Allowed);
/// assert!(matches!(limiter.acquire(&cooldown).await.unwrap(), Verdict::Refused { index: 0, .. }));
/// # });
/// ```
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// If every limit has room, records one use against each and allows; otherwise records
    /// nothing and names the first full limit. Atomic with respect to other callers.
    async fn acquire(&self, limits: &[Limit]) -> Result<Verdict, LimiterError>;
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// The in-process limiter: a log of use times per key, under one mutex.
pub struct MemoryLimiter {
    clock: Arc<dyn Clock>,
    state: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    /// By key. foldhash: a key's variable parts are a community, a command and a platform's
    /// user id, which users do not choose (the platform assigns it).
    windows: HashMap<String, Window, foldhash::fast::RandomState>,
    calls: u64,
}

struct Window {
    /// Use times in ms, oldest first.
    hits: VecDeque<u64>,
    window_ms: u64,
}

/// Every this many calls, keys whose windows have emptied are dropped, so memory follows the
/// active users rather than every user ever seen.
const SWEEP_EVERY: u64 = 4096;

impl Default for MemoryLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryLimiter {
    /// A limiter on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// A limiter on the given clock.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            state: Mutex::new(MemoryState::default()),
        }
    }

    /// How many keys are tracked (for tests and metrics).
    pub fn tracked_keys(&self) -> usize {
        self.lock().windows.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The synchronous core, shared by the async API and the Redis fallback.
    pub fn acquire_now(&self, limits: &[Limit]) -> Verdict {
        let now = self.clock.now_millis();
        let mut state = self.lock();
        state.calls += 1;
        if state.calls.is_multiple_of(SWEEP_EVERY) {
            state.windows.retain(|_, w| {
                w.hits
                    .back()
                    .is_some_and(|&last| last.saturating_add(w.window_ms) > now)
            });
        }
        for (index, limit) in limits.iter().enumerate() {
            let window_ms = millis(limit.window);
            let Some(window) = state.windows.get_mut(&limit.key) else {
                continue;
            };
            while window
                .hits
                .front()
                .is_some_and(|&t| t.saturating_add(window_ms) <= now)
            {
                window.hits.pop_front();
            }
            if window.hits.len() >= limit.max.max(1) as usize {
                let oldest = window.hits.front().copied().unwrap_or(now);
                let free_at = oldest.saturating_add(window_ms);
                return Verdict::Refused {
                    index,
                    retry_after: Duration::from_millis(free_at.saturating_sub(now).max(1)),
                };
            }
        }
        Self::record_locked(&mut state, limits, now);
        Verdict::Allowed
    }

    /// How many uses `limit` has left in its window now, and how long until its oldest use
    /// leaves the window (zero when unused): what `X-RateLimit-Remaining` and
    /// `X-RateLimit-Reset` report.
    pub fn remaining(&self, limit: &Limit) -> (u32, Duration) {
        let now = self.clock.now_millis();
        let window_ms = millis(limit.window);
        let state = self.lock();
        // Uses are oldest first: the live ones are a tail of the log.
        let (used, oldest) = state.windows.get(&limit.key).map_or((0, None), |w| {
            let mut live = w
                .hits
                .iter()
                .copied()
                .filter(|&t| t.saturating_add(window_ms) > now);
            let oldest = live.next();
            (oldest.map_or(0, |_| 1 + live.count()), oldest)
        });
        let used = u32::try_from(used).unwrap_or(u32::MAX);
        let reset = oldest.map_or(Duration::ZERO, |oldest| {
            Duration::from_millis(oldest.saturating_add(window_ms).saturating_sub(now))
        });
        (limit.max.max(1).saturating_sub(used), reset)
    }

    /// Records one use against each limit without checking: the fallback mirrors what Redis
    /// allowed, so if Redis goes away this process still remembers its own recent uses.
    pub fn record(&self, limits: &[Limit]) {
        let now = self.clock.now_millis();
        Self::record_locked(&mut self.lock(), limits, now);
    }

    fn record_locked(state: &mut MemoryState, limits: &[Limit], now: u64) {
        for limit in limits {
            let window_ms = millis(limit.window);
            // One lookup for a key already seen; the key is copied only the first time.
            let window = match state.windows.get_mut(&limit.key) {
                Some(window) => window,
                None => state
                    .windows
                    .entry(limit.key.clone())
                    .or_insert_with(|| Window {
                        hits: VecDeque::new(),
                        window_ms,
                    }),
            };
            window.window_ms = window.window_ms.max(window_ms);
            window.hits.push_back(now);
            // Never keep more than the limit needs: a mirror of a busy shared key stays small.
            while window.hits.len() > limit.max.max(1) as usize {
                window.hits.pop_front();
            }
        }
    }
}

impl std::fmt::Debug for MemoryLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLimiter")
            .field("keys", &self.tracked_keys())
            .finish()
    }
}

#[async_trait]
impl RateLimiter for MemoryLimiter {
    async fn acquire(&self, limits: &[Limit]) -> Result<Verdict, LimiterError> {
        Ok(self.acquire_now(limits))
    }
}

/// Redis first, the in-process limiter when Redis fails: never unlimited. Uses Redis allows are
/// mirrored locally, so a Redis outage does not wipe this process's recent history. One warning when
/// Redis goes away, one notice when it is back; while it is away Redis is retried at most every
/// [`FallbackLimiter::RETRY_EVERY`], so a dead Redis costs nothing per event.
pub struct FallbackLimiter {
    primary: Arc<dyn RateLimiter>,
    fallback: MemoryLimiter,
    clock: Arc<dyn Clock>,
    /// ms timestamp of the failure that started the outage, or 0 while healthy.
    down_since: AtomicU64,
    /// ms timestamp of the last attempt at the primary while down.
    last_try: AtomicU64,
}

impl FallbackLimiter {
    /// How often a failed primary is tried again.
    pub const RETRY_EVERY: Duration = Duration::from_secs(5);

    /// Wraps `primary`, falling back to an in-process limiter on `clock`.
    pub fn new(primary: Arc<dyn RateLimiter>, clock: Arc<dyn Clock>) -> Self {
        Self {
            primary,
            fallback: MemoryLimiter::with_clock(Arc::clone(&clock)),
            clock,
            down_since: AtomicU64::new(0),
            last_try: AtomicU64::new(0),
        }
    }

    /// Whether the primary is currently considered down.
    pub fn degraded(&self) -> bool {
        self.down_since.load(Ordering::Relaxed) != 0
    }
}

impl std::fmt::Debug for FallbackLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FallbackLimiter")
            .field("degraded", &self.degraded())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl RateLimiter for FallbackLimiter {
    async fn acquire(&self, limits: &[Limit]) -> Result<Verdict, LimiterError> {
        let now = self.clock.now_millis();
        if self.degraded() {
            let last = self.last_try.load(Ordering::Relaxed);
            if now.saturating_sub(last) < millis(Self::RETRY_EVERY) {
                return Ok(self.fallback.acquire_now(limits));
            }
            self.last_try.store(now, Ordering::Relaxed);
        }
        match self.primary.acquire(limits).await {
            Ok(verdict) => {
                if verdict == Verdict::Allowed {
                    self.fallback.record(limits);
                }
                if self.down_since.swap(0, Ordering::Relaxed) != 0 {
                    tracing::info!(category = "system", "rate limiter backend is back");
                }
                Ok(verdict)
            }
            Err(err) => {
                if self.down_since.swap(now.max(1), Ordering::Relaxed) == 0 {
                    self.last_try.store(now, Ordering::Relaxed);
                    tracing::warn!(
                        category = "system",
                        error = %err,
                        "rate limiter backend unavailable; limiting in this process until it returns"
                    );
                }
                Ok(self.fallback.acquire_now(limits))
            }
        }
    }
}

#[cfg(feature = "redis")]
pub use redis_limiter::RedisLimiter;

#[cfg(feature = "redis")]
mod redis_limiter {
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use redis::aio::{ConnectionManager, ConnectionManagerConfig};
    use waddlebot::clock::Clock;

    use super::{Limit, LimiterError, RateLimiter, Verdict, millis};

    /// KEYS: one per limit. ARGV: now_ms, member, then max and window_ms per key.
    /// Returns {-1, 0} when allowed, or {index (0-based), retry_after_ms} when refused.
    const SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local member = ARGV[2]
for i = 1, #KEYS do
  local max = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  if redis.call('ZCARD', KEYS[i]) >= max then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    local wait = tonumber(oldest[2]) + window - now
    if wait < 1 then wait = 1 end
    return {i - 1, wait}
  end
end
for i = 1, #KEYS do
  local window = tonumber(ARGV[2 + 2 * i])
  redis.call('ZADD', KEYS[i], now, member)
  redis.call('PEXPIRE', KEYS[i], window)
end
return {-1, 0}
";

    /// A [`RateLimiter`] in Redis: sorted sets of use times, one atomic script per call. Use
    /// it inside a [`super::FallbackLimiter`] so a Redis outage never means "unlimited".
    pub struct RedisLimiter {
        connection: ConnectionManager,
        script: redis::Script,
        prefix: String,
        clock: Arc<dyn Clock>,
    }

    impl std::fmt::Debug for RedisLimiter {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RedisLimiter")
                .field("prefix", &self.prefix)
                .finish_non_exhaustive()
        }
    }

    impl RedisLimiter {
        /// A limiter on the Redis at `url`, keys under `prefix`. Connects lazily, so a Redis
        /// that is down at start is retried on use rather than failing start-up.
        pub fn new(url: &str, prefix: &str, clock: Arc<dyn Clock>) -> Result<Self, LimiterError> {
            let client = redis::Client::open(url).map_err(|e| LimiterError(Box::new(e)))?;
            // Short timeouts: a limiter that waits long is worse than the local fallback.
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_millis(500)))
                .set_response_timeout(Some(Duration::from_millis(500)))
                .set_number_of_retries(1);
            let connection = ConnectionManager::new_lazy_with_config(client, config)
                .map_err(|e| LimiterError(Box::new(e)))?;
            Ok(Self {
                connection,
                script: redis::Script::new(SCRIPT),
                prefix: prefix.to_owned(),
                clock,
            })
        }
    }

    #[async_trait]
    impl RateLimiter for RedisLimiter {
        async fn acquire(&self, limits: &[Limit]) -> Result<Verdict, LimiterError> {
            if limits.is_empty() {
                return Ok(Verdict::Allowed);
            }
            let now = self.clock.now_millis();
            let mut invocation = self.script.prepare_invoke();
            invocation
                .arg(now)
                .arg(format!("{now}-{}", uuid::Uuid::new_v4().simple()));
            for limit in limits {
                invocation
                    .key(format!("{}{}", self.prefix, limit.key))
                    .arg(limit.max.max(1))
                    .arg(millis(limit.window));
            }
            let mut connection = self.connection.clone();
            let (index, wait): (i64, u64) = invocation
                .invoke_async(&mut connection)
                .await
                .map_err(|e| LimiterError(Box::new(e)))?;
            Ok(match usize::try_from(index) {
                Ok(index) => Verdict::Refused {
                    index,
                    retry_after: Duration::from_millis(wait),
                },
                Err(_) => Verdict::Allowed,
            })
        }
    }
}
