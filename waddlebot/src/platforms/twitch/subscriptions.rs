//! Managing EventSub subscriptions through Helix (`/helix/eventsub/subscriptions`) with the
//! application's token: create, list (every page), delete, and [`EventSubApi::sync_channel`],
//! which makes one channel's subscriptions what the bot needs, idempotently.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::auth::AppToken;
use crate::platform::PlatformError;

/// One EventSub subscription as Helix describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSubSubscription {
    /// Twitch's id for it.
    pub id: String,
    /// `enabled`, `webhook_callback_verification_pending`, `notification_failures_exceeded`...
    pub status: String,
    /// The subscription type (`channel.follow`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its version (`"2"` for `channel.follow`).
    pub version: String,
    /// Whose events (`{"broadcaster_user_id": "…"}`).
    pub condition: Value,
    /// Where they are delivered.
    #[serde(default)]
    pub transport: Value,
}

impl EventSubSubscription {
    /// Whether Twitch still delivers (or is verifying) it; any other status is dead and has to
    /// be replaced.
    pub fn is_alive(&self) -> bool {
        matches!(
            self.status.as_str(),
            "enabled" | "webhook_callback_verification_pending"
        )
    }
}

/// A subscription to ask for: type, version, condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The type.
    pub kind: &'static str,
    /// The version.
    pub version: &'static str,
    /// The condition.
    pub condition: Value,
}

/// Every subscription the Twitch adapter turns into events, for one channel. `bot_user_id`
/// reads chat (it must be allowed to: a moderator, or `channel:bot` granted) and moderates the
/// follow events.
pub fn channel_subscriptions(broadcaster_id: &str, bot_user_id: &str) -> Vec<Wanted> {
    let broadcaster = json!({ "broadcaster_user_id": broadcaster_id });
    let simple = |kind| Wanted {
        kind,
        version: "1",
        condition: broadcaster.clone(),
    };
    vec![
        Wanted {
            kind: "channel.chat.message",
            version: "1",
            condition: json!({ "broadcaster_user_id": broadcaster_id, "user_id": bot_user_id }),
        },
        Wanted {
            kind: "channel.follow",
            version: "2",
            condition: json!({ "broadcaster_user_id": broadcaster_id, "moderator_user_id": bot_user_id }),
        },
        simple("channel.subscribe"),
        simple("channel.subscription.gift"),
        simple("channel.subscription.message"),
        simple("channel.cheer"),
        Wanted {
            kind: "channel.raid",
            version: "1",
            condition: json!({ "to_broadcaster_user_id": broadcaster_id }),
        },
        simple("stream.online"),
        simple("stream.offline"),
        simple("channel.ban"),
    ]
}

/// What [`EventSubApi::sync_channel`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Types created.
    pub created: Vec<String>,
    /// Types that were already there and alive.
    pub kept: Vec<String>,
    /// Dead subscriptions deleted (and created again), by type.
    pub replaced: Vec<String>,
    /// Types Twitch refused, with its reason (a missing scope or authorization).
    pub refused: Vec<(String, String)>,
}

/// EventSub subscriptions over Helix, delivered by webhook to `callback`, signed with `secret`.
#[derive(Debug)]
pub struct EventSubApi {
    token: AppToken,
    api_url: String,
    callback: String,
    secret: String,
    http: reqwest::Client,
}

impl EventSubApi {
    /// The API for this application, delivering to `callback` (`EVENTSUB_CALLBACK_URL`, HTTPS
    /// on port 443, ending in `/webhooks/twitch/eventsub`) with `secret` (`EVENTSUB_SECRET`).
    pub fn new(
        token: AppToken,
        api_url: &str,
        callback: impl Into<String>,
        secret: impl Into<String>,
        http: reqwest::Client,
    ) -> Self {
        Self {
            token,
            api_url: api_url.trim_end_matches('/').to_owned(),
            callback: callback.into(),
            secret: secret.into(),
            http,
        }
    }

    /// A Helix call with the app token; a 401 renews the token and tries once more.
    async fn call(
        &self,
        make: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<Value, PlatformError> {
        let token = self.token.get().await?;
        match super::super::send_json(make(&token)).await {
            Err(PlatformError::Rejected(why)) if why.starts_with("HTTP 401") => {
                self.token.invalidate(&token).await;
                let token = self.token.get().await?;
                super::super::send_json(make(&token)).await
            }
            other => other,
        }
    }

    fn request(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/helix/{path}", self.api_url))
            .bearer_auth(token)
            .header("Client-Id", self.token.client_id())
    }

    /// A user's id from their login, with the app token.
    pub async fn user_id(&self, login: &str) -> Result<Option<String>, PlatformError> {
        let answer = self
            .call(|token| {
                self.request(reqwest::Method::GET, "users", token)
                    .query(&[("login", login.trim_start_matches('#'))])
            })
            .await?;
        Ok(answer
            .pointer("/data/0/id")
            .and_then(Value::as_str)
            .map(str::to_owned))
    }

    /// Creates one subscription. Twitch then sends the callback a verification challenge,
    /// which the server's `/webhooks/twitch/eventsub` answers.
    pub async fn create(&self, wanted: &Wanted) -> Result<EventSubSubscription, PlatformError> {
        let body = json!({
            "type": wanted.kind,
            "version": wanted.version,
            "condition": wanted.condition,
            "transport": { "method": "webhook", "callback": self.callback, "secret": self.secret },
        });
        let answer = self
            .call(|token| {
                self.request(reqwest::Method::POST, "eventsub/subscriptions", token)
                    .json(&body)
            })
            .await?;
        first_subscription(&answer)
    }

    /// Every subscription of this application, following pagination.
    pub async fn list(&self) -> Result<Vec<EventSubSubscription>, PlatformError> {
        let items = super::all_pages(|cursor| {
            self.call(move |token| {
                let request = self.request(reqwest::Method::GET, "eventsub/subscriptions", token);
                match &cursor {
                    Some(after) => request.query(&[("after", after)]),
                    None => request,
                }
            })
        })
        .await?;
        serde_json::from_value(Value::Array(items))
            .map_err(|err| PlatformError::Rejected(format!("Helix subscriptions: {err}")))
    }

    /// Deletes one subscription.
    pub async fn delete(&self, id: &str) -> Result<(), PlatformError> {
        self.call(|token| {
            self.request(reqwest::Method::DELETE, "eventsub/subscriptions", token)
                .query(&[("id", id)])
        })
        .await
        .map(|_| ())
    }

    /// Makes the channel's subscriptions [`channel_subscriptions`]: alive ones to this callback
    /// are kept, dead ones deleted and created again, missing ones created. Running it twice
    /// changes nothing the second time.
    pub async fn sync_channel(
        &self,
        broadcaster_id: &str,
        bot_user_id: &str,
    ) -> Result<SyncReport, PlatformError> {
        let existing = self.list().await?;
        let mut report = SyncReport::default();
        for wanted in channel_subscriptions(broadcaster_id, bot_user_id) {
            let same: Vec<&EventSubSubscription> = existing
                .iter()
                .filter(|s| {
                    s.kind == wanted.kind
                        && s.version == wanted.version
                        && s.condition == wanted.condition
                        && s.transport.get("callback").and_then(Value::as_str)
                            == Some(self.callback.as_str())
                })
                .collect();
            if same.iter().any(|s| s.is_alive()) {
                report.kept.push(wanted.kind.to_owned());
                continue;
            }
            for dead in &same {
                self.delete(&dead.id).await?;
            }
            match self.create(&wanted).await {
                Ok(_) if same.is_empty() => report.created.push(wanted.kind.to_owned()),
                Ok(_) => report.replaced.push(wanted.kind.to_owned()),
                // A missing scope or authorization for one type must not stop the others.
                Err(PlatformError::Rejected(why)) => {
                    report.refused.push((wanted.kind.to_owned(), why));
                }
                Err(other) => return Err(other),
            }
        }
        Ok(report)
    }
}

fn first_subscription(answer: &Value) -> Result<EventSubSubscription, PlatformError> {
    answer
        .pointer("/data/0")
        .cloned()
        .ok_or_else(|| PlatformError::Rejected("Helix created no subscription".to_owned()))
        .and_then(|data| {
            serde_json::from_value(data)
                .map_err(|err| PlatformError::Rejected(format!("Helix subscription: {err}")))
        })
}
