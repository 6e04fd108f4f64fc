//! # WaddleBot modules
//!
//! The built-in modules, each a [`CommandHandler`](waddlebot::CommandHandler) that works on every
//! platform and keeps its data in the [`Store`](waddlebot::Store).
//!
//! | module | commands |
//! |---|---|
//! | [`CustomCommands`] | `!command add|edit|remove|show` (moderators) |
//! | [`Aliases`] | `!alias add|remove|list` (managing: moderators) |
//! | [`Quotes`] | `!quote [id]`, `!quote add|search|delete|up|down` (adding and deleting: moderators) |
//! | [`Memories`] | `!memories add url|note`, `list`, `get`, `search`, `delete` (adding and deleting: moderators) |
//! | [`Inventory`] | `!inventory add|checkout|checkin|delete|labels` (moderators), `list|search|status|stats|history` (everyone) |
//! | [`Labels`] | `!label add|remove` (moderators), `!label list`: labels on users, items, events, commands, memories, optionally expiring |
//! | [`Calendar`] | `!event add|list|info|join|leave|approve|reject|cancel|edit|repeat` (`!calendar`): events in the community's time zone, approval, RSVPs and waitlists, recurrence, reminders |
//! | [`Reminders`] | `!remind <text> in <5m|2h|1d|3w> [daily|weekly]`, `!remind list|cancel` (delivered by the router's scheduler) |
//! | [`Alerts`] | no commands: follows, subscriptions, raids, cheers and donations shown on the community's overlay (an [`EventHandler`](waddlebot::EventHandler) the embedder registers) |
//! | [`AiChat`] | `!ai` / `!ask`, and answers to greetings, questions, mentions and channel events (needs an AI provider; registered by the embedder with [`AiChat::listener`]) |
//!
//! ```
//! let modules = waddlebot_modules::default_modules();
//! assert!(modules.iter().any(|m| m.specs().iter().any(|s| s.name == "command")));
//! ```

mod ai_chat;
mod alerts;
mod aliases;
mod calendar;
mod custom_commands;
mod inventory;
mod labels;
mod memories;
mod quotes;
mod reminders;

use std::sync::Arc;

pub use ai_chat::{
    AI_MODULE, AiChat, AiChatSettings, AiListener, DEFAULT_SYSTEM_PROMPT, NOT_CONFIGURED, Trigger,
    chat_trigger, clean_answer, fallback_reply,
};
pub use alerts::{ALERTS_MODULE, Alerts, DEFAULT_ALERT_SECS, alert_for};
pub use aliases::{ALIAS_MODULE, Aliases};
pub use calendar::{
    CALENDAR_MODULE, Calendar, CalendarEvent, EventStatus, MAX_EVENT_DESCRIPTION_LEN,
    MAX_LOCATION_LEN, MAX_OCCURRENCES, Rsvp, TITLE_LEN,
};
pub use custom_commands::{
    CustomCommands, MAX_NAME_LEN, MAX_RESPONSE_LEN, NameError, check_command_name, check_response,
};
pub use inventory::{
    INVENTORY_MODULE, Inventory, Item, MAX_ITEM_DESCRIPTION_LEN, MAX_ITEM_NAME_LEN, MAX_LABEL_LEN,
    MAX_LABELS_PER_ITEM, MAX_QUANTITY,
};
pub use labels::{
    EVENT_AUTOAPPROVE, LABEL_TYPES, LABELS_MODULE, Label, Labels, MAX_LABEL_NAME_LEN, has_label,
    label_limit, labels_of, target_key,
};
pub use memories::{
    MAX_DESCRIPTION_LEN, MAX_NOTE_LEN, MAX_TAG_LEN, MAX_TAGS, MAX_TITLE_LEN, MAX_URL_LEN,
    MEMORIES_MODULE, Memories, Memory, MemoryKind,
};
pub use quotes::{MAX_AUTHOR_LEN, MAX_QUOTE_LEN, QUOTES_MODULE, Quote, Quotes};
pub use reminders::{
    MAX_AHEAD, MAX_PER_USER, MAX_REMINDER_LEN, REMINDERS_MODULE, Reminders, parse_delay,
};
use waddlebot::{CommandError, CommandHandler, Store};

/// Every record a module keeps in `namespace`, decoded, in key order; `what` names the record
/// in the error a malformed one gives.
pub(crate) async fn load_all<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    namespace: &str,
    what: &str,
) -> Result<Vec<T>, CommandError> {
    waddlebot::store::all_documents(store, namespace, "")
        .await?
        .into_iter()
        .map(|document| {
            serde_json::from_value(document.value)
                .map_err(|err| CommandError::Internal(format!("malformed {what}: {err}").into()))
        })
        .collect()
}

/// Every built-in module, ready to register with a router.
pub fn default_modules() -> Vec<Arc<dyn CommandHandler>> {
    vec![
        Arc::new(CustomCommands),
        Arc::new(Aliases),
        Arc::new(Quotes),
        Arc::new(Memories),
        Arc::new(Inventory),
        Arc::new(Labels),
        Arc::new(Calendar),
        Arc::new(Reminders),
    ]
}
