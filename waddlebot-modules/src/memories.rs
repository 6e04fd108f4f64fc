//! `!memories`: a community's bookmarks and notes.
//!
//! `!memories add url "Title" <url> [description]` (http and https only),
//! `!memories add note "Title" "Content" [tags…]`, `!memories list [url|note]`,
//! `!memories get <id>` (a bookmark's visit count goes up), `!memories search <words>`,
//! `!memories delete <id>`. Adding and deleting are for moderators. Kept as documents in
//! `<community>:memories`, visits as counters in `<community>:memory_visits`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use waddlebot::store::{Expect, Store, community_namespace};
use waddlebot::{
    CommandError, CommandHandler, CommandSpec, CommunityId, Context, PermissionLevel, Reply,
};

/// The module name memories belong to.
pub const MEMORIES_MODULE: &str = "memories";
/// Longest title.
pub const MAX_TITLE_LEN: usize = 100;
/// Longest bookmark description.
pub const MAX_DESCRIPTION_LEN: usize = 300;
/// Longest note.
pub const MAX_NOTE_LEN: usize = 1000;
/// Longest URL.
pub const MAX_URL_LEN: usize = 500;
/// Most tags on a note.
pub const MAX_TAGS: usize = 5;
/// Longest tag.
pub const MAX_TAG_LEN: usize = 30;
/// Entries shown in a list or search answer.
const SHOWN: usize = 10;

/// What a memory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryKind {
    /// A bookmark.
    Url,
    /// A note.
    Note,
}

/// A stored bookmark or note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// Its number in the community.
    pub id: u64,
    /// Bookmark or note.
    pub kind: MemoryKind,
    /// Its title.
    pub title: String,
    /// A bookmark's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A bookmark's description, or a note's text.
    #[serde(default)]
    pub text: String,
    /// A note's tags (lower case).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Who added it.
    pub added_by: String,
    /// When (Unix milliseconds).
    pub added_at_ms: u64,
}

impl Memory {
    fn line(&self) -> String {
        let icon = match self.kind {
            MemoryKind::Url => "🔗",
            MemoryKind::Note => "📝",
        };
        format!("#{} {icon} {}", self.id, self.title)
    }
}

fn namespace(community: CommunityId) -> String {
    community_namespace(community, MEMORIES_MODULE)
}

fn key(id: u64) -> String {
    format!("{id:010}")
}

fn too_long(what: &str, max: usize) -> CommandError {
    CommandError::invalid(format!(
        "That {what} is too long: at most {max} characters."
    ))
}

/// Every memory of a community, in id order.
async fn all(store: &dyn Store, community: CommunityId) -> Result<Vec<Memory>, CommandError> {
    crate::load_all(store, &namespace(community), "memory").await
}

fn listed(memories: &[Memory], empty: String) -> String {
    if memories.is_empty() {
        return empty;
    }
    let shown: Vec<String> = memories.iter().take(SHOWN).map(Memory::line).collect();
    let more = memories.len().saturating_sub(SHOWN);
    let more = if more > 0 {
        format!(" (+{more} more)")
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(" | "))
}

/// The memories module.
#[derive(Debug, Default)]
pub struct Memories;

#[async_trait]
impl CommandHandler for Memories {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("memories")
                .alias("memory")
                .usage("memories add url \"Title\" <url> [description] | memories add note \"Title\" \"Content\" [tags…] | memories list [url|note] | memories get <id> | memories search <words> | memories delete <id>")
                .description("The community's bookmarks and notes")
                .module(MEMORIES_MODULE),
        ]
    }

    async fn handle(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        let store = ctx.store.as_ref();
        let sub = ctx.args.get(0).map(str::to_lowercase);
        let text = match sub.as_deref() {
            Some("add") => self.add(&ctx).await?,
            Some("list") => {
                let kind = match ctx.args.get(1).map(str::to_lowercase).as_deref() {
                    None => None,
                    Some("url" | "urls") => Some(MemoryKind::Url),
                    Some("note" | "notes") => Some(MemoryKind::Note),
                    Some(_) => return Err(ctx.usage_error()),
                };
                let memories: Vec<Memory> = all(store, ctx.community)
                    .await?
                    .into_iter()
                    .filter(|m| kind.is_none_or(|k| m.kind == k))
                    .collect();
                listed(&memories, "No memories yet.".to_owned())
            }
            Some("get" | "show" | "visit") => self.get(&ctx).await?,
            Some("search" | "find") => {
                let words = ctx.args.rest_unquoted(1).trim().to_lowercase();
                if words.is_empty() {
                    return Err(ctx.usage_error());
                }
                let found: Vec<Memory> = all(store, ctx.community)
                    .await?
                    .into_iter()
                    .filter(|m| {
                        let hay =
                            format!("{} {} {}", m.title, m.text, m.tags.join(" ")).to_lowercase();
                        words.split_whitespace().all(|w| hay.contains(w))
                    })
                    .collect();
                listed(&found, format!("No memory matches \"{words}\"."))
            }
            Some("delete" | "remove" | "rm") => {
                ctx.require(PermissionLevel::Moderator)?;
                let id = number(&ctx)?;
                if !store
                    .delete_document(&namespace(ctx.community), &key(id))
                    .await?
                {
                    return Err(CommandError::invalid(format!("No memory #{id}.")));
                }
                format!("Memory #{id} deleted.")
            }
            _ => return Err(ctx.usage_error()),
        };
        Ok(vec![Reply::text(text)])
    }
}

fn number(ctx: &Context) -> Result<u64, CommandError> {
    if ctx.args.len() != 2 {
        return Err(ctx.usage_error());
    }
    ctx.args
        .get(1)
        .map(|raw| raw.trim_start_matches('#'))
        .and_then(|raw| raw.parse().ok())
        .ok_or_else(|| ctx.usage_error())
}

/// A bookmark's address: http or https with a host, no spaces.
fn check_url(raw: &str) -> Result<String, CommandError> {
    if raw.chars().count() > MAX_URL_LEN {
        return Err(too_long("address", MAX_URL_LEN));
    }
    match url::Url::parse(raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(url.to_string())
        }
        _ => Err(CommandError::invalid(format!(
            "'{raw}' is not a web address: use one starting with http:// or https://."
        ))),
    }
}

impl Memories {
    async fn add(&self, ctx: &Context) -> Result<String, CommandError> {
        ctx.require(PermissionLevel::Moderator)?;
        let kind = match ctx.args.get(1).map(str::to_lowercase).as_deref() {
            Some("url" | "link" | "bookmark") => MemoryKind::Url,
            Some("note") => MemoryKind::Note,
            _ => return Err(ctx.usage_error()),
        };
        let (Some(title), Some(second)) = (ctx.args.get(2), ctx.args.get(3)) else {
            return Err(ctx.usage_error());
        };
        let title = title.trim();
        if title.is_empty() {
            return Err(ctx.usage_error());
        }
        if title.chars().count() > MAX_TITLE_LEN {
            return Err(too_long("title", MAX_TITLE_LEN));
        }
        let (url, text, tags) = match kind {
            MemoryKind::Url => {
                let url = check_url(second)?;
                let description = ctx.args.rest_unquoted(4).trim().to_owned();
                if description.chars().count() > MAX_DESCRIPTION_LEN {
                    return Err(too_long("description", MAX_DESCRIPTION_LEN));
                }
                (Some(url), description, Vec::new())
            }
            MemoryKind::Note => {
                if second.chars().count() > MAX_NOTE_LEN {
                    return Err(too_long("note", MAX_NOTE_LEN));
                }
                let mut tags: Vec<String> = Vec::new();
                for raw in ctx.args.iter().skip(4) {
                    let tag = raw.trim_start_matches('#').to_lowercase();
                    if tag.is_empty() || tags.contains(&tag) {
                        continue;
                    }
                    if tag.chars().count() > MAX_TAG_LEN {
                        return Err(too_long("tag", MAX_TAG_LEN));
                    }
                    tags.push(tag);
                }
                if tags.len() > MAX_TAGS {
                    return Err(CommandError::invalid(format!(
                        "A note can have at most {MAX_TAGS} tags."
                    )));
                }
                (None, second.trim().to_owned(), tags)
            }
        };
        let store = ctx.store.as_ref();
        let ns = namespace(ctx.community);
        let id = u64::try_from(store.increment(&ns, "next_id", 1).await?).unwrap_or_default();
        let memory = Memory {
            id,
            kind,
            title: title.to_owned(),
            url,
            text,
            tags,
            added_by: ctx.user().name.clone(),
            added_at_ms: ctx.clock.now_millis(),
        };
        let value =
            serde_json::to_value(&memory).map_err(|err| CommandError::Internal(err.into()))?;
        store
            .put_document(&ns, &key(id), &value, Expect::Absent)
            .await?;
        let what = match kind {
            MemoryKind::Url => "Bookmark",
            MemoryKind::Note => "Note",
        };
        Ok(format!("{what} #{id} added: {title}"))
    }

    async fn get(&self, ctx: &Context) -> Result<String, CommandError> {
        let id = number(ctx)?;
        let store = ctx.store.as_ref();
        let Some(document) = store
            .get_document(&namespace(ctx.community), &key(id))
            .await?
        else {
            return Err(CommandError::invalid(format!("No memory #{id}.")));
        };
        let memory: Memory = serde_json::from_value(document.value)
            .map_err(|err| CommandError::Internal(format!("malformed memory: {err}").into()))?;
        Ok(match (&memory.kind, &memory.url) {
            (MemoryKind::Url, Some(url)) => {
                let visits = store
                    .increment(
                        &community_namespace(ctx.community, "memory_visits"),
                        &key(id),
                        1,
                    )
                    .await?;
                let description = if memory.text.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", memory.text)
                };
                format!(
                    "#{id} {}: {url}{description} (visited {visits}×)",
                    memory.title
                )
            }
            _ => {
                let tags = if memory.tags.is_empty() {
                    String::new()
                } else {
                    format!(" [tags: {}]", memory.tags.join(", "))
                };
                format!("#{id} {}: {}{tags}", memory.title, memory.text)
            }
        })
    }
}
