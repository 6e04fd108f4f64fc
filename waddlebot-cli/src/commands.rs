//! What each subcommand does.

use std::sync::Arc;

use anyhow::Context as _;
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use waddlebot::{ConsolePlatform, PermissionLevel, Platform};
use waddlebot_router::{Dispatched, Router};
use waddlebot_server::{
    AppState, Config, StartError, app, build_router, migrate, serve, shutdown_signal,
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
    say(&router, speaker, message).await
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
            _ => say(&router, &speaker, text).await?,
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(())
}

/// `waddlebot serve`: the HTTP server until SIGINT/SIGTERM.
pub(crate) async fn serve_http(config: &Config) -> anyhow::Result<()> {
    let router = build_router(config, Vec::new()).await?;
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
    serve(
        listener,
        app(AppState::new(Arc::new(router), config.max_body_bytes)),
        shutdown_signal(),
    )
    .await;
    Ok(())
}

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
