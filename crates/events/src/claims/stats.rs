//! The event dashboard (`GET /api/v1/events/{eventId}/stats`): the claims of one event as the
//! store counted them ([`ClaimStats`](crate::domain::stats::ClaimStats)), shaped by the domain
//! ([`crate::domain::stats`], where [`EventStats`] lives so that clients read it back), beside
//! the stock left of each of its rewards.

pub use crate::domain::stats::{EventStats, RewardStock};
