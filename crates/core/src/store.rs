//! What every store port may fail with. Adapters map their driver errors here; driver types
//! never cross this line.

/// A storage failure, in the three kinds services act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist (or a conditional update matched nothing).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule or a compare-and-set refused the write; names what conflicted.
    #[error("conflict on {0}")]
    Conflict(&'static str),
    /// The database cannot be reached or failed; the message is for logs only.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for crate::ApiError {
    /// The fallback mapping. Services map `NotFound` and `Conflict` themselves where they
    /// mean something to the client; what reaches here unmapped is a server-side fault.
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(cause) => crate::ApiError::Unavailable(cause),
            other => crate::ApiError::internal(other),
        }
    }
}
