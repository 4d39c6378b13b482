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

use crate::domain::reward::{RewardDefinition, RewardType};
use crate::domain::saga::CallOutcome;

/// One reward to grant to one player, or to take back.
#[derive(Debug, Clone)]
pub struct Grant {
    /// `requestId:rewardId`.
    pub key: String,
    pub request_id: String,
    pub user_id: String,
    pub event_id: String,
    /// The reward as promised at claim time.
    pub reward: RewardDefinition,
}

/// Pays rewards into the game and takes them back.
#[async_trait]
pub trait RewardGranter: Send + Sync {
    async fn grant(&self, grant: &Grant) -> CallOutcome;
    async fn revoke(&self, grant: &Grant) -> CallOutcome;
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
    async fn grant(&self, grant: &Grant) -> CallOutcome {
        self.for_grant(grant).grant(grant).await
    }

    async fn revoke(&self, grant: &Grant) -> CallOutcome {
        self.for_grant(grant).revoke(grant).await
    }
}
