//! The PostgreSQL store: for communities that outgrow one process. Native types where they
//! help (`TIMESTAMPTZ`, `JSONB`), its own migrations, and the SQL of the shared store body.
//!
//! Reads that may be slightly stale (command lookups and listings) go to the read replica when
//! one is configured (`READ_REPLICA_URL`); writes, documents and counters (read-your-own-writes
//! for compare-and-set) always go to the primary.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;

use super::{
    Alias, CommandSettings, Community, CustomCommand, Document, Entity, EntityKey, Expect,
    MatchType, ModuleInstall, Page, RoleGrant, Store, StoreError, StringRule, check_key,
    from_millis, now_millis, parse_after_id, redact_url, to_millis,
};
use super::{ApiKey, AuditEntry, RemoteModule, Write};
use crate::id::{CommunityId, EntityId};
use crate::permission::PermissionLevel;
use crate::platform::PlatformKind;

/// The migrations, embedded in the binary, oldest first.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "schema",
        include_str!("../../migrations/postgres/0001_schema.sql"),
    ),
    (
        2,
        "api_keys",
        include_str!("../../migrations/postgres/0002_api_keys.sql"),
    ),
    (
        3,
        "audit_log",
        include_str!("../../migrations/postgres/0003_audit_log.sql"),
    ),
];

/// Why a PostgreSQL store could not be opened. URLs in messages have their password redacted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgStoreError {
    /// The URL is not a PostgreSQL URL sqlx understands.
    #[error("invalid PostgreSQL URL '{url}': {source}")]
    InvalidUrl {
        /// The URL given (redacted).
        url: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// The server could not be reached or refused the connection.
    #[error("cannot connect to PostgreSQL at '{url}': {source}")]
    Open {
        /// The URL given (redacted).
        url: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// The schema is older than this binary needs (and upgrading was not asked for), newer
    /// than it knows, or could not be migrated.
    #[error(transparent)]
    Schema(#[from] super::sql::SchemaError),
}

/// A [`Store`] in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    replica: Option<PgPool>,
}

/// How a [`PgStore`] connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgSettings {
    /// Most connections per pool (`ROUTER_MAX_WORKERS`, default 20).
    pub max_connections: u32,
    /// Only for tests and multi-tenant set-ups: the schema to use (`search_path`).
    pub schema: Option<String>,
}

impl Default for PgSettings {
    fn default() -> Self {
        Self {
            max_connections: 20,
            schema: None,
        }
    }
}

impl PgStore {
    /// Connects to the primary at `url` (and the replica at `replica`, if given) and migrates.
    pub async fn open(
        url: &str,
        replica: Option<&str>,
        settings: &PgSettings,
    ) -> Result<Self, PgStoreError> {
        let store = Self::connect(url, replica, settings).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating.
    pub async fn connect(
        url: &str,
        replica: Option<&str>,
        settings: &PgSettings,
    ) -> Result<Self, PgStoreError> {
        let primary = pool(url, settings).await?;
        let replica = match replica {
            Some(url) => Some(pool(url, settings).await?),
            None => None,
        };
        Ok(Self {
            pool: primary,
            replica,
        })
    }

    /// The primary's pool, for embedders that keep their own tables beside ours.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Where reads that may be slightly stale go.
    fn reader(&self) -> &PgPool {
        self.replica.as_ref().unwrap_or(&self.pool)
    }

    /// Where reads that must see every committed write go: the primary.
    fn reads(&self) -> &PgPool {
        &self.pool
    }
}

fn options(url: &str, settings: &PgSettings) -> Result<PgConnectOptions, PgStoreError> {
    let options = PgConnectOptions::from_str(url).map_err(|source| PgStoreError::InvalidUrl {
        url: redact_url(url),
        source,
    })?;
    Ok(match &settings.schema {
        Some(schema) => options.options([("search_path", schema.as_str())]),
        None => options,
    })
}

async fn pool(url: &str, settings: &PgSettings) -> Result<PgPool, PgStoreError> {
    PgPoolOptions::new()
        .max_connections(settings.max_connections.max(1))
        // A database that went away must give an error, not a hang.
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options(url, settings)?)
        .await
        .map_err(|source| PgStoreError::Open {
            url: redact_url(url),
            source,
        })
}

/// Opens a batch's transaction.
const BEGIN_WRITE: &str = "BEGIN";
/// What locks the rows a batch reads to merge into until the end of the transaction.
const LOCK_ROWS: &str = " FOR UPDATE";
type Db = sqlx::Postgres;
type JsonArg = Json<serde_json::Value>;
type TsArg = time::OffsetDateTime;

type DbRow = PgRow;

fn ts(row: &DbRow, column: &str) -> Result<SystemTime, sqlx::Error> {
    let time: time::OffsetDateTime = row.try_get(column)?;
    Ok(SystemTime::from(time))
}

fn ts_opt(row: &DbRow, column: &str) -> Result<Option<SystemTime>, sqlx::Error> {
    let time: Option<time::OffsetDateTime> = row.try_get(column)?;
    Ok(time.map(SystemTime::from))
}

fn ts_arg(time: SystemTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from(from_millis(to_millis(time)))
}

fn json_col<T: serde::de::DeserializeOwned>(row: &DbRow, column: &str) -> Result<T, sqlx::Error> {
    let value: Json<serde_json::Value> = row.try_get(column)?;
    serde_json::from_value(value.0).map_err(|err| sqlx::Error::Decode(Box::new(err)))
}

fn json_arg(value: &impl serde::Serialize) -> Result<Json<serde_json::Value>, StoreError> {
    serde_json::to_value(value)
        .map(Json)
        .map_err(StoreError::backend)
}

sql_store!(PgStore);
sql_migrations!(PgStore, PgStoreError);
