//! Messages to deliver later (reminders, event reminders), kept in the [`Store`] so they
//! survive restarts.
//!
//! Modules [`schedule`] a [`Scheduled`] message; the router's scheduler
//! (`waddlebot_router::Router::start_scheduler`) delivers each once its time has come, to the
//! channel it names, and schedules the next occurrence of a repeating one. Messages whose time
//! passed while no scheduler ran are delivered when one starts, once.
//!
//! Entries live in the bot-wide [`NAMESPACE`], keyed by due time then id, so the first page of
//! the namespace is what is due next. A scheduler *claims* an entry (a compare-and-set write)
//! before delivering it, so two processes sharing a store never both deliver it; a claim left by
//! a process that died is taken over after [`CLAIM_FOR`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::{Expect, Page, Store, StoreError};
use crate::{CommunityId, PlatformKind};

/// The namespace scheduled messages are kept in.
pub const NAMESPACE: &str = "schedule";
/// How long a claim keeps other schedulers off an entry.
pub const CLAIM_FOR: Duration = Duration::from_secs(60);

/// A message to deliver at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheduled {
    /// Unique, chosen by the module (`rem-…`).
    pub id: String,
    /// When to deliver, in Unix milliseconds.
    pub due_ms: u64,
    /// The community it belongs to.
    pub community_id: CommunityId,
    /// Where to deliver.
    pub platform: PlatformKind,
    /// The server (guild, workspace, Twitch channel).
    pub server_id: String,
    /// The channel.
    pub channel_id: String,
    /// Who asked for it (mentioned, or whispered on platforms that deliver that way).
    pub user_id: String,
    /// The module that made it (`reminders`, `calendar`).
    pub module: String,
    /// What to say.
    pub text: String,
    /// Repeat every this many seconds (daily 86 400, weekly 604 800); `None`: once.
    pub repeat_secs: Option<u64>,
    /// Deliveries that failed so far.
    #[serde(default)]
    pub attempts: u32,
    /// Set while a scheduler delivers it: until when (Unix milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_until_ms: Option<u64>,
}

impl Scheduled {
    /// Its key in [`NAMESPACE`]: the due time (zero-padded, so keys sort by time), then the id.
    pub fn key(&self) -> String {
        key(self.due_ms, &self.id)
    }

    /// The next occurrence after `now_ms` of a repeating message (missed ones are skipped, not
    /// delivered in a burst); `None` for a one-off.
    pub fn next_after(&self, now_ms: u64) -> Option<Scheduled> {
        let every = self.repeat_secs?.max(60).saturating_mul(1000);
        let mut due = self.due_ms.saturating_add(every);
        if due <= now_ms {
            let behind = (now_ms - due) / every + 1;
            due = due.saturating_add(behind.saturating_mul(every));
        }
        Some(Scheduled {
            due_ms: due,
            attempts: 0,
            claimed_until_ms: None,
            ..self.clone()
        })
    }
}

fn key(due_ms: u64, id: &str) -> String {
    format!("{due_ms:020}:{id}")
}

fn decode(value: serde_json::Value) -> Result<Scheduled, StoreError> {
    serde_json::from_value(value)
        .map_err(|err| StoreError::Backend(format!("malformed scheduled message: {err}").into()))
}

fn encode(item: &Scheduled) -> serde_json::Value {
    serde_json::to_value(item).unwrap_or_default()
}

/// Keeps `item` for delivery at its time.
pub async fn schedule(store: &dyn Store, item: &Scheduled) -> Result<(), StoreError> {
    store
        .put_document(NAMESPACE, &item.key(), &encode(item), Expect::Absent)
        .await
        .map(drop)
}

/// Removes a scheduled message; `false` if it was not there (delivered, or never made).
pub async fn cancel(store: &dyn Store, item: &Scheduled) -> Result<bool, StoreError> {
    store.delete_document(NAMESPACE, &item.key()).await
}

/// Up to `limit` messages due at `now_ms` that no live claim holds, earliest first.
pub async fn due(
    store: &dyn Store,
    now_ms: u64,
    limit: usize,
) -> Result<Vec<Scheduled>, StoreError> {
    let mut out = Vec::new();
    let mut after = None;
    'pages: loop {
        let page = store
            .list_documents(
                NAMESPACE,
                "",
                &Page {
                    after: after.take(),
                    limit: 100,
                },
            )
            .await?;
        let full = page.len() == 100;
        for document in page {
            after = Some(document.key.clone());
            let item = decode(document.value)?;
            if item.due_ms > now_ms {
                break 'pages;
            }
            if item.claimed_until_ms.is_none_or(|until| until <= now_ms) {
                out.push(item);
                if out.len() >= limit {
                    break 'pages;
                }
            }
        }
        if !full {
            break;
        }
    }
    Ok(out)
}

/// When the earliest message is due, if any is scheduled.
pub async fn next_due_ms(store: &dyn Store) -> Result<Option<u64>, StoreError> {
    let page = store.list_documents(NAMESPACE, "", &Page::first(1)).await?;
    page.into_iter()
        .next()
        .map(|document| decode(document.value).map(|item| item.due_ms))
        .transpose()
}

/// Takes `item` for delivery until `now_ms + CLAIM_FOR`; `false` when another scheduler has
/// it (or it is gone).
pub async fn claim(store: &dyn Store, item: &Scheduled, now_ms: u64) -> Result<bool, StoreError> {
    let Some(document) = store.get_document(NAMESPACE, &item.key()).await? else {
        return Ok(false);
    };
    let current = decode(document.value)?;
    if current.claimed_until_ms.is_some_and(|until| until > now_ms) {
        return Ok(false);
    }
    let claimed = Scheduled {
        claimed_until_ms: Some(
            now_ms.saturating_add(u64::try_from(CLAIM_FOR.as_millis()).unwrap_or(u64::MAX)),
        ),
        ..current
    };
    match store
        .put_document(
            NAMESPACE,
            &item.key(),
            &encode(&claimed),
            Expect::Version(document.version),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(err) => Err(err),
    }
}

/// After delivery: removes `item` and schedules its next occurrence when it repeats. Returns
/// the next occurrence.
pub async fn complete(
    store: &dyn Store,
    item: &Scheduled,
    now_ms: u64,
) -> Result<Option<Scheduled>, StoreError> {
    let next = item.next_after(now_ms);
    if let Some(next) = &next {
        schedule(store, next).await?;
    }
    store.delete_document(NAMESPACE, &item.key()).await?;
    Ok(next)
}

/// Moves an undeliverable `item` to `retry_at_ms` (the platform was down...), counting the
/// attempt.
pub async fn postpone(
    store: &dyn Store,
    item: &Scheduled,
    retry_at_ms: u64,
) -> Result<(), StoreError> {
    let later = Scheduled {
        due_ms: retry_at_ms,
        attempts: item.attempts.saturating_add(1),
        claimed_until_ms: None,
        ..item.clone()
    };
    schedule(store, &later).await?;
    store.delete_document(NAMESPACE, &item.key()).await?;
    Ok(())
}

/// Every scheduled message of `community` made by `module`, earliest first (reads the whole
/// schedule: for listings, not for the delivery loop).
pub async fn list(
    store: &dyn Store,
    community: CommunityId,
    module: &str,
) -> Result<Vec<Scheduled>, StoreError> {
    let mut out = Vec::new();
    for document in crate::store::all_documents(store, NAMESPACE, "").await? {
        let item = decode(document.value)?;
        if item.community_id == community && item.module == module {
            out.push(item);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn item(id: &str, due_ms: u64, repeat_secs: Option<u64>) -> Scheduled {
        Scheduled {
            id: id.to_owned(),
            due_ms,
            community_id: CommunityId(1),
            platform: PlatformKind::Twitch,
            server_id: "pond".to_owned(),
            channel_id: "pond".to_owned(),
            user_id: "alice".to_owned(),
            module: "reminders".to_owned(),
            text: "stretch".to_owned(),
            repeat_secs,
            attempts: 0,
            claimed_until_ms: None,
        }
    }

    #[tokio::test]
    async fn due_messages_come_in_time_order_and_a_claim_is_taken_once() {
        let store = MemoryStore::new();
        for (id, due) in [("b", 2_000), ("a", 1_000), ("c", 90_000)] {
            schedule(&store, &item(id, due, None)).await.expect("kept");
        }
        assert_eq!(next_due_ms(&store).await.expect("read"), Some(1_000));
        let ready = due(&store, 5_000, 10).await.expect("read");
        let ids: Vec<&str> = ready.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"], "c is not due yet");
        assert!(claim(&store, &ready[0], 5_000).await.expect("claimed"));
        assert!(
            !claim(&store, &ready[0], 5_000).await.expect("read"),
            "once"
        );
        let ids: Vec<String> = due(&store, 5_000, 10)
            .await
            .expect("read")
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(ids, ["b"], "a claimed entry is not due to others");
        let after_claim = 5_000 + 61_000;
        assert_eq!(
            due(&store, after_claim, 10).await.expect("read").len(),
            2,
            "a dead claim is taken over"
        );
        assert_eq!(
            complete(&store, &ready[0], 5_000).await.expect("done"),
            None
        );
        assert!(!cancel(&store, &ready[0]).await.expect("gone"));
    }

    #[test]
    fn a_repeating_message_skips_missed_occurrences() {
        let daily = item("d", 1_000, Some(86_400));
        let day = 86_400_000;
        assert_eq!(daily.next_after(1_000).map(|n| n.due_ms), Some(1_000 + day));
        assert_eq!(
            daily.next_after(1_000 + 3 * day + 5).map(|n| n.due_ms),
            Some(1_000 + 4 * day),
            "three days missed: the next is still in the future, once"
        );
        assert_eq!(item("o", 1_000, None).next_after(2_000), None);
    }
}
