//! Events that are not commands go to every handler subscribed to their kind, in priority
//! order; neighbouring parallel handlers run together, at most [`PARALLEL_LIMIT`] at once.

use crate::cache::CommunityView;
use std::sync::Arc;

use futures_util::StreamExt;
use serde::Serialize;
use waddlebot::{
    Args, CommandError, ComponentId, Context, Event, EventHandler, EventKind, Mode, Reply,
    SessionId, StoreError, Subscription,
};

use crate::Router;

/// Most parallel handlers run at once for one event.
pub const PARALLEL_LIMIT: usize = 8;

/// What one event handler did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandlerReport {
    /// The handler's module.
    pub module: String,
    /// How many replies it gave.
    pub replies: usize,
    /// Set when it failed: a user-safe summary (details are logged).
    pub error: Option<String>,
}

/// Which handlers an event's outcome reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reports {
    /// Every handler run (events that are not commands).
    Every,
    /// Only handlers that answered or failed (the observers of a command).
    Speaking,
}

/// Adds one handler's replies (or its error) to the event's totals.
fn collect(
    replies: &mut Vec<Reply>,
    reports: &mut Vec<HandlerReport>,
    wanted: Reports,
    module: &str,
    got: Option<Vec<Reply>>,
    error: Option<String>,
) {
    let mut got = got.unwrap_or_default();
    if wanted == Reports::Every || !got.is_empty() || error.is_some() {
        reports.push(HandlerReport {
            module: module.to_owned(),
            replies: got.len(),
            error,
        });
    }
    replies.append(&mut got);
}

/// A registered event handler.
#[derive(Clone)]
pub(crate) struct Subscriber {
    pub(crate) subscription: Subscription,
    pub(crate) handler: Arc<dyn EventHandler>,
}

impl Router {
    /// Runs the subscribers of a non-command event and collects their replies in priority order.
    pub(crate) async fn fan_out(
        &self,
        event: Arc<Event>,
        entity: &waddlebot::store::Entity,
        view: &CommunityView,
        session: &SessionId,
        wanted: Reports,
    ) -> Result<(Vec<Reply>, Vec<HandlerReport>), StoreError> {
        let kind = event.kind.name();
        // A component interaction goes only to the module named in its custom_id.
        let owner = match &event.kind {
            EventKind::ComponentInteraction { custom_id, .. } => {
                Some(ComponentId::parse(custom_id).map_or("", |id| id.module))
            }
            _ => None,
        };
        let chosen: Vec<&Subscriber> = self
            .subscribers()
            .iter()
            .filter(|subscriber| {
                let subscription = &subscriber.subscription;
                subscription.covers(kind)
                    && owner.is_none_or(|m| m == subscription.module)
                    && self.policy().module_enabled(view, &subscription.module)
            })
            .collect();
        let mut replies = Vec::new();
        let mut reports = Vec::new();
        // One sink for all of them: every reply goes back to where the event came from.
        let sink = if chosen.is_empty() {
            None
        } else {
            self.sink_for(&event, entity.community_id)
        };
        let mut index = 0;
        while index < chosen.len() {
            // A run of parallel subscribers goes together; a sequential one goes alone.
            let end = if chosen[index].subscription.mode == Mode::Parallel {
                chosen[index..]
                    .iter()
                    .position(|s| s.subscription.mode != Mode::Parallel)
                    .map_or(chosen.len(), |offset| index + offset)
            } else {
                index + 1
            };
            let group = &chosen[index..end];
            // Futures collected first: a lazily mapped stream of borrowing futures trips the
            // compiler's higher-ranked Send check in callers that box this future.
            let pending: Vec<_> = group
                .iter()
                .map(|subscriber| self.run_subscriber(subscriber, &event, entity, sink.clone()))
                .collect();
            // A small group (the usual case) is simply joined; a large one is bounded.
            let results: Vec<_> = if pending.len() <= PARALLEL_LIMIT {
                futures_util::future::join_all(pending).await
            } else {
                futures_util::stream::iter(pending)
                    .buffered(PARALLEL_LIMIT)
                    .collect()
                    .await
            };
            for (subscriber, result) in group.iter().zip(results) {
                let module = &subscriber.subscription.module;
                let error = result.as_ref().err().map(|err| {
                    if err.is_user_error() {
                        err.to_string()
                    } else {
                        tracing::error!(module, error = %err, "event handler failed");
                        "failed".to_owned()
                    }
                });
                collect(
                    &mut replies,
                    &mut reports,
                    wanted,
                    module,
                    result.ok(),
                    error,
                );
            }
            index = end;
        }
        // Remote modules come after the local handlers, all together. Their calls (HTTP
        // clients, retries) make a large future: boxed, so an event without remote modules
        // does not carry (and copy) its space.
        if owner.is_none() && !view.remote_modules().is_empty() {
            for (module, result) in
                Box::pin(self.remote_event_replies(&event, entity, view, session)).await?
            {
                let error = result.as_ref().err().map(|failure| format!("{failure:?}"));
                collect(
                    &mut replies,
                    &mut reports,
                    wanted,
                    &module,
                    result.ok(),
                    error,
                );
            }
        }
        Ok((replies, reports))
    }

    async fn run_subscriber(
        &self,
        subscriber: &Subscriber,
        event: &Arc<Event>,
        entity: &waddlebot::store::Entity,
        sink: Option<Arc<dyn waddlebot::ReplySink>>,
    ) -> Result<Vec<Reply>, CommandError> {
        let ctx = Context::new(
            entity.community_id,
            entity.id,
            Arc::clone(event),
            event.kind.name(),
            Args::parse(&event.text),
            Arc::clone(self.store()),
            Arc::clone(self.catalog()),
        )
        .with_clock(Arc::clone(self.clock()));
        let ctx = match sink {
            Some(sink) => ctx.with_sink(sink),
            None => ctx,
        };
        self.guarded(
            &subscriber.subscription.module,
            subscriber.handler.on_event(ctx),
        )
        .await
    }
}
