//! PostgreSQL backend tests on a real server started by [`TempPostgres`]:
//! the conformance suite, racing compare-and-sets, reopen and restart,
//! concurrent migration and the schema version check.

use chrono::{TimeZone, Utc};
use muster_core::state::TaskState;
use muster_core::{TaskId, Time};
use muster_store::conformance::{self, pending, request};
use muster_store::postgres::SCHEMA_VERSION;
use muster_store::{Changes, CommitOutcome, Feed, PostgresStore, Store, StoreError, Txn, Write, OUTPUT_CHUNK_SIZE};
use muster_testkit::{wait_for, within, TempPostgres, PATIENCE};
use std::sync::Arc;

fn t(sec: u32) -> Time {
    Utc.with_ymd_and_hms(2044, 3, 4, 5, 0, sec).single().expect("valid fixed date")
}

async fn connect(url: &str) -> PostgresStore {
    PostgresStore::connect(url).await.expect("connect postgres store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_on_postgres() {
    let pg = TempPostgres::start();
    let store = connect(&pg.create_database().await).await;
    conformance::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_commits_racing_on_one_cas_give_exactly_one_winner() {
    let pg = TempPostgres::start();
    let store: Arc<dyn Store> = Arc::new(connect(&pg.create_database().await).await);
    for round in 0..20u16 {
        let req = request(TaskId::new(t(0), round), t(0), &["race:cas"]);
        let txn =
            Txn::new().with(Write::InsertTask { request: Box::new(req.clone()), result: Box::new(pending(&req)) });
        assert_eq!(store.commit(txn).await.expect("insert"), CommitOutcome::Committed);

        let claim = |bot: &str| {
            let mut r = pending(&req);
            r.state = TaskState::Running;
            r.bot_id = bot.to_string();
            // A second write makes the loser's rollback observable.
            Txn::new().with(Write::UpdateResult(Box::new(r))).with(Write::WriteOutput {
                task: req.id,
                offset: 0,
                data: bot.as_bytes().to_vec(),
            })
        };
        let (a, b) = (store.clone(), store.clone());
        let (ta, tb) = (claim("bot-a"), claim("bot-b"));
        let ha = tokio::spawn(async move { a.commit(ta).await });
        let hb = tokio::spawn(async move { b.commit(tb).await });
        let ra = ha.await.expect("join a").expect("commit a");
        let rb = hb.await.expect("join b").expect("commit b");
        let winner = match (ra, rb) {
            (CommitOutcome::Committed, CommitOutcome::Conflict { index: 0 }) => "bot-a",
            (CommitOutcome::Conflict { index: 0 }, CommitOutcome::Committed) => "bot-b",
            other => panic!("round {round}: expected exactly one winner, got {other:?}"),
        };
        let stored = store.get_result(req.id).await.expect("get").expect("task exists");
        assert_eq!(stored.version, 1, "round {round}");
        assert_eq!(stored.bot_id, winner, "round {round}");
        let out = store.read_output(req.id, 0, 100).await.expect("read output");
        assert_eq!(out, winner.as_bytes(), "round {round}: only the winner's output is stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_output_writes_into_one_chunk_all_land() {
    let pg = TempPostgres::start();
    let store: Arc<dyn Store> = Arc::new(connect(&pg.create_database().await).await);
    let task = TaskId::new(t(1), 1);
    let n = 40u64;
    let mut handles = Vec::new();
    for i in 0..n {
        let store = store.clone();
        // Every writer's bytes land in chunk 0 or straddle into chunk 1.
        let offset = i * (OUTPUT_CHUNK_SIZE / n + 7);
        handles.push(tokio::spawn(async move {
            let txn = Txn::new().with(Write::WriteOutput { task, offset, data: vec![b'a' + (i % 26) as u8; 8] });
            store.commit(txn).await
        }));
    }
    for h in handles {
        assert_eq!(h.await.expect("join").expect("commit"), CommitOutcome::Committed);
    }
    for i in 0..n {
        let offset = i * (OUTPUT_CHUNK_SIZE / n + 7);
        let got = store.read_output(task, offset, 8).await.expect("read");
        assert_eq!(got, vec![b'a' + (i % 26) as u8; 8], "writer {i} at offset {offset}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_and_restarting_the_server_keep_everything() {
    let mut pg = TempPostgres::start();
    let url = pg.create_database().await;
    {
        let store = connect(&url).await;
        conformance::tasks_round_trip(&store).await;
    }
    pg.restart();
    let store = connect(&url).await;
    let created = conformance::at(2044, 1, 1, 0);
    assert!(store.get_request(TaskId::new(created, 1)).await.expect("get").is_some());
    // The rest of the suite still holds on the reopened database.
    conformance::update_result_is_compare_and_set(&store).await;
    conformance::output_is_chunked_idempotent_and_capped(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_connects_migrate_once() {
    let pg = TempPostgres::start();
    let url = pg.create_database().await;
    let (a, b) = tokio::join!(PostgresStore::connect(&url), PostgresStore::connect(&url));
    a.expect("first connect");
    b.expect("second connect");
    let client = pg.connect(TempPostgres::db_name(&url)).await;
    let rows = client.query("SELECT version FROM schema_version ORDER BY version", &[]).await.expect("versions");
    let versions: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, muster_store::postgres::migration_versions());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_a_newer_muster_is_refused() {
    let pg = TempPostgres::start();
    let url = pg.create_database().await;
    drop(connect(&url).await);
    let client = pg.connect(TempPostgres::db_name(&url)).await;
    client
        .execute("INSERT INTO schema_version (version) VALUES ($1)", &[&(SCHEMA_VERSION + 1)])
        .await
        .expect("bump version");
    match PostgresStore::connect(&url).await {
        Err(StoreError::TooNew { found, supported }) => {
            assert_eq!(found, SCHEMA_VERSION + 1);
            assert_eq!(supported, SCHEMA_VERSION);
        }
        Err(e) => panic!("expected TooNew, got {e}"),
        Ok(_) => panic!("expected TooNew, the store opened"),
    }
}

/// The next feed item; a missing announcement fails after [`PATIENCE`].
async fn next(feed: &mut tokio::sync::mpsc::UnboundedReceiver<Feed>) -> Feed {
    within("the next change announcement", PATIENCE, feed.recv())
        .await
        .expect("an announcement arrives")
        .expect("the feed stays open")
}

fn bot(id: &str) -> Write {
    Write::PutBot(Box::new(muster_core::BotInfo::new(id, t(0))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_announced_to_peers_once_durable_and_never_echoed() {
    let pg = TempPostgres::start();
    let url = pg.create_database().await;
    let (a, b) = (connect(&url).await, connect(&url).await);
    let mut feed_a = a.subscribe().await.expect("subscribe a").expect("postgres can be shared");
    let mut feed_b = b.subscribe().await.expect("subscribe b").expect("postgres can be shared");

    let req = request(TaskId::new(t(2), 1), t(2), &["peer:1"]);
    let insert = Txn::new()
        .with(Write::InsertTask { request: Box::new(req.clone()), result: Box::new(pending(&req)) })
        .with(bot("peer-bot-1"));
    assert_eq!(b.commit(insert).await.expect("insert"), CommitOutcome::Committed);
    assert_eq!(
        next(&mut feed_a).await,
        Feed::Changed(Changes { tasks: vec![req.id], bots: vec!["peer-bot-1".into()], drains: false })
    );

    // Neither a rolled-back nor a quiet commit is announced: the next item
    // a hears of is the loud commit after them.
    let stale = Txn::new().with(Write::UpdateResult(Box::new(pending(&req)))).with(bot("rolled-back"));
    let mut stale_res = pending(&req);
    stale_res.version = 41;
    let stale = Txn { writes: vec![Write::UpdateResult(Box::new(stale_res)), stale.writes[1].clone()], quiet: false };
    assert_eq!(b.commit(stale).await.expect("stale"), CommitOutcome::Conflict { index: 0 });
    assert_eq!(b.commit(Txn::new().with(bot("quiet-bot")).quiet()).await.expect("quiet"), CommitOutcome::Committed);
    assert_eq!(b.commit(Txn::new().with(bot("loud-bot"))).await.expect("loud"), CommitOutcome::Committed);
    assert_eq!(
        next(&mut feed_a).await,
        Feed::Changed(Changes { tasks: vec![], bots: vec!["loud-bot".into()], drains: false })
    );

    // b never hears its own commits: the first thing it hears is a's.
    assert_eq!(
        a.commit(Txn::new().with(Write::DeleteBot("loud-bot".into()))).await.expect("delete"),
        CommitOutcome::Committed
    );
    assert_eq!(
        next(&mut feed_b).await,
        Feed::Changed(Changes { tasks: vec![], bots: vec!["loud-bot".into()], drains: false })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listen_connection_is_reported_as_missed_and_listening_resumes() {
    let pg = TempPostgres::start();
    let url = pg.create_database().await;
    let (a, b) = (connect(&url).await, connect(&url).await);
    let mut feed = a.subscribe().await.expect("subscribe").expect("postgres can be shared");
    let admin = pg.connect(TempPostgres::db_name(&url)).await;
    let killed: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .expect("terminate the listener")
        .get(0);
    assert_eq!(killed, 1);
    assert_eq!(next(&mut feed).await, Feed::Missed);
    assert_eq!(b.commit(Txn::new().with(bot("after-reconnect"))).await.expect("put"), CommitOutcome::Committed);
    assert_eq!(
        next(&mut feed).await,
        Feed::Changed(Changes { tasks: vec![], bots: vec!["after-reconnect".into()], drains: false })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_store_holds_the_sweep_lease_until_its_process_goes_away() {
    let pg = TempPostgres::start();
    let url = pg.create_database().await;
    let (a, b) = (connect(&url).await, connect(&url).await);
    assert!(a.lead().await.expect("a asks"));
    assert!(!b.lead().await.expect("b asks"));
    assert!(a.lead().await.expect("a asks again"), "the holder keeps the lease");
    assert!(!b.lead().await.expect("b asks again"));
    drop(a);
    // PostgreSQL releases the lock once it notices the closed session.
    wait_for("the lease to be released to b", PATIENCE, || async {
        Ok(b.lead().await.expect("b asks after a left").then_some(()))
    })
    .await
    .expect("b takes the lease");
}
