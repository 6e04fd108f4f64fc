//! Getting replies out: [`Router::dispatch`] (handle, then deliver through the event's
//! platform, deferring when the platform's answer window is short), extra replies sent by
//! handlers through their context, and late replies to a live session.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use waddlebot::{
    CommunityId, EntityId, Event, EventId, Outbound, Platform, PlatformError, PlatformKind, Reply,
    ReplySink, SessionId,
};

use crate::overlay::OverlayHub;
use crate::session::SessionError;
use crate::{Outcome, Router, RouterError};

/// What [`Router::dispatch`] did.
#[derive(Debug)]
#[non_exhaustive]
pub enum Dispatched {
    /// Handled and delivered within the platform's answer window.
    Delivered(Delivery),
    /// Still running when the platform's answer window closed: acknowledge or defer now; the
    /// replies are delivered when they come.
    Deferred {
        /// The session the replies belong to.
        session_id: SessionId,
    },
}

/// The outcome, and any reply the platform refused.
#[derive(Debug)]
pub struct Delivery {
    /// The decision.
    pub outcome: Outcome,
    /// Replies that could not be delivered, with the platform's reason.
    pub failed: Vec<(Reply, PlatformError)>,
}

/// Why a late reply was not delivered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LateReplyError {
    /// No live session with that id (never was, or expired).
    #[error("no live session {0}")]
    UnknownSession(SessionId),
    /// The session belongs to another entity than the one named.
    #[error("session {0} belongs to another channel")]
    WrongEntity(SessionId),
    /// No platform of the session's kind is registered.
    #[error("no platform registered for '{0}'")]
    NoPlatform(PlatformKind),
    /// The session store failed.
    #[error(transparent)]
    Sessions(#[from] SessionError),
    /// A reply cannot be delivered as written (an overlay item with a URL the overlay
    /// refuses): the module's mistake, nothing was delivered.
    #[error("{0}")]
    Invalid(String),
}

/// Delivers to one place on one platform, and overlay replies to the community's overlay.
struct PlatformSink {
    platform: Option<Arc<dyn Platform>>,
    /// Every registered platform, for [`ReplySink::send_to`].
    platforms: Arc<HashMap<PlatformKind, Arc<dyn Platform>>>,
    community: CommunityId,
    overlays: Arc<OverlayHub>,
    origin: Origin,
}

/// Where the replies go back to: the event itself (shared, nothing copied for a handler that
/// never sends), or the place a session remembered.
enum Origin {
    Event(Arc<Event>),
    Place {
        server_id: String,
        channel_id: String,
        user_id: String,
        event_id: EventId,
    },
}

impl Origin {
    fn outbound(&self, platform: PlatformKind, reply: Reply) -> Outbound {
        let (server_id, channel_id, user_id, event_id) = match self {
            Self::Event(event) => (
                &event.server_id,
                &event.channel_id,
                &event.user.id,
                &event.id,
            ),
            Self::Place {
                server_id,
                channel_id,
                user_id,
                event_id,
            } => (server_id, channel_id, user_id, event_id),
        };
        Outbound {
            platform,
            server_id: server_id.clone(),
            channel_id: channel_id.clone(),
            user_id: user_id.clone(),
            in_reply_to: Some(event_id.clone()),
            reply,
        }
    }
}

#[async_trait]
impl ReplySink for PlatformSink {
    async fn send(&self, reply: Reply) -> Result<(), PlatformError> {
        if let Reply::Overlay(item) = reply {
            return self
                .overlays
                .show(self.community, item)
                .map(drop)
                .map_err(|err| PlatformError::Rejected(err.to_string()));
        }
        let Some(platform) = &self.platform else {
            return Err(PlatformError::Unsupported(
                "no platform is registered for this event's platform".to_owned(),
            ));
        };
        platform
            .send(self.origin.outbound(platform.kind(), reply))
            .await
    }

    async fn send_to(&self, outbound: Outbound) -> Result<(), PlatformError> {
        let platform = self.platforms.get(&outbound.platform).ok_or_else(|| {
            PlatformError::Unsupported(format!("{} is not connected", outbound.platform))
        })?;
        platform.send(outbound).await
    }
}

impl PlatformSink {
    /// Sends each reply, collecting the refusals.
    async fn send_all(&self, replies: &[Reply]) -> Vec<(Reply, PlatformError)> {
        let mut failed = Vec::new();
        for reply in replies {
            if let Err(err) = self.send(reply.clone()).await {
                tracing::warn!(error = %err, "reply not delivered");
                failed.push((reply.clone(), err));
            }
        }
        failed
    }
}

impl Router {
    /// Where a handler's extra replies for this event go: its platform when one is registered,
    /// the community's overlay for overlay replies.
    pub(crate) fn sink_for(
        &self,
        event: &Arc<Event>,
        community: CommunityId,
    ) -> Option<Arc<dyn ReplySink>> {
        Some(Arc::new(PlatformSink {
            platform: self.platforms.get(&event.platform).cloned(),
            platforms: Arc::clone(&self.platforms),
            community,
            overlays: Arc::clone(&self.overlays),
            origin: Origin::Event(Arc::clone(event)),
        }))
    }

    /// Handles the event and delivers its replies through the platform it came from. When the
    /// platform has an answer window (Discord and Slack: 3 s) and handling takes longer, this
    /// returns [`Dispatched::Deferred`] at the window's end and the replies follow when ready.
    pub async fn dispatch(self: &Arc<Self>, event: Event) -> Result<Dispatched, RouterError> {
        let platform = self
            .platforms
            .get(&event.platform)
            .cloned()
            .ok_or_else(|| RouterError::NoPlatform(event.platform.clone()))?;
        let session = self.new_session_id();
        let Some(window) = platform.limits().answer_window else {
            return self
                .handle_and_deliver(platform, event, session)
                .await
                .map(Dispatched::Delivered);
        };
        let router = Arc::clone(self);
        let task_session = session.clone();
        let mut task = self.spawn(async move {
            router
                .handle_and_deliver(platform, event, task_session)
                .await
        });
        match tokio::time::timeout(window, &mut task).await {
            Ok(Ok(result)) => result.map(Dispatched::Delivered),
            Ok(Err(join)) => {
                tracing::error!(error = %join, "dispatch task failed");
                Err(RouterError::Internal(join.to_string()))
            }
            Err(_window_closed) => {
                tracing::info!(session = %session, "answer window closed; replies will follow");
                Ok(Dispatched::Deferred {
                    session_id: session,
                })
            }
        }
    }

    async fn handle_and_deliver(
        &self,
        platform: Arc<dyn Platform>,
        event: Event,
        session: SessionId,
    ) -> Result<Delivery, RouterError> {
        let origin = Origin::Place {
            server_id: event.server_id.clone(),
            channel_id: event.channel_id.clone(),
            user_id: event.user.id.clone(),
            event_id: event.id.clone(),
        };
        let outcome = self.handle_with_session(event, session).await?;
        let sink = PlatformSink {
            platform: Some(platform),
            platforms: Arc::clone(&self.platforms),
            community: outcome.community_id,
            overlays: Arc::clone(&self.overlays),
            origin,
        };
        let failed = sink.send_all(&outcome.replies).await;
        Ok(Delivery { outcome, failed })
    }

    /// Delivers replies that arrive after the event was handled (an async module answering
    /// through `POST /router/responses`), to the place the session's event came from. Only a
    /// live session is accepted, and only for the entity it belongs to.
    pub async fn late_reply(
        &self,
        session: &SessionId,
        entity: EntityId,
        replies: &[Reply],
    ) -> Result<Vec<(Reply, PlatformError)>, LateReplyError> {
        let info = self
            .sessions
            .get(session)
            .await?
            .ok_or_else(|| LateReplyError::UnknownSession(session.clone()))?;
        if info.entity_id != entity {
            return Err(LateReplyError::WrongEntity(session.clone()));
        }
        for reply in replies {
            if let Reply::Overlay(item) = reply {
                crate::overlay::check(item)
                    .map_err(|err| LateReplyError::Invalid(err.to_string()))?;
            }
        }
        // Overlay replies need no platform; anything else does.
        let platform = self.platforms.get(&info.platform).cloned();
        if platform.is_none()
            && replies
                .iter()
                .any(|reply| !matches!(reply, Reply::Overlay(_)))
        {
            return Err(LateReplyError::NoPlatform(info.platform.clone()));
        }
        let sink = PlatformSink {
            platform,
            platforms: Arc::clone(&self.platforms),
            community: info.community_id,
            overlays: Arc::clone(&self.overlays),
            origin: Origin::Place {
                server_id: info.server_id,
                channel_id: info.channel_id,
                user_id: info.user_id,
                event_id: info.event_id,
            },
        };
        Ok(sink.send_all(replies).await)
    }
}
