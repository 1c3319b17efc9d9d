//! Conformance stories for the notification outbox ([`crate::outbox`]).
//! Delivery ids start with `conf-` and times lie in 2044-07.

use super::{at, commit};
use crate::outbox::{OutboxRow, OutboxStore, OutboxWrite, DEAD, DELIVERED, PENDING};
use crate::{CommitOutcome, Store, Txn, Write};

fn w(o: OutboxWrite) -> Write {
    Write::Outbox(Box::new(o))
}

fn row(id: &str, sec: u32) -> OutboxRow {
    OutboxRow {
        delivery_id: id.into(),
        sink: "ci".into(),
        topic: "projects/p/topics/t".into(),
        subject: "conf-task".into(),
        event: "task.state_changed".into(),
        update_id: 2,
        created: at(2044, 7, 1, sec),
        since: at(2044, 7, 1, sec),
        state: PENDING.into(),
        attempts: 0,
        next_attempt_at: at(2044, 7, 1, sec),
        last_error: String::new(),
        finished_at: None,
        data: "{\"k\":1}".into(),
    }
}

/// Runs every outbox story on `store`.
pub async fn run_all(store: &dyn Store) {
    let ob = store.outbox().expect("the backend has an outbox");
    rows_are_enqueued_once_and_move_pending_to_final(store, ob).await;
    an_enqueue_in_a_conflicting_txn_leaves_no_row(store, ob).await;
}

/// Enqueue is insert-if-absent; failures reschedule; delivered and dead are
/// final except that a dead row can be retried.
pub async fn rows_are_enqueued_once_and_move_pending_to_final(store: &dyn Store, ob: &dyn OutboxStore) {
    let a = row("conf-a", 0);
    assert_eq!(commit(store, Txn::new().with(w(OutboxWrite::Enqueue(a.clone())))).await, CommitOutcome::Committed);
    let mut dup = row("conf-a", 5);
    dup.data = "changed".into();
    assert_eq!(commit(store, Txn::new().with(w(OutboxWrite::Enqueue(dup)))).await, CommitOutcome::Committed);
    assert_eq!(ob.get_outbox("conf-a").await.expect("get"), Some(a.clone()));
    commit(store, Txn::new().with(w(OutboxWrite::Enqueue(row("conf-b", 1))))).await;

    let due = ob.due_outbox(at(2044, 7, 1, 0), 0).await.expect("due");
    assert_eq!(due.iter().map(|r| r.delivery_id.as_str()).collect::<Vec<_>>(), ["conf-a"]);
    let fail = OutboxWrite::Failed {
        delivery_id: "conf-a".into(),
        attempts: 1,
        next: at(2044, 7, 1, 30),
        error: "HTTP 500".into(),
    };
    commit(store, Txn::new().with(w(fail))).await;
    let due = ob.due_outbox(at(2044, 7, 1, 10), 0).await.expect("due");
    assert_eq!(due.iter().map(|r| r.delivery_id.as_str()).collect::<Vec<_>>(), ["conf-b"]);
    let got = ob.get_outbox("conf-a").await.expect("get").expect("row");
    assert_eq!((got.attempts, got.last_error.as_str()), (1, "HTTP 500"));

    let delivered = OutboxWrite::Delivered { delivery_id: "conf-a".into(), attempts: 2, at: at(2044, 7, 1, 31) };
    commit(store, Txn::new().with(w(delivered))).await;
    let dead = OutboxWrite::Dead {
        delivery_id: "conf-b".into(),
        attempts: 1,
        at: at(2044, 7, 1, 32),
        error: "HTTP 404".into(),
    };
    commit(store, Txn::new().with(w(dead))).await;
    // A late failure report of a delivered row changes nothing.
    let late =
        OutboxWrite::Failed { delivery_id: "conf-a".into(), attempts: 3, next: at(2044, 7, 1, 40), error: "x".into() };
    commit(store, Txn::new().with(w(late))).await;
    let a = ob.get_outbox("conf-a").await.expect("get").expect("row");
    assert_eq!((a.state.as_str(), a.attempts, a.finished_at), (DELIVERED, 2, Some(at(2044, 7, 1, 31))));
    assert!(ob
        .due_outbox(at(2044, 7, 2, 0), 0)
        .await
        .expect("due")
        .iter()
        .all(|r| !r.delivery_id.starts_with("conf-")));
    let dead = ob.list_outbox(Some(DEAD), 0).await.expect("list");
    assert!(dead.iter().any(|r| r.delivery_id == "conf-b" && r.last_error == "HTTP 404"), "{dead:?}");
    let all = ob.list_outbox(None, 0).await.expect("list");
    let mine: Vec<&str> = all.iter().map(|r| r.delivery_id.as_str()).filter(|d| d.starts_with("conf-")).collect();
    assert_eq!(mine, ["conf-b", "conf-a"], "newest first");

    // Retry: dead → pending with a new series; retrying a pending row is a no-op.
    commit(store, Txn::new().with(w(OutboxWrite::Retry { delivery_id: "conf-b".into(), at: at(2044, 7, 2, 0) }))).await;
    commit(store, Txn::new().with(w(OutboxWrite::Retry { delivery_id: "conf-a".into(), at: at(2044, 7, 2, 0) }))).await;
    let b = ob.get_outbox("conf-b").await.expect("get").expect("row");
    assert_eq!(
        (b.state.as_str(), b.since, b.next_attempt_at, b.finished_at),
        (PENDING, at(2044, 7, 2, 0), at(2044, 7, 2, 0), None)
    );
    assert_eq!(ob.get_outbox("conf-a").await.expect("get").expect("row").state, DELIVERED);

    commit(store, Txn::new().with(w(OutboxWrite::PruneDelivered { before: at(2044, 7, 1, 59) }))).await;
    assert_eq!(ob.get_outbox("conf-a").await.expect("get"), None);
    assert!(ob.get_outbox("conf-b").await.expect("get").is_some(), "pending rows are not pruned");
}

/// The row shares the fate of its Txn.
pub async fn an_enqueue_in_a_conflicting_txn_leaves_no_row(store: &dyn Store, ob: &dyn OutboxStore) {
    let bad = Txn::new()
        .with(w(OutboxWrite::Enqueue(row("conf-lost", 3))))
        .with(Write::Jobs(Box::new(crate::jobs::JobWrite::DeleteTimer("conf-no-such-timer".into()))));
    assert!(matches!(commit(store, bad).await, CommitOutcome::Conflict { .. }));
    assert_eq!(ob.get_outbox("conf-lost").await.expect("get"), None);
}
