//! The server on a loopback socket, for the platform conversation tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use waddlebot::store::MemoryStore;
use waddlebot::{CommandSpec, Context, Platform, command_fn};
use waddlebot_router::Router;
use waddlebot_server::{AppState, app, serve};

/// A running server; it stops when this is dropped.
pub(crate) struct Loopback {
    pub(crate) addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

/// Serves `state` on a fresh loopback port.
pub(crate) async fn serve_on_loopback(state: AppState) -> Loopback {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bound");
    serve_listener(listener, state)
}

/// Serves `state` on `listener`.
pub(crate) fn serve_listener(listener: tokio::net::TcpListener, state: AppState) -> Loopback {
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, app(state), async {
        let _ = stopped.await;
    }));
    Loopback { addr, _stop: stop }
}

/// `!slow`: answers after 4 s, longer than any platform's answer window.
async fn slow(_ctx: Context) -> String {
    tokio::time::sleep(Duration::from_secs(4)).await;
    "Finally done.".to_owned()
}

/// The built-in modules plus `!slow`, on a memory store, delivering to `platforms`.
pub(crate) fn bot_router(platforms: Vec<Arc<dyn Platform>>) -> Arc<Router> {
    bot_router_on(Arc::new(MemoryStore::new()), platforms)
}

/// The same bot on `store`.
pub(crate) fn bot_router_on(
    store: Arc<dyn waddlebot::Store>,
    platforms: Vec<Arc<dyn Platform>>,
) -> Arc<Router> {
    let mut builder = Router::builder()
        .store(store)
        .handler(command_fn(CommandSpec::new("slow"), slow));
    let standard = waddlebot_modules::standard_modules();
    builder = builder.modules(standard.commands, standard.events);
    for platform in platforms {
        builder = builder.platform(platform);
    }
    Arc::new(builder.build().expect("router"))
}

/// The JSON bodies a stand-in received on `path`, waiting up to `wait` for `count` of them.
pub(crate) async fn received_json(
    server: &wiremock::MockServer,
    path: &str,
    count: usize,
    wait: Duration,
) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let bodies: Vec<serde_json::Value> = server
            .received_requests()
            .await
            .expect("recorded")
            .iter()
            .filter(|r| r.url.path() == path)
            .map(|r| serde_json::from_slice(&r.body).expect("json"))
            .collect();
        if bodies.len() >= count || tokio::time::Instant::now() > deadline {
            return bodies;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
