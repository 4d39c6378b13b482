//! What every MongoDB adapter shares: connecting, error mapping, transactions, ids and dates,
//! JSON ↔ BSON, and reading cursors.

use std::time::Duration;

use bestow_kernel::page::Page;
use bestow_kernel::store::{Conflict, StoreError};
use bson::oid::ObjectId;
use bson::{Bson, Document, doc};
use chrono::{DateTime, SecondsFormat, Utc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions, ReadConcern, WriteConcern};
use mongodb::{Client, ClientSession, Collection, Database, IndexModel, SessionCursor};
use serde_json::{Map, Number, Value};

/// How long an operation waits for a reachable server before it is `Unavailable`.
const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a transaction whose failure the server labels transient (a write conflict with a
/// concurrent transaction) is retried: the driver's documented retry loop, bounded in time.
const TRANSACTION_RETRY_TIME: Duration = Duration::from_secs(10);
/// Attempts of a commit whose outcome is unknown.
const COMMIT_ATTEMPTS: usize = 5;

pub(crate) const DUPLICATE_KEY: i32 = 11000;
const WRITE_CONFLICT: i32 = 112;

/// A client for `uri` that connects lazily: nothing is contacted until the first operation,
/// so a server that is momentarily down does not fail start-up.
pub(crate) async fn client(uri: &str) -> Result<Client, StoreError> {
    let mut options =
        ClientOptions::parse(uri).await.map_err(|e| StoreError::Unavailable(format!("mongodb uri: {e}")))?;
    options.server_selection_timeout.get_or_insert(SERVER_SELECTION_TIMEOUT);
    options.connect_timeout.get_or_insert(CONNECT_TIMEOUT);
    options.app_name.get_or_insert_with(|| "bestow".to_owned());
    Client::with_options(options).map_err(map_error)
}

/// Cheap round trip: `Unavailable` when the server cannot be reached.
pub(crate) async fn ping(db: &Database) -> Result<(), StoreError> {
    db.run_command(doc! { "ping": 1 }).await.map(drop).map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// An index on `keys` named `name`.
pub(crate) fn index(keys: Document, name: &str, unique: bool) -> IndexModel {
    let options = IndexOptions::builder().name(name.to_owned()).unique(unique.then_some(true)).build();
    IndexModel::builder().keys(keys).options(options).build()
}

/// Creates `indexes` on `collection`; creating an existing identical index is a no-op.
pub(crate) async fn create_indexes(
    db: &Database,
    collection: &str,
    indexes: Vec<IndexModel>,
) -> Result<(), StoreError> {
    db.collection::<Document>(collection).create_indexes(indexes).await.map(drop).map_err(map_error)
}

/// The server's error code, if it sent one.
pub(crate) fn error_code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Command(command) => Some(command.code),
        ErrorKind::Write(WriteFailure::WriteError(write)) => Some(write.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(concern)) => Some(concern.code),
        ErrorKind::InsertMany(insert) => insert.write_errors.as_ref().and_then(|errors| errors.first()).map(|e| e.code),
        _ => None,
    }
}

pub(crate) fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    error_code(error) == Some(DUPLICATE_KEY)
}

/// A failure another attempt of the whole transaction may not meet.
fn is_transient(error: &StoreError, labels: Option<&mongodb::error::Error>) -> bool {
    matches!(error, StoreError::Unavailable(_)) && labels.is_some_and(|e| e.contains_label("TransientTransactionError"))
}

/// Maps driver errors: a duplicate key is a conflict, everything else is unavailability.
pub(crate) fn map_error(error: mongodb::error::Error) -> StoreError {
    match error_code(&error) {
        Some(DUPLICATE_KEY) => StoreError::Conflict(Conflict::Duplicate),
        _ => StoreError::Unavailable(error.to_string()),
    }
}

/// A driver error kept whole, so that [`in_transaction`] can read its labels.
#[derive(Debug)]
pub(crate) struct TxError {
    pub(crate) error: StoreError,
    driver: Option<mongodb::error::Error>,
}

impl From<StoreError> for TxError {
    fn from(error: StoreError) -> Self {
        Self { error, driver: None }
    }
}

impl From<mongodb::error::Error> for TxError {
    fn from(driver: mongodb::error::Error) -> Self {
        Self { error: map_error(driver.clone()), driver: Some(driver) }
    }
}

/// `Result` of work inside a transaction.
pub(crate) type TxResult<T> = Result<T, TxError>;

/// Maps a driver error inside a transaction to a [`TxError`] with `conflict` for a duplicate key.
pub(crate) fn tx_error(conflict: Conflict) -> impl FnOnce(mongodb::error::Error) -> TxError {
    move |driver| {
        let error = if is_duplicate_key(&driver) { StoreError::Conflict(conflict) } else { map_error(driver.clone()) };
        TxError { error, driver: Some(driver) }
    }
}

/// Boxed future of one transaction attempt, borrowing the session.
pub(crate) type Attempt<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = TxResult<T>> + Send + 'a>>;

/// Runs `work` in a transaction and commits it; aborts on error. The whole attempt is repeated
/// while the server labels its failure transient (a write conflict between concurrent
/// transactions); after the last attempt that failure is `Unavailable`. A commit whose outcome
/// is unknown is retried as the driver specifies (committing is idempotent).
pub(crate) async fn in_transaction<T, F>(client: &Client, mut work: F) -> Result<T, StoreError>
where
    F: for<'s> FnMut(&'s mut ClientSession) -> Attempt<'s, T>,
{
    let mut session = client.start_session().await.map_err(map_error)?;
    let started = std::time::Instant::now();
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        // Snapshot reads and majority writes: what a transaction read stays true until it
        // commits (a concurrent write makes it a write conflict), and a commit survives a
        // failover.
        session
            .start_transaction()
            .read_concern(ReadConcern::snapshot())
            .write_concern(WriteConcern::majority())
            .await
            .map_err(map_error)?;
        let outcome = work(&mut session).await;
        let failure = match outcome {
            Ok(value) => match commit(&mut session).await {
                Ok(()) => return Ok(value),
                Err(driver) => TxError::from(driver),
            },
            Err(failure) => {
                // An abort can only fail if the transaction is gone already.
                let _ = session.abort_transaction().await;
                failure
            }
        };
        let write_conflict = failure.driver.as_ref().and_then(error_code) == Some(WRITE_CONFLICT);
        let transient = is_transient(&failure.error, failure.driver.as_ref()) || write_conflict;
        if transient && started.elapsed() < TRANSACTION_RETRY_TIME {
            tracing::debug!(attempt, "retrying a transaction after a transient failure");
            // Exponential backoff with full jitter (2 ms doubling, at most 100 ms), so that
            // writers colliding on a hot document spread out instead of colliding again.
            let ceiling = (2u64 << attempt.min(6)).min(100);
            tokio::time::sleep(Duration::from_millis(rand::random_range(0..=ceiling))).await;
            continue;
        }
        return Err(failure.error);
    }
}

async fn commit(session: &mut ClientSession) -> Result<(), mongodb::error::Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match session.commit_transaction().await {
            Err(error) if attempt < COMMIT_ATTEMPTS && error.contains_label("UnknownTransactionCommitResult") => {}
            other => return other,
        }
    }
}

/// Inserts `document` into `collection` and its `audit` entry into `audit_log`, in one
/// transaction; a duplicate key in `collection` is `conflict`.
pub(crate) async fn insert_audited(
    client: &Client,
    (collection, document): (&Collection<Document>, Document),
    (audit_log, audit): (&Collection<Document>, Document),
    conflict: Conflict,
) -> Result<(), StoreError> {
    in_transaction(client, |session| {
        let (collection, audit_log) = (collection.clone(), audit_log.clone());
        let (document, audit) = (document.clone(), audit.clone());
        Box::pin(async move {
            collection.insert_one(document).session(&mut *session).await.map_err(tx_error(conflict))?;
            audit_log.insert_one(audit).session(&mut *session).await?;
            TxResult::Ok(())
        })
    })
    .await
}

/// Reads every document of a cursor opened in `session`.
pub(crate) async fn collect_session(
    mut cursor: SessionCursor<Document>,
    session: &mut ClientSession,
) -> Result<Vec<Document>, mongodb::error::Error> {
    let mut documents = Vec::new();
    while let Some(document) = cursor.next(session).await {
        documents.push(document?);
    }
    Ok(documents)
}

/// Reads every document of a cursor.
pub(crate) async fn collect(cursor: mongodb::Cursor<Document>) -> Result<Vec<Document>, StoreError> {
    use futures_util::TryStreamExt;
    cursor.try_collect().await.map_err(map_error)
}

/// Skip and limit of a page.
pub(crate) fn page_bounds(page: bestow_kernel::page::PageRequest) -> (u64, i64) {
    (page.offset(), i64::from(page.limit))
}

/// One page of `filter` sorted by `sort`, and the total matching `filter`.
pub(crate) async fn find_page(
    collection: &Collection<Document>,
    filter: Document,
    sort: Document,
    page: bestow_kernel::page::PageRequest,
) -> Result<Page<Document>, StoreError> {
    let total = collection.count_documents(filter.clone()).await.map_err(map_error)?;
    let (skip, limit) = page_bounds(page);
    let cursor = collection.find(filter).sort(sort).skip(skip).limit(limit).await.map_err(map_error)?;
    Ok(Page::new(collect(cursor).await?, page, total))
}

/// An id as stored: an ObjectId when it is one (24 lowercase hex digits, as every generated id
/// is, so that it reads back identically), otherwise the string itself.
pub(crate) fn id_bson(id: &str) -> Bson {
    let canonical = id.len() == 24 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    match ObjectId::parse_str(id) {
        Ok(oid) if canonical => Bson::ObjectId(oid),
        _ => Bson::String(id.to_owned()),
    }
}

/// The text of a stored id.
pub(crate) fn id_text(value: &Bson) -> Option<String> {
    match value {
        Bson::ObjectId(oid) => Some(oid.to_hex()),
        Bson::String(text) => Some(text.clone()),
        _ => None,
    }
}

pub(crate) fn date(at: DateTime<Utc>) -> Bson {
    Bson::DateTime(bson::DateTime::from_chrono(at))
}

/// JSON as BSON: integers as int64, other numbers as double, objects as documents.
pub(crate) fn json_to_bson(value: &Value) -> Bson {
    match value {
        Value::Null => Bson::Null,
        Value::Bool(flag) => Bson::Boolean(*flag),
        Value::Number(number) => match number.as_i64() {
            Some(integer) => Bson::Int64(integer),
            None => Bson::Double(number.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(text) => Bson::String(text.clone()),
        Value::Array(items) => Bson::Array(items.iter().map(json_to_bson).collect()),
        Value::Object(members) => Bson::Document(json_to_document(members)),
    }
}

pub(crate) fn json_to_document(members: &Map<String, Value>) -> Document {
    members.iter().map(|(key, value)| (key.clone(), json_to_bson(value))).collect()
}

/// BSON as the JSON the domain types read: dates as RFC 3339 text (milliseconds, UTC),
/// ObjectIds as hex.
pub(crate) fn bson_to_json(value: &Bson) -> Value {
    match value {
        Bson::Null | Bson::Undefined => Value::Null,
        Bson::Boolean(flag) => Value::Bool(*flag),
        Bson::Int32(integer) => Value::from(*integer),
        Bson::Int64(integer) => Value::from(*integer),
        Bson::Double(number) => Number::from_f64(*number).map_or(Value::Null, Value::Number),
        Bson::String(text) => Value::String(text.clone()),
        Bson::Array(items) => Value::Array(items.iter().map(bson_to_json).collect()),
        Bson::Document(document) => Value::Object(document_to_json(document)),
        Bson::DateTime(at) => Value::String(at.to_chrono().to_rfc3339_opts(SecondsFormat::Millis, true)),
        Bson::ObjectId(oid) => Value::String(oid.to_hex()),
        other => Value::String(other.to_string()),
    }
}

pub(crate) fn document_to_json(document: &Document) -> Map<String, Value> {
    document.iter().map(|(key, value)| (key.clone(), bson_to_json(value))).collect()
}

/// Turns the RFC 3339 text at `key` (as serde wrote it) into a BSON date; null stays null.
pub(crate) fn text_to_date(document: &mut Document, key: &str) {
    if let Some(Bson::String(text)) = document.get(key)
        && let Ok(at) = DateTime::parse_from_rfc3339(text)
    {
        document.insert(key, date(at.with_timezone(&Utc)));
    }
}

/// Turns the id text at `key` into an ObjectId when it is one.
pub(crate) fn text_to_id(document: &mut Document, key: &str) {
    if let Some(Bson::String(text)) = document.get(key) {
        let id = id_bson(text);
        document.insert(key, id);
    }
}

/// Applies `fix` to every document of the array at `key`.
pub(crate) fn each_in_array(document: &mut Document, key: &str, fix: impl Fn(&mut Document)) {
    if let Some(Bson::Array(items)) = document.get_mut(key) {
        for item in items {
            if let Bson::Document(inner) = item {
                fix(inner);
            }
        }
    }
}

pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("unreadable {what} document: {error}"))
}

/// `^text` with every regex metacharacter escaped, for prefix and substring filters.
pub(crate) fn escape_regex(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\^$.|?*+()[]{}-/#&~ ".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Reads a required string field.
pub(crate) fn text(document: &Document, key: &str, what: &str) -> Result<String, StoreError> {
    document.get_str(key).map(str::to_owned).map_err(|e| corrupt(what, e))
}

/// Reads a required date field.
pub(crate) fn read_date(document: &Document, key: &str, what: &str) -> Result<DateTime<Utc>, StoreError> {
    document.get_datetime(key).map(|at| at.to_chrono()).map_err(|e| corrupt(what, e))
}
