//! Command-line arguments, and turning them into a validated [`Config`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use waddlebot::{Event, PermissionLevel, PlatformKind};
use waddlebot_server::{Config, ConfigError};

/// WaddleBot: a community chat bot engine.
#[derive(Debug, Parser)]
#[command(name = "waddlebot", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Config file (default: ./waddlebot.toml if it exists).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Database URL or SQLite file path (default: DATABASE_URL, else sqlite://waddlebot.db).
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) db: Option<String>,
    /// Migrate an older database forward on start (also WADDLEBOT_MIGRATE=true).
    #[arg(long, global = true)]
    pub(crate) migrate: bool,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Chat with the bot in the terminal, as a user of a console channel.
    Chat(Speaker),
    /// Handle one message and print each reply on its own line.
    Run {
        /// Who is speaking, and where.
        #[command(flatten)]
        speaker: Speaker,
        /// The message, e.g. '!ping' (several words are joined with spaces).
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true, trailing_var_arg = true)]
        message: Vec<String>,
    },
    /// Run the HTTP server.
    Serve {
        /// Listen address (default 127.0.0.1:8000; MODULE_PORT changes the port).
        #[arg(long, value_name = "ADDR")]
        bind: Option<String>,
        /// No authentication, for local experiments: refused unless listening on loopback.
        #[arg(long)]
        dev: bool,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Write communities (all, or one) as a JSON dump, to stdout or --output.
    Export {
        /// Only this community (its id).
        #[arg(long, value_name = "ID")]
        community: Option<i64>,
        /// Write here instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Load a dump made by `waddlebot export` ('-' reads stdin). Nothing is written unless the
    /// whole dump is valid and none of its communities exists in the database.
    Import {
        /// The dump file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Manage the Twitch EventSub subscriptions that feed `serve` (needs the Twitch settings,
    /// TWITCH_CLIENT_SECRET and EVENTSUB_CALLBACK_URL).
    Twitch {
        /// What to do.
        #[command(subcommand)]
        action: TwitchAction,
    },
    /// Manage API keys (shown once when created; only their hash is stored).
    Apikey {
        /// What to do.
        #[command(subcommand)]
        action: ApikeyAction,
    },
    /// Bearer tokens for the HTTP API.
    Token {
        /// What to do.
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Community portal sign-in links.
    Portal {
        /// What to do.
        #[command(subcommand)]
        action: PortalAction,
    },
    /// Register the bot's commands as Discord slash commands (globally, or in DISCORD_GUILD_ID
    /// or --guild); `serve` does this at start too. Nothing is written when Discord already
    /// has them.
    DiscordCommands {
        /// Register in this guild only (changes show at once).
        #[arg(long, value_name = "GUILD_ID")]
        guild: Option<String>,
    },
}

/// `waddlebot portal …`.
#[derive(Debug, Subcommand)]
pub(crate) enum PortalAction {
    /// Print a one-time sign-in link to a community's portal (valid 48 hours, works once).
    Link {
        /// The community (number or name).
        community: String,
        /// Who signs in with it (shown in the portal and the audit log).
        user: String,
        /// Their portal role: owner, community_admin, moderator or viewer.
        #[arg(long, default_value = "owner")]
        role: String,
        /// The server's address as browsers reach it (default: `http://<bind address>`).
        #[arg(long, env = "WADDLEBOT_PUBLIC_URL", value_name = "URL")]
        base_url: Option<String>,
    },
}

/// `waddlebot apikey …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ApikeyAction {
    /// Make a key and print it (once).
    Create {
        /// A label for it.
        #[arg(long)]
        name: String,
        /// admin, owner, community_admin, moderator, viewer or collector.
        #[arg(long, default_value = "admin")]
        role: String,
        /// The community a community role is limited to.
        #[arg(long, value_name = "ID")]
        community: Option<i64>,
        /// Days until it expires (default: never).
        #[arg(long, value_name = "DAYS")]
        expires_days: Option<u64>,
    },
    /// List keys (id, name, role, community, created, expires, last used, revoked).
    List,
    /// Revoke keys by id.
    Revoke {
        /// Key ids, from `waddlebot apikey list`.
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
        /// Also revoke the keys each of them made through the admin API (and those made in
        /// turn), as the audit log records them.
        #[arg(long)]
        cascade: bool,
    },
}

/// `waddlebot token …`.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenAction {
    /// Sign a bearer token with the server's secret and print it.
    Issue {
        /// Who it is for (the `sub` claim).
        #[arg(long)]
        subject: String,
        /// admin, owner, community_admin, moderator, viewer or collector.
        #[arg(long, default_value = "admin")]
        role: String,
        /// The community a community role is limited to.
        #[arg(long, value_name = "ID")]
        community: Option<i64>,
        /// Hours it stays valid.
        #[arg(long, default_value_t = 24)]
        ttl_hours: u64,
        /// Sign RS256 with this private key (PEM) instead of the HS256 secret; for a server
        /// configured with WADDLEBOT_JWT_PUBLIC_KEYS.
        #[arg(long, value_name = "PEM")]
        rsa_key: Option<std::path::PathBuf>,
        /// The key id the server knows the public half by (its file name without extension);
        /// defaults to the private key's file name without `.key.pem`/`.pem`.
        #[arg(long, requires = "rsa_key")]
        kid: Option<String>,
    },
}

/// `waddlebot twitch …`.
#[derive(Debug, Subcommand)]
pub(crate) enum TwitchAction {
    /// Subscribe to everything the bot handles in these channels (logins or user ids); safe to
    /// run again: live subscriptions are kept, dead ones replaced.
    Subscribe {
        /// Channels.
        #[arg(required = true, value_name = "CHANNEL")]
        channels: Vec<String>,
    },
    /// List this application's subscriptions.
    Subscriptions,
    /// Delete subscriptions by id.
    Unsubscribe {
        /// Subscription ids (from `waddlebot twitch subscriptions`).
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
}

/// The user a terminal message comes from.
#[derive(Debug, Clone, Args)]
pub(crate) struct Speaker {
    /// User name to speak as (default: $USER, else "you").
    #[arg(long)]
    pub(crate) user: Option<String>,
    /// Permission level: everyone, follower, subscriber, vip, moderator, broadcaster, admin.
    #[arg(long, default_value = "everyone")]
    pub(crate) level: PermissionLevel,
    /// Platform to pose as.
    #[arg(long, default_value = "console")]
    pub(crate) platform: PlatformKind,
    /// Channel name; one community per channel.
    #[arg(long, default_value = "local")]
    pub(crate) channel: String,
}

impl Speaker {
    /// The user name in effect.
    pub(crate) fn user_name(&self) -> String {
        self.user
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| "you".to_owned())
    }

    /// A chat event from this speaker.
    pub(crate) fn event(&self, text: &str) -> Event {
        Event::chat(
            self.platform.clone(),
            self.channel.clone(),
            self.channel.clone(),
            self.user_name(),
            text,
        )
        .with_level(self.level)
    }
}

impl Cli {
    /// Defaults, then the config file, then the environment, then these flags.
    pub(crate) fn config(&self) -> Result<Config, ConfigError> {
        let mut config = Config::load(self.config.as_deref(), |key| std::env::var(key).ok())?;
        if let Some(db) = &self.db {
            config.set_database_url("--db", db)?;
        }
        if self.migrate {
            config.migrate_on_start = true;
        }
        if let Command::Serve {
            bind: Some(bind), ..
        } = &self.command
        {
            config.set_bind("--bind", bind)?;
        }
        if !matches!(self.command, Command::Serve { .. }) && std::env::var("LOG_LEVEL").is_err() {
            // Terminal commands print replies on stdout; keep stderr for problems only.
            config.log_level = "warn".to_owned();
        }
        Ok(config)
    }
}
