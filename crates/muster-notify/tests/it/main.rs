//! Integration tests: a real SQLite store behind the recorder.

use muster_config::snapshot::{build, Files, LoadOptions};
use muster_config::ConfigHolder;
use muster_core::{TaskId, TaskResult, TaskState};
use muster_notify::{Notifier, NotifyingStore};
use muster_store::conformance::{at, pending, request};
use muster_store::outbox::OutboxRow;
use muster_store::{CommitOutcome, SqliteStore, Store, Txn, Write};
use std::sync::Arc;

fn holder(toml: &str) -> Arc<ConfigHolder> {
    let mut files = Files::default();
    files.0.insert("notifications.toml".into(), toml.into());
    Arc::new(ConfigHolder::fixed(build(&files, LoadOptions::default()).expect("valid config")))
}

const CONFIG: &str = r#"
[[sink]]
name = "all"
topic = "projects/p/topics/*"
kind = "webhook"
url = "http://127.0.0.1:9/hook"
secret_file = "k"

[[sink]]
name = "final"
topic = "projects/p/topics/t"
kind = "pubsub_push"
url = "http://127.0.0.1:9/push"
states = "final"
"#;

async fn rows(store: &dyn Store) -> Vec<OutboxRow> {
    let mut r = store.outbox().expect("outbox").list_outbox(None, 0).await.expect("list");
    r.sort_by(|a, b| (a.update_id, &a.sink).cmp(&(b.update_id, &b.sink)));
    r
}

async fn commit(store: &dyn Store, w: Write) -> CommitOutcome {
    store.commit(Txn::new().with(w)).await.expect("commit")
}

fn update(r: &TaskResult) -> Write {
    Write::UpdateResult(Box::new(r.clone()))
}

#[tokio::test]
async fn a_row_exists_iff_an_announced_transition_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inner: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db.sqlite")).expect("open"));
    let store = NotifyingStore::new(inner.clone(), Notifier::new(holder(CONFIG)));
    let created = at(2044, 8, 1, 0);
    let req = request(TaskId::new(created, 1), created, &["n:1"]);
    assert_eq!(req.pubsub_topic, "projects/p/topics/t");
    let mut r = pending(&req);
    let insert = Write::InsertTask { request: Box::new(req.clone()), result: Box::new(r.clone()) };
    assert_eq!(commit(&store, insert).await, CommitOutcome::Committed);
    assert!(rows(&store).await.is_empty(), "PENDING at creation is not announced");

    // The claim: one row for the sink taking every state.
    let mut claimed = r.clone();
    claimed.state = TaskState::Running;
    claimed.started = Some(created);
    claimed.modified = at(2044, 8, 1, 1);
    assert_eq!(commit(&store, update(&claimed)).await, CommitOutcome::Committed);
    let got = rows(&store).await;
    assert_eq!(got.iter().map(|r| (r.sink.as_str(), r.update_id)).collect::<Vec<_>>(), [("all", r.version + 1)]);
    let payload: serde_json::Value = serde_json::from_str(&got[0].data).expect("json");
    assert_eq!(payload["state"], "RUNNING");
    assert_eq!(payload["task_id"], req.id.summary_id());

    // Output while running: not announced.
    r = inner.get_result(req.id).await.expect("get").expect("exists");
    let mut output = r.clone();
    output.modified = at(2044, 8, 1, 2);
    assert_eq!(commit(&store, update(&output)).await, CommitOutcome::Committed);
    assert_eq!(rows(&store).await.len(), 1);

    // A stale writer's completion loses its compare-and-set: no row.
    let mut stale = r.clone();
    stale.state = TaskState::Completed;
    assert!(matches!(commit(&store, update(&stale)).await, CommitOutcome::Conflict { .. }));
    assert_eq!(rows(&store).await.len(), 1);

    // The real completion: a row for each sink.
    r = inner.get_result(req.id).await.expect("get").expect("exists");
    let mut done = r.clone();
    done.state = TaskState::Completed;
    done.modified = at(2044, 8, 1, 3);
    assert_eq!(commit(&store, update(&done)).await, CommitOutcome::Committed);
    let got = rows(&store).await;
    let last: Vec<(&str, i64)> = got.iter().skip(1).map(|r| (r.sink.as_str(), r.update_id)).collect();
    assert_eq!(last, [("all", r.version + 1), ("final", r.version + 1)]);
    assert_eq!(got.iter().map(|r| r.delivery_id.clone()).collect::<std::collections::BTreeSet<_>>().len(), 3);

    // Created already final (deduplicated / NO_RESOURCE): announced.
    let req2 = request(TaskId::new(created, 2), created, &["n:2"]);
    let mut r2 = pending(&req2);
    r2.state = TaskState::NoResource;
    let insert = Write::InsertTask { request: Box::new(req2.clone()), result: Box::new(r2) };
    assert_eq!(commit(&store, insert).await, CommitOutcome::Committed);
    assert_eq!(rows(&store).await.iter().filter(|r| r.subject == req2.id.summary_id()).count(), 2);

    // A task without a topic never gets a row, and a restarted recorder (empty
    // cache) finds the topic in the store.
    let mut req3 = request(TaskId::new(created, 3), created, &["n:3"]);
    req3.pubsub_topic = String::new();
    let r3 = pending(&req3);
    commit(&store, Write::InsertTask { request: Box::new(req3.clone()), result: Box::new(r3.clone()) }).await;
    let fresh = NotifyingStore::new(inner.clone(), Notifier::new(holder(CONFIG)));
    let mut c3 = r3.clone();
    c3.state = TaskState::Canceled;
    assert_eq!(commit(&fresh, update(&c3)).await, CommitOutcome::Committed);
    assert!(rows(&fresh).await.iter().all(|r| r.subject != req3.id.summary_id()));
    let req4 = request(TaskId::new(created, 4), created, &["n:4"]);
    let r4 = pending(&req4);
    commit(&store, Write::InsertTask { request: Box::new(req4.clone()), result: Box::new(r4.clone()) }).await;
    let mut c4 = r4.clone();
    c4.state = TaskState::Canceled;
    assert_eq!(commit(&fresh, update(&c4)).await, CommitOutcome::Committed);
    assert_eq!(rows(&fresh).await.iter().filter(|r| r.subject == req4.id.summary_id()).count(), 2);
}

#[test]
fn unmapped_and_malformed_topics_are_invalid_arguments() {
    let h = holder(CONFIG);
    let n = &h.get().notifications;
    assert!(muster_notify::check_topic(n, "").is_ok());
    assert!(muster_notify::check_topic(n, "projects/p/topics/anything").is_ok());
    let e = muster_notify::check_topic(n, "projects/q/topics/t").expect_err("unmapped");
    assert_eq!(e.kind, muster_core::ErrorKind::InvalidArgument);
    assert!(muster_notify::check_topic(n, "https://evil.example/hook").is_err());
    let open = holder("allow_unmapped = true\n");
    assert!(muster_notify::check_topic(&open.get().notifications, "projects/q/topics/t").is_ok());
}
