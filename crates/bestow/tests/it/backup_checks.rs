//! What `bestow admin restore` (and `backup`) refuse, each replayed as an attack on an honest
//! backup: manifest names outside the backup's own files (a path out of the data dir, an extra
//! or repeated file), an edited file or checksum, the checksum-less format 1, a backup of the
//! other storage, symlinks, and a key file the server would not load. Every refusal is one
//! line, exits non-zero and writes nothing; the honest backup still restores, into a directory
//! narrowed to owner-only.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bestow::backup::MANIFEST;
use bestow_auth::signing::KEY_FILE;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::process::ServeProcess;

const BINARY: &str = env!("CARGO_BIN_EXE_bestow");
const FILES: [&str; 3] = ["event.db", "auth.db", KEY_FILE];

/// In a temporary root: `source`, a data dir a server made, holding the player `mallory`,
/// and `backup`, an honest backup of it.
struct Fixture {
    root: TempDir,
    backup: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let root = TempDir::new().unwrap();
        let source = root.path().join("source");
        ServeProcess::start(&source, &[]).stop();
        succeeded(&admin(&source, &["create-user", "--username", "mallory"]));
        let backup = root.path().join("backup");
        succeeded(&admin(&source, &["backup", "--to", backup.to_str().unwrap()]));
        Self { root, backup }
    }

    /// `name` under the root (not created).
    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// A copy of the honest backup in `name` under the root, to tamper with.
    fn copy(&self, name: &str) -> PathBuf {
        let copy = self.path(name);
        std::fs::create_dir_all(&copy).unwrap();
        for entry in std::fs::read_dir(&self.backup).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
        copy
    }
}

/// `bestow admin <args>` on `data_dir`.
fn admin(data_dir: &Path, args: &[&str]) -> Output {
    admin_with(data_dir, args, &[])
}

/// `bestow admin <args>` on `data_dir`, with more settings.
fn admin_with(data_dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(BINARY)
        .arg("admin")
        .args(args)
        .env_clear()
        .env("BESTOW_DATA_DIR", data_dir)
        .env("BESTOW_BCRYPT_COST", "4")
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

fn restore(data_dir: &Path, from: &Path) -> Output {
    admin(data_dir, &["restore", "--from", from.to_str().unwrap()])
}

fn succeeded(output: &Output) {
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// A non-zero exit with one line of error that contains every one of `reasons`.
fn refused(output: &Output, reasons: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "accepted; stdout: {}", String::from_utf8_lossy(&output.stdout));
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    for reason in reasons {
        assert!(stderr.contains(reason), "{reason:?} not in: {stderr}");
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn edit_manifest(backup: &Path, edit: impl FnOnce(&mut Value)) {
    let path = backup.join(MANIFEST);
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut manifest);
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
}

/// What someone who edited files of a backup does next: each entry's size, and with
/// `checksums` its SHA-256 (where the format has one), made to match the file as it now is.
fn reseal(backup: &Path, checksums: bool) {
    edit_manifest(backup, |manifest| {
        for entry in manifest["files"].as_array_mut().unwrap() {
            let content = std::fs::read(backup.join(entry["name"].as_str().unwrap())).unwrap();
            entry["bytes"] = json!(content.len());
            if let Some(sha256) = entry.get_mut("sha256").filter(|_| checksums) {
                *sha256 = json!(sha256_hex(&content));
            }
        }
    });
}

/// Adds a manifest entry for `name`, shaped like the others, with its size and checksum.
fn add_entry(backup: &Path, name: &str) {
    edit_manifest(backup, |manifest| {
        let files = manifest["files"].as_array_mut().unwrap();
        let mut entry = files[0].clone();
        entry["name"] = json!(name);
        files.push(entry);
    });
    reseal(backup, true);
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).unwrap().next().is_none()
}

#[test]
fn an_honest_backup_holds_checksums_restores_and_serves() {
    let fixture = Fixture::new();
    let manifest: Value = serde_json::from_slice(&std::fs::read(fixture.backup.join(MANIFEST)).unwrap()).unwrap();
    assert_eq!(manifest["format"], 2);
    for entry in manifest["files"].as_array().unwrap() {
        let content = std::fs::read(fixture.backup.join(entry["name"].as_str().unwrap())).unwrap();
        assert_eq!(entry["sha256"], json!(sha256_hex(&content)), "{entry}");
    }

    let data = fixture.path("restored");
    succeeded(&restore(&data, &fixture.backup));
    for name in FILES {
        assert_eq!(std::fs::read(data.join(name)).unwrap(), std::fs::read(fixture.backup.join(name)).unwrap());
    }
    let users = admin(&data, &["list-users"]);
    succeeded(&users);
    assert!(String::from_utf8_lossy(&users.stdout).contains("mallory"));
    ServeProcess::start(&data, &[]).stop();
}

#[test]
fn an_existing_empty_target_ends_owner_only() {
    let fixture = Fixture::new();
    let (backup, data) = (fixture.path("open-backup"), fixture.path("open-data"));
    for dir in [&backup, &data] {
        std::fs::create_dir(dir).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    succeeded(&admin(&fixture.path("source"), &["backup", "--to", backup.to_str().unwrap()]));
    assert_eq!(mode(&backup), 0o700, "the backup dir");
    succeeded(&restore(&data, &fixture.backup));
    assert_eq!(mode(&data), 0o700, "the restored data dir");
}

#[test]
fn restore_refuses_manifest_names_other_than_the_backup_files() {
    let fixture = Fixture::new();
    // `../victim.txt` is a payload beside the backup, and a victim beside the data dir.
    let escape = fixture.copy("backups/escape");
    std::fs::write(fixture.path("backups/victim.txt"), "written by the backup").unwrap();
    let victim = fixture.path("live/victim.txt");
    std::fs::create_dir_all(victim.parent().unwrap()).unwrap();
    std::fs::write(&victim, "precious").unwrap();
    add_entry(&escape, "../victim.txt");
    let data = fixture.path("live/data");
    refused(&restore(&data, &escape), &["\"../victim.txt\"", "not a file of a backup"]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(!data.exists(), "nothing written");

    let absolute = fixture.copy("absolute");
    add_entry(&absolute, victim.to_str().unwrap());
    let extra = fixture.copy("extra");
    std::fs::write(extra.join("notes.txt"), "notes").unwrap();
    add_entry(&extra, "notes.txt");
    let duplicate = fixture.copy("duplicate");
    add_entry(&duplicate, "auth.db");
    let cases = [(absolute, "not a file of a backup"), (extra, "\"notes.txt\""), (duplicate, "auth.db twice")];
    for (backup, reason) in cases {
        let data = backup.with_extension("data");
        refused(&restore(&data, &backup), &[reason]);
        assert!(!data.exists(), "nothing written");
    }
}

#[test]
fn restore_refuses_an_edited_file_or_checksum() {
    let fixture = Fixture::new();
    // The player made ADMIN in the copy of the accounts, and the sizes in the manifest adjusted.
    let promoted = fixture.copy("promoted");
    let accounts = rusqlite::Connection::open(promoted.join("auth.db")).unwrap();
    let update = r#"UPDATE users SET roles = '["ADMIN"]' WHERE username = 'mallory'"#;
    assert_eq!(accounts.execute(update, []).unwrap(), 1);
    drop(accounts);
    reseal(&promoted, false);
    // A checksum edited, its file not.
    let forged = fixture.copy("forged");
    edit_manifest(&forged, |manifest| {
        if let Some(sha256) = manifest["files"][0].get_mut("sha256") {
            *sha256 = json!(sha256_hex(b"another file"));
        }
    });
    for (backup, file) in [(promoted, "auth.db"), (forged, "event.db")] {
        let data = backup.with_extension("data");
        refused(&restore(&data, &backup), &[file, "checksum"]);
        assert!(!data.exists(), "nothing written");
    }
}

#[test]
fn restore_refuses_a_backup_of_the_other_storage() {
    let fixture = Fixture::new();
    let data = fixture.path("as-mongodb-data");
    let on_mongodb = admin_with(
        &data,
        &["restore", "--from", fixture.backup.to_str().unwrap()],
        &[("BESTOW_STORAGE", "mongodb"), ("BESTOW_MONGODB_URI", "mongodb://127.0.0.1:9/")],
    );
    refused(&on_mongodb, &["backup of an SQLite data dir", "storage = sqlite"]);
    let relabelled = fixture.copy("relabelled");
    edit_manifest(&relabelled, |manifest| manifest["storage"] = json!("mongodb"));
    refused(&restore(&data, &relabelled), &["backup of MongoDB databases", "storage = mongodb"]);
    assert!(!data.exists(), "nothing written");
}

#[test]
fn restore_refuses_a_format_1_backup_which_has_no_checksums() {
    let fixture = Fixture::new();
    let old = fixture.copy("format-1");
    edit_manifest(&old, |manifest| {
        manifest["format"] = json!(1);
        for entry in manifest["files"].as_array_mut().unwrap() {
            entry.as_object_mut().unwrap().remove("sha256");
        }
    });
    let data = fixture.path("format-1-data");
    refused(&restore(&data, &old), &["format 1", "no checksums", "version that made it"]);
    assert!(!data.exists(), "nothing written");
}

#[test]
fn backup_and_restore_refuse_symlinks() {
    let fixture = Fixture::new();
    // A database of the backup that is a symlink to a file of the right content.
    let linked = fixture.copy("linked-file");
    let elsewhere = fixture.path("elsewhere.db");
    std::fs::rename(linked.join("auth.db"), &elsewhere).unwrap();
    symlink(&elsewhere, linked.join("auth.db")).unwrap();
    let data = fixture.path("linked-file-data");
    refused(&restore(&data, &linked), &["auth.db", "symlink"]);
    assert!(!data.exists(), "nothing written");

    // A data dir, or a backup target, that is a symlink to an empty directory.
    let empty = fixture.path("empty");
    std::fs::create_dir(&empty).unwrap();
    let link = fixture.path("linked-dir");
    symlink(&empty, &link).unwrap();
    refused(&restore(&link, &fixture.backup), &["linked-dir", "symlink"]);
    refused(&admin(&fixture.path("source"), &["backup", "--to", link.to_str().unwrap()]), &["linked-dir", "symlink"]);
    assert!(is_empty_dir(&empty), "nothing written through the link");

    // A file of the data dir being backed up that is a symlink (a backup's files make a data dir).
    let source = fixture.copy("linked-source");
    std::fs::rename(source.join(KEY_FILE), fixture.path("keys.json")).unwrap();
    symlink(fixture.path("keys.json"), source.join(KEY_FILE)).unwrap();
    let target = fixture.path("linked-source-backup");
    refused(&admin(&source, &["backup", "--to", target.to_str().unwrap()]), &[KEY_FILE, "symlink"]);
    assert!(!target.exists(), "nothing written");
}

#[test]
fn restore_refuses_a_key_file_the_server_would_not_load() {
    let fixture = Fixture::new();
    let bad_seed = r#"{"keys":[{"kid":"k","createdAt":"2025-01-01T00:00:00Z","seed":"AAAA"}]}"#;
    for (n, keys) in [r#"{"keys":"none"}"#, r#"{"keys":[]}"#, r#"{"signingKeys":[]}"#, bad_seed].iter().enumerate() {
        let backup = fixture.copy(&format!("keys-{n}"));
        std::fs::write(backup.join(KEY_FILE), keys).unwrap();
        reseal(&backup, true);
        let data = backup.with_extension("data");
        refused(&restore(&data, &backup), &[KEY_FILE, "not a valid key file"]);
        assert!(!data.exists(), "nothing written");
    }
}
