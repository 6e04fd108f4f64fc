//! Newtype identifiers, so a community id can never be passed where an entity id is expected.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! int_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

int_id!(
    /// A community: the tenant that owns entities, commands, modules and roles.
    CommunityId
);
int_id!(
    /// An entity: one place where chat happens, `(platform, server_id, channel_id)`.
    EntityId
);

/// The id of one inbound event. Platforms that give one (EventSub message id, Slack `event_id`,
/// Discord interaction id) use it so duplicate deliveries can be dropped; otherwise it is random.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub String);

impl EventId {
    /// A fresh random id (UUID v4, simple form).
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Correlates one handled event with replies that arrive later: `sess_` and 32 hex digits, the
/// format of the original router.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub String);

impl SessionId {
    /// A fresh random session id.
    pub fn random() -> Self {
        let mut buffer = uuid::Uuid::encode_buffer();
        let hex = uuid::Uuid::new_v4().simple().encode_lower(&mut buffer);
        Self(["sess_", hex].concat())
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_have_the_original_shape() {
        let id = SessionId::random();
        assert!(id.0.starts_with("sess_"));
        assert_eq!(id.0.len(), 5 + 32);
        assert!(id.0[5..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, SessionId::random());
    }
}
