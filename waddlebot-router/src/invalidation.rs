//! Cache invalidation across processes: every write through a [`CachedStore`] names what it
//! changed; an [`InvalidationBus`] carries that to every other process, whose caches drop the
//! entry at once instead of serving it until it expires.
//!
//! The Redis bus publishes on one channel and listens on it; after a lost connection it drops
//! every cached entry (it may have missed messages) and listens again.

use std::sync::Weak;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use waddlebot::CommunityId;

use crate::cache::CachedStore;

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Invalidation {
    /// Where an entity belongs (it moved to another community).
    Entity {
        /// The entity's key.
        key: waddlebot::store::EntityKey,
    },
    /// A custom command.
    Command {
        /// Its community.
        community: CommunityId,
        /// Its name.
        name: String,
    },
    /// An alias.
    Alias {
        /// Its community.
        community: CommunityId,
        /// Its name.
        name: String,
    },
    /// A command's overrides.
    Settings {
        /// Its community.
        community: CommunityId,
        /// The command.
        command: String,
    },
    /// A module's install record.
    Install {
        /// Its community.
        community: CommunityId,
        /// The module.
        module: String,
    },
    /// A community's role grants.
    Grants {
        /// The community.
        community: CommunityId,
    },
    /// A community's string rules.
    Rules {
        /// The community.
        community: CommunityId,
    },
    /// A community's remote modules.
    Remote {
        /// The community.
        community: CommunityId,
    },
    /// Everything (after missed messages).
    Everything,
}

/// Carries invalidations to the other processes.
#[async_trait]
pub trait InvalidationBus: Send + Sync {
    /// Tells the other processes. Failures are the bus's to log: a write has already happened.
    async fn publish(&self, change: &Invalidation);

    /// Starts delivering other processes' changes to `cache` (called once, by the router
    /// builder, inside a tokio runtime). Defaults to nothing.
    fn listen(&self, cache: Weak<CachedStore>) {
        let _ = cache;
    }
}

#[cfg(feature = "redis")]
pub use redis_bus::RedisInvalidation;

#[cfg(feature = "redis")]
mod redis_bus {
    use futures_util::StreamExt;
    use redis::AsyncCommands;
    use redis::aio::{ConnectionManager, ConnectionManagerConfig};
    use std::time::Duration;

    use super::*;

    /// Invalidations over Redis pub/sub.
    pub struct RedisInvalidation {
        client: redis::Client,
        publisher: ConnectionManager,
        channel: String,
        subscribed: tokio::sync::watch::Sender<bool>,
    }

    impl std::fmt::Debug for RedisInvalidation {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RedisInvalidation")
                .field("channel", &self.channel)
                .finish_non_exhaustive()
        }
    }

    impl RedisInvalidation {
        /// A bus on the Redis at `url`, channel `<prefix>invalidate`.
        pub fn new(url: &str, prefix: &str) -> Result<Self, redis::RedisError> {
            let client = redis::Client::open(url)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_millis(500)))
                .set_response_timeout(Some(Duration::from_millis(500)))
                .set_number_of_retries(1);
            let publisher = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
            Ok(Self {
                client,
                publisher,
                channel: format!("{prefix}invalidate"),
                subscribed: tokio::sync::watch::Sender::new(false),
            })
        }

        /// Waits until the listener is subscribed (changes published before that are missed
        /// by this process; its entries expire as usual).
        pub async fn subscribed(&self) {
            let mut watch = self.subscribed.subscribe();
            let _ = watch.wait_for(|subscribed| *subscribed).await;
        }
    }

    #[async_trait]
    impl InvalidationBus for RedisInvalidation {
        async fn publish(&self, change: &Invalidation) {
            let Ok(json) = serde_json::to_string(change) else {
                return;
            };
            let mut connection = self.publisher.clone();
            if let Err(err) = connection.publish::<_, _, ()>(&self.channel, json).await {
                tracing::warn!(error = %err, "cache invalidation not published; other processes see the change when their entry expires");
            }
        }

        fn listen(&self, cache: Weak<CachedStore>) {
            let client = self.client.clone();
            let channel = self.channel.clone();
            let subscribed = self.subscribed.clone();
            tokio::spawn(async move {
                let mut first = true;
                loop {
                    if cache.strong_count() == 0 {
                        return;
                    }
                    match client.get_async_pubsub().await {
                        Ok(mut pubsub) => {
                            if let Err(err) = pubsub.subscribe(&channel).await {
                                tracing::warn!(error = %err, "cannot subscribe to cache invalidations");
                            } else {
                                if !first {
                                    // Messages may have been missed while disconnected.
                                    if let Some(cache) = cache.upgrade() {
                                        cache.apply(&Invalidation::Everything);
                                    }
                                }
                                first = false;
                                subscribed.send_replace(true);
                                let mut messages = pubsub.on_message();
                                while let Some(message) = messages.next().await {
                                    let Some(cache) = cache.upgrade() else { return };
                                    let payload: String = message.get_payload().unwrap_or_default();
                                    match serde_json::from_str::<Invalidation>(&payload) {
                                        Ok(change) => cache.apply(&change),
                                        Err(err) => {
                                            tracing::warn!(error = %err, "unreadable cache invalidation")
                                        }
                                    }
                                }
                                tracing::warn!(
                                    "cache invalidation subscription lost; reconnecting"
                                );
                            }
                        }
                        Err(err) => {
                            tracing::debug!(error = %err, "cache invalidation subscriber cannot connect")
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        }
    }
}
