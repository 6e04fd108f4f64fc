//! Wiring the standard bot from a [`Config`]: open the store, register the built-in modules and
//! the given platforms, build the router. The server and the CLI both start here.

use std::sync::Arc;

use waddlebot::clock::{Clock, SystemClock};
use waddlebot::store::{PgSettings, PgStore, PgStoreError, SqliteStore, SqliteStoreError};
use waddlebot::{Platform, Store};
use waddlebot_router::invalidation::RedisInvalidation;
use waddlebot_router::limit::{FallbackLimiter, RedisLimiter};
use waddlebot_router::session::{RedisSessions, SESSION_TTL};
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
    build_router_with_ai(config, platforms, ai_provider(config)?).await
}

/// [`build_router`] with an AI provider already built (to share it with the HTTP AI endpoints).
pub async fn build_router_with_ai(
    config: &Config,
    platforms: Vec<Arc<dyn Platform>>,
    ai: Option<Arc<dyn waddlebot::AiProvider>>,
) -> Result<Router, StartError> {
    let store = open_store(config).await?;
    let mut builder = Router::builder().store(store).config(config.router.clone());
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
            &format!("{}session:", config.redis_prefix),
            SESSION_TTL,
        )
        .map_err(|err| StartError::Redis(Box::new(err)))?;
        builder = builder.sessions(Arc::new(sessions));
        let bus = RedisInvalidation::new(url, &config.redis_prefix)
            .map_err(|err| StartError::Redis(Box::new(err)))?;
        builder = builder.invalidation(Arc::new(bus));
        tracing::info!(redis = %redact_url(url), "rate limits, cooldowns, sessions and cache invalidation shared through Redis");
    }
    for module in waddlebot_modules::default_modules() {
        builder = builder.handler_arc(module);
    }
    // `!ai` is always there (without a provider it says what to set); the chat and event side
    // listens only when there is a provider to answer.
    let listens = ai.is_some();
    let ai = waddlebot_modules::AiChat::new(ai, config.ai_chat.clone());
    builder = builder.handler(ai.clone());
    if listens {
        builder = builder.event_handler(ai.listener());
    }
    for platform in platforms {
        builder = builder.platform(platform);
    }
    Ok(builder.build()?)
}
