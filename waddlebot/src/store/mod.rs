//! Persistence: one [`Store`] trait for everything the engine and its modules keep.
//!
//! Three kinds of data, so any backend can hold everything and third-party modules get storage
//! for free:
//!
//! 1. typed core records the router needs on every event (communities, entities, custom
//!    commands...);
//! 2. documents: namespaced JSON values with compare-and-set, for module data (quotes,
//!    inventory, reminders...);
//! 3. counters: atomic increments and top-N queries (use counts, points, leaderboards).
//!
//! Backends: [`MemoryStore`] (always there) and `SqliteStore` (feature `sqlite`). Every backend
//! passes the same conformance suite (`waddlebot::store::conformance`, feature `test-util`).

mod memory;
// The shared SQL body first: `macro_rules!` is in scope only after its definition.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[macro_use]
mod sql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "test-util")]
pub mod conformance;
pub mod dump;
mod write;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::id::{CommunityId, EntityId};
use crate::permission::PermissionLevel;
use crate::platform::PlatformKind;

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PgSettings, PgStore, PgStoreError};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sql::SchemaError;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteStore, SqliteStoreError};
pub use write::Write;

/// A community: the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Community {
    /// Its id.
    pub id: CommunityId,
    /// Unique name. Communities created on first sight are named `<platform>:<server_id>`.
    pub name: String,
    /// When it was created.
    pub created_at: SystemTime,
}

/// Where chat happens: `(platform, server_id, channel_id)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EntityKey {
    /// The platform.
    pub platform: PlatformKind,
    /// The server (Discord guild, Slack workspace, Twitch channel).
    pub server_id: String,
    /// The channel.
    pub channel_id: String,
}

impl EntityKey {
    /// The name given to a community created on first sight of this key.
    pub fn default_community_name(&self) -> String {
        format!("{}:{}", self.platform, self.server_id)
    }
}

/// An entity and the community it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    /// Its id.
    pub id: EntityId,
    /// Its community.
    pub community_id: CommunityId,
    /// Where it is.
    pub key: EntityKey,
    /// When it was first seen.
    pub created_at: SystemTime,
}

/// The module custom text commands and their management belong to: turning it off in a
/// community turns both off.
pub const CUSTOM_COMMANDS_MODULE: &str = "custom_commands";

/// A community's own text command (`!hello` → `Hi {user}!`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomCommand {
    /// The community that owns it.
    pub community_id: CommunityId,
    /// The name without prefix, lower case.
    pub name: String,
    /// The response template (see [`crate::template`]).
    pub response: String,
    /// Who created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: SystemTime,
    /// When it was last changed.
    pub updated_at: SystemTime,
}

/// A community's alias: typing `!name args` runs `target` (a command line, with `{user}`,
/// `{args}` and `{argN}` filled in, or the arguments appended when it has none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alias {
    /// The community.
    pub community_id: CommunityId,
    /// The alias name, lower case, without prefix.
    pub name: String,
    /// What it runs, e.g. `!quote search {args}` or `!so`.
    pub target: String,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: SystemTime,
}

/// How a string rule's pattern is compared with a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchType {
    /// The whole message equals the pattern.
    Exact,
    /// The message contains the pattern.
    Contains,
    /// The pattern appears as a whole word (or words).
    Word,
    /// The pattern is a regular expression found in the message.
    Regex,
}

impl MatchType {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Contains => "contains",
            Self::Word => "word",
            Self::Regex => "regex",
        }
    }
}

/// What a matching string rule does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RuleAction {
    /// Reply with a warning.
    Warn {
        /// The warning; a default text when `None`.
        message: Option<String>,
    },
    /// Remove the message (or time the sender out) and say why.
    Block {
        /// The notice; a default text when `None`.
        message: Option<String>,
        /// Time the sender out for this long instead of deleting the message.
        timeout_secs: Option<u64>,
    },
    /// Run a command line (`!so {user}`) as if the sender typed it.
    Command {
        /// The command line.
        command: String,
    },
    /// POST the match to a URL.
    Webhook {
        /// Where to.
        url: String,
    },
}

/// A community's string-match rule: auto-replies and moderation on plain chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StringRule {
    /// Its id.
    pub id: i64,
    /// The community.
    pub community_id: CommunityId,
    /// What to look for (`*` matches every message).
    pub pattern: String,
    /// How to compare.
    pub match_type: MatchType,
    /// Case matters.
    pub case_sensitive: bool,
    /// Lower is checked first.
    pub priority: i32,
    /// What happens on a match.
    pub action: RuleAction,
    /// Off rules are kept but never match.
    pub enabled: bool,
    /// How many messages it matched.
    pub match_count: i64,
    /// When it last matched.
    pub last_matched: Option<SystemTime>,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: SystemTime,
}

/// How a remote module is called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RemoteKind {
    /// An HTTPS endpoint receiving the signed JSON contract.
    Webhook,
    /// An Apache OpenWhisk action: `POST {url}/api/v1/namespaces/{namespace}/actions/{action}`
    /// with Basic auth `user:password`. Spelled `openwhisk`, as OpenWhisk and the original
    /// spell it; `open_whisk`, what earlier versions wrote, is read too.
    #[serde(rename = "openwhisk", alias = "open_whisk")]
    OpenWhisk {
        /// The namespace (`waddlebot` by default in the original).
        namespace: String,
        /// The action name.
        action: String,
        /// `user:password`.
        auth: String,
    },
}

/// An API key's record. The key itself is never stored: only its SHA-256 (`hash`, hex). `id`
/// is the key's public part (the characters after `wbot_` up to the secret), shown in lists
/// and used to find the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// The public id.
    pub id: String,
    /// SHA-256 of the whole key, hex.
    pub hash: String,
    /// A label (`collector-twitch`, `alice's laptop`).
    pub name: String,
    /// What it may do (`admin`, `owner`, `community_admin`, `moderator`, `viewer`, `collector`).
    pub role: String,
    /// The community it is limited to; `None` for bot-wide keys.
    pub community_id: Option<CommunityId>,
    /// When it was made.
    pub created_at: SystemTime,
    /// When it stops working, if ever.
    pub expires_at: Option<SystemTime>,
    /// When it was last accepted.
    pub last_used_at: Option<SystemTime>,
    /// When it was revoked.
    pub revoked_at: Option<SystemTime>,
}

/// One admin change, kept in the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Its id, in the order entries were written (set by the store).
    pub id: i64,
    /// The community changed; `None` for bot-wide changes.
    pub community_id: Option<CommunityId>,
    /// Who made it (a key's or token's subject).
    pub actor: String,
    /// What was done (`command.create`, `alias.delete`, `ai.config.update`...).
    pub action: String,
    /// What it was done to (a command's name...).
    pub target: String,
    /// Details (before and after, when there are any).
    pub detail: serde_json::Value,
    /// When.
    pub at: SystemTime,
}

/// A community's remote module: a `#command` (and/or event handler) that runs elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteModule {
    /// The community that registered it.
    pub community_id: CommunityId,
    /// Its name, unique in the community.
    pub name: String,
    /// The endpoint (webhook URL, or OpenWhisk API host).
    pub url: String,
    /// The HMAC-SHA256 key the request body is signed with.
    pub secret: String,
    /// Commands it answers (without prefix).
    pub commands: Vec<String>,
    /// Event kinds it receives ([`crate::EventKind::name`]).
    pub events: Vec<String>,
    /// How long it may take, in milliseconds (default 5000, at most 30000).
    pub timeout_ms: u64,
    /// How it is called.
    pub kind: RemoteKind,
    /// Off modules are kept but not called.
    pub enabled: bool,
    /// When it was registered.
    pub created_at: SystemTime,
}

/// A permission level granted to a user in a community, on top of what their platform badges
/// give (the higher of the two counts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleGrant {
    /// The community.
    pub community_id: CommunityId,
    /// The user's platform.
    pub platform: PlatformKind,
    /// The user's platform id.
    pub user_id: String,
    /// The level granted.
    pub level: PermissionLevel,
    /// Who granted it.
    pub granted_by: String,
    /// When.
    pub granted_at: SystemTime,
}

/// Whether a module is on for a community, and its settings there. No record means the
/// module's default: core modules on, optional modules off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleInstall {
    /// The community.
    pub community_id: CommunityId,
    /// The module name (`custom_commands`, `quotes`...).
    pub module: String,
    /// On or off.
    pub enabled: bool,
    /// Module settings for this community.
    pub config: serde_json::Value,
    /// Who changed it last.
    pub updated_by: String,
    /// When.
    pub updated_at: SystemTime,
}

/// A community's overrides for one command (built-in or custom). `None` keeps the command's own
/// setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandSettings {
    /// The community.
    pub community_id: CommunityId,
    /// The command name, without prefix.
    pub command: String,
    /// Off: the command answers that it is disabled.
    pub enabled: bool,
    /// Minimum level instead of the command's own.
    pub min_level: Option<PermissionLevel>,
    /// Seconds between any two uses in the community.
    pub global_cooldown_secs: Option<u64>,
    /// Seconds between two uses by one user.
    pub user_cooldown_secs: Option<u64>,
    /// Commands with the same bucket share their cooldowns.
    pub cooldown_bucket: Option<String>,
}

impl CommandSettings {
    /// Settings that change nothing.
    pub fn new(community_id: CommunityId, command: impl Into<String>) -> Self {
        Self {
            community_id,
            command: command.into(),
            enabled: true,
            min_level: None,
            global_cooldown_secs: None,
            user_cooldown_secs: None,
            cooldown_bucket: None,
        }
    }
}

/// A stored document and its version. Versions start at 1 and grow by one per write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// The key within its namespace.
    pub key: String,
    /// The value.
    pub value: serde_json::Value,
    /// The version, for compare-and-set.
    pub version: u64,
}

/// The precondition of a document write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Write whatever is there.
    Any,
    /// Write only if the key does not exist (create).
    Absent,
    /// Write only if the stored version is this one (compare-and-set).
    Version(u64),
}

/// A page of a listing: keys strictly after `after`, at most `limit` of them. Keyset pagination,
/// so concurrent inserts never make a listing skip or repeat a record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Start after this key (exclusive); `None` starts at the beginning.
    pub after: Option<String>,
    /// How many at most; 0 is treated as [`Page::DEFAULT_LIMIT`].
    pub limit: usize,
}

impl Page {
    /// The limit used when none is given.
    pub const DEFAULT_LIMIT: usize = 50;
    /// The largest limit honoured.
    pub const MAX_LIMIT: usize = 1000;

    /// The first page of at most `limit` items.
    pub fn first(limit: usize) -> Self {
        Self { after: None, limit }
    }

    /// The effective limit.
    pub fn effective_limit(&self) -> usize {
        match self.limit {
            0 => Self::DEFAULT_LIMIT,
            n => n.min(Self::MAX_LIMIT),
        }
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The record does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The write's precondition failed: the record exists already, or its version moved on.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The argument cannot be stored (empty key, value too large...).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The backend failed or cannot be reached.
    #[error("store backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wraps a backend error.
    pub fn backend(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(err))
    }
}

/// Persistence for the engine and its modules. Implementations must be safe to share
/// (`Arc<dyn Store>`) and every method must be atomic on its own.
///
/// ```
/// use waddlebot::store::{EntityKey, Expect, MemoryStore, Store};
/// use waddlebot::PlatformKind;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let key = EntityKey { platform: PlatformKind::Twitch, server_id: "pond".into(), channel_id: "pond".into() };
/// let entity = store.resolve_entity(&key).await.unwrap();
/// assert_eq!(store.resolve_entity(&key).await.unwrap(), entity, "created once, then found");
///
/// let ns = format!("{}:quotes", entity.community_id);
/// store.put_document(&ns, "1", &serde_json::json!({"text": "waddle"}), Expect::Absent).await.unwrap();
/// assert_eq!(store.increment(&ns, "next_id", 1).await.unwrap(), 1);
/// # });
/// ```
#[async_trait]
pub trait Store: Send + Sync {
    // --- communities and entities ---

    /// The entity at `key` with its community, creating both on first sight.
    async fn resolve_entity(&self, key: &EntityKey) -> Result<Entity, StoreError>;

    /// A community by id.
    async fn community(&self, id: CommunityId) -> Result<Option<Community>, StoreError>;

    /// Entities in id order, starting after the id in `page.after`.
    async fn list_entities(&self, page: &Page) -> Result<Vec<Entity>, StoreError>;

    /// Communities in id order, starting after the id in `page.after`.
    async fn list_communities(&self, page: &Page) -> Result<Vec<Community>, StoreError>;

    /// A community by its unique name.
    async fn community_named(&self, name: &str) -> Result<Option<Community>, StoreError>;

    /// Creates a community; [`StoreError::Conflict`] if the name is taken.
    async fn create_community(
        &self,
        name: &str,
        created_at: SystemTime,
    ) -> Result<Community, StoreError>;

    /// The entity at `key`, if it has been seen (never creates one).
    async fn entity(&self, key: &EntityKey) -> Result<Option<Entity>, StoreError>;

    /// Puts the entity at `key` in `community`: creates it there, or moves it from the community
    /// it was in. [`StoreError::NotFound`] if the community does not exist.
    async fn assign_entity(
        &self,
        key: &EntityKey,
        community: CommunityId,
    ) -> Result<Entity, StoreError>;

    // --- custom commands ---

    /// A community's custom command by (normalised) name.
    async fn custom_command(
        &self,
        community: CommunityId,
        name: &str,
    ) -> Result<Option<CustomCommand>, StoreError>;

    /// Creates a custom command; [`StoreError::Conflict`] if the name is taken.
    async fn create_custom_command(&self, command: &CustomCommand) -> Result<(), StoreError>;

    /// Replaces a custom command's response; [`StoreError::NotFound`] if there is none.
    async fn update_custom_command(
        &self,
        community: CommunityId,
        name: &str,
        response: &str,
    ) -> Result<CustomCommand, StoreError>;

    /// Deletes a custom command; `false` if there was none.
    async fn delete_custom_command(
        &self,
        community: CommunityId,
        name: &str,
    ) -> Result<bool, StoreError>;

    /// A community's custom commands, sorted by name.
    async fn list_custom_commands(
        &self,
        community: CommunityId,
    ) -> Result<Vec<CustomCommand>, StoreError>;

    // --- aliases ---

    /// A community's alias by name.
    async fn alias(&self, community: CommunityId, name: &str) -> Result<Option<Alias>, StoreError>;

    /// Creates an alias; [`StoreError::Conflict`] if the name is taken.
    async fn create_alias(&self, alias: &Alias) -> Result<(), StoreError>;

    /// Deletes an alias; `false` if there was none.
    async fn delete_alias(&self, community: CommunityId, name: &str) -> Result<bool, StoreError>;

    /// A community's aliases, sorted by name.
    async fn list_aliases(&self, community: CommunityId) -> Result<Vec<Alias>, StoreError>;

    // --- string rules ---

    /// Stores a new rule (its `id` is ignored; a new rule has `match_count` 0 and no
    /// `last_matched`, an imported one keeps its own) and returns it with its id.
    async fn create_rule(&self, rule: &StringRule) -> Result<StringRule, StoreError>;

    /// A community's rules, by priority then id.
    async fn list_rules(&self, community: CommunityId) -> Result<Vec<StringRule>, StoreError>;

    /// Deletes a rule; `false` if the community has no such rule.
    async fn delete_rule(&self, community: CommunityId, id: i64) -> Result<bool, StoreError>;

    /// Counts a match: `match_count + 1`, `last_matched = at`.
    async fn record_rule_match(
        &self,
        community: CommunityId,
        id: i64,
        at: SystemTime,
    ) -> Result<(), StoreError>;

    // --- remote modules ---

    /// Registers a remote module; [`StoreError::Conflict`] if the name is taken.
    async fn create_remote_module(&self, module: &RemoteModule) -> Result<(), StoreError>;

    /// A community's remote modules, by name.
    async fn list_remote_modules(
        &self,
        community: CommunityId,
    ) -> Result<Vec<RemoteModule>, StoreError>;

    /// Removes a remote module; `false` if there was none.
    async fn delete_remote_module(
        &self,
        community: CommunityId,
        name: &str,
    ) -> Result<bool, StoreError>;

    // --- API keys ---

    /// Stores a new key record; a taken id is a conflict.
    async fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError>;

    /// The key record with this public id.
    async fn api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError>;

    /// Key records, newest first: all, or one community's.
    async fn list_api_keys(
        &self,
        community: Option<CommunityId>,
    ) -> Result<Vec<ApiKey>, StoreError>;

    /// Marks a key revoked at `at`; `false` if there is no such key.
    async fn revoke_api_key(&self, id: &str, at: SystemTime) -> Result<bool, StoreError>;

    /// Records that a key was accepted at `at`.
    async fn touch_api_key(&self, id: &str, at: SystemTime) -> Result<(), StoreError>;

    // --- audit log ---

    /// Appends an entry (its `id` is ignored) and returns the id it got.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<i64, StoreError>;

    /// A community's entries (or the bot-wide ones for `None`), newest first, `limit` of them
    /// after skipping `offset`.
    async fn list_audit(
        &self,
        community: Option<CommunityId>,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<AuditEntry>, StoreError>;

    /// How many entries a community (or the bot-wide log, for `None`) has, for paging. The
    /// default counts them through [`list_audit`](Self::list_audit); SQL stores count in one
    /// statement.
    async fn count_audit(&self, community: Option<CommunityId>) -> Result<usize, StoreError> {
        const PAGE: usize = 500;
        let mut counted = 0;
        loop {
            let page = self.list_audit(community, PAGE, counted).await?.len();
            counted += page;
            if page < PAGE {
                return Ok(counted);
            }
        }
    }

    // --- role grants ---

    /// The level granted to a user in a community, if any.
    async fn role_grant(
        &self,
        community: CommunityId,
        platform: &PlatformKind,
        user_id: &str,
    ) -> Result<Option<RoleGrant>, StoreError>;

    /// Grants a level, replacing an earlier grant to the same user.
    async fn put_role_grant(&self, grant: &RoleGrant) -> Result<(), StoreError>;

    /// Removes a grant; `false` if there was none.
    async fn delete_role_grant(
        &self,
        community: CommunityId,
        platform: &PlatformKind,
        user_id: &str,
    ) -> Result<bool, StoreError>;

    /// A community's grants, by platform then user id.
    async fn list_role_grants(&self, community: CommunityId) -> Result<Vec<RoleGrant>, StoreError>;

    // --- module installs ---

    /// A module's install record in a community, if any.
    async fn module_install(
        &self,
        community: CommunityId,
        module: &str,
    ) -> Result<Option<ModuleInstall>, StoreError>;

    /// Creates or replaces an install record.
    async fn put_module_install(&self, install: &ModuleInstall) -> Result<(), StoreError>;

    /// A community's install records, by module name.
    async fn list_module_installs(
        &self,
        community: CommunityId,
    ) -> Result<Vec<ModuleInstall>, StoreError>;

    // --- command settings ---

    /// A community's overrides for a command, if any.
    async fn command_settings(
        &self,
        community: CommunityId,
        command: &str,
    ) -> Result<Option<CommandSettings>, StoreError>;

    /// Creates or replaces a command's overrides.
    async fn put_command_settings(&self, settings: &CommandSettings) -> Result<(), StoreError>;

    /// A community's command overrides, by command name.
    async fn list_command_settings(
        &self,
        community: CommunityId,
    ) -> Result<Vec<CommandSettings>, StoreError>;

    /// Removes a command's overrides; `false` if there were none.
    async fn delete_command_settings(
        &self,
        community: CommunityId,
        command: &str,
    ) -> Result<bool, StoreError>;

    // --- documents ---

    /// A document.
    async fn get_document(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<Document>, StoreError>;

    /// Writes a document if `expect` holds and returns its new version; otherwise
    /// [`StoreError::Conflict`].
    async fn put_document(
        &self,
        namespace: &str,
        key: &str,
        value: &serde_json::Value,
        expect: Expect,
    ) -> Result<u64, StoreError>;

    /// Deletes a document; `false` if there was none.
    async fn delete_document(&self, namespace: &str, key: &str) -> Result<bool, StoreError>;

    /// Documents whose key starts with `prefix`, in key order, one page at a time.
    async fn list_documents(
        &self,
        namespace: &str,
        prefix: &str,
        page: &Page,
    ) -> Result<Vec<Document>, StoreError>;

    // --- counters ---

    /// Adds `delta` to a counter (created at 0) and returns the new value, atomically.
    async fn increment(&self, namespace: &str, key: &str, delta: i64) -> Result<i64, StoreError>;

    /// A counter's value (0 if never incremented).
    async fn counter(&self, namespace: &str, key: &str) -> Result<i64, StoreError>;

    /// The `limit` highest counters of a namespace, highest first (ties by key).
    async fn top_counters(
        &self,
        namespace: &str,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, StoreError>;

    /// Counters of a namespace in key order, one page at a time (`page.after` is the last key
    /// seen).
    async fn list_counters(
        &self,
        namespace: &str,
        page: &Page,
    ) -> Result<Vec<(String, i64)>, StoreError>;

    /// The namespaces starting with `prefix` that hold documents or counters, sorted, each once.
    /// With [`community_namespace`] this lists everything a community's modules keep.
    async fn list_namespaces(&self, prefix: &str) -> Result<Vec<String>, StoreError>;

    // --- batches and bookkeeping ---

    /// Applies `writes` in order, all or none: one transaction on SQL stores, so a batch of
    /// small changes costs one commit. The default applies them one after another and may
    /// stop part-way on a failure; stores that can do better override it.
    async fn write_batch(&self, writes: &[Write]) -> Result<(), StoreError> {
        for write in writes {
            write.check()?;
        }
        for write in writes {
            write.apply_to(self).await?;
        }
        Ok(())
    }

    /// Bookkeeping that may be written a little later (who was seen, small score changes):
    /// a store that buffers (the router's) gathers these and writes them in batches with
    /// [`write_batch`](Self::write_batch), and its reads see them before they are written.
    /// A process killed before the batch is written loses it: use this only for records a
    /// batch window's worth of which may be lost (the router's window is 100 ms). The
    /// default writes them at once.
    async fn write_behind(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.write_batch(&writes).await
    }

    /// Writes whatever [`write_behind`](Self::write_behind) is still holding. A graceful
    /// shutdown calls it (the router's `drain` does); the default has nothing to write.
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    // --- health ---

    /// Checks the backend answers. Defaults to always healthy.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The namespace a module keeps a community's documents and counters in: `<community>:<name>`.
/// Every module uses this form, so a community's data can be found, exported and moved with it
/// ([`Store::list_namespaces`] with [`community_namespace_prefix`]).
///
/// ```
/// use waddlebot::store::{community_namespace, split_community_namespace};
/// use waddlebot::CommunityId;
///
/// let ns = community_namespace(CommunityId(7), "quotes");
/// assert_eq!(ns, "7:quotes");
/// assert_eq!(split_community_namespace(&ns), Some((CommunityId(7), "quotes")));
/// assert_eq!(split_community_namespace("global"), None);
/// ```
pub fn community_namespace(community: CommunityId, name: &str) -> String {
    format!("{}{name}", community_namespace_prefix(community))
}

/// Every document of `namespace` whose key starts with `prefix`, in key order, reading the
/// store a page at a time. For a module's listings of a community's own records; not for a
/// namespace that grows without bound.
pub async fn all_documents(
    store: &dyn Store,
    namespace: &str,
    prefix: &str,
) -> Result<Vec<Document>, StoreError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_documents(
                namespace,
                prefix,
                &Page {
                    after: after.take(),
                    limit: Page::MAX_LIMIT,
                },
            )
            .await?;
        let full = page.len() == Page::MAX_LIMIT;
        after = page.last().map(|d| d.key.clone());
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

/// The prefix every namespace of `community` starts with.
pub fn community_namespace_prefix(community: CommunityId) -> String {
    format!("{}:", community.0)
}

/// Splits a namespace made by [`community_namespace`] into its community and name.
pub fn split_community_namespace(namespace: &str) -> Option<(CommunityId, &str)> {
    let (id, name) = namespace.split_once(':')?;
    let id = id.parse().ok().filter(|_| !id.starts_with('+'))?;
    Some((CommunityId(id), name))
}

pub(crate) fn to_millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn from_millis(millis: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(0))
}

/// Rounds a time to whole milliseconds, the precision every backend stores.
pub(crate) fn now_millis() -> SystemTime {
    from_millis(to_millis(SystemTime::now()))
}

fn check_key(what: &str, value: &str) -> Result<(), StoreError> {
    if value.is_empty() {
        return Err(StoreError::Invalid(format!("{what} must not be empty")));
    }
    Ok(())
}

/// Entity listings page by id: `after` holds the last id seen.
fn parse_after_id(page: &Page) -> Result<i64, StoreError> {
    page.after.as_deref().map_or(Ok(0), |after| {
        after
            .parse()
            .map_err(|_| StoreError::Invalid(format!("page cursor '{after}' is not an entity id")))
    })
}

/// A database URL with any password replaced, safe to print.
///
/// ```
/// assert_eq!(
///     waddlebot::store::redact_url("postgres://bot:hunter2@db/waddlebot"),
///     "postgres://bot:***@db/waddlebot"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
                }
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
