//! `event_db`: the MongoDB adapter of [`AudienceStore`]: audiences (`audiences`), the members
//! of LIST audiences per generation (`audience_members`), player properties
//! (`player_properties`) and sticky memberships (`audience_sticky`).
//!
//! Every compare-and-set is one conditional update on `version`; a write that carries an audit
//! entry commits with it in one transaction. Staging members is the exception: one unordered
//! `insert_many` per batch, outside any transaction (a write error inside one aborts it, and a
//! duplicate must only be skipped), so a batch that fails part-way leaves part of it in a
//! generation that does not count yet; the upload then discards that generation.

use async_trait::async_trait;
use bestow_events_domain::audience::properties::{PlayerProperties, PropertyValue};
use bestow_events_domain::audience::{Audience, AudienceEstimate, AudienceKind, AudienceUsers, EstimateStatus, Rule};
use bestow_events_domain::ports::audiences::AudienceStore;
use bestow_kernel::audit::AuditEntry;
use bestow_kernel::ids::{AudienceId, EventId, UserId};
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::{Conflict, StoreError};
use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};
use mongodb::error::ErrorKind;
use mongodb::{ClientSession, Collection};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::audit::audit_document;
use crate::common::{
    DUPLICATE_KEY, TxResult, collect, corrupt, date, find_page, id_bson, id_text, in_transaction, insert_audited,
    is_duplicate_key, map_error, tx_error,
};
use crate::event_db::MongoEventStore;
use crate::fields::{from_document, json, object_id, object_ids, to_document};

const WHAT: &str = "audience";
const MEMBER: &str = "audience member";
const PROPERTIES: &str = "player properties";
const STICKY: &str = "sticky membership";

/// The fields a replace leaves alone: the identity and provenance, and the estimate, which
/// only [`AudienceStore::record_estimate`] writes (a replace carrying the copy it read would
/// otherwise put back an older run's progress over a newer one's).
const NOT_REPLACED: [&str; 4] = ["_id", "createdBy", "createdAt", "estimate"];

/// A count as stored (int64); counts never come near `i64::MAX`.
fn stored_count(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// A stored count read back; a negative one is corrupt.
fn read_count(count: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(count).map_err(|e| corrupt(what, e))
}

/// An audience's latest size estimate as stored in `audiences.estimate`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EstimateDocument {
    job_id: String,
    status: EstimateStatus,
    members: i64,
    scanned: i64,
    total: i64,
    started_at: bson::DateTime,
    finished_at: Option<bson::DateTime>,
    #[serde(default)]
    error: Option<String>,
}

impl From<&AudienceEstimate> for EstimateDocument {
    fn from(estimate: &AudienceEstimate) -> Self {
        Self {
            job_id: estimate.job_id.clone(),
            status: estimate.status,
            members: stored_count(estimate.members),
            scanned: stored_count(estimate.scanned),
            total: stored_count(estimate.total),
            started_at: bson::DateTime::from_chrono(estimate.started_at),
            finished_at: estimate.finished_at.map(bson::DateTime::from_chrono),
            error: estimate.error.clone(),
        }
    }
}

impl TryFrom<EstimateDocument> for AudienceEstimate {
    type Error = StoreError;

    fn try_from(document: EstimateDocument) -> Result<Self, StoreError> {
        Ok(Self {
            job_id: document.job_id,
            status: document.status,
            members: read_count(document.members, WHAT)?,
            scanned: read_count(document.scanned, WHAT)?,
            total: read_count(document.total, WHAT)?,
            started_at: document.started_at.to_chrono(),
            finished_at: document.finished_at.map(|at| at.to_chrono()),
            error: document.error,
        })
    }
}

/// An audience as stored in `audiences`: `rule` the BSON of the rule's JSON (null for LIST),
/// `references` ObjectIds like every audience id.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AudienceDocument {
    #[serde(rename = "_id", with = "object_id")]
    id: String,
    name: String,
    description: String,
    kind: AudienceKind,
    #[serde(default, with = "json")]
    rule: Option<Rule>,
    #[serde(with = "object_ids")]
    references: Vec<String>,
    member_count: i64,
    member_generation: String,
    #[serde(default)]
    estimate: Option<EstimateDocument>,
    created_by: String,
    created_at: bson::DateTime,
    updated_at: bson::DateTime,
    version: i64,
}

impl From<&Audience> for AudienceDocument {
    fn from(audience: &Audience) -> Self {
        Self {
            id: audience.id.to_string(),
            name: audience.name.clone(),
            description: audience.description.clone(),
            kind: audience.kind,
            rule: audience.rule.clone(),
            references: audience.references.iter().map(|id| id.as_str().to_owned()).collect(),
            member_count: stored_count(audience.member_count),
            member_generation: audience.member_generation.clone(),
            estimate: audience.estimate.as_ref().map(EstimateDocument::from),
            created_by: audience.created_by.clone(),
            created_at: bson::DateTime::from_chrono(audience.created_at),
            updated_at: bson::DateTime::from_chrono(audience.updated_at),
            version: audience.version,
        }
    }
}

impl TryFrom<AudienceDocument> for Audience {
    type Error = StoreError;

    fn try_from(document: AudienceDocument) -> Result<Self, StoreError> {
        Ok(Self {
            id: AudienceId::parse(&document.id).map_err(|e| corrupt(WHAT, e))?,
            name: document.name,
            description: document.description,
            kind: document.kind,
            rule: document.rule,
            references: document
                .references
                .iter()
                .map(|id| AudienceId::parse(id).map_err(|e| corrupt(WHAT, e)))
                .collect::<Result<_, _>>()?,
            // Moved by `$inc`; never below 0 unless damaged, read as 0 then (as SQLite does).
            member_count: u64::try_from(document.member_count).unwrap_or(0),
            member_generation: document.member_generation,
            estimate: document.estimate.map(AudienceEstimate::try_from).transpose()?,
            created_by: document.created_by,
            created_at: document.created_at.to_chrono(),
            updated_at: document.updated_at.to_chrono(),
            version: document.version,
        })
    }
}

fn audience_document(audience: &Audience) -> Result<Document, StoreError> {
    to_document(&AudienceDocument::from(audience), WHAT)
}

fn audience_from_document(document: Document) -> Result<Audience, StoreError> {
    from_document::<AudienceDocument>(document, WHAT)?.try_into()
}

/// One member of one generation of a LIST audience, in `audience_members`. Its `_id` is the
/// member's key, `"audienceId:generation:userId"` ([`member_key`]), so that the `_id` index
/// refuses a duplicate and a membership is a point read; the same fields stand beside it for
/// the `audience_members_member` index that lists and discards members.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MemberDocument {
    #[serde(rename = "_id")]
    key: String,
    #[serde(with = "object_id")]
    audience_id: String,
    generation: String,
    user_id: UserId,
    added_at: bson::DateTime,
}

/// The `_id` of a member. One key per member: the audience id has a fixed length, `%` and `:`
/// in the generation are escaped (generations are ObjectIds, so in practice nothing is), and
/// the user id is the rest, `:` and all.
fn member_key(audience_id: &AudienceId, generation: &str, user_id: &UserId) -> String {
    let generation = generation.replace('%', "%25").replace(':', "%3A");
    format!("{audience_id}:{generation}:{user_id}")
}

fn member_document(
    audience_id: &AudienceId,
    generation: &str,
    user_id: &UserId,
    at: DateTime<Utc>,
) -> Result<Document, StoreError> {
    let member = MemberDocument {
        key: member_key(audience_id, generation, user_id),
        audience_id: audience_id.to_string(),
        generation: generation.to_owned(),
        user_id: user_id.clone(),
        added_at: bson::DateTime::from_chrono(at),
    };
    to_document(&member, MEMBER)
}

/// The filter of one member of a generation.
fn member_filter(audience_id: &AudienceId, generation: &str, user_id: &UserId) -> Document {
    doc! { "_id": member_key(audience_id, generation, user_id) }
}

/// The user id of a member document (read with its projection).
fn member_user(document: Document) -> Result<UserId, StoreError> {
    let user = document.get_str("userId").map_err(|e| corrupt(MEMBER, e))?;
    UserId::parse(user).map_err(|e| corrupt(MEMBER, e))
}

/// A player's properties as stored in `player_properties`: `_id` the player's id as text
/// (the game's ids are not ObjectIds), `properties` a subdocument of strings, booleans, int64
/// (whole numbers) and doubles.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PropertiesDocument {
    #[serde(rename = "_id")]
    user_id: UserId,
    #[serde(with = "json")]
    properties: Map<String, Value>,
    updated_at: bson::DateTime,
    version: i64,
}

impl From<&PlayerProperties> for PropertiesDocument {
    fn from(properties: &PlayerProperties) -> Self {
        Self {
            user_id: properties.user_id.clone(),
            properties: properties.to_json(),
            updated_at: bson::DateTime::from_chrono(properties.updated_at),
            version: properties.version,
        }
    }
}

impl TryFrom<PropertiesDocument> for PlayerProperties {
    type Error = StoreError;

    fn try_from(document: PropertiesDocument) -> Result<Self, StoreError> {
        let properties = document
            .properties
            .iter()
            .map(|(name, value)| {
                let value = PropertyValue::from_json(value, name).map_err(|e| corrupt(PROPERTIES, e.message))?;
                Ok((name.clone(), value))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Self {
            user_id: document.user_id,
            properties,
            updated_at: document.updated_at.to_chrono(),
            version: document.version,
        })
    }
}

fn properties_from_document(document: Document) -> Result<PlayerProperties, StoreError> {
    from_document::<PropertiesDocument>(document, PROPERTIES)?.try_into()
}

/// That a player was in a sticky event's audience, in `audience_sticky`: `_id` is
/// `"userId:eventId"` ([`sticky_key`]), so a second record is a duplicate `_id` and a player's
/// records for a set of events are point reads.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StickyDocument {
    #[serde(rename = "_id")]
    key: String,
    user_id: UserId,
    #[serde(with = "object_id")]
    event_id: String,
    stuck_at: bson::DateTime,
}

/// The `_id` of a sticky membership. Unambiguous although a user id may hold `:`: the event id
/// after the last `:` is always 24 hex digits.
fn sticky_key(user_id: &UserId, event_id: &EventId) -> String {
    format!("{user_id}:{event_id}")
}

/// The ObjectIds (or id texts) of `ids`, for `$in`.
fn id_list<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<Bson> {
    ids.into_iter().map(id_bson).collect()
}

/// The id at `key` of each document, parsed as `T`.
fn ids_at<T: TryFrom<String, Error: std::fmt::Display>>(
    documents: &[Document],
    key: &str,
    what: &str,
) -> Result<Vec<T>, StoreError> {
    documents
        .iter()
        .map(|document| {
            let text = document.get(key).and_then(id_text).ok_or_else(|| corrupt(what, format!("no id at `{key}`")))?;
            T::try_from(text).map_err(|e| corrupt(what, e))
        })
        .collect()
}

/// How many documents of a batch an unordered `insert_many` stored: the batch less the
/// duplicates it skipped. Any other failure is an error.
fn inserted_despite_duplicates(error: mongodb::error::Error, attempted: usize) -> Result<u64, StoreError> {
    if let ErrorKind::InsertMany(failure) = error.kind.as_ref()
        && failure.write_concern_error.is_none()
        && let Some(write_errors) = &failure.write_errors
        && write_errors.iter().all(|write| write.code == DUPLICATE_KEY)
    {
        return Ok(attempted.saturating_sub(write_errors.len()) as u64);
    }
    Err(map_error(error))
}

#[async_trait]
impl AudienceStore for MongoEventStore {
    async fn player_properties(&self, user_id: &UserId) -> Result<Option<PlayerProperties>, StoreError> {
        self.ready().await?;
        let found = self.player_properties.find_one(doc! { "_id": user_id.as_str() }).await.map_err(map_error)?;
        found.map(properties_from_document).transpose()
    }

    async fn write_player_properties(
        &self,
        properties: &PlayerProperties,
        expected_version: i64,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        self.ready().await?;
        let document = to_document(&PropertiesDocument::from(properties), PROPERTIES)?;
        let audit = audit_document(audit)?;
        if expected_version == 0 {
            // None stored yet: a concurrent first write makes the insert a duplicate.
            let collection = (&self.player_properties, document);
            return insert_audited(&self.client, collection, (&self.audit, audit), Conflict::Version).await;
        }
        let filter = doc! { "_id": properties.user_id.as_str(), "version": expected_version };
        let mut fields = document;
        fields.remove("_id");
        in_transaction(&self.client, |session| {
            let (collection, logs) = (self.player_properties.clone(), self.audit.clone());
            let (filter, fields, audit) = (filter.clone(), fields.clone(), audit.clone());
            Box::pin(async move {
                let written = collection.update_one(filter, doc! { "$set": fields }).session(&mut *session).await?;
                if written.matched_count == 0 {
                    return Err(StoreError::Conflict(Conflict::Version).into());
                }
                logs.insert_one(audit).session(&mut *session).await?;
                TxResult::Ok(())
            })
        })
        .await
    }

    async fn player_properties_after(
        &self,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<PlayerProperties>, StoreError> {
        self.ready().await?;
        let filter = match after {
            Some(after) => doc! { "_id": { "$gt": after.as_str() } },
            None => doc! {},
        };
        let cursor = self
            .player_properties
            .find(filter)
            .sort(doc! { "_id": 1 })
            .limit(i64::from(limit))
            .await
            .map_err(map_error)?;
        collect(cursor).await?.into_iter().map(properties_from_document).collect()
    }

    async fn count_player_properties(&self) -> Result<u64, StoreError> {
        self.ready().await?;
        self.player_properties.count_documents(doc! {}).await.map_err(map_error)
    }

    async fn insert_audience(&self, audience: &Audience, audit: &AuditEntry) -> Result<(), StoreError> {
        self.ready().await?;
        let (audience, audit) = (audience_document(audience)?, audit_document(audit)?);
        insert_audited(&self.client, (&self.audiences, audience), (&self.audit, audit), Conflict::Duplicate).await
    }

    async fn audience(&self, id: &AudienceId) -> Result<Option<Audience>, StoreError> {
        self.ready().await?;
        let found = self.audiences.find_one(doc! { "_id": id_bson(id.as_str()) }).await.map_err(map_error)?;
        found.map(audience_from_document).transpose()
    }

    async fn audiences(&self, ids: &[AudienceId]) -> Result<Vec<Audience>, StoreError> {
        self.ready().await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let filter = doc! { "_id": { "$in": id_list(ids.iter().map(AudienceId::as_str)) } };
        let cursor = self.audiences.find(filter).await.map_err(map_error)?;
        collect(cursor).await?.into_iter().map(audience_from_document).collect()
    }

    async fn list_audiences(&self, page: PageRequest) -> Result<Page<Audience>, StoreError> {
        self.ready().await?;
        let newest_first = doc! { "createdAt": -1, "_id": -1 };
        find_page(&self.audiences, doc! {}, newest_first, page).await?.try_map(audience_from_document)
    }

    async fn replace_audience(
        &self,
        audience: &Audience,
        expected_version: i64,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        self.ready().await?;
        let replacement = Replacement::of(audience, expected_version)?;
        let Some(audit) = audit.map(audit_document).transpose()? else {
            // One document and nothing else: atomic without a transaction.
            return match replacement.apply(&self.audiences, None).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(self.refusal(&replacement.id).await),
                Err(error) => Err(map_error(error)),
            };
        };
        in_transaction(&self.client, |session| {
            let (audiences, logs, replacement, audit) =
                (self.audiences.clone(), self.audit.clone(), replacement.clone(), audit.clone());
            Box::pin(async move {
                if !replacement.apply(&audiences, Some(&mut *session)).await? {
                    let id = replacement.id.clone();
                    let known = audiences.find_one(doc! { "_id": id }).session(&mut *session).await?.is_some();
                    return Err(refusal(known).into());
                }
                logs.insert_one(audit).session(&mut *session).await?;
                TxResult::Ok(())
            })
        })
        .await
    }

    async fn delete_audience(
        &self,
        id: &AudienceId,
        expected_version: i64,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        self.ready().await?;
        let (id_value, audit) = (id_bson(id.as_str()), audit_document(audit)?);
        in_transaction(&self.client, |session| {
            let (audiences, logs, id, audit) =
                (self.audiences.clone(), self.audit.clone(), id_value.clone(), audit.clone());
            Box::pin(async move {
                let filter = doc! { "_id": id.clone(), "version": expected_version };
                let deleted = audiences.delete_one(filter).session(&mut *session).await?;
                if deleted.deleted_count == 0 {
                    let known = audiences.find_one(doc! { "_id": id }).session(&mut *session).await?.is_some();
                    return Err(refusal(known).into());
                }
                logs.insert_one(audit).session(&mut *session).await?;
                TxResult::Ok(())
            })
        })
        .await?;
        // Up to a million members: outside the transaction (mongod bounds a transaction's
        // lifetime). The delete is committed; members a failure here leaves belong to no
        // audience (ids are never reused), so nobody reads them, and the caller is not told
        // the delete failed.
        if let Err(error) = self.discard_members(id, None).await {
            tracing::warn!(audience_id = %id, %error, "members of a deleted audience were left behind");
        }
        Ok(())
    }

    async fn audience_users(&self, id: &AudienceId) -> Result<AudienceUsers, StoreError> {
        self.ready().await?;
        // `events.audience` is the BSON of the target's JSON: its ids are strings.
        let named = Bson::Array(vec![Bson::String(id.to_string()), id_bson(id.as_str())]);
        let events_filter = doc! { "$or": [
            { "audience.include": { "$in": named.clone() } },
            { "audience.exclude": { "$in": named } },
        ] };
        let cursor = self
            .events
            .find(events_filter)
            .projection(doc! { "_id": 1 })
            .sort(doc! { "_id": 1 })
            .await
            .map_err(map_error)?;
        let events = ids_at::<EventId>(&collect(cursor).await?, "_id", "event")?;
        let cursor = self
            .audiences
            .find(doc! { "references": id_bson(id.as_str()) })
            .projection(doc! { "_id": 1 })
            .sort(doc! { "_id": 1 })
            .await
            .map_err(map_error)?;
        let audiences = ids_at::<AudienceId>(&collect(cursor).await?, "_id", WHAT)?;
        Ok(AudienceUsers { events, audiences })
    }

    async fn stage_members(
        &self,
        audience_id: &AudienceId,
        generation: &str,
        user_ids: &[UserId],
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.ready().await?;
        if user_ids.is_empty() {
            return Ok(0);
        }
        let members = user_ids
            .iter()
            .map(|user_id| member_document(audience_id, generation, user_id, at))
            .collect::<Result<Vec<_>, _>>()?;
        // Unordered: every id is tried, and the `_id` index turns each one already staged (or
        // repeated in the batch) into a duplicate-key write error that is skipped.
        match self.members.insert_many(members).ordered(false).await {
            Ok(inserted) => Ok(inserted.inserted_ids.len() as u64),
            Err(error) => inserted_despite_duplicates(error, user_ids.len()),
        }
    }

    async fn discard_members(&self, audience_id: &AudienceId, keep: Option<&str>) -> Result<u64, StoreError> {
        self.ready().await?;
        let mut filter = doc! { "audienceId": id_bson(audience_id.as_str()) };
        if let Some(keep) = keep {
            filter.insert("generation", doc! { "$ne": keep });
        }
        let deleted = self.members.delete_many(filter).await.map_err(map_error)?;
        Ok(deleted.deleted_count)
    }

    async fn discard_generation(&self, audience_id: &AudienceId, generation: &str) -> Result<u64, StoreError> {
        self.ready().await?;
        let filter = doc! { "audienceId": id_bson(audience_id.as_str()), "generation": generation };
        let deleted = self.members.delete_many(filter).await.map_err(map_error)?;
        Ok(deleted.deleted_count)
    }

    async fn add_member(
        &self,
        audience_id: &AudienceId,
        generation: &str,
        user_id: &UserId,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        self.ready().await?;
        let audit = audit_document(audit)?;
        let (current, member) =
            (at_generation(audience_id, generation), member_filter(audience_id, generation, user_id));
        let added = member_document(audience_id, generation, user_id, at)?;
        let added = in_transaction(&self.client, |session| {
            let (audiences, members, logs) = (self.audiences.clone(), self.members.clone(), self.audit.clone());
            let (current, member, added, audit) = (current.clone(), member.clone(), added.clone(), audit.clone());
            Box::pin(async move {
                require_generation(&audiences, &mut *session, &current).await?;
                // Looked up first: a duplicate-key write error would abort the transaction.
                if members.find_one(member).session(&mut *session).await?.is_some() {
                    return Ok(false);
                }
                members.insert_one(added).session(&mut *session).await.map_err(tx_error(Conflict::Duplicate))?;
                count_member((&audiences, &logs), &mut *session, current, 1, audit).await?;
                TxResult::Ok(true)
            })
        })
        .await;
        match added {
            // A concurrent add of the same member committed first (and counted it).
            Err(StoreError::Conflict(Conflict::Duplicate)) => Ok(false),
            other => other,
        }
    }

    async fn remove_member(
        &self,
        audience_id: &AudienceId,
        generation: &str,
        user_id: &UserId,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        self.ready().await?;
        let audit = audit_document(audit)?;
        let (current, member) =
            (at_generation(audience_id, generation), member_filter(audience_id, generation, user_id));
        in_transaction(&self.client, |session| {
            let (audiences, members, logs) = (self.audiences.clone(), self.members.clone(), self.audit.clone());
            let (current, member, audit) = (current.clone(), member.clone(), audit.clone());
            Box::pin(async move {
                require_generation(&audiences, &mut *session, &current).await?;
                if members.delete_one(member).session(&mut *session).await?.deleted_count == 0 {
                    return Ok(false);
                }
                count_member((&audiences, &logs), &mut *session, current, -1, audit).await?;
                TxResult::Ok(true)
            })
        })
        .await
    }

    async fn members_after(
        &self,
        audience_id: &AudienceId,
        generation: &str,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<UserId>, StoreError> {
        self.ready().await?;
        let mut filter = doc! { "audienceId": id_bson(audience_id.as_str()), "generation": generation };
        if let Some(after) = after {
            filter.insert("userId", doc! { "$gt": after.as_str() });
        }
        let cursor = self
            .members
            .find(filter)
            .projection(doc! { "_id": 0, "userId": 1 })
            .sort(doc! { "userId": 1 })
            .limit(i64::from(limit))
            .await
            .map_err(map_error)?;
        collect(cursor).await?.into_iter().map(member_user).collect()
    }

    async fn list_members(
        &self,
        audience_id: &AudienceId,
        generation: &str,
        page: PageRequest,
    ) -> Result<Page<UserId>, StoreError> {
        self.ready().await?;
        let filter = doc! { "audienceId": id_bson(audience_id.as_str()), "generation": generation };
        find_page(&self.members, filter, doc! { "userId": 1 }, page).await?.try_map(member_user)
    }

    async fn memberships(
        &self,
        user_id: &UserId,
        lists: &[(AudienceId, String)],
    ) -> Result<Vec<AudienceId>, StoreError> {
        self.ready().await?;
        if lists.is_empty() {
            return Ok(Vec::new());
        }
        // One point read of the `_id` index per list.
        let keys: Vec<String> = lists.iter().map(|(id, generation)| member_key(id, generation, user_id)).collect();
        let filter = doc! { "_id": { "$in": keys } };
        let cursor =
            self.members.find(filter).projection(doc! { "_id": 0, "audienceId": 1 }).await.map_err(map_error)?;
        let mut found = ids_at::<AudienceId>(&collect(cursor).await?, "audienceId", MEMBER)?;
        found.sort();
        found.dedup();
        Ok(found)
    }

    async fn sticky_events(&self, user_id: &UserId, events: &[EventId]) -> Result<Vec<EventId>, StoreError> {
        self.ready().await?;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = events.iter().map(|event_id| sticky_key(user_id, event_id)).collect();
        let filter = doc! { "_id": { "$in": keys } };
        let cursor = self.sticky.find(filter).projection(doc! { "_id": 0, "eventId": 1 }).await.map_err(map_error)?;
        let mut stuck = ids_at::<EventId>(&collect(cursor).await?, "eventId", STICKY)?;
        stuck.sort();
        Ok(stuck)
    }

    async fn stick(&self, user_id: &UserId, event_id: &EventId, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.ready().await?;
        let sticky = StickyDocument {
            key: sticky_key(user_id, event_id),
            user_id: user_id.clone(),
            event_id: event_id.to_string(),
            stuck_at: bson::DateTime::from_chrono(at),
        };
        match self.sticky.insert_one(to_document(&sticky, STICKY)?).await {
            Ok(_) => Ok(()),
            // Recorded before: the first record stands.
            Err(error) if is_duplicate_key(&error) => Ok(()),
            Err(error) => Err(map_error(error)),
        }
    }

    async fn record_estimate(&self, id: &AudienceId, estimate: &AudienceEstimate) -> Result<bool, StoreError> {
        self.ready().await?;
        let started_at = date(estimate.started_at);
        let job_id = estimate.job_id.as_str();
        // The stored estimate is of this run or of an older one (started earlier; on a tie,
        // the smaller jobId), or there is none: the SQLite store's rule, so both agree.
        let replaceable = doc! { "$or": [
            { "estimate": Bson::Null },
            { "estimate.jobId": job_id },
            { "estimate.startedAt": { "$lt": started_at.clone() } },
            { "estimate.startedAt": started_at, "estimate.jobId": { "$lt": job_id } },
        ] };
        let mut filter = doc! { "_id": id_bson(id.as_str()) };
        filter.extend(replaceable);
        let estimate = to_document(&EstimateDocument::from(estimate), WHAT)?;
        let written =
            self.audiences.update_one(filter, doc! { "$set": { "estimate": estimate } }).await.map_err(map_error)?;
        Ok(written.matched_count > 0)
    }
}

/// Why a compare-and-set on an audience matched nothing.
fn refusal(known: bool) -> StoreError {
    if known { StoreError::Conflict(Conflict::Version) } else { StoreError::NotFound }
}

impl MongoEventStore {
    /// Why a compare-and-set on audience `id` outside a transaction matched nothing.
    async fn refusal(&self, id: &Bson) -> StoreError {
        match self.audiences.find_one(doc! { "_id": id.clone() }).await {
            Ok(found) => refusal(found.is_some()),
            Err(error) => map_error(error),
        }
    }
}

/// The filter of an audience whose current generation is `generation`.
fn at_generation(audience_id: &AudienceId, generation: &str) -> Document {
    doc! { "_id": id_bson(audience_id.as_str()), "memberGeneration": generation }
}

/// Inside a transaction: refuses unless the audience's current generation is the one matched
/// by `current` ([`at_generation`]): `Conflict(Version)`, or `NotFound` without the audience.
async fn require_generation(
    audiences: &Collection<Document>,
    session: &mut ClientSession,
    current: &Document,
) -> TxResult<()> {
    if audiences.find_one(current.clone()).session(&mut *session).await?.is_some() {
        return Ok(());
    }
    let id = current.get("_id").cloned().unwrap_or(Bson::Null);
    let known = audiences.find_one(doc! { "_id": id }).session(&mut *session).await?.is_some();
    Err(refusal(known).into())
}

/// Inside a transaction, after a member was added (`delta` 1) or removed (-1): moves the
/// audience's `memberCount` with it and records the audit entry. `version` and `updatedAt`
/// stay (the port's rule: one member more is not an edit an `If-Match` should lose to).
async fn count_member(
    (audiences, logs): (&Collection<Document>, &Collection<Document>),
    session: &mut ClientSession,
    current: Document,
    delta: i64,
    audit: Document,
) -> TxResult<()> {
    let update = doc! { "$inc": { "memberCount": delta } };
    let written = audiences.update_one(current, update).session(&mut *session).await?;
    if written.matched_count == 0 {
        return Err(StoreError::Conflict(Conflict::Version).into());
    }
    logs.insert_one(audit).session(&mut *session).await?;
    Ok(())
}

/// A compare-and-set replace of an audience. `memberCount` is written only with a new
/// `memberGeneration` (an upload's switch): within a generation, [`AudienceStore::add_member`]
/// and `remove_member` move it without moving `version`, so a copy read before one of them
/// (an edit of the name) must not put the older count back.
#[derive(Clone)]
struct Replacement {
    id: Bson,
    expected_version: i64,
    generation: String,
    fields: Document,
}

impl Replacement {
    fn of(audience: &Audience, expected_version: i64) -> Result<Self, StoreError> {
        let mut fields = audience_document(audience)?;
        for key in NOT_REPLACED {
            fields.remove(key);
        }
        let id = id_bson(audience.id.as_str());
        Ok(Self { id, expected_version, generation: audience.member_generation.clone(), fields })
    }

    /// Writes the replacement if the stored version is the expected one; `false` otherwise.
    /// Two conditional updates, of which at most one matches: the same generation (count
    /// kept), or another one (count written).
    async fn apply(
        &self,
        audiences: &Collection<Document>,
        mut session: Option<&mut ClientSession>,
    ) -> Result<bool, mongodb::error::Error> {
        let mut kept_count = self.fields.clone();
        kept_count.remove("memberCount");
        let attempts = [
            (doc! { "$eq": self.generation.as_str() }, kept_count),
            (doc! { "$ne": self.generation.as_str() }, self.fields.clone()),
        ];
        for (generation, fields) in attempts {
            let filter =
                doc! { "_id": self.id.clone(), "version": self.expected_version, "memberGeneration": generation };
            let update = audiences.update_one(filter, doc! { "$set": fields });
            let written = match session.as_deref_mut() {
                Some(session) => update.session(session).await?,
                None => update.await?,
            };
            if written.matched_count > 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_member_key_names_one_member_whatever_the_colons() {
        let audience = AudienceId::generate();
        let user = |id: &str| UserId::parse(id).unwrap();
        let split_early = member_key(&audience, "g", &user("a:b"));
        let split_late = member_key(&audience, "g:a", &user("b"));
        assert_ne!(split_early, split_late);
        assert_eq!(split_early, format!("{audience}:g:a:b"));
        assert_eq!(split_late, format!("{audience}:g%3Aa:b"));
        assert_ne!(member_key(&audience, "g%3Aa", &user("b")), split_late, "an escape is escaped too");
    }
}
