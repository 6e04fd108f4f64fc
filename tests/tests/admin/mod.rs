//! The admin API's test kit: a bot with two communities (1 `pond`, 2 `lake`) behind the real
//! server on loopback, with authentication on, and small helpers to call it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use waddlebot::store::MemoryStore;
use waddlebot::{CommunityId, Event, PlatformKind, Store};
use waddlebot_router::Router;
use waddlebot_server::auth::{Authenticator, JwtSettings, Role, issue_token};
use waddlebot_server::{AppState, HttpPolicy};

use crate::loopback;

pub(crate) fn settings() -> JwtSettings {
    JwtSettings::hs256(
        b"an-hs256-secret-of-at-least-32-bytes!!".to_vec(),
        "waddlebot",
        "waddlebot-api",
    )
}

pub(crate) fn token(role: Role, community: Option<i64>) -> String {
    issue_token(
        &settings(),
        "tester",
        role,
        community.map(CommunityId),
        Duration::from_secs(600),
    )
    .expect("token")
}

pub(crate) struct Bot {
    /// `http://127.0.0.1:<port>/api/v1`
    pub(crate) base: String,
    pub(crate) router: Arc<Router>,
    pub(crate) store: Arc<dyn Store>,
    _server: loopback::Loopback,
}

/// The bot with the default HTTP policy and HS256 tokens.
pub(crate) async fn start() -> Bot {
    start_with(HttpPolicy::default(), settings()).await
}

/// The bot with `policy` and `jwt`.
pub(crate) async fn start_with(policy: HttpPolicy, jwt: JwtSettings) -> Bot {
    start_on(Arc::new(MemoryStore::new()), policy, jwt).await
}

/// Communities 1 `pond` (owning the Twitch channel `pond`) and 2 `lake`, in an empty store.
pub(crate) async fn seed(store: &dyn Store) {
    store
        .create_community("pond", SystemTime::now())
        .await
        .expect("A");
    store
        .create_community("lake", SystemTime::now())
        .await
        .expect("B");
    store
        .assign_entity(
            &waddlebot::store::EntityKey {
                platform: PlatformKind::Twitch,
                server_id: "pond".to_owned(),
                channel_id: "pond".to_owned(),
            },
            CommunityId(1),
        )
        .await
        .expect("assigned");
}

/// The bot on `store` (empty), with `policy` and `jwt`.
pub(crate) async fn start_on(store: Arc<dyn Store>, policy: HttpPolicy, jwt: JwtSettings) -> Bot {
    seed(store.as_ref()).await;
    let mut builder = Router::builder().store(Arc::clone(&store));
    let standard = waddlebot_modules::standard_modules();
    builder = builder.modules(standard.commands, standard.events);
    let router = Arc::new(builder.build().expect("router"));
    let auth = Authenticator::new(Arc::clone(&store), Some(jwt)).expect("auth");
    let state = AppState::new(Arc::clone(&router), 1 << 20)
        .with_auth(auth)
        .with_http(policy);
    let server = loopback::serve_on_loopback(state).await;
    Bot {
        base: format!("http://{}/api/v1", server.addr),
        router,
        store,
        _server: server,
    }
}

pub(crate) async fn call(
    method: reqwest::Method,
    url: String,
    credential: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(credential);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("answered");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// What the bot answers `alice` in community 1's Twitch channel.
pub(crate) async fn chat(bot: &Bot, text: &str) -> Vec<String> {
    let event = Event::chat(PlatformKind::Twitch, "pond", "pond", "alice", text);
    bot.router
        .handle(event)
        .await
        .expect("handled")
        .replies
        .iter()
        .map(|r| r.to_plain_text())
        .collect()
}
