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
//!
//! Staff read a player's activities newest first through (`userId`, `occurredAt`, `_id`), in
//! the page's order without sorting; filtered by type, through the fact index (named, see
//! [`recent_source`]), sorting only ties of `occurredAt`.

use async_trait::async_trait;
use bestow_events_domain::condition::ActivityType;
use bestow_events_domain::evaluate::{ActivityFact, FactQuery};
use bestow_events_domain::ports::activities::{Activity, ActivityStore, NewActivity};
use bestow_kernel::ids::UserId;
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::StoreError;
use rusqlite::{Connection, Row, params};
use serde_json::{Map, Value};

use crate::columns::NamedColumns;
use crate::database::{map_error, to_text};
use crate::event_db::SqliteEventStore;
use crate::filters::Filters;

/// The `attributes` column. Attributes are stored as NULL when empty, so most rows (logins)
/// cost no JSON parse.
fn attributes_of(row: &Row<'_>) -> rusqlite::Result<Map<String, Value>> {
    Ok(row.optional_json("attributes")?.unwrap_or_default())
}

/// `occurredAt, attributes` → a fact of `activity_type`.
fn fact_from_row(row: &Row<'_>, activity_type: &str) -> rusqlite::Result<ActivityFact> {
    Ok(ActivityFact {
        activity_type: activity_type.to_owned(),
        occurred_at: row.time("occurredAt")?,
        attributes: attributes_of(row)?,
    })
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
                    bestow_kernel::ids::new_object_id(),
                    activity.activity_id,
                    activity.user_id.as_str(),
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

/// The columns [`activity_from_row`] reads.
const ACTIVITY_COLUMNS: &str = "_id, activityId, userId, type, occurredAt, attributes, receivedAt";

fn activity_from_row(row: &Row<'_>) -> rusqlite::Result<Activity> {
    Ok(Activity {
        id: row.get("_id")?,
        activity_id: row.get("activityId")?,
        user_id: row.parsed("userId")?,
        activity_type: row.parsed("type")?,
        occurred_at: row.time("occurredAt")?,
        attributes: attributes_of(row)?,
        received_at: row.time("receivedAt")?,
    })
}

/// Where a player's activities are read (`FROM …`) and which (`WHERE …`).
///
/// With a type, the fact index is named: left to choose, the planner walks the player's whole
/// history in order (to sort nothing) and skips the other types row by row, which for a rare
/// type reads every activity of the player; the fact index reads only that type's, newest
/// first, and sorts nothing but ties of `occurredAt`.
fn recent_source(user_id: &UserId, activity_type: Option<&ActivityType>) -> (&'static str, Filters) {
    let mut filters = Filters::default();
    filters.add("userId = ?", user_id.to_string());
    let Some(activity_type) = activity_type else { return ("activities", filters) };
    filters.add("type = ?", activity_type.as_str().to_owned());
    ("activities INDEXED BY activities_user_type_occurredAt", filters)
}

/// The page of a player's activities, newest first; the page's bounds are the last parameters.
fn recent_sql(source: &str, filters: &Filters) -> String {
    filters.page_sql(ACTIVITY_COLUMNS, source, "occurredAt DESC, _id DESC")
}

#[async_trait]
impl ActivityStore for SqliteEventStore {
    async fn insert_batch(&self, activities: Vec<NewActivity>) -> Result<u64, StoreError> {
        self.db.write(move |connection| insert_activities(connection, &activities)).await
    }

    /// One scan per type, run side by side on the reader pool: a long history is mostly
    /// decoding work, which then spreads over the cores instead of queueing on one.
    async fn facts(&self, user_id: &UserId, query: &FactQuery) -> Result<Vec<ActivityFact>, StoreError> {
        let mut scans = tokio::task::JoinSet::new();
        for activity_type in &query.types {
            let (db, user_id, activity_type, query) =
                (self.db.clone(), user_id.clone(), activity_type.clone(), query.clone());
            scans.spawn(async move {
                db.read(move |connection| select_facts_of_type(connection, user_id.as_str(), &activity_type, &query))
                    .await
            });
        }
        let mut facts = Vec::new();
        while let Some(scan) = scans.join_next().await {
            facts.extend(scan.map_err(|e| StoreError::Unavailable(format!("fact scan failed: {e}")))??);
        }
        Ok(facts)
    }

    async fn recent(
        &self,
        user_id: &UserId,
        activity_type: Option<&ActivityType>,
        page: PageRequest,
    ) -> Result<Page<Activity>, StoreError> {
        let (source, filters) = recent_source(user_id, activity_type);
        self.db
            .read(move |connection| {
                filters.select_page(connection, source, &recent_sql(source, &filters), page, activity_from_row)
            })
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rusqlite::params_from_iter;

    use super::*;
    use crate::filters::page_values;

    fn store() -> (tempfile::TempDir, SqliteEventStore) {
        let dir = tempfile::TempDir::new().unwrap();
        let store = SqliteEventStore::open(&dir.path().join("event.db")).unwrap();
        (dir, store)
    }

    /// The plan of `sql` with `values` bound, one step a line.
    async fn plan(store: &SqliteEventStore, sql: String, values: Vec<rusqlite::types::Value>) -> String {
        let steps: Vec<String> = store
            .db
            .read(move |connection| {
                let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).map_err(map_error)?;
                let rows = statement
                    .query_map(params_from_iter(values.iter()), |row| row.get::<_, String>("detail"))
                    .map_err(map_error)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_error)
            })
            .await
            .unwrap();
        steps.join("\n")
    }

    #[tokio::test]
    async fn fact_queries_use_the_user_type_time_index() {
        let (_dir, store) = store();
        let values = ["u", "LOGIN", "", "z"].map(|text| rusqlite::types::Value::Text(text.to_owned()));
        let plan = plan(&store, FACTS_OF_TYPE.to_owned(), values.to_vec()).await;
        assert!(
            plan.contains(
                "USING COVERING INDEX activities_user_type_occurredAt (userId=? AND type=? AND occurredAt>? AND occurredAt<?)"
            ),
            "{plan}"
        );
    }

    #[tokio::test]
    async fn a_players_history_is_read_in_index_order() {
        let (_dir, store) = store();
        let page = PageRequest { page: 2, limit: 20 };
        let (source, filters) = recent_source(&UserId::parse("u").unwrap(), None);
        let newest_first = plan(&store, recent_sql(source, &filters), page_values(&filters.values, page)).await;
        assert!(newest_first.contains("USING INDEX activities_user_occurredAt (userId=?)"), "{newest_first}");
        assert!(!newest_first.contains("TEMP B-TREE"), "no sort: {newest_first}");

        let login: ActivityType = "LOGIN".parse().unwrap();
        let (source, filters) = recent_source(&UserId::parse("u").unwrap(), Some(&login));
        let of_a_type = plan(&store, recent_sql(source, &filters), page_values(&filters.values, page)).await;
        assert!(of_a_type.contains("activities_user_type_occurredAt (userId=? AND type=?)"), "{of_a_type}");
        assert!(!of_a_type.contains("USE TEMP B-TREE FOR ORDER BY"), "at most ties are sorted: {of_a_type}");
    }
}
