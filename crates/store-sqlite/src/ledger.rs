//! `event.db`: the SQLite adapter of [`LedgerStore`], the built-in wallet ledger (`reward_ledger`,
//! created with the claims schema): one row per grant key, revokes as tombstones.

use async_trait::async_trait;
use bestow_events_domain::ports::ledger::{LedgerEntry, LedgerGrant, LedgerStore};
use bestow_events_domain::reward::{RewardType, parse_details};
use bestow_kernel::ids::UserId;
use bestow_kernel::store::StoreError;
use chrono::{DateTime, Utc};
use rusqlite::{Row, params};

use crate::claims::corrupt;
use crate::columns::NamedColumns;
use crate::database::{map_error, to_text};
use crate::event_db::SqliteEventStore;

/// A granted row of `user_id`'s.
fn entry_from_row(row: &Row<'_>, user_id: &UserId) -> rusqlite::Result<LedgerEntry> {
    let reward_type = row.parsed::<RewardType>("rewardType")?;
    let details = parse_details(reward_type, &row.json("details")?, "")
        .map_err(|_| crate::columns::corrupt(row, "details", "bad reward details"))?;
    Ok(LedgerEntry {
        grant_key: row.get("grantKey")?,
        request_id: row.parsed("requestId")?,
        user_id: user_id.clone(),
        event_id: row.parsed("eventId")?,
        reward_id: row.get("rewardId")?,
        reward_name: row.get("rewardName")?,
        details,
        quantity: row.get("quantity")?,
        granted_at: row.time("grantedAt")?,
    })
}

#[async_trait]
impl LedgerStore for SqliteEventStore {
    async fn record_grant(&self, entry: &LedgerEntry) -> Result<LedgerGrant, StoreError> {
        let entry = entry.clone();
        self.db
            .write(move |connection| {
                let details = serde_json::to_string(&entry.details).map_err(corrupt)?;
                let inserted = connection
                    .prepare_cached(
                        "INSERT INTO reward_ledger (grantKey, userId, requestId, eventId, rewardId, rewardName, details,
                             quantity, grantedAt, rewardType)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (grantKey) DO NOTHING",
                    )
                    .map_err(map_error)?
                    .execute(params![
                        entry.grant_key,
                        entry.user_id.as_str(),
                        entry.request_id.to_string(),
                        entry.event_id.as_str(),
                        entry.reward_id,
                        entry.reward_name,
                        details,
                        entry.quantity,
                        to_text(entry.granted_at),
                        entry.details.reward_type().as_str(),
                    ])
                    .map_err(map_error)?;
                if inserted == 1 {
                    return Ok(LedgerGrant::Granted);
                }
                let revoked: Option<String> = connection
                    .prepare_cached("SELECT revokedAt FROM reward_ledger WHERE grantKey = ?1")
                    .map_err(map_error)?
                    .query_row([&entry.grant_key], |row| row.get("revokedAt"))
                    .map_err(map_error)?;
                Ok(if revoked.is_some() { LedgerGrant::Revoked } else { LedgerGrant::AlreadyGranted })
            })
            .await
    }

    async fn record_revoke(&self, grant_key: &str, user_id: &UserId, at: DateTime<Utc>) -> Result<(), StoreError> {
        let (grant_key, user_id) = (grant_key.to_owned(), user_id.to_string());
        self.db
            .write(move |connection| {
                // Insert a tombstone if the grant never arrived; otherwise mark it revoked once.
                connection
                    .prepare_cached(
                        "INSERT INTO reward_ledger (grantKey, userId, revokedAt) VALUES (?1, ?2, ?3)
                         ON CONFLICT (grantKey) DO UPDATE SET revokedAt = excluded.revokedAt WHERE revokedAt IS NULL",
                    )
                    .map_err(map_error)?
                    .execute(params![grant_key, user_id, to_text(at)])
                    .map(drop)
                    .map_err(map_error)
            })
            .await
    }

    async fn entries(&self, user_id: &UserId) -> Result<Vec<LedgerEntry>, StoreError> {
        let user_id = user_id.clone();
        self.db
            .read(move |connection| {
                let mut statement = connection
                    .prepare_cached(
                        "SELECT grantKey, requestId, eventId, rewardId, rewardName, details, quantity, grantedAt, rewardType
                         FROM reward_ledger WHERE userId = ?1 AND revokedAt IS NULL AND grantedAt IS NOT NULL
                         ORDER BY grantedAt",
                    )
                    .map_err(map_error)?;
                statement
                    .query_map([user_id.as_str()], |row| entry_from_row(row, &user_id))
                    .map_err(map_error)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(map_error)
            })
            .await
    }
}
