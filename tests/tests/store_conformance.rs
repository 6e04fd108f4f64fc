//! The one store conformance suite, run against every backend. Adding a backend adds a module.

mod common;

mod memory {
    waddlebot::store_conformance_tests!(async {
        std::sync::Arc::new(waddlebot::store::MemoryStore::new())
    });
}

mod sqlite_file {
    /// A store in a fresh temp file, paired with the directory so it lives as long as the store.
    async fn fresh() -> (waddlebot::store::SqliteStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("conformance.db").display());
        let store = waddlebot::store::SqliteStore::open(&url)
            .await
            .expect("opened");
        (store, dir)
    }

    waddlebot::store_conformance_tests!(fresh());
}

mod sqlite_memory {
    waddlebot::store_conformance_tests!(async {
        std::sync::Arc::new(
            waddlebot::store::SqliteStore::open("sqlite::memory:")
                .await
                .expect("opened"),
        )
    });
}

mod sqlite_specifics {
    use waddlebot::Store;
    use waddlebot::store::{Expect, SqliteStore};

    #[tokio::test]
    async fn data_survives_reopening_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("persist.db").display());
        {
            let store = SqliteStore::open(&url).await.expect("created");
            store
                .put_document("ns", "k", &serde_json::json!("kept"), Expect::Absent)
                .await
                .expect("written");
        }
        let store = SqliteStore::open(&url).await.expect("reopened");
        assert_eq!(
            store.migrate().await.expect("migrated"),
            0,
            "nothing left to apply"
        );
        let doc = store
            .get_document("ns", "k")
            .await
            .expect("read")
            .expect("kept");
        assert_eq!(doc.value, serde_json::json!("kept"));
    }

    #[tokio::test]
    async fn a_database_from_a_newer_binary_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("newer.db").display());
        let store = SqliteStore::open(&url).await.expect("created");
        sqlx_insert_future_migration(&store).await;
        let err = store.migrate().await.expect_err("newer schema refused");
        assert!(
            err.to_string()
                .contains("schema version 999, newer than this WaddleBot knows"),
            "{err}"
        );
    }

    async fn sqlx_insert_future_migration(store: &SqliteStore) {
        use sqlx::Executor;
        store
            .pool()
            .execute(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES (999, 'from the future', 1, x'00', 0)",
            )
            .await
            .expect("inserted");
    }

    #[tokio::test]
    async fn a_bad_url_names_itself() {
        let err = SqliteStore::open("sqlite:///nonexistent-dir/x/y.db")
            .await
            .expect_err("cannot create");
        assert!(err.to_string().contains("/nonexistent-dir/x/y.db"), "{err}");
    }
}

mod postgres {
    use waddlebot::store::{PgSettings, PgStore};

    pub(crate) use crate::common::fresh_pg as fresh;

    waddlebot::store_conformance_tests!(skip_unless: fresh());

    #[tokio::test]
    async fn a_database_from_a_newer_binary_is_refused() {
        let Some((store, _scratch)) = fresh().await else {
            eprintln!("skipped: WADDLEBOT_TEST_POSTGRES_URL is not set");
            return;
        };
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (999, 'from the future', TRUE, '\\x00', 0)",
        )
        .execute(store.pool())
        .await
        .expect("inserted");
        assert!(store.migrate().await.is_err(), "a newer schema is refused");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_clear_error_with_no_password() {
        let err = PgStore::connect(
            "postgres://bot:hunter2@127.0.0.1:1/nowhere",
            None,
            &PgSettings::default(),
        )
        .await
        .expect_err("nothing listens there");
        let message = err.to_string();
        assert!(message.contains("127.0.0.1:1"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
}
