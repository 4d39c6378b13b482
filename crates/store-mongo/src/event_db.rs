//! `event_db` on MongoDB: [`MongoEventStore`], one handle on the database that implements
//! every port of the events service (each in the file named after it: `events.rs`,
//! `claims.rs`, `ledger.rs`, `activities.rs`, `service_keys.rs`, `audiences.rs`), its
//! collections and their indexes.

use bson::{Document, doc};
use mongodb::options::IndexOptions;
use mongodb::{Client, Collection, Database, IndexModel};
use tokio::sync::OnceCell;

use bestow_kernel::store::StoreError;

use crate::audit::{AUDIT_LOGS, audit_indexes};
use crate::common::{create_indexes, error_code, index, map_error};

pub(crate) const EVENTS: &str = "events";
pub(crate) const USER_REWARD_REQUESTS: &str = "user_reward_requests";
pub(crate) const REWARD_LEDGER: &str = "reward_ledger";
pub(crate) const ACTIVITIES: &str = "activities";
pub(crate) const SERVICE_KEYS: &str = "service_keys";
pub(crate) const AUDIENCES: &str = "audiences";
pub(crate) const AUDIENCE_MEMBERS: &str = "audience_members";
pub(crate) const PLAYER_PROPERTIES: &str = "player_properties";
pub(crate) const AUDIENCE_STICKY: &str = "audience_sticky";
/// Default name of the event database.
pub const EVENT_DB: &str = "event_db";

/// The event store on MongoDB: events, claims, the ledger, activities, service keys, and
/// audiences with their members, player properties and sticky memberships.
#[derive(Clone)]
pub struct MongoEventStore {
    pub(crate) client: Client,
    pub(crate) db: Database,
    pub(crate) events: Collection<Document>,
    pub(crate) requests: Collection<Document>,
    pub(crate) ledger: Collection<Document>,
    pub(crate) activities: Collection<Document>,
    pub(crate) keys: Collection<Document>,
    pub(crate) audiences: Collection<Document>,
    pub(crate) members: Collection<Document>,
    pub(crate) player_properties: Collection<Document>,
    pub(crate) sticky: Collection<Document>,
    pub(crate) audit: Collection<Document>,
    indexes: std::sync::Arc<OnceCell<()>>,
}

impl std::fmt::Debug for MongoEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoEventStore").field("db", &self.db.name()).finish_non_exhaustive()
    }
}

impl MongoEventStore {
    /// A store on database `db_name` at `uri`. The connection is lazy: a server that is down
    /// now fails the first operations (`Unavailable`), not this call. Indexes are created now
    /// if the server answers, otherwise before the first operation that reaches it.
    pub async fn connect(uri: &str, db_name: &str) -> Result<Self, StoreError> {
        let client = crate::common::client(uri).await?;
        let db = client.database(db_name);
        let store = Self {
            events: db.collection(EVENTS),
            requests: db.collection(USER_REWARD_REQUESTS),
            ledger: db.collection(REWARD_LEDGER),
            activities: db.collection(ACTIVITIES),
            keys: db.collection(SERVICE_KEYS),
            audiences: db.collection(AUDIENCES),
            members: db.collection(AUDIENCE_MEMBERS),
            player_properties: db.collection(PLAYER_PROPERTIES),
            sticky: db.collection(AUDIENCE_STICKY),
            audit: db.collection(AUDIT_LOGS),
            client,
            db,
            indexes: std::sync::Arc::new(OnceCell::new()),
        };
        if let Err(error) = store.ready().await {
            tracing::warn!(%error, "event_db indexes not created yet; retrying on first use");
        }
        Ok(store)
    }

    /// Creates the indexes (once per store; creating them again is a no-op on the server as
    /// well), failing if the server refuses: what a restore runs after loading a dump.
    pub async fn create_indexes(&self) -> Result<(), StoreError> {
        self.ready().await
    }

    /// Creates the indexes once (idempotent on the server as well).
    pub(crate) async fn ready(&self) -> Result<(), StoreError> {
        self.indexes
            .get_or_try_init(|| async {
                create_indexes(
                    &self.db,
                    EVENTS,
                    vec![
                        index(doc! { "status": 1, "endDate": 1 }, "events_status_endDate", false),
                        index(doc! { "startDate": 1, "_id": 1 }, "events_startDate", false),
                        index(doc! { "createdAt": 1, "_id": 1 }, "events_createdAt", false),
                        // Recovery looks for stale stock holds on every sweep.
                        index(doc! { "stockHolds.heldAt": 1 }, "events_stockHolds_heldAt", false),
                    ],
                )
                .await?;
                create_indexes(&self.db, USER_REWARD_REQUESTS, request_indexes()).await?;
                create_indexes(
                    &self.db,
                    REWARD_LEDGER,
                    vec![
                        index(doc! { "grantKey": 1 }, "reward_ledger_grantKey", true),
                        index(doc! { "userId": 1, "grantedAt": 1 }, "reward_ledger_user", false),
                    ],
                )
                .await?;
                create_indexes(
                    &self.db,
                    ACTIVITIES,
                    vec![
                        index(doc! { "activityId": 1 }, "activities_activityId", true),
                        index(
                            doc! { "userId": 1, "type": 1, "occurredAt": 1 },
                            "activities_user_type_occurredAt",
                            false,
                        ),
                        // A player's history, newest first.
                        index(doc! { "userId": 1, "occurredAt": -1, "_id": -1 }, "activities_user_occurredAt", false),
                    ],
                )
                .await?;
                create_indexes(
                    &self.db,
                    SERVICE_KEYS,
                    vec![
                        index(doc! { "secretDigest": 1 }, "service_keys_secretDigest", true),
                        index(doc! { "createdAt": -1, "_id": -1 }, "service_keys_createdAt", false),
                    ],
                )
                .await?;
                create_audience_collections(&self.db).await?;
                create_indexes(&self.db, AUDIT_LOGS, audit_indexes()).await
            })
            .await
            .map(drop)
    }
}

/// The audience collections and their indexes. `player_properties` and `audience_sticky` need
/// none beyond `_id` (reads go by their `_id`), so they are created explicitly: a backup
/// requires every collection of the store, present before the first write.
async fn create_audience_collections(db: &Database) -> Result<(), StoreError> {
    create_indexes(
        db,
        AUDIENCES,
        vec![
            index(doc! { "createdAt": -1, "_id": -1 }, "audiences_createdAt", false),
            // Who names an audience in its rule (`AudienceStore::audience_users`).
            index(doc! { "references": 1 }, "audiences_references", false),
        ],
    )
    .await?;
    create_indexes(
        db,
        AUDIENCE_MEMBERS,
        // The listing order, and what a discard deletes by. Uniqueness is the `_id`'s (the
        // member's key), and a player's memberships are point reads of it.
        vec![index(doc! { "audienceId": 1, "generation": 1, "userId": 1 }, "audience_members_member", false)],
    )
    .await?;
    let existing = db.list_collection_names().await.map_err(map_error)?;
    for name in [PLAYER_PROPERTIES, AUDIENCE_STICKY] {
        if existing.iter().any(|known| known == name) {
            continue;
        }
        match db.create_collection(name).await {
            Ok(()) => {}
            // Created meanwhile by another store or a first write.
            Err(error) if error_code(&error) == Some(NAMESPACE_EXISTS) => {}
            Err(error) => return Err(map_error(error)),
        }
    }
    Ok(())
}

/// The server's answer to creating a collection that exists.
const NAMESPACE_EXISTS: i32 = 48;

/// Indexes of `user_reward_requests`: unique `requestId`, the partial unique claim slot, and
/// the orders lists and recovery read.
pub(crate) fn request_indexes() -> Vec<IndexModel> {
    let slot = IndexOptions::builder()
        .name("user_reward_requests_claimSlot".to_owned())
        .unique(true)
        .partial_filter_expression(doc! { "claimSlot": { "$type": "string" } })
        .build();
    vec![
        index(doc! { "requestId": 1 }, "user_reward_requests_requestId", true),
        IndexModel::builder().keys(doc! { "claimSlot": 1 }).options(slot).build(),
        index(doc! { "userId": 1, "createdAt": -1 }, "user_reward_requests_user", false),
        index(doc! { "eventId": 1, "createdAt": -1 }, "user_reward_requests_event", false),
        index(doc! { "status": 1, "createdAt": -1 }, "user_reward_requests_status", false),
        index(doc! { "status": 1, "updatedAt": 1 }, "user_reward_requests_due", false),
    ]
}
