//! Store and limiter operations per second: uncached command lookup, counter increment,
//! document put and get on SQLite and PostgreSQL, and Redis limiter checks. One task, one
//! operation after another (latency-bound), with p50/p99.
//!
//! `WADDLEBOT_TEST_POSTGRES_URL=… WADDLEBOT_TEST_REDIS_URL=… cargo bench -p tests --bench stores`
//! (a backend whose URL is unset is skipped; `BENCH_OPS` sets the count).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use waddlebot::clock::SystemClock;
use waddlebot::store::{CustomCommand, EntityKey, Expect, PgSettings, PgStore, SqliteStore};
use waddlebot::{PlatformKind, Store};
use waddlebot_router::limit::{Limit, RateLimiter, RedisLimiter};

async fn measure<F, Fut>(name: &str, ops: u64, mut op: F)
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    for i in 0..ops.min(200) {
        op(i).await;
    }
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    let started = Instant::now();
    for i in 0..ops {
        let t = Instant::now();
        op(i).await;
        latencies
            .record(
                u64::try_from(t.elapsed().as_nanos())
                    .unwrap_or(u64::MAX)
                    .max(1),
            )
            .expect("in range");
    }
    let elapsed = started.elapsed();
    println!(
        "{name:<44} {:>9.0} ops/s  p50 {:>8.1} µs  p99 {:>8.1} µs",
        ops as f64 / elapsed.as_secs_f64(),
        latencies.value_at_quantile(0.5) as f64 / 1000.0,
        latencies.value_at_quantile(0.99) as f64 / 1000.0,
    );
}

async fn store_ops(backend: &str, store: Arc<dyn Store>, ops: u64) {
    let entity = store
        .resolve_entity(&EntityKey {
            platform: PlatformKind::Twitch,
            server_id: "bench".into(),
            channel_id: "bench".into(),
        })
        .await
        .expect("entity");
    let community = entity.community_id;
    let now = SystemTime::now();
    let _ = store
        .create_custom_command(&CustomCommand {
            community_id: community,
            name: "hello".into(),
            response: "Hi {user}".into(),
            created_by: "bench".into(),
            created_at: now,
            updated_at: now,
        })
        .await;
    let s = &store;
    measure(
        &format!("{backend}: command lookup (uncached)"),
        ops,
        |_| async move {
            s.custom_command(community, "hello").await.expect("lookup");
        },
    )
    .await;
    measure(
        &format!("{backend}: counter increment"),
        ops,
        |_| async move {
            s.increment("bench:uses", "hello", 1)
                .await
                .expect("increment");
        },
    )
    .await;
    let value = serde_json::json!({"text": "a quote worth keeping", "votes": 3});
    let v = &value;
    measure(&format!("{backend}: document put"), ops, |i| async move {
        s.put_document("bench:quotes", &format!("q{}", i % 1000), v, Expect::Any)
            .await
            .expect("put");
    })
    .await;
    measure(&format!("{backend}: document get"), ops, |i| async move {
        s.get_document("bench:quotes", &format!("q{}", i % 1000))
            .await
            .expect("get");
    })
    .await;
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let ops: u64 = std::env::var("BENCH_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { 5_000 } else { 20 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let sqlite = SqliteStore::open(&url).await.expect("sqlite");
        store_ops("SQLite (WAL file)", Arc::new(sqlite), ops).await;

        match std::env::var("WADDLEBOT_TEST_POSTGRES_URL") {
            Ok(url) => {
                let schema = format!("wbbench_{}", std::process::id());
                let admin = sqlx::PgPool::connect(&url).await.expect("PostgreSQL");
                let run = |sql: String| {
                    let admin = admin.clone();
                    async move {
                        sqlx::query(sqlx::AssertSqlSafe(sql))
                            .execute(&admin)
                            .await
                            .expect("admin")
                    }
                };
                run(format!("CREATE SCHEMA {schema}")).await;
                let settings = PgSettings {
                    max_connections: 8,
                    schema: Some(schema.clone()),
                };
                let pg = PgStore::open(&url, None, &settings)
                    .await
                    .expect("postgres");
                store_ops("PostgreSQL (loopback)", Arc::new(pg), ops).await;
                run(format!("DROP SCHEMA {schema} CASCADE")).await;
            }
            Err(_) => println!("PostgreSQL: skipped (WADDLEBOT_TEST_POSTGRES_URL unset)"),
        }

        match std::env::var("WADDLEBOT_TEST_REDIS_URL") {
            Ok(url) => {
                let prefix = format!("wbbench:{}:", std::process::id());
                let limiter =
                    RedisLimiter::new(&url, &prefix, Arc::new(SystemClock)).expect("redis");
                let l = &limiter;
                measure(
                    "Redis limiter: one check (user + community)",
                    ops,
                    |i| async move {
                        let limits = [
                            Limit {
                                key: format!("rl:1:hello:{}", i % 500),
                                max: 1_000_000,
                                window: Duration::from_secs(60),
                            },
                            Limit {
                                key: "rl:1".into(),
                                max: 1_000_000_000,
                                window: Duration::from_secs(1),
                            },
                        ];
                        l.acquire(&limits).await.expect("limiter");
                    },
                )
                .await;
            }
            Err(_) => println!("Redis: skipped (WADDLEBOT_TEST_REDIS_URL unset)"),
        }
    });
}
