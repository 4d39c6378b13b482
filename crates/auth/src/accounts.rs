//! The auth store as the [`AccountSource`] of the process that holds it: every request's
//! account standing, read in-process (all-in-one mode, and the auth process itself).

use std::sync::Arc;

use async_trait::async_trait;
use bestow_core::accounts::{AccountSource, Standing, StandingUnavailable};

use crate::store::AuthStore;

/// Standings read straight from the auth store.
pub struct StoreAccounts(pub Arc<dyn AuthStore>);

#[async_trait]
impl AccountSource for StoreAccounts {
    async fn standing(&self, user_id: &str) -> Result<Option<Standing>, StandingUnavailable> {
        match self.0.user_by_id(user_id).await {
            Ok(user) => Ok(user.map(|user| user.standing())),
            Err(error) => Err(StandingUnavailable(error.to_string())),
        }
    }
}
