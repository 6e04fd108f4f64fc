//! The SQLite store: the embedded default. One file, WAL mode, created and migrated on first
//! start. Queries are checked at run time (no database needed to build) and written with `$N`
//! placeholders so the PostgreSQL store can share their text.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use super::{
    Alias, CommandSettings, Community, CustomCommand, Document, Entity, EntityKey, Expect,
    MatchType, ModuleInstall, Page, RoleGrant, Store, StoreError, StringRule, check_key,
    from_millis, now_millis, parse_after_id, to_millis,
};
use super::{ApiKey, AuditEntry, RemoteModule, Write};
use crate::id::{CommunityId, EntityId};
use crate::permission::PermissionLevel;
use crate::platform::PlatformKind;

/// The migrations, embedded in the binary, oldest first.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "core",
        include_str!("../../migrations/sqlite/0001_core.sql"),
    ),
    (
        2,
        "policy",
        include_str!("../../migrations/sqlite/0002_policy.sql"),
    ),
    (
        3,
        "aliases",
        include_str!("../../migrations/sqlite/0003_aliases.sql"),
    ),
    (
        4,
        "string_rules",
        include_str!("../../migrations/sqlite/0004_string_rules.sql"),
    ),
    (
        5,
        "remote_modules",
        include_str!("../../migrations/sqlite/0005_remote_modules.sql"),
    ),
    (
        6,
        "api_keys",
        include_str!("../../migrations/sqlite/0006_api_keys.sql"),
    ),
    (
        7,
        "audit_log",
        include_str!("../../migrations/sqlite/0007_audit_log.sql"),
    ),
];

/// Why a SQLite store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteStoreError {
    /// The URL is not a SQLite URL sqlx understands.
    #[error("invalid SQLite URL '{url}': {source}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it was refused.
        #[source]
        source: sqlx::Error,
    },
    /// The database could not be opened or created.
    #[error("cannot open SQLite database '{url}': {source}")]
    Open {
        /// The URL given.
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

/// A [`Store`] in a SQLite database.
///
/// A file database gets one writer connection and [`READERS`](Self::READERS) reader
/// connections: SQLite lets
/// one connection write at a time, so writers queue in the pool (no busy-waiting on the file
/// lock), while WAL readers see every committed write and never wait for the writer. Each
/// connection caches its prepared statements (sqlx's default, 100 per connection).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    readers: SqlitePool,
}

impl SqliteStore {
    /// Reader connections of a file database.
    pub const READERS: u32 = 4;

    /// Opens (creating the file if needed) and migrates the database at `url`
    /// (`sqlite://waddlebot.db`, `sqlite::memory:`). See [`prepare`](Self::prepare) for
    /// upgrading only when asked.
    pub async fn open(url: &str) -> Result<Self, SqliteStoreError> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the database without migrating it.
    pub async fn connect(url: &str) -> Result<Self, SqliteStoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|source| SqliteStoreError::InvalidUrl {
                url: url.to_owned(),
                source,
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            // Writers queue behind each other instead of failing with SQLITE_BUSY.
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !in_memory {
            create_private(options.get_filename()).map_err(|source| SqliteStoreError::Open {
                url: url.to_owned(),
                source: sqlx::Error::Io(source),
            })?;
        }
        let open = |source| SqliteStoreError::Open {
            url: url.to_owned(),
            source,
        };
        if in_memory {
            // Every connection to `:memory:` is its own empty database: keep exactly one,
            // forever, or the data vanishes with it; it reads and writes.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
                .map_err(open)?;
            return Ok(Self {
                readers: pool.clone(),
                pool,
            });
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(open)?;
        let readers = SqlitePoolOptions::new()
            .max_connections(Self::READERS)
            .connect_with(options)
            .await
            .map_err(open)?;
        Ok(Self { pool, readers })
    }

    /// The underlying pool (the writer's: one connection; the store reads through others),
    /// for embedders that keep their own tables beside ours.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes every connection (the writer's and the readers'); later calls fail with
    /// [`StoreError::Backend`](super::StoreError::Backend).
    pub async fn close(&self) {
        self.pool.close().await;
        self.readers.close().await;
    }

    /// SQLite has no replicas: every read goes to the one file, through the readers.
    fn reader(&self) -> &SqlitePool {
        &self.readers
    }

    /// The readers: WAL readers see every committed write.
    fn reads(&self) -> &SqlitePool {
        &self.readers
    }
}

/// Opens a batch's transaction (taking the write lock at once).
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";
/// What locks the rows a batch reads to merge into (SQLite's write lock is the whole file's, taken by BEGIN IMMEDIATE).
const LOCK_ROWS: &str = "";
type Db = sqlx::Sqlite;
type JsonArg = String;
type TsArg = i64;

type DbRow = SqliteRow;

fn ts(row: &DbRow, column: &str) -> Result<SystemTime, sqlx::Error> {
    Ok(from_millis(row.try_get(column)?))
}

fn ts_opt(row: &DbRow, column: &str) -> Result<Option<SystemTime>, sqlx::Error> {
    let millis: Option<i64> = row.try_get(column)?;
    Ok(millis.map(from_millis))
}

fn ts_arg(time: SystemTime) -> i64 {
    to_millis(time)
}

fn json_col<T: serde::de::DeserializeOwned>(row: &DbRow, column: &str) -> Result<T, sqlx::Error> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|err| sqlx::Error::Decode(Box::new(err)))
}

fn json_arg(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(StoreError::backend)
}

sql_store!(SqliteStore);
sql_migrations!(SqliteStore, SqliteStoreError);

/// Creates the database file readable by its owner only (0600) when it does not exist yet:
/// it holds remote modules' secrets and overlay keys. SQLite gives its `-wal` and `-shm`
/// files the database's permissions. An existing file keeps the permissions it has.
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    if path.as_os_str().is_empty() || path.exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        // Another opener made it first.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}
