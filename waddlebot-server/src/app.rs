//! The HTTP application: routing, body limits, JSON envelopes. Built by [`app`] so tests can
//! call it in-process, and served on a socket by [`crate::serve`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Body;
use metrics::{Counter, Histogram};
use serde::Serialize;
use serde::de::DeserializeOwned;
use waddlebot_router::{Outcome, Router, RouterError};

use waddlebot::{EntityId, SessionId};
use waddlebot_router::LateReplyError;

use crate::auth::{AuthError, Authenticator, Need, Principal, Role};
use crate::wire::{InboundBatch, InboundEvent, LateResponse, MAX_BATCH};

/// A readiness probe for `/healthz`: `Ok` when the dependency answers.
pub type Probe =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// A named dependency `/healthz` checks. A required one that fails makes the answer 503; an
/// optional one is reported.
#[derive(Clone)]
pub struct HealthCheck {
    /// Its name in the answer (`redis`).
    pub name: &'static str,
    /// Whether the server cannot work without it.
    pub required: bool,
    /// The check.
    pub probe: Probe,
}

/// What every request handler shares.
pub struct AppState {
    /// The engine.
    pub router: Arc<Router>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// The verifiers of the platforms whose webhooks are on.
    pub webhooks: crate::platforms::Webhooks,
    /// The AI provider behind `/api/v1/ai/*` (shared with the AI chat module).
    pub ai: waddlebot::AiSlot,
    /// The AI settings in force, for `GET /api/v1/ai/config`.
    pub ai_settings: std::sync::RwLock<Option<waddlebot_ai::AiSettings>>,
    /// Credential checks; `None` leaves every route open (`serve --dev`, in-process tests).
    pub auth: Option<crate::auth::Authenticator>,
    /// Renders `/metrics`, when the program installed a Prometheus recorder.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// More dependencies `/healthz` checks (Redis...).
    pub checks: Vec<HealthCheck>,
    /// Serializes read-modify-write admin changes to one object.
    pub(crate) write_locks: crate::admin_api::WriteLocks,
    /// Deadlines, CORS, the admin rate limit.
    pub http: crate::hygiene::HttpPolicy,
    /// What `/api/v1/ai/chat/completions` may spend.
    pub ai_api: crate::ai_api::AiApiPolicy,
    pub(crate) ai_budgets: crate::ai_api::AiBudgets,
    pub(crate) admin_limiter: crate::hygiene::AdminLimiter,
    /// Spotify, for the `/oauth/spotify/callback` page that finishes `!spotify connect`.
    pub spotify: Option<Arc<waddlebot_modules::Spotify>>,
    /// Bumped on every overlay key rotation, so open overlay streams re-check their key.
    pub(crate) overlay_rotations: tokio::sync::watch::Sender<u64>,
    /// Cancelled when the server shuts down: long-lived answers (overlay streams) end.
    pub(crate) closing: tokio_util::sync::CancellationToken,
    started: Instant,
    /// The name and version `/health` reports (`MODULE_NAME`, `MODULE_VERSION`).
    module: (String, String),
    meters: HttpMeters,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("router", &self.router)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("webhooks", &self.webhooks)
            .field("ai", &self.ai)
            .field("auth", &self.auth.is_some())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State around a router.
    pub fn new(router: Arc<Router>, max_body_bytes: usize) -> Self {
        Self {
            router,
            max_body_bytes,
            webhooks: crate::platforms::Webhooks::default(),
            ai: waddlebot::AiSlot::default(),
            ai_settings: std::sync::RwLock::new(None),
            auth: None,
            metrics: None,
            checks: Vec::new(),
            write_locks: crate::admin_api::WriteLocks::default(),
            http: crate::hygiene::HttpPolicy::default(),
            ai_api: crate::ai_api::AiApiPolicy::default(),
            ai_budgets: crate::ai_api::AiBudgets::default(),
            admin_limiter: crate::hygiene::AdminLimiter::default(),
            closing: tokio_util::sync::CancellationToken::new(),
            meters: HttpMeters::new(),
            spotify: None,
            overlay_rotations: tokio::sync::watch::channel(0).0,
            started: Instant::now(),
            module: ("waddlebot".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
        }
    }

    /// The same state, holding `/api/v1/ai/chat/completions` to this policy.
    pub fn with_ai_api(mut self, policy: crate::ai_api::AiApiPolicy) -> Self {
        self.ai_api = policy;
        self
    }

    /// The same state, with these HTTP limits and policies.
    pub fn with_http(mut self, policy: crate::hygiene::HttpPolicy) -> Self {
        self.http = policy;
        self
    }

    /// The same state, finishing Spotify links (`!spotify connect`) at
    /// `/oauth/spotify/callback`.
    pub fn with_spotify(mut self, spotify: Option<Arc<waddlebot_modules::Spotify>>) -> Self {
        self.spotify = spotify;
        self
    }

    /// The same state, with one more dependency for `/healthz` to check.
    pub fn with_check(mut self, check: HealthCheck) -> Self {
        self.checks.push(check);
        self
    }

    /// The same state, reporting this name and version in `/health`.
    pub fn with_module(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.module = (name.into(), version.into());
        self
    }

    /// The same state, serving `/metrics` from `handle`.
    pub fn with_metrics(mut self, handle: metrics_exporter_prometheus::PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }

    /// The same state, checking credentials on every route that needs them.
    pub fn with_auth(mut self, auth: crate::auth::Authenticator) -> Self {
        self.auth = Some(auth);
        self
    }

    /// The same state, answering `/api/v1/ai/*` through the provider in `slot`.
    pub fn with_ai(mut self, slot: impl Into<waddlebot::AiSlot>) -> Self {
        self.ai = slot.into();
        self
    }

    /// The same state, reporting `settings` (those the provider was built from) at
    /// `GET /api/v1/ai/config`.
    pub fn with_ai_settings(self, settings: Option<waddlebot_ai::AiSettings>) -> Self {
        *self.ai_settings.write().unwrap_or_else(|p| p.into_inner()) = settings;
        self
    }

    /// The same state, taking platform webhooks; events from socket transports (Twitch IRC)
    /// start flowing into the router here. Call inside a tokio runtime.
    pub fn with_webhooks(mut self, mut webhooks: crate::platforms::Webhooks) -> Self {
        for stream in webhooks.streams.drain(..) {
            crate::webhooks::pump(Arc::clone(&self.router), stream);
        }
        self.webhooks = webhooks;
        self
    }
}

/// The application as a hyper service. Cheap to clone: one per connection.
#[derive(Debug, Clone)]
pub struct App {
    state: Arc<AppState>,
    /// The connection's remote address, when served on a socket.
    peer: Option<std::net::IpAddr>,
}

/// Builds the application.
pub fn app(state: AppState) -> App {
    App {
        state: Arc::new(state),
        peer: None,
    }
}

impl App {
    /// The application for one connection from `peer` (the admin rate limit counts clients
    /// without a credential by address).
    pub fn for_peer(&self, peer: std::net::IpAddr) -> Self {
        Self {
            state: Arc::clone(&self.state),
            peer: Some(peer),
        }
    }
}

/// The response body type.
pub type ResponseBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// A whole body.
pub(crate) fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into()).boxed_unsync()
}

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<B> hyper::service::Service<Request<B>> for App
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<B>) -> Self::Future {
        let mut app = self.clone();
        // Behind a trusted proxy the client is the one the proxy names.
        if !app.state.http.trusted_proxies.is_empty() {
            app.peer = crate::hygiene::client_address(&app.state.http, app.peer, request.headers());
        }
        Box::pin(async move {
            use tracing::Instrument;
            let id = request_id(request.headers());
            let method = request.method().clone();
            let path = request.uri().path().trim_end_matches('/').to_owned();
            // Looked up once: the handler, the credential check and the metrics use it.
            let found = find_route(&method, &path);
            let route = found
                .as_ref()
                .map_or_else(|| route_label(&path), |(pattern, _, _)| *pattern);
            let started = Instant::now();
            let span = tracing::info_span!("request", request_id = %id, %method, route);
            let mut response = app.respond(request, path, found).instrument(span).await;
            if let Ok(value) = HeaderValue::from_str(&id) {
                response.headers_mut().insert("x-request-id", value);
            }
            app.state.meters.record(
                &method,
                route,
                response.status(),
                started.elapsed().as_secs_f64(),
            );
            Ok(response)
        })
    }
}

/// How long `/healthz` waits for one dependency.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// HTTP requests, by `method`, `route` and `status`.
pub const HTTP_REQUESTS: &str = "waddlebot_http_requests_total";
/// Seconds to answer an HTTP request, by `route`.
pub const HTTP_SECONDS: &str = "waddlebot_http_request_duration_seconds";

/// The HTTP metrics, their handles registered once (when the state is made) for every route
/// of [`ROUTES`] and its usual answer, 200; other labels go through the `metrics` macros.
struct HttpMeters {
    routes: HashMap<(&'static str, Method), (Histogram, Counter)>,
}

impl HttpMeters {
    fn new() -> Self {
        let routes = ROUTES
            .iter()
            .map(|(route, method, _)| {
                let seconds = metrics::histogram!(HTTP_SECONDS, "route" => *route);
                let ok = metrics::counter!(HTTP_REQUESTS, "method" => method.to_string(), "route" => *route, "status" => "200");
                ((*route, method.clone()), (seconds, ok))
            })
            .collect();
        Self { routes }
    }

    fn record(&self, method: &Method, route: &'static str, status: StatusCode, seconds: f64) {
        let registered = self.routes.get(&(route, method.clone()));
        match registered {
            Some((_, ok)) if status == StatusCode::OK => ok.increment(1),
            _ => metrics::counter!(HTTP_REQUESTS, "method" => method.to_string(), "route" => route, "status" => status.as_u16().to_string())
                .increment(1),
        }
        match registered {
            Some((histogram, _)) => histogram.record(seconds),
            None => metrics::histogram!(HTTP_SECONDS, "route" => route).record(seconds),
        }
    }
}

/// The request's id: the caller's `X-Request-ID` when it is a sane one (1–128 visible ASCII
/// characters), else a new one. It is in every log line of the request and in the response.
fn request_id(headers: &http::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned)
}

/// The route a path that matched no route with its method belongs to, for metric labels: one
/// of the route table's paths (a 405), or `other` (so scanners probing random paths cannot grow
/// the label set).
fn route_label(path: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|(route, _, _)| match_pattern(route, path).is_some())
        .map(|(route, _, _)| *route)
        .or_else(|| crate::web::route_label(path))
        .unwrap_or("other")
}

/// 415 unless a request's declared `Content-Type` is JSON (`application/json`, or any
/// `+json` type). A request that declares none is read as JSON. A form type is not read as
/// JSON even though `curl -d` sends one: a browser posts forms to any site without asking
/// (no CORS preflight), so taking them would let other sites' pages post to the API; the
/// answer says what to send instead.
pub(crate) fn check_json_content_type(headers: &http::HeaderMap) -> Result<(), Failure> {
    let Some(declared) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = declared
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else if essence == "application/x-www-form-urlencoded" {
        Err(Failure(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON (Content-Type: application/json), not a form; with curl, \
             send it with --json, or -d with -H 'Content-Type: application/json' (-d alone \
             sends application/x-www-form-urlencoded)"
                .to_owned(),
        ))
    } else {
        Err(Failure(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "the body must be JSON (Content-Type: application/json), not {}",
                if essence.is_empty() {
                    "an unreadable type"
                } else {
                    &essence
                }
            ),
        ))
    }
}

/// Parses a JSON object body, naming where it is wrong (`invalid request: commands[0].name: …`).
/// Every body the server takes is an object: anything else is refused (serde would read a
/// struct from an array too, `["pond"]` as `{"name": "pond"}`). A whole number written with a
/// fraction of zero (`7.0`) is the integer it is, as JSON Schema says.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Failure> {
    let not_an_object = || Failure::bad_request("request body must be a JSON object");
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(_) if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() => {
            return Err(syntax_failure(body));
        }
        _ => return Err(not_an_object()),
    }
    // The plain parse is the fast path; only a failure is parsed again, as a value.
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let mut value: serde_json::Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(_) => return Err(syntax_failure(body)),
    };
    whole_numbers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        Failure::bad_request(if path == "." {
            format!("invalid request: {inner}")
        } else {
            format!("invalid request: {path}: {inner}")
        })
    })
}

/// The answer to a body that is not JSON at all, naming where.
fn syntax_failure(body: &[u8]) -> Failure {
    match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        Err(err) => Failure::bad_request(format!("request body must be valid JSON: {err}")),
        Ok(_) => Failure::bad_request("request body must be a JSON object"),
    }
}

/// Rewrites every whole number written with a fraction of zero (`7.0`) as the integer it is.
/// JSON has one number type and JSON Schema's `integer` admits both spellings, so a client
/// (or a language whose numbers are all floats) may send either; serde's integer fields would
/// refuse the second.
pub(crate) fn whole_numbers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(v) = n.as_f64()
                && v.fract() == 0.0
                && v.abs() < 9.0e15
            {
                // Below 2^53 an f64 holds a whole number exactly, so the cast loses nothing.
                *value = Value::from(v as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        Value::Object(fields) => fields.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

/// A failed request: status and the message for the error envelope.
pub(crate) struct Failure(pub(crate) StatusCode, pub(crate) String);

/// The methods a path takes, for the `Allow` header of a 405.
fn allowed_methods(path: &str) -> Vec<&'static str> {
    ROUTES
        .iter()
        .filter(|(route, _, _)| match_pattern(route, path).is_some())
        .map(|(_, method, _)| method.as_str())
        .collect()
}

impl Failure {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, message.into())
    }
}

/// The envelope of every non-streaming answer, serialized straight to bytes (no
/// intermediate `serde_json::Value`: on the event path that halved the cost of answering).
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

/// `{"status":"success","data":...}`
pub(crate) fn success(status: StatusCode, data: &impl Serialize) -> Response<ResponseBody> {
    json(
        status,
        &Envelope {
            status: "success",
            data: Some(data),
            message: None,
        },
    )
}

/// `{"status":"error","message":...}`
fn error(Failure(status, message): Failure) -> Response<ResponseBody> {
    json(
        status,
        &Envelope::<()> {
            status: "error",
            data: None,
            message: Some(&message),
        },
    )
}

/// `value` as a JSON answer.
pub(crate) fn json(status: StatusCode, value: &impl Serialize) -> Response<ResponseBody> {
    let body = serde_json::to_vec(value).unwrap_or_else(|err| {
        tracing::error!(error = %err, "cannot serialize an answer");
        br#"{"status":"error","message":"the answer could not be written"}"#.to_vec()
    });
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Every route: its path, its method and what a caller needs (with authentication on). 404
/// and 405 answers come from this table, and so does each route's credential check.
pub const ROUTES: &[(&str, Method, Need)] = &[
    ("/health", Method::GET, Need::Nothing),
    ("/healthz", Method::GET, Need::Nothing),
    ("/router/events", Method::POST, Need::Collector),
    ("/router/events/batch", Method::POST, Need::Collector),
    ("/router/responses", Method::POST, Need::Collector),
    // Platform webhooks carry the platform's own signature, checked by the handler.
    ("/webhooks/twitch/eventsub", Method::POST, Need::Nothing),
    ("/webhooks/slack/events", Method::POST, Need::Nothing),
    ("/webhooks/slack/commands", Method::POST, Need::Nothing),
    ("/webhooks/slack/interactivity", Method::POST, Need::Nothing),
    (
        "/webhooks/discord/interactions",
        Method::POST,
        Need::Nothing,
    ),
    ("/api/v1/ai/chat/completions", Method::POST, Need::Anyone),
    ("/api/v1/ai/models", Method::GET, Need::Anyone),
    ("/api/v1/ai/interaction", Method::POST, Need::Collector),
    ("/api/v1/ai/config", Method::GET, Need::Admin),
    ("/api/v1/ai/config", Method::PUT, Need::Admin),
    ("/metrics", Method::GET, Need::Collector),
    ("/router/commands", Method::GET, Need::Collector),
    ("/router/entities", Method::GET, Need::Collector),
    ("/router/metrics", Method::GET, Need::Collector),
    ("/router/health", Method::GET, Need::Collector),
    ("/openapi.json", Method::GET, Need::Nothing),
    ("/api/v1/communities", Method::GET, Need::Anyone),
    (
        "/api/v1/communities/{id}/commands",
        Method::GET,
        Need::Community(Role::Viewer),
    ),
    (
        "/api/v1/communities/{id}/commands",
        Method::POST,
        Need::Community(Role::CommunityAdmin),
    ),
    (
        "/api/v1/communities/{id}/commands/{name}",
        Method::GET,
        Need::Community(Role::Viewer),
    ),
    (
        "/api/v1/communities/{id}/commands/{name}",
        Method::PUT,
        Need::Community(Role::CommunityAdmin),
    ),
    (
        "/api/v1/communities/{id}/commands/{name}",
        Method::DELETE,
        Need::Community(Role::CommunityAdmin),
    ),
    (
        "/api/v1/communities/{id}/aliases",
        Method::GET,
        Need::Community(Role::Viewer),
    ),
    (
        "/api/v1/communities/{id}/aliases",
        Method::POST,
        Need::Community(Role::Moderator),
    ),
    (
        "/api/v1/communities/{id}/aliases/{name}",
        Method::DELETE,
        Need::Community(Role::Moderator),
    ),
    (
        "/api/v1/communities/{id}/audit",
        Method::GET,
        Need::Community(Role::CommunityAdmin),
    ),
    ("/api/v1/audit", Method::GET, Need::Admin),
    ("/api/v1/communities", Method::POST, Need::Admin),
    (
        "/api/v1/communities/{id}",
        Method::GET,
        Need::Community(Role::Viewer),
    ),
    (
        "/api/v1/communities/{id}/entities",
        Method::GET,
        Need::Community(Role::Viewer),
    ),
    // Taking a channel's chat (perhaps from another community) is for bot admins only.
    (
        "/api/v1/communities/{id}/entities",
        Method::PUT,
        Need::Community(Role::Admin),
    ),
    (
        "/api/v1/communities/{id}/modules",
        Method::GET,
        Need::Community(Role::Viewer),
    ),
    (
        "/api/v1/communities/{id}/modules/{name}",
        Method::PATCH,
        Need::Community(Role::CommunityAdmin),
    ),
    (
        "/api/v1/communities/{id}/grants",
        Method::GET,
        Need::Community(Role::Moderator),
    ),
    (
        "/api/v1/communities/{id}/grants/{platform}/{user}",
        Method::PUT,
        Need::Community(Role::CommunityAdmin),
    ),
    (
        "/api/v1/communities/{id}/grants/{platform}/{user}",
        Method::DELETE,
        Need::Community(Role::CommunityAdmin),
    ),
    (
        "/api/v1/communities/{id}/reputation",
        Method::GET,
        Need::Community(Role::Viewer),
    ),
    (
        "/api/v1/communities/{id}/rules",
        Method::GET,
        Need::Community(Role::Moderator),
    ),
    (
        "/api/v1/communities/{id}/rules",
        Method::POST,
        Need::Community(Role::Moderator),
    ),
    (
        "/api/v1/communities/{id}/rules/{rule}",
        Method::DELETE,
        Need::Community(Role::Moderator),
    ),
    (
        "/api/v1/communities/{id}/remote-modules",
        Method::GET,
        Need::Community(Role::CommunityAdmin),
    ),
    (
        "/api/v1/communities/{id}/remote-modules",
        Method::POST,
        Need::Community(Role::CommunityAdmin),
    ),
    (
        "/api/v1/communities/{id}/remote-modules/{name}",
        Method::DELETE,
        Need::Community(Role::CommunityAdmin),
    ),
    (
        "/api/v1/communities/{id}/overlay",
        Method::GET,
        Need::Community(Role::CommunityAdmin),
    ),
    (
        "/api/v1/communities/{id}/overlay/rotate",
        Method::POST,
        Need::Community(Role::CommunityAdmin),
    ),
    (
        "/api/v1/communities/{id}/api-keys",
        Method::GET,
        Need::Community(Role::CommunityAdmin),
    ),
    (
        "/api/v1/communities/{id}/api-keys",
        Method::POST,
        Need::Community(Role::CommunityAdmin),
    ),
    (
        "/api/v1/communities/{id}/api-keys/{key}",
        Method::DELETE,
        Need::Community(Role::CommunityAdmin),
    ),
    ("/api/v1/api-keys", Method::GET, Need::Admin),
    ("/api/v1/api-keys", Method::POST, Need::Admin),
    ("/api/v1/api-keys/{key}", Method::DELETE, Need::Admin),
];

/// A path's `{placeholder}` values, by placeholder name.
pub(crate) type Params = Vec<(&'static str, String)>;

/// The values of a pattern's `{placeholders}` in `path`, when the path fits the pattern.
pub(crate) fn match_pattern(pattern: &'static str, path: &str) -> Option<Params> {
    let mut params = Vec::new();
    let mut wanted = pattern.split('/');
    let mut given = path.split('/');
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return Some(params),
            (Some(want), Some(got)) => {
                match want.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                    // Kept as sent: the admin API decodes a value where it reads it.
                    Some(name) if !got.is_empty() => params.push((name, got.to_owned())),
                    Some(_) => return None,
                    None if want == got => {}
                    None => return None,
                }
            }
            _ => return None,
        }
    }
}

/// The route entry for `method` and `path`: its pattern, need and placeholder values.
pub(crate) fn find_route(method: &Method, path: &str) -> Option<(&'static str, Need, Params)> {
    ROUTES.iter().find_map(|(pattern, m, need)| {
        if m != method {
            return None;
        }
        match_pattern(pattern, path).map(|params| (*pattern, *need, params))
    })
}

/// A refused credential: 401 (with `WWW-Authenticate`), 403 or 503, as an error envelope.
fn refusal(err: &AuthError, method: &Method, path: &str) -> Response<ResponseBody> {
    let status = match err {
        AuthError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
        AuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    // Authentication failures are `auth`, missing rights `authz` (the AAA categories).
    let category = if status == StatusCode::FORBIDDEN {
        "authz"
    } else {
        "auth"
    };
    let path = crate::hygiene::loggable_path(path);
    let message = if let AuthError::Unavailable(cause) = err {
        // The store's own words (a pool error, a host name) are for the log, not the client.
        tracing::error!(category, action = %format_args!("{method} {path}"), error = %cause, "cannot check a credential");
        "the service is unavailable; try again shortly".to_owned()
    } else {
        tracing::info!(
            category,
            action = %format_args!("{method} {path}"),
            result = status.as_u16(),
            reason = %err,
            "request refused"
        );
        err.to_string()
    };
    let mut response = error(Failure(status, message));
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

impl App {
    pub(crate) fn state(&self) -> &AppState {
        &self.state
    }

    /// The address of the client this connection serves, when known.
    pub(crate) fn peer(&self) -> Option<std::net::IpAddr> {
        self.peer
    }

    /// Ends the long-lived answers (overlay streams), so a shutdown need not wait for them.
    pub fn close_streams(&self) {
        self.state.closing.cancel();
    }

    /// The request through the server's policies (CORS, URI length, admin rate limit,
    /// deadline, security headers) around its route.
    async fn respond<B>(
        &self,
        request: Request<B>,
        path: String,
        found: Option<(&'static str, Need, Params)>,
    ) -> Response<ResponseBody>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        use crate::hygiene;
        let policy = &self.state.http;
        let origin = hygiene::allowed_origin(policy, request.headers()).cloned();
        if let Some(origin) = &origin
            && hygiene::is_preflight(request.method(), request.headers())
        {
            let methods = allowed_methods(&path);
            if !methods.is_empty() {
                return hygiene::preflight(origin, &methods);
            }
        }
        let credential = match hygiene::presented(request.headers()) {
            Ok(credential) => credential,
            Err(message) => {
                let mut response = error(Failure::bad_request(message));
                hygiene::secure(response.headers_mut());
                return response;
            }
        };
        let has_credential = credential != hygiene::Presented::Nothing;
        // A credential attempt: a credential presented, or a portal sign-in form.
        let attempt = has_credential
            || (request.method() == Method::POST
                && (path == "/portal/login" || path.starts_with("/portal/login/")));
        // While an address is locked out, only its credential attempts are refused, without
        // being checked (so guessing gets no answer); a credential this server accepted before
        // still works. Everything else (health, webhooks, pages) stays open.
        if attempt
            && let Some(wait) = self
                .state
                .admin_limiter
                .locked_out(self.peer, policy.failed_auth_per_minute)
            && !self.recognized(credential)
        {
            tracing::info!(
                category = "auth",
                path = %hygiene::loggable_path(&path),
                result = "locked_out",
                "request refused"
            );
            let mut response = error(Failure(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many failed authentications from this address; try again in {} s",
                    wait.as_secs()
                ),
            ));
            if let Ok(value) = HeaderValue::from_str(&wait.as_secs().to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            hygiene::secure(response.headers_mut());
            return response;
        }
        let target_len = request
            .uri()
            .path_and_query()
            .map_or(0, |t| t.as_str().len());
        let mut standing = None;
        let mut response = if target_len > policy.max_uri_bytes {
            error(Failure(
                StatusCode::URI_TOO_LONG,
                format!(
                    "the request target is longer than {} bytes",
                    policy.max_uri_bytes
                ),
            ))
        } else {
            let method = request.method().clone();
            match self
                .authenticate(credential, &method, &path, found.as_ref())
                .await
            {
                Ok(principal) => {
                    self.admitted(request, path, found, principal, &mut standing)
                        .await
                }
                Err(refused) => refused,
            }
        };
        if response.status() == StatusCode::UNAUTHORIZED && has_credential {
            self.state
                .admin_limiter
                .record_failure(self.peer, policy.failed_auth_per_minute);
        }
        if response.status() == StatusCode::SERVICE_UNAVAILABLE
            && !response.headers().contains_key(header::RETRY_AFTER)
        {
            // Our own outage (the store went away), on any route: tell clients when to try
            // again.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if let Some(standing) = standing {
            standing.annotate(response.headers_mut());
        }
        if let Some(origin) = &origin {
            hygiene::allow_origin(response.headers_mut(), origin);
        }
        hygiene::secure(response.headers_mut());
        response
    }

    /// The route of an authenticated request behind the admin API's per-caller rate limit
    /// (its standing left in `standing` for the answer's headers) and the request deadline.
    async fn admitted<B>(
        &self,
        request: Request<B>,
        path: String,
        found: Option<(&'static str, Need, Params)>,
        principal: Option<Principal>,
        standing: &mut Option<crate::hygiene::Standing>,
    ) -> Response<ResponseBody>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let policy = &self.state.http;
        if path.starts_with("/api/v1/") && policy.admin_rate_per_minute > 0 {
            // Counted by who is calling, however the credential is written; callers without
            // one by address.
            let client = principal.as_ref().map_or_else(
                || {
                    format!(
                        "ip:{}",
                        self.peer
                            .map_or_else(|| "local".to_owned(), |ip| ip.to_string())
                    )
                },
                Principal::limit_key,
            );
            let counted = self
                .state
                .admin_limiter
                .check(&client, policy.admin_rate_per_minute);
            let refused = counted.refused();
            *standing = Some(counted);
            if let Some(wait) = refused {
                tracing::info!(
                    category = "authz",
                    path = %crate::hygiene::loggable_path(&path),
                    result = "rate_limited",
                    "request refused"
                );
                return error(Failure(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "too many requests; try again in {} s",
                        wait.as_millis().div_ceil(1000).max(1)
                    ),
                ));
            }
        }
        let deadline = policy.request_timeout;
        match tokio::time::timeout(deadline, self.route(request, path, found, principal)).await {
            Ok(response) => response,
            Err(_) => {
                tracing::warn!(?deadline, "request timed out");
                error(Failure(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the request took longer than {deadline:?}; try again"),
                ))
            }
        }
    }

    /// The caller of a route that needs a credential, checked against what the route needs
    /// and the community its path names (a path naming no numeric community is no route);
    /// the refusal as the answer otherwise. Routes that need nothing, and every route with
    /// authentication off, have no caller.
    async fn authenticate(
        &self,
        credential: crate::hygiene::Presented<'_>,
        method: &Method,
        path: &str,
        found: Option<&(&'static str, Need, Params)>,
    ) -> Result<Option<Principal>, Response<ResponseBody>> {
        let Some((_, need, params)) = found else {
            return Ok(None);
        };
        let community = match params.iter().find(|(name, _)| *name == "id") {
            None => None,
            Some((_, id)) => Some(id.parse::<i64>().map(waddlebot::CommunityId).map_err(|_| {
                error(Failure(
                    StatusCode::NOT_FOUND,
                    format!("no route for {path}"),
                ))
            })?),
        };
        let Some(auth) = &self.state.auth else {
            return Ok(None);
        };
        if *need == Need::Nothing {
            return Ok(None);
        }
        auth.check_presented(credential)
            .await
            .and_then(|principal| {
                Authenticator::authorize(principal.as_ref(), *need, community).map(|()| principal)
            })
            .map_err(|err| refusal(&err, method, path))
    }

    /// Whether `credential` was accepted by this server before (it passes a lock-out).
    fn recognized(&self, credential: crate::hygiene::Presented<'_>) -> bool {
        match (credential, &self.state.auth) {
            (crate::hygiene::Presented::Credential(secret), Some(auth)) => auth.recognizes(secret),
            _ => false,
        }
    }

    async fn route<B>(
        &self,
        request: Request<B>,
        path: String,
        found: Option<(&'static str, Need, Params)>,
        principal: Option<Principal>,
    ) -> Response<ResponseBody>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        // The pages, the admin API and the AI interaction route have large futures of their
        // own: boxed, so the hot router routes do not carry (and copy) their space.
        if found.is_none() && crate::web::is_page(&path) {
            return Box::pin(self.page(request, &path)).await;
        }
        let method = request.method().clone();
        if let Some((pattern, _, params)) = &found
            && [
                "/api/v1/communities",
                "/api/v1/audit",
                "/api/v1/api-keys",
                "/router/commands",
                "/router/entities",
            ]
            .iter()
            .any(|prefix| pattern.starts_with(prefix))
        {
            let result = Box::pin(self.admin(request, pattern, params, principal.as_ref())).await;
            return result.unwrap_or_else(error);
        }
        let result = match (method.clone(), path.as_str()) {
            (Method::GET, "/health") => Ok(self.health()),
            (Method::GET, "/healthz" | "/router/health") => Ok(self.healthz().await),
            (Method::GET, "/router/metrics") => self.router_metrics(),
            (Method::POST, "/router/events") => self.post_event(request).await,
            (Method::POST, "/router/events/batch") => self.post_batch(request).await,
            (Method::POST, "/router/responses") => self.post_response(request).await,
            (Method::POST, "/webhooks/twitch/eventsub") => self.twitch_eventsub(request).await,
            (Method::POST, "/webhooks/slack/events") => self.slack_events(request).await,
            (Method::POST, "/webhooks/slack/commands") => self.slack_command(request).await,
            (Method::POST, "/webhooks/slack/interactivity") => {
                self.slack_interactivity(request).await
            }
            (Method::POST, "/webhooks/discord/interactions") => {
                self.discord_interaction(request).await
            }
            (Method::POST, "/api/v1/ai/chat/completions") => {
                self.ai_completions(request, principal.as_ref()).await
            }
            (Method::GET, "/api/v1/ai/models") => self.ai_models().await,
            (Method::POST, "/api/v1/ai/interaction") => {
                Box::pin(self.ai_interaction(request)).await
            }
            (Method::GET, "/api/v1/ai/config") => Ok(self.ai_config()),
            (Method::GET, "/metrics") => self.metrics(),
            (Method::GET, "/openapi.json") => {
                let mut document = crate::openapi::document();
                crate::openapi::offer_models(&mut document, &self.offered_models());
                Ok(json(StatusCode::OK, &document))
            }
            (Method::PUT, "/api/v1/ai/config") => {
                self.put_ai_config(request, principal.as_ref()).await
            }
            _ => Err(self.no_route(&method, &path)),
        };
        let mut response = result.unwrap_or_else(error);
        if response.status() == StatusCode::METHOD_NOT_ALLOWED
            && let Ok(allow) = HeaderValue::from_str(&allowed_methods(&path).join(", "))
        {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        tracing::debug!(%method, path = %crate::hygiene::loggable_path(&path), status = response.status().as_u16(), "request");
        response
    }

    fn no_route(&self, method: &Method, path: &str) -> Failure {
        let allowed = allowed_methods(path);
        if allowed.is_empty() {
            Failure(StatusCode::NOT_FOUND, format!("no route for {path}"))
        } else {
            Failure(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "{method} is not allowed on {path}; use {}",
                    allowed.join(", ")
                ),
            )
        }
    }

    /// `GET /metrics`: Prometheus text, when the program installed a recorder.
    fn metrics(&self) -> Result<Response<ResponseBody>, Failure> {
        let handle = self.state.metrics.as_ref().ok_or_else(|| {
            Failure(
                StatusCode::NOT_FOUND,
                "metrics are not collected by this program".to_owned(),
            )
        })?;
        let mut response = Response::new(full(handle.render()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        Ok(response)
    }

    /// `GET /router/metrics`: the JSON summary of `/metrics` (see [`crate::metrics::summary`]).
    fn router_metrics(&self) -> Result<Response<ResponseBody>, Failure> {
        let handle = self.state.metrics.as_ref().ok_or_else(|| {
            Failure(
                StatusCode::NOT_FOUND,
                "metrics are not collected by this program".to_owned(),
            )
        })?;
        let summary = crate::metrics::summary(
            &handle.render(),
            self.state.started.elapsed(),
            self.state.router.policy_config(),
        );
        Ok(success(StatusCode::OK, &summary))
    }

    fn health(&self) -> Response<ResponseBody> {
        json(
            StatusCode::OK,
            &serde_json::json!({
                "status": "healthy",
                "module": self.state.module.0,
                "version": self.state.module.1,
                "uptime_secs": self.state.started.elapsed().as_secs(),
            }),
        )
    }

    /// `/healthz`: the store is required (503 without it); the AI provider, when configured,
    /// is reported but optional (chat goes on without it, with canned replies); so are the
    /// added checks, each required or not.
    async fn healthz(&self) -> Response<ResponseBody> {
        let store = self.state.router.store().ping().await;
        if let Err(err) = &store {
            tracing::error!(error = %err, "health check: store unavailable");
        }
        let mut checks = serde_json::json!({
            "store": if store.is_ok() { "ok" } else { "unavailable" },
        });
        if let Some(ai) = self.state.ai.get() {
            let health = ai.health().await;
            if let Err(err) = &health {
                tracing::warn!(provider = ai.name(), error = %err, "health check: AI provider unavailable");
            }
            checks["ai"] = serde_json::json!(if health.is_ok() { "ok" } else { "unavailable" });
        }
        let mut required_down = store.is_err();
        for check in &self.state.checks {
            let result = match tokio::time::timeout(PROBE_TIMEOUT, (check.probe)()).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
            };
            if let Err(err) = &result {
                tracing::warn!(check = check.name, error = %err, "health check: unavailable");
                required_down |= check.required;
            }
            checks[check.name] =
                serde_json::json!(if result.is_ok() { "ok" } else { "unavailable" });
        }
        let (status, word) = if required_down {
            (StatusCode::SERVICE_UNAVAILABLE, "degraded")
        } else {
            (StatusCode::OK, "healthy")
        };
        json(
            status,
            &serde_json::json!({"status": word, "checks": checks}),
        )
    }

    /// Reads the whole body, refusing more than the limit with 413 (by `Content-Length` before
    /// reading, or while reading when the length is not declared).
    pub(crate) async fn read_body<B>(&self, request: Request<B>) -> Result<Bytes, Failure>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let limit = self.state.max_body_bytes;
        let too_large = || {
            Failure(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is larger than {limit} bytes"),
            )
        };
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(too_large());
        }
        match Limited::new(request.into_body(), limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
            Err(err) => Err(Failure::bad_request(format!(
                "could not read the request body: {err}"
            ))),
        }
    }

    /// Reads a JSON body: 415 when the request says it is something else, 413 when too large,
    /// 400 when malformed (naming where).
    pub(crate) async fn read_json<T: DeserializeOwned, B>(
        &self,
        request: Request<B>,
    ) -> Result<T, Failure>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        check_json_content_type(request.headers())?;
        let body = self.read_body(request).await?;
        parse_json(&body)
    }
    async fn post_event<B>(&self, request: Request<B>) -> Result<Response<ResponseBody>, Failure>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let inbound: InboundEvent = self.read_json(request).await?;
        let event = inbound
            .into_event()
            .map_err(|message| Failure::bad_request(format!("invalid event: {message}")))?;
        // Boxed: the router's future is large, and every request's future (of every route)
        // would otherwise carry it and be copied with it at each level.
        let outcome = Box::pin(self.state.router.handle(event))
            .await
            .map_err(unavailable)?;
        if outcome.store_failed {
            // Chat got its apology; the collector is told to send the event again.
            return Err(store_failed(&outcome));
        }
        Ok(success(StatusCode::OK, &outcome))
    }

    async fn post_batch<B>(&self, request: Request<B>) -> Result<Response<ResponseBody>, Failure>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let batch: InboundBatch = self.read_json(request).await?;
        let count = batch.events.len();
        if !(1..=MAX_BATCH).contains(&count) {
            return Err(Failure::bad_request(format!(
                "events must hold 1 to {MAX_BATCH} events, got {count}"
            )));
        }
        // Validate all before handling any, so a bad batch changes nothing.
        let events = batch
            .events
            .into_iter()
            .enumerate()
            .map(|(index, inbound)| {
                inbound
                    .into_event()
                    .map_err(|message| Failure::bad_request(format!("events[{index}]: {message}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let outcomes = self.state.router.handle_batch(events).await;
        // The answer is bounded whatever the events made: past the budget, a handled event's
        // result says so instead of carrying its replies.
        let mut budget = MAX_BATCH_ANSWER_BYTES;
        let results: Vec<serde_json::Value> = outcomes
            .into_iter()
            .map(|result| {
                let item = batch_item(result);
                let size = serde_json::to_vec(&item).map_or(usize::MAX, |bytes| bytes.len());
                match budget.checked_sub(size) {
                    Some(left) => {
                        budget = left;
                        item
                    }
                    None => serde_json::json!({
                        "status": "error",
                        "message": format!("handled, but its answer would take the batch's answer past {MAX_BATCH_ANSWER_BYTES} bytes; send fewer events per batch"),
                    }),
                }
            })
            .collect();
        Ok(success(
            StatusCode::OK,
            &serde_json::json!({"results": results, "count": count}),
        ))
    }
}

impl App {
    async fn post_response<B>(&self, request: Request<B>) -> Result<Response<ResponseBody>, Failure>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let late: LateResponse = self.read_json(request).await?;
        if !late.success {
            tracing::warn!(
                module = late.module_name,
                error = late.error_message.as_deref().unwrap_or("unknown"),
                "module reported a failure"
            );
            return Ok(success(
                StatusCode::OK,
                &serde_json::json!({"delivered": 0}),
            ));
        }
        let reply = late
            .reply()
            .map_err(|message| Failure::bad_request(format!("invalid response: {message}")))?;
        let session = SessionId(late.session_id.clone());
        let failed = self
            .state
            .router
            .late_reply(
                &session,
                EntityId(late.entity_id),
                std::slice::from_ref(&reply),
            )
            .await
            .map_err(|err| match err {
                LateReplyError::UnknownSession(_) => Failure(
                    StatusCode::NOT_FOUND,
                    format!("no live session {}", late.session_id),
                ),
                LateReplyError::WrongEntity(_) => Failure(
                    StatusCode::FORBIDDEN,
                    "the session belongs to another entity".to_owned(),
                ),
                LateReplyError::Invalid(message) => {
                    Failure::bad_request(format!("invalid response: {message}"))
                }
                LateReplyError::NoPlatform(platform) => Failure(
                    StatusCode::CONFLICT,
                    format!("no {platform} platform is configured on this server to deliver to"),
                ),
                other => {
                    tracing::error!(error = %other, "late reply failed");
                    Failure(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the reply could not be delivered right now; try again".to_owned(),
                    )
                }
            })?;
        if let Some((_, err)) = failed.first() {
            return Err(Failure(
                StatusCode::BAD_GATEWAY,
                format!("the platform refused the reply: {err}"),
            ));
        }
        Ok(success(
            StatusCode::OK,
            &serde_json::json!({"delivered": 1}),
        ))
    }
}

fn batch_item(result: Result<Outcome, RouterError>) -> serde_json::Value {
    match result {
        Ok(outcome) if outcome.store_failed => {
            let Failure(_, message) = store_failed(&outcome);
            serde_json::json!({"status": "error", "message": message, "retry": true})
        }
        Ok(outcome) => serde_json::json!({"status": "success", "data": outcome}),
        Err(err) => {
            let Failure(_, message) = unavailable(err);
            serde_json::json!({"status": "error", "message": message})
        }
    }
}

/// The most bytes of results one batch answer holds.
pub const MAX_BATCH_ANSWER_BYTES: usize = 2 * 1024 * 1024;

/// A command whose store write failed: 503, so the collector sends the event again.
fn store_failed(outcome: &Outcome) -> Failure {
    Failure(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "{} failed because the store is unavailable; send the event again",
            outcome.command.as_deref().unwrap_or("the command")
        ),
    )
}

/// A router failure is ours, not the client's: 503, with the cause logged and not shown.
fn unavailable(err: RouterError) -> Failure {
    tracing::error!(error = %err, "event not handled");
    Failure(
        StatusCode::SERVICE_UNAVAILABLE,
        "the event could not be handled right now; try again".to_owned(),
    )
}
