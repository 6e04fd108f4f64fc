//! Overlay keys: the secret in a community's OBS browser-source URL (`/overlay/<key>`).
//!
//! A key is 64 hex characters (32 random bytes). Rotating it keeps the previous key working
//! for a grace period, so a streamer can paste the new URL into OBS without going dark.
//!
//! Kept as documents: the community's record in its own namespace
//! (`<id>:overlay` / `keys`, so it travels with an export), and one index entry per live key
//! in the bot-wide `overlay_keys` namespace that finds the community from a key. The community
//! record is the authority; the index only points at it, and is rebuilt from it when missing
//! (after an import, say).

use std::time::{Duration, SystemTime};

use waddlebot::clock::unix_millis;

use serde::{Deserialize, Serialize};
use waddlebot::store::{Expect, community_namespace};
use waddlebot::{CommunityId, Store, StoreError};

/// How long a rotated-out key keeps working unless told otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10 * 60);

const RECORD_NAME: &str = "overlay";
const RECORD_KEY: &str = "keys";
const INDEX_NAMESPACE: &str = "overlay_keys";
/// How many times a rotation retries when another one changed the record under it.
const ROTATE_ATTEMPTS: usize = 5;

/// A community's overlay keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayKeys {
    /// The key to use.
    pub current: String,
    /// The key before the last rotation, still accepted until `previous_until_ms`.
    pub previous: Option<String>,
    /// When the previous key stops working (Unix milliseconds).
    pub previous_until_ms: Option<u64>,
    /// When the current key was made (Unix milliseconds).
    pub created_at_ms: u64,
}

impl OverlayKeys {
    /// Whether `key` opens this community's overlay at `now`.
    pub fn accepts(&self, key: &str, now: SystemTime) -> bool {
        let same = |a: &str| crate::auth::same_secret(a, key);
        same(&self.current)
            || (self.previous.as_deref().is_some_and(same)
                && self
                    .previous_until_ms
                    .is_some_and(|until| unix_millis(now) < until))
    }
}

/// Whether `key` has the shape of an overlay key (64 lower-case hex characters).
pub fn well_formed(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn new_key() -> Result<String, StoreError> {
    crate::auth::random_hex(32).map_err(|err| StoreError::Backend(err.into()))
}

fn decode(value: serde_json::Value) -> Result<OverlayKeys, StoreError> {
    serde_json::from_value(value)
        .map_err(|err| StoreError::Backend(format!("malformed overlay key record: {err}").into()))
}

fn encode(keys: &OverlayKeys) -> serde_json::Value {
    serde_json::to_value(keys).unwrap_or_default()
}

async fn index(store: &dyn Store, key: &str, community: CommunityId) -> Result<(), StoreError> {
    store
        .put_document(
            INDEX_NAMESPACE,
            key,
            &serde_json::json!({"community": community.0}),
            Expect::Any,
        )
        .await
        .map(drop)
}

/// The community's keys, made on first use; the index entry of the current key is written
/// when it is missing.
pub async fn keys(store: &dyn Store, community: CommunityId) -> Result<OverlayKeys, StoreError> {
    let namespace = community_namespace(community, RECORD_NAME);
    let keys = match store.get_document(&namespace, RECORD_KEY).await? {
        Some(document) => decode(document.value)?,
        None => {
            let keys = OverlayKeys {
                current: new_key()?,
                previous: None,
                previous_until_ms: None,
                created_at_ms: unix_millis(SystemTime::now()),
            };
            match store
                .put_document(&namespace, RECORD_KEY, &encode(&keys), Expect::Absent)
                .await
            {
                Ok(_) => keys,
                // Made by a concurrent first use: take that one.
                Err(StoreError::Conflict(_)) => {
                    let document = store
                        .get_document(&namespace, RECORD_KEY)
                        .await?
                        .ok_or_else(|| StoreError::NotFound("overlay keys".to_owned()))?;
                    decode(document.value)?
                }
                Err(err) => return Err(err),
            }
        }
    };
    if store
        .get_document(INDEX_NAMESPACE, &keys.current)
        .await?
        .is_none()
    {
        index(store, &keys.current, community).await?;
    }
    Ok(keys)
}

/// Replaces the community's key; the one it replaces keeps working for `grace`. The key before
/// that stops at once.
pub async fn rotate(
    store: &dyn Store,
    community: CommunityId,
    grace: Duration,
) -> Result<OverlayKeys, StoreError> {
    let namespace = community_namespace(community, RECORD_NAME);
    keys(store, community).await?;
    for _ in 0..ROTATE_ATTEMPTS {
        let document = store
            .get_document(&namespace, RECORD_KEY)
            .await?
            .ok_or_else(|| StoreError::NotFound("overlay keys".to_owned()))?;
        let old = decode(document.value)?;
        let now = SystemTime::now();
        let rotated = OverlayKeys {
            current: new_key()?,
            previous: Some(old.current.clone()),
            previous_until_ms: Some(unix_millis(now + grace)),
            created_at_ms: unix_millis(now),
        };
        // Index first: a key in the record is always findable.
        index(store, &rotated.current, community).await?;
        match store
            .put_document(
                &namespace,
                RECORD_KEY,
                &encode(&rotated),
                Expect::Version(document.version),
            )
            .await
        {
            Ok(_) => {
                if let Some(gone) = old.previous {
                    store.delete_document(INDEX_NAMESPACE, &gone).await?;
                }
                return Ok(rotated);
            }
            Err(StoreError::Conflict(_)) => {
                store
                    .delete_document(INDEX_NAMESPACE, &rotated.current)
                    .await?;
            }
            Err(err) => return Err(err),
        }
    }
    Err(StoreError::Conflict(
        "the overlay key is being rotated by someone else; try again".to_owned(),
    ))
}

/// The community whose overlay `key` opens at `now`, if any. Malformed keys are refused
/// before the store is asked.
pub async fn community_for(
    store: &dyn Store,
    key: &str,
    now: SystemTime,
) -> Result<Option<CommunityId>, StoreError> {
    if !well_formed(key) {
        return Ok(None);
    }
    let Some(entry) = store.get_document(INDEX_NAMESPACE, key).await? else {
        return Ok(None);
    };
    let Some(community) = entry.value["community"].as_i64().map(CommunityId) else {
        return Ok(None);
    };
    let namespace = community_namespace(community, RECORD_NAME);
    let Some(record) = store.get_document(&namespace, RECORD_KEY).await? else {
        return Ok(None);
    };
    Ok(decode(record.value)?.accepts(key, now).then_some(community))
}

#[cfg(test)]
mod tests {
    use super::*;
    use waddlebot::store::MemoryStore;

    #[tokio::test]
    async fn a_rotated_key_works_until_its_grace_ends_and_the_one_before_stops() {
        let store = MemoryStore::new();
        let pond = CommunityId(1);
        let first = keys(&store, pond).await.expect("made");
        assert!(well_formed(&first.current));
        assert_eq!(keys(&store, pond).await.expect("read"), first, "made once");
        let now = SystemTime::now();
        assert_eq!(
            community_for(&store, &first.current, now)
                .await
                .expect("ok"),
            Some(pond)
        );

        let second = rotate(&store, pond, Duration::from_secs(60))
            .await
            .expect("rotated");
        assert_ne!(second.current, first.current);
        let found = |key: String, at: SystemTime| {
            let store = &store;
            async move { community_for(store, &key, at).await.expect("ok") }
        };
        assert_eq!(found(second.current.clone(), now).await, Some(pond));
        assert_eq!(found(first.current.clone(), now).await, Some(pond), "grace");
        let later = now + Duration::from_secs(120);
        assert_eq!(found(first.current.clone(), later).await, None, "expired");
        assert_eq!(found(second.current.clone(), later).await, Some(pond));

        rotate(&store, pond, Duration::from_secs(60))
            .await
            .expect("rotated again");
        assert_eq!(
            found(first.current.clone(), now).await,
            None,
            "two rotations ago"
        );
        assert_eq!(found("zz".repeat(32), now).await, None, "malformed");
        assert_eq!(found("ab".repeat(32), now).await, None, "unknown");
    }
}
