//! Which chat platforms this server talks to, from the original's environment variables. A
//! platform with none of its secrets set is off; one with only some of them is a configuration
//! error naming what is missing (a typo must not silently turn a platform off).

use std::sync::Arc;

use waddlebot::platforms::discord::{
    DEFAULT_API_URL as DISCORD_API, DiscordConfig, DiscordGateway, DiscordPlatform,
    DiscordVerifier, GatewayConfig,
};
use waddlebot::platforms::irc::{DEFAULT_IRC_URL, IrcConfig, TwitchIrc};
use waddlebot::platforms::slack::{
    DEFAULT_API_URL as SLACK_API, SlackConfig, SlackPlatform, SlackVerifier,
};
use waddlebot::platforms::twitch::{
    DEFAULT_API_URL as TWITCH_API, DEFAULT_AUTH_URL as TWITCH_AUTH, DEFAULT_EVENTSUB_WS_URL,
    EventSubSocket, EventSubVerifier, TwitchConfig, TwitchPlatform,
};
use waddlebot::{Event, Platform};

use crate::config::{ConfigError, parse_flag};

/// Twitch settings: `TWITCH_CLIENT_ID` and `TWITCH_BOT_TOKEN` (required together) for Helix;
/// `EVENTSUB_SECRET` turns the webhook route on; `TWITCH_CLIENT_SECRET` (app tokens),
/// `TWITCH_API_URL`, `TWITCH_AUTH_URL`...
#[derive(Clone, PartialEq, Eq)]
pub struct TwitchSettings {
    /// The EventSub webhook subscriptions' secret (10 to 100 ASCII characters); no webhook
    /// route without it.
    pub eventsub_secret: Option<String>,
    /// EventSub over WebSocket (`TWITCH_EVENTSUB_WEBSOCKET=true` with `TWITCH_CHANNELS`).
    pub eventsub_websocket: Option<EventSubWebSocket>,
    /// The application's client id.
    pub client_id: String,
    /// The application's client secret.
    pub client_secret: Option<String>,
    /// The bot account's user access token.
    pub bot_token: String,
    /// Its refresh token (`TWITCH_BOT_REFRESH_TOKEN`, used with the client secret).
    pub refresh_token: Option<String>,
    /// Where Twitch delivers EventSub notifications (`EVENTSUB_CALLBACK_URL`), for
    /// `waddlebot twitch subscribe`.
    pub callback_url: Option<String>,
    /// Helix's base URL.
    pub api_url: String,
    /// The OAuth server's base URL (`TWITCH_AUTH_URL`).
    pub auth_url: String,
}

impl TwitchSettings {
    /// The adapter's configuration.
    pub fn config(&self) -> TwitchConfig {
        TwitchConfig {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            bot_token: self.bot_token.clone(),
            refresh_token: self.refresh_token.clone(),
            api_url: self.api_url.clone(),
            auth_url: self.auth_url.clone(),
        }
    }
}

impl std::fmt::Debug for TwitchSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwitchSettings")
            .field("client_id", &self.client_id)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

/// EventSub over WebSocket: the channels to subscribe to and the endpoint
/// (`TWITCH_EVENTSUB_WS_URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSubWebSocket {
    /// Channel logins or user ids.
    pub channels: Vec<String>,
    /// The endpoint.
    pub url: String,
}

/// Twitch chat over IRC: on when `TWITCH_CHANNELS` is set (comma-separated logins), which then
/// needs `TWITCH_BOT_NICK` and `TWITCH_BOT_TOKEN`; `TWITCH_IRC_URL` overrides the endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct TwitchIrcSettings {
    /// The channels to join.
    pub channels: Vec<String>,
    /// The bot account's login.
    pub login: String,
    /// The bot account's user access token (`chat:read`, `chat:edit`).
    pub token: String,
    /// The WebSocket endpoint.
    pub url: String,
}

impl std::fmt::Debug for TwitchIrcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwitchIrcSettings")
            .field("channels", &self.channels)
            .field("login", &self.login)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Slack settings: `SLACK_SIGNING_SECRET` and `SLACK_BOT_TOKEN` (required together),
/// `SLACK_API_URL`.
#[derive(Clone, PartialEq, Eq)]
pub struct SlackSettings {
    /// The app's signing secret.
    pub signing_secret: String,
    /// The bot token (`xoxb-…`).
    pub bot_token: String,
    /// The Web API base URL.
    pub api_url: String,
}

impl std::fmt::Debug for SlackSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackSettings")
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

/// Discord settings: `DISCORD_PUBLIC_KEY`, `DISCORD_BOT_TOKEN`, `DISCORD_APPLICATION_ID`
/// (required together), `DISCORD_API_URL`.
#[derive(Clone, PartialEq, Eq)]
pub struct DiscordSettings {
    /// The application's Ed25519 public key, hex.
    pub public_key: String,
    /// The bot token.
    pub bot_token: String,
    /// The application id.
    pub application_id: String,
    /// The REST base URL.
    pub api_url: String,
    /// Register slash commands in this guild only (`DISCORD_GUILD_ID`; changes show at once),
    /// instead of globally.
    pub guild_id: Option<String>,
    /// Read guild messages over the gateway (`DISCORD_GATEWAY=true`), so prefix commands and
    /// plain chat work, not only slash commands.
    pub gateway: bool,
    /// The gateway URL (`DISCORD_GATEWAY_URL`); by default Discord's answer to
    /// `GET /gateway/bot`.
    pub gateway_url: Option<String>,
}

impl DiscordSettings {
    /// Where the slash commands are registered.
    pub fn command_scope(&self) -> waddlebot::platforms::discord::CommandScope {
        use waddlebot::platforms::discord::CommandScope;
        self.guild_id
            .clone()
            .map_or(CommandScope::Global, CommandScope::Guild)
    }
}

impl std::fmt::Debug for DiscordSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordSettings")
            .field("application_id", &self.application_id)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

/// Every platform's settings; `None` is off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformSettings {
    /// Twitch (EventSub webhooks in, Helix out).
    pub twitch: Option<TwitchSettings>,
    /// Twitch chat over IRC.
    pub twitch_irc: Option<TwitchIrcSettings>,
    /// Slack.
    pub slack: Option<SlackSettings>,
    /// Discord.
    pub discord: Option<DiscordSettings>,
}

impl PlatformSettings {
    /// Reads the environment (`get` looks a variable up; empty values count as unset).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |key: &str| get(key).filter(|value| !value.trim().is_empty());
        let (twitch, twitch_irc) = twitch_from_env(&get)?;
        let slack = required(&get, "Slack", ["SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN"])?.map(
            |[signing_secret, bot_token]| SlackSettings {
                signing_secret,
                bot_token,
                api_url: get("SLACK_API_URL").unwrap_or_else(|| SLACK_API.to_owned()),
            },
        );
        let keys = [
            "DISCORD_PUBLIC_KEY",
            "DISCORD_BOT_TOKEN",
            "DISCORD_APPLICATION_ID",
        ];
        let discord = match required(&get, "Discord", keys)? {
            None => None,
            Some([public_key, bot_token, application_id]) => {
                if let Err(err) = DiscordVerifier::new(&public_key) {
                    return Err(ConfigError::Invalid {
                        key: "DISCORD_PUBLIC_KEY".to_owned(),
                        value: public_key,
                        reason: err.to_string(),
                    });
                }
                Some(DiscordSettings {
                    public_key,
                    bot_token,
                    application_id,
                    api_url: get("DISCORD_API_URL").unwrap_or_else(|| DISCORD_API.to_owned()),
                    guild_id: get("DISCORD_GUILD_ID"),
                    gateway: match get("DISCORD_GATEWAY") {
                        Some(value) => parse_flag("DISCORD_GATEWAY", &value)?,
                        None => false,
                    },
                    gateway_url: get("DISCORD_GATEWAY_URL"),
                })
            }
        };
        Ok(Self {
            twitch,
            twitch_irc,
            slack,
            discord,
        })
    }

    /// A line per platform saying whether it is on, for the start-up log.
    pub fn summary(&self) -> Vec<String> {
        let twitch = match (&self.twitch, &self.twitch_irc) {
            (None, None) => "twitch: off (set TWITCH_CLIENT_ID and TWITCH_BOT_TOKEN, with EVENTSUB_SECRET for webhooks or TWITCH_CHANNELS and TWITCH_EVENTSUB_WEBSOCKET=true; or TWITCH_CHANNELS, TWITCH_BOT_NICK and TWITCH_BOT_TOKEN for IRC)".to_owned(),
            (None, Some(irc)) => format!("twitch: on (chat over IRC in #{})", irc.channels.join(", #")),
            (Some(helix), irc) => {
                let mut intake = Vec::new();
                if helix.eventsub_secret.is_some() {
                    intake.push("POST /webhooks/twitch/eventsub".to_owned());
                }
                if let Some(socket) = &helix.eventsub_websocket {
                    intake.push(format!("EventSub over WebSocket for {}", socket.channels.join(", ")));
                }
                if let Some(irc) = irc {
                    intake.push(format!("chat over IRC in #{}", irc.channels.join(", #")));
                }
                if intake.is_empty() {
                    intake.push("no intake: set EVENTSUB_SECRET or TWITCH_CHANNELS".to_owned());
                }
                format!("twitch: on ({}; replies through Helix)", intake.join("; "))
            }
        };
        let slack = if self.slack.is_some() {
            "slack: on (POST /webhooks/slack/events, /commands, /interactivity)"
        } else {
            "slack: off (set SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN)"
        };
        let discord = match &self.discord {
            Some(discord) if discord.gateway => {
                "discord: on (POST /webhooks/discord/interactions; messages over the gateway)"
            }
            Some(_) => "discord: on (POST /webhooks/discord/interactions)",
            None => {
                "discord: off (set DISCORD_PUBLIC_KEY, DISCORD_BOT_TOKEN, DISCORD_APPLICATION_ID)"
            }
        };
        vec![twitch, slack.to_owned(), discord.to_owned()]
    }
}

/// Twitch's settings: Helix (for replies, and EventSub over webhooks or a WebSocket) and chat
/// over IRC. Chat comes in over one of EventSub (`TWITCH_EVENTSUB_WEBSOCKET` or webhooks) or IRC
/// (`TWITCH_BOT_NICK`), both needing `TWITCH_CHANNELS` for the sockets.
fn twitch_from_env(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<(Option<TwitchSettings>, Option<TwitchIrcSettings>), ConfigError> {
    let invalid = |key: &str, reason: &str| ConfigError::Invalid {
        key: key.to_owned(),
        value: String::new(),
        reason: reason.to_owned(),
    };
    let channels = get("TWITCH_CHANNELS")
        .map(|list| channel_list(&list))
        .transpose()?;
    let websocket = get("TWITCH_EVENTSUB_WEBSOCKET")
        .map(|value| parse_flag("TWITCH_EVENTSUB_WEBSOCKET", &value))
        .transpose()?
        .unwrap_or(false);
    let (eventsub_websocket, irc_channels) = match (channels, websocket) {
        (None, true) => {
            return Err(invalid(
                "TWITCH_CHANNELS",
                "not set, but TWITCH_EVENTSUB_WEBSOCKET is: name the channels to subscribe to",
            ));
        }
        (Some(_), true) if get("TWITCH_BOT_NICK").is_some() => {
            return Err(invalid(
                "TWITCH_BOT_NICK",
                "chat comes over EventSub (TWITCH_EVENTSUB_WEBSOCKET) or over IRC (TWITCH_BOT_NICK), not both",
            ));
        }
        (Some(channels), true) => (
            Some(EventSubWebSocket {
                channels,
                url: get("TWITCH_EVENTSUB_WS_URL")
                    .unwrap_or_else(|| DEFAULT_EVENTSUB_WS_URL.to_owned()),
            }),
            None,
        ),
        (channels, false) => (None, channels),
    };
    // The bot token serves IRC too: alone with IRC's channels it does not ask for Helix.
    let eventsub_secret = get("EVENTSUB_SECRET");
    let needs_helix = eventsub_secret.is_some() || eventsub_websocket.is_some();
    let helix_wanted = needs_helix || get("TWITCH_CLIENT_ID").is_some() || irc_channels.is_none();
    let keys = ["TWITCH_CLIENT_ID", "TWITCH_BOT_TOKEN"];
    let helix = if helix_wanted {
        required(get, "Twitch", keys)?
    } else {
        None
    };
    if helix.is_none() && needs_helix {
        return Err(invalid(
            &keys.join(", "),
            "not set, but other Twitch settings are; set all of them or none",
        ));
    }
    if let Some(Err(err)) = eventsub_secret.clone().map(EventSubVerifier::new) {
        return Err(ConfigError::Invalid {
            key: "EVENTSUB_SECRET".to_owned(),
            value: "***".to_owned(),
            reason: err.to_string(),
        });
    }
    let twitch = helix.map(|[client_id, bot_token]| TwitchSettings {
        eventsub_secret,
        eventsub_websocket,
        client_id,
        client_secret: get("TWITCH_CLIENT_SECRET"),
        bot_token,
        refresh_token: get("TWITCH_BOT_REFRESH_TOKEN"),
        callback_url: get("EVENTSUB_CALLBACK_URL"),
        api_url: get("TWITCH_API_URL").unwrap_or_else(|| TWITCH_API.to_owned()),
        auth_url: get("TWITCH_AUTH_URL").unwrap_or_else(|| TWITCH_AUTH.to_owned()),
    });
    let irc = match irc_channels {
        None => None,
        Some(channels) => {
            let [_, login, token] = required(
                get,
                "Twitch IRC",
                ["TWITCH_CHANNELS", "TWITCH_BOT_NICK", "TWITCH_BOT_TOKEN"],
            )?
            .unwrap_or_default();
            Some(TwitchIrcSettings {
                channels,
                login,
                token,
                url: get("TWITCH_IRC_URL").unwrap_or_else(|| DEFAULT_IRC_URL.to_owned()),
            })
        }
    };
    Ok((twitch, irc))
}

/// Comma-separated Twitch logins, `#` and case ignored.
fn channel_list(list: &str) -> Result<Vec<String>, ConfigError> {
    let channels: Vec<String> = list
        .split(',')
        .map(|c| c.trim().trim_start_matches('#').to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect();
    if let Some(bad) = channels
        .iter()
        .find(|c| !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        return Err(ConfigError::Invalid {
            key: "TWITCH_CHANNELS".to_owned(),
            value: bad.clone(),
            reason: "a Twitch login is letters, digits and underscores".to_owned(),
        });
    }
    Ok(channels)
}

/// All of `keys`, or none of them; some is an error naming the missing ones.
fn required<const N: usize>(
    get: &impl Fn(&str) -> Option<String>,
    platform: &str,
    keys: [&'static str; N],
) -> Result<Option<[String; N]>, ConfigError> {
    let values = keys.map(get);
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    let absent: Vec<&str> = keys
        .iter()
        .zip(&values)
        .filter(|(_, value)| value.is_none())
        .map(|(key, _)| *key)
        .collect();
    if !absent.is_empty() {
        return Err(ConfigError::Invalid {
            key: absent.join(", "),
            value: String::new(),
            reason: format!("not set, but other {platform} settings are; set all of them or none"),
        });
    }
    Ok(Some(values.map(Option::unwrap_or_default)))
}

/// The inbound side of each platform that is on.
#[derive(Debug, Default)]
pub struct Webhooks {
    /// Twitch EventSub.
    pub twitch: Option<EventSubVerifier>,
    /// Slack (events, commands, interactivity).
    pub slack: Option<SlackVerifier>,
    /// Discord interactions, and the adapter that follows deferred ones up.
    pub discord: Option<(DiscordVerifier, Arc<DiscordPlatform>)>,
    /// For answers that go back by URL (Slack's `response_url`).
    pub http: reqwest::Client,
    /// Events from socket transports (Twitch IRC), fed to the router once the state has one.
    pub streams: Vec<tokio::sync::mpsc::Receiver<Event>>,
}

/// The platforms and webhook verifiers the settings turn on. Socket transports (Twitch IRC)
/// start connecting here, so call it inside a tokio runtime.
pub fn build(
    settings: &PlatformSettings,
    http: &reqwest::Client,
) -> (Vec<Arc<dyn Platform>>, Webhooks) {
    let mut platforms: Vec<Arc<dyn Platform>> = Vec::new();
    let mut webhooks = Webhooks {
        http: http.clone(),
        ..Webhooks::default()
    };
    if let Some(irc) = &settings.twitch_irc {
        let mut config = IrcConfig::new(&irc.login, &irc.token, irc.channels.clone());
        config.url.clone_from(&irc.url);
        let (connection, events) = TwitchIrc::spawn(config);
        webhooks.streams.push(events);
        // With Helix configured, replies go through Helix (replies, whispers, moderation);
        // IRC carries chat only.
        if settings.twitch.is_none() {
            platforms.push(Arc::new(connection));
        }
    }
    if let Some(twitch) = &settings.twitch {
        let platform = Arc::new(TwitchPlatform::new(twitch.config(), http.clone()));
        if let Some(socket) = &twitch.eventsub_websocket {
            let (_socket, events) =
                EventSubSocket::spawn(Arc::clone(&platform), &socket.url, socket.channels.clone());
            webhooks.streams.push(events);
        }
        platforms.push(platform);
        // Checked when the settings were read.
        webhooks.twitch = twitch
            .eventsub_secret
            .clone()
            .and_then(|secret| EventSubVerifier::new(secret).ok());
    }
    if let Some(slack) = &settings.slack {
        platforms.push(Arc::new(SlackPlatform::new(
            SlackConfig {
                bot_token: slack.bot_token.clone(),
                api_url: slack.api_url.clone(),
            },
            http.clone(),
        )));
        webhooks.slack = Some(SlackVerifier::new(slack.signing_secret.clone()));
    }
    if let Some(discord) = &settings.discord {
        let platform = Arc::new(DiscordPlatform::new(
            DiscordConfig {
                bot_token: discord.bot_token.clone(),
                application_id: discord.application_id.clone(),
                api_url: discord.api_url.clone(),
            },
            http.clone(),
        ));
        platforms.push(platform.clone());
        if discord.gateway {
            let config = GatewayConfig {
                url: discord.gateway_url.clone(),
                ..GatewayConfig::default()
            };
            let (_gateway, events) = DiscordGateway::spawn(Arc::clone(&platform), config);
            webhooks.streams.push(events);
        }
        // Checked when the settings were read.
        webhooks.discord = DiscordVerifier::new(&discord.public_key)
            .ok()
            .map(|verifier| (verifier, platform));
    }
    (platforms, webhooks)
}
