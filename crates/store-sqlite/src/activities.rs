//! `event.db`: the SQLite adapter of [`ActivityStore`], implemented by [`SqliteEventStore`] on
//! the same database as the catalog (its schema also holds the service keys' table).
//!
//! `activities` is append-only: rows are inserted, never updated or deleted. Uniqueness of
//! `activityId` lives in a unique index, and a re-sent activity is skipped by
//! `ON CONFLICT DO NOTHING`, so idempotency costs no look-up. The index on
//! (`userId`, `type`, `occurredAt`) serves every fact query as one range scan per type; it
//! also carries `attributes`, so that the scan never visits the table: a player's rows are
//! scattered over the table in arrival order, and fetching 10,000 of them one page at a time
//! costs about five times the scan itself.

use async_trait::async_trait;
use bestow_core::store::StoreError;
use bestow_events::conditions::activities::{ActivityStore, NewActivity};
use bestow_events::domain::evaluate::{ActivityFact, FactQuery};
use rusqlite::{Connection, Row, params};
use serde_json::{Map, Value};

use crate::database::{from_text, map_error, to_text};
use crate::event_db::SqliteEventStore;

pub(crate) fn corrupt(index: usize, reason: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        index,
        rusqlite::types::Type::Text,
        Box::<dyn std::error::Error + Send + Sync>::from(reason.to_string()),
    )
}

/// `occurredAt, attributes` → a fact of `activity_type`. Attributes are stored as NULL when
/// empty, so most rows (logins) cost no JSON parse.
fn fact_from_row(row: &Row<'_>, activity_type: &str) -> rusqlite::Result<ActivityFact> {
    let attributes = match row.get_ref(1)?.as_str_or_null()? {
        None => Map::new(),
        Some(text) => serde_json::from_str(text).map_err(|e| corrupt(1, e))?,
    };
    let occurred_at = from_text(row.get_ref(0)?.as_str()?)?;
    Ok(ActivityFact { activity_type: activity_type.to_owned(), occurred_at, attributes })
}

fn insert_activities(connection: &mut Connection, activities: &[NewActivity]) -> Result<u64, StoreError> {
    let tx = connection.transaction().map_err(map_error)?;
    let mut inserted = 0;
    {
        let mut statement = tx
            .prepare_cached(
                "INSERT INTO activities (_id, activityId, userId, type, occurredAt, attributes, receivedAt)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (activityId) DO NOTHING",
            )
            .map_err(map_error)?;
        for activity in activities {
            let attributes = (!activity.attributes.is_empty()).then(|| Value::Object(activity.attributes.clone()));
            inserted += statement
                .execute(params![
                    bestow_core::ids::new_object_id(),
                    activity.activity_id,
                    activity.user_id,
                    activity.activity_type.as_str(),
                    to_text(activity.occurred_at),
                    attributes.map(|value| value.to_string()),
                    to_text(activity.received_at),
                ])
                .map_err(map_error)?;
        }
    }
    tx.commit().map_err(map_error)?;
    Ok(u64::try_from(inserted).unwrap_or(u64::MAX))
}

/// The facts of one player and one type in `[?3, ?4)`: one range scan of the covering index.
const FACTS_OF_TYPE: &str = "SELECT occurredAt, attributes FROM activities
                             WHERE userId = ?1 AND type = ?2 AND occurredAt >= ?3 AND occurredAt < ?4";

/// The facts of one type.
fn select_facts_of_type(
    connection: &Connection,
    user_id: &str,
    activity_type: &str,
    query: &FactQuery,
) -> Result<Vec<ActivityFact>, StoreError> {
    let mut statement = connection.prepare_cached(FACTS_OF_TYPE).map_err(map_error)?;
    // Every stored timestamp is greater than the empty string: no lower bound.
    let from = query.from.map(to_text).unwrap_or_default();
    statement
        .query_map(params![user_id, activity_type, from, to_text(query.to)], |row| fact_from_row(row, activity_type))
        .map_err(map_error)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(map_error)
}

#[async_trait]
impl ActivityStore for SqliteEventStore {
    async fn insert_batch(&self, activities: Vec<NewActivity>) -> Result<u64, StoreError> {
        self.db.write(move |connection| insert_activities(connection, &activities)).await
    }

    /// One scan per type, run side by side on the reader pool: a long history is mostly
    /// decoding work, which then spreads over the cores instead of queueing on one.
    async fn facts(&self, user_id: &str, query: &FactQuery) -> Result<Vec<ActivityFact>, StoreError> {
        let mut scans = tokio::task::JoinSet::new();
        for activity_type in &query.types {
            let (db, user_id, activity_type, query) =
                (self.db.clone(), user_id.to_owned(), activity_type.clone(), query.clone());
            scans.spawn(async move {
                db.read(move |connection| select_facts_of_type(connection, &user_id, &activity_type, &query)).await
            });
        }
        let mut facts = Vec::new();
        while let Some(scan) = scans.join_next().await {
            facts.extend(scan.map_err(|e| StoreError::Unavailable(format!("fact scan failed: {e}")))??);
        }
        Ok(facts)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteEventStore) {
        let dir = tempfile::TempDir::new().unwrap();
        let store = SqliteEventStore::open(&dir.path().join("event.db")).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn fact_queries_use_the_user_type_time_index() {
        let (_dir, store) = store();
        let plan: Vec<String> = store
            .db
            .read(|connection| {
                let mut statement =
                    connection.prepare(&format!("EXPLAIN QUERY PLAN {FACTS_OF_TYPE}")).map_err(map_error)?;
                let rows = statement
                    .query_map(params!["u", "LOGIN", "", "z"], |row| row.get::<_, String>(3))
                    .map_err(map_error)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_error)
            })
            .await
            .unwrap();
        let plan = plan.join("\n");
        assert!(
            plan.contains(
                "USING COVERING INDEX activities_user_type_occurredAt (userId=? AND type=? AND occurredAt>? AND occurredAt<?)"
            ),
            "{plan}"
        );
    }
}
