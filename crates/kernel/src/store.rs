//! What every store port may fail with. Adapters map their driver errors here; driver types
//! never cross this line.

/// A storage failure, in the three kinds services act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist (or a conditional update matched nothing).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule or a compare-and-set refused the write; says what conflicted.
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// The database cannot be reached or failed; the message is for logs only.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

/// What a refused write conflicted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// A compare-and-set found the record changed since it was read.
    #[error("the record changed since it was read")]
    Version,
    /// Another request of the same player holds the claim slot.
    #[error("another request holds the claim slot")]
    ClaimSlot,
    /// A reservation found too little stock; nothing was written.
    #[error("too little stock")]
    Stock,
    /// A top-up of a reward whose stock is unlimited.
    #[error("the stock is unlimited")]
    UnlimitedStock,
    /// The username is taken, in any letter case.
    #[error("the username is taken")]
    Username,
    /// The `requestId` or the claim slot of a new request is taken.
    #[error("the requestId or the claim slot is taken")]
    RequestOrSlot,
    /// An activity with this `activityId` is stored already.
    #[error("the activityId is taken")]
    ActivityId,
    /// A service key with this secret digest exists.
    #[error("the key digest is taken")]
    KeyDigest,
    /// The service key was revoked already.
    #[error("already revoked")]
    AlreadyRevoked,
    /// Some other unique index refused the write.
    #[error("a unique value is taken")]
    Duplicate,
}
