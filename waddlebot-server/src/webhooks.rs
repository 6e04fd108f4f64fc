//! Platform webhooks: the adapter verifies the raw body before anything reads it; a verified
//! delivery is acknowledged at once and its events are handled and answered in the background,
//! so the platform's answer window never depends on a handler.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Body;
use waddlebot::platforms::WebhookError;
use waddlebot::platforms::discord::{Interaction, interaction_response, parse_interaction};
use waddlebot::platforms::slack::{SlackEvents, SlashCommand, interaction_event};
use waddlebot::platforms::twitch::EventSubMessage;
use waddlebot::store::Expect;
use waddlebot::{Event, Reply};
use waddlebot_router::{Dispatched, Router};

use crate::app::{App, BoxError, Failure, ResponseBody};

/// Where Twitch revocations are recorded: one document per subscription type.
pub const TWITCH_REVOCATIONS: &str = "twitch_revocations";

fn empty(status: StatusCode) -> Response<ResponseBody> {
    let mut response = Response::new(crate::app::full(Bytes::new()));
    *response.status_mut() = status;
    response
}

fn plain_text(text: String) -> Response<ResponseBody> {
    let mut response = Response::new(crate::app::full(text));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A refused delivery: a bad signature, stale or missing header is 403 (Twitch's own sample
/// answers 403), a signed payload we cannot read is 400.
fn refused(platform: &str, err: &WebhookError) -> Failure {
    tracing::warn!(platform, error = %err, "webhook refused");
    let status = match err {
        WebhookError::Malformed(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::FORBIDDEN,
    };
    Failure(status, err.to_string())
}

/// Handles and delivers events one after another, after the webhook has been answered.
fn dispatch_later(router: &Arc<Router>, events: Vec<Event>) {
    if events.is_empty() {
        return;
    }
    let worker = Arc::clone(router);
    router.spawn(async move {
        let router = worker;
        for event in events {
            let id = event.id.clone();
            match router.dispatch(event).await {
                Ok(Dispatched::Delivered(delivery)) => {
                    for (reply, err) in delivery.failed {
                        tracing::warn!(event = %id, error = %err, ?reply, "reply not delivered");
                    }
                }
                Ok(Dispatched::Deferred { session_id }) => {
                    tracing::debug!(event = %id, session = %session_id, "replies will follow");
                }
                Ok(_) => {}
                Err(err) => tracing::error!(event = %id, error = %err, "event not handled"),
            }
        }
    });
}

/// Dispatches every event of a socket transport (Twitch IRC) as it arrives, until the
/// transport closes.
pub(crate) fn pump(router: Arc<Router>, mut events: tokio::sync::mpsc::Receiver<Event>) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            dispatch_later(&router, vec![event]);
        }
    });
}

impl App {
    /// `POST /webhooks/twitch/eventsub`.
    pub(crate) async fn twitch_eventsub<B>(
        &self,
        request: Request<B>,
    ) -> Result<Response<ResponseBody>, Failure>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let state = self.state();
        let Some(verifier) = &state.webhooks.twitch else {
            return Err(Failure(
                StatusCode::NOT_FOUND,
                "Twitch is not configured on this server".to_owned(),
            ));
        };
        let headers = request.headers().clone();
        let body = self.read_body(request).await?;
        match verifier.verify(&headers, &body) {
            // Twitch redelivers until it gets a 2xx: a repeat is acknowledged, not handled.
            Err(WebhookError::Replayed(id)) => {
                tracing::debug!(message = id, "EventSub message already handled");
                Ok(empty(StatusCode::NO_CONTENT))
            }
            Err(err) => Err(refused("twitch", &err)),
            Ok(EventSubMessage::Verification { challenge }) => {
                tracing::info!("EventSub subscription verified");
                Ok(plain_text(challenge))
            }
            Ok(EventSubMessage::Revocation {
                subscription_type,
                reason,
            }) => {
                tracing::warn!(
                    subscription = subscription_type,
                    reason,
                    "Twitch revoked an EventSub subscription"
                );
                let at = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let record = serde_json::json!({ "reason": reason, "at_unix_secs": at });
                if let Err(err) = state
                    .router
                    .store()
                    .put_document(TWITCH_REVOCATIONS, &subscription_type, &record, Expect::Any)
                    .await
                {
                    tracing::error!(error = %err, "revocation not recorded");
                }
                Ok(empty(StatusCode::NO_CONTENT))
            }
            Ok(EventSubMessage::Notification { events, .. }) => {
                dispatch_later(&state.router, events);
                Ok(empty(StatusCode::NO_CONTENT))
            }
            Ok(_) => Ok(empty(StatusCode::NO_CONTENT)),
        }
    }
}

/// How long a command may run before the 3-second window of Slack and Discord forces an early
/// answer (an acknowledgement now, the reply later).
const ANSWER_BUDGET: std::time::Duration = std::time::Duration::from_millis(2500);

fn json_response(value: &serde_json::Value) -> Response<ResponseBody> {
    crate::app::json(StatusCode::OK, value)
}

/// A slash command's answer message: every text-like reply in one message, shown to the
/// channel unless every reply was meant for the user alone. `None` when there is no text.
fn slash_answer(replies: &[Reply]) -> Option<serde_json::Value> {
    let texts: Vec<String> = replies
        .iter()
        .filter_map(waddlebot::platforms::reply_text)
        .collect();
    if texts.is_empty() {
        return None;
    }
    let private = replies
        .iter()
        .all(|reply| matches!(reply, Reply::Ephemeral { .. } | Reply::Whisper { .. }));
    Some(serde_json::json!({
        "response_type": if private { "ephemeral" } else { "in_channel" },
        "text": texts.join("\n"),
    }))
}

impl App {
    /// Verifies a Slack request and gives its body; `Err` is the answer to give.
    async fn slack_verified<B>(
        &self,
        request: Request<B>,
    ) -> Result<(&waddlebot::platforms::slack::SlackVerifier, Bytes), Failure>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let Some(verifier) = &self.state().webhooks.slack else {
            return Err(Failure(
                StatusCode::NOT_FOUND,
                "Slack is not configured on this server".to_owned(),
            ));
        };
        let headers = request.headers().clone();
        let body = self.read_body(request).await?;
        verifier
            .verify(&headers, &body)
            .map_err(|err| refused("slack", &err))?;
        Ok((verifier, body))
    }

    /// `POST /webhooks/slack/events`.
    pub(crate) async fn slack_events<B>(
        &self,
        request: Request<B>,
    ) -> Result<Response<ResponseBody>, Failure>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let (verifier, body) = self.slack_verified(request).await?;
        match verifier.parse_events(&body) {
            Ok(SlackEvents::UrlVerification { challenge }) => Ok(plain_text(challenge)),
            Ok(SlackEvents::Callback { events }) => {
                dispatch_later(&self.state().router, events);
                Ok(empty(StatusCode::OK))
            }
            Ok(_) => Ok(empty(StatusCode::OK)),
            // A retry of an event already handled: acknowledged, not handled again.
            Err(WebhookError::Replayed(id)) => {
                tracing::debug!(event = id, "Slack retry of an event already handled");
                Ok(empty(StatusCode::OK))
            }
            Err(err) => Err(refused("slack", &err)),
        }
    }

    /// `POST /webhooks/slack/commands`: answered in the response when the command is done
    /// within Slack's window, else acknowledged and answered through `response_url`.
    pub(crate) async fn slack_command<B>(
        &self,
        request: Request<B>,
    ) -> Result<Response<ResponseBody>, Failure>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let (_, body) = self.slack_verified(request).await?;
        let command = SlashCommand::from_form(&body).map_err(|err| refused("slack", &err))?;
        let http = self.state().webhooks.http.clone();
        let response_url = command.response_url.clone();
        let later = |replies: Vec<Reply>| async move {
            let Some(answer) = slash_answer(&replies) else {
                return;
            };
            if let Err(err) = http.post(&response_url).json(&answer).send().await {
                tracing::warn!(error = %err, "late slash command answer not delivered");
            }
        };
        let answer = answer_in_window(&self.state().router, command.to_event(), later).await?;
        Ok(answer
            .as_deref()
            .and_then(slash_answer)
            .map_or_else(|| empty(StatusCode::OK), |answer| json_response(&answer)))
    }

    /// `POST /webhooks/slack/interactivity`: acknowledged at once, handled in the background.
    pub(crate) async fn slack_interactivity<B>(
        &self,
        request: Request<B>,
    ) -> Result<Response<ResponseBody>, Failure>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let (_, body) = self.slack_verified(request).await?;
        let event = interaction_event(&body).map_err(|err| refused("slack", &err))?;
        dispatch_later(&self.state().router, event.into_iter().collect());
        Ok(empty(StatusCode::OK))
    }
}

/// The reply given when the router itself failed (a store outage): the cause is logged.
const SORRY: &str = "Sorry, that could not be handled right now. Try again in a moment.";

/// Runs an event for up to [`ANSWER_BUDGET`]: `Some(replies)` when it is done in time (a router
/// failure becomes an apology); `None` when it is slower, after arranging for `later` to get the
/// replies when they come.
async fn answer_in_window<F, Fut>(
    router: &Arc<Router>,
    event: Event,
    later: F,
) -> Result<Option<Vec<Reply>>, Failure>
where
    F: FnOnce(Vec<Reply>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let worker = Arc::clone(router);
    let mut task = router.spawn(async move { worker.handle(event).await });
    let replies = |handled: Result<waddlebot_router::Outcome, waddlebot_router::RouterError>| {
        handled
            .map(|outcome| outcome.replies)
            .unwrap_or_else(|err| {
                tracing::error!(error = %err, "event not handled");
                vec![Reply::ephemeral(SORRY)]
            })
    };
    match tokio::time::timeout(ANSWER_BUDGET, &mut task).await {
        Ok(Ok(handled)) => Ok(Some(replies(handled))),
        Ok(Err(join)) => Err(Failure(StatusCode::INTERNAL_SERVER_ERROR, join.to_string())),
        Err(_slow) => {
            router.spawn(async move {
                match task.await {
                    Ok(handled) => later(replies(handled)).await,
                    Err(join) => tracing::error!(error = %join, "late answer task failed"),
                }
            });
            Ok(None)
        }
    }
}

/// Discord's autocomplete answers at most this many choices.
const MAX_CHOICES: usize = 25;

impl App {
    /// `POST /webhooks/discord/interactions`: PING → PONG; autocomplete from the command
    /// catalogue; a command or component answered within Discord's 3 seconds, or deferred
    /// (type 5) and followed up on the interaction webhook.
    pub(crate) async fn discord_interaction<B>(
        &self,
        request: Request<B>,
    ) -> Result<Response<ResponseBody>, Failure>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let Some((verifier, discord)) = &self.state().webhooks.discord else {
            return Err(Failure(
                StatusCode::NOT_FOUND,
                "Discord is not configured on this server".to_owned(),
            ));
        };
        let headers = request.headers().clone();
        let body = self.read_body(request).await?;
        if let Err(err) = verifier.verify(&headers, &body) {
            // Discord requires 401 for a bad signature (and tests it).
            tracing::warn!(platform = "discord", error = %err, "webhook refused");
            return Err(Failure(StatusCode::UNAUTHORIZED, err.to_string()));
        }
        let event = match parse_interaction(&body).map_err(|err| refused("discord", &err))? {
            Interaction::Ping => return Ok(json_response(&serde_json::json!({ "type": 1 }))),
            Interaction::Autocomplete { typed, .. } => {
                let typed = typed.trim_start_matches(['!', '/']).to_lowercase();
                let choices: Vec<serde_json::Value> = self
                    .state()
                    .router
                    .catalog()
                    .specs()
                    .iter()
                    .filter(|spec| spec.name.starts_with(&typed))
                    .take(MAX_CHOICES)
                    .map(|spec| serde_json::json!({ "name": spec.name, "value": spec.name }))
                    .collect();
                return Ok(json_response(&serde_json::json!({
                    "type": 8, "data": { "choices": choices }
                })));
            }
            Interaction::Event(event) => *event,
            _ => return Ok(empty(StatusCode::NO_CONTENT)),
        };
        let token = event
            .metadata
            .get("interaction_token")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let discord = Arc::clone(discord);
        let later = |replies: Vec<Reply>| async move {
            if let Err(err) = discord.follow_up(&token, &replies).await {
                tracing::warn!(error = %err, "deferred interaction answer not delivered");
            }
        };
        Ok(json_response(
            &match answer_in_window(&self.state().router, event, later).await? {
                Some(replies) => interaction_response(&replies),
                None => serde_json::json!({ "type": 5 }),
            },
        ))
    }
}
