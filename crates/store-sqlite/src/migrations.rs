//! The schema of both databases, step by step: one numbered SQL file per migration under
//! `migrations/event/` and `migrations/auth/`, compiled in with `include_str!`.
//!
//! [`Database::open`](crate::database::Database::open) runs step `n` (file `000n_*.sql`) once,
//! when the file's `PRAGMA user_version` is `n - 1`: a step, once shipped, never changes; a
//! schema change is a new file at the end of its list. The audit log's table is the same in
//! both databases, so both lists share `migrations/audit_logs.sql` as their step 2.

/// Step 2 of both databases.
const AUDIT_LOGS: &str = include_str!("../migrations/audit_logs.sql");

/// Migrations of `event.db`, in order.
pub(crate) const EVENT_MIGRATIONS: &[&str] = &[
    include_str!("../migrations/event/0001_catalog.sql"),
    AUDIT_LOGS,
    include_str!("../migrations/event/0003_activities_and_service_keys.sql"),
    include_str!("../migrations/event/0004_claims_and_ledger.sql"),
    include_str!("../migrations/event/0005_recurrence_and_tiers.sql"),
    include_str!("../migrations/event/0006_claim_stats.sql"),
    include_str!("../migrations/event/0007_activity_history.sql"),
    BACKUP_RUNS,
    include_str!("../migrations/event/0009_claim_failure_code.sql"),
    include_str!("../migrations/event/0010_audiences.sql"),
];

/// `backup_runs`, which [`record_backup`](crate::record_backup) also creates if missing.
pub(crate) const BACKUP_RUNS: &str = include_str!("../migrations/event/0008_backup_runs.sql");

/// Migrations of `auth.db`, in order.
pub(crate) const AUTH_MIGRATIONS: &[&str] = &[
    include_str!("../migrations/auth/0001_accounts.sql"),
    AUDIT_LOGS,
    include_str!("../migrations/auth/0003_session_version.sql"),
    include_str!("../migrations/auth/0004_ended_sessions.sql"),
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    use rusqlite::Connection;

    use super::*;
    use crate::database::Database;

    /// Every numbered file of `directory` stands at its number in `migrations`, and every step
    /// of `migrations` is a numbered file or the shared audit log: no file is forgotten, none
    /// runs out of its turn.
    fn assert_files_in_order(directory: &str, migrations: &[&str]) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(directory);
        let mut steps = Vec::new();
        for entry in std::fs::read_dir(&root).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let number: usize = name.split('_').next().unwrap().parse().unwrap_or_else(|_| panic!("{name}: no number"));
            steps.push((number, name, std::fs::read_to_string(&path).unwrap()));
        }
        steps.sort();
        let mut expected: Vec<(usize, String)> =
            steps.iter().map(|(number, name, _)| (*number, name.clone())).collect();
        expected.push((2, "audit_logs.sql".into()));
        expected.sort();
        let numbers: Vec<usize> = expected.iter().map(|(number, _)| *number).collect();
        assert_eq!(numbers, (1..=migrations.len()).collect::<Vec<_>>(), "{directory}: steps 1..n, each once");
        for (number, name, sql) in &steps {
            assert_eq!(migrations[number - 1], sql, "{directory}/{name} is step {number}");
        }
        assert_eq!(migrations[1], AUDIT_LOGS);
    }

    #[test]
    fn each_numbered_file_is_the_migration_of_its_number() {
        assert_files_in_order("event", EVENT_MIGRATIONS);
        assert_files_in_order("auth", AUTH_MIGRATIONS);
    }

    /// A file a previous version left at some step is upgraded from there, keeping its rows;
    /// an up-to-date one is left alone.
    #[test]
    fn an_older_database_is_upgraded_from_its_version_and_a_current_one_left_alone() {
        let dir = tempfile::TempDir::new().unwrap();
        for (name, migrations) in [("event.db", EVENT_MIGRATIONS), ("auth.db", AUTH_MIGRATIONS)] {
            for reached in 1..=migrations.len() {
                let path = dir.path().join(format!("{reached}-{name}"));
                drop(Database::open(&path, &migrations[..reached]).unwrap());
                if reached >= 2 {
                    Connection::open(&path)
                        .unwrap()
                        .execute(
                            "INSERT INTO audit_logs (_id, actorId, actorUsername, action, targetType, targetId, at)
                             VALUES ('kept', '', '', '', '', '', '')",
                            [],
                        )
                        .unwrap();
                }
                drop(Database::open(&path, migrations).unwrap());
                let schema = |path: &Path| -> (i64, Vec<String>) {
                    let connection = Connection::open(path).unwrap();
                    let version = connection.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
                    let mut statement = connection
                        .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
                        .unwrap();
                    let sql = statement.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
                    (version, sql)
                };
                let upgraded = schema(&path);
                let fresh_path = dir.path().join(format!("fresh-{reached}-{name}"));
                drop(Database::open(&fresh_path, migrations).unwrap());
                assert_eq!(upgraded, schema(&fresh_path), "{name} from version {reached}");
                if reached >= 2 {
                    let kept: i64 = Connection::open(&path)
                        .unwrap()
                        .query_row("SELECT count(*) FROM audit_logs WHERE _id = 'kept'", [], |r| r.get(0))
                        .unwrap();
                    assert_eq!(kept, 1, "{name} from version {reached} keeps its rows");
                }
                drop(Database::open(&path, migrations).unwrap());
                assert_eq!(schema(&path), upgraded, "{name}: an up-to-date file is left alone");
            }
        }
    }
}
