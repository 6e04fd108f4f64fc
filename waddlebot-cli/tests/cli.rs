//! The `waddlebot` binary as a real process, against a temp database.
//!
//! These live beside the binary (not in the `tests` member) because Cargo only tells a package's
//! own tests where its binaries are (`CARGO_BIN_EXE_waddlebot`).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("bot.db")
    }

    /// The binary, run in the sandbox with a clean environment for the settings it reads.
    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_waddlebot"));
        command
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env("DATABASE_URL", format!("sqlite://{}", self.db().display()))
            .env_remove("LOG_LEVEL")
            .env_remove("MODULE_PORT")
            .env_remove("WADDLEBOT_CONFIG")
            .env_remove("USER");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("the binary runs")
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn run_ping_prints_a_pong_line() {
    let sandbox = Sandbox::new();
    let output = sandbox.run(&["run", "!ping"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "Pong!\n");
    assert!(
        sandbox.db().exists(),
        "the database is created on first start"
    );
}

#[test]
fn a_command_added_in_one_process_answers_in_the_next() {
    let sandbox = Sandbox::new();
    let added = sandbox.run(&[
        "run",
        "--level",
        "moderator",
        "!command add !hello Hi {user}!",
    ]);
    assert!(added.status.success(), "{}", stderr(&added));
    assert_eq!(stdout(&added), "Command !hello added.\n");
    let hello = sandbox.run(&["run", "--user", "alice", "!hello"]);
    assert!(hello.status.success(), "{}", stderr(&hello));
    assert_eq!(stdout(&hello), "Hi alice!\n");
}

#[test]
fn words_are_joined_and_unknown_commands_still_exit_zero() {
    let sandbox = Sandbox::new();
    let output = sandbox.run(&["run", "!nope", "with", "words"]);
    assert!(output.status.success());
    assert_eq!(
        stdout(&output),
        "Unknown command: !nope. Type !commands to see what I can do.\n"
    );
}

#[test]
fn the_db_flag_beats_the_environment() {
    let sandbox = Sandbox::new();
    let other = sandbox.dir.path().join("other.db");
    let output = sandbox.run(&[
        "--db",
        other.to_str().expect("utf-8 path"),
        "run",
        "--level",
        "moderator",
        "!command add x y",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(other.exists());
    assert!(!sandbox.db().exists());
}

#[test]
fn bad_arguments_and_config_exit_2_with_a_message() {
    let sandbox = Sandbox::new();
    let output = sandbox.run(&["run", "--level", "wizard", "!ping"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("unknown permission level 'wizard'"),
        "{}",
        stderr(&output)
    );

    let output = sandbox.run(&["run", "--platform", "myspace", "!ping"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("unknown platform"),
        "{}",
        stderr(&output)
    );

    let output = sandbox
        .command()
        .env("ROUTER_REQUEST_TIMEOUT", "soon")
        .args(["run", "!ping"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("ROUTER_REQUEST_TIMEOUT"),
        "{}",
        stderr(&output)
    );

    std::fs::write(sandbox.dir.path().join("waddlebot.toml"), "bind = 42\n").expect("written");
    let output = sandbox.run(&["run", "!ping"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("waddlebot.toml"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_unusable_database_fails_with_a_message_not_a_panic() {
    let sandbox = Sandbox::new();
    let output = sandbox.run(&["--db", "/nonexistent-dir/deep/bot.db", "run", "!ping"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("/nonexistent-dir/deep/bot.db"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        err.matches("No such file or directory").count(),
        1,
        "the cause is said once: {err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn chat_reads_lines_and_switches_speakers() {
    let sandbox = Sandbox::new();
    let mut child = sandbox
        .command()
        .arg("chat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chat starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"!ping\n/level moderator\n!command add greet Welcome {touser}\n/user bob\n!greet @carol\n/quit\n")
        .expect("typed");
    let output = child.wait_with_output().expect("chat ends");
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    let replies: Vec<&str> = out.lines().filter(|l| l.starts_with("🐧 ")).collect();
    assert_eq!(
        replies,
        ["🐧 Pong!", "🐧 Command !greet added.", "🐧 Welcome carol"],
        "{out}"
    );
}

#[test]
fn migrate_creates_the_schema_and_is_idempotent() {
    let sandbox = Sandbox::new();
    let first = sandbox.run(&["migrate"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let latest = waddlebot::store::SqliteStore::latest_schema_version();
    assert!(
        stdout(&first).contains(&format!(
            "schema version {latest} ({latest} migrations applied)"
        )),
        "{}",
        stdout(&first)
    );
    let second = sandbox.run(&["migrate"]);
    assert!(
        stdout(&second).contains("0 migrations applied"),
        "{}",
        stdout(&second)
    );
}

async fn read_address(child: &mut tokio::process::Child) -> String {
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the server starts")
        .expect("readable")
        .expect("a line");
    line.rsplit(' ').next().expect("an address").to_owned()
}

fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().expect("running");
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_authenticates_answers_events_and_stops_cleanly_on_sigterm() {
    let sandbox = Sandbox::new();
    let mut child = tokio::process::Command::from(sandbox.command())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("server starts");
    let base = read_address(&mut child).await;
    // The first start makes an admin key and shows it once, on stderr.
    let mut errors = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let admin_key = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = errors.next_line().await.expect("readable") {
            if let Some(key) = line.split_whitespace().find(|w| w.starts_with("wbot_")) {
                return key.to_owned();
            }
        }
        panic!("no admin key was shown");
    })
    .await
    .expect("the key is shown at start");
    // Keep draining stderr so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = errors.next_line().await {} });

    let client = reqwest::Client::new();
    let event = serde_json::json!({
        "platform": "discord", "server_id": "guild", "channel_id": "general",
        "user_id": "1", "username": "alice", "message": "!ping"
    })
    .to_string();
    let post = |credential: Option<String>| {
        let request = client
            .post(format!("{base}/router/events"))
            .body(event.clone());
        match credential {
            Some(credential) => request.bearer_auth(credential),
            None => request,
        }
        .send()
    };
    let anonymous = post(None).await.expect("answered");
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    let response: serde_json::Value = post(Some(admin_key.clone()))
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(response["data"]["replies"][0]["text"], "Pong!");
    let bad = client
        .post(format!("{base}/router/events"))
        .bearer_auth(&admin_key)
        .body("{")
        .send()
        .await
        .expect("answered");
    assert_eq!(bad.status(), 400);

    // Tokens signed with the secret the server generated beside the database.
    let token = |role: &str, extra: &[&str]| {
        let mut args = vec!["token", "issue", "--subject", "ci", "--role", role];
        args.extend_from_slice(extra);
        let output = sandbox.run(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output).trim().to_owned()
    };
    let collector = token("collector", &[]);
    assert_eq!(post(Some(collector)).await.expect("answered").status(), 200);
    let viewer = token("viewer", &["--community", "1"]);
    assert_eq!(
        post(Some(viewer)).await.expect("answered").status(),
        403,
        "a viewer may not feed events"
    );
    let forged = format!("{}x", token("admin", &[]));
    assert_eq!(post(Some(forged)).await.expect("answered").status(), 401);

    // Keys are listed without their secret, and revoked keys stop working.
    let list = sandbox.run(&["apikey", "list"]);
    assert!(
        stdout(&list).contains("bootstrap admin"),
        "{}",
        stdout(&list)
    );
    assert!(
        !stdout(&list).contains(&admin_key),
        "the key itself is never shown again"
    );
    let created = sandbox.run(&[
        "apikey",
        "create",
        "--name",
        "feeder",
        "--role",
        "collector",
    ]);
    assert!(created.status.success(), "{}", stderr(&created));
    let feeder = stdout(&created).trim().to_owned();
    assert_eq!(
        post(Some(feeder.clone())).await.expect("answered").status(),
        200
    );
    let id = &feeder["wbot_".len().."wbot_".len() + 16];
    let revoked = sandbox.run(&["apikey", "revoke", id]);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    // Revoked by another process: the server trusts a verified key for at most a second
    // before asking the store again (its own admin API forgets a key at once).
    let refused = async {
        while post(Some(feeder.clone())).await.expect("answered").status() != 401 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(3), refused)
        .await
        .expect("refused once the key cache's second is over");

    // Prometheus metrics (for a collector or admin), and a request id on every answer.
    let metrics = client
        .get(format!("{base}/metrics"))
        .bearer_auth(&admin_key)
        .header("X-Request-ID", "trace-me-42")
        .send()
        .await
        .expect("answered");
    assert_eq!(metrics.headers()["x-request-id"], "trace-me-42");
    let text = metrics.text().await.expect("text");
    // Series are registered up front (at zero); these must have counted this test's requests.
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in {text}"))
    };
    assert!(
        value(
            r#"waddlebot_http_requests_total{method="POST",route="/router/events",status="200"}"#
        ) >= 2.0
    );
    assert!(value(r#"waddlebot_events_total{kind="chat_message"}"#) >= 2.0);
    let anonymous = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("answered");
    assert_eq!(anonymous.status(), 401);
    assert!(
        anonymous.headers().contains_key("x-request-id"),
        "generated when absent"
    );

    sigterm(&child);
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("stops within the grace period")
        .expect("exit status");
    assert!(status.success(), "{status}");
}

#[test]
fn dev_mode_is_loopback_only() {
    let sandbox = Sandbox::new();
    let output = sandbox.run(&["serve", "--dev", "--bind", "0.0.0.0:0"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("only listens on loopback"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn serve_on_a_taken_port_says_so() {
    let sandbox = Sandbox::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bound");
    let addr = taken.local_addr().expect("address").to_string();
    let output = sandbox.run(&["serve", "--bind", &addr]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!("cannot listen on {addr}")),
        "{}",
        stderr(&output)
    );
}

/// A fresh PostgreSQL database for one test, dropped at the end; `None` without
/// `WADDLEBOT_TEST_POSTGRES_URL`.
fn scratch_postgres() -> Option<(String, impl Drop)> {
    let base = std::env::var("WADDLEBOT_TEST_POSTGRES_URL").ok()?;
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "wbtest_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let psql = |sql: &str| {
        Command::new("psql")
            .args([base.as_str(), "-q", "-c", sql])
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(psql(&format!("DROP DATABASE IF EXISTS {name}")));
    assert!(psql(&format!("CREATE DATABASE {name}")), "database created");
    let url = match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("WADDLEBOT_TEST_POSTGRES_URL needs a database path"),
    };
    struct DropDatabase(String, String);
    impl Drop for DropDatabase {
        fn drop(&mut self) {
            let _ = Command::new("psql")
                .args([
                    self.0.as_str(),
                    "-q",
                    "-c",
                    &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.1),
                ])
                .status();
        }
    }
    Some((url, DropDatabase(base, name)))
}

#[test]
fn the_same_commands_work_on_postgres() {
    let Some((url, _database)) = scratch_postgres() else {
        eprintln!("skipped: WADDLEBOT_TEST_POSTGRES_URL is not set");
        return;
    };
    let sandbox = Sandbox::new();
    let migrate = sandbox
        .command()
        .env("DATABASE_URL", &url)
        .arg("migrate")
        .output()
        .expect("runs");
    assert!(migrate.status.success(), "{}", stderr(&migrate));
    assert!(
        stdout(&migrate).contains("schema version"),
        "{}",
        stdout(&migrate)
    );
    let added = sandbox
        .command()
        .env("DATABASE_URL", &url)
        .args([
            "run",
            "--level",
            "moderator",
            "!command add !hello Hi {user}!",
        ])
        .output()
        .expect("runs");
    assert_eq!(
        stdout(&added),
        "Command !hello added.\n",
        "{}",
        stderr(&added)
    );
    let hello = sandbox
        .command()
        .env("DATABASE_URL", &url)
        .args(["run", "--user", "alice", "!hello"])
        .output()
        .expect("runs");
    assert_eq!(stdout(&hello), "Hi alice!\n", "{}", stderr(&hello));
}

#[test]
fn an_unreachable_postgres_fails_with_the_host_and_no_password() {
    let sandbox = Sandbox::new();
    let output = sandbox
        .command()
        .env(
            "DATABASE_URL",
            "postgres://bot:hunter2@127.0.0.1:1/waddlebot",
        )
        .args(["run", "!ping"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[tokio::test]
async fn an_older_database_is_upgraded_only_when_asked() {
    let sandbox = Sandbox::new();
    assert!(sandbox.run(&["migrate"]).status.success());
    // Make the file look like one written by an older WaddleBot: undo the newest migration.
    let latest = waddlebot::store::SqliteStore::latest_schema_version();
    let url = format!("sqlite://{}", sandbox.db().display());
    {
        let store = waddlebot::store::SqliteStore::connect(&url)
            .await
            .expect("opened");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM _sqlx_migrations WHERE version = {latest}"
        )))
        .execute(store.pool())
        .await
        .expect("deleted");
        // The table the newest migration (7, audit_log) creates.
        sqlx::query("DROP TABLE audit_log")
            .execute(store.pool())
            .await
            .expect("dropped");
    }
    let refused = sandbox.run(&["run", "!ping"]);
    assert_eq!(refused.status.code(), Some(1));
    let err = stderr(&refused);
    assert!(
        err.contains(&format!(
            "schema version {} but this WaddleBot needs {latest}",
            latest - 1
        )),
        "{err}"
    );
    assert!(err.contains("--migrate"), "{err}");
    let upgraded = sandbox.run(&["--migrate", "run", "!ping"]);
    assert_eq!(stdout(&upgraded), "Pong!\n", "{}", stderr(&upgraded));
    let after = sandbox.run(&["run", "!ping"]);
    assert_eq!(stdout(&after), "Pong!\n", "{}", stderr(&after));
}

#[test]
fn export_and_import_move_a_community_to_another_database() {
    let sandbox = Sandbox::new();
    let added = sandbox.run(&[
        "run",
        "--level",
        "moderator",
        "!command add !hello Hi {user}, #{count}!",
    ]);
    assert!(added.status.success(), "{}", stderr(&added));
    assert_eq!(
        stdout(&sandbox.run(&["run", "--user", "bob", "!hello"])),
        "Hi bob, #1!\n"
    );

    let dump = sandbox.dir.path().join("dump.json");
    let export = sandbox.run(&["export", "--output", dump.to_str().expect("utf-8")]);
    assert!(export.status.success(), "{}", stderr(&export));
    assert!(
        stderr(&export).contains("exported 1 community"),
        "{}",
        stderr(&export)
    );
    let on_stdout = sandbox.run(&["export"]);
    let parsed: serde_json::Value =
        serde_json::from_slice(&on_stdout.stdout).expect("JSON on stdout");
    assert_eq!(
        parsed["communities"][0]["custom_commands"][0]["name"],
        "hello"
    );

    // Into a second SQLite file, and into PostgreSQL when it is configured.
    let other = format!("sqlite://{}", sandbox.dir.path().join("other.db").display());
    let postgres = scratch_postgres();
    let mut targets = vec![other];
    targets.extend(postgres.as_ref().map(|(url, _)| url.clone()));
    for target in &targets {
        let import = sandbox
            .command()
            .env("DATABASE_URL", target)
            .args(["import", dump.to_str().expect("utf-8")])
            .output()
            .expect("runs");
        assert!(import.status.success(), "{target}: {}", stderr(&import));
        assert!(
            stdout(&import).contains("imported 'console:local' as community"),
            "{}",
            stdout(&import)
        );
        let hello = sandbox
            .command()
            .env("DATABASE_URL", target)
            .args(["run", "--user", "alice", "!hello"])
            .output()
            .expect("runs");
        assert_eq!(
            stdout(&hello),
            "Hi alice, #2!\n",
            "{target}: the command and its count moved"
        );

        let again = sandbox
            .command()
            .env("DATABASE_URL", target)
            .args(["import", dump.to_str().expect("utf-8")])
            .output()
            .expect("runs");
        assert_eq!(again.status.code(), Some(1));
        assert!(
            stderr(&again).contains("exists already"),
            "{}",
            stderr(&again)
        );
    }
}

#[test]
fn a_malformed_dump_is_refused_and_nothing_is_written() {
    let sandbox = Sandbox::new();
    let dump = sandbox.dir.path().join("broken.json");
    std::fs::write(
        &dump,
        r#"{"format": "waddlebot-dump", "version": 1, "exported_at": {"secs_since_epoch": 1, "nanos_since_epoch": 0},
           "communities": [{"id": 1, "name": "pond", "created_at": {"secs_since_epoch": 1, "nanos_since_epoch": 0},
                            "aliases": [{"name": 5}]}]}"#,
    )
    .expect("written");
    let import = sandbox.run(&["import", dump.to_str().expect("utf-8")]);
    assert_eq!(import.status.code(), Some(1));
    let message = stderr(&import);
    assert!(message.contains("nothing was imported"), "{message}");
    assert!(message.contains("communities[0].aliases[0]"), "{message}");
    assert!(!message.contains("panicked"), "{message}");

    let listed = sandbox.run(&["export"]);
    let parsed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(
        parsed["communities"],
        serde_json::json!([]),
        "the database is untouched"
    );

    let missing = sandbox.run(&["import", "no-such-file.json"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("cannot read no-such-file.json"),
        "{}",
        stderr(&missing)
    );
}

/// `waddlebot twitch subscribe` against stand-ins for Twitch's OAuth server and Helix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twitch_subscribe_creates_the_channels_subscriptions() {
    use serde_json::json;
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let twitch = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "app-token", "expires_in": 5000000, "token_type": "bearer"
        })))
        .mount(&twitch)
        .await;
    Mock::given(method("GET"))
        .and(path("/helix/users"))
        .and(query_param("login", "pond"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "1337"}]})))
        .mount(&twitch)
        .await;
    Mock::given(method("GET"))
        .and(path("/helix/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "999"}]})))
        .mount(&twitch)
        .await;
    Mock::given(method("GET"))
        .and(path("/helix/eventsub/subscriptions"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [], "pagination": {}})),
        )
        .mount(&twitch)
        .await;
    Mock::given(method("POST"))
        .and(path("/helix/eventsub/subscriptions"))
        .respond_with(|request: &wiremock::Request| {
            let body: serde_json::Value = serde_json::from_slice(&request.body).expect("json");
            ResponseTemplate::new(202).set_body_json(json!({"data": [{
                "id": "new", "status": "webhook_callback_verification_pending",
                "type": body["type"], "version": body["version"],
                "condition": body["condition"], "transport": body["transport"]
            }]}))
        })
        .expect(10)
        .mount(&twitch)
        .await;

    let sandbox = Sandbox::new();
    let run = |callback: &str| {
        sandbox
            .command()
            .args(["twitch", "subscribe", "pond"])
            .env("EVENTSUB_SECRET", "eventsub-secret")
            .env("TWITCH_CLIENT_ID", "client-123")
            .env("TWITCH_CLIENT_SECRET", "shh")
            .env("TWITCH_BOT_TOKEN", "bot-token")
            .env("EVENTSUB_CALLBACK_URL", callback)
            .env("TWITCH_API_URL", twitch.uri())
            .env("TWITCH_AUTH_URL", twitch.uri())
            .output()
            .expect("the binary runs")
    };
    let output =
        tokio::task::block_in_place(|| run("https://bot.example/webhooks/twitch/eventsub"));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output).trim(),
        "pond (1337): 10 created, 0 kept, 0 replaced"
    );

    let insecure =
        tokio::task::block_in_place(|| run("http://bot.example/webhooks/twitch/eventsub"));
    assert!(!insecure.status.success());
    assert!(
        stderr(&insecure).contains("EVENTSUB_CALLBACK_URL"),
        "{}",
        stderr(&insecure)
    );
}

/// `waddlebot discord-commands` registers the bot's commands once, then finds them in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_commands_are_registered_once() {
    use serde_json::json;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let discord = MockServer::start().await;
    let registered = std::sync::Arc::new(std::sync::Mutex::new(json!([])));
    let stored = std::sync::Arc::clone(&registered);
    Mock::given(method("GET"))
        .and(path("/applications/app-1/guilds/G1/commands"))
        .respond_with(move |_: &wiremock::Request| {
            ResponseTemplate::new(200).set_body_json(stored.lock().expect("not poisoned").clone())
        })
        .mount(&discord)
        .await;
    let writer = std::sync::Arc::clone(&registered);
    Mock::given(method("PUT"))
        .and(path("/applications/app-1/guilds/G1/commands"))
        .respond_with(move |request: &wiremock::Request| {
            let body: serde_json::Value = serde_json::from_slice(&request.body).expect("json");
            *writer.lock().expect("not poisoned") = body.clone();
            ResponseTemplate::new(200).set_body_json(body)
        })
        .expect(1)
        .mount(&discord)
        .await;

    let sandbox = Sandbox::new();
    let run = || {
        sandbox
            .command()
            .args(["discord-commands", "--guild", "G1"])
            .env(
                "DISCORD_PUBLIC_KEY",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            )
            .env("DISCORD_BOT_TOKEN", "bot-token")
            .env("DISCORD_APPLICATION_ID", "app-1")
            .env("DISCORD_API_URL", discord.uri())
            .output()
            .expect("the binary runs")
    };
    let first = tokio::task::block_in_place(run);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).contains("registered in guild G1"),
        "{}",
        stdout(&first)
    );
    let names: Vec<String> = registered
        .lock()
        .expect("not poisoned")
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    assert!(
        names.contains(&"waddlebot".to_owned()) && names.contains(&"ping".to_owned()),
        "{names:?}"
    );

    let second = tokio::task::block_in_place(run);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stdout(&second).contains("already registered in guild G1"),
        "{}",
        stdout(&second)
    );
}

/// `!ai` from the terminal: off without a provider (saying what to set), answered through an
/// Ollama stand-in when `AI_PROVIDER=ollama`, and a misconfiguration refused at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_answers_through_the_configured_provider() {
    use serde_json::json;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let ollama = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "model": "llama3.2", "message": {"role": "assistant", "content": "Penguins **waddle**."},
            "done": true, "done_reason": "stop"
        })))
        .expect(1)
        .mount(&ollama)
        .await;
    let sandbox = Sandbox::new();
    let run = |env: &[(&str, &str)]| {
        let mut command = sandbox.command();
        command.args(["run", "!ai", "how do penguins walk?"]);
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().expect("the binary runs")
    };

    let off = tokio::task::block_in_place(|| run(&[]));
    assert!(off.status.success(), "{}", stderr(&off));
    assert!(stdout(&off).contains("AI_PROVIDER"), "{}", stdout(&off));

    let uri = ollama.uri();
    let on =
        tokio::task::block_in_place(|| run(&[("AI_PROVIDER", "ollama"), ("OLLAMA_HOST", &uri)]));
    assert!(on.status.success(), "{}", stderr(&on));
    assert_eq!(stdout(&on).trim(), "🤖 Penguins waddle.");

    let wrong = tokio::task::block_in_place(|| run(&[("AI_PROVIDER", "gemini")]));
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        stderr(&wrong).contains("unknown provider 'gemini'"),
        "{}",
        stderr(&wrong)
    );
}

/// The test RSA key pair the `tests` member keeps (`tests/fixtures/jwt`).
fn jwt_fixture(name: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/jwt")
        .join(name)
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_rs256_tokens_and_writes_aaa_log_lines() {
    let sandbox = Sandbox::new();
    let public = jwt_fixture("test-rs256.pem");
    let private = jwt_fixture("test-rs256.key.pem");
    let mut command = sandbox.command();
    command
        .env("WADDLEBOT_JWT_PUBLIC_KEYS", &public)
        .env("LOG_FORMAT", "aaa");
    let mut child = tokio::process::Command::from(command)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("server starts");
    let base = read_address(&mut child).await;
    let (lines, mut collected) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut errors = BufReader::new(child.stderr.take().expect("stderr")).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = errors.next_line().await {
            let _ = lines.send(line);
        }
    });

    let issue = |extra: &[&str]| {
        let mut command = sandbox.command();
        command.env("WADDLEBOT_JWT_PUBLIC_KEYS", &public);
        let output = command
            .args(["token", "issue", "--subject", "idp", "--role", "collector"])
            .args(extra)
            .output()
            .expect("runs");
        (output.status.success(), stdout(&output), stderr(&output))
    };
    let (ok, _, message) = issue(&[]);
    assert!(!ok, "no HS256 token for an RS256 server");
    assert!(message.contains("--rsa-key"), "{message}");
    let (ok, token, message) = issue(&["--rsa-key", &private]);
    assert!(ok, "{message}");

    let client = reqwest::Client::new();
    let post = |credential: String| {
        client
            .post(format!("{base}/router/events"))
            .bearer_auth(credential)
            .json(&serde_json::json!({
                "platform": "discord", "server_id": "guild", "channel_id": "general",
                "user_id": "1", "username": "alice", "message": "!ping"
            }))
            .send()
    };
    assert_eq!(
        post(token.trim().to_owned())
            .await
            .expect("answered")
            .status(),
        200
    );
    assert_eq!(
        post(format!("{}x", token.trim()))
            .await
            .expect("answered")
            .status(),
        401
    );

    // The refusal is an AAA line: [ts] LEVEL module:version TYPE community=.. user=.. ...
    let line = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = collected.recv().await {
            if line.contains(" AUTH ") {
                return line;
            }
        }
        panic!("no AUTH line");
    })
    .await
    .expect("logged");
    assert!(line.starts_with("[20"), "{line}");
    assert!(
        line.contains(&format!(
            "INFO waddlebot:{} AUTH",
            env!("CARGO_PKG_VERSION")
        )) && line.contains("result=401"),
        "{line}"
    );
    sigterm(&child);
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("stops")
        .expect("status");
    assert!(status.success());
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_raises_its_open_file_limit_to_the_hard_limit() {
    let sandbox = Sandbox::new();
    // Started with a small soft limit, as many systems start services (1,024 or less).
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -Sn 256 && exec '{}' serve --dev --bind 127.0.0.1:0",
            env!("CARGO_BIN_EXE_waddlebot")
        ))
        .current_dir(sandbox.dir.path())
        .env("HOME", sandbox.dir.path())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", sandbox.db().display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("server starts");
    let _base = read_address(&mut child).await;
    let pid = child.id().expect("running");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a file limit");
    let numbers: Vec<&str> = line["Max open files".len()..].split_whitespace().collect();
    assert_eq!(
        numbers[0], numbers[1],
        "soft limit raised to the hard one: {line}"
    );
    assert_ne!(numbers[0], "256", "{line}");
    sigterm(&child);
    let _ = tokio::time::timeout(Duration::from_secs(15), child.wait()).await;
}

#[cfg(unix)]
#[test]
fn the_database_and_an_export_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    let dump = sandbox.dir.path().join("dump.json");
    let output = sandbox.run(&["export", "--output", dump.to_str().expect("utf-8 path")]);
    assert!(output.status.success(), "{}", stderr(&output));
    for file in [dump, sandbox.db()] {
        let mode = std::fs::metadata(&file)
            .expect("written")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}: {mode:o}", file.display());
    }
}

/// Members of the dump's first community, by user id.
fn members_in_export(sandbox: &Sandbox) -> Vec<String> {
    let export = sandbox.run(&["export"]);
    assert!(export.status.success(), "{}", stderr(&export));
    let dump: serde_json::Value = serde_json::from_slice(&export.stdout).expect("JSON");
    let mut ids: Vec<String> = dump["communities"]
        .as_array()
        .expect("communities")
        .iter()
        .flat_map(|community| {
            community["documents"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|document| document["namespace"] == "members")
        .map(|document| {
            document["value"]["user_id"]
                .as_str()
                .expect("user id")
                .to_owned()
        })
        .collect();
    ids.sort_by_key(|id| id.parse::<u32>().unwrap_or(u32::MAX));
    ids
}

/// `serve --dev` on the sandbox's database, its address, and a client posting chat.
async fn dev_server(sandbox: &Sandbox) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::from(sandbox.command())
        .args(["serve", "--dev", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("server starts");
    let base = read_address(&mut child).await;
    (child, base)
}

async fn say_as(
    client: &reqwest::Client,
    base: &str,
    user: u32,
    message: &str,
) -> serde_json::Value {
    let response = client
        .post(format!("{base}/router/events"))
        .json(&serde_json::json!({
            "platform": "twitch", "server_id": "pond", "channel_id": "pond",
            "user_id": user.to_string(), "username": format!("viewer{user}"), "message": message
        }))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 200, "user {user}: {message}");
    response.json().await.expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_seen_are_kept_through_kill_9_after_the_window_and_through_sigterm_at_once() {
    let sandbox = Sandbox::new();
    let client = reqwest::Client::new();
    let ids = |range: std::ops::Range<u32>| range.map(|id| id.to_string()).collect::<Vec<_>>();

    // A raid: thirty new viewers, acknowledged, then the process is killed without warning
    // once the write-behind window (100 ms) has passed.
    let (mut child, base) = dev_server(&sandbox).await;
    for user in 0..30 {
        say_as(&client, &base, user, "hello pond").await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("ended");
    assert_eq!(
        members_in_export(&sandbox),
        ids(0..30),
        "none of the raid is lost"
    );

    // Reads see newcomers before their batch is written.
    let (mut child, base) = dev_server(&sandbox).await;
    say_as(&client, &base, 30, "hello pond").await;
    let answer = say_as(&client, &base, 0, "!rep viewer30").await;
    let text = answer["data"]["replies"][0]["text"]
        .as_str()
        .expect("an answer");
    assert!(text.starts_with("viewer30: 600"), "{text}");

    // A graceful stop right after the events writes what was still waiting.
    for user in 31..40 {
        say_as(&client, &base, user, "hello pond").await;
    }
    sigterm(&child);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stops")
        .expect("ended");
    assert!(status.success(), "{status}");
    assert_eq!(members_in_export(&sandbox), ids(0..40));
}

/// The original's log settings: a log file in `LOG_DIR` named after `MODULE_NAME`, in the
/// chosen format and without colour codes, and the name and version in `/health`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_go_to_the_log_dir_under_the_module_name() {
    let sandbox = Sandbox::new();
    let logs = sandbox.dir.path().join("logs");
    let mut child = tokio::process::Command::from(sandbox.command())
        .args(["serve", "--dev", "--bind", "127.0.0.1:0"])
        .env("LOG_DIR", &logs)
        .env("LOG_FORMAT", "aaa")
        .env("MODULE_NAME", "router")
        .env("MODULE_VERSION", "2.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("server starts");
    let base = read_address(&mut child).await;
    let health: serde_json::Value = reqwest::get(format!("{base}/health"))
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (health["module"].as_str(), health["version"].as_str()),
        (Some("router"), Some("2.0.1"))
    );
    sigterm(&child);
    child.wait().await.expect("stopped");
    let text = std::fs::read_to_string(logs.join("router.log")).expect("the log file");
    assert!(
        text.lines()
            .any(|l| l.contains("INFO router:2.0.1 SYSTEM") && l.contains("listening")),
        "{text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes in a file: {text}"
    );

    let refused = sandbox
        .command()
        .args(["run", "!ping"])
        .env("LOG_LEVEL", "inf")
        .output()
        .expect("runs");
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("LOG_LEVEL"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn a_read_replica_beside_sqlite_is_refused_not_ignored() {
    let sandbox = Sandbox::new();
    let output = sandbox
        .command()
        .args(["run", "!ping"])
        .env("READ_REPLICA_URL", "postgres://reader@replica/waddlebot")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("READ_REPLICA_URL") && err.contains("PostgreSQL"),
        "{err}"
    );
}
