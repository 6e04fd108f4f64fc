//! One rate limiter suite, run against the in-process limiter and Redis (when
//! `WADDLEBOT_TEST_REDIS_URL` is set; `.ci/run` sets it), plus the fallback when Redis goes away.

use std::sync::Arc;
use std::time::Duration;

use waddlebot::clock::ManualClock;
use waddlebot_router::limit::{
    FallbackLimiter, Limit, MemoryLimiter, RateLimiter, RedisLimiter, Verdict,
};

fn limit(key: &str, max: u32, secs: u64) -> Limit {
    Limit {
        key: key.to_owned(),
        max,
        window: Duration::from_secs(secs),
    }
}

async fn allowed(limiter: &dyn RateLimiter, limits: &[Limit]) -> bool {
    matches!(
        limiter.acquire(limits).await.expect("limiter answers"),
        Verdict::Allowed
    )
}

/// The original's acceptance case: 65 uses in a minute under 60 per 60 s.
async fn sixty_five_requests_let_exactly_sixty_through(
    limiter: &dyn RateLimiter,
    clock: &ManualClock,
) {
    let rate = [limit("rate:alice:!hello", 60, 60)];
    let mut passed = 0;
    for _ in 0..65 {
        if allowed(limiter, &rate).await {
            passed += 1;
        }
        clock.advance(Duration::from_millis(500));
    }
    assert_eq!(passed, 60);
    clock.advance(Duration::from_secs(60));
    assert!(allowed(limiter, &rate).await, "the window slid on");
}

async fn refusals_say_how_long_is_left(limiter: &dyn RateLimiter, clock: &ManualClock) {
    let cooldown = [limit("cd:hello", 1, 30)];
    assert!(allowed(limiter, &cooldown).await);
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        limiter.acquire(&cooldown).await.expect("answers"),
        Verdict::Refused {
            index: 0,
            retry_after: Duration::from_secs(20)
        }
    );
    clock.advance(Duration::from_secs(20));
    assert!(allowed(limiter, &cooldown).await);
}

async fn a_refusal_records_nothing(limiter: &dyn RateLimiter, _clock: &ManualClock) {
    let full = limit("full", 1, 60);
    let roomy = limit("roomy", 1, 60);
    assert!(allowed(limiter, std::slice::from_ref(&full)).await);
    assert!(matches!(
        limiter
            .acquire(&[roomy.clone(), full])
            .await
            .expect("answers"),
        Verdict::Refused { index: 1, .. }
    ));
    assert!(
        allowed(limiter, &[roomy]).await,
        "the refused call did not use up the other limit"
    );
}

async fn windows_slide_use_by_use(limiter: &dyn RateLimiter, clock: &ManualClock) {
    let two = [limit("two", 2, 10)];
    assert!(allowed(limiter, &two).await);
    clock.advance(Duration::from_secs(5));
    assert!(allowed(limiter, &two).await);
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        limiter.acquire(&two).await.expect("answers"),
        Verdict::Refused {
            index: 0,
            retry_after: Duration::from_secs(4)
        }
    );
    clock.advance(Duration::from_secs(4));
    assert!(
        allowed(limiter, &two).await,
        "the first use left the window"
    );
}

async fn concurrent_callers_never_exceed_the_limit(
    limiter: &dyn RateLimiter,
    _clock: &ManualClock,
) {
    let rate = [limit("burst", 60, 60)];
    let results = futures_util::future::join_all((0..100).map(|_| limiter.acquire(&rate))).await;
    let passed = results
        .into_iter()
        .filter(|r| matches!(r, Ok(Verdict::Allowed)))
        .count();
    assert_eq!(passed, 60);
}

macro_rules! limiter_suite {
    ($make:expr) => {
        limiter_suite!(@cases $make;
            sixty_five_requests_let_exactly_sixty_through,
            refusals_say_how_long_is_left,
            a_refusal_records_nothing,
            windows_slide_use_by_use,
            concurrent_callers_never_exceed_the_limit,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let clock = Arc::new(ManualClock::new());
                let make = $make;
                let Some(limiter) = make(Arc::clone(&clock)) else { return };
                super::$case(&*limiter, &clock).await;
            }
        )*
    };
}

mod memory {
    use super::*;

    limiter_suite!(|clock: Arc<ManualClock>| -> Option<Arc<dyn RateLimiter>> {
        Some(Arc::new(MemoryLimiter::with_clock(clock)))
    });
}

fn redis_url() -> Option<String> {
    let url = std::env::var("WADDLEBOT_TEST_REDIS_URL").ok();
    if url.is_none() {
        eprintln!("skipped: WADDLEBOT_TEST_REDIS_URL is not set");
    }
    url
}

/// A prefix no other test uses, so tests run in parallel on one Redis.
fn fresh_prefix() -> String {
    format!("waddlebot-test:{}:", uuid::Uuid::new_v4().simple())
}

mod redis {
    use super::*;

    limiter_suite!(|clock: Arc<ManualClock>| -> Option<Arc<dyn RateLimiter>> {
        let url = redis_url()?;
        Some(Arc::new(
            RedisLimiter::new(&url, &fresh_prefix(), clock).expect("valid URL"),
        ))
    });

    #[tokio::test]
    async fn two_routers_sharing_redis_share_one_limit() {
        let Some(url) = redis_url() else { return };
        let clock = Arc::new(ManualClock::new());
        let prefix = fresh_prefix();
        let a = RedisLimiter::new(&url, &prefix, clock.clone()).expect("valid URL");
        let b = RedisLimiter::new(&url, &prefix, clock.clone()).expect("valid URL");
        let rate = [limit("rate:alice:!hello", 60, 60)];
        let mut passed = 0;
        for i in 0..65 {
            let limiter: &dyn RateLimiter = if i % 2 == 0 { &a } else { &b };
            if allowed(limiter, &rate).await {
                passed += 1;
            }
        }
        assert_eq!(passed, 60);
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_an_error_not_a_hang() {
        let clock = Arc::new(ManualClock::new());
        // Port 1 on loopback: nothing listens there.
        let limiter = RedisLimiter::new("redis://127.0.0.1:1/", "x:", clock).expect("valid URL");
        let started = std::time::Instant::now();
        assert!(limiter.acquire(&[limit("k", 1, 1)]).await.is_err());
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}

mod fallback {
    use super::*;

    /// Redis is down: the fallback still limits (never unlimited).
    #[tokio::test]
    async fn a_dead_redis_falls_back_to_local_limits() {
        let clock = Arc::new(ManualClock::new());
        let dead =
            RedisLimiter::new("redis://127.0.0.1:1/", "x:", clock.clone()).expect("valid URL");
        let limiter = FallbackLimiter::new(Arc::new(dead), clock.clone());
        sixty_five_requests_let_exactly_sixty_through(&limiter, &clock).await;
        assert!(limiter.degraded());
    }

    /// A Redis of our own on a spare port: used, stopped (fallback), started again (recovery).
    #[tokio::test]
    async fn it_recovers_when_redis_returns() {
        if redis_url().is_none() || which_redis_server().is_none() {
            eprintln!("skipped: needs redis-server and WADDLEBOT_TEST_REDIS_URL");
            return;
        }
        let port = spare_port();
        let url = format!("redis://127.0.0.1:{port}/");
        let clock = Arc::new(ManualClock::new());
        let redis =
            Arc::new(RedisLimiter::new(&url, &fresh_prefix(), clock.clone()).expect("valid"));
        let limiter = FallbackLimiter::new(redis, clock.clone());
        let once = [limit("once", 1, 3600)];

        let mut server = start_redis(port).await;
        assert!(allowed(&limiter, &once).await);
        assert!(!limiter.degraded());

        server.kill().expect("stopped");
        let _ = server.wait();
        assert!(!allowed(&limiter, &once).await, "fallback limits too");
        assert!(limiter.degraded());

        let mut server = start_redis(port).await;
        clock.advance(FallbackLimiter::RETRY_EVERY);
        // The restarted Redis is empty, so the key is free again there.
        let mut recovered = false;
        for _ in 0..20 {
            let _ = limiter.acquire(&[limit("probe", 1_000, 1)]).await;
            if !limiter.degraded() {
                recovered = true;
                break;
            }
            clock.advance(FallbackLimiter::RETRY_EVERY);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server.kill().expect("stopped");
        let _ = server.wait();
        assert!(recovered, "the limiter went back to Redis");
    }

    fn which_redis_server() -> Option<()> {
        std::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|_| ())
    }

    fn spare_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a spare port")
    }

    async fn start_redis(port: u16) -> std::process::Child {
        let mut child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts");
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return child;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not start on port {port}");
    }
}

/// Two processes posting as the same bot share one outbound budget through Redis: the third
/// message of a 2-per-second lane waits, whichever process sends it.
#[tokio::test]
async fn governors_sharing_redis_share_the_bots_outbound_budget() {
    use std::sync::Mutex;
    use waddlebot::{
        Outbound, Pacing, Platform, PlatformError, PlatformKind, Quota, Reply, async_trait,
    };
    use waddlebot_router::governor::Governor;

    #[derive(Default)]
    struct Chat(Mutex<Vec<tokio::time::Instant>>);

    #[async_trait]
    impl Platform for Chat {
        fn kind(&self) -> PlatformKind {
            PlatformKind::Twitch
        }
        async fn pacing(&self, _: &Outbound) -> Pacing {
            Pacing {
                lane_quotas: vec![Quota::new(2, Duration::from_secs(1))],
                ..Pacing::unpaced("chat:c1")
            }
        }
        async fn send(&self, _: Outbound) -> Result<(), PlatformError> {
            self.0
                .lock()
                .expect("not poisoned")
                .push(tokio::time::Instant::now());
            Ok(())
        }
    }

    let Some(url) = redis_url() else { return };
    let prefix = fresh_prefix();
    let clock: Arc<dyn waddlebot::clock::Clock> = Arc::new(waddlebot::clock::SystemClock);
    let governor = |platform: Arc<Chat>| {
        let redis = RedisLimiter::new(&url, &prefix, Arc::clone(&clock)).expect("valid URL");
        Governor::with_limiter(platform, Arc::new(redis))
    };
    let (chat_a, chat_b) = (Arc::new(Chat::default()), Arc::new(Chat::default()));
    let (a, b) = (governor(chat_a.clone()), governor(chat_b.clone()));
    let outbound = || Outbound {
        platform: PlatformKind::Twitch,
        server_id: "c1".to_owned(),
        channel_id: "c1".to_owned(),
        user_id: "u".to_owned(),
        in_reply_to: None,
        reply: Reply::text("hello"),
    };

    let start = tokio::time::Instant::now();
    a.send(outbound()).await.expect("sent");
    a.send(outbound()).await.expect("sent");
    b.send(outbound()).await.expect("sent");

    let third = chat_b.0.lock().expect("not poisoned")[0];
    assert_eq!(chat_a.0.lock().expect("not poisoned").len(), 2);
    assert!(
        third.duration_since(start) >= Duration::from_millis(990),
        "the other process waited for room in the shared budget ({:?})",
        third.duration_since(start)
    );
}
