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
        Self::from_bits(uuid::Uuid::new_v4().as_u128())
    }

    /// The id whose 32 hex digits are `bits` (a session store that puts meaning in them, as
    /// the router's in-memory one does, writes its ids with this).
    pub fn from_bits(bits: u128) -> Self {
        let mut buffer = uuid::Uuid::encode_buffer();
        let hex = uuid::Uuid::from_u128(bits)
            .simple()
            .encode_lower(&mut buffer);
        Self(["sess_", hex].concat())
    }

    /// The 128 bits an id in the original shape carries, or `None` for any other id. Only
    /// that shape: `sess_` and exactly 32 hex digits (no hyphens, braces or sign).
    pub fn bits(&self) -> Option<u128> {
        let hex = self.0.strip_prefix("sess_")?;
        // uuid's parser checks every digit; the length rules out its other forms.
        if hex.len() != 32 {
            return None;
        }
        uuid::Uuid::try_parse(hex).ok().map(|bits| bits.as_u128())
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

    #[test]
    fn session_ids_give_back_their_bits_and_only_in_their_shape() {
        let bits = (7 << 64) | u128::from(u64::MAX);
        let id = SessionId::from_bits(bits);
        assert_eq!(id.0, "sess_0000000000000007ffffffffffffffff");
        assert_eq!(id.bits(), Some(bits));
        let hex = &id.0[5..];
        let near = [
            hex.to_owned(),
            format!(
                "sess_{}",
                uuid::Uuid::from_u64_pair(7, u64::MAX).hyphenated()
            ),
            format!("sess_+{}", &hex[1..]),
            format!("sess_{}g", &hex[1..]),
            format!("sess_{hex}0"),
        ];
        for near in near {
            assert_eq!(SessionId(near.clone()).bits(), None, "{near}");
        }
    }
}
