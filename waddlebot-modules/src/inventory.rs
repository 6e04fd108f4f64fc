//! `!inventory`: things a community lends out (gear, games, books), with quantities.
//!
//! Moderators `add <name> <description> [labels…] [qty:N]`, `checkout <item> <user> [n]`,
//! `checkin <item> [user] [n]`, `delete <item>` and change `labels <item> add|remove <label>`;
//! everyone may `list [all|available|checkedout]`, `search <words>`, `status <item>`, `stats`
//! and `history <item>`. Names are unique per community (case ignored); an item has at most
//! five labels, without duplicates. Every change is written to the activity log.
//!
//! Items are documents in `<community>:inventory` (key: the name in lower case), changed with
//! compare-and-set so concurrent changes lose nothing; the log is `<community>:inventory_log`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use waddlebot::store::{Expect, Store, community_namespace};
use waddlebot::{
    CommandError, CommandHandler, CommandSpec, CommunityId, Context, PermissionLevel, Reply,
    StoreError,
};

/// The module name the inventory belongs to.
pub const INVENTORY_MODULE: &str = "inventory";
/// Most labels on an item.
pub const MAX_LABELS_PER_ITEM: usize = 5;
/// Longest item name.
pub const MAX_ITEM_NAME_LEN: usize = 50;
/// Longest description.
pub const MAX_ITEM_DESCRIPTION_LEN: usize = 200;
/// Longest label.
pub const MAX_LABEL_LEN: usize = 30;
/// Largest quantity of one item.
pub const MAX_QUANTITY: u32 = 10_000;
/// Items shown in a list or search answer.
const SHOWN: usize = 10;
/// Log entries shown by `history`.
const HISTORY: usize = 5;

/// Units of an item someone has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkout {
    /// Who has them (as typed, lower case).
    pub user: String,
    /// How many.
    pub quantity: u32,
    /// Since when (Unix milliseconds).
    pub at_ms: u64,
}

/// An item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Its name as first typed.
    pub name: String,
    /// What it is.
    pub description: String,
    /// Labels (lower case).
    pub labels: Vec<String>,
    /// Units owned.
    pub quantity: u32,
    /// Who has some.
    pub checkouts: Vec<Checkout>,
    /// Who added it.
    pub added_by: String,
    /// When (Unix milliseconds).
    pub added_at_ms: u64,
}

impl Item {
    /// Units lent out.
    pub fn out(&self) -> u32 {
        self.checkouts.iter().map(|c| c.quantity).sum()
    }

    /// Units on the shelf.
    pub fn available(&self) -> u32 {
        self.quantity.saturating_sub(self.out())
    }

    fn holders(&self) -> String {
        let list: Vec<String> = self
            .checkouts
            .iter()
            .map(|c| {
                if self.quantity == 1 {
                    c.user.clone()
                } else {
                    format!("{} ×{}", c.user, c.quantity)
                }
            })
            .collect();
        list.join(", ")
    }

    fn status(&self) -> String {
        let labels = if self.labels.is_empty() {
            String::new()
        } else {
            format!(" [labels: {}]", self.labels.join(", "))
        };
        let state = match (self.quantity, self.out()) {
            (1, 0) => "available".to_owned(),
            (1, _) => format!("checked out by {}", self.holders()),
            (_, 0) => format!("all {} available", self.quantity),
            (total, _) => format!(
                "{} of {total} available (out: {})",
                self.available(),
                self.holders()
            ),
        };
        format!("{}: {} — {state}{labels}", self.name, self.description)
    }
}

fn namespace(community: CommunityId) -> String {
    community_namespace(community, INVENTORY_MODULE)
}

fn decode(value: serde_json::Value) -> Result<Item, CommandError> {
    serde_json::from_value(value)
        .map_err(|err| CommandError::Internal(format!("malformed inventory item: {err}").into()))
}

fn not_found(name: &str) -> CommandError {
    CommandError::invalid(format!("Item '{name}' not found."))
}

/// Every item of a community, by name.
async fn all(store: &dyn Store, community: CommunityId) -> Result<Vec<Item>, CommandError> {
    crate::load_all(store, &namespace(community), "inventory item").await
}

/// Changes item `name` with `change` (which may refuse with a message), retrying on a
/// concurrent change; returns the item as written.
async fn update(
    ctx: &Context,
    name: &str,
    mut change: impl FnMut(&mut Item) -> Result<(), CommandError>,
) -> Result<Item, CommandError> {
    let (item, ()) = crate::update_document(
        ctx.store.as_ref(),
        &namespace(ctx.community),
        &name.to_lowercase(),
        "The inventory is busy; try again.",
        |slot: &mut Option<Item>| change(slot.as_mut().ok_or_else(|| not_found(name))?),
    )
    .await?;
    item.ok_or_else(|| not_found(name))
}

/// Appends to the activity log.
async fn log(ctx: &Context, item: &str, action: &str, detail: String) -> Result<(), CommandError> {
    let store = ctx.store.as_ref();
    let ns = community_namespace(ctx.community, "inventory_log");
    let seq = store.increment(&ns, "seq", 1).await?;
    let entry = serde_json::json!({
        "item": item.to_lowercase(),
        "action": action,
        "detail": detail,
        "by": ctx.user().name,
        "at_ms": ctx.clock.now_millis(),
    });
    store
        .put_document(&ns, &format!("{seq:012}"), &entry, Expect::Absent)
        .await?;
    Ok(())
}

/// A count argument: a whole number from 1.
fn count(raw: &str) -> Option<u32> {
    raw.parse::<u32>().ok().filter(|n| *n >= 1)
}

/// Labels as typed, checked: lower case, at most five, no duplicates.
fn check_labels(raw: &[&str]) -> Result<Vec<String>, CommandError> {
    let mut labels: Vec<String> = Vec::new();
    for label in raw {
        let label = label.trim_start_matches('#').to_lowercase();
        if label.chars().count() > MAX_LABEL_LEN {
            return Err(CommandError::invalid(format!(
                "Labels are at most {MAX_LABEL_LEN} characters."
            )));
        }
        if labels.contains(&label) {
            return Err(CommandError::invalid(format!("Duplicate label: {label}.")));
        }
        labels.push(label);
    }
    if labels.len() > MAX_LABELS_PER_ITEM {
        return Err(CommandError::invalid(format!(
            "Maximum {MAX_LABELS_PER_ITEM} labels allowed per item."
        )));
    }
    Ok(labels)
}

/// The inventory module.
#[derive(Debug, Default)]
pub struct Inventory;

#[async_trait]
impl CommandHandler for Inventory {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("inventory")
                .alias("inv")
                .usage("inventory add <name> <description> [labels…] [qty:N] | checkout <item> <user> [n] | checkin <item> [user] [n] | delete <item> | list [all|available|checkedout] | search <words> | status <item> | stats | history <item> | labels <item> add|remove <label>")
                .description("Things the community lends out, and who has them")
                .module(INVENTORY_MODULE),
        ]
    }

    async fn handle(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        let sub = ctx.args.get(0).map(str::to_lowercase);
        let text = match sub.as_deref() {
            Some("add") => self.add(&ctx).await?,
            Some("checkout") => self.checkout(&ctx).await?,
            Some("checkin") => self.checkin(&ctx).await?,
            Some("delete" | "remove" | "rm") => self.delete(&ctx).await?,
            Some("list") => self.list(&ctx).await?,
            Some("search" | "find") => self.search(&ctx).await?,
            Some("status") => {
                let Some(name) = ctx.args.get(1).filter(|_| ctx.args.len() == 2) else {
                    return Err(ctx.usage_error());
                };
                match ctx
                    .store
                    .get_document(&namespace(ctx.community), &name.to_lowercase())
                    .await?
                {
                    Some(document) => decode(document.value)?.status(),
                    None => return Err(not_found(name)),
                }
            }
            Some("stats") => {
                let items = all(ctx.store.as_ref(), ctx.community).await?;
                let units: u32 = items.iter().map(|i| i.quantity).sum();
                let out: u32 = items.iter().map(Item::out).sum();
                let lent = items.iter().filter(|i| i.out() > 0).count();
                format!(
                    "Inventory: {} items ({units} units); checked out: {out} units of {lent} items; available: {} units.",
                    items.len(),
                    units - out
                )
            }
            Some("history" | "log") => self.history(&ctx).await?,
            Some("labels" | "label") => self.labels(&ctx).await?,
            _ => return Err(ctx.usage_error()),
        };
        Ok(vec![Reply::text(text)])
    }
}

impl Inventory {
    async fn add(&self, ctx: &Context) -> Result<String, CommandError> {
        ctx.require(PermissionLevel::Moderator)?;
        let (Some(name), Some(description)) = (ctx.args.get(1), ctx.args.get(2)) else {
            return Err(ctx.usage_error());
        };
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_ITEM_NAME_LEN
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        {
            return Err(CommandError::invalid(format!(
                "Item names are 1 to {MAX_ITEM_NAME_LEN} letters, digits, '-' or '_'."
            )));
        }
        let description = description.trim();
        if description.is_empty() {
            return Err(CommandError::invalid(
                "The description cannot be empty.".to_owned(),
            ));
        }
        if description.chars().count() > MAX_ITEM_DESCRIPTION_LEN {
            return Err(CommandError::invalid(format!(
                "That description is too long: at most {MAX_ITEM_DESCRIPTION_LEN} characters."
            )));
        }
        let mut quantity = 1;
        let mut labels = Vec::new();
        for word in ctx.args.iter().skip(3) {
            match word
                .strip_prefix("qty:")
                .or_else(|| word.strip_prefix("quantity:"))
            {
                Some(n) => {
                    quantity = count(n).filter(|n| *n <= MAX_QUANTITY).ok_or_else(|| {
                        CommandError::invalid(format!(
                            "The quantity must be a whole number from 1 to {MAX_QUANTITY}."
                        ))
                    })?;
                }
                None => labels.push(word),
            }
        }
        let labels = check_labels(&labels)?;
        let item = Item {
            name: name.to_owned(),
            description: description.to_owned(),
            labels,
            quantity,
            checkouts: Vec::new(),
            added_by: ctx.user().name.clone(),
            added_at_ms: ctx.clock.now_millis(),
        };
        let value =
            serde_json::to_value(&item).map_err(|err| CommandError::Internal(err.into()))?;
        match ctx
            .store
            .put_document(
                &namespace(ctx.community),
                &name.to_lowercase(),
                &value,
                Expect::Absent,
            )
            .await
        {
            Ok(_) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(CommandError::invalid(format!(
                    "Item '{name}' already exists."
                )));
            }
            Err(err) => return Err(err.into()),
        }
        log(ctx, name, "add", format!("quantity {quantity}")).await?;
        let units = if quantity == 1 {
            String::new()
        } else {
            format!(" ×{quantity}")
        };
        Ok(format!("Added {name}{units}."))
    }

    async fn checkout(&self, ctx: &Context) -> Result<String, CommandError> {
        ctx.require(PermissionLevel::Moderator)?;
        let (Some(name), Some(user)) = (ctx.args.get(1), ctx.args.get(2)) else {
            return Err(ctx.usage_error());
        };
        let user = user.trim_start_matches('@').to_lowercase();
        let wanted = match ctx.args.get(3) {
            None => 1,
            Some(raw) => count(raw).ok_or_else(|| ctx.usage_error())?,
        };
        let at = ctx.clock.now_millis();
        let item = update(ctx, name, |item| {
            if item.available() == 0 && item.quantity == 1 {
                return Err(CommandError::invalid(format!(
                    "{} is already checked out (by {}).",
                    item.name,
                    item.holders()
                )));
            }
            if item.available() < wanted {
                return Err(CommandError::invalid(format!(
                    "Only {} of {} available.",
                    item.available(),
                    item.name
                )));
            }
            match item.checkouts.iter_mut().find(|c| c.user == user) {
                Some(existing) => existing.quantity += wanted,
                None => item.checkouts.push(Checkout {
                    user: user.clone(),
                    quantity: wanted,
                    at_ms: at,
                }),
            }
            Ok(())
        })
        .await?;
        log(ctx, &item.name, "checkout", format!("{wanted} to {user}")).await?;
        Ok(if item.quantity == 1 {
            format!("{} checked out to {user}.", item.name)
        } else {
            format!(
                "{wanted} of {} checked out to {user}; {} left.",
                item.name,
                item.available()
            )
        })
    }

    async fn checkin(&self, ctx: &Context) -> Result<String, CommandError> {
        ctx.require(PermissionLevel::Moderator)?;
        let Some(name) = ctx.args.get(1) else {
            return Err(ctx.usage_error());
        };
        // `checkin <item> [user] [n]`, the user and the count in either order.
        let mut from = None;
        let mut returned = None;
        for word in ctx.args.iter().skip(2) {
            match count(word) {
                Some(n) if returned.is_none() => returned = Some(n),
                _ if from.is_none() => from = Some(word.trim_start_matches('@').to_lowercase()),
                _ => return Err(ctx.usage_error()),
            }
        }
        let mut who = String::new();
        let mut back = 0;
        let item = update(ctx, name, |item| {
            if item.checkouts.is_empty() {
                return Err(CommandError::invalid(format!(
                    "{} is not checked out.",
                    item.name
                )));
            }
            let index = match &from {
                Some(user) => item
                    .checkouts
                    .iter()
                    .position(|c| &c.user == user)
                    .ok_or_else(|| {
                        CommandError::invalid(format!("{user} has no {}.", item.name))
                    })?,
                None if item.checkouts.len() == 1 => 0,
                None => {
                    return Err(CommandError::invalid(format!(
                        "Several people have {}: {}. Say whose: checkin {} <user>.",
                        item.name,
                        item.holders(),
                        item.name
                    )));
                }
            };
            let held = item.checkouts[index].quantity;
            let n = returned.unwrap_or(held);
            if n > held {
                return Err(CommandError::invalid(format!(
                    "{} has only {held} of {}.",
                    item.checkouts[index].user, item.name
                )));
            }
            who = item.checkouts[index].user.clone();
            back = n;
            if n == held {
                item.checkouts.remove(index);
            } else {
                item.checkouts[index].quantity -= n;
            }
            Ok(())
        })
        .await?;
        log(ctx, &item.name, "checkin", format!("{back} from {who}")).await?;
        Ok(if item.quantity == 1 {
            format!("{} checked in.", item.name)
        } else {
            format!(
                "{back} of {} checked in from {who}; {} available.",
                item.name,
                item.available()
            )
        })
    }

    async fn delete(&self, ctx: &Context) -> Result<String, CommandError> {
        ctx.require(PermissionLevel::Moderator)?;
        let Some(name) = ctx.args.get(1).filter(|_| ctx.args.len() == 2) else {
            return Err(ctx.usage_error());
        };
        let store = ctx.store.as_ref();
        let ns = namespace(ctx.community);
        let Some(document) = store.get_document(&ns, &name.to_lowercase()).await? else {
            return Err(not_found(name));
        };
        let item = decode(document.value)?;
        if !item.checkouts.is_empty() {
            return Err(CommandError::invalid(format!(
                "{} is checked out by {}; check it in first.",
                item.name,
                item.holders()
            )));
        }
        store.delete_document(&ns, &name.to_lowercase()).await?;
        log(ctx, &item.name, "delete", String::new()).await?;
        Ok(format!("Deleted {}.", item.name))
    }

    async fn list(&self, ctx: &Context) -> Result<String, CommandError> {
        let filter = ctx.args.get(1).map(str::to_lowercase);
        let items = all(ctx.store.as_ref(), ctx.community).await?;
        let chosen: Vec<&Item> = match filter.as_deref() {
            None | Some("all") => items.iter().collect(),
            Some("available") => items.iter().filter(|i| i.available() > 0).collect(),
            Some("checkedout" | "out") => items.iter().filter(|i| i.out() > 0).collect(),
            Some(_) => return Err(ctx.usage_error()),
        };
        Ok(shown(&chosen, "No items."))
    }

    async fn search(&self, ctx: &Context) -> Result<String, CommandError> {
        let words = ctx.args.rest_unquoted(1).trim().to_lowercase();
        if words.is_empty() {
            return Err(ctx.usage_error());
        }
        let items = all(ctx.store.as_ref(), ctx.community).await?;
        let found: Vec<&Item> = items
            .iter()
            .filter(|i| {
                let hay =
                    format!("{} {} {}", i.name, i.description, i.labels.join(" ")).to_lowercase();
                words.split_whitespace().all(|w| hay.contains(w))
            })
            .collect();
        Ok(shown(&found, &format!("No item matches \"{words}\".")))
    }

    async fn history(&self, ctx: &Context) -> Result<String, CommandError> {
        let Some(name) = ctx.args.get(1) else {
            return Err(ctx.usage_error());
        };
        let key = name.to_lowercase();
        let ns = community_namespace(ctx.community, "inventory_log");
        let entries: Vec<serde_json::Value> =
            crate::load_all::<serde_json::Value>(ctx.store.as_ref(), &ns, "inventory log entry")
                .await?
                .into_iter()
                .filter(|v| v["item"].as_str() == Some(key.as_str()))
                .collect();
        if entries.is_empty() {
            return Err(not_found(name));
        }
        let recent: Vec<String> = entries
            .iter()
            .rev()
            .take(HISTORY)
            .map(|e| {
                let detail = e["detail"].as_str().unwrap_or_default();
                let by = e["by"].as_str().unwrap_or_default();
                if detail.is_empty() {
                    format!("{} by {by}", e["action"].as_str().unwrap_or_default())
                } else {
                    format!(
                        "{} {detail} by {by}",
                        e["action"].as_str().unwrap_or_default()
                    )
                }
            })
            .collect();
        Ok(format!("{name}: {}", recent.join(" | ")))
    }

    async fn labels(&self, ctx: &Context) -> Result<String, CommandError> {
        ctx.require(PermissionLevel::Moderator)?;
        let (Some(name), Some(action), Some(label)) =
            (ctx.args.get(1), ctx.args.get(2), ctx.args.get(3))
        else {
            return Err(ctx.usage_error());
        };
        let label = label.trim_start_matches('#').to_lowercase();
        let action = action.to_lowercase();
        if action != "add" && action != "remove" {
            return Err(CommandError::invalid(
                "Invalid action: use add or remove.".to_owned(),
            ));
        }
        let item = update(ctx, name, |item| {
            if action == "add" {
                let mut labels: Vec<&str> = item.labels.iter().map(String::as_str).collect();
                labels.push(&label);
                item.labels = check_labels(&labels)?;
            } else {
                let before = item.labels.len();
                item.labels.retain(|l| *l != label);
                if item.labels.len() == before {
                    return Err(CommandError::invalid(format!(
                        "{} has no label {label}.",
                        item.name
                    )));
                }
            }
            Ok(())
        })
        .await?;
        log(ctx, &item.name, &format!("label {action}"), label).await?;
        Ok(format!(
            "{} labels: {}",
            item.name,
            if item.labels.is_empty() {
                "none".to_owned()
            } else {
                item.labels.join(", ")
            }
        ))
    }
}

fn shown(items: &[&Item], empty: &str) -> String {
    if items.is_empty() {
        return empty.to_owned();
    }
    let parts: Vec<String> = items
        .iter()
        .take(SHOWN)
        .map(|i| {
            let state = match (i.quantity, i.out()) {
                (1, 0) => "available".to_owned(),
                (1, _) => format!("out: {}", i.holders()),
                (total, _) => format!("{}/{total} available", i.available()),
            };
            format!("{} ({state})", i.name)
        })
        .collect();
    let more = items.len().saturating_sub(SHOWN);
    let more = if more > 0 {
        format!(" (+{more} more)")
    } else {
        String::new()
    };
    format!("{}{more}", parts.join(" | "))
}
