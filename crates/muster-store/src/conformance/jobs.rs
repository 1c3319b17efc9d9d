//! Conformance stories for scheduled-job state ([`crate::jobs`]). Job ids
//! start with `conf/` so the stories share a store with anything else.

use super::{at, commit};
use crate::jobs::{InvocationRow, JobRow, JobStore, JobWrite, TimerRow, TriggerRow};
use crate::{CommitOutcome, Store, Txn, Write};

fn w(j: JobWrite) -> Write {
    Write::Jobs(Box::new(j))
}

fn job(id: &str, data: &str) -> JobRow {
    JobRow { job_id: id.into(), project: "conf".into(), version: 0, data: data.into() }
}

fn trigger(job: &str, id: &str, sec: u32, order: i64) -> TriggerRow {
    TriggerRow {
        job_id: job.into(),
        trigger_id: id.into(),
        created: at(2044, 6, 1, sec),
        order_in_batch: order,
        consumed_by: None,
        consumed_at: None,
        data: format!("{{\"id\":\"{id}\"}}"),
    }
}

fn inv(id: i64, job: &str, count: i64) -> InvocationRow {
    InvocationRow {
        inv_id: id,
        job_id: job.into(),
        started: at(2044, 6, 1, 0),
        status: "STARTING".into(),
        finished: false,
        mutation_count: count,
        aborted_by: None,
        data: "{}".into(),
    }
}

/// Runs every job story on `store`.
pub async fn run_all(store: &dyn Store) {
    let js = store.jobs().expect("the backend stores jobs");
    job_rows_are_compare_and_set(store, js).await;
    triggers_dedup_and_consume_once(store, js).await;
    invocations_are_compare_and_set(store, js).await;
    timers_are_consumed_once(store, js).await;
}

/// Insert conflicts on an existing job; updates need the current version.
pub async fn job_rows_are_compare_and_set(store: &dyn Store, js: &dyn JobStore) {
    let put = |data: &str, expect| Txn::new().with(w(JobWrite::PutJob { row: job("conf/a", data), expect }));
    assert_eq!(commit(store, put("v1", None)).await, CommitOutcome::Committed);
    assert!(matches!(commit(store, put("again", None)).await, CommitOutcome::Conflict { .. }));
    let got = js.get_job("conf/a").await.expect("get").expect("exists");
    assert_eq!((got.version, got.data.as_str()), (1, "v1"));
    assert_eq!(commit(store, put("v2", Some(1))).await, CommitOutcome::Committed);
    // A stale writer (still at version 1) loses, and nothing of its Txn applies.
    let stale = put("stale", Some(1)).with(w(JobWrite::AddTrigger(trigger("conf/a", "lost", 0, 0))));
    assert!(matches!(commit(store, stale).await, CommitOutcome::Conflict { .. }));
    let got = js.get_job("conf/a").await.expect("get").expect("exists");
    assert_eq!((got.version, got.data.as_str()), (2, "v2"));
    assert_eq!(js.get_trigger("conf/a", "lost").await.expect("get"), None);
    assert!(js.list_jobs().await.expect("list").iter().any(|j| j.job_id == "conf/a"));
    assert_eq!(js.get_job("conf/missing").await.expect("get"), None);
}

/// A trigger id is added once; consumption needs every id still pending.
pub async fn triggers_dedup_and_consume_once(store: &dyn Store, js: &dyn JobStore) {
    let add = |t: TriggerRow| Txn::new().with(w(JobWrite::AddTrigger(t)));
    for t in [trigger("conf/t", "b", 1, 0), trigger("conf/t", "a", 1, 1), trigger("conf/t", "c", 0, 5)] {
        assert_eq!(commit(store, add(t)).await, CommitOutcome::Committed);
    }
    // Same id again: a no-op, the first payload stays.
    let mut dup = trigger("conf/t", "b", 9, 0);
    dup.data = "{\"dup\":true}".into();
    assert_eq!(commit(store, add(dup)).await, CommitOutcome::Committed);
    let pending: Vec<String> =
        js.pending_triggers("conf/t").await.expect("pending").into_iter().map(|t| t.trigger_id).collect();
    assert_eq!(pending, ["c", "b", "a"], "oldest first, then order in batch");
    assert_eq!(js.get_trigger("conf/t", "b").await.expect("get").expect("exists").data, "{\"id\":\"b\"}");
    assert!(js.jobs_with_pending_triggers().await.expect("jobs").contains(&"conf/t".to_string()));

    let consume = |ids: &[&str], by| {
        Txn::new().with(w(JobWrite::ConsumeTriggers {
            job_id: "conf/t".into(),
            ids: ids.iter().map(|s| s.to_string()).collect(),
            by,
            at: at(2044, 6, 2, 0),
        }))
    };
    assert_eq!(commit(store, consume(&["c", "b"], 7)).await, CommitOutcome::Committed);
    // "b" is gone: the whole consumption conflicts and "a" stays pending.
    assert!(matches!(commit(store, consume(&["a", "b"], 8)).await, CommitOutcome::Conflict { .. }));
    let pending: Vec<String> =
        js.pending_triggers("conf/t").await.expect("pending").into_iter().map(|t| t.trigger_id).collect();
    assert_eq!(pending, ["a"]);
    // A consumed id cannot come back while its row is kept.
    assert_eq!(commit(store, add(trigger("conf/t", "c", 3, 0))).await, CommitOutcome::Committed);
    assert_eq!(js.pending_triggers("conf/t").await.expect("pending").len(), 1);
    let c = js.get_trigger("conf/t", "c").await.expect("get").expect("kept");
    assert_eq!(c.consumed_by, Some(7));
    // Pruning forgets consumed rows older than the cut, never pending ones.
    let prune = Txn::new().with(w(JobWrite::PruneTriggers { before: at(2044, 6, 3, 0) }));
    assert_eq!(commit(store, prune).await, CommitOutcome::Committed);
    assert_eq!(js.get_trigger("conf/t", "c").await.expect("get"), None);
    assert!(js.get_trigger("conf/t", "a").await.expect("get").is_some());
}

/// Invocation updates need the current mutation count; `aborted_by` is set
/// without bumping it.
pub async fn invocations_are_compare_and_set(store: &dyn Store, js: &dyn JobStore) {
    for id in [30, 10, 20] {
        let t = Txn::new().with(w(JobWrite::InsertInvocation(inv(id, "conf/i", 0))));
        assert_eq!(commit(store, t).await, CommitOutcome::Committed);
    }
    let again = Txn::new().with(w(JobWrite::InsertInvocation(inv(10, "conf/i", 0))));
    assert!(matches!(commit(store, again).await, CommitOutcome::Conflict { .. }));

    let mut running = inv(10, "conf/i", 0);
    running.status = "RUNNING".into();
    running.data = "{\"x\":1}".into();
    assert_eq!(
        commit(store, Txn::new().with(w(JobWrite::UpdateInvocation(running.clone())))).await,
        CommitOutcome::Committed
    );
    // The same update again is stale.
    assert!(matches!(
        commit(store, Txn::new().with(w(JobWrite::UpdateInvocation(running)))).await,
        CommitOutcome::Conflict { .. }
    ));
    let abort = Txn::new().with(w(JobWrite::SetAbortedBy { inv_id: 10, by: "user:x".into() }));
    assert_eq!(commit(store, abort).await, CommitOutcome::Committed);
    let got = js.get_invocation(10).await.expect("get").expect("exists");
    assert_eq!((got.mutation_count, got.status.as_str(), got.aborted_by.as_deref()), (1, "RUNNING", Some("user:x")));

    let mut done = got.clone();
    done.status = "SUCCEEDED".into();
    done.finished = true;
    assert_eq!(commit(store, Txn::new().with(w(JobWrite::UpdateInvocation(done)))).await, CommitOutcome::Committed);
    let got = js.get_invocation(10).await.expect("get").expect("exists");
    assert_eq!(got.aborted_by.as_deref(), Some("user:x"), "an update keeps the abort mark");

    let ids: Vec<i64> = js.list_invocations("conf/i", None, 0).await.expect("list").iter().map(|i| i.inv_id).collect();
    assert_eq!(ids, [10, 20, 30]);
    let ids: Vec<i64> =
        js.list_invocations("conf/i", Some(10), 1).await.expect("list").iter().map(|i| i.inv_id).collect();
    assert_eq!(ids, [20]);
    let active: Vec<i64> = js
        .active_invocations()
        .await
        .expect("active")
        .iter()
        .filter(|i| i.job_id == "conf/i")
        .map(|i| i.inv_id)
        .collect();
    assert_eq!(active, [20, 30]);
}

/// A timer is delivered once: deleting it twice conflicts.
pub async fn timers_are_consumed_once(store: &dyn Store, js: &dyn JobStore) {
    let timer = |id: &str, sec| TimerRow {
        timer_id: id.into(),
        job_id: "conf/tm".into(),
        inv_id: 99,
        due: at(2044, 6, 5, sec),
        data: "{}".into(),
    };
    for t in [timer("conf-t2", 20), timer("conf-t1", 10), timer("conf-t1", 50)] {
        assert_eq!(commit(store, Txn::new().with(w(JobWrite::PutTimer(t)))).await, CommitOutcome::Committed);
    }
    let due: Vec<String> = js
        .due_timers(at(2044, 6, 5, 15), 0)
        .await
        .expect("due")
        .into_iter()
        .filter(|t| t.job_id == "conf/tm")
        .map(|t| t.timer_id)
        .collect();
    assert_eq!(due, ["conf-t1"]);
    assert_eq!(js.invocation_timers(99).await.expect("timers").len(), 2);
    let del = || Txn::new().with(w(JobWrite::DeleteTimer("conf-t1".into())));
    assert_eq!(commit(store, del()).await, CommitOutcome::Committed);
    assert!(matches!(commit(store, del()).await, CommitOutcome::Conflict { .. }));
}
