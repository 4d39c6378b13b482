//! Audiences: the staff's use cases (create, change, delete, LIST members, size estimates,
//! checking one player), player properties ([`properties`]), the gate of every player path
//! ([`gate`]) and the facts they judge on ([`facts`]). The rules themselves are pure, in
//! `crate::domain::audience`.

pub mod estimate;
pub mod facts;
pub mod gate;
pub mod members;
pub mod properties;

use std::sync::Arc;

use bestow_core::audit::AuditActor;
use bestow_core::ids::{AudienceId, UserId};
use bestow_core::page::{Page, PageRequest};
use bestow_core::store::StoreError;
use bestow_core::time::Clock;
use serde_json::json;

use crate::domain::audience::membership::{fact_needs, judge};
use crate::domain::audience::view::{MembershipCheck, audience_snapshot};
use crate::domain::audience::{
    Audience, AudienceInput, AudienceKind, AudiencePatch, AudienceProvenance, AudienceUsers,
};
use crate::domain::ports::audiences::AudienceStore;
use crate::domain::validation::FieldError;
use facts::{FactGatherer, GatherError};

/// Why an audience use case failed. The HTTP layer (`crate::http::errors`) maps each to its
/// problem details.
#[derive(Debug, thiserror::Error)]
pub enum AudienceError {
    #[error("no such audience")]
    NotFound,
    /// Bad field values, each at its JSON pointer.
    #[error("request validation failed")]
    Invalid(Vec<FieldError>),
    /// The client's `If-Match` names a version that is no longer the audience's.
    #[error("the audience changed since it was read")]
    Stale,
    /// Another write won the compare-and-set.
    #[error("the audience changed meanwhile; read it again")]
    ChangedMeanwhile,
    /// Events or audiences still name it.
    #[error("the audience is in use by {} event(s) and {} audience(s)", .0.events.len(), .0.audiences.len())]
    InUse(AudienceUsers),
    /// Only a RULE audience has a rule.
    #[error("a LIST audience has no rule; upload its members")]
    NotARule,
    /// A rule's `IN_AUDIENCE` names an audience that does not exist, or leads back to the
    /// audience itself.
    #[error("{0}")]
    Reference(String),
    /// A merge would leave a player more properties than allowed.
    #[error("{0}")]
    TooManyProperties(String),
    /// Members are uploaded and added to LIST audiences only.
    #[error("only a LIST audience has members to upload, add or remove")]
    NotAList,
    /// An upload line that is no user id, or too many lines.
    #[error("{0}")]
    Upload(#[from] members::UploadError),
    #[error(transparent)]
    Facts(#[from] GatherError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A lost compare-and-set: with `If-Match` it is a stale precondition, without one a
/// concurrent edit.
fn lost_race(error: StoreError, had_if_match: bool) -> AudienceError {
    match error {
        StoreError::Conflict(_) if had_if_match => AudienceError::Stale,
        StoreError::Conflict(_) => AudienceError::ChangedMeanwhile,
        StoreError::NotFound => AudienceError::NotFound,
        other => other.into(),
    }
}

/// Staff's audience use cases.
pub struct AudienceService {
    store: Arc<dyn AudienceStore>,
    facts: Arc<FactGatherer>,
    clock: Clock,
    estimates: estimate::Estimates,
}

impl std::fmt::Debug for AudienceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudienceService").finish_non_exhaustive()
    }
}

impl AudienceService {
    pub fn new(facts: Arc<FactGatherer>, clock: Clock) -> Self {
        let store = facts.store().clone();
        let estimates = estimate::Estimates::new(facts.clone(), clock.clone());
        Self { store, facts, clock, estimates }
    }

    pub fn store(&self) -> &Arc<dyn AudienceStore> {
        &self.store
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Creates an audience (a LIST one starts empty).
    pub async fn create(&self, actor: &AuditActor, input: AudienceInput) -> Result<Audience, AudienceError> {
        let provenance = AudienceProvenance {
            id: AudienceId::generate(),
            created_by: actor.actor_id.clone(),
            now: self.clock.now(),
            generation: bestow_core::ids::new_object_id(),
        };
        let audience = input.into_audience(provenance).map_err(AudienceError::Invalid)?;
        self.check_references(&audience).await?;
        let audit = actor.entry(
            "audience.create",
            ("audience", audience.id.as_str()),
            None,
            Some(audience_snapshot(&audience)),
        );
        self.store.insert_audience(&audience, &audit).await?;
        Ok(audience)
    }

    /// The audience `id` names; text that is no audience id names none.
    pub async fn get(&self, id: &str) -> Result<Audience, AudienceError> {
        let Ok(id) = AudienceId::parse(id) else { return Err(AudienceError::NotFound) };
        self.store.audience(&id).await?.ok_or(AudienceError::NotFound)
    }

    /// One page of audiences, newest first.
    pub async fn list(&self, page: PageRequest) -> Result<Page<Audience>, AudienceError> {
        Ok(self.store.list_audiences(page).await?)
    }

    /// Changes an audience's name, description or rule; `if_match` is the version the client
    /// last read.
    pub async fn patch(
        &self,
        actor: &AuditActor,
        id: &str,
        patch: AudiencePatch,
        if_match: Option<i64>,
    ) -> Result<Audience, AudienceError> {
        let current = self.get(id).await?;
        if if_match.is_some_and(|version| version != current.version) {
            return Err(AudienceError::Stale);
        }
        if patch.rule.is_some() && current.kind == AudienceKind::List {
            return Err(AudienceError::NotARule);
        }
        let next = patch.apply(&current, self.clock.now()).map_err(AudienceError::Invalid)?;
        self.check_references(&next).await?;
        let audit = actor.entry(
            "audience.update",
            ("audience", next.id.as_str()),
            Some(audience_snapshot(&current)),
            Some(audience_snapshot(&next)),
        );
        let replaced = self.store.replace_audience(&next, current.version, Some(&audit)).await;
        self.facts.forget(&next.id);
        replaced.map_err(|e| lost_race(e, if_match.is_some()))?;
        Ok(next)
    }

    /// Deletes an audience no event or audience uses (409 otherwise), with its members.
    pub async fn delete(&self, actor: &AuditActor, id: &str) -> Result<(), AudienceError> {
        let current = self.get(id).await?;
        let users = self.store.audience_users(&current.id).await?;
        if !users.is_empty() {
            return Err(AudienceError::InUse(users));
        }
        let audit =
            actor.entry("audience.delete", ("audience", current.id.as_str()), Some(audience_snapshot(&current)), None);
        let deleted = self.store.delete_audience(&current.id, current.version, &audit).await;
        self.facts.forget(&current.id);
        deleted.map_err(|e| lost_race(e, false))
    }

    /// Whether `user_id` is in the audience now, with the verdict of every node.
    pub async fn check(&self, id: &str, user_id: &UserId) -> Result<MembershipCheck, AudienceError> {
        let audience = self.get(id).await?;
        let named = [audience.id.clone()];
        let audiences = self.facts.audiences_named(&named).await?;
        let now = self.clock.now();
        let needs = fact_needs(&named, &audiences, now);
        let gathered = self.facts.gather(user_id, &needs, None).await?;
        let verdict = judge(&audience, &gathered.facts(user_id, &audiences, now));
        Ok(MembershipCheck { user_id: user_id.to_string(), member: verdict.met, rule: verdict })
    }

    /// Starts a size estimate in the background and returns its job id.
    pub async fn start_estimate(&self, id: &str) -> Result<String, AudienceError> {
        let audience = self.get(id).await?;
        self.estimates.start(audience).await
    }

    /// Adds one member to a LIST audience (a member already there stays, once); audited.
    pub async fn add_member(&self, actor: &AuditActor, id: &str, user_id: &UserId) -> Result<(), AudienceError> {
        let audience = self.list_audience(id).await?;
        let audit = actor.entry(
            "audience.member.add",
            ("audience", audience.id.as_str()),
            None,
            Some(json!({ "userId": user_id })),
        );
        let at = self.clock.now();
        self.store
            .add_member(&audience.id, &audience.member_generation, user_id, at, &audit)
            .await
            .map_err(|e| lost_race(e, false))?;
        Ok(())
    }

    /// Removes one member of a LIST audience (nothing happens for a non-member); audited.
    pub async fn remove_member(&self, actor: &AuditActor, id: &str, user_id: &UserId) -> Result<(), AudienceError> {
        let audience = self.list_audience(id).await?;
        let audit = actor.entry(
            "audience.member.remove",
            ("audience", audience.id.as_str()),
            Some(json!({ "userId": user_id })),
            None,
        );
        self.store
            .remove_member(&audience.id, &audience.member_generation, user_id, &audit)
            .await
            .map_err(|e| lost_race(e, false))?;
        Ok(())
    }

    /// One page of a LIST audience's members, by user id.
    pub async fn members(&self, id: &str, page: PageRequest) -> Result<Page<UserId>, AudienceError> {
        let audience = self.list_audience(id).await?;
        Ok(self.store.list_members(&audience.id, &audience.member_generation, page).await?)
    }

    /// The LIST audience `id` names: [`AudienceError::NotAList`] for a RULE one.
    pub async fn list_audience(&self, id: &str) -> Result<Audience, AudienceError> {
        let audience = self.get(id).await?;
        if audience.kind != AudienceKind::List {
            return Err(AudienceError::NotAList);
        }
        Ok(audience)
    }

    /// Refuses a rule naming an audience that does not exist, or one that leads back to the
    /// audience itself (a cycle through `IN_AUDIENCE`).
    async fn check_references(&self, audience: &Audience) -> Result<(), AudienceError> {
        if audience.references.is_empty() {
            return Ok(());
        }
        let reachable = self.facts.audiences_named(&audience.references).await?;
        if let Some(missing) = audience.references.iter().find(|id| !reachable.contains_key(*id)) {
            return Err(AudienceError::Reference(format!("IN_AUDIENCE names no audience with id {missing}")));
        }
        if reachable.contains_key(&audience.id) {
            return Err(AudienceError::Reference("IN_AUDIENCE leads back to this audience (a cycle)".into()));
        }
        Ok(())
    }
}

pub use members::UploadError;
