//! Delivering scheduled messages ([`waddlebot::schedule`]) when their time comes.
//!
//! [`Router::start_scheduler`] runs a loop beside the router: it asks the store what is due
//! (on the router's clock), claims each message so no other process delivers it too, sends it
//! through the platform it names and removes it (scheduling the next occurrence of a repeating
//! one). Between rounds it sleeps until the next message is due, or `poll` at most, so messages
//! added by other processes are seen. What fell due while no scheduler ran is delivered at
//! start, once. A platform that refuses is tried again a minute later, [`MAX_ATTEMPTS`] times.

use std::sync::Arc;
use std::time::Duration;

use waddlebot::schedule::{self, Scheduled};
use waddlebot::{Outbound, Reply};

use crate::{Router, metrics_names};

/// Deliveries tried before a message is given up.
pub const MAX_ATTEMPTS: u32 = 5;
/// How long after a failed delivery it is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(60);
/// Messages delivered per round at most (more wait for the next round, at once).
const BATCH: usize = 50;

/// The running scheduler; [`stop`](Self::stop) ends it after the delivery in progress.
#[derive(Debug)]
pub struct SchedulerHandle {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl SchedulerHandle {
    /// Stops the loop and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl Router {
    /// Starts delivering scheduled messages in the background, checking the store at least
    /// every `poll`. Call once per process (several processes may share a store).
    pub fn start_scheduler(self: &Arc<Self>, poll: Duration) -> SchedulerHandle {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let router = Arc::clone(self);
        let task = tokio::spawn(async move {
            tracing::info!(?poll, "scheduler started");
            loop {
                let wait = router.scheduler_round(poll).await;
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = stopped.changed() => break,
                }
            }
            tracing::info!("scheduler stopped");
        });
        SchedulerHandle { stop, task }
    }

    /// Delivers what is due; returns how long to sleep before the next round.
    async fn scheduler_round(&self, poll: Duration) -> Duration {
        let store = self.store().as_ref();
        let now = self.clock().now_millis();
        let due = match schedule::due(store, now, BATCH).await {
            Ok(due) => due,
            Err(err) => {
                tracing::warn!(error = %err, "scheduler: cannot read the schedule");
                return poll;
            }
        };
        let full = due.len() == BATCH;
        for item in due {
            self.deliver_scheduled(&item).await;
        }
        if full {
            return Duration::ZERO;
        }
        let now = self.clock().now_millis();
        match schedule::next_due_ms(store).await {
            Ok(Some(next)) if next > now => poll.min(Duration::from_millis(next - now)),
            _ => poll,
        }
    }

    /// Claims, sends and completes one message; a refusal is retried later.
    async fn deliver_scheduled(&self, item: &Scheduled) {
        let store = self.store().as_ref();
        let now = self.clock().now_millis();
        match schedule::claim(store, item, now).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(err) => {
                tracing::warn!(id = item.id, error = %err, "scheduler: cannot claim");
                return;
            }
        }
        let sent = match self.platforms.get(&item.platform) {
            Some(platform) => platform
                .send(Outbound {
                    platform: item.platform.clone(),
                    server_id: item.server_id.clone(),
                    channel_id: item.channel_id.clone(),
                    user_id: item.user_id.clone(),
                    in_reply_to: None,
                    reply: Reply::text(item.text.clone()),
                })
                .await
                .map_err(|err| err.to_string()),
            None => Err(format!("no {} platform in this process", item.platform)),
        };
        let result = match sent {
            Ok(()) => {
                metrics::counter!(metrics_names::SCHEDULED, "outcome" => "delivered").increment(1);
                schedule::complete(store, item, now).await.map(drop)
            }
            Err(reason) if item.attempts + 1 < MAX_ATTEMPTS => {
                tracing::warn!(
                    id = item.id,
                    reason,
                    "scheduled message not delivered; trying again later"
                );
                metrics::counter!(metrics_names::SCHEDULED, "outcome" => "retried").increment(1);
                let retry =
                    now.saturating_add(u64::try_from(RETRY_AFTER.as_millis()).unwrap_or(u64::MAX));
                schedule::postpone(store, item, retry).await
            }
            Err(reason) => {
                tracing::error!(id = item.id, reason, "scheduled message given up");
                metrics::counter!(metrics_names::SCHEDULED, "outcome" => "given_up").increment(1);
                schedule::cancel(store, item).await.map(drop)
            }
        };
        if let Err(err) = result {
            tracing::warn!(id = item.id, error = %err, "scheduler: cannot update the schedule");
        }
    }
}
