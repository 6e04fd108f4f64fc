//! Bookkeeping written behind the event: who was seen, small score changes. Modules hand
//! these to [`Store::write_behind`]; the [`CachedStore`](crate::cache::CachedStore) gathers
//! them here and a background task writes them with one [`Store::write_batch`] (one
//! transaction) at most a [window](WriteBehindLimits::window) after the first of them, or at
//! once when a [batch](WriteBehindLimits::batch) is full. A graceful shutdown writes what is
//! left (`Router::drain`); a `kill -9` loses at most what one window gathered.
//!
//! Writes to the same key are folded together (a counter's deltas are added up, a document's
//! writes become its last state), so a busy chat writes each person once per window. Reads
//! through the cached store see what waits here: a document or counter read is laid over
//! what is stored, and a list of a namespace with waiting writes writes them first.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;

use waddlebot::store::{Document, Store, StoreError, Write};

/// How long bookkeeping may wait and how much of it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteBehindLimits {
    /// The longest a write waits to be written (and what a `kill -9` can lose): 100 ms.
    pub window: Duration,
    /// Records (distinct keys) that are written at once, without waiting for the window:
    /// 1,000.
    pub batch: usize,
    /// Records that may wait at most; past it, events that bring bookkeeping wait for the
    /// writer to make room (backpressure: a store slower than the chat slows the events
    /// down rather than memory growing or bookkeeping being dropped): 100,000.
    pub capacity: usize,
}

impl Default for WriteBehindLimits {
    fn default() -> Self {
        Self {
            window: Duration::from_millis(100),
            batch: 1_000,
            capacity: 100_000,
        }
    }
}

/// A namespace and a key.
type Key = (String, String);

/// What waits to be written to one document.
#[derive(Debug, Clone, PartialEq)]
enum Pending {
    /// This value, whatever is stored.
    Put(serde_json::Value),
    /// Deleted.
    Deleted,
    /// Created with `insert` unless it exists, then these fields set.
    Upsert {
        insert: Option<serde_json::Value>,
        merge: Option<serde_json::Map<String, serde_json::Value>>,
    },
}

#[derive(Debug, Default)]
struct State {
    documents: HashMap<Key, Pending>,
    counters: HashMap<Key, i64>,
    /// Keys of the batch being written: a read of one waits for the write to end.
    in_flight: HashSet<Key>,
    /// When the oldest waiting write came in.
    since: Option<Instant>,
}

impl State {
    fn records(&self) -> usize {
        self.documents.len() + self.counters.len()
    }

    fn is_idle(&self) -> bool {
        self.documents.is_empty() && self.counters.is_empty() && self.in_flight.is_empty()
    }

    /// Folds `write` into what waits. `Err` gives back a write this buffer does not know.
    fn push(&mut self, write: Write) -> Result<(), Write> {
        match write {
            Write::Increment {
                namespace,
                key,
                delta,
            } => {
                let sum = self.counters.entry((namespace, key)).or_insert(0);
                *sum = sum.saturating_add(delta);
            }
            Write::Put {
                namespace,
                key,
                value,
            } => {
                self.documents.insert((namespace, key), Pending::Put(value));
            }
            Write::Delete { namespace, key } => {
                self.documents.insert((namespace, key), Pending::Deleted);
            }
            Write::Insert {
                namespace,
                key,
                value,
            } => match self.documents.entry((namespace, key)) {
                Entry::Vacant(entry) => {
                    entry.insert(Pending::Upsert {
                        insert: Some(value),
                        merge: None,
                    });
                }
                Entry::Occupied(mut entry) => {
                    // Anything but a delete leaves a document there for the insert to find.
                    if *entry.get() == Pending::Deleted {
                        entry.insert(Pending::Put(value));
                    }
                }
            },
            Write::Merge {
                namespace,
                key,
                fields,
            } => match self.documents.entry((namespace, key)) {
                Entry::Vacant(entry) => {
                    entry.insert(Pending::Upsert {
                        insert: None,
                        merge: Some(fields),
                    });
                }
                Entry::Occupied(mut entry) => match entry.get_mut() {
                    Pending::Put(value) => *value = Write::merged(Some(value.take()), &fields),
                    Pending::Deleted => {
                        entry.insert(Pending::Put(Write::merged(None, &fields)));
                    }
                    Pending::Upsert { merge, .. } => {
                        merge
                            .get_or_insert_with(serde_json::Map::new)
                            .extend(fields);
                    }
                },
            },
            other => return Err(other),
        }
        Ok(())
    }

    /// Up to `limit` records (all with `None`) as writes, taken out of the buffer; their
    /// keys are marked in flight.
    fn take_batch(&mut self, limit: Option<usize>) -> Vec<Write> {
        let (documents, counters) = match limit {
            Some(limit) if self.records() > limit => {
                let documents: Vec<Key> = self.documents.keys().take(limit).cloned().collect();
                let counters: Vec<Key> = self
                    .counters
                    .keys()
                    .take(limit - documents.len())
                    .cloned()
                    .collect();
                (
                    documents
                        .into_iter()
                        .filter_map(|key| self.documents.remove_entry(&key))
                        .collect::<HashMap<_, _>>(),
                    counters
                        .into_iter()
                        .filter_map(|key| self.counters.remove_entry(&key))
                        .collect::<HashMap<_, _>>(),
                )
            }
            _ => (
                std::mem::take(&mut self.documents),
                std::mem::take(&mut self.counters),
            ),
        };
        self.in_flight = documents.keys().chain(counters.keys()).cloned().collect();
        let writes = Self::writes(documents, counters);
        self.since = (self.records() > 0).then(Instant::now);
        writes
    }

    /// Everything waiting, as writes, emptying the buffer.
    fn take(&mut self) -> Vec<Write> {
        let writes = Self::writes(
            std::mem::take(&mut self.documents),
            std::mem::take(&mut self.counters),
        );
        self.since = None;
        writes
    }

    /// Pending records as writes: by kind (a key's insert before its merge), so a store can
    /// write each kind's run in a few statements, then in key order, so two processes
    /// writing overlapping batches lock rows in the same order.
    fn writes(documents: HashMap<Key, Pending>, counters: HashMap<Key, i64>) -> Vec<Write> {
        let mut writes = Vec::with_capacity(documents.len() + counters.len() + 1);
        for ((namespace, key), pending) in documents {
            match pending {
                Pending::Put(value) => writes.push(Write::Put {
                    namespace,
                    key,
                    value,
                }),
                Pending::Deleted => writes.push(Write::Delete { namespace, key }),
                Pending::Upsert { insert, merge } => {
                    if let Some(value) = insert {
                        writes.push(Write::insert(namespace.clone(), key.clone(), value));
                    }
                    if let Some(fields) = merge {
                        writes.push(Write::Merge {
                            namespace,
                            key,
                            fields,
                        });
                    }
                }
            }
        }
        writes.extend(counters.into_iter().filter(|(_, delta)| *delta != 0).map(
            |((namespace, key), delta)| Write::Increment {
                namespace,
                key,
                delta,
            },
        ));
        writes.sort_by(|a, b| {
            (kind(a), a.namespace(), a.key()).cmp(&(kind(b), b.namespace(), b.key()))
        });
        writes
    }

    fn touches_namespace(&self, namespace: &str, prefix: bool) -> bool {
        let hit = |(ns, _): &Key| {
            if prefix {
                ns.starts_with(namespace)
            } else {
                ns == namespace
            }
        };
        self.documents.keys().any(hit)
            || self.counters.keys().any(hit)
            || self.in_flight.iter().any(hit)
    }
}

/// The place of a write's kind in a batch.
fn kind(write: &Write) -> u8 {
    match write {
        Write::Delete { .. } => 0,
        Write::Put { .. } => 1,
        Write::Insert { .. } => 2,
        Write::Merge { .. } => 3,
        _ => 4,
    }
}

/// The buffer of bookkeeping writes. See the [module](self).
#[derive(Debug)]
pub struct WriteBehind {
    state: Mutex<State>,
    /// Held while a batch is written: one at a time, and readers of its keys wait on it.
    flushing: tokio::sync::Mutex<()>,
    wake: Arc<tokio::sync::Notify>,
    /// Told when a batch was written, for events waiting for room.
    room: tokio::sync::Notify,
    started: AtomicBool,
    limits: WriteBehindLimits,
}

impl WriteBehind {
    /// An empty buffer.
    pub fn new(limits: WriteBehindLimits) -> Self {
        Self {
            state: Mutex::new(State::default()),
            flushing: tokio::sync::Mutex::new(()),
            wake: Arc::new(tokio::sync::Notify::new()),
            room: tokio::sync::Notify::new(),
            started: AtomicBool::new(false),
            limits,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records waiting (distinct keys).
    pub fn waiting(&self) -> usize {
        self.state().records()
    }

    /// Waits until fewer than [`capacity`](WriteBehindLimits::capacity) records wait.
    pub(crate) async fn room(&self) {
        loop {
            let written = self.room.notified();
            if self.waiting() < self.limits.capacity {
                return;
            }
            self.wake.notify_one();
            written.await;
        }
    }

    /// Gathers `writes` (writes this buffer does not know are handed back, to be written at
    /// once); starts the background writer of `store` on first use. Call
    /// [`room`](Self::room) first.
    pub(crate) fn push(
        self: &Arc<Self>,
        writes: Vec<Write>,
        store: &Arc<dyn Store>,
    ) -> Result<Vec<Write>, StoreError> {
        for write in &writes {
            write.check()?;
        }
        let mut unknown = Vec::new();
        let wake = {
            let mut state = self.state();
            let before = state.records();
            for write in writes {
                if let Err(write) = state.push(write) {
                    unknown.push(write);
                }
            }
            let after = state.records();
            if before == 0 && after > 0 {
                state.since = Some(Instant::now());
            }
            // The writer sleeps until a first write, and is woken early by a full batch.
            (before == 0 && after > 0) || (before < self.limits.batch && after >= self.limits.batch)
        };
        if wake {
            self.start(store);
            self.wake.notify_one();
        }
        Ok(unknown)
    }

    /// Starts the background writer (once, and only inside a tokio runtime).
    fn start(self: &Arc<Self>, store: &Arc<dyn Store>) {
        if tokio::runtime::Handle::try_current().is_err()
            || self.started.swap(true, Ordering::AcqRel)
        {
            return;
        }
        tokio::spawn(writer(
            Arc::downgrade(self),
            Arc::clone(&self.wake),
            Arc::clone(store),
            self.limits.window,
        ));
    }

    /// How long until the next batch is due; `None` when nothing waits.
    fn due_in(&self) -> Option<Duration> {
        let state = self.state();
        let since = state.since?;
        if state.records() >= self.limits.batch {
            return Some(Duration::ZERO);
        }
        Some(self.limits.window.saturating_sub(since.elapsed()))
    }

    /// Writes everything waiting to `store` in one batch; on a failure it all waits again
    /// (under whatever came in meanwhile) for the next try, as it does when this future is
    /// dropped before the batch is written. Returns the writes made.
    pub async fn flush(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let _one_at_a_time = self.flushing.lock().await;
        // What waits now, a batch at a time (each its own transaction, so events waiting for
        // room go on after each); what comes in meanwhile is left for the next flush.
        let rounds = self.waiting().div_ceil(self.limits.batch.max(1));
        let mut written = 0;
        for _ in 0..rounds {
            written += self.write_one_batch(store).await?;
        }
        Ok(written)
    }

    /// Takes one batch and writes it; the caller holds `flushing`.
    async fn write_one_batch(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let writes = self.state().take_batch(Some(self.limits.batch));
        let batch = Batch {
            buffer: self,
            writes,
        };
        if batch.writes.is_empty() {
            return Ok(0);
        }
        match store.write_batch(&batch.writes).await {
            Ok(()) => {
                let written = batch.written();
                self.room.notify_waiters();
                metrics::counter!(crate::metrics_names::WRITE_BEHIND_WRITES)
                    .increment(written as u64);
                Ok(written)
            }
            Err(err) => {
                metrics::counter!(crate::metrics_names::WRITE_BEHIND_FAILURES).increment(1);
                Err(err)
            }
        }
    }

    /// Puts a batch that was not written back, under what came in since.
    fn put_back(&self, writes: Vec<Write>) {
        let mut state = self.state();
        state.in_flight.clear();
        if writes.is_empty() {
            return;
        }
        let newer = state.take();
        for write in writes.into_iter().chain(newer) {
            let _ = state.push(write);
        }
        state.since = Some(Instant::now());
    }

    /// The stored document (`stored` reads it) with what waits for it laid over.
    pub(crate) async fn document<F>(
        &self,
        namespace: &str,
        key: &str,
        stored: F,
    ) -> Result<Option<Document>, StoreError>
    where
        F: std::future::Future<Output = Result<Option<Document>, StoreError>>,
    {
        if !self.holds(namespace, key) {
            return stored.await;
        }
        // No batch is written while the stored value and what waits are read: one written
        // in between would be seen twice or not at all.
        let _no_flush = self.flushing.lock().await;
        let stored = stored.await?;
        let id = (namespace.to_owned(), key.to_owned());
        let Some(pending) = self.state().documents.get(&id).cloned() else {
            return Ok(stored);
        };
        let version = stored.as_ref().map_or(0, |d| d.version) + 1;
        let value = match pending {
            Pending::Put(value) => Some(value),
            Pending::Deleted => None,
            Pending::Upsert { insert, merge } => {
                let base = stored.map(|d| d.value).or(insert);
                match merge {
                    Some(fields) => Some(Write::merged(base, &fields)),
                    None => base,
                }
            }
        };
        Ok(value.map(|value| Document {
            key: key.to_owned(),
            value,
            version,
        }))
    }

    /// A counter's stored value (`stored` reads it, or changes it and answers the new value)
    /// with what waits to be added to it.
    pub(crate) async fn counter<F>(
        &self,
        namespace: &str,
        key: &str,
        stored: F,
    ) -> Result<i64, StoreError>
    where
        F: std::future::Future<Output = Result<i64, StoreError>>,
    {
        if !self.holds(namespace, key) {
            return stored.await;
        }
        // As for documents: a batch written between the two reads would count twice.
        let _no_flush = self.flushing.lock().await;
        let stored = stored.await?;
        let id = (namespace.to_owned(), key.to_owned());
        let waiting = self.state().counters.get(&id).copied().unwrap_or(0);
        Ok(stored.saturating_add(waiting))
    }

    /// Whether something waits for (or is being written to) this document or counter.
    pub(crate) fn holds(&self, namespace: &str, key: &str) -> bool {
        let state = self.state();
        if state.is_idle() {
            return false;
        }
        let id = (namespace.to_owned(), key.to_owned());
        state.documents.contains_key(&id)
            || state.counters.contains_key(&id)
            || state.in_flight.contains(&id)
    }

    /// Whether something waits for this namespace (`prefix`: any namespace starting so).
    pub(crate) fn holds_namespace(&self, namespace: &str, prefix: bool) -> bool {
        let state = self.state();
        !state.is_idle() && state.touches_namespace(namespace, prefix)
    }
}

impl Drop for WriteBehind {
    fn drop(&mut self) {
        // Lets the writer see the buffer is gone and end.
        self.wake.notify_one();
    }
}

/// A batch being written: unless it is marked [`written`](Self::written), it goes back into
/// the buffer when dropped (a failure, or the flush's future dropped part-way, when its
/// transaction is rolled back).
struct Batch<'a> {
    buffer: &'a WriteBehind,
    writes: Vec<Write>,
}

impl Batch<'_> {
    /// The batch is in the store (dropping it then only frees its keys). Returns its size.
    fn written(mut self) -> usize {
        std::mem::take(&mut self.writes).len()
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        self.buffer.put_back(std::mem::take(&mut self.writes));
    }
}

/// The background writer: sleeps until something waits, writes it when its window ends or
/// its batch is full, and ends with the buffer.
async fn writer(
    buffer: Weak<WriteBehind>,
    wake: Arc<tokio::sync::Notify>,
    store: Arc<dyn Store>,
    window: Duration,
) {
    loop {
        let Some(this) = buffer.upgrade() else {
            return;
        };
        match this.due_in() {
            None => {
                drop(this);
                wake.notified().await;
            }
            Some(wait) if !wait.is_zero() => {
                drop(this);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = wake.notified() => {}
                }
            }
            Some(_) => {
                if let Err(err) = this.flush(store.as_ref()).await {
                    tracing::warn!(error = %err, waiting = this.waiting(), "bookkeeping not written; trying again");
                    drop(this);
                    tokio::time::sleep(window).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use waddlebot::store::MemoryStore;

    fn fields(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        value.as_object().cloned().expect("an object")
    }

    #[tokio::test]
    async fn writes_to_one_key_fold_into_what_applying_them_in_turn_would_give() {
        let direct = MemoryStore::new();
        let buffered = MemoryStore::new();
        for store in [&direct, &buffered] {
            store
                .put_document(
                    "n",
                    "kept",
                    &json!({"a": 1, "b": 1}),
                    waddlebot::store::Expect::Any,
                )
                .await
                .expect("seeded");
        }
        let writes = vec![
            Write::insert("n", "kept", json!({"a": 9})),
            Write::merge("n", "kept", fields(json!({"b": 2}))),
            Write::merge("n", "new", fields(json!({"x": 1}))),
            Write::insert("n", "new", json!({"never": true})),
            Write::merge("n", "new", fields(json!({"y": 2}))),
            Write::put("n", "gone", json!(1)),
            Write::delete("n", "gone"),
            Write::delete("n", "back"),
            Write::insert("n", "back", json!({"z": 3})),
            Write::increment("c", "k", 2),
            Write::increment("c", "k", -5),
        ];
        direct.write_batch(&writes).await.expect("direct");
        let buffer = Arc::new(WriteBehind::new(WriteBehindLimits::default()));
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        assert!(buffer.push(writes, &store).expect("gathered").is_empty());
        assert_eq!(buffer.waiting(), 5, "one record per key");
        buffer.flush(&buffered).await.expect("flushed");
        for key in ["kept", "new", "gone", "back"] {
            assert_eq!(
                buffered
                    .get_document("n", key)
                    .await
                    .expect("read")
                    .map(|d| d.value),
                direct
                    .get_document("n", key)
                    .await
                    .expect("read")
                    .map(|d| d.value),
                "{key}"
            );
        }
        assert_eq!(buffered.counter("c", "k").await.expect("read"), -3);
    }

    #[tokio::test]
    async fn a_failed_batch_waits_again_under_newer_writes() {
        let buffer = Arc::new(WriteBehind::new(WriteBehindLimits::default()));
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        buffer
            .push(
                vec![
                    Write::increment("c", "k", 2),
                    Write::put("n", "doc", json!(1)),
                ],
                &store,
            )
            .expect("gathered");
        // A store that refuses the batch: a write with an empty key makes the memory store
        // refuse all of it.
        buffer
            .state()
            .counters
            .insert(("c".into(), String::new()), 1);
        assert!(buffer.flush(store.as_ref()).await.is_err());
        assert_eq!(
            store.counter("c", "k").await.expect("read"),
            0,
            "nothing written"
        );
        buffer.state().counters.remove(&("c".into(), String::new()));
        buffer
            .push(
                vec![
                    Write::increment("c", "k", 3),
                    Write::put("n", "doc", json!(2)),
                ],
                &store,
            )
            .expect("gathered");
        buffer.flush(store.as_ref()).await.expect("flushed");
        assert_eq!(
            store.counter("c", "k").await.expect("read"),
            5,
            "both deltas"
        );
        assert_eq!(
            store
                .get_document("n", "doc")
                .await
                .expect("read")
                .map(|d| d.value),
            Some(json!(2)),
            "the newer value wins"
        );
    }

    #[tokio::test]
    async fn past_its_capacity_events_wait_for_the_writer_to_make_room() {
        let buffer = Arc::new(WriteBehind::new(WriteBehindLimits {
            capacity: 2,
            ..WriteBehindLimits::default()
        }));
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        buffer
            .push(
                vec![Write::increment("c", "a", 1), Write::increment("c", "b", 1)],
                &store,
            )
            .expect("room");
        // Full: the next event waits, and the writer (woken by it) makes room.
        tokio::time::timeout(Duration::from_secs(5), buffer.room())
            .await
            .expect("room was made");
        assert_eq!(buffer.waiting(), 0);
        assert_eq!(store.counter("c", "a").await.expect("read"), 1);
    }

    #[tokio::test]
    async fn a_flush_writes_everything_a_batch_at_a_time() {
        let buffer = Arc::new(WriteBehind::new(WriteBehindLimits {
            batch: 2,
            ..WriteBehindLimits::default()
        }));
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let keys = ["a", "b", "c", "d", "e"];
        // Into the buffer directly, so no background writer races this flush.
        for key in keys {
            buffer
                .state()
                .push(Write::increment("c", key, 1))
                .expect("known");
        }
        assert_eq!(buffer.flush(store.as_ref()).await.expect("flushed"), 5);
        for key in keys {
            assert_eq!(store.counter("c", key).await.expect("read"), 1, "{key}");
        }
        assert_eq!(buffer.waiting(), 0);
        assert!(!buffer.holds("c", "a"), "nothing left in flight");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_during_a_flush_counts_what_waits_exactly_once() {
        let buffer = Arc::new(WriteBehind::new(WriteBehindLimits::default()));
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        buffer
            .state()
            .push(Write::increment("c", "k", 1))
            .expect("known");
        // A batch is written while the read is between what waits and what is stored.
        let flush = {
            let (buffer, store) = (Arc::clone(&buffer), Arc::clone(&store));
            async move { buffer.flush(store.as_ref()).await }
        };
        let stored = async {
            let flushing = tokio::spawn(flush);
            tokio::time::sleep(Duration::from_millis(50)).await;
            let stored = store.counter("c", "k").await;
            drop(flushing);
            stored
        };
        assert_eq!(buffer.counter("c", "k", stored).await.expect("read"), 1);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            buffer
                .counter("c", "k", store.counter("c", "k"))
                .await
                .expect("read"),
            1,
            "after the batch is written too"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_background_writer_writes_within_the_window() {
        let buffer = Arc::new(WriteBehind::new(WriteBehindLimits::default()));
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        buffer
            .push(vec![Write::increment("c", "k", 1)], &store)
            .expect("gathered");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(store.counter("c", "k").await.expect("read"), 0, "not yet");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(
            store.counter("c", "k").await.expect("read"),
            1,
            "within the window"
        );
        assert_eq!(buffer.waiting(), 0);
    }
}
