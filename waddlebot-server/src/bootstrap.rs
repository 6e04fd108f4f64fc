//! Wiring the standard bot from a [`Config`]: open the store, register the built-in modules and
//! the given platforms, build the router. The server and the CLI both start here.

use std::sync::Arc;

use waddlebot::clock::{Clock, SystemClock};
use waddlebot::store::{PgSettings, PgStore, PgStoreError, SqliteStore, SqliteStoreError};
use waddlebot::{Platform, Store};
use waddlebot_router::invalidation::RedisInvalidation;
use waddlebot_router::limit::{FallbackLimiter, RedisLimiter};
use waddlebot_router::session::RedisSessions;
use waddlebot_router::{BuildError, Router};

use crate::config::{Config, redact_url};

/// Why the bot could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The SQLite database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] SqliteStoreError),
    /// The PostgreSQL database could not be reached or migrated.
    #[error(transparent)]
    Postgres(#[from] PgStoreError),
    /// The router's wiring is wrong.
    #[error(transparent)]
    Router(#[from] BuildError),
    /// The Redis URL cannot be used.
    #[error("cannot use Redis: {0}")]
    Redis(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The AI provider cannot be set up (an unreadable CA file...).
    #[error("cannot set up the AI provider: {0}")]
    Ai(#[source] waddlebot::AiError),
    /// Authentication cannot be set up (the secret file cannot be read or written...).
    #[error("cannot set up authentication: {0}")]
    Auth(String),
    /// A setting that only works with another store or service was given without it.
    #[error("{0}")]
    Setting(String),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Opens the configured database: a new one is created, an older one is migrated forward only
/// when `migrate_on_start` is set, a newer one is refused.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    let upgrade = config.migrate_on_start;
    let store: Arc<dyn Store> = if is_postgres(&config.database_url) {
        let store = PgStore::connect(
            &config.database_url,
            config.read_replica_url.as_deref(),
            &pg_settings(config),
        )
        .await?;
        store.prepare(upgrade).await?;
        Arc::new(store)
    } else {
        if config.read_replica_url.is_some() {
            return Err(StartError::Setting(
                "READ_REPLICA_URL needs a PostgreSQL primary (DATABASE_URL=postgres://…); \
                 SQLite has no replicas: remove READ_REPLICA_URL"
                    .to_owned(),
            ));
        }
        let store = SqliteStore::connect(&config.database_url).await?;
        store.prepare(upgrade).await?;
        Arc::new(store)
    };
    tracing::info!(database = %redact_url(&config.database_url), "store ready");
    Ok(store)
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres:") || url.starts_with("postgresql:")
}

fn pg_settings(config: &Config) -> PgSettings {
    PgSettings {
        max_connections: config.db_max_connections,
        ..PgSettings::default()
    }
}

/// Applies pending migrations to the configured database without starting anything, and returns
/// how many were applied and the schema version now in force.
pub async fn migrate(config: &Config) -> Result<(usize, i64), StartError> {
    if is_postgres(&config.database_url) {
        let store = PgStore::connect(&config.database_url, None, &pg_settings(config)).await?;
        let applied = store.migrate().await?;
        return Ok((applied, PgStore::latest_schema_version()));
    }
    let store = SqliteStore::connect(&config.database_url).await?;
    let applied = store.migrate().await?;
    Ok((applied, SqliteStore::latest_schema_version()))
}

/// The configured AI provider (each behind a circuit breaker, several in a fallback chain), or
/// `None` when `AI_PROVIDER` is unset.
pub fn ai_provider(config: &Config) -> Result<Option<Arc<dyn waddlebot::AiProvider>>, StartError> {
    config
        .ai
        .as_ref()
        .map(|settings| settings.build().map_err(StartError::Ai))
        .transpose()
}

/// The standard bot: the configured store, every built-in module, the configured AI, and these
/// platforms.
pub async fn build_router(
    config: &Config,
    platforms: Vec<Arc<dyn Platform>>,
) -> Result<Router, StartError> {
    build_router_with_ai(
        config,
        platforms,
        waddlebot::AiSlot::new(ai_provider(config)?),
    )
    .await
}

/// [`build_router`] answering AI through `ai`, a slot shared with the HTTP AI endpoints (whose
/// `PUT /api/v1/ai/config` replaces the provider in it).
pub async fn build_router_with_ai(
    config: &Config,
    platforms: Vec<Arc<dyn Platform>>,
    ai: waddlebot::AiSlot,
) -> Result<Router, StartError> {
    let store = open_store(config).await?;
    let mut builder = Router::builder()
        .store(store)
        .config(config.router.clone())
        .allow_private_targets(config.allow_private_targets)
        .allow_targets(config.allowed_targets.iter().copied());
    if let Some(url) = &config.redis_url {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let redis = RedisLimiter::new(
            url,
            &format!("{}limit:", config.redis_prefix),
            Arc::clone(&clock),
        )
        .map_err(|err| StartError::Redis(Box::new(err)))?;
        builder = builder.limiter(Arc::new(FallbackLimiter::new(Arc::new(redis), clock)));
        let sessions = RedisSessions::new(
            url,
            config
                .session_prefix
                .as_deref()
                .unwrap_or(&format!("{}session:", config.redis_prefix)),
            config.router.session_ttl,
        )
        .map_err(|err| StartError::Redis(Box::new(err)))?;
        builder = builder.sessions(Arc::new(sessions));
        let bus = RedisInvalidation::new(url, &config.redis_prefix)
            .map_err(|err| StartError::Redis(Box::new(err)))?;
        builder = builder.invalidation(Arc::new(bus));
        tracing::info!(redis = %redact_url(url), "rate limits, cooldowns, sessions and cache invalidation shared through Redis");
    }
    let standard = waddlebot_modules::standard_modules_with(services(config));
    builder = builder.modules(standard.commands, standard.events);
    // `!ai` is always there (without a provider it says what to set); the chat and event side
    // listens only when there is a provider at start (one set later answers `!ai` and the API).
    let listens = ai.get().is_some();
    let ai = waddlebot_modules::AiChat::with_slot(ai, config.ai_chat.clone());
    builder = builder.handler(ai.clone());
    if listens {
        builder = builder.event_handler(ai.listener());
    }
    for platform in platforms {
        builder = builder.platform(platform);
    }
    Ok(builder.build()?)
}

/// The outside services the modules use, from the configuration (each `None` until set).
pub fn services(config: &Config) -> waddlebot_modules::Services {
    let settings = &config.services;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    waddlebot_modules::Services {
        creators: settings.twitch_app.as_ref().map(|(id, secret)| {
            Arc::new(waddlebot_modules::Helix::new(
                id,
                &secret.0,
                &settings.twitch_api_url,
                &settings.twitch_auth_url,
                http.clone(),
            )) as Arc<dyn waddlebot_modules::CreatorLookup>
        }),
        youtube: settings.youtube_api_key.as_ref().map(|key| {
            waddlebot_modules::YouTube::new(&key.0, &settings.youtube_api_url, http.clone())
        }),
        spotify: spotify(config, http),
    }
}

/// The Spotify client, when Spotify is configured (the server's OAuth callback uses it too).
pub fn spotify(config: &Config, http: reqwest::Client) -> Option<Arc<waddlebot_modules::Spotify>> {
    let settings = &config.services;
    settings.spotify.as_ref().map(|(id, secret)| {
        Arc::new(waddlebot_modules::Spotify::new(
            waddlebot_modules::SpotifySettings {
                client_id: id.clone(),
                client_secret: secret.0.clone(),
                redirect_url: settings
                    .spotify_redirect_url
                    .clone()
                    .unwrap_or_else(|| format!("{}/oauth/spotify/callback", config.public_url())),
                api_url: settings.spotify_api_url.clone(),
                accounts_url: settings.spotify_accounts_url.clone(),
            },
            http,
        ))
    })
}

/// Where the generated JWT secret lives: beside a SQLite database file, else in the working
/// directory.
pub fn jwt_secret_path(config: &Config) -> std::path::PathBuf {
    const FILE: &str = "waddlebot.jwt-secret";
    let url = config.database_url.as_str();
    let file = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or(rest))
        .filter(|path| !path.is_empty() && !path.contains(":memory:"));
    match file.and_then(|path| std::path::Path::new(path).parent()) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(FILE),
        _ => std::path::PathBuf::from(FILE),
    }
}

/// The JWT settings: the configured secret, else the one kept beside the database, generated
/// (file mode 0600) the first time when `create` is set. A known default is never used.
pub fn jwt_settings(config: &Config, create: bool) -> Result<crate::auth::JwtSettings, StartError> {
    if !config.jwt_public_keys.is_empty() {
        let keys = config
            .jwt_public_keys
            .iter()
            .map(|path| {
                let pem = std::fs::read(path).map_err(|err| {
                    StartError::Auth(format!(
                        "cannot read the RS256 public key {}: {err}",
                        path.display()
                    ))
                })?;
                let kid = path
                    .file_stem()
                    .and_then(|stem| stem.to_str())
                    .map(|stem| stem.trim_end_matches(".pub").to_owned())
                    .unwrap_or_default();
                Ok(crate::auth::RsaPublicKey { kid, pem })
            })
            .collect::<Result<Vec<_>, StartError>>()?;
        return Ok(crate::auth::JwtSettings {
            secret: Vec::new(),
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            rsa_public_keys: keys,
        });
    }
    let secret = match &config.jwt_secret {
        Some(secret) => secret.0.clone().into_bytes(),
        None => {
            let path = jwt_secret_path(config);
            match std::fs::read_to_string(&path) {
                Ok(text) if text.trim().len() >= crate::auth::MIN_SECRET_BYTES => {
                    text.trim().as_bytes().to_vec()
                }
                Ok(_) => {
                    return Err(StartError::Auth(format!(
                        "{} holds a secret shorter than {} bytes; delete it to generate a new one",
                        path.display(),
                        crate::auth::MIN_SECRET_BYTES
                    )));
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound && create => {
                    let secret = crate::auth::generate_secret().map_err(StartError::Auth)?;
                    write_private(&path, &secret).map_err(|err| {
                        StartError::Auth(format!("cannot write {}: {err}", path.display()))
                    })?;
                    tracing::info!(path = %path.display(), "generated the JWT signing secret");
                    secret.into_bytes()
                }
                Err(err) => {
                    return Err(StartError::Auth(format!(
                        "no JWT secret: set WADDLEBOT_JWT_SECRET, or start `waddlebot serve` once to generate {} ({err})",
                        path.display()
                    )));
                }
            }
        }
    };
    Ok(crate::auth::JwtSettings::hs256(
        secret,
        config.jwt_issuer.clone(),
        config.jwt_audience.clone(),
    ))
}

/// Writes a file only its owner can read.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// The authenticator for `serve`: API keys from the store, tokens signed with the configured or
/// generated secret. When the store holds no key at all, makes an admin key and returns it, to
/// be shown once.
pub async fn authenticator(
    config: &Config,
    store: Arc<dyn Store>,
) -> Result<(crate::auth::Authenticator, Option<String>), StartError> {
    let jwt = jwt_settings(config, true)?;
    let auth =
        crate::auth::Authenticator::new(Arc::clone(&store), Some(jwt)).map_err(StartError::Auth)?;
    let existing = store
        .list_api_keys(None)
        .await
        .map_err(|err| StartError::Auth(format!("cannot read the API keys: {err}")))?;
    if !existing.is_empty() {
        return Ok((auth, None));
    }
    let (key, record) =
        crate::auth::new_api_key("bootstrap admin", crate::auth::Role::Admin, None, None)
            .map_err(StartError::Auth)?;
    store
        .create_api_key(&record)
        .await
        .map_err(|err| StartError::Auth(format!("cannot store the first API key: {err}")))?;
    Ok((auth, Some(key)))
}

/// A `/healthz` probe for the Redis at `url` (a PING). Redis is optional: without it limits,
/// cooldowns and sessions fall back to this process.
pub fn redis_check(url: &str) -> Result<crate::app::HealthCheck, StartError> {
    let client = redis::Client::open(url).map_err(|err| StartError::Redis(Box::new(err)))?;
    let probe: crate::app::Probe = Arc::new(move || {
        let client = client.clone();
        Box::pin(async move {
            let mut connection = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|err| err.to_string())?;
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
                .map(|_| ())
                .map_err(|err| err.to_string())
        })
    });
    Ok(crate::app::HealthCheck {
        name: "redis",
        required: false,
        probe,
    })
}
