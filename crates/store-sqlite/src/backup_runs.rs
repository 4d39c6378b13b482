//! `backup_runs` in `event.db`: one row per backup that `bestow admin backup` completed,
//! written by that command into the live database it backed up, and read by the server for
//! its backup-age gauge (`bestow_backup_last_success_timestamp_seconds`).

use bestow_kernel::store::StoreError;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, params};

use crate::database::{from_text, map_error, to_text};
use crate::event_db::SqliteEventStore;
use crate::migrations::BACKUP_RUNS;

/// Records a completed backup in the `event.db` file at `path`, which a server may be using
/// (the write waits up to 5 s for its lock). The file is opened as it is, without migrations
/// and without creating it: a wrong path fails.
pub fn record_backup(
    path: &std::path::Path,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    location: &str,
    bytes: u64,
) -> Result<(), StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).map_err(map_error)?;
    connection.busy_timeout(std::time::Duration::from_secs(5)).map_err(map_error)?;
    // An older server's file may not have the table yet (the migration creates it if missing).
    connection.execute_batch(BACKUP_RUNS).map_err(map_error)?;
    connection
        .execute(
            "INSERT INTO backup_runs (startedAt, finishedAt, location, bytes) VALUES (?1, ?2, ?3, ?4)",
            params![to_text(started_at), to_text(finished_at), location, i64::try_from(bytes).unwrap_or(i64::MAX)],
        )
        .map_err(map_error)?;
    Ok(())
}

impl SqliteEventStore {
    /// When the newest backup recorded in this database finished, if one ever did.
    pub async fn last_backup(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.db
            .read(|connection| {
                let newest: Option<String> = connection
                    .query_row("SELECT max(finishedAt) FROM backup_runs", [], |row| row.get(0))
                    .map_err(map_error)?;
                newest.as_deref().map(from_text).transpose().map_err(map_error)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn a_recorded_backup_is_the_newest_one_read_back() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("event.db");
        let store = SqliteEventStore::open(&path).unwrap();
        assert_eq!(store.last_backup().await.unwrap(), None, "never backed up");
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let (older, newer) = (at("2026-01-02T03:04:05.678Z"), at("2026-01-03T03:04:05.678Z"));
        record_backup(&path, newer, newer, "/backups/b", 10).unwrap();
        record_backup(&path, older, older, "/backups/a", 10).unwrap();
        assert_eq!(store.last_backup().await.unwrap(), Some(newer));
        assert!(record_backup(&dir.path().join("missing.db"), older, older, "/x", 1).is_err(), "never created");
    }
}
