//! `bestow admin backup` and `bestow admin restore`: a copy of an SQLite data dir (both
//! databases and the signing keys) taken while the server runs, and its restoration into an
//! empty data dir.
//!
//! Each database is copied with SQLite's online backup in one read transaction, so each copy
//! is the state of one instant, with no half-done saga step (every step is one commit). The
//! event database is copied before the auth database, so every user a claim names is in the
//! copy of the accounts. Claims under way at that instant are copied with their lease and
//! finished by the recovery sweeper of the server started on the restored dir. The manifest
//! is written last: a backup dir without one is incomplete and is refused by `restore`.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail, ensure};
use bestow_auth::signing::KEY_FILE;
use serde::{Deserialize, Serialize};

use crate::config::{Config, Storage};

/// The file naming what a backup holds; present only in a complete backup.
pub const MANIFEST: &str = "bestow-backup.json";
/// The databases, in the order they are copied (see the module doc).
const DATABASES: [&str; 2] = ["event.db", "auth.db"];
/// Version of the backup layout.
const FORMAT: u32 = 1;

/// What a backup dir holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Manifest {
    format: u32,
    bestow_version: String,
    created_at: chrono::DateTime<chrono::Utc>,
    files: Vec<BackedUpFile>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BackedUpFile {
    name: String,
    bytes: u64,
}

/// Copies the data dir of `config` into `target`, a new or empty directory.
pub fn backup(config: &Config, target: &Path) -> anyhow::Result<()> {
    sqlite_only(config, "backup")?;
    let source = &config.data_dir;
    for name in DATABASES.iter().chain([&KEY_FILE]) {
        let path = source.join(name);
        ensure!(path.is_file(), "{} does not exist: is `data_dir` ({}) right?", path.display(), source.display());
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
        files.push(BackedUpFile { name: name.to_owned(), bytes: std::fs::metadata(target.join(name))?.len() });
    }
    // The key file is replaced by rename, never rewritten in place: one read sees one version.
    let keys = std::fs::read(source.join(KEY_FILE)).context("cannot read the signing keys")?;
    serde_json::from_slice::<serde_json::Value>(&keys).context("the signing key file is not JSON")?;
    write_private(&target.join(KEY_FILE), &keys)?;
    files.push(BackedUpFile { name: KEY_FILE.to_owned(), bytes: keys.len() as u64 });

    let manifest = Manifest {
        format: FORMAT,
        bestow_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: bestow_core::time::now(),
        files,
    };
    let partial = target.join(format!("{MANIFEST}.partial"));
    write_private(&partial, &serde_json::to_vec_pretty(&manifest)?)?;
    std::fs::rename(&partial, target.join(MANIFEST))?;
    for file in &manifest.files {
        println!("backed up {} ({} bytes)", file.name, file.bytes);
    }
    println!("backup complete in {}", target.display());
    Ok(())
}

/// Restores the backup in `from` into the data dir of `config`, which must be new or empty.
pub fn restore(config: &Config, from: &Path) -> anyhow::Result<()> {
    sqlite_only(config, "restore")?;
    let text = std::fs::read(from.join(MANIFEST))
        .with_context(|| format!("{} has no {MANIFEST}: not a complete backup", from.display()))?;
    let manifest: Manifest = serde_json::from_slice(&text).with_context(|| format!("{MANIFEST} is not valid"))?;
    ensure!(manifest.format == FORMAT, "backup format {} is not supported (expected {FORMAT})", manifest.format);
    for name in DATABASES.iter().chain([&KEY_FILE]) {
        ensure!(manifest.files.iter().any(|f| f.name == *name), "the backup lacks {name}");
    }
    for file in &manifest.files {
        let size =
            std::fs::metadata(from.join(&file.name)).with_context(|| format!("the backup lacks {}", file.name))?;
        ensure!(size.len() == file.bytes, "{} has {} bytes, the manifest says {}", file.name, size.len(), file.bytes);
        if DATABASES.contains(&file.name.as_str()) {
            bestow_store_sqlite::check_integrity(&from.join(&file.name))
                .with_context(|| format!("{} in the backup is damaged", file.name))?;
        }
    }
    let target = &config.data_dir;
    prepare_empty_dir(target)?;
    for file in &manifest.files {
        let partial = target.join(format!("{}.partial", file.name));
        let mut source = File::open(from.join(&file.name))?;
        let mut copy = create_private(&partial)?;
        std::io::copy(&mut source, &mut copy)?;
        copy.sync_all()?;
        std::fs::rename(&partial, target.join(&file.name))?;
        println!("restored {} ({} bytes)", file.name, file.bytes);
    }
    println!("restored the backup of {} into {}", manifest.created_at.to_rfc3339(), target.display());
    Ok(())
}

fn sqlite_only(config: &Config, what: &str) -> anyhow::Result<()> {
    if config.storage != Storage::Sqlite {
        bail!(
            "`bestow admin {what}` handles SQLite data dirs; with storage = mongodb use mongodump/mongorestore \
             and copy {KEY_FILE} from the data dir (see docs/operations.md)"
        );
    }
    Ok(())
}

/// Creates `dir` (owner-only) or checks that it is empty: nothing is ever overwritten.
fn prepare_empty_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        ensure!(entries.next().is_none(), "{} is not empty", dir.display());
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).with_context(|| format!("cannot create {}", dir.display()))
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
