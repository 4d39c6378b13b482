//! `event.db`: the SQLite adapter of [`LedgerStore`], the built-in wallet ledger (`reward_ledger`,
//! created with the claims schema): one row per grant key, revokes as tombstones.

use async_trait::async_trait;
use bestow_events_domain::ports::ledger::{LedgerEntry, LedgerGrant, LedgerStore};
use bestow_events_domain::reward::{RewardType, parse_details};
use bestow_kernel::store::StoreError;
use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::claims::corrupt;
use crate::database::{from_text, map_error, to_text};
use crate::event_db::SqliteEventStore;

#[async_trait]
impl LedgerStore for SqliteEventStore {
    async fn record_grant(&self, entry: &LedgerEntry) -> Result<LedgerGrant, StoreError> {
        let entry = entry.clone();
        self.db
            .write(move |connection| {
                let details = serde_json::to_string(&entry.details).map_err(corrupt)?;
                let inserted = connection.prepare_cached("INSERT INTO reward_ledger (grantKey, userId, requestId, eventId, rewardId, rewardName, details,
                             quantity, grantedAt, rewardType)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (grantKey) DO NOTHING").map_err(map_error)?.execute(

                        params![
                            entry.grant_key,
                            entry.user_id,
                            entry.request_id,
                            entry.event_id,
                            entry.reward_id,
                            entry.reward_name,
                            details,
                            entry.quantity,
                            to_text(entry.granted_at),
                            entry.details.reward_type().as_str(),
                        ],
                    )
                    .map_err(map_error)?;
                if inserted == 1 {
                    return Ok(LedgerGrant::Granted);
                }
                let revoked: Option<String> = connection.prepare_cached("SELECT revokedAt FROM reward_ledger WHERE grantKey = ?1").map_err(map_error)?.query_row(
 [&entry.grant_key], |row| {
                        row.get(0)
                    })
                    .map_err(map_error)?;
                Ok(if revoked.is_some() { LedgerGrant::Revoked } else { LedgerGrant::AlreadyGranted })
            })
            .await
    }

    async fn record_revoke(&self, grant_key: &str, user_id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let (grant_key, user_id) = (grant_key.to_owned(), user_id.to_owned());
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

    async fn entries(&self, user_id: &str) -> Result<Vec<LedgerEntry>, StoreError> {
        let user_id = user_id.to_owned();
        self.db
            .read(move |connection| {
                let mut statement = connection
                    .prepare_cached(
                        "SELECT grantKey, requestId, eventId, rewardId, rewardName, details, quantity, grantedAt, rewardType
                         FROM reward_ledger WHERE userId = ?1 AND revokedAt IS NULL AND grantedAt IS NOT NULL
                         ORDER BY grantedAt",
                    )
                    .map_err(map_error)?;
                let rows = statement
                    .query_map([&user_id], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, String>(4)?,
                            row.get::<_, String>(5)?,
                            row.get::<_, i64>(6)?,
                            row.get::<_, String>(7)?,
                            row.get::<_, String>(8)?,
                        ))
                    })
                    .map_err(map_error)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(map_error)?;
                rows.into_iter()
                    .map(|(grant_key, request_id, event_id, reward_id, reward_name, details, quantity, granted_at, kind)| {
                        let reward_type = kind.parse::<RewardType>().map_err(corrupt)?;
                        let details = serde_json::from_str(&details).map_err(corrupt)?;
                        let details = parse_details(reward_type, &details, "").map_err(|_| corrupt("bad reward details"))?;
                        Ok(LedgerEntry {
                            grant_key,
                            request_id,
                            user_id: user_id.clone(),
                            event_id,
                            reward_id,
                            reward_name,
                            details,
                            quantity,
                            granted_at: from_text(&granted_at).map_err(map_error)?,
                        })
                    })
                    .collect()
            })
            .await
    }
}
