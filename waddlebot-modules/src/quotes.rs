//! `!quote`: a community's quotes, with votes.
//!
//! `!quote add "text" [author]` (moderators), `!quote [id]` (random without an id),
//! `!quote search <words>`, `!quote delete <id>` (moderators), `!quote up|down <id>` (one vote
//! per user, changeable; the score is ups − downs). Kept as documents in `<community>:quotes`
//! (votes in `<community>:quote_votes`), so they travel with an export.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use waddlebot::store::{Expect, Store, community_namespace};
use waddlebot::{
    CommandError, CommandHandler, CommandSpec, CommunityId, Context, PermissionLevel, Reply,
};

/// The module name quotes belong to.
pub const QUOTES_MODULE: &str = "quotes";
/// Longest quote.
pub const MAX_QUOTE_LEN: usize = 500;
/// Longest author name.
pub const MAX_AUTHOR_LEN: usize = 50;
/// Search results shown at most.
const SHOWN: usize = 3;

/// A stored quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// Its number in the community.
    pub id: u64,
    /// The words.
    pub text: String,
    /// Who said them, if known.
    pub author: Option<String>,
    /// Who added it.
    pub added_by: String,
    /// When (Unix milliseconds).
    pub added_at_ms: u64,
    /// Up votes.
    pub ups: u64,
    /// Down votes.
    pub downs: u64,
}

impl Quote {
    /// Ups minus downs.
    pub fn score(&self) -> i64 {
        i64::try_from(self.ups).unwrap_or(i64::MAX) - i64::try_from(self.downs).unwrap_or(i64::MAX)
    }

    fn shown(&self) -> String {
        let author = self
            .author
            .as_deref()
            .map_or_else(String::new, |a| format!(" — {a}"));
        format!(
            "#{}: \"{}\"{author} (score {:+})",
            self.id,
            self.text,
            self.score()
        )
    }
}

fn namespace(community: CommunityId) -> String {
    community_namespace(community, QUOTES_MODULE)
}

fn key(id: u64) -> String {
    format!("{id:010}")
}

fn decode(value: serde_json::Value) -> Result<Quote, CommandError> {
    serde_json::from_value(value)
        .map_err(|err| CommandError::Internal(format!("malformed quote: {err}").into()))
}

/// Every quote of a community, in id order.
async fn all(store: &dyn Store, community: CommunityId) -> Result<Vec<Quote>, CommandError> {
    crate::load_all(store, &namespace(community), "quote").await
}

async fn one(store: &dyn Store, community: CommunityId, id: u64) -> Result<Quote, CommandError> {
    match store.get_document(&namespace(community), &key(id)).await? {
        Some(document) => decode(document.value),
        None => Err(CommandError::invalid(format!("No quote #{id}."))),
    }
}

fn number(ctx: &Context, index: usize) -> Result<u64, CommandError> {
    ctx.args
        .get(index)
        .map(|raw| raw.trim_start_matches('#'))
        .and_then(|raw| raw.parse().ok())
        .ok_or_else(|| ctx.usage_error())
}

/// The quotes module.
#[derive(Debug, Default)]
pub struct Quotes;

#[async_trait]
impl CommandHandler for Quotes {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("quote")
                .usage("quote [id] | quote add \"text\" [author] | quote search <words> | quote up|down <id> | quote delete <id>")
                .description("The community's quotes: a random one, one by number, search, votes")
                .module(QUOTES_MODULE),
        ]
    }

    async fn handle(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        let store = ctx.store.as_ref();
        let sub = ctx.args.get(0).map(str::to_lowercase);
        let text = match sub.as_deref() {
            None => {
                let quotes = all(store, ctx.community).await?;
                if quotes.is_empty() {
                    format!(
                        "No quotes yet. Add one with {}quote add \"text\" [author].",
                        ctx.prefix
                    )
                } else {
                    quotes[fastrand::usize(..quotes.len())].shown()
                }
            }
            Some("add") => self.add(&ctx).await?,
            Some("search" | "find") => {
                let words = ctx.args.rest_unquoted(1).trim().to_lowercase();
                if words.is_empty() {
                    return Err(ctx.usage_error());
                }
                let found: Vec<Quote> = all(store, ctx.community)
                    .await?
                    .into_iter()
                    .filter(|q| {
                        let hay = format!("{} {}", q.text, q.author.as_deref().unwrap_or_default())
                            .to_lowercase();
                        words.split_whitespace().all(|w| hay.contains(w))
                    })
                    .collect();
                match found.len() {
                    0 => format!("No quote matches \"{words}\"."),
                    n => {
                        let shown: Vec<String> =
                            found.iter().take(SHOWN).map(Quote::shown).collect();
                        let more = if n > SHOWN {
                            format!(" (+{} more)", n - SHOWN)
                        } else {
                            String::new()
                        };
                        format!("{}{more}", shown.join(" | "))
                    }
                }
            }
            Some("delete" | "remove" | "rm") => {
                ctx.require(PermissionLevel::Moderator)?;
                let id = number(&ctx, 1)?;
                if store
                    .delete_document(&namespace(ctx.community), &key(id))
                    .await?
                {
                    format!("Quote #{id} deleted.")
                } else {
                    return Err(CommandError::invalid(format!("No quote #{id}.")));
                }
            }
            Some(direction @ ("up" | "down")) => {
                let id = number(&ctx, 1)?;
                self.vote(&ctx, id, direction == "up").await?
            }
            Some(_) => {
                if ctx.args.len() != 1 {
                    return Err(ctx.usage_error());
                }
                one(store, ctx.community, number(&ctx, 0)?).await?.shown()
            }
        };
        Ok(vec![Reply::text(text)])
    }
}

impl Quotes {
    async fn add(&self, ctx: &Context) -> Result<String, CommandError> {
        ctx.require(PermissionLevel::Moderator)?;
        let Some(words) = ctx.args.get(1).map(str::trim).filter(|w| !w.is_empty()) else {
            return Err(ctx.usage_error());
        };
        let author = ctx.args.rest_unquoted(2).trim();
        if words.chars().count() > MAX_QUOTE_LEN {
            return Err(CommandError::invalid(format!(
                "That quote is too long: at most {MAX_QUOTE_LEN} characters."
            )));
        }
        if author.chars().count() > MAX_AUTHOR_LEN {
            return Err(CommandError::invalid(format!(
                "That author is too long: at most {MAX_AUTHOR_LEN} characters."
            )));
        }
        let store = ctx.store.as_ref();
        let ns = namespace(ctx.community);
        let id = u64::try_from(store.increment(&ns, "next_id", 1).await?).unwrap_or_default();
        let quote = Quote {
            id,
            text: words.to_owned(),
            author: (!author.is_empty()).then(|| author.to_owned()),
            added_by: ctx.user().name.clone(),
            added_at_ms: ctx.clock.now_millis(),
            ups: 0,
            downs: 0,
        };
        let value =
            serde_json::to_value(&quote).map_err(|err| CommandError::Internal(err.into()))?;
        store
            .put_document(&ns, &key(id), &value, Expect::Absent)
            .await?;
        Ok(format!("Quote #{id} added."))
    }

    /// Records the caller's vote (replacing an earlier one) and updates the score.
    async fn vote(&self, ctx: &Context, id: u64, up: bool) -> Result<String, CommandError> {
        let store = ctx.store.as_ref();
        one(store, ctx.community, id).await?;
        let votes = community_namespace(ctx.community, "quote_votes");
        let voter = format!("{id}:{}:{}", ctx.event.platform, ctx.user().id);
        let before = store
            .get_document(&votes, &voter)
            .await?
            .and_then(|d| d.value.as_bool());
        if before == Some(up) {
            let quote = one(store, ctx.community, id).await?;
            return Ok(format!(
                "You already voted {} #{id} (score {:+}).",
                if up { "up" } else { "down" },
                quote.score()
            ));
        }
        let (quote, ()) = crate::update_document(
            store,
            &namespace(ctx.community),
            &key(id),
            "Too many votes at once; try again.",
            |slot: &mut Option<Quote>| {
                let quote = slot
                    .as_mut()
                    .ok_or_else(|| CommandError::invalid(format!("No quote #{id}.")))?;
                match before {
                    Some(true) => quote.ups = quote.ups.saturating_sub(1),
                    Some(false) => quote.downs = quote.downs.saturating_sub(1),
                    None => {}
                }
                if up {
                    quote.ups += 1;
                } else {
                    quote.downs += 1;
                }
                Ok(())
            },
        )
        .await?;
        store
            .put_document(&votes, &voter, &serde_json::json!(up), Expect::Any)
            .await?;
        Ok(format!(
            "Voted {} #{id}: score {:+}.",
            if up { "up" } else { "down" },
            quote.map_or(0, |q| q.score())
        ))
    }
}
