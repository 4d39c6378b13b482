//! Whole-database copies for `bestow admin backup` and `bestow admin restore` on MongoDB.
//!
//! **Dump.** [`MongoBackup::snapshot`] opens one multi-document transaction at read concern
//! `snapshot`; every collection of both databases is then read in it, so the copy is the state
//! of one instant across `auth_db` and `event_db` (a transaction may read several databases),
//! with no half-done claim step and the stock invariant intact, while the server keeps
//! writing. The transaction writes nothing and is aborted at the end. Each document is written
//! as one line of canonical Extended JSON (every BSON type kept: int32 vs int64, Date,
//! ObjectId), fields in stored order, read from the cursor batch by batch (never the whole
//! collection in memory). A line is decoded again before it is accepted, and a document whose
//! line would not read back identically (a field named like an Extended JSON key, `$date`…)
//! fails the dump rather than being copied wrong.
//!
//! mongod bounds a transaction's life (`transactionLifetimeLimitSeconds`, 60 s by default):
//! a dump that takes longer fails (never a mixed copy); `mongodump --oplog` has no such bound.
//!
//! **Load.** [`MongoBackup::load`] inserts a dump file's documents in ordered batches. The
//! indexes are the stores' own (`MongoAuthStore::create_indexes`,
//! `MongoEventStore::create_indexes`), created after the load as `mongorestore` does.
//!
//! `backup_runs` in `event_db` records each completed backup (written by the backup command,
//! read by the server's backup-age gauge).

use std::io::{BufRead, Write};

use bestow_kernel::store::StoreError;
use bson::oid::ObjectId;
use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};
use mongodb::options::{ReadConcern, WriteConcern};
use mongodb::{Client, ClientSession, Collection};
use serde::{Deserialize, Serialize};

use crate::common::map_error;
use crate::event_db::MongoEventStore;
use crate::fields::datetime;

/// The collections the auth store keeps (`auth_db`): every dump holds them.
pub const AUTH_COLLECTIONS: [&str; 3] = [crate::auth::USERS, crate::auth::REFRESH_TOKENS, crate::audit::AUDIT_LOGS];
/// The collections the event store keeps (`event_db`): every dump holds them.
pub const EVENT_COLLECTIONS: [&str; 10] = [
    crate::event_db::EVENTS,
    crate::event_db::USER_REWARD_REQUESTS,
    crate::event_db::REWARD_LEDGER,
    crate::event_db::ACTIVITIES,
    crate::event_db::SERVICE_KEYS,
    crate::event_db::AUDIENCES,
    crate::event_db::AUDIENCE_MEMBERS,
    crate::event_db::PLAYER_PROPERTIES,
    crate::event_db::AUDIENCE_STICKY,
    crate::audit::AUDIT_LOGS,
];
/// The event collections added after backups were first made (audiences): a backup made before
/// them restores with them empty.
pub const EVENT_COLLECTIONS_ADDED_LATER: [&str; 4] = [
    crate::event_db::AUDIENCES,
    crate::event_db::AUDIENCE_MEMBERS,
    crate::event_db::PLAYER_PROPERTIES,
    crate::event_db::AUDIENCE_STICKY,
];
/// Completed backups, in `event_db`: an addition to the seed's collections.
pub const BACKUP_RUNS: &str = "backup_runs";

/// Documents inserted per batch at most…
const BATCH_DOCUMENTS: usize = 1_000;
/// …and bytes of Extended JSON per batch at most (well under mongod's 48 MB message).
const BATCH_BYTES: usize = 8 * 1024 * 1024;

/// Why a dump or a load failed.
#[derive(Debug)]
pub enum BackupError {
    /// The server refused or could not be reached.
    Store(StoreError),
    /// Reading or writing a dump file.
    Io(std::io::Error),
    /// A line of a dump file (1-based) that is not one document, or a document that cannot be
    /// written as one.
    Format { line: u64, reason: String },
}

impl std::fmt::Display for BackupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store(error) => write!(f, "{error}"),
            Self::Io(error) => write!(f, "{error}"),
            Self::Format { line, reason } => write!(f, "line {line}: {reason}"),
        }
    }
}

impl std::error::Error for BackupError {}

impl From<StoreError> for BackupError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<std::io::Error> for BackupError {
    fn from(error: std::io::Error) -> Self {
        Self::Io(error)
    }
}

impl From<mongodb::error::Error> for BackupError {
    fn from(error: mongodb::error::Error) -> Self {
        Self::Store(map_error(error))
    }
}

/// A connection for dumping and loading whole databases.
#[derive(Clone)]
pub struct MongoBackup {
    client: Client,
}

impl std::fmt::Debug for MongoBackup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoBackup").finish_non_exhaustive()
    }
}

impl MongoBackup {
    /// A connection to the server at `uri` (lazy, like the stores').
    pub async fn connect(uri: &str) -> Result<Self, StoreError> {
        Ok(Self { client: crate::common::client(uri).await? })
    }

    /// The collections of `database` (views and `system.*` left out), in name order. Listed
    /// outside any transaction: mongod does not list collections inside one.
    pub async fn collections(&self, database: &str) -> Result<Vec<String>, StoreError> {
        let reply = self
            .client
            .database(database)
            .run_command(doc! { "listCollections": 1, "nameOnly": false })
            .await
            .map_err(map_error)?;
        let cursor =
            reply.get_document("cursor").map_err(|e| StoreError::Unavailable(format!("listCollections: {e}")))?;
        if !matches!(cursor.get("id"), Some(Bson::Int64(0) | Bson::Int32(0)) | None) {
            return Err(StoreError::Unavailable(format!("{database} has more collections than one reply lists")));
        }
        let mut names = Vec::new();
        for entry in cursor.get_array("firstBatch").into_iter().flatten() {
            let Some(entry) = entry.as_document() else { continue };
            let Ok(name) = entry.get_str("name") else { continue };
            // Absent on servers that only have collections.
            let collection = entry.get_str("type").map_or(true, |kind| kind == "collection");
            if collection && !name.starts_with("system.") {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Starts a read of both databases at one instant: see the module docs.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut session = self.client.start_session().await.map_err(map_error)?;
        session.start_transaction().read_concern(ReadConcern::snapshot()).await.map_err(map_error)?;
        Ok(Snapshot { client: self.client.clone(), session })
    }

    /// The collections of `database` that hold at least one document.
    pub async fn non_empty_collections(&self, database: &str) -> Result<Vec<String>, StoreError> {
        let mut found = Vec::new();
        for name in self.collections(database).await? {
            let collection = self.client.database(database).collection::<Document>(&name);
            if collection.find_one(doc! {}).projection(doc! { "_id": 1 }).await.map_err(map_error)?.is_some() {
                found.push(name);
            }
        }
        Ok(found)
    }

    /// Inserts every document of a dump file (`lines`: one canonical Extended JSON document
    /// per line) into `database.collection`, in ordered batches with majority write concern;
    /// returns how many. A failure leaves the batches before it inserted.
    pub async fn load(&self, database: &str, collection: &str, lines: impl BufRead) -> Result<u64, BackupError> {
        let target: Collection<Document> = self.client.database(database).collection(collection);
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        let mut loaded = 0;
        let mut documents = Lines::new(lines);
        while let Some((document, bytes)) = documents.next_document()? {
            batch.push(document);
            batch_bytes += bytes;
            if batch.len() >= BATCH_DOCUMENTS || batch_bytes >= BATCH_BYTES {
                loaded += insert(&target, std::mem::take(&mut batch)).await?;
                batch_bytes = 0;
            }
        }
        if !batch.is_empty() {
            loaded += insert(&target, batch).await?;
        }
        Ok(loaded)
    }
}

async fn insert(target: &Collection<Document>, batch: Vec<Document>) -> Result<u64, BackupError> {
    let count = u64::try_from(batch.len()).unwrap_or(u64::MAX);
    target.insert_many(batch).ordered(true).write_concern(WriteConcern::majority()).await?;
    Ok(count)
}

/// A read of both databases at one instant (one transaction at read concern `snapshot`).
pub struct Snapshot {
    client: Client,
    session: ClientSession,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").finish_non_exhaustive()
    }
}

impl Snapshot {
    /// Writes every document of `database.collection`, as it was at the snapshot's instant,
    /// to `out` (one line each); returns how many.
    pub async fn export(
        &mut self,
        database: &str,
        collection: &str,
        out: &mut (impl Write + Send),
    ) -> Result<u64, BackupError> {
        let source: Collection<Document> = self.client.database(database).collection(collection);
        let mut cursor = source.find(doc! {}).session(&mut self.session).await?;
        let mut line = Vec::new();
        let mut exported = 0;
        while let Some(document) = cursor.next(&mut self.session).await {
            let document = document?;
            exported += 1;
            line.clear();
            encode_line(&document, &mut line).map_err(|reason| BackupError::Format { line: exported, reason })?;
            out.write_all(&line)?;
        }
        Ok(exported)
    }

    /// Ends the read. The transaction wrote nothing: it is aborted, not committed.
    pub async fn finish(mut self) -> Result<(), StoreError> {
        self.session.abort_transaction().await.map_err(map_error)
    }
}

/// `document` as one line of canonical Extended JSON (with its `\n`), fields in stored order.
/// Fails when the line would not read back as the very same document.
pub fn encode_line(document: &Document, out: &mut Vec<u8>) -> Result<(), String> {
    let start = out.len();
    write_document(document, out).map_err(|e| e.to_string())?;
    let decoded = decode_line(&out[start..])?;
    let same = match (decoded.to_vec(), document.to_vec()) {
        (Ok(decoded), Ok(original)) => decoded == original,
        _ => false,
    };
    if !same {
        let id = document.get("_id").map_or_else(|| "?".to_owned(), ToString::to_string);
        return Err(format!(
            "the document with _id {id} does not survive Extended JSON (a field named like an Extended JSON key?)"
        ));
    }
    out.push(b'\n');
    Ok(())
}

/// A line of a dump file (its `\n` optional) as the document it holds.
pub fn decode_line(line: &[u8]) -> Result<Document, String> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    match serde_json::from_slice::<Bson>(line) {
        Ok(Bson::Document(document)) => Ok(document),
        Ok(other) => Err(format!("not a document but {:?}", other.element_type())),
        Err(error) => Err(format!("not Extended JSON: {error}")),
    }
}

/// Reads a whole dump file and checks that every line is one document; returns how many.
pub fn check_dump(lines: impl BufRead) -> Result<u64, BackupError> {
    let mut documents = Lines::new(lines);
    let mut count = 0;
    while documents.next_document()?.is_some() {
        count += 1;
    }
    Ok(count)
}

/// The documents of a dump file, line by line.
struct Lines<R> {
    reader: R,
    buffer: Vec<u8>,
    number: u64,
}

impl<R: BufRead> Lines<R> {
    fn new(reader: R) -> Self {
        Self { reader, buffer: Vec::new(), number: 0 }
    }

    /// The next document and the length of its line; `None` at the end.
    fn next_document(&mut self) -> Result<Option<(Document, usize)>, BackupError> {
        self.buffer.clear();
        let read = self.reader.read_until(b'\n', &mut self.buffer)?;
        if read == 0 {
            return Ok(None);
        }
        self.number += 1;
        let line = self.number;
        if self.buffer.last() != Some(&b'\n') {
            return Err(BackupError::Format { line, reason: "the file ends inside a line (truncated?)".into() });
        }
        let document = decode_line(&self.buffer).map_err(|reason| BackupError::Format { line, reason })?;
        if !document.contains_key("_id") {
            return Err(BackupError::Format { line, reason: "a document without _id".into() });
        }
        Ok(Some((document, read)))
    }
}

fn write_document(document: &Document, out: &mut Vec<u8>) -> serde_json::Result<()> {
    out.push(b'{');
    for (n, (key, value)) in document.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, key)?;
        out.push(b':');
        write_value(value, out)?;
    }
    out.push(b'}');
    Ok(())
}

fn write_value(value: &Bson, out: &mut Vec<u8>) -> serde_json::Result<()> {
    match value {
        Bson::Document(document) => write_document(document, out),
        Bson::Array(items) => {
            out.push(b'[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
            Ok(())
        }
        scalar => serde_json::to_writer(&mut *out, &scalar.clone().into_canonical_extjson()),
    }
}

impl MongoEventStore {
    /// Records a completed backup in `backup_runs`.
    pub async fn record_backup(
        &self,
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
        location: &str,
        bytes: u64,
    ) -> Result<(), StoreError> {
        let run = BackupRunDocument {
            id: ObjectId::new(),
            started_at,
            finished_at,
            location: location.to_owned(),
            bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
        };
        self.db.collection::<BackupRunDocument>(BACKUP_RUNS).insert_one(run).await.map(drop).map_err(map_error)
    }

    /// When the newest backup recorded in `backup_runs` finished, if one ever did.
    pub async fn last_backup(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let newest = self
            .db
            .collection::<Document>(BACKUP_RUNS)
            .find_one(doc! {})
            .sort(doc! { "finishedAt": -1 })
            .projection(doc! { "finishedAt": 1 })
            .await
            .map_err(map_error)?;
        newest.map(|run| crate::common::read_date(&run, "finishedAt", "backup run")).transpose()
    }
}

/// A completed backup as recorded in `backup_runs`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BackupRunDocument {
    #[serde(rename = "_id")]
    id: ObjectId,
    #[serde(with = "datetime")]
    started_at: DateTime<Utc>,
    #[serde(with = "datetime")]
    finished_at: DateTime<Utc>,
    location: String,
    bytes: i64,
}
