//! A SQLite database shared by async code: one writer connection, a few readers.
//!
//! SQLite admits one writer at a time, so writes are serialised on one connection instead of
//! contending for the file lock; WAL mode lets the readers run beside it. All calls run on the
//! blocking pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bestow_core::store::StoreError;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags, ffi};
use tokio::sync::Semaphore;

const READERS: usize = 4;

/// A SQLite database file with its schema applied.
#[derive(Clone)]
pub struct Database {
    path: Arc<PathBuf>,
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    reader_slots: Arc<Semaphore>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Statements kept prepared per connection (more than the stores use, so none is evicted).
const STATEMENT_CACHE: usize = 128;

impl Database {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date:
    /// `migrations[i]` runs once, when `PRAGMA user_version` is `i`.
    pub fn open(path: &Path, migrations: &[&str]) -> Result<Self, StoreError> {
        restrict_to_owner(path)?;
        let mut writer = connect(path)?;
        migrate(&mut writer, migrations)?;
        let readers = (0..READERS).map(|_| connect(path)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            path: Arc::new(path.to_owned()),
            writer: Arc::new(Mutex::new(writer)),
            readers: Arc::new(Mutex::new(readers)),
            reader_slots: Arc::new(Semaphore::new(READERS)),
        })
    }

    /// Runs `work` on the writer connection.
    pub async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut connection)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("storage task failed: {e}")))?
    }

    /// Runs `work` on a reader connection.
    pub async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let _slot = self.reader_slots.acquire().await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let connection = readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let connection = connection.ok_or_else(|| StoreError::Unavailable("no reader connection".into()))?;
            let result = work(&connection);
            readers.lock().unwrap_or_else(|p| p.into_inner()).push(connection);
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("storage task failed: {e}")))?
    }
}

/// Creates the database file readable by its owner only (0600), or narrows an existing one:
/// it holds password hashes. SQLite gives its `-wal` and `-shm` files the same mode.
fn restrict_to_owner(path: &Path) -> Result<(), StoreError> {
    let unavailable = |error: std::io::Error| StoreError::Unavailable(format!("{}: {error}", path.display()));
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path).map_err(unavailable)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata().map_err(unavailable)?.permissions().mode();
        if mode & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(unavailable)?;
            for suffix in ["-wal", "-shm"] {
                let companion = PathBuf::from(format!("{}{suffix}", path.display()));
                if companion.exists() {
                    std::fs::set_permissions(&companion, std::fs::Permissions::from_mode(0o600))
                        .map_err(unavailable)?;
                }
            }
        }
    }
    Ok(())
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).map_err(map_error)?;
    // NORMAL is durable against process crashes in WAL mode; only an OS crash or power loss
    // can drop the last commits.
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;",
        )
        .map_err(map_error)?;
    // Every statement a store runs more than once is prepared once per connection.
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Plans must not depend on bound values: otherwise SQLite re-plans a cached statement on
    // every new binding (a third of the time of reading an event). The one cost is that a
    // `LIKE ?` prefix search (admin user search) cannot use an index.
    connection.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map_err(map_error)?;
    Ok(connection)
}

fn migrate(connection: &mut Connection, migrations: &[&str]) -> Result<(), StoreError> {
    let version: usize = connection
        .query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))
        .map_err(map_error)?
        .try_into()
        .unwrap_or(0);
    for (index, script) in migrations.iter().enumerate().skip(version) {
        let tx = connection.transaction().map_err(map_error)?;
        tx.execute_batch(script).map_err(map_error)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", index + 1)).map_err(map_error)?;
        tx.commit().map_err(map_error)?;
        tracing::info!(version = index + 1, "database schema migrated");
    }
    Ok(())
}

/// Maps driver errors: constraint violations are conflicts, everything else is unavailability.
pub(crate) fn map_error(error: rusqlite::Error) -> StoreError {
    match &error {
        rusqlite::Error::SqliteFailure(code, _) if code.code == ffi::ErrorCode::ConstraintViolation => {
            StoreError::Conflict("unique constraint")
        }
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
        _ => StoreError::Unavailable(error.to_string()),
    }
}

/// Timestamps are stored as fixed-width RFC 3339 text in UTC, so text order is time order.
pub(crate) fn to_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn from_text(text: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}
