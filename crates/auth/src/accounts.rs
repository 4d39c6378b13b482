//! The auth store as the [`AccountSource`] of the process that holds it: every request's
//! account standing, read in-process (all-in-one mode, and the auth process itself, which also
//! answers other processes' questions with it).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bestow_core::accounts::{AccountSource, Standing, StandingUnavailable};
use bestow_core::ids::UserId;
use bestow_core::store::StoreError;
use chrono::TimeDelta;

use crate::store::AuthStore;

/// The most ended sessions a standing lists; an account that signed out more often than this
/// within one access token's lifetime keeps only its newest ones ended early.
const MAX_ENDED_SESSIONS: usize = 256;

/// Beyond the access tokens' lifetime, how far back ended sessions are still listed: the
/// verifiers' leeway and some clock drift between hosts.
const CLOCK_MARGIN: Duration = Duration::from_secs(60);

/// Standings read straight from the auth store.
pub struct StoreAccounts {
    store: Arc<dyn AuthStore>,
    /// How long an access token lives: a session that ended longer ago has none left.
    token_lifetime: Duration,
}

impl StoreAccounts {
    pub fn new(store: Arc<dyn AuthStore>, token_lifetime: Duration) -> Self {
        Self { store, token_lifetime }
    }

    /// The standing of `user_id` as stored now, `None` when there is no such account.
    pub async fn read(&self, user_id: &UserId) -> Result<Option<Standing>, StoreError> {
        let Some(user) = self.store.user_by_id(user_id).await? else {
            return Ok(None);
        };
        let lookback = TimeDelta::from_std(self.token_lifetime + CLOCK_MARGIN).unwrap_or(TimeDelta::days(1));
        let since = bestow_core::time::now() - lookback;
        let ended_sessions = self.store.ended_sessions(user_id, since, MAX_ENDED_SESSIONS).await?;
        Ok(Some(Standing { ended_sessions, ..user.standing() }))
    }
}

#[async_trait]
impl AccountSource for StoreAccounts {
    async fn standing(&self, user_id: &UserId) -> Result<Option<Standing>, StandingUnavailable> {
        self.read(user_id).await.map_err(|error| StandingUnavailable(error.to_string()))
    }
}
