//! Identifiers: each kind of id is a type of its own, parsed once at the edge (a path, a body,
//! a stored document) and passed as that type afterwards, so two ids cannot be swapped
//! silently and a malformed one never reaches a store.
//!
//! Ids the platform generates are in MongoDB's ObjectId form (24 hex digits), whatever the
//! storage: the seed's `_id`s are ObjectIds, and generating them the same way in every
//! adapter keeps ids portable between SQLite and MongoDB and roughly time-ordered. A claim's
//! request id is a UUID (the client's `Idempotency-Key`); a player's id is the game's own
//! text, and a tier's id the operator's.
//!
//! Every id serializes as its plain text (serde-transparent), so stored documents and
//! replies are unchanged by the types.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use rand::RngCore;
use serde::{Deserialize, Serialize};

/// A new ObjectId: 4 bytes of seconds, 5 random bytes fixed per process, a 3-byte counter.
pub fn new_object_id() -> String {
    static PROCESS: OnceLock<[u8; 5]> = OnceLock::new();
    static COUNTER: OnceLock<AtomicU32> = OnceLock::new();
    let process = PROCESS.get_or_init(|| {
        let mut bytes = [0u8; 5];
        rand::rng().fill_bytes(&mut bytes);
        bytes
    });
    let counter = COUNTER.get_or_init(|| AtomicU32::new(rand::rng().next_u32()));
    let seconds = u32::try_from(chrono::Utc::now().timestamp()).unwrap_or(u32::MAX);
    let count = counter.fetch_add(1, Ordering::Relaxed) & 0x00ff_ffff;

    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&seconds.to_be_bytes());
    bytes[4..9].copy_from_slice(process);
    bytes[9..].copy_from_slice(&count.to_be_bytes()[1..]);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `s` looks like an ObjectId (24 lowercase or uppercase hex digits).
pub fn is_object_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Text that is not a well-formed id of the kind named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} must be {rule}, got {text:?}")]
pub struct InvalidId {
    /// What was being parsed, e.g. "an event id".
    pub kind: &'static str,
    /// What a well-formed one looks like.
    pub rule: &'static str,
    /// The text refused.
    pub text: String,
}

/// The methods and conversions every text-backed id shares; `$accepts` turns the text into
/// its canonical form or refuses it.
macro_rules! text_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $rule:literal, $accepts:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The id's canonical text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Parses `text`, refusing what is not well formed.
            pub fn parse(text: &str) -> Result<Self, InvalidId> {
                let canonical: fn(&str) -> Option<String> = $accepts;
                canonical(text)
                    .map(Self)
                    .ok_or_else(|| InvalidId { kind: $kind, rule: $rule, text: text.to_owned() })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;

            fn try_from(text: String) -> Result<Self, Self::Error> {
                Self::parse(&text)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidId;

            fn try_from(text: &str) -> Result<Self, Self::Error> {
                Self::parse(text)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

/// An ObjectId's canonical text: its 24 hex digits in lowercase, so equal ids compare equal.
fn object_id_text(text: &str) -> Option<String> {
    is_object_id(text).then(|| text.to_ascii_lowercase())
}

/// Ids the platform generates in ObjectId form: also `generate()`.
macro_rules! object_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        text_id!($(#[$meta])* $name, $kind, "24 hex digits", object_id_text);

        impl $name {
            /// A new id, unique and roughly time-ordered.
            pub fn generate() -> Self {
                Self(new_object_id())
            }
        }
    };
}

object_id!(
    /// `events._id`.
    EventId,
    "an event id"
);

object_id!(
    /// The identifier of a reward within its event (`rewards[].rewardId`).
    RewardId,
    "a reward id"
);

object_id!(
    /// `audiences._id`: a set of players events are shown to.
    AudienceId,
    "an audience id"
);

object_id!(
    /// `service_keys._id`: a game server's key.
    ServiceKeyId,
    "a service key id"
);

/// The longest player id accepted, in characters: the game's ids are its own, so they are
/// not required to be ObjectIds, only bounded.
pub const MAX_USER_ID_CHARS: usize = 128;

text_id!(
    /// A player's or staff member's id (`users._id`, `userId` everywhere): the platform's own
    /// accounts have ObjectIds, and the game's servers may report activities for ids of their
    /// own, so any text of 1 to 128 characters is accepted, kept as sent.
    UserId,
    "a user id",
    "1 to 128 characters",
    |text| (!text.is_empty() && text.chars().count() <= MAX_USER_ID_CHARS).then(|| text.to_owned())
);

impl UserId {
    /// A new account's id, in ObjectId form like every id the platform generates.
    pub fn generate() -> Self {
        Self(new_object_id())
    }
}

/// The longest tier id, in characters.
pub const MAX_TIER_ID_CHARS: usize = 64;

text_id!(
    /// A tier of an event (`tiers[].tierId`): the operator's name for it, or a generated one.
    TierId,
    "a tier id",
    "1 to 64 letters, digits, `_` or `-`",
    |text| {
        let well_formed = !text.is_empty()
            && text.len() <= MAX_TIER_ID_CHARS
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        well_formed.then(|| text.to_owned())
    }
);

/// A claim's `requestId`: the client's `Idempotency-Key` (a UUID), or one the server drew.
/// Held as a UUID, written in its canonical lowercase 8-4-4-4-12 form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RequestId(uuid::Uuid);

impl RequestId {
    /// A new random (version 4) request id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// Parses the 8-4-4-4-12 hexadecimal form, in either case (and only that form: the
    /// braced, URN and undashed forms the `uuid` crate also reads are refused).
    pub fn parse(text: &str) -> Result<Self, InvalidId> {
        let dashed = text.len() == 36 && [8, 13, 18, 23].iter().all(|&at| text.as_bytes()[at] == b'-');
        dashed.then(|| uuid::Uuid::try_parse(text).ok()).flatten().map(Self).ok_or_else(|| InvalidId {
            kind: "a request id",
            rule: "a UUID (8-4-4-4-12 hex digits)",
            text: text.to_owned(),
        })
    }

    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for RequestId {
    type Err = InvalidId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl TryFrom<String> for RequestId {
    type Error = InvalidId;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl PartialEq<&str> for RequestId {
    fn eq(&self, other: &&str) -> bool {
        Self::parse(other).is_ok_and(|other| other == *self)
    }
}

impl PartialEq<RequestId> for &str {
    fn eq(&self, other: &RequestId) -> bool {
        other == self
    }
}

impl From<RequestId> for String {
    fn from(id: RequestId) -> Self {
        id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_well_formed_and_distinct() {
        let a = new_object_id();
        let b = new_object_id();
        assert!(is_object_id(&a) && is_object_id(&b));
        assert_ne!(a, b);
        assert!(!is_object_id("not-an-id"));
    }

    #[test]
    fn object_ids_parse_to_lowercase_and_refuse_other_text() {
        let id = EventId::parse("65F1C0FFEE0000000000ABCD").unwrap();
        assert_eq!(id.as_str(), "65f1c0ffee0000000000abcd");
        assert_eq!(id, EventId::parse("65f1c0ffee0000000000abcd").unwrap());
        for bad in ["", "65f1c0ffee0000000000abc", "65f1c0ffee0000000000abcdx", "zzf1c0ffee0000000000abcd"] {
            let error = EventId::parse(bad).unwrap_err();
            assert_eq!((error.kind, error.text.as_str()), ("an event id", bad));
        }
        assert_ne!(EventId::generate(), EventId::generate());
    }

    #[test]
    fn ids_serialize_as_their_text_and_refuse_bad_text() {
        let event = EventId::parse("65f1c0ffee0000000000abcd").unwrap();
        assert_eq!(serde_json::to_value(&event).unwrap(), "65f1c0ffee0000000000abcd");
        assert_eq!(serde_json::from_value::<EventId>("65f1c0ffee0000000000abcd".into()).unwrap(), event);
        assert!(serde_json::from_value::<EventId>("nope".into()).is_err());

        let request = RequestId::parse("0F8FAD5B-D9CB-469F-A165-70867728950E").unwrap();
        let text = serde_json::to_value(request).unwrap();
        assert_eq!(text, "0f8fad5b-d9cb-469f-a165-70867728950e");
        assert_eq!(serde_json::from_value::<RequestId>(text).unwrap(), request);
    }

    #[test]
    fn request_ids_are_dashed_uuids_only() {
        for good in ["0f8fad5b-d9cb-469f-a165-70867728950e", "00000000-0000-0000-0000-000000000000"] {
            assert_eq!(RequestId::parse(good).unwrap().to_string(), good);
        }
        for bad in [
            "",
            "0f8fad5bd9cb469fa16570867728950e",
            "{0f8fad5b-d9cb-469f-a165-70867728950e}",
            "urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950",
            "0f8fad5b-d9cb-469f-a165-70867728950g",
            "0f8fad5b-d9cb4-69f-a165-70867728950e",
        ] {
            assert!(RequestId::parse(bad).is_err(), "{bad:?}");
        }
        assert_ne!(RequestId::generate(), RequestId::generate());
    }

    #[test]
    fn user_and_tier_ids_are_bounded_text() {
        assert_eq!(UserId::parse("player-42").unwrap().as_str(), "player-42");
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse(&"가".repeat(MAX_USER_ID_CHARS)).is_ok());
        assert!(UserId::parse(&"가".repeat(MAX_USER_ID_CHARS + 1)).is_err());

        assert!(TierId::parse("day-1_A").is_ok());
        for bad in ["", "day 1", "día", &"a".repeat(MAX_TIER_ID_CHARS + 1)] {
            assert!(TierId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
