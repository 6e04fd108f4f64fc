//! Platform webhooks: the adapter verifies the raw body before anything reads it; a verified
//! delivery is acknowledged at once and its events are handled and answered in the background,
//! so the platform's answer window never depends on a handler.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Body;
use waddlebot::Event;
use waddlebot::platforms::WebhookError;
use waddlebot::platforms::twitch::EventSubMessage;
use waddlebot::store::Expect;
use waddlebot_router::{Dispatched, Router};

use crate::app::{App, BoxError, Failure, ResponseBody};

/// Where Twitch revocations are recorded: one document per subscription type.
pub const TWITCH_REVOCATIONS: &str = "twitch_revocations";

fn empty(status: StatusCode) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

fn plain_text(text: String) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
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
    let router = Arc::clone(router);
    tokio::spawn(async move {
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
