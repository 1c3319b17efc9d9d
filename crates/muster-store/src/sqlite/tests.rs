//! Unit tests of the group-commit batch: deterministic batches built by
//! hand and run on a real database file.

use super::writer::{run_batch, Job};
use super::{schema, SqliteStore};
use crate::conformance::{pending, request};
use crate::{CommitOutcome, Result, Store, StoreError, Txn, Write};
use chrono::{TimeZone, Utc};
use muster_core::bot::BotInfo;
use muster_core::{TaskId, Time};
use rusqlite::Connection;
use tokio::sync::oneshot;

fn t0() -> Time {
    Utc.with_ymd_and_hms(2044, 5, 6, 7, 8, 9).single().expect("valid fixed date")
}

fn insert(rnd: u16) -> Txn {
    let req = request(TaskId::new(t0(), rnd), t0(), &["unit:batch"]);
    Txn::new().with(Write::InsertTask { result: Box::new(pending(&req)), request: Box::new(req) })
}

fn job(txn: Txn) -> (Job, oneshot::Receiver<Result<CommitOutcome>>) {
    let (tx, rx) = oneshot::channel();
    (Job::Commit(txn, tx), rx)
}

fn outcome(mut rx: oneshot::Receiver<Result<CommitOutcome>>) -> Result<CommitOutcome> {
    rx.try_recv().expect("replied after the batch")
}

#[test]
fn a_conflict_or_sql_error_in_a_batch_fails_only_its_own_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("batch.sqlite");
    let mut conn = Connection::open(&path).expect("open");
    schema::migrate(&mut conn).expect("migrate");
    // Make every PutBot fail with an SQL error.
    conn.execute_batch("DROP TABLE bot").expect("drop bot table");

    let (j1, r1) = job(insert(1));
    let (j2, r2) = job(insert(1).with(Write::PutRequestUuid { key: "lost".into(), task: TaskId(1), created: t0() }));
    let (j3, r3) = job(Txn::new()
        .with(Write::PutRequestUuid { key: "also-lost".into(), task: TaskId(1), created: t0() })
        .with(Write::PutBot(Box::new(BotInfo::new("b", t0())))));
    let (j4, r4) = job(insert(2).with(Write::PutRequestUuid { key: "kept".into(), task: TaskId(2), created: t0() }));
    run_batch(&conn, vec![j1, j2, j3, j4]);

    assert_eq!(outcome(r1).expect("first commits"), CommitOutcome::Committed);
    assert_eq!(outcome(r2).expect("duplicate is an outcome"), CommitOutcome::Conflict { index: 0 });
    assert!(matches!(outcome(r3), Err(StoreError::Other(_))), "sql error fails its txn");
    assert_eq!(outcome(r4).expect("last commits"), CommitOutcome::Committed);

    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect("count") };
    assert_eq!(count("SELECT COUNT(*) FROM task_result"), 2);
    assert_eq!(count("SELECT COUNT(*) FROM request_uuid WHERE key = 'kept'"), 1);
    assert_eq!(count("SELECT COUNT(*) FROM request_uuid WHERE key <> 'kept'"), 0);
    assert!(conn.is_autocommit(), "the batch transaction is closed");
}

#[tokio::test]
async fn a_store_handle_shared_as_dyn_store_commits_and_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: std::sync::Arc<dyn Store> =
        std::sync::Arc::new(SqliteStore::open(&dir.path().join("x.sqlite")).expect("open"));
    assert_eq!(store.commit(insert(3)).await.expect("commit"), CommitOutcome::Committed);
    assert!(store.get_result(TaskId::new(t0(), 3)).await.expect("get").is_some());
}
