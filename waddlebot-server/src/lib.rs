//! # WaddleBot server
//!
//! The reference HTTP server (hyper 1.x): `GET /health`, `GET /healthz`, and the router API of
//! the original system, `POST /router/events` and `POST /router/events/batch`, answering in the
//! `{"status":"success","data":...}` / `{"status":"error","message":...}` envelope.
//!
//! The application is built by [`app`] so tests drive it in-process; [`serve`] puts it on a
//! socket with graceful shutdown; [`bootstrap`] wires the standard bot from a [`Config`].
//!
//! ```
//! use std::sync::Arc;
//! use http_body_util::{BodyExt, Full};
//! use hyper::service::Service;
//! use waddlebot::store::MemoryStore;
//! use waddlebot_router::Router;
//! use waddlebot_server::{app, AppState};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let router = Router::builder().store(Arc::new(MemoryStore::new())).build().unwrap();
//! let app = app(AppState::new(Arc::new(router), 1 << 20));
//! let body = r#"{"platform":"twitch","server_id":"pond","channel_id":"pond",
//!               "user_id":"1","username":"alice","message":"!ping"}"#;
//! let request = http::Request::post("/router/events")
//!     .body(Full::new(bytes::Bytes::from(body)))
//!     .unwrap();
//! let response = app.call(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! let json: serde_json::Value =
//!     serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
//! assert_eq!(json["data"]["replies"][0]["text"], "Pong!");
//! # });
//! ```

mod admin_api;
mod ai_api;
mod app;
pub mod auth;
pub mod bootstrap;
mod config;
mod hygiene;
pub mod logging;
mod metrics;
pub mod openapi;
pub mod overlay_keys;
pub mod platforms;
mod serve;
mod web;
mod webhooks;
pub mod wire;

pub use ai_api::AiApiPolicy;
pub use app::{
    App, AppState, HTTP_REQUESTS, HTTP_SECONDS, HealthCheck, MAX_BATCH_ANSWER_BYTES, Probe, ROUTES,
    ResponseBody, app,
};
pub use bootstrap::{
    StartError, ai_provider, authenticator, build_router, build_router_with_ai, jwt_secret_path,
    jwt_settings, migrate, open_store, redis_check, services, spotify,
};
pub use config::{
    Config, ConfigError, DEFAULT_BIND, DEFAULT_CONFIG_FILE, DEFAULT_DATABASE_URL, LogFormat,
    LogSettings, Secret, ServiceSettings, SyslogSettings, redact_url,
};
pub use hygiene::HttpPolicy;
pub use metrics::{METRICS_UPKEEP, install_metrics};
pub use serve::{
    HEADER_READ_TIMEOUT, MAX_HEADER_BYTES, SHUTDOWN_GRACE, raise_file_limit, serve, shutdown_signal,
};
pub use web::{LINK_TTL, OVERLAY_STREAMS, create_login_link};
pub use webhooks::TWITCH_REVOCATIONS;
