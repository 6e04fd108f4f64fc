//! `!label`: labels on users, items, events, commands, memories (and aliases, modules, the
//! community), optionally expiring, that other modules read (`event-autoapprove` lets a user's
//! events skip approval).
//!
//! `!label add <type> <target> <label> [for <5m|2h|1d|3w>]`, `!label remove <type> <target>
//! <label>` (moderators), `!label list <type> <target>` (everyone). Per-type limits: a user 5
//! labels per community, an item 10, a memory 10, an event 5, anything else 5. Users are named
//! as typed on the platform the command comes from (`@bob` on Twitch is `twitch:bob`).
//!
//! Kept in `<community>:labels`, one document per labelled target, changed with
//! compare-and-set; expired labels are ignored when read and dropped on the next change.

use std::time::{Duration, SystemTime};

use waddlebot::clock::unix_millis;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use waddlebot::store::{Store, community_namespace};
use waddlebot::{
    CommandError, CommandHandler, CommandSpec, CommunityId, Context, PermissionLevel, PlatformKind,
    Reply, StoreError,
};

/// The module name labels belong to.
pub const LABELS_MODULE: &str = "labels";
/// The label that lets a user's calendar events skip approval.
pub const EVENT_AUTOAPPROVE: &str = "event-autoapprove";
/// Longest label name.
pub const MAX_LABEL_NAME_LEN: usize = 50;

/// What can carry labels.
pub const LABEL_TYPES: [&str; 8] = [
    "user",
    "item",
    "event",
    "command",
    "memory",
    "alias",
    "module",
    "community",
];

/// Most labels one target of `kind` may carry.
pub fn label_limit(kind: &str) -> usize {
    match kind {
        "item" | "memory" => 10,
        _ => 5,
    }
}

/// One label on a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// The label (lower case).
    pub name: String,
    /// Who put it there.
    pub applied_by: String,
    /// When (Unix milliseconds).
    pub applied_at_ms: u64,
    /// When it stops counting (Unix milliseconds), if ever.
    pub expires_at_ms: Option<u64>,
}

impl Label {
    fn live(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_none_or(|at| at > now_ms)
    }
}

/// The key of a target: `user:twitch:bob`, `item:mic`, `event:12`.
pub fn target_key(kind: &str, platform: &PlatformKind, target: &str) -> String {
    let target = target.trim_start_matches(['@', '#', '!']).to_lowercase();
    if kind == "user" {
        format!("user:{platform}:{target}")
    } else {
        format!("{kind}:{target}")
    }
}

/// The live labels of a target.
pub async fn labels_of(
    store: &dyn Store,
    community: CommunityId,
    key: &str,
    now: SystemTime,
) -> Result<Vec<Label>, StoreError> {
    let now = unix_millis(now);
    Ok(
        match store
            .get_document(&community_namespace(community, LABELS_MODULE), key)
            .await?
        {
            Some(document) => serde_json::from_value::<Vec<Label>>(document.value)
                .unwrap_or_default()
                .into_iter()
                .filter(|l| l.live(now))
                .collect(),
            None => Vec::new(),
        },
    )
}

/// Whether a target carries `label` now.
pub async fn has_label(
    store: &dyn Store,
    community: CommunityId,
    key: &str,
    label: &str,
    now: SystemTime,
) -> Result<bool, StoreError> {
    Ok(labels_of(store, community, key, now)
        .await?
        .iter()
        .any(|l| l.name == label))
}

/// The labels module.
#[derive(Debug, Default)]
pub struct Labels;

#[async_trait]
impl CommandHandler for Labels {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("label")
                .alias("labels")
                .usage("label add <type> <target> <label> [for <5m|2h|1d|3w>] | label remove <type> <target> <label> | label list <type> <target>")
                .description("Labels on users, items, events, commands and memories")
                .module(LABELS_MODULE),
        ]
    }

    async fn handle(&self, ctx: Context) -> Result<Vec<Reply>, CommandError> {
        let sub = ctx.args.get(0).map(str::to_lowercase);
        let (Some(kind), Some(target)) = (ctx.args.get(1).map(str::to_lowercase), ctx.args.get(2))
        else {
            return Err(ctx.usage_error());
        };
        if !LABEL_TYPES.contains(&kind.as_str()) {
            return Err(CommandError::invalid(format!(
                "Unknown label type '{kind}': use {}.",
                LABEL_TYPES.join(", ")
            )));
        }
        let key = target_key(&kind, &ctx.event.platform, target);
        let shown_target = target.trim_start_matches(['@', '#', '!']).to_lowercase();
        let text = match sub.as_deref() {
            Some("list") if ctx.args.len() == 3 => {
                let labels = labels_of(ctx.store.as_ref(), ctx.community, &key, ctx.now()).await?;
                if labels.is_empty() {
                    format!("{kind} {shown_target} has no labels.")
                } else {
                    let names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
                    format!("{kind} {shown_target}: {}", names.join(", "))
                }
            }
            Some(action @ ("add" | "remove" | "rm")) => {
                ctx.require(PermissionLevel::Moderator)?;
                let Some(label) = ctx.args.get(3) else {
                    return Err(ctx.usage_error());
                };
                let label = label.to_lowercase();
                if label.is_empty()
                    || label.chars().count() > MAX_LABEL_NAME_LEN
                    || !label
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(CommandError::invalid(format!(
                        "Label names are 1 to {MAX_LABEL_NAME_LEN} letters, digits, '-' or '_'."
                    )));
                }
                if action == "add" {
                    let expiry = match (ctx.args.get(4), ctx.args.get(5)) {
                        (None, _) => None,
                        (Some(word), Some(spec))
                            if word.eq_ignore_ascii_case("for") && ctx.args.len() == 6 =>
                        {
                            Some(
                                crate::reminders::parse_delay(spec)
                                    .map_err(CommandError::invalid)?,
                            )
                        }
                        _ => return Err(ctx.usage_error()),
                    };
                    self.add(&ctx, &kind, &key, &label, expiry).await?;
                    let until = expiry.map_or_else(String::new, |d| {
                        format!(" for {}", crate::reminders::human(d))
                    });
                    format!("Labelled {kind} {shown_target} {label}{until}.")
                } else {
                    if ctx.args.len() != 4 {
                        return Err(ctx.usage_error());
                    }
                    if self.remove(&ctx, &key, &label).await? {
                        format!("Removed {label} from {kind} {shown_target}.")
                    } else {
                        return Err(CommandError::invalid(format!(
                            "{kind} {shown_target} has no label {label}."
                        )));
                    }
                }
            }
            _ => return Err(ctx.usage_error()),
        };
        Ok(vec![Reply::text(text)])
    }
}

impl Labels {
    async fn change(
        &self,
        ctx: &Context,
        key: &str,
        mut change: impl FnMut(&mut Vec<Label>) -> Result<bool, CommandError>,
    ) -> Result<bool, CommandError> {
        let now = unix_millis(ctx.now());
        crate::update_document(
            ctx.store.as_ref(),
            &community_namespace(ctx.community, LABELS_MODULE),
            key,
            "Labels are busy; try again.",
            |slot: &mut Option<Vec<Label>>| {
                let labels = slot.get_or_insert_with(Vec::new);
                labels.retain(|l| l.live(now));
                let changed = change(labels)?;
                if !changed {
                    // Nothing to write.
                    *slot = None;
                }
                Ok(changed)
            },
        )
        .await
        .map(|(_, changed)| changed)
    }

    async fn add(
        &self,
        ctx: &Context,
        kind: &str,
        key: &str,
        label: &str,
        expiry: Option<Duration>,
    ) -> Result<(), CommandError> {
        let now = ctx.now();
        let limit = label_limit(kind);
        self.change(ctx, key, |labels| {
            if labels.iter().any(|l| l.name == label) {
                return Err(CommandError::invalid(format!(
                    "That {kind} already has the label {label}."
                )));
            }
            if labels.len() >= limit {
                return Err(CommandError::invalid(format!(
                    "{kind} can have maximum {limit} labels."
                )));
            }
            labels.push(Label {
                name: label.to_owned(),
                applied_by: ctx.user().name.clone(),
                applied_at_ms: unix_millis(now),
                expires_at_ms: expiry.map(|d| unix_millis(now + d)),
            });
            Ok(true)
        })
        .await
        .map(drop)
    }

    async fn remove(&self, ctx: &Context, key: &str, label: &str) -> Result<bool, CommandError> {
        self.change(ctx, key, |labels| {
            let before = labels.len();
            labels.retain(|l| l.name != label);
            Ok(labels.len() < before)
        })
        .await
    }
}
