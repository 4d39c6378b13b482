//! Identifiers in MongoDB's ObjectId form (24 hex digits), whatever the storage.
//!
//! The seed's `_id` and `rewardId` are ObjectIds; generating them the same way in every adapter
//! keeps ids portable between SQLite and MongoDB and roughly time-ordered.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use rand::RngCore;

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
}
