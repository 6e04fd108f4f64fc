//! HTTP load: `POST /router/events` with a custom text command on the real server (SQLite,
//! the standard bot), against a bare hyper server answering a fixed JSON body, both on
//! loopback at 64 keep-alive connections, in the same run. Prints requests/s, p50 and p99 of
//! each and the ratio (issue goal: the router endpoint reaches at least 60 % of bare hyper).
//!
//! The server is measured as it is deployed: authentication on, the collector sending its API
//! key with every event, metrics recorded by the Prometheus recorder. A row without
//! authentication (`serve --dev`) shows what the key check costs.
//!
//! `cargo bench -p tests --bench http_load` (`BENCH_SECS` per row, default 10, run in
//! `BENCH_ROUNDS` turns, default 5, so that every row sees the machine alike;
//! `BENCH_CONNECTIONS`, default 64). Server and load generator share the machine's cores.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use waddlebot::store::{CustomCommand, EntityKey};
use waddlebot::{PlatformKind, Store};
use waddlebot_router::policy::RateLimit;
use waddlebot_server::auth::{Authenticator, Role, new_api_key};
use waddlebot_server::{AppState, Config, app, build_router, serve};

#[path = "../support/fixed_server.rs"]
mod fixed_server;

// The allocator the `waddlebot` binary ships with, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FIXED: &str = r#"{"status":"success","data":{"replies":[{"text":"Hi viewer!"}]}}"#;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A bare hyper HTTP/1 server answering `FIXED` to everything.
async fn bare_hyper() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bound");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(fixed_server::serve(listener, FIXED));
    addr
}

/// The same fixed answer through hyper-util's auto (HTTP/1 + HTTP/2) builder with the
/// header-read timer, as `waddlebot_server::serve` configures it: what the connection layer
/// costs, apart from the application.
async fn auto_builder() -> SocketAddr {
    use hyper_util::rt::{TokioExecutor, TokioTimer};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bound");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(waddlebot_server::HEADER_READ_TIMEOUT);
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let connection = builder.serve_connection(
                TokioIo::new(stream),
                hyper::service::service_fn(
                    |request: http::Request<hyper::body::Incoming>| async move {
                        let _ = request.into_body().collect().await;
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                            FIXED.as_bytes(),
                        ))))
                    },
                ),
            );
            let connection = connection.into_owned();
            tokio::spawn(async move {
                let _ = connection.await;
            });
        }
    });
    addr
}

/// The real server on a fresh SQLite file: the standard bot with `!hello` → `Hi {user}!`.
/// Returns its address and, with authentication on, a collector key.
async fn waddlebot_server(dir: &std::path::Path, auth: bool) -> (SocketAddr, Option<String>) {
    let mut config = Config {
        database_url: format!("sqlite://{}", dir.join("bench.db").display()),
        ..Config::default()
    };
    // Consulted on every command but never refusing: the figures are for commands that run
    // (500 viewers repeat, as in a real chat). A one-second window keeps each viewer's log of
    // uses near the size the default limit (60 per 60 s) allows; a 60 s window at this rate
    // would hold millions of timestamps no real deployment holds.
    config.router.policy.user_rate = RateLimit::per_secs(1_000_000, 1);
    config.router.policy.community_rate = None;
    let router = Arc::new(build_router(&config, Vec::new()).await.expect("router"));
    let store = Arc::clone(router.store());
    let community = store
        .resolve_entity(&EntityKey {
            platform: PlatformKind::Twitch,
            server_id: "bench".into(),
            channel_id: "bench".into(),
        })
        .await
        .expect("entity")
        .community_id;
    let now = SystemTime::now();
    store
        .create_custom_command(&CustomCommand {
            community_id: community,
            name: "hello".into(),
            response: "Hi {user}!".into(),
            created_by: "bench".into(),
            created_at: now,
            updated_at: now,
        })
        .await
        .expect("command");
    if std::env::var("BENCH_NO_OBSERVERS").is_ok() {
        for module in ["reputation", "members"] {
            store
                .put_module_install(&waddlebot::store::ModuleInstall {
                    community_id: community,
                    module: module.into(),
                    enabled: false,
                    config: serde_json::json!({}),
                    updated_by: "bench".into(),
                    updated_at: now,
                })
                .await
                .expect("off");
        }
    }
    let mut state = AppState::new(router, config.max_body_bytes);
    let mut key = None;
    if auth {
        let (secret, record) =
            new_api_key("bench collector", Role::Collector, None, None).expect("key");
        store.create_api_key(&record).await.expect("stored");
        state = state.with_auth(
            Authenticator::new(Arc::clone(&store) as Arc<dyn Store>, None).expect("auth"),
        );
        key = Some(secret);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bound");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(serve(listener, app(state), std::future::pending()));
    (addr, key)
}

struct Row {
    requests: u64,
    seconds: f64,
    latency: Histogram<u64>,
    errors: u64,
}

/// `connections` keep-alive connections, each sending one request after another, for
/// `duration` after a warm-up of a quarter second (new connections, a cold cache).
async fn load(
    addr: SocketAddr,
    path: &'static str,
    key: Option<String>,
    connections: u64,
    duration: Duration,
) -> Row {
    let start = Instant::now() + Duration::from_millis(250);
    let end = start + duration;
    let mut workers = Vec::new();
    for connection in 0..connections {
        let key = key.clone();
        workers.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.expect("connected");
            let _ = stream.set_nodelay(true);
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            let mut latency = Histogram::<u64>::new(3).expect("histogram");
            let (mut requests, mut errors) = (0u64, 0u64);
            let mut i = 0u64;
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                i += 1;
                let body = format!(
                    r#"{{"platform":"twitch","server_id":"bench","channel_id":"bench","user_id":"{u}","username":"viewer{u}","message":"!hello"}}"#,
                    u = (connection * 7919 + i) % 500
                );
                let mut request = http::Request::post(path)
                    .header(http::header::HOST, "bench")
                    .header(http::header::CONTENT_TYPE, "application/json");
                if let Some(key) = &key {
                    request = request.header(http::header::AUTHORIZATION, format!("Bearer {key}"));
                }
                let request = request.body(Full::new(Bytes::from(body))).expect("request");
                let sent = Instant::now();
                let response = sender.send_request(request).await.expect("answered");
                let ok = response.status() == 200;
                let body = response.into_body().collect().await.expect("body").to_bytes();
                if sent >= start {
                    let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                    latency.record(micros.max(1)).expect("recorded");
                    requests += 1;
                    if !ok || !body.windows(8).any(|w| w == b"Hi viewe") {
                        errors += 1;
                    }
                }
            }
            (requests, errors, latency)
        }));
    }
    let mut row = Row {
        requests: 0,
        seconds: duration.as_secs_f64(),
        latency: Histogram::<u64>::new(3).expect("histogram"),
        errors: 0,
    };
    for worker in workers {
        let (requests, errors, latency) = worker.await.expect("worker");
        row.requests += requests;
        row.errors += errors;
        row.latency.add(&latency).expect("merged");
    }
    row
}

/// A fresh directory `name` under `base`.
fn subdir(base: &std::path::Path, name: &str) -> std::path::PathBuf {
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).expect("directory");
    dir
}

fn print(name: &str, row: &Row) -> f64 {
    let rate = row.requests as f64 / row.seconds;
    println!(
        "{name:<44} {rate:>10.0} req/s   p50 {:>6} µs   p99 {:>6} µs   ({} requests, {} not the expected answer)",
        row.latency.value_at_quantile(0.50),
        row.latency.value_at_quantile(0.99),
        row.requests,
        row.errors,
    );
    rate
}

/// A server under load: what to call it, where it listens, the path and the key to send.
struct Target {
    name: &'static str,
    addr: SocketAddr,
    path: &'static str,
    key: Option<String>,
    row: Option<Row>,
}

impl Row {
    fn merge(&mut self, other: Row) {
        self.requests += other.requests;
        self.seconds += other.seconds;
        self.errors += other.errors;
        self.latency.add(&other.latency).expect("merged");
    }
}

fn main() {
    let secs = setting("BENCH_SECS", 10);
    let rounds = setting("BENCH_ROUNDS", 5).max(1);
    let connections = setting("BENCH_CONNECTIONS", 64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // As `waddlebot serve` does: a Prometheus recorder, installed before the routers.
        let _metrics = waddlebot_server::install_metrics().expect("recorder");
        let dir = tempfile::tempdir().expect("dir");
        println!(
            "{connections} connections, {secs} s per row in {rounds} rounds, loopback, {} cores shared by server and load",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        // `BENCH_ONLY=bare|auto|auth|dev` runs one row (for profiling).
        let only = std::env::var("BENCH_ONLY").ok();
        let wanted = |row: &str| only.as_deref().is_none_or(|o| o == row);
        let mut targets = Vec::new();
        let mut add = |name, addr, path, key| {
            targets.push(Target {
                name,
                addr,
                path,
                key,
                row: None,
            });
        };
        if wanted("bare") {
            add("bare hyper, fixed JSON", bare_hyper().await, "/", None);
        }
        if wanted("auto") {
            add("hyper-util auto builder, fixed JSON", auto_builder().await, "/", None);
        }
        if wanted("auth") {
            let (addr, key) = waddlebot_server(&subdir(dir.path(), "auth"), true).await;
            add("POST /router/events !hello (collector key)", addr, "/router/events", key);
        }
        if wanted("dev") {
            let (addr, _) = waddlebot_server(&subdir(dir.path(), "dev"), false).await;
            add("POST /router/events !hello (no auth, --dev)", addr, "/router/events", None);
        }
        // The rows take turns, a slice each per round, so a change in what else the shared
        // machine is doing falls on every row alike instead of on whichever ran then.
        let slice = Duration::from_secs_f64(secs as f64 / rounds as f64);
        for _ in 0..rounds {
            for target in &mut targets {
                let row = load(target.addr, target.path, target.key.clone(), connections, slice).await;
                match &mut target.row {
                    Some(total) => total.merge(row),
                    None => target.row = Some(row),
                }
            }
        }
        let mut rates = std::collections::HashMap::new();
        for target in &targets {
            if let Some(row) = &target.row {
                rates.insert(target.name, print(target.name, row));
            }
        }
        let rate = |name: &str| rates.get(name).copied().unwrap_or(f64::NAN);
        let bare = rate("bare hyper, fixed JSON");
        println!(
            "ratio to bare hyper: {:.0} % with the collector key, {:.0} % without authentication (goal ≥ 60 %)",
            100.0 * rate("POST /router/events !hello (collector key)") / bare,
            100.0 * rate("POST /router/events !hello (no auth, --dev)") / bare
        );
    });
}
