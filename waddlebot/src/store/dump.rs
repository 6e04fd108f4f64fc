//! Export and import: whole communities as one JSON document, to move them between stores
//! (SQLite to PostgreSQL and back) or keep a backup.
//!
//! A dump holds, per community, everything the [`Store`] keeps for it: its entities, custom
//! commands, aliases, string rules (with their match counts), remote modules, role grants, module
//! installs and settings, command overrides, and the documents and counters of every namespace
//! made by [`community_namespace`]. Records keep the ids of the store they came from; import gives
//! them the target's ids.
//!
//! Import checks the whole dump first — its shape, every record, and that none of its
//! communities or entities exists in the target already — and writes nothing if any check fails.
//!
//! ```
//! use waddlebot::store::dump::{self, Dump};
//! use waddlebot::store::{EntityKey, MemoryStore, Store, community_namespace};
//! use waddlebot::PlatformKind;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let old = MemoryStore::new();
//! let key = EntityKey { platform: PlatformKind::Twitch, server_id: "pond".into(), channel_id: "pond".into() };
//! let community = old.resolve_entity(&key).await.unwrap().community_id;
//! old.increment(&community_namespace(community, "rep"), "alice", 640).await.unwrap();
//!
//! let json = serde_json::to_string(&dump::export(&old, None).await.unwrap()).unwrap();
//! let new = MemoryStore::new();
//! let parsed = Dump::from_json(json.as_bytes()).unwrap();
//! dump::import(&new, &parsed, |_| {}).await.unwrap();
//!
//! let moved = new.resolve_entity(&key).await.unwrap().community_id;
//! assert_eq!(new.counter(&community_namespace(moved, "rep"), "alice").await.unwrap(), 640);
//! # });
//! ```

use std::collections::{BTreeMap, HashSet};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{
    Alias, CommandSettings, Community, CustomCommand, EntityKey, Expect, ModuleInstall, Page,
    RemoteModule, RoleGrant, Store, StoreError, StringRule, community_namespace,
    community_namespace_prefix,
};
use crate::id::CommunityId;
use crate::template::Template;

/// The `format` every dump carries.
pub const FORMAT: &str = "waddlebot-dump";
/// The dump version this build writes and reads.
pub const VERSION: u32 = 1;
/// The longest a remote module may be given, as the router enforces.
const MAX_REMOTE_TIMEOUT_MS: u64 = 30_000;

/// A dump: some or all communities of a store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dump {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`] when written by this build.
    pub version: u32,
    /// When it was made.
    pub exported_at: SystemTime,
    /// The communities.
    pub communities: Vec<CommunityDump>,
}

/// One community and everything kept for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommunityDump {
    /// Its id in the store it came from (import assigns a new one).
    pub id: CommunityId,
    /// Its unique name.
    pub name: String,
    /// When it was created.
    pub created_at: SystemTime,
    /// Where it chats.
    #[serde(default)]
    pub entities: Vec<EntityKey>,
    /// Custom text commands.
    #[serde(default)]
    pub custom_commands: Vec<CustomCommand>,
    /// Aliases.
    #[serde(default)]
    pub aliases: Vec<Alias>,
    /// String rules, with their match counts.
    #[serde(default)]
    pub rules: Vec<StringRule>,
    /// Remote modules.
    #[serde(default)]
    pub remote_modules: Vec<RemoteModule>,
    /// Role grants.
    #[serde(default)]
    pub role_grants: Vec<RoleGrant>,
    /// Module installs and their settings.
    #[serde(default)]
    pub module_installs: Vec<ModuleInstall>,
    /// Command overrides.
    #[serde(default)]
    pub command_settings: Vec<CommandSettings>,
    /// Module documents; `namespace` is the name given to [`community_namespace`].
    #[serde(default)]
    pub documents: Vec<DocumentDump>,
    /// Module counters; `namespace` as for documents.
    #[serde(default)]
    pub counters: Vec<CounterDump>,
}

impl CommunityDump {
    /// How many records importing it writes (the community itself included).
    pub fn records(&self) -> usize {
        1 + self.entities.len()
            + self.custom_commands.len()
            + self.aliases.len()
            + self.rules.len()
            + self.remote_modules.len()
            + self.role_grants.len()
            + self.module_installs.len()
            + self.command_settings.len()
            + self.documents.len()
            + self.counters.len()
    }
}

/// A module document of a community.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentDump {
    /// The namespace without its community part (`quotes`).
    pub namespace: String,
    /// The key.
    pub key: String,
    /// The value.
    pub value: serde_json::Value,
}

/// A module counter of a community.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterDump {
    /// The namespace without its community part (`command_uses`).
    pub namespace: String,
    /// The key.
    pub key: String,
    /// The value.
    pub value: i64,
}

/// Why a dump cannot be read or imported. Every variant except [`DumpError::Store`] is found
/// before anything is written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DumpError {
    /// Not JSON, or not the shape of a dump; says where.
    #[error("the dump is malformed at {path}: {message}")]
    Malformed {
        /// Where in the document (`communities[0].aliases[2].target`).
        path: String,
        /// What is wrong there.
        message: String,
    },
    /// Another format, or a version this build does not read.
    #[error("{0}")]
    Unsupported(String),
    /// A record that could not be stored as it is.
    #[error("community '{community}': {problem}")]
    Invalid {
        /// The community it belongs to.
        community: String,
        /// What is wrong.
        problem: String,
    },
    /// Importing would overwrite what the target has.
    #[error("{0}; import into a store without it")]
    Exists(String),
    /// The store failed while reading or writing.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Dump {
    /// Reads a dump, refusing anything that is not one this build can import.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DumpError> {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let dump: Self = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
            DumpError::Malformed {
                path: err.path().to_string(),
                message: err.inner().to_string(),
            }
        })?;
        deserializer.end().map_err(|err| DumpError::Malformed {
            path: ".".to_owned(),
            message: err.to_string(),
        })?;
        dump.check()?;
        Ok(dump)
    }

    /// Checks the format, the version and every record on its own (nothing about a target).
    pub fn check(&self) -> Result<(), DumpError> {
        if self.format != FORMAT {
            return Err(DumpError::Unsupported(format!(
                "not a WaddleBot dump (format '{}', expected '{FORMAT}')",
                self.format
            )));
        }
        if self.version > VERSION {
            return Err(DumpError::Unsupported(format!(
                "the dump has version {}, newer than this WaddleBot reads ({VERSION}); \
                 import it with a newer WaddleBot",
                self.version
            )));
        }
        let mut names = HashSet::new();
        let mut keys = HashSet::new();
        for community in &self.communities {
            let invalid = |problem: String| DumpError::Invalid {
                community: community.name.clone(),
                problem,
            };
            if community.name.is_empty() {
                return Err(invalid("the community name is empty".to_owned()));
            }
            if !names.insert(community.name.as_str()) {
                return Err(invalid("the community appears twice".to_owned()));
            }
            for key in &community.entities {
                if !keys.insert(key) {
                    return Err(invalid(format!("entity {} appears twice", describe(key))));
                }
            }
            check_community(community).map_err(invalid)?;
        }
        Ok(())
    }

    /// How many records importing it writes.
    pub fn records(&self) -> usize {
        self.communities.iter().map(CommunityDump::records).sum()
    }
}

/// The checks of one community's records, each naming the record.
fn check_community(community: &CommunityDump) -> Result<(), String> {
    unique(
        "custom command",
        community.custom_commands.iter().map(|c| &c.name),
    )?;
    for command in &community.custom_commands {
        Template::parse(&command.response)
            .map_err(|err| format!("custom command '{}': {err}", command.name))?;
    }
    unique("alias", community.aliases.iter().map(|a| &a.name))?;
    for alias in &community.aliases {
        if alias.target.trim().is_empty() {
            return Err(format!("alias '{}' has no target", alias.name));
        }
    }
    for rule in &community.rules {
        if rule.pattern.is_empty() {
            return Err(format!("rule {} has an empty pattern", rule.id));
        }
    }
    unique(
        "remote module",
        community.remote_modules.iter().map(|m| &m.name),
    )?;
    for module in &community.remote_modules {
        if module.timeout_ms == 0 || module.timeout_ms > MAX_REMOTE_TIMEOUT_MS {
            return Err(format!(
                "remote module '{}' has timeout {} ms (1 to {MAX_REMOTE_TIMEOUT_MS} allowed)",
                module.name, module.timeout_ms
            ));
        }
    }
    unique(
        "role grant",
        community
            .role_grants
            .iter()
            .map(|g| format!("{}:{}", g.platform, g.user_id)),
    )?;
    unique(
        "module install",
        community.module_installs.iter().map(|i| &i.module),
    )?;
    unique(
        "command setting",
        community.command_settings.iter().map(|s| &s.command),
    )?;
    unique(
        "document",
        community
            .documents
            .iter()
            .map(|d| format!("{}/{}", d.namespace, d.key)),
    )?;
    unique(
        "counter",
        community
            .counters
            .iter()
            .map(|c| format!("{}/{}", c.namespace, c.key)),
    )?;
    let blank = community
        .documents
        .iter()
        .map(|d| (&d.namespace, &d.key))
        .chain(community.counters.iter().map(|c| (&c.namespace, &c.key)))
        .find(|(namespace, key)| namespace.is_empty() || key.is_empty());
    if let Some((namespace, key)) = blank {
        return Err(format!(
            "a document or counter has an empty namespace or key ('{namespace}'/'{key}')"
        ));
    }
    Ok(())
}

/// Refuses an empty name or one seen twice.
fn unique<S: AsRef<str>>(what: &str, names: impl Iterator<Item = S>) -> Result<(), String> {
    let mut seen = HashSet::new();
    for name in names {
        let name = name.as_ref();
        if name.is_empty() {
            return Err(format!("a {what} has an empty name"));
        }
        if !seen.insert(name.to_owned()) {
            return Err(format!("{what} '{name}' appears twice"));
        }
    }
    Ok(())
}

fn describe(key: &EntityKey) -> String {
    format!("{}/{}/{}", key.platform, key.server_id, key.channel_id)
}

/// Reads every community of `store` (or just `only`) into a dump.
pub async fn export(store: &dyn Store, only: Option<CommunityId>) -> Result<Dump, StoreError> {
    let communities = match only {
        Some(id) => vec![
            store
                .community(id)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("community {id}")))?,
        ],
        None => {
            all_pages(
                |page| async move { store.list_communities(&page).await },
                |c| c.id.0.to_string(),
            )
            .await?
        }
    };
    let mut entities: BTreeMap<CommunityId, Vec<EntityKey>> = BTreeMap::new();
    let all_entities = all_pages(
        |page| async move { store.list_entities(&page).await },
        |e| e.id.0.to_string(),
    )
    .await?;
    for entity in all_entities {
        entities
            .entry(entity.community_id)
            .or_default()
            .push(entity.key);
    }
    let mut dumped = Vec::with_capacity(communities.len());
    for community in communities {
        let entities = entities.remove(&community.id).unwrap_or_default();
        dumped.push(export_community(store, community, entities).await?);
    }
    Ok(Dump {
        format: FORMAT.to_owned(),
        version: VERSION,
        exported_at: super::now_millis(),
        communities: dumped,
    })
}

async fn export_community(
    store: &dyn Store,
    community: Community,
    entities: Vec<EntityKey>,
) -> Result<CommunityDump, StoreError> {
    let id = community.id;
    let prefix = community_namespace_prefix(id);
    let mut documents = Vec::new();
    let mut counters = Vec::new();
    for namespace in store.list_namespaces(&prefix).await? {
        let name = namespace[prefix.len()..].to_owned();
        let namespace = namespace.as_str();
        let docs = all_pages(
            |page| async move { store.list_documents(namespace, "", &page).await },
            |d| d.key.clone(),
        )
        .await?;
        documents.extend(docs.into_iter().map(|d| DocumentDump {
            namespace: name.clone(),
            key: d.key,
            value: d.value,
        }));
        let counted = all_pages(
            |page| async move { store.list_counters(namespace, &page).await },
            |(key, _)| key.clone(),
        )
        .await?;
        counters.extend(counted.into_iter().map(|(key, value)| CounterDump {
            namespace: name.clone(),
            key,
            value,
        }));
    }
    Ok(CommunityDump {
        id,
        name: community.name,
        created_at: community.created_at,
        entities,
        custom_commands: store.list_custom_commands(id).await?,
        aliases: store.list_aliases(id).await?,
        rules: store.list_rules(id).await?,
        remote_modules: store.list_remote_modules(id).await?,
        role_grants: store.list_role_grants(id).await?,
        module_installs: store.list_module_installs(id).await?,
        command_settings: store.list_command_settings(id).await?,
        documents,
        counters,
    })
}

/// Every item of a keyset-paged listing.
async fn all_pages<T, F, Fut>(
    mut fetch: F,
    cursor: impl Fn(&T) -> String,
) -> Result<Vec<T>, StoreError>
where
    F: FnMut(Page) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, StoreError>>,
{
    let mut all = Vec::new();
    let mut page = Page::first(Page::MAX_LIMIT);
    loop {
        let batch = fetch(page.clone()).await?;
        let full = batch.len() == page.effective_limit();
        page.after = batch.last().map(&cursor);
        all.extend(batch);
        if !full {
            return Ok(all);
        }
    }
}

/// How far an import is: `done` of `total` records written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Written so far.
    pub done: usize,
    /// To write in all.
    pub total: usize,
}

/// Writes a checked dump into `store`, reporting progress after every record. Refuses, before
/// writing anything, a dump whose communities (by name) or entities exist in `store` already.
/// Returns the ids the communities got, in dump order.
pub async fn import(
    store: &dyn Store,
    dump: &Dump,
    mut progress: impl FnMut(Progress),
) -> Result<Vec<CommunityId>, DumpError> {
    dump.check()?;
    for community in &dump.communities {
        if store.community_named(&community.name).await?.is_some() {
            return Err(DumpError::Exists(format!(
                "community '{}' exists already",
                community.name
            )));
        }
        for key in &community.entities {
            if let Some(entity) = store.entity(key).await? {
                return Err(DumpError::Exists(format!(
                    "entity {} belongs to community {} already",
                    describe(key),
                    entity.community_id
                )));
            }
        }
    }
    let mut done = Progress {
        done: 0,
        total: dump.records(),
    };
    let mut step = || {
        done.done += 1;
        progress(done);
    };
    let mut ids = Vec::with_capacity(dump.communities.len());
    for community in &dump.communities {
        let id = store
            .create_community(&community.name, community.created_at)
            .await?
            .id;
        step();
        for key in &community.entities {
            store.assign_entity(key, id).await?;
            step();
        }
        for command in &community.custom_commands {
            store
                .create_custom_command(&CustomCommand {
                    community_id: id,
                    ..command.clone()
                })
                .await?;
            step();
        }
        for alias in &community.aliases {
            store
                .create_alias(&Alias {
                    community_id: id,
                    ..alias.clone()
                })
                .await?;
            step();
        }
        for rule in &community.rules {
            store
                .create_rule(&StringRule {
                    community_id: id,
                    ..rule.clone()
                })
                .await?;
            step();
        }
        for module in &community.remote_modules {
            store
                .create_remote_module(&RemoteModule {
                    community_id: id,
                    ..module.clone()
                })
                .await?;
            step();
        }
        for grant in &community.role_grants {
            store
                .put_role_grant(&RoleGrant {
                    community_id: id,
                    ..grant.clone()
                })
                .await?;
            step();
        }
        for install in &community.module_installs {
            store
                .put_module_install(&ModuleInstall {
                    community_id: id,
                    ..install.clone()
                })
                .await?;
            step();
        }
        for settings in &community.command_settings {
            store
                .put_command_settings(&CommandSettings {
                    community_id: id,
                    ..settings.clone()
                })
                .await?;
            step();
        }
        for document in &community.documents {
            let namespace = community_namespace(id, &document.namespace);
            store
                .put_document(&namespace, &document.key, &document.value, Expect::Any)
                .await?;
            step();
        }
        for counter in &community.counters {
            // Set, not add: the namespace may hold leftovers of a deleted community's id.
            let namespace = community_namespace(id, &counter.namespace);
            let current = store.counter(&namespace, &counter.key).await?;
            store
                .increment(
                    &namespace,
                    &counter.key,
                    counter.value.saturating_sub(current),
                )
                .await?;
            step();
        }
        ids.push(id);
    }
    Ok(ids)
}
