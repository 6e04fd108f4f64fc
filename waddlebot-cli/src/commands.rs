//! What each subcommand does.

use std::io::{Read as _, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use waddlebot::platforms::discord::{CommandScope, CommandSync, application_commands};
use waddlebot::store::dump::{self, Dump};
use waddlebot::{ConsolePlatform, PermissionLevel, Platform};
use waddlebot_router::{Dispatched, Router, UMBRELLA_SLASH_COMMAND};
use waddlebot_server::{
    AppState, Config, StartError, ai_provider, app, authenticator, build_router,
    build_router_with_ai, migrate, open_store, serve, shutdown_signal,
};

use crate::cli::Speaker;

async fn console_router(
    config: &Config,
    platform: ConsolePlatform,
    speaker: &Speaker,
) -> anyhow::Result<Arc<Router>> {
    let platforms: Vec<Arc<dyn Platform>> = if speaker.platform == waddlebot::PlatformKind::Console
    {
        vec![Arc::new(platform)]
    } else {
        // Posing as another platform: replies still go to this terminal.
        vec![Arc::new(PosingConsole {
            kind: speaker.platform.clone(),
            inner: platform,
        })]
    };
    Ok(Arc::new(build_router(config, platforms).await?))
}

/// Dispatches one message and reports replies the terminal refused.
async fn say(router: &Arc<Router>, speaker: &Speaker, text: &str) -> anyhow::Result<()> {
    // The console has no answer window, so dispatch always delivers before returning.
    if let Dispatched::Delivered(delivery) = router.dispatch(speaker.event(text)).await? {
        for (_, err) in &delivery.failed {
            eprintln!("a reply could not be printed: {err}");
        }
    }
    Ok(())
}

/// `waddlebot run`: one message in, every reply printed on its own line.
pub(crate) async fn run(config: &Config, speaker: &Speaker, message: &str) -> anyhow::Result<()> {
    let router = console_router(config, ConsolePlatform::stdout(), speaker).await?;
    let said = say(&router, speaker, message).await;
    finish(&router).await;
    said
}

/// Before a console command exits: the bookkeeping its messages gathered is written.
async fn finish(router: &Router) {
    if !router.drain(SHUTDOWN_DRAIN).await {
        eprintln!("some background work did not finish (see the log)");
    }
}

/// `waddlebot chat`: an interactive session with line editing and history.
pub(crate) async fn chat(config: &Config, speaker: &Speaker) -> anyhow::Result<()> {
    let router = console_router(config, ConsolePlatform::stdout().prefixed("🐧 "), speaker).await?;
    let mut speaker = speaker.clone();
    let mut editor = DefaultEditor::new().context("cannot start the line editor")?;
    let history =
        std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".waddlebot_history"));
    if let Some(path) = &history {
        let _ = editor.load_history(path); // absent on first use
    }
    println!(
        "WaddleBot chat on {} #{} as {} ({}). Try !help. /user NAME, /level LEVEL, /quit.",
        speaker.platform,
        speaker.channel,
        speaker.user_name(),
        speaker.level
    );
    loop {
        let line = match editor.readline(&format!("{}> ", speaker.user_name())) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => break,
            Err(err) => return Err(err).context("cannot read from the terminal"),
        };
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(text);
        match text.split_once(' ').unwrap_or((text, "")) {
            ("/quit" | "/exit", _) => break,
            ("/user", name) if !name.trim().is_empty() => {
                speaker.user = Some(name.trim().to_owned())
            }
            ("/level", level) => match level.parse::<PermissionLevel>() {
                Ok(level) => speaker.level = level,
                Err(err) => println!("{err}"),
            },
            _ => {
                if let Err(err) = say(&router, &speaker, text).await {
                    finish(&router).await;
                    return Err(err);
                }
            }
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    finish(&router).await;
    Ok(())
}

/// `waddlebot discord-commands`: registers the slash commands and says what changed.
pub(crate) async fn discord_commands(config: &Config, guild: Option<String>) -> anyhow::Result<()> {
    let Some(settings) = &config.platforms.discord else {
        anyhow::bail!(
            "Discord is not configured: set DISCORD_PUBLIC_KEY, DISCORD_BOT_TOKEN and DISCORD_APPLICATION_ID"
        );
    };
    let scope = guild.map_or_else(|| settings.command_scope(), CommandScope::Guild);
    let http = reqwest::Client::builder()
        .user_agent(concat!("WaddleBot/", env!("CARGO_PKG_VERSION")))
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .context("cannot build the HTTP client")?;
    let (_, webhooks) = waddlebot_server::platforms::build(&config.platforms, &http);
    let (_, discord) = webhooks.discord.context("Discord is not configured")?;
    let router = build_router(config, Vec::new()).await?;
    let commands = application_commands(router.catalog().specs(), UMBRELLA_SLASH_COMMAND);
    let where_ = match &scope {
        CommandScope::Global => "globally".to_owned(),
        CommandScope::Guild(guild) => format!("in guild {guild}"),
    };
    match discord
        .sync_commands(&scope, &commands)
        .await
        .context("Discord refused the commands")?
    {
        CommandSync::Unchanged(n) => println!("{n} slash commands already registered {where_}"),
        CommandSync::Updated(n) => println!("{n} slash commands registered {where_}"),
    }
    Ok(())
}

/// `waddlebot serve`: the HTTP server until SIGINT/SIGTERM.
pub(crate) async fn serve_http(config: &Config, dev: bool) -> anyhow::Result<()> {
    // Connections are capped by the server's own setting, not the default soft file limit.
    match waddlebot_server::raise_file_limit() {
        Ok(files) => tracing::debug!(files, "open-file limit"),
        Err(err) => tracing::warn!(error = %err, "cannot raise the open-file limit"),
    }
    if dev && !config.bind.ip().is_loopback() {
        anyhow::bail!(
            "--dev turns authentication off, so it only listens on loopback (127.0.0.1 or ::1), not {}",
            config.bind
        );
    }
    let http = reqwest::Client::builder()
        .user_agent(concat!("WaddleBot/", env!("CARGO_PKG_VERSION")))
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .context("cannot build the HTTP client")?;
    let (platforms, webhooks) = waddlebot_server::platforms::build(&config.platforms, &http);
    // On stderr: stdout's first line is the address, which scripts read.
    for line in config.platforms.summary() {
        tracing::info!("{line}");
    }
    let ai = ai_provider(config)?;
    match &ai {
        Some(provider) => tracing::info!(
            provider = provider.name(),
            "AI on (POST /api/v1/ai/chat/completions, !ai)"
        ),
        None => tracing::info!("AI off (set AI_PROVIDER to turn !ai and /api/v1/ai on)"),
    }
    let ai = waddlebot::AiSlot::new(ai);
    // Before the router: it registers its metrics when it is built.
    let metrics = waddlebot_server::install_metrics()
        .inspect_err(
            |err| tracing::warn!(error = %err, "metrics are off: cannot install the recorder"),
        )
        .ok();
    let router = build_router_with_ai(config, platforms, ai.clone()).await?;
    if let (Some((_, discord)), Some(settings)) = (&webhooks.discord, &config.platforms.discord) {
        let discord = Arc::clone(discord);
        let scope = settings.command_scope();
        let commands = application_commands(router.catalog().specs(), UMBRELLA_SLASH_COMMAND);
        tokio::spawn(async move {
            match discord.sync_commands(&scope, &commands).await {
                Ok(done) => tracing::info!(?scope, ?done, "Discord slash commands in place"),
                Err(err) => {
                    tracing::warn!(?scope, error = %err, "cannot register the Discord slash commands")
                }
            }
        });
    }
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    // Printed on stdout so scripts (and tests using port 0) learn the address.
    println!("WaddleBot listening on http://{addr}");
    tracing::info!(%addr, "listening");
    tracing::info!(
        store = %waddlebot_server::redact_url(&config.database_url),
        redis = %config.redis_url.as_deref().map_or_else(|| "off (limits kept in this process)".to_owned(), waddlebot_server::redact_url),
        auth = if dev { "off (--dev)" } else if config.jwt_public_keys.is_empty() { "API keys + HS256 tokens" } else { "API keys + RS256 tokens" },
        "in use"
    );
    let router = Arc::new(router);
    let mut state = AppState::new(Arc::clone(&router), config.max_body_bytes)
        .with_http(config.http.clone())
        .with_ai_api(config.ai_api.clone())
        .with_webhooks(webhooks)
        .with_ai(ai)
        .with_ai_settings(config.ai.clone())
        .with_spotify(waddlebot_server::spotify(config, reqwest::Client::new()))
        .with_module(&config.logs.module_name, &config.logs.module_version);
    if let Some(url) = &config.redis_url {
        state = state.with_check(waddlebot_server::redis_check(url)?);
    }
    if let Some(handle) = metrics {
        state = state.with_metrics(handle);
    }
    if dev {
        tracing::warn!("--dev: authentication is off; every route is open on {addr}");
    } else {
        let (auth, first_key) = authenticator(config, Arc::clone(router.store())).await?;
        state = state.with_auth(auth);
        if let Some(key) = first_key {
            // Shown once, on stderr: only its hash is stored.
            eprintln!(
                "No API key existed, so an admin key was created. It is shown only now; keep it:\n\n    {key}\n\nUse it as `Authorization: Bearer {key}`. Manage keys with `waddlebot apikey`."
            );
        }
    }
    // Reminders and other scheduled messages: checked every second, delivered on time.
    let scheduler = router.start_scheduler(std::time::Duration::from_secs(1));
    serve(listener, app(state), shutdown_signal()).await;
    scheduler.stop().await;
    // Replies still on their way (after a platform's answer window) are delivered first.
    if router.drain(SHUTDOWN_DRAIN).await {
        tracing::info!("background work finished");
    } else {
        tracing::warn!("background work still running after {SHUTDOWN_DRAIN:?}; stopping anyway");
    }
    Ok(())
}

/// How long a shutdown waits for replies still being produced.
const SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// `waddlebot migrate`.
pub(crate) async fn migrate_db(config: &Config) -> anyhow::Result<()> {
    let (applied, version) = migrate(config).await?;
    println!(
        "{}: schema version {version} ({applied} migration{} applied)",
        waddlebot_server::redact_url(&config.database_url),
        if applied == 1 { "" } else { "s" }
    );
    Ok(())
}

/// `waddlebot export`: a JSON dump of every community (or one) on stdout or in a file.
pub(crate) async fn export(
    config: &Config,
    community: Option<waddlebot::CommunityId>,
    output: Option<&Path>,
) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let dump = dump::export(store.as_ref(), community)
        .await
        .context("cannot read the store")?;
    let write = |out: &mut dyn Write| -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, &dump)?;
        writeln!(out)?;
        out.flush()
    };
    match output {
        Some(path) => {
            // A dump holds remote modules' secrets and overlay keys: owner-only (0600).
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = std::io::BufWriter::new(
                options
                    .open(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            );
            write(&mut file).with_context(|| format!("cannot write {}", path.display()))?;
        }
        None => write(&mut std::io::stdout().lock()).context("cannot write the dump")?,
    }
    eprintln!(
        "exported {} communit{} ({} records)",
        dump.communities.len(),
        if dump.communities.len() == 1 {
            "y"
        } else {
            "ies"
        },
        dump.records()
    );
    Ok(())
}

/// `waddlebot import`: check a dump whole, then write it with a progress bar.
pub(crate) async fn import(config: &Config, file: &Path) -> anyhow::Result<()> {
    let bytes = if file == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read the dump from stdin")?;
        bytes
    } else {
        std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let parsed = Dump::from_json(&bytes).context("nothing was imported")?;
    let store = open_store(config).await?;
    // Drawn on stderr, and only when it is a terminal.
    let bar = ProgressBar::new(u64::try_from(parsed.records()).unwrap_or(u64::MAX)).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} records ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let ids = dump::import(store.as_ref(), &parsed, |progress| {
        bar.set_position(u64::try_from(progress.done).unwrap_or(u64::MAX));
    })
    .await;
    bar.finish_and_clear();
    let ids = ids.map_err(|err| {
        let context = if matches!(err, dump::DumpError::Store(_)) {
            "the store failed during the import; records written before the failure stay"
        } else {
            "nothing was imported"
        };
        anyhow::Error::new(err).context(context)
    })?;
    for (community, id) in parsed.communities.iter().zip(ids) {
        println!(
            "imported '{}' as community {id} ({} records)",
            community.name,
            community.records()
        );
    }
    Ok(())
}

/// The console, answering to another platform's name (`run --platform twitch`).
struct PosingConsole {
    kind: waddlebot::PlatformKind,
    inner: ConsolePlatform,
}

#[waddlebot::async_trait]
impl Platform for PosingConsole {
    fn kind(&self) -> waddlebot::PlatformKind {
        self.kind.clone()
    }

    fn limits(&self) -> waddlebot::PlatformLimits {
        self.inner.limits()
    }

    async fn send(&self, outbound: waddlebot::Outbound) -> Result<(), waddlebot::PlatformError> {
        self.inner.send(outbound).await
    }
}
