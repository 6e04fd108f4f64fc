//! Helpers shared by the test files that need a scratch PostgreSQL schema.

use waddlebot::store::{PgSettings, PgStore};

/// A schema of its own for one test, dropped when the test ends.
pub(crate) struct Scratch {
    url: String,
    schema: String,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // Drop runs inside the test's runtime: do the async clean-up on a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                    // The test's runtime is blocked on this thread, so a transaction its
                    // tasks left open (a write-behind batch) can never end by itself: end the
                    // connections still holding locks in the schema first.
                    let _ = sqlx::query(
                        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
                         JOIN pg_class c ON c.oid = l.relation \
                         JOIN pg_namespace n ON n.oid = c.relnamespace \
                         WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()",
                    )
                    .bind(&schema)
                    .execute(&pool)
                    .await;
                    let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&pool).await;
                }
            });
        })
        .join();
    }
}

impl Scratch {
    /// Drops the schema now, while the store still points at it: the database "goes away".
    #[allow(dead_code)] // Not every test file that shares this module pulls the plug.
    pub(crate) async fn pull_the_plug(&self) {
        let pool = sqlx::PgPool::connect(&self.url)
            .await
            .expect("PostgreSQL reachable");
        let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        sqlx::query(sqlx::AssertSqlSafe(drop))
            .execute(&pool)
            .await
            .expect("schema dropped");
    }
}

/// A fresh store in a fresh schema, or `None` when `WADDLEBOT_TEST_POSTGRES_URL` is unset.
pub(crate) async fn fresh_pg() -> Option<(PgStore, Scratch)> {
    let url = std::env::var("WADDLEBOT_TEST_POSTGRES_URL").ok()?;
    let schema = format!("wbtest_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&url)
        .await
        .expect("PostgreSQL reachable");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .expect("schema created");
    let settings = PgSettings {
        max_connections: 8,
        schema: Some(schema.clone()),
    };
    let store = PgStore::open(&url, None, &settings).await.expect("opened");
    Some((store, Scratch { url, schema }))
}

/// The stores a transcript runs on: SQLite in memory, and PostgreSQL (a fresh schema) when
/// configured. Keep the scratch guard until the test ends: it drops the schema.
#[allow(dead_code)] // Not every test file that shares this module plays transcripts.
pub(crate) async fn stores() -> Vec<(
    &'static str,
    std::sync::Arc<dyn waddlebot::Store>,
    Option<Scratch>,
)> {
    let sqlite = waddlebot::store::SqliteStore::open("sqlite::memory:")
        .await
        .expect("sqlite");
    let mut stores: Vec<(
        &'static str,
        std::sync::Arc<dyn waddlebot::Store>,
        Option<Scratch>,
    )> = vec![("sqlite", std::sync::Arc::new(sqlite), None)];
    if let Some((pg, scratch)) = fresh_pg().await {
        stores.push(("postgres", std::sync::Arc::new(pg), Some(scratch)));
    }
    stores
}
