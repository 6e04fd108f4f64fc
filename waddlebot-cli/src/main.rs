//! The `waddlebot` command: parse arguments, build the config, call the library.

mod cli;
mod commands;
mod keys;
mod twitch;

use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Command};

// mimalloc: the router allocates many small strings per event; it measured ~10% faster than
// the system allocator on the router bench (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // One TLS provider for every crate that asks rustls for the process default (libraries
    // never install it; binaries do, first thing).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let config = match cli.config() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("waddlebot: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    if let Err(err) = waddlebot_server::logging::init(&config) {
        eprintln!("waddlebot: {err}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("waddlebot: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Chat(speaker) => commands::chat(&config, speaker).await,
            Command::Run { speaker, message } => {
                commands::run(&config, speaker, &message.join(" ")).await
            }
            Command::Serve { dev, .. } => commands::serve_http(&config, *dev).await,
            Command::Migrate => commands::migrate_db(&config).await,
            Command::Export { community, output } => {
                commands::export(
                    &config,
                    community.map(waddlebot::CommunityId),
                    output.as_deref(),
                )
                .await
            }
            Command::Import { file } => commands::import(&config, file).await,
            Command::Twitch { action } => twitch::run(&config, action).await,
            Command::Apikey { action } => keys::apikey(&config, action).await,
            Command::Token { action } => keys::token(&config, action),
            Command::Portal { action } => keys::portal(&config, action).await,
            Command::DiscordCommands { guild } => {
                commands::discord_commands(&config, guild.clone()).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("waddlebot: {}", reported(&err));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each said once: many errors (sqlx's among them) put
/// their cause in their own text as well as returning it as their source, and `{:#}` would
/// print it again for every level.
fn reported(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let said = cause.to_string();
        if text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    text
}
