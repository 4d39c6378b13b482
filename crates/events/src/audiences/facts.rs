//! What is known of a player when an audience is judged: gathered from the stores (and the
//! fact provider) once per request, no more than the rules look at ([`FactNeeds`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bestow_core::accounts::{AccountStandings, StandingUnavailable};
use bestow_core::ids::{AudienceId, UserId};
use bestow_core::page::PageRequest;
use bestow_core::store::StoreError;
use chrono::{DateTime, Utc};

use crate::conditions::activities::{ActivityProvider, ActivityStore, FactError};
use crate::domain::audience::membership::{FactNeeds, MAX_AUDIENCE_NESTING};
use crate::domain::audience::properties::{ComputedProperties, PlayerProperties, PropertyValue};
use crate::domain::audience::{Audience, PlayerFacts};
use crate::domain::condition::ActivityType;
use crate::domain::evaluate::{ActivityFact, FactQuery, LOGIN, PURCHASE};
use crate::domain::ports::audiences::{AudienceStore, PlayerSnapshot};

/// Why a player's facts could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    #[error(transparent)]
    Facts(#[from] FactError),
    /// The account's creation time could not be read.
    #[error(transparent)]
    Accounts(#[from] StandingUnavailable),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What was gathered of one player; [`Gathered::facts`] lends it to the judge.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    pub properties: BTreeMap<String, PropertyValue>,
    pub computed: ComputedProperties,
    pub activities: Vec<ActivityFact>,
    pub lists: BTreeSet<AudienceId>,
}

impl Gathered {
    /// The facts as the pure judge reads them.
    pub fn facts<'a>(
        &'a self,
        user_id: &'a UserId,
        audiences: &'a HashMap<AudienceId, Audience>,
        now: DateTime<Utc>,
    ) -> PlayerFacts<'a> {
        PlayerFacts {
            user_id,
            properties: &self.properties,
            computed: self.computed,
            activities: &self.activities,
            lists: &self.lists,
            audiences,
            now,
        }
    }
}

/// How long a process trusts an audience definition it read. A change takes effect at once in
/// the process that made it (the service forgets what it changed) and within this elsewhere.
pub const AUDIENCE_FRESHNESS: Duration = Duration::from_secs(2);
/// More remembered definitions than this and the memory starts over.
const MAX_REMEMBERED: usize = 10_000;

/// An audience definition as read at `read` (`None`: there was none).
struct Remembered {
    audience: Option<Audience>,
    read: Instant,
}

/// Reads players' facts for audiences.
pub struct FactGatherer {
    store: Arc<dyn AudienceStore>,
    /// Audience definitions read lately: every targeted player path needs them, and they
    /// change rarely.
    remembered: Mutex<HashMap<AudienceId, Remembered>>,
    /// The activity leaves' facts: the same provider the conditions of events read.
    provider: Arc<dyn ActivityProvider>,
    /// Last login and purchase total: what game servers pushed here.
    history: Arc<dyn ActivityStore>,
    /// Account creation times, from the account standings the verifier keeps fresh.
    accounts: Arc<AccountStandings>,
}

impl std::fmt::Debug for FactGatherer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactGatherer").finish_non_exhaustive()
    }
}

impl FactGatherer {
    pub fn new(
        store: Arc<dyn AudienceStore>,
        provider: Arc<dyn ActivityProvider>,
        history: Arc<dyn ActivityStore>,
        accounts: Arc<AccountStandings>,
    ) -> Self {
        Self { store, provider, history, accounts, remembered: Mutex::default() }
    }

    /// Forgets what was read of the audience `id`, after this process changed it.
    pub fn forget(&self, id: &AudienceId) {
        self.remember().remove(id);
    }

    fn remember(&self) -> std::sync::MutexGuard<'_, HashMap<AudienceId, Remembered>> {
        // A panic while holding the lock leaves only a map of copies behind: still usable.
        self.remembered.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The audiences among `ids` that exist, from memory when read within
    /// [`AUDIENCE_FRESHNESS`], else from the store (remembering what it said).
    async fn audiences(&self, ids: &[AudienceId]) -> Result<Vec<Audience>, StoreError> {
        let now = Instant::now();
        let mut found = Vec::new();
        let mut unknown = Vec::new();
        {
            let remembered = self.remember();
            for id in ids {
                match remembered.get(id) {
                    Some(entry) if now.duration_since(entry.read) < AUDIENCE_FRESHNESS => {
                        found.extend(entry.audience.clone());
                    }
                    _ => unknown.push(id.clone()),
                }
            }
        }
        if unknown.is_empty() {
            return Ok(found);
        }
        let read = self.store.audiences(&unknown).await?;
        let mut remembered = self.remember();
        if remembered.len() > MAX_REMEMBERED {
            remembered.clear();
        }
        for id in unknown {
            let audience = read.iter().find(|audience| audience.id == id).cloned();
            remembered.insert(id, Remembered { audience, read: now });
        }
        found.extend(read);
        Ok(found)
    }

    pub fn store(&self) -> &Arc<dyn AudienceStore> {
        &self.store
    }

    /// The audiences `ids` name and every audience they name in turn (`IN_AUDIENCE`), by id;
    /// audiences that are gone are simply absent.
    pub async fn audiences_named(&self, ids: &[AudienceId]) -> Result<HashMap<AudienceId, Audience>, StoreError> {
        let mut known: HashMap<AudienceId, Audience> = HashMap::new();
        let mut wanted: Vec<AudienceId> = ids.to_vec();
        for _ in 0..=MAX_AUDIENCE_NESTING {
            wanted.retain(|id| !known.contains_key(id));
            wanted.dedup();
            if wanted.is_empty() {
                break;
            }
            let found = self.audiences(&wanted).await?;
            wanted = found.iter().flat_map(|audience| audience.references.iter().cloned()).collect();
            known.extend(found.into_iter().map(|audience| (audience.id.clone(), audience)));
        }
        Ok(known)
    }

    /// Gathers what `needs` asks of `user_id`, concurrently; `properties` when the caller read
    /// them already (an estimate's scan).
    pub async fn gather(
        &self,
        user_id: &UserId,
        needs: &FactNeeds,
        properties: Option<&PlayerProperties>,
    ) -> Result<Gathered, GatherError> {
        let snapshot = async {
            let wants_properties = needs.properties && properties.is_none();
            if wants_properties || !needs.lists.is_empty() {
                self.store.player_snapshot(user_id, wants_properties, &needs.lists).await
            } else {
                Ok(PlayerSnapshot::default())
            }
        };
        let created_at = async { if needs.account { self.created_at(user_id).await } else { Ok(None) } };
        let last_seen = async { if needs.last_seen { self.last_seen(user_id).await } else { Ok(None) } };
        let activities = async {
            match &needs.activities {
                Some(query) => Ok(self.provider.facts(user_id, query).await?),
                None => Ok::<_, GatherError>(Vec::new()),
            }
        };
        let (snapshot, created_at, last_seen, activities) = tokio::join!(snapshot, created_at, last_seen, activities);
        let snapshot = snapshot?;
        let properties = match properties {
            Some(known) => known.properties.clone(),
            None => snapshot.properties.map(|stored| stored.properties).unwrap_or_default(),
        };
        Ok(Gathered {
            properties,
            computed: ComputedProperties { created_at: created_at?, last_seen_at: last_seen?, purchase_total: 0.0 },
            activities: activities?,
            lists: snapshot.lists.into_iter().collect(),
        })
    }

    /// Everything the platform computes of a player: account creation, last login and the
    /// sum of their purchases.
    pub async fn computed(&self, user_id: &UserId, now: DateTime<Utc>) -> Result<ComputedProperties, GatherError> {
        let purchases = FactQuery { types: BTreeSet::from([PURCHASE.to_owned()]), from: None, to: now };
        let (created_at, last_seen_at, purchases) =
            tokio::join!(self.created_at(user_id), self.last_seen(user_id), self.history.facts(user_id, &purchases));
        let purchase_total = purchases?
            .iter()
            .filter_map(|fact| fact.attributes.get("amount").and_then(serde_json::Value::as_f64))
            .filter(|amount| amount.is_finite())
            .sum();
        Ok(ComputedProperties { created_at: created_at?, last_seen_at: last_seen_at?, purchase_total })
    }

    async fn created_at(&self, user_id: &UserId) -> Result<Option<DateTime<Utc>>, GatherError> {
        Ok(self.accounts.current(user_id).await?.and_then(|standing| standing.created_at))
    }

    /// The player's latest `LOGIN` as game servers pushed it.
    async fn last_seen(&self, user_id: &UserId) -> Result<Option<DateTime<Utc>>, GatherError> {
        let login: Option<ActivityType> = LOGIN.parse().ok();
        let latest = self.history.recent(user_id, login.as_ref(), PageRequest { page: 1, limit: 1 }).await?;
        Ok(latest.items.first().map(|activity| activity.occurred_at))
    }
}
