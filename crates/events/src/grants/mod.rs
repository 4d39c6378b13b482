//! Granting rewards through the game's systems: the `RewardGranter` port, the routing of
//! reward types to granters, the built-in [`ledger`] and the HTTP [`webhook`] granter.
//!
//! Every grant and revoke carries the key `requestId:rewardId`. Granters must treat it as an
//! idempotency key (a retried grant after a timeout pays once) and a revoke as a tombstone (a
//! grant that arrives after the revoke of its key is refused), so that no interleaving of
//! retries and compensations can pay twice or leave a ghost grant.

pub mod ledger;
pub mod webhook;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bestow_core::ids::{EventId, RequestId, UserId};
use bestow_core::store::StoreError;

use crate::domain::reward::{RewardDefinition, RewardType};
use crate::domain::saga::CallOutcome;

/// One reward to grant to one player, or to take back.
#[derive(Debug, Clone)]
pub struct Grant {
    /// `requestId:rewardId`.
    pub key: String,
    pub request_id: RequestId,
    pub user_id: UserId,
    pub event_id: EventId,
    /// The reward as promised at claim time.
    pub reward: RewardDefinition,
}

/// Pays rewards into the game and takes them back.
#[async_trait]
pub trait RewardGranter: Send + Sync {
    async fn grant(&self, grant: &Grant) -> Result<(), GrantError>;
    async fn revoke(&self, grant: &Grant) -> Result<(), GrantError>;
}

/// Why a grant or a revoke failed, and whether another attempt may help.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// Timeout, connection failure, 5xx, unavailable ledger: another attempt may succeed.
    #[error("{0}")]
    Transient(#[source] GrantFailure),
    /// A refusal: another attempt would fail the same way.
    #[error("{0}")]
    Permanent(#[source] GrantFailure),
}

/// What went wrong. Its text is what a claim records as the reward's failure reason, so it never
/// quotes the webhook's URL or secret.
#[derive(Debug, thiserror::Error)]
pub enum GrantFailure {
    #[error("{action}: HTTP {status}")]
    Status { action: GrantAction, status: reqwest::StatusCode },
    #[error("{action}: timed out")]
    TimedOut { action: GrantAction },
    #[error("{action}: connection failed")]
    Unreachable { action: GrantAction },
    #[error("{action}: request failed")]
    RequestFailed { action: GrantAction },
    #[error("ledger: {0}")]
    Ledger(#[source] StoreError),
    /// The key's revoke arrived first: the grant must not happen any more.
    #[error("the grant was already revoked")]
    AlreadyRevoked,
}

/// Which call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantAction {
    Grant,
    Revoke,
}

impl GrantAction {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantAction::Grant => "grant",
            GrantAction::Revoke => "revoke",
        }
    }
}

impl std::fmt::Display for GrantAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The saga machine's view of a call: succeeded, or failed with a reason and a retry verdict.
pub fn call_outcome(result: Result<(), GrantError>) -> CallOutcome {
    match result {
        Ok(()) => CallOutcome::Succeeded,
        Err(GrantError::Transient(failure)) => CallOutcome::Transient(failure.to_string()),
        Err(GrantError::Permanent(failure)) => CallOutcome::Permanent(failure.to_string()),
    }
}

/// Sends each reward type to its configured granter, the rest to a default one.
pub struct RoutedGranter {
    default: Arc<dyn RewardGranter>,
    routes: HashMap<RewardType, Arc<dyn RewardGranter>>,
}

impl RoutedGranter {
    pub fn new(default: Arc<dyn RewardGranter>) -> Self {
        Self { default, routes: HashMap::new() }
    }

    /// Routes `reward_type` to `granter`.
    pub fn route(mut self, reward_type: RewardType, granter: Arc<dyn RewardGranter>) -> Self {
        self.routes.insert(reward_type, granter);
        self
    }

    fn for_grant(&self, grant: &Grant) -> &Arc<dyn RewardGranter> {
        self.routes.get(&grant.reward.reward().reward_type()).unwrap_or(&self.default)
    }
}

#[async_trait]
impl RewardGranter for RoutedGranter {
    async fn grant(&self, grant: &Grant) -> Result<(), GrantError> {
        self.for_grant(grant).grant(grant).await
    }

    async fn revoke(&self, grant: &Grant) -> Result<(), GrantError> {
        self.for_grant(grant).revoke(grant).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_keeps_its_retry_verdict_and_reads_as_the_claims_failure_reason() {
        let status = reqwest::StatusCode::SERVICE_UNAVAILABLE;
        let busy = GrantError::Transient(GrantFailure::Status { action: GrantAction::Grant, status });
        assert_eq!(call_outcome(Err(busy)), CallOutcome::Transient("grant: HTTP 503 Service Unavailable".into()));
        let refused = GrantError::Permanent(GrantFailure::AlreadyRevoked);
        assert_eq!(call_outcome(Err(refused)), CallOutcome::Permanent("the grant was already revoked".into()));
        let down = GrantError::Transient(GrantFailure::TimedOut { action: GrantAction::Revoke });
        assert_eq!(call_outcome(Err(down)), CallOutcome::Transient("revoke: timed out".into()));
        assert_eq!(call_outcome(Ok(())), CallOutcome::Succeeded);
    }

    #[test]
    fn the_ledgers_error_stays_the_cause() {
        let error = GrantError::Transient(GrantFailure::Ledger(StoreError::Unavailable("disk full".into())));
        let cause = std::error::Error::source(&error).and_then(std::error::Error::source);
        assert!(cause.is_some_and(|cause| cause.to_string().contains("disk full")), "{error:?}");
    }
}
