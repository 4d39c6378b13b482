//! The MongoDB half of `bestow admin backup` and `restore` (the manifest, its checks and the
//! file handling are the parent module's, shared with SQLite).
//!
//! A dump holds, for each collection of the event database then of the auth database, a file
//! `<role>.<collection>.jsonl` (`event_db.events.jsonl`, `auth_db.users.jsonl`…: the role, not
//! the configured database name, so a dump restores into databases named otherwise), one
//! document per line in canonical Extended JSON, plus the signing keys and the manifest, which
//! counts each file's documents. Every collection is read in one snapshot
//! (`bestow_store_mongo::backup`): one instant across both databases, as long as the dump takes
//! less than the server's `transactionLifetimeLimitSeconds` (60 s by default); a longer one
//! fails rather than mixing instants.
//!
//! Restore refuses databases that hold any document, checks the whole backup first (see the
//! parent module), then writes the signing keys, loads every file in batches, creates the
//! stores' indexes (as the stores do when they start) and releases the leases of the claims
//! under way ([`MongoEventStore::release_leases`]).

use std::io::{BufReader, BufWriter};
use std::path::Path;

use anyhow::{Context, bail, ensure};
use bestow_auth::signing::KEY_FILE;
use bestow_store_mongo::backup::{AUTH_COLLECTIONS, EVENT_COLLECTIONS, EVENT_COLLECTIONS_ADDED_LATER};
use bestow_store_mongo::{MongoAuthStore, MongoBackup, MongoEventStore};
use chrono::{DateTime, Utc};

use super::{
    BackedUpFile, MANIFEST, Manifest, copy_keys, create_private, open_regular, prepare_empty_dir, regular_file,
    restore_file, write_manifest,
};
use crate::config::{Config, Storage};

/// The databases by role, in the order they are dumped (events first, as for SQLite; within
/// one snapshot the order does not matter).
const ROLES: [&str; 2] = ["event_db", "auth_db"];
/// A dump file's suffix.
const JSONL: &str = ".jsonl";

/// The configured name of the database of `role`.
fn database<'c>(config: &'c Config, role: &str) -> &'c str {
    if role == ROLES[1] { &config.storage.auth_database } else { &config.storage.event_database }
}

/// The collections the stores of `role` create.
fn collections_of(role: &str) -> &'static [&'static str] {
    if role == ROLES[1] { &AUTH_COLLECTIONS } else { &EVENT_COLLECTIONS }
}

/// The collections every backup of `role` holds: a dump lacking one is not a complete backup.
/// Collections added later are in every new dump but optional in an older one.
fn required(role: &str) -> impl Iterator<Item = &'static str> {
    collections_of(role).iter().copied().filter(|collection| !EVENT_COLLECTIONS_ADDED_LATER.contains(collection))
}

/// A collection name that is safe as part of a file name (no separators, nothing hidden).
fn valid_collection(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 120
        && !name.starts_with('.')
        && !name.starts_with("system.")
        && !name.contains("..")
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// The file of collection `collection` of the database of `role`.
fn file_name(role: &str, collection: &str) -> String {
    format!("{role}.{collection}{JSONL}")
}

/// The role and collection a dump file's name stands for, if it is one.
fn parse_file_name(name: &str) -> Option<(&'static str, &str)> {
    let (role, collection) = name.strip_suffix(JSONL)?.split_once('.')?;
    let role = ROLES.into_iter().find(|known| *known == role)?;
    valid_collection(collection).then_some((role, collection))
}

/// Dumps both databases of `config` and copies its signing keys into `target`, a new or empty
/// directory; writes the manifest last and returns it.
pub(super) async fn backup(config: &Config, target: &Path) -> anyhow::Result<Manifest> {
    let uri = config.mongodb_uri()?;
    let keys = config.storage.data_dir.join(KEY_FILE);
    ensure!(
        keys.symlink_metadata().is_ok(),
        "{} does not exist: the signing keys live in the data dir, not in MongoDB; run the backup with the \
         auth service's `data_dir`",
        keys.display()
    );
    regular_file(&keys)?;
    let connection = MongoBackup::connect(uri).await.context("cannot connect to MongoDB")?;
    let mut plan = Vec::new();
    for role in ROLES {
        let name = database(config, role);
        let collections = connection.collections(name).await.with_context(|| format!("cannot list {name}"))?;
        for needed in required(role) {
            ensure!(
                collections.iter().any(|collection| collection == needed),
                "database {name} has no collection {needed}: is `{}` right (a server creates it at its start)?",
                if role == ROLES[1] { "auth_database" } else { "event_database" }
            );
        }
        for collection in collections {
            ensure!(
                valid_collection(&collection),
                "{name} has a collection named {collection:?}, which a backup cannot hold"
            );
            plan.push((role, name, collection));
        }
    }
    prepare_empty_dir(target)?;

    let created_at = bestow_core::time::now();
    let mut snapshot = connection.snapshot().await.context("cannot start the snapshot read")?;
    let mut files = Vec::new();
    for (role, name, collection) in plan {
        let file = file_name(role, &collection);
        let partial = target.join(format!("{file}.partial"));
        let mut out = BufWriter::new(create_private(&partial)?);
        let documents = snapshot.export(name, &collection, &mut out).await.with_context(|| {
            format!(
                "cannot dump {name}.{collection} (a dump longer than the server's transactionLifetimeLimitSeconds, \
                 60 s by default, is aborted by the server: see docs/operations.md)"
            )
        })?;
        out.into_inner().map_err(std::io::IntoInnerError::into_error)?.sync_all()?;
        std::fs::rename(&partial, target.join(&file))?;
        files.push(BackedUpFile { documents: Some(documents), ..BackedUpFile::read(target, &file)? });
    }
    // Everything was read: the end of the (read-only) transaction changes nothing in the copy.
    if let Err(error) = snapshot.finish().await {
        tracing::warn!(%error, "could not end the snapshot read; the server ends it at its lifetime limit");
    }
    files.push(copy_keys(&config.storage.data_dir, target)?);
    let manifest = Manifest::new(Storage::Mongodb, created_at, files);
    write_manifest(target, &manifest)?;
    Ok(manifest)
}

/// Records a completed backup in `backup_runs` of the event database.
pub(super) async fn record(
    config: &Config,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    location: &str,
    bytes: u64,
) -> anyhow::Result<()> {
    let events = MongoEventStore::connect(config.mongodb_uri()?, &config.storage.event_database).await?;
    events.record_backup(started_at, finished_at, location, bytes).await?;
    Ok(())
}

/// Each name of a MongoDB manifest becomes a collection to fill, or the key file in the data
/// dir: only dump files of the two roles and the key file are accepted, each once, and every
/// collection the stores keep must be there.
pub(super) fn check_file_list(files: &[BackedUpFile]) -> anyhow::Result<()> {
    for (n, file) in files.iter().enumerate() {
        if file.name == KEY_FILE {
            ensure!(file.documents.is_none(), "{MANIFEST} counts documents in {KEY_FILE}");
        } else {
            ensure!(
                parse_file_name(&file.name).is_some(),
                "{MANIFEST} lists {:?}, which is not a file of a MongoDB backup (<auth_db|event_db>.<collection>.jsonl, \
                 {KEY_FILE})",
                file.name
            );
            ensure!(file.documents.is_some(), "{MANIFEST} does not count the documents of {}", file.name);
        }
        ensure!(files[..n].iter().all(|earlier| earlier.name != file.name), "{MANIFEST} lists {} twice", file.name);
    }
    ensure!(files.iter().any(|file| file.name == KEY_FILE), "the backup lacks {KEY_FILE}");
    for role in ROLES {
        for collection in required(role) {
            let name = file_name(role, collection);
            ensure!(files.iter().any(|file| file.name == name), "the backup lacks {name}");
        }
    }
    Ok(())
}

/// Reads a dump file whole: every line one document, as many as the manifest says.
pub(super) fn check_dump_file(path: &Path, expected: &BackedUpFile) -> anyhow::Result<()> {
    let documents = bestow_store_mongo::backup::check_dump(BufReader::new(open_regular(path)?))
        .with_context(|| format!("{} in the backup is damaged", expected.name))?;
    ensure!(
        Some(documents) == expected.documents,
        "{} holds {documents} documents, the manifest says {}",
        path.display(),
        expected.documents.unwrap_or(0)
    );
    Ok(())
}

/// Restores the checked MongoDB backup in `from` into the (empty) databases and the new or
/// empty data dir of `config`.
pub(super) async fn restore(config: &Config, from: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    let uri = config.mongodb_uri()?;
    let connection = MongoBackup::connect(uri).await.context("cannot connect to MongoDB")?;
    let mut occupied = Vec::new();
    for role in ROLES {
        let name = database(config, role);
        let filled = connection.non_empty_collections(name).await.with_context(|| format!("cannot read {name}"))?;
        occupied.extend(filled.into_iter().map(|collection| format!("{name}.{collection}")));
    }
    if !occupied.is_empty() {
        bail!(
            "the target databases are not empty ({} hold documents): restore only into empty databases, \
             with every server stopped (drop them first if they are to be replaced)",
            occupied.join(", ")
        );
    }
    prepare_empty_dir(&config.storage.data_dir)?;

    let part_way = || {
        format!(
            "the restore stopped part-way: drop databases {} and {} and empty {} before running it again",
            config.storage.event_database,
            config.storage.auth_database,
            config.storage.data_dir.display()
        )
    };
    for file in &manifest.files {
        if file.name == KEY_FILE {
            restore_file(from, &config.storage.data_dir, file).with_context(part_way)?;
            continue;
        }
        let Some((role, collection)) = parse_file_name(&file.name) else {
            bail!("{} is not a dump file", file.name); // excluded by `check_file_list`
        };
        let name = database(config, role);
        let lines = BufReader::new(open_regular(&from.join(&file.name))?);
        let loaded = connection
            .load(name, collection, lines)
            .await
            .with_context(|| format!("cannot load {} into {name}.{collection}", file.name))
            .with_context(part_way)?;
        ensure!(
            Some(loaded) == file.documents,
            "{} loaded {loaded} documents, expected {:?}",
            file.name,
            file.documents
        );
        println!("restored {} into {name}.{collection} ({loaded} documents)", file.name);
    }

    // The stores create their indexes when they start; here any refusal is an error.
    let auth = MongoAuthStore::connect(uri, &config.storage.auth_database).await?;
    auth.create_indexes().await.context("cannot create the indexes of the auth database").with_context(part_way)?;
    let events = MongoEventStore::connect(uri, &config.storage.event_database).await?;
    events.create_indexes().await.context("cannot create the indexes of the event database").with_context(part_way)?;
    println!("created the indexes of {} and {}", config.storage.event_database, config.storage.auth_database);
    let released = events.release_leases().await.context(
        "the backup is restored, but the leases of its claims under way could not be released: \
         the server finishes those claims once the leases run out (claim_lease_ms)",
    )?;
    println!("released the leases of {released} claims under way (the restored server resumes them at once)");
    println!(
        "restored the backup of {} into {} and {}, signing keys into {}",
        manifest.created_at.to_rfc3339(),
        config.storage.event_database,
        config.storage.auth_database,
        config.storage.data_dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, documents: Option<u64>) -> BackedUpFile {
        BackedUpFile { name: name.to_owned(), bytes: 0, sha256: String::new(), documents }
    }

    fn complete() -> Vec<BackedUpFile> {
        let mut files: Vec<BackedUpFile> = ROLES
            .into_iter()
            .flat_map(|role| {
                collections_of(role).iter().map(move |collection| entry(&file_name(role, collection), Some(0)))
            })
            .collect();
        files.push(entry(KEY_FILE, None));
        files
    }

    fn refusal(files: &[BackedUpFile]) -> String {
        check_file_list(files).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn only_dump_files_of_the_two_databases_and_the_keys_are_accepted() {
        assert_eq!(refusal(&complete()), "");
        assert_eq!(parse_file_name("event_db.backup_runs.jsonl"), Some(("event_db", "backup_runs")));
        assert_eq!(parse_file_name("auth_db.a.b.jsonl"), Some(("auth_db", "a.b")), "a dot inside a collection name");
        for name in [
            "../auth_db.users.jsonl",
            "auth_db/../../x.jsonl",
            "other_db.users.jsonl",
            "auth_db..jsonl",
            "auth_db.users.json",
            "auth_db.system.views.jsonl",
            "event_db..hidden.jsonl",
            "event.db",
        ] {
            let mut files = complete();
            files.push(entry(name, Some(0)));
            assert!(refusal(&files).contains("not a file of a MongoDB backup"), "{name} accepted");
        }
        let mut twice = complete();
        twice.push(entry("auth_db.users.jsonl", Some(0)));
        assert!(refusal(&twice).contains("twice"));
        let mut lacking = complete();
        lacking.retain(|file| file.name != "event_db.user_reward_requests.jsonl");
        assert!(refusal(&lacking).contains("lacks event_db.user_reward_requests.jsonl"));
        let mut before_audiences = complete();
        before_audiences.retain(|file| !file.name.starts_with("event_db.audience") && !file.name.contains("player_"));
        assert!(before_audiences.len() < complete().len(), "the complete list holds the audience collections");
        assert_eq!(refusal(&before_audiences), "", "a backup made before audiences restores with them empty");
        let mut uncounted = complete();
        uncounted[0].documents = None;
        assert!(refusal(&uncounted).contains("does not count"));
    }
}
