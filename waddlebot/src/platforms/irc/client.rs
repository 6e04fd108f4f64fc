//! The Twitch IRC connection (feature `twitch-ws`): one WebSocket to
//! `wss://irc-ws.chat.twitch.tv:443`, kept alive for as long as its event receiver lives (the
//! intake); without the [`TwitchIrc`] handle (replies through Helix) it only reads.
//!
//! - logs in (`CAP REQ`, `PASS oauth:…`, `NICK`) and waits for `001`; a refused login stops the
//!   connection for good ([`IrcStatus::LoginFailed`]): a wrong token does not fix itself;
//! - joins the configured channels at most 20 per 10 s (Twitch's limit for ordinary accounts);
//! - answers `PING` with `PONG`; on `RECONNECT`, a closed socket or silence longer than the
//!   keepalive, connects again (at once after `RECONNECT`, else with exponential backoff up to a
//!   minute) and joins again;
//! - sends chat lines queued by [`Platform::send`]; lines queued while disconnected wait;
//! - learns each channel's room id (from `ROOMSTATE` and chat lines), so replies addressed by
//!   broadcaster id find their channel, and from `USERSTATE` whether the bot moderates it,
//!   which raises its chat quota.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::{IrcMessage, TwitchLine, twitch_line};
use crate::PermissionLevel;
use crate::event::{Badge, Event};
use crate::platform::{Outbound, Pacing, Platform, PlatformError, PlatformKind, PlatformLimits};
use crate::platforms::socket::{Backoff, Socket, pause_unless_closed, wait_for_status};
use crate::platforms::twitch::{
    CHAT_QUOTA, DUPLICATE_WINDOW, ELEVATED_CHAT_QUOTA, MAX_MESSAGE_LEN, NON_CHAT_ID_PREFIX,
    level_from_badges,
};
use crate::reply::Reply;

/// Twitch's IRC-over-WebSocket endpoint.
pub const DEFAULT_IRC_URL: &str = "wss://irc-ws.chat.twitch.tv:443";

/// How to reach Twitch chat over IRC.
#[derive(Clone, PartialEq, Eq)]
pub struct IrcConfig {
    /// The WebSocket URL (`TWITCH_IRC_URL`), default [`DEFAULT_IRC_URL`].
    pub url: String,
    /// The bot account's login (`TWITCH_BOT_NICK`).
    pub login: String,
    /// The bot account's user access token (`TWITCH_BOT_TOKEN`, `chat:read` and `chat:edit`),
    /// with or without `oauth:`.
    pub token: String,
    /// The channels (logins) to join (`TWITCH_CHANNELS`).
    pub channels: Vec<String>,
    /// Silence after which the connection counts as dead. Twitch pings about every five
    /// minutes; default six.
    pub keepalive: Duration,
}

impl IrcConfig {
    /// Settings with the default URL and keepalive.
    pub fn new(login: impl Into<String>, token: impl Into<String>, channels: Vec<String>) -> Self {
        Self {
            url: DEFAULT_IRC_URL.to_owned(),
            login: login.into().to_ascii_lowercase(),
            token: token.into(),
            channels: channels
                .into_iter()
                .map(|c| c.trim().trim_start_matches('#').to_ascii_lowercase())
                .filter(|c| !c.is_empty())
                .collect(),
            keepalive: Duration::from_secs(360),
        }
    }
}

impl std::fmt::Debug for IrcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IrcConfig")
            .field("url", &self.url)
            .field("login", &self.login)
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

/// Where the connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IrcStatus {
    /// Connecting (or waiting to connect again).
    Connecting,
    /// Logged in; joined channels are being read.
    Connected,
    /// Twitch refused the login; the connection stopped.
    LoginFailed(String),
    /// The event receiver was dropped.
    Stopped,
}

/// At most `max` JOINs per sliding `window`.
#[derive(Debug)]
pub struct JoinPacer {
    max: usize,
    window: Duration,
    sent: VecDeque<Instant>,
}

impl JoinPacer {
    /// Twitch's limit for an ordinary account: 20 JOINs per 10 s.
    pub fn twitch() -> Self {
        Self::new(20, Duration::from_secs(10))
    }

    /// `max` per `window`.
    pub fn new(max: usize, window: Duration) -> Self {
        Self {
            max: max.max(1),
            window,
            sent: VecDeque::new(),
        }
    }

    /// Records a JOIN at `now` if there is room (`None`), else says how long until there is.
    pub fn try_join(&mut self, now: Instant) -> Option<Duration> {
        while self
            .sent
            .front()
            .is_some_and(|at| now.duration_since(*at) >= self.window)
        {
            self.sent.pop_front();
        }
        if self.sent.len() < self.max {
            self.sent.push_back(now);
            return None;
        }
        self.sent
            .front()
            .map(|oldest| self.window.saturating_sub(now.duration_since(*oldest)))
    }
}

/// What the connection learns about channels, shared with the handle.
#[derive(Debug, Default)]
struct Channels {
    /// Room id (broadcaster user id) → channel login.
    logins: HashMap<String, String>,
    /// Logins of channels where the bot is broadcaster or moderator.
    elevated: HashSet<String>,
}

/// Twitch chat over IRC, as a [`Platform`] (chat messages, as replies where possible) and a
/// stream of [`Event`]s. Dropping the event receiver closes the connection; dropping every clone
/// of the handle only stops writing.
#[derive(Debug, Clone)]
pub struct TwitchIrc {
    outgoing: mpsc::Sender<IrcMessage>,
    channels: Arc<Mutex<Channels>>,
    status: watch::Receiver<IrcStatus>,
}

/// Why one connection ended.
enum Ended {
    /// Twitch asked us to reconnect.
    Reconnect,
    /// Transport failure or silence: reconnect after a pause.
    Failed(String),
    /// Twitch refused the login.
    LoginFailed(String),
    /// Nobody listens any more (why).
    Stopped(&'static str),
}

impl TwitchIrc {
    /// Connects in the background; chat and channel events arrive on the returned receiver.
    /// Must be called inside a tokio runtime.
    pub fn spawn(config: IrcConfig) -> (Self, mpsc::Receiver<Event>) {
        let (events_tx, events_rx) = mpsc::channel(1024);
        let (outgoing_tx, outgoing_rx) = mpsc::channel(1024);
        let (status_tx, status_rx) = watch::channel(IrcStatus::Connecting);
        let channels = Arc::new(Mutex::new(Channels::default()));
        let connection = Connection {
            config,
            events: events_tx,
            outgoing: outgoing_rx,
            writers_gone: false,
            channels: Arc::clone(&channels),
            status: status_tx,
        };
        let task = tokio::spawn(connection.run());
        tokio::spawn(async move {
            if let Err(err) = task.await {
                tracing::error!(error = %err, "the Twitch IRC connection task ended abnormally");
            }
        });
        (
            Self {
                outgoing: outgoing_tx,
                channels,
                status: status_rx,
            },
            events_rx,
        )
    }

    /// Where the connection stands now.
    pub fn status(&self) -> IrcStatus {
        self.status.borrow().clone()
    }

    /// Waits until the status satisfies `done` (connected, failed...), and returns it.
    pub async fn wait_for(&self, done: impl Fn(&IrcStatus) -> bool) -> IrcStatus {
        wait_for_status(&self.status, done, IrcStatus::Stopped).await
    }

    /// The channel login for a broadcaster id (or a login given directly).
    fn channel_login(&self, server_id: &str) -> Option<String> {
        let channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(login) = channels.logins.get(server_id) {
            return Some(login.clone());
        }
        // Not a numeric id: a login.
        (!server_id.is_empty() && !server_id.bytes().all(|b| b.is_ascii_digit()))
            .then(|| server_id.trim_start_matches('#').to_ascii_lowercase())
    }
}

#[async_trait]
impl Platform for TwitchIrc {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Twitch
    }

    fn limits(&self) -> PlatformLimits {
        PlatformLimits {
            max_message_len: MAX_MESSAGE_LEN,
            ..PlatformLimits::default()
        }
    }

    async fn pacing(&self, outbound: &Outbound) -> Pacing {
        let login = self.channel_login(&outbound.server_id).unwrap_or_default();
        let elevated = self
            .channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elevated
            .contains(&login);
        Pacing {
            lane_quotas: vec![if elevated {
                ELEVATED_CHAT_QUOTA
            } else {
                CHAT_QUOTA
            }],
            distinct_within: Some(DUPLICATE_WINDOW),
            ..Pacing::unpaced(format!("chat:{}", outbound.server_id))
        }
    }

    async fn send(&self, outbound: Outbound) -> Result<(), PlatformError> {
        let text = match &outbound.reply {
            Reply::Text { text } => text.clone(),
            Reply::Embed(embed) => embed.to_text(),
            other => {
                return Err(PlatformError::Unsupported(format!(
                    "Twitch IRC carries chat only; {other:?} needs Helix (set TWITCH_CLIENT_ID and EVENTSUB_SECRET)"
                )));
            }
        };
        let login = self.channel_login(&outbound.server_id).ok_or_else(|| {
            PlatformError::Rejected(format!(
                "no joined channel has room id {}",
                outbound.server_id
            ))
        })?;
        for part in crate::platforms::split_message(&text, MAX_MESSAGE_LEN) {
            let mut line = IrcMessage::new("PRIVMSG", [format!("#{login}"), part]);
            if let Some(parent) = outbound
                .in_reply_to
                .as_ref()
                .filter(|id| !id.0.starts_with(NON_CHAT_ID_PREFIX))
            {
                line = line.with_tag("reply-parent-msg-id", parent.0.clone());
            }
            self.outgoing.send(line).await.map_err(|_| {
                PlatformError::Unavailable("the Twitch IRC connection has stopped".into())
            })?;
        }
        Ok(())
    }
}

struct Connection {
    config: IrcConfig,
    events: mpsc::Sender<Event>,
    outgoing: mpsc::Receiver<IrcMessage>,
    /// Every handle was dropped (replies go elsewhere): keep reading, stop polling `outgoing`.
    writers_gone: bool,
    channels: Arc<Mutex<Channels>>,
    status: watch::Sender<IrcStatus>,
}

impl Connection {
    async fn run(mut self) {
        let mut backoff = Backoff::new(Duration::from_secs(1));
        loop {
            self.status.send_replace(IrcStatus::Connecting);
            let ended = match tokio_tungstenite::connect_async(self.config.url.as_str()).await {
                Ok((socket, _)) => self.session(socket).await,
                Err(err) => Ended::Failed(format!("cannot connect: {err}")),
            };
            if matches!(*self.status.borrow(), IrcStatus::Connected) {
                backoff.reset();
            }
            match ended {
                Ended::Reconnect => {
                    tracing::info!("Twitch asked for a reconnect; connecting again");
                    backoff.reset();
                }
                Ended::Failed(why) => {
                    let pause = backoff.next_pause();
                    tracing::warn!(reason = %why, ?pause, "Twitch IRC connection lost; connecting again");
                    if !pause_unless_closed(pause, &self.events).await {
                        tracing::info!("Twitch IRC connection stopped: nobody reads its events");
                        self.status.send_replace(IrcStatus::Stopped);
                        return;
                    }
                }
                Ended::LoginFailed(why) => {
                    tracing::error!(reason = %why, "Twitch refused the IRC login; check TWITCH_BOT_NICK and TWITCH_BOT_TOKEN");
                    self.status.send_replace(IrcStatus::LoginFailed(why));
                    return;
                }
                Ended::Stopped(why) => {
                    tracing::info!(reason = why, "Twitch IRC connection stopped");
                    self.status.send_replace(IrcStatus::Stopped);
                    return;
                }
            }
        }
    }

    /// One connection, from login to its end.
    async fn session(&mut self, mut socket: Socket) -> Ended {
        let token = self.config.token.trim_start_matches("oauth:");
        let login = [
            "CAP REQ :twitch.tv/tags twitch.tv/commands".to_owned(),
            format!("PASS oauth:{token}"),
            format!("NICK {}", self.config.login),
        ];
        for line in login {
            if let Err(err) = socket.send(Message::text(line)).await {
                return Ended::Failed(err.to_string());
            }
        }
        let mut to_join: VecDeque<String> = VecDeque::new();
        let mut pacer = JoinPacer::twitch();
        let mut next_join = Instant::now();
        let mut logged_in = false;
        let mut last_heard = Instant::now();
        // Lines are only written once logged in.
        loop {
            let silence = last_heard + self.config.keepalive;
            let can_write = logged_in && !self.writers_gone;
            let join_due = logged_in && !to_join.is_empty();
            tokio::select! {
                frame = socket.next() => {
                    last_heard = Instant::now();
                    let text = match frame {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Ping(payload))) => {
                            let _ = socket.send(Message::Pong(payload)).await;
                            continue;
                        }
                        Some(Ok(Message::Close(_))) | None => return Ended::Failed("closed by the server".to_owned()),
                        Some(Ok(_)) => continue,
                        Some(Err(err)) => return Ended::Failed(err.to_string()),
                    };
                    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
                        let message = match line.parse::<IrcMessage>() {
                            Ok(message) => message,
                            Err(err) => {
                                tracing::debug!(error = %err, line, "unreadable IRC line skipped");
                                continue;
                            }
                        };
                        self.learn(&message);
                        match twitch_line(&message) {
                            TwitchLine::Ping(pong) => {
                                if let Err(err) = socket.send(Message::text(pong.to_string())).await {
                                    return Ended::Failed(err.to_string());
                                }
                            }
                            TwitchLine::Reconnect => return Ended::Reconnect,
                            TwitchLine::LoginFailed(why) => return Ended::LoginFailed(why),
                            TwitchLine::Welcome => {
                                logged_in = true;
                                to_join = self.config.channels.iter().cloned().collect();
                                self.status.send_replace(IrcStatus::Connected);
                            }
                            TwitchLine::Event(event) => {
                                if event.user.name == self.config.login {
                                    continue;
                                }
                                if self.events.send(*event).await.is_err() {
                                    return Ended::Stopped("nobody reads its events");
                                }
                            }
                            _ => {}
                        }
                    }
                }
                () = tokio::time::sleep_until(next_join), if join_due => {
                    let now = Instant::now();
                    match pacer.try_join(now) {
                        None => {
                            if let Some(channel) = to_join.pop_front() {
                                let join = format!("JOIN #{channel}");
                                if let Err(err) = socket.send(Message::text(join)).await {
                                    return Ended::Failed(err.to_string());
                                }
                            }
                        }
                        Some(wait) => next_join = now + wait,
                    }
                }
                line = self.outgoing.recv(), if can_write => {
                    let Some(line) = line else {
                        // Replies go elsewhere (Helix): chat still comes in here.
                        tracing::debug!("no Twitch IRC handle left; reading chat only");
                        self.writers_gone = true;
                        continue;
                    };
                    if let Err(err) = socket.send(Message::text(line.to_string())).await {
                        return Ended::Failed(err.to_string());
                    }
                }
                () = tokio::time::sleep_until(silence) => {
                    return Ended::Failed("no message from Twitch within the keepalive".to_owned());
                }
                () = self.events.closed() => return Ended::Stopped("nobody reads its events"),
            }
        }
    }

    /// Remembers room ids and where the bot moderates.
    fn learn(&self, message: &IrcMessage) {
        let Some(login) = message
            .param(0)
            .and_then(|p| p.strip_prefix('#'))
            .map(str::to_owned)
        else {
            return;
        };
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(room) = message.tag("room-id").filter(|r| !r.is_empty()) {
            channels.logins.insert(room.to_owned(), login.clone());
        }
        if message.command == "USERSTATE" {
            let badges: Vec<Badge> = message
                .tag("badges")
                .unwrap_or_default()
                .split(',')
                .filter_map(|b| b.split('/').next())
                .filter(|name| !name.is_empty())
                .map(|name| Badge {
                    name: name.to_owned(),
                    version: String::new(),
                })
                .collect();
            if level_from_badges(&badges) >= PermissionLevel::Moderator {
                channels.elevated.insert(login);
            } else {
                channels.elevated.remove(&login);
            }
        }
    }
}
