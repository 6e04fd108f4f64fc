//! `waddlebot twitch subscribe|subscriptions|unsubscribe`: EventSub subscriptions through Helix
//! with the application's token.

use anyhow::{Context, bail};
use waddlebot::platforms::twitch::{AppToken, EventSubApi, TwitchPlatform};
use waddlebot_server::Config;

use crate::cli::TwitchAction;

pub(crate) async fn run(config: &Config, action: &TwitchAction) -> anyhow::Result<()> {
    let Some(twitch) = &config.platforms.twitch else {
        bail!(
            "Twitch is not configured: set EVENTSUB_SECRET, TWITCH_CLIENT_ID and TWITCH_BOT_TOKEN"
        );
    };
    let Some(client_secret) = &twitch.client_secret else {
        bail!("managing subscriptions needs the application's token: set TWITCH_CLIENT_SECRET");
    };
    let http = reqwest::Client::builder()
        .user_agent(concat!("WaddleBot/", env!("CARGO_PKG_VERSION")))
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .context("cannot build the HTTP client")?;
    let callback = twitch.callback_url.clone().unwrap_or_default();
    let api = EventSubApi::new(
        AppToken::new(
            &twitch.client_id,
            client_secret,
            &twitch.auth_url,
            http.clone(),
        ),
        &twitch.api_url,
        callback.clone(),
        twitch.eventsub_secret.clone().unwrap_or_default(),
        http.clone(),
    );
    match action {
        TwitchAction::Subscriptions => {
            let subscriptions = api.list().await.context("cannot list subscriptions")?;
            for s in &subscriptions {
                let callback = s
                    .transport
                    .get("callback")
                    .and_then(|c| c.as_str())
                    .unwrap_or("-");
                println!(
                    "{}\t{}\tv{}\t{}\t{}\t{}",
                    s.id, s.status, s.version, s.kind, s.condition, callback
                );
            }
            eprintln!("{} subscription(s)", subscriptions.len());
        }
        TwitchAction::Unsubscribe { ids } => {
            for id in ids {
                api.delete(id)
                    .await
                    .with_context(|| format!("cannot delete subscription {id}"))?;
                println!("deleted {id}");
            }
        }
        TwitchAction::Subscribe { channels } => {
            if twitch.eventsub_secret.is_none() {
                bail!(
                    "webhook subscriptions are signed with EVENTSUB_SECRET: set it (10 to 100 characters)"
                );
            }
            if !callback.starts_with("https://") {
                bail!(
                    "set EVENTSUB_CALLBACK_URL to this server's public HTTPS address, ending in /webhooks/twitch/eventsub"
                );
            }
            let bot = TwitchPlatform::new(twitch.config(), http.clone());
            let bot_id = bot
                .bot_user_id()
                .await
                .context("cannot identify the bot account from TWITCH_BOT_TOKEN")?
                .to_owned();
            let mut refused = 0;
            for channel in channels {
                let broadcaster = if channel.bytes().all(|b| b.is_ascii_digit()) {
                    channel.clone()
                } else {
                    api.user_id(channel)
                        .await
                        .with_context(|| format!("cannot look up {channel}"))?
                        .with_context(|| format!("no Twitch user is called {channel}"))?
                };
                let report = api
                    .sync_channel(&broadcaster, &bot_id)
                    .await
                    .with_context(|| format!("cannot subscribe to {channel}"))?;
                println!(
                    "{channel} ({broadcaster}): {} created, {} kept, {} replaced",
                    report.created.len(),
                    report.kept.len(),
                    report.replaced.len()
                );
                for (kind, why) in &report.refused {
                    refused += 1;
                    println!("  {kind} refused: {why}");
                }
            }
            if refused > 0 {
                bail!(
                    "{refused} subscription(s) were refused; see above (usually a missing scope or authorization)"
                );
            }
        }
    }
    Ok(())
}
