//! The in-memory store: everything in one mutex-guarded map set. For tests, examples and
//! single-process bots that need no persistence.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;

use super::{
    Alias, ApiKey, CommandSettings, Community, CustomCommand, Document, Entity, EntityKey, Expect,
    ModuleInstall, Page, RoleGrant, Store, StoreError, StringRule, check_key, from_millis,
    now_millis, parse_after_id, to_millis,
};
use super::{AuditEntry, RemoteModule, Write};
use crate::id::{CommunityId, EntityId};
use crate::platform::PlatformKind;

/// A [`Store`] in memory. Cheap to create; data is gone when it is dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    // One std mutex: no method awaits while holding it, so it never blocks the executor.
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    communities: BTreeMap<CommunityId, Community>,
    community_names: HashMap<String, CommunityId>,
    entities: BTreeMap<EntityId, Entity>,
    entity_keys: HashMap<EntityKey, EntityId>,
    commands: BTreeMap<(CommunityId, String), CustomCommand>,
    aliases: BTreeMap<(CommunityId, String), Alias>,
    rules: BTreeMap<i64, StringRule>,
    remote: BTreeMap<(CommunityId, String), RemoteModule>,
    role_grants: BTreeMap<(CommunityId, String, String), RoleGrant>,
    installs: BTreeMap<(CommunityId, String), ModuleInstall>,
    settings: BTreeMap<(CommunityId, String), CommandSettings>,
    documents: HashMap<String, BTreeMap<String, (serde_json::Value, u64)>>,
    counters: HashMap<String, BTreeMap<String, i64>>,
    api_keys: BTreeMap<String, ApiKey>,
    audit: Vec<AuditEntry>,
}

impl Inner {
    /// Adds `delta` to a counter (created at 0) and returns its new value.
    fn add(&mut self, namespace: &str, key: &str, delta: i64) -> i64 {
        let value = self
            .counters
            .entry(namespace.to_owned())
            .or_default()
            .entry(key.to_owned())
            .or_insert(0);
        *value = value.saturating_add(delta);
        *value
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every mutation below is a single step, so a panic elsewhere cannot leave Inner
        // half-written; a poisoned lock is safe to reuse.
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn resolve_entity(&self, key: &EntityKey) -> Result<Entity, StoreError> {
        let mut inner = self.lock();
        if let Some(entity) = inner
            .entity_keys
            .get(key)
            .and_then(|id| inner.entities.get(id))
        {
            return Ok(entity.clone());
        }
        let now = now_millis();
        let name = key.default_community_name();
        let community_id = match inner.community_names.get(&name) {
            Some(&id) => id,
            None => {
                let id = CommunityId(next_id(inner.communities.keys().map(|k| k.0)));
                inner.communities.insert(
                    id,
                    Community {
                        id,
                        name: name.clone(),
                        created_at: now,
                    },
                );
                inner.community_names.insert(name, id);
                id
            }
        };
        let id = EntityId(next_id(inner.entities.keys().map(|k| k.0)));
        let entity = Entity {
            id,
            community_id,
            key: key.clone(),
            created_at: now,
        };
        inner.entities.insert(id, entity.clone());
        inner.entity_keys.insert(key.clone(), id);
        Ok(entity)
    }

    async fn community(&self, id: CommunityId) -> Result<Option<Community>, StoreError> {
        Ok(self.lock().communities.get(&id).cloned())
    }

    async fn list_entities(&self, page: &Page) -> Result<Vec<Entity>, StoreError> {
        let after = parse_after_id(page)?;
        Ok(self
            .lock()
            .entities
            .range(EntityId(after.saturating_add(1))..)
            .take(page.effective_limit())
            .map(|(_, entity)| entity.clone())
            .collect())
    }

    async fn list_communities(&self, page: &Page) -> Result<Vec<Community>, StoreError> {
        let after = parse_after_id(page)?;
        Ok(self
            .lock()
            .communities
            .range(CommunityId(after.saturating_add(1))..)
            .take(page.effective_limit())
            .map(|(_, community)| community.clone())
            .collect())
    }

    async fn community_named(&self, name: &str) -> Result<Option<Community>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .community_names
            .get(name)
            .and_then(|id| inner.communities.get(id))
            .cloned())
    }

    async fn create_community(
        &self,
        name: &str,
        created_at: SystemTime,
    ) -> Result<Community, StoreError> {
        check_key("community name", name)?;
        let mut inner = self.lock();
        if inner.community_names.contains_key(name) {
            return Err(StoreError::Conflict(format!(
                "community '{name}' already exists"
            )));
        }
        let id = CommunityId(next_id(inner.communities.keys().map(|k| k.0)));
        let community = Community {
            id,
            name: name.to_owned(),
            created_at: from_millis(to_millis(created_at)),
        };
        inner.communities.insert(id, community.clone());
        inner.community_names.insert(name.to_owned(), id);
        Ok(community)
    }

    async fn entity(&self, key: &EntityKey) -> Result<Option<Entity>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .entity_keys
            .get(key)
            .and_then(|id| inner.entities.get(id))
            .cloned())
    }

    async fn assign_entity(
        &self,
        key: &EntityKey,
        community: CommunityId,
    ) -> Result<Entity, StoreError> {
        let mut inner = self.lock();
        if !inner.communities.contains_key(&community) {
            return Err(StoreError::NotFound(format!("community {community}")));
        }
        let existing = inner.entity_keys.get(key).copied();
        let id = existing.unwrap_or_else(|| EntityId(next_id(inner.entities.keys().map(|k| k.0))));
        let entity = inner.entities.entry(id).or_insert_with(|| Entity {
            id,
            community_id: community,
            key: key.clone(),
            created_at: now_millis(),
        });
        entity.community_id = community;
        let entity = entity.clone();
        inner.entity_keys.insert(key.clone(), id);
        Ok(entity)
    }

    async fn custom_command(
        &self,
        community: CommunityId,
        name: &str,
    ) -> Result<Option<CustomCommand>, StoreError> {
        Ok(self
            .lock()
            .commands
            .get(&(community, name.to_owned()))
            .cloned())
    }

    async fn create_custom_command(&self, command: &CustomCommand) -> Result<(), StoreError> {
        check_key("command name", &command.name)?;
        let mut inner = self.lock();
        let key = (command.community_id, command.name.clone());
        if inner.commands.contains_key(&key) {
            return Err(StoreError::Conflict(format!(
                "command '{}' already exists",
                command.name
            )));
        }
        inner.commands.insert(key, command.clone());
        Ok(())
    }

    async fn update_custom_command(
        &self,
        community: CommunityId,
        name: &str,
        response: &str,
    ) -> Result<CustomCommand, StoreError> {
        let mut inner = self.lock();
        let command = inner
            .commands
            .get_mut(&(community, name.to_owned()))
            .ok_or_else(|| StoreError::NotFound(format!("command '{name}'")))?;
        command.response = response.to_owned();
        command.updated_at = now_millis();
        Ok(command.clone())
    }

    async fn delete_custom_command(
        &self,
        community: CommunityId,
        name: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .commands
            .remove(&(community, name.to_owned()))
            .is_some())
    }

    async fn list_custom_commands(
        &self,
        community: CommunityId,
    ) -> Result<Vec<CustomCommand>, StoreError> {
        Ok(in_community(&self.lock().commands, community))
    }

    async fn alias(&self, community: CommunityId, name: &str) -> Result<Option<Alias>, StoreError> {
        Ok(self
            .lock()
            .aliases
            .get(&(community, name.to_owned()))
            .cloned())
    }

    async fn create_alias(&self, alias: &Alias) -> Result<(), StoreError> {
        check_key("alias name", &alias.name)?;
        let mut inner = self.lock();
        let key = (alias.community_id, alias.name.clone());
        if inner.aliases.contains_key(&key) {
            return Err(StoreError::Conflict(format!(
                "alias '{}' already exists",
                alias.name
            )));
        }
        inner.aliases.insert(key, alias.clone());
        Ok(())
    }

    async fn delete_alias(&self, community: CommunityId, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .aliases
            .remove(&(community, name.to_owned()))
            .is_some())
    }

    async fn list_aliases(&self, community: CommunityId) -> Result<Vec<Alias>, StoreError> {
        Ok(in_community(&self.lock().aliases, community))
    }

    async fn create_rule(&self, rule: &StringRule) -> Result<StringRule, StoreError> {
        check_key("rule pattern", &rule.pattern)?;
        let mut inner = self.lock();
        let id = next_id(inner.rules.keys().copied());
        let stored = StringRule { id, ..rule.clone() };
        inner.rules.insert(id, stored.clone());
        Ok(stored)
    }

    async fn list_rules(&self, community: CommunityId) -> Result<Vec<StringRule>, StoreError> {
        let mut rules: Vec<StringRule> = self
            .lock()
            .rules
            .values()
            .filter(|rule| rule.community_id == community)
            .cloned()
            .collect();
        rules.sort_by_key(|rule| (rule.priority, rule.id));
        Ok(rules)
    }

    async fn delete_rule(&self, community: CommunityId, id: i64) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if inner
            .rules
            .get(&id)
            .is_some_and(|r| r.community_id == community)
        {
            inner.rules.remove(&id);
            return Ok(true);
        }
        Ok(false)
    }

    async fn record_rule_match(
        &self,
        community: CommunityId,
        id: i64,
        at: std::time::SystemTime,
    ) -> Result<(), StoreError> {
        if let Some(rule) = self
            .lock()
            .rules
            .get_mut(&id)
            .filter(|r| r.community_id == community)
        {
            rule.match_count += 1;
            rule.last_matched = Some(super::from_millis(super::to_millis(at)));
        }
        Ok(())
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<i64, StoreError> {
        let mut inner = self.lock();
        let id = i64::try_from(inner.audit.len()).unwrap_or(i64::MAX) + 1;
        inner.audit.push(AuditEntry {
            id,
            at: from_millis(to_millis(entry.at)),
            ..entry.clone()
        });
        Ok(id)
    }

    async fn list_audit(
        &self,
        community: Option<CommunityId>,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(self
            .lock()
            .audit
            .iter()
            .rev()
            .filter(|e| e.community_id == community)
            .skip(offset)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        check_key("API key id", &key.id)?;
        let mut inner = self.lock();
        if inner.api_keys.contains_key(&key.id) {
            return Err(StoreError::Conflict(format!("API key '{}' exists", key.id)));
        }
        inner.api_keys.insert(key.id.clone(), key.clone());
        Ok(())
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.lock().api_keys.get(id).cloned())
    }

    async fn list_api_keys(
        &self,
        community: Option<CommunityId>,
    ) -> Result<Vec<ApiKey>, StoreError> {
        let mut keys: Vec<ApiKey> = self
            .lock()
            .api_keys
            .values()
            .filter(|k| community.is_none() || k.community_id == community)
            .cloned()
            .collect();
        keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(keys)
    }

    async fn revoke_api_key(&self, id: &str, at: SystemTime) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .api_keys
            .get_mut(id)
            .map(|key| key.revoked_at = Some(at))
            .is_some())
    }

    async fn touch_api_key(&self, id: &str, at: SystemTime) -> Result<(), StoreError> {
        if let Some(key) = self.lock().api_keys.get_mut(id) {
            key.last_used_at = Some(at);
        }
        Ok(())
    }

    async fn create_remote_module(&self, module: &RemoteModule) -> Result<(), StoreError> {
        check_key("module name", &module.name)?;
        let mut inner = self.lock();
        let key = (module.community_id, module.name.clone());
        if inner.remote.contains_key(&key) {
            return Err(StoreError::Conflict(format!(
                "remote module '{}' already exists",
                module.name
            )));
        }
        inner.remote.insert(key, module.clone());
        Ok(())
    }

    async fn list_remote_modules(
        &self,
        community: CommunityId,
    ) -> Result<Vec<RemoteModule>, StoreError> {
        Ok(in_community(&self.lock().remote, community))
    }

    async fn delete_remote_module(
        &self,
        community: CommunityId,
        name: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .remote
            .remove(&(community, name.to_owned()))
            .is_some())
    }

    async fn role_grant(
        &self,
        community: CommunityId,
        platform: &PlatformKind,
        user_id: &str,
    ) -> Result<Option<RoleGrant>, StoreError> {
        let key = (community, platform.to_string(), user_id.to_owned());
        Ok(self.lock().role_grants.get(&key).cloned())
    }

    async fn put_role_grant(&self, grant: &RoleGrant) -> Result<(), StoreError> {
        check_key("user id", &grant.user_id)?;
        let key = (
            grant.community_id,
            grant.platform.to_string(),
            grant.user_id.clone(),
        );
        self.lock().role_grants.insert(key, grant.clone());
        Ok(())
    }

    async fn delete_role_grant(
        &self,
        community: CommunityId,
        platform: &PlatformKind,
        user_id: &str,
    ) -> Result<bool, StoreError> {
        let key = (community, platform.to_string(), user_id.to_owned());
        Ok(self.lock().role_grants.remove(&key).is_some())
    }

    async fn list_role_grants(&self, community: CommunityId) -> Result<Vec<RoleGrant>, StoreError> {
        Ok(self
            .lock()
            .role_grants
            .range((community, String::new(), String::new())..)
            .take_while(|((owner, _, _), _)| *owner == community)
            .map(|(_, grant)| grant.clone())
            .collect())
    }

    async fn module_install(
        &self,
        community: CommunityId,
        module: &str,
    ) -> Result<Option<ModuleInstall>, StoreError> {
        Ok(self
            .lock()
            .installs
            .get(&(community, module.to_owned()))
            .cloned())
    }

    async fn put_module_install(&self, install: &ModuleInstall) -> Result<(), StoreError> {
        check_key("module name", &install.module)?;
        self.lock().installs.insert(
            (install.community_id, install.module.clone()),
            install.clone(),
        );
        Ok(())
    }

    async fn list_module_installs(
        &self,
        community: CommunityId,
    ) -> Result<Vec<ModuleInstall>, StoreError> {
        Ok(in_community(&self.lock().installs, community))
    }

    async fn command_settings(
        &self,
        community: CommunityId,
        command: &str,
    ) -> Result<Option<CommandSettings>, StoreError> {
        Ok(self
            .lock()
            .settings
            .get(&(community, command.to_owned()))
            .cloned())
    }

    async fn put_command_settings(&self, settings: &CommandSettings) -> Result<(), StoreError> {
        check_key("command name", &settings.command)?;
        self.lock().settings.insert(
            (settings.community_id, settings.command.clone()),
            settings.clone(),
        );
        Ok(())
    }

    async fn list_command_settings(
        &self,
        community: CommunityId,
    ) -> Result<Vec<CommandSettings>, StoreError> {
        Ok(in_community(&self.lock().settings, community))
    }

    async fn delete_command_settings(
        &self,
        community: CommunityId,
        command: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .settings
            .remove(&(community, command.to_owned()))
            .is_some())
    }

    async fn get_document(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<Document>, StoreError> {
        Ok(self
            .lock()
            .documents
            .get(namespace)
            .and_then(|docs| docs.get(key))
            .map(|(value, version)| Document {
                key: key.to_owned(),
                value: value.clone(),
                version: *version,
            }))
    }

    async fn put_document(
        &self,
        namespace: &str,
        key: &str,
        value: &serde_json::Value,
        expect: Expect,
    ) -> Result<u64, StoreError> {
        check_key("namespace", namespace)?;
        check_key("document key", key)?;
        let mut inner = self.lock();
        let docs = inner.documents.entry(namespace.to_owned()).or_default();
        let current = docs.get(key).map(|(_, version)| *version);
        let version = match (expect, current) {
            (Expect::Any, current) => current.unwrap_or(0) + 1,
            (Expect::Absent, None) => 1,
            (Expect::Version(want), Some(have)) if want == have => have + 1,
            (_, current) => {
                return Err(StoreError::Conflict(format!(
                    "document '{namespace}/{key}' is at version {}, write expected {expect:?}",
                    current.unwrap_or(0)
                )));
            }
        };
        docs.insert(key.to_owned(), (value.clone(), version));
        Ok(version)
    }

    async fn delete_document(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .documents
            .get_mut(namespace)
            .is_some_and(|docs| docs.remove(key).is_some()))
    }

    async fn list_documents(
        &self,
        namespace: &str,
        prefix: &str,
        page: &Page,
    ) -> Result<Vec<Document>, StoreError> {
        let inner = self.lock();
        let Some(docs) = inner.documents.get(namespace) else {
            return Ok(Vec::new());
        };
        let start = match &page.after {
            Some(after) if after.as_str() >= prefix => std::ops::Bound::Excluded(after.clone()),
            _ => std::ops::Bound::Included(prefix.to_owned()),
        };
        Ok(docs
            .range((start, std::ops::Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .take(page.effective_limit())
            .map(|(key, (value, version))| Document {
                key: key.clone(),
                value: value.clone(),
                version: *version,
            })
            .collect())
    }

    async fn increment(&self, namespace: &str, key: &str, delta: i64) -> Result<i64, StoreError> {
        check_key("namespace", namespace)?;
        check_key("counter key", key)?;
        Ok(self.lock().add(namespace, key, delta))
    }

    async fn write_batch(&self, writes: &[Write]) -> Result<(), StoreError> {
        for write in writes {
            write.check()?;
        }
        // Under one lock: the batch lands whole, and nothing can fail part-way.
        let mut inner = self.lock();
        for write in writes {
            let (namespace, key) = (write.namespace(), write.key());
            if let Write::Increment { delta, .. } = write {
                inner.add(namespace, key, *delta);
                continue;
            }
            let docs = inner.documents.entry(namespace.to_owned()).or_default();
            let stored = docs.get(key);
            let version = stored.map_or(0, |(_, version)| *version) + 1;
            let value = match write {
                Write::Put { value, .. } => value.clone(),
                Write::Insert { value, .. } if stored.is_none() => value.clone(),
                Write::Merge { fields, .. } => {
                    Write::merged(stored.map(|(value, _)| value.clone()), fields)
                }
                Write::Delete { .. } => {
                    docs.remove(key);
                    continue;
                }
                _ => continue,
            };
            docs.insert(key.to_owned(), (value, version));
        }
        Ok(())
    }

    async fn counter(&self, namespace: &str, key: &str) -> Result<i64, StoreError> {
        Ok(self
            .lock()
            .counters
            .get(namespace)
            .and_then(|counters| counters.get(key))
            .copied()
            .unwrap_or(0))
    }

    async fn list_counters(
        &self,
        namespace: &str,
        page: &Page,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let inner = self.lock();
        let Some(counters) = inner.counters.get(namespace) else {
            return Ok(Vec::new());
        };
        let start = page
            .after
            .clone()
            .map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        Ok(counters
            .range((start, std::ops::Bound::Unbounded))
            .take(page.effective_limit())
            .map(|(key, value)| (key.clone(), *value))
            .collect())
    }

    async fn list_namespaces(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let inner = self.lock();
        let namespaces: std::collections::BTreeSet<&String> = inner
            .documents
            .iter()
            .filter(|(_, docs)| !docs.is_empty())
            .map(|(ns, _)| ns)
            .chain(
                inner
                    .counters
                    .iter()
                    .filter(|(_, counters)| !counters.is_empty())
                    .map(|(ns, _)| ns),
            )
            .filter(|ns| ns.starts_with(prefix))
            .collect();
        Ok(namespaces.into_iter().cloned().collect())
    }

    async fn top_counters(
        &self,
        namespace: &str,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let inner = self.lock();
        let mut all: Vec<(String, i64)> = inner
            .counters
            .get(namespace)
            .map(|counters| counters.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(limit);
        Ok(all)
    }
}

/// A community's records from a map keyed `(community, name)`, in name order.
fn in_community<V: Clone>(
    map: &BTreeMap<(CommunityId, String), V>,
    community: CommunityId,
) -> Vec<V> {
    map.range((community, String::new())..)
        .take_while(|((owner, _), _)| *owner == community)
        .map(|(_, value)| value.clone())
        .collect()
}

fn next_id(mut existing: impl DoubleEndedIterator<Item = i64>) -> i64 {
    existing.next_back().unwrap_or(0) + 1
}
