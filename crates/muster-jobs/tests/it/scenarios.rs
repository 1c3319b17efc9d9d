//! Scheduler scenarios (fake clock, each on a fresh store).

use crate::harness::{secs, t0, World};
use muster_jobs::model::{Payload, Status, Trigger};
use muster_store::Store;
use std::future::Future;
use std::sync::Arc;

pub async fn run_all<F, Fut>(mut make: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    downtime_collapses_missed_ticks_into_one_run(World::new(make().await, "downtime")).await;
    relative_schedule_counts_from_the_end_of_the_run(World::new(make().await, "relative")).await;
    greedy_batching_coalesces_and_respects_slots(World::new(make().await, "greedy")).await;
    pause_drops_triggers_and_resume_rearms(World::new(make().await, "pause")).await;
    abort_invocation_and_job(World::new(make().await, "abort")).await;
    transient_launch_errors_retry_with_backoff_then_give_up(World::new(make().await, "retry")).await;
    a_job_triggers_another_on_success(World::new(make().await, "chain")).await;
    invocation_timeout_fails_a_stuck_run(World::new(make().await, "timeout")).await;
    two_replicas_run_each_tick_exactly_once(World::new(make().await, "replicas")).await;
    a_crash_after_launch_relaunches_with_the_same_key(World::new(make().await, "crash")).await;
    config_changes_disable_and_explain(World::new(make().await, "config")).await;
    trigger_ids_deduplicate(World::new(make().await, "dedup")).await;
}

fn api_trigger(id: &str, w: &World) -> Trigger {
    Trigger {
        id: id.to_string(),
        created: w.now(),
        order_in_batch: 0,
        title: String::new(),
        url: String::new(),
        emitted_by_user: Some("user:test@example.com".into()),
        emitter_job: None,
        emitter_inv: None,
        payload: Payload::Api { properties: serde_json::json!({ "n": id }), tags: vec![format!("t:{id}")] },
    }
}

async fn emit(w: &World, job: &str, ids: &[&str]) -> Vec<String> {
    let batches: Vec<_> = ids.iter().map(|id| (api_trigger(id, w), vec![w.job(job)])).collect();
    w.engine.emit_triggers(&batches).await.expect("emit")
}

/// Three missed minutes give one run; the schedule then resumes from now.
async fn downtime_collapses_missed_ticks_into_one_run(w: World) {
    w.configure("[[job]]\nid = \"cron\"\nschedule = \"* * * * *\"\n[job.noop]\n").await;
    w.step().await;
    assert!(w.invocations("cron").await.is_empty(), "nothing before the first minute");
    // The server is "down" for 3.5 minutes: no passes.
    w.advance(210);
    w.step().await;
    assert_eq!(w.statuses("cron").await, vec![Status::Succeeded], "missed ticks collapse into one");
    let job = w.engine.job(&w.job("cron")).await.expect("read").expect("exists");
    assert_eq!(job.state.next_run(), Some(t0() + secs(240)), "next tick from now, no backfill");
    w.step().await;
    assert_eq!(w.invocations("cron").await.len(), 1);
    w.advance(30);
    w.step().await;
    assert_eq!(w.invocations("cron").await.len(), 2, "back on schedule");
    let inv = &w.invocations("cron").await[0];
    assert_eq!(inv.data.incoming.len(), 1);
    assert!(inv.data.incoming[0].id.starts_with("cron:v1:"));
}

/// `with 10s interval`: first tick 10 s after enabling; the next one 10 s
/// after the run was seen finished (runs never overlap).
async fn relative_schedule_counts_from_the_end_of_the_run(w: World) {
    w.configure("[[job]]\nid = \"rel\"\nschedule = \"with 10s interval\"\n[job.noop]\nsleep = \"5s\"\n").await;
    w.step().await;
    let job = w.engine.job(&w.job("rel")).await.expect("read").expect("exists");
    assert_eq!(job.state.next_run(), Some(t0() + secs(10)));
    w.advance(10);
    w.step().await;
    assert_eq!(w.statuses("rel").await, vec![Status::Running]);
    let job = w.engine.job(&w.job("rel")).await.expect("read").expect("exists");
    assert_eq!(job.state.next_run(), None, "waits for the run");
    assert_eq!(job.state.ui_status(), "RUNNING");
    w.advance(5);
    w.step().await; // the timer ends the run
    assert_eq!(w.statuses("rel").await, vec![Status::Succeeded]);
    w.step().await; // triage sees it finished and rewinds
    let job = w.engine.job(&w.job("rel")).await.expect("read").expect("exists");
    assert_eq!(job.state.next_run(), Some(t0() + secs(25)));
    assert_eq!(job.state.recent.first().map(|r| r.status), Some(Status::Succeeded));
    let log = &w.invocations("rel").await[0].data.debug_log;
    assert!(log.contains("Starting the invocation (attempt 1)"), "{log}");
    assert!(log.contains("with status SUCCEEDED"), "{log}");
}

/// Greedy batching: pending triggers coalesce into the next invocation; no
/// more than max_concurrent_invocations run; batches are capped.
async fn greedy_batching_coalesces_and_respects_slots(w: World) {
    w.configure(
        "[[job]]\nid = \"one\"\n[job.noop]\nsleep = \"10s\"\n\
         [[job]]\nid = \"three\"\ntriggering_policy = { max_concurrent_invocations = 3, max_batch_size = 2 }\n[job.noop]\nsleep = \"10s\"\n",
    )
    .await;
    emit(&w, "one", &["a", "b", "c"]).await;
    w.step().await;
    let invs = w.invocations("one").await;
    assert_eq!(invs.len(), 1);
    let ids: Vec<&str> = invs[0].data.incoming.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(invs[0].data.properties["n"], "c", "properties come from the newest trigger");
    assert_eq!(invs[0].data.triggered_by.as_deref(), Some("user:test@example.com"));
    emit(&w, "one", &["d", "e"]).await;
    w.step().await;
    assert_eq!(w.invocations("one").await.len(), 1, "one slot, busy: d and e wait");
    w.advance(10);
    w.step().await;
    w.step().await;
    let invs = w.invocations("one").await;
    assert_eq!(invs.len(), 2);
    let ids: Vec<&str> = invs[0].data.incoming.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["d", "e"], "coalesced into the next run");

    emit(&w, "three", &["1", "2", "3", "4", "5", "6", "7"]).await;
    w.step().await;
    let mut batches: Vec<Vec<String>> =
        w.invocations("three").await.iter().map(|i| i.data.incoming.iter().map(|t| t.id.clone()).collect()).collect();
    batches.sort();
    assert_eq!(batches, vec![vec!["1", "2"], vec!["3", "4"], vec!["5", "6"]]);
    assert_eq!(w.engine.pending_triggers(&w.job("three")).await.expect("pending").len(), 1);
}

/// Paused: no ticks, triggers dropped (pending ones at the next triage),
/// "trigger now" refused; running invocations go on. Resume re-arms.
async fn pause_drops_triggers_and_resume_rearms(w: World) {
    w.configure("[[job]]\nid = \"p\"\nschedule = \"with 60s interval\"\n[job.noop]\nsleep = \"30s\"\n").await;
    w.step().await;
    w.advance(60);
    w.step().await;
    assert_eq!(w.statuses("p").await, vec![Status::Running]);
    // A trigger arrives while running, then the job is paused.
    emit(&w, "p", &["before-pause"]).await;
    w.engine.pause(&w.job("p"), "user:op@example.com", "maintenance").await.expect("pause");
    w.engine.pause(&w.job("p"), "user:op@example.com", "again").await.expect("pausing twice is fine");
    let dropped = emit(&w, "p", &["while-paused"]).await;
    assert_eq!(dropped, vec![w.job("p")]);
    let e = w.engine.trigger_now(&w.job("p"), "user:x", None, Payload::Webui).await.expect_err("paused");
    assert!(e.message.contains("paused"), "{}", e.message);
    w.step().await;
    assert!(w.engine.pending_triggers(&w.job("p")).await.expect("pending").is_empty(), "pending dropped");
    w.advance(30);
    w.step().await;
    w.step().await;
    assert_eq!(w.statuses("p").await, vec![Status::Succeeded], "the running invocation finished");
    let job = w.engine.job(&w.job("p")).await.expect("read").expect("exists");
    assert_eq!(job.state.ui_status(), "PAUSED");
    assert_eq!(job.state.next_run(), None);
    w.advance(600);
    w.step().await;
    assert_eq!(w.invocations("p").await.len(), 1, "no ticks while paused");
    w.engine.resume(&w.job("p")).await.expect("resume");
    let job = w.engine.job(&w.job("p")).await.expect("read").expect("exists");
    assert!(job.state.next_run().is_some_and(|t| t <= w.now() + secs(60)), "re-armed");
    w.advance(60);
    w.step().await;
    assert_eq!(w.invocations("p").await.len(), 2, "ticks again");
    w.engine.trigger_now(&w.job("p"), "user:x", Some("manual".into()), Payload::Webui).await.expect("trigger");
}

async fn abort_invocation_and_job(w: World) {
    w.configure(
        "[[job]]\nid = \"long\"\ntriggering_policy = { max_concurrent_invocations = 2, max_batch_size = 1 }\n[job.noop]\nsleep = \"1h\"\n",
    )
    .await;
    emit(&w, "long", &["a"]).await;
    w.step().await;
    let inv = w.invocations("long").await.remove(0);
    assert_eq!(inv.status, Status::Running);
    w.engine.abort_invocation(&w.job("long"), inv.id, "user:op@example.com").await.expect("abort");
    let got = w.engine.invocation(&w.job("long"), inv.id).await.expect("get");
    assert_eq!(got.status, Status::Aborted);
    assert!(got.data.debug_log.contains("Aborted by user:op@example.com"));
    w.engine.abort_invocation(&w.job("long"), inv.id, "user:op@example.com").await.expect("aborting twice is a no-op");
    // Its timer fires later and is dropped.
    w.advance(3600);
    w.step().await;
    assert_eq!(w.engine.invocation(&w.job("long"), inv.id).await.expect("get").status, Status::Aborted);
    // Abort job: every running invocation; pending triggers stay.
    emit(&w, "long", &["b", "c", "d"]).await;
    w.step().await;
    assert_eq!(w.statuses("long").await.iter().filter(|s| **s == Status::Running).count(), 2);
    let n = w.engine.abort_job(&w.job("long"), "user:op@example.com").await.expect("abort job");
    assert_eq!(n, 2);
    assert_eq!(w.statuses("long").await.iter().filter(|s| **s == Status::Aborted).count(), 3);
    let pending: Vec<String> =
        w.engine.pending_triggers(&w.job("long")).await.expect("pending").into_iter().map(|t| t.id).collect();
    assert_eq!(pending, ["d"]);
    let e = w.engine.invocation(&w.job("other"), inv.id).await.expect_err("another job's invocation");
    assert_eq!(e.kind, muster_core::ErrorKind::NotFound);
}

async fn transient_launch_errors_retry_with_backoff_then_give_up(w: World) {
    w.configure("[[job]]\nid = \"f\"\n[job.flaky]\n").await;
    *w.flaky.fail_first.lock() = 2;
    emit(&w, "f", &["x"]).await;
    w.step().await;
    let inv = w.invocations("f").await.remove(0);
    assert_eq!(inv.status, Status::Retrying);
    assert_eq!(inv.data.next_attempt, w.now() + secs(5));
    w.advance(4);
    w.step().await;
    assert_eq!(w.statuses("f").await, vec![Status::Retrying], "not before the backoff");
    w.advance(1);
    w.step().await;
    let inv = w.invocations("f").await.remove(0);
    assert_eq!((inv.status, inv.data.next_attempt), (Status::Retrying, w.now() + secs(10)), "backoff doubles");
    w.advance(10);
    w.step().await;
    let inv = w.invocations("f").await.remove(0);
    assert_eq!((inv.status, inv.data.retry_count), (Status::Succeeded, 3));
    assert_eq!(w.flaky.tasks.lock().len(), 1, "one remote task for three attempts");

    // Always failing: 50 attempts, then FAILED.
    *w.flaky.fail_first.lock() = i64::MAX;
    emit(&w, "f", &["y"]).await;
    for _ in 0..60 {
        w.step().await;
        w.advance(600);
    }
    let inv = w.invocations("f").await.remove(0);
    assert_eq!(inv.status, Status::Failed);
    assert_eq!(inv.data.retry_count, 50);
    assert!(inv.data.summary.contains("50 launch attempts"), "{}", inv.data.summary);
}

async fn a_job_triggers_another_on_success(w: World) {
    w.configure(
        "[[job]]\nid = \"build\"\ntriggers = [\"publish\"]\n[job.noop]\n\
         [[job]]\nid = \"publish\"\n[job.noop]\n\
         [[trigger]]\nid = \"poller\"\nschedule = \"with 30s interval\"\ntriggers = [\"build\"]\n[trigger.noop]\ntriggers_count = 2\n",
    )
    .await;
    emit(&w, "build", &["go"]).await;
    w.step().await;
    w.step().await;
    assert_eq!(w.statuses("build").await, vec![Status::Succeeded]);
    let publish = w.invocations("publish").await;
    assert_eq!(publish.len(), 1);
    let t = &publish[0].data.incoming[0];
    assert_eq!(t.id, format!("inv:{}:done", w.invocations("build").await[0].id));
    assert_eq!(t.emitter_job.as_deref(), Some(w.job("build").as_str()));
    // The trigger stanza emits 2 triggers per run to "build", batched into one.
    w.advance(30);
    w.step().await;
    w.step().await;
    assert_eq!(w.statuses("poller").await, vec![Status::Succeeded]);
    let build = w.invocations("build").await;
    assert_eq!(build.len(), 2);
    let ids: Vec<&str> = build[0].data.incoming.iter().map(|t| t.id.as_str()).collect();
    let poller = w.invocations("poller").await[0].id;
    assert_eq!(ids, [format!("noop:{poller}:0"), format!("noop:{poller}:1")]);
}

async fn invocation_timeout_fails_a_stuck_run(w: World) {
    w.configure("[[job]]\nid = \"stuck\"\ninvocation_timeout = \"30s\"\n[job.noop]\nsleep = \"1h\"\n").await;
    emit(&w, "stuck", &["x"]).await;
    w.step().await;
    assert_eq!(w.statuses("stuck").await, vec![Status::Running]);
    w.advance(29);
    w.step().await;
    assert_eq!(w.statuses("stuck").await, vec![Status::Running]);
    w.advance(1);
    w.step().await;
    let inv = w.invocations("stuck").await.remove(0);
    assert_eq!(inv.status, Status::Failed);
    assert!(inv.data.summary.contains("timed out after 30s"), "{}", inv.data.summary);
}

/// Two engines on one store, passing at the same moments: every tick makes
/// exactly one invocation.
async fn two_replicas_run_each_tick_exactly_once(w: World) {
    w.configure("[[job]]\nid = \"tick\"\nschedule = \"*/10 * * * * * *\"\n[job.noop]\n").await;
    let other = World::replica(&w.store, &w.clock, &w.flaky, "r2");
    for _ in 0..12 {
        w.advance(10);
        let now = w.now();
        let (a, b) = tokio::join!(w.engine.step(now, true), other.step(now, true));
        a.expect("step a");
        b.expect("step b");
    }
    let invs = w.invocations("tick").await;
    assert_eq!(invs.len(), 12, "one invocation per tick");
    let mut triggers: Vec<String> = invs.iter().flat_map(|i| i.data.incoming.iter().map(|t| t.id.clone())).collect();
    triggers.sort();
    triggers.dedup();
    assert_eq!(triggers.len(), 12, "no tick consumed twice");
    assert!(invs.iter().all(|i| i.status == Status::Succeeded));
    assert!(invs.iter().all(|i| i.data.debug_log.matches("Invocation finished").count() == 1));
}

/// Replica A launches and "crashes" before recording it; after the lease,
/// replica B launches again with the same idempotency key: one remote task.
async fn a_crash_after_launch_relaunches_with_the_same_key(w: World) {
    w.configure("[[job]]\nid = \"c\"\n[job.flaky]\n").await;
    *w.flaky.hang_first.lock() = true;
    emit(&w, "c", &["x"]).await;
    w.engine.step(w.now(), false).await.expect("step");
    // Wait until A is inside the manager call (the claim is committed).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while w.flaky.launches.lock().is_empty() {
        assert!(std::time::Instant::now() < deadline, "replica A never launched");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let b = World::replica(&w.store, &w.clock, &w.flaky, "r2");
    b.step(w.now(), true).await.expect("step");
    assert_eq!(w.statuses("c").await, vec![Status::Starting], "leased by A: B waits");
    w.advance(31);
    b.step(w.now(), true).await.expect("step");
    let inv = w.invocations("c").await.remove(0);
    assert_eq!(inv.status, Status::Succeeded);
    let launches = w.flaky.launches.lock().clone();
    assert_eq!(launches.len(), 1, "one idempotency key: {launches:?}");
    assert_eq!(launches.values().next(), Some(&2), "launched twice with it");
    assert_eq!(w.flaky.tasks.lock().len(), 1, "one remote task");
    assert_eq!(inv.data.task_data["task"], "task-0");
}

async fn config_changes_disable_and_explain(w: World) {
    w.configure("[[job]]\nid = \"a\"\nschedule = \"with 5s interval\"\n[job.noop]\n[[job]]\nid = \"b\"\n[job.noop]\n")
        .await;
    w.step().await;
    let a = w.engine.job(&w.job("a")).await.expect("read").expect("exists");
    assert!(a.state.enabled && a.state.next_run().is_some());
    // b is removed, a gets a bad schedule.
    w.configure("[[job]]\nid = \"a\"\nschedule = \"61 * * * *\"\n[job.noop]\n").await;
    let a = w.engine.job(&w.job("a")).await.expect("read").expect("exists");
    assert!(!a.state.enabled);
    assert!(a.state.problem.as_deref().is_some_and(|p| p.contains("minute")), "{:?}", a.state.problem);
    assert_eq!(a.state.next_run(), None);
    let b = w.engine.job(&w.job("b")).await.expect("read").expect("exists");
    assert_eq!(b.state.ui_status(), "DISABLED");
    let e = emit_err(&w, "b").await;
    assert_eq!(e.kind, muster_core::ErrorKind::NotFound);
    // Fixed again: enabled, a new schedule from now.
    w.configure("[[job]]\nid = \"a\"\nschedule = \"with 7s interval\"\n[job.noop]\n").await;
    let a = w.engine.job(&w.job("a")).await.expect("read").expect("exists");
    assert!(a.state.enabled && a.state.problem.is_none());
    assert_eq!(a.state.next_run(), Some(w.now() + secs(7)));
}

async fn emit_err(w: &World, job: &str) -> muster_core::Error {
    w.engine.emit_triggers(&[(api_trigger("z", w), vec![w.job(job)])]).await.expect_err("refused")
}

async fn trigger_ids_deduplicate(w: World) {
    w.configure("[[job]]\nid = \"d\"\n[job.noop]\n").await;
    emit(&w, "d", &["same"]).await;
    emit(&w, "d", &["same"]).await;
    w.step().await;
    emit(&w, "d", &["same"]).await;
    w.step().await;
    assert_eq!(w.invocations("d").await.len(), 1, "a retried trigger runs once");
    let mut big = api_trigger("big", &w);
    big.payload = Payload::Noop { data: "x".repeat(100_000) };
    let e = w.engine.emit_triggers(&[(big, vec![w.job("d")])]).await.expect_err("too large");
    assert!(e.message.contains("limit"), "{}", e.message);
    let e = w.engine.emit_triggers(&[(api_trigger("", &w), vec![w.job("d")])]).await.expect_err("no id");
    assert!(e.message.contains("id"));
}
