//! # WaddleBot modules
//!
//! The built-in modules, each a [`CommandHandler`](waddlebot::CommandHandler) that works on every
//! platform and keeps its data in the [`Store`](waddlebot::Store).
//!
//! | module | commands |
//! |---|---|
//! | [`CustomCommands`] | `!command add|edit|remove|show` (moderators) |
//!
//! ```
//! let modules = waddlebot_modules::default_modules();
//! assert!(modules.iter().any(|m| m.specs().iter().any(|s| s.name == "command")));
//! ```

mod custom_commands;

use std::sync::Arc;

pub use custom_commands::{CustomCommands, MAX_NAME_LEN, MAX_RESPONSE_LEN};
use waddlebot::CommandHandler;

/// Every built-in module, ready to register with a router.
pub fn default_modules() -> Vec<Arc<dyn CommandHandler>> {
    vec![Arc::new(CustomCommands)]
}
