//! A SQLite database shared by async code: one writer connection, a few readers.
//!
//! SQLite admits one writer at a time, so writes are serialised on one connection instead of
//! contending for the file lock; WAL mode lets the readers run beside it. All calls run on the
//! blocking pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bestow_kernel::store::{Conflict, StoreError};
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior, ffi};
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
        let writer = patiently(|| {
            let mut writer = connect(path)?;
            migrate(&mut writer, migrations)?;
            Ok(writer)
        })?;
        let readers = (0..READERS).map(|_| patiently(|| connect(path))).collect::<Result<Vec<_>, _>>()?;
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

    /// Runs `work` in one transaction on the writer connection: committed when `work`
    /// succeeds, rolled back when it fails.
    pub async fn transaction<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.write(move |connection| {
            let tx = connection.transaction().map_err(map_error)?;
            let value = work(&tx)?;
            tx.commit().map_err(map_error)?;
            Ok(value)
        })
        .await
    }

    /// Runs `work` in one transaction on the writer connection from a thread that may block
    /// (inside [`Self::read`]'s work): a read streaming rows into short writes.
    pub(crate) fn transaction_blocking<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut connection = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let tx = connection.transaction().map_err(map_error)?;
        let value = work(&tx)?;
        tx.commit().map_err(map_error)?;
        Ok(value)
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

/// How long an online backup keeps retrying while the source is busy or locked.
const BACKUP_PATIENCE: Duration = Duration::from_secs(30);

/// Copies the database at `source` into a new file `target` with SQLite's online backup API.
///
/// The whole copy is one step, hence one read transaction: the copy is the state of one
/// instant even while a running server (another process) keeps writing, and it includes
/// what is still in the write-ahead log. Writers are not blocked (WAL). Fails if `source`
/// does not exist or `target` does.
pub fn backup_database(source: &Path, target: &Path) -> Result<(), StoreError> {
    if target.exists() {
        return Err(StoreError::Unavailable(format!("{} already exists", target.display())));
    }
    // No CREATE flag: a wrong path must fail, not back up a fresh empty database.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let from = Connection::open_with_flags(source, flags).map_err(map_error)?;
    from.busy_timeout(Duration::from_secs(5)).map_err(map_error)?;
    // The copy holds what the original does (password hashes): private from its first byte.
    restrict_to_owner(target)?;
    let mut to = Connection::open(target).map_err(map_error)?;
    let deadline = Instant::now() + BACKUP_PATIENCE;
    let backup = Backup::new(&from, &mut to).map_err(map_error)?;
    loop {
        match backup.step(-1).map_err(map_error)? {
            StepResult::Done => break,
            StepResult::More | StepResult::Busy | StepResult::Locked if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => return Err(StoreError::Unavailable(format!("{} stayed busy; backup abandoned", source.display()))),
        }
    }
    drop(backup);
    // A self-contained file: no `-wal`/`-shm` beside the copy.
    to.pragma_update(None, "journal_mode", "DELETE").map_err(map_error)?;
    Ok(())
}

/// Runs SQLite's `PRAGMA integrity_check` on the database file at `path`, read-only.
pub fn check_integrity(path: &Path) -> Result<(), StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).map_err(map_error)?;
    let verdict: String = connection.query_row("PRAGMA integrity_check", [], |row| row.get(0)).map_err(map_error)?;
    if verdict == "ok" {
        Ok(())
    } else {
        Err(StoreError::Unavailable(format!("{} failed its integrity check: {verdict}", path.display())))
    }
}

/// How long opening a database keeps trying while another process holds it.
const OPEN_PATIENCE: Duration = Duration::from_secs(10);

/// Runs `open` again while SQLite answers "busy" without waiting: two processes opening a new
/// file at once may both read it, then both ask for the lock that switches it to WAL, and
/// SQLite refuses one of them at once rather than deadlock (its busy timeout does not apply).
fn patiently<T>(mut open: impl FnMut() -> rusqlite::Result<T>) -> Result<T, StoreError> {
    let deadline = Instant::now() + OPEN_PATIENCE;
    loop {
        match open() {
            Err(rusqlite::Error::SqliteFailure(code, _))
                if code.code == ffi::ErrorCode::DatabaseBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other.map_err(map_error),
        }
    }
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags)?;
    // The busy timeout first: switching a new file to WAL takes a lock that a second process
    // starting at the same instant may hold. NORMAL is durable against process crashes in WAL
    // mode; only an OS crash or power loss can drop the last commits.
    connection.execute_batch(
        "PRAGMA busy_timeout = 5000;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;",
    )?;
    // Every statement a store runs more than once is prepared once per connection.
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Plans must not depend on bound values: otherwise SQLite re-plans a cached statement on
    // every new binding (a third of the time of reading an event). The one cost is that a
    // `LIKE ?` prefix search (admin user search) cannot use an index.
    connection.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(connection)
}

/// Runs the migrations the database has not had yet. Each runs in an immediate transaction
/// (the write lock taken at its start) that reads the version again: several processes
/// starting on a new data dir at once apply each migration exactly once, the later ones
/// waiting for it and then skipping it.
fn migrate(connection: &mut Connection, migrations: &[&str]) -> rusqlite::Result<()> {
    for (index, script) in migrations.iter().enumerate() {
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version = tx.query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))?;
        if usize::try_from(version).unwrap_or(0) > index {
            continue;
        }
        tx.execute_batch(script)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", index + 1))?;
        tx.commit()?;
        tracing::info!(version = index + 1, "database schema migrated");
    }
    Ok(())
}

/// Maps driver errors: constraint violations are conflicts, everything else is unavailability.
pub(crate) fn map_error(error: rusqlite::Error) -> StoreError {
    match &error {
        rusqlite::Error::SqliteFailure(code, _) if code.code == ffi::ErrorCode::ConstraintViolation => {
            StoreError::Conflict(Conflict::Duplicate)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn an_online_backup_copies_committed_rows_into_a_standalone_file() {
        let dir = tempfile::TempDir::new().unwrap();
        let source = dir.path().join("source.db");
        let db = Database::open(&source, &["CREATE TABLE t (n INTEGER)"]).unwrap();
        db.write(|c| c.execute_batch("INSERT INTO t VALUES (1), (2), (3)").map_err(map_error)).await.unwrap();

        let target = dir.path().join("copy.db");
        backup_database(&source, &target).unwrap();
        check_integrity(&target).unwrap();
        let copy = Connection::open(&target).unwrap();
        let (rows, version): (i64, i64) = (
            copy.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap(),
            copy.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap(),
        );
        assert_eq!((rows, version), (3, 1), "rows still in the WAL and the schema version are copied");
        let mode: String = copy.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "delete");

        assert!(backup_database(&source, &target).is_err(), "an existing target is never overwritten");
        let missing = dir.path().join("missing.db");
        assert!(backup_database(&missing, &dir.path().join("other.db")).is_err());
        assert!(!missing.exists(), "a wrong source path creates nothing");
    }

    #[test]
    fn processes_starting_at_once_on_a_new_file_each_migration_runs_once() {
        let dir = tempfile::TempDir::new().unwrap();
        let migrations = ["CREATE TABLE a (n INTEGER)", "CREATE TABLE b (n INTEGER)", "INSERT INTO a VALUES (1)"];
        let starters = 8;
        // Several new files: the race is a matter of timing, each round another chance to lose it.
        for round in 0..10 {
            let path = dir.path().join(format!("new-{round}.db"));
            let barrier = std::sync::Barrier::new(starters);
            let opened: Vec<Result<Database, StoreError>> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..starters)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            Database::open(&path, &migrations)
                        })
                    })
                    .collect();
                handles.into_iter().map(|handle| handle.join().unwrap()).collect()
            });
            for result in &opened {
                assert!(result.is_ok(), "a starter failed in round {round}: {result:?}");
            }
            let connection = Connection::open(&path).unwrap();
            let (rows, version): (i64, i64) = (
                connection.query_row("SELECT count(*) FROM a", [], |r| r.get(0)).unwrap(),
                connection.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap(),
            );
            assert_eq!((rows, version), (1, 3), "every migration ran exactly once");
        }
    }

    #[test]
    fn a_damaged_file_fails_the_integrity_check() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("junk.db");
        std::fs::write(&path, b"not a database at all, just bytes").unwrap();
        assert!(check_integrity(&path).is_err());
    }
}
