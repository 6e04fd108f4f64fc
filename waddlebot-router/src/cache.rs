//! A caching wrapper around any [`Store`]: the records read on every event (entity resolution,
//! custom command lookup) are served from memory, and writes made through the wrapper drop the
//! entries they change. Everything else passes straight through.
//!
//! The cache is per process. Writes made by another process (a second server, `waddlebot run`
//! against the same file) are seen when the entry expires, or at once when the processes share
//! an [`InvalidationBus`] (Redis pub/sub).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

// A TSC read where the CPU has a steady one (about 9 ns against 21 for `std::time::Instant`
// on the project machine): every event checks two entries' expiry.
use quanta::Instant;

use async_trait::async_trait;

use crate::invalidation::{Invalidation, InvalidationBus};
use crate::meters::Lookups;
use waddlebot::store::{
    Alias, CommandSettings, CustomCommand, Document, Entity, EntityKey, Expect, ModuleInstall,
    Page, RoleGrant, StringRule,
};
use waddlebot::store::{ApiKey, AuditEntry, RemoteModule, Write};
use waddlebot::{CommunityId, PlatformKind, Store, StoreError};

/// How long cached records live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheTtl {
    /// Entity → community (`ROUTER_ENTITY_CACHE_TTL`, default 600 s).
    pub entity: Duration,
    /// Custom command lookups, found or not, and command overrides
    /// (`ROUTER_COMMAND_CACHE_TTL`, default 300 s).
    pub command: Duration,
    /// Module on/off records and role grants (default 300 s).
    pub module: Duration,
}

impl Default for CacheTtl {
    fn default() -> Self {
        Self {
            entity: Duration::from_secs(600),
            command: Duration::from_secs(300),
            module: Duration::from_secs(300),
        }
    }
}

/// Everything the router reads for a command in one community, loaded with six listings and
/// the community's record (its name, which never changes, goes into remote modules' calls), and
/// dropped whole when anything in it changes: one cache lookup per event instead of one per
/// record, and no key to allocate. Communities keep few of these records (commands, aliases,
/// overrides, module switches, grants, remote modules), so holding them all is cheap.
///
/// Its maps hash with foldhash: their keys are names and ids the community's own records hold,
/// looked up several times per event.
#[derive(Debug, Default)]
pub struct CommunityView {
    /// The community's name ("Unknown Community" when its record is gone).
    name: String,
    commands: Map<Arc<CachedCommand>>,
    aliases: Map<Alias>,
    settings: Map<CommandSettings>,
    installs: Map<ModuleInstall>,
    /// Grants by platform, then user id: looked up with borrowed strings.
    grants: Map<Map<RoleGrant>>,
    /// The remote modules, in registration order.
    remote: Arc<Vec<RemoteModule>>,
    /// The prefixes from the `core` module config, worked out once per view.
    pub(crate) prefixes: std::sync::OnceLock<Option<crate::parse::Prefixes>>,
}

/// A [`CommunityView`] map, by name.
type Map<T> = HashMap<String, T, foldhash::fast::RandomState>;

/// A custom command with its template parsed once.
#[derive(Debug)]
pub struct CachedCommand {
    /// The stored command.
    pub command: CustomCommand,
    /// Its parsed template; the error text if the stored template does not parse.
    pub template: Result<waddlebot::template::Template, String>,
}

impl CommunityView {
    /// The community's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A custom command.
    pub fn command(&self, name: &str) -> Option<&Arc<CachedCommand>> {
        self.commands.get(name)
    }

    /// An alias.
    pub fn alias(&self, name: &str) -> Option<&Alias> {
        self.aliases.get(name)
    }

    /// A command's overrides.
    pub fn settings(&self, command: &str) -> Option<&CommandSettings> {
        self.settings.get(command)
    }

    /// A module's install record.
    pub fn install(&self, module: &str) -> Option<&ModuleInstall> {
        self.installs.get(module)
    }

    /// The community's remote modules (enabled or not), shared.
    pub fn remote_modules(&self) -> &Arc<Vec<RemoteModule>> {
        &self.remote
    }

    /// The level granted to a user.
    pub fn grant(&self, platform: &PlatformKind, user_id: &str) -> Option<&RoleGrant> {
        self.grants.get(platform.as_str())?.get(user_id)
    }

    async fn load(store: &dyn Store, community: CommunityId) -> Result<Self, StoreError> {
        let mut grants: Map<Map<RoleGrant>> = Map::default();
        for grant in store.list_role_grants(community).await? {
            grants
                .entry(grant.platform.as_str().to_owned())
                .or_default()
                .insert(grant.user_id.clone(), grant);
        }
        Ok(Self {
            name: store
                .community(community)
                .await?
                .map_or_else(|| "Unknown Community".to_owned(), |c| c.name),
            commands: store
                .list_custom_commands(community)
                .await?
                .into_iter()
                .map(|command| {
                    let template = waddlebot::template::Template::parse(&command.response)
                        .map_err(|err| err.to_string());
                    (
                        command.name.clone(),
                        Arc::new(CachedCommand { command, template }),
                    )
                })
                .collect(),
            aliases: by_name(store.list_aliases(community).await?, |a| &a.name),
            settings: by_name(store.list_command_settings(community).await?, |s| {
                &s.command
            }),
            installs: by_name(store.list_module_installs(community).await?, |i| &i.module),
            grants,
            remote: Arc::new(store.list_remote_modules(community).await?),
            prefixes: std::sync::OnceLock::new(),
        })
    }
}

fn by_name<T>(items: Vec<T>, name: impl Fn(&T) -> &str) -> Map<T> {
    items
        .into_iter()
        .map(|item| (name(&item).to_owned(), item))
        .collect()
}

/// An [`EntityKey`] made of borrowed parts, to look one up without copying the event's strings.
/// Its fields hash as the key's do (a reference hashes as what it points to, a `String` as its
/// `str`), which the cache relies on.
#[derive(Hash)]
struct EntityKeyRef<'a> {
    platform: &'a PlatformKind,
    server_id: &'a str,
    channel_id: &'a str,
}

impl quick_cache::Equivalent<EntityKey> for EntityKeyRef<'_> {
    fn equivalent(&self, key: &EntityKey) -> bool {
        *self.platform == key.platform
            && self.server_id == key.server_id
            && self.channel_id == key.channel_id
    }
}

/// A [`Store`] that caches what every event reads (entity resolution, and a [`CommunityView`]
/// per community) of an inner store.
pub struct CachedStore {
    inner: Arc<dyn Store>,
    entities: Fresh<EntityKey, Arc<Entity>>,
    views: Fresh<CommunityId, Arc<CommunityView>>,
    // Shared lists: the router compiles rules from them and knows a list changed when the Arc
    // it compiled from is no longer the cached one.
    rules: Fresh<CommunityId, Arc<Vec<StringRule>>>,
    bus: Option<Arc<dyn InvalidationBus>>,
    entity_lookups: Lookups,
    view_lookups: Lookups,
    rule_lookups: Lookups,
    /// Bookkeeping gathered for the inner store ([`Store::write_behind`]).
    writes: Arc<crate::write_behind::WriteBehind>,
}

// Bounds keep memory flat however many channels and command names a process sees.
const MAX_ENTITIES: u64 = 100_000;
const MAX_COMMUNITIES: u64 = 10_000;

/// A bounded, expiring cache whose loads cannot put back what a change made stale.
///
/// Bounded by [`quick_cache`] (sharded locks, a lookup marks its entry and takes no write
/// lock); each entry carries when it expires, and an expired entry is a miss.
///
/// A load reads the inner store and then inserts what it read; a change that lands in
/// between (another request's write, another process's invalidation) finds nothing to drop,
/// and the stale copy would be served until it expires. So every change counts, a load notes
/// the count before it reads, and what it read is dropped again if a change came in since.
struct Fresh<K, V> {
    cache: Bounded<K, (Instant, V)>,
    ttl: Duration,
    changes: AtomicU64,
}

/// The longest a cache entry or a session lives, whatever is configured.
pub(crate) const FOREVER: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A [`quick_cache`] cache with foldhash (the keys are ours: ids and platform names).
pub(crate) type Bounded<K, V> = quick_cache::sync::Cache<
    K,
    V,
    quick_cache::UnitWeighter,
    foldhash::fast::RandomState,
    quick_cache::sync::DefaultLifecycle<K, V>,
>;

/// A [`Bounded`] cache of about `capacity` entries.
pub(crate) fn bounded<K, V>(capacity: u64) -> Bounded<K, V>
where
    K: std::hash::Hash + Eq,
    V: Clone,
{
    quick_cache::sync::Cache::with(
        usize::try_from(capacity).unwrap_or(usize::MAX),
        capacity,
        quick_cache::UnitWeighter,
        foldhash::fast::RandomState::default(),
        quick_cache::sync::DefaultLifecycle::default(),
    )
}

impl<K, V> Fresh<K, V>
where
    K: std::hash::Hash + Eq + Clone,
    V: Clone,
{
    fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            cache: bounded(capacity),
            // An instant plus a huge duration overflows (a panic): ten years is forever here.
            ttl: ttl.min(FOREVER),
            changes: AtomicU64::new(0),
        }
    }

    fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: quick_cache::Equivalent<K> + std::hash::Hash + ?Sized,
    {
        self.get_at(key, Instant::now())
    }

    /// [`get`](Self::get) at a moment the caller already read (one clock read per event).
    fn get_at<Q>(&self, key: &Q, now: Instant) -> Option<V>
    where
        Q: quick_cache::Equivalent<K> + std::hash::Hash + ?Sized,
    {
        let (expires, value) = self.cache.get(key)?;
        (now < expires).then_some(value)
    }

    /// Taken before a load reads the inner store.
    fn changes(&self) -> u64 {
        self.changes.load(Ordering::SeqCst)
    }

    /// Keeps what a load read, unless something changed since `changes` was taken. Inserted
    /// first and checked after, so a change between the check and the insert cannot slip by.
    fn insert_loaded(&self, key: K, value: V, changes: u64) {
        let now = Instant::now();
        // Cannot overflow with the capped TTL; were it to, the entry would be a miss at once,
        // never one kept forever.
        let expires = now.checked_add(self.ttl).unwrap_or(now);
        self.cache.insert(key.clone(), (expires, value));
        if self.changes() != changes {
            self.cache.remove(&key);
        }
    }

    fn invalidate(&self, key: &K) {
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.cache.remove(key);
    }

    fn invalidate_all(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.cache.clear();
    }

    fn entry_count(&self) -> usize {
        self.cache.len()
    }
}

impl CachedStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>, ttl: CacheTtl) -> Self {
        Self {
            inner,
            entities: Fresh::new(MAX_ENTITIES, ttl.entity),
            views: Fresh::new(MAX_COMMUNITIES, ttl.command.min(ttl.module)),
            rules: Fresh::new(MAX_COMMUNITIES, ttl.command),
            bus: None,
            entity_lookups: Lookups::new("entity"),
            view_lookups: Lookups::new("community"),
            rule_lookups: Lookups::new("rules"),
            writes: Arc::new(crate::write_behind::WriteBehind::new(Default::default())),
        }
    }

    /// Gathers bookkeeping within these limits instead of the defaults.
    pub fn with_write_behind(mut self, limits: crate::write_behind::WriteBehindLimits) -> Self {
        self.writes = Arc::new(crate::write_behind::WriteBehind::new(limits));
        self
    }

    /// Writes what waits in the bookkeeping buffer first when it holds this key, so a
    /// direct write lands after it.
    async fn settle_key(&self, namespace: &str, key: &str) -> Result<(), StoreError> {
        if self.writes.holds(namespace, key) {
            self.writes.flush(self.inner.as_ref()).await?;
        }
        Ok(())
    }

    /// Writes what waits in the bookkeeping buffer first when it holds this namespace (or,
    /// with `prefix`, any namespace starting so), so a list shows it.
    async fn settle_namespace(&self, namespace: &str, prefix: bool) -> Result<(), StoreError> {
        if self.writes.holds_namespace(namespace, prefix) {
            self.writes.flush(self.inner.as_ref()).await?;
        }
        Ok(())
    }

    /// Tells other processes about every change made through this store.
    pub fn with_bus(mut self, bus: Arc<dyn InvalidationBus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// Drops what a change made stale (a change here, or one another process announced).
    pub fn apply(&self, change: &Invalidation) {
        match change {
            Invalidation::Entity { key } => self.entities.invalidate(key),
            Invalidation::Command { community, .. }
            | Invalidation::Alias { community, .. }
            | Invalidation::Settings { community, .. }
            | Invalidation::Install { community, .. }
            | Invalidation::Grants { community }
            | Invalidation::Remote { community } => self.views.invalidate(community),
            Invalidation::Rules { community } => self.rules.invalidate(community),
            Invalidation::Everything => {
                self.entities.invalidate_all();
                self.views.invalidate_all();
                self.rules.invalidate_all();
            }
        }
    }

    /// Applies a change here and announces it.
    async fn changed(&self, change: Invalidation) {
        self.apply(&change);
        if let Some(bus) = &self.bus {
            bus.publish(&change).await;
        }
    }

    /// A community's view, loaded on first use and after any change to it.
    pub async fn view(&self, community: CommunityId) -> Result<Arc<CommunityView>, StoreError> {
        self.view_at(community, Instant::now()).await
    }

    /// [`view`](Self::view) with the clock already read.
    pub(crate) async fn view_at(
        &self,
        community: CommunityId,
        now: Instant,
    ) -> Result<Arc<CommunityView>, StoreError> {
        if let Some(view) = self.views.get_at(&community, now) {
            self.view_lookups.hit();
            return Ok(view);
        }
        self.view_lookups.miss();
        let changes = self.views.changes();
        let view = Arc::new(CommunityView::load(self.inner.as_ref(), community).await?);
        self.views
            .insert_loaded(community, Arc::clone(&view), changes);
        Ok(view)
    }

    /// The entity an event happened in (created on first sight), shared, with the clock
    /// already read. The lookup borrows the event's strings: a warm lookup copies nothing.
    pub(crate) async fn entity_at(
        &self,
        platform: &PlatformKind,
        server_id: &str,
        channel_id: &str,
        now: Instant,
    ) -> Result<Arc<Entity>, StoreError> {
        let borrowed = EntityKeyRef {
            platform,
            server_id,
            channel_id,
        };
        if let Some(entity) = self.entities.get_at(&borrowed, now) {
            self.entity_lookups.hit();
            return Ok(entity);
        }
        self.entity_lookups.miss();
        let key = EntityKey {
            platform: platform.clone(),
            server_id: server_id.to_owned(),
            channel_id: channel_id.to_owned(),
        };
        let changes = self.entities.changes();
        let entity = Arc::new(self.inner.resolve_entity(&key).await?);
        self.entities
            .insert_loaded(key, Arc::clone(&entity), changes);
        Ok(entity)
    }

    /// A community's string rules, shared: the same `Arc` until a rule is added or removed
    /// through this store (or the entry expires).
    pub async fn shared_rules(
        &self,
        community: CommunityId,
    ) -> Result<Arc<Vec<StringRule>>, StoreError> {
        if let Some(rules) = self.rules.get(&community) {
            self.rule_lookups.hit();
            return Ok(rules);
        }
        self.rule_lookups.miss();
        let changes = self.rules.changes();
        let rules = Arc::new(self.inner.list_rules(community).await?);
        self.rules
            .insert_loaded(community, Arc::clone(&rules), changes);
        Ok(rules)
    }
}

impl std::fmt::Debug for CachedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStore")
            .field("entities", &self.entities.entry_count())
            .field("communities", &self.views.entry_count())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Store for CachedStore {
    async fn resolve_entity(&self, key: &EntityKey) -> Result<Entity, StoreError> {
        let entity = self
            .entity_at(
                &key.platform,
                &key.server_id,
                &key.channel_id,
                Instant::now(),
            )
            .await?;
        Ok(Entity::clone(&entity))
    }

    async fn community(
        &self,
        id: CommunityId,
    ) -> Result<Option<waddlebot::store::Community>, StoreError> {
        self.inner.community(id).await
    }

    async fn list_entities(&self, page: &Page) -> Result<Vec<Entity>, StoreError> {
        self.inner.list_entities(page).await
    }

    async fn list_communities(
        &self,
        page: &Page,
    ) -> Result<Vec<waddlebot::store::Community>, StoreError> {
        self.inner.list_communities(page).await
    }

    async fn community_named(
        &self,
        name: &str,
    ) -> Result<Option<waddlebot::store::Community>, StoreError> {
        self.inner.community_named(name).await
    }

    async fn create_community(
        &self,
        name: &str,
        created_at: std::time::SystemTime,
    ) -> Result<waddlebot::store::Community, StoreError> {
        self.inner.create_community(name, created_at).await
    }

    async fn entity(&self, key: &EntityKey) -> Result<Option<Entity>, StoreError> {
        self.inner.entity(key).await
    }

    async fn assign_entity(
        &self,
        key: &EntityKey,
        community: CommunityId,
    ) -> Result<Entity, StoreError> {
        let result = self.inner.assign_entity(key, community).await;
        self.changed(Invalidation::Entity { key: key.clone() })
            .await;
        result
    }

    async fn custom_command(
        &self,
        community: CommunityId,
        name: &str,
    ) -> Result<Option<CustomCommand>, StoreError> {
        Ok(self
            .view(community)
            .await?
            .command(name)
            .map(|cached| cached.command.clone()))
    }

    async fn create_custom_command(&self, command: &CustomCommand) -> Result<(), StoreError> {
        let result = self.inner.create_custom_command(command).await;
        self.changed(Invalidation::Command {
            community: command.community_id,
            name: command.name.clone(),
        })
        .await;
        result
    }

    async fn update_custom_command(
        &self,
        community: CommunityId,
        name: &str,
        response: &str,
    ) -> Result<CustomCommand, StoreError> {
        let result = self
            .inner
            .update_custom_command(community, name, response)
            .await;
        self.changed(Invalidation::Command {
            community,
            name: name.to_owned(),
        })
        .await;
        result
    }

    async fn delete_custom_command(
        &self,
        community: CommunityId,
        name: &str,
    ) -> Result<bool, StoreError> {
        let result = self.inner.delete_custom_command(community, name).await;
        self.changed(Invalidation::Command {
            community,
            name: name.to_owned(),
        })
        .await;
        result
    }

    async fn list_custom_commands(
        &self,
        community: CommunityId,
    ) -> Result<Vec<CustomCommand>, StoreError> {
        self.inner.list_custom_commands(community).await
    }

    async fn alias(&self, community: CommunityId, name: &str) -> Result<Option<Alias>, StoreError> {
        Ok(self.view(community).await?.alias(name).cloned())
    }

    async fn create_alias(&self, alias: &Alias) -> Result<(), StoreError> {
        let result = self.inner.create_alias(alias).await;
        self.changed(Invalidation::Alias {
            community: alias.community_id,
            name: alias.name.clone(),
        })
        .await;
        result
    }

    async fn delete_alias(&self, community: CommunityId, name: &str) -> Result<bool, StoreError> {
        let result = self.inner.delete_alias(community, name).await;
        self.changed(Invalidation::Alias {
            community,
            name: name.to_owned(),
        })
        .await;
        result
    }

    async fn list_aliases(&self, community: CommunityId) -> Result<Vec<Alias>, StoreError> {
        self.inner.list_aliases(community).await
    }

    async fn create_rule(&self, rule: &StringRule) -> Result<StringRule, StoreError> {
        let result = self.inner.create_rule(rule).await;
        self.changed(Invalidation::Rules {
            community: rule.community_id,
        })
        .await;
        result
    }

    async fn list_rules(&self, community: CommunityId) -> Result<Vec<StringRule>, StoreError> {
        self.inner.list_rules(community).await
    }

    async fn delete_rule(&self, community: CommunityId, id: i64) -> Result<bool, StoreError> {
        let result = self.inner.delete_rule(community, id).await;
        self.changed(Invalidation::Rules { community }).await;
        result
    }

    // Match counts change on every match; the shared list keeps its (stale) counts rather than
    // making the router recompile after each one.

    async fn record_rule_match(
        &self,
        community: CommunityId,
        id: i64,
        at: std::time::SystemTime,
    ) -> Result<(), StoreError> {
        self.inner.record_rule_match(community, id, at).await
    }

    async fn create_remote_module(&self, module: &RemoteModule) -> Result<(), StoreError> {
        let result = self.inner.create_remote_module(module).await;
        self.changed(Invalidation::Remote {
            community: module.community_id,
        })
        .await;
        result
    }

    async fn list_remote_modules(
        &self,
        community: CommunityId,
    ) -> Result<Vec<RemoteModule>, StoreError> {
        self.inner.list_remote_modules(community).await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<i64, StoreError> {
        self.inner.append_audit(entry).await
    }

    async fn list_audit(
        &self,
        community: Option<CommunityId>,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.inner.list_audit(community, limit, offset).await
    }

    async fn count_audit(&self, community: Option<CommunityId>) -> Result<usize, StoreError> {
        self.inner.count_audit(community).await
    }

    // API keys are read on every authenticated request but must see a revocation at once:
    // they are not cached.
    async fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.inner.create_api_key(key).await
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        self.inner.api_key(id).await
    }

    async fn list_api_keys(
        &self,
        community: Option<CommunityId>,
    ) -> Result<Vec<ApiKey>, StoreError> {
        self.inner.list_api_keys(community).await
    }

    async fn revoke_api_key(
        &self,
        id: &str,
        at: std::time::SystemTime,
    ) -> Result<bool, StoreError> {
        self.inner.revoke_api_key(id, at).await
    }

    async fn touch_api_key(&self, id: &str, at: std::time::SystemTime) -> Result<(), StoreError> {
        self.inner.touch_api_key(id, at).await
    }

    async fn delete_remote_module(
        &self,
        community: CommunityId,
        name: &str,
    ) -> Result<bool, StoreError> {
        let result = self.inner.delete_remote_module(community, name).await;
        self.changed(Invalidation::Remote { community }).await;
        result
    }

    async fn role_grant(
        &self,
        community: CommunityId,
        platform: &PlatformKind,
        user_id: &str,
    ) -> Result<Option<RoleGrant>, StoreError> {
        Ok(self
            .view(community)
            .await?
            .grant(platform, user_id)
            .cloned())
    }

    async fn put_role_grant(&self, grant: &RoleGrant) -> Result<(), StoreError> {
        let result = self.inner.put_role_grant(grant).await;
        self.changed(Invalidation::Grants {
            community: grant.community_id,
        })
        .await;
        result
    }

    async fn delete_role_grant(
        &self,
        community: CommunityId,
        platform: &PlatformKind,
        user_id: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .inner
            .delete_role_grant(community, platform, user_id)
            .await;
        self.changed(Invalidation::Grants { community }).await;
        result
    }

    async fn list_role_grants(&self, community: CommunityId) -> Result<Vec<RoleGrant>, StoreError> {
        self.inner.list_role_grants(community).await
    }

    async fn module_install(
        &self,
        community: CommunityId,
        module: &str,
    ) -> Result<Option<ModuleInstall>, StoreError> {
        Ok(self.view(community).await?.install(module).cloned())
    }

    async fn put_module_install(&self, install: &ModuleInstall) -> Result<(), StoreError> {
        let result = self.inner.put_module_install(install).await;
        self.changed(Invalidation::Install {
            community: install.community_id,
            module: install.module.clone(),
        })
        .await;
        result
    }

    async fn list_module_installs(
        &self,
        community: CommunityId,
    ) -> Result<Vec<ModuleInstall>, StoreError> {
        self.inner.list_module_installs(community).await
    }

    async fn command_settings(
        &self,
        community: CommunityId,
        command: &str,
    ) -> Result<Option<CommandSettings>, StoreError> {
        Ok(self.view(community).await?.settings(command).cloned())
    }

    async fn put_command_settings(&self, settings: &CommandSettings) -> Result<(), StoreError> {
        let result = self.inner.put_command_settings(settings).await;
        self.changed(Invalidation::Settings {
            community: settings.community_id,
            command: settings.command.clone(),
        })
        .await;
        result
    }

    async fn list_command_settings(
        &self,
        community: CommunityId,
    ) -> Result<Vec<CommandSettings>, StoreError> {
        self.inner.list_command_settings(community).await
    }

    async fn delete_command_settings(
        &self,
        community: CommunityId,
        command: &str,
    ) -> Result<bool, StoreError> {
        let result = self.inner.delete_command_settings(community, command).await;
        self.changed(Invalidation::Settings {
            community,
            command: command.to_owned(),
        })
        .await;
        result
    }

    async fn get_document(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<Document>, StoreError> {
        self.writes
            .document(namespace, key, self.inner.get_document(namespace, key))
            .await
    }

    async fn put_document(
        &self,
        namespace: &str,
        key: &str,
        value: &serde_json::Value,
        expect: Expect,
    ) -> Result<u64, StoreError> {
        self.settle_key(namespace, key).await?;
        self.inner.put_document(namespace, key, value, expect).await
    }

    async fn delete_document(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        self.settle_key(namespace, key).await?;
        self.inner.delete_document(namespace, key).await
    }

    async fn list_documents(
        &self,
        namespace: &str,
        prefix: &str,
        page: &Page,
    ) -> Result<Vec<Document>, StoreError> {
        self.settle_namespace(namespace, false).await?;
        self.inner.list_documents(namespace, prefix, page).await
    }

    async fn increment(&self, namespace: &str, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.writes
            .counter(namespace, key, self.inner.increment(namespace, key, delta))
            .await
    }

    async fn counter(&self, namespace: &str, key: &str) -> Result<i64, StoreError> {
        self.writes
            .counter(namespace, key, self.inner.counter(namespace, key))
            .await
    }

    async fn list_counters(
        &self,
        namespace: &str,
        page: &Page,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        self.settle_namespace(namespace, false).await?;
        self.inner.list_counters(namespace, page).await
    }

    async fn list_namespaces(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.settle_namespace(prefix, true).await?;
        self.inner.list_namespaces(prefix).await
    }

    async fn top_counters(
        &self,
        namespace: &str,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        self.settle_namespace(namespace, false).await?;
        self.inner.top_counters(namespace, limit).await
    }

    async fn write_batch(&self, writes: &[Write]) -> Result<(), StoreError> {
        // Lands after whatever bookkeeping waits for the same keys.
        if writes
            .iter()
            .any(|w| self.writes.holds(w.namespace(), w.key()))
        {
            self.writes.flush(self.inner.as_ref()).await?;
        }
        self.inner.write_batch(writes).await
    }

    async fn write_behind(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.writes.room().await;
        let unknown = self.writes.push(writes, &self.inner)?;
        if unknown.is_empty() {
            return Ok(());
        }
        self.write_batch(&unknown).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.writes.flush(self.inner.as_ref()).await?;
        self.inner.flush().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_that_raced_a_change_is_not_kept() {
        let cache: Fresh<u32, &str> = Fresh::new(10, Duration::from_secs(60));
        let changes = cache.changes();
        // A change lands while the load reads: what the load read is stale.
        cache.invalidate(&1);
        cache.insert_loaded(1, "stale", changes);
        assert_eq!(cache.get(&1), None, "the next lookup loads again");

        // A change elsewhere counts too (the count is per cache): a lookup more, never a
        // stale one.
        let changes = cache.changes();
        cache.invalidate_all();
        cache.insert_loaded(1, "maybe stale", changes);
        assert_eq!(cache.get(&1), None);

        let changes = cache.changes();
        cache.insert_loaded(1, "fresh", changes);
        assert_eq!(cache.get(&1), Some("fresh"), "an undisturbed load is kept");
    }

    #[test]
    fn an_entity_is_found_by_its_borrowed_parts() {
        let cache: Fresh<EntityKey, u32> = Fresh::new(10, Duration::from_secs(60));
        let platforms = [
            PlatformKind::Twitch,
            PlatformKind::Slack,
            PlatformKind::Custom("matrix".into()),
        ];
        for (n, platform) in (0..).zip(&platforms) {
            let key = EntityKey {
                platform: platform.clone(),
                server_id: "guild".into(),
                channel_id: format!("general{n}"),
            };
            cache.insert_loaded(key, n, cache.changes());
        }
        for (n, platform) in (0..).zip(&platforms) {
            let channel = format!("general{n}");
            let borrowed = |server_id, channel_id| EntityKeyRef {
                platform,
                server_id,
                channel_id,
            };
            assert_eq!(
                cache.get(&borrowed("guild", &channel)),
                Some(n),
                "{platform:?}"
            );
            assert_eq!(cache.get(&borrowed("guild", "general9")), None);
            assert_eq!(cache.get(&borrowed("guil", &format!("d{channel}"))), None);
        }
    }

    #[test]
    fn an_endless_time_to_live_keeps_entries_without_overflowing() {
        let cache: Fresh<u32, &str> = Fresh::new(10, Duration::MAX);
        cache.insert_loaded(1, "kept", cache.changes());
        assert_eq!(cache.get(&1), Some("kept"));
    }

    #[test]
    fn an_entry_expires_after_its_time_to_live() {
        let lasting: Fresh<u32, &str> = Fresh::new(10, Duration::from_secs(60));
        let brief: Fresh<u32, &str> = Fresh::new(10, Duration::from_millis(1));
        lasting.insert_loaded(1, "kept", lasting.changes());
        brief.insert_loaded(1, "gone", brief.changes());
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(lasting.get(&1), Some("kept"));
        assert_eq!(brief.get(&1), None, "an expired entry is a miss");
        brief.insert_loaded(1, "again", brief.changes());
        assert_eq!(
            brief.entry_count(),
            1,
            "a reload replaces the expired entry"
        );
    }
}
