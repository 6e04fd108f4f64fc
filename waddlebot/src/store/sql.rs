//! The SQL stores' shared body. SQLite and PostgreSQL run the same statements (`$N`
//! placeholders, `ON CONFLICT`, `RETURNING`); what differs is how a time or a JSON value is
//! stored (SQLite: integer milliseconds and text; PostgreSQL: `TIMESTAMPTZ` and `JSONB`). Each
//! backend module defines those few functions and the row type, then expands this macro:
//!
//! - `type DbRow` — the backend's row type;
//! - `ts(row, column)` / `ts_opt(row, column)` — read a time;
//! - `ts_arg(SystemTime)` — a time to bind;
//! - `json_col(row, column)` — read a JSON column into any `Deserialize` type;
//! - `json_arg(&value)` — a JSON value to bind (fallible);
//! - `self.reader()` — the pool for reads that may be slightly stale (a replica, or the primary);
//! - `self.reads()` — the pool for reads that must see every committed write (SQLite's
//!   readers beside its one writer; PostgreSQL's primary); `self.pool` takes the writes;
//! - `BEGIN_WRITE` — the statement that opens a write transaction;
//! - `LOCK_ROWS` — what locks the rows a batch reads to merge into, where the backend can;
//! - `Db`, `JsonArg`, `TsArg` — the backend's database type and the types `json_arg` and
//!   `ts_arg` return.

/// Why a SQL store's schema is not usable by this binary. Shared by both SQL backends.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The database is at an older schema and upgrading on start was not asked for.
    #[error(
        "the database has schema version {found} but this WaddleBot needs {known}; \
         run `waddlebot migrate` (after a backup) or start with --migrate"
    )]
    Outdated {
        /// The version found in the database.
        found: i64,
        /// The version this binary needs.
        known: i64,
    },
    /// The database was migrated by a newer WaddleBot than this one.
    #[error(
        "the database has schema version {found}, newer than this WaddleBot knows ({known}); \
         run a newer WaddleBot or restore a backup"
    )]
    Newer {
        /// The version found in the database.
        found: i64,
        /// The newest this binary knows.
        known: i64,
    },
    /// Applying migrations failed.
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A migrator over migrations embedded as `(version, description, sql)`, oldest first.
pub(super) fn migrator(
    migrations: &[(i64, &'static str, &'static str)],
) -> sqlx::migrate::Migrator {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sqlx::SqlStr::from_static(sql),
                    false,
                )
            })
            .collect(),
    )
}

/// Expands to `migrate`, `latest_schema_version` and their helper for a store with a `pool`
/// field, a `MIGRATIONS` list in scope, and an error type that is `From<SchemaError>`.
macro_rules! sql_migrations {
    ($store:ty, $error:ident) => {
        impl $store {
            /// Applies the migrations this binary knows that the database lacks and returns how
            /// many it applied. A database migrated by a newer binary is refused.
            pub async fn migrate(&self) -> Result<usize, $error> {
                let before = self.applied_migrations().await.unwrap_or(0);
                super::sql::migrator(MIGRATIONS)
                    .run(&self.pool)
                    .await
                    .map_err(|err| match err {
                        sqlx::migrate::MigrateError::VersionMissing(found) => {
                            super::sql::SchemaError::Newer {
                                found,
                                known: Self::latest_schema_version(),
                            }
                        }
                        other => other.into(),
                    })?;
                let after = self.applied_migrations().await.unwrap_or(before);
                Ok(after.saturating_sub(before))
            }

            /// Gets the schema ready at start: a new (empty) database is created; an older one is
            /// migrated forward only when `upgrade` is set (else
            /// [`SchemaError::Outdated`](crate::store::SchemaError::Outdated)); a newer one is
            /// refused. Returns how many migrations were applied.
            pub async fn prepare(&self, upgrade: bool) -> Result<usize, $error> {
                let found = self.schema_version().await;
                let known = Self::latest_schema_version();
                if found > known {
                    return Err(super::sql::SchemaError::Newer { found, known }.into());
                }
                if found != 0 && found < known && !upgrade {
                    return Err(super::sql::SchemaError::Outdated { found, known }.into());
                }
                self.migrate().await
            }

            /// The schema version the database is at (0 for a new database).
            pub async fn schema_version(&self) -> i64 {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success",
                )
                .fetch_one(&self.pool)
                .await
                .unwrap_or(0)
            }

            /// The newest schema version this binary knows.
            pub fn latest_schema_version() -> i64 {
                MIGRATIONS.last().map_or(0, |(version, _, _)| *version)
            }

            async fn applied_migrations(&self) -> Result<usize, sqlx::Error> {
                let count: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                        .fetch_one(&self.pool)
                        .await?;
                Ok(usize::try_from(count).unwrap_or(0))
            }
        }
    };
}

/// Expands to the row decoders and `impl Store for $store` (which needs a `pool` field).
macro_rules! sql_store {
    ($store:ty) => {
fn backend(err: sqlx::Error) -> StoreError {
    StoreError::backend(err)
}

/// Rows a batch statement writes at most (five parameters each, well under both backends'
/// limits).
const BATCH_ROWS: usize = 500;

/// How many writes at the head of `writes` one statement can take: the same kind, distinct
/// keys (a row may not be written twice by one upsert), at most [`BATCH_ROWS`].
fn batch_run(writes: &[Write]) -> usize {
    let first = std::mem::discriminant(&writes[0]);
    let mut keys = std::collections::HashSet::new();
    writes
        .iter()
        .take(BATCH_ROWS)
        .take_while(|write| {
            std::mem::discriminant(*write) == first && keys.insert((write.namespace(), write.key()))
        })
        .count()
        .max(1)
}

/// Appends `(namespace, key), …` for `chunk`'s keys (inside an `IN (…)`).
fn push_keys(query: &mut sqlx::QueryBuilder<Db>, chunk: &[Write]) {
    let mut keys = query.separated(", ");
    for write in chunk {
        keys.push("(")
            .push_bind_unseparated(write.namespace())
            .push_unseparated(", ")
            .push_bind_unseparated(write.key())
            .push_unseparated(")");
    }
}

/// Writes `values` as the documents of `chunk`'s keys, in one statement: an upsert, or with
/// `insert_only` an insert that leaves existing documents alone.
async fn upsert_documents(
    conn: &mut <Db as sqlx::Database>::Connection,
    chunk: &[Write],
    values: Vec<JsonArg>,
    now: TsArg,
    insert_only: bool,
) -> Result<(), StoreError> {
    let mut query = sqlx::QueryBuilder::<Db>::new(
        "INSERT INTO documents (namespace, key, value, version, updated_at) ",
    );
    query.push_values(chunk.iter().zip(values), |mut row, (write, value)| {
        row.push_bind(write.namespace().to_owned())
            .push_bind(write.key().to_owned())
            .push_bind(value)
            .push_bind(1_i64)
            .push_bind(now);
    });
    query.push(if insert_only {
        " ON CONFLICT (namespace, key) DO NOTHING"
    } else {
        " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, \
         version = documents.version + 1, updated_at = excluded.updated_at"
    });
    query.build().execute(conn).await.map_err(backend)?;
    Ok(())
}

fn entity_from_row(row: &DbRow) -> Result<Entity, sqlx::Error> {
    Ok(Entity {
        id: EntityId(row.try_get("id")?),
        community_id: CommunityId(row.try_get("community_id")?),
        key: EntityKey {
            platform: PlatformKind::from_stored(row.try_get("platform")?),
            server_id: row.try_get("server_id")?,
            channel_id: row.try_get("channel_id")?,
        },
        created_at: ts(row, "created_at")?,
    })
}

fn community_from_row(row: &DbRow) -> Result<Community, sqlx::Error> {
    Ok(Community {
        id: CommunityId(row.try_get("id")?),
        name: row.try_get("name")?,
        created_at: ts(row, "created_at")?,
    })
}

fn command_from_row(row: &DbRow) -> Result<CustomCommand, sqlx::Error> {
    Ok(CustomCommand {
        community_id: CommunityId(row.try_get("community_id")?),
        name: row.try_get("name")?,
        response: row.try_get("response")?,
        created_by: row.try_get("created_by")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

fn document_from_row(row: &DbRow) -> Result<Document, StoreError> {
    let version: i64 = row.try_get("version").map_err(backend)?;
    Ok(Document {
        key: row.try_get("key").map_err(backend)?,
        value: json_col(row, "value").map_err(backend)?,
        version: u64::try_from(version).unwrap_or(0),
    })
}

fn level_from_text(text: &str) -> Result<PermissionLevel, sqlx::Error> {
    text.parse()
        .map_err(|err| sqlx::Error::Decode(Box::new(err)))
}

fn alias_from_row(row: &DbRow) -> Result<Alias, sqlx::Error> {
    Ok(Alias {
        community_id: CommunityId(row.try_get("community_id")?),
        name: row.try_get("name")?,
        target: row.try_get("target")?,
        created_by: row.try_get("created_by")?,
        created_at: ts(row, "created_at")?,
    })
}

fn match_type_from_text(text: &str) -> Result<MatchType, sqlx::Error> {
    Ok(match text {
        "exact" => MatchType::Exact,
        "contains" => MatchType::Contains,
        "word" => MatchType::Word,
        "regex" => MatchType::Regex,
        other => {
            return Err(sqlx::Error::Decode(
                format!("unknown match type '{other}'").into(),
            ));
        }
    })
}

fn rule_from_row(row: &DbRow) -> Result<StringRule, sqlx::Error> {
    Ok(StringRule {
        id: row.try_get("id")?,
        community_id: CommunityId(row.try_get("community_id")?),
        pattern: row.try_get("pattern")?,
        match_type: match_type_from_text(row.try_get("match_type")?)?,
        case_sensitive: row.try_get("case_sensitive")?,
        priority: row.try_get("priority")?,
        action: json_col(row, "action")?,
        enabled: row.try_get("enabled")?,
        match_count: row.try_get("match_count")?,
        last_matched: ts_opt(row, "last_matched")?,
        created_by: row.try_get("created_by")?,
        created_at: ts(row, "created_at")?,
    })
}

const SELECT_RULE: &str = "SELECT id, community_id, pattern, match_type, case_sensitive, priority, \
     action, enabled, match_count, last_matched, created_by, created_at FROM string_rules";

fn api_key_from_row(row: &DbRow) -> Result<ApiKey, sqlx::Error> {
    let community: Option<i64> = row.try_get("community_id")?;
    Ok(ApiKey {
        id: row.try_get("id")?,
        hash: row.try_get("hash")?,
        name: row.try_get("name")?,
        role: row.try_get("role")?,
        community_id: community.map(CommunityId),
        created_at: ts(row, "created_at")?,
        expires_at: ts_opt(row, "expires_at")?,
        last_used_at: ts_opt(row, "last_used_at")?,
        revoked_at: ts_opt(row, "revoked_at")?,
    })
}

fn remote_from_row(row: &DbRow) -> Result<RemoteModule, sqlx::Error> {
    let timeout: i64 = row.try_get("timeout_ms")?;
    Ok(RemoteModule {
        community_id: CommunityId(row.try_get("community_id")?),
        name: row.try_get("name")?,
        url: row.try_get("url")?,
        secret: row.try_get("secret")?,
        commands: json_col(row, "commands")?,
        events: json_col(row, "events")?,
        timeout_ms: u64::try_from(timeout).unwrap_or(0),
        kind: json_col(row, "kind")?,
        enabled: row.try_get("enabled")?,
        created_at: ts(row, "created_at")?,
    })
}

fn grant_from_row(row: &DbRow) -> Result<RoleGrant, sqlx::Error> {
    Ok(RoleGrant {
        community_id: CommunityId(row.try_get("community_id")?),
        platform: PlatformKind::from_stored(row.try_get("platform")?),
        user_id: row.try_get("user_id")?,
        level: level_from_text(row.try_get("level")?)?,
        granted_by: row.try_get("granted_by")?,
        granted_at: ts(row, "granted_at")?,
    })
}

fn install_from_row(row: &DbRow) -> Result<ModuleInstall, sqlx::Error> {
    Ok(ModuleInstall {
        community_id: CommunityId(row.try_get("community_id")?),
        module: row.try_get("module")?,
        enabled: row.try_get("enabled")?,
        config: json_col(row, "config")?,
        updated_by: row.try_get("updated_by")?,
        updated_at: ts(row, "updated_at")?,
    })
}

fn settings_from_row(row: &DbRow) -> Result<CommandSettings, sqlx::Error> {
    let secs = |column: &str| -> Result<Option<u64>, sqlx::Error> {
        let value: Option<i64> = row.try_get(column)?;
        Ok(value.map(|v| u64::try_from(v).unwrap_or(0)))
    };
    let min_level: Option<String> = row.try_get("min_level")?;
    Ok(CommandSettings {
        community_id: CommunityId(row.try_get("community_id")?),
        command: row.try_get("command")?,
        enabled: row.try_get("enabled")?,
        min_level: min_level.as_deref().map(level_from_text).transpose()?,
        global_cooldown_secs: secs("global_cooldown_secs")?,
        user_cooldown_secs: secs("user_cooldown_secs")?,
        cooldown_bucket: row.try_get("cooldown_bucket")?,
    })
}

fn secs_arg(secs: Option<u64>) -> Option<i64> {
    secs.map(|s| i64::try_from(s).unwrap_or(i64::MAX))
}

const SELECT_ENTITY: &str = "SELECT id, community_id, platform, server_id, channel_id, created_at \
     FROM entities WHERE platform = $1 AND server_id = $2 AND channel_id = $3";

fn version_arg(version: u64) -> Result<i64, StoreError> {
    i64::try_from(version).map_err(|_| StoreError::Invalid(format!("version {version} too large")))
}

#[async_trait]
impl Store for $store {
    async fn resolve_entity(&self, key: &EntityKey) -> Result<Entity, StoreError> {
        let find = || {
            sqlx::query(SELECT_ENTITY)
                .bind(key.platform.as_str())
                .bind(&key.server_id)
                .bind(&key.channel_id)
        };
        if let Some(row) = find().fetch_optional(self.reads()).await.map_err(backend)? {
            return entity_from_row(&row).map_err(backend);
        }
        // First sight. Each statement is idempotent (ON CONFLICT DO NOTHING), so two processes
        // racing here both end up reading the one row that won.
        let now = ts_arg(now_millis());
        sqlx::query(
            "INSERT INTO communities (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(key.default_community_name())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        sqlx::query(
            "INSERT INTO entities (community_id, platform, server_id, channel_id, created_at) \
             SELECT id, $2, $3, $4, $5 FROM communities WHERE name = $1 \
             ON CONFLICT (platform, server_id, channel_id) DO NOTHING",
        )
        .bind(key.default_community_name())
        .bind(key.platform.as_str())
        .bind(&key.server_id)
        .bind(&key.channel_id)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        let row = find().fetch_one(&self.pool).await.map_err(backend)?;
        entity_from_row(&row).map_err(backend)
    }

    async fn community(&self, id: CommunityId) -> Result<Option<Community>, StoreError> {
        let row = sqlx::query("SELECT id, name, created_at FROM communities WHERE id = $1")
            .bind(id.0)
            .fetch_optional(self.reader())
            .await
            .map_err(backend)?;
        row.as_ref()
            .map(community_from_row)
            .transpose()
            .map_err(backend)
    }

    async fn list_communities(&self, page: &Page) -> Result<Vec<Community>, StoreError> {
        let after = parse_after_id(page)?;
        let rows = sqlx::query(
            "SELECT id, name, created_at FROM communities WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(i64::try_from(page.effective_limit()).unwrap_or(i64::MAX))
        .fetch_all(self.reader())
        .await
        .map_err(backend)?;
        rows.iter()
            .map(community_from_row)
            .collect::<Result<_, _>>()
            .map_err(backend)
    }

    async fn community_named(&self, name: &str) -> Result<Option<Community>, StoreError> {
        let row = sqlx::query("SELECT id, name, created_at FROM communities WHERE name = $1")
            .bind(name)
            .fetch_optional(self.reads())
            .await
            .map_err(backend)?;
        row.as_ref()
            .map(community_from_row)
            .transpose()
            .map_err(backend)
    }

    async fn create_community(
        &self,
        name: &str,
        created_at: SystemTime,
    ) -> Result<Community, StoreError> {
        check_key("community name", name)?;
        let row = sqlx::query(
            "INSERT INTO communities (name, created_at) VALUES ($1, $2) \
             ON CONFLICT (name) DO NOTHING RETURNING id, name, created_at",
        )
        .bind(name)
        .bind(ts_arg(created_at))
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        match row {
            Some(row) => community_from_row(&row).map_err(backend),
            None => Err(StoreError::Conflict(format!(
                "community '{name}' already exists"
            ))),
        }
    }

    async fn entity(&self, key: &EntityKey) -> Result<Option<Entity>, StoreError> {
        let row = sqlx::query(SELECT_ENTITY)
            .bind(key.platform.as_str())
            .bind(&key.server_id)
            .bind(&key.channel_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(entity_from_row).transpose().map_err(backend)
    }

    async fn assign_entity(
        &self,
        key: &EntityKey,
        community: CommunityId,
    ) -> Result<Entity, StoreError> {
        let row = sqlx::query(
            "INSERT INTO entities (community_id, platform, server_id, channel_id, created_at) \
             SELECT id, $2, $3, $4, $5 FROM communities WHERE id = $1 \
             ON CONFLICT (platform, server_id, channel_id) \
             DO UPDATE SET community_id = excluded.community_id \
             RETURNING id, community_id, platform, server_id, channel_id, created_at",
        )
        .bind(community.0)
        .bind(key.platform.as_str())
        .bind(&key.server_id)
        .bind(&key.channel_id)
        .bind(ts_arg(now_millis()))
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        match row {
            Some(row) => entity_from_row(&row).map_err(backend),
            None => Err(StoreError::NotFound(format!("community {community}"))),
        }
    }

    async fn list_entities(&self, page: &Page) -> Result<Vec<Entity>, StoreError> {
        let after = parse_after_id(page)?;
        let rows = sqlx::query(
            "SELECT id, community_id, platform, server_id, channel_id, created_at \
             FROM entities WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(i64::try_from(page.effective_limit()).unwrap_or(i64::MAX))
        .fetch_all(self.reader())
        .await
        .map_err(backend)?;
        rows.iter()
            .map(entity_from_row)
            .collect::<Result<_, _>>()
            .map_err(backend)
    }

    async fn custom_command(
        &self,
        community: CommunityId,
        name: &str,
    ) -> Result<Option<CustomCommand>, StoreError> {
        let row = sqlx::query(
            "SELECT community_id, name, response, created_by, created_at, updated_at \
             FROM custom_commands WHERE community_id = $1 AND name = $2",
        )
        .bind(community.0)
        .bind(name)
        .fetch_optional(self.reader())
        .await
        .map_err(backend)?;
        row.as_ref()
            .map(command_from_row)
            .transpose()
            .map_err(backend)
    }

    async fn create_custom_command(&self, command: &CustomCommand) -> Result<(), StoreError> {
        check_key("command name", &command.name)?;
        let inserted = sqlx::query(
            "INSERT INTO custom_commands (community_id, name, response, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (community_id, name) DO NOTHING",
        )
        .bind(command.community_id.0)
        .bind(&command.name)
        .bind(&command.response)
        .bind(&command.created_by)
        .bind(ts_arg(command.created_at))
        .bind(ts_arg(command.updated_at))
        .execute(&self.pool)
        .await
        .map_err(backend)?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "command '{}' already exists",
                command.name
            )));
        }
        Ok(())
    }

    async fn update_custom_command(
        &self,
        community: CommunityId,
        name: &str,
        response: &str,
    ) -> Result<CustomCommand, StoreError> {
        let row = sqlx::query(
            "UPDATE custom_commands SET response = $3, updated_at = $4 \
             WHERE community_id = $1 AND name = $2 \
             RETURNING community_id, name, response, created_by, created_at, updated_at",
        )
        .bind(community.0)
        .bind(name)
        .bind(response)
        .bind(ts_arg(now_millis()))
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .ok_or_else(|| StoreError::NotFound(format!("command '{name}'")))?;
        command_from_row(&row).map_err(backend)
    }

    async fn delete_custom_command(
        &self,
        community: CommunityId,
        name: &str,
    ) -> Result<bool, StoreError> {
        let deleted =
            sqlx::query("DELETE FROM custom_commands WHERE community_id = $1 AND name = $2")
                .bind(community.0)
                .bind(name)
                .execute(&self.pool)
                .await
                .map_err(backend)?
                .rows_affected();
        Ok(deleted > 0)
    }

    async fn list_custom_commands(
        &self,
        community: CommunityId,
    ) -> Result<Vec<CustomCommand>, StoreError> {
        let rows = sqlx::query(
            "SELECT community_id, name, response, created_by, created_at, updated_at \
             FROM custom_commands WHERE community_id = $1 ORDER BY name",
        )
        .bind(community.0)
        .fetch_all(self.reader())
        .await
        .map_err(backend)?;
        rows.iter()
            .map(command_from_row)
            .collect::<Result<_, _>>()
            .map_err(backend)
    }

    async fn alias(&self, community: CommunityId, name: &str) -> Result<Option<Alias>, StoreError> {
        let row = sqlx::query(
            "SELECT community_id, name, target, created_by, created_at FROM aliases \
             WHERE community_id = $1 AND name = $2",
        )
        .bind(community.0)
        .bind(name)
        .fetch_optional(self.reader())
        .await
        .map_err(backend)?;
        row.as_ref()
            .map(alias_from_row)
            .transpose()
            .map_err(backend)
    }

    async fn create_alias(&self, alias: &Alias) -> Result<(), StoreError> {
        check_key("alias name", &alias.name)?;
        let inserted = sqlx::query(
            "INSERT INTO aliases (community_id, name, target, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (community_id, name) DO NOTHING",
        )
        .bind(alias.community_id.0)
        .bind(&alias.name)
        .bind(&alias.target)
        .bind(&alias.created_by)
        .bind(ts_arg(alias.created_at))
        .execute(&self.pool)
        .await
        .map_err(backend)?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "alias '{}' already exists",
                alias.name
            )));
        }
        Ok(())
    }

    async fn delete_alias(&self, community: CommunityId, name: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM aliases WHERE community_id = $1 AND name = $2")
            .bind(community.0)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        Ok(deleted > 0)
    }

    async fn list_aliases(&self, community: CommunityId) -> Result<Vec<Alias>, StoreError> {
        let rows = sqlx::query(
            "SELECT community_id, name, target, created_by, created_at FROM aliases \
             WHERE community_id = $1 ORDER BY name",
        )
        .bind(community.0)
        .fetch_all(self.reader())
        .await
        .map_err(backend)?;
        rows.iter()
            .map(alias_from_row)
            .collect::<Result<_, _>>()
            .map_err(backend)
    }

    async fn create_rule(&self, rule: &StringRule) -> Result<StringRule, StoreError> {
        check_key("rule pattern", &rule.pattern)?;
        let action = json_arg(&rule.action)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO string_rules (community_id, pattern, match_type, case_sensitive, priority, \
             action, enabled, match_count, last_matched, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(rule.community_id.0)
        .bind(&rule.pattern)
        .bind(rule.match_type.as_str())
        .bind(rule.case_sensitive)
        .bind(rule.priority)
        .bind(action)
        .bind(rule.enabled)
        .bind(rule.match_count)
        .bind(rule.last_matched.map(ts_arg))
        .bind(&rule.created_by)
        .bind(ts_arg(rule.created_at))
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        let millis = |time| super::from_millis(super::to_millis(time));
        Ok(StringRule {
            id,
            last_matched: rule.last_matched.map(millis),
            created_at: millis(rule.created_at),
            ..rule.clone()
        })
    }

    async fn list_rules(&self, community: CommunityId) -> Result<Vec<StringRule>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT_RULE} WHERE community_id = $1 ORDER BY priority, id"
        )))
        .bind(community.0)
        .fetch_all(self.reader())
        .await
        .map_err(backend)?;
        rows.iter()
            .map(rule_from_row)
            .collect::<Result<_, _>>()
            .map_err(backend)
    }

    async fn delete_rule(&self, community: CommunityId, id: i64) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM string_rules WHERE community_id = $1 AND id = $2")
            .bind(community.0)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        Ok(deleted > 0)
    }

    async fn record_rule_match(
        &self,
        community: CommunityId,
        id: i64,
        at: std::time::SystemTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE string_rules SET match_count = match_count + 1, last_matched = $3 \
             WHERE community_id = $1 AND id = $2",
        )
        .bind(community.0)
        .bind(id)
        .bind(ts_arg(at))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO audit_log (community_id, actor, action, target, detail, at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(entry.community_id.map(|c| c.0))
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(json_arg(&entry.detail)?)
        .bind(ts_arg(entry.at))
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        Ok(id)
    }

    async fn list_audit(
        &self,
        community: Option<CommunityId>,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, community_id, actor, action, target, detail, at FROM audit_log \
             WHERE community_id IS NOT DISTINCT FROM $1 ORDER BY id DESC LIMIT $2 OFFSET $3",
        )
        .bind(community.map(|c| c.0))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(self.reader())
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                let community: Option<i64> = row.try_get("community_id")?;
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    community_id: community.map(CommunityId),
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    target: row.try_get("target")?,
                    detail: json_col(row, "detail")?,
                    at: ts(row, "at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(backend)
    }

    async fn count_audit(&self, community: Option<CommunityId>) -> Result<usize, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE community_id IS NOT DISTINCT FROM $1",
        )
        .bind(community.map(|c| c.0))
        .fetch_one(self.reader())
        .await
        .map_err(backend)?;
        Ok(usize::try_from(count).unwrap_or_default())
    }

    async fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        check_key("API key id", &key.id)?;
        let inserted = sqlx::query(
            "INSERT INTO api_keys (id, hash, name, role, community_id, created_at, expires_at, \
             last_used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&key.id)
        .bind(&key.hash)
        .bind(&key.name)
        .bind(&key.role)
        .bind(key.community_id.map(|c| c.0))
        .bind(ts_arg(key.created_at))
        .bind(key.expires_at.map(ts_arg))
        .bind(key.last_used_at.map(ts_arg))
        .bind(key.revoked_at.map(ts_arg))
        .execute(&self.pool)
        .await
        .map_err(backend)?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::Conflict(format!("API key '{}' exists", key.id)));
        }
        Ok(())
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        // From the primary: a key revoked a moment ago must not pass on a stale replica.
        let row = sqlx::query(
            "SELECT id, hash, name, role, community_id, created_at, expires_at, last_used_at, \
             revoked_at FROM api_keys WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.reads())
        .await
        .map_err(backend)?;
        row.as_ref().map(api_key_from_row).transpose().map_err(backend)
    }

    async fn list_api_keys(
        &self,
        community: Option<CommunityId>,
    ) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, hash, name, role, community_id, created_at, expires_at, last_used_at, \
             revoked_at FROM api_keys WHERE ($1 IS NULL OR community_id = $1) \
             ORDER BY created_at DESC, id",
        )
        .bind(community.map(|c| c.0))
        .fetch_all(self.reads())
        .await
        .map_err(backend)?;
        rows.iter()
            .map(api_key_from_row)
            .collect::<Result<_, _>>()
            .map_err(backend)
    }

    async fn revoke_api_key(&self, id: &str, at: SystemTime) -> Result<bool, StoreError> {
        let revoked = sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1")
            .bind(id)
            .bind(ts_arg(at))
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        Ok(revoked > 0)
    }

    async fn touch_api_key(&self, id: &str, at: SystemTime) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(ts_arg(at))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn create_remote_module(&self, module: &RemoteModule) -> Result<(), StoreError> {
        check_key("module name", &module.name)?;
        let inserted = sqlx::query(
            "INSERT INTO remote_modules (community_id, name, url, secret, commands, events, \
             timeout_ms, kind, enabled, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (community_id, name) DO NOTHING",
        )
        .bind(module.community_id.0)
        .bind(&module.name)
        .bind(&module.url)
        .bind(&module.secret)
        .bind(json_arg(&module.commands)?)
        .bind(json_arg(&module.events)?)
        .bind(i64::try_from(module.timeout_ms).unwrap_or(i64::MAX))
        .bind(json_arg(&module.kind)?)
        .bind(module.enabled)
        .bind(ts_arg(module.created_at))
        .execute(&self.pool)
        .await
        .map_err(backend)?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "remote module '{}' already exists",
                module.name
            )));
        }
        Ok(())
    }

    async fn list_remote_modules(
        &self,
        community: CommunityId,
    ) -> Result<Vec<RemoteModule>, StoreError> {
        let rows = sqlx::query(
            "SELECT community_id, name, url, secret, commands, events, timeout_ms, kind, enabled, \
             created_at FROM remote_modules WHERE community_id = $1 ORDER BY name",
        )
        .bind(community.0)
        .fetch_all(self.reader())
        .await
        .map_err(backend)?;
        rows.iter()
            .map(remote_from_row)
            .collect::<Result<_, _>>()
            .map_err(backend)
    }

    async fn delete_remote_module(
        &self,
        community: CommunityId,
        name: &str,
    ) -> Result<bool, StoreError> {
        let deleted =
            sqlx::query("DELETE FROM remote_modules WHERE community_id = $1 AND name = $2")
                .bind(community.0)
                .bind(name)
                .execute(&self.pool)
                .await
                .map_err(backend)?
                .rows_affected();
        Ok(deleted > 0)
    }

    async fn role_grant(
        &self,
        community: CommunityId,
        platform: &PlatformKind,
        user_id: &str,
    ) -> Result<Option<RoleGrant>, StoreError> {
        let row = sqlx::query(
            "SELECT community_id, platform, user_id, level, granted_by, granted_at FROM role_grants \
             WHERE community_id = $1 AND platform = $2 AND user_id = $3",
        )
        .bind(community.0)
        .bind(platform.as_str())
        .bind(user_id)
        .fetch_optional(self.reader())
        .await
        .map_err(backend)?;
        row.as_ref()
            .map(grant_from_row)
            .transpose()
            .map_err(backend)
    }

    async fn put_role_grant(&self, grant: &RoleGrant) -> Result<(), StoreError> {
        check_key("user id", &grant.user_id)?;
        sqlx::query(
            "INSERT INTO role_grants (community_id, platform, user_id, level, granted_by, granted_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (community_id, platform, user_id) DO UPDATE \
             SET level = excluded.level, granted_by = excluded.granted_by, granted_at = excluded.granted_at",
        )
        .bind(grant.community_id.0)
        .bind(grant.platform.as_str())
        .bind(&grant.user_id)
        .bind(grant.level.as_str())
        .bind(&grant.granted_by)
        .bind(ts_arg(grant.granted_at))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn delete_role_grant(
        &self,
        community: CommunityId,
        platform: &PlatformKind,
        user_id: &str,
    ) -> Result<bool, StoreError> {
        let deleted = sqlx::query(
            "DELETE FROM role_grants WHERE community_id = $1 AND platform = $2 AND user_id = $3",
        )
        .bind(community.0)
        .bind(platform.as_str())
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map_err(backend)?
        .rows_affected();
        Ok(deleted > 0)
    }

    async fn list_role_grants(&self, community: CommunityId) -> Result<Vec<RoleGrant>, StoreError> {
        let rows = sqlx::query(
            "SELECT community_id, platform, user_id, level, granted_by, granted_at FROM role_grants \
             WHERE community_id = $1 ORDER BY platform, user_id",
        )
        .bind(community.0)
        .fetch_all(self.reader())
        .await
        .map_err(backend)?;
        rows.iter()
            .map(grant_from_row)
            .collect::<Result<_, _>>()
            .map_err(backend)
    }

    async fn module_install(
        &self,
        community: CommunityId,
        module: &str,
    ) -> Result<Option<ModuleInstall>, StoreError> {
        let row = sqlx::query(
            "SELECT community_id, module, enabled, config, updated_by, updated_at \
             FROM module_installs WHERE community_id = $1 AND module = $2",
        )
        .bind(community.0)
        .bind(module)
        .fetch_optional(self.reader())
        .await
        .map_err(backend)?;
        row.as_ref()
            .map(install_from_row)
            .transpose()
            .map_err(backend)
    }

    async fn put_module_install(&self, install: &ModuleInstall) -> Result<(), StoreError> {
        check_key("module name", &install.module)?;
        sqlx::query(
            "INSERT INTO module_installs (community_id, module, enabled, config, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (community_id, module) DO UPDATE \
             SET enabled = excluded.enabled, config = excluded.config, \
                 updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        )
        .bind(install.community_id.0)
        .bind(&install.module)
        .bind(install.enabled)
        .bind(json_arg(&install.config)?)
        .bind(&install.updated_by)
        .bind(ts_arg(install.updated_at))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn list_module_installs(
        &self,
        community: CommunityId,
    ) -> Result<Vec<ModuleInstall>, StoreError> {
        let rows = sqlx::query(
            "SELECT community_id, module, enabled, config, updated_by, updated_at \
             FROM module_installs WHERE community_id = $1 ORDER BY module",
        )
        .bind(community.0)
        .fetch_all(self.reader())
        .await
        .map_err(backend)?;
        rows.iter()
            .map(install_from_row)
            .collect::<Result<_, _>>()
            .map_err(backend)
    }

    async fn command_settings(
        &self,
        community: CommunityId,
        command: &str,
    ) -> Result<Option<CommandSettings>, StoreError> {
        let row = sqlx::query(
            "SELECT community_id, command, enabled, min_level, global_cooldown_secs, \
             user_cooldown_secs, cooldown_bucket FROM command_settings \
             WHERE community_id = $1 AND command = $2",
        )
        .bind(community.0)
        .bind(command)
        .fetch_optional(self.reader())
        .await
        .map_err(backend)?;
        row.as_ref()
            .map(settings_from_row)
            .transpose()
            .map_err(backend)
    }

    async fn put_command_settings(&self, settings: &CommandSettings) -> Result<(), StoreError> {
        check_key("command name", &settings.command)?;
        sqlx::query(
            "INSERT INTO command_settings (community_id, command, enabled, min_level, \
             global_cooldown_secs, user_cooldown_secs, cooldown_bucket) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (community_id, command) DO UPDATE \
             SET enabled = excluded.enabled, min_level = excluded.min_level, \
                 global_cooldown_secs = excluded.global_cooldown_secs, \
                 user_cooldown_secs = excluded.user_cooldown_secs, \
                 cooldown_bucket = excluded.cooldown_bucket",
        )
        .bind(settings.community_id.0)
        .bind(&settings.command)
        .bind(settings.enabled)
        .bind(settings.min_level.map(PermissionLevel::as_str))
        .bind(secs_arg(settings.global_cooldown_secs))
        .bind(secs_arg(settings.user_cooldown_secs))
        .bind(settings.cooldown_bucket.as_deref())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn list_command_settings(
        &self,
        community: CommunityId,
    ) -> Result<Vec<CommandSettings>, StoreError> {
        let rows = sqlx::query(
            "SELECT community_id, command, enabled, min_level, global_cooldown_secs, \
             user_cooldown_secs, cooldown_bucket FROM command_settings WHERE community_id = $1",
        )
        .bind(community.0)
        .fetch_all(self.reader())
        .await
        .map_err(backend)?;
        let mut settings = rows
            .iter()
            .map(settings_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        // Sorted here: the column has no byte-order collation in every schema.
        settings.sort_by(|a, b| a.command.cmp(&b.command));
        Ok(settings)
    }

    async fn delete_command_settings(
        &self,
        community: CommunityId,
        command: &str,
    ) -> Result<bool, StoreError> {
        let deleted =
            sqlx::query("DELETE FROM command_settings WHERE community_id = $1 AND command = $2")
                .bind(community.0)
                .bind(command)
                .execute(&self.pool)
                .await
                .map_err(backend)?
                .rows_affected();
        Ok(deleted > 0)
    }

    async fn get_document(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<Document>, StoreError> {
        let row = sqlx::query(
            "SELECT key, value, version FROM documents WHERE namespace = $1 AND key = $2",
        )
        .bind(namespace)
        .bind(key)
        .fetch_optional(self.reads())
        .await
        .map_err(backend)?;
        row.as_ref().map(document_from_row).transpose()
    }

    async fn put_document(
        &self,
        namespace: &str,
        key: &str,
        value: &serde_json::Value,
        expect: Expect,
    ) -> Result<u64, StoreError> {
        check_key("namespace", namespace)?;
        check_key("document key", key)?;
        let text = json_arg(value)?;
        let now = ts_arg(now_millis());
        let query = match expect {
            Expect::Any => sqlx::query_scalar::<_, i64>(
                "INSERT INTO documents (namespace, key, value, version, updated_at) \
                 VALUES ($1, $2, $3, 1, $4) \
                 ON CONFLICT (namespace, key) DO UPDATE \
                 SET value = excluded.value, version = documents.version + 1, updated_at = excluded.updated_at \
                 RETURNING version",
            ),
            Expect::Absent => sqlx::query_scalar::<_, i64>(
                "INSERT INTO documents (namespace, key, value, version, updated_at) \
                 VALUES ($1, $2, $3, 1, $4) ON CONFLICT (namespace, key) DO NOTHING RETURNING version",
            ),
            Expect::Version(_) => sqlx::query_scalar::<_, i64>(
                "UPDATE documents SET value = $3, version = version + 1, updated_at = $4 \
                 WHERE namespace = $1 AND key = $2 AND version = $5 RETURNING version",
            ),
        };
        let expected = match expect {
            Expect::Version(version) => version_arg(version)?,
            Expect::Any | Expect::Absent => 0,
        };
        let query = query.bind(namespace).bind(key).bind(text).bind(now);
        let query = if matches!(expect, Expect::Version(_)) {
            query.bind(expected)
        } else {
            query
        };
        match query.fetch_optional(&self.pool).await.map_err(backend)? {
            Some(version) => Ok(u64::try_from(version).unwrap_or(0)),
            None => Err(StoreError::Conflict(format!(
                "document '{namespace}/{key}': write expected {expect:?}"
            ))),
        }
    }

    async fn delete_document(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM documents WHERE namespace = $1 AND key = $2")
            .bind(namespace)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        Ok(deleted > 0)
    }

    async fn list_documents(
        &self,
        namespace: &str,
        prefix: &str,
        page: &Page,
    ) -> Result<Vec<Document>, StoreError> {
        // Prefix match by range (key >= prefix, then filtered) rather than LIKE, so '%' and '_'
        // in keys mean nothing special.
        let after = page.after.as_deref().unwrap_or("");
        let rows = sqlx::query(
            "SELECT key, value, version FROM documents \
             WHERE namespace = $1 AND key >= $2 AND key > $3 AND substr(key, 1, length($2)) = $2 \
             ORDER BY key LIMIT $4",
        )
        .bind(namespace)
        .bind(prefix)
        .bind(after)
        .bind(i64::try_from(page.effective_limit()).unwrap_or(i64::MAX))
        .fetch_all(self.reads())
        .await
        .map_err(backend)?;
        rows.iter().map(document_from_row).collect()
    }

    async fn increment(&self, namespace: &str, key: &str, delta: i64) -> Result<i64, StoreError> {
        check_key("namespace", namespace)?;
        check_key("counter key", key)?;
        sqlx::query_scalar(
            "INSERT INTO counters (namespace, key, value) VALUES ($1, $2, $3) \
             ON CONFLICT (namespace, key) DO UPDATE SET value = counters.value + excluded.value \
             RETURNING value",
        )
        .bind(namespace)
        .bind(key)
        .bind(delta)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)
    }

    async fn write_batch(&self, writes: &[Write]) -> Result<(), StoreError> {
        for write in writes {
            write.check()?;
        }
        if writes.is_empty() {
            return Ok(());
        }
        let now = ts_arg(now_millis());
        // A write transaction from its first statement: a merge reads before it writes, and
        // SQLite refuses to turn a read into a write once another connection has committed.
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(backend)?;
        // Runs of one kind over distinct keys go in one statement each (a batch from the
        // write-behind buffer is grouped so), at most BATCH_ROWS rows a statement.
        let mut rest = writes;
        while !rest.is_empty() {
            let run = batch_run(rest);
            let (chunk, after) = rest.split_at(run);
            rest = after;
            match &chunk[0] {
                Write::Increment { .. } => {
                    let mut query = sqlx::QueryBuilder::<Db>::new(
                        "INSERT INTO counters (namespace, key, value) ",
                    );
                    query.push_values(chunk, |mut row, write| {
                        if let Write::Increment { namespace, key, delta } = write {
                            row.push_bind(namespace.as_str()).push_bind(key.as_str()).push_bind(*delta);
                        }
                    });
                    query.push(
                        " ON CONFLICT (namespace, key) DO UPDATE SET value = counters.value + excluded.value",
                    );
                    query.build().execute(&mut *tx).await.map_err(backend)?;
                }
                Write::Delete { .. } => {
                    let mut query = sqlx::QueryBuilder::<Db>::new(
                        "DELETE FROM documents WHERE (namespace, key) IN (",
                    );
                    push_keys(&mut query, chunk);
                    query.push(")");
                    query.build().execute(&mut *tx).await.map_err(backend)?;
                }
                Write::Insert { .. } | Write::Put { .. } => {
                    let values = chunk
                        .iter()
                        .map(|write| match write {
                            Write::Insert { value, .. } | Write::Put { value, .. } => json_arg(value),
                            _ => Err(StoreError::Invalid("mixed batch run".into())),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    let insert_only = matches!(chunk[0], Write::Insert { .. });
                    upsert_documents(&mut tx, chunk, values, now, insert_only).await?;
                }
                Write::Merge { .. } => {
                    let mut query = sqlx::QueryBuilder::<Db>::new(
                        "SELECT namespace, key, value FROM documents WHERE (namespace, key) IN (",
                    );
                    push_keys(&mut query, chunk);
                    query.push(")").push(LOCK_ROWS);
                    let mut stored = std::collections::HashMap::new();
                    for row in query.build().fetch_all(&mut *tx).await.map_err(backend)? {
                        let namespace: String = row.try_get("namespace").map_err(backend)?;
                        let key: String = row.try_get("key").map_err(backend)?;
                        let value: serde_json::Value = json_col(&row, "value").map_err(backend)?;
                        stored.insert((namespace, key), value);
                    }
                    let values = chunk
                        .iter()
                        .map(|write| match write {
                            Write::Merge { namespace, key, fields } => json_arg(&Write::merged(
                                stored.remove(&(namespace.clone(), key.clone())),
                                fields,
                            )),
                            _ => Err(StoreError::Invalid("mixed batch run".into())),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    upsert_documents(&mut tx, chunk, values, now, false).await?;
                }
            }
        }
        tx.commit().await.map_err(backend)
    }

    async fn counter(&self, namespace: &str, key: &str) -> Result<i64, StoreError> {
        let value: Option<i64> =
            sqlx::query_scalar("SELECT value FROM counters WHERE namespace = $1 AND key = $2")
                .bind(namespace)
                .bind(key)
                .fetch_optional(self.reads())
                .await
                .map_err(backend)?;
        Ok(value.unwrap_or(0))
    }

    async fn list_counters(
        &self,
        namespace: &str,
        page: &Page,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT key, value FROM counters WHERE namespace = $1 AND key > $2 \
             ORDER BY key LIMIT $3",
        )
        .bind(namespace)
        .bind(page.after.as_deref().unwrap_or(""))
        .bind(i64::try_from(page.effective_limit()).unwrap_or(i64::MAX))
        .fetch_all(self.reads())
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| Ok((row.try_get("key")?, row.try_get("value")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(backend)
    }

    async fn list_namespaces(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut namespaces: Vec<String> = sqlx::query_scalar(
            "SELECT namespace FROM documents WHERE substr(namespace, 1, length($1)) = $1 \
             UNION SELECT namespace FROM counters WHERE substr(namespace, 1, length($1)) = $1",
        )
        .bind(prefix)
        .fetch_all(self.reads())
        .await
        .map_err(backend)?;
        namespaces.sort();
        Ok(namespaces)
    }

    async fn top_counters(
        &self,
        namespace: &str,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT key, value FROM counters WHERE namespace = $1 ORDER BY value DESC, key LIMIT $2",
        )
        .bind(namespace)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.reads())
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| Ok((row.try_get("key")?, row.try_get("value")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(backend)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(self.reads())
            .await
            .map(|_| ())
            .map_err(backend)
    }
}

    };
}
