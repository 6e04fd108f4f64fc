//! The one `Config`: built-in defaults, then an optional `waddlebot.toml`, then environment
//! variables (the original system's names keep working), then command-line flags (applied by
//! the caller). Invalid values fail at start with a message naming the key and the reason.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use waddlebot_router::RouterConfig;
use waddlebot_router::cache::CacheTtl;
use waddlebot_router::policy::RateLimit;

/// The default SQLite database: `./waddlebot.db`, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://waddlebot.db";
/// The default listen address.
pub const DEFAULT_BIND: &str = "127.0.0.1:8000";
/// The config file read from the working directory when none is named.
pub const DEFAULT_CONFIG_FILE: &str = "waddlebot.toml";

/// Everything the server and CLI are configured with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where data lives (`sqlite://waddlebot.db`, `sqlite::memory:`).
    pub database_url: String,
    /// A PostgreSQL read replica for reads that may be slightly stale (`READ_REPLICA_URL`).
    pub read_replica_url: Option<String>,
    /// Most database connections (`ROUTER_MAX_WORKERS`, default 20; PostgreSQL).
    pub db_max_connections: u32,
    /// The HTTP listen address.
    pub bind: SocketAddr,
    /// Largest request body accepted; larger gets 413.
    pub max_body_bytes: usize,
    /// Log filter (`info`, `waddlebot_router=debug`...).
    pub log_level: String,
    /// How log lines look (`LOG_FORMAT`: `text`, `json` or `aaa`).
    pub log_format: LogFormat,
    /// Where log lines go besides stderr (a rotated file, syslog), and the name they carry.
    pub logs: LogSettings,
    /// Migrate an older database forward on start (`--migrate`, `WADDLEBOT_MIGRATE`); a new
    /// database is always created, a newer one always refused.
    pub migrate_on_start: bool,
    /// Redis for state shared by every process (rate limits and cooldowns today); `None` keeps
    /// it in this process.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key this bot writes, so several bots can share one Redis.
    pub redis_prefix: String,
    /// Prefix of the sessions' Redis keys (`SESSION_PREFIX`; default `<redis_prefix>session:`).
    pub session_prefix: Option<String>,
    /// Router settings.
    pub router: RouterConfig,
    /// The chat platforms that are on, with their secrets (redacted in `Debug`).
    pub platforms: crate::platforms::PlatformSettings,
    /// The AI providers (`AI_PROVIDER` and the `OLLAMA_*`, `WADDLEAI_*`, `OPENAI_*`
    /// settings); `None`: AI is off and `!ai` says what to set.
    pub ai: Option<waddlebot_ai::AiSettings>,
    /// The AI chat module (`SYSTEM_PROMPT`, `QUESTION_TRIGGERS`, `RESPONSE_PREFIX`,
    /// `CONTEXT_HISTORY_LIMIT`, `MAX_CONCURRENT_REQUESTS`).
    pub ai_chat: waddlebot_modules::AiChatSettings,
    /// The HS256 secret for bearer tokens (`WADDLEBOT_JWT_SECRET`, at least 32 bytes); `None`:
    /// `serve` generates one and keeps it beside the database.
    pub jwt_secret: Option<Secret>,
    /// The tokens' expected issuer (`WADDLEBOT_JWT_ISSUER`, default `waddlebot`).
    pub jwt_issuer: String,
    /// The tokens' expected audience (`WADDLEBOT_JWT_AUDIENCE`, default `waddlebot-api`).
    pub jwt_audience: String,
    /// RS256 public keys (PEM files, `WADDLEBOT_JWT_PUBLIC_KEYS`, comma-separated); when any
    /// are given, tokens must be RS256 signed by one of them (key id = file name without
    /// extension) and HS256 is off.
    pub jwt_public_keys: Vec<PathBuf>,
    /// Let remote modules and rule webhooks call private and local addresses
    /// (`ROUTER_ALLOW_PRIVATE_TARGETS`; off: only public addresses, against request forgery).
    pub allow_private_targets: bool,
    /// Networks remote modules and rule webhooks may call besides public addresses
    /// (`ROUTER_ALLOWED_TARGETS`: addresses or CIDR ranges, comma-separated).
    pub allowed_targets: Vec<ipnet::IpNet>,
    /// What `/api/v1/ai/chat/completions` may spend (`AI_API_MODELS`, `AI_API_MAX_TOKENS`,
    /// `AI_API_REQUESTS_PER_MINUTE`, `AI_API_TOKENS_PER_MINUTE`).
    pub ai_api: crate::ai_api::AiApiPolicy,
    /// Request deadline, admin rate limit, CORS, URI limit (`WADDLEBOT_REQUEST_TIMEOUT`,
    /// `WADDLEBOT_ADMIN_RATE_LIMIT`, `WADDLEBOT_CORS_ORIGINS`).
    pub http: crate::hygiene::HttpPolicy,
    /// The address browsers reach this server at (`WADDLEBOT_PUBLIC_URL`, default
    /// `http://<bind>`): portal links, the Spotify callback.
    pub public_url: Option<String>,
    /// Outside services of the modules (shoutouts, song requests, Spotify).
    pub services: ServiceSettings,
}

/// The outside services modules use, each off until configured.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ServiceSettings {
    /// Twitch app credentials for Helix lookups (`TWITCH_CLIENT_ID`, `TWITCH_CLIENT_SECRET`;
    /// `TWITCH_API_URL`, `TWITCH_AUTH_URL` to point elsewhere).
    pub twitch_app: Option<(String, Secret)>,
    /// Helix's base URL.
    pub twitch_api_url: String,
    /// Twitch's OAuth server.
    pub twitch_auth_url: String,
    /// `YOUTUBE_API_KEY`.
    pub youtube_api_key: Option<Secret>,
    /// `YOUTUBE_API_URL` (default the public Data API v3).
    pub youtube_api_url: String,
    /// `SPOTIFY_CLIENT_ID` + `SPOTIFY_CLIENT_SECRET`.
    pub spotify: Option<(String, Secret)>,
    /// `SPOTIFY_REDIRECT_URL` (default `<public URL>/oauth/spotify/callback`).
    pub spotify_redirect_url: Option<String>,
    /// `SPOTIFY_API_URL`.
    pub spotify_api_url: String,
    /// `SPOTIFY_ACCOUNTS_URL`.
    pub spotify_accounts_url: String,
}

impl std::fmt::Debug for ServiceSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceSettings")
            .field("twitch_app", &self.twitch_app.as_ref().map(|(id, _)| id))
            .field("youtube", &self.youtube_api_key.is_some())
            .field("spotify", &self.spotify.as_ref().map(|(id, _)| id))
            .finish_non_exhaustive()
    }
}

impl ServiceSettings {
    fn with_defaults() -> Self {
        Self {
            twitch_api_url: waddlebot::platforms::twitch::DEFAULT_API_URL.to_owned(),
            twitch_auth_url: waddlebot::platforms::twitch::DEFAULT_AUTH_URL.to_owned(),
            youtube_api_url: "https://www.googleapis.com/youtube/v3".to_owned(),
            spotify_api_url: "https://api.spotify.com/v1".to_owned(),
            spotify_accounts_url: "https://accounts.spotify.com".to_owned(),
            ..Self::default()
        }
    }

    fn read(&mut self, get: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let url = |key: &str, current: &mut String| -> Result<(), ConfigError> {
            if let Some(value) = get(key) {
                if url::Url::parse(&value).is_err() {
                    return Err(invalid(key, &value, "expected a URL"));
                }
                *current = value;
            }
            Ok(())
        };
        url("TWITCH_API_URL", &mut self.twitch_api_url)?;
        url("TWITCH_AUTH_URL", &mut self.twitch_auth_url)?;
        url("YOUTUBE_API_URL", &mut self.youtube_api_url)?;
        url("SPOTIFY_API_URL", &mut self.spotify_api_url)?;
        url("SPOTIFY_ACCOUNTS_URL", &mut self.spotify_accounts_url)?;
        if let (Some(id), Some(secret)) = (get("TWITCH_CLIENT_ID"), get("TWITCH_CLIENT_SECRET")) {
            self.twitch_app = Some((id, Secret(secret)));
        }
        self.youtube_api_key = get("YOUTUBE_API_KEY").map(Secret);
        match (get("SPOTIFY_CLIENT_ID"), get("SPOTIFY_CLIENT_SECRET")) {
            (Some(id), Some(secret)) => self.spotify = Some((id, Secret(secret))),
            (Some(_), None) | (None, Some(_)) => {
                return Err(invalid(
                    "SPOTIFY_CLIENT_ID",
                    "***",
                    "set both SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET",
                ));
            }
            (None, None) => {}
        }
        if let Some(redirect) = get("SPOTIFY_REDIRECT_URL") {
            if url::Url::parse(&redirect).is_err() {
                return Err(invalid("SPOTIFY_REDIRECT_URL", &redirect, "expected a URL"));
            }
            self.spotify_redirect_url = Some(redirect);
        }
        Ok(())
    }
}

/// Where log lines go besides stderr, and the module name and version they carry (the
/// original's `LOG_DIR`, `ENABLE_SYSLOG`, `SYSLOG_*`, `MODULE_NAME`, `MODULE_VERSION`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// A directory for `<module>.log`, rotated by size (`LOG_DIR`); `None` writes stderr only.
    pub dir: Option<PathBuf>,
    /// The size a log file is rotated at (`LOG_MAX_BYTES`, 10 MiB as the original).
    pub max_bytes: usize,
    /// Rotated files kept beside the current one (`LOG_BACKUP_COUNT`, 5).
    pub files_kept: usize,
    /// RFC 5424 syslog over UDP (`ENABLE_SYSLOG=true`).
    pub syslog: Option<SyslogSettings>,
    /// The name in log lines and `/health` (`MODULE_NAME`, `waddlebot`).
    pub module_name: String,
    /// The version in log lines and `/health` (`MODULE_VERSION`, this build's).
    pub module_version: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            dir: None,
            max_bytes: 10 * 1024 * 1024,
            files_kept: 5,
            syslog: None,
            module_name: "waddlebot".to_owned(),
            module_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// Where syslog lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogSettings {
    /// The syslog server (`SYSLOG_HOST`, `localhost`).
    pub host: String,
    /// Its UDP port (`SYSLOG_PORT`, 514).
    pub port: u16,
    /// The facility (`SYSLOG_FACILITY`, `local0`; `user`, `daemon`, `local0`…`local7`...).
    pub facility: String,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable text (`LOG_FORMAT=text`).
    Text,
    /// One JSON object per line (`LOG_FORMAT=json`).
    Json,
    /// The original system's AAA line: `[ts] LEVEL module:version TYPE community=.. user=..
    /// action=.. result=.. time=..ms` (`LOG_FORMAT=aaa`).
    Aaa,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" | "pretty" | "human" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            "aaa" | "line" => Ok(Self::Aaa),
            _ => Err("expected text, json or aaa".to_owned()),
        }
    }
}

/// A secret setting: compared and cloned like text, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Config {
    /// The address browsers reach this server at.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.bind))
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            read_replica_url: None,
            db_max_connections: 20,
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            max_body_bytes: 2 * 1024 * 1024,
            log_level: "info".to_owned(),
            log_format: LogFormat::Text,
            logs: LogSettings::default(),
            migrate_on_start: false,
            redis_url: None,
            redis_prefix: "waddlebot:".to_owned(),
            session_prefix: None,
            router: RouterConfig::default(),
            platforms: crate::platforms::PlatformSettings::default(),
            ai: None,
            ai_chat: waddlebot_modules::AiChatSettings::default(),
            jwt_secret: None,
            jwt_issuer: "waddlebot".to_owned(),
            jwt_audience: "waddlebot-api".to_owned(),
            jwt_public_keys: Vec::new(),
            allow_private_targets: false,
            allowed_targets: Vec::new(),
            ai_api: crate::ai_api::AiApiPolicy::default(),
            http: crate::hygiene::HttpPolicy::default(),
            public_url: None,
            services: ServiceSettings::with_defaults(),
        }
    }
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value is malformed or out of range.
    #[error("invalid {key} = '{value}': {reason}")]
    Invalid {
        /// The file key or environment variable.
        key: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The named config file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown keys.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
}

/// A yes/no setting: `true`, `1`, `yes`, `on` or their opposites, case ignored.
pub(crate) fn parse_flag(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(key, value, "expected true or false")),
    }
}

/// A log filter `tracing` can read: a level (`info`), or directives
/// (`warn,waddlebot_router=debug`).
fn check_log_level(key: &str, value: &str) -> Result<(), ConfigError> {
    // A bare word is a target to `tracing` (all its levels): `inf` would pass and log nothing
    // of the rest. A directive without `=` must be a level.
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    if let Some(word) = value.split(',').map(str::trim).find(|d| {
        !d.is_empty()
            && !d.contains('=')
            && !d.contains('[')
            && !LEVELS.contains(&d.to_ascii_lowercase().as_str())
    }) {
        return Err(invalid(
            key,
            value,
            format!(
                "'{word}' is not a level (error, warn, info, debug, trace, off); a target takes one: {word}=debug"
            ),
        ));
    }
    tracing_subscriber::EnvFilter::try_new(value)
        .map(drop)
        .map_err(|err| {
            invalid(
                key,
                value,
                format!("expected a level (error, warn, info, debug, trace) or tracing directives like warn,waddlebot_router=debug: {err}"),
            )
        })
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// The keys of `waddlebot.toml`. Unknown keys are errors, so a typo is never silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    bind: Option<String>,
    max_body_bytes: Option<usize>,
    log_level: Option<String>,
    log_json: Option<bool>,
    log_format: Option<String>,
    allow_private_targets: Option<bool>,
    admin_rate_limit_per_minute: Option<u32>,
    cors_origins: Option<Vec<String>>,
    http_request_timeout_secs: Option<u64>,
    migrate_on_start: Option<bool>,
    command_prefixes: Option<Vec<String>>,
    remote_prefix: Option<String>,
    request_timeout_secs: Option<u64>,
    command_cache_ttl_secs: Option<u64>,
    entity_cache_ttl_secs: Option<u64>,
    redis_url: Option<String>,
    redis_prefix: Option<String>,
    rate_limit_per_minute: Option<u32>,
    community_rate_limit_per_minute: Option<u32>,
    cooldown_exempt_level: Option<String>,
}

impl Config {
    /// The AI chat module's settings from the environment.
    fn read_ai_chat(&mut self, get: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let chat = &mut self.ai_chat;
        if let Some(prompt) = get("SYSTEM_PROMPT") {
            chat.system_prompt = prompt;
        }
        if let Some(triggers) = get("QUESTION_TRIGGERS") {
            chat.question_triggers = triggers
                .split(',')
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect();
        }
        if let Some(prefix) = get("RESPONSE_PREFIX") {
            chat.response_prefix = prefix;
        }
        if let Some(name) = get("WADDLEBOT_BOT_NAME").or_else(|| get("TWITCH_BOT_NICK")) {
            chat.bot_name = name.trim().trim_start_matches('@').to_owned();
        }
        if let Some(n) = number(get, "CONTEXT_HISTORY_LIMIT", 0..=50)? {
            chat.context_messages = n;
        }
        if let Some(n) = number(get, "MAX_CONCURRENT_REQUESTS", 1..=1000)? {
            chat.max_concurrent = n;
        }
        if let Some(n) = number(get, "AI_CHANNEL_REQUESTS_PER_MINUTE", 1..=600)? {
            chat.channel_per_minute = n;
        }
        if let Some(choice) = get("AI_OVER_BUDGET") {
            chat.refuse_over_budget = match choice.trim().to_ascii_lowercase().as_str() {
                "refuse" => true,
                "silent" => false,
                _ => {
                    return Err(invalid(
                        "AI_OVER_BUDGET",
                        &choice,
                        "expected refuse or silent",
                    ));
                }
            };
        }
        Ok(())
    }
}

impl Config {
    /// Loads defaults, then the config file, then the environment.
    ///
    /// `file` names the config file; when `None`, `waddlebot.toml` in the working directory is
    /// read if it exists. `env` looks up an environment variable (pass
    /// `|key| std::env::var(key).ok()`; tests pass a map).
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        let named = file
            .map(Path::to_path_buf)
            .or_else(|| env("WADDLEBOT_CONFIG").map(PathBuf::from));
        match named {
            Some(path) => config.apply_file(&path)?,
            None => {
                let default = Path::new(DEFAULT_CONFIG_FILE);
                if default.exists() {
                    config.apply_file(default)?;
                }
            }
        }
        config.apply_env(env)?;
        Ok(config)
    }

    fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: FileConfig = toml::from_str(&text).map_err(|err| ConfigError::Parse {
            path: path.to_owned(),
            message: err.to_string().trim().to_owned(),
        })?;
        if let Some(url) = file.database_url {
            self.set_database_url("database_url", &url)?;
        }
        if let Some(bind) = file.bind {
            self.set_bind("bind", &bind)?;
        }
        if let Some(bytes) = file.max_body_bytes {
            self.set_max_body("max_body_bytes", bytes)?;
        }
        if let Some(level) = file.log_level {
            check_log_level("log_level", &level)?;
            self.log_level = level;
        }
        if let Some(json) = file.log_json {
            self.log_format = if json {
                LogFormat::Json
            } else {
                LogFormat::Text
            };
        }
        if let Some(format) = file.log_format {
            self.log_format = format
                .parse()
                .map_err(|reason: String| invalid("log_format", &format, reason))?;
        }
        if let Some(allow) = file.allow_private_targets {
            self.allow_private_targets = allow;
        }
        if let Some(max) = file.admin_rate_limit_per_minute {
            self.http.admin_rate_per_minute = max;
        }
        if let Some(origins) = file.cors_origins {
            self.set_cors_origins("cors_origins", origins)?;
        }
        if let Some(secs) = file.http_request_timeout_secs {
            self.http.request_timeout = positive_secs("http_request_timeout_secs", secs)?;
        }
        if let Some(migrate) = file.migrate_on_start {
            self.migrate_on_start = migrate;
        }
        if let Some(prefixes) = file.command_prefixes {
            self.set_prefixes("command_prefixes", prefixes)?;
        }
        if let Some(prefix) = file.remote_prefix {
            self.set_remote_prefix("remote_prefix", &prefix)?;
        }
        if let Some(secs) = file.request_timeout_secs {
            self.router.handler_timeout = positive_secs("request_timeout_secs", secs)?;
        }
        if let Some(secs) = file.command_cache_ttl_secs {
            self.router.cache_ttl.command = positive_secs("command_cache_ttl_secs", secs)?;
        }
        if let Some(secs) = file.entity_cache_ttl_secs {
            self.router.cache_ttl.entity = positive_secs("entity_cache_ttl_secs", secs)?;
        }
        if let Some(url) = file.redis_url {
            self.set_redis_url("redis_url", &url)?;
        }
        if let Some(prefix) = file.redis_prefix {
            self.redis_prefix = prefix;
        }
        if let Some(max) = file.rate_limit_per_minute {
            self.router.policy.user_rate = per_minute("rate_limit_per_minute", max)?;
        }
        if let Some(max) = file.community_rate_limit_per_minute {
            self.router.policy.community_rate = community_rate(max);
        }
        if let Some(level) = file.cooldown_exempt_level {
            self.set_cooldown_exempt("cooldown_exempt_level", &level)?;
        }
        Ok(())
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let get = |key: &str| env(key).filter(|v| !v.trim().is_empty());
        if let Some(url) = get("DATABASE_URL") {
            self.set_database_url("DATABASE_URL", &url)?;
        } else if let Some(host) = get("DATABASE_HOST") {
            // The original's separate variables; the password is percent-encoded into the URL.
            let port = get("DATABASE_PORT").unwrap_or_else(|| "5432".to_owned());
            let name = get("DATABASE_NAME").unwrap_or_else(|| "waddlebot".to_owned());
            let user = get("DATABASE_USER").unwrap_or_else(|| "waddlebot".to_owned());
            let mut url = url::Url::parse(&format!("postgres://{host}:{port}/{name}"))
                .map_err(|err| invalid("DATABASE_HOST", &host, err.to_string()))?;
            let credentials = url
                .set_username(&user)
                .and_then(|()| url.set_password(get("DATABASE_PASSWORD").as_deref()));
            if credentials.is_err() {
                return Err(invalid("DATABASE_USER", &user, "cannot be used in a URL"));
            }
            self.database_url = url.to_string();
        }
        if let Some(url) = get("READ_REPLICA_URL") {
            if !(url.starts_with("postgres:") || url.starts_with("postgresql:")) {
                return Err(invalid(
                    "READ_REPLICA_URL",
                    &redact_url(&url),
                    "expected a postgres:// URL",
                ));
            }
            self.read_replica_url = Some(url);
        }
        if let Some(value) = get("ROUTER_MAX_WORKERS") {
            self.db_max_connections = value
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "ROUTER_MAX_WORKERS",
                        &value,
                        "expected 1 to 1000 connections",
                    )
                })?;
        }
        if let Some(bind) = get("WADDLEBOT_BIND") {
            self.set_bind("WADDLEBOT_BIND", &bind)?;
        }
        if let Some(port) = get("MODULE_PORT") {
            let parsed: u16 = port
                .trim()
                .parse()
                .map_err(|_| invalid("MODULE_PORT", &port, "expected a port number 0-65535"))?;
            self.bind.set_port(parsed);
        }
        if let Some(bytes) = get("MAX_BODY_BYTES") {
            let parsed = bytes
                .trim()
                .parse()
                .map_err(|_| invalid("MAX_BODY_BYTES", &bytes, "expected a number of bytes"))?;
            self.set_max_body("MAX_BODY_BYTES", parsed)?;
        }
        if let Some(level) = get("LOG_LEVEL") {
            check_log_level("LOG_LEVEL", &level)?;
            self.log_level = level.to_lowercase();
        }
        if let Some(dir) = get("LOG_DIR").filter(|d| !d.trim().is_empty()) {
            self.logs.dir = Some(PathBuf::from(dir.trim()));
        }
        if let Some(n) = number(&get, "LOG_MAX_BYTES", 1024..=(1 << 40))? {
            self.logs.max_bytes = n;
        }
        if let Some(n) = number(&get, "LOG_BACKUP_COUNT", 0..=1000)? {
            self.logs.files_kept = n;
        }
        if let Some(name) = get("MODULE_NAME") {
            let name = name.trim();
            if name.is_empty()
                || name.len() > 64
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(invalid(
                    "MODULE_NAME",
                    name,
                    "expected 1 to 64 letters, digits, '-', '_' or '.' (it names the log file)",
                ));
            }
            self.logs.module_name = name.to_owned();
        }
        if let Some(version) = get("MODULE_VERSION").filter(|v| !v.trim().is_empty()) {
            self.logs.module_version = version.trim().to_owned();
        }
        let syslog_on = match get("ENABLE_SYSLOG") {
            Some(value) => parse_flag("ENABLE_SYSLOG", &value)?,
            None => false,
        };
        if syslog_on {
            let facility = get("SYSLOG_FACILITY").unwrap_or_else(|| "local0".to_owned());
            if facility.parse::<syslog::Facility>().is_err() {
                return Err(invalid(
                    "SYSLOG_FACILITY",
                    &facility,
                    "expected a facility: kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, local0 … local7",
                ));
            }
            self.logs.syslog = Some(SyslogSettings {
                host: get("SYSLOG_HOST").unwrap_or_else(|| "localhost".to_owned()),
                port: number(&get, "SYSLOG_PORT", 1..=65535)?.unwrap_or(514),
                facility: facility.to_lowercase(),
            });
        }
        if let Some(value) = get("WADDLEBOT_MIGRATE") {
            self.migrate_on_start = parse_flag("WADDLEBOT_MIGRATE", &value)?;
        }
        if let Some(format) = get("LOG_FORMAT") {
            self.log_format = format
                .parse()
                .map_err(|reason: String| invalid("LOG_FORMAT", &format, reason))?;
        }
        if let Some(value) = get("ROUTER_ALLOW_PRIVATE_TARGETS") {
            self.allow_private_targets = parse_flag("ROUTER_ALLOW_PRIVATE_TARGETS", &value)?;
        }
        if let Some(value) = get("ROUTER_ALLOWED_TARGETS") {
            self.allowed_targets = networks("ROUTER_ALLOWED_TARGETS", &value)?;
        }
        if let Some(value) = get("WADDLEBOT_TRUSTED_PROXIES") {
            self.http.trusted_proxies = networks("WADDLEBOT_TRUSTED_PROXIES", &value)?;
        }
        if let Some(n) = number(&get, "ROUTER_MAX_RULES", 1..=10_000)? {
            self.router.max_rules_per_community = n;
        }
        if let Some(n) = number(&get, "WADDLEBOT_MAX_CONNECTIONS", 1..=1_000_000)? {
            self.http.max_connections = n;
        }
        if let Some(n) = number(&get, "WADDLEBOT_FIRST_BYTE_TIMEOUT", 1..=3_600)? {
            self.http.first_byte_timeout = Duration::from_secs(n);
        }
        if let Some(n) = number(&get, "WADDLEBOT_IDLE_TIMEOUT", 1..=86_400)? {
            self.http.idle_timeout = Duration::from_secs(n);
        }
        if let Some(models) = get("AI_API_MODELS") {
            self.ai_api.models = models
                .split(',')
                .map(|m| m.trim().to_owned())
                .filter(|m| !m.is_empty())
                .collect();
        }
        if let Some(n) = number(&get, "AI_API_MAX_TOKENS", 1..=1_000_000)? {
            self.ai_api.max_tokens = n;
        }
        if let Some(n) = number(&get, "AI_API_REQUESTS_PER_MINUTE", 0..=1_000_000)? {
            self.ai_api.requests_per_minute = n;
        }
        if let Some(n) = number(&get, "AI_API_TOKENS_PER_MINUTE", 0..=100_000_000)? {
            self.ai_api.tokens_per_minute = n;
        }
        if let Some(value) = get("WADDLEBOT_ADMIN_RATE_LIMIT") {
            self.http.admin_rate_per_minute = value.trim().parse().map_err(|_| {
                invalid(
                    "WADDLEBOT_ADMIN_RATE_LIMIT",
                    &value,
                    "expected requests per minute per client, 0 for none",
                )
            })?;
        }
        if let Some(value) = get("WADDLEBOT_FAILED_AUTH_LIMIT") {
            self.http.failed_auth_per_minute = value.trim().parse().map_err(|_| {
                invalid(
                    "WADDLEBOT_FAILED_AUTH_LIMIT",
                    &value,
                    "expected failed authentications per minute per address, 0 for none",
                )
            })?;
        }
        if let Some(value) = get("WADDLEBOT_CORS_ORIGINS") {
            let origins = value.split(',').map(|o| o.trim().to_owned()).collect();
            self.set_cors_origins("WADDLEBOT_CORS_ORIGINS", origins)?;
        }
        if let Some(value) = get("WADDLEBOT_REQUEST_TIMEOUT") {
            let secs: u64 = value.trim().parse().map_err(|_| {
                invalid(
                    "WADDLEBOT_REQUEST_TIMEOUT",
                    &value,
                    "expected a whole number of seconds",
                )
            })?;
            self.http.request_timeout = positive_secs("WADDLEBOT_REQUEST_TIMEOUT", secs)?;
        }
        if let Some(value) = get("WADDLEBOT_JWT_PUBLIC_KEYS") {
            self.jwt_public_keys = value
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect();
        }
        if let Some(prefixes) = get("WADDLEBOT_COMMAND_PREFIXES") {
            let list = prefixes.split(',').map(|p| p.trim().to_owned()).collect();
            self.set_prefixes("WADDLEBOT_COMMAND_PREFIXES", list)?;
        }
        if let Some(prefix) = get("WADDLEBOT_REMOTE_PREFIX") {
            self.set_remote_prefix("WADDLEBOT_REMOTE_PREFIX", &prefix)?;
        }
        if let Some(url) = get("REDIS_URL") {
            self.set_redis_url("REDIS_URL", &url)?;
        } else if let Some(host) = get("REDIS_HOST") {
            let port = get("REDIS_PORT").unwrap_or_else(|| "6379".to_owned());
            let db = get("REDIS_DB").unwrap_or_else(|| "0".to_owned());
            let auth = get("REDIS_PASSWORD").map_or_else(String::new, |p| format!(":{p}@"));
            self.set_redis_url("REDIS_HOST", &format!("redis://{auth}{host}:{port}/{db}"))?;
        }
        self.platforms = crate::platforms::PlatformSettings::from_env(get)?;
        self.ai = waddlebot_ai::AiSettings::from_env(get).map_err(|err| ConfigError::Invalid {
            key: err.key,
            value: err.value,
            reason: err.reason,
        })?;
        self.read_ai_chat(&get)?;
        self.services.read(&get)?;
        if let Some(public) = get("WADDLEBOT_PUBLIC_URL") {
            if url::Url::parse(&public).is_err() {
                return Err(invalid("WADDLEBOT_PUBLIC_URL", &public, "expected a URL"));
            }
            self.public_url = Some(public.trim_end_matches('/').to_owned());
        }
        if let Some(secret) = get("WADDLEBOT_JWT_SECRET") {
            if secret.len() < crate::auth::MIN_SECRET_BYTES {
                return Err(invalid(
                    "WADDLEBOT_JWT_SECRET",
                    "***",
                    format!(
                        "must be at least {} bytes (try: openssl rand -hex 32)",
                        crate::auth::MIN_SECRET_BYTES
                    ),
                ));
            }
            self.jwt_secret = Some(Secret(secret));
        }
        if let Some(issuer) = get("WADDLEBOT_JWT_ISSUER") {
            self.jwt_issuer = issuer;
        }
        if let Some(audience) = get("WADDLEBOT_JWT_AUDIENCE") {
            self.jwt_audience = audience;
        }
        if let Some(prefix) = get("REDIS_PREFIX") {
            self.redis_prefix = prefix;
        }
        if let Some(value) = get("ROUTER_DEFAULT_RATE_LIMIT") {
            let max = value.trim().parse().map_err(|_| {
                invalid(
                    "ROUTER_DEFAULT_RATE_LIMIT",
                    &value,
                    "expected uses per minute",
                )
            })?;
            self.router.policy.user_rate = per_minute("ROUTER_DEFAULT_RATE_LIMIT", max)?;
        }
        if let Some(value) = get("ROUTER_COMMUNITY_RATE_LIMIT") {
            let max = value.trim().parse().map_err(|_| {
                invalid(
                    "ROUTER_COMMUNITY_RATE_LIMIT",
                    &value,
                    "expected uses per minute, 0 for none",
                )
            })?;
            self.router.policy.community_rate = community_rate(max);
        }
        if let Some(level) = get("ROUTER_COOLDOWN_EXEMPT") {
            self.set_cooldown_exempt("ROUTER_COOLDOWN_EXEMPT", &level)?;
        }
        if let Some(value) = get("ROUTER_MAX_CONCURRENT") {
            let max: usize = value
                .trim()
                .parse()
                .map_err(|_| invalid("ROUTER_MAX_CONCURRENT", &value, "expected a whole number"))?;
            if max == 0 {
                return Err(invalid(
                    "ROUTER_MAX_CONCURRENT",
                    &value,
                    "must be at least 1",
                ));
            }
            self.router.max_concurrent = max;
        }
        self.apply_original_settings(&get)?;
        for (key, slot) in [
            ("ROUTER_REQUEST_TIMEOUT", &mut self.router.handler_timeout),
            (
                "ROUTER_COMMAND_CACHE_TTL",
                &mut self.router.cache_ttl.command,
            ),
            ("ROUTER_ENTITY_CACHE_TTL", &mut self.router.cache_ttl.entity),
        ] {
            if let Some(value) = get(key) {
                let secs: u64 = value
                    .trim()
                    .parse()
                    .map_err(|_| invalid(key, &value, "expected a whole number of seconds"))?;
                *slot = positive_secs(key, secs)?;
            }
        }
        Ok(())
    }

    /// The original's settings that have no `WADDLEBOT_`/`ROUTER_` name of their own: each is
    /// honoured (the more specific name wins where both are given) or refused with what to use
    /// instead; none is ignored.
    fn apply_original_settings(
        &mut self,
        get: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let secs = |key: &str, range: std::ops::RangeInclusive<u64>| {
            number(get, key, range).map(|n| n.map(Duration::from_secs))
        };
        if let Some(ttl) = secs("SESSION_TTL", 60..=7 * 24 * 3600)? {
            self.router.session_ttl = ttl;
        }
        if let Some(prefix) = get("SESSION_PREFIX") {
            if self.redis_url.is_none() {
                return Err(invalid(
                    "SESSION_PREFIX",
                    &prefix,
                    "sessions are kept in this process without Redis; set REDIS_URL (sessions \
                     are then shared under this prefix) or remove SESSION_PREFIX",
                ));
            }
            self.session_prefix = Some(prefix);
        }
        // The original's AI module waited REQUEST_TIMEOUT seconds for an answer.
        if let Some(timeout) = secs("REQUEST_TIMEOUT", 1..=300)? {
            self.ai_chat.timeout = timeout;
        }
        // The original's labels and inventory modules cached reads for CACHE_TTL seconds.
        if let Some(ttl) = secs("CACHE_TTL", 1..=86_400)? {
            if get("ROUTER_COMMAND_CACHE_TTL").is_none() {
                self.router.cache_ttl.command = ttl;
            }
            self.router.cache_ttl.module = ttl;
        }
        // The original's MAX_WORKERS sized its pool of database workers.
        if let Some(workers) = number(get, "MAX_WORKERS", 1..=1000)?
            && get("ROUTER_MAX_WORKERS").is_none()
        {
            self.db_max_connections = workers;
        }
        for key in ["CORE_API_URL", "ROUTER_API_URL"] {
            if let Some(url) = get(key) {
                return Err(invalid(
                    key,
                    &redact_url(&url),
                    format!(
                        "the router and the core are this one process: collectors send events to \
                         http://{}/router/events (WADDLEBOT_BIND, WADDLEBOT_PUBLIC_URL); remove {key}",
                        self.bind
                    ),
                ));
            }
        }
        for key in [
            "AWS_REGION",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "LAMBDA_FUNCTION_PREFIX",
        ] {
            if let Some(value) = get(key) {
                let shown = if key.contains("SECRET") {
                    "***"
                } else {
                    value.as_str()
                };
                return Err(invalid(
                    key,
                    shown,
                    "AWS Lambda modules are not supported yet: register the function behind an \
                     HTTPS endpoint as a webhook remote module, and remove the AWS_* and \
                     LAMBDA_FUNCTION_PREFIX settings",
                ));
            }
        }
        Ok(())
    }

    /// Sets the origins browsers may call the API from: `*`, or `scheme://host[:port]` each.
    pub fn set_cors_origins(&mut self, key: &str, origins: Vec<String>) -> Result<(), ConfigError> {
        let origins: Vec<String> = origins.into_iter().filter(|o| !o.is_empty()).collect();
        for origin in &origins {
            let usable = origin == "*"
                || url::Url::parse(origin).is_ok_and(|url| {
                    matches!(url.scheme(), "http" | "https")
                        && url.host().is_some()
                        && url.path() == "/"
                        && !origin.ends_with('/')
                });
            if !usable {
                return Err(invalid(
                    key,
                    origin,
                    "expected * or an origin like https://dash.example.com (no path)",
                ));
            }
        }
        self.http.cors_origins = origins;
        Ok(())
    }

    /// Sets the database URL from a flag or setting. A bare path means a SQLite file.
    pub fn set_database_url(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(invalid(key, value, "must not be empty"));
        }
        self.database_url = if value.starts_with("sqlite:")
            || value.starts_with("postgres:")
            || value.starts_with("postgresql:")
        {
            value.to_owned()
        } else if value.contains("://") {
            return Err(invalid(
                key,
                &redact_url(value),
                "unknown database scheme; expected sqlite:, postgres: or a file path",
            ));
        } else {
            format!("sqlite://{value}")
        };
        Ok(())
    }

    /// Sets the listen address from a flag or setting.
    pub fn set_bind(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        self.bind = value.trim().parse().map_err(|_| {
            invalid(
                key,
                value,
                "expected IP:PORT, like 127.0.0.1:8000 or [::1]:8000",
            )
        })?;
        Ok(())
    }

    fn set_max_body(&mut self, key: &str, bytes: usize) -> Result<(), ConfigError> {
        if !(1024..=64 * 1024 * 1024).contains(&bytes) {
            return Err(invalid(
                key,
                &bytes.to_string(),
                "must be between 1024 and 67108864 bytes",
            ));
        }
        self.max_body_bytes = bytes;
        Ok(())
    }

    fn set_prefixes(&mut self, key: &str, prefixes: Vec<String>) -> Result<(), ConfigError> {
        let shown = prefixes.join(",");
        if prefixes.is_empty() {
            return Err(invalid(key, &shown, "at least one prefix is needed"));
        }
        for prefix in &prefixes {
            if prefix.is_empty()
                || prefix.chars().count() > 3
                || prefix.contains(char::is_whitespace)
            {
                return Err(invalid(
                    key,
                    &shown,
                    "each prefix must be 1 to 3 characters without spaces",
                ));
            }
        }
        self.router.prefixes = prefixes;
        Ok(())
    }

    fn set_remote_prefix(&mut self, key: &str, prefix: &str) -> Result<(), ConfigError> {
        let prefix = prefix.trim();
        if prefix.is_empty() || prefix.chars().count() > 3 {
            return Err(invalid(
                key,
                prefix,
                "must be 1 to 3 characters without spaces",
            ));
        }
        if self.router.prefixes.iter().any(|p| p == prefix) {
            return Err(invalid(key, prefix, "is already a local command prefix"));
        }
        self.router.remote_prefix = prefix.to_owned();
        Ok(())
    }

    fn set_redis_url(&mut self, key: &str, url: &str) -> Result<(), ConfigError> {
        let url = url.trim();
        if !(url.starts_with("redis://")
            || url.starts_with("rediss://")
            || url.starts_with("redis+unix://"))
        {
            return Err(invalid(key, &redact_url(url), "expected a redis:// URL"));
        }
        self.redis_url = Some(url.to_owned());
        Ok(())
    }

    fn set_cooldown_exempt(&mut self, key: &str, level: &str) -> Result<(), ConfigError> {
        self.router.policy.cooldown_exempt =
            match level.trim().to_lowercase().as_str() {
                "" | "none" | "nobody" => None,
                other => Some(other.parse().map_err(
                    |err: waddlebot::UnknownPermissionLevel| invalid(key, level, err.to_string()),
                )?),
            };
        Ok(())
    }

    /// The cache lifetimes in force.
    pub fn cache_ttl(&self) -> CacheTtl {
        self.router.cache_ttl
    }
}

fn per_minute(key: &str, max: u32) -> Result<RateLimit, ConfigError> {
    if max == 0 {
        return Err(invalid(key, "0", "must be at least 1 use per minute"));
    }
    Ok(RateLimit::per_secs(max, 60))
}

/// A community limit per minute; 0 turns it off.
fn community_rate(max: u32) -> Option<RateLimit> {
    (max > 0).then(|| RateLimit::per_secs(max, 60))
}

/// A whole number within `range`, when the variable is set.
fn number<T>(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    range: std::ops::RangeInclusive<T>,
) -> Result<Option<T>, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    get(key)
        .map(|value| match value.trim().parse::<T>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(invalid(
                key,
                &value,
                format!(
                    "expected a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            )),
        })
        .transpose()
}

/// Addresses and CIDR ranges, comma-separated (`10.0.5.0/24, 192.0.2.7`).
fn networks(key: &str, value: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<ipnet::IpNet>()
                .or_else(|_| part.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    invalid(
                        key,
                        value,
                        format!("'{part}' is not an address or CIDR range"),
                    )
                })
        })
        .collect()
}

fn positive_secs(key: &str, secs: u64) -> Result<Duration, ConfigError> {
    if secs == 0 {
        return Err(invalid(key, "0", "must be at least 1 second"));
    }
    Ok(Duration::from_secs(secs))
}

pub use waddlebot::store::redact_url;

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |key| map.get(key).cloned()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), text).expect("written");
        file
    }

    #[test]
    fn defaults_are_the_embedded_sqlite_file_on_loopback() {
        let config = Config::load(Some(file("").path()), env(&[])).expect("valid");
        assert_eq!(config.database_url, "sqlite://waddlebot.db");
        assert_eq!(config.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(config.router.prefixes, ["!"]);
        assert_eq!(config.router.remote_prefix, "#");
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let toml = file(
            "database_url = \"sqlite://from-file.db\"\nbind = \"127.0.0.1:9000\"\nrequest_timeout_secs = 5\n",
        );
        let config = Config::load(
            Some(toml.path()),
            env(&[
                ("DATABASE_URL", "/tmp/from-env.db"),
                ("MODULE_PORT", "8123"),
            ]),
        )
        .expect("valid");
        assert_eq!(config.database_url, "sqlite:///tmp/from-env.db");
        assert_eq!(config.bind.to_string(), "127.0.0.1:8123");
        assert_eq!(config.router.handler_timeout, Duration::from_secs(5));
    }

    #[test]
    fn invalid_values_name_the_key_and_the_reason() {
        let err = Config::load(Some(file("").path()), env(&[("MODULE_PORT", "eighty")]))
            .expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "invalid MODULE_PORT = 'eighty': expected a port number 0-65535"
        );
        let err = Config::load(
            Some(file("").path()),
            env(&[("ROUTER_COMMAND_CACHE_TTL", "0")]),
        )
        .expect_err("invalid");
        assert!(
            err.to_string().contains("ROUTER_COMMAND_CACHE_TTL"),
            "{err}"
        );
    }

    #[test]
    fn log_settings_are_the_originals_and_checked() {
        let config = Config::load(
            Some(file("").path()),
            env(&[
                ("LOG_LEVEL", "warn,waddlebot_router=debug"),
                ("LOG_DIR", "/var/log/waddlebotlog"),
                ("ENABLE_SYSLOG", "true"),
                ("SYSLOG_HOST", "logs.internal"),
                ("MODULE_NAME", "router"),
                ("MODULE_VERSION", "2.0.1"),
            ]),
        )
        .expect("valid");
        assert_eq!(config.log_level, "warn,waddlebot_router=debug");
        let logs = &config.logs;
        assert_eq!(
            logs.dir.as_deref(),
            Some(Path::new("/var/log/waddlebotlog"))
        );
        assert_eq!((logs.max_bytes, logs.files_kept), (10 * 1024 * 1024, 5));
        assert_eq!(
            logs.syslog,
            Some(SyslogSettings {
                host: "logs.internal".to_owned(),
                port: 514,
                facility: "local0".to_owned()
            })
        );
        assert_eq!(
            (logs.module_name.as_str(), logs.module_version.as_str()),
            ("router", "2.0.1")
        );
        for (key, value) in [
            ("LOG_LEVEL", "loud"),
            ("LOG_LEVEL", "waddlebot=[bad"),
            ("LOG_MAX_BYTES", "ten"),
            ("MODULE_NAME", "../etc"),
            ("ENABLE_SYSLOG", "maybe"),
        ] {
            let err =
                Config::load(Some(file("").path()), env(&[(key, value)])).expect_err("invalid");
            assert!(err.to_string().contains(key), "{key}={value}: {err}");
        }
        let err = Config::load(
            Some(file("").path()),
            env(&[("ENABLE_SYSLOG", "1"), ("SYSLOG_FACILITY", "local9")]),
        )
        .expect_err("invalid");
        assert!(err.to_string().contains("SYSLOG_FACILITY"), "{err}");
    }

    #[test]
    fn the_originals_other_settings_are_honoured_or_refused() {
        let config = Config::load(
            Some(file("").path()),
            env(&[
                ("SESSION_TTL", "600"),
                ("REDIS_URL", "redis://cache:6379/0"),
                ("SESSION_PREFIX", "bot:session:"),
                ("REQUEST_TIMEOUT", "12"),
                ("CACHE_TTL", "90"),
                ("MAX_WORKERS", "7"),
            ]),
        )
        .expect("valid");
        assert_eq!(config.router.session_ttl, Duration::from_secs(600));
        assert_eq!(config.session_prefix.as_deref(), Some("bot:session:"));
        assert_eq!(config.ai_chat.timeout, Duration::from_secs(12));
        assert_eq!(config.router.cache_ttl.command, Duration::from_secs(90));
        assert_eq!(config.router.cache_ttl.module, Duration::from_secs(90));
        assert_eq!(config.db_max_connections, 7);
        // The specific names win over the original's general ones.
        let config = Config::load(
            Some(file("").path()),
            env(&[
                ("CACHE_TTL", "90"),
                ("ROUTER_COMMAND_CACHE_TTL", "30"),
                ("MAX_WORKERS", "7"),
                ("ROUTER_MAX_WORKERS", "9"),
            ]),
        )
        .expect("valid");
        assert_eq!(config.router.cache_ttl.command, Duration::from_secs(30));
        assert_eq!(config.db_max_connections, 9);
        for (key, value, says) in [
            ("SESSION_PREFIX", "bot:session:", "REDIS_URL"),
            ("SESSION_TTL", "5", "SESSION_TTL"),
            ("CORE_API_URL", "http://core:8000", "/router/events"),
            (
                "ROUTER_API_URL",
                "http://router:8000/api/v1/router",
                "/router/events",
            ),
            ("AWS_SECRET_ACCESS_KEY", "very-secret", "not supported yet"),
            (
                "LAMBDA_FUNCTION_PREFIX",
                "waddlebot-",
                "webhook remote module",
            ),
        ] {
            let err =
                Config::load(Some(file("").path()), env(&[(key, value)])).expect_err("refused");
            let text = err.to_string();
            assert!(text.contains(key) && text.contains(says), "{key}: {text}");
            assert!(!text.contains("very-secret"), "{text}");
        }
    }

    #[test]
    fn ai_settings_come_from_the_originals_variables() {
        let config = Config::load(
            Some(file("").path()),
            env(&[
                ("AI_PROVIDER", "ollama"),
                ("OLLAMA_HOST", "gpu"),
                ("SYSTEM_PROMPT", "Be a penguin."),
                ("QUESTION_TRIGGERS", "?, how"),
                ("CONTEXT_HISTORY_LIMIT", "3"),
                ("AI_OVER_BUDGET", "silent"),
                ("TWITCH_BOT_NICK", "@PenguBot"),
            ]),
        )
        .expect("valid");
        assert!(config.ai.is_some());
        assert_eq!(config.ai_chat.system_prompt, "Be a penguin.");
        assert_eq!(config.ai_chat.question_triggers, ["?", "how"]);
        assert_eq!(config.ai_chat.context_messages, 3);
        assert!(!config.ai_chat.refuse_over_budget);
        assert_eq!(config.ai_chat.bot_name, "PenguBot");
        let err = Config::load(
            Some(file("").path()),
            env(&[("CONTEXT_HISTORY_LIMIT", "500")]),
        )
        .expect_err("out of range");
        assert!(err.to_string().contains("0 to 50"), "{err}");
    }

    #[test]
    fn redis_and_limits_come_from_the_originals_variables() {
        let config = Config::load(
            Some(file("").path()),
            env(&[
                ("REDIS_HOST", "cache"),
                ("REDIS_PASSWORD", "s3cret"),
                ("REDIS_DB", "2"),
                ("ROUTER_DEFAULT_RATE_LIMIT", "30"),
                ("ROUTER_COMMUNITY_RATE_LIMIT", "0"),
                ("ROUTER_COOLDOWN_EXEMPT", "mod"),
            ]),
        )
        .expect("valid");
        assert_eq!(
            config.redis_url.as_deref(),
            Some("redis://:s3cret@cache:6379/2")
        );
        assert_eq!(config.router.policy.user_rate, RateLimit::per_secs(30, 60));
        assert_eq!(config.router.policy.community_rate, None);
        assert_eq!(
            config.router.policy.cooldown_exempt,
            Some(waddlebot::PermissionLevel::Moderator)
        );
        let err = Config::load(Some(file("").path()), env(&[("REDIS_URL", "http://x")]))
            .expect_err("not redis");
        assert!(err.to_string().contains("REDIS_URL"), "{err}");
    }

    #[test]
    fn http_policy_log_format_and_token_keys_come_from_the_environment() {
        let config = Config::load(
            Some(file("").path()),
            env(&[
                (
                    "WADDLEBOT_CORS_ORIGINS",
                    "https://dash.example, http://localhost:3000",
                ),
                ("WADDLEBOT_ADMIN_RATE_LIMIT", "0"),
                ("WADDLEBOT_FAILED_AUTH_LIMIT", "5"),
                ("WADDLEBOT_REQUEST_TIMEOUT", "12"),
                ("ROUTER_ALLOW_PRIVATE_TARGETS", "yes"),
                ("LOG_FORMAT", "AAA"),
                ("WADDLEBOT_JWT_PUBLIC_KEYS", "/keys/a.pem,/keys/b.pem"),
            ]),
        )
        .expect("valid");
        assert_eq!(
            config.http.cors_origins,
            ["https://dash.example", "http://localhost:3000"]
        );
        assert_eq!(config.http.admin_rate_per_minute, 0);
        assert_eq!(config.http.failed_auth_per_minute, 5);
        assert_eq!(config.http.request_timeout, Duration::from_secs(12));
        assert!(config.allow_private_targets);
        assert_eq!(config.log_format, LogFormat::Aaa);
        assert_eq!(config.jwt_public_keys.len(), 2);
        for (key, value, words) in [
            (
                "WADDLEBOT_CORS_ORIGINS",
                "https://dash.example/path",
                "no path",
            ),
            ("WADDLEBOT_CORS_ORIGINS", "dash.example", "no path"),
            ("LOG_FORMAT", "xml", "text, json or aaa"),
            (
                "WADDLEBOT_REQUEST_TIMEOUT",
                "0",
                "WADDLEBOT_REQUEST_TIMEOUT",
            ),
            ("WADDLEBOT_FAILED_AUTH_LIMIT", "many", "per address"),
            ("ROUTER_ALLOW_PRIVATE_TARGETS", "maybe", "true or false"),
        ] {
            let err =
                Config::load(Some(file("").path()), env(&[(key, value)])).expect_err("refused");
            assert!(err.to_string().contains(words), "{key}={value}: {err}");
        }
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        let err =
            Config::load(Some(file("databse_url = \"x\"\n").path()), env(&[])).expect_err("typo");
        assert!(err.to_string().contains("databse_url"), "{err}");
    }

    #[test]
    fn a_missing_named_file_is_an_error() {
        let err = Config::load(Some(Path::new("/nonexistent/waddlebot.toml")), env(&[]))
            .expect_err("missing");
        assert!(
            err.to_string().contains("/nonexistent/waddlebot.toml"),
            "{err}"
        );
    }

    #[test]
    fn passwords_never_reach_error_messages() {
        let err = Config::load(
            Some(file("").path()),
            env(&[("DATABASE_URL", "mysql://bot:hunter2@db/waddlebot")]),
        )
        .expect_err("not a supported scheme");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.to_string().contains("bot:***@db"), "{err}");
    }

    #[test]
    fn the_originals_database_variables_make_a_postgres_url() {
        let config = Config::load(
            Some(file("").path()),
            env(&[
                ("DATABASE_HOST", "db.internal"),
                ("DATABASE_PASSWORD", "p@ss/word"),
                ("ROUTER_MAX_WORKERS", "40"),
                ("READ_REPLICA_URL", "postgres://reader@replica/waddlebot"),
            ]),
        )
        .expect("valid");
        assert_eq!(
            config.database_url,
            "postgres://waddlebot:p%40ss%2Fword@db.internal:5432/waddlebot"
        );
        assert_eq!(config.db_max_connections, 40);
        assert_eq!(
            config.read_replica_url.as_deref(),
            Some("postgres://reader@replica/waddlebot")
        );
    }
}

#[cfg(test)]
mod settings_table {
    use std::cell::RefCell;
    use std::collections::{BTreeSet, HashMap};

    use super::*;

    /// Every environment variable the configuration reads, found by loading it with an
    /// environment that records what it is asked for: once empty, once with every part switched
    /// on (syslog, Redis, each AI provider, each platform), so the settings read only then are
    /// asked for too.
    fn names_read() -> BTreeSet<String> {
        let on: HashMap<&str, &str> = HashMap::from([
            ("ENABLE_SYSLOG", "true"),
            ("REDIS_URL", "redis://cache:6379/0"),
            ("AI_PROVIDER", "ollama,waddleai,openai"),
            ("WADDLEAI_API_KEY", "wa-key"),
            ("WADDLEAI_BASE_URL", "http://proxy:8000"),
            ("OPENAI_API_KEY", "sk-key"),
            ("DISCORD_PUBLIC_KEY", KEY_HEX),
            ("DISCORD_BOT_TOKEN", "token"),
            ("DISCORD_APPLICATION_ID", "1"),
            ("SLACK_SIGNING_SECRET", "secret"),
            ("SLACK_BOT_TOKEN", "xoxb-token"),
            ("TWITCH_CLIENT_ID", "client"),
            ("TWITCH_CLIENT_SECRET", "secret"),
            ("TWITCH_BOT_TOKEN", "token"),
            ("TWITCH_BOT_NICK", "bot"),
            ("TWITCH_CHANNELS", "pond"),
            ("EVENTSUB_SECRET", "a-secret-of-enough-length"),
            ("SPOTIFY_CLIENT_ID", "id"),
            ("SPOTIFY_CLIENT_SECRET", "secret"),
            ("YOUTUBE_API_KEY", "key"),
            ("DATABASE_HOST", "db"),
            ("REDIS_HOST", "cache"),
        ]);
        let asked = RefCell::new(BTreeSet::new());
        for values in [HashMap::new(), on] {
            let loaded = Config::load(Some(tests_file().path()), |key: &str| {
                asked.borrow_mut().insert(key.to_owned());
                values.get(key).map(|v| (*v).to_owned())
            });
            // A refused value would stop the load before the settings after it are asked for.
            if let Err(err) = loaded {
                panic!("the switched-on environment must load: {err}");
            }
        }
        asked.into_inner()
    }

    const KEY_HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn tests_file() -> tempfile::NamedTempFile {
        tempfile::NamedTempFile::new().expect("temp file")
    }

    #[test]
    fn every_setting_read_is_in_the_readme() {
        let readme = include_str!("../../README.md");
        let read = names_read();
        assert!(read.len() > 50, "{read:?}");
        let missing: Vec<&String> = read
            .iter()
            .filter(|name| {
                !readme.contains(&format!("`{name}`")) && !readme.contains(&format!("`{name}="))
            })
            .collect();
        assert!(
            missing.is_empty(),
            "settings the configuration reads that README.md does not name: {missing:?}"
        );
    }
}
