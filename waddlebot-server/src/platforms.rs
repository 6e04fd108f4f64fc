//! Which chat platforms this server talks to, from the original's environment variables. A
//! platform with none of its secrets set is off; one with only some of them is a configuration
//! error naming what is missing (a typo must not silently turn a platform off).

use std::sync::Arc;

use waddlebot::Platform;
use waddlebot::platforms::discord::{
    DEFAULT_API_URL as DISCORD_API, DiscordConfig, DiscordPlatform, DiscordVerifier,
};
use waddlebot::platforms::slack::{
    DEFAULT_API_URL as SLACK_API, SlackConfig, SlackPlatform, SlackVerifier,
};
use waddlebot::platforms::twitch::{
    DEFAULT_API_URL as TWITCH_API, EventSubVerifier, TwitchConfig, TwitchPlatform,
};

use crate::config::ConfigError;

/// Twitch settings: `EVENTSUB_SECRET`, `TWITCH_CLIENT_ID`, `TWITCH_BOT_TOKEN` (required
/// together), `TWITCH_CLIENT_SECRET` (optional, for app tokens), `TWITCH_API_URL`.
#[derive(Clone, PartialEq, Eq)]
pub struct TwitchSettings {
    /// The EventSub subscriptions' secret (10 to 100 ASCII characters).
    pub eventsub_secret: String,
    /// The application's client id.
    pub client_id: String,
    /// The application's client secret.
    pub client_secret: Option<String>,
    /// The bot account's user access token.
    pub bot_token: String,
    /// Helix's base URL.
    pub api_url: String,
}

impl std::fmt::Debug for TwitchSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwitchSettings")
            .field("client_id", &self.client_id)
            .field("api_url", &self.api_url)
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
    /// Twitch.
    pub twitch: Option<TwitchSettings>,
    /// Slack.
    pub slack: Option<SlackSettings>,
    /// Discord.
    pub discord: Option<DiscordSettings>,
}

impl PlatformSettings {
    /// Reads the environment (`get` looks a variable up; empty values count as unset).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |key: &str| get(key).filter(|value| !value.trim().is_empty());
        let keys = ["EVENTSUB_SECRET", "TWITCH_CLIENT_ID", "TWITCH_BOT_TOKEN"];
        let twitch = match required(&get, "Twitch", keys)? {
            None => None,
            Some([secret, client_id, bot_token]) => {
                if let Err(err) = EventSubVerifier::new(secret.clone()) {
                    return Err(ConfigError::Invalid {
                        key: "EVENTSUB_SECRET".to_owned(),
                        value: "***".to_owned(),
                        reason: err.to_string(),
                    });
                }
                Some(TwitchSettings {
                    eventsub_secret: secret,
                    client_id,
                    client_secret: get("TWITCH_CLIENT_SECRET"),
                    bot_token,
                    api_url: get("TWITCH_API_URL").unwrap_or_else(|| TWITCH_API.to_owned()),
                })
            }
        };
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
                })
            }
        };
        Ok(Self {
            twitch,
            slack,
            discord,
        })
    }

    /// A line per platform saying whether it is on, for the start-up log.
    pub fn summary(&self) -> Vec<String> {
        vec![match &self.twitch {
            Some(_) => "twitch: on (POST /webhooks/twitch/eventsub)".to_owned(),
            None => {
                "twitch: off (set EVENTSUB_SECRET, TWITCH_CLIENT_ID, TWITCH_BOT_TOKEN)".to_owned()
            }
        }]
    }
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
}

/// The platforms and webhook verifiers the settings turn on.
pub fn build(
    settings: &PlatformSettings,
    http: &reqwest::Client,
) -> (Vec<Arc<dyn Platform>>, Webhooks) {
    let mut platforms: Vec<Arc<dyn Platform>> = Vec::new();
    let mut webhooks = Webhooks {
        http: http.clone(),
        ..Webhooks::default()
    };
    if let Some(twitch) = &settings.twitch {
        platforms.push(Arc::new(TwitchPlatform::new(
            TwitchConfig {
                client_id: twitch.client_id.clone(),
                bot_token: twitch.bot_token.clone(),
                api_url: twitch.api_url.clone(),
            },
            http.clone(),
        )));
        // Checked when the settings were read.
        webhooks.twitch = EventSubVerifier::new(twitch.eventsub_secret.clone()).ok();
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
        // Checked when the settings were read.
        webhooks.discord = DiscordVerifier::new(&discord.public_key)
            .ok()
            .map(|verifier| (verifier, platform));
    }
    (platforms, webhooks)
}
