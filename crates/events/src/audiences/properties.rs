//! Player properties: game servers merge what they know of a player (with a service key
//! holding `players:write`), staff read it back with what the platform computes itself.

use std::sync::Arc;

use bestow_core::audit::AuditActor;
use bestow_core::ids::UserId;
use bestow_core::store::StoreError;
use bestow_core::time::Clock;
use serde_json::Value;

use super::AudienceError;
use super::facts::FactGatherer;
use crate::domain::audience::properties::{PlayerProperties, PlayerPropertiesView, PropertyPatch};

/// Attempts of a merge that keeps losing its compare-and-set to concurrent merges.
const MERGE_ATTEMPTS: usize = 5;

/// Reading and merging player properties.
pub struct PlayerPropertyService {
    facts: Arc<FactGatherer>,
    clock: Clock,
}

impl std::fmt::Debug for PlayerPropertyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlayerPropertyService").finish_non_exhaustive()
    }
}

impl PlayerPropertyService {
    pub fn new(facts: Arc<FactGatherer>, clock: Clock) -> Self {
        Self { facts, clock }
    }

    /// The player's properties and computed properties (empty properties for a player no
    /// game server described yet).
    pub async fn get(&self, user_id: &UserId) -> Result<PlayerPropertiesView, AudienceError> {
        let stored = self.facts.store().player_properties(user_id).await?;
        let stored = stored.unwrap_or_else(|| PlayerProperties::empty(user_id.clone(), self.clock.now()));
        self.view(&stored).await
    }

    /// The properties the game set for the player (none computed: those are the platform's
    /// judgements, read only by staff).
    pub async fn own(&self, user_id: &UserId) -> Result<serde_json::Map<String, Value>, AudienceError> {
        let stored = self.facts.store().player_properties(user_id).await?;
        Ok(stored.map(|stored| stored.to_json()).unwrap_or_default())
    }

    /// Merges `body` (names to values; `null` removes) into the player's properties, audited
    /// as the change it made.
    pub async fn merge(
        &self,
        actor: &AuditActor,
        user_id: &UserId,
        body: &Value,
    ) -> Result<PlayerPropertiesView, AudienceError> {
        let patch = PropertyPatch::parse(body).map_err(AudienceError::Invalid)?;
        let store = self.facts.store();
        for _ in 0..MERGE_ATTEMPTS {
            let now = self.clock.now();
            let current = store
                .player_properties(user_id)
                .await?
                .unwrap_or_else(|| PlayerProperties::empty(user_id.clone(), now));
            // The patch itself was checked; what it would leave depends on what is stored.
            let next = patch.apply(&current, now).map_err(|errors| {
                AudienceError::TooManyProperties(errors.first().map(|e| e.message.clone()).unwrap_or_default())
            })?;
            let before: serde_json::Map<String, Value> = patch
                .0
                .keys()
                .map(|name| (name.clone(), current.properties.get(name).map(|v| v.to_json()).unwrap_or(Value::Null)))
                .collect();
            let audit = actor.entry(
                "player.properties.update",
                ("player", user_id.as_str()),
                Some(Value::Object(before)),
                Some(Value::Object(patch.changes())),
            );
            match store.write_player_properties(&next, current.version, &audit).await {
                Ok(()) => return self.view(&next).await,
                Err(StoreError::Conflict(_)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(AudienceError::ChangedMeanwhile)
    }

    async fn view(&self, stored: &PlayerProperties) -> Result<PlayerPropertiesView, AudienceError> {
        let computed = self.facts.computed(&stored.user_id, self.clock.now()).await?;
        Ok(PlayerPropertiesView { user_id: stored.user_id.to_string(), properties: stored.to_json(), computed })
    }
}
