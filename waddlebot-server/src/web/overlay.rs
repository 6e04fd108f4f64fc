//! OBS browser sources: `/overlay/<key>` (every source) and `/overlay/<key>/<source>` (one of
//! `ticker`, `media`, `general`, `alerts`, `captions`, `now-playing`), transparent and laid
//! out for a 1920×1080 browser source. The page opens `/overlay/<key>/events`, a server-sent
//! event stream from the router's [`OverlayHub`](waddlebot_router::overlay::OverlayHub):
//!
//! - `state` first (`{"now": ms, "items": [...]}`: what is on screen or queued), again after a
//!   reconnect or when the page fell behind;
//! - `show` for each new item (`{"now": ms, "item": {...}}`), the moment it is shown;
//! - a comment every [`HEARTBEAT`], which also finds dead connections and re-checks the key;
//! - `revoked` when the key stops working (rotated out and its grace over), then the end.
//!
//! Browsers reconnect an event stream by themselves, so a page survives a server restart. An
//! unknown, malformed or expired key gets the same 404 page as any unknown path. Every opening
//! is logged (community, source, address, user agent).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use maud::{DOCTYPE, html};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use waddlebot::{CommunityId, OverlayReply};
use waddlebot_router::overlay::{OverlayHub, Shown};

use super::{not_found, page};
use crate::app::{App, ResponseBody};
use crate::overlay_keys;

/// How often an idle stream sends a comment (and re-checks its key).
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(15);
/// How long a page waits before reconnecting (sent as the stream's `retry`).
const RETRY_MS: u64 = 2000;

/// When the key stops opening the overlay: `Ok(None)` while it is the current key,
/// `Ok(Some(t))` for a rotated-out key in its grace period, `Err(())` when it no longer works.
async fn key_deadline(
    store: &dyn waddlebot::Store,
    community: CommunityId,
    key: &str,
) -> Result<Option<SystemTime>, ()> {
    let keys = overlay_keys::keys(store, community).await.map_err(drop)?;
    let now = SystemTime::now();
    if !keys.accepts(key, now) {
        return Err(());
    }
    if keys.current == key {
        return Ok(None);
    }
    Ok(keys
        .previous_until_ms
        .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms)))
}

fn event(name: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

fn state_event(on_screen: &[Shown], now: u64) -> Bytes {
    event("state", &json!({"now": now, "items": on_screen}))
}

/// One page's stream.
struct Feed {
    hub: Arc<OverlayHub>,
    store: Arc<dyn waddlebot::Store>,
    community: CommunityId,
    key: String,
    pushes: tokio::sync::broadcast::Receiver<Arc<Shown>>,
    /// When the key stops working, if it is a rotated-out one.
    deadline: Option<SystemTime>,
    first: Option<Bytes>,
    closing: tokio_util::sync::CancellationToken,
    rotations: tokio::sync::watch::Receiver<u64>,
    done: bool,
}

/// Open overlay streams (pages connected).
pub const OVERLAY_STREAMS: &str = "waddlebot_overlay_streams";

impl Drop for Feed {
    fn drop(&mut self) {
        metrics::gauge!(OVERLAY_STREAMS).decrement(1.0);
    }
}

impl Feed {
    /// The next bytes to send, or `None` to end the stream.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        if self.done {
            return None;
        }
        let wait = match self.deadline {
            Some(at) => at
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .min(HEARTBEAT),
            None => HEARTBEAT,
        };
        tokio::select! {
            pushed = self.pushes.recv() => match pushed {
                Ok(shown) => Some(event("show", &json!({"now": self.hub.now_ms(), "item": shown}))),
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(community = self.community.0, missed, "overlay page fell behind; resending the state");
                    let fresh = self.hub.subscribe(self.community);
                    self.pushes = fresh.pushes;
                    Some(state_event(&fresh.on_screen, fresh.now_ms))
                }
                Err(RecvError::Closed) => None,
            },
            () = tokio::time::sleep(wait) => Some(self.check_key(true).await),
            changed = self.rotations.changed() => match changed {
                // A key was rotated somewhere: learn this key's deadline now.
                Ok(()) => Some(self.check_key(false).await),
                Err(_) => None,
            },
            () = self.closing.cancelled() => None,
        }
    }

    /// Re-reads the key: a comment while it works, `revoked` (and the end) when it stopped.
    async fn check_key(&mut self, heartbeat: bool) -> Bytes {
        match key_deadline(self.store.as_ref(), self.community, &self.key).await {
            Ok(deadline) => {
                self.deadline = deadline;
                Bytes::from_static(if heartbeat {
                    b": ping\n\n"
                } else {
                    b": key checked\n\n"
                })
            }
            Err(()) => {
                tracing::info!(
                    category = "auth",
                    community = self.community.0,
                    "overlay key no longer valid; stream closed"
                );
                self.done = true;
                event("revoked", &json!({}))
            }
        }
    }
}

impl App {
    /// The community a key opens, with the access logged either way.
    async fn overlay_community(
        &self,
        headers: &http::HeaderMap,
        key: &str,
        source: &str,
    ) -> Option<CommunityId> {
        let agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        let peer = self
            .peer()
            .map_or_else(|| "-".to_owned(), |ip| ip.to_string());
        let store = self.state().router.store();
        match overlay_keys::community_for(store.as_ref(), key, SystemTime::now()).await {
            Ok(Some(community)) => {
                tracing::info!(
                    category = "auth",
                    community = community.0,
                    source,
                    peer,
                    agent,
                    "overlay opened"
                );
                Some(community)
            }
            Ok(None) => {
                tracing::info!(
                    category = "auth",
                    source,
                    peer,
                    agent,
                    result = 404,
                    "overlay key refused"
                );
                None
            }
            Err(err) => {
                tracing::error!(error = %err, "overlay: store failed");
                None
            }
        }
    }

    /// `GET /overlay/<key>[/<source>]`.
    pub(super) async fn overlay_page(
        &self,
        headers: &http::HeaderMap,
        key: &str,
        source: Option<&str>,
    ) -> Response<ResponseBody> {
        let sources: Vec<&str> = match source {
            None => OverlayReply::SOURCES.to_vec(),
            Some(source) => match OverlayReply::SOURCES.iter().find(|s| **s == source) {
                Some(known) => vec![*known],
                None => return not_found(),
            },
        };
        if self
            .overlay_community(headers, key, source.unwrap_or("all"))
            .await
            .is_none()
        {
            return not_found();
        }
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    title { "WaddleBot overlay" }
                    link rel="stylesheet" href="/assets/overlay.css";
                    script src="/assets/overlay.js" defer {}
                }
                body class="overlay" data-events=(format!("/overlay/{key}/events"))
                    data-sources=(sources.join(" ")) data-connected="false" {
                    @for source in &sources {
                        div id=(source) class="source" data-source=(source) aria-live="polite" {}
                    }
                }
            }
        };
        let mut response = page(StatusCode::OK, markup);
        // The key is in the address: keep it out of other sites' logs.
        response.headers_mut().insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        response
    }

    /// `GET /overlay/<key>/events`: the page's event stream.
    pub(super) async fn overlay_events(
        &self,
        headers: &http::HeaderMap,
        key: &str,
    ) -> Response<ResponseBody> {
        let Some(community) = self.overlay_community(headers, key, "events").await else {
            return not_found();
        };
        let store = Arc::clone(self.state().router.store());
        let Ok(deadline) = key_deadline(store.as_ref(), community, key).await else {
            return not_found();
        };
        let hub = Arc::clone(self.state().router.overlays());
        let subscription = hub.subscribe(community);
        let mut first = format!("retry: {RETRY_MS}\n").into_bytes();
        first.extend_from_slice(&state_event(&subscription.on_screen, subscription.now_ms));
        metrics::gauge!(OVERLAY_STREAMS).increment(1.0);
        let feed = Feed {
            hub,
            store,
            community,
            key: key.to_owned(),
            pushes: subscription.pushes,
            deadline,
            first: Some(Bytes::from(first)),
            closing: self.state().closing.clone(),
            rotations: self.state().overlay_rotations.subscribe(),
            done: false,
        };
        let stream = futures_util::stream::unfold(feed, |mut feed| async move {
            feed.next().await.map(|bytes| (bytes, feed))
        })
        .map(|bytes| Ok::<_, Infallible>(Frame::data(bytes)));
        let mut response = Response::new(StreamBody::new(stream).boxed_unsync());
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        // Proxies (nginx) must not buffer the stream.
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        response
    }
}
