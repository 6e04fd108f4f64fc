//! The outbound governor: every reply a platform sends goes out at the pace the platform allows,
//! in order, and nothing is dropped.
//!
//! [`Governor`] wraps any [`Platform`] and is itself a `Platform`, so the router (or an
//! embedder) uses it in place of the adapter. For each outbound it asks the adapter for its
//! [`Pacing`] — which lane the outbound queues in and which [`Quota`](waddlebot::Quota)s apply —
//! and then:
//!
//! - splits text longer than the platform's limit into messages on word boundaries, each paced
//!   as one message;
//! - queues in the lane (one outbound at a time per lane, first come first served), so replies
//!   to one channel arrive in the order they were produced;
//! - waits until every quota has room — the lane's own (Twitch chat: 20 per 30 s, 100 where the
//!   bot moderates; Slack: 1 per second per channel), the platform-wide one (Discord: 50 per
//!   second) and, where the platform forbids repeats (Twitch: 30 s), the same text's;
//! - on a 429 waits the `Retry-After` the platform gave and tries again (three times by
//!   default), holding the lane so nothing overtakes.
//!
//! Moderation actions have lanes of their own, so they never wait behind chat.
//!
//! The quotas are counted by a [`RateLimiter`]: in process by default, or a
//! [`FallbackLimiter`](crate::limit::FallbackLimiter) over Redis so several processes posting as
//! the same bot share one budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use sha2::Digest;
use waddlebot::clock::Clock;
use waddlebot::platforms::split_message;
use waddlebot::{Outbound, Pacing, Platform, PlatformError, PlatformKind, PlatformLimits, Reply};

use crate::limit::{Limit, MemoryLimiter, RateLimiter, Verdict};
use crate::metrics_names;

/// A [`Clock`] that follows tokio's clock, so limits counted in process move with
/// `tokio::time::pause` and `advance` in tests, and with the real time otherwise.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    wall: SystemTime,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading the wall time now and moving with tokio's clock from here.
    pub fn new() -> Self {
        Self {
            wall: SystemTime::now(),
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        self.wall + self.start.elapsed()
    }
}

/// Paces one platform's outbound messages. See the [module documentation](self).
///
/// ```
/// use std::sync::Arc;
/// use waddlebot::{ConsolePlatform, Platform};
/// use waddlebot_router::governor::Governor;
///
/// let console: Arc<dyn Platform> = Arc::new(ConsolePlatform::stdout());
/// let governed: Arc<dyn Platform> = Arc::new(Governor::new(console));
/// assert_eq!(governed.kind(), waddlebot::PlatformKind::Console);
/// ```
pub struct Governor {
    platform: Arc<dyn Platform>,
    limiter: Arc<dyn RateLimiter>,
    lanes: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    max_retries: u32,
}

impl std::fmt::Debug for Governor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governor")
            .field("platform", &self.platform.kind())
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

impl Governor {
    /// How many times an outbound refused with a 429 is tried again, by default.
    pub const DEFAULT_RETRIES: u32 = 3;

    /// Governs `platform`, counting its quotas in this process (on tokio's clock).
    pub fn new(platform: Arc<dyn Platform>) -> Self {
        let limiter = MemoryLimiter::with_clock(Arc::new(TokioClock::new()));
        Self::with_limiter(platform, Arc::new(limiter))
    }

    /// Governs `platform`, counting its quotas in `limiter` (share one Redis-backed limiter
    /// between processes to share the bot's budget).
    pub fn with_limiter(platform: Arc<dyn Platform>, limiter: Arc<dyn RateLimiter>) -> Self {
        Self {
            platform,
            limiter,
            lanes: Mutex::new(HashMap::new()),
            max_retries: Self::DEFAULT_RETRIES,
        }
    }

    /// How many times an outbound the platform refused with a 429 is tried again.
    #[must_use]
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Lanes currently in use (queued or sending).
    pub fn busy_lanes(&self) -> usize {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Waits for this caller's turn in the lane.
    async fn turn(&self, name: &str) -> Turn<'_> {
        let lane = {
            let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(lanes.entry(name.to_owned()).or_default())
        };
        Turn {
            governor: self,
            lane: name.to_owned(),
            guard: Some(lane.lock_owned().await),
        }
    }

    /// The quotas one message of `reply` counts against.
    fn limits(&self, pacing: &Pacing, reply: &Reply) -> Vec<Limit> {
        let kind = self.platform.kind();
        let lane = &pacing.lane;
        let mut limits: Vec<Limit> = pacing
            .lane_quotas
            .iter()
            .enumerate()
            .map(|(i, quota)| Limit {
                key: format!("pace:{kind}:{lane}:{i}"),
                max: quota.max,
                window: quota.per,
            })
            .collect();
        if let Some(quota) = pacing.global_quota {
            limits.push(Limit {
                key: format!("pace:{kind}:global"),
                max: quota.max,
                window: quota.per,
            });
        }
        if let (Some(window), Some(text)) = (
            pacing.distinct_within,
            waddlebot::platforms::reply_text(reply),
        ) {
            // A digest that is the same in every process (Redis shares the key).
            let digest = sha2::Sha256::digest(text.as_bytes());
            limits.push(Limit {
                key: format!("pace:{kind}:{lane}:text:{}", hex::encode(&digest[..12])),
                max: 1,
                window,
            });
        }
        limits
    }

    /// Waits until every limit has room and records the message against them.
    async fn wait_for_room(&self, limits: &[Limit]) {
        if limits.is_empty() {
            return;
        }
        loop {
            match self.limiter.acquire(limits).await {
                Ok(Verdict::Allowed) => return,
                Ok(Verdict::Refused { retry_after, .. }) => {
                    metrics::counter!(metrics_names::OUTBOUND_WAITS, "platform" => self.platform.kind().to_string())
                        .increment(1);
                    tokio::time::sleep(retry_after.max(Duration::from_millis(1))).await;
                }
                Err(err) => {
                    // Only a limiter without a fallback fails; the platform's own 429s still
                    // slow us down.
                    tracing::warn!(error = %err, "outbound pacing unavailable; sending unpaced");
                    return;
                }
            }
        }
    }

    /// Sends one message, waiting out 429s.
    async fn deliver(&self, outbound: Outbound) -> Result<(), PlatformError> {
        let mut retries = 0;
        loop {
            match self.platform.send(outbound.clone()).await {
                Err(PlatformError::RateLimited { retry_after }) if retries < self.max_retries => {
                    retries += 1;
                    metrics::counter!(metrics_names::OUTBOUND_RETRIES, "platform" => self.platform.kind().to_string())
                        .increment(1);
                    tracing::info!(
                        platform = %self.platform.kind(),
                        ?retry_after,
                        retries,
                        "rate limited by the platform; waiting to retry"
                    );
                    tokio::time::sleep(retry_after).await;
                }
                result => return result,
            }
        }
    }
}

/// A turn in a lane; when it ends (or the send is cancelled) a lane nobody else waits for is
/// forgotten, so the map holds only busy lanes.
struct Turn<'a> {
    governor: &'a Governor,
    lane: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut lanes = self
            .governor
            .lanes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        self.guard = None;
        if lanes
            .get(&self.lane)
            .is_some_and(|lane| Arc::strong_count(lane) == 1)
        {
            lanes.remove(&self.lane);
        }
    }
}

/// The messages one outbound becomes: text over the platform's limit is split.
fn messages(outbound: Outbound, max_len: usize) -> Vec<Outbound> {
    let text = match &outbound.reply {
        Reply::Text { text } | Reply::Whisper { text } | Reply::Ephemeral { text }
            if text.chars().count() > max_len =>
        {
            text.clone()
        }
        _ => return vec![outbound],
    };
    split_message(&text, max_len)
        .into_iter()
        .map(|part| {
            let reply = match &outbound.reply {
                Reply::Whisper { .. } => Reply::Whisper { text: part },
                Reply::Ephemeral { .. } => Reply::Ephemeral { text: part },
                _ => Reply::Text { text: part },
            };
            Outbound {
                reply,
                ..outbound.clone()
            }
        })
        .collect()
}

#[async_trait]
impl Platform for Governor {
    fn kind(&self) -> PlatformKind {
        self.platform.kind()
    }

    fn limits(&self) -> PlatformLimits {
        self.platform.limits()
    }

    async fn pacing(&self, outbound: &Outbound) -> Pacing {
        self.platform.pacing(outbound).await
    }

    async fn send(&self, outbound: Outbound) -> Result<(), PlatformError> {
        let pacing = self.platform.pacing(&outbound).await;
        let _turn = self.turn(&pacing.lane).await;
        for message in messages(outbound, self.platform.limits().max_message_len) {
            self.wait_for_room(&self.limits(&pacing, &message.reply))
                .await;
            self.deliver(message).await?;
        }
        Ok(())
    }
}
