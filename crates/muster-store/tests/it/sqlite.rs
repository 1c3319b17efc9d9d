//! SQLite backend tests on real files in temp dirs.

use chrono::{TimeZone, Utc};
use muster_core::bot::{BotEvent, BotInfo};
use muster_core::state::{StateQuery, TaskState};
use muster_core::{TaskId, Time};
use muster_store::conformance::{self, pending, request};
use muster_store::sqlite::SCHEMA_VERSION;
use muster_store::{CommitOutcome, EventQuery, SqliteStore, Store, StoreError, TaskQuery, Txn, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn t(sec: u32) -> Time {
    Utc.with_ymd_and_hms(2044, 3, 4, 5, 0, sec).single().expect("valid fixed date")
}

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/dir/muster.sqlite");
    (dir, path)
}

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path).expect("open store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_on_sqlite() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    conformance::run_all(&store).await;
}

/// What one open wrote is read back after a reopen, inserting it again is
/// "already there" (a conflict), and every other story passes on the
/// reopened file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_database_keeps_its_data_and_passes_the_rest_of_the_suite() {
    let (_dir, path) = temp_db();
    {
        let store = open(&path);
        conformance::tasks_round_trip(&store).await;
    }
    let store = open(&path);
    let created = conformance::at(2044, 1, 1, 0);
    let req = request(TaskId::new(created, 1), created, &["story:roundtrip", "os:Linux"]);
    assert_eq!(store.get_request(req.id).await.expect("get"), Some(req.clone()), "the request survived the reopen");
    let again = Txn::new().with(Write::InsertTask { request: Box::new(req.clone()), result: Box::new(pending(&req)) });
    assert_eq!(store.commit(again).await.expect("commit"), CommitOutcome::Conflict { index: 0 });
    conformance::update_result_is_compare_and_set(&store).await;
    conformance::inserting_an_existing_task_conflicts_and_applies_nothing(&store).await;
    conformance::request_uuids_map_to_tasks_once(&store).await;
    conformance::output_is_chunked_idempotent_and_capped(&store).await;
    conformance::listings_filter_sort_and_page(&store).await;
    conformance::find_dedup_returns_the_newest_reusable_result(&store).await;
    conformance::bots_put_get_delete_load(&store).await;
    conformance::bot_events_list_newest_first_with_paging(&store).await;
    conformance::load_active_returns_pending_and_running_with_requests(&store).await;
    conformance::meta_values_are_written_once(&store).await;
    conformance::batch_reads_return_what_exists(&store).await;
    conformance::evict(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_commits_are_all_replied_and_durable() {
    let (_dir, path) = temp_db();
    let store: Arc<dyn Store> = Arc::new(open(&path));

    // One shared task that every "claimer" tries to CAS from version 0.
    let shared = request(TaskId::new(t(0), 0), t(0), &["group:commit"]);
    let txn =
        Txn::new().with(Write::InsertTask { request: Box::new(shared.clone()), result: Box::new(pending(&shared)) });
    assert_eq!(store.commit(txn).await.expect("commit"), CommitOutcome::Committed);

    let n = 300u16;
    let mut handles = Vec::new();
    for i in 1..=n {
        let store = store.clone();
        let shared = shared.clone();
        handles.push(tokio::spawn(async move {
            let created = t(1);
            let req = request(TaskId::new(created, i), created, &["group:commit"]);
            let mut txn = Txn::new()
                .with(Write::InsertTask { request: Box::new(req.clone()), result: Box::new(pending(&req)) })
                .with(Write::WriteOutput { task: req.id, offset: 0, data: format!("out-{i}").into_bytes() })
                .with(Write::AppendEvent(Box::new(BotEvent::of(
                    &BotInfo::new("gc-bot", created),
                    created,
                    "bot_connected",
                    &format!("e{i}"),
                ))));
            if i % 3 == 0 {
                let mut claim = pending(&shared);
                claim.state = TaskState::Running;
                claim.bot_id = format!("bot-{i}");
                txn.push(Write::UpdateResult(Box::new(claim)));
            }
            (i, store.commit(txn).await.expect("commit replies"))
        }));
    }
    let mut committed = 0;
    let mut conflicts = 0;
    let mut winner = None;
    for h in handles {
        let (i, outcome) = h.await.expect("task joins");
        match outcome {
            CommitOutcome::Committed => {
                committed += 1;
                if i % 3 == 0 {
                    assert!(winner.is_none(), "only one claim may win");
                    winner = Some(i);
                }
            }
            CommitOutcome::Conflict { index } => {
                assert_eq!(index, 3, "only the claim can conflict");
                assert_eq!(i % 3, 0);
                conflicts += 1;
            }
        }
    }
    let winner = winner.expect("one claim wins");
    assert_eq!(conflicts, (n / 3) as usize - 1);
    assert_eq!(committed + conflicts, n as usize);

    // Drop and reopen: every acknowledged commit is on disk.
    drop(store);
    let store = open(&path);
    let got = store.get_result(shared.id).await.expect("get").expect("shared exists");
    assert_eq!(got.version, 1);
    assert_eq!(got.bot_id, format!("bot-{winner}"));
    for i in 1..=n {
        let id = TaskId::new(t(1), i);
        let present = store.get_result(id).await.expect("get").is_some();
        // A conflicting transaction applied nothing, not even its insert.
        assert_eq!(present, i % 3 != 0 || i == winner, "task {i}");
        let out = store.read_output(id, 0, 100).await.expect("read");
        assert_eq!(out.is_empty(), !present, "output of {i}");
    }
    let q = TaskQuery {
        state: StateQuery::All,
        tags: vec![muster_core::DimFilter::new("group", "commit")],
        ..TaskQuery::default()
    };
    assert_eq!(store.count_results(&q).await.expect("count"), committed as u64 + 1);
    let evs =
        store.list_bot_events(&EventQuery { bot_id: "gc-bot".into(), ..EventQuery::default() }).await.expect("events");
    assert_eq!(evs.items.len(), committed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_after_drop_keeps_everything() {
    let (_dir, path) = temp_db();
    let req = request(TaskId::new(t(0), 9), t(0), &["reopen:yes"]);
    let res = pending(&req);
    let bot = BotInfo::new("reopen-bot", t(0));
    let ev = BotEvent::of(&bot, t(2), "bot_connected", "hello");
    {
        let store = open(&path);
        let txn = Txn::new()
            .with(Write::InsertTask { request: Box::new(req.clone()), result: Box::new(res.clone()) })
            .with(Write::PutRequestUuid { key: "k".into(), task: req.id, created: t(0) })
            .with(Write::WriteOutput { task: req.id, offset: 5, data: b"abc".to_vec() })
            .with(Write::PutBot(Box::new(bot.clone())))
            .with(Write::AppendEvent(Box::new(ev.clone())));
        assert_eq!(store.commit(txn).await.expect("commit"), CommitOutcome::Committed);
    }
    let store = open(&path);
    assert_eq!(store.get_request(req.id).await.expect("get"), Some(req.clone()));
    assert_eq!(store.get_result(req.id).await.expect("get"), Some(res.clone()));
    assert_eq!(store.lookup_request_uuid("k").await.expect("lookup"), Some(req.id));
    assert_eq!(store.read_output(req.id, 0, 100).await.expect("read"), b"\0\0\0\0\0abc".to_vec());
    assert_eq!(store.get_bot("reopen-bot").await.expect("get"), Some(bot));
    let evs = store
        .list_bot_events(&EventQuery { bot_id: "reopen-bot".into(), ..EventQuery::default() })
        .await
        .expect("events");
    assert_eq!(evs.items, vec![ev]);
    assert_eq!(store.load_active().await.expect("active"), vec![(req, res)]);
}

#[test]
fn a_database_from_a_newer_muster_is_refused() {
    let (_dir, path) = temp_db();
    drop(open(&path));
    {
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.execute("INSERT INTO schema_version (version) VALUES (?1)", [SCHEMA_VERSION + 1]).expect("bump version");
    }
    match SqliteStore::open(&path) {
        Err(StoreError::TooNew { found, supported }) => {
            assert_eq!(found, SCHEMA_VERSION + 1);
            assert_eq!(supported, SCHEMA_VERSION);
        }
        Err(e) => panic!("expected TooNew, got {e}"),
        Ok(_) => panic!("expected TooNew, the store opened"),
    }
}

/// A database that has a later migration but lacks an earlier one (numbers
/// are taken per feature) gets the missing one at the next open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_earlier_migration_is_applied_at_open() {
    let (_dir, path) = temp_db();
    drop(open(&path));
    {
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.execute_batch("DROP TABLE drain; DELETE FROM schema_version WHERE version = 5").expect("undo migration 5");
    }
    let store = open(&path);
    assert!(store.load_drains().await.expect("the drain table is back").is_empty());
    drop(store);
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM schema_version ORDER BY version")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("versions");
    assert_eq!(versions, muster_store::sqlite::migration_versions());
}

#[test]
fn the_database_uses_wal_and_records_its_schema_version() {
    let (_dir, path) = temp_db();
    drop(open(&path));
    drop(open(&path)); // migrating twice is a no-op
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("journal mode");
    assert_eq!(mode, "wal");
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM schema_version ORDER BY version")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("versions");
    assert_eq!(versions, muster_store::sqlite::migration_versions());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_active_returns_thousands_of_tasks_across_decode_batches() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    let n = 5000u16;
    let mut want = Vec::new();
    for part in 0..10u16 {
        let mut txn = Txn::new();
        for j in 0..n / 10 {
            let i = part * (n / 10) + j;
            let created = t(0) + chrono::Duration::milliseconds(i as i64);
            let req = request(TaskId::new(created, i), created, &["bulk:yes"]);
            let mut res = pending(&req);
            if matches!(i % 7, 0) {
                res.state = TaskState::Running;
            }
            if matches!(i % 11, 0) {
                res.state = TaskState::Completed;
            } else {
                want.push((req.id, res.state));
            }
            txn.push(Write::InsertTask { request: Box::new(req), result: Box::new(res) });
        }
        assert_eq!(store.commit(txn).await.expect("commit"), CommitOutcome::Committed);
    }
    let loaded = store.load_active().await.expect("load_active");
    let mut got: Vec<(TaskId, TaskState)> = loaded.iter().map(|(_, r)| (r.id, r.state)).collect();
    got.sort_by_key(|(id, _)| *id);
    want.sort_by_key(|(id, _)| *id);
    assert_eq!(got, want);
    assert!(loaded.iter().all(|(q, r)| q.id == r.id && q.tags == r.tags));
}
