//! `bestow_store_mongo::backup`: a dump reads every collection at one instant and writes each
//! document as a line of canonical Extended JSON that loads back byte for byte; a document
//! that would not survive the round trip fails the dump; restore's helpers (emptiness check,
//! lease release) and the backup-age record.

use bestow_store_mongo::MongoBackup;
use bestow_store_mongo::backup::{BackupError, check_dump, decode_line, encode_line};
use bson::oid::ObjectId;
use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document, doc};

use crate::support;

async fn raw(db: &str) -> mongodb::Database {
    mongodb::Client::with_uri_str(support::uri()).await.expect("client").database(db)
}

/// A document of every BSON type the stores write and a few they do not, fields deliberately
/// out of alphabetical order.
fn varied(n: i32) -> Document {
    doc! {
        "_id": ObjectId::new(),
        "zeta": n,
        "alpha": i64::from(n) << 40,
        "ratio": 1.5,
        "whole": 2.0,
        "at": bson::DateTime::from_millis(1_767_225_600_123),
        "text": "line\nbreak, quote \" and ünïcode",
        "nothing": Bson::Null,
        "flag": true,
        "nested": { "b": 1_i64, "a": [1_i32, "two", { "y": 2, "x": 1 }] },
        "bytes": Binary { subtype: BinarySubtype::Generic, bytes: vec![0, 1, 2, 255] },
    }
}

#[test]
fn a_line_reads_back_as_the_same_document_and_an_ambiguous_one_is_refused() {
    let document = varied(7);
    let mut line = Vec::new();
    encode_line(&document, &mut line).unwrap();
    assert_eq!(line.last(), Some(&b'\n'));
    assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
    let text = String::from_utf8(line.clone()).unwrap();
    assert!(text.contains(r#""zeta":{"$numberInt":"7"}"#), "canonical: {text}");
    assert!(text.contains(r#""at":{"$date":{"$numberLong":"1767225600123"}}"#), "{text}");
    assert!(text.find("\"zeta\"") < text.find("\"alpha\""), "stored order kept: {text}");
    assert_eq!(decode_line(&line).unwrap().to_vec().unwrap(), document.to_vec().unwrap());

    // A string field that looks like an Extended JSON wrapper would come back as an int64.
    let ambiguous = doc! { "_id": 1, "details": { "$numberLong": "5" } };
    let mut line = Vec::new();
    let refused = encode_line(&ambiguous, &mut line).unwrap_err();
    assert!(refused.contains("_id 1") && refused.contains("Extended JSON"), "{refused}");

    let bad = b"{\"_id\":1}\nnot json\n";
    assert!(matches!(check_dump(&bad[..]), Err(BackupError::Format { line: 2, .. })));
    assert!(matches!(check_dump(&b"{\"_id\":1}"[..]), Err(BackupError::Format { line: 1, .. })), "truncated");
    assert!(matches!(check_dump(&b"{\"a\":1}\n"[..]), Err(BackupError::Format { line: 1, .. })), "no _id");
    assert_eq!(check_dump(&b"{\"_id\":1}\n{\"_id\":2}\n"[..]).unwrap(), 2);
}

#[tokio::test]
async fn a_dump_reads_one_instant_across_databases_and_loads_back_identically() {
    let prefix = support::unique_prefix();
    let (first, second) = (format!("{prefix}_a"), format!("{prefix}_b"));
    let (a, b) = (raw(&first).await, raw(&second).await);
    let originals: Vec<Document> = (0..5).map(varied).collect();
    a.collection::<Document>("things").insert_many(originals.clone()).await.unwrap();
    b.collection::<Document>("others").insert_one(doc! { "_id": 1, "n": 1 }).await.unwrap();
    let backup = MongoBackup::connect(&support::uri()).await.unwrap();
    assert_eq!(backup.collections(&first).await.unwrap(), vec!["things".to_owned()]);
    assert_eq!(backup.non_empty_collections(&second).await.unwrap(), vec!["others".to_owned()]);

    let mut snapshot = backup.snapshot().await.unwrap();
    let mut things = Vec::new();
    assert_eq!(snapshot.export(&first, "things", &mut things).await.unwrap(), 5);
    // Written after the snapshot's instant, in both databases: in neither copy.
    a.collection::<Document>("things").insert_one(varied(99)).await.unwrap();
    b.collection::<Document>("others").insert_one(doc! { "_id": 2, "n": 2 }).await.unwrap();
    let mut others = Vec::new();
    assert_eq!(snapshot.export(&second, "others", &mut others).await.unwrap(), 1, "one instant");
    snapshot.finish().await.unwrap();
    assert_eq!(check_dump(&things[..]).unwrap(), 5);

    let target = format!("{prefix}_restored");
    assert_eq!(backup.load(&target, "things", &things[..]).await.unwrap(), 5);
    let cursor = raw(&target).await.collection::<Document>("things").find(doc! {}).await.unwrap();
    let loaded: Vec<Document> = futures_util::TryStreamExt::try_collect(cursor).await.unwrap();
    assert_eq!(loaded.len(), 5);
    for original in &originals {
        let copy = loaded.iter().find(|d| d.get("_id") == original.get("_id")).unwrap();
        assert_eq!(copy.to_vec().unwrap(), original.to_vec().unwrap(), "types and field order kept");
    }
    for db in [a, b, raw(&target).await] {
        db.drop().await.unwrap();
    }
}

#[tokio::test]
async fn release_leases_frees_claims_under_way_only() {
    let (store, name) = support::fresh_event_store().await;
    let requests = raw(&name).await.collection::<Document>("user_reward_requests");
    let lease = bson::DateTime::from_millis(4_102_444_800_000);
    requests
        .insert_many([
            doc! {
                "_id": 1, "requestId": "r1", "status": "PENDING_REWARD_GRANT",
                "leaseOwner": "w1", "leaseExpiresAt": lease, "version": 3_i64,
            },
            doc! {
                "_id": 2, "requestId": "r2", "status": "PENDING_REWARD_GRANT",
                "leaseOwner": Bson::Null, "leaseExpiresAt": Bson::Null, "version": 3_i64,
            },
            doc! {
                "_id": 3, "requestId": "r3", "status": "SUCCESS_ALL_GRANTED",
                "leaseOwner": "w1", "leaseExpiresAt": lease, "version": 3_i64,
            },
        ])
        .await
        .unwrap();
    assert_eq!(store.release_leases().await.unwrap(), 1);
    let released = requests.find_one(doc! { "_id": 1 }).await.unwrap().unwrap();
    assert_eq!(released.get("leaseOwner"), Some(&Bson::Null));
    assert_eq!(released.get("leaseExpiresAt"), Some(&Bson::Null));
    assert!(matches!(released.get("version"), Some(Bson::Int64(4) | Bson::Int32(4))), "{released}");
    let finished = requests.find_one(doc! { "_id": 3 }).await.unwrap().unwrap();
    assert_eq!(finished.get_str("leaseOwner").unwrap(), "w1", "a final claim is left as it is");
    raw(&name).await.drop().await.unwrap();
}

#[tokio::test]
async fn the_newest_backup_run_is_read_back() {
    let (store, name) = support::fresh_event_store().await;
    assert_eq!(store.last_backup().await.unwrap(), None);
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc);
    let (older, newer) = (at("2026-01-02T03:04:05.678Z"), at("2026-01-03T03:04:05.678Z"));
    store.record_backup(newer, newer, "/backups/b", 10).await.unwrap();
    store.record_backup(older, older, "/backups/a", 10).await.unwrap();
    assert_eq!(store.last_backup().await.unwrap(), Some(newer));
    raw(&name).await.drop().await.unwrap();
}
