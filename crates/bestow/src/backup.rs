//! `bestow admin backup` and `bestow admin restore`: a copy of the data (both databases and
//! the signing keys) taken while the server runs, and its restoration into an empty data dir
//! (and, with MongoDB, empty databases). One manifest format serves both storages; what the
//! copy of each holds and guarantees:
//!
//! **SQLite** (this file). Each database is copied with SQLite's online backup in one read
//! transaction, so each copy is the state of one instant, with no half-done saga step (every
//! step is one commit). The event database is copied before the auth database, so every user
//! a claim names is in the copy of the accounts.
//!
//! **MongoDB** (`backup/mongo.rs`). Every collection of both databases is read in one
//! transaction at read concern `snapshot`: one instant across both databases. Each collection
//! becomes one file of canonical Extended JSON lines (`auth_db.users.jsonl`, named after the
//! database's role, whatever `auth_database` and `event_database` name it).
//!
//! Claims under way at that instant are copied with their lease; `restore` releases those
//! leases in the restored copy (the workers holding them belong to the server the backup was
//! taken from), so the recovery sweeper of the server started on it finishes those claims at
//! its first sweep, not once `claim_lease_ms` has passed (a retry scheduled for later keeps its
//! time). The manifest is written last: a backup dir without one is incomplete and is refused
//! by `restore`. A completed backup is recorded in the event database (`backup_runs`), where
//! the server reads the time of the newest one for `bestow_backup_last_success_timestamp_seconds`.
//!
//! The manifest records the storage, and the size and SHA-256 of each file. `restore` checks
//! the whole backup before it writes anything: exactly the files a backup of that storage
//! holds (a manifest name becomes a path in the data dir, or a collection), regular files only
//! (no symlinks), each matching its checksum, databases passing their integrity check (every
//! line one document, as many as the manifest says), and a key file the server would load.
//! The checksums catch damage and naive edits, not someone who rewrites the manifest too:
//! store backups where only operators can write.

use std::fs::{File, Metadata};
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, bail, ensure};
use bestow_auth::signing::{KEY_FILE, validate_key_file};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Config, Storage};

mod mongo;

/// The file naming what a backup holds; present only in a complete backup.
pub const MANIFEST: &str = "bestow-backup.json";
/// The SQLite databases, in the order they are copied (see the module doc).
const DATABASES: [&str; 2] = ["event.db", "auth.db"];
/// Every file of an SQLite backup but its manifest: the only names `restore` writes.
const FILES: [&str; 3] = [DATABASES[0], DATABASES[1], KEY_FILE];
/// Version of the backup layout; 2 added the checksums (later also `storage`, optional when
/// read, and the MongoDB layout; a binary from before `storage` refuses a manifest naming it).
const FORMAT: u32 = 2;

/// What a backup dir holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Manifest {
    format: u32,
    /// Absent in the SQLite backups made before MongoDB ones existed.
    #[serde(default = "sqlite")]
    storage: Storage,
    bestow_version: String,
    /// For MongoDB, the instant the snapshot was opened.
    created_at: DateTime<Utc>,
    files: Vec<BackedUpFile>,
}

fn sqlite() -> Storage {
    Storage::Sqlite
}

impl Manifest {
    fn new(storage: Storage, created_at: DateTime<Utc>, files: Vec<BackedUpFile>) -> Self {
        Self { format: FORMAT, storage, bestow_version: env!("CARGO_PKG_VERSION").to_owned(), created_at, files }
    }
}

/// The fields every format of the manifest has: read first, to name an old format plainly.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestHead {
    format: u32,
    bestow_version: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BackedUpFile {
    name: String,
    bytes: u64,
    /// Lowercase hex SHA-256 of the content.
    sha256: String,
    /// Documents in a MongoDB collection's file (one per line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    documents: Option<u64>,
}

impl BackedUpFile {
    /// Describes the file `name` of `dir` as it is on disk.
    fn read(dir: &Path, name: &str) -> anyhow::Result<Self> {
        let path = dir.join(name);
        let mut hasher = Sha256::new();
        let bytes = std::io::copy(&mut open_regular(&path)?, &mut hasher)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let sha256 = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self { name: name.to_owned(), bytes, sha256, documents: None })
    }
}

/// Copies the data of `config` into `target`, a new or empty directory, then records the
/// backup's success in the event database (read by the backup-age gauge).
pub async fn backup(config: &Config, target: &Path) -> anyhow::Result<()> {
    let started_at = bestow_core::time::now();
    let manifest = match config.storage.backend {
        Storage::Sqlite => {
            let (config, target) = (config.clone(), target.to_owned());
            tokio::task::spawn_blocking(move || backup_sqlite(&config, &target)).await??
        }
        Storage::Mongodb => mongo::backup(config, target).await?,
    };
    for file in &manifest.files {
        match file.documents {
            Some(documents) => println!(
                "backed up {} ({documents} documents, {} bytes, sha256 {})",
                file.name, file.bytes, file.sha256
            ),
            None => println!("backed up {} ({} bytes, sha256 {})", file.name, file.bytes, file.sha256),
        }
    }
    println!("backup complete in {}", target.display());
    record(config, &manifest, started_at, target).await.with_context(|| {
        format!(
            "the backup in {} is complete, but its success could not be recorded for the backup-age alert",
            target.display()
        )
    })
}

/// Records a completed backup in `backup_runs` of the event database: the SQLite file of the
/// data dir (a running server holds it too: the write waits for its lock), or `event_db`.
async fn record(config: &Config, manifest: &Manifest, started_at: DateTime<Utc>, target: &Path) -> anyhow::Result<()> {
    let finished_at = bestow_core::time::now();
    let location = std::fs::canonicalize(target).unwrap_or_else(|_| target.to_owned()).display().to_string();
    let bytes = manifest.files.iter().map(|file| file.bytes).sum();
    match config.storage.backend {
        Storage::Sqlite => {
            let events = config.storage.data_dir.join(DATABASES[0]);
            tokio::task::spawn_blocking(move || {
                bestow_store_sqlite::record_backup(&events, started_at, finished_at, &location, bytes)
            })
            .await??;
        }
        Storage::Mongodb => mongo::record(config, started_at, finished_at, &location, bytes).await?,
    }
    println!("recorded the backup's success at {}", finished_at.to_rfc3339());
    Ok(())
}

/// Copies the SQLite data dir of `config` into `target`, a new or empty directory.
fn backup_sqlite(config: &Config, target: &Path) -> anyhow::Result<Manifest> {
    let source = &config.storage.data_dir;
    for name in FILES {
        let path = source.join(name);
        ensure!(
            path.symlink_metadata().is_ok(),
            "{} does not exist: is `data_dir` ({}) right?",
            path.display(),
            source.display()
        );
        regular_file(&path)?;
    }
    prepare_empty_dir(target)?;
    let mut files = Vec::new();
    for name in DATABASES {
        let partial = target.join(format!("{name}.partial"));
        bestow_store_sqlite::backup_database(&source.join(name), &partial)
            .with_context(|| format!("cannot back up {name}"))?;
        bestow_store_sqlite::check_integrity(&partial).with_context(|| format!("the copy of {name} is damaged"))?;
        // It holds password hashes: owner-only, like the data dir's own files should be.
        #[cfg(unix)]
        std::fs::set_permissions(&partial, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        std::fs::rename(&partial, target.join(name))?;
        files.push(BackedUpFile::read(target, name)?);
    }
    files.push(copy_keys(source, target)?);
    let manifest = Manifest::new(Storage::Sqlite, bestow_core::time::now(), files);
    write_manifest(target, &manifest)?;
    Ok(manifest)
}

/// Copies the signing keys of the data dir `source` into the backup `target`. The key file is
/// replaced by rename, never rewritten in place: one read sees one version.
fn copy_keys(source: &Path, target: &Path) -> anyhow::Result<BackedUpFile> {
    let keys_path = source.join(KEY_FILE);
    let keys = read_regular(&keys_path)?;
    validate_key_file(&keys_path, &keys)?;
    write_private(&target.join(KEY_FILE), &keys)?;
    BackedUpFile::read(target, KEY_FILE)
}

/// Writes the manifest, last, by rename: a backup dir holding one is complete.
fn write_manifest(target: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    let partial = target.join(format!("{MANIFEST}.partial"));
    write_private(&partial, &serde_json::to_vec_pretty(manifest)?)?;
    std::fs::rename(&partial, target.join(MANIFEST))?;
    Ok(())
}

/// Restores the backup in `from` into the data dir of `config`, which must be new or empty
/// (and, with MongoDB, into its databases, which must be empty). The whole backup is checked
/// before anything is written.
pub async fn restore(config: &Config, from: &Path) -> anyhow::Result<()> {
    let manifest = read_manifest(from, config.storage.backend)?;
    let (checked, from_owned) = (manifest, from.to_owned());
    let manifest = tokio::task::spawn_blocking(move || {
        for file in &checked.files {
            verify(&from_owned, file)?;
        }
        anyhow::Ok(checked)
    })
    .await??;
    match config.storage.backend {
        Storage::Sqlite => {
            let (config, from) = (config.clone(), from.to_owned());
            tokio::task::spawn_blocking(move || restore_sqlite(&config, &from, &manifest)).await?
        }
        Storage::Mongodb => mongo::restore(config, from, &manifest).await,
    }
}

/// What a backup of `storage` holds, and the setting that restores it.
fn storage_name(storage: Storage) -> &'static str {
    match storage {
        Storage::Sqlite => "an SQLite data dir: restore it with storage = sqlite",
        Storage::Mongodb => "MongoDB databases: restore it with storage = mongodb",
    }
}

/// Restores a checked SQLite backup into the data dir of `config`, which must be new or empty.
fn restore_sqlite(config: &Config, from: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    let target = &config.storage.data_dir;
    prepare_empty_dir(target)?;
    for file in &manifest.files {
        restore_file(from, target, file)?;
    }
    // The restored copy only, never the backup (which stays as its manifest describes it).
    let released = bestow_store_sqlite::release_leases(&target.join(DATABASES[0])).context(
        "the backup is restored, but the leases of its claims under way could not be released: \
         the server finishes those claims once the leases run out (claim_lease_ms)",
    )?;
    println!("released the leases of {released} claims under way (the restored server resumes them at once)");
    println!("restored the backup of {} into {}", manifest.created_at.to_rfc3339(), target.display());
    Ok(())
}

/// Copies the checked file `file` of the backup `from` into the directory `target` (by
/// rename of a complete, flushed, owner-only copy).
fn restore_file(from: &Path, target: &Path, file: &BackedUpFile) -> anyhow::Result<()> {
    let partial = target.join(format!("{}.partial", file.name));
    let mut copy = create_private(&partial)?;
    std::io::copy(&mut open_regular(&from.join(&file.name))?, &mut copy)?;
    copy.sync_all()?;
    std::fs::rename(&partial, target.join(&file.name))?;
    println!("restored {} ({} bytes)", file.name, file.bytes);
    Ok(())
}

/// The manifest of the backup in `from`, of this format, of `storage` and listing exactly the
/// files of a backup of it.
fn read_manifest(from: &Path, storage: Storage) -> anyhow::Result<Manifest> {
    let path = from.join(MANIFEST);
    ensure!(path.symlink_metadata().is_ok(), "{} has no {MANIFEST}: not a complete backup", from.display());
    let text = read_regular(&path)?;
    let head: ManifestHead = serde_json::from_slice(&text).with_context(|| format!("{MANIFEST} is not valid"))?;
    match head.format {
        FORMAT => {}
        1 => bail!(
            "backup format 1 has no checksums: restore it with the version that made it (bestow {})",
            head.bestow_version
        ),
        other => bail!("backup format {other} is not supported (expected {FORMAT})"),
    }
    let manifest: Manifest = serde_json::from_slice(&text).with_context(|| format!("{MANIFEST} is not valid"))?;
    ensure!(manifest.storage == storage, "this is a backup of {}", storage_name(manifest.storage));
    match manifest.storage {
        Storage::Sqlite => check_file_list(&manifest.files)?,
        Storage::Mongodb => mongo::check_file_list(&manifest.files)?,
    }
    Ok(manifest)
}

/// Each name of an SQLite manifest becomes a path in the data dir: only the names a backup
/// writes are accepted, each once, so `../x`, `/etc/x` or an extra file can never be written.
fn check_file_list(files: &[BackedUpFile]) -> anyhow::Result<()> {
    ensure!(files.iter().all(|file| file.documents.is_none()), "{MANIFEST} counts documents in SQLite files");
    for (n, file) in files.iter().enumerate() {
        ensure!(
            FILES.contains(&file.name.as_str()),
            "{MANIFEST} lists {:?}, which is not a file of a backup ({})",
            file.name,
            FILES.join(", ")
        );
        ensure!(files[..n].iter().all(|earlier| earlier.name != file.name), "{MANIFEST} lists {} twice", file.name);
    }
    for name in FILES {
        ensure!(files.iter().any(|file| file.name == name), "the backup lacks {name}");
    }
    Ok(())
}

/// Checks one file of the backup against its manifest entry, then its content (its name was
/// checked against its storage's list first).
fn verify(from: &Path, expected: &BackedUpFile) -> anyhow::Result<()> {
    let path = from.join(&expected.name);
    let found = BackedUpFile::read(from, &expected.name)?;
    ensure!(
        found.bytes == expected.bytes,
        "{} has {} bytes, the manifest says {}",
        path.display(),
        found.bytes,
        expected.bytes
    );
    ensure!(
        found.sha256 == expected.sha256,
        "{} does not match its checksum in {MANIFEST}: the backup is damaged or was edited",
        path.display()
    );
    if expected.name == KEY_FILE {
        validate_key_file(&path, &read_regular(&path)?)?;
    } else if expected.name.ends_with(".jsonl") {
        mongo::check_dump_file(&path, expected)?;
    } else {
        bestow_store_sqlite::check_integrity(&path)
            .with_context(|| format!("{} in the backup is damaged", expected.name))?;
    }
    Ok(())
}

/// Creates `dir` (owner-only), or checks that it is an empty directory and narrows it to
/// owner-only: it is to hold password hashes and signing keys. Nothing is ever overwritten,
/// and a symlink is not followed.
fn prepare_empty_dir(dir: &Path) -> anyhow::Result<()> {
    let entry = match std::fs::symlink_metadata(dir) {
        Ok(entry) => entry,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            return builder.create(dir).with_context(|| format!("cannot create {}", dir.display()));
        }
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", dir.display())),
    };
    ensure!(!entry.file_type().is_symlink(), "{} is a symlink: name the directory itself", dir.display());
    ensure!(entry.is_dir(), "{} is not a directory", dir.display());
    let mut entries = std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    ensure!(entries.next().is_none(), "{} is not empty", dir.display());
    #[cfg(unix)]
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .with_context(|| format!("cannot make {} owner-only", dir.display()))?;
    Ok(())
}

/// The entry at `path` if it is a regular file: a symlink is refused, never followed.
fn regular_file(path: &Path) -> anyhow::Result<Metadata> {
    let entry = std::fs::symlink_metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    ensure!(!entry.file_type().is_symlink(), "{} is a symlink, which bestow does not follow", path.display());
    ensure!(entry.is_file(), "{} is not a regular file", path.display());
    Ok(entry)
}

/// Opens the regular file at `path` for reading. The opened file must be the entry that was
/// checked: a symlink swapped in between the check and the open is refused.
fn open_regular(path: &Path) -> anyhow::Result<File> {
    let entry = regular_file(path)?;
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let opened = file.metadata()?;
        ensure!((opened.dev(), opened.ino()) == (entry.dev(), entry.ino()), "{} changed while opened", path.display());
    }
    #[cfg(not(unix))]
    let _ = entry;
    Ok(file)
}

/// The content of the regular file at `path` (a manifest or a key file: small).
fn read_regular(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_regular(path)?.read_to_end(&mut bytes).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(bytes)
}

/// Creates a new file readable by its owner only.
fn create_private(path: &Path) -> anyhow::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).with_context(|| format!("cannot create {}", path.display()))
}

/// Writes `bytes` to a new file readable by its owner only, and flushes it to disk.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = create_private(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}
