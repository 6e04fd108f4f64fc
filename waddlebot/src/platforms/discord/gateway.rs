//! The Discord gateway (feature `discord-gateway`): one WebSocket that brings guild messages,
//! so prefix commands (`!ping`) and plain chat reach the router like interactions do.
//!
//! - `Hello` starts the heartbeat: the first beat after a random part of the interval, then
//!   one per interval carrying the last sequence number; a beat that is due while the previous
//!   one was never acknowledged means a dead ("zombie") connection: reconnect and resume.
//! - `Identify` with the configured intents (guilds, guild and direct messages, message
//!   content — a privileged intent to switch on in the developer portal); after a drop, `Resume`
//!   on the `resume_gateway_url` READY gave, so no event is lost.
//! - `Reconnect` (op 7) → resume; `Invalid Session` (op 9) → resume when Discord says it can,
//!   else wait 1–5 s and identify afresh; close codes 4004 and 4010–4014 (bad token, shard or
//!   intents) stop the gateway with the reason: retrying cannot fix them.
//! - `MESSAGE_CREATE` from people (not bots, not the bot itself) becomes a chat event keyed by
//!   message id, so replies reference it; the member's level is worked out from the guild's
//!   roles (learnt from `GUILD_CREATE` and role events) and its owner.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::{DiscordPlatform, level_from_permissions};
use crate::event::{Event, Sender};
use crate::id::EventId;
use crate::permission::PermissionLevel;
use crate::platform::PlatformKind;
use crate::platforms::socket::{Backoff, Socket, pause_unless_closed, wait_for_status};

/// `GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES | MESSAGE_CONTENT`.
pub const DEFAULT_INTENTS: u64 = 1 | (1 << 9) | (1 << 12) | (1 << 15);

/// How to reach the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// The gateway URL (`DISCORD_GATEWAY_URL`); `None` asks `GET /gateway/bot`.
    pub url: Option<String>,
    /// The intents to identify with.
    pub intents: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            url: None,
            intents: DEFAULT_INTENTS,
        }
    }
}

/// Where the gateway stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GatewayStatus {
    /// Connecting, identifying or resuming.
    Connecting,
    /// READY (or RESUMED): events flow. The session id.
    Connected(String),
    /// Discord refused us for good (bad token, disallowed intents...).
    Failed(String),
    /// The event receiver closed.
    Stopped,
}

/// A running gateway connection. Dropping the event receiver ends it.
#[derive(Debug, Clone)]
pub struct DiscordGateway {
    status: watch::Receiver<GatewayStatus>,
}

impl DiscordGateway {
    /// Connects in the background with `discord`'s bot token; events arrive on the receiver.
    pub fn spawn(
        discord: Arc<DiscordPlatform>,
        config: GatewayConfig,
    ) -> (Self, mpsc::Receiver<Event>) {
        let (events_tx, events_rx) = mpsc::channel(1024);
        let (status_tx, status_rx) = watch::channel(GatewayStatus::Connecting);
        let connection = Connection {
            discord,
            config,
            events: events_tx,
            status: status_tx,
            session: None,
            seq: None,
            bot_id: String::new(),
            guilds: HashMap::new(),
        };
        tokio::spawn(connection.run());
        (Self { status: status_rx }, events_rx)
    }

    /// Where the gateway stands now.
    pub fn status(&self) -> GatewayStatus {
        self.status.borrow().clone()
    }

    /// Waits until the status satisfies `done`, and returns it.
    pub async fn wait_for(&self, done: impl Fn(&GatewayStatus) -> bool) -> GatewayStatus {
        wait_for_status(&self.status, done, GatewayStatus::Stopped).await
    }
}

/// A resumable session.
struct Session {
    id: String,
    resume_url: String,
}

/// What the gateway knows of a guild, to work out members' levels.
#[derive(Default)]
struct Guild {
    owner_id: String,
    /// Role id → permission bits (the `@everyone` role's id is the guild's).
    roles: HashMap<String, u64>,
}

enum Ended {
    /// Reconnect and resume the session.
    Resume(String),
    /// Reconnect with a new session after `pause`.
    Fresh(String, Duration),
    /// Give up.
    Fatal(String),
    Stopped,
}

struct Connection {
    discord: Arc<DiscordPlatform>,
    config: GatewayConfig,
    events: mpsc::Sender<Event>,
    status: watch::Sender<GatewayStatus>,
    session: Option<Session>,
    seq: Option<u64>,
    bot_id: String,
    guilds: HashMap<String, Guild>,
}

fn with_query(url: &str) -> String {
    format!("{}/?v=10&encoding=json", url.trim_end_matches('/'))
}

impl Connection {
    async fn run(mut self) {
        // The first reconnection is at once (Discord expects a prompt resume), then backing off.
        let mut backoff = Backoff::new(Duration::ZERO);
        loop {
            self.status.send_replace(GatewayStatus::Connecting);
            let url = match (&self.session, &self.config.url) {
                (Some(session), _) => session.resume_url.clone(),
                (None, Some(url)) => url.clone(),
                (None, None) => match self.discord.gateway_url().await {
                    Ok(url) => url,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot ask Discord for the gateway URL");
                        "wss://gateway.discord.gg".to_owned()
                    }
                },
            };
            let ended = match tokio_tungstenite::connect_async(with_query(&url)).await {
                Ok((socket, _)) => self.connected(socket).await,
                Err(err) => Ended::Resume(format!("cannot connect: {err}")),
            };
            if matches!(*self.status.borrow(), GatewayStatus::Connected(_)) {
                backoff.reset();
            }
            let pause = match ended {
                Ended::Stopped => {
                    self.status.send_replace(GatewayStatus::Stopped);
                    return;
                }
                Ended::Fatal(why) => {
                    tracing::error!(reason = %why, "Discord closed the gateway for good; check DISCORD_BOT_TOKEN and the bot's intents");
                    self.status.send_replace(GatewayStatus::Failed(why));
                    return;
                }
                Ended::Resume(why) => {
                    tracing::info!(reason = %why, resumable = self.session.is_some(), "gateway connection lost; reconnecting");
                    backoff.next_pause()
                }
                Ended::Fresh(why, pause) => {
                    tracing::info!(reason = %why, "gateway session ended; identifying afresh");
                    self.session = None;
                    self.seq = None;
                    pause
                }
            };
            if !pause_unless_closed(pause, &self.events).await {
                self.status.send_replace(GatewayStatus::Stopped);
                return;
            }
        }
    }

    async fn send(socket: &mut Socket, payload: &Value) -> Result<(), Ended> {
        socket
            .send(Message::text(payload.to_string()))
            .await
            .map_err(|err| Ended::Resume(err.to_string()))
    }

    async fn connected(&mut self, mut socket: Socket) -> Ended {
        let token = self.discord.config.bot_token.clone();
        // Hello first.
        let interval = loop {
            let frame = tokio::select! {
                frame = tokio::time::timeout(Duration::from_secs(30), socket.next()) => frame,
                () = self.events.closed() => return Ended::Stopped,
            };
            let Ok(Some(Ok(Message::Text(text)))) = frame else {
                return Ended::Resume("no Hello from the gateway".to_owned());
            };
            let Ok(payload) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            if payload["op"] == 10 {
                let ms = payload
                    .pointer("/d/heartbeat_interval")
                    .and_then(Value::as_u64)
                    .unwrap_or(41_250);
                break Duration::from_millis(ms.max(1));
            }
        };
        let hello = match &self.session {
            Some(session) => {
                json!({"op": 6, "d": {"token": token, "session_id": session.id, "seq": self.seq}})
            }
            None => json!({"op": 2, "d": {
                "token": token,
                "intents": self.config.intents,
                "properties": {"os": std::env::consts::OS, "browser": "waddlebot", "device": "waddlebot"},
            }}),
        };
        if let Err(ended) = Self::send(&mut socket, &hello).await {
            return ended;
        }
        let mut next_beat = Instant::now() + interval.mul_f64(fastrand::f64());
        let mut acked = true;
        loop {
            let frame = tokio::select! {
                frame = socket.next() => frame,
                () = tokio::time::sleep_until(next_beat) => {
                    if !acked {
                        let _ = socket.close(Some(CloseFrame { code: CloseCode::Library(4000), reason: "zombied".into() })).await;
                        return Ended::Resume("no heartbeat acknowledgement".to_owned());
                    }
                    if let Err(ended) = Self::send(&mut socket, &json!({"op": 1, "d": self.seq})).await {
                        return ended;
                    }
                    acked = false;
                    next_beat = Instant::now() + interval;
                    continue;
                }
                () = self.events.closed() => {
                    let _ = socket.close(None).await;
                    return Ended::Stopped;
                }
            };
            let text = match frame {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(close))) => return self.closed(close),
                None => return Ended::Resume("the gateway socket ended".to_owned()),
                Some(Err(err)) => return Ended::Resume(err.to_string()),
                Some(Ok(_)) => continue,
            };
            let Ok(payload) = serde_json::from_str::<Value>(&text) else {
                tracing::debug!("unreadable gateway payload skipped");
                continue;
            };
            match payload["op"].as_u64() {
                Some(0) => {
                    if let Some(seq) = payload["s"].as_u64() {
                        self.seq = Some(seq);
                    }
                    let kind = payload["t"].as_str().unwrap_or_default().to_owned();
                    if !self.dispatch(&kind, &payload["d"]).await {
                        return Ended::Stopped;
                    }
                }
                Some(1) => {
                    if let Err(ended) =
                        Self::send(&mut socket, &json!({"op": 1, "d": self.seq})).await
                    {
                        return ended;
                    }
                }
                Some(7) => return Ended::Resume("Discord asked for a reconnect".to_owned()),
                Some(9) => {
                    if payload["d"].as_bool() == Some(true) && self.session.is_some() {
                        return Ended::Resume("invalid session (resumable)".to_owned());
                    }
                    let pause = Duration::from_millis(1000 + fastrand::u64(0..4000));
                    return Ended::Fresh("invalid session".to_owned(), pause);
                }
                Some(11) => acked = true,
                _ => {}
            }
        }
    }

    /// What a close frame means.
    fn closed(&self, close: Option<CloseFrame>) -> Ended {
        let (code, reason) = close.map_or((1000, String::new()), |c| {
            (u16::from(c.code), c.reason.to_string())
        });
        match code {
            4004 | 4010 | 4011 | 4012 | 4013 | 4014 => {
                Ended::Fatal(format!("closed with {code}: {reason}"))
            }
            4007 | 4009 => Ended::Fresh(format!("closed with {code}: {reason}"), Duration::ZERO),
            _ => Ended::Resume(format!("closed with {code}: {reason}")),
        }
    }

    /// Handles one dispatch; `false` when nobody listens any more.
    async fn dispatch(&mut self, kind: &str, data: &Value) -> bool {
        let text = |value: &Value, pointer: &str| {
            value
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        match kind {
            "READY" => {
                self.session = Some(Session {
                    id: text(data, "/session_id"),
                    resume_url: text(data, "/resume_gateway_url"),
                });
                self.bot_id = text(data, "/user/id");
                self.status
                    .send_replace(GatewayStatus::Connected(text(data, "/session_id")));
            }
            "RESUMED" => {
                if let Some(session) = &self.session {
                    self.status
                        .send_replace(GatewayStatus::Connected(session.id.clone()));
                }
            }
            "GUILD_CREATE" | "GUILD_UPDATE" => {
                let guild = self.guilds.entry(text(data, "/id")).or_default();
                guild.owner_id = text(data, "/owner_id");
                if let Some(roles) = data.get("roles").and_then(Value::as_array) {
                    guild.roles = roles
                        .iter()
                        .map(|role| (text(role, "/id"), permission_bits(role)))
                        .collect();
                }
            }
            "GUILD_ROLE_CREATE" | "GUILD_ROLE_UPDATE" => {
                let role = &data["role"];
                self.guilds
                    .entry(text(data, "/guild_id"))
                    .or_default()
                    .roles
                    .insert(text(role, "/id"), permission_bits(role));
            }
            "GUILD_ROLE_DELETE" => {
                if let Some(guild) = self.guilds.get_mut(&text(data, "/guild_id")) {
                    guild.roles.remove(&text(data, "/role_id"));
                }
            }
            "MESSAGE_CREATE" => {
                if let Some(event) = self.message_event(data) {
                    return self.events.send(event).await.is_ok();
                }
            }
            _ => {}
        }
        true
    }

    /// A person's guild or DM message as a chat event.
    fn message_event(&self, data: &Value) -> Option<Event> {
        let author = data.get("author")?;
        let author_id = author.get("id")?.as_str()?;
        if author.get("bot").and_then(Value::as_bool) == Some(true) || author_id == self.bot_id {
            return None;
        }
        let channel = data.get("channel_id")?.as_str()?.to_owned();
        let guild_id = data.get("guild_id").and_then(Value::as_str);
        let mut sender = Sender::new(author.get("username")?.as_str()?);
        sender.id = author_id.to_owned();
        sender.display_name = data
            .pointer("/member/nick")
            .and_then(Value::as_str)
            .or_else(|| author.get("global_name").and_then(Value::as_str))
            .filter(|name| *name != sender.name)
            .map(str::to_owned);
        sender.level = guild_id.map_or(PermissionLevel::Everyone, |guild| {
            self.member_level(guild, author_id, data.pointer("/member/roles"))
        });
        let content = data
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut event = Event::chat(
            PlatformKind::Discord,
            guild_id.unwrap_or(&channel).to_owned(),
            channel.clone(),
            sender.name.clone(),
            content,
        );
        event.user = sender;
        if let Some(id) = data.get("id").and_then(Value::as_str) {
            event.id = EventId(id.to_owned());
        }
        Some(event)
    }

    /// The owner is the broadcaster; anyone else gets what their roles' permissions give.
    fn member_level(&self, guild: &str, user: &str, roles: Option<&Value>) -> PermissionLevel {
        let Some(known) = self.guilds.get(guild) else {
            return PermissionLevel::Everyone;
        };
        if known.owner_id == user {
            return PermissionLevel::Broadcaster;
        }
        let mut bits = known.roles.get(guild).copied().unwrap_or(0);
        for role in roles.and_then(Value::as_array).into_iter().flatten() {
            if let Some(role) = role.as_str() {
                bits |= known.roles.get(role).copied().unwrap_or(0);
            }
        }
        level_from_permissions(Some(&bits.to_string()))
    }
}

fn permission_bits(role: &Value) -> u64 {
    role.get("permissions")
        .and_then(Value::as_str)
        .and_then(|bits| bits.parse().ok())
        .unwrap_or(0)
}

impl DiscordPlatform {
    /// The gateway URL Discord recommends for this bot (`GET /gateway/bot`).
    pub async fn gateway_url(&self) -> Result<String, crate::platform::PlatformError> {
        let answer = self
            .call(
                "gateway",
                self.request(reqwest::Method::GET, "/gateway/bot"),
            )
            .await?;
        answer
            .get("url")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                crate::platform::PlatformError::Rejected("Discord named no gateway URL".to_owned())
            })
    }
}
