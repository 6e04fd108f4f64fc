//! The outbound governor on a paused clock: quotas are waited for and never exceeded, lanes keep
//! order, moderation does not wait behind chat, repeats wait, 429s are retried after their
//! `Retry-After`, long text is split and each part paced.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use waddlebot::{
    Outbound, Pacing, Platform, PlatformError, PlatformKind, PlatformLimits, Quota, Reply,
    async_trait,
};
use waddlebot_router::governor::Governor;

/// A platform with Twitch-like pacing that records when each message arrived, and can answer
/// 429 a given number of times first.
struct Stopwatch {
    start: Instant,
    sent: Mutex<Vec<(Duration, String)>>,
    rate_limited: Mutex<VecDeque<Duration>>,
    global: Option<Quota>,
}

impl Stopwatch {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            sent: Mutex::new(Vec::new()),
            rate_limited: Mutex::new(VecDeque::new()),
            global: None,
        })
    }

    fn with_global(quota: Quota) -> Arc<Self> {
        Arc::new(Self {
            global: Some(quota),
            ..Arc::into_inner(Self::new()).expect("fresh")
        })
    }

    /// Seconds (from the start) at which each message arrived, in arrival order.
    fn times(&self) -> Vec<u64> {
        self.sent
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|(at, _)| at.as_secs())
            .collect()
    }

    fn texts(&self) -> Vec<String> {
        self.sent
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|(_, text)| text.clone())
            .collect()
    }
}

#[async_trait]
impl Platform for Stopwatch {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Twitch
    }

    fn limits(&self) -> PlatformLimits {
        PlatformLimits {
            max_message_len: 20,
            ..PlatformLimits::default()
        }
    }

    async fn pacing(&self, outbound: &Outbound) -> Pacing {
        if matches!(outbound.reply, Reply::Moderate(_)) {
            return Pacing::unpaced(format!("moderation:{}", outbound.channel_id));
        }
        Pacing {
            lane: format!("chat:{}", outbound.channel_id),
            lane_quotas: vec![Quota::new(20, Duration::from_secs(30))],
            global_quota: self.global,
            distinct_within: Some(Duration::from_secs(30)),
        }
    }

    async fn send(&self, outbound: Outbound) -> Result<(), PlatformError> {
        if let Some(retry_after) = self.rate_limited.lock().expect("not poisoned").pop_front() {
            return Err(PlatformError::RateLimited { retry_after });
        }
        let text = match &outbound.reply {
            Reply::Moderate(_) => "<moderation>".to_owned(),
            other => other.to_plain_text(),
        };
        self.sent
            .lock()
            .expect("not poisoned")
            .push((self.start.elapsed(), text));
        Ok(())
    }
}

fn to(channel: &str, reply: Reply) -> Outbound {
    Outbound {
        platform: PlatformKind::Twitch,
        server_id: channel.to_owned(),
        channel_id: channel.to_owned(),
        user_id: "viewer".to_owned(),
        in_reply_to: None,
        reply,
    }
}

/// Sends each outbound from its own task, in order, as a busy router would.
async fn send_all(governor: &Arc<Governor>, outbounds: Vec<Outbound>) {
    let mut tasks = Vec::new();
    for outbound in outbounds {
        let governor = Arc::clone(governor);
        tasks.push(tokio::spawn(async move { governor.send(outbound).await }));
        // Let the task take its place in the lane before the next one starts.
        tokio::task::yield_now().await;
    }
    for task in tasks {
        task.await.expect("no panic").expect("delivered");
    }
}

#[tokio::test(start_paused = true)]
async fn twenty_five_chat_messages_go_twenty_now_and_five_after_thirty_seconds() {
    let platform = Stopwatch::new();
    let governor = Arc::new(Governor::new(platform.clone()));
    let outbounds = (0..25)
        .map(|i| to("c1", Reply::text(format!("message {i}"))))
        .collect();
    send_all(&governor, outbounds).await;

    let times = platform.times();
    assert_eq!(times.len(), 25, "nothing is dropped");
    assert!(times[..20].iter().all(|t| *t == 0), "{times:?}");
    assert!(times[20..].iter().all(|t| *t == 30), "{times:?}");
    let expected: Vec<String> = (0..25).map(|i| format!("message {i}")).collect();
    assert_eq!(platform.texts(), expected, "the lane keeps order");
    assert_eq!(governor.busy_lanes(), 0, "idle lanes are forgotten");
}

#[tokio::test(start_paused = true)]
async fn another_channel_and_moderation_do_not_wait_behind_a_full_lane() {
    let platform = Stopwatch::new();
    let governor = Arc::new(Governor::new(platform.clone()));
    let mut outbounds: Vec<Outbound> = (0..21)
        .map(|i| to("busy", Reply::text(format!("chat {i}"))))
        .collect();
    outbounds.push(to("quiet", Reply::text("hello quiet")));
    outbounds.push(to(
        "busy",
        Reply::Moderate(waddlebot::ModerationAction::Ban {
            user_id: "spammer".to_owned(),
            reason: None,
        }),
    ));
    send_all(&governor, outbounds).await;

    let sent = platform.sent.lock().expect("not poisoned").clone();
    let at = |text: &str| {
        sent.iter()
            .find(|(_, t)| t == text)
            .map(|(at, _)| at.as_secs())
            .expect(text)
    };
    assert_eq!(
        at("chat 20"),
        30,
        "the 21st chat message waits out the window"
    );
    assert_eq!(at("hello quiet"), 0);
    assert_eq!(at("<moderation>"), 0, "the ban goes before the queued chat");
}

#[tokio::test(start_paused = true)]
async fn the_same_text_twice_waits_thirty_seconds() {
    let platform = Stopwatch::new();
    let governor = Arc::new(Governor::new(platform.clone()));
    send_all(
        &governor,
        vec![
            to("c1", Reply::text("Follow the rules!")),
            to("c1", Reply::text("Follow the rules!")),
            to("c2", Reply::text("Follow the rules!")),
        ],
    )
    .await;

    let sent = platform.sent.lock().expect("not poisoned").clone();
    assert_eq!(sent.len(), 3);
    let times: Vec<u64> = sent.iter().map(|(at, _)| at.as_secs()).collect();
    // c2 is another lane: it does not wait for c1's repeat.
    assert_eq!(times, [0, 0, 30]);
}

#[tokio::test(start_paused = true)]
async fn a_429_is_retried_after_its_retry_after_and_nothing_overtakes() {
    let platform = Stopwatch::new();
    platform
        .rate_limited
        .lock()
        .expect("not poisoned")
        .push_back(Duration::from_secs(7));
    let governor = Arc::new(Governor::new(platform.clone()));
    send_all(
        &governor,
        vec![
            to("c1", Reply::text("first")),
            to("c1", Reply::text("second")),
        ],
    )
    .await;

    assert_eq!(platform.texts(), ["first", "second"]);
    assert_eq!(platform.times(), [7, 7]);
}

#[tokio::test(start_paused = true)]
async fn a_platform_that_keeps_refusing_gives_up_after_the_retries() {
    let platform = Stopwatch::new();
    platform
        .rate_limited
        .lock()
        .expect("not poisoned")
        .extend([Duration::from_secs(1); 5]);
    let governor = Governor::new(platform.clone()).max_retries(2);
    let result = governor.send(to("c1", Reply::text("hello"))).await;

    assert!(
        matches!(result, Err(PlatformError::RateLimited { .. })),
        "{result:?}"
    );
    assert!(platform.texts().is_empty());
    assert_eq!(
        platform.rate_limited.lock().expect("not poisoned").len(),
        2,
        "three attempts: the first and two retries"
    );
}

#[tokio::test(start_paused = true)]
async fn long_text_is_split_on_words_and_every_part_counts_against_the_quota() {
    let platform = Stopwatch::new();
    let governor = Arc::new(Governor::new(platform.clone()));
    // Fill 19 of the 20 slots, then send a text that becomes three messages.
    let mut outbounds: Vec<Outbound> = (0..19)
        .map(|i| to("c1", Reply::text(format!("m{i}"))))
        .collect();
    outbounds.push(to(
        "c1",
        Reply::text("the quick brown fox jumps over the lazy dog again"),
    ));
    send_all(&governor, outbounds).await;

    let sent = platform.sent.lock().expect("not poisoned").clone();
    let parts: Vec<(u64, &str)> = sent[19..]
        .iter()
        .map(|(at, text)| (at.as_secs(), text.as_str()))
        .collect();
    assert_eq!(
        parts,
        [
            (0, "the quick brown fox"),
            (30, "jumps over the lazy"),
            (30, "dog again"),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_global_quota_is_shared_by_every_lane() {
    let platform = Stopwatch::with_global(Quota::new(3, Duration::from_secs(1)));
    let governor = Arc::new(Governor::new(platform.clone()));
    let outbounds = (0..5)
        .map(|i| to(&format!("c{i}"), Reply::text("hi")))
        .collect();
    send_all(&governor, outbounds).await;

    let mut times = platform.times();
    times.sort_unstable();
    assert_eq!(times, [0, 0, 0, 1, 1]);
}
