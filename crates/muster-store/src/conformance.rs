//! The conformance suite every [`Store`] backend must pass.
//!
//! Written against `&dyn Store` only, so the SQLite backend and a future
//! PostgreSQL backend run the same stories. Each story uses its own month of
//! the year 2044 (fixed times, never the wall clock) and its own tags and bot
//! ids, so stories can share one store in any order; [`evict`] uses 2041 and
//! touches nothing of the others. Failures panic (this is test code).

pub mod jobs;
pub mod outbox;

use crate::{CommitOutcome, EventQuery, Store, TaskQuery, Txn, Write, OUTPUT_CHUNK_SIZE, OUTPUT_MAX_CHUNKS};
use chrono::{TimeZone, Utc};
use muster_core::bot::{BotEvent, BotInfo};
use muster_core::dims::{BotDimensions, DimFilter, TaskDimensions};
use muster_core::result::{OperationStats, PerformanceStats};
use muster_core::state::{SortQuery, StateQuery, TaskState};
use muster_core::task::{
    CacheEntry, CasReference, CipdInput, CipdPackage, CipdPins, Digest, TaskProperties, TaskRequest, TaskSlice,
};
use muster_core::{TaskId, TaskResult, Time};

/// Runs every story on `store`.
pub async fn run_all(store: &dyn Store) {
    tasks_round_trip(store).await;
    update_result_is_compare_and_set(store).await;
    inserting_an_existing_task_conflicts_and_applies_nothing(store).await;
    request_uuids_map_to_tasks_once(store).await;
    output_is_chunked_idempotent_and_capped(store).await;
    listings_filter_sort_and_page(store).await;
    find_dedup_returns_the_newest_reusable_result(store).await;
    bots_put_get_delete_load(store).await;
    bot_events_list_newest_first_with_paging(store).await;
    load_active_returns_pending_and_running_with_requests(store).await;
    meta_values_are_written_once(store).await;
    drains_put_replace_delete_load(store).await;
    api_tokens_insert_once_revoke_and_touch(store).await;
    ui_sessions_insert_once_delete_and_purge(store).await;
    bot_tokens_are_stored_listed_and_revoked_once(store).await;
    bootstrap_tokens_are_used_once(store).await;
    batch_reads_return_what_exists(store).await;
    evict(store).await;
    jobs::run_all(store).await;
    outbox::run_all(store).await;
}

/// Web UI sessions: inserted once (an existing id hash conflicts), read
/// back by hash, deleted (twice is fine), expired ones purged.
pub async fn ui_sessions_insert_once_delete_and_purge(store: &dyn Store) {
    let session = |h: u8, identity: &str, expires: u32| crate::UiSession {
        id_sha256: vec![h; 32],
        identity: identity.to_string(),
        created_at: t44(11, 1, 0),
        expires_at: t44(11, 2, expires),
    };
    let put = |s: crate::UiSession| Txn::new().with(Write::PutUiSession(Box::new(s)));
    assert_eq!(store.get_ui_session(&[1u8; 32]).await.expect("get"), None);
    assert_eq!(commit(store, put(session(1, "user:a@example.com", 0))).await, CommitOutcome::Committed);
    assert_eq!(commit(store, put(session(2, "user:b@example.com", 30))).await, CommitOutcome::Committed);
    assert_eq!(commit(store, put(session(1, "user:evil@example.com", 0))).await, CommitOutcome::Conflict { index: 0 });
    assert_eq!(store.get_ui_session(&[1u8; 32]).await.expect("get"), Some(session(1, "user:a@example.com", 0)));
    let purge = Txn::new().with(Write::PurgeUiSessions { before: t44(11, 2, 10) });
    assert_eq!(commit(store, purge).await, CommitOutcome::Committed);
    assert_eq!(store.get_ui_session(&[1u8; 32]).await.expect("get"), None, "expired session purged");
    assert!(store.get_ui_session(&[2u8; 32]).await.expect("get").is_some(), "live session kept");
    let delete = || Txn::new().with(Write::DeleteUiSession { id_sha256: vec![2u8; 32] });
    assert_eq!(commit(store, delete()).await, CommitOutcome::Committed);
    assert_eq!(commit(store, delete()).await, CommitOutcome::Committed);
    assert_eq!(store.get_ui_session(&[2u8; 32]).await.expect("get"), None);
}

/// `get_bots` / `get_requests` return the records that exist, skip the rest
/// (December).
pub async fn batch_reads_return_what_exists(store: &dyn Store) {
    let created = t44(12, 1, 0);
    let reqs: Vec<TaskRequest> = (1..=3).map(|i| request(TaskId::new(created, i), created, &["batch:1"])).collect();
    for r in &reqs {
        // Finished, so that no other story's listing of active tasks sees them.
        let mut done = pending(r);
        done.state = TaskState::Completed;
        insert(store, r, &done).await;
    }
    let ids: Vec<TaskId> = reqs.iter().map(|r| r.id).chain([TaskId::new(created, 99)]).collect();
    let mut got: Vec<TaskId> = store.get_requests(&ids).await.expect("get_requests").iter().map(|r| r.id).collect();
    got.sort();
    let mut want: Vec<TaskId> = reqs.iter().map(|r| r.id).collect();
    want.sort();
    assert_eq!(got, want);
    for b in ["batch-bot-1", "batch-bot-2"] {
        assert_eq!(
            commit(store, Txn::new().with(Write::PutBot(Box::new(BotInfo::new(b, created))))).await,
            CommitOutcome::Committed
        );
    }
    let asked = ["batch-bot-2".to_string(), "batch-bot-missing".to_string(), "batch-bot-1".to_string()];
    let mut bots: Vec<String> = store.get_bots(&asked).await.expect("get_bots").into_iter().map(|b| b.bot_id).collect();
    bots.sort();
    assert_eq!(bots, vec!["batch-bot-1".to_string(), "batch-bot-2".to_string()]);
}

/// `PutMetaIfAbsent` keeps the first value; later puts are no-ops.
pub async fn meta_values_are_written_once(store: &dyn Store) {
    assert_eq!(store.get_meta("conformance.key").await.expect("get meta"), None);
    let put = |v: &[u8]| Txn::new().with(Write::PutMetaIfAbsent { name: "conformance.key".into(), value: v.to_vec() });
    assert_eq!(commit(store, put(b"first\x00")).await, CommitOutcome::Committed);
    assert_eq!(commit(store, put(b"second")).await, CommitOutcome::Committed);
    assert_eq!(store.get_meta("conformance.key").await.expect("get meta"), Some(b"first\x00".to_vec()));
}

/// Drains are keyed by target: a second put replaces, delete removes (and
/// deleting an absent one is a no-op), load returns them ordered by key.
pub async fn drains_put_replace_delete_load(store: &dyn Store) {
    use muster_core::{Drain, DrainTarget};
    assert!(store.load_drains().await.expect("load drains").is_empty());
    let d = |target: DrainTarget, reason: &str, sec: u32| Drain {
        target,
        reason: reason.into(),
        created_by: "user:ops@example.com".into(),
        created: at(2044, 2, 3, sec),
    };
    let pool = d(DrainTarget::Pool("ci".into()), "kernel upgrade", 1);
    let bot = d(DrainTarget::Bot("bot-1".into()), "", 2);
    let dims = d(DrainTarget::dimensions(vec![("os".into(), "Linux|Mac".into()), ("gpu".into(), "a".into())]), "x", 3);
    for x in [&pool, &bot, &dims] {
        assert_eq!(
            commit(store, Txn::new().with(Write::PutDrain(Box::new(x.clone())))).await,
            CommitOutcome::Committed
        );
    }
    let replaced = d(DrainTarget::Pool("ci".into()), "new reason", 4);
    assert_eq!(
        commit(store, Txn::new().with(Write::PutDrain(Box::new(replaced.clone())))).await,
        CommitOutcome::Committed
    );
    assert_eq!(store.load_drains().await.expect("load drains"), vec![bot.clone(), dims.clone(), replaced]);
    for key in [DrainTarget::Pool("ci".into()).key(), "pool:absent".to_string()] {
        assert_eq!(commit(store, Txn::new().with(Write::DeleteDrain(key))).await, CommitOutcome::Committed);
    }
    assert_eq!(store.load_drains().await.expect("load drains"), vec![bot.clone(), dims.clone()]);
    for x in [bot, dims] {
        commit(store, Txn::new().with(Write::DeleteDrain(x.target.key()))).await;
    }
}

/// API tokens: inserted once (an existing id conflicts), revoked once (the
/// first time stays), last use recorded, listed oldest first.
pub async fn api_tokens_insert_once_revoke_and_touch(store: &dyn Store) {
    let created = t44(11, 1, 0);
    let token = |id: &str, sec: u32| crate::ApiToken {
        id: id.to_string(),
        identity: "user:conformance@example.com".to_string(),
        secret_sha256: vec![7u8; 32],
        description: "ci".to_string(),
        created_by: "user:admin@example.com".to_string(),
        created_at: t44(11, 1, sec),
        expires_at: t44(12, 1, 0),
        last_used_at: None,
        revoked_at: None,
    };
    assert_eq!(store.get_api_token("conf-a").await.expect("get"), None);
    let put = |t: crate::ApiToken| Txn::new().with(Write::PutApiToken(Box::new(t)));
    assert_eq!(commit(store, put(token("conf-b", 2))).await, CommitOutcome::Committed);
    assert_eq!(commit(store, put(token("conf-a", 1))).await, CommitOutcome::Committed);
    assert_eq!(commit(store, put(token("conf-a", 5))).await, CommitOutcome::Conflict { index: 0 });
    assert_eq!(store.get_api_token("conf-a").await.expect("get"), Some(token("conf-a", 1)));
    let revoke = |sec| Txn::new().with(Write::RevokeApiToken { id: "conf-a".into(), at: t44(11, 2, sec) });
    assert_eq!(commit(store, revoke(1)).await, CommitOutcome::Committed);
    assert_eq!(commit(store, revoke(9)).await, CommitOutcome::Committed);
    let touch = Txn::new().with(Write::TouchApiToken { id: "conf-b".into(), at: t44(11, 3, 0) });
    assert_eq!(commit(store, touch).await, CommitOutcome::Committed);
    let all = store.list_api_tokens().await.expect("list");
    let ids: Vec<&str> = all.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, vec!["conf-a", "conf-b"]);
    assert_eq!(all[0].revoked_at, Some(t44(11, 2, 1)));
    assert_eq!(all[1].last_used_at, Some(t44(11, 3, 0)));
    assert_eq!(all[1].revoked_at, None);
    assert!(all.iter().all(|t| t.created_at >= created));
}

/// Machine tokens: put is idempotent by id, revoke keeps the first time and
/// ignores unknown ids, listing is by host then id.
pub async fn bot_tokens_are_stored_listed_and_revoked_once(store: &dyn Store) {
    use muster_core::bot::BotToken;
    let created = t44(11, 2, 0);
    let token = |id: &str, host: &str| BotToken {
        id: id.to_string(),
        host: host.to_string(),
        secret_sha256: format!("{:064}", 7),
        created,
        created_by: "conformance".to_string(),
        revoked: None,
    };
    assert_eq!(store.get_bot_token("c0ffee01").await.expect("get token"), None);
    for t in [token("c0ffee02", "zz-host-b"), token("c0ffee01", "zz-host-a"), token("c0ffee03", "zz-host-a")] {
        assert_eq!(commit(store, Txn::new().with(Write::PutBotToken(Box::new(t)))).await, CommitOutcome::Committed);
    }
    let mut again = token("c0ffee01", "zz-host-other");
    again.secret_sha256 = "ff".repeat(32);
    assert_eq!(commit(store, Txn::new().with(Write::PutBotToken(Box::new(again)))).await, CommitOutcome::Committed);
    assert_eq!(store.get_bot_token("c0ffee01").await.expect("get token"), Some(token("c0ffee01", "zz-host-a")));
    let revoke =
        |id: &str, sec: u32| Txn::new().with(Write::RevokeBotToken { id: id.to_string(), at: t44(11, 3, sec) });
    assert_eq!(commit(store, revoke("c0ffee03", 1)).await, CommitOutcome::Committed);
    assert_eq!(commit(store, revoke("c0ffee03", 2)).await, CommitOutcome::Committed);
    assert_eq!(commit(store, revoke("c0ffee99", 2)).await, CommitOutcome::Committed);
    let listed: Vec<(String, Option<Time>)> = store
        .list_bot_tokens()
        .await
        .expect("list tokens")
        .into_iter()
        .filter(|t| t.host.starts_with("zz-host-"))
        .map(|t| (t.id, t.revoked))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("c0ffee01".to_string(), None),
            ("c0ffee03".to_string(), Some(t44(11, 3, 1))),
            ("c0ffee02".to_string(), None),
        ]
    );
}

/// A bootstrap token is exchanged once: its use and the machine token it
/// buys commit together; a second use conflicts and stores nothing.
pub async fn bootstrap_tokens_are_used_once(store: &dyn Store) {
    use muster_core::bot::BotToken;
    let exchange = |token_id: &str, bot_id: &str| {
        let machine = BotToken {
            id: token_id.to_string(),
            host: bot_id.to_string(),
            secret_sha256: format!("{:064}", 9),
            created: t44(11, 4, 0),
            created_by: "bootstrap".to_string(),
            revoked: None,
        };
        Txn::new()
            .with(Write::UseBootstrapToken {
                token_sha256: "b0".repeat(32),
                bot_id: bot_id.to_string(),
                bot_token_id: token_id.to_string(),
                at: t44(11, 4, 0),
            })
            .with(Write::PutBotToken(Box::new(machine)))
    };
    assert_eq!(commit(store, exchange("b0075701", "zz-boot-a")).await, CommitOutcome::Committed);
    assert_eq!(commit(store, exchange("b0075702", "zz-boot-b")).await, CommitOutcome::Conflict { index: 0 });
    assert!(store.get_bot_token("b0075701").await.expect("get token").is_some());
    assert_eq!(store.get_bot_token("b0075702").await.expect("get token"), None, "a replayed exchange stored a token");
}

/// `<year>-<month>-<day> 00:00:<sec>` UTC.
pub fn at(year: i32, month: u32, day: u32, sec: u32) -> Time {
    Utc.with_ymd_and_hms(year, month, day, 0, 0, sec).single().expect("valid fixed date")
}

fn t44(month: u32, day: u32, sec: u32) -> Time {
    at(2044, month, day, sec)
}

/// A request with one slice and a few non-default fields.
pub fn request(id: TaskId, created: Time, tags: &[&str]) -> TaskRequest {
    let properties = TaskProperties {
        command: vec!["echo".into(), "hi".into()],
        dimensions: TaskDimensions(vec![("pool".into(), "p".into()), ("os".into(), "Linux|Mac".into())]),
        env: vec![("A".into(), "1".into())],
        env_prefixes: vec![("PATH".into(), vec!["bin".into(), "x".into()])],
        execution_timeout_secs: 3600,
        grace_period_secs: 30,
        io_timeout_secs: 1200,
        idempotent: true,
        caches: vec![CacheEntry { name: "git".into(), path: "cache/git".into() }],
        cipd_input: Some(CipdInput {
            server: "https://cipd".into(),
            client_package: Some(CipdPackage {
                package_name: "client".into(),
                version: "v1".into(),
                path: String::new(),
            }),
            packages: vec![CipdPackage { package_name: "a/b".into(), version: "latest".into(), path: "bin".into() }],
        }),
        cas_input_root: Some(CasReference {
            cas_instance: "projects/x/instances/default".into(),
            digest: Some(Digest { hash: "ab".repeat(32), size_bytes: 42 }),
        }),
        outputs: vec!["out.txt".into()],
        secret_bytes: Some(vec![0, 1, 2, 255]),
        ..TaskProperties::default()
    };
    TaskRequest {
        id,
        created,
        name: format!("task-{}", id),
        parent_task_id: String::new(),
        priority: 100,
        slices: vec![
            TaskSlice { properties: properties.clone(), expiration_secs: 600, wait_for_capacity: false },
            TaskSlice { properties, expiration_secs: 300, wait_for_capacity: true },
        ],
        tags: tags.iter().map(|s| s.to_string()).collect(),
        user: "joe".into(),
        authenticated: "user:joe@example.com".into(),
        service_account: "none".into(),
        realm: "proj:ci".into(),
        resultdb_enable: false,
        pubsub_topic: "projects/p/topics/t".into(),
        pubsub_auth_token: "tok".into(),
        pubsub_userdata: "ud".into(),
        bot_ping_tolerance_secs: 1200,
        request_uuid: "uuid-1".into(),
    }
}

/// A PENDING result matching `request`.
pub fn pending(req: &TaskRequest) -> TaskResult {
    TaskResult::pending(req.id, req.created, &req.name, &req.tags, &req.user)
}

/// `result` moved to `state` with the timestamps a real run would have.
fn finished(mut r: TaskResult, state: TaskState, bot: &str, secs: i64) -> TaskResult {
    r.state = state;
    if state != TaskState::Pending {
        r.started = Some(r.created + chrono::Duration::seconds(1));
        r.bot_id = bot.to_string();
        r.try_number = Some(1);
    }
    if state.is_final() {
        r.completed = Some(r.created + chrono::Duration::seconds(secs));
    }
    r
}

async fn commit(store: &dyn Store, txn: Txn) -> CommitOutcome {
    store.commit(txn).await.expect("commit succeeds")
}

async fn insert(store: &dyn Store, req: &TaskRequest, res: &TaskResult) {
    let txn = Txn::new().with(Write::InsertTask { request: Box::new(req.clone()), result: Box::new(res.clone()) });
    assert_eq!(commit(store, txn).await, CommitOutcome::Committed, "inserting {}", req.id);
}

/// Insert, get, get_results.
pub async fn tasks_round_trip(store: &dyn Store) {
    let created = t44(1, 1, 0);
    let id = TaskId::new(created, 1);
    let req = request(id, created, &["story:roundtrip", "os:Linux"]);
    let mut res = pending(&req);
    res.bot_dimensions = BotDimensions::from_map([("id", ["b1"]), ("os", ["Linux"])]);
    res.performance_stats = Some(PerformanceStats {
        bot_overhead: 0.25,
        isolated_download: Some(OperationStats { duration: 1.5 }),
        ..PerformanceStats::default()
    });
    res.cipd_pins = Some(CipdPins { client_package: None, packages: vec![] });
    res.cost_usd = 0.1;
    res.duration = Some(1.0 / 3.0);
    res.server_versions = vec!["v1".into()];
    res.dead_after = Some(t44(1, 1, 30));
    insert(store, &req, &res).await;

    assert_eq!(store.get_request(id).await.expect("get_request"), Some(req.clone()));
    assert_eq!(store.get_result(id).await.expect("get_result"), Some(res.clone()));
    let unknown = TaskId::new(created, 2);
    assert_eq!(store.get_request(unknown).await.expect("get_request"), None);
    assert_eq!(store.get_result(unknown).await.expect("get_result"), None);
    let got = store.get_results(&[unknown, id, unknown]).await.expect("get_results");
    assert_eq!(got, vec![None, Some(res.clone()), None]);
    assert_eq!(store.get_results(&[]).await.expect("get_results"), vec![]);
    // An empty transaction is a no-op.
    assert_eq!(commit(store, Txn::new()).await, CommitOutcome::Committed);
}

/// UpdateResult applies iff the stored version matches, then bumps it.
pub async fn update_result_is_compare_and_set(store: &dyn Store) {
    let created = t44(2, 1, 0);
    let req = request(TaskId::new(created, 1), created, &["story:cas"]);
    let res = pending(&req);
    insert(store, &req, &res).await;

    let mut claimed = res.clone();
    claimed.state = TaskState::Running;
    claimed.bot_id = "cas-bot".into();
    claimed.try_number = Some(1);
    claimed.started = Some(t44(2, 1, 5));
    let txn = Txn::new().with(Write::UpdateResult(Box::new(claimed.clone())));
    assert_eq!(commit(store, txn).await, CommitOutcome::Committed);
    let stored = store.get_result(req.id).await.expect("get").expect("exists");
    assert_eq!(stored.version, 1);
    assert_eq!(TaskResult { version: 0, ..stored.clone() }, claimed);

    // A second writer holding version 0 loses.
    let mut stale = res.clone();
    stale.state = TaskState::Canceled;
    let txn = Txn::new().with(Write::UpdateResult(Box::new(stale)));
    assert_eq!(commit(store, txn).await, CommitOutcome::Conflict { index: 0 });
    assert_eq!(store.get_result(req.id).await.expect("get"), Some(stored.clone()));

    // Updating with the fresh version wins again.
    let mut done = stored.clone();
    done.state = TaskState::Completed;
    done.completed = Some(t44(2, 1, 9));
    done.exit_code = Some(0);
    let txn = Txn::new().with(Write::UpdateResult(Box::new(done.clone())));
    assert_eq!(commit(store, txn).await, CommitOutcome::Committed);
    let after = store.get_result(req.id).await.expect("get").expect("exists");
    assert_eq!(after, TaskResult { version: 2, ..done });

    // A conflict at index 1 undoes index 0 of the same transaction.
    let mut first = after.clone();
    first.exit_code = Some(7);
    let txn = Txn::new().with(Write::UpdateResult(Box::new(first))).with(Write::UpdateResult(Box::new(after.clone())));
    assert_eq!(commit(store, txn).await, CommitOutcome::Conflict { index: 1 });
    assert_eq!(store.get_result(req.id).await.expect("get"), Some(after));

    // An unknown task cannot be updated.
    let ghost = pending(&request(TaskId::new(created, 2), created, &[]));
    let txn = Txn::new().with(Write::UpdateResult(Box::new(ghost)));
    assert_eq!(commit(store, txn).await, CommitOutcome::Conflict { index: 0 });
    assert_eq!(store.get_result(TaskId::new(created, 2)).await.expect("get"), None);
}

/// InsertTask of an existing id conflicts; nothing of that Txn is applied.
pub async fn inserting_an_existing_task_conflicts_and_applies_nothing(store: &dyn Store) {
    let created = t44(3, 1, 0);
    let req = request(TaskId::new(created, 1), created, &["story:dup"]);
    let res = pending(&req);
    insert(store, &req, &res).await;

    let mut other_req = req.clone();
    other_req.name = "impostor".into();
    let bot = BotInfo::new("dup-bot", created);
    let txn = Txn::new()
        .with(Write::PutBot(Box::new(bot)))
        .with(Write::PutRequestUuid { key: "dup-key".into(), task: req.id, created })
        .with(Write::WriteOutput { task: req.id, offset: 0, data: b"nope".to_vec() })
        .with(Write::InsertTask { request: Box::new(other_req), result: Box::new(pending(&req)) });
    assert_eq!(commit(store, txn).await, CommitOutcome::Conflict { index: 3 });
    assert_eq!(store.get_bot("dup-bot").await.expect("get_bot"), None);
    assert_eq!(store.lookup_request_uuid("dup-key").await.expect("lookup"), None);
    assert!(store.read_output(req.id, 0, 100).await.expect("read").is_empty());
    assert_eq!(store.get_request(req.id).await.expect("get").map(|r| r.name), Some(req.name.clone()));

    // The same insert retried is "already done": a conflict, not an error.
    let txn = Txn::new().with(Write::InsertTask { request: Box::new(req.clone()), result: Box::new(res.clone()) });
    assert_eq!(commit(store, txn).await, CommitOutcome::Conflict { index: 0 });
    assert_eq!(store.get_result(req.id).await.expect("get"), Some(res));
}

/// PutRequestUuid maps a key once; lookups find it.
pub async fn request_uuids_map_to_tasks_once(store: &dyn Store) {
    let created = t44(4, 1, 0);
    let a = TaskId::new(created, 1);
    let b = TaskId::new(created, 2);
    assert_eq!(store.lookup_request_uuid("user:joe/uuid-4").await.expect("lookup"), None);
    let txn = Txn::new().with(Write::PutRequestUuid { key: "user:joe/uuid-4".into(), task: a, created });
    assert_eq!(commit(store, txn).await, CommitOutcome::Committed);
    assert_eq!(store.lookup_request_uuid("user:joe/uuid-4").await.expect("lookup"), Some(a));
    let txn = Txn::new().with(Write::PutRequestUuid { key: "user:joe/uuid-4".into(), task: b, created });
    assert_eq!(commit(store, txn).await, CommitOutcome::Conflict { index: 0 });
    assert_eq!(store.lookup_request_uuid("user:joe/uuid-4").await.expect("lookup"), Some(a));
    assert_eq!(store.lookup_request_uuid("user:ann/uuid-4").await.expect("lookup"), None);
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1).collect()
}

/// Output chunks: boundaries, retries, gaps, reads past the end, the cap.
pub async fn output_is_chunked_idempotent_and_capped(store: &dyn Store) {
    let created = t44(5, 1, 0);
    let task = TaskId::new(created, 1);
    let chunk = OUTPUT_CHUNK_SIZE as usize;
    let write = |offset: u64, data: Vec<u8>| Txn::new().with(Write::WriteOutput { task, offset, data });

    assert!(store.read_output(task, 0, 10).await.expect("read").is_empty(), "no output yet");

    let a = pattern(chunk - 5, 3);
    assert_eq!(commit(store, write(0, a.clone())).await, CommitOutcome::Committed);
    // Crosses the first chunk boundary.
    let b = pattern(20, 9);
    assert_eq!(commit(store, write(chunk as u64 - 5, b.clone())).await, CommitOutcome::Committed);
    let mut want = a.clone();
    want.extend_from_slice(&b);
    assert_eq!(store.read_output(task, 0, u64::MAX).await.expect("read"), want);

    // The same write retried changes nothing.
    assert_eq!(commit(store, write(chunk as u64 - 5, b.clone())).await, CommitOutcome::Committed);
    assert_eq!(store.read_output(task, 0, u64::MAX).await.expect("read"), want);

    // Overwrite in the middle, without extending.
    assert_eq!(commit(store, write(10, b"XYZ".to_vec())).await, CommitOutcome::Committed);
    want[10..13].copy_from_slice(b"XYZ");
    assert_eq!(store.read_output(task, 0, u64::MAX).await.expect("read"), want);

    // Reads at an offset, clamped to the length asked for and what exists.
    assert_eq!(store.read_output(task, 7, 6).await.expect("read"), want[7..13].to_vec());
    let len = want.len() as u64;
    assert_eq!(store.read_output(task, len - 4, 100).await.expect("read"), want[want.len() - 4..].to_vec());
    assert!(store.read_output(task, len, 100).await.expect("read").is_empty(), "read at the end");
    assert!(store.read_output(task, len + 1000, 100).await.expect("read").is_empty(), "read past the end");
    assert!(store.read_output(task, 0, 0).await.expect("read").is_empty(), "zero length");

    // A gap of several whole chunks is zero-filled.
    let gap_at = 4 * OUTPUT_CHUNK_SIZE + 7;
    assert_eq!(commit(store, write(gap_at, b"tail".to_vec())).await, CommitOutcome::Committed);
    let all = store.read_output(task, 0, u64::MAX).await.expect("read");
    assert_eq!(all.len() as u64, gap_at + 4);
    assert_eq!(&all[..want.len()], &want[..]);
    assert!(all[want.len()..gap_at as usize].iter().all(|&x| x == 0), "gap reads as zeros");
    assert_eq!(&all[gap_at as usize..], b"tail");
    let mid = store.read_output(task, 2 * OUTPUT_CHUNK_SIZE + 3, 10).await.expect("read");
    assert_eq!(mid, vec![0u8; 10]);

    // Bytes past the cap are dropped.
    let cap = OUTPUT_CHUNK_SIZE * OUTPUT_MAX_CHUNKS;
    let capped = TaskId::new(created, 2);
    let txn = Txn::new().with(Write::WriteOutput { task: capped, offset: cap - 3, data: b"abcdefgh".to_vec() });
    assert_eq!(commit(store, txn).await, CommitOutcome::Committed);
    let txn = Txn::new().with(Write::WriteOutput { task: capped, offset: cap + 10, data: b"zzz".to_vec() });
    assert_eq!(commit(store, txn).await, CommitOutcome::Committed);
    assert_eq!(store.read_output(capped, cap - 3, 100).await.expect("read"), b"abc".to_vec());
    assert!(store.read_output(capped, cap, 100).await.expect("read").is_empty());
    assert_eq!(store.read_output(capped, cap - 5, 2).await.expect("read"), vec![0, 0]);

    // Another task's output is separate.
    assert!(store.read_output(TaskId::new(created, 3), 0, 100).await.expect("read").is_empty());
}

fn q(state: StateQuery, tags: &[&str]) -> TaskQuery {
    TaskQuery { state, tags: tags.iter().filter_map(|t| DimFilter::parse_tag(t)).collect(), ..TaskQuery::default() }
}

async fn ids_of(store: &dyn Store, query: &TaskQuery) -> Vec<TaskId> {
    let page = store.list_results(query).await.expect("list_results");
    page.items.iter().map(|r| r.id).collect()
}

/// StateQuery, tags (AND of ORs), time ranges, bot filter, sorts, paging, counts.
pub async fn listings_filter_sort_and_page(store: &dyn Store) {
    use muster_core::state::TaskState::*;
    // (state, os tag, failure, try_number override)
    let plan: Vec<(TaskState, &str, bool, Option<i32>)> = vec![
        (Pending, "os:Linux", false, None),
        (Pending, "os:Mac", false, None),
        (Running, "os:Linux", false, None),
        (Completed, "os:Linux", false, None),
        (Completed, "os:Windows", true, None),
        (Completed, "os:Mac", false, Some(0)),
        (Expired, "os:Linux", false, None),
        (TimedOut, "os:Linux", false, None),
        (BotDied, "os:Linux", false, None),
        (Canceled, "os:Linux", false, None),
        (Killed, "os:Linux", false, None),
        (NoResource, "os:Linux", false, None),
        (ClientError, "os:Linux", false, None),
    ];
    let mut all = Vec::new();
    for (i, (state, os, failure, try_number)) in plan.iter().enumerate() {
        let created = t44(6, 1, i as u32);
        let req = request(TaskId::new(created, 7), created, &["story:list", os]);
        let bot = if i % 2 == 0 { "list-bot-even" } else { "list-bot-odd" };
        // Completion times run opposite to creation times.
        let mut res = finished(pending(&req), *state, bot, 100 - 2 * i as i64);
        if matches!(state, Pending | Expired | Canceled | NoResource | ClientError) {
            res.bot_id = String::new();
            res.try_number = None;
            res.started = None;
        }
        res.failure = *failure;
        if try_number.is_some() {
            res.try_number = *try_number;
        }
        insert(store, &req, &res).await;
        all.push(res);
    }
    let newest_first = |pred: &dyn Fn(&TaskResult) -> bool| -> Vec<TaskId> {
        let mut v: Vec<&TaskResult> = all.iter().filter(|r| pred(r)).collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.id));
        v.into_iter().map(|r| r.id).collect()
    };
    let tag = ["story:list"];
    let checks: Vec<(StateQuery, Vec<TaskId>)> = vec![
        (StateQuery::Pending, newest_first(&|r| r.state == Pending)),
        (StateQuery::Running, newest_first(&|r| r.state == Running)),
        (StateQuery::PendingRunning, newest_first(&|r| matches!(r.state, Pending | Running))),
        (StateQuery::Completed, newest_first(&|r| r.state == Completed)),
        (StateQuery::CompletedSuccess, newest_first(&|r| r.state == Completed && !r.failure)),
        (StateQuery::CompletedFailure, newest_first(&|r| r.state == Completed && r.failure)),
        (StateQuery::Deduped, newest_first(&|r| r.state == Completed && r.try_number == Some(0))),
        (StateQuery::Expired, newest_first(&|r| r.state == Expired)),
        (StateQuery::TimedOut, newest_first(&|r| r.state == TimedOut)),
        (StateQuery::BotDied, newest_first(&|r| r.state == BotDied)),
        (StateQuery::Canceled, newest_first(&|r| r.state == Canceled)),
        (StateQuery::Killed, newest_first(&|r| r.state == Killed)),
        (StateQuery::NoResource, newest_first(&|r| r.state == NoResource)),
        (StateQuery::ClientError, newest_first(&|r| r.state == ClientError)),
        (StateQuery::All, newest_first(&|_| true)),
    ];
    for (state, want) in &checks {
        assert!(!want.is_empty(), "{state:?} has a fixture");
        assert_eq!(&ids_of(store, &q(*state, &tag)).await, want, "list {state:?}");
        let n = store.count_results(&q(*state, &tag)).await.expect("count");
        assert_eq!(n, want.len() as u64, "count {state:?}");
    }
    assert_eq!(checks[3].1.len(), 3, "three COMPLETED fixtures");
    assert_eq!(checks[4].1.len(), 2, "success excludes the failure");
    assert_eq!(checks[14].1.len(), all.len());

    // Tag filters: values ORed, filters ANDed.
    let linux_or_mac = newest_first(&|r| r.tags.iter().any(|t| t == "os:Linux" || t == "os:Mac"));
    assert_eq!(ids_of(store, &q(StateQuery::All, &["story:list", "os:Mac|Linux"])).await, linux_or_mac);
    assert_eq!(ids_of(store, &q(StateQuery::All, &["story:list", "os:Windows"])).await, newest_first(&|r| r.failure));
    assert!(ids_of(store, &q(StateQuery::All, &["story:list", "os:Plan9"])).await.is_empty());
    assert!(ids_of(store, &q(StateQuery::All, &["story:nope", "os:Linux"])).await.is_empty());
    assert_eq!(
        ids_of(store, &q(StateQuery::Pending, &["story:list", "os:Mac"])).await,
        newest_first(&|r| r.state == Pending && r.tags.iter().any(|t| t == "os:Mac"))
    );

    // Created range: start inclusive, end exclusive.
    let mut ranged = q(StateQuery::All, &tag);
    ranged.start = Some(t44(6, 1, 2));
    ranged.end = Some(t44(6, 1, 5));
    let want: Vec<TaskId> = vec![all[4].id, all[3].id, all[2].id];
    assert_eq!(ids_of(store, &ranged).await, want);
    assert_eq!(store.count_results(&ranged).await.expect("count"), 3);
    assert_eq!(
        store.list_requests(&ranged).await.expect("list_requests").items.iter().map(|r| r.id).collect::<Vec<_>>(),
        want
    );

    // Bot filter.
    let mut by_bot = q(StateQuery::All, &tag);
    by_bot.bot_id = Some("list-bot-even".into());
    assert_eq!(ids_of(store, &by_bot).await, newest_first(&|r| r.bot_id == "list-bot-even"));
    assert!(!newest_first(&|r| r.bot_id == "list-bot-even").is_empty());

    // Sort by completion time: newest completed first; never-completed excluded.
    let mut by_done = q(StateQuery::All, &tag);
    by_done.sort = SortQuery::CompletedTs;
    let mut want: Vec<&TaskResult> = all.iter().filter(|r| r.completed.is_some()).collect();
    want.sort_by(|a, b| b.completed.cmp(&a.completed).then(b.id.cmp(&a.id)));
    let want: Vec<TaskId> = want.into_iter().map(|r| r.id).collect();
    assert_eq!(ids_of(store, &by_done).await, want);
    // The completion times run opposite to creation, so this differs from id order.
    assert_ne!(want, newest_first(&|r| r.completed.is_some()));
    by_done.start = Some(all[5].completed.expect("completed"));
    by_done.end = all[3].completed;
    assert_eq!(ids_of(store, &by_done).await, vec![all[4].id, all[5].id]);
    // Paging by completion time.
    by_done.start = None;
    by_done.end = None;
    by_done.limit = 4;
    let mut paged = Vec::new();
    loop {
        let page = store.list_results(&by_done).await.expect("list");
        assert!(page.items.len() <= 4);
        paged.extend(page.items.iter().map(|r| r.id));
        match page.cursor {
            Some(c) => by_done.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(paged, want);

    // Paging by creation: pages of 3 concatenate to the full listing.
    let mut page_q = q(StateQuery::All, &tag);
    page_q.limit = 3;
    let mut got = Vec::new();
    let mut req_got = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.list_results(&page_q).await.expect("list");
        let reqs = store.list_requests(&page_q).await.expect("list_requests");
        assert_eq!(page.cursor, reqs.cursor, "results and requests page alike");
        assert!(page.items.len() <= 3);
        pages += 1;
        got.extend(page.items.iter().map(|r| r.id));
        req_got.extend(reqs.items.iter().map(|r| r.id));
        match page.cursor {
            Some(c) => {
                assert_eq!(page.items.len(), 3, "a page with a cursor is full");
                page_q.cursor = Some(c);
            }
            None => break,
        }
    }
    assert_eq!(got, checks[14].1);
    assert_eq!(req_got, checks[14].1);
    assert_eq!(pages, all.len().div_ceil(3));
    // Count ignores limit and cursor.
    assert_eq!(store.count_results(&page_q).await.expect("count"), all.len() as u64);

    // A cursor that no listing produced is an error, not a silent restart.
    let mut bad = q(StateQuery::All, &tag);
    bad.limit = 3;
    bad.cursor = Some("not a cursor".into());
    assert!(store.list_results(&bad).await.is_err(), "bad cursor rejected");

    // Requests come back whole.
    let reqs = store.list_requests(&q(StateQuery::Running, &tag)).await.expect("list_requests");
    assert_eq!(reqs.items.len(), 1);
    assert_eq!(reqs.items[0], request(all[2].id, all[2].created, &["story:list", "os:Linux"]));
}

/// find_dedup: newest result with the hash created at or after `since`.
pub async fn find_dedup_returns_the_newest_reusable_result(store: &dyn Store) {
    let hash = "dedup-hash-story-7";
    let mut made = Vec::new();
    for (i, sec) in [0u32, 10, 20].iter().enumerate() {
        let created = t44(7, 1, *sec);
        let req = request(TaskId::new(created, 1), created, &["story:dedup"]);
        let mut res = finished(pending(&req), TaskState::Completed, "dedup-bot", 5);
        res.exit_code = Some(0);
        res.dedup_hash = if i == 2 { Some("other-hash".into()) } else { Some(hash.into()) };
        insert(store, &req, &res).await;
        made.push(res);
    }
    let found = store.find_dedup(hash, t44(7, 1, 0)).await.expect("find_dedup");
    assert_eq!(found, Some(made[1].clone()));
    let found = store.find_dedup(hash, t44(7, 1, 10)).await.expect("find_dedup");
    assert_eq!(found.map(|r| r.id), Some(made[1].id), "since is inclusive");
    assert_eq!(store.find_dedup(hash, t44(7, 1, 11)).await.expect("find_dedup"), None);
    assert_eq!(store.find_dedup("never-seen", t44(7, 1, 0)).await.expect("find_dedup"), None);
}

/// PutBot upserts, DeleteBot forgets (idempotently), load_bots lists.
pub async fn bots_put_get_delete_load(store: &dyn Store) {
    let now = t44(8, 1, 0);
    assert_eq!(store.get_bot("conf-bot-1").await.expect("get_bot"), None);
    let mut b1 = BotInfo::new("conf-bot-1", now);
    b1.dimensions = BotDimensions::from_map([("id", vec!["conf-bot-1"]), ("os", vec!["Linux", "Ubuntu"])]);
    b1.state_json = r#"{"cpu": 4}"#.into();
    b1.task_id = Some(TaskId::new(now, 5));
    b1.idle_since = None;
    let b2 = BotInfo::new("conf-bot-2", now);
    let txn = Txn::new().with(Write::PutBot(Box::new(b1.clone()))).with(Write::PutBot(Box::new(b2.clone())));
    assert_eq!(commit(store, txn).await, CommitOutcome::Committed);
    assert_eq!(store.get_bot("conf-bot-1").await.expect("get_bot"), Some(b1.clone()));

    let mut b1b = b1.clone();
    b1b.last_seen = t44(8, 1, 30);
    b1b.quarantined_msg = "sick".into();
    let txn = Txn::new().with(Write::PutBot(Box::new(b1b.clone())));
    assert_eq!(commit(store, txn).await, CommitOutcome::Committed);
    assert_eq!(store.get_bot("conf-bot-1").await.expect("get_bot"), Some(b1b.clone()));

    let bots = store.load_bots().await.expect("load_bots");
    assert!(bots.contains(&b1b) && bots.contains(&b2), "load_bots has both");
    assert_eq!(bots.iter().filter(|b| b.bot_id == "conf-bot-1").count(), 1);

    for _ in 0..2 {
        let txn = Txn::new().with(Write::DeleteBot("conf-bot-2".into()));
        assert_eq!(commit(store, txn).await, CommitOutcome::Committed, "delete is idempotent");
    }
    assert_eq!(store.get_bot("conf-bot-2").await.expect("get_bot"), None);
    assert!(!store.load_bots().await.expect("load_bots").iter().any(|b| b.bot_id == "conf-bot-2"));
}

/// Events: newest first, time range, paging with cursors, per bot.
pub async fn bot_events_list_newest_first_with_paging(store: &dyn Store) {
    let bot = BotInfo::new("conf-ev-bot", t44(9, 1, 0));
    let mut txn = Txn::new();
    let mut events = Vec::new();
    for i in 0..5u32 {
        let mut e = BotEvent::of(&bot, t44(9, 1, i * 10), "bot_connected", &format!("m{i}"));
        e.task_id = if i == 3 { "abc1".into() } else { String::new() };
        txn.push(Write::AppendEvent(Box::new(e.clone())));
        events.push(e);
    }
    // Two events with the same timestamp still page deterministically.
    let mut same = BotEvent::of(&bot, t44(9, 1, 40), "request_sleep", "dup-ts");
    same.quarantined = true;
    txn.push(Write::AppendEvent(Box::new(same.clone())));
    events.push(same);
    let other = BotEvent::of(&BotInfo::new("conf-ev-other", t44(9, 1, 0)), t44(9, 1, 5), "bot_connected", "");
    txn.push(Write::AppendEvent(Box::new(other)));
    assert_eq!(commit(store, txn).await, CommitOutcome::Committed);

    let mut want = events.clone();
    want.reverse(); // newest first; the later-appended of equal ts first
    let eq = |bot_id: &str| EventQuery { bot_id: bot_id.into(), ..EventQuery::default() };
    let page = store.list_bot_events(&eq("conf-ev-bot")).await.expect("events");
    assert_eq!(page.items, want);
    assert_eq!(page.cursor, None);
    assert_eq!(store.list_bot_events(&eq("conf-ev-other")).await.expect("events").items.len(), 1);
    assert!(store.list_bot_events(&eq("conf-ev-none")).await.expect("events").items.is_empty());

    let mut ranged = eq("conf-ev-bot");
    ranged.start = Some(t44(9, 1, 10));
    ranged.end = Some(t44(9, 1, 30));
    let got: Vec<String> =
        store.list_bot_events(&ranged).await.expect("events").items.into_iter().map(|e| e.message).collect();
    assert_eq!(got, vec!["m2", "m1"]);

    let mut paged = eq("conf-ev-bot");
    paged.limit = 2;
    let mut got = Vec::new();
    loop {
        let page = store.list_bot_events(&paged).await.expect("events");
        assert!(page.items.len() <= 2);
        got.extend(page.items);
        match page.cursor {
            Some(c) => paged.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(got, want);
}

/// load_active: every PENDING and RUNNING task with its request, nothing else.
pub async fn load_active_returns_pending_and_running_with_requests(store: &dyn Store) {
    let mut active = Vec::new();
    let mut inactive = Vec::new();
    for (i, state) in
        [TaskState::Pending, TaskState::Running, TaskState::Completed, TaskState::Expired, TaskState::Pending]
            .iter()
            .enumerate()
    {
        let created = t44(10, 1, i as u32);
        let req = request(TaskId::new(created, 3), created, &["story:active"]);
        let res = finished(pending(&req), *state, "active-bot", 3);
        insert(store, &req, &res).await;
        if matches!(state, TaskState::Pending | TaskState::Running) {
            active.push((req, res));
        } else {
            inactive.push(res.id);
        }
    }
    let loaded = store.load_active().await.expect("load_active");
    for (req, res) in &active {
        assert!(loaded.iter().any(|(q, r)| q == req && r == res), "active task {} loaded", req.id);
    }
    for id in &inactive {
        assert!(!loaded.iter().any(|(_, r)| r.id == *id), "finished task {id} not loaded");
    }
    assert!(loaded.iter().all(|(q, r)| q.id == r.id && matches!(r.state, TaskState::Pending | TaskState::Running)));
}

/// evict: finished tasks and events older than `before`, in batches.
pub async fn evict(store: &dyn Store) {
    let old = |sec: u32| at(2041, 1, 1, sec);
    let before = at(2041, 6, 1, 0);
    let mut finished_old = Vec::new();
    for i in 0..3u32 {
        let req = request(TaskId::new(old(i), 1), old(i), &["story:evict"]);
        let res = finished(pending(&req), TaskState::Completed, "evict-bot", 1);
        insert(store, &req, &res).await;
        let txn = Txn::new()
            .with(Write::WriteOutput { task: req.id, offset: 0, data: b"old output".to_vec() })
            .with(Write::PutRequestUuid { key: format!("evict-key-{i}"), task: req.id, created: old(i) });
        assert_eq!(commit(store, txn).await, CommitOutcome::Committed);
        finished_old.push(req.id);
    }
    let pending_old = request(TaskId::new(old(10), 1), old(10), &["story:evict"]);
    insert(store, &pending_old, &pending(&pending_old)).await;
    let survivor = request(TaskId::new(t44(11, 1, 0), 1), t44(11, 1, 0), &["story:evict"]);
    insert(store, &survivor, &finished(pending(&survivor), TaskState::Completed, "evict-bot", 1)).await;
    let recent = request(TaskId::new(at(2041, 7, 1, 0), 1), at(2041, 7, 1, 0), &["story:evict"]);
    insert(store, &recent, &finished(pending(&recent), TaskState::Completed, "evict-bot", 1)).await;
    let bot = BotInfo::new("evict-bot", old(0));
    let txn = Txn::new()
        .with(Write::AppendEvent(Box::new(BotEvent::of(&bot, old(0), "bot_connected", "old"))))
        .with(Write::AppendEvent(Box::new(BotEvent::of(&bot, at(2041, 7, 1, 0), "bot_connected", "new"))));
    assert_eq!(commit(store, txn).await, CommitOutcome::Committed);

    // Batches of one: one task and one event per call.
    assert_eq!(store.evict(before, 1).await.expect("evict"), 2);
    let mut total = 2;
    loop {
        let n = store.evict(before, 1).await.expect("evict");
        if n == 0 {
            break;
        }
        assert_eq!(n, 1, "one task per batch");
        total += n;
    }
    assert_eq!(total, 4, "three tasks and one event evicted");
    for (i, id) in finished_old.iter().enumerate() {
        assert_eq!(store.get_request(*id).await.expect("get"), None);
        assert_eq!(store.get_result(*id).await.expect("get"), None);
        assert!(store.read_output(*id, 0, 100).await.expect("read").is_empty());
        assert_eq!(store.lookup_request_uuid(&format!("evict-key-{i}")).await.expect("lookup"), None);
    }
    let mut tagged = q(StateQuery::All, &["story:evict"]);
    assert_eq!(ids_of(store, &tagged).await, vec![survivor.id, recent.id, pending_old.id]);
    tagged.state = StateQuery::Pending;
    assert_eq!(store.count_results(&tagged).await.expect("count"), 1);
    let evs = store
        .list_bot_events(&EventQuery { bot_id: "evict-bot".into(), ..EventQuery::default() })
        .await
        .expect("events");
    assert_eq!(evs.items.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(), vec!["new"]);
}
