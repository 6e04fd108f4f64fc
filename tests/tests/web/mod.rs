//! The web pages' test kit: the standard bot (built-in modules, the alerts module and a
//! `!showticker <text>` command that puts its text on the overlay ticker) behind the real server
//! on loopback with authentication on, community 1 `pond` owning the Twitch channel `pond`.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use waddlebot::store::MemoryStore;
use waddlebot::{CommandSpec, CommunityId, Context, OverlayReply, Reply, Store, command_fn};
use waddlebot_router::Router;
use waddlebot_server::auth::{Authenticator, Role};
use waddlebot_server::{AppState, HttpPolicy};

use crate::admin::{call, settings, token};
use crate::loopback;

pub(crate) struct WebBot {
    /// `http://127.0.0.1:<port>`
    pub(crate) base: String,
    pub(crate) router: Arc<Router>,
    pub(crate) store: Arc<dyn Store>,
    /// A bot-wide admin token.
    pub(crate) admin: String,
    server: Option<loopback::Loopback>,
}

async fn show_ticker(ctx: Context) -> Reply {
    Reply::Overlay(OverlayReply::Ticker {
        text: ctx.args.rest(0).to_owned(),
        duration_secs: 2,
    })
}

pub(crate) async fn start() -> WebBot {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    crate::admin::seed(store.as_ref()).await;
    let mut builder = Router::builder()
        .store(Arc::clone(&store))
        .handler(command_fn(CommandSpec::new("showticker"), show_ticker));
    let standard = waddlebot_modules::standard_modules();
    builder = builder.modules(standard.commands, standard.events);
    let router = Arc::new(builder.build().expect("router"));
    let server = loopback::serve_on_loopback(state(&router)).await;
    WebBot {
        base: format!("http://{}", server.addr),
        router,
        store,
        admin: token(Role::Admin, None),
        server: Some(server),
    }
}

fn state(router: &Arc<Router>) -> AppState {
    let auth = Authenticator::new(Arc::clone(router.store()), Some(settings())).expect("auth");
    AppState::new(Arc::clone(router), 1 << 20)
        .with_auth(auth)
        .with_http(HttpPolicy::default())
}

impl WebBot {
    /// Stops the server (its overlay streams end), waits `down`, and starts a new one on the
    /// same address with the same router and store.
    pub(crate) async fn restart(&mut self, down: Duration) {
        let addr = self.server.take().expect("running").addr;
        tokio::time::sleep(down).await;
        let listener = tokio::net::TcpListener::bind(addr).await.expect("rebound");
        self.server = Some(loopback::serve_listener(listener, state(&self.router)));
    }

    /// Posts an event in community 1's Twitch channel through `POST /router/events`.
    pub(crate) async fn event(&self, message_type: &str, user: &str, message: &str) -> Value {
        let response = reqwest::Client::new()
            .post(format!("{}/router/events", self.base))
            .bearer_auth(&self.admin)
            .json(&json!({
                "platform": "twitch", "server_id": "pond", "channel_id": "pond",
                "user_id": user, "username": user, "message": message,
                "message_type": message_type,
            }))
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), 200, "event accepted");
        response.json().await.expect("json")
    }

    /// The community's current overlay key, through the admin API.
    pub(crate) async fn overlay_key(&self, community: i64) -> String {
        let url = format!("{}/api/v1/communities/{community}/overlay", self.base);
        let (_, answer) = call(reqwest::Method::GET, url, &self.admin, None).await;
        answer["data"]["key"].as_str().expect("a key").to_owned()
    }

    /// Rotates community 1's overlay key, the old one working `grace_secs` more.
    pub(crate) async fn rotate(&self, grace_secs: u64) -> String {
        let url = format!("{}/api/v1/communities/1/overlay/rotate", self.base);
        let body = json!({"grace_secs": grace_secs});
        let (_, answer) = call(reqwest::Method::POST, url, &self.admin, Some(body)).await;
        answer["data"]["key"].as_str().expect("a key").to_owned()
    }

    /// A one-time portal sign-in link path for `user` with `role` in community 1.
    pub(crate) async fn login_link(&self, user: &str, role: Role) -> String {
        let token =
            waddlebot_server::create_login_link(self.store.as_ref(), CommunityId(1), user, role)
                .await
                .expect("link");
        format!("/portal/login/{token}")
    }
}

/// An overlay event stream read frame by frame.
pub(crate) struct Stream {
    response: reqwest::Response,
    buffer: String,
}

/// One server-sent event.
#[derive(Debug)]
pub(crate) struct Sse {
    pub(crate) event: String,
    pub(crate) data: Value,
}

impl Stream {
    pub(crate) async fn open(url: &str) -> Self {
        let response = reqwest::get(url).await.expect("answered");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped), or `None` when the stream ends or `wait` passes.
    pub(crate) async fn next(&mut self, wait: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event: ") {
                        event = name.to_owned();
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        data.push_str(value);
                    }
                }
                if !event.is_empty() {
                    return Some(Sse {
                        event,
                        data: serde_json::from_str(&data).expect("json data"),
                    });
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .ok()??;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    }
}
