//! EventSub over WebSocket (feature `twitch-ws`), for deployments without a public HTTPS
//! address: the bot opens `wss://eventsub.wss.twitch.tv/ws` and Twitch pushes notifications
//! down it.
//!
//! - On `session_welcome` the bot subscribes (within Twitch's 10 s) to every type it maps, for
//!   each configured channel, with the session id as transport and the bot's user token.
//! - `session_keepalive` and notifications prove the socket alive; silence longer than the
//!   welcome's `keepalive_timeout_seconds` (plus a little slack) means it is dead: connect
//!   again and subscribe again.
//! - `session_reconnect` names a new URL: the bot connects there and keeps reading the old
//!   socket until the new one says welcome, then drops the old one. Subscriptions move with the
//!   session, so nothing is created again.
//! - Message ids are remembered, so a notification Twitch sends twice becomes one event.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::{TwitchPlatform, channel_subscriptions, events_from_notification};
use crate::event::Event;
use crate::platform::PlatformError;
use crate::platforms::SeenIds;
use crate::platforms::socket::{Backoff, Socket, pause_unless_closed, wait_for_status};

/// Twitch's EventSub WebSocket endpoint.
pub const DEFAULT_EVENTSUB_WS_URL: &str = "wss://eventsub.wss.twitch.tv/ws";

/// How long Twitch gives between the welcome and the first subscription, and how long we wait
/// for a welcome.
const WELCOME_WITHIN: Duration = Duration::from_secs(10);
/// Added to the keepalive before a silent socket counts as dead: half of it, at most 3 s.
fn with_slack(keepalive: Duration) -> Duration {
    keepalive + (keepalive / 2).min(Duration::from_secs(3))
}

/// Where the EventSub socket stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventSubSocketStatus {
    /// Connecting, or waiting to connect again.
    Connecting,
    /// Welcomed and subscribed; the session id.
    Connected(String),
    /// The event receiver closed.
    Stopped,
}

/// A running EventSub WebSocket session. Dropping the event receiver ends it.
#[derive(Debug, Clone)]
pub struct EventSubSocket {
    status: watch::Receiver<EventSubSocketStatus>,
}

impl EventSubSocket {
    /// Connects to `url` in the background and subscribes to the channels' events (logins or
    /// user ids) through `twitch`'s Helix client and bot token. Events arrive on the receiver.
    pub fn spawn(
        twitch: Arc<TwitchPlatform>,
        url: impl Into<String>,
        channels: Vec<String>,
    ) -> (Self, mpsc::Receiver<Event>) {
        let (events_tx, events_rx) = mpsc::channel(1024);
        let (status_tx, status_rx) = watch::channel(EventSubSocketStatus::Connecting);
        let session = Session {
            twitch,
            url: url.into(),
            channels,
            events: events_tx,
            status: status_tx,
            seen: SeenIds::new(Duration::from_secs(600), 10_000),
        };
        tokio::spawn(session.run());
        (Self { status: status_rx }, events_rx)
    }

    /// Where the socket stands now.
    pub fn status(&self) -> EventSubSocketStatus {
        self.status.borrow().clone()
    }

    /// Waits until the status satisfies `done`, and returns it.
    pub async fn wait_for(
        &self,
        done: impl Fn(&EventSubSocketStatus) -> bool,
    ) -> EventSubSocketStatus {
        wait_for_status(&self.status, done, EventSubSocketStatus::Stopped).await
    }
}

struct Session {
    twitch: Arc<TwitchPlatform>,
    url: String,
    channels: Vec<String>,
    events: mpsc::Sender<Event>,
    status: watch::Sender<EventSubSocketStatus>,
    seen: SeenIds,
}

/// What one frame asks of the session.
enum Frame {
    Welcome {
        session_id: String,
        keepalive: Duration,
    },
    Reconnect(String),
    Alive,
    Closed(String),
}

enum Ended {
    /// Start over: connect to the configured URL and subscribe again.
    Failed(String),
    Stopped,
}

impl Session {
    async fn run(self) {
        let mut backoff = Backoff::new(Duration::from_secs(1));
        loop {
            self.status.send_replace(EventSubSocketStatus::Connecting);
            let ended = match tokio_tungstenite::connect_async(self.url.as_str()).await {
                Ok((socket, _)) => self.connected(socket).await,
                Err(err) => Ended::Failed(format!("cannot connect: {err}")),
            };
            if matches!(*self.status.borrow(), EventSubSocketStatus::Connected(_)) {
                backoff.reset();
            }
            match ended {
                Ended::Stopped => {
                    self.status.send_replace(EventSubSocketStatus::Stopped);
                    return;
                }
                Ended::Failed(why) => {
                    let pause = backoff.next_pause();
                    tracing::warn!(reason = %why, ?pause, "EventSub socket lost; connecting again");
                    if !pause_unless_closed(pause, &self.events).await {
                        self.status.send_replace(EventSubSocketStatus::Stopped);
                        return;
                    }
                }
            }
        }
    }

    /// From a fresh connection's welcome until it is lost (or handed off and lost).
    async fn connected(&self, mut socket: Socket) -> Ended {
        let (session_id, mut keepalive) = match self.await_welcome(&mut socket, None).await {
            Ok(welcome) => welcome,
            Err(ended) => return ended,
        };
        if let Err(err) = self.subscribe(&session_id).await {
            return Ended::Failed(format!("cannot subscribe: {err}"));
        }
        self.status
            .send_replace(EventSubSocketStatus::Connected(session_id));
        loop {
            let frame = tokio::select! {
                frame = socket.next() => frame,
                () = tokio::time::sleep(keepalive) => {
                    return Ended::Failed("no keepalive from Twitch".to_owned());
                }
                () = self.events.closed() => return Ended::Stopped,
            };
            match self.read(frame, &mut socket).await {
                Ok(Frame::Reconnect(url)) => {
                    let (fresh, _) = match tokio_tungstenite::connect_async(url.as_str()).await {
                        Ok(fresh) => fresh,
                        Err(err) => {
                            return Ended::Failed(format!("cannot reach the reconnect URL: {err}"));
                        }
                    };
                    let mut fresh = fresh;
                    match self.await_welcome(&mut fresh, Some(&mut socket)).await {
                        Ok((session_id, alive)) => {
                            tracing::info!(session = %session_id, "EventSub session moved to a new socket");
                            keepalive = alive;
                            let _ = socket.close(None).await;
                            socket = fresh;
                            self.status
                                .send_replace(EventSubSocketStatus::Connected(session_id));
                        }
                        Err(ended) => return ended,
                    }
                }
                Ok(Frame::Closed(why)) => return Ended::Failed(why),
                Ok(Frame::Welcome { .. } | Frame::Alive) => {}
                Err(ended) => return ended,
            }
        }
    }

    /// Waits for `socket`'s welcome, still reading `old` (a socket being handed off) meanwhile.
    async fn await_welcome(
        &self,
        socket: &mut Socket,
        mut old: Option<&mut Socket>,
    ) -> Result<(String, Duration), Ended> {
        let deadline = Instant::now() + WELCOME_WITHIN;
        loop {
            let from_old = async {
                match old.as_deref_mut() {
                    Some(old) => old.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                frame = socket.next() => match self.read(frame, socket).await? {
                    Frame::Welcome { session_id, keepalive } => return Ok((session_id, keepalive)),
                    Frame::Closed(why) => return Err(Ended::Failed(why)),
                    Frame::Reconnect(_) | Frame::Alive => {}
                },
                frame = from_old => {
                    // Notifications still arriving on the old socket are delivered; once it
                    // closes, only the new one is read.
                    let Some(old_socket) = old.as_deref_mut() else { continue };
                    if let Frame::Closed(_) = self.read(frame, old_socket).await? {
                        old = None;
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    return Err(Ended::Failed("no welcome from Twitch".to_owned()));
                }
                () = self.events.closed() => return Err(Ended::Stopped),
            }
        }
    }

    /// Handles one frame: notifications are delivered here; the rest is reported.
    async fn read(
        &self,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
        socket: &mut Socket,
    ) -> Result<Frame, Ended> {
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Ping(payload))) => {
                let _ = socket.send(Message::Pong(payload)).await;
                return Ok(Frame::Alive);
            }
            Some(Ok(Message::Close(close))) => {
                let why = close.map_or_else(
                    || "closed by Twitch".to_owned(),
                    |c| format!("closed by Twitch: {} {}", u16::from(c.code), c.reason),
                );
                return Ok(Frame::Closed(why));
            }
            None => return Ok(Frame::Closed("the socket ended".to_owned())),
            Some(Ok(_)) => return Ok(Frame::Alive),
            Some(Err(err)) => return Ok(Frame::Closed(err.to_string())),
        };
        let Ok(message) = serde_json::from_str::<Value>(&text) else {
            tracing::debug!("unreadable EventSub frame skipped");
            return Ok(Frame::Alive);
        };
        let field = |pointer: &str| message.pointer(pointer).and_then(Value::as_str);
        match field("/metadata/message_type").unwrap_or_default() {
            "session_welcome" => Ok(Frame::Welcome {
                session_id: field("/payload/session/id").unwrap_or_default().to_owned(),
                keepalive: with_slack(Duration::from_secs(
                    message
                        .pointer("/payload/session/keepalive_timeout_seconds")
                        .and_then(Value::as_u64)
                        .unwrap_or(10),
                )),
            }),
            "session_reconnect" => match field("/payload/session/reconnect_url") {
                Some(url) => Ok(Frame::Reconnect(url.to_owned())),
                None => Ok(Frame::Alive),
            },
            "notification" => {
                let id = field("/metadata/message_id").unwrap_or_default();
                if !self.seen.first_time(id) {
                    return Ok(Frame::Alive);
                }
                let kind = field("/metadata/subscription_type").unwrap_or_default();
                let payload = message.pointer("/payload/event").unwrap_or(&Value::Null);
                match events_from_notification(kind, payload, id) {
                    Ok(events) => {
                        for event in events {
                            if self.events.send(event).await.is_err() {
                                return Err(Ended::Stopped);
                            }
                        }
                    }
                    Err(why) => {
                        tracing::warn!(kind, reason = %why, "EventSub notification not understood")
                    }
                }
                Ok(Frame::Alive)
            }
            "revocation" => {
                tracing::warn!(
                    kind = field("/metadata/subscription_type").unwrap_or_default(),
                    reason = field("/payload/subscription/status").unwrap_or_default(),
                    "Twitch revoked an EventSub subscription"
                );
                Ok(Frame::Alive)
            }
            _ => Ok(Frame::Alive),
        }
    }

    /// Subscribes this session to every mapped type for every channel. A refused type (a
    /// missing scope) is logged and the others go ahead.
    async fn subscribe(&self, session_id: &str) -> Result<(), PlatformError> {
        let bot = self.twitch.bot_user_id().await?.to_owned();
        for channel in &self.channels {
            let broadcaster = self.twitch.user_id(channel).await?;
            for wanted in channel_subscriptions(&broadcaster, &bot) {
                let body = json!({
                    "type": wanted.kind,
                    "version": wanted.version,
                    "condition": wanted.condition,
                    "transport": { "method": "websocket", "session_id": session_id },
                });
                let request = self
                    .twitch
                    .request(reqwest::Method::POST, "eventsub/subscriptions")
                    .json(&body);
                match self.twitch.helix(request).await {
                    Ok(_) => {}
                    Err(PlatformError::Rejected(why)) => {
                        tracing::warn!(kind = wanted.kind, channel, reason = %why, "EventSub subscription refused");
                    }
                    Err(other) => return Err(other),
                }
            }
        }
        Ok(())
    }
}
