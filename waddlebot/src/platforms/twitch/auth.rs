//! Twitch OAuth: the app access token (client credentials) for EventSub webhook subscriptions,
//! and the bot's user access token, refreshed with its refresh token when Helix refuses it.
//!
//! Both talk to `https://id.twitch.tv/oauth2/token` (the base is configurable,
//! `TWITCH_AUTH_URL`, so tests and staging can point elsewhere).

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::platform::PlatformError;

/// Twitch's OAuth server.
pub const DEFAULT_AUTH_URL: &str = "https://id.twitch.tv";

/// A token is renewed this long before Twitch says it expires.
const EARLY: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Posts a token request and reads the answer; Twitch's `{"status":400,"message":"Invalid
/// refresh token"}` becomes a rejection naming the message.
async fn request_token(
    http: &reqwest::Client,
    auth_url: &str,
    form: &[(&str, &str)],
) -> Result<TokenAnswer, PlatformError> {
    let answer = super::super::send_json(
        http.post(format!("{}/oauth2/token", auth_url.trim_end_matches('/')))
            .form(form),
    )
    .await?;
    serde_json::from_value(answer)
        .map_err(|err| PlatformError::Rejected(format!("Twitch's token answer: {err}")))
}

/// The application's own token (client credentials grant): fetched on first use, renewed a
/// minute before it expires or when Helix refuses it.
pub struct AppToken {
    client_id: String,
    client_secret: String,
    auth_url: String,
    http: reqwest::Client,
    current: tokio::sync::Mutex<Option<(String, Instant)>>,
}

impl std::fmt::Debug for AppToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppToken")
            .field("client_id", &self.client_id)
            .field("auth_url", &self.auth_url)
            .finish_non_exhaustive()
    }
}

impl AppToken {
    /// Tokens for this application (`TWITCH_CLIENT_ID`, `TWITCH_CLIENT_SECRET`).
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        auth_url: impl Into<String>,
        http: reqwest::Client,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            auth_url: auth_url.into(),
            http,
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// The application's client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// A valid token, fetching a new one when needed.
    pub async fn get(&self) -> Result<String, PlatformError> {
        let mut current = self.current.lock().await;
        if let Some((token, until)) = current.as_ref()
            && Instant::now() + EARLY < *until
        {
            return Ok(token.clone());
        }
        let answer = request_token(
            &self.http,
            &self.auth_url,
            &[
                ("client_id", &self.client_id),
                ("client_secret", &self.client_secret),
                ("grant_type", "client_credentials"),
            ],
        )
        .await?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        *current = Some((answer.access_token.clone(), Instant::now() + lifetime));
        Ok(answer.access_token)
    }

    /// Forgets `stale` (Helix refused it), so the next [`get`](Self::get) fetches another.
    pub async fn invalidate(&self, stale: &str) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|(token, _)| token == stale) {
            *current = None;
        }
    }
}

/// What a user token needs to be refreshed.
#[derive(Clone)]
struct Refresh {
    token: String,
    client_id: String,
    client_secret: String,
    auth_url: String,
    http: reqwest::Client,
}

/// The bot account's user access token, and, when a refresh token and the client secret are
/// configured, its renewal: Helix answering 401 triggers one refresh, shared by every request
/// that saw the old token. The refreshed pair is kept in memory.
pub struct UserToken {
    access: tokio::sync::RwLock<String>,
    refresh: tokio::sync::Mutex<Option<Refresh>>,
}

impl std::fmt::Debug for UserToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserToken").finish_non_exhaustive()
    }
}

impl UserToken {
    /// A token used as it is (`oauth:` prefix removed).
    pub fn fixed(access: impl Into<String>) -> Self {
        let access: String = access.into();
        Self {
            access: tokio::sync::RwLock::new(access.trim_start_matches("oauth:").to_owned()),
            refresh: tokio::sync::Mutex::new(None),
        }
    }

    /// A token that can be renewed with `refresh_token` (`TWITCH_BOT_REFRESH_TOKEN`) and the
    /// application's credentials.
    pub fn refreshable(
        access: impl Into<String>,
        refresh_token: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        auth_url: impl Into<String>,
        http: reqwest::Client,
    ) -> Self {
        let mut token = Self::fixed(access);
        *token.refresh.get_mut() = Some(Refresh {
            token: refresh_token.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            auth_url: auth_url.into(),
            http,
        });
        token
    }

    /// The current access token.
    pub async fn get(&self) -> String {
        self.access.read().await.clone()
    }

    /// Renews the token Helix refused (`stale`) and returns the new one; `None` when this
    /// token cannot be refreshed. Callers that saw the same stale token share one refresh.
    pub async fn refresh(&self, stale: &str) -> Option<Result<String, PlatformError>> {
        let mut refresh = self.refresh.lock().await;
        let current = self.get().await;
        if current != stale {
            // Someone else refreshed while we waited.
            return Some(Ok(current));
        }
        let how = refresh.as_mut()?;
        let answer = match request_token(
            &how.http,
            &how.auth_url,
            &[
                ("client_id", &how.client_id),
                ("client_secret", &how.client_secret),
                ("grant_type", "refresh_token"),
                ("refresh_token", &how.token),
            ],
        )
        .await
        {
            Ok(answer) => answer,
            Err(err) => return Some(Err(err)),
        };
        if let Some(next) = answer.refresh_token {
            how.token = next;
        }
        answer
            .access_token
            .clone_into(&mut *self.access.write().await);
        tracing::info!("the Twitch bot token was refreshed");
        Some(Ok(answer.access_token))
    }
}
