//! `event.db`: the SQLite adapter of [`ClaimStore`] (its schema also holds the ledger's table).
//!
//! A request is one row of `user_reward_requests`: the fields queries need as columns (with the
//! seed's names), the whole document as JSON. The claim slot is a partial unique index, so
//! "one success per player and event" is decided by the database. Stock changes run in the
//! same transaction as the request's compare-and-set.

use async_trait::async_trait;
use bestow_events_domain::ports::claims::{ClaimFilter, ClaimStats, ClaimStore, Inserted, StockChange};
use bestow_events_domain::saga::{ClaimRequest, ClaimStatus, FailureCode, Lease, Transition};
use bestow_events_domain::stats::{FailureCount, MinuteCount, StatusCount};
use bestow_kernel::audit::AuditEntry;
use bestow_kernel::ids::{EventId, RequestId};
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::{Conflict, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::audit::insert_audit;
use crate::columns::NamedColumns;
use crate::database::{from_text, map_error, to_text};
use crate::event_db::SqliteEventStore;
use crate::filters::{Filters, count};

/// Statuses the saga still works on, as an SQL list.
fn non_final_list() -> String {
    status_list(|s| !s.is_final())
}

/// The statuses `keep` selects, as an SQL list.
fn status_list(keep: impl Fn(ClaimStatus) -> bool) -> String {
    ClaimStatus::ALL.iter().filter(|s| keep(**s)).map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ")
}

pub(crate) fn corrupt(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("unreadable claim document: {error}"))
}

fn document_of(request: &ClaimRequest) -> Result<String, StoreError> {
    serde_json::to_string(request).map_err(corrupt)
}

fn select_request(connection: &Connection, request_id: &RequestId) -> Result<Option<ClaimRequest>, StoreError> {
    let document: Option<String> = connection
        .prepare_cached("SELECT document FROM user_reward_requests WHERE requestId = ?1")
        .map_err(map_error)?
        .query_row([request_id.to_string()], |row| row.get("document"))
        .optional()
        .map_err(map_error)?;
    document.map(|text| serde_json::from_str(&text).map_err(corrupt)).transpose()
}

/// Applies stock changes; a reservation that finds too little stock fails the whole commit.
fn apply_stock(tx: &Transaction<'_>, event_id: &EventId, changes: &[StockChange]) -> Result<(), StoreError> {
    for change in changes {
        let changed = if change.delta < 0 {
            tx.prepare_cached(
                "UPDATE event_rewards SET remainingStock = remainingStock - ?3
                 WHERE eventId = ?1 AND rewardId = ?2 AND remainingStock >= ?3",
            )
            .map_err(map_error)?
            .execute(params![event_id.as_str(), change.reward_id, -change.delta])
        } else {
            tx.prepare_cached(
                "UPDATE event_rewards SET remainingStock = remainingStock + ?3
                 WHERE eventId = ?1 AND rewardId = ?2 AND remainingStock + ?3 <= totalStock",
            )
            .map_err(map_error)?
            .execute(params![event_id.as_str(), change.reward_id, change.delta])
        }
        .map_err(map_error)?;
        if changed == 0 {
            return Err(if change.delta < 0 {
                StoreError::Conflict(Conflict::Stock)
            } else {
                // Returning more than was taken would break the stock invariant: refuse loudly.
                StoreError::Unavailable(format!("stock return of {} exceeds totalStock", change.reward_id))
            });
        }
    }
    Ok(())
}

fn insert_row(connection: &Connection, request: &ClaimRequest) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO user_reward_requests (_id, requestId, userId, eventId, status, currentSagaStep, claimSlot,
                 leaseOwner, leaseExpiresAt, nextAttemptAt, createdAt, updatedAt, version, document, failureReason,
                 failureCode)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )
        .map_err(map_error)?
        .execute(params![
            request.id,
            request.request_id.to_string(),
            request.user_id.as_str(),
            request.event_id.as_str(),
            request.status.as_str(),
            request.current_saga_step.as_str(),
            request.claim_slot,
            request.lease_owner,
            request.lease_expires_at.map(to_text),
            request.next_attempt_at.map(to_text),
            to_text(request.created_at),
            to_text(request.updated_at),
            request.version,
            document_of(request)?,
            request.failure_reason,
            request.failure_code.map(FailureCode::as_str),
        ])
        .map_err(map_error)?;
    Ok(())
}

#[async_trait]
impl ClaimStore for SqliteEventStore {
    async fn insert_request(&self, request: &ClaimRequest, stock: &[StockChange]) -> Result<Inserted, StoreError> {
        let (request, stock) = (request.clone(), stock.to_vec());
        self.db
            .transaction(move |tx| {
                match insert_row(tx, &request) {
                    Ok(()) => {}
                    Err(StoreError::Conflict(_)) => {
                        // Either the request id (a replay) or the claim slot is taken.
                        return match select_request(tx, &request.request_id)? {
                            Some(stored) => Ok(Inserted::Existing(Box::new(stored))),
                            None => Err(StoreError::Conflict(Conflict::ClaimSlot)),
                        };
                    }
                    Err(other) => return Err(other),
                }
                apply_stock(tx, &request.event_id, &stock)?;
                Ok(Inserted::Created)
            })
            .await
    }

    async fn request(&self, request_id: &RequestId) -> Result<Option<ClaimRequest>, StoreError> {
        let request_id = *request_id;
        self.db.read(move |c| select_request(c, &request_id)).await
    }

    async fn list_requests(&self, filter: &ClaimFilter, page: PageRequest) -> Result<Page<ClaimRequest>, StoreError> {
        let mut filters = Filters::default();
        if let Some(user) = &filter.user_id {
            filters.add("userId = ?", user.to_string());
        }
        if let Some(event) = &filter.event_id {
            filters.add("eventId = ?", event.to_string());
        }
        if let Some(status) = filter.status {
            filters.add("status = ?", status.as_str().to_owned());
        }
        if let Some(from) = filter.from {
            filters.add("createdAt >= ?", to_text(from));
        }
        if let Some(to) = filter.to {
            filters.add("createdAt < ?", to_text(to));
        }
        self.db
            .read(move |connection| {
                let table = "user_reward_requests";
                let sql = filters.page_sql("document", table, "createdAt DESC, _id DESC");
                let documents =
                    filters.select_page(connection, table, &sql, page, |row| row.get::<_, String>("document"))?;
                documents.try_map(|text| serde_json::from_str::<ClaimRequest>(&text).map_err(corrupt))
            })
            .await
    }

    async fn acquire_lease(
        &self,
        request_id: &RequestId,
        lease: Lease<'_>,
    ) -> Result<Option<ClaimRequest>, StoreError> {
        let (request_id, owner, from, until) = (*request_id, lease.owner.to_owned(), lease.from, lease.until);
        self.db
            .transaction(move |tx| {
                let lease = Lease { owner: &owner, from, until };
                let Some(mut request) = select_request(tx, &request_id)? else { return Ok(None) };
                if !request.can_lease(&lease) {
                    return Ok(None);
                }
                let expected_version = request.version;
                if let Some(previous) = &request.lease_owner {
                    tracing::warn!(%request_id, previous, "taking over a claim whose lease expired");
                }
                request.take_lease(&lease);
                update_row(tx, expected_version, &request)?;
                Ok(Some(request))
            })
            .await
    }

    async fn commit(&self, from: &ClaimRequest, to: &Transition, audit: Option<&AuditEntry>) -> Result<(), StoreError> {
        let (expected, next, stock, audit) = (from.clone(), to.next.clone(), to.stock.clone(), audit.cloned());
        self.db
            .transaction(move |tx| {
                let stored: Option<(i64, String, Option<String>)> = tx
                    .prepare_cached("SELECT version, status, leaseOwner FROM user_reward_requests WHERE requestId = ?1")
                    .map_err(map_error)?
                    .query_row([expected.request_id.to_string()], |row| {
                        Ok((row.get("version")?, row.get("status")?, row.get("leaseOwner")?))
                    })
                    .optional()
                    .map_err(map_error)?;
                let unchanged = stored.as_ref().is_some_and(|(version, status, lease)| {
                    *version == expected.version && status == expected.status.as_str() && *lease == expected.lease_owner
                });
                if !unchanged {
                    return Err(StoreError::Conflict(Conflict::Version));
                }
                // The row first: a taken claim slot is reported before a lack of stock.
                update_row(tx, expected.version, &next)?;
                apply_stock(tx, &next.event_id, &stock)?;
                if let Some(entry) = &audit {
                    insert_audit(tx, entry)?;
                }
                Ok(())
            })
            .await
    }

    async fn due_requests(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<RequestId>, StoreError> {
        let sql = format!(
            "SELECT requestId FROM user_reward_requests
             WHERE status IN ({}) AND (leaseExpiresAt IS NULL OR leaseExpiresAt <= ?1)
               AND (nextAttemptAt IS NULL OR nextAttemptAt <= ?1)
             ORDER BY updatedAt LIMIT ?2",
            non_final_list()
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .read(move |connection| {
                let mut statement = connection.prepare_cached(&sql).map_err(map_error)?;
                statement
                    .query_map(params![to_text(now), limit], |row| row.parsed("requestId"))
                    .map_err(map_error)?
                    .collect::<rusqlite::Result<Vec<RequestId>>>()
                    .map_err(map_error)
            })
            .await
    }

    async fn count_by_status(&self, status: ClaimStatus) -> Result<u64, StoreError> {
        self.db
            .read(move |connection| {
                let mut filters = Filters::default();
                filters.add("status = ?", status.as_str().to_owned());
                count(connection, "user_reward_requests", &filters)
            })
            .await
    }

    async fn event_claim_stats(&self, event_id: &EventId, since: DateTime<Utc>) -> Result<ClaimStats, StoreError> {
        let (event_id, since) = (event_id.to_string(), to_text(since));
        // Each query reads one index only: (eventId, status, failureCode, failureReason) for the
        // first and the last, (eventId, createdAt) for the minutes. A minute is the first 16
        // characters of the fixed-width UTC timestamp text.
        let failures = format!(
            "SELECT status, failureCode, failureReason, COUNT(*) AS claims FROM user_reward_requests
             WHERE eventId = ?1 AND status IN ({}) GROUP BY status, failureCode, failureReason",
            status_list(ClaimStatus::is_failure)
        );
        self.db
            .read(move |connection| {
                // One read transaction: the three counts see the same claims.
                let tx = connection.unchecked_transaction().map_err(map_error)?;
                let statuses = tx
                    .prepare_cached(
                        "SELECT status, COUNT(*) AS claims FROM user_reward_requests WHERE eventId = ?1 GROUP BY status",
                    )
                    .map_err(map_error)?
                    .query_map([&event_id], |row| {
                        Ok(StatusCount { status: status_of(&row.get::<_, String>("status")?)?, count: count_of(row.get("claims")?) })
                    })
                    .map_err(map_error)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(map_error)?;
                let minutes = tx
                    .prepare_cached(
                        "SELECT substr(createdAt, 1, 16) AS minute, COUNT(*) AS claims FROM user_reward_requests
                         WHERE eventId = ?1 AND createdAt >= ?2 GROUP BY 1",
                    )
                    .map_err(map_error)?
                    .query_map(params![event_id, since], |row| {
                        let minute = from_text(&format!("{}:00Z", row.get::<_, String>("minute")?))?;
                        Ok(MinuteCount { minute, count: count_of(row.get("claims")?) })
                    })
                    .map_err(map_error)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(map_error)?;
                let failures = tx
                    .prepare_cached(&failures)
                    .map_err(map_error)?
                    .query_map([&event_id], |row| {
                        let status = status_of(&row.get::<_, String>("status")?)?;
                        let code = row.get::<_, Option<String>>("failureCode")?.as_deref().map(code_of).transpose()?;
                        let (reason, count) = (row.get("failureReason")?, count_of(row.get("claims")?));
                        Ok(FailureCount { status, code, reason, count })
                    })
                    .map_err(map_error)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(map_error)?;
                tx.finish().map_err(map_error)?;
                Ok(ClaimStats { statuses, minutes, failures })
            })
            .await
    }
}

/// Releases the lease of every claim under way in the `event.db` file at `path`, in one
/// transaction, and returns how many it released: for a copy restored into a new data dir,
/// whose leases name workers of another server that will never renew nor release them. The
/// recovery sweeper of a server started on the file then resumes those claims at its first
/// sweep instead of when the leases would have run out; a retry scheduled for later
/// (`nextAttemptAt`) is kept. Each claim is written as a driver writes it: its document and
/// its columns agree, one version on.
///
/// The file is opened as it is, without migrations (it carries its own schema version, and the
/// server migrates it when it opens it) and without creating it: a wrong path fails. Nothing
/// else may be using the file.
pub fn release_leases(path: &std::path::Path) -> Result<u64, StoreError> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut connection = Connection::open_with_flags(path, flags).map_err(map_error)?;
    connection.busy_timeout(std::time::Duration::from_secs(5)).map_err(map_error)?;
    let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(map_error)?;
    let sql = format!(
        "SELECT document FROM user_reward_requests
         WHERE status IN ({}) AND (leaseOwner IS NOT NULL OR leaseExpiresAt IS NOT NULL)",
        non_final_list()
    );
    let leased = tx
        .prepare(&sql)
        .map_err(map_error)?
        .query_map([], |row| row.get::<_, String>("document"))
        .map_err(map_error)?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(map_error)?;
    for document in &leased {
        let mut request: ClaimRequest = serde_json::from_str(document).map_err(corrupt)?;
        let expected_version = request.version;
        request.lease_owner = None;
        request.lease_expires_at = None;
        request.version += 1;
        update_row(&tx, expected_version, &request)?;
    }
    tx.commit().map_err(map_error)?;
    Ok(u64::try_from(leased.len()).unwrap_or(u64::MAX))
}

/// A stored status, read back.
fn status_of(text: &str) -> rusqlite::Result<ClaimStatus> {
    text.parse().map_err(|error: String| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, error.into())
    })
}

fn code_of(text: &str) -> rusqlite::Result<FailureCode> {
    text.parse().map_err(|error: String| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, error.into())
    })
}

/// A `COUNT(*)`, which is never negative.
fn count_of(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}

/// Writes `request` over the row whose version is `expected_version`.
fn update_row(tx: &Transaction<'_>, expected_version: i64, request: &ClaimRequest) -> Result<(), StoreError> {
    let changed = tx
        .prepare_cached(
            "UPDATE user_reward_requests SET status = ?3, currentSagaStep = ?4, claimSlot = ?5, leaseOwner = ?6,
                 leaseExpiresAt = ?7, nextAttemptAt = ?8, updatedAt = ?9, version = ?10, document = ?11,
                 failureReason = ?12, failureCode = ?13
             WHERE requestId = ?1 AND version = ?2",
        )
        .map_err(map_error)?
        .execute(params![
            request.request_id.to_string(),
            expected_version,
            request.status.as_str(),
            request.current_saga_step.as_str(),
            request.claim_slot,
            request.lease_owner,
            request.lease_expires_at.map(to_text),
            request.next_attempt_at.map(to_text),
            to_text(request.updated_at),
            request.version,
            document_of(request)?,
            request.failure_reason,
            request.failure_code.map(FailureCode::as_str),
        ])
        .map_err(|error| match map_error(error) {
            // The only unique column an update can collide on is the claim slot.
            StoreError::Conflict(_) => StoreError::Conflict(Conflict::ClaimSlot),
            other => other,
        })?;
    if changed == 0 {
        return Err(StoreError::Conflict(Conflict::Version));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeDelta;

    use super::*;

    fn claim(now: DateTime<Utc>) -> ClaimRequest {
        let event = bestow_store_contract::events::event(None);
        let user = bestow_kernel::ids::UserId::parse("u1").unwrap();
        ClaimRequest::new(bestow_kernel::ids::new_object_id(), RequestId::generate(), user, &event, now)
    }

    #[tokio::test]
    async fn releasing_leases_frees_claims_under_way_and_keeps_retry_times() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("event.db");
        let store = SqliteEventStore::open(&path).unwrap();
        let now = bestow_kernel::time::now();
        let mut leased = claim(now);
        (leased.lease_owner, leased.lease_expires_at) =
            (Some("dead-worker".into()), Some(now + TimeDelta::seconds(15)));
        let mut waiting = claim(now);
        waiting.next_attempt_at = Some(now + TimeDelta::seconds(10));
        let mut done = claim(now);
        done.status = ClaimStatus::SuccessAllGranted;
        for request in [&leased, &waiting, &done] {
            store.insert_request(request, &[]).await.unwrap();
        }
        assert!(store.due_requests(now, 10).await.unwrap().is_empty(), "nothing is due before");
        drop(store);

        assert_eq!(release_leases(&path).unwrap(), 1);
        assert_eq!(release_leases(&path).unwrap(), 0, "a second run finds no lease");
        assert!(release_leases(&dir.path().join("missing.db")).is_err(), "a wrong path fails");
        assert!(!dir.path().join("missing.db").exists(), "and creates nothing");

        let store = SqliteEventStore::open(&path).unwrap();
        assert_eq!(store.due_requests(now, 10).await.unwrap(), vec![leased.request_id]);
        let released = store.request(&leased.request_id).await.unwrap().unwrap();
        let expected =
            ClaimRequest { lease_owner: None, lease_expires_at: None, version: leased.version + 1, ..leased };
        assert_eq!(released, expected, "the document: no lease, one version on");
        let leased_id = expected.request_id.to_string();
        let columns: (Option<String>, Option<String>, i64) = store
            .db
            .read(move |c| {
                c.query_row(
                    "SELECT leaseOwner, leaseExpiresAt, version FROM user_reward_requests WHERE requestId = ?1",
                    [leased_id],
                    |row| Ok((row.get("leaseOwner")?, row.get("leaseExpiresAt")?, row.get("version")?)),
                )
                .map_err(map_error)
            })
            .await
            .unwrap();
        assert_eq!(columns, (None, None, expected.version), "the columns agree with the document");
        assert_eq!(store.request(&waiting.request_id).await.unwrap().unwrap(), waiting, "a scheduled retry is kept");
        assert_eq!(store.request(&done.request_id).await.unwrap().unwrap(), done);
    }
}
